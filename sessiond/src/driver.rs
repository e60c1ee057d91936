//! Driving network devices through their interactive shell: PTY, the
//! prompt learned at log-in (as scrapli does: the first prompt, confirmed by
//! an Enter that brings it back), paging off, one command line at a time,
//! output cleaned of echo, ANSI escapes and the trailing prompt; device
//! questions (`[confirm]`, `[y/N]`, `Password:`) and reboots as their own
//! outcomes. A command is complete the moment the learned prompt is the
//! last line again; quiet time ([`SETTLE`]) only decides for a prompt not
//! seen before, a question, or a device whose prompt could not be learned.
//! Limit: a device that pauses mid-line right after text that reads exactly
//! like its prompt ends that command early (so would any prompt matcher).
//!
//! Owns: when a command's output is complete, and what of the byte stream
//! is output. Must never: send a byte the caller did not ask for except the
//! set-up in [`DeviceShell::open`] (Enter to wake a silent device, one Enter
//! to confirm the prompt, paging off) and pager keys while a command's own output is being paged; send a
//! multi-line command (one approved line is one line on the device); or keep
//! a secret answer after sending it.

use std::time::Duration;

use gatehouse_policy::Vendor;
use tokio::time::{Instant, timeout_at};
use zeroize::Zeroizing;

use crate::ssh::{Connection, ShellEvent, ShellReader, ShellWriter, SshError};

/// PTY width: wide, so devices do not wrap or scroll long lines.
pub const SHELL_COLS: u16 = 511;
/// PTY height: tall, so RouterOS (which pages at the terminal height) does
/// not page; IOS-like devices get `terminal length 0` instead.
pub const SHELL_ROWS: u16 = 4096;
/// Terminal type announced with the PTY.
pub const SHELL_TERM: &str = "vt100";
/// Quiet time after a prompt not seen before (hostname changed), a device
/// question, or any line on a device whose prompt could not be learned,
/// before it counts: more output could still be on its way. A learned
/// prompt counts the moment it reappears (no quiet time).
const SETTLE: Duration = Duration::from_millis(250);
/// Most bytes of partial output quoted in a timeout error.
const PARTIAL_QUOTE: usize = 2048;
/// Longest line that can still be a prompt or question: only this much of
/// the output's end is examined after each chunk.
const MAX_PROMPT_LEN: usize = 4096;
/// Most output one command may produce (a device that never stops talking
/// must not exhaust memory).
pub const MAX_OUTPUT: usize = 64 * 1024 * 1024;
/// RouterOS login flags: no colours, no terminal auto-detection, 511
/// columns, 4096 rows (RouterOS `login_name+params`, see its console docs).
const ROUTEROS_LOGIN_FLAGS: &str = "+ct511w4096h";

/// Whether `vendor` is driven through a PTY shell with prompt detection
/// (network OSes) rather than exec channels (Linux).
pub fn uses_shell(vendor: Vendor) -> bool {
    !matches!(vendor, Vendor::Linux)
}

/// The login name to put in [`crate::ssh::Target::username`] for `vendor`:
/// RouterOS gets console flags appended (no colours, no terminal
/// auto-detection — which otherwise waits for replies to terminal queries —
/// and a 511×4096 terminal so nothing pages); others are unchanged.
pub fn login_name(vendor: Vendor, user: &str) -> String {
    match vendor {
        Vendor::RouterOs if !user.contains('+') => format!("{user}{ROUTEROS_LOGIN_FLAGS}"),
        _ => user.to_string(),
    }
}

/// What can go wrong driving a device shell.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The SSH layer failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// This vendor is not driven through a shell (see [`uses_shell`]).
    #[error("{0} is not driven through a shell (use exec)")]
    NotAShellVendor(Vendor),
    /// A command line containing CR, LF or other control characters.
    #[error("refused to send {0:?}: one command line without control characters expected")]
    NotOneLine(String),
    /// No prompt / answer within the time allowed.
    #[error("timed out after {after:?} waiting for {waiting_for}; last output: {partial:?}")]
    Timeout {
        /// What was awaited (the prompt after which command...).
        waiting_for: String,
        /// The time allowed.
        after: Duration,
        /// The end of what arrived.
        partial: String,
    },
    /// A set-up command (paging off) was refused by the device.
    #[error("device refused set-up command {command:?}: {output}")]
    Setup {
        /// The command.
        command: String,
        /// What the device said.
        output: String,
    },
    /// The shell ended before the command could be sent.
    #[error("the shell has ended ({0})")]
    ShellEnded(String),
    /// `answer` called while the device asks nothing.
    #[error("the device is not asking a question")]
    NoQuestion,
    /// More than [`MAX_OUTPUT`] bytes without the prompt coming back.
    #[error("more than {limit} bytes of output without a prompt after {command:?}")]
    OutputTooLarge {
        /// What was sent (the command; empty for a secret answer).
        command: String,
        /// The limit.
        limit: usize,
    },
}

