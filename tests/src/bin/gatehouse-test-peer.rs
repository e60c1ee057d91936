//! A broker client for tests. Installed under a role's binary name
//! (`gatehouse-sessiond`, `gatehouse-copilotd`, `gatehouse-ui`, `gatehouse`)
//! it takes that role; anywhere else it is an unknown executable.
//!
//! ```text
//! gatehouse-test-peer call RUNTIME_DIR     JSON BrokerRequest per stdin line → one JSON line each:
//!                                          {"ok": BrokerResponse} | {"err": BrokerError} | {"transport": "..."}
//!                                          (first line printed: {"role": "..."} or {"transport": "..."});
//!                                          a line {"sessiond": SessiondRequest} goes to sessiond on a
//!                                          fresh connection of this same process; a session it starts
//!                                          is followed to its end: {"ok": …, "events": [SessionEvent…]}
//! gatehouse-test-peer garbage RUNTIME_DIR N [SOCKET]   N concurrent connections (to broker.sock or
//!                                          SOCKET), each handshakes then sends a malformed, truncated
//!                                          or oversized frame; prints "garbage done K"
//! gatehouse-test-peer subscribe RUNTIME_DIR    sends Subscribe, prints {"subscribed": true}, then
//!                                          one JSON line per pushed event until the connection ends
//! gatehouse-test-peer handoff RUNTIME_DIR [self]   connects, then lets a child process (another pid)
//!                                          write the Hello on that connection ("self": write it
//!                                          ourselves, the control); prints the server's first reply
//! gatehouse-test-peer ptrace PID           tries PTRACE_ATTACH, prints "attached" or "refused ERR"
//! gatehouse-test-peer readmem PID          tries to open /proc/PID/mem, prints "opened" or "refused ERR"
//! ```
//!
//! Installed setgid (boundary tests) it first enters the privilege boundary
//! like every Gatehouse binary, unless GATEHOUSE_TEST_PEER_SKIP_BOUNDARY is
//! set (an attacker's preloaded code would not refuse itself).

#![allow(unsafe_code)] // `speak` adopts an inherited file descriptor

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use gatehouse_ipc::broker::{Broker, BrokerRequest};
use gatehouse_ipc::client::{CallError, Client};
use gatehouse_ipc::sessiond::{SessionEvent, Sessiond, SessiondRequest, SessiondResponse};
use gatehouse_ipc::wire::{ClientMessage, Hello, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    // Installed setgid (a boundary test), it enters the boundary like a real
    // binary. GATEHOUSE_TEST_PEER_SKIP_BOUNDARY stands for an attacker's code
    // running before main (a preload), which would not refuse itself.
    let skip = std::env::var_os("GATEHOUSE_TEST_PEER_SKIP_BOUNDARY").is_some();
    if let Err(e) =
        gatehouse_sandbox::boundary::enter().or_else(|e| if skip { Ok(None) } else { Err(e) })
    {
        println!("{{\"transport\": \"boundary: {e}\"}}");
        std::process::exit(1);
    }
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("call") => rt.block_on(call(PathBuf::from(&args[2]))),
        Some("handoff") => handoff(
            &PathBuf::from(&args[2]),
            args.get(3).map(String::as_str) == Some("self"),
        ),
        Some("speak") => {
            use std::os::fd::FromRawFd;
            let fd: i32 = args[2].parse().expect("fd");
            // SAFETY: the parent passed us this open socket (CLOEXEC cleared) and nothing else owns it here.
            let s = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
            speak(s);
        }
        Some("subscribe") => rt.block_on(subscribe(PathBuf::from(&args[2]))),
        Some("garbage") => rt.block_on(garbage(
            PathBuf::from(&args[2]),
            args[3].parse().expect("N"),
            args.get(4).cloned().unwrap_or_else(|| "broker.sock".into()),
        )),
        Some("ptrace") => {
            let pid = nix::unistd::Pid::from_raw(args[2].parse().expect("pid"));
            match nix::sys::ptrace::attach(pid) {
                Ok(()) => {
                    let _ = nix::sys::ptrace::detach(pid, None);
                    println!("attached");
                }
                Err(e) => println!("refused {e}"),
            }
        }
        Some("readmem") => match std::fs::File::open(format!("/proc/{}/mem", args[2])) {
            Ok(_) => println!("opened"),
            Err(e) => println!("refused {e}"),
        },
        _ => {
            eprintln!("usage: see the source");
            std::process::exit(2);
        }
    }
}

fn out(v: serde_json::Value) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{v}");
    let _ = o.flush();
}

async fn call(runtime: PathBuf) {
    let mut client = match Client::<Broker>::connect(&runtime, Duration::from_secs(10)).await {
        Ok(c) => c,
        Err(e) => {
            out(serde_json::json!({ "transport": e.to_string() }));
            return;
        }
    };
    out(serde_json::json!({ "role": client.welcome().role }));
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&line)
            && let Some(req) = m.get("sessiond")
        {
            match serde_json::from_value::<SessiondRequest>(req.clone()) {
                Ok(req) => sessiond_call(&runtime, req).await,
                Err(e) => {
                    out(serde_json::json!({ "transport": format!("bad sessiond line: {e}") }))
                }
            }
            continue;
        }
        let req: BrokerRequest = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                out(serde_json::json!({ "transport": format!("bad request line: {e}") }));
                continue;
            }
        };
        match client.call(req).await {
            Ok(r) => out(serde_json::json!({ "ok": r })),
            Err(CallError::Remote(e)) => out(serde_json::json!({ "err": e })),
            Err(CallError::Transport(e)) => out(serde_json::json!({ "transport": e.to_string() })),
        }
    }
}

