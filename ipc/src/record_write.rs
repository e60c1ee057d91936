//! The exact text a person approves when the copilot writes a shared record
//! (`write_memory`, `update_procedure`), and reading that text back.
//!
//! Owns one canonical, human-readable rendering, used by both sides: copilotd
//! puts it in the approval request (and carries out what a person approved,
//! edits included, by parsing it back), and the broker renders the record
//! content it is asked to MAC and compares it byte for byte with the signed
//! approval. The parser is strict: every text it accepts renders back to
//! itself, so "the same meaning" and "the same bytes" are one check.
//! Must never: accept a text that renders differently from itself, or leave
//! a field of the written record out of the rendering.

/// A record write the copilot proposes and a person approves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordWrite {
    /// A new memory (note).
    Memory {
        title: String,
        /// Empty: the root folder.
        folder: String,
        /// Names of the linked hosts, in the record's order.
        hosts: Vec<String>,
        body: String,
    },
    /// A new body for an existing procedure (nothing else changes).
    UpdateProcedure {
        procedure: String,
        /// The procedure's folder (empty: the root folder).
        folder: String,
        body: String,
    },
}

/// [`crate::broker::Action`] host and vendor of a copilot record write
/// (its executor is copilotd: [`crate::broker::Action::executor`]).
pub const RECORDS_HOST: &str = "records";
pub const RECORDS_VENDOR: &str = "copilot:records";

/// The first line of each kind of write.
pub const WRITE_MEMORY: &str = "write_memory";
pub const UPDATE_PROCEDURE: &str = "update_procedure";

