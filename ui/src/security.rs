//! Security status: each process's hardening (broker, sessiond, copilotd,
//! this app) and the isolation audit on demand.
//!
//! Owns: gathering the same data as `gatehouse status` (the daemons'
//! `Status` answers turned into rows and judged by
//! [`gatehouse_sandbox::status`], the code the CLI uses), this process's own
//! row from `/proc` and `prctl`, and running `gatehouse audit isolation
//! --json` (the real CLI beside this executable) in the background.
//!
//! Must never: show a layer as in force (green) that is unknown, partial or
//! off, judge hardening with its own rules (the shared judgement decides),
//! or run anything but the `gatehouse` binary of this installation.

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse, BrokerStatus};
use gatehouse_ipc::copilotd::{CopilotRequest, CopilotResponse, CopilotStatus, Copilotd};
use gatehouse_ipc::sessiond::{Sessiond, SessiondRequest, SessiondResponse, SessiondStatus};
use gatehouse_sandbox::status::{
    Check, LayerState, LayerVerdict, Outcome, ProcessRow, kernel_row, keychain_verdict,
    process_rows,
};
use iced::widget::{button, column, container, row, scrollable, text};
use iced::{Element, Fill, FillPortion};

use crate::app::Effect;
use crate::daemons::{self, Daemons};

/// How long the isolation audit may run before it is given up.
pub const AUDIT_TIMEOUT: Duration = Duration::from_secs(120);

/// The processes as last gathered.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// One row per process that answered (broker, sessiond, copilotd), then this app.
    pub rows: Vec<ProcessRow>,
    /// The broker's status (keychain backend, degraded layers).
    pub broker: Option<Box<BrokerStatus>>,
    /// Processes that could not be asked, with why (`sessiond unavailable: …`).
    pub missing: Vec<(String, String)>,
}

/// The isolation audit, as the panel shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuditRun {
    #[default]
    NotRun,
    Running,
    Done(Vec<Check>),
    Failed(String),
}

#[derive(Debug, Default)]
pub struct Security {
    pub loading: bool,
    pub gathered: Option<Gathered>,
    pub audit: AuditRun,
}

#[derive(Debug, Clone)]
pub enum Message {
    Refresh,
    RunAudit,
}

/// The keys of this screen (no text field here): R refresh, I run the
/// isolation audit.
pub fn key(key: &iced::keyboard::Key) -> Option<Message> {
    match key {
        iced::keyboard::Key::Character(c) => match c.as_str() {
            "r" => Some(Message::Refresh),
            "i" => Some(Message::RunAudit),
            _ => None,
        },
        _ => None,
    }
}

/// One-shot daemon calls this screen asks for (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {
    Status,
    Audit,
}

#[derive(Debug, Clone)]
pub enum Reply {
    Status(Gathered),
    Audit(Result<Vec<Check>, String>),
}

/// Runs one [`Call`].
pub async fn run(d: Daemons, c: Call) -> Reply {
    match c {
        Call::Status => Reply::Status(gather(&d).await),
        Call::Audit => Reply::Audit(run_audit(&d).await),
    }
}

/// The daemons' statuses, as `gatehouse status` gathers them, plus this app.
pub async fn gather(d: &Daemons) -> Gathered {
    let mut missing = Vec::new();
    let broker = match daemons::broker_call(d, BrokerRequest::Status).await {
        Ok(BrokerResponse::Status(s)) => Some(s),
        Ok(r) => {
            missing.push(("broker".into(), format!("unexpected answer {r:?}")));
            None
        }
        Err(e) => {
            missing.push(("broker".into(), e.to_string()));
            None
        }
    };
    let sessiond: Option<SessiondStatus> =
        match daemons::daemon_call::<Sessiond>(d, SessiondRequest::Status).await {
            Ok(SessiondResponse::Status(s)) => Some(*s),
            Ok(r) => {
                missing.push(("sessiond".into(), format!("unexpected answer {r:?}")));
                None
            }
            Err(e) => {
                missing.push(("sessiond".into(), e.to_string()));
                None
            }
        };
    let copilotd: Option<CopilotStatus> =
        match daemons::daemon_call::<Copilotd>(d, CopilotRequest::Status).await {
            Ok(CopilotResponse::Status(s)) => Some(*s),
            Ok(r) => {
                missing.push(("copilotd".into(), format!("unexpected answer {r:?}")));
                None
            }
            Err(e) => {
                missing.push(("copilotd".into(), e.to_string()));
                None
            }
        };
    let mut rows = process_rows(
        broker.as_deref(),
        sessiond.as_ref(),
        copilotd.as_ref(),
        None,
    );
    rows.push(kernel_row(
        "gatehouse-ui (this app)",
        "ui",
        &gatehouse_sandbox::hardening::inspect_self(),
    ));
    Gathered {
        rows,
        broker,
        missing,
    }
}

