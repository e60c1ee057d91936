//! Broker commands: account, sign-in/out, organizations, keychain, fields,
//! approvals — each one request (or a few) to the broker.
//!
//! Owns reading secrets from the terminal or stdin (never argv or env) and
//! printing results. Must never print a keychain payload.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Args, Subcommand};
use gatehouse_ipc::broker::{
    Action, ApprovalOutcome, ApprovalToken, ApprovalView, Broker, BrokerError, BrokerRequest,
    BrokerResponse, Decision, FieldAddress, KeyScope, OpenItem, OrgInfo, SealItem, SecretKind,
};
use gatehouse_ipc::client::{CallError, Client, DEFAULT_TIMEOUT};
use gatehouse_ipc::{Layout, SecretBytes};

/// A connection to the broker with its own small runtime.
pub struct BrokerConn {
    rt: tokio::runtime::Runtime,
    client: Client<Broker>,
}

impl BrokerConn {
    pub fn connect(profile: Option<&str>) -> anyhow::Result<BrokerConn> {
        let layout = Layout::resolve(profile)?;
        Self::connect_layout(&layout)
    }

    pub fn connect_layout(layout: &Layout) -> anyhow::Result<BrokerConn> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = rt.block_on(Client::<Broker>::connect(&layout.runtime, DEFAULT_TIMEOUT))?;
        Ok(BrokerConn { rt, client })
    }

    pub fn call(&mut self, req: BrokerRequest) -> Result<BrokerResponse, CallError<BrokerError>> {
        self.rt.block_on(self.client.call(req))
    }

    pub fn server_pid(&self) -> u32 {
        self.client.welcome().server_pid
    }

    /// Calls and turns a remote error into an error for the user.
    pub fn ask(&mut self, req: BrokerRequest) -> anyhow::Result<BrokerResponse> {
        Ok(self.call(req)?)
    }
}

fn unexpected(r: BrokerResponse) -> anyhow::Error {
    anyhow::anyhow!("unexpected broker response: {r:?}")
}

/// Reads a secret: one line of stdin with `from_stdin`, else a terminal prompt.
pub fn read_secret_line(prompt: &str, from_stdin: bool) -> anyhow::Result<SecretBytes> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading stdin")?;
        let mut s = SecretBytes::new(std::mem::take(&mut line).into_bytes());
        s.trim_line_end();
        return Ok(s);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for the passphrase: pass --passphrase-stdin and pipe it in");
    }
    let p = rpassword::prompt_password(prompt).context("reading passphrase")?;
    Ok(SecretBytes::new(p.into_bytes()))
}

/// Why the broker asked for proof of presence, if `e` is that refusal
/// (from a direct call, a sealer or the record store).
pub fn presence_required(e: &anyhow::Error) -> Option<String> {
    use gatehouse_records::{RecordError, SealerError};
    let remote = e.chain().find_map(|c| {
        if let Some(CallError::Remote(r)) = c.downcast_ref::<CallError<BrokerError>>() {
            return Some(r.clone());
        }
        if let Some(SealerError::Remote(r)) = c.downcast_ref::<SealerError>() {
            return Some(r.clone());
        }
        if let Some(RecordError::Sealer(SealerError::Remote(r))) = c.downcast_ref::<RecordError>() {
            return Some(r.clone());
        }
        c.downcast_ref::<BrokerError>().cloned()
    })?;
    match remote {
        BrokerError::PresenceRequired { why } => Some(why),
        _ => None,
    }
}

