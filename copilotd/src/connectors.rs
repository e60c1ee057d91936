//! The `call_connector` tool: one HTTP call to a REST or SOAP connector
//! (a `connector` record: `base_url`, kind, sealed `auth`, default
//! headers), classified, gated and carried out by copilotd itself.
//!
//! Owns: confining a call to its connector (the path is relative to the
//! `base_url` and may not leave its origin or its path prefix: no absolute
//! or scheme-relative URLs, no userinfo, no dot segments, plain or
//! percent-encoded, no encoded separators), the call's text (what a person
//! approves: `gatehouse_policy::ConnectorRequest`), the gate (class from
//! `gatehouse_policy::classify_connector`, the org's connector policy,
//! [`crate::gate::decide`]), and the call itself: the auth released by the
//! broker for exactly this connector's `base_url` (`ReleaseServiceAuth`),
//! applied as HTTP headers, redirects not followed, bounded time and size.
//! Must never: send the auth anywhere but the connector's origin, follow a
//! redirect, carry out anything but what a token covers, log or return the
//! auth (it is scrubbed from the response, zeroized after the call, and the
//! broker's exact-value redaction knows it), or send through a proxy.

use std::time::Duration;

use gatehouse_ipc::broker::{
    Action, ActionField, ApprovalError, BrokerError, BrokerRequest, BrokerResponse, KeyScope,
    ServiceAuth,
};
use gatehouse_ipc::copilotd::{ChatSettings, CopilotError, GateDecision};
use gatehouse_policy::{
    ConnectorRequest, MAX_TARGET, OrgOutcome, OrgPolicy, Verdict, apply_connector_policy,
    classify_connector,
};
use gatehouse_records::model::ConnectorAuth;
use gatehouse_records::store::{field_address, verify_item};
use gatehouse_records::{Kind, Store, StoredRecord};
use reqwest::Url;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::agent_api::{AgentApi, Approval, MAX_RESULT, broker_call_error};
use crate::gate::{self, Verdict as GateVerdict};
use crate::provider::{ToolCall, ToolSpec};

/// The vendor of a connector call's approval (copilotd carries it out).
pub const VENDOR: &str = "copilot:connector";
/// Whole-call bound (connect, send, response headers and body).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// What replaces an applied auth value found in a response.
const SCRUBBED: &str = "[connector auth]";

/// The tool's spec for the model.
pub fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "call_connector".into(),
        description:
            "Call a configured REST or SOAP connector (an external API) through Gatehouse. \
            `path` is relative to the connector's base URL (e.g. `/devices?site=3`); it cannot \
            leave it. GET/HEAD/OPTIONS run at once; POST/PUT/PATCH, DELETE and SOAP calls wait \
            for a person's approval. The connector's credentials are applied by Gatehouse: \
            never put secrets in the call."
                .into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "connector": {"type": "string", "description": "connector name"},
                "method": {"type": "string", "description": "HTTP method, e.g. GET or POST (SOAP: POST)"},
                "path": {"type": "string", "description": "path (and query) relative to the connector's base URL"},
                "body": {"type": "string", "description": "request body (JSON for REST, the SOAP envelope for SOAP)"},
                "soap_action": {"type": "string", "description": "SOAP only: the SOAPAction header value"},
                "effect": {"type": "string", "description": "the expected side effect, for the person approving"}
            },
            "required": ["connector", "method", "path"]
        }),
    }]
}

/// Why a path or base URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// The record's `base_url` is not a usable http(s) URL.
    BadBase(String),
    /// The path is an absolute URL (has a scheme).
    Absolute,
    /// The path starts with `//` (another host).
    SchemeRelative,
    /// `..` or `.` as a path segment, plain or percent-encoded.
    DotSegment,
    /// A percent-encoded `/` or `\`, or double percent-encoding of one.
    EncodedSeparator,
    /// Spaces, control characters, `\` or a fragment.
    BadCharacter,
    TooLong,
    /// A target (in an edited call) outside the base URL's path.
    OutsideBase,
    /// The URL built does not have the base URL's origin (a last check).
    OtherOrigin,
}

