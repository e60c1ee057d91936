//! Connector calls as the copilot makes them and a person approves them:
//! the one text format of a call (`METHOD target`, an optional
//! `SOAPAction:` line, a blank line, the body — exact bytes), and its
//! classification. REST: `GET`/`HEAD`/`OPTIONS` read-only,
//! `POST`/`PUT`/`PATCH` moderate, `DELETE` dangerous, any other method
//! unknown. SOAP (a `SOAPAction` line, or a body whose root element is an
//! `Envelope`): unknown, with the operation shown as a reason, unless an
//! org rule classifies it ([`crate::apply_connector_policy`]).
//!
//! Owns: parsing and formatting that text (copilotd builds it, the broker
//! classifies it for the approval card, copilotd parses a person's edit
//! back), and finding a SOAP envelope's operation. Must never: call a
//! method it does not know read-only, read a SOAP call as REST, or panic
//! or spend more than linear time on any input.

use std::borrow::Cow;
use std::fmt;

use super::{Acc, MAX_CLASSIFY_BYTES, floor_boundary};
use crate::verdict::{Class, Verdict};

/// Longest request target accepted (bytes).
pub const MAX_TARGET: usize = 8 * 1024;
/// Longest `SOAPAction` value accepted (bytes).
const MAX_SOAP_ACTION: usize = 1024;
/// The header line a SOAP call may carry.
const SOAP_ACTION: &str = "SOAPAction:";

/// One connector call, parsed from (or to be formatted as) its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRequest<'a> {
    /// Upper-case HTTP method token.
    pub method: &'a str,
    /// The request target on the server: an absolute path (and query).
    pub target: &'a str,
    /// The `SOAPAction` header value, if the call carries one.
    pub soap_action: Option<&'a str>,
    pub body: &'a str,
}

/// Why a connector call's text does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorCommandError {
    /// No blank line between the request line (and headers) and the body.
    NoBlankLine,
    /// The first line is not `METHOD /target`.
    RequestLine,
    /// The method is not 1–16 upper-case letters.
    Method,
    /// The target does not start with `/`, or has spaces or control characters.
    Target,
    /// A header line other than one `SOAPAction:` line.
    Header,
    TooLong,
}

impl fmt::Display for ConnectorCommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectorCommandError::NoBlankLine => {
                "a connector call is \"METHOD /path\", an optional \"SOAPAction: …\" line, a blank line, then the body"
            }
            ConnectorCommandError::RequestLine => {
                "the first line must be \"METHOD /path\" (one space between them)"
            }
            ConnectorCommandError::Method => "the method must be 1-16 upper-case letters",
            ConnectorCommandError::Target => {
                "the path must start with '/' and hold no spaces or control characters"
            }
            ConnectorCommandError::Header => {
                "the only header line a call may carry is one \"SOAPAction: …\" line"
            }
            ConnectorCommandError::TooLong => "the path or SOAPAction is too long",
        })
    }
}

fn clean(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl<'a> ConnectorRequest<'a> {
    /// Parses a call's text. Exact: no trimming, `\n` line ends only.
    pub fn parse(text: &'a str) -> Result<ConnectorRequest<'a>, ConnectorCommandError> {
        let (head, body) = text
            .split_once("\n\n")
            .ok_or(ConnectorCommandError::NoBlankLine)?;
        let mut lines = head.split('\n');
        let first = lines.next().unwrap_or("");
        let (method, target) = first
            .split_once(' ')
            .ok_or(ConnectorCommandError::RequestLine)?;
        if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(ConnectorCommandError::Method);
        }
        if target.len() > MAX_TARGET {
            return Err(ConnectorCommandError::TooLong);
        }
        if !target.starts_with('/') || !clean(target) {
            return Err(ConnectorCommandError::Target);
        }
        let soap_action = match (lines.next(), lines.next()) {
            (None, _) => None,
            (Some(line), None) => {
                let v = line
                    .strip_prefix(SOAP_ACTION)
                    .ok_or(ConnectorCommandError::Header)?
                    .trim_start_matches(' ');
                if v.len() > MAX_SOAP_ACTION {
                    return Err(ConnectorCommandError::TooLong);
                }
                if v.is_empty() || v.chars().any(char::is_control) {
                    return Err(ConnectorCommandError::Header);
                }
                Some(v)
            }
            (Some(_), Some(_)) => return Err(ConnectorCommandError::Header),
        };
        Ok(ConnectorRequest {
            method,
            target,
            soap_action,
            body,
        })
    }

    /// The call's text (what a person approves, byte for byte).
    pub fn format(&self) -> String {
        let mut s = format!("{} {}\n", self.method, self.target);
        if let Some(a) = self.soap_action {
            s.push_str(SOAP_ACTION);
            s.push(' ');
            s.push_str(a);
            s.push('\n');
        }
        s.push('\n');
        s.push_str(self.body);
        s
    }

    /// `METHOD target`: what org patterns match.
    pub fn request_line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }

    /// Whether this is a SOAP call: it carries a `SOAPAction`, or its body
    /// is a SOAP envelope.
    pub fn is_soap(&self) -> bool {
        self.soap_action.is_some() || soap_envelope(self.body).is_some()
    }
}

