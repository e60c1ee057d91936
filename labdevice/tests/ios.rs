//! Cisco IOS simulator driven by the real OpenSSH client.

mod common;

use common::{Lab, PASSWORD};

#[test]
fn exec_show_version_and_errors() {
    let lab = Lab::start("ios", &[]);
    let (code, out, err) = lab.exec("show version");
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("Cisco IOS Software"), "{out}");
    assert!(out.contains("R1 uptime is"), "{out}");
    // Exec runs privileged, abbreviations work.
    let (code, out, _) = lab.exec("sh run");
    assert_eq!(code, 0);
    assert!(out.contains("hostname R1"), "{out}");
    let (code, out, _) = lab.exec("sh run | include hostname");
    assert_eq!((code, out.as_str()), (0, "hostname R1\n"));
    let (code, out, _) = lab.exec("show running-config | section interface GigabitEthernet0/2");
    assert_eq!(code, 0);
    assert!(
        out.starts_with("interface GigabitEthernet0/2\n no ip address\n shutdown\n"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 6, "{out}");
    let (code, out, _) = lab.exec("show ip interface brief | count down");
    assert_eq!(
        (code, out.as_str()),
        (0, "Number of lines which match regexp = 3\n")
    );
    let (code, out, _) = lab.exec("show version | frob x");
    assert_eq!(code, 1);
    assert!(out.contains("% Invalid input"), "{out}");
    let (code, out, _) = lab.exec("show bogus");
    assert_eq!(code, 1);
    assert!(
        out.contains("% Invalid input detected at '^' marker."),
        "{out}"
    );
    assert!(out.starts_with("     ^\n"), "caret under the word: {out:?}");
}

#[test]
fn config_persists_across_sessions() {
    let lab = Lab::start("ios", &[]);
    let mut sh = lab.shell();
    sh.expect("R1>");
    // Not yet privileged: `configure` is not a user-mode command.
    let o = sh.cmd("conf t", "R1>");
    assert!(o.contains("% Invalid input detected"), "{o}");
    sh.send("enable\n");
    sh.expect("Password: ");
    sh.cmd(PASSWORD, "R1#");
    let o = sh.cmd("conf t", "R1(config)#");
    assert!(o.contains("Enter configuration commands"), "{o}");
    sh.cmd("int gi0/1", "R1(config-if)#");
    sh.cmd("description uplink to core", "R1(config-if)#");
    sh.cmd("ip address 10.1.1.1 255.255.255.0", "R1(config-if)#");
    sh.cmd("no shut", "R1(config-if)#");
    let o = sh.cmd("ip address 10.1.1.1 255.0.255.0", "R1(config-if)#");
    assert!(o.contains("% Bad mask"), "{o}");
    let o = sh.cmd("do sh ip int br", "R1(config-if)#");
    assert!(o.contains("GigabitEthernet0/1"), "{o}");
    let o = sh.cmd("s", "R1(config-if)#");
    assert!(o.contains("% Ambiguous command"), "{o}");
    sh.cmd("exit", "R1(config)#");
    sh.cmd("interface Loopback 0", "R1(config-if)#");
    sh.cmd("ip address 192.0.2.1 255.255.255.255", "R1(config-if)#");
    sh.cmd("hostname EDGE1", "EDGE1(config-if)#");
    sh.cmd("end", "EDGE1#");
    let o = sh.cmd("wr", "EDGE1#");
    assert!(o.contains("[OK]"), "{o}");
    // `?` answers at once and gives the line back.
    sh.send("sh?");
    let o = sh.expect("EDGE1#sh");
    assert!(o.contains("show"), "{o}");
    sh.send(" ?");
    let o = sh.expect("EDGE1#sh ");
    assert!(o.contains("  running-config\r\n"), "{o}");
    sh.send("\x15");
    let o = sh.cmd("frobnicate", "EDGE1#");
    assert!(o.contains("% Invalid input detected at '^' marker."), "{o}");
    sh.send("exit\n");
    assert_eq!(sh.wait(), 0);

    // A new session sees the change.
    let mut sh = lab.shell();
    sh.expect("EDGE1>");
    sh.send("en\n");
    sh.expect("Password: ");
    sh.cmd(PASSWORD, "EDGE1#");
    sh.cmd("terminal length 0", "EDGE1#");
    let o = sh.cmd("show running-config", "EDGE1#");
    assert!(o.contains("hostname EDGE1"), "{o}");
    assert!(
        o.contains(
            "interface GigabitEthernet0/1\r\n description uplink to core\r\n ip address 10.1.1.1 255.255.255.0\r\n duplex"
        ),
        "{o}"
    );
    assert!(o.contains("interface Loopback0\r\n ip address 192.0.2.1 255.255.255.255\r\n!"));
    let o = sh.cmd("show ip interface brief", "EDGE1#");
    let gi1 = o
        .lines()
        .find(|l| l.starts_with("GigabitEthernet0/1"))
        .expect("row");
    assert!(gi1.contains("10.1.1.1") && gi1.contains("up"), "{gi1}");
    sh.send("exit\n");
    assert_eq!(sh.wait(), 0);
}

