//! Record commands: `host`, `procedure`, `memory`, `connector`, `mcp`,
//! `diagram`, `records …`, `export` / `import`.
//!
//! Owns: turning arguments into records, reading secrets from stdin (never
//! argv or env), printing records with sealed fields masked unless
//! `--reveal`. Must never: open a sealed field to list records (listing goes
//! to the store only, no broker), or write anything when an argument is bad.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse, KeyScope, SecretKind};
use gatehouse_ipc::{Layout, SecretBytes};
use gatehouse_records::fields::{self, Class};
use gatehouse_records::host_edit::{self, HostChanges, SecretInput};
use gatehouse_records::model::*;
use gatehouse_records::store::{Filter, Opened, Store, StoredRecord, Summary};
use gatehouse_records::validate::parse_port;
use gatehouse_records::{BrokerSealer, bundle, ssh_config};
use serde_json::Value;

const MASK: &str = "••••";

/// The store and (when needed) the broker of one profile.
pub struct Ctx {
    layout: Layout,
    pub store: Store,
    sealer: Option<BrokerSealer>,
}

impl Ctx {
    pub fn open(profile: Option<&str>) -> anyhow::Result<Ctx> {
        let layout = Layout::resolve(profile)?;
        let store = Store::open_in(&layout)?;
        Ok(Ctx {
            layout,
            store,
            sealer: None,
        })
    }

    /// The broker connection (connected on first use).
    pub fn sealer(&mut self) -> anyhow::Result<&mut BrokerSealer> {
        if self.sealer.is_none() {
            let s = BrokerSealer::connect(&self.layout)?;
            self.sealer = Some(s);
        }
        Ok(self.sealer.as_mut().expect("just connected"))
    }

    /// The store and the broker connection together.
    pub fn parts(&mut self) -> anyhow::Result<(&mut Store, &mut BrokerSealer)> {
        self.sealer()?;
        let Ctx { store, sealer, .. } = self;
        Ok((store, sealer.as_mut().expect("connected")))
    }

    /// Asks the broker for the organizations and remembers their names locally.
    fn refresh_orgs(&mut self) -> anyhow::Result<Vec<(String, String)>> {
        let orgs = match self.sealer()?.call(BrokerRequest::OrgList)? {
            BrokerResponse::Orgs(o) => o.into_iter().map(|o| (o.id, o.name)).collect::<Vec<_>>(),
            r => bail!("unexpected broker response: {r:?}"),
        };
        self.store.remember_orgs(&orgs)?;
        Ok(orgs)
    }

    /// `--org NAME` → the org's scope, from the local name cache or the broker.
    pub fn org_scope(&mut self, org: &str, ask_broker: bool) -> anyhow::Result<KeyScope> {
        let find = |orgs: &[(String, String)]| {
            orgs.iter()
                .find(|(id, name)| name == org || id == org)
                .map(|(id, _)| KeyScope::Org(id.clone()))
        };
        if let Some(s) = find(&self.store.org_names()?) {
            return Ok(s);
        }
        if ask_broker && let Some(s) = find(&self.refresh_orgs()?) {
            return Ok(s);
        }
        bail!("invalid org: no organization named {org:?}")
    }

    /// The scope a new record goes to: `--org NAME` or `--private`.
    fn new_scope(&mut self, s: &ScopeArgs) -> anyhow::Result<KeyScope> {
        match (&s.org, s.private) {
            (Some(o), false) => self.org_scope(o, true),
            (None, true) => Ok(KeyScope::Private),
            _ => bail!("choose where the record goes: --org NAME or --private"),
        }
    }

    /// The scope filter of list/show/edit/rm (None: any).
    fn filter_scope(
        &mut self,
        s: &ScopeArgs,
        ask_broker: bool,
    ) -> anyhow::Result<Option<KeyScope>> {
        Ok(match (&s.org, s.private) {
            (Some(o), _) => Some(self.org_scope(o, ask_broker)?),
            (None, true) => Some(KeyScope::Private),
            _ => None,
        })
    }

    fn scope_label(&self, scope: &KeyScope) -> String {
        match scope {
            KeyScope::Private => "private".into(),
            KeyScope::Org(id) => self
                .store
                .org_names()
                .ok()
                .and_then(|o| o.into_iter().find(|(i, _)| i == id).map(|(_, n)| n))
                .map(|n| format!("org {n}"))
                .unwrap_or_else(|| format!("org {id}")),
        }
    }
}

/// Who is acting (the OS account name; recorded as owner and in audit rows).
pub fn actor() -> String {
    gatehouse_ipc::paths::local_user()
}

