//! Pattern layer: finds secret-shaped text without knowing values. A single
//! case-insensitive keyword prefilter over trigger keywords (no per-line
//! regexes); each trigger runs a small hand-written matcher at its position.
//! Owns what counts as a secret shape; must keep hostnames, IPs, interface
//! names, MACs, commit hashes and UUIDs readable unless they follow a secret
//! keyword, and must never mask less than [`MIN_MASK`] bytes.

use super::{Hit, Repl};
use std::sync::OnceLock;

/// Minimum masked value length (keeps the output bound honest).
pub const MIN_MASK: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum T {
    Pem,
    Aws,
    Gcp,
    Github,
    GithubPat,
    Gitlab,
    Slack,
    SlackHook,
    Stripe,
    SkKey,
    Jwt,
    Authorization,
    Bearer,
    UrlCreds,
    AzureKv,
    Crypt,
    /// `curl -u user:pass`, `--user user:pass`, `--proxy-user user:pass`
    UserColonPass,
    /// `sshpass -p X` / `-pX` / `SSHPASS=X`
    Sshpass,
    /// `mysql -pX` (glued only: `-p` alone prompts)
    MysqlP,
    /// HSRP `standby [group] authentication [text] X`
    Standby,
    /// `snmp-server host H [traps|informs] [vrf V] [version 1|2c] COMMUNITY`
    SnmpHost,
    /// keyword whose following value is always a secret in config syntax
    Strict(&'static str),
    /// keyword whose value must look high-entropy
    Loose(&'static str),
}

static TRIGGERS: &[(&str, T)] = &[
    ("-----BEGIN ", T::Pem),
    ("AKIA", T::Aws),
    ("ASIA", T::Aws),
    ("AIza", T::Gcp),
    ("ghp_", T::Github),
    ("gho_", T::Github),
    ("ghu_", T::Github),
    ("ghs_", T::Github),
    ("ghr_", T::Github),
    ("github_pat_", T::GithubPat),
    ("glpat-", T::Gitlab),
    ("xoxb-", T::Slack),
    ("xoxp-", T::Slack),
    ("xoxa-", T::Slack),
    ("xoxr-", T::Slack),
    ("xoxs-", T::Slack),
    ("xapp-", T::Slack),
    ("hooks.slack.com/services/", T::SlackHook),
    ("sk_live_", T::Stripe),
    ("sk_test_", T::Stripe),
    ("rk_live_", T::Stripe),
    ("rk_test_", T::Stripe),
    ("sk-", T::SkKey),
    ("eyJ", T::Jwt),
    ("authorization", T::Authorization),
    ("bearer ", T::Bearer),
    ("://", T::UrlCreds),
    ("accountkey=", T::AzureKv),
    ("sharedaccesskey=", T::AzureKv),
    ("sig=", T::AzureKv),
    ("$9$", T::Crypt),
    ("$8$", T::Crypt),
    ("$6$", T::Crypt),
    ("$5$", T::Crypt),
    ("$1$", T::Crypt),
    ("$2y$", T::Crypt),
    ("$2b$", T::Crypt),
    (" -u", T::UserColonPass),
    ("--user", T::UserColonPass),
    ("--proxy-user", T::UserColonPass),
    ("sshpass", T::Sshpass),
    ("mysql", T::MysqlP),
    ("mariadb", T::MysqlP),
    ("standby", T::Standby),
    ("snmp-server host", T::SnmpHost),
    ("mysql_pwd", T::Strict("password")),
    ("rediscli_auth", T::Strict("password")),
    ("authentication text", T::Strict("authentication-key")),
    ("password", T::Strict("password")),
    ("passwd", T::Strict("password")),
    ("secret", T::Strict("secret")),
    ("community", T::Strict("snmp-community")),
    ("key-string", T::Strict("key-string")),
    ("pre-shared-key", T::Strict("pre-shared-key")),
    ("preshared-key", T::Strict("pre-shared-key")),
    ("presharedkey", T::Strict("pre-shared-key")),
    ("authentication-key", T::Strict("authentication-key")),
    ("md5", T::Strict("md5-key")),
    ("wpa-psk", T::Strict("psk")),
    ("psk", T::Strict("psk")),
    ("private-key", T::Strict("private-key")),
    ("privatekey", T::Strict("private-key")),
    ("private_key", T::Strict("private-key")),
    ("key", T::Loose("key")),
    ("token", T::Loose("token")),
    ("apikey", T::Loose("api-key")),
    ("api_key", T::Loose("api-key")),
    ("api-key", T::Loose("api-key")),
    ("credential", T::Loose("credential")),
];

/// Key of 3 bytes with bit 0x20 set in each: equal for ASCII letters that
/// differ only in case (and for a few symbol pairs, which only costs a
/// comparison), so it is a superset filter for case-insensitive matches.
#[inline(always)]
fn key3(b0: u8, b1: u8, b2: u8) -> u32 {
    u32::from_le_bytes([b0, b1, b2, 0]) | 0x0020_2020
}

#[inline(always)]
fn bit3(key: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B1) >> 16) as usize // 16 bits
}

