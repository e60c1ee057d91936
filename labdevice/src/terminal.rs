//! The vendor-neutral shell engine: turns raw channel bytes into command
//! lines (echo, `\r`/`\n`/`\r\n`, backspace, Ctrl-U/C/D/Z, escape sequences
//! ignored), logs each line *before* it runs, asks the vendor CLI to run it,
//! pages long output (`--More--` / `-- [Q quit|D dump|down]`) and handles
//! device questions (`[confirm]`, `[y/N]`, `Password:`).
//!
//! It is a pure state machine over bytes — no I/O — so it can be fed any
//! input in tests; the SSH layer only moves bytes in and out.

use std::sync::Arc;

use crate::cli::{CliSession, Input, Next, Question, Reply};
use crate::device::{Device, Vendor};
use crate::eventlog::Kind;

/// Longest command line kept; further characters are refused with a bell.
pub const MAX_LINE: usize = 1024;

/// How the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The user logged out (`exit`, `quit`, Ctrl-D).
    Logout,
    /// The device reboots; the connection must be dropped.
    Reboot,
    /// An exec request finished with this status.
    Exit(u32),
}

/// Bytes to send back and, maybe, the end of the session.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// Bytes for the client.
    pub bytes: Vec<u8>,
    /// Set once: the session is over.
    pub end: Option<End>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    None,
    Started,
    Csi,
}

struct Pager {
    lines: Vec<String>,
    next: Next,
}

enum State {
    Line,
    Paging(Pager),
    Asking(Question),
    Done,
}

/// One shell or exec channel.
pub struct Terminal {
    device: Arc<Device>,
    session: u64,
    cli: Box<dyn CliSession>,
    exec: bool,
    echo: bool,
    crlf: bool,
    paging: bool,
    rows: u32,
    line: Vec<u8>,
    after_cr: bool,
    esc: Esc,
    state: State,
    failed: bool,
}

impl Terminal {
    /// An interactive shell. With a PTY it echoes, ends lines with `\r\n` and pages.
    /// `cli` is the device vendor's shell session (`vendors::session(.., false)`).
    pub fn shell(
        device: Arc<Device>,
        session: u64,
        cli: Box<dyn CliSession>,
        pty_rows: Option<u32>,
    ) -> Self {
        let pty = pty_rows.is_some();
        Self {
            device,
            session,
            cli,
            exec: false,
            echo: pty,
            crlf: pty,
            paging: pty,
            rows: pty_rows.unwrap_or(0),
            line: Vec::new(),
            after_cr: false,
            esc: Esc::None,
            state: State::Line,
            failed: false,
        }
    }

    /// An exec channel: no prompt, no echo, no paging. `cli` is the device
    /// vendor's exec session (`vendors::session(.., true)`: IOS starts privileged).
    pub fn exec(device: Arc<Device>, session: u64, cli: Box<dyn CliSession>) -> Self {
        Self {
            device,
            session,
            cli,
            exec: true,
            echo: false,
            crlf: false,
            paging: false,
            rows: 0,
            line: Vec::new(),
            after_cr: false,
            esc: Esc::None,
            state: State::Line,
            failed: false,
        }
    }

    /// The terminal height changed.
    pub fn set_rows(&mut self, rows: u32) {
        self.rows = rows;
    }

    /// The greeting and first prompt of a shell.
    pub fn start(&mut self) -> Output {
        let mut out = Output::default();
        let banner = self.cli.banner();
        self.emit(&mut out, &banner);
        self.prompt(&mut out);
        out
    }

    /// Has the vendor CLI run one line (`exec`: typed with no prompt before it).
    fn run_line(&mut self, line: &str, exec: bool) -> Reply {
        let prompt_len = if exec {
            0
        } else {
            self.cli.prompt(&self.device).chars().count()
        };
        self.cli.execute(&self.device, line, prompt_len)
    }

    /// Runs the one command of an exec request.
    pub fn run_exec(&mut self, command: &str) -> Output {
        self.device.log.record(self.session, Kind::Exec, command);
        let mut out = Output::default();
        let reply = self.run_line(command, true);
        self.after_reply(&mut out, reply);
        out
    }

