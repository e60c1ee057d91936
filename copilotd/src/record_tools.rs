//! The copilot's record tools: procedures (runbooks) and memories (notes).
//!
//! Owns `list_procedures`, `read_procedure`, `search_memories` and
//! `run_procedure` (reads: they run without approval, since reading a record
//! runs nothing; bodies are opened by the broker's `OpenNote`, which opens a
//! verified procedure's or memory's body and nothing else), and
//! `write_memory` / `update_procedure` (moderate: gated like `run_command`;
//! a person approves the exact canonical text of the write
//! (`ipc::record_write`), may edit it, and what is written is what they
//! approved, parsed back; the broker MACs the record only if its content is
//! that text, spending the token). Every tool works in the conversation's
//! organization (`ChatSettings::org`).
//! Must never: open a field other than a note body, run a procedure's steps
//! itself (they go through `run_command`, gated as usual), write a record a
//! person did not approve, or hold the store lock across an await.

use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{
    Action, ApprovedRecord, Broker, BrokerError, BrokerRequest, BrokerResponse, KeyScope, MacItem,
    OpenItem, SealItem, VerifyItem,
};
use gatehouse_ipc::client::{CallError, SharedClient};
use gatehouse_ipc::copilotd::{ChatSettings, CopilotError, GateDecision};
use gatehouse_ipc::record_write::{RECORDS_HOST, RECORDS_VENDOR, RecordWrite};
use gatehouse_policy::Class;
use gatehouse_records::model::{Memory, Parameter, Record, Secret};
use gatehouse_records::store::{Filter, StoredRecord, field_address, verify_item};
use gatehouse_records::{Kind, Meta, Sealer, SealerError, Store};
use serde_json::{Value, json};

use crate::agent_api::{AgentApi, Approval, broker_call_error};
use crate::gate::{self, Verdict};
use crate::provider::{ToolCall, ToolSpec};

/// The names of the tools this module serves.
pub const TOOLS: [&str; 6] = [
    "list_procedures",
    "read_procedure",
    "search_memories",
    "run_procedure",
    "write_memory",
    "update_procedure",
];
/// Most memories `search_memories` returns, and most bodies it opens.
const MAX_HITS: usize = 10;
const MAX_OPENED: usize = 200;
/// Characters of context around a match.
const SNIPPET: usize = 160;
/// Most of a body the model sees.
const MAX_BODY: usize = 32 * 1024;
/// Who record writes are attributed to (owner of new records, audit rows).
pub const ACTOR: &str = "copilot";

pub fn is_record_tool(name: &str) -> bool {
    TOOLS.contains(&name)
}

/// The specs of the record tools.
pub fn specs() -> Vec<ToolSpec> {
    let spec = |name: &str, description: &str, parameters: Value| ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
    };
    vec![
        spec(
            "list_procedures",
            "List the procedures (runbooks) of this organization: name, folder, parameters, whether read-only.",
            json!({"type": "object", "properties": {}}),
        ),
        spec(
            "read_procedure",
            "Read one procedure's steps (its markdown body).",
            json!({
                "type": "object",
                "properties": {"procedure": {"type": "string", "description": "NAME or FOLDER/NAME"}},
                "required": ["procedure"]
            }),
        ),
        spec(
            "search_memories",
            "Search the organization's memories (notes) by title and body text; optionally only those linked to a host. Returns titles and snippets.",
            json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "host": {"type": "string", "description": "host name"}
                },
                "required": ["query"]
            }),
        ),
        spec(
            "run_procedure",
            "Start a procedure: returns its steps with the arguments filled in. Then carry out each step with run_command (each command is classified and gated as usual).",
            json!({
                "type": "object",
                "properties": {
                    "procedure": {"type": "string"},
                    "args": {"type": "object", "description": "parameter name → value", "additionalProperties": {"type": "string"}}
                },
                "required": ["procedure"]
            }),
        ),
        spec(
            "write_memory",
            "Write a new memory (note) for the organization, optionally linked to hosts. A person approves (or edits) it first.",
            json!({
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "body": {"type": "string"},
                    "hosts": {"type": "array", "items": {"type": "string"}, "description": "host names"}
                },
                "required": ["title", "body"]
            }),
        ),
        spec(
            "update_procedure",
            "Replace a procedure's body (its steps). A person approves (or edits) it first.",
            json!({
                "type": "object",
                "properties": {
                    "procedure": {"type": "string"},
                    "body": {"type": "string"}
                },
                "required": ["procedure", "body"]
            }),
        ),
    ]
}

