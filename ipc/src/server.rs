//! Server side: accept connections, identify peers, handshake, dispatch.
//!
//! Owns: the per-connection state machine and its limits (connection cap,
//! handshake and frame timeouts). One connection's bad input closes that
//! connection only. Must never: call the handler before the peer was
//! identified and the handshake succeeded, or panic on anything a peer sends.

use std::future::Future;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::{
    GenericFilePath, ListenerOptions, ToFsName, traits::tokio::Listener as _,
};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use interprocess::os::unix::uds_local_socket::tokio::{Listener, Stream};
use tokio::sync::{Semaphore, broadcast, mpsc};

use crate::codec::{FrameError, read_frame, write_frame};
use crate::creds::CheckedReader;
use crate::daemon_slots::DaemonSlots;
use crate::peer::{ExeResolver, Installation, PeerIdentity, identify};
use crate::wire::{
    ClientMessage, PROTOCOL_VERSION, ProtocolError, ServerMessage, Service, Welcome,
};

/// Most connections served at once; more are told "busy" and closed.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a new connection has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A service implementation.
pub trait Handler<S: Service>: Send + Sync + 'static {
    /// Handles one request from an identified peer. `conn` is unique per connection.
    fn handle(
        &self,
        peer: &PeerIdentity,
        conn: u64,
        req: S::Request,
    ) -> impl Future<Output = Result<S::Response, S::Error>> + Send;

    /// Whether a request, if it succeeds, attaches an event stream to the
    /// connection (asked before `handle`, which consumes the request).
    fn subscribes(&self, req: &S::Request) -> bool;

    /// The event stream for connection `conn`, taken once after a successful
    /// subscribing request: a shared broadcast, or a stream of this
    /// connection's own (e.g. one session's output) with backpressure.
    fn take_events(&self, conn: u64) -> Option<Events<S::Event>>;

    /// Called when a connection ends (its pending state can be forgotten).
    fn disconnected(&self, _conn: u64) {}
}

/// Events pushed to one connection.
pub enum Events<E> {
    /// Everyone's events (a slow subscriber skips what it missed).
    Broadcast(broadcast::Receiver<E>),
    /// This connection's own stream: when the client reads slowly the
    /// producer waits (bounded channel), nothing is dropped. The stream ends
    /// when the producer drops its sender.
    Channel(mpsc::Receiver<E>),
}

