//! POSIX shell engine: splits on `;`, `&&`, `||`, `|`, `&`, newlines;
//! extracts `$( )`, backticks and `( )` subshells and classifies them too;
//! tracks redirections (`>` to a file writes), here-documents, variable
//! assignments and wrappers (`sudo`, `xargs`, `sh -c`, `eval`, `find -exec`,
//! `ssh host '…'`, `vtysh -c`). Must never call a command read-only whose name
//! is computed at run time or whose quoting it could not parse.

use super::{Acc, classify_into, ping_class};
use crate::rules::linux::{CMDS, Cmd, Handler, IP_OBJECTS, SUBS, UNLISTED};
use crate::text::starts_with_ci;
use crate::vendor::Vendor;
use crate::verdict::Class;
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Default)]
struct Simple {
    words: Vec<String>,
    dynamic: Vec<bool>,
    writes: Vec<String>,
    start: usize,
    end: usize,
    heredoc: bool,
}

struct Parsed {
    cmds: Vec<Simple>,
    substs: Vec<String>,
    ok: bool,
}

/// Find the index just after the `)` matching an opening at `i` (which is
/// just after the `(`), honouring quotes. None if unbalanced.
fn match_paren(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 1i32;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'\'' => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse(src: &str) -> Parsed {
    let b = src.as_bytes();
    let mut p = Parsed {
        cmds: Vec::new(),
        substs: Vec::new(),
        ok: true,
    };
    let mut cur = Simple::default();
    let mut word = String::new();
    let mut in_word = false;
    let mut dynamic = false;
    let mut redirect: Option<u8> = None; // b'>' write target, b'<' read, b'h' heredoc delim, b'&' dup
    let mut heredocs: Vec<String> = Vec::new();
    let mut i = 0;

    macro_rules! end_word {
        () => {
            if in_word {
                let w = std::mem::take(&mut word);
                match redirect.take() {
                    Some(b'>') => {
                        // `/dev/fd/63` is a process substitution `>(…)`,
                        // classified as a command of its own
                        if !matches!(
                            w.as_str(),
                            "/dev/null" | "/dev/stderr" | "/dev/stdout" | "/dev/fd/63"
                        ) {
                            cur.writes.push(w);
                        }
                    }
                    Some(b'h') => {
                        heredocs.push(w.trim_start_matches('-').to_string());
                        cur.heredoc = true;
                    }
                    Some(_) => {}
                    None => {
                        cur.words.push(w);
                        cur.dynamic.push(dynamic);
                    }
                }
                in_word = false;
                dynamic = false;
            }
        };
    }
    macro_rules! end_cmd {
        ($at:expr) => {
            end_word!();
            cur.end = $at;
            if !cur.words.is_empty() || !cur.writes.is_empty() {
                p.cmds.push(std::mem::take(&mut cur));
            } else {
                cur = Simple::default();
            }
            cur.start = $at + 1;
        };
    }
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' => end_word!(),
            b'\n' | b';' | b'&' | b'|' => {
                if c == b'&' && b.get(i + 1) == Some(&b'>') {
                    end_word!();
                    redirect = Some(b'>');
                    i += 2;
                    continue;
                }
                end_cmd!(i);
                if (c == b'&' || c == b'|')
                    && b.get(i + 1)
                        .is_some_and(|&n| n == c || (c == b'|' && n == b'&'))
                {
                    i += 1;
                    cur.start = i + 1;
                }
                if c == b'\n' && !heredocs.is_empty() {
                    // skip here-document bodies
                    for d in std::mem::take(&mut heredocs) {
                        loop {
                            let ls = i + 1;
                            if ls >= b.len() {
                                i = b.len();
                                break;
                            }
                            let le = src[ls..].find('\n').map_or(b.len(), |x| ls + x);
                            i = le;
                            if src[ls..le].trim() == d {
                                break;
                            }
                        }
                    }
                    cur.start = i + 1;
                }
            }
            b'#' if !in_word => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' => {
                in_word = true;
                let s = i + 1;
                match src[s..].find('\'') {
                    Some(e) => {
                        word.push_str(&src[s..s + e]);
                        i = s + e;
                    }
                    None => {
                        p.ok = false;
                        return p;
                    }
                }
            }
            b'"' => {
                in_word = true;
                i += 1;
                loop {
                    if i >= b.len() {
                        p.ok = false;
                        return p;
                    }
                    match b[i] {
                        b'"' => break,
                        b'\\' if i + 1 < b.len() => {
                            let n = b[i + 1];
                            if matches!(n, b'"' | b'\\' | b'$' | b'`') {
                                word.push(n as char);
                                i += 2;
                                continue;
                            }
                            word.push('\\');
                        }
                        b'$' if b.get(i + 1) == Some(&b'(') => {
                            let Some(e) = match_paren(b, i + 2) else {
                                p.ok = false;
                                return p;
                            };
                            p.substs.push(src[i + 2..e - 1].to_string());
                            word.push_str("$(…)");
                            dynamic = true;
                            i = e;
                            continue;
                        }
                        b'`' => {
                            let Some(e) = src[i + 1..].find('`') else {
                                p.ok = false;
                                return p;
                            };
                            p.substs.push(src[i + 1..i + 1 + e].to_string());
                            word.push_str("`…`");
                            dynamic = true;
                            i += e + 2;
                            continue;
                        }
                        b'$' => {
                            dynamic = true;
                            word.push('$');
                        }
                        _ => {
                            let ch_end = next_char(src, i);
                            word.push_str(&src[i..ch_end]);
                            i = ch_end;
                            continue;
                        }
                    }
                    i += 1;
                }
            }
            b'\\' => {
                if let Some(&n) = b.get(i + 1) {
                    if n != b'\n' {
                        in_word = true;
                        let e = next_char(src, i + 1);
                        word.push_str(&src[i + 1..e]);
                        i = e;
                        continue;
                    }
                    i += 1;
                }
            }
            b'`' => {
                let Some(e) = src[i + 1..].find('`') else {
                    p.ok = false;
                    return p;
                };
                p.substs.push(src[i + 1..i + 1 + e].to_string());
                in_word = true;
                dynamic = true;
                word.push_str("`…`");
                i += e + 2;
                continue;
            }
            b'$' if b.get(i + 1) == Some(&b'(') => {
                let Some(e) = match_paren(b, i + 2) else {
                    p.ok = false;
                    return p;
                };
                if b.get(i + 2) != Some(&b'(') {
                    p.substs.push(src[i + 2..e - 1].to_string());
                }
                in_word = true;
                dynamic = true;
                word.push_str("$(…)");
                i = e;
                continue;
            }
            b'$' => {
                in_word = true;
                dynamic = true;
                word.push('$');
            }
            b'(' if !in_word => {
                let Some(e) = match_paren(b, i + 1) else {
                    p.ok = false;
                    return p;
                };
                p.substs.push(src[i + 1..e - 1].to_string());
                i = e;
                continue;
            }
            b')' => {
                p.ok = false;
                return p;
            }
            b'>' | b'<' if b.get(i + 1) == Some(&b'(') && !in_word => {
                // process substitution: the command runs, and the word is
                // the name of a pipe to it
                let Some(e) = match_paren(b, i + 2) else {
                    p.ok = false;
                    return p;
                };
                p.substs.push(src[i + 2..e - 1].to_string());
                in_word = true;
                word.push_str("/dev/fd/63");
                i = e;
                continue;
            }
            b'>' | b'<' => {
                // a pure-digit word before is a file descriptor
                if in_word && word.bytes().all(|x| x.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                } else {
                    end_word!();
                }
                let n = b.get(i + 1).copied();
                if c == b'>' {
                    if n == Some(b'&') {
                        redirect = Some(b'&');
                        i += 2;
                        continue;
                    }
                    redirect = Some(b'>');
                    if n == Some(b'>') || n == Some(b'|') {
                        i += 1;
                    }
                } else if n == Some(b'<') {
                    if b.get(i + 2) == Some(&b'<') {
                        redirect = Some(b'<');
                        i += 2;
                    } else {
                        redirect = Some(b'h');
                        i += 1;
                    }
                } else if n == Some(b'&') {
                    redirect = Some(b'&');
                    i += 1;
                } else {
                    redirect = Some(b'<');
                }
            }
            _ => {
                in_word = true;
                // the run of bytes no arm above treats specially, at once
                // (it ends at an ASCII byte or the end: a char boundary)
                let e = i
                    + 1
                    + b[i + 1..]
                        .iter()
                        .position(|&x| {
                            matches!(
                                x,
                                b' ' | b'\t'
                                    | b'\n'
                                    | b';'
                                    | b'&'
                                    | b'|'
                                    | b'\''
                                    | b'"'
                                    | b'\\'
                                    | b'`'
                                    | b'$'
                                    | b'('
                                    | b')'
                                    | b'>'
                                    | b'<'
                            )
                        })
                        .unwrap_or(b.len() - i - 1);
                word.push_str(&src[i..e]);
                i = e;
                continue;
            }
        }
        i += 1;
    }
    #[allow(unused_assignments)]
    {
        end_cmd!(b.len());
    }
    if redirect.is_some() {
        p.ok = false;
    }
    p
}