pub use gatehouse_records::runbook::{ArgumentError, bind_arguments, substitute};

/// The org an approval names for records of `scope` (as sessiond names hosts').
fn org_of(scope: &KeyScope) -> String {
    match scope {
        KeyScope::Org(id) => id.clone(),
        KeyScope::Private => "private".into(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…(truncated)", &s[..end])
}

/// Up to [`SNIPPET`] bytes of `text` around byte offset `at`.
fn snippet(text: &str, at: usize) -> String {
    let mut start = at.saturating_sub(SNIPPET / 2);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + SNIPPET).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = text[start..end].replace('\n', " ");
    if start > 0 {
        s.insert(0, '…');
    }
    if end < text.len() {
        s.push('…');
    }
    s
}

/// Where `needle_lower` (lowercase) occurs in `text`, ignoring case (a
/// byte offset at a character boundary of `text`).
fn find_ignoring_case(text: &str, needle_lower: &str) -> Option<usize> {
    // Lowercasing may change lengths, so compare from each character of the original.
    text.char_indices().map(|(i, _)| i).find(|&i| {
        let mut hay = text[i..].chars().flat_map(char::to_lowercase);
        needle_lower.chars().all(|c| hay.next() == Some(c))
    })
}

/// A record write, checked and resolved against the store, ready to seal.
enum Prepared {
    Memory {
        record: Record,
        hosts: Vec<StoredRecord>,
    },
    Procedure {
        record: Record,
        current: StoredRecord,
    },
}

/// Resolves and checks `write` in `scope`: the hosts a memory links to,
/// the procedure an update replaces; validation and name uniqueness.
fn prepare(store: &Store, scope: &KeyScope, write: &RecordWrite) -> Result<Prepared, String> {
    // A person approves the rendering, and it is read back: it must read back as this write.
    match RecordWrite::parse(&write.render()) {
        Ok(w) if &w == write => {}
        Ok(_) => return Err("the write does not read back as itself".into()),
        Err(e) => return Err(format!("cannot be written as approved text: {e}")),
    }
    match write {
        RecordWrite::Memory {
            title,
            folder,
            hosts,
            body,
        } => {
            let hosts = hosts
                .iter()
                .map(|h| {
                    store
                        .resolve(Kind::Host, Some(scope), h)
                        .map_err(|e| format!("host {h:?}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut record = Record::Memory(Memory {
                title: title.clone(),
                folder: folder.clone(),
                body: Secret::new(body.clone()),
                host_ids: hosts.iter().map(|h| h.meta.id.clone()).collect(),
            });
            store
                .check(scope, None, &mut record)
                .map_err(|e| e.to_string())?;
            // Validation may normalize (e.g. the folder): the record must
            // still be exactly the text a person sees.
            let Record::Memory(m) = &record else {
                return Err("not a memory".into());
            };
            if &m.title != title || &m.folder != folder {
                return Err(format!(
                    "title or folder not in canonical form (the folder would be {:?})",
                    m.folder
                ));
            }
            Ok(Prepared::Memory { record, hosts })
        }
        RecordWrite::UpdateProcedure {
            procedure,
            folder,
            body,
        } => {
            let key = if folder.is_empty() {
                procedure.clone()
            } else {
                format!("{folder}/{procedure}")
            };
            let current = store
                .resolve(Kind::Procedure, Some(scope), &key)
                .map_err(|e| e.to_string())?;
            let text = |f: &str| current.plain.get(f).and_then(Value::as_str).unwrap_or("");
            if text("name") != procedure || text("folder") != folder {
                return Err(format!(
                    "{key:?} names procedure {}/{}: give its exact name and folder",
                    text("folder"),
                    text("name")
                ));
            }
            let mut fields = current.plain.clone();
            fields.insert("body".into(), Value::String(body.clone()));
            let mut record = Record::from_value(
                Kind::Procedure,
                gatehouse_records::fields::unflatten(fields),
            )
            .map_err(|e| e.to_string())?;
            store
                .check(scope, Some(&current.meta.id), &mut record)
                .map_err(|e| e.to_string())?;
            Ok(Prepared::Procedure { record, current })
        }
    }
}

/// The store's [`Sealer`] for one approved write: seals through the broker
/// (`SealFields`) and gets the record's MAC only through
/// `MacApprovedRecord`, which checks the content against the approval and
/// spends the token. Called from the store's synchronous code on a worker
/// thread that left the async runtime (`block_in_place`).
struct ApprovedSealer<'a> {
    broker: &'a SharedClient<Broker>,
    runtime: tokio::runtime::Handle,
    token: gatehouse_ipc::broker::ApprovalToken,
    current: Option<VerifyItem>,
    hosts: Vec<VerifyItem>,
}

impl ApprovedSealer<'_> {
    fn call(&self, req: BrokerRequest) -> Result<BrokerResponse, SealerError> {
        self.runtime
            .block_on(self.broker.call(req))
            .map_err(|e| match e {
                CallError::Remote(r) => SealerError::Remote(r),
                CallError::Transport(t) => SealerError::Transport(t.to_string()),
            })
    }
}

impl Sealer for ApprovedSealer<'_> {
    fn seal(&mut self, items: Vec<SealItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        let n = items.len();
        match self.call(BrokerRequest::SealFields { items })? {
            BrokerResponse::Sealed(s) if s.len() == n => Ok(s.into_iter().map(|s| s.0).collect()),
            other => Err(SealerError::Unexpected(format!("{other:?}"))),
        }
    }

    fn mac(&mut self, mut items: Vec<MacItem>) -> Result<Vec<Vec<u8>>, SealerError> {
        let (Some(item), true) = (items.pop(), items.is_empty()) else {
            return Err(SealerError::Unexpected(
                "one approval covers one record".into(),
            ));
        };
        let req = ApprovedRecord {
            token: self.token.clone(),
            item,
            current: self.current.clone(),
            hosts: self.hosts.clone(),
        };
        match self.call(BrokerRequest::MacApprovedRecord(Box::new(req)))? {
            BrokerResponse::Macs(mut m) if m.len() == 1 => Ok(vec![m.remove(0).0]),
            other => Err(SealerError::Unexpected(format!("{other:?}"))),
        }
    }

    fn open(&mut self, _: Vec<OpenItem>) -> Result<Vec<SecretBytes>, SealerError> {
        Err(SealerError::Unexpected(
            "copilotd opens note bodies only, with OpenNote".into(),
        ))
    }

    fn verify(&mut self, _: Vec<VerifyItem>) -> Result<Vec<bool>, SealerError> {
        Err(SealerError::Unexpected("not used by record writes".into()))
    }

    fn keychain_names(&mut self) -> Result<Vec<String>, SealerError> {
        Err(SealerError::Unexpected(
            "procedures and memories hold no keychain references".into(),
        ))
    }
}

