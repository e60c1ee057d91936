//! The SSH side (russh): authentication (password, public key,
//! keyboard-interactive with one `Password:` prompt), session channels with
//! PTY, shell and exec requests, and dropping every connection when the
//! device reboots. Bytes go to and from a [`Terminal`] per channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::keys::PrivateKey;
use russh::server::{
    Auth, ChannelOpenHandle, Config, Handler, Msg, PublicKeyOffer, Response, Server as _, Session,
    VerifiedPublicKey,
};
use russh::{Channel, ChannelId, Disconnect, MethodKind, MethodSet, Pty};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::device::{Device, Vendor};
use crate::error::Error;
use crate::eventlog::Kind;
use crate::terminal::{End, Output, Terminal};
use crate::vendors;

/// How long after a confirmed reboot the connections are dropped.
pub const REBOOT_DROP_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// A device serving SSH on a socket.
pub struct RunningDevice {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The device (state, log).
    pub device: Arc<Device>,
    handle: russh::server::RunningServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningDevice {
    /// Stops accepting, disconnects every client and waits for the server task.
    pub async fn shutdown(self) {
        self.handle.shutdown("shutting down".into());
        let _ = self.task.await;
    }
}

/// Binds `listen` and serves `device` with `host_key` until shut down.
pub async fn serve(
    device: Arc<Device>,
    host_key: PrivateKey,
    listen: SocketAddr,
) -> Result<RunningDevice, Error> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Listen {
            addr: listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: listen.to_string(),
        source,
    })?;
    let creds = &device.credentials;
    let mut methods = MethodSet::empty();
    if !creds.authorized_keys.is_empty() {
        methods.push(MethodKind::PublicKey);
    }
    if creds.password_method {
        methods.push(MethodKind::Password);
    }
    if creds.keyboard_interactive {
        methods.push(MethodKind::KeyboardInteractive);
    }
    let config = Arc::new(Config {
        server_id: russh::SshId::Standard(
            match device.vendor {
                Vendor::Ios => "SSH-2.0-Cisco-1.25",
                Vendor::RouterOs => "SSH-2.0-ROSSSH",
            }
            .into(),
        ),
        methods,
        auth_rejection_time: std::time::Duration::from_millis(300),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        keys: vec![host_key],
        inactivity_timeout: Some(std::time::Duration::from_secs(3600)),
        nodelay: true,
        ..Default::default()
    });
    let (tx, rx) = oneshot::channel();
    let dev = device.clone();
    let task = tokio::spawn(async move {
        let mut server = LabServer { device: dev };
        let running = server.run_on_socket(config, &listener);
        let _ = tx.send(running.handle());
        running.await
    });
    let handle = rx.await.map_err(|_| Error::Listen {
        addr: addr.to_string(),
        source: std::io::Error::other("server task ended at start"),
    })?;
    Ok(RunningDevice {
        addr,
        device,
        handle,
        task,
    })
}

struct LabServer {
    device: Arc<Device>,
}

