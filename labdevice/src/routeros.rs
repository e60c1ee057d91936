//! MikroTik RouterOS 7 imitation: menu tree (`/ip address`, `/system
//! identity`...), navigation (`/ip address` then `print`, `..`, `/`),
//! abbreviation of menus, commands and argument names (`/ip addr pr`,
//! `add addr=... int=...`), `key=value` arguments with quoting, item
//! selection by number (`remove 0,1`) or `[find key=value]`, `print where`,
//! `export`, and RouterOS-style errors (`bad command name X (line 1 column N)`).
//!
//! State lives in [`RosModel`] (per device, shared); the current menu lives
//! in [`RosSession`] (per channel).

use std::net::Ipv4Addr;

use crate::abbrev::{Match, resolve};
use crate::cli::{CliSession, Input, Next, Question, QuestionId, Reply};
use crate::clock;
use crate::device::{Device, DeviceModel};

/// An ethernet interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosIface {
    /// `ether1`...
    pub name: String,
    /// MAC address text.
    pub mac: String,
    /// `disabled=yes`.
    pub disabled: bool,
    /// `comment=`.
    pub comment: Option<String>,
}

/// An `/ip address` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosAddr {
    /// The address.
    pub address: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Interface name.
    pub interface: String,
    /// `comment=`.
    pub comment: Option<String>,
    /// `disabled=yes`.
    pub disabled: bool,
}

impl RosAddr {
    fn network(&self) -> Ipv4Addr {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        Ipv4Addr::from(u32::from(self.address) & mask)
    }
    fn field(&self, key: &str) -> String {
        match key {
            "address" => format!("{}/{}", self.address, self.prefix),
            "network" => self.network().to_string(),
            "interface" => self.interface.clone(),
            "comment" => self.comment.clone().unwrap_or_default(),
            "disabled" => yes_no(self.disabled).into(),
            _ => String::new(),
        }
    }
}

/// The device's RouterOS state.
#[derive(Debug, Clone)]
pub struct RosModel {
    /// `/system identity`.
    pub identity: String,
    /// `/interface`.
    pub interfaces: Vec<RosIface>,
    /// `/ip address`.
    pub addresses: Vec<RosAddr>,
}

impl RosModel {
    /// Factory state: ether1..ether5, no addresses.
    pub fn new(identity: &str) -> Self {
        Self {
            identity: identity.to_string(),
            interfaces: (1..=5)
                .map(|i| RosIface {
                    name: format!("ether{i}"),
                    mac: format!("4C:5E:0C:00:00:{i:02X}"),
                    disabled: false,
                    comment: None,
                })
                .collect(),
            addresses: Vec::new(),
        }
    }
}

impl DeviceModel for RosModel {
    /// RouterOS keeps its configuration across a reboot: nothing to do.
    fn reload(&mut self) {}
}

/// A way a RouterOS command can be wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosError {
    /// An unknown menu or command word.
    BadCommand {
        /// The word.
        name: String,
        /// 1-based column.
        col: usize,
    },
    /// A word matching several menus, commands or arguments.
    Ambiguous {
        /// The word.
        name: String,
        /// 1-based column.
        col: usize,
    },
    /// Something where the command should have ended.
    ExpectedEnd {
        /// 1-based column.
        col: usize,
    },
    /// Unbalanced quotes or brackets.
    Syntax {
        /// 1-based column.
        col: usize,
    },
    /// A menu path followed by arguments but no command.
    ExpectedCommand {
        /// 1-based column.
        col: usize,
    },
    /// A number or `find` matching no item.
    NoSuchItem,
    /// A value that does not parse.
    InvalidValue {
        /// Argument name.
        arg: String,
    },
    /// A reference to something that does not exist.
    NoMatch {
        /// Argument name.
        arg: String,
    },
    /// `failure: ...`.
    Failure(String),
}