/// Runs one record tool call; returns what the model is told.
pub(crate) async fn record_tool(
    agent: &impl AgentApi,
    conversation: u64,
    call: &ToolCall,
    settings: &ChatSettings,
) -> Result<String, CopilotError> {
    let arg = |k: &str| call.arguments.get(k).and_then(Value::as_str);
    let scope = match agent.org_scope(settings).await? {
        Ok(s) => s,
        Err(e) => {
            return agent.refuse(conversation, call, "-", Vec::new(), e).await;
        }
    };
    let write = match call.name.as_str() {
        "write_memory" => {
            let hosts: Vec<String> = match call.arguments.get("hosts") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => match serde_json::from_value(v.clone()) {
                    Ok(h) => h,
                    Err(_) => {
                        return agent
                            .refuse(
                                conversation,
                                call,
                                "-",
                                Vec::new(),
                                "hosts must be a list of host names",
                            )
                            .await;
                    }
                },
            };
            match (arg("title"), arg("body")) {
                (Some(title), Some(body)) => RecordWrite::Memory {
                    title: title.into(),
                    folder: String::new(),
                    hosts,
                    body: body.into(),
                },
                _ => {
                    return agent
                        .refuse(
                            conversation,
                            call,
                            "-",
                            Vec::new(),
                            "write_memory needs a title and a body",
                        )
                        .await;
                }
            }
        }
        "update_procedure" => match (arg("procedure"), arg("body")) {
            (Some(p), Some(body)) => {
                let (folder, name) = p.rsplit_once('/').unwrap_or(("", p));
                RecordWrite::UpdateProcedure {
                    procedure: name.into(),
                    folder: folder.into(),
                    body: body.into(),
                }
            }
            _ => {
                return agent
                    .refuse(
                        conversation,
                        call,
                        "-",
                        Vec::new(),
                        "update_procedure needs a procedure and a body",
                    )
                    .await;
            }
        },
        _ => {
            // Reads: reading a record runs nothing.
            agent
                .announce(
                    conversation,
                    call,
                    Class::ReadOnly.as_str(),
                    vec!["reads a record".into()],
                    GateDecision::Run,
                )
                .await?;
            return read_tool(agent, call, scope.as_ref()).await;
        }
    };
    let Some(scope) = scope else {
        return agent
            .refuse(
                conversation,
                call,
                "-",
                Vec::new(),
                "writing a record needs the conversation's organization (--org)",
            )
            .await;
    };
    write_tool(agent, conversation, call, settings, &scope, write).await
}