/// How a device question is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// One keystroke, no Enter (`[confirm]`, `[y/N]:`); an empty answer is Enter.
    Key,
    /// A line ending with Enter (`[yes/no]:`, `Destination filename [...]?`).
    Line,
    /// A line typed without echo (`Password:`): answer with [`DeviceShell::answer_secret`].
    Secret,
}

/// The outcome of one command (or answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceOutput {
    /// The prompt came back.
    Completed {
        /// Output without echo, escapes and prompt; `\n` line ends.
        text: String,
        /// The prompt now shown (tells the mode: `R1(config)#`, `[admin@R1] /ip address> `).
        prompt: String,
    },
    /// The device asks a question and waits for [`DeviceShell::answer`].
    Question {
        /// Output before the question.
        text: String,
        /// The question line (`Proceed with reload? [confirm]`).
        question: String,
        /// How to answer it.
        kind: AnswerKind,
    },
    /// The shell channel was closed by the device (`exit`, `quit`, logout)
    /// after `text`; the connection itself may still be up.
    ShellClosed {
        /// Output before the close.
        text: String,
        /// Exit status, if the device sent one.
        status: Option<u32>,
    },
    /// The device dropped the connection (reboot, reload) after `text`.
    ConnectionDropped {
        /// Output before the drop (`system will reboot shortly`).
        text: String,
        /// The SSH disconnect reason, if the server sent one.
        reason: Option<String>,
    },
}

impl DeviceOutput {
    /// The output text, whatever the outcome.
    pub fn text(&self) -> &str {
        match self {
            DeviceOutput::Completed { text, .. }
            | DeviceOutput::Question { text, .. }
            | DeviceOutput::ShellClosed { text, .. }
            | DeviceOutput::ConnectionDropped { text, .. } => text,
        }
    }
}

/// Prompt and question recognition for one vendor family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// `[admin@R1] > `, `[admin@R1] /ip address> `, `[admin@R1] <SAFE> `.
    RouterOs,
    /// `R1>`, `R1#`, `R1(config)#`, `R1(config-if)#`; NX-OS adds a space.
    CiscoLike,
    /// `user@router> `, `user@router# `.
    Junos,
}

impl Dialect {
    fn of(vendor: Vendor) -> Option<Dialect> {
        match vendor {
            Vendor::RouterOs => Some(Dialect::RouterOs),
            Vendor::Ios | Vendor::IosXe | Vendor::NxOs | Vendor::Eos => Some(Dialect::CiscoLike),
            Vendor::Junos => Some(Dialect::Junos),
            Vendor::Linux => None,
        }
    }

    /// If `line` (one cleaned line) is a whole prompt, its stable part (the
    /// part naming the device, which changes only with the hostname).
    fn prompt_base(self, line: &str) -> Option<String> {
        let l = line.trim_end_matches(' ');
        if l.is_empty() || l.len() > 256 {
            return None;
        }
        match self {
            Dialect::RouterOs => {
                // "[user@identity]" then " " then optional menu path then ">".
                let rest = l.strip_prefix('[')?;
                let close = rest.find(']')?;
                let who = &rest[..close];
                let (user, id) = who.split_once('@')?;
                if user.is_empty() || id.is_empty() || who.contains('[') {
                    return None;
                }
                let after = rest[close + 1..].strip_prefix(' ')?;
                let menu = after.strip_suffix('>')?;
                let menu_ok = menu.is_empty()
                    || menu == "<SAFE"
                    || (menu.starts_with('/') && !menu.contains(['>', '[', ']']));
                menu_ok.then(|| format!("[{who}]"))
            }
            Dialect::CiscoLike => {
                let body = l.strip_suffix(['>', '#'])?;
                let (host, mode) = match body.split_once('(') {
                    Some((h, m)) => (h, Some(m.strip_suffix(')')?)),
                    None => (body, None),
                };
                let host_ok = host
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
                let mode_ok = mode.is_none_or(|m| {
                    !m.is_empty()
                        && m.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c))
                });
                (host_ok && mode_ok).then(|| host.to_string())
            }
            Dialect::Junos => {
                let body = l.strip_suffix(['>', '#'])?;
                let (user, host) = body.split_once('@')?;
                let ok = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                };
                (ok(user) && ok(host)).then(|| body.to_string())
            }
        }
    }

    /// The pager prompt at the end of `line`, with the key that shows the rest.
    fn pager_key(self, line: &str) -> Option<&'static [u8]> {
        let l = line.trim();
        match self {
            Dialect::RouterOs if l == "-- [Q quit|D dump|down]" => Some(b"d"),
            Dialect::CiscoLike if l == "--More--" => Some(b" "),
            Dialect::Junos if l.starts_with("---(more") && l.ends_with(")---") => Some(b" "),
            _ => None,
        }
    }
}