fn next_char(s: &str, i: usize) -> usize {
    let mut e = i + 1;
    while e < s.len() && !s.is_char_boundary(e) {
        e += 1;
    }
    e.min(s.len())
}

/// Classify a shell command line or script.
pub(crate) fn classify(text: &str, depth: usize, acc: &mut Acc) {
    let p = parse(text);
    if !p.ok {
        acc.rule(
            text,
            Class::Unknown,
            "linux.parse",
            "unbalanced quotes, brackets or redirections: not fully parsed",
        );
        return;
    }
    for s in &p.substs {
        sub(s, depth, acc);
    }
    for c in &p.cmds {
        let t = text.get(c.start.min(c.end)..c.end).unwrap_or(text);
        if !c.writes.is_empty() {
            acc.rule(
                t,
                Class::Moderate,
                "linux.redirect.write",
                "redirects output into a file, which writes it",
            );
        }
        if c.words.is_empty() {
            continue;
        }
        let words: Vec<&str> = c.words.iter().map(String::as_str).collect();
        simple(t, &words, &c.dynamic, depth, acc, c.heredoc);
    }
}

fn sub(s: &str, depth: usize, acc: &mut Acc) {
    if depth + 1 > super::MAX_DEPTH {
        acc.rule(
            s,
            Class::Unknown,
            "core.too-deep",
            "payloads nested too deeply to review",
        );
    } else {
        classify(s, depth + 1, acc);
    }
}