impl RosError {
    fn render(&self) -> String {
        match self {
            RosError::BadCommand { name, col } => {
                format!("bad command name {name} (line 1 column {col})")
            }
            RosError::Ambiguous { name, col } => {
                format!("ambiguous command name {name} (line 1 column {col})")
            }
            RosError::ExpectedEnd { col } => {
                format!("expected end of command (line 1 column {col})")
            }
            RosError::Syntax { col } => format!("syntax error (line 1 column {col})"),
            RosError::ExpectedCommand { col } => {
                format!("expected command name (line 1 column {col})")
            }
            RosError::NoSuchItem => "no such item".into(),
            RosError::InvalidValue { arg } => format!("invalid value for argument {arg}"),
            RosError::NoMatch { arg } => format!("input does not match any value of {arg}"),
            RosError::Failure(m) => format!("failure: {m}"),
        }
    }
}

/// One lexical token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A word or `key=value`.
    Arg {
        /// The part before `=`, if any.
        key: Option<String>,
        /// The word, or the value after `=` (unquoted).
        value: String,
        /// 1-based column.
        col: usize,
    },
    /// `[ ... ]` with its inner text.
    Bracket {
        /// Inner text.
        inner: String,
        /// 1-based column.
        col: usize,
    },
}

impl Tok {
    fn col(&self) -> usize {
        match self {
            Tok::Arg { col, .. } | Tok::Bracket { col, .. } => *col,
        }
    }
}

/// Splits a command line into tokens (quotes, `\` escapes, brackets).
pub fn tokenize(line: &str) -> Result<Vec<Tok>, RosError> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let col = i + 1;
        if c == '[' {
            let mut depth = 0usize;
            let mut j = i;
            let mut in_q = false;
            loop {
                let Some(&d) = chars.get(j) else {
                    return Err(RosError::Syntax { col });
                };
                match d {
                    '\\' if in_q => j += 1,
                    '"' => in_q = !in_q,
                    '[' if !in_q => depth += 1,
                    ']' if !in_q => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            out.push(Tok::Bracket {
                inner: chars[i + 1..j].iter().collect(),
                col,
            });
            i = j + 1;
            continue;
        }
        let mut key = None;
        let mut cur = String::new();
        while i < chars.len() && !chars[i].is_whitespace() {
            match chars[i] {
                '"' => {
                    i += 1;
                    loop {
                        let Some(&d) = chars.get(i) else {
                            return Err(RosError::Syntax { col });
                        };
                        match d {
                            '"' => break,
                            '\\' => {
                                i += 1;
                                match chars.get(i) {
                                    Some(&e) => cur.push(e),
                                    None => return Err(RosError::Syntax { col }),
                                }
                            }
                            other => cur.push(other),
                        }
                        i += 1;
                    }
                }
                '=' if key.is_none() => key = Some(std::mem::take(&mut cur)),
                other => cur.push(other),
            }
            i += 1;
        }
        out.push(Tok::Arg {
            key,
            value: cur,
            col,
        });
    }
    Ok(out)
}

struct Menu {
    path: &'static [&'static str],
    children: &'static [&'static str],
    commands: &'static [&'static str],
}

const MENUS: &[Menu] = &[
    Menu {
        path: &[],
        children: &["interface", "ip", "system"],
        commands: &["export", "quit"],
    },
    Menu {
        path: &["interface"],
        children: &[],
        commands: &["disable", "enable", "export", "print", "set"],
    },
    Menu {
        path: &["ip"],
        children: &["address"],
        commands: &["export"],
    },
    Menu {
        path: &["ip", "address"],
        children: &[],
        commands: &[
            "add", "disable", "enable", "export", "print", "remove", "set",
        ],
    },
    Menu {
        path: &["system"],
        children: &["identity", "resource"],
        commands: &["reboot"],
    },
    Menu {
        path: &["system", "identity"],
        children: &[],
        commands: &["export", "print", "set"],
    },
    Menu {
        path: &["system", "resource"],
        children: &[],
        commands: &["print"],
    },
];

fn menu(path: &[&str]) -> &'static Menu {
    MENUS.iter().find(|m| m.path == path).unwrap_or(&MENUS[0])
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn parse_bool(arg: &str, v: &str) -> Result<bool, RosError> {
    match v {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(RosError::InvalidValue { arg: arg.into() }),
    }
}