impl std::fmt::Display for UrlRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlRefusal::BadBase(why) => write!(f, "the connector's base_url is unusable: {why}"),
            UrlRefusal::Absolute => f.write_str(
                "the path is an absolute URL; give a path relative to the connector's base URL",
            ),
            UrlRefusal::SchemeRelative => {
                f.write_str("the path starts with // (another host); give a relative path")
            }
            UrlRefusal::DotSegment => f.write_str(
                "the path has a '.' or '..' segment (also percent-encoded): it could leave the connector's base URL",
            ),
            UrlRefusal::EncodedSeparator => {
                f.write_str("the path has a percent-encoded '/' or '\\' (or double encoding)")
            }
            UrlRefusal::BadCharacter => f.write_str(
                "the path has spaces, control characters, '\\' or a '#' fragment",
            ),
            UrlRefusal::TooLong => write!(f, "the path is longer than {MAX_TARGET} bytes"),
            UrlRefusal::OutsideBase => f.write_str("the path is outside the connector's base URL"),
            UrlRefusal::OtherOrigin => {
                f.write_str("the URL would go to another host, port or scheme than the connector's")
            }
        }
    }
}

/// Decodes `%XX` escapes (others kept as is).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A connector's base URL: its origin, its path, and that path as a
/// prefix (ending in `/`) every other target must start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    url: Url,
    path: String,
    prefix: String,
}

impl Base {
    pub fn parse(base_url: &str) -> Result<Base, UrlRefusal> {
        let bad = |why: &str| Err(UrlRefusal::BadBase(why.to_string()));
        let Ok(url) = Url::parse(base_url) else {
            return bad("not a URL");
        };
        if !matches!(url.scheme(), "http" | "https") {
            return bad("not http:// or https://");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return bad("it carries user information; credentials belong in the connector's auth");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return bad("no host");
        }
        if url.query().is_some() || url.fragment().is_some() {
            return bad("it has a query or fragment");
        }
        let path = url.path().to_string();
        let mut prefix = path.clone();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Base { url, path, prefix })
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The request target for `path`, relative to the base URL: `""` (or
    /// just a query) is the base URL itself, anything else goes under its
    /// path prefix.
    pub fn join(&self, path: &str) -> Result<String, UrlRefusal> {
        if path.len() > MAX_TARGET {
            return Err(UrlRefusal::TooLong);
        }
        if path.starts_with("//") {
            return Err(UrlRefusal::SchemeRelative);
        }
        let first = path.split(['/', '?']).next().unwrap_or("");
        if let Some((scheme, _)) = first.split_once(':')
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(UrlRefusal::Absolute);
        }
        if path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#')
        {
            return Err(UrlRefusal::BadCharacter);
        }
        let (p, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let mut target = if p.is_empty() {
            self.path.clone()
        } else {
            let p = p.strip_prefix('/').unwrap_or(p);
            for seg in p.split('/') {
                let decoded = percent_decode(seg);
                if decoded == b"." || decoded == b".." {
                    return Err(UrlRefusal::DotSegment);
                }
                if decoded.iter().any(|&c| c == b'/' || c == b'\\') {
                    return Err(UrlRefusal::EncodedSeparator);
                }
                let again = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
                if ["%2e", "%2f", "%5c"].iter().any(|e| again.contains(e)) {
                    return Err(UrlRefusal::EncodedSeparator);
                }
            }
            format!("{}{p}", self.prefix)
        };
        if let Some(q) = query {
            target.push('?');
            target.push_str(q);
        }
        if target.len() > MAX_TARGET {
            return Err(UrlRefusal::TooLong);
        }
        Ok(target)
    }

    /// Checks a target read back from a call's text (a person may have
    /// edited it): it must be one [`Base::join`] produces.
    pub fn check_target(&self, target: &str) -> Result<(), UrlRefusal> {
        let rel = match target.strip_prefix(&self.path) {
            // The base URL itself (with a query).
            Some(rest) if rest.is_empty() || rest.starts_with('?') => rest.to_string(),
            _ => match target.strip_prefix(&self.prefix) {
                Some(rest) => format!("/{rest}"),
                None => return Err(UrlRefusal::OutsideBase),
            },
        };
        // A target "/api//x" is "//x" under "/api/": refused by join; and
        // anything join would write differently is not one of its targets.
        if self.join(&rel)? != target {
            return Err(UrlRefusal::OutsideBase);
        }
        Ok(())
    }

    /// The URL of `target`, checked once more after parsing: same origin,
    /// the base path or under its prefix, no userinfo.
    pub fn url(&self, target: &str) -> Result<Url, UrlRefusal> {
        self.check_target(target)?;
        let url = Url::parse(&format!("{}{target}", self.origin()))
            .map_err(|_| UrlRefusal::BadCharacter)?;
        if url.origin() != self.url.origin()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(UrlRefusal::OtherOrigin);
        }
        let path = url.path();
        if !(path.starts_with(&self.prefix) || path == self.path) {
            return Err(UrlRefusal::OutsideBase);
        }
        Ok(url)
    }
}

