//! Input checks run before anything is sealed or written: each failure names
//! the field. Owns: what a valid name, folder, address, port, URL, tag and
//! keychain reference look like. Must never: touch the store or the broker.

use crate::RecordError;
use crate::model::{ConnectorAuth, Host, McpTransport, Record, Secret, SecretHeader, keychain_ref};

fn invalid(field: &str, reason: impl Into<String>) -> RecordError {
    RecordError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Normalizes a folder path: `/a//b/` → `a/b`; empty is the root.
pub fn normalize_folder(folder: &str) -> Result<String, RecordError> {
    let parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    for p in &parts {
        if p.chars().any(char::is_control) || *p == "." || *p == ".." {
            return Err(invalid("folder", format!("bad path component {p:?}")));
        }
    }
    let out = parts.join("/");
    if out.len() > 512 {
        return Err(invalid("folder", "longer than 512 bytes"));
    }
    Ok(out)
}

pub fn check_name(field: &str, name: &str) -> Result<(), RecordError> {
    if name.trim().is_empty() {
        return Err(invalid(field, "empty"));
    }
    if name.len() > 200 {
        return Err(invalid(field, "longer than 200 bytes"));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{name:?} contains '/' or a control character"),
        ));
    }
    if name.trim() != name {
        return Err(invalid(
            field,
            format!("{name:?} has leading or trailing spaces"),
        ));
    }
    Ok(())
}

/// A hostname (RFC 1123 labels) or an IPv4/IPv6 literal.
pub fn check_address(field: &str, a: &str) -> Result<(), RecordError> {
    if a.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let bad = |why: &str| {
        invalid(
            field,
            format!("{a:?} is not a hostname or IP address: {why}"),
        )
    };
    if a.is_empty() {
        return Err(bad("empty"));
    }
    let host = a.strip_suffix('.').unwrap_or(a);
    if host.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad("malformed IPv4 address"));
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("empty label or label over 63 characters"));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("only letters, digits, '-', '_' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with '-'"));
        }
    }
    Ok(())
}

/// Parses a port (1–65535).
pub fn parse_port(field: &str, s: &str) -> Result<u16, RecordError> {
    match s.trim().parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(invalid(field, format!("{s:?} is not a port (1-65535)"))),
    }
}

fn check_port(field: &str, p: u16) -> Result<(), RecordError> {
    if p == 0 {
        return Err(invalid(field, "0 is not a port (1-65535)"));
    }
    Ok(())
}

pub fn check_url(field: &str, url: &str) -> Result<(), RecordError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid(
                field,
                format!("{url:?} must start with http:// or https://"),
            )
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(invalid(field, format!("{url:?}: unclosed '['"))),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    check_address(field, host)?;
    if let Some(p) = port {
        parse_port(field, p)?;
    }
    Ok(())
}

pub fn check_tag(t: &str) -> Result<(), RecordError> {
    if t.is_empty() || t.len() > 64 || t.chars().any(|c| c.is_whitespace() || c == ',') {
        return Err(invalid(
            "tags",
            format!("{t:?}: tags are 1-64 characters without spaces or commas"),
        ));
    }
    Ok(())
}

fn check_secret(field: &str, s: &Secret) -> Result<(), RecordError> {
    if let Some(name) = s.keychain_ref()
        && name.is_empty()
    {
        return Err(invalid(
            field,
            "empty keychain reference (use keychain:NAME)",
        ));
    }
    if s.expose().is_empty() {
        return Err(invalid(field, "empty secret"));
    }
    Ok(())
}

fn check_secret_headers(field: &str, hs: &[SecretHeader]) -> Result<(), RecordError> {
    for h in hs {
        check_name(field, &h.name)?;
        check_secret(field, &h.value)?;
    }
    Ok(())
}

/// A host's name: a record name that could also be typed where a host is
/// expected (`gatehouse exec NAME`, an SSH config's `Host` line): not a
/// comment (`#…`), not a bare number (it would read as an id or a port),
/// no comma (lists split on it), no whitespace.
pub fn check_host_name(field: &str, name: &str) -> Result<(), RecordError> {
    check_name(field, name)?;
    if name.starts_with('#') {
        return Err(invalid(
            field,
            format!("{name:?} starts with '#' (a comment, not a host name)"),
        ));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(
            field,
            format!("{name:?} is a bare number, not a host name"),
        ));
    }
    if name.contains(',') {
        return Err(invalid(
            field,
            format!("{name:?} contains ',' (a list, not one host name)"),
        ));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(invalid(field, format!("{name:?} contains whitespace")));
    }
    Ok(())
}

