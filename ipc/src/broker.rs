//! Messages of the broker service (`broker.sock`).
//!
//! Owns the request/response/error/event types every broker client speaks.
//! Must never: contain a field whose `Debug` could print a key or payload
//! (secret values are [`SecretBytes`]), or a field by which a client claims
//! its own identity (the requester of an approval is filled in by the broker).

use serde::{Deserialize, Serialize};

use crate::peer::PeerRole;
use crate::secret::{SecretBytes, bytes};
use crate::wire::Service;

/// Marker type for the broker service.
pub struct Broker;

impl Service for Broker {
    const SOCKET: &'static str = "broker.sock";
    const NAME: &'static str = "broker";
    type Request = BrokerRequest;
    type Response = BrokerResponse;
    type Error = BrokerError;
    type Event = BrokerEvent;
}

/// Which key seals a field: an organization's key, or the user's own key
/// (private records).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyScope {
    Org(String),
    Private,
}

impl std::fmt::Display for KeyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyScope::Org(o) => write!(f, "org {o}"),
            KeyScope::Private => f.write_str("private"),
        }
    }
}

/// Where a sealed field belongs. All of it is bound into the ciphertext as
/// associated data: a ciphertext moved elsewhere fails to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldAddress {
    pub scope: KeyScope,
    pub record_kind: String,
    pub record_id: String,
    pub field: String,
    /// Extra plaintext the secret is bound to (e.g. a host's address, port,
    /// user and host-key fingerprint), so changing it breaks the seal.
    #[serde(with = "bytes")]
    pub binding: Vec<u8>,
}

impl std::fmt::Display for FieldAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}/{} field {}",
            self.scope, self.record_kind, self.record_id, self.field
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealItem {
    pub address: FieldAddress,
    pub plaintext: SecretBytes,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenItem {
    pub address: FieldAddress,
    #[serde(with = "bytes")]
    pub sealed: Vec<u8>,
}

/// A record's plaintext content to authenticate under its scope's key
/// (records carry a MAC over all their fields, so a plaintext change made
/// without the key is detected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacItem {
    pub scope: KeyScope,
    pub record_kind: String,
    pub record_id: String,
    /// The canonical encoding of every field of the record (sealed fields as ciphertext).
    #[serde(with = "bytes")]
    pub content: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyItem {
    pub item: MacItem,
    #[serde(with = "bytes")]
    pub mac: Vec<u8>,
}

/// Where sessiond is about to connect, as it read it from the host record.
/// The broker releases a credential only if the MAC-verified record says the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub address: String,
    pub port: u16,
    pub username: String,
    /// The server's host key (`ALG SHA256:…`) as the record pins it (and
    /// sessiond checked in the handshake); `None` for a record that pins
    /// none. Part of a keychain entry's destination binding: the same
    /// address, port and user behind another host key is a new destination.
    pub host_key: Option<String>,
}

/// A host record presented to the broker to obtain the use of one of its
/// credentials: the record's MAC input and MAC (so the broker checks its
/// integrity), which sealed field holds the credential (with its binding),
/// and where the connection goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCredential {
    pub record: VerifyItem,
    /// `ssh.password` or `ssh.private_key_path`, with the record's binding.
    pub field: FieldAddress,
    pub destination: Destination,
    /// Set when the credential is for an interactive shell (`connect`, a
    /// terminal tab): who opened it and the broker's shell ticket, if any
    /// (see [`BrokerRequest::ShellTicket`]). `None` for a single command.
    pub shell: Option<ShellUse>,
}

/// An interactive shell a credential is released for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellUse {
    /// The role of the process that asked sessiond for the shell.
    pub opened_by: PeerRole,
    /// The ticket the broker gave that process for this host
    /// ([`BrokerRequest::ShellTicket`]); required when the host's org
    /// policy says `connect_needs_presence`, whoever opened the shell.
    pub ticket: Option<SecretBytes>,
}

/// A connector or MCP server record presented to the broker to obtain its
/// sealed `auth`, for the one endpoint copilotd is about to call: the
/// record's MAC input and MAC, the `auth` field's address (with its
/// binding), and where the call goes (the connector's `base_url`, the MCP
/// server's HTTP transport URL, exactly as the record names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAuth {
    pub record: VerifyItem,
    /// The record's `auth` field, with the record's binding.
    pub field: FieldAddress,
    pub destination: String,
}

/// What kind of secret a keychain entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretKind {
    Password,
    PrivateKey,
    Token,
}

