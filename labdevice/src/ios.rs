//! Cisco IOS imitation: modes (`R1>`, `R1#`, `R1(config)#`,
//! `R1(config-if)#`), keyword abbreviation (`sh run`, `conf t`, `int gi0/1`),
//! running and startup configuration, and IOS-style error messages with the
//! `^` marker under the offending word.
//!
//! State lives in [`IosModel`] (one per device, shared by sessions); the
//! mode and `terminal length` live in [`IosSession`] (one per channel).

use std::net::Ipv4Addr;

use crate::abbrev::{Match, Word, resolve, words};
use crate::cli::{CliSession, Input, Next, Question, QuestionId, Reply};
use crate::clock;
use crate::device::{Device, DeviceModel};

/// One interface's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// Full name, e.g. `GigabitEthernet0/1`.
    pub name: String,
    /// `description` text.
    pub description: Option<String>,
    /// `ip address A M`.
    pub ip: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Administratively down.
    pub shutdown: bool,
}

impl Iface {
    fn new(name: String, shutdown: bool) -> Self {
        Self {
            name,
            description: None,
            ip: None,
            shutdown,
        }
    }
}

/// A whole configuration (running or startup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IosConfig {
    /// `hostname`.
    pub hostname: String,
    /// Interfaces in display order.
    pub interfaces: Vec<Iface>,
}

/// The device's IOS state.
#[derive(Debug, Clone)]
pub struct IosModel {
    /// What runs now.
    pub running: IosConfig,
    /// What `write memory` saved; what a reload comes back with.
    pub startup: IosConfig,
}

impl IosModel {
    /// Factory state: Gi0/0 up, Gi0/1..Gi0/3 shut down, no addresses.
    pub fn new(hostname: &str) -> Self {
        let interfaces = (0..4)
            .map(|i| Iface::new(format!("GigabitEthernet0/{i}"), i != 0))
            .collect();
        let cfg = IosConfig {
            hostname: hostname.to_string(),
            interfaces,
        };
        Self {
            running: cfg.clone(),
            startup: cfg,
        }
    }

    fn modified(&self) -> bool {
        self.running != self.startup
    }

    fn iface_mut(&mut self, name: &str) -> Option<&mut Iface> {
        self.running.interfaces.iter_mut().find(|i| i.name == name)
    }
}

impl DeviceModel for IosModel {
    /// Back to the startup configuration.
    fn reload(&mut self) {
        self.running = self.startup.clone();
    }
}

/// The mode a session is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `R1>`.
    User,
    /// `R1#`.
    Enable,
    /// `R1(config)#`.
    Config,
    /// `R1(config-if)#`, with the interface's full name.
    ConfigIf(String),
}

/// A way a command line can be wrong, rendered as IOS renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IosError {
    /// `% Invalid input detected at '^' marker.` with the marker at this byte offset.
    Invalid {
        /// Offset in the line.
        at: usize,
    },
    /// `% Ambiguous command:  "..."` quoting the line up to this offset.
    Ambiguous {
        /// End offset of the ambiguous word.
        upto: usize,
    },
    /// `% Incomplete command.`
    Incomplete,
    /// Any other `% ...` message.
    Message(String),
}

impl IosError {
    fn render(&self, line: &str, prompt_len: usize) -> String {
        match self {
            IosError::Invalid { at } => {
                let col = prompt_len + line.get(..*at).map_or(0, |s| s.chars().count());
                format!(
                    "{}^\n% Invalid input detected at '^' marker.\n\n",
                    " ".repeat(col)
                )
            }
            IosError::Ambiguous { upto } => {
                let upto = (*upto).min(line.len());
                let shown = line.get(..upto).unwrap_or(line).trim();
                format!("% Ambiguous command:  \"{shown}\"\n")
            }
            IosError::Incomplete => "% Incomplete command.\n\n".to_string(),
            IosError::Message(m) => format!("{m}\n"),
        }
    }
}

type Res = Result<Reply, IosError>;

fn kw<'a>(w: &Word, list: &[&'a str]) -> Result<&'a str, IosError> {
    match resolve(&w.text, list) {
        Match::One(k) => Ok(k),
        Match::Ambiguous => Err(IosError::Ambiguous {
            upto: w.at + w.text.len(),
        }),
        Match::NoMatch => Err(IosError::Invalid { at: w.at }),
    }
}

