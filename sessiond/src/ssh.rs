//! SSH client connections to devices (russh): pinned host key check,
//! authentication with broker-held credentials, exec channels streaming
//! output, and interactive PTY shells.
//!
//! Owns: the TCP/SSH connection, the host-key decision, the choice and
//! order of authentication methods, channel flow control.
//! Must never: connect past a host key that is not exactly the pinned one,
//! hold a private key (signatures come from the [`CredentialSource`]), keep a
//! password beyond the [`connect`] call it was fetched for, or panic on
//! anything the server sends.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, DisconnectReason, KeyboardInteractiveAuthResponse, Msg};
use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Disconnect, MethodKind, MethodSet};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// Receive window per channel. Large, so a fast server is never stalled
/// waiting for window adjustments on a high-latency link (OpenSSH uses 2 MiB).
pub const WINDOW_SIZE: u32 = 16 * 1024 * 1024;
/// Largest packet we accept (russh warns beyond 64 KiB).
pub const MAX_PACKET_SIZE: u32 = 65535;
/// Unread messages buffered per channel before the connection stops reading
/// (backpressure towards the server).
const CHANNEL_BUFFER: usize = 256;
/// Keepalive probe interval; three unanswered probes drop the connection.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// Most keyboard-interactive rounds answered before giving up.
const MAX_KBD_ROUNDS: usize = 8;

/// Where to connect and what to expect there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host record's name (for messages).
    pub host_name: String,
    /// IP address or DNS name.
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// Login name.
    pub username: String,
    /// "ALG SHA256:base64", e.g. "ssh-ed25519 SHA256:abc…" (the records'
    /// format). `None` refuses every key, naming the presented one.
    pub pinned_host_key: Option<String>,
}

/// Credentials for one connection, backed by the broker.
pub trait CredentialSource: Send {
    /// Password for this one connection (also used to answer
    /// keyboard-interactive password prompts). Err if the host has none.
    fn password(&mut self) -> impl Future<Output = Result<Zeroizing<String>, SshError>> + Send;
    /// OpenSSH public key text if the host uses key auth, else None.
    fn public_key(&mut self) -> impl Future<Output = Result<Option<String>, SshError>> + Send;
    /// Signs the SSH userauth "publickey" request bytes `to_sign` (exactly
    /// what russh's `auth::Signer::auth_sign` receives); returns the SSH
    /// signature blob = string(algorithm) ‖ string(signature), as
    /// `ssh_key::Signature` encodes.
    fn sign(&mut self, to_sign: Vec<u8>) -> impl Future<Output = Result<Vec<u8>, SshError>> + Send;
}

/// How the connection was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `password`.
    Password,
    /// `keyboard-interactive`, prompts answered with the password.
    KeyboardInteractive,
    /// `publickey`, signed by the credential source.
    PublicKey,
    /// The server asked for no authentication at all (`none` accepted).
    None,
}

impl AuthMethod {
    /// The SSH method name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::KeyboardInteractive => "keyboard-interactive",
            AuthMethod::PublicKey => "publickey",
            AuthMethod::None => "none",
        }
    }
}

/// What went wrong with a connection or channel.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// TCP connection or SSH handshake failed before the host key check.
    #[error("cannot connect: {reason}")]
    Connect { reason: String },
    /// Connecting and authenticating took longer than allowed.
    #[error("timed out after {after:?} connecting and authenticating")]
    Timeout { after: Duration },
    /// No pin for this host: refused; the presented key is named so it can be
    /// checked out of band and pinned.
    #[error("host key not pinned; the server presented {presented}")]
    HostKeyUnknown { presented: String },
    /// The server's key is not the pinned one.
    #[error("HOST KEY CHANGED: pinned {expected}, the server presented {presented}")]
    HostKeyChanged { expected: String, presented: String },
    /// Every usable method was refused.
    #[error("authentication failed: {reason}")]
    AuthFailed { reason: String },
    /// A channel could not be opened or a request on it was refused.
    #[error("channel: {0}")]
    Channel(String),
    /// The credential source failed (broker refused, no such credential...).
    #[error("credential: {0}")]
    Credential(String),
    /// The server violated the protocol or russh failed.
    #[error("SSH protocol: {0}")]
    Protocol(String),
    /// The connection ended while a channel was in use.
    #[error("connection closed: {reason}")]
    Disconnected { reason: String },
}

