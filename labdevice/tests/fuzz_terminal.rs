//! Fuzz-ish: random bytes and random token soup fed to the shell engine of
//! both vendors, in process. Nothing may panic, output must stay bounded,
//! and the device must keep answering afterwards.

use std::sync::Arc;

use gatehouse_labdevice::device::{Credentials, Device, Vendor};
use gatehouse_labdevice::eventlog::EventLog;
use gatehouse_labdevice::terminal::{End, Terminal};
use gatehouse_labdevice::vendors;
use zeroize::Zeroizing;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn device(vendor: Vendor) -> Arc<Device> {
    Arc::new(vendors::new_device(
        vendor,
        "R1",
        Credentials {
            user: "admin".into(),
            password: Zeroizing::new("pw".into()),
            authorized_keys: Vec::new(),
            password_method: true,
            keyboard_interactive: false,
        },
        EventLog::none(),
        false,
    ))
}

const IOS_WORDS: &[&str] = &[
    "show",
    "sh",
    "run",
    "running-config",
    "ip",
    "int",
    "interface",
    "brief",
    "br",
    "conf",
    "t",
    "terminal",
    "length",
    "0",
    "24",
    "enable",
    "en",
    "pw",
    "gi0/1",
    "Gi",
    "0/2",
    "lo",
    "7",
    "description",
    "address",
    "10.0.0.1",
    "255.255.255.0",
    "255.0.255.0",
    "shutdown",
    "no",
    "end",
    "exit",
    "do",
    "write",
    "wr",
    "reload",
    "yes",
    "no",
    "y",
    "n",
    "hostname",
    "X",
    "copy",
    "startup-config",
    "version",
    "?",
    "\"",
    "[",
    "]",
    "\u{e9}",
    "",
    "disable",
    "s",
    "c",
];
const ROS_WORDS: &[&str] = &[
    "/ip",
    "address",
    "addr",
    "print",
    "pr",
    "add",
    "address=10.0.0.1/24",
    "interface=ether1",
    "int=ether2",
    "comment=\"a b\"",
    "remove",
    "0",
    "0,1",
    "[find]",
    "[find address=\"10.0.0.1/24\"]",
    "[find",
    "\"",
    "/system",
    "identity",
    "set",
    "name=Z",
    "resource",
    "reboot",
    "y",
    "N",
    "/export",
    "export",
    "..",
    "/",
    "/interface",
    "disable",
    "enable",
    "ether1",
    "where",
    "without-paging",
    "disabled=yes",
    "/ip/address/print",
    "quit",
    "=",
    "x=",
    "\\",
    "[",
    "]",
    "\u{1F600}",
];

fn drive(vendor: Vendor, seed: u64, rounds: usize) {
    let dev = device(vendor);
    let mut rng = Rng(seed);
    let words = if vendor == Vendor::Ios {
        IOS_WORDS
    } else {
        ROS_WORDS
    };
    let new_term = |rng: &mut Rng| {
        if rng.below(4) == 0 {
            Terminal::exec(dev.clone(), 1, vendors::session(vendor, "admin", true))
        } else {
            let rows = [None, Some(0), Some(1), Some(5), Some(24)][rng.below(5)];
            Terminal::shell(
                dev.clone(),
                1,
                vendors::session(vendor, "admin", false),
                rows,
            )
        }
    };
    let mut term = new_term(&mut rng);
    let _ = term.start();
    for _ in 0..rounds {
        let input: Vec<u8> = match rng.below(3) {
            0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
            1 => {
                let n = rng.below(8);
                let mut line: Vec<String> = (0..n)
                    .map(|_| words[rng.below(words.len())].to_string())
                    .collect();
                line.push(
                    ["\r", "\n", "\r\n", " ", "\x7f", "\x03", "\x1a", "\x1b[B"][rng.below(8)]
                        .into(),
                );
                line.join(" ").into_bytes()
            }
            _ => vec![b" qd\r\nyYnN\x03\x04"[rng.below(11)]],
        };
        let out = if rng.below(50) == 0 {
            term.run_exec(&String::from_utf8_lossy(&input))
        } else {
            term.feed(&input)
        };
        assert!(out.bytes.len() < 1 << 20, "bounded output");
        if let Some(end) = out.end {
            if end == End::Reboot {
                dev.reboot(1, "fuzz");
            }
            term = new_term(&mut rng);
            let _ = term.start();
        } else if rng.below(200) == 0 {
            let _ = term.eof();
            term = new_term(&mut rng);
        }
    }
    // Still answering.
    let mut t = Terminal::exec(dev.clone(), 2, vendors::session(vendor, "admin", true));
    let out = t.run_exec(if vendor == Vendor::Ios {
        "show version"
    } else {
        "/system resource print"
    });
    assert_eq!(out.end, Some(End::Exit(0)));
}

#[test]
fn random_input_never_panics_ios() {
    for seed in 1..=8u64 {
        drive(Vendor::Ios, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), 20000);
    }
}

#[test]
fn random_input_never_panics_routeros() {
    for seed in 1..=8u64 {
        drive(
            Vendor::RouterOs,
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            20000,
        );
    }
}

#[test]
fn very_long_line_is_capped() {
    let dev = device(Vendor::Ios);
    let mut t = Terminal::shell(
        dev,
        1,
        vendors::session(Vendor::Ios, "admin", false),
        Some(24),
    );
    let _ = t.start();
    let out = t.feed(&vec![b'a'; 100_000]);
    assert!(out.bytes.iter().filter(|&&b| b == b'a').count() <= 1024);
    assert!(out.bytes.contains(&0x07), "bell when full");
    let out = t.feed(b"\r");
    assert!(String::from_utf8_lossy(&out.bytes).contains("% Invalid input"));
}