fn end_of(ws: &[Word], i: usize) -> Result<(), IosError> {
    match ws.get(i) {
        Some(w) => Err(IosError::Invalid { at: w.at }),
        None => Ok(()),
    }
}

fn need(ws: &[Word], i: usize) -> Result<&Word, IosError> {
    ws.get(i).ok_or(IosError::Incomplete)
}

/// Parses an interface name starting at `ws[i]` (`gi0/1`, `Gi 0/1`,
/// `GigabitEthernet0/1`, `lo0`, `Loopback 0`). Returns the full name and
/// how many words it used.
fn parse_iface(ws: &[Word], i: usize) -> Result<(String, usize), IosError> {
    let w = need(ws, i)?;
    let split = w
        .text
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(w.text.len());
    let (kind, mut num) = (&w.text[..split], w.text[split..].to_string());
    let kind = kw(
        &Word {
            text: kind.to_string(),
            at: w.at,
        },
        &["GigabitEthernet", "Loopback"],
    )?;
    let mut used = 1;
    if num.is_empty() {
        let n = need(ws, i + 1)?;
        num = n.text.clone();
        used = 2;
    }
    let num_at = if used == 2 {
        ws[i + 1].at
    } else {
        w.at + split
    };
    let ok = match kind {
        "GigabitEthernet" => matches!(num.as_str(), "0/0" | "0/1" | "0/2" | "0/3"),
        _ => num.parse::<u32>().is_ok_and(|n| n <= 2_147_483_647) && !num.starts_with('+'),
    };
    if !ok {
        return Err(IosError::Invalid { at: num_at });
    }
    let num = if kind == "Loopback" {
        num.parse::<u32>().map(|n| n.to_string()).unwrap_or(num)
    } else {
        num
    };
    Ok((format!("{kind}{num}"), used))
}

fn iface_order(name: &str) -> (u8, u32, u32) {
    if let Some(rest) = name.strip_prefix("GigabitEthernet") {
        let mut p = rest.split('/');
        let a = p.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let b = p.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        (0, a, b)
    } else {
        let n = name
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .parse()
            .unwrap_or(0);
        (1, n, 0)
    }
}

fn mask_ok(m: Ipv4Addr) -> bool {
    let v = u32::from(m);
    v.leading_ones() + v.trailing_zeros() == 32
}

/// One IOS session (per channel).
#[derive(Debug)]
pub struct IosSession {
    mode: Mode,
    term_len: usize,
}

/// Keywords a real device knows but the simulator does not implement: they
/// exist so that abbreviations are as ambiguous as on the device (`s`, `c`, `i`).
const DECOYS: &[&str] = &[
    "banner",
    "clear",
    "clock",
    "connect",
    "debug",
    "dir",
    "line",
    "ping",
    "router",
    "send",
    "service",
    "setup",
    "ssh",
    "telnet",
    "traceroute",
    "username",
];
const USER_CMDS: &[&str] = &[
    "connect",
    "enable",
    "exit",
    "logout",
    "ping",
    "quit",
    "send",
    "show",
    "ssh",
    "telnet",
    "terminal",
    "traceroute",
];
const ENABLE_CMDS: &[&str] = &[
    "clear",
    "clock",
    "configure",
    "connect",
    "copy",
    "debug",
    "dir",
    "disable",
    "enable",
    "exit",
    "logout",
    "ping",
    "quit",
    "reload",
    "send",
    "setup",
    "show",
    "ssh",
    "telnet",
    "terminal",
    "traceroute",
    "write",
];
const DO_CMDS: &[&str] = &[
    "clear",
    "copy",
    "debug",
    "dir",
    "ping",
    "reload",
    "show",
    "ssh",
    "telnet",
    "terminal",
    "traceroute",
    "write",
];
const CONFIG_CMDS: &[&str] = &[
    "banner",
    "do",
    "end",
    "exit",
    "hostname",
    "interface",
    "ip",
    "line",
    "no",
    "router",
    "service",
    "username",
];
const IF_CMDS: &[&str] = &[
    "banner",
    "description",
    "do",
    "end",
    "exit",
    "hostname",
    "interface",
    "ip",
    "line",
    "no",
    "router",
    "service",
    "shutdown",
    "username",
];