impl std::str::FromStr for SecretKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "password" => Ok(SecretKind::Password),
            "private-key" | "key" => Ok(SecretKind::PrivateKey),
            "token" => Ok(SecretKind::Token),
            other => Err(format!(
                "unknown secret kind {other:?} (password, private-key, token)"
            )),
        }
    }
}

impl std::fmt::Display for SecretKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretKind::Password => "password",
            SecretKind::PrivateKey => "private-key",
            SecretKind::Token => "token",
        })
    }
}

/// What a requester asks permission to do. Every field is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub host: String,
    /// The host's platform (`routeros`, `ios`, `linux`, …): decides how the command is classified.
    pub vendor: String,
    pub org: String,
    /// The credential the execution will use, e.g. `keychain:core-sw1`.
    pub credential: Option<String>,
    /// The exact command or API payload, byte for byte.
    pub command: String,
    pub expected_effect: String,
}

/// The prefix of [`Action::vendor`] for actions copilotd itself carries out
/// (`copilot:connector`, `copilot:mcp`, `copilot:records`): API calls and
/// record writes, never a device command.
pub const COPILOT_ACTION_PREFIX: &str = "copilot:";

impl Action {
    /// The one role that may spend a token for this action: copilotd for its
    /// own API calls and record writes, sessiond for everything else (device
    /// commands).
    pub fn executor(&self) -> crate::PeerRole {
        if self.vendor.starts_with(COPILOT_ACTION_PREFIX) {
            crate::PeerRole::Copilotd
        } else {
            crate::PeerRole::Sessiond
        }
    }
}

/// The process that asked, as the broker identified it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub role: PeerRole,
    pub pid: i32,
    pub exe: String,
}

/// A decision by a person (ui or cli role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Approve,
    Reject {
        reason: String,
    },
    /// Replaces the command; the edited action is a new request that needs its own decision.
    Edit {
        command: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
    /// Replaced by an edited request (see `replaced_by`).
    Edited,
    Expired,
    /// Withdrawn by its requester before anyone decided (`reject_reason`
    /// says why, e.g. the copilot's person left).
    Withdrawn,
}

/// An approval request as shown to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    pub id: u64,
    pub action: Action,
    pub requester: Requester,
    pub class: String,
    pub reasons: Vec<String>,
    pub state: ApprovalState,
    pub created_ms: u64,
    pub decided_by: Option<Requester>,
    pub replaced_by: Option<u64>,
    pub reject_reason: Option<String>,
    /// Set when Autopilot approved it: the grant and the org rule that
    /// permitted it (`decided_by` is the person who started the task).
    #[serde(default)]
    pub autopilot: Option<String>,
}

/// A broker-signed permission to execute exactly `action`, once, before `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalToken {
    pub approval_id: u64,
    pub action: Action,
    pub requester: Requester,
    pub approver: Requester,
    pub nonce: [u8; 16],
    pub expires_ms: u64,
    #[serde(with = "bytes")]
    pub signature: Vec<u8>,
}