/// A device question at the end of `line`, if any.
fn question_kind(line: &str) -> Option<AnswerKind> {
    let l = line.trim_end();
    let lower = l.to_ascii_lowercase();
    if l.ends_with("[confirm]") || lower.ends_with("[y/n]:") {
        Some(AnswerKind::Key)
    } else if lower.ends_with("password:") {
        Some(AnswerKind::Secret)
    } else if lower.ends_with("[yes/no]:") || lower.ends_with("[yes/no]") || l.ends_with("]?") {
        Some(AnswerKind::Line)
    } else {
        None
    }
}

/// Renders raw terminal output as text: ANSI/VT escape sequences dropped,
/// carriage return and backspace applied as a terminal would (overwrite),
/// other control characters dropped, `\n` line ends, trailing spaces trimmed.
pub fn render_terminal_text(raw: &[u8]) -> Vec<String> {
    /// Where in an escape sequence the renderer is.
    #[derive(Clone, Copy, PartialEq)]
    enum Esc {
        None,
        Started,
        Csi,
        Osc,
        /// ESC inside an OSC string (the terminator ESC backslash).
        OscTerminator,
        Charset,
    }
    let text = String::from_utf8_lossy(raw);
    let mut lines = Vec::new();
    let mut line: Vec<char> = Vec::new();
    let mut col = 0usize;
    let mut esc = Esc::None;
    for c in text.chars() {
        match esc {
            Esc::Started => {
                esc = match c {
                    '[' => Esc::Csi,
                    ']' => Esc::Osc,
                    '(' | ')' | '*' | '+' | '#' => Esc::Charset,
                    _ => Esc::None,
                };
                continue;
            }
            Esc::Csi => {
                if ('\x40'..='\x7e').contains(&c) {
                    esc = Esc::None;
                }
                continue;
            }
            Esc::Osc => {
                esc = match c {
                    '\x07' => Esc::None,
                    '\x1b' => Esc::OscTerminator,
                    _ => Esc::Osc,
                };
                continue;
            }
            Esc::OscTerminator | Esc::Charset => {
                esc = Esc::None;
                continue;
            }
            Esc::None => {}
        }
        match c {
            '\x1b' => esc = Esc::Started,
            '\n' => {
                let s: String = line.iter().collect();
                lines.push(s.trim_end().to_string());
                line.clear();
                col = 0;
            }
            '\r' => col = 0,
            '\x08' => col = col.saturating_sub(1),
            '\t' => {
                let to = (col / 8 + 1) * 8;
                while col < to {
                    put(&mut line, col, ' ');
                    col += 1;
                }
            }
            c if c.is_control() => {}
            c => {
                put(&mut line, col, c);
                col += 1;
            }
        }
    }
    let s: String = line.iter().collect();
    lines.push(s.trim_end_matches(['\r']).to_string());
    lines
}

fn put(line: &mut Vec<char>, col: usize, c: char) {
    if col < line.len() {
        line[col] = c;
    } else {
        line.resize(col, ' ');
        line.push(c);
    }
}

/// Where the last (unterminated) line of `raw` starts, looking back at most
/// [`MAX_PROMPT_LEN`] bytes; `None` if the line is longer (no prompt then).
fn tail_start(raw: &[u8]) -> Option<usize> {
    let window = raw.len().saturating_sub(MAX_PROMPT_LEN);
    match raw[window..].iter().rposition(|&b| b == b'\n') {
        Some(i) => Some(window + i + 1),
        None if window == 0 => Some(0),
        None => None,
    }
}

/// The last (unterminated) line of `raw`, rendered; empty if too long to
/// be a prompt.
fn tail_line(raw: &[u8]) -> String {
    match tail_start(raw) {
        Some(start) => render_terminal_text(&raw[start..])
            .pop()
            .unwrap_or_default(),
        None => String::new(),
    }
}

