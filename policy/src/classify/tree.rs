//! Keyword-tree engine for IOS, IOS-XE, NX-OS, EOS and Junos. Owns
//! abbreviation resolution (unique prefix like the device; ambiguous prefixes
//! take their most dangerous expansion and are never read-only), CLI modes
//! (exec ↔ configuration), `do`/`run` escapes, embedded payloads and pipe
//! filters. Must never treat an unresolved token as a known command.

use super::{Acc, classify_into, ping_class};
use crate::rules::{Effect, Mode, PipeKind, Rule, Table};
use crate::text::{
    CiIndex, CiMatch, split_compound, split_outside_quotes, starts_with_ci, tokens, unquote,
};
use crate::vendor::Vendor;
use crate::verdict::Class;
use std::borrow::Cow;
use std::sync::OnceLock;

#[derive(Default)]
struct Node {
    key: &'static str,
    rule: Option<&'static Rule>,
    /// In rule-table order (the order ambiguous expansions are listed in).
    children: Vec<Node>,
    /// The children's keys but `*`, for exact and unique-prefix lookups.
    keys: CiIndex,
    /// Index of the `*` child.
    star: Option<usize>,
}

impl Node {
    fn insert(&mut self, words: &[&'static str], rule: &'static Rule) {
        match words.split_first() {
            None => self.rule = Some(rule),
            Some((w, rest)) => {
                let idx = match self.children.iter().position(|c| c.key == *w) {
                    Some(i) => i,
                    None => {
                        self.children.push(Node {
                            key: w,
                            ..Node::default()
                        });
                        self.children.len() - 1
                    }
                };
                self.children[idx].insert(rest, rule);
            }
        }
    }
}

impl Node {
    /// Build the lookup indexes of this node and every node below it.
    fn index(&mut self) {
        self.keys = CiIndex::new(
            self.children
                .iter()
                .enumerate()
                .filter(|(_, c)| c.key != "*")
                .map(|(i, c)| (i, c.key)),
        );
        self.star = self.children.iter().position(|c| c.key == "*");
        for c in &mut self.children {
            c.index();
        }
    }

