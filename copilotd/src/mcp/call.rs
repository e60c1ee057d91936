//! One MCP tool call through the gate: scope (the server's org against the
//! conversation's) → org policy → `classify_mcp_tool` (annotations only
//! raise) → `gate::decide` → a person's approval where needed (the action:
//! host = server, vendor `copilot:mcp`, command `<tool> <canonical JSON
//! arguments>`) → spend the token → `tools/call` → the result as text.
//!
//! Must never: call a tool the gate did not let through, call anything but
//! what the token covers (a person's edit is re-parsed and must name the
//! same tool), or let a server's error or a lost connection end the turn
//! (both become tool results).

use std::time::Duration;

use gatehouse_ipc::broker::Action;
use gatehouse_ipc::copilotd::{ChatSettings, CopilotError, GateDecision};
use gatehouse_policy::{McpHints, classify_mcp_tool};
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, Tool};
use rmcp::service::{Peer, RoleClient};
use serde_json::{Map, Value};

use super::Server;
use crate::agent_api::{AgentApi, Approval, MAX_RESULT};
use crate::gate::{self, Verdict};
use crate::provider::ToolCall;

/// The vendor of an MCP action (copilotd carries it out and spends its token).
pub const VENDOR: &str = "copilot:mcp";
/// How long one tool call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// `value` with every object's keys in order, recursively.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        v => v.clone(),
    }
}

/// The approval's command: `<tool> <canonical JSON arguments>`.
pub fn action_command(tool: &str, arguments: &Map<String, Value>) -> String {
    format!("{tool} {}", canonical(&Value::Object(arguments.clone())))
}

/// Parses an approved command back: it must be `<tool> <JSON object>` for
/// the same tool. `Err` is the sentence the model is told.
pub fn parse_action_command(tool: &str, command: &str) -> Result<Map<String, Value>, String> {
    let (name, json) = command
        .trim_start()
        .split_once(char::is_whitespace)
        .unwrap_or((command.trim(), ""));
    if name != tool {
        return Err(format!(
            "the approved text names tool {name:?}, not {tool:?}; only the arguments of {tool:?} may be edited"
        ));
    }
    match serde_json::from_str::<Value>(json.trim()) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the approved arguments are not a JSON object".into()),
        Err(e) => Err(format!("the approved arguments are not valid JSON ({e})")),
    }
}

fn hints(tool: &Tool) -> McpHints {
    match &tool.annotations {
        None => McpHints::default(),
        Some(a) => McpHints {
            read_only: a.read_only_hint,
            destructive: a.destructive_hint,
            idempotent: a.idempotent_hint,
            open_world: a.open_world_hint,
        },
    }
}

/// A tool result as the model reads it: text content joined, structured
/// content as JSON, other content named; capped like command output.
fn result_text(server: &str, tool: &str, r: &CallToolResult) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in &r.content {
        parts.push(match c {
            ContentBlock::Text(t) => t.text.clone(),
            ContentBlock::Image(i) => format!("[image {}: not shown]", i.mime_type),
            ContentBlock::Audio(a) => format!("[audio {}: not shown]", a.mime_type),
            ContentBlock::Resource(_) => "[embedded resource: not shown]".into(),
            ContentBlock::ResourceLink(l) => format!("[resource link {}]", l.uri),
            _ => "[content of an unknown type: not shown]".into(),
        });
    }
    if let Some(s) = &r.structured_content {
        parts.push(format!("structured content: {s}"));
    }
    let mut text = parts.join("\n");
    if text.len() > MAX_RESULT {
        text = format!(
            "{}\n…(output truncated)",
            super::truncate(&text, MAX_RESULT)
        );
    }
    if r.is_error == Some(true) {
        format!("[{tool} on MCP server {server}: the tool reported an error]\n{text}")
    } else {
        format!("{text}\n[{tool} on MCP server {server}: done]")
    }
}

/// The conversation's org as an org id (a person may give a name).
fn org_id(agent: &impl AgentApi, settings: &ChatSettings) -> Option<String> {
    let org = settings.org.as_ref()?;
    let names = agent.store().org_names().unwrap_or_default();
    Some(
        names
            .into_iter()
            .find(|(id, name)| id == org || name == org)
            .map_or_else(|| org.clone(), |(id, _)| id),
    )
}