/// What a requester learns about its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalOutcome {
    Pending,
    Approved(Box<ApprovalToken>),
    Rejected { reason: String },
    Edited { new_id: u64 },
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgInfo {
    pub id: String,
    pub name: String,
    pub key_id: String,
    pub created_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeychainEntry {
    pub name: String,
    pub kind: SecretKind,
    pub created_ms: u64,
    pub rotated_ms: u64,
}

/// The hardening of one process, as it observes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Hardening {
    pub dumpable: bool,
    pub no_new_privs: bool,
    /// `/proc/self/status` Seccomp: 0 off, 1 strict, 2 filter.
    pub seccomp_mode: u8,
    pub landlock: String,
    pub core_limit: u64,
    pub secret_memory: String,
    /// Layers that failed to apply (only possible with `--allow-degraded`).
    pub degraded: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatus {
    pub version: String,
    pub pid: u32,
    pub uid: u32,
    pub hardening: Hardening,
    pub keychain_backend: String,
    pub keychain_warning: Option<String>,
    pub account_initialized: bool,
    pub signed_in: bool,
    pub remembered_device: bool,
    pub orgs: usize,
    pub pending_approvals: usize,
    /// Autopilot tasks still running (not ended, within their time bound).
    #[serde(default)]
    pub autopilot_tasks: usize,
    pub cached_secrets: usize,
    /// Whether the asking peer was pinned by a pidfd while identified (SO_PEERPIDFD).
    pub peer_pidfd: bool,
    pub install_dir: String,
    /// The privilege boundary: the `gatehouse` group's gid when the broker
    /// runs from a setgid install (peers must carry that group); `None` in a
    /// development build, where any same-uid process can take any role.
    pub boundary_group: Option<u32>,
    /// Where the remembered-device unlock material lives (`None`: not remembered).
    pub remembered_at: Option<String>,
    /// The TPM remembered material is sealed to (`None`: no TPM the broker can use).
    pub tpm: Option<String>,
}

/// What sign-out purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    pub keys_zeroized: usize,
    pub cached_secrets_zeroized: usize,
    pub unlock_material_deleted: bool,
    pub daemons_notified: usize,
    pub micros: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionSpan {
    pub start: usize,
    pub end: usize,
    pub rule_id: String,
}

/// Every broker operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BrokerRequest {
    Status,
    AccountInit {
        passphrase: SecretBytes,
    },
    SignIn {
        passphrase: SecretBytes,
        remember_device: bool,
    },
    SignOut,
    OrgCreate {
        name: String,
    },
    OrgList,
    KeychainSet {
        name: String,
        kind: SecretKind,
        payload: SecretBytes,
    },
    KeychainList,
    KeychainRemove {
        name: String,
    },
    SealFields {
        items: Vec<SealItem>,
    },
    OpenFields {
        items: Vec<OpenItem>,
    },
    RequestApproval {
        action: Action,
    },
    ListApprovals,
    ShowApproval {
        id: u64,
    },
    ApprovalOutcome {
        id: u64,
    },
    DecideApproval {
        id: u64,
        decision: Decision,
        /// Proof that a person is present: the account passphrase, typed by
        /// the person deciding. With the privilege boundary on the broker
        /// requires it for every approve or edit from the CLI and for every
        /// dangerous one; `None` otherwise.
        presence: Option<SecretBytes>,
    },
    ConsumeApproval {
        token: Box<ApprovalToken>,
        action: Action,
    },
    Redact {
        text: String,
    },
    Subscribe,
    /// MACs for records being written (writers only).
    MacRecords {
        items: Vec<MacItem>,
    },
    /// Checks records' MACs (constant time); one bool per item.
    VerifyRecords {
        items: Vec<VerifyItem>,
    },
    /// The SSH password of a verified host record, for the one connection
    /// being opened to its destination (sessiond only).
    ReleasePassword {
        host: Box<HostCredential>,
    },
    /// The public half of a verified host record's SSH key (OpenSSH text).
    SshPublicKey {
        host: Box<HostCredential>,
    },
    /// Signs an SSH `publickey` user-authentication request with the host
    /// record's key, like an SSH agent. The broker checks that `to_sign` is
    /// exactly such a request, for the record's user and this key; the key
    /// itself never leaves the broker.
    SshSign {
        host: Box<HostCredential>,
        #[serde(with = "bytes")]
        to_sign: Vec<u8>,
    },
    /// The key that seals one session recording (derived from the user's
    /// key and the recording id; gone with sign-out).
    RecordingKey {
        recording_id: String,
    },
    /// An AI provider's API key (keychain entry `name`, a token stored with
    /// the endpoint it belongs to), for that endpoint only (copilotd only).
    ReleaseProviderKey {
        name: String,
        endpoint: String,
    },
    /// A person starts an Autopilot task: copilotd may have device commands
    /// auto-approved inside these bounds, where org policy permits (cli/ui).
    GrantAutopilot {
        bound: AutopilotBound,
    },
    /// A person ends an Autopilot task before its bounds do (cli/ui); copilotd
    /// ends the task it works in when its person's chat client goes away
    /// (ending only takes authority away).
    EndAutopilot {
        grant: u64,
    },
    /// The requester withdraws its own pending request (copilotd, when the
    /// person it works for went away): the card is closed with `reason`.
    WithdrawApproval {
        id: u64,
        reason: String,
    },
    /// Like `RequestApproval`, inside an Autopilot grant: the broker approves
    /// at once what the grant's bounds and org policy permit; anything else
    /// waits for a person as usual (copilotd).
    RequestAutoApproval {
        action: Action,
        grant: u64,
    },
    /// The body of a verified procedure or memory record, for the copilot
    /// (copilotd only): never any other field, never a credential.
    OpenNote {
        record: Box<VerifyItem>,
        /// `body` of that record.
        field: FieldAddress,
    },
    /// The MAC of one procedure or memory record copilotd writes, only if its
    /// content is exactly the write a person approved (copilotd only; the
    /// token is spent here).
    MacApprovedRecord(Box<ApprovedRecord>),
    /// The sealed `auth` of a verified connector or MCP server record, with
    /// its `keychain:NAME` references resolved, for the endpoint the record
    /// names (copilotd only).
    ReleaseServiceAuth {
        service: Box<ServiceAuth>,
    },
    /// Checks a token for `action` as `ConsumeApproval` would (signature,
    /// executor, coverage, expiry, not yet used) without spending it: the
    /// executor asks this before any device credential is released.
    CheckApproval {
        token: Box<ApprovalToken>,
        action: Action,
    },
    /// A person lets keychain entry `name` be used as a host credential for
    /// one more destination (bound on first use, see the broker's
    /// `destinations`); `presence` is the account passphrase (cli/ui).
    KeychainBind {
        name: String,
        destination: Destination,
        presence: SecretBytes,
    },
    /// Like `OpenFields`, for values the client shows to a person
    /// (`host show --reveal`, `field open`, the app's Reveal). With the
    /// privilege boundary on, a credential field (any sealed field of a
    /// host, connector or MCP server record) revealed to the CLI or the app
    /// needs `presence`, the account passphrase (verified and throttled like
    /// a decision's). Every reveal, refused or not, is in the credential log.
    RevealFields {
        items: Vec<OpenItem>,
        presence: Option<SecretBytes>,
    },
    /// Before `gatehouse connect` (or an app's terminal tab) opens an
    /// interactive shell to host record `record_id` (in `scope`): the ticket sessiond must present with the
    /// credential request (`ShellUse::ticket`). When the org's policy says
    /// `connect_needs_presence` the broker asks for `presence` (the account
    /// passphrase) first; otherwise the answer is `ShellTicket(None)`.
    ShellTicket {
        scope: KeyScope,
        record_id: String,
        presence: Option<SecretBytes>,
    },
    /// The account's Secret Key as printed (`GH1-…`), the second secret a
    /// new device needs with the passphrase; `presence` is the passphrase.
    AccountSecretKey {
        presence: SecretBytes,
    },
    /// Organization `org`'s policy (blocks, classes, Autopilot and presence
    /// rules) as the broker keeps it, in its own state (group-only with the
    /// privilege boundary on): JSON text, `{}` when the org has none. The
    /// daemons read it here, never from a file the user can write.
    OrgPolicyGet {
        org: String,
    },
    /// Replaces organization `org`'s policy with `policy` (JSON, the fields
    /// of `gatehouse_policy::OrgPolicy`; an unknown field is refused).
    /// Lifting a block or a presence rule is what a program running as the
    /// user would want: `presence`, the account passphrase, is required.
    OrgPolicySet {
        org: String,
        policy: String,
        presence: SecretBytes,
    },
    /// The account's card for a sync server (syncd only): its name there,
    /// its identity and agreement public keys, self-signed by the identity
    /// key (`gatehouse_membership::card::SignedCard`, postcard). The first
    /// call names the account on sync servers (1–64 of `[A-Za-z0-9._-]`,
    /// kept in the account file); later calls must give the same name.
    SyncCard {
        account: String,
    },
    /// Signs a sync server's device challenge (syncd only): `challenge` must
    /// decode exactly as a `gatehouse_membership::auth::AuthChallenge` for
    /// this account's name, signed under its domain
    /// (`gatehouse/sync-auth/v1`). Never a signature over other bytes. The
    /// same op answers a relay's challenge for live sharing (issue 14).
    SyncSignChallenge {
        #[serde(with = "bytes")]
        challenge: Vec<u8>,
    },
    /// Signs one record write (syncd only): `write` must decode exactly as a
    /// `gatehouse_membership::envelope::WriteBody` by this account, for the
    /// record `record` (its MAC must verify under its scope's key: a record
    /// the local store holds), same scope, kind and id, whose content hash
    /// is the one the broker computes from the MACed content
    /// (`crate::sync_record`), or the empty content for a tombstone.
    SyncSignWrite {
        record: Box<VerifyItem>,
        #[serde(with = "bytes")]
        write: Vec<u8>,
    },
    /// The account's key bundle for its sync server (cli/ui, with the
    /// passphrase as presence): the account file sealed under the key the
    /// passphrase and the Secret Key derive, and the server's verifier.
    SyncKeyBundle {
        presence: SecretBytes,
    },
    /// The verifier for fetching `account`'s key bundle from a server, from
    /// the passphrase and the typed Secret Key (cli/ui; opens nothing).
    BundleVerifier {
        account: String,
        kdf: BundleKdf,
        passphrase: SecretBytes,
        secret_key: SecretBytes,
    },
    /// Makes this empty profile the account of a fetched key bundle and
    /// signs it in (cli/ui): a second device of the account.
    AccountFromBundle {
        account: String,
        kdf: BundleKdf,
        passphrase: SecretBytes,
        secret_key: SecretBytes,
        #[serde(with = "bytes")]
        bundle: Vec<u8>,
    },
}

