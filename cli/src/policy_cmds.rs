//! `gatehouse classify`, `gatehouse redact` and `gatehouse bench policy`.
//! Owns the CLI surface of the policy crate: argument parsing, reading
//! stdin, printing, and (for the bench) writing the generated corpus to a
//! temporary directory and running the `detect-secrets` baseline as a
//! subprocess. The engines themselves stay pure in `gatehouse-policy`.

use anyhow::{Context, bail};
use gatehouse_policy::bench_support as bs;
use gatehouse_policy::{Vendor, classify, redact_patterns_after};
use std::io::Read;
use std::str::FromStr;
use std::time::Instant;

/// `gatehouse classify --vendor V [--json] [-- COMMAND... | < FILE]`
#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// routeros, ios, iosxe, nxos, junos, eos or linux
    #[arg(long)]
    pub vendor: String,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
    /// The command (words are joined with spaces); read from stdin when absent.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// `gatehouse redact [--json] < FILE`
#[derive(clap::Args, Debug)]
pub struct RedactArgs {
    /// Print the redacted text and spans (with rule ids) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `gatehouse bench policy [--json]`
#[derive(clap::Args, Debug)]
pub struct BenchPolicyArgs {
    /// Print results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Commands classified per measurement.
    #[arg(long, default_value_t = 2_000_000)]
    pub commands: usize,
    /// Number of generated config files (~256 KiB each).
    #[arg(long, default_value_t = 40)]
    pub files: usize,
    /// Number of known secret values for the exact layer.
    #[arg(long, default_value_t = 1000)]
    pub known: usize,
}

fn read_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading stdin")?;
    Ok(s)
}

pub fn run_classify(args: &ClassifyArgs) -> anyhow::Result<()> {
    let vendor = Vendor::from_str(&args.vendor)?;
    let text = if args.command.is_empty() {
        read_stdin()?
    } else {
        args.command.join(" ")
    };
    let v = classify(vendor, &text);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("class: {}", v.class);
    if v.output_has_secrets {
        println!("note: output carries secrets; send it through redaction");
    }
    if v.needs_credential {
        println!("note: needs a credential to be decrypted");
    }
    println!("parts:");
    for p in &v.parts {
        println!(
            "  [{}] {}  ({}: {})",
            p.class,
            p.text.replace('\n', "\\n"),
            p.rule_ids.join(","),
            p.reason
        );
    }
    println!("reasons:");
    for r in &v.reasons {
        println!("  - {r}");
    }
    Ok(())
}

/// `exact_layer` applies the broker's exact-value redaction when signed in
/// (returns `None` when no broker/account is available).
pub type ExactLayer<'a> =
    &'a dyn Fn(&str) -> anyhow::Result<Option<(String, Vec<gatehouse_policy::Span>)>>;

