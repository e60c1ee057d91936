//! Running a procedure (runbook) with the copilot, the person's side, shared
//! by `gatehouse copilot run` and the app's Procedures screen (and the
//! copilot's own `run_procedure` tool for the binding): binding arguments to
//! a procedure's parameters, filling `{{NAME}}` into its steps, the task
//! sent to copilotd, and the [`Transcript`] of a turn that becomes the
//! procedure-run record.
//!
//! Pure but for [`store_run`] (the store, sealing through the caller's
//! broker connection). Must never: open anything, write a run's arguments,
//! messages or output unsealed (the field table seals them), or keep a
//! turn's text beyond the record it builds.

use gatehouse_ipc::broker::KeyScope;
use gatehouse_ipc::copilotd::{CopilotEvent, GateDecision, call_target};

use crate::model::{
    Parameter, ProcedureRun, Record, RunArgument, RunMessage, RunOutcome, ToolCallSummary,
};
use crate::{Meta, RecordError, Sealer, Store};

/// Why arguments do not fit a procedure's parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    #[error("procedure {procedure} has no parameter {name:?}")]
    Unknown { procedure: String, name: String },
    #[error("procedure {procedure} needs {}", describe_missing(missing))]
    Missing {
        procedure: String,
        /// (name, description) of each parameter without a value or default.
        missing: Vec<(String, String)>,
    },
}