    /// Whether the session is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Feeds bytes from the client.
    pub fn feed(&mut self, data: &[u8]) -> Output {
        let mut out = Output::default();
        if self.device.log_data && !data.is_empty() {
            self.device
                .log
                .record(self.session, Kind::Data, &String::from_utf8_lossy(data));
        }
        for &b in data {
            if out.end.is_some() || self.is_done() {
                break;
            }
            // "\r\n" is one Enter.
            if b == b'\n' && self.after_cr {
                self.after_cr = false;
                continue;
            }
            self.after_cr = b == b'\r';
            // Escape sequences (arrow keys...) are swallowed, except ↓ while paging.
            match self.esc {
                Esc::Started => {
                    self.esc = if b == b'[' || b == b'O' {
                        Esc::Csi
                    } else {
                        Esc::None
                    };
                    continue;
                }
                Esc::Csi => {
                    if (0x40..=0x7e).contains(&b) {
                        self.esc = Esc::None;
                        if b == b'B' && matches!(self.state, State::Paging(_)) {
                            self.page_key(&mut out, b'\n');
                        }
                    }
                    continue;
                }
                Esc::None => {}
            }
            if b == 0x1b {
                self.esc = Esc::Started;
                continue;
            }
            match &self.state {
                State::Paging(_) => self.page_key(&mut out, b),
                State::Asking(q) if q.input == Input::Key => {
                    let q = q.clone();
                    self.key_answer(&mut out, q, b);
                }
                State::Asking(q) => {
                    let echo = matches!(q.input, Input::Line { echo: true }) && self.echo;
                    let q = q.clone();
                    self.edit(&mut out, b, echo, Some(q));
                }
                State::Line => {
                    let echo = self.echo;
                    self.edit(&mut out, b, echo, None);
                }
                State::Done => {}
            }
        }
        out
    }

    /// The client closed its side (EOF). An exec waiting for an answer gets
    /// the partial line typed so far, if any; with nothing typed the
    /// question is abandoned (never taken as a confirmation) and the exec
    /// ends with status 1.
    pub fn eof(&mut self) -> Output {
        let mut out = Output::default();
        if self.exec && !self.is_done() {
            if matches!(self.state, State::Asking(_)) && self.line.is_empty() {
                self.failed = true;
            } else if let State::Asking(q) = &self.state {
                let q = q.clone();
                let line = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                self.device.log.record(self.session, Kind::Answer, &line);
                self.state = State::Line;
                let reply = self.cli.answer(&self.device, q.id, &line);
                self.after_reply(&mut out, reply);
            }
            if !self.is_done() {
                self.state = State::Done;
                out.end = Some(End::Exit(u32::from(self.failed)));
            }
        }
        out
    }

    fn edit(&mut self, out: &mut Output, b: u8, echo: bool, question: Option<Question>) {
        match b {
            b'\r' | b'\n' => {
                if self.echo {
                    self.emit(out, "\n");
                }
                let line = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                match question {
                    Some(q) => {
                        let logged = if matches!(q.input, Input::Line { echo: false }) {
                            "(not echoed)"
                        } else {
                            line.as_str()
                        };
                        self.device.log.record(self.session, Kind::Answer, logged);
                        self.state = State::Line;
                        let reply = self.cli.answer(&self.device, q.id, &line);
                        self.after_reply(out, reply);
                    }
                    None => {
                        if self.exec {
                            // Extra input to an exec that asked nothing is ignored.
                            return;
                        }
                        self.device.log.record(self.session, Kind::Command, &line);
                        let reply = self.run_line(&line, false);
                        self.after_reply(out, reply);
                    }
                }
            }
            0x08 | 0x7f => {
                if self.line.pop().is_some() {
                    while self.line.last().is_some_and(|c| c & 0xc0 == 0x80) {
                        self.line.pop();
                    }
                    if echo {
                        out.bytes.extend_from_slice(b"\x08 \x08");
                    }
                }
            }
            0x15 => {
                // Ctrl-U: kill the line.
                if echo {
                    for _ in 0..String::from_utf8_lossy(&self.line).chars().count() {
                        out.bytes.extend_from_slice(b"\x08 \x08");
                    }
                }
                self.line.clear();
            }
            0x03 | 0x04 | 0x1a if question.is_none() && !self.exec => {
                if b == 0x04 && !self.line.is_empty() {
                    return;
                }
                self.line.clear();
                if let Some(reply) = self.cli.control(b) {
                    if self.echo {
                        self.emit(out, "\n");
                    }
                    self.after_reply(out, reply);
                }
            }
            b'?' if question.is_none() && !self.exec && self.cli.has_help() => {
                // IOS context help: answer at once, then give the line back.
                let partial = String::from_utf8_lossy(&self.line).into_owned();
                let help = self.cli.help(&partial);
                if echo {
                    out.bytes.push(b'?');
                }
                self.emit(out, "\n");
                self.emit(out, &help);
                self.prompt(out);
                if echo {
                    out.bytes.extend_from_slice(&self.line);
                }
            }
            b'\t' => {}
            c if c < 0x20 => {}
            c => {
                if self.line.len() >= MAX_LINE {
                    if echo {
                        out.bytes.push(0x07);
                    }
                    return;
                }
                self.line.push(c);
                if echo {
                    out.bytes.push(c);
                }
            }
        }
    }