fn is_assignment(w: &str) -> Option<&str> {
    let (k, _) = w.split_once('=')?;
    let ok = !k.is_empty()
        && k.bytes()
            .enumerate()
            .all(|(i, c)| c == b'_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    ok.then_some(k)
}

fn simple(
    text: &str,
    words: &[&str],
    dynamic: &[bool],
    depth: usize,
    acc: &mut Acc,
    heredoc: bool,
) {
    let mut i = 0;
    while i < words.len()
        && (words[i] == "{"
            || words[i] == "}"
            || words[i] == "!"
            || is_assignment(words[i]).is_some())
    {
        if let Some(k) = is_assignment(words[i])
            && matches!(
                k,
                "LD_PRELOAD"
                    | "LD_LIBRARY_PATH"
                    | "PATH"
                    | "BASH_ENV"
                    | "ENV"
                    | "PROMPT_COMMAND"
                    | "IFS"
            )
        {
            acc.rule(
                text,
                Class::Unknown,
                "linux.env.hijack",
                "changes how later commands are found or loaded",
            );
        }
        i += 1;
    }
    if i >= words.len() {
        if i > 0 {
            acc.rule(
                text,
                Class::ReadOnly,
                "linux.assign",
                "sets a shell variable only",
            );
        }
        return;
    }
    if dynamic.get(i).copied().unwrap_or(false) {
        acc.rule(
            text,
            Class::Unknown,
            "linux.dynamic-command",
            "the command name is computed at run time",
        );
        return;
    }
    let Some(name) = program_name(words[i]) else {
        acc.rule(
            text,
            Class::Unknown,
            "linux.path.not-system",
            "runs a program by a path outside the system's own directories: any file can carry a known program's name",
        );
        return;
    };
    let args = &words[i + 1..];
    let Some(cmd) = command(name) else {
        acc.rule(
            text,
            UNLISTED,
            "linux.unknown-command",
            "not a command this classifier knows",
        );
        return;
    };
    if heredoc && matches!(cmd.handler, Handler::ShellC | Handler::Vtysh | Handler::Ssh) {
        acc.rule(
            text,
            Class::Unknown,
            "linux.heredoc-script",
            "feeds a here-document script to an interpreter",
        );
        return;
    }
    handle(cmd, text, args, depth, acc);
}

/// The first [`CMDS`] entry named `name` (an index built once).
fn command(name: &str) -> Option<&'static Cmd> {
    static BY_NAME: OnceLock<HashMap<&'static str, &'static Cmd>> = OnceLock::new();
    BY_NAME
        .get_or_init(|| {
            let mut m = HashMap::with_capacity(CMDS.len());
            for c in CMDS {
                m.entry(c.name).or_insert(c);
            }
            m
        })
        .get(name)
        .copied()
}