/// A verified record's body, opened by the broker (note bodies only).
async fn open_body(
    agent: &impl AgentApi,
    stored: &StoredRecord,
) -> Result<Result<String, String>, CopilotError> {
    let req = BrokerRequest::OpenNote {
        record: Box::new(verify_item(stored)),
        field: field_address(&stored.meta, "body", &stored.plain),
    };
    match agent.broker().call(req).await {
        Ok(BrokerResponse::Note(b)) => Ok(Ok(String::from_utf8_lossy(b.expose()).into_owned())),
        Ok(_) => Err(CopilotError::Internal(
            "unexpected reply to OpenNote".into(),
        )),
        Err(CallError::Remote(BrokerError::SignedOut | BrokerError::NotInitialized)) => {
            Err(CopilotError::SignedOut)
        }
        Err(CallError::Remote(e)) => Ok(Err(e.to_string())),
        Err(e) => Err(broker_call_error(e)),
    }
}

fn find(
    agent: &impl AgentApi,
    kind: Kind,
    scope: Option<&KeyScope>,
    key: &str,
) -> Result<StoredRecord, String> {
    agent
        .store()
        .resolve(kind, scope, key)
        .map_err(|e| e.to_string())
}

async fn read_tool(
    agent: &impl AgentApi,
    call: &ToolCall,
    scope: Option<&KeyScope>,
) -> Result<String, CopilotError> {
    let arg = |k: &str| call.arguments.get(k).and_then(Value::as_str);
    match call.name.as_str() {
        "list_procedures" => Ok(list_procedures(agent, scope)),
        "read_procedure" => {
            let Some(key) = arg("procedure") else {
                return Ok("error: read_procedure needs a procedure".into());
            };
            let stored = match find(agent, Kind::Procedure, scope, key) {
                Ok(s) => s,
                Err(e) => return Ok(format!("error: {e}")),
            };
            Ok(match open_body(agent, &stored).await? {
                Ok(body) => format!(
                    "Procedure {} (parameters: {}):\n\n{}",
                    stored
                        .plain
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or(key),
                    stored.plain.get("parameters").unwrap_or(&Value::Null),
                    shorten(&body, MAX_BODY)
                ),
                Err(e) => format!("error: {e}"),
            })
        }
        "search_memories" => match arg("query") {
            Some(q) if !q.trim().is_empty() => search_memories(agent, scope, q, arg("host")).await,
            _ => Ok("error: search_memories needs a query".into()),
        },
        "run_procedure" => match arg("procedure") {
            Some(key) => run_procedure(agent, scope, key, call.arguments.get("args")).await,
            None => Ok("error: run_procedure needs a procedure".into()),
        },
        other => Ok(format!("error: there is no tool {other:?}")),
    }
}

fn list_procedures(agent: &impl AgentApi, scope: Option<&KeyScope>) -> String {
    let filter = Filter {
        scope: scope.cloned(),
        ..Filter::kind(Kind::Procedure)
    };
    match agent.store().list(&filter) {
        Ok(list) => Value::Array(
            list.iter()
                .map(|s| {
                    json!({
                        "name": s.name(),
                        "folder": s.folder(),
                        "parameters": s.fields.get("parameters"),
                        "read_only": s.fields.get("read_only"),
                    })
                })
                .collect(),
        )
        .to_string(),
        Err(e) => format!("error: cannot read the procedures: {e}"),
    }
}