/// The RouterOS login banner.
pub fn banner() -> String {
    "\n\n\n\n  MMM      MMM       KKK                          TTTTTTTTTTT      KKK\n  \
MMMM    MMMM       KKK                          TTTTTTTTTTT      KKK\n  \
MMM MMMM MMM  III  KKK  KKK  RRRRRR     OOOOOO      TTT     III  KKK  KKK\n  \
MMM  MM  MMM  III  KKKKK     RRR  RRR  OOO  OOO     TTT     III  KKKKK\n  \
MMM      MMM  III  KKK KKK   RRRRRR    OOO  OOO     TTT     III  KKK KKK\n  \
MMM      MMM  III  KKK  KKK  RRR  RRR   OOOOOO      TTT     III  KKK  KKK\n\n  \
MikroTik RouterOS 7.14.3 (c) 1999-2024 (gatehouse lab simulator)\n\n\
Press F1 for help\n\n"
        .to_string()
}

/// One RouterOS session (per channel).
#[derive(Debug)]
pub struct RosSession {
    user: String,
    path: Vec<&'static str>,
}

type Res = Result<Reply, RosError>;

impl RosSession {
    /// A session at the root menu. RouterOS login flags (`admin+ct`) are dropped from the name.
    pub fn new(user: &str) -> Self {
        Self {
            user: user.split('+').next().unwrap_or(user).to_string(),
            path: Vec::new(),
        }
    }

    /// The current menu path.
    pub fn path(&self) -> &[&'static str] {
        &self.path
    }

