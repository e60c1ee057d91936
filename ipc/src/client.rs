//! Client side of a service connection: connect, handshake, call, events.
//!
//! Owns: timeouts and the clear "SERVICE unavailable" error a user sees when a
//! daemon is not running. Must never: retry a request on its own (requests
//! are not all idempotent) or hide a remote error's variant.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use interprocess::local_socket::{GenericFilePath, ToFsName, traits::tokio::Stream as _};
use interprocess::os::unix::uds_local_socket::tokio::Stream;

use crate::codec::{FrameError, read_frame, write_frame};
use crate::wire::{
    ClientMessage, Hello, PROTOCOL_VERSION, ProtocolError, ServerMessage, Service, Welcome,
};

/// Default time allowed for connect + handshake, and for each call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Transport-level failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{service} unavailable at {}: {reason} (is it running? try `gatehouse up`)", socket.display())]
    Unavailable {
        service: &'static str,
        socket: PathBuf,
        reason: String,
    },
    #[error(
        "{service} at {} is not the installed daemon: pid {pid} runs with gid {gid}, not the gatehouse group's gid {group} (a program running as you may be impersonating it; restart with `gatehouse down` and `gatehouse up`)", socket.display()
    )]
    NotInstalledServer {
        service: &'static str,
        socket: PathBuf,
        pid: i32,
        gid: u32,
        group: u32,
    },
    #[error("{service} did not answer within {after:?}")]
    Timeout {
        service: &'static str,
        after: Duration,
    },
    #[error("{service} refused the connection: {error}")]
    Refused {
        service: &'static str,
        error: ProtocolError,
    },
    #[error("{service} connection lost: {error}")]
    Frame {
        service: &'static str,
        error: FrameError,
    },
    #[error("{service} sent an unexpected message: {what}")]
    Unexpected { service: &'static str, what: String },
}

/// A failed call: either the transport failed, or the service answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E: std::fmt::Debug + std::fmt::Display> {
    #[error(transparent)]
    Transport(#[from] ClientError),
    #[error("{0}")]
    Remote(E),
}

/// Rebuilds a transport error (they are not `Clone` because of io errors).
fn clone_client_error(e: &ClientError) -> ClientError {
    match e {
        ClientError::Unavailable {
            service,
            socket,
            reason,
        } => ClientError::Unavailable {
            service,
            socket: socket.clone(),
            reason: reason.clone(),
        },
        ClientError::Timeout { service, after } => ClientError::Timeout {
            service,
            after: *after,
        },
        ClientError::NotInstalledServer {
            service,
            socket,
            pid,
            gid,
            group,
        } => ClientError::NotInstalledServer {
            service,
            socket: socket.clone(),
            pid: *pid,
            gid: *gid,
            group: *group,
        },
        ClientError::Refused { service, error } => ClientError::Refused {
            service,
            error: error.clone(),
        },
        ClientError::Frame { service, error } => ClientError::Unexpected {
            service,
            what: error.to_string(),
        },
        ClientError::Unexpected { service, what } => ClientError::Unexpected {
            service,
            what: what.clone(),
        },
    }
}

/// A connected, handshaken client of service `S`.
pub struct Client<S: Service> {
    stream: Stream,
    next_id: u64,
    timeout: Duration,
    welcome: Welcome,
    events: VecDeque<S::Event>,
}

/// With the privilege boundary on (we run from a setgid install), the
/// server must carry the group too: a same-uid program that stopped the real
/// daemon and bound its socket is not let near a passphrase.
fn check_server_group<S: Service>(stream: &Stream, socket: &Path) -> Result<(), ClientError> {
    use std::os::fd::AsFd;
    let Some(group) = std::fs::metadata("/proc/self/exe")
        .ok()
        .and_then(|m| crate::peer::boundary_group(&m))
    else {
        return Ok(());
    };
    let fd = stream.as_fd();
    let cred = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| ClientError::Unavailable {
            service: S::NAME,
            socket: socket.to_path_buf(),
            reason: format!("SO_PEERCRED: {e}"),
        })?;
    if cred.gid() != group {
        return Err(ClientError::NotInstalledServer {
            service: S::NAME,
            socket: socket.to_path_buf(),
            pid: cred.pid(),
            gid: cred.gid(),
            group,
        });
    }
    Ok(())
}