/// What the tail of the output is.
enum Tail {
    /// A prompt; `known`: the learned one (the command is done).
    Prompt {
        line: String,
        base: String,
        known: bool,
    },
    Question {
        line: String,
        kind: AnswerKind,
    },
    Pager(&'static [u8]),
    /// A line that is no prompt the dialect knows, on a device whose prompt
    /// is not the dialect's (or while learning it): it stands after
    /// [`SETTLE`] of quiet.
    Unrecognized {
        line: String,
    },
    Nothing,
}

/// How the end of a command's output is recognized, as learned at log-in
/// (the way scrapli finds a device's prompt: read to the first prompt, press
/// Enter, the same prompt comes back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptMatch {
    /// The vendor's prompt shape with the learned hostname: done the moment it
    /// is the last line (config modes and menus keep the hostname).
    Dialect,
    /// A prompt the dialect does not know, learned as this exact line: done
    /// the moment it reappears; another line stands after quiet time.
    Literal(String),
    /// No stable prompt (it changed between two Enters): every command ends
    /// after [`SETTLE`] of quiet.
    Quiet,
}

/// A network device's shell, ready for commands. Lives on the
/// [`Connection`] it was opened on: keep that open while using it.
#[derive(Debug)]
pub struct DeviceShell {
    writer: ShellWriter,
    reader: ShellReader,
    dialect: Dialect,
    vendor: Vendor,
    /// Stable part of the last prompt (hostname).
    base: String,
    /// The last prompt line.
    prompt: String,
    /// How the prompt is recognized (learned at log-in).
    matching: PromptMatch,
    /// The question the device is waiting on, if any.
    asking: Option<AnswerKind>,
    /// Set once the shell has ended.
    ended: Option<String>,
}

/// How an exchange's output is read.
struct Exchange<'a> {
    /// The first line is the echo of this (dropped when it matches).
    echo: &'a str,
    waiting_for: String,
    deadline: Instant,
    after: Duration,
    /// Whether a prompt or question counts only after a newline (the echo's
    /// Enter): true for commands and answers, false at log-in.
    after_newline: bool,
    /// Learning the prompt at log-in: a prompt-shaped line ends the read at
    /// once (the caller confirms it with an Enter), any other last line
    /// after quiet time.
    learn: bool,
}

impl DeviceShell {
    /// Opens a PTY shell (511 columns), waits for the vendor's prompt and
    /// turns paging off (IOS-like: `terminal length 0` and `terminal width
    /// 511`; Junos: `set cli screen-length 0`; RouterOS: a 4096-row terminal
    /// and the login flags of [`login_name`]). Sends no user command.
    pub async fn open(
        conn: &Connection,
        vendor: Vendor,
        timeout: Duration,
    ) -> Result<DeviceShell, DriverError> {
        let dialect = Dialect::of(vendor).ok_or(DriverError::NotAShellVendor(vendor))?;
        let deadline = Instant::now() + timeout;
        let shell = conn.shell(SHELL_COLS, SHELL_ROWS, SHELL_TERM).await?;
        let (writer, reader) = shell.into_parts();
        let mut sh = DeviceShell {
            writer,
            reader,
            dialect,
            vendor,
            base: String::new(),
            prompt: String::new(),
            matching: PromptMatch::Dialect,
            asking: None,
            ended: None,
        };
        // Some devices print nothing until Enter: wait a third of the time,
        // then press Enter once.
        let first = Instant::now() + timeout / 3;
        let ex = Exchange {
            echo: "",
            waiting_for: format!("the {vendor} prompt"),
            deadline: first,
            after: timeout,
            after_newline: false,
            learn: true,
        };
        let out = match sh.read_until_prompt(ex).await {
            Ok(o) => o,
            Err(DriverError::Timeout { .. }) => {
                sh.writer.write(b"\r").await?;
                let ex = Exchange {
                    echo: "",
                    waiting_for: format!("the {vendor} prompt (after Enter)"),
                    deadline,
                    after: timeout,
                    after_newline: false,
                    learn: true,
                };
                sh.read_until_prompt(ex).await?
            }
            Err(e) => return Err(e),
        };
        match out {
            DeviceOutput::Completed { .. } => {}
            DeviceOutput::Question { question, .. } => {
                return Err(DriverError::Setup {
                    command: String::new(),
                    output: format!("device asks {question:?} at log-in"),
                });
            }
            other => return Err(ended_at_login(other)),
        }
        sh.learn_prompt(deadline, timeout).await?;
        let setup: &[&str] = match dialect {
            Dialect::CiscoLike => &["terminal length 0", "terminal width 511"],
            Dialect::Junos => &["set cli screen-length 0"],
            Dialect::RouterOs => &[],
        };
        for cmd in setup {
            let left = deadline.saturating_duration_since(Instant::now());
            match sh.run(cmd, left).await? {
                DeviceOutput::Completed { text, .. } if !refused(&text) => {}
                other => {
                    return Err(DriverError::Setup {
                        command: (*cmd).to_string(),
                        output: other.text().to_string(),
                    });
                }
            }
        }
        Ok(sh)
    }