/// Skips whitespace, `<?…?>` declarations and `<!--…-->` comments; returns
/// the rest, starting at the next element tag (or `None`).
fn next_element(mut s: &str) -> Option<&str> {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("<?") {
            s = &rest[rest.find("?>")? + 2..];
        } else if let Some(rest) = s.strip_prefix("<!--") {
            s = &rest[rest.find("-->")? + 3..];
        } else if s.starts_with('<') && !s.starts_with("</") && !s.starts_with("<!") {
            return Some(s);
        } else {
            return None;
        }
    }
}

/// The qualified name of the tag `s` starts with (`<ns:Name …`), and the
/// local name.
fn tag_name(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix('<')?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(rest.len());
    let name = &rest[..end];
    if name.is_empty() || name.len() > 256 {
        return None;
    }
    let local = name.rsplit(':').next().unwrap_or(name);
    Some((name, local))
}

/// If `body` is a SOAP envelope: the operation, i.e. the local name of the
/// first element inside its `Body` (`None` inside when the body is empty).
pub fn soap_envelope(body: &str) -> Option<Option<&str>> {
    let root = next_element(body)?;
    let (_, local) = tag_name(root)?;
    if local != "Envelope" {
        return None;
    }
    // The first `<…Body` start tag after the root's own tag.
    let mut rest = &root[1..];
    let body_tag = loop {
        let i = rest.find('<')?;
        rest = &rest[i..];
        match tag_name(rest) {
            Some((_, "Body")) => break rest,
            _ => rest = &rest[1..],
        }
    };
    let after = &body_tag[body_tag.find('>')? + 1..];
    if body_tag[..body_tag.find('>')?].ends_with('/') {
        return Some(None);
    }
    Some(
        next_element(after)
            .and_then(tag_name)
            .map(|(_, local)| local),
    )
}