    fn run(&mut self, device: &Device, line: &str) -> Res {
        let toks = tokenize(line)?;
        if toks.is_empty() {
            return Ok(Reply::ok(""));
        }
        // Expand a leading `/ip/address/print`-style first token into path words.
        let mut words: Vec<(String, usize)> = Vec::new();
        let mut rest_from = 0;
        let mut path: Vec<&'static str> = self.path.clone();
        if let Tok::Arg {
            key: None,
            value,
            col,
        } = &toks[0]
            && let Some(stripped) = value.strip_prefix('/')
        {
            path.clear();
            let mut c = col + 1;
            for part in stripped.split('/') {
                if !part.is_empty() {
                    words.push((part.to_string(), c));
                }
                c += part.chars().count() + 1;
            }
            rest_from = 1;
        }
        let mut cmd: Option<&'static str> = None;
        let mut idx = rest_from;
        let mut pending: std::collections::VecDeque<(String, usize)> = words.into();
        loop {
            let (word, col) = if let Some(w) = pending.pop_front() {
                w
            } else {
                match toks.get(idx) {
                    Some(Tok::Arg {
                        key: None,
                        value,
                        col,
                    }) => {
                        idx += 1;
                        (value.clone(), *col)
                    }
                    _ => break,
                }
            };
            if word == ".." {
                path.pop();
                continue;
            }
            let m = menu(&path);
            let mut names: Vec<&'static str> = m
                .children
                .iter()
                .chain(m.commands.iter())
                .copied()
                .collect();
            // `quit` works in every menu.
            if !names.contains(&"quit") {
                names.push("quit");
            }
            match resolve(&word, &names) {
                Match::One(n) if m.children.contains(&n) => path.push(n),
                Match::One(n) => {
                    cmd = Some(n);
                    break;
                }
                Match::Ambiguous => return Err(RosError::Ambiguous { name: word, col }),
                Match::NoMatch => return Err(RosError::BadCommand { name: word, col }),
            }
        }
        let args = &toks[idx..];
        let Some(cmd) = cmd else {
            if let Some(t) = args.first() {
                return Err(RosError::ExpectedCommand { col: t.col() });
            }
            self.path = path;
            return Ok(Reply::ok(""));
        };
        let mut guard = device.model();
        let Some(m) = guard.downcast_mut::<RosModel>() else {
            return Err(RosError::Failure("not a RouterOS device".into()));
        };
        match (path.as_slice(), cmd) {
            (_, "quit") => {
                no_args(args)?;
                Ok(Reply::ok("").then(Next::Logout))
            }
            (_, "export") => {
                no_args_but(args, &["terse", "compact", "verbose"])?;
                Ok(Reply::ok(export(m, &path)))
            }
            (["system"], "reboot") => {
                no_args(args)?;
                Ok(Reply::ok("").then(Next::Ask(Question {
                    id: QuestionId::RosReboot,
                    prompt: "Reboot, yes? [y/N]: ".into(),
                    input: Input::Key,
                })))
            }
            (["system", "identity"], "print") => {
                print_flags(args)?;
                Ok(Reply::ok(format!("  name: {}", m.identity)))
            }
            (["system", "identity"], "set") => {
                let kv = key_values(args, &["name"])?;
                for (k, v) in kv {
                    if k == "name" {
                        if v.is_empty() || v.len() > 64 {
                            return Err(RosError::InvalidValue { arg: "name".into() });
                        }
                        m.identity = v;
                    }
                }
                Ok(Reply::ok(""))
            }
            (["system", "resource"], "print") => {
                print_flags(args)?;
                Ok(Reply::paged(resource(device.uptime_secs())))
            }
            (["interface"], "print") => {
                let (_, cond) = print_flags(args)?;
                let rows = m
                    .interfaces
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| matches_iface(i, &cond))
                    .map(|(n, i)| {
                        (
                            n,
                            if i.disabled { 'X' } else { 'R' },
                            i.comment.clone(),
                            vec![i.name.clone(), "ether".into(), "1500".into(), i.mac.clone()],
                        )
                    })
                    .collect::<Vec<_>>();
                Ok(Reply::paged(table(
                    "Flags: R - RUNNING; X - DISABLED",
                    &["NAME", "TYPE", "ACTUAL-MTU", "MAC-ADDRESS"],
                    &rows,
                )))
                .map(|r| paging(r, args))
            }
            (["interface"], "set" | "enable" | "disable") => {
                let (sel, rest) = args.split_first().ok_or(RosError::NoSuchItem)?;
                let items = select(
                    sel,
                    m.interfaces.len(),
                    |n, k, v| {
                        let i = &m.interfaces[n];
                        iface_field(i, k) == v
                    },
                    |name| m.interfaces.iter().position(|i| i.name == name),
                )?;
                let kv = if cmd == "set" {
                    key_values(rest, &["comment", "disabled"])?
                } else {
                    no_args(rest)?;
                    vec![("disabled".to_string(), yes_no(cmd == "disable").to_string())]
                };
                for (k, v) in &kv {
                    if k == "disabled" {
                        parse_bool("disabled", v)?;
                    }
                }
                for n in items {
                    for (k, v) in &kv {
                        let i = &mut m.interfaces[n];
                        match k.as_str() {
                            "disabled" => i.disabled = parse_bool("disabled", v)?,
                            _ => i.comment = (!v.is_empty()).then(|| v.clone()),
                        }
                    }
                }
                Ok(Reply::ok(""))
            }
            (["ip", "address"], "print") => {
                let (_, cond) = print_flags(args)?;
                for (k, _) in &cond {
                    if !ADDR_FIELDS.contains(&k.as_str()) {
                        return Err(RosError::ExpectedEnd { col: 1 });
                    }
                }
                let rows = m
                    .addresses
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| cond.iter().all(|(k, v)| a.field(k) == *v))
                    .map(|(n, a)| {
                        (
                            n,
                            if a.disabled { 'X' } else { ' ' },
                            a.comment.clone(),
                            vec![a.field("address"), a.field("network"), a.interface.clone()],
                        )
                    })
                    .collect::<Vec<_>>();
                Ok(paging(
                    Reply::paged(table(
                        "Flags: X - DISABLED",
                        &["ADDRESS", "NETWORK", "INTERFACE"],
                        &rows,
                    )),
                    args,
                ))
            }
            (["ip", "address"], "add") => {
                let kv = key_values(
                    args,
                    &["address", "comment", "disabled", "interface", "network"],
                )?;
                let mut address = None;
                let mut interface = None;
                let mut comment = None;
                let mut disabled = false;
                for (k, v) in kv {
                    match k.as_str() {
                        "address" => address = Some(parse_prefix(&v)?),
                        "interface" => {
                            if !m.interfaces.iter().any(|i| i.name == v) {
                                return Err(RosError::NoMatch {
                                    arg: "interface".into(),
                                });
                            }
                            interface = Some(v);
                        }
                        "comment" => comment = (!v.is_empty()).then_some(v),
                        "disabled" => disabled = parse_bool("disabled", &v)?,
                        _ => {
                            v.parse::<Ipv4Addr>()
                                .map_err(|_| RosError::InvalidValue { arg: k.clone() })?;
                        }
                    }
                }
                let Some((address, prefix)) = address else {
                    return Err(RosError::Failure(
                        "value of address must be specified".into(),
                    ));
                };
                let Some(interface) = interface else {
                    return Err(RosError::Failure(
                        "value of interface must be specified".into(),
                    ));
                };
                if m.addresses
                    .iter()
                    .any(|a| a.address == address && a.prefix == prefix && a.interface == interface)
                {
                    return Err(RosError::Failure("already have such address".into()));
                }
                m.addresses.push(RosAddr {
                    address,
                    prefix,
                    interface,
                    comment,
                    disabled,
                });
                Ok(Reply::ok(""))
            }
            (["ip", "address"], "remove" | "set" | "enable" | "disable") => {
                let (sel, rest) = args.split_first().ok_or(RosError::NoSuchItem)?;
                let items = select(
                    sel,
                    m.addresses.len(),
                    |n, k, v| m.addresses[n].field(k) == v,
                    |_| None,
                )?;
                match cmd {
                    "remove" => {
                        no_args(rest)?;
                        let mut n = 0;
                        m.addresses.retain(|_| {
                            n += 1;
                            !items.contains(&(n - 1))
                        });
                    }
                    "set" => {
                        let kv =
                            key_values(rest, &["address", "comment", "disabled", "interface"])?;
                        let mut updates = Vec::new();
                        for (k, v) in kv {
                            match k.as_str() {
                                "address" => {
                                    parse_prefix(&v)?;
                                }
                                "interface" if !m.interfaces.iter().any(|i| i.name == v) => {
                                    return Err(RosError::NoMatch {
                                        arg: "interface".into(),
                                    });
                                }
                                "disabled" => {
                                    parse_bool("disabled", &v)?;
                                }
                                _ => {}
                            }
                            updates.push((k, v));
                        }
                        for n in items {
                            let a = &mut m.addresses[n];
                            for (k, v) in &updates {
                                match k.as_str() {
                                    "address" => {
                                        (a.address, a.prefix) = parse_prefix(v)?;
                                    }
                                    "interface" => a.interface = v.clone(),
                                    "disabled" => a.disabled = parse_bool("disabled", v)?,
                                    _ => a.comment = (!v.is_empty()).then(|| v.clone()),
                                }
                            }
                        }
                    }
                    _ => {
                        no_args(rest)?;
                        for n in items {
                            m.addresses[n].disabled = cmd == "disable";
                        }
                    }
                }
                Ok(Reply::ok(""))
            }
            _ => Err(RosError::BadCommand {
                name: cmd.into(),
                col: 1,
            }),
        }
    }
}