async fn search_memories(
    agent: &impl AgentApi,
    scope: Option<&KeyScope>,
    query: &str,
    host: Option<&str>,
) -> Result<String, CopilotError> {
    let needle = query.to_lowercase();
    let host_id = match host {
        Some(h) => match find(agent, Kind::Host, scope, h) {
            Ok(s) => Some(s.meta.id),
            Err(e) => return Ok(format!("error: {e}")),
        },
        None => None,
    };
    let filter = Filter {
        scope: scope.cloned(),
        ..Filter::kind(Kind::Memory)
    };
    let loaded = agent.store().load(&filter);
    let memories = match loaded {
        Ok(m) => m,
        Err(e) => return Ok(format!("error: cannot read the memories: {e}")),
    };
    let linked = |m: &StoredRecord| {
        host_id.as_ref().is_none_or(|id| {
            m.plain
                .get("host_ids")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(id)))
        })
    };
    let mut hits = Vec::new();
    let mut opened = 0;
    let mut unopened = 0;
    for m in memories.iter().filter(|m| linked(m)) {
        if hits.len() >= MAX_HITS {
            break;
        }
        let title = m.plain.get("title").and_then(Value::as_str).unwrap_or("");
        if opened >= MAX_OPENED {
            unopened += 1;
            continue;
        }
        opened += 1;
        let body = match open_body(agent, m).await? {
            Ok(b) => b,
            Err(e) => {
                hits.push(json!({"title": title, "error": e}));
                continue;
            }
        };
        let at = find_ignoring_case(&body, &needle);
        if at.is_some() || title.to_lowercase().contains(&needle) {
            hits.push(json!({
                "title": title,
                "folder": m.plain.get("folder"),
                "snippet": snippet(&body, at.unwrap_or(0)),
            }));
        }
    }
    let mut out = json!({"query": query, "matches": hits});
    if unopened > 0 {
        out["note"] = json!(format!(
            "{unopened} more memories were not searched (at most {MAX_OPENED} per search)"
        ));
    }
    Ok(out.to_string())
}

async fn run_procedure(
    agent: &impl AgentApi,
    scope: Option<&KeyScope>,
    key: &str,
    args: Option<&Value>,
) -> Result<String, CopilotError> {
    let stored = match find(agent, Kind::Procedure, scope, key) {
        Ok(s) => s,
        Err(e) => return Ok(format!("error: {e}")),
    };
    let name = stored
        .plain
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(key)
        .to_string();
    let parameters: Vec<Parameter> = stored
        .plain
        .get("parameters")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .unwrap_or_default()
        .unwrap_or_default();
    let given: Vec<(String, String)> = match args {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => {
            let mut g = Vec::new();
            for (k, v) in m {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => v.to_string(),
                    _ => return Ok(format!("error: argument {k:?} must be text")),
                };
                g.push((k.clone(), v));
            }
            g
        }
        Some(_) => return Ok("error: args must be an object of name → value".into()),
    };
    let values = match bind_arguments(&name, &parameters, &given) {
        Ok(v) => v,
        Err(e) => return Ok(format!("error: {e}")),
    };
    let body = match open_body(agent, &stored).await? {
        Ok(b) => b,
        Err(e) => return Ok(format!("error: {e}")),
    };
    let arguments = gatehouse_records::runbook::arguments_line(&values);
    Ok(format!(
        "Procedure {name} ({arguments}). Carry out its steps one by one with run_command; \
         each command is classified and gated as usual (read-only runs, anything else waits \
         for a person's approval). Nothing has run yet. The steps:\n\n{}",
        shorten(&substitute(&body, &values), MAX_BODY)
    ))
}