/// Trigger prefilter: a 2^16-bit filter of the triggers' 3-byte keys, the
/// triggers sorted by key, and an open-addressing table from a key to its
/// run in that order.
struct Prefilter {
    bits: Box<[u64; 1 << 10]>,
    by_key: Vec<(u32, usize)>,
    /// (key, first index in `by_key`, count); count 0 = empty slot
    slots: Box<[(u32, u8, u8); 256]>,
}

#[inline(always)]
fn slot3(key: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B1) >> 24) as usize // 8 bits
}

fn prefilter() -> &'static Prefilter {
    static P: OnceLock<Prefilter> = OnceLock::new();
    P.get_or_init(|| {
        let mut bits = Box::new([0u64; 1 << 10]);
        let mut by_key: Vec<(u32, usize)> = TRIGGERS
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let b = t.0.as_bytes();
                (key3(b[0], b[1], b[2]), i)
            })
            .collect();
        by_key.sort_unstable();
        for &(k, _) in &by_key {
            let h = bit3(k);
            bits[h >> 6] |= 1 << (h & 63);
        }
        let mut slots = Box::new([(0u32, 0u8, 0u8); 256]);
        let mut i = 0;
        while i < by_key.len() {
            let k = by_key[i].0;
            let n = by_key[i..].iter().take_while(|e| e.0 == k).count();
            let mut h = slot3(k);
            while slots[h].2 != 0 {
                h = (h + 1) & 255;
            }
            // fewer than 256 triggers: indexes and counts fit a byte
            slots[h] = (k, i as u8, n as u8);
            i += n;
        }
        Prefilter {
            bits,
            by_key,
            slots,
        }
    })
}

impl Prefilter {
    #[inline(always)]
    fn maybe(&self, key: u32) -> bool {
        let h = bit3(key);
        self.bits[h >> 6] & (1 << (h & 63)) != 0
    }

    /// Triggers occurring at `p` (whose key is `key`).
    #[inline(never)]
    fn at(&self, b: &[u8], p: usize, key: u32, out: &mut Vec<(usize, usize, usize)>) {
        let mut h = slot3(key);
        let (first, n) = loop {
            let (k, first, n) = self.slots[h];
            if n == 0 {
                return;
            }
            if k == key {
                break (usize::from(first), usize::from(n));
            }
            h = (h + 1) & 255;
        };
        for &(_, t) in &self.by_key[first..first + n] {
            let pat = TRIGGERS[t].0.as_bytes();
            if b.len() - p >= pat.len() && b[p..p + pat.len()].eq_ignore_ascii_case(pat) {
                out.push((p, p + pat.len(), t));
            }
        }
    }
}

/// Every case-insensitive occurrence of every trigger as (start, end,
/// trigger index), ordered by end, then start (the order of an overlapping
/// Aho-Corasick search). All triggers are at least 3 bytes long.
fn trigger_matches(b: &[u8]) -> Vec<(usize, usize, usize)> {
    let pf = prefilter();
    let mut out = Vec::new();
    for (p, w) in b.windows(4).enumerate() {
        let w = w.first_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w));
        let key = w & 0x00FF_FFFF | 0x0020_2020;
        if pf.maybe(key) {
            pf.at(b, p, key, &mut out);
        }
    }
    if b.len() >= 3 {
        let p = b.len() - 3;
        let key = key3(b[p], b[p + 1], b[p + 2]);
        if pf.maybe(key) {
            pf.at(b, p, key, &mut out);
        }
    }
    out.sort_unstable_by_key(|m| (m.1, m.0));
    out
}

fn word(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn tokc(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Find all pattern hits (input coordinates, may overlap; `apply` resolves).
pub(crate) fn find(text: &str) -> Vec<Hit<'static>> {
    let b = text.as_bytes();
    let mut hits: Vec<Hit> = Vec::new();
    let mut covered_to = 0usize;
    for (ms, me, t) in trigger_matches(b) {
        let (_, kind) = TRIGGERS[t];
        if ms < covered_to && kind != T::Pem {
            continue;
        }
        if let Some((s, e, label, id)) = matcher(text, b, ms, me, kind)
            && e > s
            && e - s >= MIN_MASK
            && text.is_char_boundary(s)
            && text.is_char_boundary(e)
        {
            covered_to = covered_to.max(e);
            hits.push(Hit {
                start: s,
                end: e,
                rule_id: id,
                label,
                repl: Repl::Mask(label),
            });
        }
    }
    hits
}

fn run(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(b[i]) {
        i += 1;
    }
    i
}

fn line_end(b: &[u8], i: usize) -> usize {
    memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |x| i + x)
}

