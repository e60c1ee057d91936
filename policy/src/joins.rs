//! Ways to put a second command on the same input as a first one, per
//! vendor: the separators the vendor honours, the shell-like separators it
//! does not, substitutions and blocks, and line-editing control characters.
//! Owns the join catalogue that the per-vendor property test
//! (`policy/tests/classify_joins.rs`) and the `policy_joins` fuzz target
//! both walk, and the invariant they check ([`check_join`]). Must never
//! list a form that hides the second command from the device (a comment,
//! a quoted argument, the regular expression of an output filter): every
//! form here either runs it or makes the line something the classifier
//! cannot vouch for.

use crate::{Class, Vendor, classify};

/// One way to join a first command `r` and a second command `d`.
#[derive(Debug, Clone, Copy)]
pub struct Join {
    /// Short stable name (`semicolon`, `ctrl-u`, `substitution` …).
    pub name: &'static str,
    /// True when the vendor's CLI runs both commands for this form; false
    /// when it does not (the classifier must still never call it read-only).
    pub honoured: bool,
    /// The least class the join may take: the second command's
    /// (dangerous) where the form is honoured; unknown for a separator or
    /// control character the vendor does not honour; moderate for an output
    /// pipe into something that is not a filter (`| re` is `| redirect`).
    pub at_least: Class,
    form: Form,
}

#[derive(Debug, Clone, Copy)]
enum Form {
    /// `r` + text + `d`.
    Infix(&'static str),
    /// `r` + before + `d` + after.
    Wrap(&'static str, &'static str),
    /// before + `d` + after (`r` on the line before).
    Block(&'static str, &'static str),
}

const fn j(name: &'static str, honoured: bool, form: Form) -> Join {
    Join {
        name,
        honoured,
        at_least: if honoured {
            Class::Dangerous
        } else {
            Class::Unknown
        },
        form,
    }
}

use Form::{Block, Infix, Wrap};

/// Line editing and line ends every CLI applies: the second command runs
/// after a newline, and a control character makes the line unreadable.
const LINE: &[Join] = &[
    j("newline", true, Infix("\n")),
    j("crlf", true, Infix("\r\n")),
    j("cr", false, Infix("\r")),
    j("ctrl-u", false, Infix("\u{15}")),
    j("ctrl-c", false, Infix("\u{3}")),
    j("ctrl-w", false, Infix("\u{17}")),
    j("backspace", false, Infix("\u{8}")),
    j("del", false, Infix("\u{7f}")),
    j("escape", false, Infix("\u{1b}")),
    j("nul", false, Infix("\u{0}")),
];

/// Shell separators a network CLI does not honour (unless its table says so).
const SHELLISH: &[Join] = &[
    j("semicolon", false, Infix(" ; ")),
    j("semicolon-tight", false, Infix(";")),
    j("and", false, Infix(" && ")),
    j("or", false, Infix(" || ")),
    j("backticks", false, Wrap(" `", "`")),
    j("dollar-paren", false, Wrap(" $(", ")")),
];

const LINUX: &[Join] = &[
    j("semicolon", true, Infix(" ; ")),
    j("semicolon-tight", true, Infix(";")),
    j("and", true, Infix(" && ")),
    j("or", true, Infix(" || ")),
    j("pipe", true, Infix(" | ")),
    j("pipe-stderr", true, Infix(" |& ")),
    j("background", true, Infix(" & ")),
    j("backticks", true, Wrap(" `", "`")),
    j("dollar-paren", true, Wrap(" $(", ")")),
    j("echo-substitution", true, Wrap(" && echo $(", ")")),
    j("process-substitution", true, Wrap(" <(", ")")),
    j("subshell", true, Wrap("; (", ")")),
    j("group", true, Wrap("; { ", "; }")),
    j("sh-c", true, Wrap(" && sh -c \"", "\"")),
    j("bash-c", true, Wrap("; bash -c \"", "\"")),
    j("eval", true, Wrap(" && eval \"", "\"")),
    j("xargs", true, Wrap(" | xargs ", "")),
    j("env", true, Wrap("; env ", "")),
    j("command", true, Wrap("; command ", "")),
    j("exec", true, Wrap("; exec ", "")),
    j("busybox", true, Wrap("; busybox ", "")),
    j("sudo-u", true, Wrap("; sudo -u ops ", "")),
    j(
        "find-exec",
        true,
        Wrap("; find /tmp -maxdepth 0 -exec ", " \\;"),
    ),
];

const ROUTEROS: &[Join] = &[
    j("semicolon", true, Infix("; ")),
    j("semicolon-tight", true, Infix(";")),
    j("substitution", true, Wrap(" [", "]")),
    j("put-substitution", true, Wrap("\n:put [", "]")),
    j("local-substitution", true, Wrap("\n:local x [", "]")),
    j("where-substitution", true, Wrap(" where name=[", "]")),
    j("do-block", true, Wrap("\n:do { ", " }")),
    j(
        "do-on-error",
        true,
        Wrap("\n:do { :put 1 } on-error={ ", " }"),
    ),
    j("if-block", true, Wrap("\n:if (true) do={ ", " }")),
    j("bare-block", true, Block("{ ", " }")),
    j("execute", true, Wrap("\n:execute \"", "\"")),
    j("and", false, Infix(" && ")),
    j("or", false, Infix(" || ")),
    j("backticks", false, Wrap(" `", "`")),
];

/// NX-OS and EOS honour `;` between exec commands.
const SEMI_HONOURED: &[Join] = &[
    j("semicolon", true, Infix(" ; ")),
    j("semicolon-tight", true, Infix(";")),
    j("and", false, Infix(" && ")),
    j("or", false, Infix(" || ")),
    j("backticks", false, Wrap(" `", "`")),
    j("dollar-paren", false, Wrap(" $(", ")")),
];

/// An output pipe into something that is not a filter (skipped when the
/// first command already pipes: a later `|` may be part of a regex).
const PIPE_FOREIGN: Join = Join {
    at_least: Class::Moderate,
    ..j("pipe", false, Infix(" | "))
};

/// Every join form for `vendor`.
pub fn joins(vendor: Vendor) -> Vec<Join> {
    let own: &[Join] = match vendor {
        Vendor::Linux => LINUX,
        Vendor::RouterOs => ROUTEROS,
        Vendor::NxOs | Vendor::Eos => SEMI_HONOURED,
        Vendor::Ios | Vendor::IosXe | Vendor::Junos => SHELLISH,
    };
    let mut out: Vec<Join> = LINE.to_vec();
    out.extend_from_slice(own);
    if !matches!(vendor, Vendor::Linux | Vendor::RouterOs) {
        out.push(PIPE_FOREIGN);
    }
    out
}

/// How the blanks of a join form are written (the fuzz target varies them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spacing {
    /// As listed.
    AsIs,
    /// Every blank a TAB.
    Tabs,
    /// Every blank doubled.
    Doubled,
}

