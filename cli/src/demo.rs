//! `gatehouse demo`: the README's run command. A walk through Gatehouse in
//! a throwaway profile, each step a real `gatehouse` command (printed with
//! its output) against the real sandboxed broker and sessiond and the lab's
//! simulated devices: keychain, sealing, a read-only command, a change that
//! needs and gets a person's approval, the audit log, an interactive session
//! that sign-out closes, recordings.
//!
//! On a desktop (a display, and `gatehouse-ui` built beside `gatehouse`)
//! it sets up the same world and opens the desktop app on it instead, with
//! a change waiting for approval and the copilot pointed at the scripted
//! model; without a display it says so and walks through headless.
//!
//! Must never: touch the user's own profile (it sets GATEHOUSE_HOME to a
//! temporary directory) or use a fixed secret (all are generated per run).

use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo profile (prints its path) instead of deleting it.
    #[arg(long)]
    keep: bool,
    /// Walk through in the terminal even when a display is available.
    #[arg(long)]
    headless: bool,
    /// On a desktop: save the app's window (binary PPM) once it has loaded,
    /// close it and finish (tests and the README's screenshot use this).
    #[arg(long, value_name = "FILE")]
    screenshot: Option<std::path::PathBuf>,
}

struct Demo {
    exe: std::path::PathBuf,
    home: std::path::PathBuf,
}

