//! `gatehouse lab up | down`: simulated devices on loopback, added as hosts
//! whose passwords live in the keychain and whose host keys are pinned.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::BrokerRequest;
use gatehouse_tests::broker::{BrokerFixture, Options};
use gatehouse_tests::{find_binary, install};

fn cli_json(f: &BrokerFixture, args: &[&str]) -> Result<serde_json::Value> {
    let out = f.cli(args, "")?;
    if !out.status.success() {
        bail!(
            "gatehouse {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn lab_up_starts_devices_and_adds_hosts_with_keychain_passwords_and_pinned_keys() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    install(
        &f.scratch,
        &find_binary("gatehouse-labdevice")?,
        "gatehouse-labdevice",
    )?;
    let init = f.cli(
        &["account", "init", "--passphrase-stdin"],
        "lab-test-passphrase\n",
    )?;
    assert!(init.status.success(), "{init:?}");
    let up = f.cli(&["lab", "up"], "")?;
    assert!(
        up.status.success(),
        "lab up: {}",
        String::from_utf8_lossy(&up.stderr)
    );

    let devices = cli_json(&f, &["lab", "status", "--json"])?;
    let devices = devices.as_array().context("status array")?.clone();
    assert_eq!(devices.len(), 2, "{devices:?}");
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    for d in &devices {
        let name = d["name"].as_str().context("name")?;
        let port = d["port"].as_u64().context("port")?;
        assert!(
            gatehouse_tests::proc::is_alive(d["pid"].as_u64().unwrap_or(0) as u32),
            "{d}"
        );

        // The host record: address and port of the device, password as a keychain reference.
        let host = cli_json(&f, &["host", "show", name, "--org", "lab", "--json"])?;
        let fields = &host["fields"];
        assert_eq!(fields["address"], "127.0.0.1", "{host}");
        assert_eq!(fields["port"].as_u64(), Some(port), "{host}");
        assert_eq!(
            fields["ssh.password"],
            format!("keychain:lab-{name}"),
            "{host}"
        );
        assert_eq!(host["mac_ok"], true, "{host}");
        let pinned = fields["ssh.host_key_fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_string();

        // The pinned host key is the one the device really presents (real OpenSSH tools).
        let scan = std::process::Command::new("ssh-keyscan")
            .args(["-t", "ed25519", "-p", &port.to_string(), "127.0.0.1"])
            .output()?;
        let mut keygen = std::process::Command::new("ssh-keygen")
            .args(["-lf", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        std::io::Write::write_all(keygen.stdin.as_mut().context("stdin")?, &scan.stdout)?;
        let fp = String::from_utf8(keygen.wait_with_output()?.stdout)?;
        let fp = fp
            .split_whitespace()
            .nth(1)
            .context("ssh-keygen fingerprint")?
            .to_string();
        assert!(fp.starts_with("SHA256:"), "{fp}");
        assert_eq!(
            pinned,
            format!("ssh-ed25519 {fp}"),
            "pinned key differs from the device's"
        );

        // The keychain entry holds exactly the device's password: the broker
        // redacts the device's password file content as that entry.
        let password =
            std::fs::read_to_string(f.home.join("lab").join(format!("{name}.password")))?;
        let red = copilot.ok(&BrokerRequest::Redact {
            text: format!("login {password} ok"),
        })?;
        assert!(
            red.to_string()
                .contains(&format!("{{{{keychain:lab-{name}}}}}")),
            "{red}"
        );
        assert!(!red.to_string().contains(password.trim()), "{red}");
    }
    // The device answers SSH on its port (banner of the simulator).
    let port = devices[0]["port"].as_u64().unwrap_or(0) as u16;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut banner = [0u8; 8];
    std::io::Read::read_exact(&mut s, &mut banner)?;
    assert_eq!(&banner, b"SSH-2.0-");

    let down = f.cli(&["lab", "down"], "")?;
    assert!(down.status.success(), "{down:?}");
    for d in &devices {
        let pid = d["pid"].as_u64().unwrap_or(0) as u32;
        gatehouse_tests::proc::wait_until("device exit", Duration::from_secs(5), || {
            Ok(!gatehouse_tests::proc::is_alive(pid))
        })?;
    }
    let hosts = cli_json(&f, &["host", "list", "--org", "lab", "--json"])?;
    assert_eq!(
        hosts.as_array().map(Vec::len),
        Some(0),
        "hosts left after lab down: {hosts}"
    );
    Ok(())
}
