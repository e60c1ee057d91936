//! Bench inputs and pure timing helpers for `gatehouse bench policy`. Owns
//! the generated corpora (deterministic, with planted *fake* secrets) and the
//! naive regex-prefix baseline classifier. Must never do I/O: callers write
//! files and run external scanners.

use crate::{Class, ExactSecrets, Vendor, classify, redact};
use regex::Regex;
use std::time::Instant;

/// Deterministic xorshift generator (no external RNG, reproducible inputs).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// A random alphanumeric string of length `n`.
    pub fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| A[(self.next_u64() % A.len() as u64) as usize] as char)
            .collect()
    }
}

/// A typical mix of commands for throughput measurement.
pub fn command_mix() -> Vec<(Vendor, &'static str)> {
    vec![
        (Vendor::Ios, "show ip interface brief"),
        (Vendor::Ios, "sh run | i snmp"),
        (Vendor::Ios, "conf t"),
        (Vendor::Ios, "reload"),
        (Vendor::Ios, "wr"),
        (Vendor::NxOs, "show interface status"),
        (Vendor::Eos, "show version | json"),
        (Vendor::Junos, "show route summary"),
        (Vendor::Junos, "req sys reb"),
        (Vendor::RouterOs, "/ip address print"),
        (Vendor::RouterOs, "/interface print where running"),
        (Vendor::Linux, "ip -br addr"),
        (Vendor::Linux, "ls -la /etc"),
        (Vendor::Linux, "ps aux | grep sshd"),
        (Vendor::Linux, "sudo systemctl restart nginx"),
        (Vendor::Ios, "ping 10.0.0.1"),
    ]
}

/// The naive baseline: anchored regexes on the command's first words.
pub struct NaiveClassifier {
    rules: Vec<(Regex, Class)>,
}

impl NaiveClassifier {
    /// Build the baseline regex set.
    pub fn new() -> NaiveClassifier {
        let r = |p: &str, c| (Regex::new(p).expect("static regex"), c);
        NaiveClassifier {
            rules: vec![
                r(
                    r"^\s*(reload|reboot|erase|format|write erase|request system reboot|/system reboot|rm -rf)",
                    Class::Dangerous,
                ),
                r(
                    r"^\s*(show|sh|display|get|ping|traceroute|/\S+ print|ls|cat|ip a|ps|df|grep)\b",
                    Class::ReadOnly,
                ),
                r(
                    r"^\s*(conf|configure|set|delete|interface|/\S+ (add|set|remove)|sudo|systemctl)",
                    Class::Moderate,
                ),
            ],
        }
    }
    /// Classify by first matching prefix.
    pub fn classify(&self, text: &str) -> Class {
        self.rules
            .iter()
            .find(|(re, _)| re.is_match(text))
            .map_or(Class::Unknown, |x| x.1)
    }
}

impl Default for NaiveClassifier {
    fn default() -> Self {
        Self::new()
    }
}

/// (ours commands/s, baseline commands/s) over `iters` commands.
pub fn classification_throughput(iters: usize) -> (f64, f64) {
    let mix = command_mix();
    let t = Instant::now();
    let mut n = 0usize;
    for i in 0..iters {
        let (v, c) = mix[i % mix.len()];
        n += classify(v, c).parts.len();
    }
    let ours = iters as f64 / t.elapsed().as_secs_f64();
    let naive = NaiveClassifier::new();
    let t = Instant::now();
    for i in 0..iters {
        let (_, c) = mix[i % mix.len()];
        n += naive.classify(c) as usize;
    }
    let base = iters as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(n);
    (ours, base)
}

/// A generated redaction corpus: files of realistic config with planted
/// fake secrets, and the known values.
pub struct RedactionCorpus {
    /// (file name, contents)
    pub files: Vec<(String, String)>,
    /// (reference name, value) for the exact layer.
    pub known: Vec<(String, String)>,
    /// Planted secret strings that must not survive redaction.
    pub planted: Vec<String>,
}

/// Generate `n_files` configs (~`file_kb` KiB each) with `n_known` known values.
pub fn redaction_corpus(n_files: usize, file_kb: usize, n_known: usize) -> RedactionCorpus {
    let mut rng = Rng::new(0x6a7e_4005e);
    let known: Vec<(String, String)> = (0..n_known)
        .map(|i| (format!("dev{i}"), format!("Fk{}{}", i, rng.alnum(14))))
        .collect();
    let mut planted = Vec::new();
    let mut files = Vec::new();
    let mut k = 0usize;
    for f in 0..n_files {
        let mut s = String::new();
        let mut i = 0usize;
        while s.len() < file_kb * 1024 {
            i += 1;
            s.push_str(&format!("interface GigabitEthernet0/{}\n description uplink to core-sw{} port {}\n ip address 10.{}.{}.1 255.255.255.0\n no shutdown\n!\n", i % 48, i % 7, i, f % 250, i % 250));
            if i.is_multiple_of(6) {
                let v = &known[k % known.len()].1;
                k += 1;
                s.push_str(&format!(
                    "username netops{} privilege 15 secret 0 {}\n",
                    i, v
                ));
                planted.push(v.clone());
            }
            if i.is_multiple_of(9) {
                let tok = format!("AKIA{}", rng.alnum(16).to_ascii_uppercase());
                s.push_str(&format!("# backup uploader\naws_access_key_id = {tok}\n"));
                planted.push(tok);
            }
            if i.is_multiple_of(11) {
                let c = format!("c0mm{}", rng.alnum(10));
                s.push_str(&format!("snmp-server community {c} RO\n"));
                planted.push(c);
            }
            if i.is_multiple_of(13) {
                let g = format!("ghp_{}", rng.alnum(36));
                s.push_str(&format!("export GITHUB_TOKEN={g}\n"));
                planted.push(g);
            }
            s.push_str("router ospf 1\n network 10.0.0.0 0.255.255.255 area 0\n logging host 192.0.2.10\n ntp server 192.0.2.1\n!\n");
        }
        files.push((format!("config-{f:03}.txt"), s));
    }
    RedactionCorpus {
        files,
        known,
        planted,
    }
}

/// Build the exact engine for a corpus.
pub fn exact_for(c: &RedactionCorpus) -> ExactSecrets {
    let mut b = ExactSecrets::builder();
    for (n, v) in &c.known {
        b.add(n, v.as_bytes().to_vec());
    }
    b.build()
}

/// (MB/s, recall) of `redact` over the corpus, `rounds` passes.
pub fn redaction_throughput(
    c: &RedactionCorpus,
    exact: &ExactSecrets,
    rounds: usize,
) -> (f64, f64) {
    let total: usize = c.files.iter().map(|f| f.1.len()).sum();
    let t = Instant::now();
    let mut outs = Vec::new();
    for r in 0..rounds.max(1) {
        for (_, text) in &c.files {
            let o = redact(text, exact);
            if r == 0 {
                outs.push(o.text);
            }
        }
    }
    let mbs = (total * rounds.max(1)) as f64 / 1e6 / t.elapsed().as_secs_f64();
    let all = outs.join("\n");
    let found = c
        .planted
        .iter()
        .filter(|p| !all.contains(p.as_str()))
        .count();
    (mbs, found as f64 / c.planted.len().max(1) as f64)
}