/// The public derivation parameters of a key bundle (Argon2id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleKdf {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    #[serde(with = "bytes")]
    pub salt: Vec<u8>,
}

/// A key bundle ready for `PUT /v1/bundle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBundleOut {
    pub kdf: BundleKdf,
    /// Derived from both secrets; the server keeps a slow hash of it.
    #[serde(with = "bytes")]
    pub verifier: Vec<u8>,
    #[serde(with = "bytes")]
    pub sealed: Vec<u8>,
}

/// A record write copilotd asks the broker to MAC (see
/// [`BrokerRequest::MacApprovedRecord`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovedRecord {
    /// A person's approval of the write ([`crate::record_write::RecordWrite`]
    /// rendering as its command); copilotd's own, spent by this request.
    pub token: ApprovalToken,
    /// The record to MAC: every field, the body sealed.
    pub item: MacItem,
    /// For a procedure update: the record as stored now (its MAC must
    /// verify; only the body, the update time and the revision may change).
    pub current: Option<VerifyItem>,
    /// The host records a memory links to (their MACs must verify): their
    /// names are what the person saw.
    pub hosts: Vec<VerifyItem>,
}

/// The bounds a person puts on an Autopilot task. Dangerous commands, and
/// whatever org policy does not permit, still wait for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotBound {
    /// The organization whose policy decides.
    pub org: String,
    /// The only hosts whose commands may be auto-approved (at least one).
    pub hosts: Vec<String>,
    /// Most auto-approvals in the task (1..=100).
    pub max_steps: u32,
    /// How long the task may run, in seconds (1..=8 h).
    pub seconds: u64,
}