/// Classifies one connector call's text (see the module docs). The
/// verdict's `input` is `METHOD target`; a SOAP call has a second part
/// `SOAP <operation>` for org patterns to match.
pub fn classify_connector(text: &str) -> Verdict {
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
    let req = match ConnectorRequest::parse(text) {
        Ok(r) => r,
        Err(e) => {
            let first = text.split('\n').next().unwrap_or("");
            acc.push(
                first,
                Class::Unknown,
                vec![Cow::Borrowed("connector.malformed")],
                Cow::Owned(format!("not a connector call: {e}")),
            );
            return acc.finish();
        }
    };
    let line = req.request_line();
    if req.is_soap() {
        let op = soap_envelope(req.body).flatten();
        acc.rule(
            &line,
            Class::Unknown,
            "connector.soap",
            "a SOAP call: its effect depends on the operation, not the HTTP method",
        );
        let mut why = match op {
            Some(op) => format!("SOAP operation {op}"),
            None => "SOAP call without a recognisable operation".to_string(),
        };
        if let Some(a) = req.soap_action {
            why.push_str(&format!(" (SOAPAction {a})"));
        }
        why.push_str(": unknown unless an org rule classifies it");
        acc.push(
            &format!("SOAP {}", op.unwrap_or("")),
            Class::Unknown,
            vec![Cow::Borrowed("connector.soap.operation")],
            Cow::Owned(why),
        );
    } else {
        let (class, id, why) = match req.method {
            "GET" | "HEAD" | "OPTIONS" => (
                Class::ReadOnly,
                "connector.read",
                "a reading request (GET, HEAD, OPTIONS)",
            ),
            "POST" | "PUT" | "PATCH" => (
                Class::Moderate,
                "connector.write",
                "a writing request (POST, PUT, PATCH) to an external API",
            ),
            "DELETE" => (
                Class::Dangerous,
                "connector.delete",
                "a DELETE request removes data in an external system",
            ),
            _ => (
                Class::Unknown,
                "connector.method.unknown",
                "not an HTTP method this classifier knows",
            ),
        };
        acc.rule(&line, class, id, why);
    }
    let mut v = acc.finish();
    v.input = line[..floor_boundary(&line, 4096)].to_string();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, target: &str, body: &str) -> String {
        ConnectorRequest {
            method,
            target,
            soap_action: None,
            body,
        }
        .format()
    }

    #[test]
    fn rest_methods_cell_by_cell() {
        let table = [
            ("GET", Class::ReadOnly),
            ("HEAD", Class::ReadOnly),
            ("OPTIONS", Class::ReadOnly),
            ("POST", Class::Moderate),
            ("PUT", Class::Moderate),
            ("PATCH", Class::Moderate),
            ("DELETE", Class::Dangerous),
            ("TRACE", Class::Unknown),
            ("CONNECT", Class::Unknown),
            ("PROPFIND", Class::Unknown),
            ("BREW", Class::Unknown),
        ];
        for (m, want) in table {
            let v = classify_connector(&call(m, "/api/items?x=1", "{}"));
            assert_eq!(v.class, want, "{m}");
            assert_eq!(v.input, format!("{m} /api/items?x=1"));
            assert!(v.vendor.is_none());
        }
    }

    #[test]
    fn malformed_calls_are_unknown_never_read_only() {
        for text in [
            "GET /x",
            "get /x\n\n",
            "GET x\n\n",
            "GET  /x\n\n",
            "GET /a b\n\n",
            "GET /x\nX-Other: 1\n\n",
            "GET /x\nSOAPAction: a\nSOAPAction: b\n\n",
            "GET /x\r\n\r\n",
            "",
        ] {
            let v = classify_connector(text);
            assert_eq!(v.class, Class::Unknown, "{text:?}");
        }
        let long = format!("GET /{}\n\n", "a".repeat(MAX_CLASSIFY_BYTES));
        assert_eq!(classify_connector(&long).class, Class::Unknown);
    }

    #[test]
    fn format_and_parse_round_trip_exactly() {
        let r = ConnectorRequest {
            method: "POST",
            target: "/ws/users",
            soap_action: Some("\"urn:x#DeleteUser\""),
            body: "<a/>\n\nline",
        };
        let text = r.format();
        assert_eq!(
            text,
            "POST /ws/users\nSOAPAction: \"urn:x#DeleteUser\"\n\n<a/>\n\nline"
        );
        assert_eq!(ConnectorRequest::parse(&text), Ok(r));
        let plain = call("GET", "/", "");
        assert_eq!(plain, "GET /\n\n");
        assert_eq!(ConnectorRequest::parse(&plain).map(|r| r.body), Ok(""));
    }

    #[test]
    fn soap_is_unknown_and_names_its_operation() {
        let env = r#"<?xml version="1.0"?>
<!-- a comment -->
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Header><Auth/></soap:Header>
  <soap:Body>
    <m:DeleteUser xmlns:m="urn:x"><m:id>7</m:id></m:DeleteUser>
  </soap:Body>
</soap:Envelope>"#;
        assert_eq!(soap_envelope(env), Some(Some("DeleteUser")));
        // GET with a SOAP body is still SOAP: never read as REST.
        for m in ["POST", "GET"] {
            let v = classify_connector(&call(m, "/ws", env));
            assert_eq!(v.class, Class::Unknown);
            assert!(
                v.reasons.iter().any(|r| r.contains("DeleteUser")),
                "{:?}",
                v.reasons
            );
            assert!(v.parts.iter().any(|p| p.text == "SOAP DeleteUser"));
        }
        let with_action = ConnectorRequest {
            method: "POST",
            target: "/ws",
            soap_action: Some("urn:x#GetUser"),
            body: "not xml",
        }
        .format();
        let v = classify_connector(&with_action);
        assert_eq!(v.class, Class::Unknown);
        assert!(v.reasons.iter().any(|r| r.contains("urn:x#GetUser")));
        assert_eq!(soap_envelope("<Envelope><Body/></Envelope>"), Some(None));
        assert_eq!(soap_envelope("{\"a\":1}"), None);
        assert_eq!(soap_envelope("<html><body>x</body></html>"), None);
        assert_eq!(soap_envelope("<Envelope>"), None);
        assert_eq!(soap_envelope("<"), None);
        assert_eq!(soap_envelope("<?xml"), None);
    }

    #[test]
    fn no_panic_on_odd_input() {
        for s in [
            "<",
            "<>",
            "<:",
            "<Envelope",
            "<Envelope><",
            "<a:Envelope><b:Body>",
            "\u{0}",
        ] {
            let _ = soap_envelope(s);
            let _ = classify_connector(&call("POST", "/", s));
        }
    }
}