/// One chunk of exec output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Standard output bytes.
    Stdout(Vec<u8>),
    /// Standard error bytes (SSH extended data type 1).
    Stderr(Vec<u8>),
}

/// State the russh handler shares with the [`Connection`].
#[derive(Debug, Default)]
struct Shared {
    /// Presented host key, "ALG SHA256:…".
    presented: Mutex<Option<String>>,
    /// Why the connection ended, once it has.
    disconnect: Mutex<Option<String>>,
}

impl Shared {
    fn set_presented(&self, v: String) {
        *self.presented.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }
    fn presented(&self) -> Option<String> {
        self.presented
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    fn set_disconnect(&self, why: String) {
        let mut d = self.disconnect.lock().unwrap_or_else(|e| e.into_inner());
        if d.is_none() {
            *d = Some(why);
        }
    }
    fn disconnect(&self) -> Option<String> {
        self.disconnect
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The russh client handler: host key pinning and disconnect bookkeeping.
struct PinningHandler {
    pin: Option<String>,
    shared: Arc<Shared>,
}

/// "ALG SHA256:…" of a public key.
pub fn fingerprint(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.key_data().fingerprint(HashAlg::Sha256)
    )
}

/// Whether `presented` is exactly the pin (surrounding spaces ignored).
fn pin_matches(pin: &str, presented: &str) -> bool {
    let mut a = pin.split_whitespace();
    let mut b = presented.split_whitespace();
    matches!((a.next(), a.next(), a.next(), b.next(), b.next()),
        (Some(alg), Some(fp), None, Some(palg), Some(pfp)) if alg == palg && fp == pfp)
}

impl client::Handler for PinningHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => fingerprint(key),
            // A certificate is judged by the key it certifies: the pin names a key.
            PublicKeyOrCertificate::Certificate(cert) => {
                fingerprint(&PublicKey::from(cert.public_key().clone()))
            }
        };
        let ok = self
            .pin
            .as_deref()
            .is_some_and(|pin| pin_matches(pin, &presented));
        self.shared.set_presented(presented);
        Ok(ok)
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        match reason {
            DisconnectReason::ReceivedDisconnect(info) => {
                self.shared.set_disconnect(format!(
                    "server disconnected ({:?}): {}",
                    info.reason_code, info.message
                ));
                Ok(())
            }
            DisconnectReason::Error(e) => {
                self.shared.set_disconnect(format!("connection error: {e}"));
                Err(e)
            }
        }
    }
}

