//! A server that refuses a client before reading its Hello: the client must
//! report the refusal, whether its Hello was sent before or after the close.

use std::io::Write;
use std::time::Duration;

use gatehouse_ipc::broker::{Broker, BrokerError, BrokerEvent, BrokerRequest, BrokerResponse};
use gatehouse_ipc::client::{Client, ClientError};
use gatehouse_ipc::codec::encode_frame;
use gatehouse_ipc::wire::{ProtocolError, ServerMessage};

#[tokio::test]
async fn refusal_before_hello_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("broker.sock")).unwrap();
    let server = std::thread::spawn(move || {
        for i in 0..40 {
            let (mut s, _) = listener.accept().unwrap();
            if i % 2 == 1 {
                std::thread::sleep(Duration::from_millis(5));
            }
            let msg: ServerMessage<BrokerResponse, BrokerError, BrokerEvent> =
                ServerMessage::Refused(ProtocolError::PeerRefused(
                    "not an installed binary".into(),
                ));
            s.write_all(&encode_frame(&msg).unwrap()).unwrap();
        }
    });
    for _ in 0..40 {
        match Client::<Broker>::connect(dir.path(), Duration::from_secs(5)).await {
            Err(ClientError::Refused {
                error: ProtocolError::PeerRefused(m),
                ..
            }) => assert!(m.contains("installed")),
            Err(e) => panic!("refusal not reported: {e}"),
            Ok(_) => panic!("connected"),
        }
    }
    server.join().unwrap();
    let _ = BrokerRequest::Status;
}
