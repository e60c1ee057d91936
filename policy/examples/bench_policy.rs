//! Runs the exact code of `gatehouse bench policy` (cli/src/policy_cmds.rs)
//! until the CLI main wires it: `cargo run --release -p gatehouse-policy
//! --example bench_policy -- [--json]`. Also `classify`/`redact` for trying.

#[path = "../../cli/src/policy_cmds.rs"]
#[allow(dead_code)]
mod policy_cmds;

use clap::Parser;

#[derive(Parser)]
enum Cmd {
    Bench(policy_cmds::BenchPolicyArgs),
    Classify(policy_cmds::ClassifyArgs),
    Redact(policy_cmds::RedactArgs),
}

fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::Bench(a) => policy_cmds::run_bench(&a),
        Cmd::Classify(a) => policy_cmds::run_classify(&a),
        Cmd::Redact(a) => policy_cmds::run_redact(&a, &|_| Ok(None)),
    }
}