/// Most auto-approvals one Autopilot task may have.
pub const AUTOPILOT_MAX_STEPS: u32 = 100;
/// Longest Autopilot task, in seconds.
pub const AUTOPILOT_MAX_SECONDS: u64 = 8 * 3600;

impl BrokerRequest {
    /// The operation this request performs (what the role table decides on).
    pub fn operation(&self) -> Operation {
        match self {
            BrokerRequest::Status => Operation::Status,
            BrokerRequest::AccountInit { .. } => Operation::AccountInit,
            BrokerRequest::SignIn { .. } => Operation::SignIn,
            BrokerRequest::SignOut => Operation::SignOut,
            BrokerRequest::OrgCreate { .. } => Operation::OrgCreate,
            BrokerRequest::OrgList => Operation::OrgList,
            BrokerRequest::KeychainSet { .. } => Operation::KeychainSet,
            BrokerRequest::KeychainList => Operation::KeychainList,
            BrokerRequest::KeychainRemove { .. } => Operation::KeychainRemove,
            BrokerRequest::SealFields { .. } => Operation::SealFields,
            BrokerRequest::OpenFields { .. } => Operation::OpenFields,
            BrokerRequest::RevealFields { .. } => Operation::RevealFields,
            BrokerRequest::ShellTicket { .. } => Operation::ShellTicket,
            BrokerRequest::RequestApproval { .. } => Operation::RequestApproval,
            BrokerRequest::ListApprovals => Operation::ListApprovals,
            BrokerRequest::ShowApproval { .. } => Operation::ShowApproval,
            BrokerRequest::ApprovalOutcome { .. } => Operation::ApprovalOutcome,
            BrokerRequest::DecideApproval { .. } => Operation::DecideApproval,
            BrokerRequest::ConsumeApproval { .. } => Operation::ConsumeApproval,
            BrokerRequest::CheckApproval { .. } => Operation::CheckApproval,
            BrokerRequest::Redact { .. } => Operation::Redact,
            BrokerRequest::Subscribe => Operation::Subscribe,
            BrokerRequest::MacRecords { .. } => Operation::MacRecords,
            BrokerRequest::VerifyRecords { .. } => Operation::VerifyRecords,
            BrokerRequest::ReleasePassword { .. } => Operation::ReleasePassword,
            BrokerRequest::SshPublicKey { .. } => Operation::SshPublicKey,
            BrokerRequest::SshSign { .. } => Operation::SshSign,
            BrokerRequest::RecordingKey { .. } => Operation::RecordingKey,
            BrokerRequest::ReleaseProviderKey { .. } => Operation::ReleaseProviderKey,
            BrokerRequest::GrantAutopilot { .. } => Operation::GrantAutopilot,
            BrokerRequest::EndAutopilot { .. } => Operation::EndAutopilot,
            BrokerRequest::WithdrawApproval { .. } => Operation::WithdrawApproval,
            BrokerRequest::RequestAutoApproval { .. } => Operation::RequestAutoApproval,
            BrokerRequest::OpenNote { .. } => Operation::OpenNote,
            BrokerRequest::MacApprovedRecord(_) => Operation::MacApprovedRecord,
            BrokerRequest::ReleaseServiceAuth { .. } => Operation::ReleaseServiceAuth,
            BrokerRequest::KeychainBind { .. } => Operation::KeychainBind,
            BrokerRequest::AccountSecretKey { .. } => Operation::AccountSecretKey,
            BrokerRequest::OrgPolicyGet { .. } => Operation::OrgPolicyGet,
            BrokerRequest::OrgPolicySet { .. } => Operation::OrgPolicySet,
            BrokerRequest::SyncCard { .. } => Operation::SyncCard,
            BrokerRequest::SyncSignChallenge { .. } => Operation::SyncSignChallenge,
            BrokerRequest::SyncSignWrite { .. } => Operation::SyncSignWrite,
            BrokerRequest::SyncKeyBundle { .. } => Operation::SyncKeyBundle,
            BrokerRequest::BundleVerifier { .. } => Operation::BundleVerifier,
            BrokerRequest::AccountFromBundle { .. } => Operation::AccountFromBundle,
        }
    }
}

