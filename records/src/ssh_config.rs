//! Reading an engineer's OpenSSH client config and known_hosts for
//! `gatehouse host import --ssh-config FILE [--known-hosts FILE]`, the way
//! OpenSSH reads them (`ssh -G HOST` is the reference the tests compare with).
//!
//! Owns: the subset of `ssh_config(5)` Gatehouse imports — every concrete
//! name of a `Host` line becomes a host, and its HostName (with `%h`), Port,
//! User and IdentityFile are what OpenSSH would use for it: options before
//! the first block and in every matching `Host` block (wildcards, `!`
//! negation, case-insensitive) and `Match all`/`host`/`originalhost` block,
//! in file order, first value wins (IdentityFile accumulates). Words are
//! split as OpenSSH splits them (quotes; a word starting with `#` ends the
//! line). Also host-key fingerprints from `known_hosts` (`SHA256:` +
//! unpadded base64 of the key blob's SHA-256, as `ssh-keygen -l` prints),
//! hashed names (`|1|salt|hash`, HMAC-SHA1) included, `@revoked` keys never
//! pinned, `@cert-authority` lines reported.
//! Must never: follow `Include` (it is reported per line: import that file
//! too), evaluate a `Match` criterion it does not implement (the block is
//! skipped and reported), or read a file it was not given.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_NOPAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// One importable `Host` alias, with the options OpenSSH would use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHostEntry {
    pub alias: String,
    /// HostName (`%h` expanded), else the alias.
    pub hostname: String,
    /// Port as written (checked by the importer).
    pub port: Option<String>,
    pub user: Option<String>,
    /// The first IdentityFile (OpenSSH tries them in order; Gatehouse keeps one).
    pub identity_file: Option<String>,
    /// Every IdentityFile, in the order OpenSSH lists them.
    pub identity_files: Vec<String>,
    /// Line of the `Host` line that names it.
    pub line: usize,
}

impl SshHostEntry {
    /// `host:port` as OpenSSH prints a destination: an IPv6 address in
    /// brackets (`[2001:db8::1]:2222`).
    pub fn destination(&self, port: u16) -> String {
        host_port(&self.hostname, port)
    }
}

/// `host:port`, with an IPv6 address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Something not imported (or imported differently), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub line: usize,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct SshConfig {
    pub hosts: Vec<SshHostEntry>,
    pub notes: Vec<Note>,
}

/// Splits a config line into words as OpenSSH's `argv_split` does: double
/// or single quotes group, a backslash escapes a quote or backslash, a word
/// that starts with `#` ends the line (a trailing comment). `Err`: an
/// unterminated quote.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        if first == '#' {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) if matches!(chars.peek(), Some('"' | '\'' | '\\')) => {
                    word.extend(chars.next());
                }
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, None) if c.is_whitespace() => break,
                (c, _) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        out.push(word);
    }
    Ok(out)
}

/// The keyword and its arguments (`Key value`, `Key=value`, `Key = value`).
fn keyword(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let t = line.trim();
    let end = t
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(t.len());
    let (k, rest) = t.split_at(end);
    if k.is_empty() || k.starts_with('#') {
        return Ok(None);
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    Ok(Some((k.to_ascii_lowercase(), words(rest)?)))
}

/// OpenSSH's `match_pattern`: `*` any run, `?` one character; ASCII case
/// folded (OpenSSH lowercases the host and the patterns).
pub fn wildcard_match(name: &str, pattern: &str) -> bool {
    fn go(n: &[u8], p: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(&n[i..], rest)),
            Some((b'?', rest)) => !n.is_empty() && go(&n[1..], rest),
            Some((c, rest)) => n
                .first()
                .is_some_and(|x| x.eq_ignore_ascii_case(c) && go(&n[1..], rest)),
        }
    }
    go(name.as_bytes(), pattern.as_bytes())
}

/// OpenSSH's `match_pattern_list` over words: any positive pattern matches
/// and no negated (`!pat`) one does. Comma-separated lists count as words.
pub fn pattern_list_match(name: &str, patterns: &[String]) -> bool {
    let mut hit = false;
    for p in patterns.iter().flat_map(|p| p.split(',')) {
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard_match(name, neg) {
                return false;
            }
        } else if wildcard_match(name, p) {
            hit = true;
        }
    }
    hit
}