type M = Option<(usize, usize, &'static str, &'static str)>;

fn matcher(text: &str, b: &[u8], s: usize, e: usize, kind: T) -> M {
    let prev_word = s > 0 && word(b[s - 1]);
    match kind {
        T::Pem => {
            let le = line_end(b, e);
            let header = &text[e..le];
            if !header.contains("PRIVATE KEY") {
                return None;
            }
            let body = header.find("-----").map_or(le, |x| e + x + 5);
            let end = text[body..].find("-----END").map_or(b.len(), |x| body + x);
            Some((body, end, "private-key", "pattern.private-key"))
        }
        T::Aws => {
            let end = run(b, e, |c| c.is_ascii_uppercase() || c.is_ascii_digit());
            (!prev_word && end - e >= 16 && (end == b.len() || !word(b[end]))).then_some((
                s,
                end,
                "aws-access-key",
                "pattern.aws-access-key",
            ))
        }
        T::Gcp => {
            let end = run(b, e, tokc);
            (!prev_word && end - e >= 30).then_some((s, end, "gcp-api-key", "pattern.gcp-api-key"))
        }
        T::Github => {
            let end = run(b, e, |c| c.is_ascii_alphanumeric());
            (!prev_word && end - e >= 30).then_some((
                s,
                end,
                "github-token",
                "pattern.github-token",
            ))
        }
        T::GithubPat => {
            let end = run(b, e, |c| c.is_ascii_alphanumeric() || c == b'_');
            (end - e >= 22).then_some((s, end, "github-token", "pattern.github-token"))
        }
        T::Gitlab => {
            let end = run(b, e, tokc);
            (!prev_word && end - e >= 20).then_some((
                s,
                end,
                "gitlab-token",
                "pattern.gitlab-token",
            ))
        }
        T::Slack => {
            let end = run(b, e, |c| c.is_ascii_alphanumeric() || c == b'-');
            (!prev_word && end - e >= 10).then_some((s, end, "slack-token", "pattern.slack-token"))
        }
        T::SlackHook => {
            let end = run(b, e, |c| c.is_ascii_alphanumeric() || c == b'/');
            (end - e >= 10).then_some((e, end, "slack-webhook", "pattern.slack-webhook"))
        }
        T::Stripe => {
            let end = run(b, e, |c| c.is_ascii_alphanumeric());
            (!prev_word && end - e >= 16).then_some((s, end, "stripe-key", "pattern.stripe-key"))
        }
        T::SkKey => {
            let end = run(b, e, tokc);
            let v = &b[e..end];
            let ok = !prev_word
                && v.len() >= 20
                && v.iter().any(u8::is_ascii_digit)
                && v.iter().any(u8::is_ascii_alphabetic);
            ok.then_some((s, end, "api-key", "pattern.sk-api-key"))
        }
        T::Jwt => {
            if prev_word {
                return None;
            }
            let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
            let p1 = run(b, e, b64);
            if p1 - s < 10 || b.get(p1) != Some(&b'.') {
                return None;
            }
            let p2 = run(b, p1 + 1, b64);
            if p2 - p1 < 10 || b.get(p2) != Some(&b'.') {
                return None;
            }
            let p3 = run(b, p2 + 1, b64);
            Some((s, p3, "jwt", "pattern.jwt"))
        }
        T::Authorization => {
            // Authorization: Bearer xyz / "Authorization": "Basic xyz"
            let mut i = run(b, e, |c| c == b'"' || c == b'\'' || c == b' ' || c == b'\t');
            if i >= b.len() || (b[i] != b':' && b[i] != b'=') {
                return None;
            }
            i = run(b, i + 1, |c| {
                c == b' ' || c == b'\t' || c == b'"' || c == b'\''
            });
            let le = line_end(b, i);
            let scheme_end = run(b, i, |c| c.is_ascii_alphabetic());
            let known = matches!(
                text[i..scheme_end].to_ascii_lowercase().as_str(),
                "bearer"
                    | "basic"
                    | "token"
                    | "digest"
                    | "negotiate"
                    | "apikey"
                    | "bot"
                    | "sso-key"
            );
            let vs = if known {
                run(b, scheme_end, |c| c == b' ')
            } else {
                i
            };
            let ve = run(b, vs, |c| {
                !c.is_ascii_whitespace() && c != b'"' && c != b'\'' && c != b','
            })
            .min(le);
            Some((vs, ve, "authorization", "pattern.authorization-header"))
        }
        T::Bearer => {
            let end = run(b, e, |c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, b'.' | b'_' | b'-' | b'~' | b'+' | b'/' | b'=')
            });
            (!prev_word && end - e >= 16).then_some((
                e,
                end,
                "bearer-token",
                "pattern.bearer-token",
            ))
        }
        T::UrlCreds => {
            // scheme://user:pass@host
            let host_end = run(b, e, |c| {
                !c.is_ascii_whitespace() && !matches!(c, b'/' | b'"' | b'\'' | b'<' | b'>')
            });
            let seg = &b[e..host_end];
            let at = seg.iter().rposition(|&c| c == b'@')?;
            let colon = seg[..at].iter().position(|&c| c == b':')?;
            (at > colon + 1).then_some((
                e + colon + 1,
                e + at,
                "url-password",
                "pattern.url-credentials",
            ))
        }
        T::AzureKv => {
            if text[s..e].eq_ignore_ascii_case("sig=")
                && (s == 0 || !matches!(b[s - 1], b'&' | b'?'))
            {
                return None;
            }
            let end = run(b, e, |c| {
                !c.is_ascii_whitespace() && !matches!(c, b';' | b'&' | b'"' | b'\'')
            });
            (end - e >= 16).then_some((e, end, "azure-key", "pattern.azure-key"))
        }
        T::Crypt => {
            if prev_word && b[s - 1] != b'"' {
                return None;
            }
            let end = run(b, s, |c| {
                !c.is_ascii_whitespace() && !matches!(c, b'"' | b'\'' | b';' | b',')
            });
            (end - s >= 8).then_some((s, end, "password-hash", "pattern.crypt-hash"))
        }
        T::UserColonPass => user_colon_pass(text, b, s, e),
        T::Sshpass => {
            if b.get(e) == Some(&b'=') {
                // SSHPASS=value (environment)
                if prev_word {
                    return None;
                }
                let (vs, ve) = value_at(b, e + 1, Ctx::Flag);
                return Some((vs, ve, "password", "pattern.password"));
            }
            short_p_option(text, b, e, true)
        }
        T::MysqlP => short_p_option(text, b, e, false),
        T::Standby => standby_auth(text, b, s, e),
        T::SnmpHost => snmp_host(text, b, e),
        T::Strict(label) | T::Loose(label) => keyword(text, b, s, e, kind, label),
    }
}