#[test]
fn paging_on_and_off() {
    let lab = Lab::start("ios", &[]);
    let mut sh = lab.shell();
    sh.expect("R1>");
    sh.send("enable\n");
    sh.expect("Password: ");
    sh.cmd(PASSWORD, "R1#");
    sh.send("show running-config\n");
    let page = sh.expect("--More--");
    // The echoed command line, then 24 lines of output.
    let lines = page.split("\r\n").count() - 1;
    assert_eq!(lines, 1 + 24, "{page:?}");
    assert!(!page.contains("\r\nend\r\n"));
    // Space shows the next page, until the end of the listing.
    let mut rest = String::new();
    let mut pages = 1;
    loop {
        sh.send(" ");
        let (n, o) = sh.expect_any(&["--More--", "R1#"]);
        rest.push_str(&o);
        if n == 1 {
            break;
        }
        pages += 1;
        assert!(pages < 10);
    }
    assert!(pages >= 2, "a running-config is several pages");
    assert!(rest.contains("\r\nend\r\n"), "{rest}");
    // Enter shows one more line.
    sh.send("show running-config\n");
    sh.expect("--More--");
    sh.send("\r");
    let (n, o) = sh.expect_any(&["--More--", "R1#"]);
    assert_eq!(n, 0);
    assert_eq!(o.matches("\r\n").count(), 1, "{o:?}");
    sh.send("q");
    sh.expect("R1#");
    // q stops the listing.
    sh.send("show running-config\n");
    sh.expect("--More--");
    sh.send("q");
    let o = sh.expect("R1#");
    assert!(!o.contains("\r\nend\r\n"), "{o}");
    // terminal length 0: no pager.
    sh.cmd("terminal length 0", "R1#");
    let o = sh.cmd("show running-config", "\r\nend\r\nR1#");
    assert!(!o.contains("--More--"), "{o}");
    sh.send("exit\n");
    assert_eq!(sh.wait(), 0);
}

#[test]
fn reload_drops_every_connection_and_restores_startup_config() {
    let lab = Lab::start("ios", &[]);
    // A bystander session that will be dropped too.
    let mut other = lab.shell();
    other.expect("R1>");

    let mut sh = lab.shell();
    sh.expect("R1>");
    sh.send("enable\n");
    sh.expect("Password: ");
    sh.cmd(PASSWORD, "R1#");
    sh.cmd("configure terminal", "(config)#");
    sh.cmd("hostname UNSAVED", "UNSAVED(config)#");
    sh.cmd("end", "UNSAVED#");
    sh.send("reload\n");
    sh.expect("Save? [yes/no]: ");
    sh.send("maybe\n");
    sh.expect("% Please answer 'yes' or 'no'.");
    sh.expect("Save? [yes/no]: ");
    sh.send("no\n");
    sh.expect("Proceed with reload? [confirm]");
    sh.send("\n");
    let (code, _) = sh.wait_open();
    assert_eq!(code, 255, "ssh reports the dropped connection");
    let (code, _) = other.wait_open();
    assert_eq!(code, 255, "the other session is dropped too");

    // Unsaved hostname is gone after the reload.
    let (code, out, _) = lab.exec("show running-config");
    assert_eq!(code, 0);
    assert!(out.contains("hostname R1\n"), "{out}");
    let log = lab.log();
    assert!(log.iter().any(|e| e["kind"] == "reboot"));
    assert!(
        log.iter()
            .filter(|e| e["kind"] == "disconnect" && e["text"] == "dropped by reboot")
            .count()
            >= 2
    );
}

#[test]
fn reload_can_be_cancelled() {
    let lab = Lab::start("ios", &[]);
    let mut sh = lab.shell();
    sh.expect("R1>");
    sh.send("enable\n");
    sh.expect("Password: ");
    sh.cmd(PASSWORD, "R1#");
    sh.send("reload\n");
    sh.expect("[confirm]");
    sh.send("n");
    sh.expect("R1#");
    let o = sh.cmd("show version", "R1#");
    assert!(o.contains("uptime"));
    sh.send("exit\n");
    assert_eq!(sh.wait(), 0);
}

#[test]
fn wrong_enable_password() {
    let lab = Lab::start("ios", &[]);
    let mut sh = lab.shell();
    sh.expect("R1>");
    sh.send("enable\n");
    sh.expect("Password: ");
    let o = sh.cmd("nope", "R1>");
    assert!(o.contains("% Access denied"), "{o}");
    assert!(!o.contains("nope"), "the password is not echoed: {o}");
    sh.send("enable\n");
    sh.expect("Password: ");
    sh.cmd(PASSWORD, "R1#");
    sh.send("exit\n");
    assert_eq!(sh.wait(), 0);
    let raw = std::fs::read_to_string(lab.path("log.jsonl")).unwrap();
    assert!(!raw.contains(PASSWORD), "{raw}");
    assert!(!raw.contains("nope"), "{raw}");
    assert!(
        raw.contains("\"kind\":\"answer\",\"text\":\"(not echoed)\""),
        "{raw}"
    );
}

#[test]
fn log_data_records_bytes_on_arrival() {
    let lab = Lab::start("ios", &["--log-data"]);
    let mut sh = lab.shell();
    sh.expect("R1>");
    sh.send("sho");
    // Wait for the echo: the partial command has arrived and is logged as data.
    sh.expect("sho");
    let partial = lab
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "data")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect::<String>();
    assert_eq!(partial, "sho");
    assert!(!lab.log().iter().any(|e| e["kind"] == "command"));
    sh.cmd("w version", "R1>");
    let log = lab.log();
    let cmd = log.iter().find(|e| e["kind"] == "command").unwrap();
    assert_eq!(cmd["text"], "show version");
    let first_data = log.iter().find(|e| e["kind"] == "data").unwrap();
    assert!(first_data["seq"].as_u64() < cmd["seq"].as_u64());
    sh.send("exit\n");
    assert_eq!(sh.wait(), 0);
}