/// `r` and `d` joined by `join`, or `None` where the form does not apply
/// (a `|` after a first command that already pipes; a second command
/// holding the form's own closing quote or parenthesis).
pub fn join(join: &Join, r: &str, d: &str, spacing: Spacing) -> Option<String> {
    if join.name == "pipe" && r.contains('|') {
        return None;
    }
    let sp = |s: &str| match spacing {
        Spacing::AsIs => s.to_string(),
        Spacing::Tabs => s.replace(' ', "\t"),
        Spacing::Doubled => s.replace(' ', "  "),
    };
    Some(match join.form {
        Infix(sep) => format!("{r}{}{d}", sp(sep)),
        Wrap(open, close) => {
            if (open.ends_with('"') && d.contains('"'))
                || (close == ")" && d.contains(')'))
                || (close == "`" && d.contains('`'))
            {
                return None;
            }
            format!("{r}{}{d}{}", sp(open), sp(close))
        }
        Block(open, close) => format!("{r}\n{}{d}{}", sp(open), sp(close)),
    })
}

/// Read-only and dangerous commands of one vendor from a corpus in the
/// `classify.tsv` format (`vendor<TAB>class<TAB>command`): single-line
/// commands only, and none a join form could not follow (a first command
/// with a comment, a here-document or a trailing `&`).
#[derive(Debug, Clone, Default)]
pub struct JoinCorpus {
    /// (vendor, read-only commands, dangerous commands)
    pub by_vendor: Vec<(Vendor, Vec<String>, Vec<String>)>,
}

impl JoinCorpus {
    /// Parse a corpus; IOS-XE also takes the IOS commands.
    pub fn parse(tsv: &str) -> JoinCorpus {
        let mut by_vendor: Vec<(Vendor, Vec<String>, Vec<String>)> =
            Vendor::ALL.iter().map(|v| (*v, vec![], vec![])).collect();
        for line in tsv.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut f = line.splitn(3, '\t');
            let (Some(v), Some(c), Some(cmd)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let (Ok(v), Ok(c)) = (v.parse::<Vendor>(), c.parse::<Class>()) else {
                continue;
            };
            if cmd.contains("\\n") || cmd.contains("\\r") || cmd.contains("\\x") {
                continue;
            }
            let first_ok = !cmd.contains('#') && !cmd.contains("<<") && !cmd.ends_with('&');
            for (vv, ro, dg) in by_vendor.iter_mut() {
                if *vv == v || (v == Vendor::Ios && *vv == Vendor::IosXe) {
                    match c {
                        Class::ReadOnly if first_ok => ro.push(cmd.to_string()),
                        Class::Dangerous => dg.push(cmd.to_string()),
                        _ => {}
                    }
                }
            }
        }
        for (_, ro, dg) in by_vendor.iter_mut() {
            ro.sort();
            ro.dedup();
            dg.sort();
            dg.dedup();
        }
        JoinCorpus { by_vendor }
    }
}

/// What a joined input was classified, when it breaks the invariant:
/// never read-only, and at least the form's [`Join::at_least`] (a form the
/// vendor honours takes the second command's class, dangerous). `None`
/// when the invariant holds.
pub fn check_join(vendor: Vendor, join: &Join, joined: &str) -> Option<Class> {
    let got = classify(vendor, joined).class;
    (got == Class::ReadOnly || got < join.at_least).then_some(got)
}