/// The command around `i`: from the previous line start or shell separator
/// to the next one.
fn command_end(b: &[u8], i: usize) -> usize {
    run(b, i, |c| !matches!(c, b'\n' | b';' | b'|' | b'&'))
}

/// `curl -u user:pass` (only after `curl` on the line), `--user user:pass`,
/// `--proxy-user user:pass`, also `=`/glued/quoted: masks the password
/// after the first colon.
fn user_colon_pass(text: &str, b: &[u8], s: usize, e: usize) -> M {
    let short = text[s..e].eq_ignore_ascii_case(" -u");
    if short {
        if b[s + 2] != b'u' {
            return None;
        }
        let ls = text[..s].rfind('\n').map_or(0, |x| x + 1);
        if !text[ls..s].split_whitespace().any(|w| w.ends_with("curl")) {
            return None;
        }
    } else if s > 0 && !matches!(b[s - 1], b' ' | b'\t' | b'"' | b'\'') {
        return None;
    }
    let mut i = e;
    if !short && i < b.len() && word(b[i]) {
        return None; // --username, --users
    }
    if i < b.len() && b[i] == b'=' {
        i += 1;
    } else if !short || b.get(i).is_some_and(|c| *c == b' ' || *c == b'\t') {
        i = run(b, i, |c| c == b' ' || c == b'\t');
    }
    let (vs, ve) = value_at(b, i, Ctx::Flag);
    let colon = b[vs..ve].iter().position(|&c| c == b':')?;
    let ps = vs + colon + 1;
    (ve > ps).then_some((ps, ve, "password", "pattern.password"))
}

/// `-pVALUE` (and, when `spaced`, `-p VALUE`) among the options of the
/// command a tool word starts (`sshpass`, `mysql`).
fn short_p_option(text: &str, b: &[u8], e: usize, spaced: bool) -> M {
    let _ = text;
    let end = command_end(b, e);
    let mut i = e;
    while i < end {
        i = run(b, i, |c| c == b' ' || c == b'\t');
        if i >= end {
            break;
        }
        if b[i] == b'-' && b.get(i + 1) == Some(&b'p') {
            let glued = i + 2 < end && !b[i + 2].is_ascii_whitespace();
            let v = if glued {
                i + 2
            } else if spaced {
                run(b, i + 2, |c| c == b' ' || c == b'\t')
            } else {
                return None; // `-p` alone prompts
            };
            let (vs, ve) = value_at(b, v, Ctx::Flag);
            return (ve > vs).then_some((vs, ve, "password", "pattern.password"));
        }
        // skip this word (quotes kept together)
        let (_, we) = value_at(b, i, Ctx::Config);
        i = we.max(i + 1);
        if i < b.len() && matches!(b[i], b'"' | b'\'') {
            i += 1;
        }
    }
    None
}