/// Directories whose programs are the system's own; a program named by any
/// other path (`./ls`, `/tmp/ls`, `~/bin/ls`) is not the known program.
const SYSTEM_DIRS: &[&str] = &["/bin", "/sbin", "/usr/bin", "/usr/sbin"];

/// The name to look up for a command word: the word itself when it has no
/// `/`, the file name when its directory is one of [`SYSTEM_DIRS`] (written
/// exactly, no `.`/`..`/`//`), otherwise None (unknown).
fn program_name(word: &str) -> Option<&str> {
    match word.rsplit_once('/') {
        None => Some(word),
        Some((dir, name)) if !name.is_empty() && SYSTEM_DIRS.contains(&dir) => Some(name),
        Some(_) => None,
    }
}

fn nested(words: &[&str], depth: usize, acc: &mut Acc) {
    if depth + 1 > super::MAX_DEPTH {
        acc.rule(
            &words.join(" "),
            Class::Unknown,
            "core.too-deep",
            "payloads nested too deeply to review",
        );
        return;
    }
    let joined = words.join(" ");
    let dynamic: Vec<bool> = words
        .iter()
        .map(|w| w.contains('$') || w.contains('`'))
        .collect();
    simple(&joined, words, &dynamic, depth + 1, acc, false);
}

fn opts_with_arg(name: &str) -> &'static [&'static str] {
    match name {
        "sudo" => &["-u", "-g", "-C", "-p", "-U", "-r", "-t", "-h", "-D"],
        "doas" => &["-u", "-C"],
        "env" => &["-u", "-C", "-S"],
        "nice" => &["-n"],
        "ionice" => &["-c", "-n", "-p", "-P", "-u"],
        "stdbuf" => &["-i", "-o", "-e"],
        "timeout" => &["-s", "-k", "--signal", "--kill-after"],
        "watch" => &["-n", "--interval", "-d"],
        "xargs" => &["-n", "-I", "-P", "-d", "-L", "-E", "-a", "-s", "-i"],
        "ssh" => &[
            "-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c", "-e", "-m", "-O",
            "-Q", "-S", "-w", "-E", "-B", "-W", "-I",
        ],
        _ => &[],
    }
}

/// Index of the first non-option word, skipping options that take an argument.
fn skip_opts(name: &str, args: &[&str]) -> usize {
    let with = opts_with_arg(name);
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            return i + 1;
        }
        if name == "env" && is_assignment(a).is_some() {
            i += 1;
            continue;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        if with.contains(&a) {
            i += 1;
        }
        i += 1;
    }
    i
}