    /// Confirms the prompt the log-in ended with: one Enter, and the same
    /// prompt must come back. A dialect prompt (same hostname) is then
    /// matched at once after every command; a prompt the dialect does not
    /// know is learned as its exact text; one that changes between the two
    /// (a clock in it) cannot be learned: commands then end after quiet time.
    async fn learn_prompt(
        &mut self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let candidate = self.prompt.clone();
        let dialect = self.dialect.prompt_base(&candidate).is_some();
        if !dialect {
            self.matching = PromptMatch::Literal(candidate.clone());
        }
        self.ready_to_send()?;
        self.writer.write(b"\r").await?;
        let ex = Exchange {
            echo: "",
            waiting_for: format!("the {} prompt again (after Enter)", self.vendor),
            deadline,
            after: timeout,
            after_newline: true,
            learn: true,
        };
        match self.read_until_prompt(ex).await? {
            DeviceOutput::Completed { prompt, .. } => {
                if !dialect && prompt != candidate {
                    tracing::debug!(
                        "prompt {candidate:?} then {prompt:?}: not stable, using quiet time"
                    );
                    self.matching = PromptMatch::Quiet;
                }
                Ok(())
            }
            DeviceOutput::Question { question, .. } => Err(DriverError::Setup {
                command: String::new(),
                output: format!("device asks {question:?} at log-in"),
            }),
            other => Err(ended_at_login(other)),
        }
    }

    /// How this shell recognizes the end of a command's output.
    pub fn prompt_match(&self) -> &PromptMatch {
        &self.matching
    }

    /// The vendor this shell speaks.
    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    /// The prompt last shown (tells the mode or menu).
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// Sends one command line, reads until the prompt returns (or a question,
    /// or the connection drops) and returns the output without the echoed
    /// command, escapes and the prompt.
    pub async fn run(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<DeviceOutput, DriverError> {
        if command.chars().any(|c| c.is_control()) {
            return Err(DriverError::NotOneLine(command.to_string()));
        }
        self.ready_to_send()?;
        let mut line = Vec::with_capacity(command.len() + 1);
        line.extend_from_slice(command.as_bytes());
        line.push(b'\r');
        self.writer.write(&line).await?;
        let ex = Exchange {
            echo: command,
            waiting_for: format!("the prompt after {command:?}"),
            deadline: Instant::now() + timeout,
            after: timeout,
            after_newline: true,
            learn: false,
        };
        self.read_until_prompt(ex).await
    }

    /// Answers the question the last output ended with: a [`AnswerKind::Key`]
    /// question gets `reply` as keystrokes (empty: Enter), a
    /// [`AnswerKind::Line`] question gets `reply` and Enter.
    pub async fn answer(
        &mut self,
        reply: &str,
        timeout: Duration,
    ) -> Result<DeviceOutput, DriverError> {
        if reply.chars().any(|c| c.is_control()) {
            return Err(DriverError::NotOneLine(reply.to_string()));
        }
        let kind = self.asking.ok_or(DriverError::NoQuestion)?;
        self.ready_to_send()?;
        let mut bytes = reply.as_bytes().to_vec();
        if kind != AnswerKind::Key || reply.is_empty() {
            bytes.push(b'\r');
        }
        self.writer.write(&bytes).await?;
        let ex = Exchange {
            echo: reply,
            waiting_for: "the prompt after the answer".into(),
            deadline: Instant::now() + timeout,
            after: timeout,
            after_newline: true,
            learn: false,
        };
        self.read_until_prompt(ex).await
    }

    /// Answers a question with a secret (the IOS `enable` password), which
    /// is wiped after sending and never appears in errors.
    pub async fn answer_secret(
        &mut self,
        secret: Zeroizing<String>,
        timeout: Duration,
    ) -> Result<DeviceOutput, DriverError> {
        if secret.chars().any(|c| c.is_control()) {
            return Err(DriverError::NotOneLine("(secret)".into()));
        }
        if self.asking.is_none() {
            return Err(DriverError::NoQuestion);
        }
        self.ready_to_send()?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(secret.len() + 1));
        bytes.extend_from_slice(secret.as_bytes());
        bytes.push(b'\r');
        drop(secret);
        self.writer.write(&bytes).await?;
        drop(bytes);
        let ex = Exchange {
            echo: "",
            waiting_for: "the prompt after the secret answer".into(),
            deadline: Instant::now() + timeout,
            after: timeout,
            after_newline: true,
            learn: false,
        };
        self.read_until_prompt(ex).await
    }

    /// Ends the shell (EOF, then the channel closes).
    pub async fn close(self) {
        let _ = self.writer.eof().await;
    }

