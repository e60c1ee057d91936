//! RouterOS engine: menu paths and context (`/ip address` then `print`),
//! v6 and v7 path syntax (`/ip address print`, `/ip/address/print`), verbs
//! resolved by unique prefix, `[find …]` substitutions, `where` clauses,
//! mass operations, management lock-outs, scripting (`:foreach … do={…}`),
//! scheduler `on-event=` and script `source=` payloads. Must never treat an
//! unbalanced or unparsed statement as read-only.

use super::{Acc, ping_class};
use crate::rules::routeros::{MENUS, PATHS, PathRule, SCRIPT, VERBS, Verb};
use crate::text::{CiIndex, CiMatch, starts_with_ci};
use crate::verdict::Class;
use std::borrow::Cow;
use std::sync::OnceLock;

/// Split a script into statements at newlines / `;` outside quotes and
/// brackets. Returns (statements, balanced).
fn statements(text: &str) -> (Vec<&str>, bool) {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut depth: i32 = 0;
    let mut q = false;
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if q {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                q = false;
            }
        } else {
            match c {
                b'"' => q = true,
                b'\\' => i += 1, // line continuation / escape
                b'{' | b'[' | b'(' => depth += 1,
                b'}' | b']' | b')' => depth -= 1,
                b'\n' | b';' if depth <= 0 => {
                    out.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    (out, depth == 0 && !q)
}

/// Tokenise a statement: whitespace separated, keeping quotes and
/// `[…]`, `{…}`, `(…)` groups (also inside `key=value`) together.
fn toks(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'\\') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut depth = 0i32;
        let mut q = false;
        while i < b.len() {
            let c = b[i];
            if q {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    q = false;
                }
            } else {
                match c {
                    b'"' => q = true,
                    b'{' | b'[' | b'(' => depth += 1,
                    b'}' | b']' | b')' => depth -= 1,
                    c if c.is_ascii_whitespace() && depth <= 0 => break,
                    _ => {}
                }
            }
            i += 1;
        }
        out.push(&s[start..i.min(b.len())]);
    }
    out
}

/// Strip one outer pair of `{}` / `[]` / `""`.
fn inner(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 {
        let (o, c) = (b[0], b[b.len() - 1]);
        if (o == b'{' && c == b'}')
            || (o == b'[' && c == b']')
            || (o == b'"' && c == b'"')
            || (o == b'(' && c == b')')
        {
            return &v[1..v.len() - 1];
        }
    }
    if !b.is_empty() && matches!(b[0], b'{' | b'[' | b'"') {
        return &v[1..];
    }
    v
}

/// Unescape a RouterOS string payload (`\"`, `\\`, `\n`, `\r`, `\t`, `\$`).
fn unescape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => o.push('\n'),
                Some('r') => o.push('\r'),
                Some('t') => o.push('\t'),
                Some(x) => o.push(x),
                None => {}
            }
        } else {
            o.push(c);
        }
    }
    o
}

/// Split `key=value` only when the text before the first `=` is a plain
/// argument name; a block or substitution holding `=` (`{ add a=b }`) is a
/// value as a whole.
fn split_kv(a: &str) -> (Option<&str>, &str) {
    match a.split_once('=') {
        Some((k, v))
            if !k.is_empty()
                && k.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')) =>
        {
            (Some(k), v)
        }
        _ => (None, a),
    }
}