/// The operations of the role table (one per request kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Operation {
    Status,
    AccountInit,
    SignIn,
    SignOut,
    OrgCreate,
    OrgList,
    KeychainSet,
    KeychainList,
    KeychainRemove,
    SealFields,
    OpenFields,
    RequestApproval,
    ListApprovals,
    ShowApproval,
    ApprovalOutcome,
    DecideApproval,
    ConsumeApproval,
    Redact,
    Subscribe,
    MacRecords,
    VerifyRecords,
    ReleasePassword,
    SshPublicKey,
    SshSign,
    RecordingKey,
    ReleaseProviderKey,
    GrantAutopilot,
    EndAutopilot,
    WithdrawApproval,
    RequestAutoApproval,
    OpenNote,
    MacApprovedRecord,
    ReleaseServiceAuth,
    /// Appended last: variant indices are the wire format.
    CheckApproval,
    KeychainBind,
    RevealFields,
    ShellTicket,
    AccountSecretKey,
    OrgPolicyGet,
    OrgPolicySet,
    SyncCard,
    SyncSignChallenge,
    SyncSignWrite,
    SyncKeyBundle,
    BundleVerifier,
    AccountFromBundle,
}

impl Operation {
    pub const ALL: [Operation; 46] = [
        Operation::Status,
        Operation::AccountInit,
        Operation::SignIn,
        Operation::SignOut,
        Operation::OrgCreate,
        Operation::OrgList,
        Operation::KeychainSet,
        Operation::KeychainList,
        Operation::KeychainRemove,
        Operation::SealFields,
        Operation::OpenFields,
        Operation::RequestApproval,
        Operation::ListApprovals,
        Operation::ShowApproval,
        Operation::ApprovalOutcome,
        Operation::DecideApproval,
        Operation::ConsumeApproval,
        Operation::Redact,
        Operation::Subscribe,
        Operation::MacRecords,
        Operation::VerifyRecords,
        Operation::ReleasePassword,
        Operation::SshPublicKey,
        Operation::SshSign,
        Operation::RecordingKey,
        Operation::ReleaseProviderKey,
        Operation::GrantAutopilot,
        Operation::EndAutopilot,
        Operation::WithdrawApproval,
        Operation::RequestAutoApproval,
        Operation::OpenNote,
        Operation::MacApprovedRecord,
        Operation::ReleaseServiceAuth,
        Operation::CheckApproval,
        Operation::KeychainBind,
        Operation::RevealFields,
        Operation::ShellTicket,
        Operation::AccountSecretKey,
        Operation::OrgPolicyGet,
        Operation::OrgPolicySet,
        Operation::SyncCard,
        Operation::SyncSignChallenge,
        Operation::SyncSignWrite,
        Operation::SyncKeyBundle,
        Operation::BundleVerifier,
        Operation::AccountFromBundle,
    ];
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BrokerResponse {
    Status(Box<BrokerStatus>),
    Done,
    SignedIn {
        orgs: usize,
        keychain_entries: usize,
    },
    SignedOut(PurgeReport),
    Org(OrgInfo),
    Orgs(Vec<OrgInfo>),
    Keychain(Vec<KeychainEntry>),
    Sealed(Vec<SealedBytes>),
    Opened(Vec<SecretBytes>),
    ApprovalRequested {
        id: u64,
        class: String,
    },
    Approvals(Vec<ApprovalView>),
    Approval(Box<ApprovalView>),
    Outcome(Box<ApprovalOutcome>),
    Decided {
        state: ApprovalState,
        new_id: Option<u64>,
    },
    Consumed,
    Redacted {
        text: String,
        spans: Vec<RedactionSpan>,
    },
    Subscribed,
    Macs(Vec<SealedBytes>),
    Verified(Vec<bool>),
    Password(SecretBytes),
    /// OpenSSH public key text (`ssh-ed25519 AAAA…`).
    PublicKey(String),
    /// The SSH signature blob: string algorithm ‖ string signature; for
    /// `SyncSignChallenge` and `SyncSignWrite` the 64-byte Ed25519 signature.
    Signature(#[serde(with = "bytes")] Vec<u8>),
    RecordingKey(SecretBytes),
    ProviderKey(SecretBytes),
    AutopilotGranted {
        grant: u64,
        expires_ms: u64,
    },
    /// The answer to `RequestAutoApproval`: `auto_approved` names the rule
    /// when the broker approved at once (the token is then ready through
    /// `ApprovalOutcome`); `None` means the request waits for a person.
    AutoApprovalRequested {
        id: u64,
        class: String,
        auto_approved: Option<String>,
        /// Why a person must decide (when not auto-approved).
        why_person: Option<String>,
    },
    /// A procedure's or memory's body (UTF-8 text).
    Note(SecretBytes),
    /// A service record's `auth` as canonical JSON, `keychain:NAME`
    /// references replaced by the entries' payloads.
    ServiceAuth(SecretBytes),
    /// The answer to `CheckApproval`: the token would be accepted now.
    ApprovalValid,
    /// The answer to `ShellTicket`: the ticket for sessiond (`None`: the
    /// org's policy asks no presence for interactive shells).
    ShellTicket(Option<SecretBytes>),
    /// The account's Secret Key as printed (`GH1-…`).
    SecretKey(SecretBytes),
    /// The answer to `OrgPolicyGet`: the policy as JSON text.
    OrgPolicy(String),
    /// The answer to `SyncCard`: postcard `SignedCard`.
    Card(#[serde(with = "bytes")] Vec<u8>),
    /// The answer to `SyncKeyBundle`.
    KeyBundle(Box<KeyBundleOut>),
    /// The answer to `BundleVerifier`.
    Verifier(#[serde(with = "bytes")] Vec<u8>),
}

/// What a provider-key keychain entry holds: the key and the one endpoint
/// it may be sent to.
#[derive(Clone, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct ProviderKeyPayload {
    pub endpoint: String,
    pub key: String,
}

impl std::fmt::Debug for ProviderKeyPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ProviderKeyPayload {{ endpoint: {:?}, key: •••• }}",
            self.endpoint
        )
    }
}

