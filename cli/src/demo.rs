//! `gatehouse demo`: the README's run command. A walk through the
//! foundation in a throwaway profile, each step a real `gatehouse` command
//! (printed with its output) against a real sandboxed broker.
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
    let result = walk(&demo);
    let _ = demo.cmd(&["lab", "down"]).stdout(Stdio::null()).status();
    let _ = demo.cmd(&["down"]).stdout(Stdio::null()).status();
    if args.keep {
        println!("\nprofile kept at {}", home.display());
    } else {
        let _ = std::fs::remove_dir_all(&home);
    }
    result.map(|()| ExitCode::SUCCESS)
}

fn walk(d: &Demo) -> anyhow::Result<()> {
    let rand =
        |n| gatehouse_broker::crypto::hex(&gatehouse_broker::crypto::random_bytes::<12>()) + n;
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
    // The lab: two simulated devices (RouterOS, IOS) on loopback, added as
    // hosts whose passwords are keychain references.
    d.step(&["lab", "up"], None, "")?;
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

    // An approval: a requester waits while a person approves from another process.
    println!(
        "\n$ gatehouse approvals request --host r1 --org demo-noc --vendor ios --credential keychain:lab-router -- reload   (in the background)"
    );
    let requester = d
        .cmd(&[
            "approvals",
            "request",
            "--host",
            "r1",
            "--org",
            "demo-noc",
            "--vendor",
            "ios",
            "--credential",
            "keychain:lab-router",
            "--effect",
            "reboots the router",
            "--",
            "reload",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut id = None;
    for _ in 0..100 {
        let out = d.cmd(&["approvals", "list", "--json"]).output()?;
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(first) = list.as_array().and_then(|a| a.first()) {
            id = first["id"].as_u64();
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
        "# the requester's terminal:\n{}",
        String::from_utf8_lossy(&out.stdout).trim_end()
    );

    d.step(&["status"], None, "")?;
    d.step(&["audit", "isolation", "--then-sign-out"], None, "")?;
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
    d.step(&["lab", "down"], None, "")?;
    d.step(&["down"], None, "")?;
    Ok(())
}