impl CliSession for RosSession {
    fn banner(&self) -> String {
        banner()
    }

    /// `[admin@R1] > ` or `[admin@R1] /ip address> `.
    fn prompt(&self, device: &Device) -> String {
        let id = match device.model().downcast_ref::<RosModel>() {
            Some(m) => m.identity.clone(),
            None => String::from("MikroTik"),
        };
        if self.path.is_empty() {
            format!("[{}@{}] > ", self.user, id)
        } else {
            format!("[{}@{}] /{}> ", self.user, id, self.path.join(" "))
        }
    }

    /// Runs one line.
    fn execute(&mut self, device: &Device, line: &str, _prompt_len: usize) -> Reply {
        match self.run(device, line) {
            Ok(r) => r,
            Err(e) => Reply::fail(e.render()),
        }
    }

    /// Answers `Reboot, yes? [y/N]:`.
    fn answer(&mut self, _device: &Device, q: QuestionId, input: &str) -> Reply {
        match q {
            QuestionId::RosReboot if input.trim().eq_ignore_ascii_case("y") => {
                Reply::ok("system will reboot shortly").then(Next::Reboot)
            }
            _ => Reply::ok(""),
        }
    }

    /// A page is the terminal less one row (23 lines when the height is unknown).
    fn page_len(&self, rows: u32) -> Option<usize> {
        Some(if rows < 2 { 23 } else { rows as usize - 1 })
    }