/// An authenticated SSH connection.
pub struct Connection {
    handle: client::Handle<PinningHandler>,
    host_key: String,
    auth_method: AuthMethod,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("host_key", &self.host_key)
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

fn client_config() -> client::Config {
    client::Config {
        window_size: WINDOW_SIZE,
        maximum_packet_size: MAX_PACKET_SIZE,
        channel_buffer_size: CHANNEL_BUFFER,
        keepalive_interval: Some(KEEPALIVE),
        keepalive_max: 3,
        nodelay: true,
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(CIPHERS),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Cipher preference: AES-GCM first (hardware AES through ring is the
/// fastest here), then ChaCha20-Poly1305, then CTR modes for old devices.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::AES_128_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_192_CTR,
    russh::cipher::AES_128_CTR,
];

/// Connects to `target`, checks its host key against the pin and
/// authenticates with `creds`; all within `timeout`.
pub async fn connect(
    target: &Target,
    creds: &mut impl CredentialSource,
    timeout: Duration,
) -> Result<Connection, SshError> {
    match tokio::time::timeout(timeout, connect_inner(target, creds)).await {
        Ok(r) => r,
        Err(_) => Err(SshError::Timeout { after: timeout }),
    }
}

async fn connect_inner(
    target: &Target,
    creds: &mut impl CredentialSource,
) -> Result<Connection, SshError> {
    let shared = Arc::new(Shared::default());
    let handler = PinningHandler {
        pin: target.pinned_host_key.clone(),
        shared: shared.clone(),
    };
    let addr = (target.address.as_str(), target.port);
    let mut handle = match client::connect(Arc::new(client_config()), addr, handler).await {
        Ok(h) => h,
        Err(e) => return Err(handshake_error(e, target, &shared)),
    };
    // The handshake only completes after check_server_key accepted the key.
    let host_key = shared
        .presented()
        .ok_or_else(|| SshError::Protocol("handshake finished without a host key check".into()))?;
    let auth_method = authenticate(&mut handle, &target.username, creds).await?;
    Ok(Connection {
        handle,
        host_key,
        auth_method,
        shared,
    })
}

fn handshake_error(e: russh::Error, target: &Target, shared: &Shared) -> SshError {
    if let Some(presented) = shared.presented() {
        let accepted = target
            .pinned_host_key
            .as_deref()
            .is_some_and(|pin| pin_matches(pin, &presented));
        if !accepted {
            return match &target.pinned_host_key {
                None => SshError::HostKeyUnknown { presented },
                Some(expected) => SshError::HostKeyChanged {
                    expected: expected.clone(),
                    presented,
                },
            };
        }
    }
    match e {
        russh::Error::IO(io) => SshError::Connect {
            reason: format!(
                "{} ({}:{}): {io}",
                target.host_name, target.address, target.port
            ),
        },
        russh::Error::ConnectionTimeout => SshError::Connect {
            reason: format!("{}: connection timed out", target.host_name),
        },
        other => SshError::Protocol(format!("handshake with {}: {other}", target.host_name)),
    }
}

fn method_names(m: &MethodSet) -> String {
    let names: Vec<&str> = m.iter().map(<&str>::from).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn proto(e: russh::Error) -> SshError {
    SshError::Protocol(e.to_string())
}

/// Runs the authentication methods in order: publickey (if the source has a
/// key), password, keyboard-interactive — each only if the server offers it.
async fn authenticate(
    handle: &mut client::Handle<PinningHandler>,
    user: &str,
    creds: &mut impl CredentialSource,
) -> Result<AuthMethod, SshError> {
    let mut offered = match handle.authenticate_none(user).await.map_err(proto)? {
        russh::client::AuthResult::Success => return Ok(AuthMethod::None),
        russh::client::AuthResult::Failure {
            remaining_methods, ..
        } => remaining_methods,
    };
    let first_offer = method_names(&offered);
    let mut tried: Vec<String> = Vec::new();

    if offered.contains(&MethodKind::PublicKey)
        && let Some(text) = creds.public_key().await?
    {
        let key = PublicKey::from_openssh(text.trim())
            .map_err(|e| SshError::Credential(format!("public key does not parse: {e}")))?;
        let mut signer = BrokerSigner { creds: &mut *creds };
        match handle
            .authenticate_publickey_with(user, key, None, &mut signer)
            .await
        {
            Ok(russh::client::AuthResult::Success) => return Ok(AuthMethod::PublicKey),
            Ok(russh::client::AuthResult::Failure {
                remaining_methods, ..
            }) => {
                tried.push("publickey (rejected)".into());
                offered = remaining_methods;
            }
            Err(SignFailed(e)) => return Err(e),
        }
    }

    let wants_password = offered.contains(&MethodKind::Password)
        || offered.contains(&MethodKind::KeyboardInteractive);
    if wants_password {
        match creds.password().await {
            Ok(password) => {
                if offered.contains(&MethodKind::Password) {
                    match handle
                        .authenticate_password(user, password.as_str())
                        .await
                        .map_err(proto)?
                    {
                        russh::client::AuthResult::Success => return Ok(AuthMethod::Password),
                        russh::client::AuthResult::Failure {
                            remaining_methods, ..
                        } => {
                            tried.push("password (rejected)".into());
                            offered = remaining_methods;
                        }
                    }
                }
                if offered.contains(&MethodKind::KeyboardInteractive) {
                    match keyboard_interactive(handle, user, &password).await? {
                        Ok(()) => return Ok(AuthMethod::KeyboardInteractive),
                        Err(why) => tried.push(format!("keyboard-interactive ({why})")),
                    }
                }
            }
            Err(e) => tried.push(format!("password (none available: {e})")),
        }
    }

    let tried = if tried.is_empty() {
        "no usable method".to_string()
    } else {
        format!("tried {}", tried.join(", "))
    };
    Err(SshError::AuthFailed {
        reason: format!("{tried}; the server offers {first_offer}"),
    })
}

/// Keyboard-interactive, answering password-like prompts with the password.
/// Inner `Err` is a refusal (with why), outer is a protocol failure.
async fn keyboard_interactive(
    handle: &mut client::Handle<PinningHandler>,
    user: &str,
    password: &Zeroizing<String>,
) -> Result<Result<(), String>, SshError> {
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await
        .map_err(proto)?;
    for _ in 0..MAX_KBD_ROUNDS {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(Ok(())),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(Err("rejected".into())),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let mut answers = Vec::with_capacity(prompts.len());
                for p in &prompts {
                    if p.prompt.trim().is_empty() {
                        answers.push(String::new());
                    } else if !p.echo || p.prompt.to_ascii_lowercase().contains("password") {
                        answers.push(password.to_string());
                    } else {
                        // Answering an unknown visible question could be
                        // anything; stop rather than guess.
                        return Ok(Err(format!("unexpected prompt {:?}", p.prompt)));
                    }
                }
                // russh takes owned strings; ours are wiped once sent.
                let answers = Zeroizing::new(answers);
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers.to_vec())
                    .await
                    .map_err(proto)?;
            }
        }
    }
    Ok(Err(format!("more than {MAX_KBD_ROUNDS} prompt rounds")))
}

/// russh signer that asks the credential source (the broker) for the
/// signature blob and frames it as russh expects.
struct BrokerSigner<'a, C> {
    creds: &'a mut C,
}

