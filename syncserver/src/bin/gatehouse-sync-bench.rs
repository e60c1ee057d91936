//! `gatehouse-sync-bench`: the sync server's write throughput with N
//! concurrent clients, SQLite and PostgreSQL side by side in one run.
//!
//! For each backend it starts a real `gatehouse-sync-server` process (the
//! binary beside this one) on a fresh database — an SQLite file, or a
//! throwaway PostgreSQL cluster (initdb in a temp dir, private socket) —
//! and measures two layouts:
//! * **one org**: one account signed in from N devices, all writing to one
//!   org (every write serializes on that org's sequence);
//! * **org per client**: N accounts, each writing to its own org.
//!
//! Each client pushes its records one per request (a signed, sealed-looking
//! host envelope, prepared before the clock starts) over its own TLS
//! connection. Prints JSON: writes/s, p50/p99 per write, and the
//! PostgreSQL/SQLite ratios.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use gatehouse_sync_server::client::SyncClient;
use gatehouse_sync_server::fixture::{TestAccount, TestOrg, random, signed_host};
use gatehouse_sync_server::pgcluster::PgCluster;
use gatehouse_syncproto::{Bytes, PushResult, RecordEnvelope, SealedField, SpaceId};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser)]
#[command(
    name = "gatehouse-sync-bench",
    about = "Sync server write throughput, SQLite vs PostgreSQL"
)]
struct Args {
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Writes per client (timed).
    #[arg(long, default_value_t = 40)]
    writes: usize,
    /// As root: the unprivileged user to run PostgreSQL as.
    #[arg(long, default_value = "gatehouse-test")]
    pg_user: String,
    /// Only SQLite.
    #[arg(long)]
    skip_postgres: bool,
    /// Print JSON only.
    #[arg(long)]
    json: bool,
}

/// A host record as a client would push it: plaintext-allowed fields, two
/// sealed fields (random bytes of a real ciphertext's size), MAC, signature.
fn host(space: &SpaceId, by: &TestAccount, id: &str) -> Result<RecordEnvelope> {
    let plain = format!(
        r#"{{"name":"{id}","address":"10.20.30.40","folder":"dc1/core","tags":["core","juniper"],"vendor":"juniper","protocols":{{"ssh":{{"port":22,"user":"netops"}}}}}}"#
    );
    let sealed = vec![
        SealedField {
            field: "protocols.ssh.password".into(),
            ciphertext: Bytes(random::<72>().to_vec()),
        },
        SealedField {
            field: "protocols.ssh.private_key".into(),
            ciphertext: Bytes((0..8).flat_map(|_| random::<64>()).collect()),
        },
    ];
    Ok(signed_host(space, by, id, 0, &plain, sealed)?)
}

struct Server {
    _child: tokio::process::Child,
    client: SyncClient,
}

async fn start_server(db: &str) -> Result<Server> {
    let bin = std::env::current_exe()?
        .parent()
        .map(|d| d.join("gatehouse-sync-server"))
        .filter(|p| p.is_file())
        .context("gatehouse-sync-server must be built beside gatehouse-sync-bench")?;
    let mut child = tokio::process::Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--db", db, "--self-signed"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let (mut url, mut pin) = (None, None);
    while url.is_none() || pin.is_none() {
        let l = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the server did not start within 60 s")??
            .context("the server exited at start")?;
        if let Some(u) = l.split("listening on ").nth(1) {
            url = Some(u.trim().to_string());
        }
        if let Some(p) = l.split("fingerprint: ").nth(1) {
            pin = Some(p.trim().to_string());
        }
    }
    // Keep reading the server's stdout (closing the pipe early is not its problem).
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = SyncClient::new(&url.unwrap_or_default(), &pin.unwrap_or_default())?;
    Ok(Server {
        _child: child,
        client,
    })
}

/// One client's work: its session and its records (one warm-up, then the timed ones).
struct Worker {
    client: SyncClient,
    space: SpaceId,
    warmup: RecordEnvelope,
    records: Vec<RecordEnvelope>,
}