    /// Ctrl-C: new prompt; Ctrl-D on an empty line: log out.
    fn control(&mut self, key: u8) -> Option<Reply> {
        match key {
            0x03 => Some(Reply::ok("")),
            0x04 => Some(Reply::ok("").then(Next::Logout)),
            _ => None,
        }
    }

    fn has_help(&self) -> bool {
        false
    }

    fn help(&self, _partial: &str) -> String {
        String::new()
    }
}

const ADDR_FIELDS: &[&str] = &["address", "comment", "disabled", "interface", "network"];
const IFACE_FIELDS: &[&str] = &["comment", "disabled", "mac-address", "name", "type"];

fn iface_field(i: &RosIface, key: &str) -> String {
    match key {
        "name" => i.name.clone(),
        "type" => "ether".into(),
        "mac-address" => i.mac.clone(),
        "comment" => i.comment.clone().unwrap_or_default(),
        "disabled" => yes_no(i.disabled).into(),
        _ => String::new(),
    }
}

fn matches_iface(i: &RosIface, cond: &[(String, String)]) -> bool {
    cond.iter().all(|(k, v)| iface_field(i, k) == *v)
}

fn parse_prefix(v: &str) -> Result<(Ipv4Addr, u8), RosError> {
    let bad = || RosError::InvalidValue {
        arg: "address".into(),
    };
    let (a, p) = match v.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
        None => (v, 32),
    };
    if p > 32 {
        return Err(bad());
    }
    Ok((a.parse().map_err(|_| bad())?, p))
}

fn no_args(args: &[Tok]) -> Result<(), RosError> {
    match args.first() {
        Some(t) => Err(RosError::ExpectedEnd { col: t.col() }),
        None => Ok(()),
    }
}

fn no_args_but(args: &[Tok], flags: &[&str]) -> Result<(), RosError> {
    for t in args {
        match t {
            Tok::Arg {
                key: None, value, ..
            } if matches!(resolve(value, flags), Match::One(_)) => {}
            other => return Err(RosError::ExpectedEnd { col: other.col() }),
        }
    }
    Ok(())
}

/// `print` flags: returns (without-paging, where-conditions).
fn print_flags(args: &[Tok]) -> Result<(bool, Vec<(String, String)>), RosError> {
    let mut without = false;
    let mut cond = Vec::new();
    let mut in_where = false;
    for t in args {
        match t {
            Tok::Arg {
                key: Some(k),
                value,
                col,
            } if in_where => {
                let k = match resolve(k, &[ADDR_FIELDS, IFACE_FIELDS].concat()) {
                    Match::One(k) => k.to_string(),
                    _ => return Err(RosError::ExpectedEnd { col: *col }),
                };
                cond.push((k, value.clone()));
            }
            Tok::Arg {
                key: None,
                value,
                col,
            } => match resolve(value, &["without-paging", "where", "detail", "terse"]) {
                Match::One("without-paging") => without = true,
                Match::One("where") => in_where = true,
                Match::One(_) => {}
                Match::Ambiguous => {
                    return Err(RosError::Ambiguous {
                        name: value.clone(),
                        col: *col,
                    });
                }
                Match::NoMatch => return Err(RosError::ExpectedEnd { col: *col }),
            },
            other => return Err(RosError::ExpectedEnd { col: other.col() }),
        }
    }
    Ok((without, cond))
}