    /// Drains output that arrived while nobody was reading (it belongs to
    /// no command) and refuses to send into a shell that has ended.
    fn ready_to_send(&mut self) -> Result<(), DriverError> {
        if let Some(why) = &self.ended {
            return Err(DriverError::ShellEnded(why.clone()));
        }
        loop {
            // `next` is cancel-safe: polling it once loses nothing.
            let polled = std::pin::pin!(self.reader.next());
            match futures_poll_once(polled) {
                Some(Some(ShellEvent::Data(_))) => continue,
                Some(Some(ShellEvent::Exit(status))) => {
                    let why = format!("shell exited with status {status:?}");
                    self.ended = Some(why.clone());
                    return Err(DriverError::ShellEnded(why));
                }
                Some(Some(ShellEvent::Closed)) | Some(None) => {
                    let why = "connection closed".to_string();
                    self.ended = Some(why.clone());
                    return Err(DriverError::ShellEnded(why));
                }
                None => return Ok(()),
            }
        }
    }

    /// What the end of `raw` is. `newline_seen`: whether `raw` has a
    /// newline (after a command, a prompt or question counts only after the
    /// echo's Enter).
    fn classify_tail(&self, raw: &[u8], ex: &Exchange<'_>, newline_seen: bool) -> Tail {
        if ex.after_newline && !newline_seen {
            return Tail::Nothing;
        }
        let line = tail_line(raw);
        if let PromptMatch::Literal(p) = &self.matching
            && *p == line
        {
            let base = line.clone();
            return Tail::Prompt {
                line,
                base,
                known: true,
            };
        }
        if let Some(base) = self.dialect.prompt_base(&line) {
            let known = self.matching == PromptMatch::Dialect && base == self.base;
            return Tail::Prompt { line, base, known };
        }
        if let Some(key) = self.dialect.pager_key(&line) {
            return Tail::Pager(key);
        }
        if let Some(kind) = question_kind(&line) {
            return Tail::Question { line, kind };
        }
        if !line.trim().is_empty() && (ex.learn || self.matching != PromptMatch::Dialect) {
            return Tail::Unrecognized { line };
        }
        Tail::Nothing
    }

    async fn read_until_prompt(&mut self, ex: Exchange<'_>) -> Result<DeviceOutput, DriverError> {
        self.asking = None;
        let mut raw: Vec<u8> = Vec::new();
        let mut newline_seen = false;
        // When set: a candidate prompt/question stands if nothing more
        // arrives by then.
        let mut settled_at: Option<Instant> = None;
        loop {
            let wait_until = match settled_at {
                Some(t) => t.min(ex.deadline),
                None => ex.deadline,
            };
            let event = match timeout_at(wait_until, self.reader.next()).await {
                Ok(ev) => ev,
                Err(_) if settled_at.is_some() => {
                    // Quiet long enough: the candidate prompt/question stands.
                    return Ok(self.finish(&raw, &ex, newline_seen));
                }
                Err(_) => {
                    return Err(DriverError::Timeout {
                        waiting_for: ex.waiting_for,
                        after: ex.after,
                        partial: quote_tail(&raw),
                    });
                }
            };
            match event {
                Some(ShellEvent::Data(d)) => {
                    if raw.len() + d.len() > MAX_OUTPUT {
                        return Err(DriverError::OutputTooLarge {
                            command: ex.echo.to_string(),
                            limit: MAX_OUTPUT,
                        });
                    }
                    newline_seen |= d.contains(&b'\n');
                    raw.extend_from_slice(&d);
                }
                Some(ShellEvent::Exit(status)) => {
                    self.ended = Some(format!("shell exited with status {status:?}"));
                    let (text, _) = Self::body(&raw, &ex, false);
                    return Ok(DeviceOutput::ShellClosed { text, status });
                }
                Some(ShellEvent::Closed) | None => {
                    self.ended = Some("connection closed".into());
                    return Ok(self.dropped(&raw, &ex));
                }
            }
            settled_at = None;
            match self.classify_tail(&raw, &ex, newline_seen) {
                // The learned prompt, or a prompt-shaped line while learning
                // (confirmed with an Enter by `learn_prompt`).
                Tail::Prompt { known: true, .. } => {
                    return Ok(self.finish(&raw, &ex, newline_seen));
                }
                Tail::Prompt { .. } if ex.learn => {
                    return Ok(self.finish(&raw, &ex, newline_seen));
                }
                Tail::Prompt { .. } | Tail::Question { .. } | Tail::Unrecognized { .. } => {
                    settled_at = Some(Instant::now() + SETTLE);
                }
                Tail::Pager(key) => {
                    // Remove the pager prompt from the output and continue it.
                    if let Some(start) = tail_start(&raw) {
                        raw.truncate(start);
                    }
                    self.writer.write(key).await?;
                }
                Tail::Nothing => {}
            }
        }
    }