async fn layout(
    server: &Server,
    shared: bool,
    clients: usize,
    writes: usize,
) -> Result<Vec<Worker>> {
    let anon = &server.client;
    let mut workers = Vec::with_capacity(clients);
    let owner = TestAccount::generate("owner");
    let mut shared_space = None;
    if shared {
        owner.register(anon).await?;
        let c = owner.sign_in(anon, "setup").await?;
        shared_space = Some(TestOrg::create(&owner, &c, "bench-shared").await?.space());
    }
    for i in 0..clients {
        let (client, space, by) = if let Some(space) = &shared_space {
            let c = owner.sign_in(anon, &format!("device{i}")).await?;
            (c, space.clone(), None)
        } else {
            let a = TestAccount::generate(&format!("user{i}"));
            a.register(anon).await?;
            let c = a.sign_in(anon, "device").await?;
            let space = TestOrg::create(&a, &c, &format!("bench-{i}"))
                .await?
                .space();
            (c, space, Some(a))
        };
        let by = by.as_ref().unwrap_or(&owner);
        let warmup = host(&space, by, &format!("w{i}"))?;
        let records = (0..writes)
            .map(|n| host(&space, by, &format!("c{i}-{n}")))
            .collect::<Result<_>>()?;
        workers.push(Worker {
            client,
            space,
            warmup,
            records,
        });
    }
    Ok(workers)
}

struct Measured {
    writes: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    record_bytes: usize,
}

async fn run(workers: Vec<Worker>) -> Result<Measured> {
    let record_bytes = workers
        .first()
        .and_then(|w| w.records.first())
        .map(|r| r.wire_size())
        .unwrap_or(0);
    // Warm-up: every client's TLS connection is open before the clock starts.
    for w in &workers {
        w.client.push(&w.space, vec![w.warmup.clone()]).await?;
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in workers {
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(w.records.len());
            for r in w.records {
                let t0 = Instant::now();
                let p = w.client.push(&w.space, vec![r]).await?;
                if !matches!(p.results[0], PushResult::Accepted { .. }) {
                    bail!("a write was not accepted: {:?}", p.results[0]);
                }
                lat.push(t0.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let seconds = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    Ok(Measured {
        writes: lat.len(),
        seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        record_bytes,
    })
}

fn pg_run_as(user: &str) -> Result<Option<(u32, u32)>> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(None);
    }
    let u = nix::unistd::User::from_name(user)?
        .with_context(|| format!("no user {user} to run PostgreSQL as (pass --pg-user)"))?;
    Ok(Some((u.uid.as_raw(), u.gid.as_raw())))
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let mut results = Vec::new();
    let mut backends: Vec<&str> = vec!["sqlite"];
    if !a.skip_postgres {
        backends.push("postgres");
    }
    for backend in backends {
        for shared in [true, false] {
            let dir = tempfile::tempdir()?;
            let mut _cluster = None;
            let db = if backend == "sqlite" {
                format!("sqlite:{}", dir.path().join("bench.sqlite").display())
            } else {
                let c = PgCluster::start(dir.path(), pg_run_as(&a.pg_user)?)?;
                c.create_db("bench")?;
                let url = c.url("bench");
                _cluster = Some(c);
                url
            };
            let server = start_server(&db).await?;
            let workers = layout(&server, shared, a.clients, a.writes).await?;
            let m = run(workers).await?;
            let row = json!({
                "backend": backend,
                "layout": if shared { "one org" } else { "org per client" },
                "clients": a.clients,
                "writes": m.writes,
                "record_bytes": m.record_bytes,
                "seconds": (m.seconds * 1000.0).round() / 1000.0,
                "writes_per_s": (m.writes as f64 / m.seconds).round(),
                "p50_ms": (m.p50_ms * 100.0).round() / 100.0,
                "p99_ms": (m.p99_ms * 100.0).round() / 100.0,
            });
            if !a.json {
                eprintln!("{row}");
            }
            results.push(row);
            drop(server);
            drop(_cluster);
        }
    }
    let rate = |b: &str, l: &str| {
        results
            .iter()
            .find(|r| r["backend"] == b && r["layout"] == l)
            .and_then(|r| r["writes_per_s"].as_f64())
    };
    let ratio = |l: &str| match (rate("postgres", l), rate("sqlite", l)) {
        (Some(p), Some(s)) if s > 0.0 => Some((p / s * 100.0).round() / 100.0),
        _ => None,
    };
    let best_pg = ["one org", "org per client"]
        .iter()
        .filter_map(|l| rate("postgres", l))
        .fold(0.0f64, f64::max);
    let out = json!({
        "bench": "sync",
        "measure": "server write throughput, one record per push, concurrent clients",
        "results": results,
        "postgres_vs_sqlite": {
            "one org": ratio("one org"),
            "org per client": ratio("org per client"),
        },
        "target": {
            "postgres_writes_per_s": 2000,
            "best_postgres_writes_per_s": best_pg,
            "met": best_pg >= 2000.0,
        },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