#[derive(Args, Debug, Clone, Default)]
pub struct ScopeArgs {
    /// Organization name or id.
    #[arg(long)]
    pub org: Option<String>,
    /// Your private records (sealed with your own key).
    #[arg(long, conflicts_with = "org")]
    pub private: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    scope: ScopeArgs,
    /// Only this folder and its subfolders.
    #[arg(long)]
    folder: Option<String>,
    #[arg(long)]
    tag: Option<String>,
    /// Hosts only: routeros, ios, iosxe, nxos, junos, eos, linux, onvif-camera, other.
    #[arg(long)]
    vendor: Option<String>,
    /// Case-insensitive text in any plaintext field.
    #[arg(long)]
    text: Option<String>,
    /// Also check every listed record's MAC (one broker request); opens nothing.
    #[arg(long)]
    verify: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ShowArgs {
    /// Id, NAME or FOLDER/NAME.
    key: String,
    #[command(flatten)]
    scope: ScopeArgs,
    /// Print sealed values (default: •••• , keychain references as the reference).
    /// With the privilege boundary on, revealing a credential asks for the
    /// account passphrase (proof of presence).
    #[arg(long)]
    reveal: bool,
    /// Read the passphrase for --reveal as one line from stdin instead of the terminal.
    #[arg(long, requires = "reveal")]
    passphrase_stdin: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RmArgs {
    /// Id, NAME or FOLDER/NAME.
    key: String,
    #[command(flatten)]
    scope: ScopeArgs,
}

// ------------------------------------------------------------------ generic

fn list(ctx: &mut Ctx, kind: Kind, a: &ListArgs) -> anyhow::Result<ExitCode> {
    if let Some(v) = &a.vendor {
        v.parse::<Vendor>()?;
    }
    // Org names come from the local cache: listing never asks the broker.
    let scope = ctx.filter_scope(&a.scope, false)?;
    let filter = Filter {
        kind: Some(kind),
        scope,
        folder: a.folder.clone(),
        tag: a.tag.clone(),
        vendor: a.vendor.clone(),
        text: a.text.clone(),
    };
    let rows = ctx.store.list(&filter)?;
    let verified = if a.verify {
        let stored = rows
            .iter()
            .map(|s| ctx.store.get(s.meta.kind, &s.meta.id))
            .collect::<Result<Vec<_>, _>>()?;
        Some(Store::verify(ctx.sealer()?, &stored)?)
    } else {
        None
    };
    if a.json {
        let out: Vec<Value> = rows
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["scope_label"] = ctx.scope_label(&s.meta.scope).into();
                if let Some(ok) = &verified {
                    v["mac_ok"] = ok[i].into();
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_list(ctx, kind, &rows, verified.as_deref());
    }
    let tampered = verified.is_some_and(|v| v.iter().any(|ok| !ok));
    Ok(if tampered {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_list(ctx: &Ctx, kind: Kind, rows: &[Summary], verified: Option<&[bool]>) {
    let extra = |s: &Summary| -> String {
        let f = |k: &str| s.fields.get(k).map(value_text).unwrap_or_default();
        match kind {
            Kind::Host => format!(
                "{:<28} {:<12} {}",
                format!("{}:{}", f("address"), f("port")),
                f("vendor"),
                f("tags")
            ),
            Kind::Connector => format!("{:<6} {}", f("kind"), f("base_url")),
            Kind::McpServer => f("transport"),
            Kind::ProcedureRun => format!("{} {} {}", f("procedure_id"), f("who"), f("outcome")),
            _ => String::new(),
        }
    };
    let head = match kind {
        Kind::Host => format!("{:<28} {:<12} TAGS", "ADDRESS", "VENDOR"),
        Kind::Connector => "KIND   BASE URL".into(),
        Kind::McpServer => "TRANSPORT".into(),
        _ => String::new(),
    };
    println!(
        "{:<16} {:<24} {:<20} {:<16} {:>4} {}{}",
        "ID",
        "NAME",
        "FOLDER",
        "SCOPE",
        "REV",
        if verified.is_some() { "MAC  " } else { "" },
        head
    );
    for (i, s) in rows.iter().enumerate() {
        println!(
            "{:<16} {:<24} {:<20} {:<16} {:>4} {}{}",
            s.meta.id,
            s.name(),
            if s.folder().is_empty() {
                "/"
            } else {
                s.folder()
            },
            ctx.scope_label(&s.meta.scope),
            s.meta.revision,
            match verified {
                Some(v) if v[i] => "ok   ",
                Some(_) => "BAD  ",
                None => "",
            },
            extra(s)
        );
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Masks a sealed value for display: strings become ••••, except keychain
/// references and the shape-describing keys of structured values.
fn mask(v: &Value, key: Option<&str>) -> Value {
    match v {
        Value::String(s) if keychain_ref(s).is_some() => v.clone(),
        Value::String(_) if matches!(key, Some("type" | "name" | "header" | "role" | "tool")) => {
            v.clone()
        }
        Value::String(_) => Value::String(MASK.into()),
        Value::Array(a) => Value::Array(a.iter().map(|x| mask(x, key)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), mask(x, Some(k))))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Resolves `key` and verifies + opens the record.
fn open_one(ctx: &mut Ctx, kind: Kind, key: &str, scope: &ScopeArgs) -> anyhow::Result<Opened> {
    let scope = ctx.filter_scope(scope, true)?;
    let stored = ctx.store.resolve(kind, scope.as_ref(), key)?;
    Ok(Store::open_record(ctx.sealer()?, &stored)?)
}

fn show(ctx: &mut Ctx, kind: Kind, a: &ShowArgs) -> anyhow::Result<ExitCode> {
    let o = if a.reveal {
        // The values are for a person to see: the broker may ask for presence.
        crate::commands::with_presence(a.passphrase_stdin, |presence| {
            ctx.sealer()?.reveal(presence);
            open_one(ctx, kind, &a.key, &a.scope)
        })?
    } else {
        open_one(ctx, kind, &a.key, &a.scope)?
    };
    let split = fields::flatten(kind, o.record.to_value()?)?;
    let mut shown: BTreeMap<String, Value> = split.plain;
    for (f, v) in split.sealed {
        shown.insert(f, if a.reveal { v } else { mask(&v, None) });
    }
    if a.json {
        let mut v = serde_json::to_value(&o.meta)?;
        v["scope_label"] = ctx.scope_label(&o.meta.scope).into();
        v["fields"] = serde_json::to_value(&shown)?;
        v["sealed_fields"] = serde_json::to_value(&o.sealed_fields)?;
        v["mac_ok"] = true.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} {} (id {}) — {}, owner {}, revision {}, created {}, updated {} — MAC verified",
        kind,
        o.record.name().unwrap_or(""),
        o.meta.id,
        ctx.scope_label(&o.meta.scope),
        o.meta.owner,
        o.meta.revision,
        o.meta.created_ms / 1000,
        o.meta.updated_ms / 1000
    );
    for (f, v) in &shown {
        let sealed = o.sealed_fields.contains(f);
        let text = match v {
            Value::String(s) if s.contains('\n') => format!("\n    {}", s.replace('\n', "\n    ")),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!(
            "  {f:<26} {text}{}",
            if sealed { "   (sealed)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn rm(ctx: &mut Ctx, kind: Kind, a: &RmArgs) -> anyhow::Result<ExitCode> {
    let scope = ctx.filter_scope(&a.scope, true)?;
    let stored = ctx.store.resolve(kind, scope.as_ref(), &a.key)?;
    ctx.store.remove(&actor(), &stored.meta)?;
    println!("removed {} {}", kind, stored.meta.id);
    Ok(ExitCode::SUCCESS)
}

fn create(ctx: &mut Ctx, scope: KeyScope, mut record: Record) -> anyhow::Result<Meta> {
    let kind = record.kind();
    let name = record.name().unwrap_or("").to_string();
    // Check before sealing: bad input fails fast, nothing written.
    ctx.store.check(&scope, None, &mut record)?;
    let (store, sealer) = ctx.parts()?;
    let meta = store.create(sealer, &actor(), scope, record)?;
    println!("created {kind} {name} (id {})", meta.id);
    Ok(meta)
}

/// Reads all of stdin once; secret flags take its lines in a fixed order.
struct StdinLines(std::vec::IntoIter<SecretBytes>);

impl StdinLines {
    fn read(needed: usize) -> anyhow::Result<StdinLines> {
        if needed == 0 {
            return Ok(StdinLines(Vec::new().into_iter()));
        }
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading secrets from stdin")?;
        let buf = SecretBytes::new(buf);
        let lines: Vec<SecretBytes> = buf
            .expose()
            .split(|b| *b == b'\n')
            .map(|l| SecretBytes::copy_from(l.strip_suffix(b"\r").unwrap_or(l)))
            .collect();
        if lines.len() < needed || lines[..needed].iter().any(|l| l.is_empty()) {
            bail!("expected {needed} non-empty line(s) on stdin, one per secret flag");
        }
        Ok(StdinLines(lines.into_iter()))
    }

    fn next(&mut self, field: &str) -> anyhow::Result<Secret> {
        let l = self
            .0
            .next()
            .with_context(|| format!("no stdin line for {field}"))?;
        let s = String::from_utf8(l.expose().to_vec())
            .map_err(|_| anyhow::anyhow!("invalid {field}: not UTF-8"))?;
        Ok(Secret::new(s))
    }
}

/// A `--*-ref` value: `keychain:NAME` or just `NAME`.
fn reference(r: &str) -> Secret {
    Secret::keychain(keychain_ref(r).unwrap_or(r))
}

/// Stores a literal in the keychain and returns the reference to it.
fn move_to_keychain(
    ctx: &mut Ctx,
    name: &str,
    kind: SecretKind,
    s: &Secret,
) -> anyhow::Result<Secret> {
    ctx.sealer()?.call(BrokerRequest::KeychainSet {
        name: name.to_string(),
        kind,
        payload: SecretBytes::copy_from(s.expose().as_bytes()),
    })?;
    println!("stored the secret as keychain:{name}");
    Ok(Secret::keychain(name))
}

// --------------------------------------------------------------------- hosts

#[derive(Subcommand, Debug)]
pub enum HostCmd {
    /// Add a host. Secrets: `--password-stdin` etc. read one stdin line each
    /// (in the order ssh password, key passphrase, http token, onvif password).
    Add(HostAddArgs),
    /// List hosts (plaintext fields only; no broker request).
    List(ListArgs),
    /// Show a host (MAC verified; sealed fields as •••• unless --reveal).
    Show(ShowArgs),
    /// Change a host: re-sealed and re-MACed, revision + 1.
    Edit(HostEditArgs),
    /// Remove a host.
    Rm(RmArgs),
    /// Import hosts from an OpenSSH client config (and host keys from known_hosts).
    Import(HostImportArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub struct HostFields {
    /// Hostname or IP address.
    #[arg(long)]
    address: Option<String>,
    /// SSH port.
    #[arg(long)]
    port: Option<String>,
    #[arg(long)]
    folder: Option<String>,
    /// A tag (repeat for several; on edit, replaces all tags).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// routeros, ios, iosxe, nxos, junos, eos, linux, onvif-camera, other.
    #[arg(long)]
    vendor: Option<String>,
    /// SSH username (enables SSH).
    #[arg(long)]
    ssh_user: Option<String>,
    /// Read the SSH password (a literal, sealed) from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// The SSH password is keychain entry NAME (`keychain:NAME` or `NAME`).
    #[arg(long, conflicts_with = "password_stdin")]
    password_ref: Option<String>,
    /// Move the --password-stdin literal into the keychain as NAME and store only the reference.
    #[arg(long, requires = "password_stdin")]
    to_keychain: Option<String>,
    /// Private key: a path, or keychain:NAME.
    #[arg(long)]
    ssh_key: Option<String>,
    /// Read the private key's passphrase from stdin.
    #[arg(long)]
    key_passphrase_stdin: bool,
    /// Known SSH host key, e.g. "ssh-ed25519 SHA256:…".
    #[arg(long)]
    host_key: Option<String>,
    /// HTTP/REST API port (enables HTTP).
    #[arg(long)]
    http_port: Option<String>,
    /// Plain HTTP instead of HTTPS.
    #[arg(long)]
    http_plain: bool,
    /// Read the HTTP API token from stdin.
    #[arg(long)]
    token_stdin: bool,
    #[arg(long, conflicts_with = "token_stdin")]
    token_ref: Option<String>,
    /// ONVIF username (enables ONVIF).
    #[arg(long)]
    onvif_user: Option<String>,
    #[arg(long)]
    onvif_port: Option<String>,
    #[arg(long)]
    onvif_password_stdin: bool,
    #[arg(long, conflicts_with = "onvif_password_stdin")]
    onvif_password_ref: Option<String>,
}

#[derive(Args, Debug)]
pub struct HostAddArgs {
    name: String,
    #[command(flatten)]
    scope: ScopeArgs,
    #[command(flatten)]
    f: HostFields,
}

#[derive(Args, Debug)]
pub struct HostEditArgs {
    /// Id, NAME or FOLDER/NAME.
    key: String,
    #[command(flatten)]
    scope: ScopeArgs,
    /// New display name.
    #[arg(long)]
    name: Option<String>,
    /// Remove the SSH password.
    #[arg(long)]
    clear_password: bool,
    #[command(flatten)]
    f: HostFields,
}

#[derive(Args, Debug)]
pub struct HostImportArgs {
    /// OpenSSH client config (e.g. ~/.ssh/config).
    #[arg(long)]
    ssh_config: PathBuf,
    /// known_hosts file: host-key fingerprints for the imported hosts.
    #[arg(long)]
    known_hosts: Option<PathBuf>,
    #[command(flatten)]
    scope: ScopeArgs,
    #[arg(long, default_value = "")]
    folder: String,
    #[arg(long, default_value = "other")]
    vendor: String,
    #[arg(long = "tag")]
    tags: Vec<String>,
}

impl HostFields {
    /// The changes these flags ask for; secrets are read from stdin (one
    /// line each, in flag order) only when `read_secrets`.
    fn changes(&self, read_secrets: bool) -> anyhow::Result<HostChanges> {
        let needed = [
            self.password_stdin,
            self.key_passphrase_stdin,
            self.token_stdin,
            self.onvif_password_stdin,
        ]
        .iter()
        .filter(|x| **x)
        .count();
        let mut stdin = StdinLines::read(if read_secrets { needed } else { 0 })?;
        let mut line = |on: bool, field: &str| -> anyhow::Result<Option<Secret>> {
            if on && read_secrets {
                stdin.next(field).map(Some)
            } else {
                Ok(None)
            }
        };
        let password = line(self.password_stdin, "ssh.password")?;
        let key_passphrase = line(self.key_passphrase_stdin, "ssh.key_passphrase")?;
        let token = line(self.token_stdin, "http.token")?;
        let onvif_password = line(self.onvif_password_stdin, "onvif.password")?;
        let secret = |lit: Option<Secret>, r: &Option<String>| {
            lit.map(SecretInput::Literal)
                .or_else(|| r.clone().map(SecretInput::Reference))
        };
        Ok(HostChanges {
            name: None,
            address: self.address.clone(),
            port: self.port.clone(),
            folder: self.folder.clone(),
            tags: (!self.tags.is_empty()).then(|| self.tags.clone()),
            vendor: self.vendor.clone(),
            ssh_user: self.ssh_user.clone(),
            password: secret(password, &self.password_ref),
            clear_password: false,
            to_keychain: self.to_keychain.clone(),
            ssh_key: self.ssh_key.clone(),
            key_passphrase,
            host_key: self.host_key.clone(),
            http_port: self.http_port.clone(),
            http_plain: self.http_plain,
            token: secret(token, &self.token_ref),
            onvif_user: self.onvif_user.clone(),
            onvif_port: self.onvif_port.clone(),
            onvif_password: secret(onvif_password, &self.onvif_password_ref),
        })
    }
}

/// A procedure (runbook), opened: its meta and its body in clear (for the
/// person's own tools: `copilot run`).
pub fn load_procedure(
    profile: Option<&str>,
    key: &str,
    org: Option<&str>,
) -> anyhow::Result<(Meta, Procedure)> {
    let mut ctx = Ctx::open(profile)?;
    let scope = ScopeArgs {
        private: org == Some("private"),
        org: org.filter(|o| *o != "private").map(str::to_string),
    };
    let o = open_one(&mut ctx, Kind::Procedure, key, &scope)?;
    let Record::Procedure(p) = o.record else {
        bail!("not a procedure");
    };
    Ok((o.meta, p))
}

/// Stores a procedure run (its arguments, messages, tool calls and output
/// are sealed by the field table) in `scope`.
pub fn store_procedure_run(
    profile: Option<&str>,
    scope: KeyScope,
    run: gatehouse_records::model::ProcedureRun,
) -> anyhow::Result<Meta> {
    let mut ctx = Ctx::open(profile)?;
    let (store, sealer) = ctx.parts()?;
    Ok(gatehouse_records::runbook::store_run(
        store,
        sealer,
        &actor(),
        scope,
        run,
    )?)
}

/// Pins `fingerprint` as the SSH host key of host `key` (a person accepted
/// it). The host's sealed credentials are bound to the pin, so they are
/// sealed again with it.
pub fn pin_host_key(
    profile: Option<&str>,
    key: &str,
    org: Option<&str>,
    fingerprint: &str,
) -> anyhow::Result<()> {
    let mut ctx = Ctx::open(profile)?;
    let scope = ScopeArgs {
        private: org == Some("private"),
        org: org.filter(|o| *o != "private").map(str::to_string),
    };
    let o = open_one(&mut ctx, Kind::Host, key, &scope)?;
    let Record::Host(mut h) = o.record else {
        bail!("not a host");
    };
    let Some(ssh) = h.ssh.as_mut() else {
        bail!("host {key} has no SSH settings");
    };
    ssh.host_key_fingerprint = Some(fingerprint.to_string());
    let mut rec = Record::Host(h);
    ctx.store.check(&o.meta.scope, Some(&o.meta.id), &mut rec)?;
    let (store, sealer) = ctx.parts()?;
    store.update(sealer, &actor(), &o.meta, rec)?;
    Ok(())
}

fn keychain_hint(name: &str, id: &str) {
    eprintln!(
        "hint: the SSH password of {name} is stored sealed in the record; to keep it in the OS keychain instead: \
         gatehouse host edit {id} --password-stdin --to-keychain {name}"
    );
}

pub fn host(profile: Option<&str>, cmd: HostCmd) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx::open(profile)?;
    match cmd {
        HostCmd::Add(a) => {
            // Validate what needs no broker before reading stdin or connecting.
            host_edit::precheck_new(&a.f.changes(false)?)?;
            let scope = ctx.new_scope(&a.scope)?;
            let (h, secrets) = host_edit::new_host(&a.name, a.f.changes(true)?)?;
            let mut rec = Record::Host(h);
            ctx.store.check(&scope, None, &mut rec)?;
            if let Some((name, pw)) = &secrets.to_keychain {
                move_to_keychain(&mut ctx, name, SecretKind::Password, pw)?;
            }
            let m = create(&mut ctx, scope, rec)?;
            if secrets.literal {
                keychain_hint(&a.name, &m.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCmd::List(a) => list(&mut ctx, Kind::Host, &a),
        HostCmd::Show(a) => show(&mut ctx, Kind::Host, &a),
        HostCmd::Rm(a) => rm(&mut ctx, Kind::Host, &a),
        HostCmd::Edit(a) => {
            let o = open_one(&mut ctx, Kind::Host, &a.key, &a.scope)?;
            let Record::Host(mut h) = o.record else {
                bail!("not a host");
            };
            let mut changes = a.f.changes(true)?;
            changes.name = a.name.clone();
            changes.clear_password = a.clear_password;
            let secrets = host_edit::apply(&mut h, changes)?;
            let name = h.name.clone();
            let mut rec = Record::Host(h);
            ctx.store.check(&o.meta.scope, Some(&o.meta.id), &mut rec)?;
            if let Some((kc, pw)) = &secrets.to_keychain {
                move_to_keychain(&mut ctx, kc, SecretKind::Password, pw)?;
            }
            let (store, sealer) = ctx.parts()?;
            let m = store.update(sealer, &actor(), &o.meta, rec)?;
            println!(
                "updated host {name} (id {}) to revision {}",
                m.id, m.revision
            );
            if secrets.literal {
                keychain_hint(&name, &m.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCmd::Import(a) => host_import(&mut ctx, &a),
    }
}

fn host_import(ctx: &mut Ctx, a: &HostImportArgs) -> anyhow::Result<ExitCode> {
    let vendor: Vendor = a.vendor.parse()?;
    let text = std::fs::read_to_string(&a.ssh_config)
        .with_context(|| format!("reading {}", a.ssh_config.display()))?;
    let cfg = ssh_config::parse_ssh_config(&text);
    let known = match &a.known_hosts {
        Some(p) => Some(ssh_config::parse_known_hosts(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )),
        None => None,
    };
    let scope = ctx.new_scope(&a.scope)?;
    let login = actor();
    for n in &cfg.notes {
        println!("note: line {}: {}", n.line, n.what);
    }
    if let Some(k) = &known {
        for n in &k.notes {
            println!(
                "note: known_hosts{}: {}",
                if n.line > 0 {
                    format!(" line {}", n.line)
                } else {
                    String::new()
                },
                n.what
            );
        }
    }
    let mut todo = Vec::new();
    let mut skipped = 0usize;
    let mut seen = std::collections::HashSet::new();
    for e in cfg.hosts {
        let port = match e.port.as_deref().map(|p| parse_port("port", p)).transpose() {
            Ok(p) => p.unwrap_or(22),
            Err(err) => {
                println!("skipped {} (line {}): {err}", e.alias, e.line);
                skipped += 1;
                continue;
            }
        };
        let fingerprint = match &known {
            Some(k) => {
                let found = k.lookup(&[&e.hostname, &e.alias], port);
                for why in &found.refused {
                    println!("note: {} (line {}): host key {why}", e.alias, e.line);
                }
                found.pin
            }
            None => None,
        };
        let mut rec = Record::Host(Host {
            name: e.alias.clone(),
            folder: a.folder.clone(),
            address: e.hostname.clone(),
            port,
            tags: a.tags.clone(),
            vendor,
            ssh: Some(SshProtocol {
                username: e.user.clone().unwrap_or_else(|| login.clone()),
                password: None,
                private_key_path: e.identity_file.clone().map(Secret::new),
                key_passphrase: None,
                host_key_fingerprint: fingerprint,
            }),
            http: None,
            onvif: None,
        });
        if !seen.insert(e.alias.to_lowercase()) {
            println!(
                "skipped {} (line {}): a Host {} block came earlier in the file",
                e.alias, e.line, e.alias
            );
            skipped += 1;
            continue;
        }
        if let Err(err) = ctx.store.check(&scope, None, &mut rec) {
            println!("skipped {} (line {}): {err}", e.alias, e.line);
            skipped += 1;
            continue;
        }
        todo.push((scope.clone(), rec));
    }
    let total = todo.len();
    let (store, sealer) = ctx.parts()?;
    // One transaction per host; a line is printed only after its commit (the acknowledgement).
    let mut created = 0usize;
    store.create_many(sealer, &login, todo, 1, &mut |m, r| {
        created += 1;
        let Record::Host(h) = r else { return };
        println!(
            "created host {} (id {}) {}{}",
            h.name,
            m.id,
            ssh_config::host_port(&h.address, h.port),
            if h.ssh
                .as_ref()
                .is_some_and(|s| s.host_key_fingerprint.is_some())
            {
                " with host key"
            } else {
                ""
            }
        );
    })?;
    println!("imported {created} of {total} host(s); skipped {skipped}");
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- procedures

#[derive(Subcommand, Debug)]
pub enum ProcedureCmd {
    /// Add a runbook; its body (markdown steps) is read from a file and sealed.
    Add(ProcedureAddArgs),
    List(ListArgs),
    Show(ShowArgs),
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct ProcedureAddArgs {
    name: String,
    #[command(flatten)]
    scope: ScopeArgs,
    /// Markdown file with the steps (`-` for stdin).
    #[arg(long)]
    body: PathBuf,
    #[arg(long, default_value = "")]
    folder: String,
    /// A parameter: NAME[=DEFAULT][:DESCRIPTION] (repeatable).
    #[arg(long = "param")]
    params: Vec<String>,
    /// The procedure only reads (its steps change nothing).
    #[arg(long)]
    read_only: bool,
}

fn read_body(p: &PathBuf) -> anyhow::Result<Secret> {
    let mut s = String::new();
    if p.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut s)?;
    } else {
        s = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    }
    Ok(Secret::new(s))
}

fn parse_param(s: &str) -> Parameter {
    let (head, description) = match s.split_once(':') {
        Some((h, d)) => (h, d.to_string()),
        None => (s, String::new()),
    };
    let (name, default) = match head.split_once('=') {
        Some((n, d)) => (n.to_string(), Some(d.to_string())),
        None => (head.to_string(), None),
    };
    Parameter {
        name,
        description,
        default,
    }
}

pub fn procedure(profile: Option<&str>, cmd: ProcedureCmd) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx::open(profile)?;
    match cmd {
        ProcedureCmd::Add(a) => {
            let scope = ctx.new_scope(&a.scope)?;
            let rec = Record::Procedure(Procedure {
                name: a.name,
                folder: a.folder,
                parameters: a.params.iter().map(|p| parse_param(p)).collect(),
                body: read_body(&a.body)?,
                read_only: a.read_only,
            });
            create(&mut ctx, scope, rec)?;
            Ok(ExitCode::SUCCESS)
        }
        ProcedureCmd::List(a) => list(&mut ctx, Kind::Procedure, &a),
        ProcedureCmd::Show(a) => show(&mut ctx, Kind::Procedure, &a),
        ProcedureCmd::Rm(a) => rm(&mut ctx, Kind::Procedure, &a),
    }
}

// ------------------------------------------------------------------ memories

#[derive(Subcommand, Debug)]
pub enum MemoryCmd {
    /// Add a note; its body is read from a file (`-`: stdin) and sealed.
    Add(MemoryAddArgs),
    List(ListArgs),
    Show(ShowArgs),
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct MemoryAddArgs {
    title: String,
    #[command(flatten)]
    scope: ScopeArgs,
    #[arg(long)]
    body: PathBuf,
    #[arg(long, default_value = "")]
    folder: String,
    /// A linked host (id, NAME or FOLDER/NAME; repeatable).
    #[arg(long = "host")]
    hosts: Vec<String>,
}

pub fn memory(profile: Option<&str>, cmd: MemoryCmd) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx::open(profile)?;
    match cmd {
        MemoryCmd::Add(a) => {
            let scope = ctx.new_scope(&a.scope)?;
            let host_ids = a
                .hosts
                .iter()
                .map(|h| {
                    ctx.store
                        .resolve(Kind::Host, Some(&scope), h)
                        .map(|s| s.meta.id)
                        .map_err(|e| anyhow::anyhow!("invalid host_ids: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rec = Record::Memory(Memory {
                title: a.title,
                folder: a.folder,
                body: read_body(&a.body)?,
                host_ids,
            });
            create(&mut ctx, scope, rec)?;
            Ok(ExitCode::SUCCESS)
        }
        MemoryCmd::List(a) => list(&mut ctx, Kind::Memory, &a),
        MemoryCmd::Show(a) => show(&mut ctx, Kind::Memory, &a),
        MemoryCmd::Rm(a) => rm(&mut ctx, Kind::Memory, &a),
    }
}

// ---------------------------------------------------------------- connectors

#[derive(Subcommand, Debug)]
pub enum ConnectorCmd {
    /// Add a REST/SOAP connector; its auth is sealed.
    Add(ConnectorAddArgs),
    List(ListArgs),
    Show(ShowArgs),
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct ConnectorAddArgs {
    name: String,
    #[command(flatten)]
    scope: ScopeArgs,
    /// rest or soap.
    #[arg(long, default_value = "rest")]
    kind: String,
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "")]
    folder: String,
    /// none, basic, bearer, api-key, headers.
    #[arg(long, default_value = "none")]
    auth: String,
    /// Basic auth username.
    #[arg(long)]
    username: Option<String>,
    /// API-key header name.
    #[arg(long)]
    header: Option<String>,
    /// Read the password/token/key from stdin.
    #[arg(long)]
    secret_stdin: bool,
    /// The password/token/key is keychain entry NAME.
    #[arg(long, conflicts_with = "secret_stdin")]
    secret_ref: Option<String>,
    /// A custom auth header NAME=keychain:REF, or NAME=- (next stdin line); repeatable.
    #[arg(long = "auth-header")]
    auth_headers: Vec<String>,
    /// A default header "NAME: VALUE" (plaintext; repeatable).
    #[arg(long = "default-header")]
    default_headers: Vec<String>,
}

/// `NAME=keychain:REF` or `NAME=-` (a stdin line).
fn secret_headers(
    specs: &[String],
    stdin: &mut StdinLines,
    field: &str,
) -> anyhow::Result<Vec<SecretHeader>> {
    specs
        .iter()
        .map(|s| {
            let (name, src) = s
                .split_once('=')
                .with_context(|| format!("invalid {field}: {s:?} is not NAME=keychain:REF or NAME=-"))?;
            let value = if src == "-" {
                stdin.next(field)?
            } else if keychain_ref(src).is_some() {
                Secret::new(src.to_string())
            } else {
                bail!("invalid {field}: give secret values as keychain:REF or - (stdin), never on the command line")
            };
            Ok(SecretHeader {
                name: name.to_string(),
                value,
            })
        })
        .collect()
}

fn stdin_count(specs: &[String]) -> usize {
    specs.iter().filter(|s| s.ends_with("=-")).count()
}

pub fn connector(profile: Option<&str>, cmd: ConnectorCmd) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx::open(profile)?;
    match cmd {
        ConnectorCmd::Add(a) => {
            let kind = match a.kind.as_str() {
                "rest" => ConnectorKind::Rest,
                "soap" => ConnectorKind::Soap,
                k => bail!("invalid kind: {k:?} (rest or soap)"),
            };
            let scope = ctx.new_scope(&a.scope)?;
            let mut stdin =
                StdinLines::read(usize::from(a.secret_stdin) + stdin_count(&a.auth_headers))?;
            let mut secret = || -> anyhow::Result<Secret> {
                match (&a.secret_ref, a.secret_stdin) {
                    (Some(r), _) => Ok(reference(r)),
                    (None, true) => stdin.next("auth"),
                    _ => bail!(
                        "invalid auth: --auth {} needs --secret-stdin or --secret-ref",
                        a.auth
                    ),
                }
            };
            let auth = match a.auth.as_str() {
                "none" => ConnectorAuth::None,
                "basic" => ConnectorAuth::Basic {
                    username: a
                        .username
                        .clone()
                        .context("invalid auth: basic needs --username")?,
                    password: secret()?,
                },
                "bearer" => ConnectorAuth::Bearer { token: secret()? },
                "api-key" => ConnectorAuth::ApiKeyHeader {
                    header: a.header.clone().unwrap_or_else(|| "X-API-Key".into()),
                    key: secret()?,
                },
                "headers" => ConnectorAuth::CustomHeaders {
                    headers: secret_headers(&a.auth_headers, &mut stdin, "auth")?,
                },
                other => bail!("invalid auth: {other:?} (none, basic, bearer, api-key, headers)"),
            };
            let default_headers = a
                .default_headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(n, v)| Header {
                            name: n.trim().to_string(),
                            value: v.trim().to_string(),
                        })
                        .with_context(|| {
                            format!("invalid default_headers: {h:?} is not \"NAME: VALUE\"")
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rec = Record::Connector(Connector {
                name: a.name,
                folder: a.folder,
                kind,
                base_url: a.url,
                auth,
                default_headers,
            });
            create(&mut ctx, scope, rec)?;
            Ok(ExitCode::SUCCESS)
        }
        ConnectorCmd::List(a) => list(&mut ctx, Kind::Connector, &a),
        ConnectorCmd::Show(a) => show(&mut ctx, Kind::Connector, &a),
        ConnectorCmd::Rm(a) => rm(&mut ctx, Kind::Connector, &a),
    }
}

// --------------------------------------------------------------- MCP servers

#[derive(Subcommand, Debug)]
pub enum McpCmd {
    /// Add an MCP server (stdio command or HTTP URL); its auth is sealed.
    Add(McpAddArgs),
    List(ListArgs),
    Show(ShowArgs),
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct McpAddArgs {
    name: String,
    #[command(flatten)]
    scope: ScopeArgs,
    /// Stdio transport: the command (arguments with --arg).
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    command: Option<String>,
    #[arg(long = "arg", allow_hyphen_values = true)]
    args: Vec<String>,
    /// HTTP transport URL.
    #[arg(long)]
    url: Option<String>,
    #[arg(long, default_value = "")]
    folder: String,
    /// Read a bearer token from stdin.
    #[arg(long)]
    token_stdin: bool,
    #[arg(long, conflicts_with = "token_stdin")]
    token_ref: Option<String>,
    /// A key NAME=keychain:REF or NAME=- (stdin), e.g. an env var of a stdio server.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// An auth header NAME=keychain:REF or NAME=- (stdin).
    #[arg(long = "header")]
    headers: Vec<String>,
}

pub fn mcp(profile: Option<&str>, cmd: McpCmd) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx::open(profile)?;
    match cmd {
        McpCmd::Add(a) => {
            let scope = ctx.new_scope(&a.scope)?;
            let mut stdin = StdinLines::read(
                usize::from(a.token_stdin) + stdin_count(&a.keys) + stdin_count(&a.headers),
            )?;
            let token = match (&a.token_ref, a.token_stdin) {
                (Some(r), _) => Some(reference(r)),
                (None, true) => Some(stdin.next("auth")?),
                _ => None,
            };
            let auth = McpAuth {
                token,
                keys: secret_headers(&a.keys, &mut stdin, "auth")?,
                headers: secret_headers(&a.headers, &mut stdin, "auth")?,
            };
            let transport = match (a.command, a.url) {
                (Some(command), _) => McpTransport::Stdio {
                    command,
                    args: a.args,
                },
                (None, Some(url)) => McpTransport::Http { url },
                _ => bail!("invalid transport: give --command or --url"),
            };
            let rec = Record::McpServer(McpServer {
                name: a.name,
                folder: a.folder,
                transport,
                auth,
            });
            create(&mut ctx, scope, rec)?;
            Ok(ExitCode::SUCCESS)
        }
        McpCmd::List(a) => list(&mut ctx, Kind::McpServer, &a),
        McpCmd::Show(a) => show(&mut ctx, Kind::McpServer, &a),
        McpCmd::Rm(a) => rm(&mut ctx, Kind::McpServer, &a),
    }
}

// ------------------------------------------------------------------ diagrams

#[derive(Subcommand, Debug)]
pub enum DiagramCmd {
    /// Add a diagram: nodes (hosts or labels) and labelled links.
    Add(DiagramAddArgs),
    List(ListArgs),
    Show(ShowArgs),
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct DiagramAddArgs {
    name: String,
    #[command(flatten)]
    scope: ScopeArgs,
    #[arg(long, default_value = "")]
    folder: String,
    /// A node: ID, or ID=HOST (a host id/name in the same scope) or ID=LABEL; repeatable.
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// A link: FROM,TO[,LABEL]; repeatable.
    #[arg(long = "link")]
    links: Vec<String>,
}

pub fn diagram(profile: Option<&str>, cmd: DiagramCmd) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx::open(profile)?;
    match cmd {
        DiagramCmd::Add(a) => {
            let scope = ctx.new_scope(&a.scope)?;
            let nodes = a
                .nodes
                .iter()
                .map(|n| {
                    let (id, what) = n.split_once('=').unwrap_or((n, n));
                    match ctx.store.resolve(Kind::Host, Some(&scope), what) {
                        Ok(h) => DiagramNode {
                            id: id.to_string(),
                            host_id: Some(h.meta.id),
                            label: None,
                        },
                        Err(_) => DiagramNode {
                            id: id.to_string(),
                            host_id: None,
                            label: Some(what.to_string()),
                        },
                    }
                })
                .collect();
            let links = a
                .links
                .iter()
                .map(|l| {
                    let mut p = l.splitn(3, ',');
                    match (p.next(), p.next(), p.next()) {
                        (Some(f), Some(t), label) => Ok(DiagramLink {
                            from: f.to_string(),
                            to: t.to_string(),
                            label: label.map(str::to_string),
                        }),
                        _ => bail!("invalid links: {l:?} is not FROM,TO[,LABEL]"),
                    }
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rec = Record::Diagram(Diagram {
                name: a.name,
                folder: a.folder,
                nodes,
                links,
            });
            create(&mut ctx, scope, rec)?;
            Ok(ExitCode::SUCCESS)
        }
        DiagramCmd::List(a) => list(&mut ctx, Kind::Diagram, &a),
        DiagramCmd::Show(a) => show(&mut ctx, Kind::Diagram, &a),
        DiagramCmd::Rm(a) => rm(&mut ctx, Kind::Diagram, &a),
    }
}

// ------------------------------------------------------ records, export, import

#[derive(Subcommand, Debug)]
pub enum RecordsCmd {
    /// Print the field table: every field of every kind, sealed or plaintext, and bindings.
    Fields {
        #[arg(long)]
        json: bool,
    },
    /// Write a record of any kind from its JSON (e.g. procedure-run, keychain-pointer).
    Put {
        /// host, diagram, procedure, procedure-run, memory, connector, mcp-server, keychain-pointer.
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// JSON file (`-`: stdin).
        file: PathBuf,
    },
    /// List records of one kind.
    List {
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show a record of any kind.
    Show {
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        show: ShowArgs,
    },
    /// Record a keychain pointer (name, kind, created/rotated; never the
    /// payload) for every OS keychain entry, as private records.
    SyncPointers,
    /// Verify every record's MAC and open every sealed field (in batches); exit 2 if any fails.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Audit rows (who, what, when; metadata only), newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

fn parse_kind(s: &str) -> anyhow::Result<Kind> {
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "invalid kind: {s:?} (one of: {})",
                Kind::ALL.map(Kind::as_str).join(", ")
            )
        })
}

#[derive(serde::Serialize)]
struct VerifyRow {
    kind: Kind,
    id: String,
    ok: bool,
    error: Option<String>,
}

pub fn records(profile: Option<&str>, cmd: RecordsCmd) -> anyhow::Result<ExitCode> {
    if let RecordsCmd::Fields { json } = cmd {
        return print_fields(json);
    }
    let mut ctx = Ctx::open(profile)?;
    match cmd {
        RecordsCmd::Fields { .. } => unreachable!("handled above"),
        RecordsCmd::Put { kind, scope, file } => {
            let kind = parse_kind(&kind)?;
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let v: Value = serde_json::from_str(&text).context("the record is not JSON")?;
            let rec = Record::from_value(kind, v)?;
            let scope = ctx.new_scope(&scope)?;
            create(&mut ctx, scope, rec)?;
            Ok(ExitCode::SUCCESS)
        }
        RecordsCmd::SyncPointers => sync_pointers(&mut ctx),
        RecordsCmd::List { kind, list: a } => list(&mut ctx, parse_kind(&kind)?, &a),
        RecordsCmd::Show { kind, show: a } => show(&mut ctx, parse_kind(&kind)?, &a),
        RecordsCmd::Verify { json } => {
            let (store, sealer) = ctx.parts()?;
            let mut rows = Vec::new();
            let mut stored: Vec<StoredRecord> = Vec::new();
            for s in store.list(&Filter::default())? {
                match store.get(s.meta.kind, &s.meta.id) {
                    Ok(r) => stored.push(r),
                    Err(e) => rows.push(VerifyRow {
                        kind: s.meta.kind,
                        id: s.meta.id,
                        ok: false,
                        error: Some(e.to_string()),
                    }),
                }
            }
            let results = Store::open_many(sealer, &stored)?;
            rows.extend(stored.iter().zip(results).map(|(s, r)| VerifyRow {
                kind: s.meta.kind,
                id: s.meta.id.clone(),
                ok: r.is_ok(),
                error: r.err().map(|e| e.to_string()),
            }));
            let bad = rows.iter().filter(|r| !r.ok).count();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "records": rows.len(), "ok": rows.len() - bad, "failed": bad, "rows": rows
                    }))?
                );
            } else {
                for r in rows.iter().filter(|r| !r.ok) {
                    println!(
                        "FAILED {}/{}: {}",
                        r.kind,
                        r.id,
                        r.error.as_deref().unwrap_or("")
                    );
                }
                println!(
                    "{} record(s): {} ok, {bad} failed",
                    rows.len(),
                    rows.len() - bad
                );
            }
            Ok(if bad > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        RecordsCmd::Audit { limit, json } => {
            let rows = ctx.store.audit(limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<8} {:<14} {:<12} {:<8} {:<16} {:<18} {:<20} REV",
                    "SEQ", "AT", "ACTOR", "ACTION", "KIND", "ID", "SCOPE"
                );
                for r in rows {
                    println!(
                        "{:<8} {:<14} {:<12} {:<8} {:<16} {:<18} {:<20} {}",
                        r.seq,
                        r.at_ms / 1000,
                        r.actor,
                        r.action,
                        r.kind,
                        r.record_id,
                        r.scope,
                        r.revision
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn sync_pointers(ctx: &mut Ctx) -> anyhow::Result<ExitCode> {
    let entries = match ctx.sealer()?.call(BrokerRequest::KeychainList)? {
        BrokerResponse::Keychain(e) => e,
        r => bail!("unexpected broker response: {r:?}"),
    };
    let (mut created, mut updated, mut unchanged) = (0, 0, 0);
    for e in entries {
        let want = KeychainPointer {
            name: e.name.clone(),
            folder: String::new(),
            secret_kind: e.kind.to_string(),
            created_ms: e.created_ms,
            rotated_ms: e.rotated_ms,
        };
        match ctx
            .store
            .resolve(Kind::KeychainPointer, Some(&KeyScope::Private), &e.name)
        {
            Ok(stored) => {
                let (store, sealer) = ctx.parts()?;
                let o = Store::open_record(sealer, &stored)?;
                if o.record == Record::KeychainPointer(want.clone()) {
                    unchanged += 1;
                    continue;
                }
                store.update(sealer, &actor(), &o.meta, Record::KeychainPointer(want))?;
                println!("updated keychain-pointer {}", e.name);
                updated += 1;
            }
            Err(gatehouse_records::RecordError::NotFound { .. }) => {
                create(ctx, KeyScope::Private, Record::KeychainPointer(want))?;
                created += 1;
            }
            Err(other) => return Err(other.into()),
        }
    }
    println!("keychain pointers: {created} created, {updated} updated, {unchanged} unchanged");
    Ok(ExitCode::SUCCESS)
}

fn print_fields(json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let rows: Vec<Value> = fields::TABLE
            .iter()
            .map(|r| {
                let (class, bound) = match r.class {
                    Class::Plain => ("plaintext", Vec::new()),
                    Class::Sealed { bound_to } => ("sealed", bound_to.to_vec()),
                };
                serde_json::json!({"kind": r.kind, "field": r.field, "class": class, "bound_to": bound})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<18} {:<26} {:<10} BOUND TO", "KIND", "FIELD", "CLASS");
    for r in fields::TABLE {
        let (class, bound) = match r.class {
            Class::Plain => ("plaintext", String::new()),
            Class::Sealed { bound_to } => ("sealed", bound_to.join(", ")),
        };
        println!(
            "{:<18} {:<26} {:<10} {}",
            r.kind.as_str(),
            r.field,
            class,
            bound
        );
    }
    println!(
        "every record also has plaintext {} and a MAC over all of it",
        fields::META_FIELDS.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The organization to export (name or id).
    #[arg(long)]
    org: String,
    /// Output file (the bundle: JSON with one sealed field).
    file: PathBuf,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A bundle written by `gatehouse export`.
    file: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn export(profile: Option<&str>, a: &ExportArgs) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx::open(profile)?;
    let KeyScope::Org(org_id) = ctx.org_scope(&a.org, true)? else {
        unreachable!("org scopes only");
    };
    let (store, sealer) = ctx.parts()?;
    let file = bundle::export_org(store, sealer, &org_id)?;
    let text = serde_json::to_string_pretty(&file)?;
    write_private(&a.file, text.as_bytes())?;
    println!(
        "exported {} record(s) of organization {} to {} (sealed under the org key)",
        file.count,
        a.org,
        a.file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a file readable by its owner only.
fn write_private(path: &PathBuf, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

pub fn import(profile: Option<&str>, a: &ImportArgs) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx::open(profile)?;
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let file: bundle::BundleFile =
        serde_json::from_str(&text).context("not a Gatehouse bundle (JSON)")?;
    let orgs: Vec<String> = ctx.refresh_orgs()?.into_iter().map(|(id, _)| id).collect();
    let (store, sealer) = ctx.parts()?;
    let rep = bundle::import(store, sealer, &actor(), &file, &orgs)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        for (k, id, name) in &rep.created {
            println!("created {k} {name} (id {id})");
        }
        for (k, id, name) in &rep.updated {
            println!("updated {k} {name} (id {id})");
        }
        for (k, id, name, why) in &rep.skipped {
            println!("skipped {k} {name} (id {id}): {why}");
        }
        println!(
            "{} created, {} updated, {} skipped",
            rep.created.len(),
            rep.updated.len(),
            rep.skipped.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
