//! The in-process half of `gatehouse bench ui` (`gatehouse-ui
//! --bench-headless` prints it as JSON): the app's own code paths, timed
//! beside a baseline measured in the same run. The CLI adds the cold start
//! to first frame, which needs a display.
//!
//! Must never: talk to a daemon or open a profile (everything here is
//! generated in memory).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::daemons::HostRow;
use crate::hosts::{self, Hosts};

/// Generated hosts that look like a real inventory: folders per site,
/// several vendors, a few tags, addresses in private ranges, three
/// organizations (ids `org0`..`org2`).
pub fn generated_hosts(n: usize) -> Vec<HostRow> {
    const VENDORS: [&str; 5] = ["routeros", "ios", "junos", "linux", "other"];
    const ROLES: [&str; 4] = ["core", "edge", "access", "mgmt"];
    (0..n)
        .map(|i| {
            let site = i % 40;
            let role = ROLES[i % ROLES.len()];
            HostRow {
                id: format!("{i:032x}"),
                name: format!("{role}-{site:02}-{i:05}"),
                address: format!("10.{}.{}.{}", site, (i / 250) % 250, i % 250 + 1),
                port: "22".into(),
                vendor: VENDORS[i % VENDORS.len()].into(),
                tags: vec![role.to_string(), format!("site{site:02}")],
                folder: format!("region{}/site{site:02}", site % 4),
                scope: gatehouse_ipc::broker::KeyScope::Org(format!("org{}", i % 3)),
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Filter latency over `n` hosts: the app's search (every word against
/// every plaintext field) for a set of typical queries, beside the least a
/// filter can do (one substring test of each name).
pub fn hosts_filter(n: usize, samples: usize) -> Value {
    let rows = generated_hosts(n);
    let names: Vec<String> = rows.iter().map(|r| r.name.to_lowercase()).collect();
    let mut screen = Hosts::default();
    screen.loaded(Ok(rows));
    let queries = [
        "core",
        "site17",
        "10.3.",
        "routeros edge",
        "region2 access-",
    ];
    let (mut app, mut base, mut with_view) = (Vec::new(), Vec::new(), Vec::new());
    let mut matched = 0;
    for _ in 0..samples.max(1) {
        for q in queries {
            screen.update(hosts::Message::Search(q.to_string()), None);
            let t = Instant::now();
            matched = std::hint::black_box(screen.visible(None).len());
            app.push(t.elapsed());
            // What a keystroke in the search box costs before drawing: the
            // message, the filter, and building the screen's widget tree.
            let t = Instant::now();
            screen.update(hosts::Message::Search(q.to_string()), None);
            std::hint::black_box(screen.view(None));
            with_view.push(t.elapsed());
            let needle = q.split_whitespace().next().unwrap_or("");
            let t = Instant::now();
            std::hint::black_box(names.iter().filter(|s| s.contains(needle)).count());
            base.push(t.elapsed());
        }
    }
    let (app, base, with_view) = (median(app), median(base), median(with_view));
    json!({
        "hosts": n,
        "queries": queries,
        "last_query_matched": matched,
        "filter_ms_median": app.as_secs_f64() * 1e3,
        "keystroke_filter_and_view_ms_median": with_view.as_secs_f64() * 1e3,
        "baseline_name_scan_ms_median": base.as_secs_f64() * 1e3,
        "ratio": app.as_secs_f64() / base.as_secs_f64().max(1e-9),
    })
}

/// Everything measured in process, as JSON.
pub fn headless(samples: usize) -> Value {
    json!({
        "hosts_filter": hosts_filter(10_000, samples),
        "terminal": crate::term_bench::headless(8),
    })
}
