//! `gatehouse`: the command-line face of Gatehouse.
//!
//! Every user action without a window: start and stop the daemons, sign in
//! and out, keychain, organizations, field sealing, approvals, classification,
//! redaction, audits and benchmarks. Security teams script it; tests drive it.
//! It talks to the daemons only through `ipc`; it never holds a key.

mod audit;
mod bench_broker;
mod boundary_audit;
mod commands;
mod copilot_bench;
mod copilot_cmds;
mod demo;
mod lab;
mod policy_cmds;
mod recordings_cmds;
mod records_bench;
mod records_cmds;
mod session_cmds;
mod sessions_bench;
mod settings_cmds;
mod supervisor;
mod sync_cmds;
mod ui_bench;
mod ui_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Gatehouse: SSH terminals, records and an AI copilot for network operations,
/// with keys held by an isolated broker.
///
/// All state of one installation lives under one profile: `--profile NAME`, or
/// the directory in GATEHOUSE_HOME, else your XDG directories.
#[derive(Parser, Debug)]
#[command(name = "gatehouse", version, about, long_about)]
pub struct Cli {
    /// Profile name (GATEHOUSE_HOME, if set, wins).
    #[arg(long, global = true)]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the broker under a supervisor that restarts it after a crash.
    Up(supervisor::UpArgs),
    /// Stop the supervisor and the daemons it runs.
    Down,
    /// Show each Gatehouse process: pid, uid, role and hardening, keychain backend, sign-in state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Create the account (passphrase from the terminal, or one line of stdin).
    #[command(subcommand)]
    Account(commands::AccountCmd),
    /// Unlock the account with its passphrase.
    Signin(commands::SigninArgs),
    /// Zeroize every key and cached secret, forget this device, and tell daemons to purge.
    Signout {
        #[arg(long)]
        json: bool,
    },
    /// Organizations: each has its own random key, held only by the broker.
    #[command(subcommand)]
    Org(commands::OrgCmd),
    /// Secrets in the OS keychain (sealed once more under your account key).
    #[command(subcommand)]
    Keychain(commands::KeychainCmd),
    /// Seal or open one record field with its organization's key.
    #[command(subcommand)]
    Field(commands::FieldCmd),
    /// Approval requests: list, show, approve, reject, edit, or file one.
    #[command(subcommand)]
    Approvals(commands::ApprovalsCmd),
    /// Classify a command for a device platform (read-only, moderate, dangerous, unknown).
    Classify(policy_cmds::ClassifyArgs),
    /// Redact secrets from text on stdin (known values when signed in, and secret-shaped patterns).
    Redact(policy_cmds::RedactArgs),
    /// Self-checks a security team can run.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Benchmarks, printed as tables or JSON, each beside a baseline measured in the same run.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Hosts: add, list, show, edit, rm, import from an OpenSSH config.
    #[command(subcommand)]
    Host(records_cmds::HostCmd),
    /// Procedures (runbooks): body from a markdown file, sealed.
    #[command(subcommand)]
    Procedure(records_cmds::ProcedureCmd),
    /// Memories: notes about hosts and the network, bodies sealed.
    #[command(subcommand)]
    Memory(records_cmds::MemoryCmd),
    /// REST/SOAP connectors, auth sealed.
    #[command(subcommand)]
    Connector(records_cmds::ConnectorCmd),
    /// MCP servers, auth sealed.
    #[command(subcommand)]
    Mcp(records_cmds::McpCmd),
    /// Diagrams: nodes (hosts or labels) and labelled links.
    #[command(subcommand)]
    Diagram(records_cmds::DiagramCmd),
    /// All records: the field table, any kind as JSON, verify every record, audit rows.
    #[command(subcommand)]
    Records(records_cmds::RecordsCmd),
    /// Export every record of an organization as one bundle sealed under the org key.
    Export(records_cmds::ExportArgs),
    /// Import a bundle written by `gatehouse export`.
    Import(records_cmds::ImportArgs),
    /// Walk through the foundation in a throwaway profile: broker, account, org,
    /// keychain, sealing, an approval, sign-out, status and the isolation audit.
    Demo(demo::DemoArgs),
    /// Simulated lab devices (RouterOS, IOS) on loopback, added as hosts with keychain credentials.
    #[command(subcommand)]
    Lab(lab::LabCmd),
    /// Run one command on a host through sessiond. Read-only commands run at
    /// once; anything else needs an approval (--request files one and waits).
    /// Exits with the command's exit status.
    Exec(session_cmds::ExecArgs),
    /// Open an interactive shell on a host (a real terminal: raw mode,
    /// resize, exit code), recorded.
    Connect(session_cmds::ConnectArgs),
    /// The AI copilot: provider settings and conversations whose tool calls
    /// are classified and gated (approvals asked inline).
    #[command(subcommand)]
    Copilot(copilot_cmds::CopilotCmd),
    /// Session recordings: list, play, export (asciicast v3).
    ///
    /// sessiond records every SSH session it runs in the profile's
    /// `recordings` directory, sealed in chunks under a per-recording key
    /// that only the broker holds. Keystrokes are not recorded. Playing and
    /// exporting ask the broker for the key; listing does not.
    #[command(subcommand)]
    Recordings(recordings_cmds::RecordingsCommand),
    /// Open the desktop app (`gatehouse-ui`, installed next to `gatehouse`).
    Ui(ui_cmd::UiArgs),
    /// Your settings (a private record): appearance, default AI tier and the
    /// model each tier means per organization, the copilot's default mode and
    /// trust, and what sign-out clears.
    #[command(subcommand)]
    Settings(settings_cmds::SettingsCmd),
    /// Sync through a sync server (syncd): connect this device, status, sync now.
    #[command(subcommand)]
    Sync(sync_cmds::SyncCmd),
}