pub fn run_redact(args: &RedactArgs, exact_layer: ExactLayer<'_>) -> anyhow::Result<()> {
    let input = read_stdin()?;
    let (stage1, mut spans1, exact_applied) = match exact_layer(&input)? {
        Some((t, s)) => (t, s, true),
        None => (input, Vec::new(), false),
    };
    // pattern layer on the exact layer's output; references stay intact
    let r = redact_patterns_after(&stage1, std::mem::take(&mut spans1));
    let spans = r.spans.clone();
    if args.json {
        let out =
            serde_json::json!({ "text": r.text, "spans": spans, "exact_layer": exact_applied });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", r.text);
        if !exact_applied {
            eprintln!(
                "gatehouse: not signed in; exact-value layer not applied (pattern layer only)"
            );
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct BenchReport {
    classification: ClassBench,
    redaction: RedactBench,
}

#[derive(serde::Serialize)]
struct ClassBench {
    commands: usize,
    ours_commands_per_s: f64,
    baseline_naive_regex_commands_per_s: f64,
    target_commands_per_s: f64,
}

#[derive(serde::Serialize)]
struct RedactBench {
    files: usize,
    bytes: usize,
    known_values: usize,
    planted_secrets: usize,
    ours_mb_per_s: f64,
    ours_recall: f64,
    baseline: String,
    baseline_mb_per_s: Option<f64>,
    baseline_recall: Option<f64>,
    speedup: Option<f64>,
    baseline_note: Option<String>,
    target_mb_per_s: f64,
}

pub fn run_bench(args: &BenchPolicyArgs) -> anyhow::Result<()> {
    let (ours, base) = bs::classification_throughput(args.commands);
    let corpus = bs::redaction_corpus(args.files, 256, args.known);
    let exact = bs::exact_for(&corpus);
    let bytes: usize = corpus.files.iter().map(|f| f.1.len()).sum();
    let (mbs, recall) = bs::redaction_throughput(&corpus, &exact, 3);
    let (bmbs, brecall, note) = match detect_secrets(&corpus) {
        Ok((m, r)) => (Some(m), Some(r), None),
        Err(e) => (
            None,
            None,
            Some(format!("detect-secrets baseline not measured: {e:#}")),
        ),
    };
    let report = BenchReport {
        classification: ClassBench {
            commands: args.commands,
            ours_commands_per_s: ours,
            baseline_naive_regex_commands_per_s: base,
            target_commands_per_s: 1_000_000.0,
        },
        redaction: RedactBench {
            files: corpus.files.len(),
            bytes,
            known_values: corpus.known.len(),
            planted_secrets: corpus.planted.len(),
            ours_mb_per_s: mbs,
            ours_recall: recall,
            baseline: "detect-secrets scan (PyPI), same files, same run".into(),
            baseline_mb_per_s: bmbs,
            baseline_recall: brecall,
            speedup: bmbs.map(|b| mbs / b),
            baseline_note: note,
            target_mb_per_s: 200.0,
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let c = &report.classification;
        println!(
            "classification: {:.0} commands/s (naive regex-prefix baseline {:.0}/s; target ≥ 1,000,000)",
            c.ours_commands_per_s, c.baseline_naive_regex_commands_per_s
        );
        let r = &report.redaction;
        println!(
            "redaction: {:.1} MB/s over {} files ({} bytes, {} known values), recall {:.3} on {} planted secrets (target ≥ 200 MB/s)",
            r.ours_mb_per_s, r.files, r.bytes, r.known_values, r.ours_recall, r.planted_secrets
        );
        match (r.baseline_mb_per_s, r.baseline_recall) {
            (Some(m), Some(rc)) => println!(
                "detect-secrets: {m:.3} MB/s, recall {rc:.3}; ours is {:.0}× faster",
                r.speedup.unwrap_or(0.0)
            ),
            _ => println!("{}", r.baseline_note.clone().unwrap_or_default()),
        }
    }
    Ok(())
}

/// Run `detect-secrets scan` on the corpus files: (MB/s, recall on planted).
fn detect_secrets(c: &bs::RedactionCorpus) -> anyhow::Result<(f64, f64)> {
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut paths = Vec::new();
    for (name, text) in &c.files {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        paths.push(p);
    }
    let bytes: usize = c.files.iter().map(|f| f.1.len()).sum();
    let exe = which("detect-secrets");
    let mut cmd = match &exe {
        Some(p) => std::process::Command::new(p),
        None => {
            let mut c = std::process::Command::new("python3");
            c.args(["-m", "detect_secrets"]);
            c
        }
    };
    cmd.arg("scan").args(&paths).current_dir(&dir);
    let t = Instant::now();
    let out = cmd
        .output()
        .context("running detect-secrets (pip install detect-secrets)")?;
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!(
            "detect-secrets is not installed or failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing detect-secrets output")?;
    // planted (file, line) pairs
    let mut found = 0usize;
    let mut total = 0usize;
    for (name, text) in &c.files {
        let reported: Vec<u64> = v["results"]
            .as_object()
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.ends_with(name.as_str()))
                    .map(|x| x.1.clone())
            })
            .and_then(|x| x.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r["line_number"].as_u64())
            .collect();
        for (ln, line) in text.lines().enumerate() {
            let n = c
                .planted
                .iter()
                .filter(|p| line.contains(p.as_str()))
                .count();
            if n > 0 {
                total += n;
                if reported.contains(&(ln as u64 + 1)) {
                    found += n;
                }
            }
        }
    }
    Ok((
        bytes as f64 / 1e6 / secs,
        found as f64 / total.max(1) as f64,
    ))
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}
