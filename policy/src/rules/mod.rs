//! Rule tables as data: one reviewed table per vendor. Owns *what* each
//! command means (id, class, human sentence); the engines in `classify` own
//! *how* input is parsed and matched against these tables. Tables must never
//! contain logic beyond the small [`Effect`] vocabulary, and every rule id is
//! unique and stable (ids appear in verdicts, approvals and audit logs).
//!
//! Review rule: a rule may say [`Class::ReadOnly`] only if no form of the
//! command (any argument) can change device state; otherwise list the
//! state-changing forms as deeper rules or pick a stronger class.

use crate::verdict::Class;

pub mod eos;
pub mod ios;
pub mod junos;
pub mod linux;
pub mod nxos;
pub mod routeros;

/// Which CLI mode a keyword-tree rule applies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exec / operational mode.
    Exec,
    /// Configuration mode.
    Config,
}

/// Extra meaning attached to a rule, interpreted by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond the class.
    None,
    /// Output carries secrets (running config etc.).
    Secrets,
    /// Needs a credential decrypted (enable).
    Credential,
    /// Enters configuration mode; following lines are config commands.
    EnterConfig,
    /// Leaves configuration mode (`end`, Junos top-level `exit`).
    ExitConfig,
    /// The remaining tokens are an exec-mode command (`do …`, Junos `run …`).
    ExecPayload,
    /// The remaining tokens are a Linux shell command (`bash …`, `run bash …`).
    ShellPayload,
    /// A quoted exec command follows (EEM `action … cli command "…"`).
    QuotedExecPayload,
    /// `ping`: read-only unless size/repeat could hurt.
    Ping,
    /// Enters a `line vty` block (management access lines).
    VtyContext,
    /// Applies to management lines only when inside a `line vty` block.
    VtyOnly,
}

/// One rule of a keyword-tree vendor (IOS, IOS-XE, NX-OS, EOS, Junos).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id, `vendor.words`.
    pub id: &'static str,
    /// Mode it applies in.
    pub mode: Mode,
    /// Full keywords separated by spaces; `*` matches any one token.
    pub path: &'static str,
    /// Class when this is the deepest matching rule.
    pub class: Class,
    /// Engine hint.
    pub effect: Effect,
    /// A human sentence for the approval prompt.
    pub why: &'static str,
}

/// What a pipe filter does to output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeKind {
    /// Filters output only.
    Filter,
    /// Filters with a regex that runs to the end of the line (IOS `include`).
    RegexFilter,
    /// Writes output somewhere (file, flash): not read-only.
    Writes,
}

/// A pipe filter after `|`.
#[derive(Debug, Clone, Copy)]
pub struct PipeRule {
    /// Stable id.
    pub id: &'static str,
    /// Full keyword.
    pub name: &'static str,
    /// Behaviour.
    pub kind: PipeKind,
    /// Class of the filter itself.
    pub class: Class,
    /// Human sentence.
    pub why: &'static str,
}

/// A vendor keyword-tree table.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Vendor id prefix.
    pub name: &'static str,
    /// Keyword rules.
    pub rules: &'static [&'static [Rule]],
    /// Pipe filters.
    pub pipes: &'static [PipeRule],
    /// Class of a config-mode line no rule matches.
    pub config_default: Class,
    /// Command separators this CLI honours inside one line (every part is
    /// classified and the line takes the highest class). Any other
    /// [`COMPOUND_SEPARATORS`] in a line still splits it for review, and the
    /// line is at least unknown: the classifier never assumes the device
    /// rejects the rest.
    pub separators: &'static [&'static str],
}

/// Every separator a shell-like CLI could treat as "run another command":
/// `;`, `&&`, `||`, backticks and `$(…)`. Newlines (and a bare CR, see the
/// line editing in [`crate::classify`]) always end a command.
pub const COMPOUND_SEPARATORS: &[&str] = &[";", "&&", "||", "`", "$("];

pub(crate) const fn r(
    id: &'static str,
    mode: Mode,
    path: &'static str,
    class: Class,
    effect: Effect,
    why: &'static str,
) -> Rule {
    Rule {
        id,
        mode,
        path,
        class,
        effect,
        why,
    }
}

pub(crate) const fn p(
    id: &'static str,
    name: &'static str,
    kind: PipeKind,
    class: Class,
    why: &'static str,
) -> PipeRule {
    PipeRule {
        id,
        name,
        kind,
        class,
        why,
    }
}