fn describe_missing(missing: &[(String, String)]) -> String {
    missing
        .iter()
        .map(|(n, d)| {
            if d.is_empty() {
                n.clone()
            } else {
                format!("{n} ({d})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds `given` (name, value) pairs to a procedure's parameters, with
/// defaults for the ones not given. Unknown names and parameters left
/// without a value are errors naming them.
pub fn bind_arguments(
    procedure: &str,
    parameters: &[Parameter],
    given: &[(String, String)],
) -> Result<Vec<RunArgument>, ArgumentError> {
    if let Some((name, _)) = given
        .iter()
        .find(|(n, _)| !parameters.iter().any(|p| &p.name == n))
    {
        return Err(ArgumentError::Unknown {
            procedure: procedure.into(),
            name: name.clone(),
        });
    }
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for p in parameters {
        match (given.iter().find(|(n, _)| *n == p.name), &p.default) {
            (Some((_, v)), _) | (None, Some(v)) => values.push(RunArgument {
                name: p.name.clone(),
                value: v.clone(),
            }),
            (None, None) => missing.push((p.name.clone(), p.description.clone())),
        }
    }
    if !missing.is_empty() {
        return Err(ArgumentError::Missing {
            procedure: procedure.into(),
            missing,
        });
    }
    Ok(values)
}

/// A procedure body with every `{{NAME}}` replaced by its argument.
pub fn substitute(body: &str, args: &[RunArgument]) -> String {
    let mut body = body.to_string();
    for a in args {
        body = body.replace(&format!("{{{{{}}}}}", a.name), &a.value);
    }
    body
}

/// `k=v, k2=v2`.
pub fn arguments_line(values: &[RunArgument]) -> String {
    values
        .iter()
        .map(|v| format!("{}={}", v.name, v.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The task a procedure run sends the copilot: its steps with the
/// arguments filled in.
pub fn task(name: &str, values: &[RunArgument], body: &str) -> String {
    format!(
        "Run the runbook \"{name}\" step by step with the tools ({}). Its steps:\n\n{}",
        arguments_line(values),
        substitute(body, values)
    )
}

/// One step of a plan (a call shown as a suggestion in Ask/Planning mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStep {
    /// `read-only`, `moderate`, `dangerous`, `unknown`, `-`.
    pub class: String,
    pub host: String,
    pub command: String,
}

/// What one turn showed, gathered from its events.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// The model's answer, streamed pieces joined.
    pub text: String,
    pub tool_calls: Vec<ToolCallSummary>,
    /// Calls shown as suggestions (Ask and Planning modes), in order.
    pub plan: Vec<PlanStep>,
    /// Why the turn ended early, if it did.
    pub ended_early: Option<String>,
    pub ended: bool,
}

impl Transcript {
    /// Notes one event of the turn.
    pub fn record(&mut self, event: &CopilotEvent) {
        match event {
            CopilotEvent::Text { delta, .. } => self.text.push_str(delta),
            CopilotEvent::ToolCall {
                tool,
                arguments,
                class,
                decision,
                ..
            } => {
                let (host, command) = call_target(arguments);
                self.tool_calls.push(ToolCallSummary {
                    tool: tool.clone(),
                    host: if host == "?" {
                        String::new()
                    } else {
                        host.clone()
                    },
                    summary: format!("{arguments} — {class}: {}", decision.describe()),
                });
                if matches!(decision, GateDecision::Suggest) {
                    self.plan.push(PlanStep {
                        class: class.clone(),
                        host,
                        command,
                    });
                }
            }
            CopilotEvent::ToolResult { .. } => {}
            CopilotEvent::TurnEnded { reason, .. } => {
                self.ended = true;
                self.ended_early = reason.clone();
            }
        }
    }

    /// The procedure-run record of this turn (sealed by the store's field
    /// table when it is stored): failed when the turn ended early or not at all.
    pub fn into_run(
        self,
        procedure_id: &str,
        started_ms: u64,
        who: String,
        arguments: Vec<RunArgument>,
        task: String,
    ) -> ProcedureRun {
        let outcome = match (self.ended, &self.ended_early) {
            (true, None) => RunOutcome::Succeeded,
            (true, Some(_)) => RunOutcome::Failed,
            (false, _) => RunOutcome::Aborted,
        };
        ProcedureRun {
            procedure_id: procedure_id.to_string(),
            started_ms,
            who,
            outcome,
            arguments,
            messages: vec![
                RunMessage {
                    role: "user".into(),
                    text: task,
                },
                RunMessage {
                    role: "assistant".into(),
                    text: self.text.clone(),
                },
            ],
            tool_calls: self.tool_calls,
            output: self.text,
        }
    }
}

/// Stores a procedure run in `scope` (the procedure's): checked, then its
/// arguments, messages, tool calls and output sealed by the field table.
pub fn store_run(
    store: &mut Store,
    sealer: &mut dyn Sealer,
    actor: &str,
    scope: KeyScope,
    run: ProcedureRun,
) -> Result<Meta, RecordError> {
    let mut rec = Record::ProcedureRun(run);
    store.check(&scope, None, &mut rec)?;
    store.create(sealer, actor, scope, rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_ipc::copilotd::Usage;

    fn param(name: &str, default: Option<&str>) -> Parameter {
        Parameter {
            name: name.into(),
            description: format!("the {name}"),
            default: default.map(str::to_string),
        }
    }

    #[test]
    fn arguments_bind_with_defaults_and_errors_name_what_is_wrong() {
        let params = [param("router", Some("r1")), param("ticket", None)];
        let got = bind_arguments("p", &params, &[("ticket".into(), "T-1".into())]).unwrap();
        assert_eq!(
            substitute("{{router}}: {{ticket}} {{other}}", &got),
            "r1: T-1 {{other}}"
        );
        assert_eq!(arguments_line(&got), "router=r1, ticket=T-1");
        let missing = bind_arguments("p", &params, &[]).unwrap_err();
        assert!(
            missing.to_string().contains("ticket (the ticket)"),
            "{missing}"
        );
        let unknown = bind_arguments("p", &params, &[("tickt".into(), "x".into())]).unwrap_err();
        assert!(unknown.to_string().contains("\"tickt\""), "{unknown}");
    }

    #[test]
    fn a_transcript_keeps_text_calls_plan_and_outcome() {
        let mut t = Transcript::default();
        let call = |decision, class: &str| CopilotEvent::ToolCall {
            conversation: 1,
            call_id: "c".into(),
            tool: "run_command".into(),
            arguments: r#"{"host":"r1","command":"/system reboot"}"#.into(),
            class: class.into(),
            reasons: vec![],
            decision,
        };
        t.record(&call(GateDecision::Run, "read-only"));
        t.record(&call(GateDecision::Suggest, "dangerous"));
        t.record(&CopilotEvent::Text {
            conversation: 1,
            delta: "do".into(),
        });
        t.record(&CopilotEvent::Text {
            conversation: 1,
            delta: "ne".into(),
        });
        assert_eq!(t.text, "done");
        assert_eq!(t.tool_calls.len(), 2);
        assert_eq!(t.tool_calls[0].host, "r1");
        assert!(
            t.tool_calls[1]
                .summary
                .ends_with("dangerous: suggestion only, not run")
        );
        assert_eq!(
            t.plan,
            vec![PlanStep {
                class: "dangerous".into(),
                host: "r1".into(),
                command: "/system reboot".into()
            }]
        );
        let unfinished = t
            .clone()
            .into_run("p", 0, "me".into(), vec![], "task".into());
        assert_eq!(unfinished.outcome, RunOutcome::Aborted);
        t.record(&CopilotEvent::TurnEnded {
            conversation: 1,
            usage: Usage::default(),
            total: Usage::default(),
            reason: Some("step bound".into()),
        });
        let run = t.into_run("p", 0, "me".into(), vec![], "task".into());
        assert_eq!(run.outcome, RunOutcome::Failed);
        assert_eq!(run.output, "done");
        assert_eq!(run.messages[0].text, "task");
    }
}
