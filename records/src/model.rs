//! Record kinds: the typed shape of every operational record Gatehouse keeps.
//!
//! Owns: the structs of each kind, their JSON shape (the field names the
//! [`crate::fields`] table classifies), and [`Secret`], the in-memory holder
//! of a secret value (a literal or a `keychain:NAME` reference).
//! Must never: decide sensitivity (that is the field table's job alone) or
//! print a secret in `Debug`.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use gatehouse_ipc::broker::KeyScope;

use crate::RecordError;

/// The record kinds. `as_str` is the name used in field addresses, MACs and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Host,
    Diagram,
    Procedure,
    ProcedureRun,
    Memory,
    Connector,
    McpServer,
    KeychainPointer,
    Settings,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Host,
        Kind::Diagram,
        Kind::Procedure,
        Kind::ProcedureRun,
        Kind::Memory,
        Kind::Connector,
        Kind::McpServer,
        Kind::KeychainPointer,
        Kind::Settings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Diagram => "diagram",
            Kind::Procedure => "procedure",
            Kind::ProcedureRun => "procedure-run",
            Kind::Memory => "memory",
            Kind::Connector => "connector",
            Kind::McpServer => "mcp-server",
            Kind::KeychainPointer => "keychain-pointer",
            Kind::Settings => "settings",
        }
    }

    /// Whether records of this kind carry a name unique within (scope, folder).
    pub fn has_unique_name(self) -> bool {
        !matches!(self, Kind::ProcedureRun)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = RecordError;
    fn from_str(s: &str) -> Result<Kind, RecordError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| RecordError::Corrupt {
                what: format!("unknown record kind {s:?}"),
            })
    }
}

/// A secret value: a literal (sealed like any secret) or a keychain reference
/// `keychain:NAME`. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(Zeroizing::new(value))
    }

    /// A reference to keychain entry `name`.
    pub fn keychain(name: &str) -> Secret {
        Secret::new(format!("keychain:{name}"))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The keychain entry name if this is a `keychain:NAME` reference.
    pub fn keychain_ref(&self) -> Option<&str> {
        keychain_ref(&self.0)
    }
}

/// The keychain entry name of a `keychain:NAME` reference.
pub fn keychain_ref(s: &str) -> Option<&str> {
    s.strip_prefix("keychain:")
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.keychain_ref() {
            Some(name) => write!(f, "Secret(keychain:{name})"),
            None => f.write_str("Secret(••••)"),
        }
    }
}

/// Device platforms (decide how commands are classified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vendor {
    Routeros,
    Ios,
    Iosxe,
    Nxos,
    Junos,
    Eos,
    Linux,
    OnvifCamera,
    Other,
}

impl Vendor {
    pub const ALL: [Vendor; 9] = [
        Vendor::Routeros,
        Vendor::Ios,
        Vendor::Iosxe,
        Vendor::Nxos,
        Vendor::Junos,
        Vendor::Eos,
        Vendor::Linux,
        Vendor::OnvifCamera,
        Vendor::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Routeros => "routeros",
            Vendor::Ios => "ios",
            Vendor::Iosxe => "iosxe",
            Vendor::Nxos => "nxos",
            Vendor::Junos => "junos",
            Vendor::Eos => "eos",
            Vendor::Linux => "linux",
            Vendor::OnvifCamera => "onvif-camera",
            Vendor::Other => "other",
        }
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Vendor {
    type Err = RecordError;
    fn from_str(s: &str) -> Result<Vendor, RecordError> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| RecordError::Invalid {
                field: "vendor".into(),
                reason: format!(
                    "unknown vendor {s:?} (one of: {})",
                    Vendor::ALL.map(Vendor::as_str).join(", ")
                ),
            })
    }
}

/// SSH access to a host. The secrets are bound to the host's address, port,
/// this username and the host-key fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshProtocol {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_path: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_passphrase: Option<Secret>,
    /// e.g. `ssh-ed25519 SHA256:…`, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key_fingerprint: Option<String>,
}

/// HTTP/REST API access to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpProtocol {
    pub port: u16,
    pub tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
}