fn paging(mut r: Reply, args: &[Tok]) -> Reply {
    if print_flags(args).is_ok_and(|(w, _)| w) {
        r.paged = false;
    }
    r
}

/// `key=value` arguments, keys abbreviated against `allowed`.
fn key_values(args: &[Tok], allowed: &[&str]) -> Result<Vec<(String, String)>, RosError> {
    let mut out = Vec::new();
    for t in args {
        match t {
            Tok::Arg {
                key: Some(k),
                value,
                col,
            } => match resolve(k, allowed) {
                Match::One(k) => out.push((k.to_string(), value.clone())),
                Match::Ambiguous => {
                    return Err(RosError::Ambiguous {
                        name: k.clone(),
                        col: *col,
                    });
                }
                Match::NoMatch => return Err(RosError::ExpectedEnd { col: *col }),
            },
            other => return Err(RosError::ExpectedEnd { col: other.col() }),
        }
    }
    Ok(out)
}

/// Item selection: `0`, `0,2`, a name (when `by_name` knows it) or `[find k=v ...]`.
fn select(
    tok: &Tok,
    count: usize,
    field_eq: impl Fn(usize, &str, &str) -> bool,
    by_name: impl Fn(&str) -> Option<usize>,
) -> Result<Vec<usize>, RosError> {
    match tok {
        Tok::Bracket { inner, col } => {
            let toks = tokenize(inner)?;
            let mut it = toks.iter();
            match it.next() {
                Some(Tok::Arg {
                    key: None, value, ..
                }) if matches!(resolve(value, &["find"]), Match::One(_)) => {}
                _ => {
                    return Err(RosError::BadCommand {
                        name: inner.trim().to_string(),
                        col: col + 1,
                    });
                }
            }
            let mut cond = Vec::new();
            for t in it {
                match t {
                    Tok::Arg {
                        key: None, value, ..
                    } if value == "where" => {}
                    Tok::Arg {
                        key: Some(k),
                        value,
                        col,
                    } => {
                        let k = match resolve(k, &[ADDR_FIELDS, IFACE_FIELDS].concat()) {
                            Match::One(k) => k.to_string(),
                            _ => return Err(RosError::ExpectedEnd { col: *col }),
                        };
                        cond.push((k, value.clone()));
                    }
                    other => return Err(RosError::ExpectedEnd { col: other.col() }),
                }
            }
            Ok((0..count)
                .filter(|n| cond.iter().all(|(k, v)| field_eq(*n, k, v)))
                .collect())
        }
        Tok::Arg {
            key: None, value, ..
        } => {
            let mut out = Vec::new();
            for part in value.split(',') {
                if let Ok(n) = part.parse::<usize>() {
                    if n >= count {
                        return Err(RosError::NoSuchItem);
                    }
                    out.push(n);
                } else if let Some(n) = by_name(part) {
                    out.push(n);
                } else {
                    return Err(RosError::NoSuchItem);
                }
            }
            Ok(out)
        }
        Tok::Arg { col, .. } => Err(RosError::ExpectedEnd { col: *col }),
    }
}

type Row = (usize, char, Option<String>, Vec<String>);

fn table(flags: &str, headers: &[&str], rows: &[Row]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for (_, _, _, cols) in rows {
        for (w, c) in widths.iter_mut().zip(cols) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt = |cols: &[String]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(&widths).enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = *w));
            }
        }
        s
    };
    let mut out = format!("{flags}\nColumns: {}\n", headers.join(", "));
    let hdr: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    out.push_str(&format!(" #   {}\n", fmt(&hdr)));
    for (n, flag, comment, cols) in rows {
        if let Some(c) = comment {
            out.push_str(&format!("{n:>2} {flag} ;;; {c}\n     {}\n", fmt(cols)));
        } else {
            out.push_str(&format!("{n:>2} {flag} {}\n", fmt(cols)));
        }
    }
    out
}