/// A signing failure, carried through russh's signer interface.
#[derive(Debug)]
struct SignFailed(SshError);

impl From<russh::SendError> for SignFailed {
    fn from(_: russh::SendError) -> Self {
        SignFailed(SshError::Disconnected {
            reason: "connection closed during public key authentication".into(),
        })
    }
}

/// Checks that `blob` is exactly string(algorithm) ‖ string(signature).
fn check_signature_blob(blob: &[u8]) -> Result<(), SshError> {
    fn string(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let (len, rest) = b.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let bad = || SshError::Credential("signature is not an SSH signature blob".into());
    let (alg, rest) = string(blob).ok_or_else(bad)?;
    let (sig, rest) = string(rest).ok_or_else(bad)?;
    if alg.is_empty() || sig.is_empty() || !rest.is_empty() {
        return Err(bad());
    }
    Ok(())
}

impl<C: CredentialSource> russh::Signer for BrokerSigner<'_, C> {
    type Error = SignFailed;

    async fn auth_sign(
        &mut self,
        _key: &russh::keys::agent::AgentIdentity,
        _hash_alg: Option<HashAlg>,
        to_sign: Vec<u8>,
    ) -> Result<Vec<u8>, Self::Error> {
        let blob = self.creds.sign(to_sign.clone()).await.map_err(SignFailed)?;
        check_signature_blob(&blob).map_err(SignFailed)?;
        let len = u32::try_from(blob.len())
            .map_err(|_| SignFailed(SshError::Credential("signature too long".into())))?;
        // What russh's agent client returns: the signed data followed by
        // string(blob).
        let mut out = to_sign;
        out.reserve(4 + blob.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&blob);
        Ok(out)
    }
}

