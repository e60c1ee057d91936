//! A socket-free entry point into the broker's request path, for the
//! `ipc_frame` fuzz target (fuzz/fuzz_targets/ipc_frame.rs) and its corpus
//! replay test (broker/tests/fuzz_corpus.rs).
//!
//! [`fuzz_frame`] treats its input as the bytes a peer writes on a broker
//! connection: successive frames, each a length prefix checked with
//! [`codec::check_len`] and a body decoded with [`codec::decode`] — exactly
//! what `read_frame` does in the server. A `Request` goes through the role check and dispatch of a real
//! [`BrokerService`] (real vault in secret memory, real keyutils keychain,
//! real approvals book, over a private state directory on tmpfs), and the
//! reply is encoded as the server would send it. The peer's role is
//! `PeerRole::ALL[request id % 5]`, so every role is reachable and an input
//! always replays under the same role; each role has its own synthetic pid
//! (so one role can approve what another requested).
//!
//! Approval ids are random per broker process and tokens carry a signature
//! no input can guess, so two helpers let inputs reach the approval paths:
//! an approval id below 64 in ShowApproval, ApprovalOutcome, DecideApproval
//! or a token means "the n-th newest approval request", and a token with an
//! empty signature is replaced by the broker's real token for that approval
//! (if approved), keeping the input's action — so consumption, mismatch and
//! replay checks run on real tokens.
//!
//! The services are built once per process and keep their state between
//! inputs (like a long-lived broker). There are two, each with an
//! initialized account whose passphrase is [`FUZZ_PASSPHRASE`]: AccountInit,
//! SignIn and SignOut go to an *account* instance, everything else to a
//! *main* instance that stays signed in — otherwise the first sign-out (or
//! any sign-in attempt, which signs out first) would leave every later input
//! on the signed-out paths, with sign-in throttled for minutes. Keychain
//! entries an input creates are removed again (and remembered unlock
//! material deleted), so a long run does not fill the user's kernel keyring;
//! state directories of fuzzing processes that have exited are removed.
//!
//! Must never: panic on any input (that is what the fuzzer looks for), or
//! touch any state outside its own state directory and keychain namespaces.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use gatehouse_ipc::broker::{
    ApprovalOutcome, Broker, BrokerRequest, BrokerResponse, Hardening, Operation,
};
use gatehouse_ipc::codec::{self, FrameError};
use gatehouse_ipc::wire::{ClientMessage, ProtocolError, ServerMessage};
use gatehouse_ipc::{PeerIdentity, PeerRole, SecretBytes, Service};

use crate::keychain::{Backend, Keychain};
use crate::service::BrokerService;

/// Passphrase of the account the fuzzing service starts with (seed inputs
/// use it to sign in again after a sign-out).
pub const FUZZ_PASSPHRASE: &[u8] = b"fuzz-passphrase-0";

/// Most frames taken from one input (a connection's worth).
const MAX_FRAMES: usize = 32;

struct Harness {
    /// Everything but the account operations; always signed in.
    main: Arc<BrokerService>,
    /// AccountInit, SignIn, SignOut.
    account: Arc<BrokerService>,
    /// A second handle on the account instance's keychain namespace, for cleanup.
    account_keychain: Keychain,
    /// Approval requests created by inputs (id, requester), oldest first.
    recent: Mutex<VecDeque<(u64, PeerRole)>>,
}

type Reply = ServerMessage<
    <Broker as Service>::Response,
    <Broker as Service>::Error,
    <Broker as Service>::Event,
>;

static HARNESS: OnceLock<Result<Harness, String>> = OnceLock::new();

const DIR_PREFIX: &str = "gatehouse-fuzz-";
const INSTALL_DIR: &str = "/opt/gatehouse-fuzz/bin";