fn ros_uptime(secs: u64) -> String {
    let (w, d, h, m, s) = (
        secs / 604_800,
        secs / 86_400 % 7,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
    );
    let mut out = String::new();
    for (v, u) in [(w, "w"), (d, "d"), (h, "h"), (m, "m")] {
        if v > 0 || !out.is_empty() {
            out.push_str(&format!("{v}{u}"));
        }
    }
    out.push_str(&format!("{s}s"));
    out
}

fn resource(uptime: u64) -> String {
    let lines = [
        ("uptime", ros_uptime(uptime)),
        ("version", "7.14.3 (stable)".into()),
        ("build-time", "2024-04-17 12:47:58".into()),
        ("factory-software", "7.1".into()),
        ("free-memory", "212.3MiB".into()),
        ("total-memory", "256.0MiB".into()),
        ("cpu", "MIPS 1004Kc V2.15".into()),
        ("cpu-count", "4".into()),
        ("cpu-frequency", "880MHz".into()),
        ("cpu-load", "1%".into()),
        ("free-hdd-space", "4.2MiB".into()),
        ("total-hdd-space", "16.0MiB".into()),
        ("write-sect-since-reboot", "1234".into()),
        ("write-sect-total", "56789".into()),
        ("architecture-name", "mmips".into()),
        ("board-name", "hEX (lab)".into()),
        ("platform", "MikroTik".into()),
    ];
    lines
        .iter()
        .map(|(k, v)| format!("{k:>25}: {v}\n"))
        .collect()
}

fn quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
    {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn export(m: &RosModel, path: &[&str]) -> String {
    let c = clock::now();
    let mut out = format!(
        "# {:04}-{:02}-{:02} {:02}:{:02}:{:02} by RouterOS 7.14.3\n# software id = LAB0-0001\n#\n# model = RB750Gr3\n",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    let want = |p: &[&str]| path.is_empty() || p.starts_with(path);
    if want(&["interface"]) {
        let changed: Vec<&RosIface> = m
            .interfaces
            .iter()
            .filter(|i| i.disabled || i.comment.is_some())
            .collect();
        if !changed.is_empty() {
            out.push_str("/interface ethernet\n");
            for i in changed {
                let mut line = format!("set [ find default-name={} ]", i.name);
                if let Some(c) = &i.comment {
                    line.push_str(&format!(" comment={}", quote(c)));
                }
                if i.disabled {
                    line.push_str(" disabled=yes");
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    if want(&["ip", "address"]) && !m.addresses.is_empty() {
        out.push_str("/ip address\n");
        for a in &m.addresses {
            let mut line = format!("add address={}/{}", a.address, a.prefix);
            if let Some(c) = &a.comment {
                line.push_str(&format!(" comment={}", quote(c)));
            }
            if a.disabled {
                line.push_str(" disabled=yes");
            }
            line.push_str(&format!(
                " interface={} network={}",
                quote(&a.interface),
                a.network()
            ));
            out.push_str(&line);
            out.push('\n');
        }
    }
    if want(&["system", "identity"]) {
        out.push_str(&format!(
            "/system identity\nset name={}\n",
            quote(&m.identity)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = tokenize(r#"add address=10.0.0.1/24 comment="a \"b\" c" [find x="]"]"#).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(
            t[2],
            Tok::Arg {
                key: Some("comment".into()),
                value: "a \"b\" c".into(),
                col: 25
            }
        );
        assert!(matches!(&t[3], Tok::Bracket { inner, .. } if inner == "find x=\"]\""));
        assert!(tokenize("a \"b").is_err());
        assert!(tokenize("[find").is_err());
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix("10.0.0.1/24").unwrap(),
            ("10.0.0.1".parse().unwrap(), 24)
        );
        assert!(parse_prefix("10.0.0.1/33").is_err());
        assert!(parse_prefix("x").is_err());
    }

    #[test]
    fn uptime() {
        assert_eq!(ros_uptime(3723), "1h2m3s");
        assert_eq!(ros_uptime(5), "5s");
    }
}