impl IosSession {
    /// A new session; exec channels start privileged.
    pub fn new(exec: bool) -> Self {
        Self {
            mode: if exec { Mode::Enable } else { Mode::User },
            term_len: 24,
        }
    }

    /// The current mode.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// `show … | include|exclude|begin|section|count TEXT` (substring matching).
    fn piped(&mut self, device: &Device, line: &str, bar: usize, prompt_len: usize) -> Res {
        let left = &line[..bar];
        let lw = words(left);
        let first = match (lw.first(), lw.get(1)) {
            (Some(w), next) if resolve(&w.text, &["do"]) == Match::One("do") && next.is_some() => {
                next
            }
            (w, _) => w,
        };
        let is_show =
            first.is_some_and(|w| matches!(resolve(&w.text, &["show", "write"]), Match::One(_)));
        if !is_show {
            return Err(IosError::Invalid { at: bar });
        }
        let right = &line[bar + 1..];
        let rw = words(right);
        let modifier = rw.first().ok_or(IosError::Incomplete)?;
        let modifier = kw(
            &Word {
                text: modifier.text.clone(),
                at: bar + 1 + modifier.at,
            },
            &["begin", "count", "exclude", "include", "section"],
        )?;
        let pattern = rw.get(1).ok_or(IosError::Incomplete)?;
        let pattern = right[pattern.at..].trim_end().to_string();
        let mut reply = self.execute_plain(device, left, prompt_len);
        if reply.failed || reply.next != Next::Prompt {
            return Ok(reply);
        }
        let lines: Vec<&str> = reply.output.lines().collect();
        let kept: Vec<&str> = match modifier {
            "include" => lines.into_iter().filter(|l| l.contains(&pattern)).collect(),
            "exclude" => lines
                .into_iter()
                .filter(|l| !l.contains(&pattern))
                .collect(),
            "begin" => lines
                .iter()
                .position(|l| l.contains(&pattern))
                .map(|i| lines[i..].to_vec())
                .unwrap_or_default(),
            "count" => {
                let n = lines.iter().filter(|l| l.contains(&pattern)).count();
                reply.output = format!("Number of lines which match regexp = {n}\n");
                return Ok(reply);
            }
            _ => {
                let mut out = Vec::new();
                let mut i = 0;
                while i < lines.len() {
                    let mut j = i + 1;
                    while j < lines.len() && lines[j].starts_with(' ') {
                        j += 1;
                    }
                    if lines[i..j].iter().any(|l| l.contains(&pattern)) {
                        out.extend_from_slice(&lines[i..j]);
                    }
                    i = j;
                }
                out
            }
        };
        reply.output = kept.iter().map(|l| format!("{l}\n")).collect();
        Ok(reply)
    }

    fn execute_plain(&mut self, device: &Device, line: &str, prompt_len: usize) -> Reply {
        let ws = words(line);
        if ws.is_empty() || ws[0].text.starts_with('!') {
            return Reply::ok("");
        }
        let mut guard = device.model();
        let Some(model) = guard.downcast_mut::<IosModel>() else {
            return Reply::fail("% Not an IOS device");
        };
        let result = match self.mode.clone() {
            Mode::User | Mode::Enable => {
                let list = if self.mode == Mode::User {
                    USER_CMDS
                } else {
                    ENABLE_CMDS
                };
                self.exec_cmd(device, model, &ws, list)
            }
            Mode::Config => self.config_cmd(device, model, &ws, CONFIG_CMDS, None),
            Mode::ConfigIf(name) => self.config_cmd(device, model, &ws, IF_CMDS, Some(name)),
        };
        result.unwrap_or_else(|e| Reply::fail(e.render(line, prompt_len)))
    }

