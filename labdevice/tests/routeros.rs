//! MikroTik RouterOS simulator driven by the real OpenSSH client.

mod common;

use common::Lab;

const ROOT: &str = "[admin@MT1] > ";

#[test]
fn exec_system_resource_print() {
    let lab = Lab::start("routeros", &[]);
    let (code, out, err) = lab.exec("/system resource print");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("uptime:"), "{out}");
    assert!(out.contains("version: 7."), "{out}");
    let (code, out, _) = lab.exec("/sys res pr");
    assert_eq!(code, 0);
    assert!(out.contains("board-name"), "{out}");
    let (code, out, _) = lab.exec("/frob");
    assert_eq!(code, 1);
    assert_eq!(out.trim(), "bad command name frob (line 1 column 2)");
}

#[test]
fn add_shows_in_next_print_in_new_session() {
    let lab = Lab::start("routeros", &[]);
    let mut sh = lab.shell();
    sh.expect(ROOT);
    sh.cmd("/ip address add address=10.0.0.1/24 interface=ether1", ROOT);
    sh.cmd("/ip addr", "[admin@MT1] /ip address> ");
    sh.cmd(
        "add addr=10.0.1.1/24 int=ether2 comment=\"lab net\"",
        "/ip address> ",
    );
    sh.cmd("add address=10.0.2.1/24 interface=ether3", "/ip address> ");
    let o = sh.cmd("add address=10.0.3.1/24 interface=ether9", "/ip address> ");
    assert!(
        o.contains("input does not match any value of interface"),
        "{o}"
    );
    let o = sh.cmd("remove [find address=\"10.0.2.1/24\"]", "/ip address> ");
    assert!(!o.contains("failure"), "{o}");
    let o = sh.cmd("bogus", "/ip address> ");
    assert!(
        o.contains("bad command name bogus (line 1 column 1)"),
        "{o}"
    );
    sh.cmd(
        "/system identity set name=Core1",
        "[admin@Core1] /ip address> ",
    );
    sh.cmd("/", "[admin@Core1] > ");
    sh.send("quit\n");
    assert_eq!(sh.wait(), 0);

    let mut sh = lab.shell();
    sh.expect("[admin@Core1] > ");
    let o = sh.cmd("/ip address print", "[admin@Core1] > ");
    assert!(o.contains("10.0.0.1/24") && o.contains("ether1"), "{o}");
    assert!(o.contains(";;; lab net"), "{o}");
    assert!(!o.contains("10.0.2.1/24"), "{o}");
    sh.cmd("/ip address remove 0", "[admin@Core1] > ");
    let o = sh.cmd("/ip address print", "[admin@Core1] > ");
    assert!(!o.contains("10.0.0.1/24"), "{o}");
    let o = sh.cmd("/export", "[admin@Core1] > ");
    assert!(o.contains("/ip address\r\nadd address=10.0.1.1/24 comment=\"lab net\" interface=ether2 network=10.0.1.0"), "{o}");
    assert!(o.contains("/system identity\r\nset name=Core1"), "{o}");
    let o = sh.cmd("/system identity print", "[admin@Core1] > ");
    assert!(o.contains("name: Core1"), "{o}");
    let o = sh.cmd("/interface print", "[admin@Core1] > ");
    assert!(o.contains("ether5"), "{o}");
    sh.send("/quit\n");
    assert_eq!(sh.wait(), 0);
}

#[test]
fn paging_on_and_off() {
    let lab = Lab::start("routeros", &[]);
    let mut sh = lab.shell();
    sh.expect(ROOT);
    sh.cmd("/ip address", "/ip address> ");
    for i in 0..40 {
        sh.cmd(
            &format!("add address=10.9.{i}.1/24 interface=ether1"),
            "/ip address> ",
        );
    }
    sh.send("print\n");
    let page = sh.expect("-- [Q quit|D dump|down]");
    assert!(page.contains("10.9.0.1/24"));
    assert!(!page.contains("10.9.39.1/24"));
    sh.send("d");
    let o = sh.expect("/ip address> ");
    assert!(o.contains("10.9.39.1/24"), "{o}");
    // q stops.
    sh.send("print\n");
    sh.expect("-- [Q quit|D dump|down]");
    sh.send("q");
    let o = sh.expect("/ip address> ");
    assert!(!o.contains("10.9.39.1/24"), "{o}");
    // without-paging prints everything at once.
    let o = sh.cmd("print without-paging", "/ip address> ");
    assert!(!o.contains("-- [Q quit"), "{o}");
    assert!(o.contains("10.9.39.1/24"), "{o}");
    sh.send("/quit\n");
    assert_eq!(sh.wait(), 0);
}

#[test]
fn reboot_asks_and_drops_the_connection() {
    let lab = Lab::start("routeros", &[]);
    let mut sh = lab.shell();
    sh.expect(ROOT);
    sh.send("/system reboot\n");
    sh.expect("Reboot, yes? [y/N]: ");
    sh.send("n");
    sh.expect(ROOT);
    sh.send("/system reboot\n");
    sh.expect("Reboot, yes? [y/N]: ");
    sh.send("y");
    let (code, out) = sh.wait_open();
    assert_eq!(code, 255, "{out}");
    assert!(out.contains("system will reboot shortly"), "{out}");
    // Configuration survives a RouterOS reboot; the device is reachable again.
    let (code, out, _) = lab.exec("/system identity print");
    assert_eq!(code, 0);
    assert!(out.contains("name: MT1"));
}
