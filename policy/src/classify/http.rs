//! Connector HTTP calls. Owns the rule that `GET`/`HEAD` are read-only only
//! on connectors marked read-only, that writes to shared records are
//! moderate, and that RouterOS REST (`/rest/...`) is classified by the path's
//! command, not the HTTP method (RouterOS uses POST for every command). Must
//! never call an unrecognised method read-only.

use super::{Acc, classify_into};
use crate::vendor::Vendor;
use crate::verdict::{Class, Verdict};
use serde::{Deserialize, Serialize};

/// A connector HTTP request to classify.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCall {
    /// HTTP method (`GET`, `POST` …), any case.
    pub method: String,
    /// Path (and optional query), e.g. `/rest/ip/address/print` or a full URL.
    pub path: String,
    /// The connector is marked read-only by the org.
    pub connector_read_only: bool,
    /// The call writes shared records.
    pub writes_shared_records: bool,
    /// The target is a RouterOS REST API (paths under `/rest/`).
    pub routeros_rest: bool,
}

/// Classify a connector HTTP call.
pub fn classify_http(req: &HttpCall) -> Verdict {
    let mut acc = Acc::new();
    let m = req.method.trim().to_ascii_uppercase();
    let path = req.path.split(['?', '#']).next().unwrap_or("");
    let path = match path.find("://") {
        Some(i) => path[i + 3..].find('/').map_or("/", |j| &path[i + 3 + j..]),
        None => path,
    };
    let text = format!("{} {}", m, req.path);
    if req.routeros_rest || path.starts_with("/rest/") {
        let rest = path.strip_prefix("/rest").unwrap_or(path);
        let cmd = rest.trim_matches('/').replace('/', " ");
        let last = cmd.rsplit(' ').next().unwrap_or("");
        let line = match m.as_str() {
            "GET" => format!("/{cmd} print"),
            "PUT" => format!("/{cmd} add"),
            "PATCH" => format!(
                "/{} set",
                cmd.rsplit_once(' ').map_or(cmd.as_str(), |x| x.0)
            ),
            "DELETE" => format!(
                "/{} remove {}",
                cmd.rsplit_once(' ').map_or(cmd.as_str(), |x| x.0),
                last
            ),
            "POST" => format!("/{cmd}"),
            _ => {
                acc.rule(
                    &text,
                    Class::Unknown,
                    "http.method.unknown",
                    "not an HTTP method this classifier knows",
                );
                return acc.finish();
            }
        };
        acc.rule(
            &text,
            Class::ReadOnly,
            "http.routeros-rest",
            "RouterOS REST call, classified by the path's command",
        );
        if line.len() > super::MAX_CLASSIFY_BYTES {
            acc.rule(
                &text,
                Class::Unknown,
                "core.too-long",
                "input is longer than the classifier reviews",
            );
        } else {
            classify_into(Vendor::RouterOs, &line, 1, &mut acc);
        }
    } else {
        match m.as_str() {
            "GET" | "HEAD" | "OPTIONS" if req.connector_read_only => acc.rule(
                &text,
                Class::ReadOnly,
                "http.read.ro-connector",
                "a read request on a connector marked read-only",
            ),
            "GET" | "HEAD" | "OPTIONS" => acc.rule(
                &text,
                Class::Moderate,
                "http.read.connector",
                "a request on a connector not marked read-only may have side effects",
            ),
            "POST" | "PUT" | "PATCH" | "DELETE" => acc.rule(
                &text,
                Class::Moderate,
                "http.write",
                "a writing request to an external API",
            ),
            _ => acc.rule(
                &text,
                Class::Unknown,
                "http.method.unknown",
                "not an HTTP method this classifier knows",
            ),
        }
    }
    if req.writes_shared_records {
        acc.rule(
            &text,
            Class::Moderate,
            "http.shared-records",
            "writes shared records",
        );
    }
    let mut v = acc.finish();
    v.input = text;
    v
}