    fn exec_cmd(&mut self, device: &Device, m: &mut IosModel, ws: &[Word], list: &[&str]) -> Res {
        let cmd = kw(&ws[0], list)?;
        match cmd {
            "enable" => {
                end_of(ws, 1)?;
                if self.mode == Mode::User {
                    Ok(Reply::ok("").then(Next::Ask(Question {
                        id: QuestionId::IosEnablePassword,
                        prompt: "Password: ".into(),
                        input: Input::Line { echo: false },
                    })))
                } else {
                    Ok(Reply::ok(""))
                }
            }
            "disable" => {
                end_of(ws, 1)?;
                self.mode = Mode::User;
                Ok(Reply::ok(""))
            }
            "exit" | "logout" | "quit" => {
                end_of(ws, 1)?;
                Ok(Reply::ok("").then(Next::Logout))
            }
            "terminal" => self.terminal(ws),
            "show" => self.show(device, m, ws),
            "configure" => {
                if let Some(w) = ws.get(1) {
                    kw(w, &["terminal"])?;
                    end_of(ws, 2)?;
                }
                self.mode = Mode::Config;
                Ok(Reply::ok(
                    "Enter configuration commands, one per line.  End with CNTL/Z.",
                ))
            }
            "write" => {
                if let Some(w) = ws.get(1) {
                    match kw(w, &["memory", "terminal"])? {
                        "terminal" => {
                            end_of(ws, 2)?;
                            return Ok(Reply::paged(running_config(device, &m.running)));
                        }
                        _ => end_of(ws, 2)?,
                    }
                }
                m.startup = m.running.clone();
                Ok(Reply::ok("Building configuration...\n[OK]"))
            }
            "copy" => {
                let src = need(ws, 1)?;
                kw(src, &["running-config"])?;
                let dst = need(ws, 2)?;
                kw(dst, &["startup-config"])?;
                end_of(ws, 3)?;
                Ok(Reply::ok("").then(Next::Ask(Question {
                    id: QuestionId::IosCopyDestination,
                    prompt: "Destination filename [startup-config]? ".into(),
                    input: Input::Line { echo: true },
                })))
            }
            "reload" => {
                end_of(ws, 1)?;
                if m.modified() {
                    Ok(Reply::ok("").then(Next::Ask(save_question())))
                } else {
                    Ok(Reply::ok("").then(Next::Ask(confirm_question())))
                }
            }
            _ => Err(not_simulated(cmd)),
        }
    }

    fn terminal(&mut self, ws: &[Word]) -> Res {
        let sub = kw(need(ws, 1)?, &["length", "width"])?;
        let n = need(ws, 2)?;
        let v: usize = match n.text.parse() {
            Ok(v) if v <= 512 && n.text.bytes().all(|b| b.is_ascii_digit()) => v,
            _ => return Err(IosError::Invalid { at: n.at }),
        };
        end_of(ws, 3)?;
        if sub == "length" {
            self.term_len = v;
        }
        Ok(Reply::ok(""))
    }

    fn show(&mut self, device: &Device, m: &IosModel, ws: &[Word]) -> Res {
        let privileged = self.mode != Mode::User;
        let list: &[&str] = if privileged {
            &[
                "clock",
                "ip",
                "privilege",
                "running-config",
                "startup-config",
                "version",
            ]
        } else {
            &["clock", "ip", "privilege", "version"]
        };
        let what = kw(need(ws, 1)?, list)?;
        match what {
            "version" => {
                end_of(ws, 2)?;
                Ok(Reply::paged(show_version(device, m)))
            }
            "clock" => {
                end_of(ws, 2)?;
                let c = clock::now();
                Ok(Reply::ok(format!(
                    "*{:02}:{:02}:{:02}.{:03} UTC {} {} {} {}",
                    c.hour,
                    c.minute,
                    c.second,
                    c.millis,
                    clock::weekday_abbr(c.weekday),
                    clock::month_abbr(c.month),
                    c.day,
                    c.year
                )))
            }
            "privilege" => {
                end_of(ws, 2)?;
                Ok(Reply::ok(format!(
                    "Current privilege level is {}",
                    if privileged { 15 } else { 1 }
                )))
            }
            "running-config" => {
                end_of(ws, 2)?;
                Ok(Reply::paged(running_config(device, &m.running)))
            }
            "startup-config" => {
                end_of(ws, 2)?;
                let body = config_body(device, &m.startup);
                Ok(Reply::paged(format!(
                    "Using {} out of 262144 bytes\n{body}",
                    body.len()
                )))
            }
            "ip" => {
                kw(need(ws, 2)?, &["interface"])?;
                kw(need(ws, 3)?, &["brief"])?;
                end_of(ws, 4)?;
                Ok(Reply::paged(ip_interface_brief(&m.running)))
            }
            _ => Err(IosError::Invalid { at: ws[1].at }),
        }
    }