impl<E: Clone> Events<E> {
    /// The next event; `None` once the stream ended.
    pub async fn recv(&mut self) -> Option<E> {
        match self {
            Events::Broadcast(rx) => loop {
                match rx.recv().await {
                    Ok(e) => return Some(e),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("event subscriber lagged, skipped {n} events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            },
            Events::Channel(rx) => rx.recv().await,
        }
    }
}

/// Event streams a handler created while answering a request, waiting for
/// the server to attach them to their connection (`Handler::take_events`).
pub struct PendingStreams<E> {
    streams: std::sync::Mutex<std::collections::HashMap<u64, mpsc::Receiver<E>>>,
}

impl<E> Default for PendingStreams<E> {
    fn default() -> Self {
        PendingStreams {
            streams: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl<E> PendingStreams<E> {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, mpsc::Receiver<E>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new bounded stream for connection `conn`; returns its sender.
    pub fn open(&self, conn: u64, capacity: usize) -> mpsc::Sender<E> {
        let (tx, rx) = mpsc::channel(capacity);
        self.map().insert(conn, rx);
        tx
    }

    /// The stream for `conn`, once (for `Handler::take_events`).
    pub fn take(&self, conn: u64) -> Option<Events<E>> {
        self.map().remove(&conn).map(Events::Channel)
    }

    /// Forgets `conn`'s stream (for `Handler::disconnected`).
    pub fn forget(&self, conn: u64) {
        self.map().remove(&conn);
    }
}

/// Binds `S`'s socket in `runtime_dir` with mode 0600, replacing a stale socket.
pub fn bind<S: Service>(runtime_dir: &Path) -> std::io::Result<Listener> {
    let path = runtime_dir.join(S::SOCKET);
    let name = path.as_path().to_fs_name::<GenericFilePath>()?;
    let listener = ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .try_overwrite(true)
        .create_tokio_as::<Listener>()?;
    // Accepted connections inherit SO_PASSCRED, so even bytes a client writes
    // before we accept it carry the writer's credentials (see `creds`).
    nix::sys::socket::setsockopt(listener.inner(), nix::sys::socket::sockopt::PassCred, &true)
        .map_err(std::io::Error::from)?;
    Ok(listener)
}

/// Serves `S` on `listener` forever.
pub async fn serve<S: Service, H: Handler<S>>(
    listener: Listener,
    install: Installation,
    resolver: Arc<dyn ExeResolver>,
    handler: Arc<H>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let install = Arc::new(install);
    // With the boundary on, daemon roles go to supervised siblings, one each.
    let slots_daemon = Arc::new(install.group.map(|_| DaemonSlots::for_this_process()));
    let mut conn_id = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        conn_id += 1;
        let id = conn_id;
        let (handler, install, slots, resolver, daemons) = (
            handler.clone(),
            install.clone(),
            slots.clone(),
            resolver.clone(),
            slots_daemon.clone(),
        );
        tokio::spawn(async move {
            let Ok(_permit) = slots.clone().try_acquire_owned() else {
                let msg: ServerMessage<S::Response, S::Error, S::Event> =
                    ServerMessage::Refused(ProtocolError::Busy("too many connections".into()));
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), write_frame(&mut &stream, &msg))
                        .await;
                return;
            };
            let daemons = daemons.as_ref().as_ref();
            connection::<S, H>(stream, id, &install, &*resolver, daemons, &*handler).await;
            handler.disconnected(id);
        });
    }
}

type Out<S> = ServerMessage<<S as Service>::Response, <S as Service>::Error, <S as Service>::Event>;

async fn connection<S: Service, H: Handler<S>>(
    stream: Stream,
    conn: u64,
    install: &Installation,
    resolver: &dyn ExeResolver,
    daemons: Option<&DaemonSlots>,
    handler: &H,
) {
    let identified = identify(stream.inner().as_fd(), install, resolver)
        .map_err(|r| r.to_string())
        .and_then(|peer| match daemons.map(|d| d.claim(&peer)) {
            Some(Err(refusal)) => Err(refusal.to_string()),
            Some(Ok(slot)) => Ok((peer, slot)),
            None => Ok((peer, None)),
        });
    // `_slot` holds a daemon role until this connection ends.
    let (peer, _slot) = match identified {
        Ok(p) => p,
        Err(refusal) => {
            tracing::info!("refused peer: {refusal}");
            let msg: Out<S> = ServerMessage::Refused(ProtocolError::PeerRefused(refusal));
            let _ =
                tokio::time::timeout(Duration::from_secs(1), write_frame(&mut &stream, &msg)).await;
            return;
        }
    };
    // From here on every byte must have been written by the identified process.
    let stream = Arc::new(stream);
    let mut input = match CheckedReader::new(stream.clone(), peer.pid, peer.uid) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("cannot check writer credentials: {e}");
            return;
        }
    };
    // Handshake.
    let hello = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        read_frame::<ClientMessage<S::Request>, _>(&mut input),
    )
    .await;
    let refuse = |e: ProtocolError| -> Out<S> { ServerMessage::Refused(e) };
    let reply = match hello {
        Ok(Ok(ClientMessage::Hello(h))) if h.protocol != PROTOCOL_VERSION => {
            Err(refuse(ProtocolError::VersionMismatch {
                server: PROTOCOL_VERSION,
                client: h.protocol,
            }))
        }
        Ok(Ok(ClientMessage::Hello(h))) if h.service != S::SOCKET => {
            Err(refuse(ProtocolError::WrongService {
                served: S::SOCKET.into(),
                requested: h.service,
            }))
        }
        Ok(Ok(ClientMessage::Hello(_))) => Ok(()),
        Ok(Ok(ClientMessage::Request { .. })) => Err(refuse(ProtocolError::HelloExpected)),
        Ok(Err(e)) => Err(refuse(frame_error(e))),
        Err(_) => Err(refuse(ProtocolError::Malformed(
            "handshake timed out".into(),
        ))),
    };
    if let Err(msg) = reply {
        let _ =
            tokio::time::timeout(Duration::from_secs(1), write_frame(&mut &*stream, &msg)).await;
        return;
    }
    let welcome: Out<S> = ServerMessage::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        role: peer.role,
        server_pid: std::process::id(),
        server_version: env!("CARGO_PKG_VERSION").to_string(),
    });
    if write_frame(&mut &*stream, &welcome).await.is_err() {
        return;
    }

    // Requests: a reader task feeds decoded frames; this loop answers them and forwards events.
    let (tx, mut rx) = mpsc::channel::<Result<ClientMessage<S::Request>, FrameError>>(4);
    let reader = {
        tokio::spawn(async move {
            loop {
                let frame = read_frame::<ClientMessage<S::Request>, _>(&mut input).await;
                let stop = frame.is_err();
                if tx.send(frame).await.is_err() || stop {
                    break;
                }
            }
        })
    };
    let mut events: Option<Events<S::Event>> = None;
    loop {
        let next = async {
            match events.as_mut() {
                Some(ev) => ev.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = rx.recv() => {
                let out: Out<S> = match frame {
                    None | Some(Err(FrameError::Closed)) => break,
                    Some(Err(e)) => {
                        let msg: Out<S> = ServerMessage::Malformed(frame_error(e));
                        let _ = write_frame(&mut &*stream, &msg).await;
                        break;
                    }
                    Some(Ok(ClientMessage::Hello(_))) => {
                        let msg: Out<S> = ServerMessage::Malformed(ProtocolError::Malformed("second Hello".into()));
                        let _ = write_frame(&mut &*stream, &msg).await;
                        break;
                    }
                    Some(Ok(ClientMessage::Request { id, body })) => {
                        let subscribe = handler.subscribes(&body);
                        let result = handler.handle(&peer, conn, body).await;
                        // A new stream replaces the connection's current one (a
                        // client reads one session at a time; the old stream may
                        // have ended without the loop having noticed yet).
                        if subscribe
                            && result.is_ok()
                            && let Some(new) = handler.take_events(conn)
                        {
                            events = Some(new);
                        }
                        ServerMessage::Reply { id, result }
                    }
                };
                if write_frame(&mut &*stream, &out).await.is_err() {
                    break;
                }
            }
            event = next => {
                let Some(event) = event else {
                    // The stream ended: the connection goes back to plain requests.
                    events = None;
                    continue;
                };
                let out: Out<S> = ServerMessage::Event(event);
                if write_frame(&mut &*stream, &out).await.is_err() {
                    break;
                }
            }
        }
    }
    reader.abort();
}

fn frame_error(e: FrameError) -> ProtocolError {
    match e {
        FrameError::TooLarge { len, max } => ProtocolError::FrameTooLarge {
            len: len as u64,
            max: max as u64,
        },
        other => ProtocolError::Malformed(other.to_string()),
    }
}
