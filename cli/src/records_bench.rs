//! `gatehouse bench records`: the records store against a private throwaway
//! broker — insert and list throughput for N hosts (sealed vs a
//! plaintext-only store in the same run), broker requests made by listing
//! (must be zero), and opening M sealed fields in one batch vs one by one.
//!
//! Never touches your profile. Must never: report a figure it did not
//! measure in this run.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use clap::Args;
use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse, KeyScope, OpenItem};
use gatehouse_records::model::{Host, Kind, Record, Secret, SshProtocol, Vendor};
use gatehouse_records::sealer::{Counting, PlaintextBaseline};
use gatehouse_records::store::{Filter, Store, field_address};
use gatehouse_records::{BrokerSealer, Sealer};
use serde::Serialize;

use crate::bench_broker::start_private_broker;

#[derive(Args, Debug)]
pub struct BenchRecordsArgs {
    #[arg(long)]
    json: bool,
    /// Hosts to insert and list.
    #[arg(long, default_value_t = 10_000)]
    hosts: usize,
    /// Sealed fields to open, batched and one by one.
    #[arg(long, default_value_t = 1_000)]
    open: usize,
}

#[derive(Debug, Serialize)]
pub struct RecordsBench {
    pub hosts: usize,
    pub sealed_fields_per_host: usize,
    pub insert_sealed_hosts_per_s: f64,
    pub insert_sealed_ms: f64,
    pub insert_sealed_broker_requests: u64,
    pub insert_plaintext_only_hosts_per_s: f64,
    pub insert_plaintext_only_ms: f64,
    pub sealing_cost_ratio: f64,
    pub list_all_ms: f64,
    pub list_hosts_per_s: f64,
    pub list_filtered_ms: f64,
    pub list_filtered_matches: usize,
    pub list_plaintext_only_ms: f64,
    pub list_broker_requests: u64,
    pub open_fields: usize,
    pub open_batch_ms: f64,
    pub open_one_by_one_ms: f64,
    pub open_batch_speedup: f64,
    pub read_verified_batch_ms: f64,
    pub db_bytes: u64,
}