/// A connector record as copilotd uses it: plaintext fields, and the
/// stored record to present to the broker for its auth.
#[derive(Debug, Clone)]
pub struct Connector {
    pub name: String,
    /// Organization id (`private` for a private connector).
    pub org: String,
    pub soap: bool,
    pub base_url: String,
    pub base: Base,
    pub default_headers: Vec<(String, String)>,
    stored: StoredRecord,
}

impl Connector {
    /// Finds a connector by id, `NAME` or `FOLDER/NAME` (within `scope` if given).
    pub fn load(store: &Store, scope: Option<&KeyScope>, key: &str) -> Result<Connector, String> {
        let stored = store
            .resolve(Kind::Connector, scope, key)
            .map_err(|e| e.to_string())?;
        let p = &stored.plain;
        let text = |f: &str| p.get(f).and_then(Value::as_str).map(str::to_string);
        let name = text("name").unwrap_or_else(|| stored.meta.id.clone());
        let base_url =
            text("base_url").ok_or_else(|| format!("connector {name} has no base_url"))?;
        let base = Base::parse(&base_url).map_err(|e| format!("connector {name}: {e}"))?;
        let default_headers = p
            .get("default_headers")
            .and_then(Value::as_array)
            .map(|hs| {
                hs.iter()
                    .filter_map(|h| Some((h["name"].as_str()?.into(), h["value"].as_str()?.into())))
                    .collect()
            })
            .unwrap_or_default();
        let org = match &stored.meta.scope {
            KeyScope::Org(id) => id.clone(),
            KeyScope::Private => "private".into(),
        };
        Ok(Connector {
            soap: text("kind").as_deref() == Some("soap"),
            name,
            org,
            base_url,
            base,
            default_headers,
            stored,
        })
    }

    /// Whether the record has a sealed auth to apply.
    pub fn has_auth(&self) -> bool {
        self.stored.sealed.contains_key("auth")
    }

    /// The credential context shown on (and signed into) an approval.
    pub fn credential(&self) -> Option<String> {
        self.has_auth().then(|| format!("connector:{}", self.name))
    }

    /// The broker request that proves this record and names its auth, for
    /// its own base URL.
    pub fn auth_request(&self) -> ServiceAuth {
        ServiceAuth {
            record: verify_item(&self.stored),
            field: field_address(&self.stored.meta, "auth", &self.stored.plain),
            destination: self.base_url.clone(),
        }
    }
}

/// The class and org decision of a call's text.
fn judge(policy: &OrgPolicy, text: &str) -> (Verdict, Option<String>) {
    let v = apply_connector_policy(policy, classify_connector(text));
    let blocked = v
        .org_policy
        .as_ref()
        .filter(|d| d.outcome == OrgOutcome::Blocked)
        .map(|d| d.reason.clone());
    (v, blocked)
}

/// Auth values applied to one call: zeroized on drop; scrubbed from what
/// the server sends back.
#[derive(Default)]
struct Applied {
    headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    secrets: Vec<Zeroizing<String>>,
}