/// Why a text is not a record write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the first line must be {WRITE_MEMORY} or {UPDATE_PROCEDURE}, not {0:?}")]
    Verb(String),
    #[error("no blank line between the header lines and the body")]
    NoBody,
    #[error("header line {0:?} is not `name: value` (one space after the colon, none at the end)")]
    Header(String),
    #[error("unexpected header {0:?} here (expected, in order: {1})")]
    Unexpected(String, &'static str),
    #[error("missing header {0:?}")]
    Missing(&'static str),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("the text is not in the canonical form")]
    NotCanonical,
}

const MEMORY_HEADERS: &str = "title, folder (optional), host (any number)";
const PROCEDURE_HEADERS: &str = "procedure, folder (optional)";

impl RecordWrite {
    /// The canonical text (what the approval request shows and signs).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (verb, headers, body): (&str, Vec<(&str, &str)>, &str) = match self {
            RecordWrite::Memory {
                title,
                folder,
                hosts,
                body,
            } => {
                let mut h = vec![("title", title.as_str())];
                if !folder.is_empty() {
                    h.push(("folder", folder.as_str()));
                }
                h.extend(hosts.iter().map(|n| ("host", n.as_str())));
                (WRITE_MEMORY, h, body)
            }
            RecordWrite::UpdateProcedure {
                procedure,
                folder,
                body,
            } => {
                let mut h = vec![("procedure", procedure.as_str())];
                if !folder.is_empty() {
                    h.push(("folder", folder.as_str()));
                }
                (UPDATE_PROCEDURE, h, body)
            }
        };
        out.push_str(verb);
        out.push('\n');
        for (k, v) in headers {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(body);
        out
    }

    /// Reads a text written by [`RecordWrite::render`] (or a person's edit
    /// of one). Accepts exactly the texts that render back to themselves.
    pub fn parse(text: &str) -> Result<RecordWrite, ParseError> {
        let (head, body) = text.split_once("\n\n").ok_or(ParseError::NoBody)?;
        let mut lines = head.split('\n');
        let verb = lines.next().unwrap_or_default();
        let mut headers = Vec::new();
        for line in lines {
            let (k, v) = line
                .split_once(": ")
                .ok_or_else(|| ParseError::Header(line.to_string()))?;
            let clean =
                |s: &str| !s.is_empty() && s.trim() == s && !s.chars().any(char::is_control);
            if !clean(k) || !clean(v) {
                return Err(ParseError::Header(line.to_string()));
            }
            headers.push((k, v));
        }
        if body.is_empty() {
            return Err(ParseError::Empty("the body"));
        }
        let mut it = headers.into_iter().peekable();
        let mut take = |key: &str| match it.peek() {
            Some((k, _)) if *k == key => it.next().map(|(_, v)| v.to_string()),
            _ => None,
        };
        let write = match verb {
            WRITE_MEMORY => {
                let title = take("title").ok_or(ParseError::Missing("title"))?;
                let folder = take("folder").unwrap_or_default();
                let mut hosts = Vec::new();
                while let Some(h) = take("host") {
                    hosts.push(h);
                }
                if let Some((k, _)) = it.next() {
                    return Err(ParseError::Unexpected(k.to_string(), MEMORY_HEADERS));
                }
                RecordWrite::Memory {
                    title,
                    folder,
                    hosts,
                    body: body.to_string(),
                }
            }
            UPDATE_PROCEDURE => {
                let procedure = take("procedure").ok_or(ParseError::Missing("procedure"))?;
                let folder = take("folder").unwrap_or_default();
                if let Some((k, _)) = it.next() {
                    return Err(ParseError::Unexpected(k.to_string(), PROCEDURE_HEADERS));
                }
                RecordWrite::UpdateProcedure {
                    procedure,
                    folder,
                    body: body.to_string(),
                }
            }
            other => return Err(ParseError::Verb(other.to_string())),
        };
        // The rules above make this hold; checked anyway, since the broker
        // relies on it.
        if write.render() != text {
            return Err(ParseError::NotCanonical);
        }
        Ok(write)
    }

    /// The body being written.
    pub fn body(&self) -> &str {
        match self {
            RecordWrite::Memory { body, .. } | RecordWrite::UpdateProcedure { body, .. } => body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> RecordWrite {
        RecordWrite::Memory {
            title: "core-sw1 quirks".into(),
            folder: "net/notes".into(),
            hosts: vec!["r1".into(), "core, sw1".into()],
            body: "Line one.\n\nAfter a blank line: still body.\nhost: not a header\n".into(),
        }
    }

    #[test]
    fn renders_and_parses_back() {
        for w in [
            memory(),
            RecordWrite::Memory {
                title: "t".into(),
                folder: String::new(),
                hosts: Vec::new(),
                body: "b".into(),
            },
            RecordWrite::UpdateProcedure {
                procedure: "add-address".into(),
                folder: String::new(),
                body: "1. step\n".into(),
            },
        ] {
            let text = w.render();
            assert_eq!(RecordWrite::parse(&text), Ok(w.clone()), "{text}");
        }
        assert_eq!(
            memory().render(),
            "write_memory\ntitle: core-sw1 quirks\nfolder: net/notes\nhost: r1\nhost: core, sw1\n\n\
             Line one.\n\nAfter a blank line: still body.\nhost: not a header\n"
        );
    }

    #[test]
    fn every_accepted_text_is_canonical() {
        let bad = [
            "write_memory\ntitle:  two spaces\n\nbody",
            "write_memory\ntitle: trailing \n\nbody",
            "write_memory\ntitle:no space\n\nbody",
            "write_memory\nhost: r1\ntitle: t\n\nbody",
            "write_memory\ntitle: t\nhost: r1\nfolder: f\n\nbody",
            "write_memory\ntitle: t\ntitle: u\n\nbody",
            "write_memory\ntitle: t\n\n",
            "write_memory\ntitle: t\nbody without a blank line",
            "write_memory\nfolder: f\n\nbody",
            "update_procedure\nprocedure: p\nhost: r1\n\nbody",
            "Write_memory\ntitle: t\n\nbody",
            " write_memory\ntitle: t\n\nbody",
            "write_memory\r\ntitle: t\n\nbody",
            "write_memory\ntitle: t\r\n\nbody",
        ];
        for text in bad {
            assert!(RecordWrite::parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn one_byte_changes_change_the_meaning_or_fail() {
        let text = memory().render();
        for i in 0..text.len() {
            let mut b = text.clone().into_bytes();
            b[i] ^= 0x01;
            let Ok(t) = String::from_utf8(b) else {
                continue;
            };
            if let Ok(w) = RecordWrite::parse(&t) {
                assert_ne!(w, memory(), "flipping byte {i} kept the meaning");
                assert_eq!(w.render(), t);
            }
        }
    }
}