impl Connection {
    /// The presented (and pinned) host key, "ALG SHA256:…".
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// How the connection was authenticated.
    pub fn auth_method(&self) -> AuthMethod {
        self.auth_method
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Why the connection ended (server disconnect message or error), if it has.
    pub fn disconnect_reason(&self) -> Option<String> {
        self.shared.disconnect()
    }

    fn closed_error(&self, what: &str) -> SshError {
        SshError::Disconnected {
            reason: self
                .disconnect_reason()
                .unwrap_or_else(|| format!("connection ended during {what}")),
        }
    }

    async fn open_session(&self) -> Result<russh::Channel<Msg>, SshError> {
        self.handle.channel_open_session().await.map_err(|e| {
            if self.is_closed() {
                self.closed_error("channel open")
            } else {
                SshError::Channel(format!("cannot open a session channel: {e}"))
            }
        })
    }

    /// Runs one command on an exec channel, streaming stdout/stderr chunks to
    /// `out`; returns the exit status (None if the server sent none). Awaits
    /// `out.send` (backpressure reaches the server through the window). If
    /// `out` is dropped, the channel is closed and an error returned.
    pub async fn exec(
        &self,
        command: &str,
        out: mpsc::Sender<Chunk>,
    ) -> Result<Option<u32>, SshError> {
        let mut channel = self.open_session().await?;
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(|_| self.closed_error("exec request"))?;
        let mut status = None;
        let mut accepted = false;
        loop {
            let Some(msg) = channel.wait().await else {
                // The channel went away without a close: the connection ended.
                if status.is_some() {
                    return Ok(status);
                }
                return Err(self.closed_error("exec"));
            };
            let chunk = match msg {
                ChannelMsg::Data { data } => Chunk::Stdout(Vec::from(data)),
                ChannelMsg::ExtendedData { data, ext: 1 } => Chunk::Stderr(Vec::from(data)),
                ChannelMsg::ExtendedData { .. } => continue,
                ChannelMsg::Success => {
                    accepted = true;
                    continue;
                }
                ChannelMsg::Failure if !accepted => {
                    let _ = channel.close().await;
                    return Err(SshError::Channel(format!(
                        "the server refused to run {command:?}"
                    )));
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    status = Some(exit_status);
                    continue;
                }
                ChannelMsg::Close => return Ok(status),
                _ => continue,
            };
            if out.send(chunk).await.is_err() {
                let _ = channel.close().await;
                return Err(SshError::Channel("exec output receiver went away".into()));
            }
        }
    }

    /// Opens an interactive shell with a PTY of `cols`×`rows`, terminal type `term`.
    pub async fn shell(&self, cols: u16, rows: u16, term: &str) -> Result<Shell, SshError> {
        let channel = self.open_session().await?;
        let (read, write) = channel.split();
        write
            .request_pty(
                true,
                term,
                u32::from(cols),
                u32::from(rows),
                0,
                0,
                &[(russh::Pty::ECHO, 1), (russh::Pty::ICANON, 1)],
            )
            .await
            .map_err(|_| self.closed_error("PTY request"))?;
        write
            .request_shell(true)
            .await
            .map_err(|_| self.closed_error("shell request"))?;
        let mut reader = ShellReader {
            read,
            shared: self.shared.clone(),
            pending: std::collections::VecDeque::new(),
            status: None,
            done: false,
        };
        // Two replies: PTY, then shell. Output may already arrive in between.
        let mut replies = 0;
        while replies < 2 {
            match reader.read.wait().await {
                Some(ChannelMsg::Success) => replies += 1,
                Some(ChannelMsg::Failure) => {
                    let what = if replies == 0 { "PTY" } else { "shell" };
                    let _ = write.close().await;
                    return Err(SshError::Channel(format!(
                        "the server refused the {what} request"
                    )));
                }
                Some(msg) => {
                    if let Some(ev) = reader.event(msg) {
                        reader.pending.push_back(ev);
                    }
                }
                None => return Err(self.closed_error("shell start")),
            }
        }
        Ok(Shell {
            writer: ShellWriter {
                write: Arc::new(write),
            },
            reader,
        })
    }

    /// Disconnects politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// An interactive shell: a writer (cloneable, usable from another task) and a reader.
#[derive(Debug)]
pub struct Shell {
    /// Sends keystrokes, window changes, EOF.
    pub writer: ShellWriter,
    /// Receives output and the end of the shell.
    pub reader: ShellReader,
}

impl Shell {
    /// The two halves.
    pub fn into_parts(self) -> (ShellWriter, ShellReader) {
        (self.writer, self.reader)
    }
}

/// The sending half of a [`Shell`].
#[derive(Debug, Clone)]
pub struct ShellWriter {
    write: Arc<ChannelWriteHalf<Msg>>,
}

impl ShellWriter {
    /// Sends bytes as typed input.
    pub async fn write(&self, data: &[u8]) -> Result<(), SshError> {
        self.write
            .data(data)
            .await
            .map_err(|e| SshError::Channel(format!("shell write: {e}")))
    }

    /// Tells the server the terminal size changed.
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), SshError> {
        self.write
            .window_change(u32::from(cols), u32::from(rows), 0, 0)
            .await
            .map_err(|e| SshError::Channel(format!("window change: {e}")))
    }

    /// Sends EOF (no more input).
    pub async fn eof(&self) -> Result<(), SshError> {
        self.write
            .eof()
            .await
            .map_err(|e| SshError::Channel(format!("shell eof: {e}")))
    }
}

/// Something that happened on a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellEvent {
    /// Output (stdout and stderr alike; a PTY merges them anyway).
    Data(Vec<u8>),
    /// The server closed the shell channel, with its exit status if it sent one.
    Exit(Option<u32>),
    /// The connection went away without closing the channel (device reboot,
    /// network loss, disconnect).
    Closed,
}

