//! A small program the harness's own tests run as the test user.
//!
//! ```text
//! gatehouse-harness-probe whoami          print uid/gid/groups/exe/cwd/env lines, exit 0
//! gatehouse-harness-probe hold            read stdin to EOF into the heap, print "ready ADDR", sleep
//! gatehouse-harness-probe hold-secret     read stdin into a memfd_secret page, print "ready ADDR"
//!                                         (or "unsupported ERRNO"), sleep
//! gatehouse-harness-probe listen PATH MS  bind a Unix socket at PATH after MS ms, sleep
//! gatehouse-harness-probe exit CODE MS    exit with CODE after MS ms
//! gatehouse-harness-probe sleep           sleep until killed
//! gatehouse-harness-probe ensure-user NAME  users::ensure_user(NAME), print "uid=N"
//! ```
#![allow(unsafe_code)] // memfd_secret + mmap in hold-secret

use std::io::{Read, Write};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("whoami") => whoami(),
        Some("hold") => {
            let mut held = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut held)
                .expect("stdin");
            ready(held.as_ptr() as usize);
            sleep_forever(&held);
        }
        Some("hold-secret") => hold_secret(),
        Some("listen") => {
            std::thread::sleep(Duration::from_millis(args[3].parse().expect("ms")));
            let l = std::os::unix::net::UnixListener::bind(&args[2]).expect("bind");
            ready(0);
            sleep_forever(&l);
        }
        Some("exit") => {
            std::thread::sleep(Duration::from_millis(args[3].parse().expect("ms")));
            std::process::exit(args[2].parse().expect("code"));
        }
        Some("sleep") => sleep_forever(&()),
        Some("ensure-user") => {
            let u = gatehouse_tests::users::ensure_user(&args[2]).expect("ensure_user");
            println!("uid={}", u.uid);
        }
        _ => {
            eprintln!("usage: see the source");
            std::process::exit(2);
        }
    }
}

fn ready(addr: usize) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {addr:#x}").unwrap();
    out.flush().unwrap();
}

fn sleep_forever<T>(keep: &T) -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
        std::hint::black_box(keep);
    }
}

fn whoami() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    for l in status.lines() {
        for k in ["Uid:", "Gid:", "Groups:"] {
            if let Some(v) = l.strip_prefix(k) {
                println!("{}={}", k.trim_end_matches(':').to_lowercase(), v.trim());
            }
        }
    }
    println!(
        "exe={}",
        std::fs::read_link("/proc/self/exe").unwrap().display()
    );
    println!("cwd={}", std::env::current_dir().unwrap().display());
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    for (k, v) in env {
        println!("env:{k}={v}");
    }
}

fn hold_secret() {
    // SAFETY: plain syscalls; the mapping is used only through the slice
    // below, which lives until the process exits.
    let fd = unsafe { libc::syscall(libc::SYS_memfd_secret, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        println!("unsupported {}", e.raw_os_error().unwrap_or(0));
        sleep_forever(&());
    }
    let fd = fd as libc::c_int;
    const LEN: usize = 4096;
    let page: &mut [u8] = unsafe {
        if libc::ftruncate(fd, LEN as libc::off_t) != 0 {
            panic!("ftruncate: {}", std::io::Error::last_os_error());
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if p == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            println!("unsupported {}", e.raw_os_error().unwrap_or(0));
            sleep_forever(&());
        }
        std::slice::from_raw_parts_mut(p.cast::<u8>(), LEN)
    };
    // Read straight into the secret page: no buffered copy elsewhere.
    let mut n = 0;
    loop {
        let r = unsafe { libc::read(0, page[n..].as_mut_ptr().cast(), LEN - n) };
        if r < 0 {
            panic!("read: {}", std::io::Error::last_os_error());
        }
        if r == 0 || n + r as usize == LEN {
            break;
        }
        n += r as usize;
    }
    ready(page.as_ptr() as usize);
    sleep_forever(&page);
}