/// HSRP plain-text authentication: `standby [group] authentication [text]
/// VALUE` as the line's first word (`… md5 key-string` is the key-string rule).
fn standby_auth(text: &str, b: &[u8], s: usize, e: usize) -> M {
    let ls = text[..s].rfind('\n').map_or(0, |x| x + 1);
    if !text[ls..s].trim().is_empty() || b.get(e).is_some_and(|c| !c.is_ascii_whitespace()) {
        return None;
    }
    let le = line_end(b, e);
    // the words of the rest of the line, as byte ranges
    let mut words = Vec::new();
    let mut i = e;
    while i < le {
        let ws = run(b, i, |c| c == b' ' || c == b'\t');
        let we = run(b, ws, |c| !c.is_ascii_whitespace()).min(le);
        if we == ws {
            break;
        }
        words.push((ws, we));
        i = we;
    }
    let w = |n: usize| words.get(n).map(|&(a, z)| &text[a..z]);
    let mut n = usize::from(w(0)?.bytes().all(|c| c.is_ascii_digit()));
    if !w(n)?.eq_ignore_ascii_case("authentication") {
        return None;
    }
    n += 1;
    if w(n)?.eq_ignore_ascii_case("text") {
        n += 1;
    }
    let t = w(n)?;
    if t.eq_ignore_ascii_case("md5") {
        return None;
    }
    if t.len() == 1 && t.as_bytes()[0].is_ascii_digit() && words.len() > n + 1 {
        n += 1; // encryption type
    }
    let (vs, ve) = value_at(b, words[n].0, Ctx::Config);
    (ve > vs).then_some((vs, ve.min(le), "hsrp-auth", "pattern.hsrp-authentication"))
}

/// The community of `snmp-server host H [informs|traps] [vrf V]
/// [version 1|2c] COMMUNITY …` (a version 3 host names a user, not a secret).
fn snmp_host(text: &str, b: &[u8], e: usize) -> M {
    let le = line_end(b, e);
    let mut i = e;
    let next = |i: &mut usize| -> Option<(usize, usize)> {
        let ws = run(b, *i, |c| c == b' ' || c == b'\t');
        let we = run(b, ws, |c| !c.is_ascii_whitespace()).min(le);
        *i = we;
        (we > ws).then_some((ws, we))
    };
    next(&mut i)?; // the host
    loop {
        let (ws, we) = next(&mut i)?;
        let w = text[ws..we].to_ascii_lowercase();
        match w.as_str() {
            "informs" | "traps" => {}
            "vrf" => {
                next(&mut i)?;
            }
            "version" => {
                let (vs, ve) = next(&mut i)?;
                if &text[vs..ve] == "3" {
                    return None;
                }
            }
            "use-vrf" | "udp-port" | "filter-vrf" | "source-interface" | "source" => return None,
            _ => {
                let (vs, ve) = value_at(b, ws, Ctx::Config);
                return (ve > vs).then_some((
                    vs,
                    ve.min(le),
                    "snmp-community",
                    "pattern.snmp-community",
                ));
            }
        }
    }
}

const STOP: &[&str] = &[
    "is",
    "was",
    "for",
    "of",
    "to",
    "and",
    "or",
    "the",
    "a",
    "an",
    "in",
    "on",
    "with",
    "policy",
    "reset",
    "change",
    "changed",
    "expired",
    "manager",
    "prompt",
    "required",
    "string",
    "strings",
    "file",
    "field",
    "please",
    "again",
    "must",
    "should",
    "will",
    "be",
    "has",
    "have",
    "not",
    "if",
    "when",
    "that",
    "this",
    "it",
    "as",
    "by",
    "from",
    "length",
    "encryption",
    "recovery",
    "set",
    "list",
    "used",
    "use",
    "here",
    "there",
    "are",
    "chain",
    "server",
    "type",
    "exchange",
    "id",
    "name",
    "value",
    "see",
    "below",
    "above",
    "authentication",
    "auth",
    "level",
    "level-1",
    "level-2",
    "generate",
    "zeroize",
    "mode",
    "new",
    "old",
    "format",
    "hash",
    "local",
    "none",
    "ascii",
    "hex",
    "rotation",
    "rotate",
    "management",
    "missing",
    "store",
    "vault",
    "keychain",
    "you",
    "your",
    "we",
    "our",
    "their",
    "my",
    "me",
    "can",
    "could",
    "would",
    "do",
    "does",
    "did",
    "but",
    "so",
    "then",
    "at",
];

/// Values that are references or placeholders, not secrets.
fn placeholder(v: &str) -> bool {
    v.starts_with("{{")
        || v.starts_with("••••")
        || (v.starts_with('<') && v.ends_with('>'))
        || v.starts_with("${")
        || v.starts_with("$(")
        || v.starts_with("***")
        || (v.len() > 1 && v.starts_with('%') && v.ends_with('%'))
        || v.eq_ignore_ascii_case("redacted")
        || v.starts_with("[redacted")
        || v.starts_with("keychain:")
}