/// Index just past the bracket closing the one opened at `open` (honouring
/// quotes and nesting), or None when unbalanced.
fn close_of(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut q = false;
    let mut i = open;
    while i < b.len() {
        let c = b[i];
        if q {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                q = false;
            }
        } else {
            match c {
                b'"' => q = true,
                b'\\' => i += 1,
                b'{' | b'[' | b'(' => depth += 1,
                b'}' | b']' | b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Every command substitution anywhere in a statement: `[ … ]` outside
/// quotes (also inside `( … )` expressions and `key=value` arguments) and
/// `$[ … ]` / `$( … )` inside strings. `{ … }` blocks are skipped: the
/// constructs that own them classify them. Returns the inner texts.
fn substitutions(st: &str) -> Vec<&str> {
    let b = st.as_bytes();
    let mut out = Vec::new();
    let mut q = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if q {
            match c {
                b'\\' => i += 1,
                b'"' => q = false,
                b'$' if matches!(b.get(i + 1), Some(b'[') | Some(b'(')) => {
                    if let Some(e) = close_of(b, i + 1) {
                        out.push(&st[i + 2..e - 1]);
                        i = e;
                        continue;
                    }
                }
                _ => {}
            }
        } else {
            match c {
                b'"' => q = true,
                b'\\' => i += 1,
                b'{' => {
                    if let Some(e) = close_of(b, i) {
                        i = e;
                        continue;
                    }
                }
                b'[' => {
                    if let Some(e) = close_of(b, i) {
                        out.push(&st[i + 1..e - 1]);
                        i = e;
                        continue;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    out
}

/// Shell separators RouterOS does not honour between commands (`&&`, `||`,
/// backticks) met outside quotes and brackets in a menu statement. In a
/// `where` clause `&&`/`||` are the clause's own logic, unless what follows
/// is a command path (`/…`, `:…`), which no expression starts with.
fn foreign_separator(st: &str, t: &[&str]) -> Option<&'static str> {
    if !st.bytes().any(|c| matches!(c, b'&' | b'|' | b'`')) {
        return None;
    }
    let in_where = t.iter().any(|w| w.eq_ignore_ascii_case("where"));
    let b = st.as_bytes();
    let command_follows = |at: usize| {
        let rest = st[at..].trim_start();
        !in_where || rest.starts_with(['/', ':'])
    };
    let (mut depth, mut q) = (0i32, false);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if q {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                q = false;
            }
        } else {
            match (c, b.get(i + 1)) {
                (b'"', _) => q = true,
                (b'\\', _) => i += 1,
                (b'{' | b'[' | b'(', _) => depth += 1,
                (b'}' | b']' | b')', _) => depth -= 1,
                (b'&', Some(b'&')) if depth == 0 && command_follows(i + 2) => return Some("&&"),
                (b'|', Some(b'|')) if depth == 0 && command_follows(i + 2) => return Some("||"),
                (b'`', _) if depth == 0 => return Some("`"),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// True when a path word is a known menu word or a unique-prefix
/// abbreviation the device could resolve to one.
fn is_menu_word(w: &str) -> bool {
    static MENU_INDEX: OnceLock<CiIndex> = OnceLock::new();
    let index = MENU_INDEX.get_or_init(|| CiIndex::new(MENUS.iter().copied().enumerate()));
    match index.lookup(w) {
        CiMatch::Exact(_) | CiMatch::Unique(_) => true,
        CiMatch::None => false,
        CiMatch::Many => MENUS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(w) || starts_with_ci(m, w)),
    }
}

fn is_arg(t: &str) -> bool {
    t.contains('=')
        || t.starts_with(['[', '"', '$', '(', '{'])
        || t.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == b'*')
}

fn resolve_verb(t: &str) -> Result<Option<&'static Verb>, Vec<&'static Verb>> {
    static VERB_INDEX: OnceLock<CiIndex> = OnceLock::new();
    let index = VERB_INDEX.get_or_init(|| CiIndex::new(VERBS.iter().map(|v| v.name).enumerate()));
    match index.lookup(t) {
        CiMatch::Exact(i) | CiMatch::Unique(i) => return Ok(Some(&VERBS[i])),
        CiMatch::None => return Ok(None),
        CiMatch::Many => {} // ambiguous: listed in table order below
    }
    if let Some(v) = VERBS.iter().find(|v| v.name.eq_ignore_ascii_case(t)) {
        return Ok(Some(v));
    }
    let c: Vec<&'static Verb> = VERBS
        .iter()
        .filter(|v| !t.is_empty() && starts_with_ci(v.name, t))
        .collect();
    match c.len() {
        0 => Ok(None),
        1 => Ok(Some(c[0])),
        _ => Err(c),
    }
}

/// [`PATHS`] split once: (menu words, verb, rule).
fn path_rules() -> &'static [(Vec<&'static str>, &'static str, &'static PathRule)] {
    static P: OnceLock<Vec<(Vec<&'static str>, &'static str, &'static PathRule)>> = OnceLock::new();
    P.get_or_init(|| {
        PATHS
            .iter()
            .map(|r| {
                let mut words: Vec<&'static str> = r.path.split(' ').collect();
                let verb = words.pop().unwrap_or("");
                (words, verb, r)
            })
            .collect()
    })
}

/// Classify a RouterOS script.
pub(crate) fn classify(text: &str, depth: usize, acc: &mut Acc) {
    let mut ctx: Vec<String> = Vec::new();
    block(text, depth, acc, &mut ctx);
}

fn block(text: &str, depth: usize, acc: &mut Acc, ctx: &mut Vec<String>) {
    let (stmts, balanced) = statements(text);
    if !balanced {
        acc.rule(
            text,
            Class::Unknown,
            "routeros.unbalanced",
            "unbalanced quotes or brackets: not fully parsed",
        );
    }
    for st in stmts {
        let st = st.trim();
        if st.is_empty() || st.starts_with('#') {
            continue;
        }
        statement(st, depth, acc, ctx);
    }
}

fn payload(text: &str, depth: usize, acc: &mut Acc, ctx: &mut Vec<String>) {
    if depth + 1 > super::MAX_DEPTH {
        acc.rule(
            text,
            Class::Unknown,
            "core.too-deep",
            "payloads nested too deeply to review",
        );
    } else {
        block(text, depth + 1, acc, ctx);
    }
}

fn statement(st: &str, depth: usize, acc: &mut Acc, ctx: &mut Vec<String>) {
    let t = toks(st);
    let Some(first) = t.first().copied() else {
        return;
    };
    if let Some(sep) = foreign_separator(st, &t) {
        acc.push(
            st,
            Class::Unknown,
            vec![Cow::Borrowed("core.separator.not-honoured")],
            Cow::Owned(format!(
                "{sep:?} is not a command separator on routeros: what the device does with the rest is not known"
            )),
        );
        for part in st
            .split(['&', '|', '`'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if part != st {
                let mut sub = ctx.clone();
                payload(part, depth, acc, &mut sub);
            }
        }
    }
    if first.starts_with('{') {
        let mut sub = ctx.to_vec();
        payload(inner(first), depth, acc, &mut sub);
        if t.len() > 1 {
            // words after a block are not part of it: review them too
            acc.rule(
                st,
                Class::Unknown,
                "routeros.unknown-command",
                "words after a block: not a RouterOS statement this classifier knows",
            );
            let rest = st[st.find(first).map_or(0, |p| p + first.len())..].trim();
            let mut sub = ctx.to_vec();
            payload(rest, depth, acc, &mut sub);
        }
        return;
    }
    if first.starts_with(['[', '(']) {
        // a bare substitution or expression runs what it holds
        acc.rule(
            st,
            Class::ReadOnly,
            "routeros.substitution",
            "evaluates a substitution or expression",
        );
        for inner_cmd in substitutions(st) {
            let mut sub = ctx.to_vec();
            payload(inner_cmd, depth, acc, &mut sub);
        }
        if t.len() > 1 {
            acc.rule(
                st,
                Class::Unknown,
                "routeros.unknown-command",
                "words after a substitution: not a RouterOS command this classifier knows",
            );
        }
        return;
    }
    if first.starts_with(':') {
        return script(st, &t, depth, acc, ctx.as_slice());
    }
    // path words
    let mut path: Vec<String> = if first.starts_with('/') {
        Vec::new()
    } else {
        ctx.clone()
    };
    let mut words: Vec<&str> = Vec::new();
    for w in &t {
        if is_arg(w) {
            break;
        }
        words.push(w);
    }
    // split v7 style `/ip/address/print` and leading slashes
    let mut flat: Vec<&str> = Vec::new();
    for w in &words {
        for piece in w.split('/') {
            if !piece.is_empty() && piece != ".." {
                flat.push(piece);
            }
        }
    }
    // find the verb: first word that resolves
    let mut verb: Option<(&'static Verb, usize)> = None;
    for (i, w) in flat.iter().enumerate() {
        match resolve_verb(w) {
            Ok(Some(v)) => {
                verb = Some((v, i));
                break;
            }
            Ok(None) => {}
            Err(c) => {
                let class = c
                    .iter()
                    .map(|v| v.class)
                    .max()
                    .unwrap_or(Class::Unknown)
                    .max(Class::Unknown);
                let ids = c.iter().map(|v| Cow::Borrowed(v.id)).collect();
                acc.push(
                    st,
                    class,
                    ids,
                    Cow::Owned(format!(
                        "ambiguous abbreviation {w:?}: takes its most dangerous expansion"
                    )),
                );
                return;
            }
        }
    }
    let Some((verb, vi)) = verb else {
        if words.len() == t.len() && flat.iter().all(|w| is_menu_word(w)) {
            // a menu path alone changes the context
            path.extend(flat.iter().map(|s| s.to_ascii_lowercase()));
            *ctx = path;
            acc.rule(
                st,
                Class::ReadOnly,
                "routeros.menu",
                "changes the current menu only",
            );
        } else {
            acc.rule(
                st,
                Class::Unknown,
                "routeros.unknown-command",
                "not a RouterOS command this classifier knows",
            );
        }
        return;
    };
    path.extend(flat[..vi].iter().map(|s| s.to_ascii_lowercase()));
    let args: Vec<&str> = flat[vi + 1..]
        .iter()
        .copied()
        .chain(t[words.len()..].iter().copied())
        .collect();
    let mut class = verb.class;
    let mut id: &'static str = verb.id;
    let mut why: &'static str = verb.why;
    let mut bump = |c: Class, i: &'static str, y: &'static str| {
        if c > class {
            class = c;
            id = i;
            why = y;
        }
    };
    // path rules
    for (rpath, rverb, r) in path_rules() {
        if *rverb != verb.name || rpath.len() != path.len() {
            continue;
        }
        if !rpath
            .iter()
            .zip(path.iter())
            .all(|(a, b)| starts_with_ci(a, b))
        {
            continue;
        }
        if let Some(a) = r.arg
            && !args.iter().any(|x| starts_with_ci(x, a))
        {
            continue;
        }
        bump(r.class, r.id, r.why);
    }
    match verb.name {
        "export" => {
            if args.iter().any(|a| starts_with_ci(a, "file=")) {
                bump(
                    Class::Moderate,
                    "routeros.export.file",
                    "export to a file writes flash",
                );
            }
            acc.secrets = true;
        }
        "print" | "get" => {
            if path.iter().any(|p| {
                p.contains("secret")
                    || p.contains("security-profile")
                    || p == "ipsec"
                    || p == "community"
                    || p == "user"
            }) {
                acc.secrets = true;
            }
            if args.iter().any(|a| starts_with_ci(a, "file=")) {
                bump(
                    Class::Moderate,
                    "routeros.print.file",
                    "print to a file writes flash",
                );
            }
        }
        "ping" => {
            let (c, i, y) = ping_class(&args);
            bump(c, i, y);
        }
        "remove" | "disable" => {
            if acc.loop_depth > 0 {
                bump(
                    Class::Dangerous,
                    "routeros.loop.mass-operation",
                    "a loop repeats this over many items: a mass operation",
                );
            }
            for a in &args {
                let v = a.strip_prefix("numbers=").unwrap_or(a);
                let inn = inner(v).trim();
                if v.starts_with('[') && is_unfiltered_find(inn) {
                    bump(
                        Class::Dangerous,
                        "routeros.mass-operation",
                        "applies to every item in the menu ([find] without a filter)",
                    );
                }
            }
        }
        "add" => {
            let fw = path.len() >= 3
                && path[path.len() - 2] == "firewall"
                && path[path.len() - 1] == "filter";
            let input = args.iter().any(|a| a.eq_ignore_ascii_case("chain=input"));
            let drop = args.iter().any(|a| {
                let l = a.to_ascii_lowercase();
                l == "action=drop" || l == "action=reject" || l == "action=tarpit"
            });
            let matcher = args.iter().any(|a| {
                let k = a.split('=').next().unwrap_or("").to_ascii_lowercase();
                !matches!(
                    k.as_str(),
                    "chain"
                        | "action"
                        | "comment"
                        | "disabled"
                        | "log"
                        | "log-prefix"
                        | "place-before"
                )
            });
            if fw && input && drop && !matcher {
                bump(
                    Class::Dangerous,
                    "routeros.firewall.input-drop-all",
                    "drops all input traffic including management: lock-out",
                );
            }
        }
        _ => {}
    }
    acc.rule(st, class, id, why);
    // embedded payloads and substitutions
    for a in &args {
        let (k, v) = match split_kv(a) {
            (Some(k), v) => (k.to_ascii_lowercase(), v),
            (None, v) => (String::new(), v),
        };
        if k == "on-event" || k == "source" {
            let body = if v.starts_with('"') {
                unescape(inner(v))
            } else {
                inner(v).to_string()
            };
            let mut sub = Vec::new();
            let looks_like_script_name = k == "on-event"
                && !body.contains(' ')
                && !body.starts_with('/')
                && !body.starts_with(':');
            if looks_like_script_name {
                acc.rule(
                    a,
                    Class::Unknown,
                    "routeros.scheduler.script-name",
                    "runs a stored script by name whose source is not in the input",
                );
            } else {
                payload(&body, depth, acc, &mut sub);
            }
        }
    }
    for inner_cmd in substitutions(st) {
        let mut sub = path.clone();
        payload(inner_cmd, depth, acc, &mut sub);
    }
}

fn is_unfiltered_find(inner: &str) -> bool {
    let mut w = inner.split_whitespace();
    let Some(first) = w.next() else { return false };
    let f = first.trim_start_matches('/');
    (f == "find" || f.ends_with("/find")) && w.next().is_none()
}

fn script(st: &str, t: &[&str], depth: usize, acc: &mut Acc, ctx: &[String]) {
    let name = t[0];
    let Some(cmd) = SCRIPT.iter().find(|c| c.name.eq_ignore_ascii_case(name)) else {
        acc.rule(
            st,
            Class::Unknown,
            "routeros.script.unknown",
            "not a scripting command this classifier knows",
        );
        return;
    };
    acc.rule(st, cmd.class, cmd.id, cmd.why);
    // A loop's body runs once per item: a removal in it is a mass operation
    // like `remove [find]`, unless the loop walks a filtered `[find …]`
    // (the same as `remove [find where …]`, which is moderate).
    let filtered_foreach = cmd.name == ":foreach"
        && t[1..].iter().any(|a| match split_kv(a) {
            (Some(k), v) if k.eq_ignore_ascii_case("in") && v.starts_with('[') => {
                let words: Vec<&str> = inner(v).split_whitespace().collect();
                words
                    .iter()
                    .position(|w| w.eq_ignore_ascii_case("find") || w.ends_with("/find"))
                    .is_some_and(|p| p + 1 < words.len())
            }
            _ => false,
        });
    let is_loop = (matches!(cmd.name, ":foreach" | ":for" | ":while")
        || (cmd.name == ":do" && t[1..].iter().any(|a| starts_with_ci(a, "while="))))
        && !filtered_foreach;
    for a in &t[1..] {
        let (k, v) = split_kv(a);
        if v.starts_with('{') {
            let mut sub = ctx.to_vec();
            // the body of a loop runs once per item
            let body = is_loop && k.is_none_or(|k| k.eq_ignore_ascii_case("do"));
            if body {
                acc.loop_depth += 1;
            }
            payload(inner(v), depth, acc, &mut sub);
            if body {
                acc.loop_depth -= 1;
            }
        } else if matches!(cmd.name, ":execute" | ":parse") && v.starts_with('"') {
            let mut sub = ctx.to_vec();
            payload(&unescape(inner(v)), depth, acc, &mut sub);
        }
    }
    for inner_cmd in substitutions(st) {
        let mut sub = ctx.to_vec();
        payload(inner_cmd, depth, acc, &mut sub);
    }
}
