//! Reading an engineer's OpenSSH client config and known_hosts for
//! `gatehouse host import --ssh-config FILE [--known-hosts FILE]`.
//!
//! Owns: the subset of `ssh_config(5)` Gatehouse imports (Host blocks with
//! HostName, Port, User, IdentityFile; first value wins as in OpenSSH) and
//! host-key fingerprints from `known_hosts` (`SHA256:` + unpadded base64 of
//! the key blob's SHA-256, as `ssh-keygen -l` prints). Must never: follow
//! `Include`, evaluate `Match`, or read a file it was not given.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_NOPAD};
use sha2::{Digest, Sha256};

/// One importable `Host` alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHostEntry {
    pub alias: String,
    /// HostName, else the alias.
    pub hostname: String,
    /// Port as written (checked by the importer).
    pub port: Option<String>,
    pub user: Option<String>,
    pub identity_file: Option<String>,
    /// Line of its `Host` keyword.
    pub line: usize,
}

/// Something not imported, and why.
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

fn split_keyword(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    let end = line.find(|c: char| c.is_whitespace() || c == '=')?;
    let (k, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    Some((k.to_ascii_lowercase(), rest.to_string()))
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].to_string()
    } else {
        s.split_whitespace().next().unwrap_or("").to_string()
    }
}

fn patterns(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|p| p.trim_matches('"').to_string())
        .collect()
}

pub fn parse_ssh_config(text: &str) -> SshConfig {
    let mut out = SshConfig::default();
    // Indices into out.hosts of the current block's aliases; None outside Host blocks.
    let mut current: Option<Vec<usize>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some((key, value)) = split_keyword(t) else {
            continue;
        };
        match key.as_str() {
            "host" => {
                let mut idx = Vec::new();
                for p in patterns(&value) {
                    if p.contains(['*', '?', '!']) {
                        out.notes.push(Note {
                            line,
                            what: format!("Host {p}: wildcard pattern skipped (applies to many hosts; not a host)"),
                        });
                        continue;
                    }
                    idx.push(out.hosts.len());
                    out.hosts.push(SshHostEntry {
                        alias: p.clone(),
                        hostname: p,
                        port: None,
                        user: None,
                        identity_file: None,
                        line,
                    });
                }
                current = Some(idx);
            }
            "match" => {
                out.notes.push(Note {
                    line,
                    what: format!("Match {value}: conditional block skipped"),
                });
                current = None;
            }
            "include" => out.notes.push(Note {
                line,
                what: format!("Include {value}: not followed (import that file separately)"),
            }),
            "hostname" | "port" | "user" | "identityfile" => {
                let Some(idx) = &current else {
                    continue;
                };
                let v = unquote(&value);
                for &h in idx {
                    let e = &mut out.hosts[h];
                    let slot = match key.as_str() {
                        "hostname" => {
                            if e.hostname == e.alias && !v.is_empty() {
                                e.hostname = v.clone();
                            }
                            continue;
                        }
                        "port" => &mut e.port,
                        "user" => &mut e.user,
                        _ => &mut e.identity_file,
                    };
                    if slot.is_none() {
                        *slot = Some(v.clone());
                    }
                }
            }
            _ => {}
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

#[derive(Debug, Default)]
pub struct KnownHosts {
    /// (host patterns, key type, fingerprint)
    entries: Vec<(Vec<String>, String, String)>,
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
    let mut hashed = 0;
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with('@') {
            out.notes.push(Note {
                line: i + 1,
                what: "marker line (@cert-authority/@revoked) skipped".into(),
            });
            continue;
        }
        let mut parts = t.split_whitespace();
        let (Some(hosts), Some(kind), Some(blob)) = (parts.next(), parts.next(), parts.next())
        else {
            out.notes.push(Note {
                line: i + 1,
                what: "malformed known_hosts line skipped".into(),
            });
            continue;
        };
        if hosts.starts_with("|1|") {
            hashed += 1;
            continue;
        }
        match fingerprint_of_blob(blob) {
            Some(fp) => out.entries.push((
                hosts.split(',').map(str::to_string).collect(),
                kind.to_string(),
                fp,
            )),
            None => out.notes.push(Note {
                line: i + 1,
                what: "key is not base64; skipped".into(),
            }),
        }
    }
    if hashed > 0 {
        out.notes.push(Note {
            line: 0,
            what: format!(
                "{hashed} hashed known_hosts entr{} (HashKnownHosts) cannot be matched to names and were skipped",
                if hashed == 1 { "y" } else { "ies" }
            ),
        });
    }
    out
}

impl KnownHosts {
    /// The preferred key's `TYPE SHA256:…` for `host` on `port` (ed25519 > ecdsa > rsa).
    pub fn fingerprint(&self, host: &str, port: u16) -> Option<String> {
        let name = if port == 22 {
            host.to_string()
        } else {
            format!("[{host}]:{port}")
        };
        self.entries
            .iter()
            .filter(|(pats, _, _)| pats.iter().any(|p| p == &name))
            .min_by_key(|(_, k, _)| key_rank(k))
            .map(|(_, k, fp)| format!("{k} {fp}"))
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
    fn host_blocks_first_value_wins_and_wildcards_are_noted() {
        let c = parse_ssh_config(
            "# comment\nHost *\n  User nobody\nHost core-sw1 core-sw2\n  HostName=10.0.0.1\n  Port 2222\n  User admin\n  User ignored\n  IdentityFile \"~/.ssh/id ed\"\nMatch host x\n  User y\nHost web?\nHost edge\n  Include other\n",
        );
        assert_eq!(c.hosts.len(), 3);
        assert_eq!(c.hosts[0].alias, "core-sw1");
        assert_eq!(c.hosts[0].hostname, "10.0.0.1");
        assert_eq!(c.hosts[1].port.as_deref(), Some("2222"));
        assert_eq!(c.hosts[1].user.as_deref(), Some("admin"));
        assert_eq!(c.hosts[0].identity_file.as_deref(), Some("~/.ssh/id ed"));
        assert_eq!(c.hosts[2].alias, "edge");
        assert_eq!(c.hosts[2].hostname, "edge");
        assert_eq!(c.hosts[2].user, None);
        let notes: Vec<_> = c.notes.iter().map(|n| n.what.as_str()).collect();
        assert!(notes[0].starts_with("Host *: wildcard"), "{notes:?}");
        assert!(notes.iter().any(|n| n.starts_with("Match")));
        assert!(notes.iter().any(|n| n.starts_with("Host web?")));
        assert!(notes.iter().any(|n| n.starts_with("Include")));
    }

    #[test]
    fn known_hosts_fingerprints_match_ssh_keygen() {
        // ssh-keygen -lf prints SHA256:… of the decoded blob, unpadded base64.
        let blob = B64
            .encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        let want = format!(
            "SHA256:{}",
            B64_NOPAD.encode(Sha256::digest(B64.decode(&blob).unwrap()))
        );
        let k = parse_known_hosts(&format!(
            "10.0.0.1,core-sw1 ssh-rsa {blob}\n10.0.0.1 ssh-ed25519 {blob}\n[10.0.0.2]:2222 ssh-ed25519 {blob}\n|1|abc|def ssh-ed25519 {blob}\n@revoked * ssh-rsa {blob}\n"
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
        assert_eq!(k.notes.len(), 2);
    }
}