/// One sessiond request on its own connection; a started session is
/// followed until it exits.
async fn sessiond_call(runtime: &std::path::Path, req: SessiondRequest) {
    let mut client = match Client::<Sessiond>::connect(runtime, Duration::from_secs(10)).await {
        Ok(c) => c,
        Err(e) => return out(serde_json::json!({ "transport": e.to_string() })),
    };
    client.set_timeout(Duration::from_secs(120));
    match client.call(req).await {
        Ok(r @ SessiondResponse::Started { .. }) => {
            let mut events = Vec::new();
            while let Ok(Some(e)) = client.next_event(Duration::from_secs(120)).await {
                let end = matches!(e, SessionEvent::Exited { .. });
                events.push(e);
                if end {
                    break;
                }
            }
            out(serde_json::json!({ "ok": r, "events": events }));
        }
        Ok(r) => out(serde_json::json!({ "ok": r })),
        Err(CallError::Remote(e)) => out(serde_json::json!({ "err": e })),
        Err(CallError::Transport(e)) => out(serde_json::json!({ "transport": e.to_string() })),
    }
}

async fn subscribe(runtime: PathBuf) {
    let mut client = match Client::<Broker>::connect(&runtime, Duration::from_secs(10)).await {
        Ok(c) => c,
        Err(e) => return out(serde_json::json!({ "transport": e.to_string() })),
    };
    match client.call(BrokerRequest::Subscribe).await {
        Ok(_) => out(serde_json::json!({ "subscribed": true })),
        Err(e) => return out(serde_json::json!({ "transport": e.to_string() })),
    }
    loop {
        match client.next_event(Duration::from_secs(3600)).await {
            Ok(Some(e)) => out(serde_json::json!({ "event": e })),
            Ok(None) => {}
            Err(e) => return out(serde_json::json!({ "transport": e.to_string() })),
        }
    }
}

fn handoff(runtime: &std::path::Path, self_speak: bool) {
    use std::os::fd::AsRawFd;
    let s = std::os::unix::net::UnixStream::connect(runtime.join("broker.sock")).expect("connect");
    // Give the broker time to identify us (we are an installed binary) first.
    std::thread::sleep(Duration::from_millis(200));
    if self_speak {
        return speak(s);
    }
    nix::fcntl::fcntl(
        &s,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .expect("clear CLOEXEC");
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .arg("speak")
        .arg(s.as_raw_fd().to_string())
        .output()
        .expect("child");
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// Writes a Hello on `s` and prints the first reply (or the error).
fn speak(mut s: std::os::unix::net::UnixStream) {
    let hello: ClientMessage<BrokerRequest> = ClientMessage::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        service: "broker.sock".into(),
    });
    let _ = s.write_all(&gatehouse_ipc::codec::encode_frame(&hello).expect("encodes"));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut prefix = [0u8; 4];
    if let Err(e) = s.read_exact(&mut prefix) {
        return println!("no reply: {e}");
    }
    let mut body = vec![0u8; u32::from_le_bytes(prefix).min(1 << 20) as usize];
    if let Err(e) = s.read_exact(&mut body) {
        return println!("short reply: {e}");
    }
    type Reply = gatehouse_ipc::wire::ServerMessage<
        gatehouse_ipc::broker::BrokerResponse,
        gatehouse_ipc::broker::BrokerError,
        gatehouse_ipc::broker::BrokerEvent,
    >;
    match gatehouse_ipc::codec::decode::<Reply>(&body) {
        Ok(m) => println!("{m:?}"),
        Err(e) => println!("undecodable reply: {e}"),
    }
}

/// Each connection: handshake, then one bad frame, then read until closed.
async fn garbage(runtime: PathBuf, n: usize, service: String) {
    let socket = runtime.join(&service);
    let mut tasks = Vec::new();
    for i in 0..n {
        let (socket, service) = (socket.clone(), service.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = tokio::net::UnixStream::connect(&socket).await else {
                return false;
            };
            let hello: ClientMessage<BrokerRequest> = ClientMessage::Hello(Hello {
                protocol: PROTOCOL_VERSION,
                service,
            });
            let frame = gatehouse_ipc::codec::encode_frame(&hello).expect("hello encodes");
            if s.write_all(&frame).await.is_err() {
                return false;
            }
            let bad: Vec<u8> = match i % 5 {
                // Announces 4 GiB.
                0 => u32::MAX.to_le_bytes().to_vec(),
                // Just over the limit.
                1 => ((gatehouse_ipc::MAX_FRAME + 1) as u32)
                    .to_le_bytes()
                    .to_vec(),
                // Truncated: says 100 bytes, sends 3, then closes.
                2 => [100u32.to_le_bytes().as_slice(), b"abc"].concat(),
                // Well-framed garbage.
                3 => [8u32.to_le_bytes().as_slice(), &[0xff; 8]].concat(),
                // An unknown enum variant.
                _ => [3u32.to_le_bytes().as_slice(), &[1, 1, 200]].concat(),
            };
            let _ = s.write_all(&bad).await;
            if i % 5 == 2 {
                let _ = s.shutdown().await;
            }
            let mut sink = vec![0u8; 4096];
            let read = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match s.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            read.is_ok()
        }));
    }
    let mut closed = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            closed += 1;
        }
    }
    println!("garbage done {closed}");
}