/// Which hosts a block's options apply to.
#[derive(Debug, Clone)]
enum Applies {
    /// Before the first `Host`/`Match`: every host.
    All,
    Host(Vec<String>),
    /// `Match` criteria Gatehouse evaluates (`all`, `host`, `originalhost`,
    /// each possibly negated with `!`).
    Match(Vec<MatchTerm>),
    /// A `Match` with a criterion Gatehouse does not evaluate: skipped.
    Never,
}

#[derive(Debug, Clone)]
struct MatchTerm {
    negate: bool,
    /// `None`: `all`.
    on: Option<(MatchOn, Vec<String>)>,
}

#[derive(Debug, Clone, Copy)]
enum MatchOn {
    /// The target host name (HostName once set, else the alias).
    Host,
    /// The name as given on the command line (the alias).
    OriginalHost,
}

/// One option line inside a block.
#[derive(Debug, Clone)]
struct Setting {
    key: String,
    value: String,
}

#[derive(Debug, Clone)]
struct Block {
    applies: Applies,
    settings: Vec<Setting>,
}

fn parse_match(args: &[String], line: usize, notes: &mut Vec<Note>) -> Applies {
    let mut terms = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let raw = args[i].to_ascii_lowercase();
        let (negate, crit) = match raw.strip_prefix('!') {
            Some(c) => (true, c.to_string()),
            None => (false, raw.clone()),
        };
        match crit.as_str() {
            "all" => {
                terms.push(MatchTerm { negate, on: None });
                i += 1;
            }
            "host" | "originalhost" => {
                let Some(list) = args.get(i + 1) else {
                    notes.push(Note {
                        line,
                        what: format!("Match {crit}: no patterns given; block skipped"),
                    });
                    return Applies::Never;
                };
                let on = if crit == "host" {
                    MatchOn::Host
                } else {
                    MatchOn::OriginalHost
                };
                terms.push(MatchTerm {
                    negate,
                    on: Some((on, vec![list.clone()])),
                });
                i += 2;
            }
            other => {
                notes.push(Note {
                    line,
                    what: format!(
                        "Match {}: the {other:?} criterion is not evaluated by the import; the block's options were not applied to any host",
                        args.join(" ")
                    ),
                });
                return Applies::Never;
            }
        }
    }
    Applies::Match(terms)
}

/// Options Gatehouse imports (others are ignored silently, as OpenSSH
/// options that do not describe where to connect).
const IMPORTED: [&str; 4] = ["hostname", "port", "user", "identityfile"];