/// A ciphertext (not secret), serialized compactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBytes(#[serde(with = "bytes")] pub Vec<u8>);

/// Why a ciphertext did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpenFailure {
    /// Too short, or not a Gatehouse field ciphertext.
    Truncated,
    UnknownVersion,
    /// Sealed under a key this account does not hold.
    UnknownKey,
    /// Authentication failed: tampered, or moved from another record/field/org.
    Tampered,
}

impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpenFailure::Truncated => "ciphertext truncated or not a Gatehouse ciphertext",
            OpenFailure::UnknownVersion => "unknown ciphertext format version",
            OpenFailure::UnknownKey => "sealed under a key this account does not hold",
            OpenFailure::Tampered => {
                "authentication failed: the ciphertext was altered or belongs to another record, field or organization"
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalError {
    NotFound,
    NotPending,
    /// A requester can never decide its own request.
    SelfDecision,
    BadSignature,
    Expired,
    Replayed,
    /// The presented action differs from the approved one in this field.
    Mismatch(ActionField),
    /// Only the requester may collect the token.
    NotRequester,
    /// This role may not carry out this kind of action (see [`Action::executor`]),
    /// or copilotd presented a token it did not ask for.
    WrongExecutor {
        executor: crate::PeerRole,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionField {
    Host,
    Vendor,
    Org,
    Credential,
    Command,
    ExpectedEffect,
}

impl std::fmt::Display for ApprovalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApprovalError::NotFound => f.write_str("no such approval request"),
            ApprovalError::NotPending => f.write_str("the request was already decided"),
            ApprovalError::SelfDecision => f.write_str("a requester cannot decide its own request"),
            ApprovalError::BadSignature => f.write_str("approval token signature is invalid"),
            ApprovalError::Expired => f.write_str("approval token expired"),
            ApprovalError::Replayed => f.write_str("approval token was already used"),
            ApprovalError::Mismatch(field) => {
                write!(
                    f,
                    "approval token does not cover this action: {field:?} differs"
                )
            }
            ApprovalError::NotRequester => f.write_str("only the requester may collect the token"),
            ApprovalError::WrongExecutor { executor } => write!(
                f,
                "this token is not yours to spend: only its own requester, as {executor}, carries out this action"
            ),
        }
    }
}