/// Where state directories go: tmpfs if there is one (the vault and the
/// approvals book fsync every write, which would dominate a fuzzing run).
fn state_base() -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Removes state directories left by fuzzing processes that no longer run.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(state_base()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A service over `state` with an account signed in with [`FUZZ_PASSPHRASE`].
fn service(state: &std::path::Path, profile: &str) -> Result<Arc<BrokerService>, String> {
    let _ = std::fs::remove_dir_all(state);
    std::fs::create_dir_all(state).map_err(|e| format!("{}: {e}", state.display()))?;
    let keychain =
        Keychain::open(Some(Backend::Keyutils), profile).map_err(|e| format!("keychain: {e}"))?;
    let service = BrokerService::open(
        crate::service::BrokerDirs {
            state: state.to_path_buf(),
            credential_log: state.join("credentials.jsonl"),
            session_log: state.join("sessions.jsonl"),
            group_state: None,
            tpm: None,
            boundary_group: None,
        },
        keychain,
        60_000,
        Hardening::default(),
        INSTALL_DIR.into(),
    )?;
    service
        .dispatch(
            &peer(PeerRole::Cli),
            BrokerRequest::AccountInit {
                passphrase: SecretBytes::copy_from(FUZZ_PASSPHRASE),
            },
        )
        .map_err(|e| format!("account init: {e}"))?;
    Ok(service)
}

fn build() -> Result<Harness, String> {
    remove_stale_dirs();
    let pid = std::process::id();
    let dir = state_base().join(format!("{DIR_PREFIX}{pid}"));
    let account_profile = format!("fuzz-{pid}-account");
    Ok(Harness {
        main: service(&dir.join("main"), &format!("fuzz-{pid}"))?,
        account: service(&dir.join("account"), &account_profile)?,
        account_keychain: Keychain::open(Some(Backend::Keyutils), &account_profile)
            .map_err(|e| format!("keychain: {e}"))?,
        recent: Mutex::new(VecDeque::new()),
    })
}

/// A synthetic peer with `role` and a pid of its own.
fn peer(role: PeerRole) -> PeerIdentity {
    let index = PeerRole::ALL.iter().position(|r| *r == role).unwrap_or(0);
    PeerIdentity {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        pid: 1000 + index as i32,
        exe: PathBuf::from(INSTALL_DIR).join(role.binary_name()),
        role,
        pidfd_pinned: true,
        ppid: 1,
    }
}

impl Harness {
    /// Approval ids this harness saw created, newest first (listing the
    /// broker's up to 1024 requests for every input would dominate a run).
    fn recent_approvals(&self) -> Vec<(u64, PeerRole)> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().copied().collect()
    }

    fn saw_approval(&self, id: u64, requester: PeerRole) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == 64 {
            recent.pop_front();
        }
        recent.push_back((id, requester));
    }

    /// See the module doc: small approval ids and unsigned tokens.
    fn resolve_approvals(&self, body: &mut BrokerRequest) {
        let resolve = |id: &mut u64, recent: &[(u64, PeerRole)]| -> Option<PeerRole> {
            let &(real, requester) = recent.get(usize::try_from(*id).ok()?)?;
            *id = real;
            Some(requester)
        };
        match body {
            BrokerRequest::ShowApproval { id }
            | BrokerRequest::ApprovalOutcome { id }
            | BrokerRequest::DecideApproval { id, .. }
                if *id < 64 =>
            {
                resolve(id, &self.recent_approvals());
            }
            BrokerRequest::ConsumeApproval { token, .. }
            | BrokerRequest::CheckApproval { token, .. }
                if token.approval_id < 64 =>
            {
                let mut id = token.approval_id;
                let Some(requester) = resolve(&mut id, &self.recent_approvals()) else {
                    return;
                };
                token.approval_id = id;
                if token.signature.is_empty()
                    && let Ok(BrokerResponse::Outcome(outcome)) = self
                        .main
                        .dispatch(&peer(requester), BrokerRequest::ApprovalOutcome { id })
                    && let ApprovalOutcome::Approved(real) = *outcome
                {
                    *token = real;
                }
            }
            _ => {}
        }
    }

    /// Handles one decoded frame as the server's connection loop would.
    fn frame(&self, msg: ClientMessage<BrokerRequest>, replies: &mut Option<&mut Vec<String>>) {
        match msg {
            // The handshake's order is not modelled: a Hello anywhere is
            // decoded and skipped, so single request frames reach dispatch.
            ClientMessage::Hello(_) => {}
            ClientMessage::Request { id, mut body } => {
                self.resolve_approvals(&mut body);
                let role = PeerRole::ALL[(id % PeerRole::ALL.len() as u64) as usize];
                let peer = peer(role);
                let decided_for = match &body {
                    BrokerRequest::DecideApproval { id, .. } => self
                        .recent_approvals()
                        .iter()
                        .find(|(known, _)| known == id)
                        .map(|(_, requester)| *requester),
                    _ => None,
                };
                let keychain_set = match &body {
                    BrokerRequest::KeychainSet { name, .. } => Some(name.clone()),
                    _ => None,
                };
                let remember = matches!(
                    body,
                    BrokerRequest::SignIn {
                        remember_device: true,
                        ..
                    }
                );
                let service = match body.operation() {
                    Operation::AccountInit | Operation::SignIn | Operation::SignOut => {
                        &self.account
                    }
                    _ => &self.main,
                };
                let _subscribes =
                    gatehouse_ipc::server::Handler::<Broker>::subscribes(&**service, &body);
                let result = service.dispatch(&peer, body);
                let ok = result.is_ok();
                match &result {
                    Ok(BrokerResponse::ApprovalRequested { id, .. }) => {
                        self.saw_approval(*id, role)
                    }
                    Ok(BrokerResponse::Decided {
                        new_id: Some(new_id),
                        ..
                    }) => {
                        // An edit: a new request on behalf of the original requester.
                        if let Some(requester) = decided_for {
                            self.saw_approval(*new_id, requester);
                        }
                    }
                    _ => {}
                }
                if let Some(r) = replies.as_mut() {
                    r.push(match &result {
                        Ok(resp) => {
                            let d = format!("{resp:?}");
                            let end = d.find([' ', '(', '{']).unwrap_or(d.len());
                            format!("{role} ok {}", &d[..end])
                        }
                        Err(e) => format!("{role} err {e}"),
                    });
                }
                let reply: Reply = ServerMessage::Reply { id, result };
                // The server writes the reply with `write_frame`; an encoding
                // failure (e.g. a reply over the frame limit) closes that connection.
                let _ = codec::encode_frame(&reply);
                if ok {
                    self.cleanup(keychain_set, remember);
                }
            }
        }
    }

    /// Keeps the kernel keyring from filling up over a long run.
    fn cleanup(&self, keychain_set: Option<String>, remember: bool) {
        if let Some(name) = keychain_set {
            let _ = self
                .main
                .dispatch(&peer(PeerRole::Cli), BrokerRequest::KeychainRemove { name });
        }
        if remember {
            let _ = self.account_keychain.delete("unlock");
        }
    }
}