impl Applied {
    fn header(&mut self, name: &str, value: Zeroizing<String>) -> Result<(), String> {
        let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("the connector's auth header name {name:?} is not valid"))?;
        let mut v = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
            format!("the connector's auth value for {name} is not a valid header value")
        })?;
        v.set_sensitive(true);
        self.headers.push((n, v));
        self.secrets.push(value);
        Ok(())
    }

    fn from_auth(auth: &ConnectorAuth) -> Result<Applied, String> {
        use base64::Engine as _;
        let mut a = Applied::default();
        match auth {
            ConnectorAuth::None => {}
            ConnectorAuth::Basic { username, password } => {
                let pair = Zeroizing::new(format!("{username}:{}", password.expose()));
                let b64 = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
                a.secrets
                    .push(Zeroizing::new(password.expose().to_string()));
                a.secrets.push(Zeroizing::new(b64.clone()));
                a.header("authorization", Zeroizing::new(format!("Basic {b64}")))?;
            }
            ConnectorAuth::Bearer { token } => {
                a.secrets.push(Zeroizing::new(token.expose().to_string()));
                a.header(
                    "authorization",
                    Zeroizing::new(format!("Bearer {}", token.expose())),
                )?;
            }
            ConnectorAuth::ApiKeyHeader { header, key } => {
                a.header(header, Zeroizing::new(key.expose().to_string()))?;
            }
            ConnectorAuth::CustomHeaders { headers } => {
                for h in headers {
                    a.header(&h.name, Zeroizing::new(h.value.expose().to_string()))?;
                }
            }
        }
        Ok(a)
    }

    /// `text` with every applied value (the shortest last) replaced.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        let mut secrets: Vec<&str> = self
            .secrets
            .iter()
            .map(|s| s.as_str())
            .filter(|s| s.len() >= 4)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in secrets {
            if out.contains(s) {
                out = out.replace(s, SCRUBBED);
            }
        }
        out
    }
}

/// The `Content-Type` of a call's body, unless a default header sets one.
fn content_type(soap: bool, body: &str) -> &'static str {
    if soap {
        if body.contains("http://www.w3.org/2003/05/soap-envelope") {
            "application/soap+xml; charset=utf-8"
        } else {
            "text/xml; charset=utf-8"
        }
    } else if serde_json::from_str::<Value>(body).is_ok() {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    }
}

fn refuse(reason: impl Into<String>) -> GateDecision {
    GateDecision::Refuse {
        reason: reason.into(),
    }
}

/// `call_connector(connector, method, path, body)`: returns what the model is told.
pub(crate) async fn call_connector(
    agent: &impl AgentApi,
    conversation: u64,
    call: &ToolCall,
    settings: &ChatSettings,
) -> Result<String, CopilotError> {
    let arg = |k: &str| call.arguments.get(k).and_then(Value::as_str);
    let (Some(name), Some(method), Some(path)) = (arg("connector"), arg("method"), arg("path"))
    else {
        agent
            .announce(
                conversation,
                call,
                "-",
                Vec::new(),
                refuse("call_connector needs connector, method and path"),
            )
            .await?;
        return Ok("error: call_connector needs a connector, a method and a path".into());
    };
    let (body, effect) = (arg("body").unwrap_or(""), arg("effect").unwrap_or(""));
    let prepared = prepare_call(
        agent,
        name,
        method,
        path,
        body,
        arg("soap_action"),
        settings,
    );
    let (connector, text) = match prepared.await {
        Ok(p) => p,
        Err(why) => {
            agent
                .announce(conversation, call, "-", Vec::new(), refuse(why.clone()))
                .await?;
            return Ok(format!("Not run: {why}."));
        }
    };
    let policy = match crate::org_policy::load(agent.broker(), &connector.org).await {
        Ok(p) => p,
        Err(e) => {
            let why = format!("the organization's policy cannot be read ({e})");
            agent
                .announce(conversation, call, "-", Vec::new(), refuse(why.clone()))
                .await?;
            return Ok(format!("Not run: {why}."));
        }
    };
    let (verdict, blocked) = judge(&policy, &text);
    let class = verdict.class.to_string();
    let mut reasons: Vec<String> = verdict.reasons.iter().map(|r| r.to_string()).collect();
    reasons.push(format!(
        "connector {} at {}",
        connector.name,
        connector.base.origin()
    ));
    match gate::decide(
        verdict.class,
        blocked.as_deref(),
        settings.mode,
        settings.trust,
    ) {
        GateVerdict::Run => {
            agent
                .announce(conversation, call, &class, reasons, GateDecision::Run)
                .await?;
            carry_out(agent, &connector, &text).await
        }
        GateVerdict::Suggest => {
            agent
                .announce(conversation, call, &class, reasons, GateDecision::Suggest)
                .await?;
            Ok(format!(
                "Not run: this {class} connector call is shown to the person as a suggestion (this mode runs read-only calls only)."
            ))
        }
        GateVerdict::Refuse(reason) => {
            agent
                .announce(conversation, call, &class, reasons, refuse(reason.clone()))
                .await?;
            Ok(format!("Not run: {reason}. Do not retry it."))
        }
        GateVerdict::AskPerson => {
            let action = Action {
                host: connector.name.clone(),
                vendor: VENDOR.into(),
                org: connector.org.clone(),
                credential: connector.credential(),
                command: text.clone(),
                expected_effect: if effect.is_empty() {
                    "proposed by the copilot".into()
                } else {
                    effect.to_string()
                },
            };
            let token = match agent
                .seek_approval(conversation, call, action.clone(), &class, &reasons)
                .await?
            {
                Approval::Granted(t) => t,
                Approval::NotRun(why) => return Ok(why),
            };
            // Carry out what the token covers: a person's edit is a new
            // call, checked (confinement, org blocks) like the first.
            let approved = &token.action;
            let field = [
                (approved.host != action.host, ActionField::Host),
                (approved.vendor != action.vendor, ActionField::Vendor),
                (approved.org != action.org, ActionField::Org),
                (
                    approved.credential != action.credential,
                    ActionField::Credential,
                ),
            ]
            .into_iter()
            .find_map(|(differs, f)| differs.then_some(f));
            if let Some(f) = field {
                let e = BrokerError::Approval(ApprovalError::Mismatch(f));
                return Ok(format!("Not run: {e}."));
            }
            let edited = approved.command != text;
            if edited {
                if let Err(e) = ConnectorRequest::parse(&approved.command)
                    .map_err(|e| e.to_string())
                    .and_then(|r| {
                        connector
                            .base
                            .check_target(r.target)
                            .map_err(|e| e.to_string())
                    })
                {
                    return Ok(format!("Not run: the edited call is not usable: {e}."));
                }
                if let (_, Some(reason)) = judge(&policy, &approved.command) {
                    return Ok(format!(
                        "Not run: the edited call is blocked by organization policy: {reason}."
                    ));
                }
            }
            if let Err(e) = agent.spend(&token, approved).await? {
                return Ok(format!("Not run: {e}"));
            }
            let out = carry_out(agent, &connector, &approved.command).await?;
            Ok(if edited {
                format!(
                    "A person edited the call before approving it; what was sent is the edited one.\n{out}"
                )
            } else {
                out
            })
        }
    }
}