fn high_entropy(v: &[u8]) -> bool {
    if v.len() < 12 {
        return false;
    }
    let classes = [
        v.iter().any(u8::is_ascii_lowercase),
        v.iter().any(u8::is_ascii_uppercase),
        v.iter().any(u8::is_ascii_digit),
        v.iter().any(|c| !c.is_ascii_alphanumeric()),
    ];
    let n = classes.iter().filter(|x| **x).count();
    let mut distinct = [false; 256];
    for &c in v {
        distinct[c as usize] = true;
    }
    let d = distinct.iter().filter(|x| **x).count();
    n >= 2 && d >= 8 && v.iter().any(u8::is_ascii_digit)
}

fn secretish(v: &[u8]) -> bool {
    if v.len() < 4 {
        return false;
    }
    let s = std::str::from_utf8(v).unwrap_or("");
    if STOP.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        return false;
    }
    let lower = v.iter().all(|c| c.is_ascii_lowercase() || *c == b'-');
    // plain lower-case words in prose are not secrets; anything with digits,
    // capitals or symbols is treated as one after a secret keyword
    !lower || v.len() >= 12
}

/// Where a keyword's value sits, which decides where an unquoted value ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    /// Prose, `key=value` lists, JSON: ends at whitespace or `"',;})]&`.
    Prose,
    /// A device configuration line (`key 3Xx9!`): ends at whitespace only,
    /// so punctuation at the end of a value is part of it.
    Config,
    /// A command-line option (`--token X`, `--password=X`, `-pX`): ends at
    /// whitespace or a shell operator (`;|&<>()` and backtick).
    Flag,
}

/// Read a value at `i`: quoted → inside the quotes (a backslash escapes
/// only inside double quotes, as in a shell); else to the end `ctx` gives.
fn value_at(b: &[u8], i: usize, ctx: Ctx) -> (usize, usize) {
    // a device CLI takes a single quote literally
    if i < b.len() && (b[i] == b'"' || (b[i] == b'\'' && ctx != Ctx::Config)) {
        let q = b[i];
        let mut j = i + 1;
        while j < b.len() && b[j] != q && b[j] != b'\n' {
            if b[j] == b'\\' && q == b'"' {
                j += 1;
            }
            j += 1;
        }
        (i + 1, j.min(b.len()))
    } else {
        let end = match ctx {
            Ctx::Config => run(b, i, |c| !c.is_ascii_whitespace()),
            Ctx::Flag => run(b, i, |c| {
                !c.is_ascii_whitespace()
                    && !matches!(c, b';' | b'|' | b'&' | b'<' | b'>' | b'`' | b'(' | b')')
            }),
            Ctx::Prose => run(b, i, |c| {
                !c.is_ascii_whitespace()
                    && !matches!(c, b'"' | b'\'' | b',' | b';' | b'}' | b')' | b']' | b'&')
            }),
        };
        (i, end)
    }
}

/// First words of device configuration lines whose secret keywords take
/// any value (not only secret-looking ones) and whose values end at
/// whitespace.
const CONFIG_HEADS: &[&str] = &[
    "username",
    "enable",
    "neighbor",
    "radius-server",
    "tacacs-server",
    "snmp-server",
    "ntp",
    "ip",
    "ipv6",
    "isis",
    "area-password",
    "domain-password",
    "standby",
    "vrrp",
    "key",
    "key-string",
    "set",
    "crypto",
    "password",
    "secret",
    "radius",
    "tacacs",
    "server",
    "authentication",
    "authentication-key",
    "pre-shared-key",
    "wpa-psk",
    "md5",
];

/// The first word of the line holding `s`, and whether the line is
/// indented (a block of a device configuration).
fn line_head(text: &str, s: usize) -> (&str, bool) {
    let ls = text[..s].rfind('\n').map_or(0, |x| x + 1);
    let line = &text[ls..];
    let indented = line.starts_with([' ', '\t']);
    (line.split_whitespace().next().unwrap_or(""), indented)
}

/// True when the keyword at `s` is part of a command-line option word
/// (`--password`, `--client-secret`, `-token`) that starts a word.
fn option_word(b: &[u8], s: usize) -> bool {
    let mut ws = s;
    while ws > 0 && (b[ws - 1].is_ascii_alphanumeric() || matches!(b[ws - 1], b'-' | b'_')) {
        ws -= 1;
    }
    ws < s && b[ws] == b'-' && (ws == 0 || matches!(b[ws - 1], b' ' | b'\t' | b'"' | b'\''))
}

/// A word that reads as another option (`--verbose`, `-v`), not a value.
fn looks_like_option(v: &[u8]) -> bool {
    v.first() == Some(&b'-')
        && v.iter()
            .all(|c| c.is_ascii_lowercase() || matches!(c, b'-' | b'_'))
}