impl russh::server::Server for LabServer {
    type Handler = Conn;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Conn {
        let session = self.device.next_session();
        let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
        self.device
            .log
            .record(session, Kind::Connect, &format!("from {peer}"));
        Conn {
            device: self.device.clone(),
            session,
            user: None,
            ptys: HashMap::new(),
            terms: HashMap::new(),
            cancel: None,
            rebooted: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// One connection.
struct Conn {
    device: Arc<Device>,
    session: u64,
    user: Option<String>,
    ptys: HashMap<ChannelId, u32>,
    terms: HashMap<ChannelId, Terminal>,
    cancel: Option<oneshot::Sender<()>>,
    rebooted: Arc<AtomicBool>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let why = if self.rebooted.load(Ordering::Relaxed) {
            "dropped by reboot"
        } else {
            "closed"
        };
        self.device.log.record(self.session, Kind::Disconnect, why);
        if let Some(c) = self.cancel.take() {
            let _ = c.send(());
        }
    }
}

impl Conn {
    fn auth_result(&mut self, method: &str, user: &str, ok: bool) -> Auth {
        let verdict = if ok { "accepted" } else { "rejected" };
        self.device.log.record(
            self.session,
            Kind::Auth,
            &format!("{method} {verdict} for {user}"),
        );
        if ok {
            self.user = Some(user.to_string());
            Auth::Accept
        } else {
            Auth::reject()
        }
    }

    fn user_ok(&self, user: &str) -> bool {
        self.device
            .credentials
            .user_matches(self.device.vendor, user)
    }

    fn key_ok(&self, user: &str, key: &russh::keys::PublicKey) -> bool {
        self.user_ok(user)
            && self
                .device
                .credentials
                .authorized_keys
                .iter()
                .any(|k| k.key_data() == key.key_data())
    }

    fn deliver(
        &mut self,
        channel: ChannelId,
        out: Output,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        if !out.bytes.is_empty() {
            session.data(channel, out.bytes)?;
        }
        match out.end {
            None => {}
            Some(End::Logout) => close(channel, 0, session)?,
            Some(End::Exit(status)) => close(channel, status, session)?,
            Some(End::Reboot) => {
                let cmd = self.session;
                self.device.reboot(cmd, "reboot confirmed");
            }
        }
        if out.end.is_some() {
            self.terms.remove(&channel);
        }
        Ok(())
    }
}

fn close(channel: ChannelId, status: u32, session: &mut Session) -> Result<(), russh::Error> {
    session.exit_status_request(channel, status)?;
    session.eof(channel)?;
    session.close(channel)
}

impl Handler for Conn {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = self.device.credentials.password_method
            && self.user_ok(user)
            && self
                .device
                .credentials
                .password_matches(password.as_bytes());
        Ok(self.auth_result("password", user, ok))
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.key_ok(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let ok = self.key_ok(user, key.public_key);
        Ok(self.auth_result("publickey", user, ok))
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        if !self.device.credentials.keyboard_interactive {
            return Ok(Auth::reject());
        }
        let Some(mut response) = response else {
            return Ok(Auth::Partial {
                name: "".into(),
                instructions: "".into(),
                prompts: vec![("Password: ".into(), false)].into(),
            });
        };
        let answer = response.next();
        let ok = self.user_ok(user)
            && answer.is_some_and(|a| self.device.credentials.password_matches(&a));
        Ok(self.auth_result("keyboard-interactive", user, ok))
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        let handle = session.handle();
        let mut reboot = self.device.subscribe_reboot();
        let (tx, cancel) = oneshot::channel::<()>();
        self.cancel = Some(tx);
        let flag = self.rebooted.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = reboot.recv() => {
                    if !matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        flag.store(true, Ordering::Relaxed);
                        // OpenSSH exits on SSH_MSG_DISCONNECT without writing channel
                        // output it still holds: give the last words time to arrive.
                        tokio::time::sleep(REBOOT_DROP_DELAY).await;
                        let _ = handle
                            .disconnect(Disconnect::ByApplication, "device rebooting".into(), "en".into())
                            .await;
                    }
                }
                _ = cancel => {}
            }
        });
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Data reaches us through `data`; the channel object is not read.
        drop(channel);
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.ptys.insert(channel, row_height);
        session.channel_success(channel)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(t) = self.terms.get_mut(&channel) {
            t.set_rows(row_height);
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let user = self.user.clone().unwrap_or_default();
        let rows = self.ptys.get(&channel).copied();
        let cli = vendors::session(self.device.vendor, &user, false);
        let mut term = Terminal::shell(self.device.clone(), self.session, cli, rows);
        let out = term.start();
        self.terms.insert(channel, term);
        self.deliver(channel, out, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let user = self.user.clone().unwrap_or_default();
        let cli = vendors::session(self.device.vendor, &user, true);
        let mut term = Terminal::exec(self.device.clone(), self.session, cli);
        let command = String::from_utf8_lossy(data).into_owned();
        let out = term.run_exec(&command);
        self.terms.insert(channel, term);
        self.deliver(channel, out, session)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(t) = self.terms.get_mut(&channel) {
            let out = t.feed(data);
            self.deliver(channel, out, session)?;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(t) = self.terms.get_mut(&channel) {
            let mut out = t.eof();
            if out.end.is_none() {
                // The client has nothing more to say: end the shell as a PTY would on ^D.
                out.end = Some(End::Logout);
            }
            self.deliver(channel, out, session)?;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.terms.remove(&channel);
        self.ptys.remove(&channel);
        Ok(())
    }
}
