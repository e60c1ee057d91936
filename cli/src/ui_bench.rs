//! `gatehouse bench ui`: the desktop app's speed, each figure beside a
//! baseline measured in the same run.
//!
//! - Cold start to first frame: `gatehouse-ui --first-frame` against a
//!   private broker (a throwaway profile, signed in), beside `--bare`, the
//!   same toolkit, renderer and fonts drawing an empty window. Needs a
//!   display: `$DISPLAY`, or a private Xvfb this command starts.
//! - In process (`gatehouse-ui --bench-headless`): terminal throughput and
//!   the hosts filter over 10,000 hosts, with their own baselines.
//!
//! Must never: touch the user's profile, or leave a process running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use gatehouse_ipc::broker::BrokerRequest;
use gatehouse_ipc::peer::Installation;
use gatehouse_ipc::{PeerRole, SecretBytes};
use serde_json::{Value, json};

use crate::bench_broker::start_private_broker;
use crate::commands::BrokerConn;
use crate::sessions_bench::median;

#[derive(Args, Debug)]
pub struct BenchUiArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Cold starts per window kind (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
}

/// A private X server, killed on drop.
struct Xvfb(Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `$DISPLAY` if set; otherwise a private Xvfb on a free display number.
fn display() -> anyhow::Result<(String, Option<Xvfb>)> {
    if let Some(d) = std::env::var_os("DISPLAY").filter(|d| !d.is_empty()) {
        return Ok((d.to_string_lossy().into_owned(), None));
    }
    for n in (200 + std::process::id() % 300..).take(30) {
        if Path::new(&format!("/tmp/.X{n}-lock")).exists() {
            continue;
        }
        let name = format!(":{n}");
        let child = Command::new("Xvfb")
            .args([&name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("no $DISPLAY, and Xvfb could not be started (install xvfb)")?;
        let mut x = Xvfb(child);
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() && Instant::now() < deadline {
            if x.0.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if socket.exists() {
            return Ok((name, Some(x)));
        }
    }
    bail!("no free X display for Xvfb")
}

/// Milliseconds from spawning `ui ARGS` to its `first frame` line.
fn first_frame_ms(ui: &Path, display: &str, home: &Path, args: &[&str]) -> anyhow::Result<f64> {
    let t = Instant::now();
    let out = Command::new(ui)
        .args(args)
        .env("DISPLAY", display)
        .env("GATEHOUSE_HOME", home)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", ui.display()))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("first frame") {
        bail!(
            "{} {}: {} {}",
            ui.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(ms)
}

fn cold_start(ui: &Path, samples: usize) -> anyhow::Result<Value> {
    let (display, _xvfb) = display()?;
    let pb = start_private_broker()?;
    let mut b = BrokerConn::connect_layout(&pb.layout)?;
    let pass = gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<16>());
    b.ask(BrokerRequest::AccountInit {
        passphrase: SecretBytes::copy_from(pass.as_bytes()),
    })?;
    let profile = pb.layout.profile.clone();
    let (mut app, mut bare) = (Vec::new(), Vec::new());
    // One unmeasured start of each warms the page cache (a "cold" start
    // here is a new process, not a cold disk).
    first_frame_ms(ui, &display, &pb.home, &["--first-frame", "--bare"])?;
    first_frame_ms(
        ui,
        &display,
        &pb.home,
        &["--profile", &profile, "--first-frame"],
    )?;
    for _ in 0..samples.max(1) {
        app.push(first_frame_ms(
            ui,
            &display,
            &pb.home,
            &["--profile", &profile, "--first-frame"],
        )?);
        bare.push(first_frame_ms(
            ui,
            &display,
            &pb.home,
            &["--first-frame", "--bare"],
        )?);
    }
    let (app, bare) = (median(app), median(bare));
    Ok(json!({
        "display": display,
        "app_first_frame_ms_median": app,
        "bare_window_first_frame_ms_median": bare,
        "ratio": app / bare,
    }))
}

pub fn run(args: &BenchUiArgs) -> anyhow::Result<ExitCode> {
    let install = Installation::of_current_exe().context("finding the installation directory")?;
    let ui = install.binary(PeerRole::Ui);
    if !ui.exists() {
        bail!(
            "{} is not installed (build it with `cargo build --release -p gatehouse-ui`)",
            ui.display()
        );
    }
    let out = Command::new(&ui)
        .arg("--bench-headless")
        .output()
        .with_context(|| format!("starting {}", ui.display()))?;
    if !out.status.success() {
        bail!(
            "{} --bench-headless: {}",
            ui.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut report: Value =
        serde_json::from_slice(&out.stdout).context("reading --bench-headless JSON")?;
    report["cold_start"] = match cold_start(&ui, args.samples) {
        Ok(v) => v,
        Err(e) => json!({ "skipped": format!("{e:#}") }),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.2}"));
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "measure", "gatehouse", "baseline", "ratio"
    );
    let c = &r["cold_start"];
    if let Some(why) = c["skipped"].as_str() {
        println!("cold start to first frame: skipped ({why})");
    } else {
        println!(
            "{:<44} {:>12} {:>12} {:>8}",
            "cold start to first frame, ms (vs bare window)",
            f(&c["app_first_frame_ms_median"]),
            f(&c["bare_window_first_frame_ms_median"]),
            f(&c["ratio"])
        );
    }
    let h = &r["hosts_filter"];
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "hosts filter, 10,000 hosts, ms (vs name scan)",
        f(&h["filter_ms_median"]),
        f(&h["baseline_name_scan_ms_median"]),
        f(&h["ratio"])
    );
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "  a keystroke: filter + hosts screen built, ms",
        f(&h["keystroke_filter_and_view_ms_median"]),
        "",
        ""
    );
    let t = &r["terminal"];
    let ratio = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    };
    let rows = [
        (
            "terminal MiB/s, frames at 60 Hz (vs parse)",
            "mib_per_s",
            "baseline_parse_only_mib_per_s",
        ),
        (
            "  the same in CPU time (vs parse)",
            "cpu_mib_per_s",
            "baseline_parse_only_cpu_mib_per_s",
        ),
        (
            "  a frame 120x40 at 60 Hz, CPU ms (vs empty)",
            "cpu_render_ms_per_frame",
            "baseline_empty_frame_cpu_ms",
        ),
        (
            "terminal MiB/s, old: frame/64 KiB (vs parse)",
            "frame_per_64k_mib_per_s",
            "baseline_parse_only_mib_per_s",
        ),
        (
            "  a frame 120x40 per 64 KiB, ms (vs empty)",
            "frame_per_64k_render_ms_per_frame",
            "baseline_empty_frame_ms",
        ),
    ];
    for (label, value, base) in rows {
        println!(
            "{:<44} {:>12} {:>12} {:>8}",
            label,
            f(&t[value]),
            f(&t[base]),
            ratio(&t[value], &t[base])
        );
    }
}