    fn config_cmd(
        &mut self,
        device: &Device,
        m: &mut IosModel,
        ws: &[Word],
        list: &[&str],
        iface: Option<String>,
    ) -> Res {
        let cmd = kw(&ws[0], list)?;
        match cmd {
            "end" => {
                end_of(ws, 1)?;
                self.mode = Mode::Enable;
                Ok(Reply::ok(""))
            }
            "exit" => {
                end_of(ws, 1)?;
                self.mode = if iface.is_some() {
                    Mode::Config
                } else {
                    Mode::Enable
                };
                Ok(Reply::ok(""))
            }
            "do" => {
                need(ws, 1)?;
                let saved = std::mem::replace(&mut self.mode, Mode::Enable);
                let r = self.exec_cmd(device, m, &ws[1..], DO_CMDS);
                // `do` never changes the mode.
                self.mode = saved;
                r
            }
            "hostname" => {
                let name = need(ws, 1)?;
                end_of(ws, 2)?;
                let valid = name.text.len() <= 63
                    && name.text.starts_with(|c: char| c.is_ascii_alphabetic())
                    && name
                        .text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
                if !valid {
                    return Err(IosError::Message(
                        "% Hostname contains one or more illegal characters.".into(),
                    ));
                }
                m.running.hostname = name.text.clone();
                Ok(Reply::ok(""))
            }
            "interface" => {
                let (name, used) = parse_iface(ws, 1)?;
                end_of(ws, 1 + used)?;
                if m.iface_mut(&name).is_none() {
                    m.running.interfaces.push(Iface::new(name.clone(), false));
                    m.running.interfaces.sort_by_key(|i| iface_order(&i.name));
                }
                self.mode = Mode::ConfigIf(name);
                Ok(Reply::ok(""))
            }
            "description" => {
                let Some(name) = iface else {
                    return Err(IosError::Invalid { at: ws[0].at });
                };
                let first = need(ws, 1)?;
                let text: String = ws
                    .iter()
                    .skip(1)
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                if text.len() > 240 {
                    return Err(IosError::Invalid { at: first.at + 240 });
                }
                if let Some(i) = m.iface_mut(&name) {
                    i.description = Some(text);
                }
                Ok(Reply::ok(""))
            }
            "ip" => {
                let Some(name) = iface else {
                    return Err(IosError::Invalid { at: ws[0].at });
                };
                kw(need(ws, 1)?, &["address"])?;
                let a = need(ws, 2)?;
                let addr: Ipv4Addr = a.text.parse().map_err(|_| IosError::Invalid { at: a.at })?;
                let k = need(ws, 3)?;
                let mask: Ipv4Addr = k.text.parse().map_err(|_| IosError::Invalid { at: k.at })?;
                end_of(ws, 4)?;
                if !mask_ok(mask) || mask.is_unspecified() {
                    return Err(IosError::Message(format!(
                        "% Bad mask 0x{:X} for address {addr}",
                        u32::from(mask)
                    )));
                }
                let net = u32::from(addr) & u32::from(mask);
                let host = u32::from(addr) & !u32::from(mask);
                if u32::from(mask) != u32::MAX
                    && u32::from(mask) != 0xFFFF_FFFE
                    && (host == 0 || host == !u32::from(mask))
                {
                    return Err(IosError::Message(format!(
                        "% Bad mask 0x{:X} for address {addr}",
                        u32::from(mask)
                    )));
                }
                let clash = m.running.interfaces.iter().find(|i| {
                    i.name != name
                        && i.ip.is_some_and(|(a2, m2)| {
                            let m_ = u32::from(m2).min(u32::from(mask));
                            u32::from(a2) & m_ == net & m_
                        })
                });
                if let Some(other) = clash {
                    return Err(IosError::Message(format!(
                        "% {}/{} overlaps with {}",
                        Ipv4Addr::from(net),
                        u32::from(mask).leading_ones(),
                        other.name
                    )));
                }
                if let Some(i) = m.iface_mut(&name) {
                    i.ip = Some((addr, mask));
                }
                Ok(Reply::ok(""))
            }
            "shutdown" => {
                let Some(name) = iface else {
                    return Err(IosError::Invalid { at: ws[0].at });
                };
                end_of(ws, 1)?;
                if let Some(i) = m.iface_mut(&name) {
                    i.shutdown = true;
                }
                Ok(Reply::ok(""))
            }
            "no" => self.no_cmd(m, ws, iface),
            _ => Err(not_simulated(cmd)),
        }
    }