/// Every error a broker request can end in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum BrokerError {
    #[error("no account yet: run `gatehouse account init`")]
    NotInitialized,
    #[error("an account already exists in this profile")]
    AlreadyInitialized,
    #[error("signed out: run `gatehouse signin`")]
    SignedOut,
    #[error(
        "wrong passphrase ({failures} failed attempts; next attempt allowed in {retry_after_ms} ms)"
    )]
    WrongPassphrase { failures: u32, retry_after_ms: u64 },
    #[error("too many failed attempts: wait {retry_after_ms} ms")]
    TooSoon { retry_after_ms: u64 },
    #[error(
        "{why} needs proof of presence: the account passphrase (the CLI asks for it on its terminal; --passphrase-stdin reads it from stdin)"
    )]
    PresenceRequired { why: String },
    #[error("role {role} may not perform {operation}")]
    Forbidden {
        role: PeerRole,
        operation: Operation,
    },
    #[error("no organization named {0:?}")]
    NoSuchOrg(String),
    #[error("organization {0:?} already exists")]
    OrgExists(String),
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("no keychain entry named {0:?}")]
    KeychainNotFound(String),
    #[error("keychain backend {backend}: {reason}")]
    Keychain { backend: String, reason: String },
    #[error("cannot open {address}: {failure}")]
    OpenFailed {
        address: String,
        failure: OpenFailure,
    },
    #[error("approval: {0}")]
    Approval(ApprovalError),
    #[error("storage: {0}")]
    Storage(String),
    /// A host record failed the checks that guard a credential release.
    #[error("credential refused: {0}")]
    CredentialRefused(String),
    #[error(
        "keychain entry {entry:?} is bound to {bound:?}, not {destination}: a new destination (address, port, user or host key) needs proof of presence (`gatehouse keychain bind {entry} USER@ADDRESS:PORT [--host-key KEY]` asks for the account passphrase)"
    )]
    NewDestination {
        entry: String,
        destination: String,
        bound: Vec<String>,
    },
    #[error("internal error: {0}")]
    Internal(String),
    /// A copilot record request (open a note, MAC an approved write) failed
    /// the checks that guard it.
    #[error("record refused: {0}")]
    RecordRefused(RecordRefusal),
    /// syncd asked for a signature over something the broker does not sign
    /// (not a challenge or write body of this account, or a write that does
    /// not describe a record the local store holds).
    #[error("sync signature refused: {0}")]
    SyncRefused(String),
}

/// Why the broker refused to open a note for copilotd or to MAC a record
/// copilotd writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RecordRefusal {
    /// Only the `body` of a procedure or a memory is a note.
    #[error("{record_kind} field {field} is not a note: only procedure and memory bodies are")]
    NotANote { record_kind: String, field: String },
    /// The field (or a linked record) is not the presented record's.
    #[error("{0}")]
    Mismatch(String),
    /// The presented record's MAC does not verify.
    #[error(
        "record {record_kind}/{record_id} fails its integrity check (changed outside Gatehouse?)"
    )]
    Tampered {
        record_kind: String,
        record_id: String,
    },
    /// The record content does not decode, lacks the field, or holds a
    /// value of the wrong shape.
    #[error("record content: {0}")]
    Malformed(String),
    /// The token is not a person's approval of a copilot record write.
    #[error(
        "the approval is not for a copilot record write (host \"records\", vendor \"copilot:records\")"
    )]
    NotARecordWrite,
    /// The approved text is not a record write.
    #[error("the approved text is not a record write: {0}")]
    Unreadable(String),
    /// The record is not what the person approved.
    #[error("the record is not the write a person approved: {0}")]
    NotApproved(String),
}

/// Pushed to subscribed clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrokerEvent {
    /// Drop every decrypted cache and close sessions holding credentials.
    SignedOut,
    SignedIn,
    ApprovalPending {
        id: u64,
    },
    ApprovalDecided {
        id: u64,
        state: ApprovalState,
    },
}
