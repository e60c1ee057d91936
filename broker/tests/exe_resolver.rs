//! The broker's peer-executable helper, run as the real binary in
//! `--exe-resolver` mode: right answers for live processes, errors for dead
//! ones, and answers for one pid never taken for another.

use gatehouse_ipc::exe_resolver::HelperResolver;
use gatehouse_ipc::peer::ExeResolver;

#[test]
fn helper_names_executables_and_refuses_dead_pids() {
    let helper = HelperResolver::spawn(env!("CARGO_BIN_EXE_gatehouse-broker").as_ref())
        .expect("helper starts");
    let me = helper
        .resolve(std::process::id() as i32)
        .expect("own pid resolves");
    assert_eq!(me.path, std::fs::read_link("/proc/self/exe").unwrap());
    // A child that has exited and been reaped: no executable to name.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    assert!(helper.resolve(pid).is_err(), "a dead pid resolved");
    // Interleaved questions about different processes each get their own answer.
    let sleeper = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    for _ in 0..20 {
        let s = helper.resolve(sleeper.id() as i32).expect("sleep resolves");
        assert!(s.path.ends_with("sleep"), "{:?}", s.path);
        let m = helper
            .resolve(std::process::id() as i32)
            .expect("self resolves");
        assert_eq!(m.path, me.path);
    }
    let mut sleeper = sleeper;
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}