impl<S: Service> Client<S> {
    /// Connects to `S`'s socket in `runtime_dir` and performs the handshake.
    pub async fn connect(runtime_dir: &Path, timeout: Duration) -> Result<Self, ClientError> {
        // A non-dumpable client is dumpable until the server has identified
        // it (crate::dumpable); the window closes when this returns.
        let _identified = crate::dumpable::window();
        Self::handshake(runtime_dir, timeout).await
    }

    async fn handshake(runtime_dir: &Path, timeout: Duration) -> Result<Self, ClientError> {
        let socket = runtime_dir.join(S::SOCKET);
        let unavailable = |reason: String| ClientError::Unavailable {
            service: S::NAME,
            socket: socket.clone(),
            reason,
        };
        let name = socket
            .as_path()
            .to_fs_name::<GenericFilePath>()
            .map_err(|e| unavailable(e.to_string()))?;
        let stream = tokio::time::timeout(timeout, Stream::connect(name))
            .await
            .map_err(|_| ClientError::Timeout {
                service: S::NAME,
                after: timeout,
            })?
            .map_err(|e| unavailable(e.to_string()))?;
        check_server_group::<S>(&stream, &socket)?;
        let mut client = Client {
            stream,
            next_id: 1,
            timeout,
            welcome: Welcome {
                protocol: 0,
                role: crate::PeerRole::Cli,
                server_pid: 0,
                server_version: String::new(),
            },
            events: VecDeque::new(),
        };
        let hello: ClientMessage<S::Request> = ClientMessage::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            service: S::SOCKET.to_string(),
        });
        // A server may refuse us (and close) before reading our Hello; then the
        // write fails but its refusal is still waiting to be read.
        let sent = client.send(&hello).await;
        let reply = client.recv().await;
        if let (Err(e), Err(_)) = (&sent, &reply) {
            return Err(clone_client_error(e));
        }
        match reply? {
            ServerMessage::Welcome(w) => client.welcome = w,
            ServerMessage::Refused(error) | ServerMessage::Malformed(error) => {
                return Err(ClientError::Refused {
                    service: S::NAME,
                    error,
                });
            }
            other => {
                return Err(ClientError::Unexpected {
                    service: S::NAME,
                    what: format!("{other:?}"),
                });
            }
        }
        Ok(client)
    }

    /// What the server said at the handshake (including the role it gave us).
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends one request and waits for its reply; events arriving meanwhile are queued.
    pub async fn call(&mut self, body: S::Request) -> Result<S::Response, CallError<S::Error>> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&ClientMessage::Request { id, body }).await?;
        loop {
            match self.recv().await? {
                ServerMessage::Reply { id: got, result } if got == id => {
                    return result.map_err(CallError::Remote);
                }
                ServerMessage::Event(e) => self.events.push_back(e),
                ServerMessage::Refused(error) | ServerMessage::Malformed(error) => {
                    return Err(ClientError::Refused {
                        service: S::NAME,
                        error,
                    }
                    .into());
                }
                other => {
                    return Err(ClientError::Unexpected {
                        service: S::NAME,
                        what: format!("{other:?}"),
                    }
                    .into());
                }
            }
        }
    }

    /// Hands every pushed event to `on_event` until the connection ends;
    /// returns why it ended (a daemon following the broker exits then).
    pub async fn follow(mut self, mut on_event: impl FnMut(S::Event)) -> ClientError {
        self.timeout = Duration::from_secs(24 * 3600);
        loop {
            match self.next_event(Duration::from_secs(3600)).await {
                Ok(Some(e)) => on_event(e),
                Ok(None) => {}
                Err(e) => return e,
            }
        }
    }

    /// The next pushed event (after a subscribe request), waiting up to `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Result<Option<S::Event>, ClientError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        // Waiting for readability is cancel-safe; a frame, once started, is
        // read whole. tokio keeps a socket "readable" until an operation
        // meets WouldBlock, which may be long after the last frame was read:
        // so look (without consuming) whether a byte is really there, and
        // wait again if not, all within `wait`.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let sock = self.stream.inner();
            if tokio::time::timeout_at(deadline, sock.readable())
                .await
                .is_err()
            {
                return Ok(None);
            }
            let peeked = sock.try_io(tokio::io::Interest::READABLE, || {
                use std::os::fd::AsRawFd;
                let mut byte = [0u8; 1];
                nix::sys::socket::recv(
                    sock.as_raw_fd(),
                    &mut byte,
                    nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
                )
                .map_err(std::io::Error::from)
            });
            match peeked {
                // A byte, or the end of the stream (which `recv` reports).
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                // A socket error: `recv` reports it precisely.
                Err(_) => break,
            }
        }
        match self.recv().await? {
            ServerMessage::Event(e) => Ok(Some(e)),
            other => Err(ClientError::Unexpected {
                service: S::NAME,
                what: format!("{other:?}"),
            }),
        }
    }

    async fn send(&mut self, msg: &ClientMessage<S::Request>) -> Result<(), ClientError> {
        let mut stream = &self.stream;
        match tokio::time::timeout(self.timeout, write_frame(&mut stream, msg)).await {
            Err(_) => Err(ClientError::Timeout {
                service: S::NAME,
                after: self.timeout,
            }),
            Ok(Err(error)) if server_gone(&error) => Err(Self::closed()),
            Ok(Err(error)) => Err(ClientError::Frame {
                service: S::NAME,
                error,
            }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The server went away (crashed, killed, restarted) under this connection.
    fn closed() -> ClientError {
        ClientError::Unavailable {
            service: S::NAME,
            socket: PathBuf::from(S::SOCKET),
            reason: "connection closed by the server".into(),
        }
    }

    async fn recv(
        &mut self,
    ) -> Result<ServerMessage<S::Response, S::Error, S::Event>, ClientError> {
        let mut stream = &self.stream;
        match tokio::time::timeout(self.timeout, read_frame(&mut stream)).await {
            Err(_) => Err(ClientError::Timeout {
                service: S::NAME,
                after: self.timeout,
            }),
            Ok(Err(error)) if server_gone(&error) => Err(Self::closed()),
            Ok(Err(error)) => Err(ClientError::Frame {
                service: S::NAME,
                error,
            }),
            Ok(Ok(m)) => Ok(m),
        }
    }
}

/// Whether a frame error means the server end of the connection is gone: EOF,
/// or a write/read on a socket the server closed (EPIPE, ECONNRESET).
fn server_gone(error: &FrameError) -> bool {
    match error {
        FrameError::Closed => true,
        FrameError::Io(e) => matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::NotConnected
        ),
        _ => false,
    }
}

/// One connection a daemon's tasks share (calls are serialized). Daemons
/// connect while still dumpable — servers identify peers by reading
/// `/proc/PID/exe` — and do not reconnect: when the connection is lost the
/// daemon exits and its supervisor starts a fresh one.
pub struct SharedClient<S: Service> {
    client: tokio::sync::Mutex<Client<S>>,
}

impl<S: Service> SharedClient<S> {
    pub async fn connect(runtime_dir: &Path, timeout: Duration) -> Result<Self, ClientError> {
        Ok(SharedClient {
            client: tokio::sync::Mutex::new(Client::connect(runtime_dir, timeout).await?),
        })
    }

    /// One request.
    pub async fn call(&self, body: S::Request) -> Result<S::Response, CallError<S::Error>> {
        self.client.lock().await.call(body).await
    }

    /// The connection itself, for a request followed by its events.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, Client<S>> {
        self.client.lock().await
    }
}