/// The `gatehouse` CLI of this installation (beside this executable).
pub fn cli_path() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this app: {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| format!("{} has no directory", exe.display()))?;
    let cli = dir.join("gatehouse");
    if !cli.is_file() {
        return Err(format!(
            "the gatehouse CLI is not installed beside this app ({} is missing)",
            cli.display()
        ));
    }
    Ok(cli)
}

/// Runs `gatehouse --profile P audit isolation --json` and reads its checks.
pub async fn run_audit(d: &Daemons) -> Result<Vec<Check>, String> {
    let cli = cli_path()?;
    let mut cmd = tokio::process::Command::new(&cli);
    cmd.args([
        "--profile",
        &d.layout().profile,
        "audit",
        "isolation",
        "--json",
    ])
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(AUDIT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("the audit did not finish within {AUDIT_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    parse_audit(&out.stdout, &out.stderr, out.status.code())
}

/// The checks in the audit's output; a readable error when there are none
/// (exit 1 with checks is a failed check, not an error).
pub fn parse_audit(stdout: &[u8], stderr: &[u8], code: Option<i32>) -> Result<Vec<Check>, String> {
    match serde_json::from_slice::<Vec<Check>>(stdout) {
        Ok(c) if !c.is_empty() => Ok(c),
        _ => {
            let why = String::from_utf8_lossy(stderr).trim().to_string();
            Err(format!(
                "the audit failed ({}){}",
                code.map(|c| format!("exit {c}"))
                    .unwrap_or_else(|| "killed".into()),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {why}")
                }
            ))
        }
    }
}

impl Security {
    /// The tab was opened: load once.
    pub fn shown(&mut self) -> Vec<Effect> {
        if self.gathered.is_none() && !self.loading {
            self.update(Message::Refresh)
        } else {
            vec![]
        }
    }

    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {
            Message::Refresh => {
                self.loading = true;
                vec![Effect::Call(daemons::Call::Security(Call::Status))]
            }
            Message::RunAudit => {
                if self.audit == AuditRun::Running {
                    return vec![];
                }
                self.audit = AuditRun::Running;
                vec![Effect::Call(daemons::Call::Security(Call::Audit))]
            }
        }
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {
            Reply::Status(g) => {
                self.loading = false;
                self.gathered = Some(g);
            }
            Reply::Audit(Ok(c)) => self.audit = AuditRun::Done(c),
            Reply::Audit(Err(e)) => self.audit = AuditRun::Failed(e),
        }
        vec![]
    }

    /// Forgets everything shown (sign-out).
    pub fn clear(&mut self) {
        *self = Security::default();
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut col = column![
            row![
                text("Process hardening").size(18),
                iced::widget::space::horizontal(),
                button(text(if self.loading {
                    "Refreshing…"
                } else {
                    "Refresh (R)"
                }))
                .style(button::secondary)
                .on_press_maybe((!self.loading).then_some(Message::Refresh)),
                button(text(if self.audit == AuditRun::Running {
                    "Auditing…"
                } else {
                    "Run isolation audit (I)"
                }))
                .on_press_maybe((self.audit != AuditRun::Running).then_some(Message::RunAudit)),
            ]
            .spacing(8)
            .align_y(iced::Center),
            text(
                "Green = in force. Amber = unknown, red = off or partial; the reason is beside it."
            )
            .size(12)
            .style(text::secondary),
        ]
        .spacing(8);
        match &self.gathered {
            None => col = col.push(text("Loading…")),
            Some(g) => {
                for r in &g.rows {
                    col = col.push(process_card(r, g.broker.as_deref()));
                }
                for (who, why) in &g.missing {
                    col = col.push(
                        text(format!("{who}: not running or unreachable — {why}"))
                            .style(text::danger),
                    );
                }
                if let Some(b) = &g.broker {
                    for d in &b.hardening.degraded {
                        col = col.push(text(format!("broker DEGRADED: {d}")).style(text::danger));
                    }
                }
            }
        }
        col = col.push(text("Isolation audit").size(18));
        col = match &self.audit {
            AuditRun::NotRun => col.push(
                text("Not run yet: it loads canary secrets through the broker and checks they stay there.")
                    .size(13),
            ),
            AuditRun::Running => col.push(text("Running `gatehouse audit isolation`…")),
            AuditRun::Failed(e) => {
                col.push(text(format!("The isolation audit could not run: {e}")).style(text::danger))
            }
            AuditRun::Done(checks) => {
                let failed = checks.iter().filter(|c| c.outcome == Outcome::Fail).count();
                let skipped = checks.iter().filter(|c| c.outcome == Outcome::Skip).count();
                let mut list = column![
                    text(format!(
                        "{} checks: {} passed, {failed} failed, {skipped} skipped",
                        checks.len(),
                        checks.len() - failed - skipped
                    ))
                    .style(if failed > 0 { text::danger } else { text::success })
                ]
                .spacing(2);
                for c in checks {
                    let (label, style): (&str, fn(&iced::Theme) -> text::Style) = match c.outcome {
                        Outcome::Pass => ("pass", text::success),
                        Outcome::Fail => ("FAIL", text::danger),
                        Outcome::Skip => ("skip", text::warning),
                    };
                    list = list.push(
                        row![
                            text(c.check.clone()).width(FillPortion(4)),
                            text(label).style(style).width(FillPortion(1)),
                            text(c.detail.clone()).size(13).width(FillPortion(5)),
                        ]
                        .spacing(8),
                    );
                }
                col.push(list)
            }
        };
        scrollable(container(col).width(Fill).padding(4))
            .height(Fill)
            .into()
    }
}