/// ONVIF access to a camera.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnvifProtocol {
    pub port: u16,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub folder: String,
    /// Hostname or IP address.
    pub address: String,
    /// SSH port.
    pub port: u16,
    #[serde(default)]
    pub tags: Vec<String>,
    pub vendor: Vendor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onvif: Option<OnvifProtocol>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagramNode {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagramLink {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagram {
    pub name: String,
    pub folder: String,
    #[serde(default)]
    pub nodes: Vec<DiagramNode>,
    #[serde(default)]
    pub links: Vec<DiagramLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Procedure {
    pub name: String,
    pub folder: String,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Markdown steps.
    pub body: Secret,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunArgument {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMessage {
    pub role: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallSummary {
    pub tool: String,
    #[serde(default)]
    pub host: String,
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    Succeeded,
    Failed,
    Aborted,
}

/// One execution of a procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedureRun {
    pub procedure_id: String,
    pub started_ms: u64,
    /// Who ran it (a person or `copilot`).
    pub who: String,
    pub outcome: RunOutcome,
    #[serde(default)]
    pub arguments: Vec<RunArgument>,
    #[serde(default)]
    pub messages: Vec<RunMessage>,
    #[serde(default)]
    pub tool_calls: Vec<ToolCallSummary>,
    #[serde(default)]
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub title: String,
    pub folder: String,
    pub body: Secret,
    #[serde(default)]
    pub host_ids: Vec<String>,
}

/// A plaintext HTTP header (connector default headers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A header whose value is a secret (auth headers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHeader {
    pub name: String,
    pub value: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectorKind {
    Rest,
    Soap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ConnectorAuth {
    None,
    Basic { username: String, password: Secret },
    Bearer { token: Secret },
    ApiKeyHeader { header: String, key: Secret },
    CustomHeaders { headers: Vec<SecretHeader> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connector {
    pub name: String,
    pub folder: String,
    pub kind: ConnectorKind,
    pub base_url: String,
    pub auth: ConnectorAuth,
    #[serde(default)]
    pub default_headers: Vec<Header>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum McpTransport {
    Stdio { command: String, args: Vec<String> },
    Http { url: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct McpAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Named keys (e.g. environment variables of a stdio server).
    #[serde(default)]
    pub keys: Vec<SecretHeader>,
    #[serde(default)]
    pub headers: Vec<SecretHeader>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServer {
    pub name: String,
    pub folder: String,
    pub transport: McpTransport,
    pub auth: McpAuth,
}

/// Metadata of a keychain entry; never the payload (which stays in the OS keychain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeychainPointer {
    pub name: String,
    pub folder: String,
    pub secret_kind: String,
    pub created_ms: u64,
    pub rotated_ms: u64,
}

/// Any record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Host(Host),
    Diagram(Diagram),
    Procedure(Procedure),
    ProcedureRun(ProcedureRun),
    Memory(Memory),
    Connector(Connector),
    McpServer(McpServer),
    KeychainPointer(KeychainPointer),
    Settings(crate::settings::Settings),
}

impl Record {
    pub fn kind(&self) -> Kind {
        match self {
            Record::Host(_) => Kind::Host,
            Record::Diagram(_) => Kind::Diagram,
            Record::Procedure(_) => Kind::Procedure,
            Record::ProcedureRun(_) => Kind::ProcedureRun,
            Record::Memory(_) => Kind::Memory,
            Record::Connector(_) => Kind::Connector,
            Record::McpServer(_) => Kind::McpServer,
            Record::KeychainPointer(_) => Kind::KeychainPointer,
            Record::Settings(_) => Kind::Settings,
        }
    }

    /// The record's JSON object (field names as in the field table).
    pub fn to_value(&self) -> Result<serde_json::Value, RecordError> {
        let v = match self {
            Record::Host(r) => serde_json::to_value(r),
            Record::Diagram(r) => serde_json::to_value(r),
            Record::Procedure(r) => serde_json::to_value(r),
            Record::ProcedureRun(r) => serde_json::to_value(r),
            Record::Memory(r) => serde_json::to_value(r),
            Record::Connector(r) => serde_json::to_value(r),
            Record::McpServer(r) => serde_json::to_value(r),
            Record::KeychainPointer(r) => serde_json::to_value(r),
            Record::Settings(r) => serde_json::to_value(r),
        };
        v.map_err(|e| RecordError::Corrupt {
            what: format!("cannot encode {}: {e}", self.kind()),
        })
    }

    pub fn from_value(kind: Kind, v: serde_json::Value) -> Result<Record, RecordError> {
        fn de<T: serde::de::DeserializeOwned>(
            kind: Kind,
            v: serde_json::Value,
        ) -> Result<T, RecordError> {
            serde_json::from_value(v).map_err(|e| RecordError::Corrupt {
                what: format!("{kind} fields do not decode: {e}"),
            })
        }
        Ok(match kind {
            Kind::Host => Record::Host(de(kind, v)?),
            Kind::Diagram => Record::Diagram(de(kind, v)?),
            Kind::Procedure => Record::Procedure(de(kind, v)?),
            Kind::ProcedureRun => Record::ProcedureRun(de(kind, v)?),
            Kind::Memory => Record::Memory(de(kind, v)?),
            Kind::Connector => Record::Connector(de(kind, v)?),
            Kind::McpServer => Record::McpServer(de(kind, v)?),
            Kind::KeychainPointer => Record::KeychainPointer(de(kind, v)?),
            Kind::Settings => Record::Settings(de(kind, v)?),
        })
    }

    /// The display name (unique within scope and folder), if the kind has one.
    pub fn name(&self) -> Option<&str> {
        Some(match self {
            Record::Host(r) => &r.name,
            Record::Diagram(r) => &r.name,
            Record::Procedure(r) => &r.name,
            Record::ProcedureRun(_) => return None,
            Record::Memory(r) => &r.title,
            Record::Connector(r) => &r.name,
            Record::McpServer(r) => &r.name,
            Record::KeychainPointer(r) => &r.name,
            Record::Settings(r) => &r.name,
        })
    }

    pub fn folder(&self) -> &str {
        match self {
            Record::Host(r) => &r.folder,
            Record::Diagram(r) => &r.folder,
            Record::Procedure(r) => &r.folder,
            Record::ProcedureRun(_) => "",
            Record::Memory(r) => &r.folder,
            Record::Connector(r) => &r.folder,
            Record::McpServer(r) => &r.folder,
            Record::KeychainPointer(r) => &r.folder,
            Record::Settings(r) => &r.folder,
        }
    }
}

/// What every stored record carries besides its fields. All plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub kind: Kind,
    pub id: String,
    pub scope: KeyScope,
    pub owner: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub revision: u64,
}

/// The store's text form of a scope (`org:ID` or `private`).
pub fn scope_str(scope: &KeyScope) -> String {
    match scope {
        KeyScope::Org(id) => format!("org:{id}"),
        KeyScope::Private => "private".into(),
    }
}

pub fn parse_scope(s: &str) -> Result<KeyScope, RecordError> {
    match s {
        "private" => Ok(KeyScope::Private),
        _ => match s.strip_prefix("org:") {
            Some(id) if !id.is_empty() => Ok(KeyScope::Org(id.to_string())),
            _ => Err(RecordError::Corrupt {
                what: format!("unknown scope {s:?}"),
            }),
        },
    }
}