/// Finds the connector and builds the call's text; `Err` is a refusal.
async fn prepare_call(
    agent: &impl AgentApi,
    name: &str,
    method: &str,
    path: &str,
    body: &str,
    soap_action: Option<&str>,
    settings: &ChatSettings,
) -> Result<(Connector, String), String> {
    let scope = agent
        .org_scope(settings)
        .await
        .map_err(|e| e.to_string())??;
    let connector = {
        let store = agent.store();
        Connector::load(&store, scope.as_ref(), name)?
    };
    let method = method.trim().to_ascii_uppercase();
    let target = connector.base.join(path).map_err(|e| e.to_string())?;
    if connector.soap && gatehouse_policy::soap_envelope(body).is_none() {
        return Err(format!(
            "{} is a SOAP connector: the body must be a SOAP envelope",
            connector.name
        ));
    }
    let req = ConnectorRequest {
        method: &method,
        target: &target,
        soap_action: soap_action.filter(|_| connector.soap),
        body,
    };
    let text = req.format();
    // What was built must read back as itself (a method or SOAPAction
    // that does not fit the format is refused here, not sent).
    ConnectorRequest::parse(&text).map_err(|e| e.to_string())?;
    Ok((connector, text))
}

/// Sends one call (`text`, already allowed by the gate or a token): the
/// auth released by the broker for this connector, applied as headers.
/// Returns what the model is told; a failed call is a readable result.
async fn carry_out(
    agent: &impl AgentApi,
    connector: &Connector,
    text: &str,
) -> Result<String, CopilotError> {
    let req = match ConnectorRequest::parse(text) {
        Ok(r) => r,
        Err(e) => return Ok(format!("Not run: {e}.")),
    };
    let url = match connector.base.url(req.target) {
        Ok(u) => u,
        Err(e) => return Ok(format!("Not run: {e}.")),
    };
    let applied = if connector.has_auth() {
        let reply = agent
            .broker()
            .call(BrokerRequest::ReleaseServiceAuth {
                service: Box::new(connector.auth_request()),
            })
            .await;
        let secret = match reply {
            Ok(BrokerResponse::ServiceAuth(s)) => s,
            Ok(_) => return Err(CopilotError::Internal("unexpected broker reply".into())),
            Err(gatehouse_ipc::client::CallError::Remote(e))
                if !matches!(e, BrokerError::SignedOut | BrokerError::NotInitialized) =>
            {
                return Ok(format!(
                    "Not run: the broker did not release the auth of connector {}: {e}",
                    connector.name
                ));
            }
            Err(e) => return Err(broker_call_error(e)),
        };
        let auth: ConnectorAuth = match serde_json::from_slice(secret.expose()) {
            Ok(a) => a,
            Err(_) => {
                return Ok(format!(
                    "Not run: the auth of connector {} is not a connector auth.",
                    connector.name
                ));
            }
        };
        match Applied::from_auth(&auth) {
            Ok(a) => a,
            Err(e) => return Ok(format!("Not run: {e}.")),
        }
    } else {
        Applied::default()
    };
    let result = send(connector, &req, url, &applied).await;
    Ok(applied.scrub(&result))
}