    fn key_answer(&mut self, out: &mut Output, q: Question, b: u8) {
        let answer = match b {
            b'\r' | b'\n' => String::new(),
            c => String::from_utf8_lossy(&[c]).into_owned(),
        };
        self.device.log.record(self.session, Kind::Answer, &answer);
        if self.echo && (0x20..0x7f).contains(&b) {
            out.bytes.push(b);
        }
        if self.echo {
            self.emit(out, "\n");
        }
        self.state = State::Line;
        let reply = self.cli.answer(&self.device, q.id, &answer);
        self.after_reply(out, reply);
    }

    fn after_reply(&mut self, out: &mut Output, reply: Reply) {
        if reply.failed {
            self.failed = true;
        }
        let page = if self.paging && reply.paged {
            self.cli.page_len(self.rows)
        } else {
            None
        };
        let lines: Vec<String> = split_lines(&reply.output);
        match page {
            Some(n) if n > 0 && lines.len() > n => {
                let rest = lines[n..].to_vec();
                for l in &lines[..n] {
                    self.emit(out, l);
                    self.emit(out, "\n");
                }
                self.state = State::Paging(Pager {
                    lines: rest,
                    next: reply.next,
                });
                let more = self.more_prompt();
                out.bytes.extend_from_slice(more.as_bytes());
            }
            _ => {
                for l in &lines {
                    self.emit(out, l);
                    self.emit(out, "\n");
                }
                self.finish(out, reply.next);
            }
        }
    }

    fn more_prompt(&self) -> &'static str {
        match self.device.vendor {
            Vendor::Ios => " --More-- ",
            Vendor::RouterOs => "-- [Q quit|D dump|down]",
        }
    }

    fn page_key(&mut self, out: &mut Output, b: u8) {
        let State::Paging(pager) = std::mem::replace(&mut self.state, State::Line) else {
            return;
        };
        let Pager { mut lines, next } = pager;
        let ios = self.device.vendor == Vendor::Ios;
        let page = self.cli.page_len(self.rows).unwrap_or(24).max(1);
        let take = match b {
            b' ' => page,
            b'\r' | b'\n' => 1,
            b'd' | b'D' if !ios => usize::MAX,
            b'q' | b'Q' | 0x03 => 0,
            _ if ios => 0,
            _ => {
                // RouterOS ignores other keys.
                self.state = State::Paging(Pager { lines, next });
                return;
            }
        };
        // Erase the pager prompt.
        let width = self.more_prompt().len();
        out.bytes.push(b'\r');
        out.bytes.extend(std::iter::repeat_n(b' ', width));
        out.bytes.push(b'\r');
        if take == 0 {
            self.finish(out, next);
            return;
        }
        let n = take.min(lines.len());
        let shown: Vec<String> = lines.drain(..n).collect();
        for l in &shown {
            self.emit(out, l);
            self.emit(out, "\n");
        }
        if lines.is_empty() {
            self.finish(out, next);
        } else {
            self.state = State::Paging(Pager { lines, next });
            let more = self.more_prompt();
            out.bytes.extend_from_slice(more.as_bytes());
        }
    }

    fn finish(&mut self, out: &mut Output, next: Next) {
        match next {
            Next::Prompt => {
                if self.exec {
                    self.state = State::Done;
                    out.end = Some(End::Exit(u32::from(self.failed)));
                } else {
                    self.state = State::Line;
                    self.prompt(out);
                }
            }
            Next::Ask(q) => {
                out.bytes.extend_from_slice(q.prompt.as_bytes());
                self.state = State::Asking(q);
            }
            Next::Logout => {
                self.state = State::Done;
                out.end = Some(if self.exec {
                    End::Exit(u32::from(self.failed))
                } else {
                    End::Logout
                });
            }
            Next::Reboot => {
                self.state = State::Done;
                out.end = Some(End::Reboot);
            }
        }
    }

    fn prompt(&self, out: &mut Output) {
        if !self.exec {
            let p = self.cli.prompt(&self.device);
            out.bytes.extend_from_slice(p.as_bytes());
        }
    }

    fn emit(&self, out: &mut Output, text: &str) {
        if self.crlf {
            for (i, part) in text.split('\n').enumerate() {
                if i > 0 {
                    out.bytes.extend_from_slice(b"\r\n");
                }
                out.bytes.extend_from_slice(part.as_bytes());
            }
        } else {
            out.bytes.extend_from_slice(text.as_bytes());
        }
    }
}

/// Splits output into lines; a trailing newline does not make an extra line.
fn split_lines(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let t = text.strip_suffix('\n').unwrap_or(text);
    t.split('\n').map(str::to_string).collect()
}
