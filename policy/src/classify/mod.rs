//! Classification engine entry points. Owns input capping, the recursion
//! budget for nested payloads, and the accumulation of parts into a
//! [`Verdict`]. Per-dialect parsing lives in the submodules; rule meaning
//! lives in [`crate::rules`]. Must never return read-only for input it did not
//! fully parse, never panic, never recurse deeper than [`MAX_DEPTH`].

mod connector;
mod editing;
mod http;
mod linux;
mod routeros;
mod tree;

pub use connector::{
    ConnectorCommandError, ConnectorRequest, MAX_TARGET, classify_connector, soap_envelope,
};
pub use http::{HttpCall, classify_http};

use crate::vendor::Vendor;
use crate::verdict::{Class, PartVerdict, Verdict};
use std::borrow::Cow;

/// Inputs longer than this (bytes) are not parsed: the verdict is unknown.
pub const MAX_CLASSIFY_BYTES: usize = 64 * 1024;
/// Maximum nesting of embedded payloads (`sudo sh -c "ssh h 'bash -c …'"`).
pub const MAX_DEPTH: usize = 8;
/// Maximum number of parts recorded; beyond it the verdict is unknown.
pub const MAX_PARTS: usize = 2048;

/// Accumulates parts while parsing.
pub(crate) struct Acc {
    pub parts: Vec<PartVerdict>,
    pub secrets: bool,
    pub cred: bool,
    /// How many loop bodies (RouterOS `:foreach`/`:for`/`:while`) enclose
    /// the command being classified: a change repeated per item is a mass
    /// operation.
    pub loop_depth: u32,
    overflow: bool,
}

impl Acc {
    pub fn new() -> Acc {
        Acc {
            parts: Vec::new(),
            secrets: false,
            cred: false,
            loop_depth: 0,
            overflow: false,
        }
    }

    pub fn push(
        &mut self,
        text: &str,
        class: Class,
        ids: Vec<Cow<'static, str>>,
        reason: Cow<'static, str>,
    ) {
        if self.parts.len() >= MAX_PARTS {
            self.overflow = true;
            return;
        }
        let t = text.trim();
        let t = if t.len() > 512 {
            &t[..floor_boundary(t, 512)]
        } else {
            t
        };
        self.parts.push(PartVerdict {
            text: t.to_string(),
            class,
            rule_ids: ids,
            reason,
        });
    }

    pub fn rule(&mut self, text: &str, class: Class, id: &'static str, why: &'static str) {
        self.push(text, class, vec![Cow::Borrowed(id)], Cow::Borrowed(why));
    }

    pub fn finish(mut self) -> Verdict {
        if self.overflow {
            self.parts.push(PartVerdict {
                text: String::new(),
                class: Class::Unknown,
                rule_ids: vec![Cow::Borrowed("core.too-many-parts")],
                reason: Cow::Borrowed("input has too many parts to review; not classified"),
            });
        }
        Verdict::from_parts(self.parts, self.secrets, self.cred)
    }
}

/// Largest char boundary ≤ `i`.
pub(crate) fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Classify `text` (one command, a compound command or a multi-line script)
/// for `vendor`. Never panics; anything not fully understood is unknown.
pub fn classify(vendor: Vendor, text: &str) -> Verdict {
    let mut acc = Acc::new();
    if text.len() > MAX_CLASSIFY_BYTES {
        acc.rule(
            &text[..floor_boundary(text, 80)],
            Class::Unknown,
            "core.too-long",
            "input is longer than the classifier reviews; not classified",
        );
        return acc.finish();
    }
    if editing::has_controls(text) {
        // The line the device runs depends on its line editing: review the
        // edited line and every fragment, and never call it read-only.
        acc.rule(
            text,
            Class::Unknown,
            "core.control-characters",
            "contains control characters (line editing): what the device runs is reviewed both edited and as fragments",
        );
        classify_into(vendor, &editing::edited(text), 0, &mut acc);
        classify_into(vendor, &editing::fragments(text), 0, &mut acc);
    } else {
        classify_into(vendor, text, 0, &mut acc);
    }
    let mut v = acc.finish();
    v.vendor = Some(vendor);
    v.input = text[..floor_boundary(text, 4096)].to_string();
    v
}

/// Classify into an accumulator at a nesting depth.
pub(crate) fn classify_into(vendor: Vendor, text: &str, depth: usize, acc: &mut Acc) {
    if depth > MAX_DEPTH {
        acc.rule(
            text,
            Class::Unknown,
            "core.too-deep",
            "payloads nested too deeply to review",
        );
        return;
    }
    match vendor {
        Vendor::Linux => linux::classify(text, depth, acc),
        Vendor::RouterOs => routeros::classify(text, depth, acc),
        Vendor::Ios => tree::classify(&crate::rules::ios::TABLE, vendor, text, depth, acc),
        Vendor::IosXe => tree::classify(&crate::rules::ios::IOSXE_TABLE, vendor, text, depth, acc),
        Vendor::NxOs => tree::classify(&crate::rules::nxos::TABLE, vendor, text, depth, acc),
        Vendor::Eos => tree::classify(&crate::rules::eos::TABLE, vendor, text, depth, acc),
        Vendor::Junos => tree::classify(&crate::rules::junos::TABLE, vendor, text, depth, acc),
    }
}

/// Ping risk check shared by the dialects: sizes above 1500 or counts above
/// 1000 are moderate; both huge (size > 9000 and count > 10000) dangerous.
pub(crate) fn ping_class(words: &[&str]) -> (Class, &'static str, &'static str) {
    let mut size = 0u64;
    let mut count = 0u64;
    let mut flood = false;
    let mut it = words.iter().peekable();
    while let Some(w) = it.next() {
        let lw = w.to_ascii_lowercase();
        let next_num = |it: &mut std::iter::Peekable<std::slice::Iter<'_, &str>>| {
            it.peek().and_then(|n| crate::text::num(n))
        };
        match lw.as_str() {
            "size" | "packet-size" | "datagram-size" | "-s" | "df-bit-size" => {
                size = size.max(next_num(&mut it).unwrap_or(0))
            }
            "repeat" | "count" | "-c" => count = count.max(next_num(&mut it).unwrap_or(0)),
            "-f" | "flood" => flood = true,
            _ => {
                if let Some(rest) = lw.strip_prefix("size=") {
                    size = size.max(crate::text::num(rest).unwrap_or(0));
                } else if let Some(rest) = lw.strip_prefix("count=") {
                    count = count.max(crate::text::num(rest).unwrap_or(0));
                } else if lw.starts_with("-s") && lw.len() > 2 {
                    size = size.max(crate::text::num(&lw[2..]).unwrap_or(0));
                } else if lw.starts_with("-c") && lw.len() > 2 {
                    count = count.max(crate::text::num(&lw[2..]).unwrap_or(0));
                }
            }
        }
    }
    if (size > 9000 && count > 10_000) || (flood && size > 1500) {
        (
            Class::Dangerous,
            "core.ping.flood",
            "a flood of oversized pings can hurt the device or the path",
        )
    } else if size > 1500 || count > 1000 || flood {
        (
            Class::Moderate,
            "core.ping.large",
            "a large or long ping loads the device and the path",
        )
    } else {
        (
            Class::ReadOnly,
            "core.ping",
            "ping sends a few probe packets",
        )
    }
}