    /// Output lines without the echo line and the final (prompt or question) line.
    fn body(raw: &[u8], ex: &Exchange<'_>, drop_last: bool) -> (String, String) {
        let mut lines = render_terminal_text(raw);
        let last = if drop_last {
            lines.pop().unwrap_or_default()
        } else {
            String::new()
        };
        if ex.after_newline
            && lines
                .first()
                .is_some_and(|l| l.trim_end().ends_with(ex.echo.trim()))
        {
            lines.remove(0);
        }
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        (lines.join("\n"), last)
    }

    fn finish(&mut self, raw: &[u8], ex: &Exchange<'_>, newline_seen: bool) -> DeviceOutput {
        match self.classify_tail(raw, ex, newline_seen) {
            Tail::Prompt { line, base, .. } => {
                let (text, _) = Self::body(raw, ex, true);
                self.base = base;
                self.prompt = line.clone();
                DeviceOutput::Completed { text, prompt: line }
            }
            // Quiet after a line no dialect knows: that line is the prompt
            // now (a literal prompt follows it: a mode change).
            Tail::Unrecognized { line } => {
                let (text, _) = Self::body(raw, ex, true);
                if let PromptMatch::Literal(p) = &mut self.matching {
                    *p = line.clone();
                }
                self.prompt = line.clone();
                DeviceOutput::Completed { text, prompt: line }
            }
            Tail::Question { line, kind } => {
                let (text, _) = Self::body(raw, ex, true);
                self.asking = Some(kind);
                DeviceOutput::Question {
                    text,
                    question: line.trim_end().to_string(),
                    kind,
                }
            }
            // Not reached: finish is only called with a prompt or question tail.
            Tail::Pager(_) | Tail::Nothing => {
                let (text, _) = Self::body(raw, ex, false);
                DeviceOutput::Completed {
                    text,
                    prompt: self.prompt.clone(),
                }
            }
        }
    }

    fn dropped(&self, raw: &[u8], ex: &Exchange<'_>) -> DeviceOutput {
        let (text, _) = Self::body(raw, ex, false);
        DeviceOutput::ConnectionDropped {
            text,
            reason: self.reader.disconnect_reason(),
        }
    }
}

/// A log-in that ended in something other than a prompt, as an error.
fn ended_at_login(out: DeviceOutput) -> DriverError {
    match out {
        DeviceOutput::ConnectionDropped { reason, .. } => {
            DriverError::ShellEnded(reason.unwrap_or_else(|| "connection closed at log-in".into()))
        }
        DeviceOutput::ShellClosed { status, .. } => {
            DriverError::ShellEnded(format!("shell closed at log-in (status {status:?})"))
        }
        DeviceOutput::Question { question, .. } => DriverError::Setup {
            command: String::new(),
            output: format!("device asks {question:?} at log-in"),
        },
        DeviceOutput::Completed { .. } => DriverError::Setup {
            command: String::new(),
            output: "log-in ended without a prompt".into(),
        },
    }
}

/// Whether set-up output is a refusal.
fn refused(text: &str) -> bool {
    refusal(text).is_some()
}

/// The line of a command's output in which the device refused it (IOS-like
/// `% Invalid …`/`% Unknown …`/`% Incomplete …`, Junos `syntax error`,
/// RouterOS `bad command name …`/`expected end of command …`/`syntax error …`),
/// if any.
pub fn refusal(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| {
        l.starts_with("% Invalid")
            || l.starts_with("% Unknown")
            || l.starts_with("% Incomplete")
            || l.starts_with("% Ambiguous")
            || l.starts_with("syntax error")
            || l.starts_with("bad command name")
            || l.starts_with("expected end of command")
    })
}

/// The last [`PARTIAL_QUOTE`] bytes of `raw`, rendered.
fn quote_tail(raw: &[u8]) -> String {
    let start = raw.len().saturating_sub(PARTIAL_QUOTE);
    render_terminal_text(&raw[start..]).join("\n")
}