/// Whether [`fuzz_frame`] reaches a real dispatcher in this process (it only
/// decodes when the service cannot be built, e.g. without kernel keyutils).
pub fn dispatcher_available() -> Result<(), String> {
    match HARNESS.get_or_init(build) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.clone()),
    }
}

/// Feeds `data` to the broker as the bytes of one connection. Never panics.
pub fn fuzz_frame(data: &[u8]) {
    run(data, None);
}

/// [`fuzz_frame`], returning one line per dispatched request
/// (`ROLE ok RESPONSE-KIND` or `ROLE err MESSAGE`), for tests of the seeds.
pub fn fuzz_frame_replies(data: &[u8]) -> Vec<String> {
    let mut replies = Vec::new();
    run(data, Some(&mut replies));
    replies
}

fn run(data: &[u8], mut replies: Option<&mut Vec<String>>) {
    let harness = HARNESS.get_or_init(build).as_ref().ok();
    let mut rest = data;
    for _ in 0..MAX_FRAMES {
        let Some((prefix, after)) = rest.split_first_chunk::<4>() else {
            return; // EOF inside a prefix: the server sees a closed connection.
        };
        let len = match codec::check_len(*prefix) {
            Ok(len) => len,
            Err(e) => {
                // The server answers Malformed(FrameTooLarge) and closes.
                let _ = refuse(e);
                return;
            }
        };
        if after.len() < len {
            // Truncated frame: Malformed, connection closed.
            let _ = refuse(FrameError::Malformed(format!(
                "truncated frame: expected {len} bytes"
            )));
            return;
        }
        let (body, next) = after.split_at(len);
        rest = next;
        match codec::decode::<ClientMessage<BrokerRequest>>(body) {
            Ok(msg) => {
                if let Some(h) = harness {
                    h.frame(msg, &mut replies);
                }
            }
            Err(e) => {
                let _ = refuse(e);
                return;
            }
        }
    }
}

/// Encodes what the server sends before closing a connection for `e`.
fn refuse(e: FrameError) -> Result<zeroize::Zeroizing<Vec<u8>>, FrameError> {
    let err = match e {
        FrameError::TooLarge { len, max } => ProtocolError::FrameTooLarge {
            len: len as u64,
            max: max as u64,
        },
        other => ProtocolError::Malformed(other.to_string()),
    };
    let reply: Reply = ServerMessage::Malformed(err);
    codec::encode_frame(&reply)
}