/// A MySQL/MariaDB client on the line: its `--password` without `=`
/// prompts, so the next word is not a value.
fn mysql_line(text: &str, s: usize) -> bool {
    let ls = text[..s].rfind('\n').map_or(0, |x| x + 1);
    text[ls..s].split_whitespace().any(|w| {
        let w = w.rsplit('/').next().unwrap_or(w);
        w.starts_with("mysql") || w.starts_with("mariadb")
    })
}

fn is_stop(v: &[u8]) -> bool {
    let s = std::str::from_utf8(v).unwrap_or("");
    STOP.iter().any(|w| s.eq_ignore_ascii_case(w))
}

fn keyword(text: &str, b: &[u8], s: usize, e: usize, kind: T, label: &'static str) -> M {
    // word boundaries: before may be start, non-alnum, '-', '_' (encrypted-password, api_key)
    let mut env_var = false;
    if s > 0 && b[s - 1].is_ascii_alphanumeric() {
        // allow camel case like "PrivateKey", "apiKey", "AccountKey" only for key/token
        let camel =
            matches!(kind, T::Loose(_) | T::Strict("private-key")) && b[s].is_ascii_uppercase();
        // an upper-case environment variable: PGPASSWORD=, MYSECRET=
        env_var = b[s - 1].is_ascii_uppercase()
            && b[s..e].iter().all(|c| !c.is_ascii_lowercase())
            && b.get(e) == Some(&b'=');
        if !camel && !env_var {
            return None;
        }
    }
    let flag = option_word(b, s);
    // what follows the keyword
    let mut i = e;
    // swallow the rest of a compound identifier: password_hash, secret-key, key-id …
    let ident_end = run(b, i, |c| {
        c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
    });
    if ident_end > i {
        let rest = text[i..ident_end].to_ascii_lowercase();
        let ok_suffix = matches!(
            rest.as_str(),
            "s" | "_key"
                | "-key"
                | "key"
                | "_access_key"
                | "-string"
                | "_secret"
                | "-secret"
                | "="
                | "-ascii"
                | "-hex"
                | "_token"
                | "-token"
                | "id"
                | "_id"
        ) || rest.starts_with("_key")
            || rest.starts_with("-key");
        if !ok_suffix || rest == "id" || rest == "_id" {
            // e.g. password-encryption, keyboard, tokenizer, key-id
            return None;
        }
        i = ident_end;
    }
    let le = line_end(b, i);
    // separators: `key=v`, `key: v`, `"key": v`, `key = v`; in an option
    // only a glued `=` (`--token=v`); a `=` or `:` glued to what follows
    // after a blank is the value's first character (`key =3c0+x`)
    let j = run(b, i, |c| c == b'"' || c == b'\'');
    let k = run(b, j, |c| c == b' ' || c == b'\t');
    let sep = if flag {
        i < le && b[i] == b'='
    } else {
        k < le
            && (b[k] == b'=' || b[k] == b':')
            && (k == i || k == j || b.get(k + 1).is_none_or(|c| c.is_ascii_whitespace()))
    };
    let mut v = if sep {
        run(b, k + 1, |c| c == b' ' || c == b'\t')
    } else {
        k
    };
    if v >= le {
        return None;
    }
    if !sep && k == i {
        return None; // keyword glued to something else
    }
    if flag {
        // `--token X`, `--password=X`, quoted or not
        if !sep && (mysql_line(text, s) || j > i) {
            return None;
        }
        let (vs, ve) = value_at(b, v, Ctx::Flag);
        let ve = ve.min(le);
        let val = &b[vs..ve];
        if ve <= vs || placeholder(&text[vs..ve]) || (!sep && looks_like_option(val)) {
            return None;
        }
        return (val.len() >= MIN_MASK).then_some((vs, ve, label, rule_id(label)));
    }
    let (head, indented) = line_head(text, s);
    let config = !sep && (indented || CONFIG_HEADS.iter().any(|h| head.eq_ignore_ascii_case(h)));
    // optional sub-words: type digits, ascii/hex/md5 …, "is"/"was"
    let mut typed = false;
    let mut skipped = 0;
    loop {
        let (ws, we) = (v, run(b, v, |c| !c.is_ascii_whitespace()));
        if we >= le || skipped >= 3 {
            break;
        }
        let w = &text[ws..we];
        let lw = w.to_ascii_lowercase();
        let is_type = w.len() == 1 && w.as_bytes()[0].is_ascii_digit();
        // a key number (`authentication-key 10 md5 X`) before another word
        let is_num = w.bytes().all(|c| c.is_ascii_digit())
            && w.len() <= 10
            && matches!(label, "md5-key" | "authentication-key")
            && run(b, we, |c| c == b' ' || c == b'\t') < le;
        if is_type
            || is_num
            || matches!(
                lw.as_str(),
                "ascii"
                    | "hex"
                    | "ascii-text"
                    | "encrypted"
                    | "plaintext"
                    | "unencrypted"
                    | "md5"
                    | "sha"
                    | "sha256"
                    | "is"
                    | "was"
                    | "="
                    | "0"
                    | "cleartext"
            )
        {
            typed |= is_type || lw == "ascii-text" || lw == "encrypted" || lw == "md5";
            v = run(b, we, |c| c == b' ' || c == b'\t');
            skipped += 1;
            continue;
        }
        break;
    }
    let (vs, ve) = value_at(b, v, if config { Ctx::Config } else { Ctx::Prose });
    let ve = ve.min(le);
    if ve <= vs {
        return None;
    }
    let val = &b[vs..ve];
    let vstr = &text[vs..ve];
    if placeholder(vstr) {
        return None;
    }
    let line_start = text[..s].rfind('\n').map_or(0, |x| x + 1);
    let before = text[line_start..s].trim().to_ascii_lowercase();
    let accept = match kind {
        T::Strict("md5-key") => {
            // `md5 X` is a key after `…-key N` (NTP, OSPF), typed or assigned
            typed || sep || (config && before.contains("key") && !is_stop(val))
        }
        T::Strict(_) => {
            typed || (sep && !val.is_empty()) || secretish(val) || (config && !is_stop(val))
        }
        T::Loose(_) => {
            // `key 7 …`, `tacacs-server key …`, `radius-server host H key …`,
            // `key …` alone in a server block, Junos `md5 N key …`,
            // `key = <high entropy>`
            let server_key = label == "key"
                && (before.is_empty()
                    || matches!(
                        head.to_ascii_lowercase().as_str(),
                        "radius-server" | "tacacs-server" | "radius" | "tacacs"
                    )
                    || before.ends_with("isakmp")
                    || before.ends_with("server-private")
                    || md5_numbered(&before));
            typed
                || (server_key && config && !is_stop(val))
                || (server_key && secretish(val))
                || (sep && high_entropy(val))
                || (sep && val.len() >= 8 && secretish(val) && label != "key")
        }
        _ => false,
    };
    let _ = env_var;
    if !accept || val.len() < MIN_MASK {
        return None;
    }
    Some((vs, ve, label, rule_id(label)))
}