    fn no_cmd(&mut self, m: &mut IosModel, ws: &[Word], iface: Option<String>) -> Res {
        let list: &[&str] = if iface.is_some() {
            &["description", "hostname", "interface", "ip", "shutdown"]
        } else {
            &["hostname", "interface"]
        };
        let what = kw(need(ws, 1)?, list)?;
        match what {
            "hostname" => {
                m.running.hostname = "Router".into();
                Ok(Reply::ok(""))
            }
            "interface" => {
                let (name, used) = parse_iface(ws, 2)?;
                end_of(ws, 2 + used)?;
                if name.starts_with("GigabitEthernet") {
                    return Err(IosError::Message(
                        "% Removal of physical interfaces is not permitted".into(),
                    ));
                }
                m.running.interfaces.retain(|i| i.name != name);
                if iface.as_deref() == Some(name.as_str()) {
                    self.mode = Mode::Config;
                }
                Ok(Reply::ok(""))
            }
            other => {
                let Some(name) = iface else {
                    return Err(IosError::Invalid { at: ws[1].at });
                };
                let Some(i) = m.iface_mut(&name) else {
                    return Ok(Reply::ok(""));
                };
                match other {
                    "description" => i.description = None,
                    "shutdown" => {
                        end_of(ws, 2)?;
                        i.shutdown = false;
                    }
                    _ => {
                        kw(need(ws, 2)?, &["address"])?;
                        i.ip = None;
                    }
                }
                Ok(Reply::ok(""))
            }
        }
    }
}

impl CliSession for IosSession {
    fn banner(&self) -> String {
        String::from("\n")
    }

    /// The prompt for the current mode.
    fn prompt(&self, device: &Device) -> String {
        let host = match device.model().downcast_ref::<IosModel>() {
            Some(m) => m.running.hostname.clone(),
            None => String::from("Router"),
        };
        match self.mode {
            Mode::User => format!("{host}>"),
            Mode::Enable => format!("{host}#"),
            Mode::Config => format!("{host}(config)#"),
            Mode::ConfigIf(_) => format!("{host}(config-if)#"),
        }
    }

    /// Runs one line.
    fn execute(&mut self, device: &Device, line: &str, prompt_len: usize) -> Reply {
        if let Some(bar) = line.find('|') {
            return match self.piped(device, line, bar, prompt_len) {
                Ok(r) => r,
                Err(e) => Reply::fail(e.render(line, prompt_len)),
            };
        }
        self.execute_plain(device, line, prompt_len)
    }

    /// Handles the answer to a question this session asked.
    fn answer(&mut self, device: &Device, q: QuestionId, input: &str) -> Reply {
        let mut guard = device.model();
        let Some(m) = guard.downcast_mut::<IosModel>() else {
            return Reply::fail("% Not an IOS device");
        };
        let input = input.trim();
        match q {
            QuestionId::IosEnablePassword => {
                if device.credentials.password_matches(input.as_bytes()) {
                    self.mode = Mode::Enable;
                    Reply::ok("")
                } else {
                    Reply::fail("% Access denied\n")
                }
            }
            QuestionId::IosCopyDestination => {
                if input.is_empty() || input.eq_ignore_ascii_case("startup-config") {
                    m.startup = m.running.clone();
                    Reply::ok("Building configuration...\n[OK]")
                } else {
                    Reply::fail(format!("%Error opening {input} (Permission denied)"))
                }
            }
            QuestionId::IosSaveBeforeReload => match resolve(input, &["yes", "no"]) {
                Match::One("yes") => {
                    m.startup = m.running.clone();
                    Reply::ok("Building configuration...\n[OK]").then(Next::Ask(confirm_question()))
                }
                Match::One(_) => Reply::ok("").then(Next::Ask(confirm_question())),
                _ => Reply::ok("% Please answer 'yes' or 'no'.").then(Next::Ask(save_question())),
            },
            QuestionId::IosConfirmReload => {
                if input.is_empty() || input.eq_ignore_ascii_case("y") {
                    Reply::ok("").then(Next::Reboot)
                } else {
                    Reply::ok("")
                }
            }
            QuestionId::RosReboot => Reply::ok(""),
        }
    }

    /// Lines per page (`terminal length`), `None` when 0.
    fn page_len(&self, _rows: u32) -> Option<usize> {
        (self.term_len > 0).then_some(self.term_len)
    }