/// Runs `attempt` without proof of presence (unless `passphrase_stdin`
/// says it is at hand); when the broker asks for it, reads the account
/// passphrase (terminal, or one line of stdin) and runs `attempt` once more
/// with it. Without a terminal and without `passphrase_stdin` the refusal
/// is the error, naming what needed presence.
pub fn with_presence<T>(
    passphrase_stdin: bool,
    mut attempt: impl FnMut(Option<SecretBytes>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if !passphrase_stdin {
        match attempt(None) {
            Err(e) => match presence_required(&e) {
                Some(_) if std::io::stdin().is_terminal() => eprintln!("{e}"),
                _ => return Err(e),
            },
            ok => return ok,
        }
    }
    let presence = read_secret_line("Account passphrase (proof of presence): ", passphrase_stdin)?;
    attempt(Some(presence))
}

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Create the account: derives your account key with Argon2id from a
    /// passphrase, makes its sync identity keys, and prints its Secret Key once.
    Init {
        /// Read the passphrase as one line from stdin instead of the terminal.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Print the account's Secret Key again (asks for the passphrase). A new
    /// device needs it with the passphrase to sign in through a sync server.
    SecretKey {
        /// Read the passphrase as one line from stdin instead of the terminal.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Sign in on this empty profile as an account that syncs through a
    /// server (a second device): fetches the key bundle with the passphrase
    /// and the Secret Key, connects this device, and pulls every record.
    FromServer(crate::sync_cmds::FromServerArgs),
}

/// Asks the broker for the Secret Key, with the passphrase as presence.
fn secret_key(b: &mut BrokerConn, passphrase: SecretBytes) -> anyhow::Result<String> {
    match b.ask(BrokerRequest::AccountSecretKey {
        presence: passphrase,
    })? {
        BrokerResponse::SecretKey(k) => Ok(String::from_utf8_lossy(k.expose()).into_owned()),
        other => bail!("unexpected broker answer: {other:?}"),
    }
}

const SECRET_KEY_ADVICE: &str = "Keep it with your passphrase, but not in the same place: a new \
device needs both to sign in, and neither Gatehouse nor the sync server can recover it.";

#[derive(Args, Debug)]
pub struct SigninArgs {
    /// Read the passphrase as one line from stdin instead of the terminal.
    #[arg(long)]
    passphrase_stdin: bool,
    /// Remember this device: keep unlock material in the OS keychain so the
    /// broker unlocks after a restart. Sign-out deletes it.
    #[arg(long)]
    remember: bool,
}

pub fn account(profile: Option<&str>, cmd: AccountCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AccountCmd::Init { passphrase_stdin } => {
            let pass = read_secret_line("New passphrase: ", passphrase_stdin)?;
            if !passphrase_stdin {
                let again = read_secret_line("Repeat passphrase: ", false)?;
                if again.expose() != pass.expose() {
                    bail!("the passphrases differ");
                }
            }
            let mut b = BrokerConn::connect(profile)?;
            let presence = SecretBytes::copy_from(pass.expose());
            b.ask(BrokerRequest::AccountInit { passphrase: pass })?;
            println!("account created and signed in");
            let key = secret_key(&mut b, presence)?;
            println!("Secret Key: {key}");
            println!("{SECRET_KEY_ADVICE} `gatehouse account secret-key` shows it again.");
        }
        AccountCmd::SecretKey { passphrase_stdin } => {
            let pass = read_secret_line("Account passphrase: ", passphrase_stdin)?;
            let mut b = BrokerConn::connect(profile)?;
            println!("{}", secret_key(&mut b, pass)?);
            eprintln!("{SECRET_KEY_ADVICE}");
        }
        AccountCmd::FromServer(args) => {
            return crate::sync_cmds::account_from_server(profile, &args);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn signin(profile: Option<&str>, args: &SigninArgs) -> anyhow::Result<ExitCode> {
    let pass = read_secret_line("Passphrase: ", args.passphrase_stdin)?;
    let mut b = BrokerConn::connect(profile)?;
    match b.ask(BrokerRequest::SignIn {
        passphrase: pass,
        remember_device: args.remember,
    })? {
        BrokerResponse::SignedIn {
            orgs,
            keychain_entries,
        } => {
            println!(
                "signed in: {orgs} organization(s), {keychain_entries} keychain entr{}{}",
                if keychain_entries == 1 { "y" } else { "ies" },
                if args.remember {
                    "; this device is remembered"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        r => Err(unexpected(r)),
    }
}

pub fn signout(profile: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    // What to clear is read (and its MAC checked) while the broker still can.
    let clears = crate::settings_cmds::sign_out_clears(profile);
    let mut b = BrokerConn::connect(profile)?;
    match b.ask(BrokerRequest::SignOut)? {
        BrokerResponse::SignedOut(r) => {
            let cleared = crate::settings_cmds::clear_after_sign_out(profile, &clears);
            if json {
                let mut v = serde_json::to_value(&r)?;
                v["settings_cleared"] = serde_json::to_value(&cleared)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for line in &cleared {
                    println!("{line}");
                }
                println!(
                    "signed out: zeroized {} key(s) and {} cached secret(s) in {} µs; unlock material {}; {} daemon subscriber(s) told to purge",
                    r.keys_zeroized,
                    r.cached_secrets_zeroized,
                    r.micros,
                    if r.unlock_material_deleted {
                        "deleted from the keychain"
                    } else {
                        "was not stored"
                    },
                    r.daemons_notified
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        r => Err(unexpected(r)),
    }
}

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Create an organization with a new random 256-bit key.
    Create { name: String },
    /// List organizations (names, ids, key ids).
    List {
        #[arg(long)]
        json: bool,
    },
    /// An organization's policy: blocked commands, classes for connector
    /// calls and MCP tools, what Autopilot may approve, whether `connect`
    /// needs the passphrase. The broker keeps it in its own state (with the
    /// privilege boundary on, where your other programs cannot write it).
    #[command(subcommand)]
    Policy(OrgPolicyCmd),
}

#[derive(Subcommand, Debug)]
pub enum OrgPolicyCmd {
    /// Print ORG's policy (name or id) as JSON, every field shown.
    Show { org: String },
    /// Replace ORG's policy (name or id) with the JSON in FILE (`-` reads
    /// stdin). Fields not given take their defaults; an unknown field is
    /// refused. Asks for the account passphrase (proof of presence).
    Set {
        org: String,
        file: std::path::PathBuf,
        /// Read the passphrase from the first line of stdin (then FILE
        /// cannot be `-`).
        #[arg(long)]
        passphrase_stdin: bool,
    },
}

pub fn org_list(b: &mut BrokerConn) -> anyhow::Result<Vec<OrgInfo>> {
    match b.ask(BrokerRequest::OrgList)? {
        BrokerResponse::Orgs(o) => Ok(o),
        r => Err(unexpected(r)),
    }
}

/// Resolves an organization name (or id) to its id.
pub fn org_id(b: &mut BrokerConn, name: &str) -> anyhow::Result<String> {
    let orgs = org_list(b)?;
    orgs.iter()
        .find(|o| o.name == name || o.id == name)
        .map(|o| o.id.clone())
        .ok_or_else(|| BrokerError::NoSuchOrg(name.into()).into())
}

pub fn org(profile: Option<&str>, cmd: OrgCmd) -> anyhow::Result<ExitCode> {
    let mut b = BrokerConn::connect(profile)?;
    match cmd {
        OrgCmd::Create { name } => match b.ask(BrokerRequest::OrgCreate { name })? {
            BrokerResponse::Org(o) => println!(
                "created organization {} (id {}, key {})",
                o.name, o.id, o.key_id
            ),
            r => return Err(unexpected(r)),
        },
        OrgCmd::List { json } => {
            let orgs = org_list(&mut b)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&orgs)?);
            } else {
                println!("{:<24} {:<18} {:<18}", "NAME", "ID", "KEY ID");
                for o in orgs {
                    println!("{:<24} {:<18} {:<18}", o.name, o.id, o.key_id);
                }
            }
        }
        OrgCmd::Policy(OrgPolicyCmd::Show { org }) => {
            let id = org_id(&mut b, &org)?;
            match b.ask(BrokerRequest::OrgPolicyGet { org: id })? {
                BrokerResponse::OrgPolicy(json) => {
                    let v: serde_json::Value = serde_json::from_str(&json)?;
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                r => return Err(unexpected(r)),
            }
        }
        OrgCmd::Policy(OrgPolicyCmd::Set {
            org,
            file,
            passphrase_stdin,
        }) => {
            let id = org_id(&mut b, &org)?;
            let from_stdin = file.as_os_str() == "-";
            if from_stdin && passphrase_stdin {
                bail!(
                    "the policy and the passphrase cannot both come from stdin: give the policy as a file"
                );
            }
            let policy = if from_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading the policy from stdin")?;
                text
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading the policy {}", file.display()))?
            };
            let presence =
                read_secret_line("Account passphrase (proof of presence): ", passphrase_stdin)?;
            match b.ask(BrokerRequest::OrgPolicySet {
                org: id.clone(),
                policy,
                presence,
            })? {
                BrokerResponse::Done => {
                    println!("set the policy of organization {org} (id {id})")
                }
                r => return Err(unexpected(r)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
pub enum KeychainCmd {
    /// Store a secret read from stdin (all of it; one trailing newline is dropped).
    Set {
        name: String,
        /// password, private-key or token
        #[arg(long, default_value = "password")]
        kind: SecretKind,
    },
    /// List entries: names and metadata only, never payloads.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete an entry.
    Rm { name: String },
    /// Let an entry used as a host credential go to one more destination
    /// (USER@ADDRESS:PORT). An entry is bound to the destination of its first
    /// use; any other needs this, with the account passphrase as proof of presence.
    /// Another host key at the same address, port and user is another destination.
    Bind {
        name: String,
        destination: String,
        /// The destination's SSH host key as its host record pins it
        /// (`ALG SHA256:…`, see `host show`); without it the first use pins it.
        #[arg(long)]
        host_key: Option<String>,
        /// Read the passphrase as one line from stdin instead of the terminal.
        #[arg(long)]
        passphrase_stdin: bool,
    },
}

/// Parses `USER@ADDRESS:PORT` (an IPv6 address in brackets: `user@[::1]:22`).
fn parse_destination(
    text: &str,
    host_key: Option<String>,
) -> anyhow::Result<gatehouse_ipc::broker::Destination> {
    let bad = || anyhow::anyhow!("destination {text:?} is not USER@ADDRESS:PORT");
    let (user, rest) = text.split_once('@').ok_or_else(bad)?;
    let (address, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if user.is_empty() || address.is_empty() {
        return Err(bad());
    }
    Ok(gatehouse_ipc::broker::Destination {
        address: address.to_string(),
        port: port.parse().map_err(|_| bad())?,
        username: user.to_string(),
        host_key: host_key.map(|k| k.split_whitespace().collect::<Vec<_>>().join(" ")),
    })
}

pub fn keychain(profile: Option<&str>, cmd: KeychainCmd) -> anyhow::Result<ExitCode> {
    let mut b = BrokerConn::connect(profile)?;
    match cmd {
        KeychainCmd::Set { name, kind } => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading payload from stdin")?;
            let mut payload = SecretBytes::new(buf);
            if kind != SecretKind::PrivateKey {
                payload.trim_line_end();
            }
            b.ask(BrokerRequest::KeychainSet {
                name: name.clone(),
                kind,
                payload,
            })?;
            println!("stored keychain:{name} ({kind})");
        }
        KeychainCmd::List { json } => match b.ask(BrokerRequest::KeychainList)? {
            BrokerResponse::Keychain(entries) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&entries)?);
                } else {
                    println!(
                        "{:<28} {:<12} {:<14} {:<14}",
                        "REFERENCE", "KIND", "CREATED", "ROTATED"
                    );
                    for e in entries {
                        println!(
                            "{:<28} {:<12} {:<14} {:<14}",
                            format!("keychain:{}", e.name),
                            e.kind.to_string(),
                            e.created_ms / 1000,
                            e.rotated_ms / 1000
                        );
                    }
                }
            }
            r => return Err(unexpected(r)),
        },
        KeychainCmd::Rm { name } => {
            b.ask(BrokerRequest::KeychainRemove { name: name.clone() })?;
            println!("removed keychain:{name}");
        }
        KeychainCmd::Bind {
            name,
            destination,
            host_key,
            passphrase_stdin,
        } => {
            let destination = parse_destination(&destination, host_key)?;
            let presence =
                read_secret_line("Account passphrase (proof of presence): ", passphrase_stdin)?;
            b.ask(BrokerRequest::KeychainBind {
                name: name.clone(),
                destination: destination.clone(),
                presence,
            })?;
            let key = destination
                .host_key
                .as_deref()
                .map(|k| format!(" (host key {k})"))
                .unwrap_or_default();
            println!(
                "keychain:{name} may now go to {}@{}:{}{key}",
                destination.username, destination.address, destination.port
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug, Clone)]
pub struct FieldArgs {
    /// Organization name or id (omit with --private).
    #[arg(long, required_unless_present = "private")]
    org: Option<String>,
    /// Seal with your own key instead of an organization's (private records).
    #[arg(long, conflicts_with = "org")]
    private: bool,
    /// Record kind, e.g. host.
    #[arg(long)]
    kind: String,
    /// Record id.
    #[arg(long)]
    record: String,
    /// Field name, e.g. ssh.password.
    #[arg(long)]
    field: String,
    /// Plaintext the secret is bound to (e.g. "10.0.0.1:22:admin").
    #[arg(long, default_value = "")]
    binding: String,
}

#[derive(Subcommand, Debug)]
pub enum FieldCmd {
    /// Seal stdin for one field; prints the ciphertext as base64.
    Seal(FieldArgs),
    /// Open a base64 ciphertext (argument or stdin) for one field; prints the plaintext.
    /// With the privilege boundary on, a credential (a host's, connector's or
    /// MCP server's sealed field) needs the account passphrase as proof of presence.
    Open {
        #[command(flatten)]
        at: FieldArgs,
        ciphertext: Option<String>,
        /// Read the passphrase (proof of presence) as the first line of stdin
        /// (the ciphertext then comes as the argument).
        #[arg(long)]
        passphrase_stdin: bool,
    },
}

fn field_address(b: &mut BrokerConn, a: &FieldArgs) -> anyhow::Result<FieldAddress> {
    let scope = match &a.org {
        Some(org) if !a.private => KeyScope::Org(org_id(b, org)?),
        _ => KeyScope::Private,
    };
    Ok(FieldAddress {
        scope,
        record_kind: a.kind.clone(),
        record_id: a.record.clone(),
        field: a.field.clone(),
        binding: a.binding.clone().into_bytes(),
    })
}

pub fn field(profile: Option<&str>, cmd: FieldCmd) -> anyhow::Result<ExitCode> {
    let mut b = BrokerConn::connect(profile)?;
    match cmd {
        FieldCmd::Seal(at) => {
            let address = field_address(&mut b, &at)?;
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            let mut plaintext = SecretBytes::new(buf);
            plaintext.trim_line_end();
            match b.ask(BrokerRequest::SealFields {
                items: vec![SealItem { address, plaintext }],
            })? {
                BrokerResponse::Sealed(mut s) if s.len() == 1 => {
                    println!("{}", B64.encode(s.remove(0).0))
                }
                r => return Err(unexpected(r)),
            }
        }
        FieldCmd::Open {
            at,
            ciphertext,
            passphrase_stdin,
        } => {
            let address = field_address(&mut b, &at)?;
            let text = match ciphertext {
                Some(c) => c,
                None if passphrase_stdin => {
                    bail!("with --passphrase-stdin give the ciphertext as an argument")
                }
                None => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s
                }
            };
            let sealed = B64
                .decode(text.trim())
                .context("ciphertext is not base64")?;
            let opened = with_presence(passphrase_stdin, |presence| {
                b.ask(BrokerRequest::RevealFields {
                    items: vec![OpenItem {
                        address: address.clone(),
                        sealed: sealed.clone(),
                    }],
                    presence,
                })
            })?;
            match opened {
                BrokerResponse::Opened(p) if p.len() == 1 => {
                    use std::io::Write;
                    let mut out = std::io::stdout();
                    out.write_all(p[0].expose())?;
                    out.write_all(b"\n")?;
                }
                r => return Err(unexpected(r)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug, Clone)]
pub struct RequestArgs {
    #[arg(long)]
    pub host: String,
    /// Organization name or id.
    #[arg(long)]
    pub org: String,
    /// Host platform: routeros, ios, iosxe, nxos, junos, eos, linux, …
    #[arg(long, default_value = "linux")]
    pub vendor: String,
    /// Credential the execution will use, e.g. keychain:core-sw1.
    #[arg(long)]
    pub credential: Option<String>,
    /// What the requester expects the command to do.
    #[arg(long, default_value = "")]
    pub effect: String,
    /// Do not wait for the decision; print the request id and exit.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for a decision, in seconds.
    #[arg(long, default_value_t = 300)]
    pub wait_secs: u64,
    /// The exact command.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCmd {
    /// List approval requests.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one request: exact command, host, org, credential, class and why, requester.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Approve a request; with --edit, replace its command (the edit needs its own decision).
    /// When the broker asks for proof of presence (installed system: every approval from the
    /// CLI), the account passphrase is read from the terminal.
    Approve {
        id: u64,
        #[arg(long)]
        edit: Option<String>,
        /// Read the passphrase (proof of presence) as one line from stdin instead of the terminal.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Reject a request.
    Reject {
        id: u64,
        #[arg(long, default_value = "rejected by a person")]
        reason: String,
    },
    /// File an approval request and wait for a person's decision.
    Request(RequestArgs),
}

/// An organization as a person knows it: `NAME (id ID)`, or the id alone
/// when the broker does not know it (or is not asked).
pub fn org_label(orgs: &[OrgInfo], id: &str) -> String {
    match orgs.iter().find(|o| o.id == id) {
        Some(o) => format!("{} (id {id})", o.name),
        None if id.is_empty() || id == "private" => "private".into(),
        None => id.to_string(),
    }
}

fn print_view(v: &ApprovalView, orgs: &[OrgInfo]) {
    println!("request {}  [{:?}]", v.id, v.state);
    println!("  command:    {}", v.action.command);
    println!("  host:       {} ({})", v.action.host, v.action.vendor);
    println!("  org:        {}", org_label(orgs, &v.action.org));
    println!(
        "  credential: {}",
        v.action.credential.as_deref().unwrap_or("(none)")
    );
    println!("  class:      {}", v.class);
    for r in &v.reasons {
        println!("    why: {r}");
    }
    if !v.action.expected_effect.is_empty() {
        println!("  effect:     {}", v.action.expected_effect);
    }
    println!(
        "  requester:  {} pid {} ({})",
        v.requester.role, v.requester.pid, v.requester.exe
    );
    if let Some(d) = &v.decided_by {
        println!("  decided by: {} pid {}", d.role, d.pid);
    }
    if let Some(rule) = &v.autopilot {
        println!("  AUTOPILOT:  approved without asking ({rule})");
    }
    if let Some(n) = v.replaced_by {
        println!("  replaced by request {n}");
    }
}

pub fn approvals(profile: Option<&str>, cmd: ApprovalsCmd) -> anyhow::Result<ExitCode> {
    let mut b = BrokerConn::connect(profile)?;
    match cmd {
        ApprovalsCmd::List { json } => match b.ask(BrokerRequest::ListApprovals)? {
            BrokerResponse::Approvals(list) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    println!(
                        "{:<10} {:<9} {:<10} {:<16} COMMAND",
                        "ID", "STATE", "CLASS", "HOST"
                    );
                    for v in list {
                        println!(
                            "{:<10} {:<9} {:<10} {:<16} {}",
                            v.id,
                            format!("{:?}", v.state).to_lowercase(),
                            v.class,
                            v.action.host,
                            v.action.command
                        );
                    }
                }
            }
            r => return Err(unexpected(r)),
        },
        ApprovalsCmd::Show { id, json } => match b.ask(BrokerRequest::ShowApproval { id })? {
            BrokerResponse::Approval(v) => {
                if json {
                    let mut j = serde_json::to_value(&v)?;
                    let orgs = org_list(&mut b).unwrap_or_default();
                    if let Some(o) = orgs.iter().find(|o| o.id == v.action.org) {
                        j["org_name"] = o.name.clone().into();
                    }
                    println!("{}", serde_json::to_string_pretty(&j)?);
                } else {
                    print_view(&v, &org_list(&mut b).unwrap_or_default());
                }
            }
            r => return Err(unexpected(r)),
        },
        ApprovalsCmd::Approve {
            id,
            edit,
            passphrase_stdin,
        } => {
            let decision = match edit {
                Some(command) => Decision::Edit { command },
                None => Decision::Approve,
            };
            match decide_with_presence(&mut b, id, decision, passphrase_stdin)? {
                BrokerResponse::Decided {
                    new_id: Some(n), ..
                } => {
                    println!(
                        "request {id} edited; the edited command is request {n} and needs its own decision"
                    )
                }
                BrokerResponse::Decided { state, .. } => println!("request {id}: {state:?}"),
                r => return Err(unexpected(r)),
            }
        }
        ApprovalsCmd::Reject { id, reason } => {
            b.ask(BrokerRequest::DecideApproval {
                id,
                decision: Decision::Reject { reason },
                presence: None,
            })?;
            println!("request {id}: rejected");
        }
        ApprovalsCmd::Request(args) => return request(&mut b, &args),
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends a decision; when the broker asks for proof of presence (or
/// `passphrase_stdin` says it is at hand), sends it again with the account
/// passphrase typed by the person deciding.
pub fn decide_with_presence(
    b: &mut BrokerConn,
    id: u64,
    decision: Decision,
    passphrase_stdin: bool,
) -> anyhow::Result<BrokerResponse> {
    if !passphrase_stdin {
        let first = b.call(BrokerRequest::DecideApproval {
            id,
            decision: decision.clone(),
            presence: None,
        });
        match first {
            Err(CallError::Remote(BrokerError::PresenceRequired { why })) => {
                eprintln!("request {id}: {why} needs proof of presence");
            }
            other => return Ok(other?),
        }
    }
    let passphrase =
        read_secret_line("Account passphrase (proof of presence): ", passphrase_stdin)?;
    b.ask(BrokerRequest::DecideApproval {
        id,
        decision,
        presence: Some(passphrase),
    })
}

/// Files a request and (unless --no-wait) waits for the decision, following edits.
fn request(b: &mut BrokerConn, args: &RequestArgs) -> anyhow::Result<ExitCode> {
    let action = Action {
        host: args.host.clone(),
        vendor: args.vendor.clone(),
        org: args.org.clone(),
        credential: args.credential.clone(),
        command: args.command.join(" "),
        expected_effect: args.effect.clone(),
    };
    let (id, class) = match b.ask(BrokerRequest::RequestApproval { action })? {
        BrokerResponse::ApprovalRequested { id, class } => (id, class),
        r => return Err(unexpected(r)),
    };
    println!(
        "request {id} filed ({class}); waiting for a decision (gatehouse approvals approve {id})"
    );
    if args.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    match wait_for_decision(b, id, Duration::from_secs(args.wait_secs))? {
        Ok(t) => {
            println!(
                "approved by {} pid {}: token nonce {} expires in {} s",
                t.approver.role,
                t.approver.pid,
                gatehouse_ipc::os::hex(&t.nonce),
                t.expires_ms.saturating_sub(gatehouse_ipc::os::now_ms()) / 1000
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}

/// Waits for a person's decision on request `id`, following edits (an
/// edited request is a new request this process waits on). Returns the
/// token, or the exit code to end with (3 rejected, 4 expired).
pub fn wait_for_decision(
    b: &mut BrokerConn,
    mut id: u64,
    wait: Duration,
) -> anyhow::Result<Result<ApprovalToken, ExitCode>> {
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        match b.ask(BrokerRequest::ApprovalOutcome { id })? {
            BrokerResponse::Outcome(o) => match *o {
                ApprovalOutcome::Pending => std::thread::sleep(Duration::from_millis(100)),
                ApprovalOutcome::Approved(t) => return Ok(Ok(*t)),
                ApprovalOutcome::Rejected { reason } => {
                    eprintln!("rejected: {reason}");
                    return Ok(Err(ExitCode::from(3)));
                }
                ApprovalOutcome::Edited { new_id } => {
                    eprintln!(
                        "edited: the person replaced the command; now waiting on request {new_id}"
                    );
                    id = new_id;
                }
                ApprovalOutcome::Expired => {
                    eprintln!("request {id} expired");
                    return Ok(Err(ExitCode::from(4)));
                }
            },
            r => return Err(unexpected(r)),
        }
    }
    bail!("no decision on request {id} within {} s", wait.as_secs())
}

/// The broker's exact-value redaction, when a broker runs and we are signed in.
pub fn broker_redact(
    profile: Option<&str>,
    text: &str,
) -> anyhow::Result<Option<(String, Vec<gatehouse_policy::Span>)>> {
    let Ok(mut b) = BrokerConn::connect(profile) else {
        return Ok(None);
    };
    match b.call(BrokerRequest::Redact {
        text: text.to_string(),
    }) {
        Ok(BrokerResponse::Redacted { text, spans }) => Ok(Some((
            text,
            spans
                .into_iter()
                .map(|s| gatehouse_policy::Span {
                    start: s.start,
                    end: s.end,
                    label: s.rule_id.clone(),
                    rule_id: s.rule_id,
                })
                .collect(),
        ))),
        Err(CallError::Remote(BrokerError::SignedOut | BrokerError::NotInitialized)) => Ok(None),
        Ok(r) => Err(unexpected(r)),
        Err(e) => Err(e.into()),
    }
}