/// The receiving half of a [`Shell`].
#[derive(Debug)]
pub struct ShellReader {
    read: ChannelReadHalf,
    shared: Arc<Shared>,
    pending: std::collections::VecDeque<ShellEvent>,
    status: Option<u32>,
    done: bool,
}

impl ShellReader {
    /// Why the connection ended (server disconnect message or error), if it has.
    pub fn disconnect_reason(&self) -> Option<String> {
        self.shared.disconnect()
    }

    /// The next event; `None` after [`ShellEvent::Exit`] or
    /// [`ShellEvent::Closed`]. Cancel-safe: dropping the future before it
    /// completes loses no output.
    pub async fn next(&mut self) -> Option<ShellEvent> {
        if let Some(ev) = self.pending.pop_front() {
            return Some(ev);
        }
        while !self.done {
            let Some(msg) = self.read.wait().await else {
                self.done = true;
                return Some(ShellEvent::Closed);
            };
            if let Some(ev) = self.event(msg) {
                return Some(ev);
            }
        }
        None
    }

    fn event(&mut self, msg: ChannelMsg) -> Option<ShellEvent> {
        match msg {
            ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                Some(ShellEvent::Data(Vec::from(data)))
            }
            ChannelMsg::ExitStatus { exit_status } => {
                self.status = Some(exit_status);
                None
            }
            ChannelMsg::Close => {
                self.done = true;
                Some(ShellEvent::Exit(self.status))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_compare_algorithm_and_fingerprint_exactly() {
        assert!(pin_matches(
            "ssh-ed25519 SHA256:abc",
            "ssh-ed25519 SHA256:abc"
        ));
        assert!(pin_matches(
            " ssh-ed25519  SHA256:abc ",
            "ssh-ed25519 SHA256:abc"
        ));
        assert!(!pin_matches(
            "ssh-ed25519 SHA256:abd",
            "ssh-ed25519 SHA256:abc"
        ));
        assert!(!pin_matches("ssh-rsa SHA256:abc", "ssh-ed25519 SHA256:abc"));
        assert!(!pin_matches("SHA256:abc", "ssh-ed25519 SHA256:abc"));
        assert!(!pin_matches(
            "ssh-ed25519 SHA256:abc x",
            "ssh-ed25519 SHA256:abc"
        ));
        assert!(!pin_matches("", "ssh-ed25519 SHA256:abc"));
    }

    #[test]
    fn signature_blobs_are_checked_without_panicking() {
        let mut good = Vec::new();
        for part in [&b"ssh-ed25519"[..], &[7u8; 64][..]] {
            good.extend_from_slice(&(part.len() as u32).to_be_bytes());
            good.extend_from_slice(part);
        }
        assert!(check_signature_blob(&good).is_ok());
        for cut in 0..good.len() {
            assert!(check_signature_blob(&good[..cut]).is_err(), "cut {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(check_signature_blob(&long).is_err());
        assert!(check_signature_blob(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
