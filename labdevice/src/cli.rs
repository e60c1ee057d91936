//! The vendor-neutral interface of a vendor's command line: what one
//! command line's reply is ([`Reply`], [`Next`], [`Question`]) and what the
//! terminal asks of a vendor session ([`CliSession`]).
//!
//! Owns that vocabulary only. Must never: name a concrete vendor (`ios`,
//! `routeros` implement [`CliSession`]; `vendors` is the one place that
//! picks one), or do I/O.

use crate::device::Device;

/// How input for a question is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A whole line, echoed or not.
    Line {
        /// Echo typed characters.
        echo: bool,
    },
    /// A single keystroke.
    Key,
}

/// Which question the device asked (the vendor decides what the answer does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionId {
    /// IOS `enable` → `Password:`.
    IosEnablePassword,
    /// IOS `reload` with unsaved changes → `Save? [yes/no]:`.
    IosSaveBeforeReload,
    /// IOS `Proceed with reload? [confirm]`.
    IosConfirmReload,
    /// IOS `copy running-config startup-config` → `Destination filename [startup-config]?`.
    IosCopyDestination,
    /// RouterOS `Reboot, yes? [y/N]:`.
    RosReboot,
}

/// A question the device asks before going on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Which one.
    pub id: QuestionId,
    /// Text shown (no newline).
    pub prompt: String,
    /// How the answer is read.
    pub input: Input,
}

/// What happens after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Show the prompt again.
    Prompt,
    /// Ask a question.
    Ask(Question),
    /// End the session.
    Logout,
    /// Reboot the device (drops every connection).
    Reboot,
}

/// A vendor's answer to one command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Text with `\n` line ends.
    pub output: String,
    /// The command failed (exec exit status 1).
    pub failed: bool,
    /// The output may be paged.
    pub paged: bool,
    /// What comes next.
    pub next: Next,
}

impl Reply {
    /// Output, then the prompt.
    pub fn ok(output: impl Into<String>) -> Self {
        Self {
            output: output.into(),
            failed: false,
            paged: false,
            next: Next::Prompt,
        }
    }
    /// Output that may be paged, then the prompt.
    pub fn paged(output: impl Into<String>) -> Self {
        Self {
            paged: true,
            ..Self::ok(output)
        }
    }
    /// An error message, then the prompt.
    pub fn fail(output: impl Into<String>) -> Self {
        Self {
            failed: true,
            ..Self::ok(output)
        }
    }
    /// Output, then something else than the prompt.
    pub fn then(mut self, next: Next) -> Self {
        self.next = next;
        self
    }
}

/// One vendor CLI session (per channel): what the terminal engine asks of it.
pub trait CliSession: Send {
    /// The greeting shown before the first prompt of a shell.
    fn banner(&self) -> String;
    /// The prompt for the session's current mode or menu.
    fn prompt(&self, device: &Device) -> String;
    /// Runs one line; `prompt_len` is the width of the prompt it was typed
    /// after (0 on an exec channel), for error markers under the line.
    fn execute(&mut self, device: &Device, line: &str, prompt_len: usize) -> Reply;
    /// Answers a question this session asked.
    fn answer(&mut self, device: &Device, q: QuestionId, input: &str) -> Reply;
    /// Lines per page for a terminal of `rows` rows, `None` when paging is off.
    fn page_len(&self, rows: u32) -> Option<usize>;
    /// A control key (Ctrl-C, Ctrl-D, Ctrl-Z) on the command line; `None`
    /// when the key means nothing here.
    fn control(&mut self, key: u8) -> Option<Reply>;
    /// Whether `?` asks for context help (otherwise it is an ordinary character).
    fn has_help(&self) -> bool;
    /// Context help for `?` typed after `partial` (only asked when [`Self::has_help`]).
    fn help(&self, partial: &str) -> String;
}