/// Polls a future once with a no-op waker: `Some(output)` if it was ready.
fn futures_poll_once<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routeros_prompts() {
        let d = Dialect::RouterOs;
        assert_eq!(
            d.prompt_base("[admin@R1] > ").as_deref(),
            Some("[admin@R1]")
        );
        assert_eq!(
            d.prompt_base("[admin@R1] /ip address> ").as_deref(),
            Some("[admin@R1]")
        );
        assert_eq!(
            d.prompt_base("[admin@MikroTik] /ip/address> ").as_deref(),
            Some("[admin@MikroTik]")
        );
        assert_eq!(
            d.prompt_base("[admin@R1] <SAFE> ").as_deref(),
            Some("[admin@R1]")
        );
        for not in [
            "",
            "> ",
            "[admin@R1]",
            "[admin@R1] > /ip address print",
            "admin@R1 > ",
            "[R1] > ",
            " 0   10.0.0.1/24 > ",
            "-- [Q quit|D dump|down]",
        ] {
            assert_eq!(d.prompt_base(not), None, "{not:?}");
        }
    }

    #[test]
    fn cisco_prompts() {
        let d = Dialect::CiscoLike;
        for (p, base) in [
            ("R1>", "R1"),
            ("R1#", "R1"),
            ("R1(config)#", "R1"),
            ("R1(config-if)#", "R1"),
            ("core-sw.lab_1(config-subif)#", "core-sw.lab_1"),
            ("switch(config-if-Et1/1)# ", "switch"),
        ] {
            assert_eq!(d.prompt_base(p).as_deref(), Some(base), "{p:?}");
        }
        for not in [
            "",
            "#",
            "R1# show version",
            "% Invalid input detected at '^' marker.",
            "  ^",
            "Building configuration...",
            "R1(config#",
            "interface GigabitEthernet0/0 #",
            "end",
        ] {
            assert_eq!(d.prompt_base(not), None, "{not:?}");
        }
    }

    #[test]
    fn junos_prompts() {
        let d = Dialect::Junos;
        assert!(d.prompt_base("admin@mx1> ").is_some());
        assert!(d.prompt_base("admin@mx1# ").is_some());
        assert!(d.prompt_base("[edit]").is_none());
    }

    #[test]
    fn questions() {
        assert_eq!(
            question_kind("Proceed with reload? [confirm]"),
            Some(AnswerKind::Key)
        );
        assert_eq!(question_kind("Reboot, yes? [y/N]: "), Some(AnswerKind::Key));
        assert_eq!(question_kind("Password: "), Some(AnswerKind::Secret));
        assert_eq!(
            question_kind("System configuration has been modified. Save? [yes/no]: "),
            Some(AnswerKind::Line)
        );
        assert_eq!(
            question_kind("Destination filename [startup-config]?"),
            Some(AnswerKind::Line)
        );
        assert_eq!(question_kind("R1#"), None);
        assert_eq!(question_kind("some output"), None);
    }

    #[test]
    fn terminal_text_rendering() {
        assert_eq!(
            render_terminal_text(b"\x1b[1;32mgreen\x1b[0m text\r\nnext\r\n"),
            vec!["green text", "next", ""]
        );
        // Pager erase: the prompt is overwritten by spaces, then by output.
        assert_eq!(
            render_terminal_text(b" --More-- \r          \rline 25\r\n"),
            vec!["line 25", ""]
        );
        assert_eq!(render_terminal_text(b"abc\x08\x08X\r\n"), vec!["aXc", ""]);
        assert_eq!(
            render_terminal_text(b"\x1b]0;title\x07ok\x1b(B!"),
            vec!["ok!"]
        );
        assert_eq!(render_terminal_text(b"a\tb"), vec!["a       b"]);
        // Invalid UTF-8 and stray controls never panic.
        assert_eq!(render_terminal_text(b"\xff\x00\x1b"), vec!["\u{fffd}"]);
    }

    #[test]
    fn only_the_end_of_the_output_is_searched_for_a_prompt() {
        assert_eq!(tail_line(b"out\r\nR1#"), "R1#");
        assert_eq!(tail_line(b"R1#"), "R1#");
        assert_eq!(tail_line(b""), "");
        let mut long = vec![b'x'; MAX_PROMPT_LEN + 10];
        long.extend_from_slice(b"R1#");
        assert_eq!(tail_start(&long), None);
        assert_eq!(tail_line(&long), "");
        long.push(b'\n');
        assert_eq!(tail_start(&long), Some(long.len()));
    }

    #[test]
    fn login_names() {
        assert_eq!(login_name(Vendor::RouterOs, "admin"), "admin+ct511w4096h");
        assert_eq!(login_name(Vendor::RouterOs, "admin+ct"), "admin+ct");
        assert_eq!(login_name(Vendor::Ios, "admin"), "admin");
    }

    #[test]
    fn shell_vendors() {
        assert!(uses_shell(Vendor::RouterOs));
        assert!(uses_shell(Vendor::Ios));
        assert!(uses_shell(Vendor::NxOs));
        assert!(uses_shell(Vendor::Junos));
        assert!(!uses_shell(Vendor::Linux));
    }
}