    /// Ctrl-C / Ctrl-Z: leave configuration mode; Ctrl-C also abandons the line.
    fn control(&mut self, key: u8) -> Option<Reply> {
        match (key, &self.mode) {
            (0x03 | 0x1a, Mode::Config | Mode::ConfigIf(_)) => {
                self.mode = Mode::Enable;
                Some(Reply::ok(""))
            }
            (0x03, _) => Some(Reply::ok("")),
            _ => None,
        }
    }

    fn has_help(&self) -> bool {
        true
    }

    /// IOS context help for `?` typed after `partial`: completions of a partial
    /// word, or the keywords that may follow (first level and `show`).
    fn help(&self, partial: &str) -> String {
        let list = match self.mode {
            Mode::User => USER_CMDS,
            Mode::Enable => ENABLE_CMDS,
            Mode::Config => CONFIG_CMDS,
            Mode::ConfigIf(_) => IF_CMDS,
        };
        let show_list: &[&str] = if self.mode == Mode::User {
            &["clock", "ip", "privilege", "version"]
        } else {
            &[
                "clock",
                "ip",
                "privilege",
                "running-config",
                "startup-config",
                "version",
            ]
        };
        let ws = words(partial);
        let trailing = partial.is_empty() || partial.ends_with(|c: char| c.is_ascii_whitespace());
        let is_show = ws
            .first()
            .is_some_and(|w| resolve(&w.text, list) == Match::One("show"));
        let (candidates, prefix): (&[&str], &str) = match (ws.len(), trailing) {
            (0, _) => (list, ""),
            (1, false) => (list, ws[0].text.as_str()),
            (1, true) if is_show => (show_list, ""),
            (2, false) if is_show => (show_list, ws[1].text.as_str()),
            _ => return "% Help is not simulated at this level\n".into(),
        };
        let lower = prefix.to_ascii_lowercase();
        let found: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|k| k.starts_with(&lower))
            .collect();
        if found.is_empty() {
            return "% Unrecognized command\n".into();
        }
        if prefix.is_empty() {
            found.iter().map(|k| format!("  {k}\n")).collect()
        } else {
            format!("{}\n", found.join("  "))
        }
    }
}

fn not_simulated(cmd: &str) -> IosError {
    debug_assert!(DECOYS.contains(&cmd));
    IosError::Message(format!("% '{cmd}' is not simulated on this lab device"))
}

fn save_question() -> Question {
    Question {
        id: QuestionId::IosSaveBeforeReload,
        prompt: "System configuration has been modified. Save? [yes/no]: ".into(),
        input: Input::Line { echo: true },
    }
}

fn confirm_question() -> Question {
    Question {
        id: QuestionId::IosConfirmReload,
        prompt: "Proceed with reload? [confirm]".into(),
        input: Input::Key,
    }
}