    /// The child a token selects: `Ok(Some)` for an exact (case-insensitive)
    /// key or a unique prefix, or the `*` child when no key starts with the
    /// token; `Err(())` when several keys start with it, or the token is
    /// longer than the lookup buffer (the caller's scan in table order
    /// decides).
    fn select(&self, t: &str) -> Result<Option<&Node>, ()> {
        match self.keys.lookup(t) {
            CiMatch::Exact(i) | CiMatch::Unique(i) => Ok(Some(&self.children[i])),
            CiMatch::None => Ok(self.star.map(|i| &self.children[i])),
            CiMatch::Many => Err(()),
        }
    }
}

struct Tree {
    exec: Node,
    config: Node,
}

fn build(table: &'static Table) -> Tree {
    let mut t = Tree {
        exec: Node::default(),
        config: Node::default(),
    };
    for list in table.rules {
        for rule in list.iter() {
            let words: Vec<&'static str> = rule.path.split_whitespace().collect();
            match rule.mode {
                Mode::Exec => t.exec.insert(&words, rule),
                Mode::Config => t.config.insert(&words, rule),
            }
        }
    }
    t.exec.index();
    t.config.index();
    t
}

fn tree_for(table: &'static Table) -> &'static Tree {
    static T: [OnceLock<Tree>; 5] = [const { OnceLock::new() }; 5];
    let i = match table.name {
        "ios" => 0,
        "iosxe" => 1,
        "nxos" => 2,
        "eos" => 3,
        _ => 4,
    };
    T[i].get_or_init(|| build(table))
}

/// Result of walking the tree for one line.
struct Walk {
    rule: Option<&'static Rule>,
    /// Tokens consumed up to and including the deciding rule's node.
    consumed: usize,
    /// Set when an abbreviation was ambiguous: (class, ids, candidate list).
    ambiguous: Option<(Class, Vec<&'static str>, String)>,
}

const MAX_TOKENS: usize = 64;

fn walk(node: &Node, toks: &[&str], i: usize, best: (Option<&'static Rule>, usize)) -> Walk {
    let best = if node.rule.is_some() {
        (node.rule, i)
    } else {
        best
    };
    if i >= toks.len() || i >= MAX_TOKENS {
        return Walk {
            rule: best.0,
            consumed: best.1,
            ambiguous: None,
        };
    }
    let t = toks[i];
    if !t.is_empty()
        && let Ok(sel) = node.select(t)
    {
        return match sel {
            Some(c) => walk(c, toks, i + 1, best),
            None => Walk {
                rule: best.0,
                consumed: best.1,
                ambiguous: None,
            },
        };
    }
    let exact = node
        .children
        .iter()
        .find(|c| c.key != "*" && c.key.eq_ignore_ascii_case(t));
    let cands: Vec<&Node> = match exact {
        Some(c) => vec![c],
        None => {
            let v: Vec<&Node> = node
                .children
                .iter()
                .filter(|c| c.key != "*" && !t.is_empty() && starts_with_ci(c.key, t))
                .collect();
            if v.is_empty() {
                node.children.iter().filter(|c| c.key == "*").collect()
            } else {
                v
            }
        }
    };
    match cands.len() {
        0 => Walk {
            rule: best.0,
            consumed: best.1,
            ambiguous: None,
        },
        1 => walk(cands[0], toks, i + 1, best),
        _ => {
            let mut class = Class::ReadOnly;
            let mut ids = Vec::new();
            let mut names = String::new();
            for c in &cands {
                let w = walk(c, toks, i + 1, best);
                let (cl, id) = match (&w.ambiguous, w.rule) {
                    (Some((cl, sub, _)), _) => {
                        ids.extend(sub.iter().copied());
                        (*cl, None)
                    }
                    (None, Some(r)) => (r.class, Some(r.id)),
                    (None, None) => (Class::Unknown, None),
                };
                class = class.max(cl);
                // payload-carrying expansions are not examined: never below unknown
                if w.rule.is_some_and(|r| {
                    matches!(
                        r.effect,
                        Effect::ExecPayload | Effect::ShellPayload | Effect::QuotedExecPayload
                    )
                }) {
                    class = class.max(Class::Unknown);
                }
                if let Some(id) = id
                    && !ids.contains(&id)
                {
                    ids.push(id);
                }
                if !names.is_empty() {
                    names.push_str(", ");
                }
                names.push_str(c.key);
            }
            if class == Class::ReadOnly {
                class = Class::Unknown;
            }
            Walk {
                rule: None,
                consumed: i + 1,
                ambiguous: Some((class, ids, names)),
            }
        }
    }
}

fn is_comment(vendor: Vendor, line: &str) -> bool {
    match vendor {
        Vendor::Junos => line.starts_with('#') || line.starts_with("/*"),
        _ => line.starts_with('!'),
    }
}

/// Classify text for a keyword-tree vendor.
pub(crate) fn classify(
    table: &'static Table,
    vendor: Vendor,
    text: &str,
    depth: usize,
    acc: &mut Acc,
) {
    let tree = tree_for(table);
    let mut mode = Mode::Exec;
    let mut vty = false;
    for raw in text.split(['\n', '\r']) {
        let line = raw.trim();
        if line.is_empty() || is_comment(vendor, line) {
            continue;
        }
        if !may_have_separator(line) {
            line_(table, tree, vendor, line, depth, acc, &mut mode, &mut vty);
            continue;
        }
        let (parts, seps) = split_compound(line);
        if seps.is_empty() {
            line_(table, tree, vendor, line, depth, acc, &mut mode, &mut vty);
            continue;
        }
        // Every part is classified whether or not the device honours the
        // separator; one it does not honour makes the line at least unknown.
        for sep in seps.iter().filter(|s| !table.separators.contains(s)) {
            acc.push(
                line,
                Class::Unknown,
                vec![Cow::Borrowed("core.separator.not-honoured")],
                Cow::Owned(format!(
                    "{sep:?} is not a command separator on {}: what the device does with the rest is not known",
                    vendor.as_str()
                )),
            );
        }
        for sub in parts {
            let sub = sub.trim();
            if !sub.is_empty() {
                line_(table, tree, vendor, sub, depth, acc, &mut mode, &mut vty);
            }
        }
    }
}

/// False only when `split_compound` cannot find a separator in `line`
/// (none of `;`, a backtick, `$`, `&&`, `||`): the common line skips the split.
fn may_have_separator(line: &str) -> bool {
    let b = line.as_bytes();
    b.iter().any(|c| matches!(c, b';' | b'`' | b'$'))
        || b.windows(2).any(|w| w == b"&&" || w == b"||")
}

#[allow(clippy::too_many_arguments)]
fn line_(
    table: &'static Table,
    tree: &Tree,
    vendor: Vendor,
    line: &str,
    depth: usize,
    acc: &mut Acc,
    mode: &mut Mode,
    vty: &mut bool,
) {
    let whole = [line];
    let split;
    let segs: &[&str] = if line.contains('|') {
        split = split_outside_quotes(line, b'|');
        &split
    } else {
        &whole
    };
    let cmd = segs[0].trim();
    // `>`/`>>` redirection to a file (NX-OS, EOS) writes.
    let (cmd, redirect) = match find_unquoted(cmd, b'>') {
        Some(i) => (cmd[..i].trim(), Some(cmd[i..].trim())),
        None => (cmd, None),
    };
    let toks = tokens(cmd, false);
    if toks.is_empty() {
        acc.rule(
            line,
            Class::Unknown,
            "core.empty-command",
            "a pipe or redirect without a command",
        );
    } else {
        let root = if *mode == Mode::Exec {
            &tree.exec
        } else {
            &tree.config
        };
        let w = walk(root, &toks, 0, (None, 0));
        if let Some((class, ids, names)) = w.ambiguous {
            let reason = format!(
                "ambiguous abbreviation {:?}: could be {}; takes its most dangerous expansion",
                toks[w.consumed.saturating_sub(1)],
                names
            );
            acc.push(
                cmd,
                class,
                ids.into_iter().map(Cow::Borrowed).collect(),
                Cow::Owned(reason),
            );
        } else if let Some(rule) = w.rule {
            // tokens are slices of `cmd`: the rest starts where the next one does
            let rest = match toks.get(w.consumed) {
                Some(t) => &cmd[t.as_ptr() as usize - cmd.as_ptr() as usize..],
                None => "",
            };
            apply_rule(rule, table, vendor, cmd, rest, &toks, depth, acc, mode, vty);
        } else if *mode == Mode::Config {
            let id = match table.name {
                "junos" => "junos.cfg.unknown",
                "nxos" => "nxos.cfg.default",
                "eos" => "eos.cfg.default",
                "iosxe" => "iosxe.cfg.default",
                _ => "ios.cfg.default",
            };
            let why = if table.config_default == Class::Unknown {
                "not a known configuration statement"
            } else {
                "a configuration-mode command changes the running configuration"
            };
            if table.name != "junos"
                && (toks[0].eq_ignore_ascii_case("interface")
                    || toks[0].eq_ignore_ascii_case("router"))
            {
                *vty = false;
            }
            acc.rule(cmd, table.config_default, id, why);
        } else {
            acc.rule(
                cmd,
                Class::Unknown,
                "core.unknown-command",
                "not a command this classifier knows for this vendor",
            );
        }
    }
    if let Some(r) = redirect {
        acc.rule(
            r,
            Class::Moderate,
            "core.redirect",
            "output redirection writes a file",
        );
    }
    // pipe filters
    let mut prev_regex = false;
    for seg in &segs[1..] {
        let seg = seg.trim();
        let first = seg.split_whitespace().next().unwrap_or("");
        let exact = table
            .pipes
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(first));
        let cands: Vec<_> = match exact {
            Some(p) => vec![p],
            None => table
                .pipes
                .iter()
                .filter(|p| !first.is_empty() && starts_with_ci(p.name, first))
                .collect(),
        };
        match cands.len() {
            1 => {
                let p = cands[0];
                prev_regex = p.kind == PipeKind::RegexFilter;
                acc.rule(seg, p.class, p.id, p.why);
            }
            0 if prev_regex => {
                acc.rule(
                    seg,
                    Class::ReadOnly,
                    "core.pipe.regex-continuation",
                    "part of the previous filter's regular expression",
                );
            }
            0 => {
                acc.rule(
                    seg,
                    Class::Unknown,
                    "core.pipe.unknown",
                    "not an allow-listed output filter",
                );
            }
            _ => {
                let class = cands
                    .iter()
                    .map(|p| p.class)
                    .max()
                    .unwrap_or(Class::Unknown)
                    .max(Class::Unknown);
                let ids = cands.iter().map(|p| Cow::Borrowed(p.id)).collect();
                acc.push(
                    seg,
                    class,
                    ids,
                    Cow::Borrowed("ambiguous pipe filter abbreviation"),
                );
            }
        }
    }
}

fn find_unquoted(s: &str, c: u8) -> Option<usize> {
    let mut q = false;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b == b'"' {
            q = !q;
        } else if b == c && !q {
            return Some(i);
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn apply_rule(
    rule: &'static Rule,
    table: &'static Table,
    vendor: Vendor,
    cmd: &str,
    rest: &str,
    toks: &[&str],
    depth: usize,
    acc: &mut Acc,
    mode: &mut Mode,
    vty: &mut bool,
) {
    let rest = rest.trim();
    match rule.effect {
        Effect::None => acc.rule(cmd, rule.class, rule.id, rule.why),
        Effect::Secrets => {
            acc.secrets = true;
            acc.rule(cmd, rule.class, rule.id, rule.why);
        }
        Effect::Credential => {
            acc.cred = true;
            acc.rule(cmd, rule.class, rule.id, rule.why);
        }
        Effect::EnterConfig => {
            acc.rule(cmd, rule.class, rule.id, rule.why);
            *mode = Mode::Config;
        }
        Effect::ExitConfig => {
            acc.rule(cmd, rule.class, rule.id, rule.why);
            *mode = Mode::Exec;
            *vty = false;
        }
        Effect::ExecPayload => {
            acc.rule(cmd, rule.class, rule.id, rule.why);
            if rest.is_empty() {
                acc.rule(
                    cmd,
                    Class::Unknown,
                    "core.payload.missing",
                    "escape without a command: interactive, not reviewable",
                );
            } else {
                let mut sub_mode = Mode::Exec;
                let mut sub_vty = false;
                let sub_tree = tree_for(table);
                if depth + 1 > super::MAX_DEPTH {
                    acc.rule(
                        rest,
                        Class::Unknown,
                        "core.too-deep",
                        "payloads nested too deeply to review",
                    );
                } else {
                    line_(
                        table,
                        sub_tree,
                        vendor,
                        rest,
                        depth + 1,
                        acc,
                        &mut sub_mode,
                        &mut sub_vty,
                    );
                }
            }
        }
        Effect::ShellPayload | Effect::QuotedExecPayload => {
            acc.rule(cmd, rule.class, rule.id, rule.why);
            let payload = unquote(rest);
            if payload.is_empty() {
                acc.rule(
                    cmd,
                    Class::Unknown,
                    "core.payload.missing",
                    "opens an interactive shell: what runs there is not known",
                );
            } else if rule.effect == Effect::ShellPayload {
                classify_into(Vendor::Linux, payload, depth + 1, acc);
            } else if depth + 1 > super::MAX_DEPTH {
                acc.rule(
                    payload,
                    Class::Unknown,
                    "core.too-deep",
                    "payloads nested too deeply to review",
                );
            } else {
                let mut sub_mode = Mode::Exec;
                let mut sub_vty = false;
                line_(
                    table,
                    tree_for(table),
                    vendor,
                    payload,
                    depth + 1,
                    acc,
                    &mut sub_mode,
                    &mut sub_vty,
                );
            }
        }
        Effect::Ping => {
            let (class, id, why) = ping_class(toks);
            acc.rule(
                cmd,
                class.max(rule.class),
                if class == Class::ReadOnly {
                    rule.id
                } else {
                    id
                },
                why,
            );
        }
        Effect::VtyContext => {
            *vty = true;
            acc.rule(cmd, rule.class, rule.id, rule.why);
        }
        Effect::VtyOnly => {
            if *vty {
                acc.rule(cmd, Class::Dangerous, rule.id, rule.why);
            } else {
                acc.rule(
                    cmd,
                    rule.class,
                    rule.id,
                    "configuration change outside the management lines",
                );
            }
        }
    }
    // leaving a vty block: any other mode-entering statement
    if *mode == Mode::Config && rule.effect != Effect::VtyContext && rule.effect != Effect::VtyOnly
    {
        let first = rule.path.split(' ').next().unwrap_or("");
        if matches!(first, "interface" | "line" | "router" | "exit" | "end") {
            *vty = false;
        }
    }
}