impl Demo {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(args).env("GATEHOUSE_HOME", &self.home);
        c
    }

    /// Runs `gatehouse ARGS` with `stdin`, echoing the command line and its output.
    fn step(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        shown_stdin: &str,
    ) -> anyhow::Result<String> {
        println!("\n$ {}gatehouse {}", shown_stdin, args.join(" "));
        let mut c = self.cmd(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn()?;
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        print!("{text}");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() && args[0] != "status" && args[0] != "audit" {
            bail!("`gatehouse {}` failed ({})", args.join(" "), out.status);
        }
        Ok(text)
    }
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let home = std::env::temp_dir().join(format!("gatehouse-demo-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let demo = Demo {
        exe: std::env::current_exe()?,
        home: home.clone(),
    };
    println!(
        "Gatehouse demo in a throwaway profile: GATEHOUSE_HOME={}",
        home.display()
    );
    let result = match desktop_available(args) {
        Ok(()) => desktop(&demo, args.screenshot.as_deref()),
        Err(why) => {
            println!("{why}: running the headless walk-through instead.");
            walk(&demo)
        }
    };
    let _ = demo.cmd(&["lab", "down"]).stdout(Stdio::null()).status();
    let _ = demo.cmd(&["down"]).stdout(Stdio::null()).status();
    if args.keep {
        println!("\nprofile kept at {}", home.display());
    } else {
        let _ = std::fs::remove_dir_all(&home);
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// Why the desktop app cannot be opened (`Err`), or `Ok` when it can.
fn desktop_available(args: &DemoArgs) -> Result<(), String> {
    if args.headless {
        return Err("--headless".into());
    }
    let display = |v| std::env::var_os(v).is_some_and(|d| !d.is_empty());
    if !display("DISPLAY") && !display("WAYLAND_DISPLAY") {
        return Err("No display (DISPLAY is not set), so the desktop app cannot open".into());
    }
    let ui = gatehouse_ipc::peer::Installation::of_current_exe()
        .map_err(|e| format!("cannot find the installation directory: {e}"))?
        .binary(gatehouse_ipc::PeerRole::Ui);
    if !ui.exists() {
        return Err(format!(
            "{} is not built (cargo build --release -p gatehouse-ui)",
            ui.display()
        ));
    }
    Ok(())
}

/// The start of both walks: the daemons, an account (signed in), an
/// organization, a keychain secret, and the lab's two simulated devices
/// (RouterOS, IOS) added as hosts whose passwords are keychain references.
/// Returns the generated passphrase.
fn set_up(d: &Demo) -> anyhow::Result<String> {
    let rand = |n| gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<12>()) + n;
    let passphrase = format!("demo-pass-{}", rand(""));
    let router_secret = format!("demo-router-{}", rand(""));
    d.step(&["up"], None, "")?;
    d.step(
        &["account", "init", "--passphrase-stdin"],
        Some(&format!("{passphrase}\n")),
        "echo $PASSPHRASE | ",
    )?;
    d.step(&["org", "create", "demo-noc"], None, "")?;
    d.step(
        &["keychain", "set", "lab-router", "--kind", "password"],
        Some(&router_secret),
        "echo $ROUTER_PASSWORD | ",
    )?;
    d.step(&["keychain", "list"], None, "")?;
    d.step(&["lab", "up"], None, "")?;
    Ok(passphrase)
}

/// The desktop walk: the world of [`set_up`], a change waiting for
/// approval, the copilot on the scripted model; then the app, until its
/// window is closed.
fn desktop(d: &Demo, screenshot: Option<&std::path::Path>) -> anyhow::Result<()> {
    use gatehouse_labprovider::ScriptedProvider;
    let passphrase = set_up(d)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let provider = rt.block_on(ScriptedProvider::start(lab_conversation()))?;
    use_scripted(d, &provider)?;
    let change = "/ip address add address=192.0.2.1/24 interface=ether2";
    println!(
        "\n$ gatehouse exec r1 --org lab --request --effect 'adds 192.0.2.1/24 to ether2' -- {change}   (in the background: its card waits in the app)"
    );
    let mut requester = request_in_background(d, change, "adds 192.0.2.1/24 to ether2")?;
    println!(
        "\nOpening the desktop app on this throwaway profile (already signed in; its passphrase, if you sign out: {passphrase}).\n\
         - Approvals (Ctrl+4): the change above waits for you; Approve turns active after a moment.\n\
         - Hosts (Ctrl+1): the lab's r1 (RouterOS) and sw1 (IOS); Connect opens a terminal.\n\
         - Copilot (Ctrl+3): ask \"put 198.51.100.1/24 on r1's ether3\" (a scripted local model answers).\n\
         Close the window to end the demo.\n\n$ gatehouse ui"
    );
    let mut ui = d.cmd(&["ui"]);
    if let Some(file) = screenshot {
        ui.arg("--screenshot").arg(file);
    }
    let status = ui.status()?;
    provider.shutdown();
    if requester.try_wait()?.is_none() {
        let _ = requester.kill();
    }
    let out = requester.wait_with_output()?;
    println!(
        "# the background request's terminal:\n{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout).trim_end()
    );
    d.step(&["audit", "log", "--last", "6"], None, "")?;
    if !status.success() {
        bail!("the desktop app exited with {status}");
    }
    Ok(())
}

/// `gatehouse exec r1 --request` in the background: it files the approval
/// request and waits for a person's decision.
fn request_in_background(
    d: &Demo,
    change: &str,
    effect: &str,
) -> anyhow::Result<std::process::Child> {
    Ok(d.cmd(&[
        "exec",
        "r1",
        "--org",
        "lab",
        "--request",
        "--effect",
        effect,
        "--",
        change,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()?)
}

fn walk(d: &Demo) -> anyhow::Result<()> {
    let passphrase = set_up(d)?;
    d.step(&["host", "list", "--org", "lab"], None, "")?;
    d.step(&["host", "show", "sw1", "--org", "lab"], None, "")?;
    // One field address, used to seal, to open, and (with another record id) to show a moved ciphertext failing.
    let field = |verb: &'static str, record: &'static str| {
        let args = [
            "--org",
            "demo-noc",
            "--kind",
            "host",
            "--record",
            record,
            "--field",
            "ssh.password",
        ];
        [
            ["field", verb].as_slice(),
            &args,
            &["--binding", "192.0.2.1:22:admin"],
        ]
        .concat()
    };
    let sealed = d.step(
        &field("seal", "r1"),
        Some("a-literal-demo-password"),
        "echo a-literal-demo-password | ",
    )?;
    let sealed = sealed.trim().to_string();
    d.step(
        &[field("open", "r1").as_slice(), &[sealed.as_str()]].concat(),
        None,
        "",
    )?;
    println!("\n# the same ciphertext, presented for another record, fails to open:");
    let moved = d
        .cmd(&[field("open", "r2").as_slice(), &[sealed.as_str()]].concat())
        .output()?;
    println!(
        "$ gatehouse field open … --record r2 …\n{}",
        String::from_utf8_lossy(&moved.stderr).trim()
    );

    // Sessions through sessiond: read-only runs, a change needs a person.
    d.step(
        &["exec", "r1", "--org", "lab", "--", "/ip address print"],
        None,
        "",
    )?;
    let change = "/ip address add address=192.0.2.1/24 interface=ether2";
    println!("\n$ gatehouse exec r1 --org lab -- {change}");
    let refused = d
        .cmd(&["exec", "r1", "--org", "lab", "--", change])
        .output()?;
    println!("{}", String::from_utf8_lossy(&refused.stderr).trim_end());
    if refused.status.success() {
        bail!("a moderate command ran without approval");
    }
    println!(
        "\n$ gatehouse exec r1 --org lab --request --effect 'adds 192.0.2.1/24 to ether2' -- {change}   (in the background)"
    );
    let requester = request_in_background(d, change, "adds 192.0.2.1/24 to ether2")?;
    let mut id = None;
    for _ in 0..200 {
        let out = d.cmd(&["approvals", "list", "--json"]).output()?;
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(pending) = list
            .as_array()
            .and_then(|a| a.iter().find(|v| v["state"] == "Pending"))
        {
            id = pending["id"].as_u64();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let id = id
        .context("the approval request did not appear")?
        .to_string();
    d.step(&["approvals", "show", &id], None, "")?;
    d.step(&["approvals", "approve", &id], None, "")?;
    let out = requester.wait_with_output()?;
    println!(
        "# the requester's terminal:\n{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout).trim_end()
    );
    if !out.status.success() {
        bail!("the approved change did not run");
    }
    d.step(
        &["exec", "r1", "--org", "lab", "--", "/ip address print"],
        None,
        "",
    )?;
    d.step(&["audit", "log", "--last", "6"], None, "")?;

    // The copilot, against a scripted local model (a real HTTP server speaking
    // the Chat Completions wire format), working on the lab.
    copilot(d, &passphrase)?;

    // An interactive session stays open until sign-out closes it.
    println!("\n$ gatehouse connect sw1 --org lab   (in the background, typing `show clock`)");
    let mut shell = d
        .cmd(&["connect", "sw1", "--org", "lab"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut typing = shell.stdin.take().context("stdin")?;
    std::thread::sleep(Duration::from_millis(800));
    typing.write_all(b"show clock\r")?;
    std::thread::sleep(Duration::from_millis(500));
    d.step(&["recordings", "list"], None, "")?;
    d.step(&["status"], None, "")?;
    d.step(&["audit", "isolation", "--then-sign-out"], None, "")?;
    let shell_out = shell.wait_with_output()?;
    drop(typing);
    println!(
        "# the shell's terminal (sign-out closed it):\n{}{}",
        String::from_utf8_lossy(&shell_out.stdout).trim_end(),
        String::from_utf8_lossy(&shell_out.stderr).trim_end()
    );
    println!("\n# after sign-out every key operation fails:");
    let after = d.cmd(&["org", "list"]).output()?;
    println!(
        "$ gatehouse org list\n{}",
        String::from_utf8_lossy(&after.stderr).trim()
    );
    d.step(
        &["signin", "--passphrase-stdin"],
        Some(&format!("{passphrase}\n")),
        "echo $PASSPHRASE | ",
    )?;
    d.step(&["org", "list"], None, "")?;
    d.step(&["recordings", "list"], None, "")?;
    d.step(&["lab", "down"], None, "")?;
    d.step(&["down"], None, "")?;
    Ok(())
}

/// A copilot conversation with a scripted local provider: a read-only look
/// runs at once, the change it proposes is asked inline and approved.
fn copilot(d: &Demo, passphrase: &str) -> anyhow::Result<()> {
    use gatehouse_labprovider::ScriptedProvider;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let provider = rt.block_on(ScriptedProvider::start(lab_conversation()))?;
    println!(
        "\n# no AI provider is configured: a scripted local one plays the model (point the copilot at a real one with\n#   gatehouse copilot config --kind openai --endpoint https://api.openai.com/v1 --model MODEL --api-key-stdin\n# or --kind anthropic --endpoint https://api.anthropic.com, or a local Ollama at http://127.0.0.1:11434/v1)"
    );
    use_scripted(d, &provider)?;
    d.step(
        &[
            "copilot",
            "chat",
            "--org",
            "lab",
            "put 198.51.100.1/24 on r1's ether3",
        ],
        Some("a\n"),
        "echo a | ",
    )?;
    let sent = provider.received().len();
    println!(
        "# the scripted provider received {sent} requests, every one redacted by the broker and the pattern layer"
    );
    provider.shutdown();
    autopilot(d, &rt, passphrase)
}

/// The scripted model's side of a conversation on the lab: a read-only
/// look at r1, then a change to propose, then a report.
fn lab_conversation() -> Vec<gatehouse_labprovider::Turn> {
    use gatehouse_labprovider::Turn;
    use serde_json::json;
    let change = "/ip address add address=198.51.100.1/24 interface=ether3";
    vec![
        Turn::TextThenToolCalls(
            "Let me look at r1's addresses first.".into(),
            vec![(
                "run_command".into(),
                json!({"host": "r1", "command": "/ip address print"}),
            )],
        ),
        Turn::TextThenToolCalls(
            "ether3 has no address yet; I'll add 198.51.100.1/24 there.".into(),
            vec![(
                "run_command".into(),
                json!({"host": "r1", "command": change, "effect": "adds 198.51.100.1/24 to ether3"}),
            )],
        ),
        Turn::Text("Done: r1 now has 198.51.100.1/24 on ether3.".into()),
    ]
}

/// Points the copilot at the scripted local model.
fn use_scripted(
    d: &Demo,
    provider: &gatehouse_labprovider::ScriptedProvider,
) -> anyhow::Result<()> {
    d.step(
        &[
            "copilot",
            "config",
            "--kind",
            "openai",
            "--endpoint",
            &provider.base_url_openai(),
            "--model",
            "scripted-demo",
        ],
        None,
        "",
    )
    .map(drop)
}

/// Autopilot: the lab org lets it approve moderate commands; a change runs
/// without asking, a dangerous one still asks (and is rejected).
fn autopilot(d: &Demo, rt: &tokio::runtime::Runtime, passphrase: &str) -> anyhow::Result<()> {
    use gatehouse_labprovider::{ScriptedProvider, Turn};
    use serde_json::json;
    let run = |command: &str| {
        Turn::ToolCalls(vec![(
            "run_command".into(),
            json!({"host": "r1", "command": command}),
        )])
    };
    let provider = rt.block_on(ScriptedProvider::start(vec![
        run("/ip address add address=198.51.100.9/24 interface=ether4"),
        run("/system reboot"),
        Turn::Text(
            "Added 198.51.100.9/24; the reboot was not approved, so r1 keeps running.".into(),
        ),
    ]))?;
    let policy = d.home.join("lab-policy.json");
    std::fs::write(&policy, "{\"autopilot_moderate\": true}\n")?;
    println!(
        "\n# Autopilot: the lab's org policy lets it approve moderate commands (the broker keeps\n# policies; setting one needs the passphrase); the task is bounded to r1, 3 steps,\n# 5 minutes; dangerous commands still ask (rejected here)"
    );
    let file = policy.display().to_string();
    d.step(
        &["org", "policy", "set", "lab", &file, "--passphrase-stdin"],
        Some(&format!("{passphrase}\n")),
        "echo \"$PASSPHRASE\" | ",
    )?;
    use_scripted(d, &provider)?;
    d.step(
        &[
            "copilot",
            "chat",
            "--org",
            "lab",
            "--autopilot",
            "--host",
            "r1",
            "--max-steps",
            "3",
            "--minutes",
            "5",
            "add 198.51.100.9/24 on ether4, then reboot r1",
        ],
        Some("r not during business hours\n"),
        "echo 'r not during business hours' | ",
    )?;
    provider.shutdown();
    Ok(())
}