fn uptime_text(secs: u64) -> String {
    let (w, d, h, m) = (
        secs / 604_800,
        secs / 86_400 % 7,
        secs / 3600 % 24,
        secs / 60 % 60,
    );
    let unit = |n: u64, s: &str| format!("{n} {s}{}", if n == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    if w > 0 {
        parts.push(unit(w, "week"));
    }
    if d > 0 {
        parts.push(unit(d, "day"));
    }
    if h > 0 {
        parts.push(unit(h, "hour"));
    }
    parts.push(unit(m, "minute"));
    parts.join(", ")
}

fn show_version(device: &Device, m: &IosModel) -> String {
    let gi = m
        .running
        .interfaces
        .iter()
        .filter(|i| i.name.starts_with("GigabitEthernet"))
        .count();
    format!(
        "Cisco IOS Software, IOSv Software (VIOS-ADVENTERPRISEK9-M), Version 15.9(3)M7, RELEASE SOFTWARE (fc1)\n\
Copyright (c) 1986-2023 by Cisco Systems, Inc.\n\
Compiled Wed 08-Mar-23 10:07 by prod_rel_team\n\
\n\
\n\
ROM: Bootstrap program is IOSv\n\
\n\
{host} uptime is {up}\n\
System returned to ROM by reload\n\
System image file is \"flash0:/vios-adventerprisek9-m\"\n\
Last reload reason: Unknown reason\n\
\n\
cisco IOSv (revision 1.0) with  with 460137K/62464K bytes of memory.\n\
Processor board ID 9LAB0000001\n\
{gi} Gigabit Ethernet interfaces\n\
DRAM configuration is 72 bits wide with parity disabled.\n\
256K bytes of non-volatile configuration memory.\n\
2097152K bytes of ATA System CompactFlash 0 (Read/Write)\n\
\n\
Configuration register is 0x0\n",
        host = m.running.hostname,
        up = uptime_text(device.uptime_secs()),
    )
}

fn ip_interface_brief(cfg: &IosConfig) -> String {
    let mut out = format!(
        "{:<27}{:<16}{:<4}{:<7}{:<22}{}\n",
        "Interface", "IP-Address", "OK?", "Method", "Status", "Protocol"
    );
    for i in &cfg.interfaces {
        let (ip, method) = match i.ip {
            Some((a, _)) => (a.to_string(), "manual"),
            None => ("unassigned".to_string(), "unset"),
        };
        let (status, proto) = if i.shutdown {
            ("administratively down", "down")
        } else {
            ("up", "up")
        };
        out.push_str(&format!(
            "{:<27}{:<16}{:<4}{:<7}{:<22}{}\n",
            i.name, ip, "YES", method, status, proto
        ));
    }
    out
}

fn config_body(device: &Device, cfg: &IosConfig) -> String {
    let user = &device.credentials.user;
    let mut s = String::new();
    s.push_str("!\nversion 15.9\nservice timestamps debug datetime msec\nservice timestamps log datetime msec\nno service password-encryption\n!\n");
    s.push_str(&format!("hostname {}\n", cfg.hostname));
    s.push_str("!\nboot-start-marker\nboot-end-marker\n!\n!\nenable secret 9 $9$lab$device\n!\nno aaa new-model\n!\n!\nip cef\nno ipv6 cef\n!\n");
    s.push_str(&format!(
        "username {user} privilege 15 secret 9 $9$lab$device\n!\nredundancy\n!\n!\n"
    ));
    for i in &cfg.interfaces {
        s.push_str(&format!("interface {}\n", i.name));
        if let Some(d) = &i.description {
            s.push_str(&format!(" description {d}\n"));
        }
        match i.ip {
            Some((a, m)) => s.push_str(&format!(" ip address {a} {m}\n")),
            None => s.push_str(" no ip address\n"),
        }
        if i.shutdown {
            s.push_str(" shutdown\n");
        }
        if i.name.starts_with("GigabitEthernet") {
            s.push_str(" duplex auto\n speed auto\n media-type rj45\n");
        }
        s.push_str("!\n");
    }
    s.push_str("ip forward-protocol nd\n!\nno ip http server\nno ip http secure-server\nip ssh version 2\n!\n!\ncontrol-plane\n!\nline con 0\nline aux 0\nline vty 0 4\n login local\n transport input ssh\n!\nend\n");
    s
}

fn running_config(device: &Device, cfg: &IosConfig) -> String {
    let body = config_body(device, cfg);
    format!(
        "Building configuration...\n\nCurrent configuration : {} bytes\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(s: &str) -> Vec<Word> {
        words(s)
    }

    #[test]
    fn interface_names() {
        assert_eq!(
            parse_iface(&ws("int gi0/1"), 1).unwrap(),
            ("GigabitEthernet0/1".into(), 1)
        );
        assert_eq!(
            parse_iface(&ws("int Gi 0/2"), 1).unwrap(),
            ("GigabitEthernet0/2".into(), 2)
        );
        assert_eq!(
            parse_iface(&ws("int lo 7"), 1).unwrap(),
            ("Loopback7".into(), 2)
        );
        assert!(parse_iface(&ws("int gi0/9"), 1).is_err());
        assert!(parse_iface(&ws("int x0/1"), 1).is_err());
        assert_eq!(parse_iface(&ws("int"), 1), Err(IosError::Incomplete));
    }

    #[test]
    fn masks() {
        assert!(mask_ok("255.255.255.0".parse().unwrap()));
        assert!(!mask_ok("255.0.255.0".parse().unwrap()));
    }

    #[test]
    fn caret_under_word() {
        let e = IosError::Invalid { at: 5 };
        let r = e.render("show foo", 3);
        assert!(r.starts_with("        ^\n"), "{r:?}");
    }
}