#[derive(Subcommand, Debug)]
enum BenchCmd {
    /// Broker round trips (seal/open, approval signing, batch sealing) vs in-process crypto and ssh-agent.
    Broker(bench_broker::BenchBrokerArgs),
    /// Classification and redaction throughput vs naive and detect-secrets baselines.
    Policy(policy_cmds::BenchPolicyArgs),
    /// Records store: insert/list 10,000 hosts (sealed vs plaintext-only), batched vs one-by-one opens.
    Records(records_bench::BenchRecordsArgs),
    /// SSH through sessiond beside OpenSSH's `ssh` against the same real sshd:
    /// streaming throughput, connect+auth latency, a read-only exec on a lab device.
    Sessions(sessions_bench::BenchSessionsArgs),
    /// What the copilot adds per tool call (classification, gate, redaction,
    /// agent loop) beside the raw sessiond exec, with a scripted instant model.
    Copilot(copilot_bench::BenchCopilotArgs),
    /// The desktop app: cold start to first frame (vs an empty window), terminal
    /// throughput, filtering 10,000 hosts. Needs `gatehouse-ui` built beside `gatehouse`.
    Ui(ui_bench::BenchUiArgs),
    #[command(hide = true)]
    FileRequests(bench_broker::FileRequestsArgs),
}

fn main() -> ExitCode {
    // First: an installed (setgid) CLI takes its group for all three gids.
    if let Err(e) = gatehouse_sandbox::boundary::enter() {
        eprintln!("gatehouse: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let profile = cli.profile.as_deref();
    match cli.command {
        Command::Up(args) => supervisor::up(profile, &args),
        Command::Down => supervisor::down(profile),
        Command::Status { json } => supervisor::status(profile, json),
        Command::Account(cmd) => commands::account(profile, cmd),
        Command::Signin(args) => commands::signin(profile, &args),
        Command::Signout { json } => commands::signout(profile, json),
        Command::Org(cmd) => commands::org(profile, cmd),
        Command::Settings(cmd) => settings_cmds::run(profile, cmd),
        Command::Sync(cmd) => sync_cmds::run(profile, cmd),
        Command::Keychain(cmd) => commands::keychain(profile, cmd),
        Command::Field(cmd) => commands::field(profile, cmd),
        Command::Approvals(cmd) => commands::approvals(profile, cmd),
        Command::Classify(args) => policy_cmds::run_classify(&args).map(|()| ExitCode::SUCCESS),
        Command::Redact(args) => {
            let exact = |text: &str| commands::broker_redact(profile, text);
            policy_cmds::run_redact(&args, &exact).map(|()| ExitCode::SUCCESS)
        }
        Command::Audit(cmd) => audit::run(profile, cmd),
        Command::Bench(BenchCmd::Broker(args)) => bench_broker::run(&args),
        Command::Bench(BenchCmd::Policy(args)) => {
            policy_cmds::run_bench(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(BenchCmd::FileRequests(args)) => bench_broker::file_requests(profile, &args),
        Command::Bench(BenchCmd::Records(args)) => records_bench::run(&args),
        Command::Bench(BenchCmd::Sessions(args)) => sessions_bench::run_bench(&args),
        Command::Bench(BenchCmd::Copilot(args)) => copilot_bench::run(&args),
        Command::Bench(BenchCmd::Ui(args)) => ui_bench::run(&args),
        Command::Host(cmd) => records_cmds::host(profile, cmd),
        Command::Procedure(cmd) => records_cmds::procedure(profile, cmd),
        Command::Memory(cmd) => records_cmds::memory(profile, cmd),
        Command::Connector(cmd) => records_cmds::connector(profile, cmd),
        Command::Mcp(cmd) => records_cmds::mcp(profile, cmd),
        Command::Diagram(cmd) => records_cmds::diagram(profile, cmd),
        Command::Records(cmd) => records_cmds::records(profile, cmd),
        Command::Export(args) => records_cmds::export(profile, &args),
        Command::Ui(args) => ui_cmd::run(profile, &args),
        Command::Import(args) => records_cmds::import(profile, &args),
        Command::Demo(args) => demo::run(&args),
        Command::Lab(cmd) => lab::run(profile, cmd),
        Command::Exec(args) => session_cmds::exec(profile, &args),
        Command::Connect(args) => session_cmds::connect(profile, &args),
        Command::Copilot(cmd) => copilot_cmds::run(profile, cmd),
        Command::Recordings(cmd) => {
            let layout = gatehouse_ipc::Layout::resolve(profile)?;
            recordings_cmds::run(&layout, cmd).map(|()| ExitCode::SUCCESS)
        }
    }
}
