//! `gatehouse copilot`: configure the AI provider and talk to the copilot.
//!
//! Owns the person's side of a conversation: streaming the answer, showing
//! every tool call with its class and the gate's decision, and asking the
//! person inline when a call needs approval (the decision is this process's,
//! made with the broker as the cli role — never copilotd's). Must never:
//! print an unredacted secret (everything shown comes redacted from
//! copilotd), or approve anything the person did not answer for.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use gatehouse_ipc::Layout;
use gatehouse_ipc::broker::{AutopilotBound, BrokerRequest, BrokerResponse, Decision};
use gatehouse_ipc::client::{Client, DEFAULT_TIMEOUT};
use gatehouse_ipc::copilotd::{
    AutopilotTask, ChatSettings, CopilotEvent, CopilotRequest, CopilotResponse, Copilotd,
    GateDecision, Mode, Trust,
};
use gatehouse_ipc::provider_settings::{self as config, Kind, ProviderSettings};
use gatehouse_ipc::sessiond::HostRef;
use gatehouse_records::runbook::{self, Transcript};

use crate::commands::BrokerConn;

#[derive(Subcommand, Debug)]
pub enum CopilotCmd {
    /// Point the copilot at an AI provider (OpenAI-compatible Chat Completions —
    /// OpenAI, Ollama, llama.cpp — or Anthropic Messages).
    Config(ConfigArgs),
    /// Show the provider settings and the MCP servers copilotd connected to.
    Show,
    /// Talk to the copilot: the message as arguments, or one message per line
    /// of standard input. Tool calls are shown with their class; a call that
    /// needs approval is asked here, inline (a, r, e NEW, or s to decide
    /// elsewhere with `gatehouse approvals`).
    Chat(ChatArgs),
    /// Run a procedure (runbook) with the copilot: its markdown steps become
    /// tool calls, gated the same way (approvals asked inline). The run —
    /// arguments, messages, tool calls, output — is stored as a
    /// procedure-run record, sealed.
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The procedure: id, NAME or FOLDER/NAME.
    #[arg(long)]
    procedure: String,
    /// A parameter value, `NAME=VALUE` (repeat).
    #[arg(long = "arg")]
    args: Vec<String>,
    #[command(flatten)]
    chat: ChatOptions,
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[arg(long, value_enum)]
    kind: KindArg,
    /// Base URL, e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1, https://api.anthropic.com
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    model: String,
    /// Read the API key from stdin and keep it in the keychain as NAME
    /// (`--api-key-name`, default `copilot-provider`), bound to this endpoint:
    /// the broker releases it to copilotd for this endpoint only.
    #[arg(long)]
    api_key_stdin: bool,
    #[arg(long, default_value = "copilot-provider", requires = "api_key_stdin")]
    api_key_name: String,
    /// The model's input price in dollars per million tokens (e.g. 2.50):
    /// chats then count what each turn and the conversation cost.
    #[arg(long, requires = "price_out", value_parser = config::parse_price)]
    price_in: Option<u64>,
    /// The model's output price in dollars per million tokens (e.g. 10).
    #[arg(long, requires = "price_in", value_parser = config::parse_price)]
    price_out: Option<u64>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    Openai,
    Anthropic,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Default,
    Ask,
    Planning,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TrustArg {
    Manual,
    Supervised,
    Autonomous,
}

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    opts: ChatOptions,
    /// The message (else: one message per line of stdin).
    message: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ChatOptions {
    /// default: works the task; ask: read-only tools only, changes are
    /// suggestions; planning: evidence, then a plan.
    #[arg(long, value_enum, default_value = "default")]
    mode: ModeArg,
    /// manual: every tool call asks; supervised: read-only runs, the rest
    /// asks; autonomous: Autopilot (see --autopilot).
    #[arg(long, value_enum, default_value = "supervised")]
    trust: TrustArg,
    /// Autopilot (= --trust autonomous), off by default. Starts a task in the
    /// broker bounded by --host (required), --max-steps and --minutes: inside
    /// it the broker approves without asking what the organization's policy
    /// permits (`autopilot_moderate`, or an `allow` rule); dangerous commands
    /// and everything else still ask. The copilot stops at the bound.
    #[arg(long)]
    autopilot: bool,
    /// Hosts the copilot may act on (repeat; default: all of --org).
    #[arg(long = "host")]
    hosts: Vec<String>,
    /// Organization to work in (required with --autopilot).
    #[arg(long)]
    org: Option<String>,
    /// Most tool calls per message (with --autopilot: also the most
    /// auto-approvals in the task).
    #[arg(long, default_value_t = 12)]
    max_steps: u32,
    /// With --autopilot: how long the task may run, in minutes.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=480))]
    minutes: u64,
    /// Do not ask for approvals here; they wait for `gatehouse approvals` or the app.
    #[arg(long)]
    no_inline_approvals: bool,
}

pub fn run(profile: Option<&str>, cmd: CopilotCmd) -> anyhow::Result<ExitCode> {
    let layout = Layout::resolve(profile)?;
    match cmd {
        CopilotCmd::Config(a) => {
            let api_key_ref = if a.api_key_stdin {
                let mut key = String::new();
                std::io::stdin().read_line(&mut key)?;
                let key = zeroize::Zeroizing::new(key.trim().to_string());
                if key.is_empty() {
                    bail!("no API key on stdin");
                }
                let payload = gatehouse_ipc::broker::ProviderKeyPayload {
                    endpoint: a.endpoint.clone(),
                    key: key.to_string(),
                };
                let bytes = serde_json::to_vec(&payload)?;
                BrokerConn::connect_layout(&layout)?.ask(BrokerRequest::KeychainSet {
                    name: a.api_key_name.clone(),
                    kind: gatehouse_ipc::broker::SecretKind::Token,
                    payload: gatehouse_ipc::SecretBytes::new(bytes),
                })?;
                Some(format!("keychain:{}", a.api_key_name))
            } else {
                None
            };
            let s = ProviderSettings {
                kind: match a.kind {
                    KindArg::Openai => Kind::Openai,
                    KindArg::Anthropic => Kind::Anthropic,
                },
                endpoint: a.endpoint,
                model: a.model,
                api_key_ref,
                prices: a.price_in.zip(a.price_out).map(|(i, o)| config::Prices {
                    input_micro_usd_per_mtok: i,
                    output_micro_usd_per_mtok: o,
                }),
            };
            config::save(&layout.root, &s).map_err(|e| anyhow::anyhow!(e))?;
            println!(
                "copilot provider: {:?} {} at {}",
                s.kind, s.model, s.endpoint
            );
            Ok(ExitCode::SUCCESS)
        }
        CopilotCmd::Show => {
            match config::load(&layout.root).map_err(|e| anyhow::anyhow!(e))? {
                Some(s) => println!("{}", serde_json::to_string_pretty(&s)?),
                None => println!("no provider configured (gatehouse copilot config --help)"),
            }
            print_mcp_servers(&layout);
            Ok(ExitCode::SUCCESS)
        }
        CopilotCmd::Chat(a) => chat(&layout, &a),
        CopilotCmd::Run(a) => run_procedure(profile, &layout, &a),
    }
}

/// The MCP servers copilotd connected to (`gatehouse mcp add` configures
/// them; copilotd connects at start-up).
fn print_mcp_servers(layout: &Layout) {
    use gatehouse_ipc::copilotd::McpServerState;
    let Some(status) = crate::supervisor::copilotd_status(layout) else {
        println!("MCP servers: copilotd is not running (gatehouse up)");
        return;
    };
    if status.mcp_servers.is_empty() {
        println!("MCP servers: none configured (gatehouse mcp add --help)");
        return;
    }
    println!("MCP servers:");
    for s in &status.mcp_servers {
        let state = match &s.state {
            McpServerState::Connecting => "connecting".to_string(),
            McpServerState::Ready { tools } => {
                format!("ready, {} tools: {}", tools.len(), tools.join(", "))
            }
            McpServerState::Failed { error } => format!("FAILED: {error}"),
        };
        println!("  {} ({}; {}): {state}", s.name, s.scope, s.transport);
    }
}

/// A connection to copilotd and the broker (for inline decisions).
struct Session {
    rt: tokio::runtime::Runtime,
    client: Client<Copilotd>,
    broker: BrokerConn,
    settings: ChatSettings,
    inline: bool,
    conversation: Option<u64>,
}

impl Session {
    fn open(layout: &Layout, o: &ChatOptions) -> anyhow::Result<Session> {
        let mut settings = settings(o);
        let mut broker = BrokerConn::connect_layout(layout)?;
        if settings.trust == Trust::Autonomous {
            settings.autopilot = Some(start_autopilot(&mut broker, o)?);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut client = rt
            .block_on(Client::<Copilotd>::connect(
                &layout.runtime,
                DEFAULT_TIMEOUT,
            ))
            .context("copilotd is not running (start it with `gatehouse up`)")?;
        client.set_timeout(Duration::from_secs(3600));
        Ok(Session {
            rt,
            client,
            broker,
            settings,
            inline: !o.no_inline_approvals,
            conversation: None,
        })
    }

    /// One turn: sends `message`, prints the stream, asks inline approvals
    /// (answers read from `input`), returns what happened.
    fn turn(&mut self, message: String, input: &mut impl BufRead) -> anyhow::Result<Transcript> {
        let started = self.rt.block_on(self.client.call(CopilotRequest::Chat {
            conversation: self.conversation,
            message,
            settings: self.settings.clone(),
        }))?;
        let CopilotResponse::Started { conversation: id } = started else {
            bail!("unexpected copilotd response {started:?}");
        };
        self.conversation = Some(id);
        let mut t = Transcript::default();
        loop {
            let Some(event) = self
                .rt
                .block_on(self.client.next_event(Duration::from_secs(3600)))?
            else {
                continue;
            };
            t.record(&event);
            match event {
                CopilotEvent::Text { delta, .. } => {
                    print!("{delta}");
                    std::io::stdout().flush()?;
                }
                CopilotEvent::ToolCall {
                    tool,
                    arguments,
                    class,
                    reasons,
                    decision,
                    ..
                } => {
                    println!();
                    let why = if reasons.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", reasons.join("; "))
                    };
                    println!(
                        "[tool] {tool} {arguments} — {class}{why}: {}",
                        decision.describe()
                    );
                    if let GateDecision::AskPerson { approval_id } = decision
                        && self.inline
                    {
                        decide_inline(&mut self.broker, input, approval_id)?;
                    }
                }
                CopilotEvent::ToolResult { result, .. } => {
                    let first: String = result.lines().take(12).collect::<Vec<_>>().join("\n  ");
                    println!("[result]\n  {first}");
                }
                CopilotEvent::TurnEnded {
                    usage,
                    total,
                    reason,
                    ..
                } => {
                    println!();
                    if !t.plan.is_empty() {
                        println!(
                            "Plan (not run; each step asks for approval when you tell the copilot to carry it out):"
                        );
                        for (i, step) in t.plan.iter().enumerate() {
                            println!(
                                "  {}. [{}] {}: {}",
                                i + 1,
                                step.class,
                                step.host,
                                step.command
                            );
                        }
                    }
                    if let Some(r) = &reason {
                        eprintln!("copilot: {r}");
                    }
                    eprintln!("[{usage}; conversation: {total}]");
                    return Ok(t);
                }
            }
        }
    }
}

/// Starts the Autopilot task in the broker (a person's act: this process
/// has the cli role) and says so, bounds included.
fn start_autopilot(broker: &mut BrokerConn, o: &ChatOptions) -> anyhow::Result<AutopilotTask> {
    if o.hosts.is_empty() {
        bail!("Autopilot is bounded in hosts: name each host it may change with --host");
    }
    let Some(org) = &o.org else {
        bail!("Autopilot works under one organization's policy: name it with --org");
    };
    let bound = AutopilotBound {
        org: crate::commands::org_id(broker, org)?,
        hosts: o.hosts.clone(),
        max_steps: o.max_steps,
        seconds: o.minutes * 60,
    };
    let BrokerResponse::AutopilotGranted { grant, expires_ms } =
        broker.ask(BrokerRequest::GrantAutopilot { bound })?
    else {
        bail!("unexpected broker reply to GrantAutopilot");
    };
    eprintln!(
        "AUTOPILOT ON (task {grant}): hosts {}; at most {} steps; until {} UTC. \
         What {org}'s policy permits runs without asking; dangerous commands and everything else still ask.",
        o.hosts.join(", "),
        o.max_steps,
        gatehouse_ipc::display::utc(expires_ms),
    );
    Ok(AutopilotTask { grant, expires_ms })
}

impl Drop for Session {
    fn drop(&mut self) {
        // The task ends with the chat (the broker's bounds end it anyway).
        if let Some(a) = self.settings.autopilot {
            let _ = self
                .broker
                .call(BrokerRequest::EndAutopilot { grant: a.grant });
        }
    }
}

fn settings(o: &ChatOptions) -> ChatSettings {
    ChatSettings {
        mode: match o.mode {
            ModeArg::Default => Mode::Default,
            ModeArg::Ask => Mode::Ask,
            ModeArg::Planning => Mode::Planning,
        },
        trust: match (o.autopilot, o.trust) {
            (true, _) | (_, TrustArg::Autonomous) => Trust::Autonomous,
            (_, TrustArg::Manual) => Trust::Manual,
            (_, TrustArg::Supervised) => Trust::Supervised,
        },
        hosts: o
            .hosts
            .iter()
            .map(|h| HostRef {
                host: h.clone(),
                org: o.org.clone(),
            })
            .collect(),
        org: o.org.clone(),
        max_steps: o.max_steps,
        autopilot: None,
    }
}

fn run_procedure(profile: Option<&str>, layout: &Layout, a: &RunArgs) -> anyhow::Result<ExitCode> {
    use gatehouse_records::model::RunOutcome;
    let (meta, procedure) =
        crate::records_cmds::load_procedure(profile, &a.procedure, a.chat.org.as_deref())?;
    let mut given = Vec::new();
    for kv in &a.args {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("invalid --arg {kv:?}: expected NAME=VALUE");
        };
        given.push((k.to_string(), v.to_string()));
    }
    // The same binding and substitution as the copilot's run_procedure tool.
    let values = runbook::bind_arguments(&procedure.name, &procedure.parameters, &given)
        .map_err(|e| anyhow::anyhow!("{e} (give each as --arg NAME=VALUE)"))?;
    let message = runbook::task(&procedure.name, &values, procedure.body.expose());
    let started_ms = gatehouse_records::store::now_ms();
    let mut session = Session::open(layout, &a.chat)?;
    let stdin = std::io::stdin();
    let t = session.turn(message.clone(), &mut stdin.lock())?;
    let run = t.into_run(
        &meta.id,
        started_ms,
        format!("copilot for {}", crate::records_cmds::actor()),
        values,
        message,
    );
    let outcome = run.outcome;
    let stored = crate::records_cmds::store_procedure_run(profile, meta.scope.clone(), run)?;
    eprintln!("procedure run stored (id {}, sealed)", stored.id);
    Ok(if outcome == RunOutcome::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn chat(layout: &Layout, a: &ChatArgs) -> anyhow::Result<ExitCode> {
    let mut session = Session::open(layout, &a.opts)?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut code = ExitCode::SUCCESS;
    let mut first = (!a.message.is_empty()).then(|| a.message.join(" "));
    loop {
        let message = match first.take() {
            Some(m) => m,
            None if a.message.is_empty() => {
                if std::io::stdin().is_terminal() {
                    eprint!("you> ");
                }
                let mut line = String::new();
                if input.read_line(&mut line)? == 0 {
                    break;
                }
                let line = line.trim().to_string();
                if line.is_empty() {
                    continue;
                }
                line
            }
            None => break,
        };
        if session.turn(message, &mut input)?.ended_early.is_some() {
            code = ExitCode::from(2);
        }
    }
    Ok(code)
}

/// Shows approval request `id` and asks the person: approve, reject, edit
/// (which files a new request, shown and asked again) or skip.
fn decide_inline(
    broker: &mut BrokerConn,
    input: &mut impl BufRead,
    mut id: u64,
) -> anyhow::Result<()> {
    loop {
        if let BrokerResponse::Approval(v) = broker.ask(BrokerRequest::ShowApproval { id })? {
            println!("┌ approval request {id}");
            println!("│ command:    {}", v.action.command);
            println!(
                "│ host:       {} ({}), org {}",
                v.action.host, v.action.vendor, v.action.org
            );
            println!(
                "│ credential: {}",
                v.action.credential.as_deref().unwrap_or("(none)")
            );
            println!("│ class:      {} — {}", v.class, v.reasons.join("; "));
            println!("│ effect:     {}", v.action.expected_effect);
            println!(
                "│ asked by:   {} pid {} ({})",
                v.requester.role, v.requester.pid, v.requester.exe
            );
            println!("└ [a]pprove, [r]eject, [e]dit NEW COMMAND, [s]kip (decide elsewhere)?");
        }
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            println!("(no answer: request {id} stays pending)");
            return Ok(());
        }
        let line = line.trim();
        let decision = match line
            .split_once(' ')
            .map_or((line, ""), |(a, b)| (a, b.trim()))
        {
            ("a" | "approve", _) => Decision::Approve,
            ("r" | "reject", reason) => Decision::Reject {
                reason: if reason.is_empty() {
                    "rejected by a person".into()
                } else {
                    reason.into()
                },
            },
            ("e" | "edit", new) if !new.is_empty() => Decision::Edit {
                command: new.to_string(),
            },
            ("s" | "skip", _) => return Ok(()),
            _ => {
                println!("answer a, r [reason], e NEW COMMAND or s");
                continue;
            }
        };
        match crate::commands::decide_with_presence(broker, id, decision, false)? {
            BrokerResponse::Decided {
                new_id: Some(n), ..
            } => {
                println!("edited: the new command is request {n}, classified again:");
                id = n;
            }
            BrokerResponse::Decided { state, .. } => {
                println!("request {id}: {state:?}");
                return Ok(());
            }
            other => bail!("unexpected broker response {other:?}"),
        }
    }
}