/// `… md5 N` at the end of the text before a Junos `key`.
fn md5_numbered(before: &str) -> bool {
    let mut w = before.split_whitespace().rev();
    matches!((w.next(), w.next()), (Some(n), Some("md5")) if n.bytes().all(|c| c.is_ascii_digit()))
}

fn rule_id(label: &str) -> &'static str {
    match label {
        "password" => "pattern.password",
        "secret" => "pattern.secret",
        "snmp-community" => "pattern.snmp-community",
        "key-string" => "pattern.key-string",
        "pre-shared-key" => "pattern.pre-shared-key",
        "authentication-key" => "pattern.authentication-key",
        "md5-key" => "pattern.md5-key",
        "psk" => "pattern.psk",
        "private-key" => "pattern.private-key-value",
        "key" => "pattern.key",
        "token" => "pattern.token",
        "api-key" => "pattern.api-key",
        _ => "pattern.credential",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_support::{Rng, redaction_corpus};
    use aho_corasick::{AhoCorasickBuilder, MatchKind};

    /// The prefilter scan reports the same trigger occurrences, in the same
    /// order, as an overlapping case-insensitive Aho-Corasick search.
    #[test]
    fn trigger_scan_matches_reference_automaton() {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(TRIGGERS.iter().map(|t| t.0))
            .unwrap();
        let mut texts: Vec<String> = include_str!("../../corpus/redact.jsonl")
            .lines()
            .map(String::from)
            .collect();
        texts.extend(redaction_corpus(2, 8, 20).files.into_iter().map(|f| f.1));
        let mut rng = Rng::new(9);
        for _ in 0..300 {
            let mut t = String::new();
            while t.len() < 400 {
                let r = rng.next_u64();
                let trig = TRIGGERS[(r >> 8) as usize % TRIGGERS.len()].0;
                match r % 5 {
                    0 => t.push_str(trig),
                    1 => t.push_str(&trig.to_ascii_uppercase()),
                    2 => t.push_str(&trig[..trig.len() / 2 + 1]),
                    3 => t.push_str(&rng.alnum((r >> 16) as usize % 4)),
                    _ => t.push_str(
                        [" ", "-", "_", "=", "\n", "€", "\\", "@", "`"][(r >> 16) as usize % 9],
                    ),
                }
            }
            texts.push(t);
        }
        for t in &texts {
            let b = t.as_bytes();
            let want: Vec<_> = ac
                .find_overlapping_iter(b)
                .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
                .collect();
            assert_eq!(trigger_matches(b), want, "{t:?}");
        }
    }
}