/// Runs one MCP tool call (`call.name` starts with `mcp__`) through the
/// gate; returns what the model is told.
pub(crate) async fn mcp_tool(
    agent: &impl AgentApi,
    conversation: u64,
    call: &ToolCall,
    settings: &ChatSettings,
) -> Result<String, CopilotError> {
    let Some((server, tool, peer)) = super::find(&call.name) else {
        return agent
            .refuse(
                conversation,
                call,
                "-",
                Vec::new(),
                format!("no MCP tool {:?} is available now", call.name),
            )
            .await;
    };
    let arguments = match &call.arguments {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => {
            return agent
                .refuse(
                    conversation,
                    call,
                    "-",
                    Vec::new(),
                    "the arguments of an MCP tool must be a JSON object",
                )
                .await;
        }
    };
    // Scope: an org's server serves that org's conversations (and those
    // with no org); its policy is that org's. A private server runs
    // under the conversation's org policy.
    let conversation_org = org_id(agent, settings);
    if let (Some(server_org), Some(conv_org)) = (&server.org, &conversation_org)
        && server_org != conv_org
    {
        return agent
            .refuse(
                conversation,
                call,
                "-",
                Vec::new(),
                format!(
                    "MCP server {} belongs to another organization than this conversation's",
                    server.name
                ),
            )
            .await;
    }
    let org = server.org.clone().or(conversation_org);
    let policy = match &org {
        None => gatehouse_policy::OrgPolicy::default(),
        Some(o) => match crate::org_policy::load(agent.broker(), o).await {
            // Pre-approval would need a signed policy (as for commands).
            Ok(mut p) => {
                p.allow.clear();
                p
            }
            Err(e) => {
                return agent
                    .refuse(
                        conversation,
                        call,
                        "-",
                        Vec::new(),
                        format!("the organization policy cannot be read: {e}"),
                    )
                    .await;
            }
        },
    };
    let verdict = classify_mcp_tool(&policy, &server.name, &tool.name, &hints(&tool));
    let class = verdict.class.to_string();
    let reasons = verdict.reasons.clone();
    match gate::decide(
        verdict.class,
        verdict.blocked.as_deref(),
        settings.mode,
        settings.trust,
    ) {
        Verdict::Run => {
            agent
                .announce(conversation, call, &class, reasons, GateDecision::Run)
                .await?;
            Ok(invoke(&server, &peer, &tool, arguments).await)
        }
        Verdict::Suggest => {
            agent
                .announce(conversation, call, &class, reasons, GateDecision::Suggest)
                .await?;
            Ok(format!(
                "Not run: this {class} MCP tool call is shown to the person as a suggestion (this mode runs read-only tools only)."
            ))
        }
        Verdict::Refuse(reason) => {
            agent
                .refuse(conversation, call, &class, reasons, reason)
                .await
        }
        Verdict::AskPerson => {
            let hinted: Vec<&str> = reasons
                .iter()
                .filter(|r| r.starts_with("the server says"))
                .map(String::as_str)
                .collect();
            let action = Action {
                host: server.name.clone(),
                vendor: VENDOR.into(),
                org: org.clone().unwrap_or_else(|| "private".into()),
                credential: server.credential.clone(),
                command: action_command(&tool.name, &arguments),
                expected_effect: if hinted.is_empty() {
                    format!("calls MCP tool {} on server {}", tool.name, server.name)
                } else {
                    format!(
                        "calls MCP tool {} on server {} ({})",
                        tool.name,
                        server.name,
                        hinted.join("; ")
                    )
                },
            };
            let original = action.command.clone();
            let token = match agent
                .seek_approval(conversation, call, action, &class, &reasons)
                .await?
            {
                Approval::Granted(t) => t,
                Approval::NotRun(why) => return Ok(why),
            };
            let approved = match parse_action_command(&tool.name, &token.action.command) {
                Ok(a) => a,
                Err(why) => {
                    return Ok(format!("Not run: {why}. Ask the person how to proceed."));
                }
            };
            if let Err(e) = agent.spend(&token, &token.action).await? {
                return Ok(format!("Not run: the approval could not be used ({e})."));
            }
            let edited = token.action.command != original;
            let out = invoke(&server, &peer, &tool, approved).await;
            Ok(if edited {
                format!(
                    "A person edited the arguments before approving; what ran was: {}\n{out}",
                    token.action.command
                )
            } else {
                out
            })
        }
    }
}

/// `tools/call`; every failure becomes the text the model is told.
async fn invoke(
    server: &Server,
    peer: &Peer<RoleClient>,
    tool: &Tool,
    arguments: Map<String, Value>,
) -> String {
    let params = CallToolRequestParams::new(tool.name.clone()).with_arguments(arguments);
    match tokio::time::timeout(CALL_TIMEOUT, peer.call_tool(params)).await {
        Err(_) => format!(
            "error: MCP server {} did not answer {} within {CALL_TIMEOUT:?}",
            server.name, tool.name
        ),
        Ok(Ok(r)) => result_text(&server.name, &tool.name, &r),
        Ok(Err(e)) => {
            if peer.is_transport_closed() {
                server.lost(&format!("connection lost: {e}"));
            }
            format!(
                "error: MCP server {} failed to run {}: {e}",
                server.name, tool.name
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_command_is_canonical_and_parses_back() {
        let Value::Object(a) = json!({"vlan": 10, "b": {"z": 1, "a": [ {"y": 2, "x": 1} ]}}) else {
            unreachable!()
        };
        let c = action_command("lookup_vlan", &a);
        assert_eq!(
            c,
            r#"lookup_vlan {"b":{"a":[{"x":1,"y":2}],"z":1},"vlan":10}"#
        );
        assert_eq!(parse_action_command("lookup_vlan", &c).unwrap(), a);
    }

    #[test]
    fn an_edit_must_keep_the_tool_and_be_a_json_object() {
        assert!(parse_action_command("t", r#"t {"a":1}"#).is_ok());
        assert!(parse_action_command("t", "t {}").is_ok());
        for bad in [
            r#"u {"a":1}"#,
            r#"t2 {"a":1}"#,
            "t [1]",
            "t {not json",
            "t",
            r#"{"a":1}"#,
            "",
        ] {
            assert!(parse_action_command("t", bad).is_err(), "{bad:?}");
        }
    }
}
