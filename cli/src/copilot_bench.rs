//! `gatehouse bench copilot`: what the copilot adds to each tool call —
//! classification (sessiond's Prepare), the gate, redaction of the tool
//! result and of the request body, the agent loop — beside the raw sessiond
//! exec of the same command in the same run. The model is a scripted local
//! server that answers at once, so its time is (nearly) zero.
//!
//! Must never: touch the user's profile or leave a process running.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::BrokerRequest;
use gatehouse_ipc::client::{Client, DEFAULT_TIMEOUT};
use gatehouse_ipc::copilotd::{ChatSettings, CopilotEvent, CopilotRequest, Copilotd};
use gatehouse_labprovider::{ScriptedProvider, Turn};
use serde::Serialize;
use serde_json::json;

use crate::bench_broker::start_private_broker;
use crate::commands::BrokerConn;
use crate::sessions_bench::{gatehouse, median, sessiond_exec, spawn_daemon};

#[derive(Args, Debug)]
pub struct BenchCopilotArgs {
    #[arg(long)]
    pub json: bool,
    /// Tool calls per measured turn.
    #[arg(long, default_value_t = 10)]
    pub calls: usize,
    /// Measured turns (the median per-call time is reported).
    #[arg(long, default_value_t = 5)]
    pub turns: usize,
}

#[derive(Debug, Serialize)]
pub struct CopilotBench {
    /// A read-only command on the simulated RouterOS, through the copilot, per tool call (median ms).
    pub copilot_tool_call_ms: f64,
    /// The same command through sessiond directly (median ms).
    pub sessiond_exec_ms: f64,
    /// What the copilot adds per call (ms).
    pub overhead_ms: f64,
    pub calls_per_turn: usize,
}

pub fn run(args: &BenchCopilotArgs) -> anyhow::Result<ExitCode> {
    let pb = start_private_broker()?;
    let layout = pb.layout.clone();
    let pass = gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<16>());
    BrokerConn::connect_layout(&layout)?.ask(BrokerRequest::AccountInit {
        passphrase: SecretBytes::copy_from(pass.as_bytes()),
    })?;
    let mut sessiond = spawn_daemon(&layout, "gatehouse-sessiond")?;
    let result = (|| {
        gatehouse(&layout, &["lab", "up"], "")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::session_cmds::SessiondConn::connect(&layout).is_err() {
            if Instant::now() > deadline {
                bail!("the benchmark sessiond did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut copilotd = spawn_daemon(&layout, "gatehouse-copilotd")?;
        let r = measure(&layout, args);
        let _ = copilotd.kill();
        let _ = copilotd.wait();
        r
    })();
    let _ = gatehouse(&layout, &["lab", "down"], "");
    let _ = sessiond.kill();
    let _ = sessiond.wait();
    let r = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{:<58} {:>10}",
            "MEASURE (read-only command on the lab RouterOS)", "MS"
        );
        println!(
            "{:<58} {:>10.1}",
            "per tool call through the copilot", r.copilot_tool_call_ms
        );
        println!(
            "{:<58} {:>10.1}",
            "raw sessiond exec of the same command", r.sessiond_exec_ms
        );
        println!(
            "{:<58} {:>10.1}",
            "added by classification + gate + redaction + loop", r.overhead_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn measure(
    layout: &gatehouse_ipc::Layout,
    args: &BenchCopilotArgs,
) -> anyhow::Result<CopilotBench> {
    let command = "/system identity print";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let calls = args.calls.max(1);
    let mut turns = Vec::new();
    for _ in 0..args.turns.max(1) {
        for _ in 0..calls {
            turns.push(Turn::ToolCalls(vec![(
                "run_command".into(),
                json!({"host": "r1", "command": command}),
            )]));
        }
        turns.push(Turn::Text("done".into()));
    }
    let provider = rt.block_on(ScriptedProvider::start(turns))?;
    gatehouse(
        layout,
        &[
            "copilot",
            "config",
            "--kind",
            "openai",
            "--endpoint",
            &provider.base_url_openai(),
            "--model",
            "scripted",
        ],
        "",
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = loop {
        match rt.block_on(Client::<Copilotd>::connect(
            &layout.runtime,
            DEFAULT_TIMEOUT,
        )) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => bail!("copilotd did not start: {e}"),
        }
    };
    client.set_timeout(Duration::from_secs(600));
    let settings = ChatSettings {
        org: Some("lab".into()),
        max_steps: calls as u32 + 1,
        ..ChatSettings::default()
    };
    let mut per_call = Vec::new();
    for _ in 0..args.turns.max(1) {
        let t0 = Instant::now();
        rt.block_on(client.call(CopilotRequest::Chat {
            conversation: None,
            message: "check r1's identity".into(),
            settings: settings.clone(),
        }))?;
        loop {
            match rt.block_on(client.next_event(Duration::from_secs(600)))? {
                Some(CopilotEvent::TurnEnded {
                    reason: Some(r), ..
                }) => bail!("turn ended: {r}"),
                Some(CopilotEvent::TurnEnded { .. }) => break,
                _ => {}
            }
        }
        per_call.push(t0.elapsed().as_secs_f64() * 1e3 / calls as f64);
    }
    let mut raw = Vec::new();
    for _ in 0..calls {
        raw.push(sessiond_exec(layout, "r1", Some("lab"), command, true)?.1 * 1e3);
    }
    let (a, b) = (median(per_call), median(raw));
    provider.shutdown();
    Ok(CopilotBench {
        copilot_tool_call_ms: a,
        sessiond_exec_ms: b,
        overhead_ms: a - b,
        calls_per_turn: calls,
    })
}