fn state_text(l: &LayerVerdict) -> Element<'static, Message> {
    let (label, style): (&str, fn(&iced::Theme) -> text::Style) = match l.state {
        LayerState::InForce => ("in force", text::success),
        LayerState::Off => ("OFF", text::danger),
        LayerState::Unknown => ("unknown", text::warning),
        LayerState::NotUsed => ("not used", text::secondary),
    };
    text(label)
        .size(13)
        .style(style)
        .width(FillPortion(2))
        .into()
}

fn process_card<'a>(r: &ProcessRow, broker: Option<&BrokerStatus>) -> Element<'a, Message> {
    let mut layers = r.layers();
    if r.role == "broker"
        && let Some(b) = broker
    {
        layers.push(keychain_verdict(b));
    }
    let mut col = column![
        text(format!(
            "{} — role {}, pid {}, uid {}",
            r.process,
            r.role,
            r.pid,
            r.uid.map(|u| u.to_string()).unwrap_or_else(|| "?".into())
        ))
        .size(15)
    ]
    .spacing(1);
    for l in layers {
        col = col.push(
            row![
                text(format!("{}:", l.layer)).size(13).width(FillPortion(2)),
                text(l.value.clone())
                    .size(13)
                    .font(crate::MONO)
                    .width(FillPortion(3)),
                state_text(&l),
                text(if l.state == LayerState::InForce {
                    String::new()
                } else {
                    l.reason.clone()
                })
                .size(12)
                .width(FillPortion(6)),
            ]
            .spacing(6),
        );
    }
    container(col)
        .padding(8)
        .width(Fill)
        .style(container::rounded_box)
        .into()
}