/// A moderate write: the gate, a person's approval of the exact text
/// (or their edit of it), then the write of what they approved.
async fn write_tool(
    agent: &impl AgentApi,
    conversation: u64,
    call: &ToolCall,
    settings: &ChatSettings,
    scope: &KeyScope,
    write: RecordWrite,
) -> Result<String, CopilotError> {
    // Check before asking anyone: a person approves only what can be written.
    let checked = prepare(&agent.store(), scope, &write).map(|_| ());
    if let Err(e) = checked {
        return agent.refuse(conversation, call, "-", Vec::new(), e).await;
    }
    let class = Class::Moderate;
    let reasons = vec!["writes a shared record (a memory or a procedure)".to_string()];
    let not_written = match gate::decide(class, None, settings.mode, settings.trust) {
        Verdict::Suggest => Some((
            GateDecision::Suggest,
            "Not written: this write is shown to the person as a suggestion (this mode runs read-only tools only).".to_string(),
        )),
        Verdict::Refuse(reason) => Some((
            GateDecision::Refuse {
                reason: reason.clone(),
            },
            format!("Not written: {reason}."),
        )),
        // Writing a shared record always needs a person.
        Verdict::Run | Verdict::AskPerson => None,
    };
    if let Some((decision, told)) = not_written {
        agent
            .announce(conversation, call, class.as_str(), reasons, decision)
            .await?;
        return Ok(told);
    }
    let expected_effect = match &write {
        RecordWrite::Memory { title, hosts, .. } => format!(
            "creates the memory {title:?}{}",
            if hosts.is_empty() {
                String::new()
            } else {
                format!(", linked to {}", hosts.join(", "))
            }
        ),
        RecordWrite::UpdateProcedure { procedure, .. } => {
            format!("replaces the steps of procedure {procedure:?} (nothing else changes)")
        }
    };
    let action = Action {
        host: RECORDS_HOST.into(),
        vendor: RECORDS_VENDOR.into(),
        org: org_of(scope),
        credential: None,
        command: write.render(),
        expected_effect,
    };
    let token = match agent
        .seek_approval(conversation, call, action.clone(), class.as_str(), &reasons)
        .await?
    {
        Approval::Granted(t) => t,
        Approval::NotRun(why) => return Ok(why.replacen("Not run", "Not written", 1)),
    };
    let edited = token.action.command != action.command;
    // Carry out what the person approved, edits included.
    let approved = match RecordWrite::parse(&token.action.command) {
        Ok(w) => w,
        Err(e) => {
            return Ok(format!(
                "Not written: a person edited the write and the edited text cannot be read ({e}). Nothing was written."
            ));
        }
    };
    let done = write_approved(agent, scope, &approved, *token);
    Ok(match done {
        Ok(meta) => {
            let what = match &approved {
                RecordWrite::Memory { title, .. } => format!("memory {title:?}"),
                RecordWrite::UpdateProcedure { procedure, .. } => {
                    format!("procedure {procedure:?}")
                }
            };
            let head = if edited {
                "A person edited the write before approving it; what was written is the edited text.\n"
            } else {
                ""
            };
            format!(
                "{head}Written: {what} (id {}, revision {}).",
                meta.id, meta.revision
            )
        }
        Err(e) => format!("Not written: {e}"),
    })
}

/// Writes `write` with the approval `token`: seals the body, has the
/// broker MAC the record against the approval, commits.
fn write_approved(
    agent: &impl AgentApi,
    scope: &KeyScope,
    write: &RecordWrite,
    token: gatehouse_ipc::broker::ApprovalToken,
) -> Result<Meta, String> {
    let mut store = agent.store();
    let prepared = prepare(&store, scope, write)?;
    let (current, hosts) = match &prepared {
        Prepared::Memory { hosts, .. } => (None, hosts.iter().map(verify_item).collect()),
        Prepared::Procedure { current, .. } => (Some(verify_item(current)), Vec::new()),
    };
    let mut sealer = ApprovedSealer {
        broker: agent.broker(),
        runtime: tokio::runtime::Handle::current(),
        token,
        current,
        hosts,
    };
    // The store is synchronous; its broker calls run on this worker
    // thread, which leaves the runtime's other tasks to the others.
    tokio::task::block_in_place(|| match prepared {
        Prepared::Memory { record, .. } => store.create(&mut sealer, ACTOR, scope.clone(), record),
        Prepared::Procedure { record, current } => {
            store.update(&mut sealer, ACTOR, &current.meta, record)
        }
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_find_text_ignoring_case() {
        let body = "Before. The Uplink on ether2 flaps; after.";
        let at = find_ignoring_case(body, "uplink").unwrap();
        assert_eq!(&body[at..at + 6], "Uplink");
        assert!(snippet(body, at).contains("Uplink"));
        let turkish = "İSTANBUL uplink";
        assert_eq!(
            find_ignoring_case(turkish, "uplink").map(|i| &turkish[i..]),
            Some("uplink")
        );
        assert_eq!(
            find_ignoring_case(turkish, "bul"),
            Some(turkish.find("BUL").unwrap())
        );
        assert!(find_ignoring_case(body, "absent").is_none());
    }
}