/// The HTTP exchange; every failure is a sentence for the model.
async fn send(
    connector: &Connector,
    req: &ConnectorRequest<'_>,
    url: Url,
    auth: &Applied,
) -> String {
    use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
    let tail = format!(
        "[{} {} on connector {}]",
        req.method, req.target, connector.name
    );
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .user_agent(concat!("gatehouse-copilotd/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return format!("error: cannot make an HTTP client: {e}\n{tail}"),
    };
    let Ok(method) = reqwest::Method::from_bytes(req.method.as_bytes()) else {
        return format!("error: {:?} is not an HTTP method\n{tail}", req.method);
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for (n, v) in &connector.default_headers {
        match (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            (Ok(n), Ok(v)) => {
                headers.insert(n, v);
            }
            _ => {
                return format!("error: the connector's default header {n:?} is not valid\n{tail}");
            }
        }
    }
    if !req.body.is_empty() && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(content_type(connector.soap, req.body)),
        );
    }
    if let Some(a) = req.soap_action {
        match HeaderValue::from_str(a) {
            Ok(v) => {
                headers.insert(HeaderName::from_static("soapaction"), v);
            }
            Err(_) => return format!("error: the SOAPAction is not a valid header value\n{tail}"),
        }
    }
    for (n, v) in &auth.headers {
        headers.insert(n.clone(), v.clone());
    }
    let mut builder = client.request(method, url).headers(headers);
    if !req.body.is_empty() {
        builder = builder.body(req.body.to_string());
    }
    let mut resp = match builder.send().await {
        Ok(r) => r,
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "unreachable"
            } else {
                "failed"
            };
            return format!(
                "error: connector {} {what}: {}\n{tail}",
                connector.name,
                error_chain(&e)
            );
        }
    };
    let status = resp.status();
    let mut head = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for h in ["content-type", "location"] {
        if let Some(v) = resp.headers().get(h).and_then(|v| v.to_str().ok()) {
            head.push_str(&format!("\n{h}: {v}"));
        }
    }
    if status.is_redirection() {
        head.push_str("\n(redirect not followed)");
    }
    let mut body = Vec::new();
    let mut truncated = false;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESULT.saturating_sub(body.len());
                truncated |= chunk.len() > room;
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if truncated {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                head.push_str(&format!("\n(body cut short: {})", error_chain(&e)));
                break;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&body).into_owned();
    if truncated {
        text.push_str("\n…(body truncated)");
    }
    format!("{head}\n\n{text}\n{tail}")
}