fn handle(cmd: &'static Cmd, text: &str, args: &[&str], depth: usize, acc: &mut Acc) {
    let ro = |acc: &mut Acc| acc.rule(text, Class::ReadOnly, cmd.id, cmd.why);
    match cmd.handler {
        Handler::Plain => acc.rule(text, cmd.class, cmd.id, cmd.why),
        Handler::Wrapper => {
            let mut k = skip_opts(cmd.name, args);
            if cmd.name == "timeout" && k < args.len() {
                k += 1; // duration
            }
            if k >= args.len() {
                if matches!(cmd.name, "env" | "time") {
                    ro(acc);
                } else {
                    acc.rule(
                        text,
                        Class::Unknown,
                        cmd.id,
                        "opens an interactive or privileged shell: what runs there is not known",
                    );
                }
            } else {
                acc.rule(text, Class::ReadOnly, cmd.id, cmd.why);
                nested(&args[k..], depth, acc);
            }
        }
        Handler::Xargs => {
            let k = skip_opts("xargs", args);
            acc.rule(text, Class::ReadOnly, cmd.id, cmd.why);
            if k < args.len() {
                nested(&args[k..], depth, acc);
            }
        }
        Handler::ShellC => match args.iter().position(|a| {
            *a == "-c" || (a.starts_with('-') && !a.starts_with("--") && a.ends_with('c'))
        }) {
            Some(p) if p + 1 < args.len() => {
                acc.rule(
                    text,
                    Class::ReadOnly,
                    cmd.id,
                    "runs the given shell command",
                );
                sub(args[p + 1], depth, acc);
            }
            _ => acc.rule(
                text,
                Class::Unknown,
                cmd.id,
                "runs a script or standard input whose content is not in the input",
            ),
        },
        Handler::Eval => {
            acc.rule(
                text,
                Class::ReadOnly,
                cmd.id,
                "evaluates its arguments as a command",
            );
            sub(&args.join(" "), depth, acc);
        }
        Handler::Find => {
            let mut any = false;
            let mut j = 0;
            while j < args.len() {
                match args[j] {
                    "-delete" => {
                        any = true;
                        acc.rule(
                            text,
                            Class::Dangerous,
                            "linux.find.delete",
                            "deletes every file that matches",
                        );
                    }
                    "-fprint" | "-fprintf" | "-fprint0" | "-fls" => {
                        any = true;
                        acc.rule(
                            text,
                            Class::Moderate,
                            "linux.find.fprint",
                            "writes its results into a file",
                        );
                    }
                    "-exec" | "-execdir" | "-ok" | "-okdir" => {
                        any = true;
                        let s = j + 1;
                        let mut e = s;
                        while e < args.len() && args[e] != ";" && args[e] != "+" {
                            e += 1;
                        }
                        acc.rule(
                            text,
                            Class::ReadOnly,
                            "linux.find.exec",
                            "runs a command for every match",
                        );
                        if e > s {
                            nested(&args[s..e], depth, acc);
                        } else {
                            acc.rule(
                                text,
                                Class::Unknown,
                                "linux.find.exec",
                                "-exec without a command",
                            );
                        }
                        j = e;
                    }
                    _ => {}
                }
                j += 1;
            }
            if !any {
                ro(acc);
            }
        }
        Handler::Ssh => {
            let k = skip_opts("ssh", args);
            if k + 1 < args.len() {
                acc.rule(
                    text,
                    Class::ReadOnly,
                    cmd.id,
                    "runs the given command on another host",
                );
                sub(&args[k + 1..].join(" "), depth, acc);
            } else {
                acc.rule(
                    text,
                    Class::Unknown,
                    cmd.id,
                    "opens an interactive session on another host",
                );
            }
        }
        Handler::Vtysh => {
            let mut script = String::new();
            let mut j = 0;
            let mut other = false;
            while j < args.len() {
                if args[j] == "-c" || args[j] == "--command" {
                    if let Some(c) = args.get(j + 1) {
                        script.push_str(c);
                        script.push('\n');
                    }
                    j += 1;
                } else if args[j] == "-f" || args[j] == "-b" || args[j] == "--boot" {
                    other = true;
                }
                j += 1;
            }
            if script.is_empty() || other {
                acc.rule(
                    text,
                    Class::Unknown,
                    cmd.id,
                    "opens the routing shell or runs a file: not reviewable",
                );
            } else {
                acc.rule(
                    text,
                    Class::ReadOnly,
                    cmd.id,
                    "runs routing-daemon CLI commands (IOS-like)",
                );
                if depth + 1 > super::MAX_DEPTH {
                    acc.rule(
                        text,
                        Class::Unknown,
                        "core.too-deep",
                        "payloads nested too deeply to review",
                    );
                } else {
                    classify_into(Vendor::Ios, &script, depth + 1, acc);
                }
            }
        }
        Handler::Sub => sub_cmd(cmd, text, args, depth, acc),
        Handler::Sed => {
            if args.iter().any(|a| {
                a.starts_with("-i")
                    || a.starts_with("--in-place")
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && a.contains('i')
                        && a.len() <= 4)
            }) {
                acc.rule(
                    text,
                    Class::Moderate,
                    "linux.sed.in-place",
                    "edits files in place",
                );
            } else {
                ro(acc);
            }
        }
        Handler::Rm => {
            let rec = args.iter().any(|a| {
                *a == "--recursive"
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && (a.contains('r') || a.contains('R')))
            });
            let root = args.iter().any(|a| {
                matches!(
                    *a,
                    "/" | "/*" | "~" | "*" | "/etc" | "/boot" | "/usr" | "/var"
                )
            });
            if rec || root {
                acc.rule(
                    text,
                    Class::Dangerous,
                    "linux.rm.recursive",
                    "removes directory trees or system paths",
                );
            } else {
                acc.rule(text, cmd.class, cmd.id, cmd.why);
            }
        }
        Handler::Ping => {
            let (c, id, why) = ping_class(args);
            acc.rule(text, c, if c == Class::ReadOnly { cmd.id } else { id }, why);
        }
        Handler::Tcpdump => {
            if args.iter().any(|a| *a == "-w" || a.starts_with("-w")) {
                acc.rule(
                    text,
                    Class::Moderate,
                    "linux.tcpdump.write",
                    "writes a capture file",
                );
            } else {
                ro(acc);
            }
        }
        Handler::Tee => {
            if args
                .iter()
                .filter(|a| !a.starts_with('-'))
                .all(|a| *a == "/dev/null")
            {
                ro(acc);
            } else {
                acc.rule(text, Class::Moderate, cmd.id, cmd.why);
            }
        }
        Handler::NoArgsOnly => {
            let sets = args.iter().any(|a| {
                (!a.starts_with('-') && !a.starts_with('+'))
                    || *a == "-s"
                    || a.starts_with("--set")
                    || *a == "-F"
                    || a.starts_with("--file")
            });
            if sets {
                acc.rule(
                    text,
                    Class::Moderate,
                    cmd.id,
                    "with these arguments it changes a system setting",
                );
            } else {
                ro(acc);
            }
        }
        Handler::Dmesg => {
            if args.iter().any(|a| {
                matches!(
                    *a,
                    "-c" | "-C"
                        | "--clear"
                        | "--read-clear"
                        | "-n"
                        | "--console-level"
                        | "-D"
                        | "-E"
                )
            }) {
                acc.rule(
                    text,
                    Class::Moderate,
                    "linux.dmesg.clear",
                    "clears or changes the kernel log",
                );
            } else {
                ro(acc);
            }
        }
    }
}