pub fn parse_ssh_config(text: &str) -> SshConfig {
    let mut out = SshConfig::default();
    let mut blocks = vec![Block {
        applies: Applies::All,
        settings: Vec::new(),
    }];
    // (alias, line) of every concrete name on a Host line, first time seen.
    let mut aliases: Vec<(String, usize)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let (key, args) = match keyword(raw) {
            Ok(Some(k)) => k,
            Ok(None) => continue,
            Err(why) => {
                out.notes.push(Note {
                    line,
                    what: format!("{why}; line skipped"),
                });
                continue;
            }
        };
        match key.as_str() {
            "host" => {
                for p in &args {
                    for name in p.split(',').filter(|n| !n.is_empty()) {
                        if name.starts_with('!') || name.contains(['*', '?']) {
                            continue;
                        }
                        if !aliases.iter().any(|(a, _)| a.eq_ignore_ascii_case(name)) {
                            aliases.push((name.to_string(), line));
                        }
                    }
                }
                if args.is_empty() {
                    out.notes.push(Note {
                        line,
                        what: "Host without a pattern; block skipped".into(),
                    });
                }
                blocks.push(Block {
                    applies: if args.is_empty() {
                        Applies::Never
                    } else {
                        Applies::Host(args)
                    },
                    settings: Vec::new(),
                });
            }
            "match" => {
                let applies = parse_match(&args, line, &mut out.notes);
                blocks.push(Block {
                    applies,
                    settings: Vec::new(),
                });
            }
            "include" => out.notes.push(Note {
                line,
                what: format!(
                    "Include {}: not followed (import that file with its own --ssh-config; its options are missing here)",
                    args.join(" ")
                ),
            }),
            k if IMPORTED.contains(&k) => {
                let Some(value) = args.first() else {
                    out.notes.push(Note {
                        line,
                        what: format!("{k} without a value; ignored"),
                    });
                    continue;
                };
                if let Some(b) = blocks.last_mut() {
                    b.settings.push(Setting {
                        key: key.clone(),
                        value: value.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    for (alias, line) in aliases {
        out.hosts.push(resolve(&blocks, &alias, line));
    }
    out
}

/// The options OpenSSH would use for `alias`: blocks in order, first value wins.
fn resolve(blocks: &[Block], alias: &str, line: usize) -> SshHostEntry {
    let mut hostname: Option<String> = None;
    let mut port = None;
    let mut user = None;
    let mut identity_files = Vec::new();
    for b in blocks {
        let applies = match &b.applies {
            Applies::All => true,
            Applies::Never => false,
            Applies::Host(pats) => pattern_list_match(alias, pats),
            Applies::Match(terms) => terms.iter().all(|t| {
                let hit = match &t.on {
                    None => true,
                    Some((MatchOn::OriginalHost, pats)) => pattern_list_match(alias, pats),
                    Some((MatchOn::Host, pats)) => {
                        let target = hostname
                            .as_deref()
                            .map(|h| expand_host(h, alias))
                            .unwrap_or_else(|| alias.to_string());
                        pattern_list_match(&target, pats)
                    }
                };
                hit != t.negate
            }),
        };
        if !applies {
            continue;
        }
        for s in &b.settings {
            match s.key.as_str() {
                "hostname" => {
                    hostname.get_or_insert_with(|| s.value.clone());
                }
                "port" => {
                    port.get_or_insert_with(|| s.value.clone());
                }
                "user" => {
                    user.get_or_insert_with(|| s.value.clone());
                }
                "identityfile" if !identity_files.contains(&s.value) => {
                    identity_files.push(s.value.clone());
                }
                _ => {}
            }
        }
    }
    SshHostEntry {
        alias: alias.to_string(),
        hostname: hostname
            .map(|h| expand_host(&h, alias))
            .unwrap_or_else(|| alias.to_string()),
        port,
        user,
        identity_file: identity_files.first().cloned(),
        identity_files,
        line,
    }
}

/// HostName tokens: `%h` is the name given, `%%` a percent sign.
fn expand_host(value: &str, alias: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(alias),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// `SHA256:…` fingerprint of a base64 public key blob.
pub fn fingerprint_of_blob(b64: &str) -> Option<String> {
    let blob = B64.decode(b64.trim()).ok()?;
    Some(format!(
        "SHA256:{}",
        B64_NOPAD.encode(Sha256::digest(&blob))
    ))
}

/// Which names a known_hosts line is for.
#[derive(Debug, Clone)]
enum Names {
    /// Comma-separated patterns (wildcards, `!` negation).
    Patterns(Vec<String>),
    /// `|1|salt|hash`: HMAC-SHA1 of the name under the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

impl Names {
    fn parse(field: &str) -> Option<Names> {
        if let Some(rest) = field.strip_prefix("|1|") {
            let (salt, hash) = rest.split_once('|')?;
            return Some(Names::Hashed {
                salt: B64.decode(salt).ok()?,
                hash: B64.decode(hash).ok()?,
            });
        }
        Some(Names::Patterns(
            field.split(',').map(str::to_string).collect(),
        ))
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Names::Patterns(p) => pattern_list_match(name, p),
            Names::Hashed { salt, hash } => {
                let Ok(mut mac) = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
        }
    }
}

#[derive(Debug, Clone)]
struct KnownKey {
    names: Names,
    kind: String,
    fingerprint: String,
    line: usize,
}

#[derive(Debug, Default)]
pub struct KnownHosts {
    entries: Vec<KnownKey>,
    /// `@revoked` keys: never pinned for the names they cover.
    revoked: Vec<KnownKey>,
    pub notes: Vec<Note>,
}

fn key_rank(kind: &str) -> u8 {
    match kind {
        "ssh-ed25519" => 0,
        k if k.starts_with("ecdsa-") => 1,
        "rsa-sha2-512" | "rsa-sha2-256" | "ssh-rsa" => 2,
        _ => 3,
    }
}

pub fn parse_known_hosts(text: &str) -> KnownHosts {
    let mut out = KnownHosts::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut parts = t.split_whitespace().peekable();
        let marker = parts
            .peek()
            .filter(|p| p.starts_with('@'))
            .map(|p| p.to_string());
        if marker.is_some() {
            parts.next();
        }
        let (Some(hosts), Some(kind), Some(blob)) = (parts.next(), parts.next(), parts.next())
        else {
            out.notes.push(Note {
                line,
                what: "malformed known_hosts line skipped".into(),
            });
            continue;
        };
        let Some(names) = Names::parse(hosts) else {
            out.notes.push(Note {
                line,
                what: "hashed host name is not |1|salt|hash in base64; skipped".into(),
            });
            continue;
        };
        let Some(fingerprint) = fingerprint_of_blob(blob) else {
            out.notes.push(Note {
                line,
                what: "key is not base64; skipped".into(),
            });
            continue;
        };
        let key = KnownKey {
            names,
            kind: kind.to_string(),
            fingerprint,
            line,
        };
        match marker.as_deref() {
            None => out.entries.push(key),
            Some("@revoked") => out.revoked.push(key),
            Some("@cert-authority") => out.notes.push(Note {
                line,
                what: format!(
                    "@cert-authority {hosts}: a host CA ({kind} {}) is not imported (Gatehouse pins each host's own key; pin it at first connect)",
                    key.fingerprint
                ),
            }),
            Some(other) => out.notes.push(Note {
                line,
                what: format!("unknown marker {other}; line skipped"),
            }),
        }
    }
    out
}

/// What known_hosts says about one imported host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostKeyLookup {
    /// `TYPE SHA256:…` to pin (ed25519 > ecdsa > rsa), if any key is usable.
    pub pin: Option<String>,
    /// Keys found but not pinned, and why (`@revoked`).
    pub refused: Vec<String>,
}

impl KnownHosts {
    /// The key to pin for a host known as any of `names` on `port`
    /// (known_hosts writes `[name]:port` for ports other than 22), leaving out
    /// every key marked `@revoked` for that name.
    pub fn lookup(&self, names: &[&str], port: u16) -> HostKeyLookup {
        let forms: Vec<String> = names
            .iter()
            .map(|n| {
                if port == 22 {
                    n.to_string()
                } else {
                    format!("[{n}]:{port}")
                }
            })
            .collect();
        let covers = |k: &KnownKey| forms.iter().any(|f| k.names.matches(f));
        let revoked: Vec<&KnownKey> = self.revoked.iter().filter(|k| covers(k)).collect();
        let mut out = HostKeyLookup::default();
        let mut usable: Vec<&KnownKey> = Vec::new();
        for k in self.entries.iter().filter(|k| covers(k)) {
            if let Some(r) = revoked.iter().find(|r| r.fingerprint == k.fingerprint) {
                out.refused.push(format!(
                    "{} {} (known_hosts line {}) is marked @revoked on line {}: not pinned",
                    k.kind, k.fingerprint, k.line, r.line
                ));
            } else {
                usable.push(k);
            }
        }
        out.pin = usable
            .into_iter()
            .min_by_key(|k| key_rank(&k.kind))
            .map(|k| format!("{} {}", k.kind, k.fingerprint));
        out
    }

    /// [`Self::lookup`]'s pin only.
    pub fn fingerprint(&self, host: &str, port: u16) -> Option<String> {
        self.lookup(&[host], port).pin
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_openssh() {
        assert_eq!(words("a b # c d").unwrap(), vec!["a", "b"]);
        assert_eq!(words("\"x y\" z").unwrap(), vec!["x y", "z"]);
        assert_eq!(words("a#b").unwrap(), vec!["a#b"]);
        assert!(words("\"open").is_err());
    }

    #[test]
    fn host_blocks_first_value_wins_over_matching_blocks_in_order() {
        let c = parse_ssh_config(
            "# comment\nUser global\nHost core-sw1 core-sw2 # two switches\n  HostName=10.0.0.1\n  Port 2222\n  User admin\n  User ignored\n  IdentityFile \"~/.ssh/id ed\"\nHost *.lab\n  User labuser\n  Port 2200\nMatch host x\n  User y\nMatch exec true\n  User z\nHost web?\nHost edge r1.lab\n  Include other\nHost *\n  Port 22\n  IdentityFile ~/.ssh/id_all\n",
        );
        let names: Vec<&str> = c.hosts.iter().map(|h| h.alias.as_str()).collect();
        assert_eq!(names, ["core-sw1", "core-sw2", "edge", "r1.lab"]);
        assert_eq!(c.hosts[0].hostname, "10.0.0.1");
        assert_eq!(c.hosts[1].port.as_deref(), Some("2222"));
        // The global User comes first in the file: it wins.
        assert_eq!(c.hosts[1].user.as_deref(), Some("global"));
        assert_eq!(c.hosts[0].identity_file.as_deref(), Some("~/.ssh/id ed"));
        assert_eq!(c.hosts[0].identity_files.len(), 2);
        assert_eq!(c.hosts[2].hostname, "edge");
        assert_eq!(c.hosts[2].port.as_deref(), Some("22"));
        assert_eq!(c.hosts[3].port.as_deref(), Some("2200"));
        let notes: Vec<_> = c.notes.iter().map(|n| n.what.as_str()).collect();
        assert!(
            notes.iter().any(|n| n.starts_with("Match exec")),
            "{notes:?}"
        );
        assert!(notes.iter().any(|n| n.starts_with("Include")));
    }

    #[test]
    fn negation_and_percent_h() {
        let c = parse_ssh_config(
            "Host a b\nHost * !b\n  HostName %h.example.net\nHost *\n  HostName fallback\n",
        );
        assert_eq!(c.hosts[0].hostname, "a.example.net");
        assert_eq!(c.hosts[1].hostname, "fallback");
        assert_eq!(host_port("2001:db8::1", 2222), "[2001:db8::1]:2222");
        assert_eq!(host_port("r1", 22), "r1:22");
    }

    fn blob() -> String {
        B64.encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    }

    fn fp(b: &str) -> String {
        format!(
            "SHA256:{}",
            B64_NOPAD.encode(Sha256::digest(B64.decode(b).unwrap()))
        )
    }

    #[test]
    fn known_hosts_fingerprints_match_ssh_keygen() {
        let blob = blob();
        let want = fp(&blob);
        let k = parse_known_hosts(&format!(
            "10.0.0.1,core-sw1 ssh-rsa {blob}\n10.0.0.1 ssh-ed25519 {blob}\n[10.0.0.2]:2222 ssh-ed25519 {blob}\n@cert-authority *.lab ssh-ed25519 {blob}\n"
        ));
        assert_eq!(
            k.fingerprint("10.0.0.1", 22),
            Some(format!("ssh-ed25519 {want}"))
        );
        assert_eq!(
            k.fingerprint("core-sw1", 22),
            Some(format!("ssh-rsa {want}"))
        );
        assert_eq!(
            k.fingerprint("10.0.0.2", 2222),
            Some(format!("ssh-ed25519 {want}"))
        );
        assert_eq!(k.fingerprint("10.0.0.2", 22), None);
        assert_eq!(k.notes.len(), 1);
        assert!(k.notes[0].what.starts_with("@cert-authority"));
    }

    #[test]
    fn hashed_names_match_by_hmac_sha1_and_revoked_keys_are_not_pinned() {
        let blob = blob();
        let salt = [7u8; 20];
        let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt).unwrap();
        mac.update(b"[r1.lab]:2222");
        let hash = mac.finalize().into_bytes();
        let line = format!(
            "|1|{}|{} ssh-ed25519 {blob}\n",
            B64.encode(salt),
            B64.encode(hash)
        );
        let k = parse_known_hosts(&line);
        assert_eq!(
            k.fingerprint("r1.lab", 2222),
            Some(format!("ssh-ed25519 {}", fp(&blob)))
        );
        assert_eq!(k.fingerprint("r1.lab", 22), None);
        assert_eq!(k.fingerprint("r2.lab", 2222), None);
        let k = parse_known_hosts(&format!("{line}@revoked * ssh-ed25519 {blob}\n"));
        let l = k.lookup(&["r1.lab"], 2222);
        assert_eq!(l.pin, None);
        assert!(l.refused[0].contains("@revoked"), "{l:?}");
    }
}