/// An error and its sources, one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(u: &str) -> Base {
        Base::parse(u).unwrap()
    }

    #[test]
    fn paths_join_under_the_base_prefix() {
        let b = base("https://api.example/v1");
        assert_eq!(b.join("/items").unwrap(), "/v1/items");
        assert_eq!(b.join("items?x=1&y=..").unwrap(), "/v1/items?x=1&y=..");
        assert_eq!(b.join("").unwrap(), "/v1");
        assert_eq!(b.join("/").unwrap(), "/v1/");
        assert_eq!(b.join("?q=1").unwrap(), "/v1?q=1");
        assert_eq!(b.join("/a/b%20c").unwrap(), "/v1/a/b%20c");
        let root = base("http://127.0.0.1:8080");
        assert_eq!(root.join("/x").unwrap(), "/x");
        assert_eq!(root.join("").unwrap(), "/");
        assert_eq!(root.check_target("/x?y"), Ok(()));
        assert_eq!(
            root.url("/x?a=1").unwrap().as_str(),
            "http://127.0.0.1:8080/x?a=1"
        );
    }

    #[test]
    fn escapes_are_refused_each_for_its_reason() {
        use UrlRefusal::*;
        let b = base("https://api.example/v1/");
        let cases = [
            ("https://evil.example/x", Absolute),
            ("http:/x", Absolute),
            ("javascript:alert(1)", Absolute),
            ("//evil.example/x", SchemeRelative),
            ("../admin", DotSegment),
            ("/a/../../admin", DotSegment),
            ("/a/./b", DotSegment),
            ("%2e%2e/admin", DotSegment),
            ("/%2E%2e/admin", DotSegment),
            (".%2e/admin", DotSegment),
            ("/a%2f..%2fadmin", EncodedSeparator),
            ("/a%5c..", EncodedSeparator),
            ("/%252e%252e/admin", EncodedSeparator),
            ("\\\\evil.example\\x", BadCharacter),
            ("/a b", BadCharacter),
            ("/a\n", BadCharacter),
            ("/a#frag", BadCharacter),
        ];
        for (path, want) in cases {
            assert_eq!(b.join(path), Err(want), "{path:?}");
        }
        assert_eq!(b.join(&"a".repeat(MAX_TARGET + 1)), Err(TooLong));
        // '@' in a relative path is a path character, not userinfo: the host stays.
        let url = b.url(&b.join("/user@evil.example").unwrap()).unwrap();
        assert_eq!(url.host_str(), Some("api.example"));
    }

    #[test]
    fn edited_targets_must_stay_under_the_base() {
        let b = base("https://api.example/v1");
        for ok in ["/v1/items", "/v1", "/v1/", "/v1?x=1", "/v1/a?b=/../c"] {
            assert_eq!(b.check_target(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/v2/items",
            "/v1x/items",
            "/v1/../admin",
            "/v1/%2e%2e/admin",
            "/v1//evil.example/x",
            "/",
            "https://api.example/v1/x",
        ] {
            assert!(b.check_target(bad).is_err(), "{bad}");
            assert!(b.url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unusable_base_urls() {
        for bad in [
            "ftp://x.example/",
            "https://user:pw@x.example/",
            "https://x.example/?a=1",
            "https://x.example/#f",
            "not a url",
        ] {
            assert!(
                matches!(Base::parse(bad), Err(UrlRefusal::BadBase(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn applied_auth_is_scrubbed_in_every_form() {
        use gatehouse_records::Secret;
        let basic = Applied::from_auth(&ConnectorAuth::Basic {
            username: "svc".into(),
            password: Secret::new("pw-canary-123".into()),
        })
        .unwrap();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode("svc:pw-canary-123");
        let echoed = format!("auth=Basic {b64} raw=pw-canary-123");
        let out = basic.scrub(&echoed);
        assert!(
            !out.contains("pw-canary-123") && !out.contains(&b64),
            "{out}"
        );
        assert!(basic.headers[0].1.is_sensitive());
        let bearer = Applied::from_auth(&ConnectorAuth::Bearer {
            token: Secret::new("tok-canary-456".into()),
        })
        .unwrap();
        assert_eq!(
            bearer.scrub("x tok-canary-456 y"),
            format!("x {SCRUBBED} y")
        );
        let bad = Applied::from_auth(&ConnectorAuth::ApiKeyHeader {
            header: "bad header".into(),
            key: Secret::new("k-123456".into()),
        });
        assert!(bad.is_err_and(|e| !e.contains("k-123456")));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(false, "{\"a\":1}"), "application/json");
        assert_eq!(content_type(false, "a=1"), "text/plain; charset=utf-8");
        assert_eq!(content_type(true, "<Envelope/>"), "text/xml; charset=utf-8");
        assert_eq!(
            content_type(
                true,
                "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"/>"
            ),
            "application/soap+xml; charset=utf-8"
        );
    }
}
