//! The device shell driver (and the SSH client) against the lab device
//! simulator (gatehouse-labdevice, started in this process on loopback):
//! RouterOS and IOS prompts, paging off, print/show output, menus and
//! config mode, an `add` visible in the next `print`, device errors,
//! questions, and reboot/reload dropping the connection. The simulator logs
//! every byte it receives (`log_data`), so the tests also check that the
//! driver sent exactly the command lines and nothing else.

mod ssh_support;

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_labdevice::device::Vendor as LabVendor;
use gatehouse_labdevice::{Options, RunningDevice};
use gatehouse_policy::Vendor;
use gatehouse_sessiond::driver::{
    self, AnswerKind, DeviceOutput, DeviceShell, DriverError, PromptMatch,
};
use gatehouse_sessiond::ssh::{self, AuthMethod, Connection, Target};
use ssh_support::{TestCreds, exec, random_password};
use zeroize::Zeroizing;

const T: Duration = Duration::from_secs(20);

struct Lab {
    dev: Option<RunningDevice>,
    vendor: Vendor,
    password: String,
    fingerprint: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Lab {
    async fn start(vendor: Vendor, hostname: &str, tweak: impl FnOnce(&mut Options)) -> Lab {
        let lab_vendor = match vendor {
            Vendor::RouterOs => LabVendor::RouterOs,
            Vendor::Ios => LabVendor::Ios,
            other => panic!("the lab has no {other}"),
        };
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.jsonl");
        let password = random_password();
        let key = gatehouse_labdevice::hostkey::generate().unwrap();
        // The pin, computed by ssh-keygen (not by the code under test).
        let fingerprint =
            gatehouse_tests::sshd::fingerprint_of_line(&key.public_key().to_openssh().unwrap())
                .unwrap();
        let mut opts = Options::new(lab_vendor, hostname, "admin", &password);
        opts.host_key = Some(key);
        opts.log = Some(log.clone());
        opts.log_data = true;
        tweak(&mut opts);
        let dev = gatehouse_labdevice::start(opts).await.unwrap();
        Lab {
            dev: Some(dev),
            vendor,
            password,
            fingerprint,
            log,
            _dir: dir,
        }
    }

    fn target(&self) -> Target {
        Target {
            host_name: "lab".into(),
            address: "127.0.0.1".into(),
            port: self.dev.as_ref().unwrap().addr.port(),
            username: driver::login_name(self.vendor, "admin"),
            pinned_host_key: Some(self.fingerprint.clone()),
        }
    }

    async fn connect(&self) -> Connection {
        let mut creds = TestCreds::password(&self.password);
        ssh::connect(&self.target(), &mut creds, T).await.unwrap()
    }

    /// The event log as (session, kind, text).
    fn events(&self) -> Vec<(u64, String, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["session"].as_u64().unwrap(),
                    v["kind"].as_str().unwrap().to_string(),
                    v["text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Every chunk of bytes the device received, in order.
    fn data_received(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|(_, k, _)| k == "data")
            .map(|(_, _, t)| t)
            .collect()
    }

    async fn stop(mut self) {
        if let Some(d) = self.dev.take() {
            d.shutdown().await;
        }
    }
}

fn completed(out: DeviceOutput) -> (String, String) {
    match out {
        DeviceOutput::Completed { text, prompt } => (text, prompt),
        other => panic!("expected the prompt back, got {other:?}"),
    }
}

/// Runs `cmd` and expects the prompt `prompt` back; returns the text.
async fn run(sh: &mut DeviceShell, cmd: &str, prompt: &str) -> String {
    let (text, got) = completed(sh.run(cmd, T).await.unwrap());
    assert_eq!(got, prompt, "prompt after {cmd:?} (output {text:?})");
    assert_eq!(sh.prompt(), prompt);
    assert!(
        !text.contains(prompt.trim_end()),
        "prompt left in output of {cmd:?}: {text:?}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routeros_prompt_print_add_menus_paging_and_errors() {
    let lab = Lab::start(Vendor::RouterOs, "R1", |_| {}).await;
    let conn = lab.connect().await;
    assert_eq!(conn.auth_method(), AuthMethod::Password);
    let mut sh = DeviceShell::open(&conn, Vendor::RouterOs, T).await.unwrap();
    assert_eq!(sh.prompt(), "[admin@R1] > ");
    // Opening sent one Enter (the prompt must come back: it is learned).
    assert_eq!(lab.data_received(), vec!["\r".to_string()]);
    assert_eq!(sh.prompt_match(), &PromptMatch::Dialect);

    let mut sent = vec!["\r".to_string()];
    let mut go = async |sh: &mut DeviceShell, cmd: &str, prompt: &str| {
        sent.push(format!("{cmd}\r"));
        run(sh, cmd, prompt).await
    };

    let text = go(&mut sh, "/interface print", "[admin@R1] > ").await;
    for i in 1..=5 {
        assert!(text.contains(&format!("ether{i}")), "{text}");
    }
    assert!(!text.contains("/interface print"), "echo left: {text}");
    assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");

    let text = go(
        &mut sh,
        "/ip address add address=192.0.2.1/24 interface=ether2",
        "[admin@R1] > ",
    )
    .await;
    assert_eq!(text, "");
    let text = go(&mut sh, "/ip address print", "[admin@R1] > ").await;
    assert!(
        text.lines()
            .any(|l| l.contains("192.0.2.1/24") && l.contains("ether2")),
        "{text}"
    );

    // Menus change the prompt.
    go(&mut sh, "/ip address", "[admin@R1] /ip address> ").await;
    for i in 0..40 {
        let t = go(
            &mut sh,
            &format!("add address=10.9.{i}.1/24 interface=ether1"),
            "[admin@R1] /ip address> ",
        )
        .await;
        assert_eq!(t, "");
    }
    // 41 entries, more than a 24-row terminal: no pager, every line there.
    let text = go(&mut sh, "print", "[admin@R1] /ip address> ").await;
    assert!(!text.contains("-- [Q quit"), "{text}");
    for i in 0..40 {
        assert!(text.contains(&format!("10.9.{i}.1/24")), "10.9.{i} missing");
    }
    assert!(text.lines().count() > 41, "{text}");

    let text = go(&mut sh, "/frobnicate", "[admin@R1] /ip address> ").await;
    assert_eq!(text, "bad command name frobnicate (line 1 column 2)");

    // The identity changes the prompt's base: still recognised.
    go(
        &mut sh,
        "/system identity set name=Edge7",
        "[admin@Edge7] /ip address> ",
    )
    .await;
    go(&mut sh, "/", "[admin@Edge7] > ").await;

    // Nothing multi-line is sent.
    let err = sh
        .run("/ip address print\r/system reboot", T)
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::NotOneLine(_)), "{err:?}");
    assert!(matches!(
        sh.answer("y", T).await,
        Err(DriverError::NoQuestion)
    ));

    // The device received exactly our command lines: no pager keys, no extras.
    assert_eq!(lab.data_received(), sent);

    // `/quit` closes the shell channel (not the connection).
    match sh.run("/quit", T).await.unwrap() {
        DeviceOutput::ShellClosed { status, .. } => assert_eq!(status, Some(0)),
        other => panic!("expected the shell to close, got {other:?}"),
    }
    assert!(matches!(
        sh.run("/interface print", T).await,
        Err(DriverError::ShellEnded(_))
    ));
    assert!(!conn.is_closed());
    let mut sh = DeviceShell::open(&conn, Vendor::RouterOs, T).await.unwrap();
    run(&mut sh, "/system identity print", "[admin@Edge7] > ").await;
    sh.close().await;
    conn.close().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routeros_reboot_question_then_dropped_connection() {
    let lab = Lab::start(Vendor::RouterOs, "R1", |_| {}).await;
    let conn = lab.connect().await;
    let mut sh = DeviceShell::open(&conn, Vendor::RouterOs, T).await.unwrap();

    // Declining keeps the session.
    match sh.run("/system reboot", T).await.unwrap() {
        DeviceOutput::Question {
            text,
            question,
            kind,
        } => {
            assert_eq!(text, "");
            assert_eq!(question, "Reboot, yes? [y/N]:");
            assert_eq!(kind, AnswerKind::Key);
        }
        other => panic!("expected the reboot question, got {other:?}"),
    }
    let (_, prompt) = completed(sh.answer("n", T).await.unwrap());
    assert_eq!(prompt, "[admin@R1] > ");

    assert!(matches!(
        sh.run("/system reboot", T).await.unwrap(),
        DeviceOutput::Question { .. }
    ));
    match sh.answer("y", T).await.unwrap() {
        DeviceOutput::ConnectionDropped { text, reason } => {
            assert_eq!(text, "system will reboot shortly");
            if let Some(r) = reason {
                assert!(r.contains("device rebooting"), "{r}");
            }
        }
        other => panic!("expected the connection to drop, got {other:?}"),
    }
    let err = sh.run("/interface print", T).await.unwrap_err();
    assert!(matches!(err, DriverError::ShellEnded(_)), "{err:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(conn.is_closed());
    assert_eq!(
        conn.disconnect_reason()
            .as_deref()
            .map(|r| r.contains("device rebooting")),
        Some(true),
        "{:?}",
        conn.disconnect_reason()
    );
    // The device answered exactly: the command, "n", the command, "y".
    assert_eq!(
        lab.data_received(),
        vec!["\r", "/system reboot\r", "n", "/system reboot\r", "y"]
    );

    // It comes back (no downtime simulated) with its configuration.
    let conn = lab.connect().await;
    let mut sh = DeviceShell::open(&conn, Vendor::RouterOs, T).await.unwrap();
    run(&mut sh, "/system identity print", "[admin@R1] > ").await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ios_enable_show_config_mode_errors_and_reload() {
    let lab = Lab::start(Vendor::Ios, "R1", |_| {}).await;
    let conn = lab.connect().await;
    let mut sh = DeviceShell::open(&conn, Vendor::Ios, T).await.unwrap();
    assert_eq!(sh.prompt(), "R1>");
    // Open sent only the paging set-up.
    let mut sent: Vec<String> = vec![
        "\r".into(),
        "terminal length 0\r".into(),
        "terminal width 511\r".into(),
    ];
    assert_eq!(lab.data_received(), sent);

    let text = run(&mut sh, "show version", "R1>").await;
    assert!(text.starts_with("Cisco IOS Software"), "{text}");
    sent.push("show version\r".into());

    match sh.run("enable", T).await.unwrap() {
        DeviceOutput::Question { question, kind, .. } => {
            assert_eq!(question, "Password:");
            assert_eq!(kind, AnswerKind::Secret);
        }
        other => panic!("expected the enable password question, got {other:?}"),
    }
    let (text, prompt) = completed(
        sh.answer_secret(Zeroizing::new(lab.password.clone()), T)
            .await
            .unwrap(),
    );
    assert_eq!(prompt, "R1#");
    assert!(!text.contains(&lab.password));
    sent.push("enable\r".into());
    sent.push(format!("{}\r", lab.password));

    // More than a page (24 lines) without --More--.
    let text = run(&mut sh, "show running-config", "R1#").await;
    sent.push("show running-config\r".into());
    assert!(text.starts_with("Building configuration..."), "{text}");
    assert!(text.ends_with("end"), "{text}");
    assert!(text.lines().count() > 30, "{text}");
    assert!(!text.contains("More"), "{text}");

    let text = run(&mut sh, "configure terminal", "R1(config)#").await;
    assert_eq!(
        text,
        "Enter configuration commands, one per line.  End with CNTL/Z."
    );
    run(&mut sh, "interface Loopback5", "R1(config-if)#").await;
    let t = run(
        &mut sh,
        "ip address 10.5.5.5 255.255.255.255",
        "R1(config-if)#",
    )
    .await;
    assert_eq!(t, "");
    run(&mut sh, "end", "R1#").await;
    let text = run(&mut sh, "show running-config | section Loopback5", "R1#").await;
    assert!(text.contains("interface Loopback5"), "{text}");
    assert!(
        text.contains("ip address 10.5.5.5 255.255.255.255"),
        "{text}"
    );
    sent.extend(
        [
            "configure terminal",
            "interface Loopback5",
            "ip address 10.5.5.5 255.255.255.255",
            "end",
            "show running-config | section Loopback5",
        ]
        .map(|c| format!("{c}\r")),
    );

    let text = run(&mut sh, "frobnicate now", "R1#").await;
    assert!(
        text.contains("% Invalid input detected at '^' marker."),
        "{text}"
    );
    assert_eq!(text.lines().next().map(str::trim), Some("^"), "{text}");

    // A hostname change is followed (new prompt base).
    run(&mut sh, "configure terminal", "R1(config)#").await;
    run(&mut sh, "hostname LAB2", "LAB2(config)#").await;
    run(&mut sh, "end", "LAB2#").await;
    sent.extend(
        [
            "frobnicate now",
            "configure terminal",
            "hostname LAB2",
            "end",
        ]
        .map(|c| format!("{c}\r")),
    );

    // reload: save? no → [confirm] → Enter → the connection drops.
    match sh.run("reload", T).await.unwrap() {
        DeviceOutput::Question { question, kind, .. } => {
            assert_eq!(
                question,
                "System configuration has been modified. Save? [yes/no]:"
            );
            assert_eq!(kind, AnswerKind::Line);
        }
        other => panic!("expected the save question, got {other:?}"),
    }
    match sh.answer("no", T).await.unwrap() {
        DeviceOutput::Question { question, kind, .. } => {
            assert_eq!(question, "Proceed with reload? [confirm]");
            assert_eq!(kind, AnswerKind::Key);
        }
        other => panic!("expected the confirm question, got {other:?}"),
    }
    let out = sh.answer("", T).await.unwrap();
    assert!(
        matches!(out, DeviceOutput::ConnectionDropped { .. }),
        "{out:?}"
    );
    sent.extend(["reload\r", "no\r", "\r"].map(String::from));
    assert_eq!(lab.data_received(), sent);

    // Back with the startup configuration: the unsaved changes are gone.
    let conn = lab.connect().await;
    let mut sh = DeviceShell::open(&conn, Vendor::Ios, T).await.unwrap();
    assert_eq!(sh.prompt(), "R1>");
    let _ = run(&mut sh, "show ip interface brief", "R1>").await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_logins_keyboard_interactive_and_publickey_and_exec() {
    // Keyboard-interactive only, as many network devices do.
    let lab = Lab::start(Vendor::Ios, "R1", |o| {
        o.password_auth = false;
        o.keyboard_interactive = true;
    })
    .await;
    let conn = lab.connect().await;
    assert_eq!(conn.auth_method(), AuthMethod::KeyboardInteractive);
    let r = exec(&conn, "show clock", 4).await;
    assert_eq!(r.status, Some(0));
    let r = exec(&conn, "show bogus", 4).await;
    assert_eq!(r.status, Some(1));
    assert!(
        r.stdout_text().contains("% Invalid input"),
        "{}",
        r.stdout_text()
    );
    lab.stop().await;

    // Public key only.
    let client = gatehouse_labdevice::hostkey::generate().unwrap();
    let public = client.public_key().clone();
    let lab = Lab::start(Vendor::RouterOs, "R1", move |o| {
        o.password_auth = false;
        o.authorized_keys = vec![public];
    })
    .await;
    let mut creds = TestCreds::password("unused").with_key(client);
    let conn = ssh::connect(&lab.target(), &mut creds, T).await.unwrap();
    assert_eq!(conn.auth_method(), AuthMethod::PublicKey);
    let mut sh = DeviceShell::open(&conn, Vendor::RouterOs, T).await.unwrap();
    run(&mut sh, "/system identity print", "[admin@R1] > ").await;

    // Linux hosts are not driven through a shell.
    assert!(!driver::uses_shell(Vendor::Linux));
    let err = DeviceShell::open(&conn, Vendor::Linux, T)
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::NotAShellVendor(Vendor::Linux)));
    lab.stop().await;
}

/// A quirky IOS device, logged in, its prompt learned.
async fn quirky_ios(quirks: gatehouse_labdevice::device::Quirks) -> (Lab, Connection, DeviceShell) {
    let lab = Lab::start(Vendor::Ios, "R1", |o| o.quirks = quirks).await;
    let conn = lab.connect().await;
    let sh = DeviceShell::open(&conn, Vendor::Ios, T).await.unwrap();
    assert_eq!(sh.prompt(), "R1>");
    assert_eq!(sh.prompt_match(), &PromptMatch::Dialect);
    (lab, conn, sh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_text_inside_output_does_not_end_a_command() {
    let (lab, conn, mut sh) = quirky_ios(gatehouse_labdevice::device::Quirks {
        prompt_in_output: true,
        ..Default::default()
    })
    .await;
    // The device prints "R1>" as whole lines before and after the output.
    let (text, prompt) = completed(sh.run("show version", T).await.unwrap());
    assert_eq!(prompt, "R1>");
    assert!(text.lines().any(|l| l == "R1>"), "{text:?}");
    assert!(text.contains("Cisco IOS"), "output cut short: {text:?}");
    assert!(text.contains("Configuration register"), "{text:?}");
    // The next command's output is its own (nothing left over).
    let (text, _) = completed(sh.run("show clock", T).await.unwrap());
    assert!(!text.contains("Cisco IOS"), "{text:?}");
    sh.close().await;
    conn.close().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_that_stays_on_is_paged_through_and_removed() {
    let (lab, conn, mut sh) = quirky_ios(gatehouse_labdevice::device::Quirks {
        pager_ignores_length_0: true,
        ..Default::default()
    })
    .await;
    assert!(matches!(
        sh.run("enable", T).await.unwrap(),
        DeviceOutput::Question { .. }
    ));
    let (_, prompt) = completed(
        sh.answer_secret(Zeroizing::new(lab.password.clone()), T)
            .await
            .unwrap(),
    );
    assert_eq!(prompt, "R1#");
    let (text, prompt) = completed(sh.run("show running-config", T).await.unwrap());
    assert_eq!(prompt, "R1#");
    assert!(!text.contains("More"), "pager left in output: {text:?}");
    assert!(text.lines().count() > 24, "one page only: {text:?}");
    assert!(text.trim_end().ends_with("end"), "{text:?}");
    // The pager was answered with spaces, nothing else.
    let pager_keys: Vec<String> = lab
        .data_received()
        .into_iter()
        .filter(|d| d == " ")
        .collect();
    assert!(!pager_keys.is_empty());
    sh.close().await;
    conn.close().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_devices_are_waited_for_past_the_quiet_time() {
    // 300 ms between lines: longer than the 250 ms quiet time.
    let (lab, conn, mut sh) = quirky_ios(gatehouse_labdevice::device::Quirks {
        line_delay_ms: 300,
        ..Default::default()
    })
    .await;
    let (text, prompt) = completed(sh.run("show clock", T).await.unwrap());
    assert_eq!(prompt, "R1>");
    assert!(!text.is_empty(), "{text:?}");
    let (text, prompt) = completed(sh.run("show version", T).await.unwrap());
    assert_eq!(prompt, "R1>");
    assert!(
        text.contains("Configuration register"),
        "cut short: {text:?}"
    );
    sh.close().await;
    conn.close().await;
    lab.stop().await;
}