fn check_host(h: &Host) -> Result<(), RecordError> {
    check_host_name("name", &h.name)?;
    check_address("address", &h.address)?;
    check_port("port", h.port)?;
    for t in &h.tags {
        check_tag(t)?;
    }
    if let Some(ssh) = &h.ssh {
        if ssh.username.is_empty() || ssh.username.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid("ssh.username", "empty or contains spaces"));
        }
        for (f, s) in [
            ("ssh.password", &ssh.password),
            ("ssh.private_key_path", &ssh.private_key_path),
            ("ssh.key_passphrase", &ssh.key_passphrase),
        ] {
            if let Some(s) = s {
                check_secret(f, s)?;
            }
        }
    }
    if let Some(http) = &h.http {
        check_port("http.port", http.port)?;
        if let Some(t) = &http.token {
            check_secret("http.token", t)?;
        }
    }
    if let Some(o) = &h.onvif {
        check_port("onvif.port", o.port)?;
        if o.username.is_empty() {
            return Err(invalid("onvif.username", "empty"));
        }
        if let Some(p) = &o.password {
            check_secret("onvif.password", p)?;
        }
    }
    Ok(())
}

/// Checks a record and normalizes its folder in place.
pub fn check(record: &mut Record) -> Result<(), RecordError> {
    let folder = normalize_folder(record.folder())?;
    match record {
        Record::Host(h) => {
            h.folder = folder;
            check_host(h)
        }
        Record::Diagram(d) => {
            d.folder = folder;
            check_name("name", &d.name)?;
            for n in &d.nodes {
                check_name("nodes", &n.id)?;
            }
            for l in &d.links {
                for end in [&l.from, &l.to] {
                    if !d.nodes.iter().any(|n| &n.id == end) {
                        return Err(invalid(
                            "links",
                            format!("link end {end:?} is not a node of the diagram"),
                        ));
                    }
                }
            }
            Ok(())
        }
        Record::Procedure(p) => {
            p.folder = folder;
            check_name("name", &p.name)?;
            for par in &p.parameters {
                check_name("parameters", &par.name)?;
            }
            Ok(())
        }
        Record::ProcedureRun(r) => {
            if r.procedure_id.is_empty() {
                return Err(invalid("procedure_id", "empty"));
            }
            Ok(())
        }
        Record::Memory(m) => {
            m.folder = folder;
            check_name("title", &m.title)
        }
        Record::Connector(c) => {
            c.folder = folder;
            check_name("name", &c.name)?;
            check_url("base_url", &c.base_url)?;
            match &c.auth {
                ConnectorAuth::None => {}
                ConnectorAuth::Basic { password, .. } => check_secret("auth", password)?,
                ConnectorAuth::Bearer { token } => check_secret("auth", token)?,
                ConnectorAuth::ApiKeyHeader { header, key } => {
                    check_name("auth", header)?;
                    check_secret("auth", key)?
                }
                ConnectorAuth::CustomHeaders { headers } => check_secret_headers("auth", headers)?,
            }
            for h in &c.default_headers {
                check_name("default_headers", &h.name)?;
            }
            Ok(())
        }
        Record::McpServer(m) => {
            m.folder = folder;
            check_name("name", &m.name)?;
            match &m.transport {
                McpTransport::Stdio { command, .. } if command.trim().is_empty() => {
                    return Err(invalid("transport", "empty stdio command"));
                }
                McpTransport::Http { url } => check_url("transport", url)?,
                _ => {}
            }
            if let Some(t) = &m.auth.token {
                check_secret("auth", t)?;
            }
            check_secret_headers("auth", &m.auth.keys)?;
            check_secret_headers("auth", &m.auth.headers)
        }
        Record::KeychainPointer(k) => {
            k.folder = folder;
            check_name("name", &k.name)
        }
        Record::Settings(s) => {
            s.folder = folder;
            s.check()
        }
    }
}

/// Every `keychain:NAME` reference inside a sealed value, with its field.
pub fn keychain_refs(field: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::String(s) => {
            if let Some(name) = keychain_ref(s) {
                out.push((field.to_string(), name.to_string()));
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| keychain_refs(field, x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| keychain_refs(field, x, out)),
        _ => {}
    }
}