fn host(i: usize) -> Record {
    Record::Host(Host {
        name: format!("sw{i:05}"),
        folder: format!("dc{}/rack{}", i % 4, i % 50),
        address: format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
        port: 22,
        tags: vec![
            if i.is_multiple_of(10) {
                "edge"
            } else {
                "access"
            }
            .into(),
        ],
        vendor: if i.is_multiple_of(3) {
            Vendor::Routeros
        } else {
            Vendor::Ios
        },
        ssh: Some(SshProtocol {
            username: "admin".into(),
            password: Some(Secret::new(format!("bench-password-{i}"))),
            private_key_path: None,
            key_passphrase: None,
            host_key_fingerprint: None,
        }),
        http: None,
        onvif: None,
    })
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn file_size(p: &std::path::Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", p.display())).ok())
        .map(|m| m.len())
        .sum()
}

pub fn run(args: &BenchRecordsArgs) -> anyhow::Result<ExitCode> {
    let n = args.hosts.max(10);
    let m = args.open.clamp(1, n);
    let pb = start_private_broker()?;
    let mut sealer = Counting::new(BrokerSealer::connect(&pb.layout)?);
    let pass = gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<16>());
    sealer.inner.call(BrokerRequest::AccountInit {
        passphrase: SecretBytes::copy_from(pass.as_bytes()),
    })?;
    let org = match sealer.inner.call(BrokerRequest::OrgCreate {
        name: "bench".into(),
    })? {
        BrokerResponse::Org(o) => o.id,
        r => bail!("unexpected {r:?}"),
    };
    let scope = KeyScope::Org(org);
    let items = |n: usize| (0..n).map(|i| (scope.clone(), host(i))).collect::<Vec<_>>();

    // Insert: sealed (broker) vs plaintext-only, same code path, same records.
    let sealed_path = pb.home.join("bench-sealed.sqlite");
    let plain_path = pb.home.join("bench-plaintext.sqlite");
    let mut st = Store::open(&sealed_path)?;
    let before = sealer.inner.requests();
    let t = Instant::now();
    st.create_many(&mut sealer, "bench", items(n), 1000, &mut |_, _| {})?;
    let insert_sealed_ms = ms(t);
    let insert_requests = sealer.inner.requests() - before;

    let mut plain_store = Store::open(&plain_path)?;
    let t = Instant::now();
    plain_store.create_many(
        &mut PlaintextBaseline,
        "bench",
        items(n),
        1000,
        &mut |_, _| {},
    )?;
    let insert_plain_ms = ms(t);

    // List: plaintext only; the counters show no request is made.
    let before = sealer.calls + sealer.inner.requests();
    let t = Instant::now();
    let all = st.list(&Filter::kind(Kind::Host))?;
    let list_all_ms = ms(t);
    let t = Instant::now();
    let filtered = st.list(&Filter {
        kind: Some(Kind::Host),
        folder: Some("dc2".into()),
        tag: Some("edge".into()),
        vendor: Some("ios".into()),
        text: Some("sw0".into()),
        ..Filter::default()
    })?;
    let list_filtered_ms = ms(t);
    let list_requests = sealer.calls + sealer.inner.requests() - before;
    let t = Instant::now();
    let all_plain = plain_store.list(&Filter::kind(Kind::Host))?;
    let list_plain_ms = ms(t);
    if all.len() != n || all_plain.len() != n {
        bail!("listed {} / {} of {n} hosts", all.len(), all_plain.len());
    }

    // Open M sealed fields: one batch vs one request each.
    let stored = all[..m]
        .iter()
        .map(|s| st.get(Kind::Host, &s.meta.id))
        .collect::<Result<Vec<_>, _>>()?;
    let open_items: Vec<OpenItem> = stored
        .iter()
        .map(|s| OpenItem {
            address: field_address(&s.meta, "ssh.password", &s.plain),
            sealed: s.sealed["ssh.password"].clone(),
        })
        .collect();
    let t = Instant::now();
    let opened = sealer.inner.open(open_items.clone())?;
    let open_batch_ms = ms(t);
    if opened.len() != m {
        bail!("opened {} of {m}", opened.len());
    }
    let t = Instant::now();
    for it in open_items {
        sealer.inner.open(vec![it])?;
    }
    let open_one_ms = ms(t);
    let t = Instant::now();
    let read = Store::open_many(&mut sealer, &stored)?;
    let read_ms = ms(t);
    if read.iter().any(|r| r.is_err()) {
        bail!("a benchmark record did not open");
    }
    drop(st);
    drop(plain_store);

    let r = RecordsBench {
        hosts: n,
        sealed_fields_per_host: 1,
        insert_sealed_hosts_per_s: n as f64 / (insert_sealed_ms / 1e3),
        insert_sealed_ms,
        insert_sealed_broker_requests: insert_requests,
        insert_plaintext_only_hosts_per_s: n as f64 / (insert_plain_ms / 1e3),
        insert_plaintext_only_ms: insert_plain_ms,
        sealing_cost_ratio: insert_sealed_ms / insert_plain_ms,
        list_all_ms,
        list_hosts_per_s: n as f64 / (list_all_ms / 1e3),
        list_filtered_ms,
        list_filtered_matches: filtered.len(),
        list_plaintext_only_ms: list_plain_ms,
        list_broker_requests: list_requests,
        open_fields: m,
        open_batch_ms,
        open_one_by_one_ms: open_one_ms,
        open_batch_speedup: open_one_ms / open_batch_ms,
        read_verified_batch_ms: read_ms,
        db_bytes: file_size(&sealed_path),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "records store, {} hosts (1 sealed field each), private throwaway broker",
            r.hosts
        );
        println!(
            "insert, sealed via broker   {:>9.1} ms  {:>9.0} hosts/s  ({} broker requests)",
            r.insert_sealed_ms, r.insert_sealed_hosts_per_s, r.insert_sealed_broker_requests
        );
        println!(
            "insert, plaintext-only      {:>9.1} ms  {:>9.0} hosts/s  (baseline; sealing costs x{:.2})",
            r.insert_plaintext_only_ms, r.insert_plaintext_only_hosts_per_s, r.sealing_cost_ratio
        );
        println!(
            "list all                    {:>9.1} ms  {:>9.0} hosts/s  (plaintext-only store: {:.1} ms)",
            r.list_all_ms, r.list_hosts_per_s, r.list_plaintext_only_ms
        );
        println!(
            "list filtered               {:>9.1} ms  {} match(es)",
            r.list_filtered_ms, r.list_filtered_matches
        );
        println!("broker requests while listing: {}", r.list_broker_requests);
        println!(
            "open {} sealed fields: one batch {:.1} ms, one by one {:.1} ms (batch x{:.1} faster); verify+open {} records {:.1} ms",
            r.open_fields,
            r.open_batch_ms,
            r.open_one_by_one_ms,
            r.open_batch_speedup,
            r.open_fields,
            r.read_verified_batch_ms
        );
        println!("database size: {} KiB", r.db_bytes / 1024);
    }
    Ok(ExitCode::SUCCESS)
}