fn sub_cmd(cmd: &'static Cmd, text: &str, args: &[&str], depth: usize, acc: &mut Acc) {
    let subs = || SUBS.iter().filter(|s| s.cmd == cmd.name);
    match cmd.name {
        "ip" => {
            let mut j = 0;
            while j < args.len() && args[j].starts_with('-') {
                if matches!(
                    args[j],
                    "-n" | "-netns" | "-f" | "-family" | "-b" | "-batch" | "-rc" | "-rcvbuf"
                ) {
                    if matches!(args[j], "-b" | "-batch") {
                        acc.rule(
                            text,
                            Class::Unknown,
                            "linux.ip.batch",
                            "runs ip commands from a file",
                        );
                        return;
                    }
                    j += 1;
                }
                j += 1;
            }
            let Some(obj) = args.get(j) else {
                acc.rule(
                    text,
                    Class::Unknown,
                    "linux.ip.usage",
                    "ip without an object",
                );
                return;
            };
            if !IP_OBJECTS.iter().any(|o| starts_with_ci(o, obj)) {
                acc.rule(
                    text,
                    Class::Unknown,
                    "linux.ip.object",
                    "not an ip object this classifier knows",
                );
                return;
            }
            let Some(verb) = args.get(j + 1) else {
                acc.rule(
                    text,
                    Class::ReadOnly,
                    "linux.ip.show",
                    "shows network state",
                );
                return;
            };
            if starts_with_ci("netns", obj) && *verb == "exec" {
                acc.rule(
                    text,
                    Class::ReadOnly,
                    "linux.ip.netns-exec",
                    "runs a command in a network namespace",
                );
                if args.len() > j + 3 {
                    nested(&args[j + 3..], depth, acc);
                } else {
                    acc.rule(
                        text,
                        Class::Unknown,
                        "linux.ip.netns-exec",
                        "netns exec without a command",
                    );
                }
                return;
            }
            let cands: Vec<_> = subs().filter(|s| starts_with_ci(s.sub, verb)).collect();
            if cands.is_empty() {
                // `ip addr dev eth0` style: a non-verb means show
                if verb.starts_with("dev")
                    || verb.contains('.')
                    || verb.contains(':')
                    || verb.starts_with("eth")
                {
                    acc.rule(
                        text,
                        Class::ReadOnly,
                        "linux.ip.show",
                        "shows network state",
                    );
                } else {
                    acc.rule(
                        text,
                        Class::Unknown,
                        "linux.ip.verb",
                        "not an ip verb this classifier knows",
                    );
                }
            } else {
                let c = cands.iter().max_by_key(|s| s.class).copied();
                if let Some(s) = c {
                    let class = if cands.len() > 1 && s.class == Class::ReadOnly {
                        Class::Unknown
                    } else {
                        s.class
                    };
                    acc.rule(text, class, s.id, s.why);
                }
            }
        }
        "iptables" | "ip6tables" => {
            let mut best: Option<(Class, &'static str, &'static str)> = None;
            let mut modify = false;
            for a in args {
                let short = match *a {
                    "--list" => "-L",
                    "--list-rules" => "-S",
                    "--flush" => "-F",
                    "--policy" => "-P",
                    "--delete-chain" => "-X",
                    x => x,
                };
                if matches!(
                    short,
                    "-A" | "-I"
                        | "-D"
                        | "-R"
                        | "-N"
                        | "-Z"
                        | "-E"
                        | "--append"
                        | "--insert"
                        | "--delete"
                        | "--replace"
                        | "--zero"
                ) {
                    modify = true;
                }
                if let Some(s) = subs().find(|s| s.sub == short)
                    && best.is_none_or(|b| s.class > b.0)
                {
                    best = Some((s.class, s.id, s.why));
                }
            }
            match best {
                Some((c, id, why)) if !(modify && c == Class::ReadOnly) => {
                    acc.rule(text, c, id, why)
                }
                _ => acc.rule(text, Class::Moderate, cmd.id, cmd.why),
            }
        }
        _ => {
            let first = args.iter().find(|a| !a.starts_with('-'));
            match first {
                None if cmd.name == "systemctl" => acc.rule(
                    text,
                    Class::ReadOnly,
                    "linux.systemctl.list-units",
                    "lists services",
                ),
                None => acc.rule(text, cmd.class, cmd.id, cmd.why),
                Some(f) => match subs().find(|s| s.sub == *f) {
                    Some(s) => acc.rule(text, s.class, s.id, s.why),
                    None => acc.rule(text, cmd.class, cmd.id, cmd.why),
                },
            }
        }
    }
}
