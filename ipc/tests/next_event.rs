//! `Client::next_event(wait)` returns `None` after `wait` when no event
//! comes, even right after frames were read (tokio keeps a socket
//! "readable" until a read meets WouldBlock; trusting that flag made the
//! client block in a frame read until its whole request timeout).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{Broker, BrokerError, BrokerEvent, BrokerResponse};
use gatehouse_ipc::client::Client;
use gatehouse_ipc::codec::encode_frame;
use gatehouse_ipc::wire::{PROTOCOL_VERSION, ServerMessage, Welcome};

type Msg = ServerMessage<BrokerResponse, BrokerError, BrokerEvent>;

#[tokio::test]
async fn next_event_waits_only_as_long_as_asked_after_reading_events() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("broker.sock")).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // The client's Hello: a u32 LE length and that many bytes.
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut hello = vec![0u8; u32::from_le_bytes(len) as usize];
        s.read_exact(&mut hello).unwrap();
        let welcome: Msg = ServerMessage::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            role: PeerRole::Cli,
            server_pid: std::process::id(),
            server_version: "test".into(),
        });
        // Two events in one write, right behind the welcome.
        let mut out = encode_frame(&welcome).unwrap().to_vec();
        out.extend_from_slice(&encode_frame(&Msg::Event(BrokerEvent::SignedIn)).unwrap());
        out.extend_from_slice(&encode_frame(&Msg::Event(BrokerEvent::SignedOut)).unwrap());
        s.write_all(&out).unwrap();
        // Then silence, with the connection open until the client closes it.
        let _ = s.read(&mut [0u8; 1]);
    });
    let mut c = Client::<Broker>::connect(dir.path(), Duration::from_secs(5))
        .await
        .unwrap();
    let wait = Duration::from_millis(300);
    assert_eq!(
        c.next_event(Duration::from_secs(2)).await.unwrap(),
        Some(BrokerEvent::SignedIn)
    );
    assert_eq!(
        c.next_event(Duration::from_secs(2)).await.unwrap(),
        Some(BrokerEvent::SignedOut)
    );
    for _ in 0..3 {
        let t = Instant::now();
        let got = c.next_event(wait).await;
        assert!(matches!(got, Ok(None)), "no event: {got:?}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "waited {:?} for a {wait:?} wait",
            t.elapsed()
        );
    }
    drop(c);
    server.join().unwrap();
}
