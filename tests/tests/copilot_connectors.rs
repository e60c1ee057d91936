//! The copilot's `call_connector` end to end: a scripted model over the real
//! Chat Completions wire format, the real copilotd, sessiond and broker,
//! connectors written by the real CLI, the person answering in `gatehouse
//! copilot chat` (or `gatehouse approvals` for multi-line edits), and real
//! HTTP servers (axum) that record every request they receive — the
//! connector's, and another host's that must never see anything. Asserts
//! what reached each server and what reached the provider.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gatehouse_labprovider::{ScriptedProvider, Turn};
use gatehouse_tests::broker::{BrokerFixture, Options};
use serde_json::{Value, json};

/// One request as a server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query.
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A real HTTP server recording every request. `/api/echo-auth` echoes the
/// request's auth headers back (a server leaking them); `/api/redirect`
/// redirects to `elsewhere`; SOAP posts get an envelope; everything else a
/// small JSON document.
struct Server {
    addr: SocketAddr,
    log: Log,
}

#[derive(Clone)]
struct ServerState {
    log: Log,
    elsewhere: Option<SocketAddr>,
}

async fn record(
    State(s): State<ServerState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        target: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body: String::from_utf8_lossy(&body).into(),
    };
    s.log.lock().unwrap().push(seen.clone());
    match uri.path() {
        "/api/echo-auth" => {
            let auth = seen.header("authorization").unwrap_or("").to_string();
            let key = seen.header("x-api-key").unwrap_or("").to_string();
            format!("{{\"you_sent\":\"{auth}\",\"key\":\"{key}\"}}").into_response()
        }
        "/api/redirect" => {
            let to = format!(
                "http://{}/steal",
                s.elsewhere.map(|a| a.to_string()).unwrap_or_default()
            );
            (StatusCode::FOUND, [("location", to)], "moved").into_response()
        }
        "/ws" => (
            [("content-type", "text/xml")],
            "<Envelope><Body><GetUserResponse><name>ada</name></GetUserResponse></Body></Envelope>",
        )
            .into_response(),
        _ => (
            [("content-type", "application/json")],
            format!("{{\"ok\":true,\"method\":\"{method}\"}}"),
        )
            .into_response(),
    }
}

impl Server {
    fn start(rt: &tokio::runtime::Runtime, elsewhere: Option<SocketAddr>) -> Result<Server> {
        let log: Log = Arc::default();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .fallback(record)
            .with_state(ServerState {
                log: log.clone(),
                elsewhere,
            });
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Server { addr, log })
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

struct World {
    f: BrokerFixture,
    rt: tokio::runtime::Runtime,
    /// The connectors' server.
    api: Server,
    /// Another host: must never receive anything.
    other: Server,
    /// The bearer token of `inventory`, kept in the keychain.
    canary: String,
    org_id: String,
}

impl World {
    fn start() -> Result<World> {
        let mut f = BrokerFixture::start(Options {
            real_sessiond: true,
            real_copilotd: true,
            ..Options::default()
        })?;
        f.cli_ok(
            &["account", "init", "--passphrase-stdin"],
            "connector-test-pass\n",
        )?;
        f.cli_ok(&["org", "create", "net"], "")?;
        let org_id = f.org_id("net")?;
        f.start_sessiond()?;
        f.start_copilotd()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let other = Server::start(&rt, None)?;
        let api = Server::start(&rt, Some(other.addr))?;
        let canary = format!("tok-canary-{}-zq", std::process::id());
        f.cli_ok(
            &["keychain", "set", "inv-token", "--kind", "token"],
            &format!("{canary}\n"),
        )?;
        f.cli_ok(
            &[
                "connector",
                "add",
                "inventory",
                "--org",
                "net",
                "--url",
                &format!("http://{}/api", api.addr),
                "--auth",
                "bearer",
                "--secret-ref",
                "keychain:inv-token",
            ],
            "",
        )?;
        Ok(World {
            f,
            rt,
            api,
            other,
            canary,
            org_id,
        })
    }

    fn provider(&self, turns: Vec<Turn>) -> Result<ScriptedProvider> {
        let p = self.rt.block_on(ScriptedProvider::start(turns))?;
        self.f.use_openai_provider(&p.base_url_openai())?;
        Ok(p)
    }

    fn chat(&self, args: &[&str], answers: &str) -> Result<String> {
        let mut all = vec!["copilot", "chat", "--org", "net"];
        all.extend_from_slice(args);
        let out = self.f.cli(&all, answers)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(stdout)
    }

    fn policy(&self, json: &str) -> Result<()> {
        self.f
            .set_org_policy(&self.org_id, json, "connector-test-pass")
    }

    /// Every provider request body, as text; none may hold the canary.
    fn provider_bodies(&self, p: &ScriptedProvider) -> Vec<String> {
        let bodies: Vec<String> = p
            .received()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        for b in &bodies {
            assert!(
                !b.contains(&self.canary),
                "the connector's token reached the provider: {b}"
            );
        }
        bodies
    }
}

fn call(connector: &str, method: &str, path: &str, body: Option<&str>) -> Turn {
    let mut args = json!({"connector": connector, "method": method, "path": path});
    if let Some(b) = body {
        args["body"] = Value::String(b.into());
    }
    Turn::ToolCalls(vec![("call_connector".into(), args)])
}

#[test]
fn reads_run_with_the_auth_writes_ask_and_the_token_never_reaches_the_provider() -> Result<()> {
    let w = World::start()?;
    let p = w.provider(vec![
        call("inventory", "GET", "/devices?site=3", None),
        call("inventory", "POST", "/devices", Some(r#"{"name":"r9"}"#)),
        call("inventory", "POST", "/devices", Some(r#"{"name":"r10"}"#)),
        call("inventory", "DELETE", "/devices/7", None),
        // A server that echoes the auth header back.
        call("inventory", "get", "/echo-auth", None),
        Turn::Text("Inventory updated.".into()),
    ])?;
    let stdout = w.chat(&["sync the inventory"], "a\nr not now\nr\n")?;
    let bearer = format!("Bearer {}", w.canary);
    let seen = w.api.seen();
    // The GET ran unprompted, with the auth, at the base URL's path.
    let get = seen
        .iter()
        .find(|s| s.method == "GET" && s.target == "/api/devices?site=3")
        .with_context(|| format!("{seen:#?}"))?;
    assert_eq!(get.header("authorization"), Some(bearer.as_str()));
    assert!(stdout.contains("read-only"), "{stdout}");
    // The approved POST ran with its body; the rejected one never did; the
    // DELETE was dangerous, asked, was rejected and never sent.
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(posts.len(), 1, "{seen:#?}");
    assert_eq!(posts[0].body, r#"{"name":"r9"}"#);
    assert_eq!(posts[0].header("content-type"), Some("application/json"));
    assert_eq!(posts[0].header("authorization"), Some(bearer.as_str()));
    assert!(!seen.iter().any(|s| s.method == "DELETE"), "{seen:#?}");
    assert_eq!(stdout.matches("needs approval").count(), 3, "{stdout}");
    assert!(stdout.contains("dangerous"), "{stdout}");
    // The approval card showed the exact call and the credential context.
    assert!(stdout.contains("POST /api/devices"), "{stdout}");
    assert!(stdout.contains("connector:inventory"), "{stdout}");
    // The echo was sent (with the auth), and its answer reached the model
    // without the token.
    assert!(seen.iter().any(|s| s.target == "/api/echo-auth"));
    let bodies = w.provider_bodies(&p);
    assert_eq!(bodies.len(), 6);
    let last = bodies.last().context("last")?;
    assert!(last.contains("you_sent"), "{last}");
    assert!(last.contains("rejected"), "{last}");
    assert!(last.contains("HTTP 200"), "{last}");
    // Nothing went anywhere else.
    assert!(w.other.seen().is_empty());
    Ok(())
}

#[test]
fn org_policy_blocks_deletes_and_calls_never_leave_the_base_url() -> Result<()> {
    let w = World::start()?;
    w.policy(
        r#"{"allow":[],"block":[{"id":"no-api-deletes","vendor":null,"kind":{"kind":"contains","value":"DELETE /api/"}}],"block_dangerous":false,"block_unknown":false}"#,
    )?;
    let other = w.other.addr;
    let p = w.provider(vec![
        call("inventory", "DELETE", "/devices/7", None),
        call("inventory", "GET", "../admin", None),
        call("inventory", "GET", "/%2e%2e/admin", None),
        call("inventory", "GET", &format!("//{other}/steal"), None),
        call("inventory", "GET", &format!("http://{other}/steal"), None),
        call("inventory", "GET", &format!("http://x@{other}/steal"), None),
        call("inventory", "GET", "/redirect", None),
        Turn::Text("done".into()),
    ])?;
    // No answers: nothing here may ask a person.
    let stdout = w.chat(&["clean up"], "")?;
    assert!(!stdout.contains("needs approval"), "{stdout}");
    assert_eq!(stdout.matches("REFUSED").count(), 6, "{stdout}");
    assert!(stdout.contains("no-api-deletes"), "{stdout}");
    // The connector's server saw only the redirecting GET; the other host
    // nothing at all (the redirect was not followed).
    let seen = w.api.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].target, "/api/redirect");
    assert!(w.other.seen().is_empty(), "{:#?}", w.other.seen());
    let bodies = w.provider_bodies(&p);
    let last = bodies.last().context("last")?;
    assert!(last.contains("HTTP 302"), "{last}");
    assert!(last.contains("redirect not followed"), "{last}");
    assert!(last.contains("base URL"), "{last}");
    Ok(())
}

/// Waits for a pending approval whose command contains `needle`; returns its id.
fn pending(f: &BrokerFixture, needle: &str) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let list: Value = serde_json::from_str(&f.cli_ok(&["approvals", "list", "--json"], "")?)?;
        if let Some(id) = list.as_array().context("list")?.iter().find_map(|v| {
            (v["state"] == "Pending"
                && v["action"]["command"]
                    .as_str()
                    .is_some_and(|c| c.contains(needle)))
            .then(|| v["id"].as_u64())
            .flatten()
        }) {
            return Ok(id);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("no pending approval for {needle:?}")
}

#[test]
fn soap_asks_edits_run_as_edited_and_an_unreachable_connector_is_a_result() -> Result<()> {
    let w = World::start()?;
    let soap_password = format!("soap-pw-{}-q", std::process::id());
    w.f.cli_ok(
        &[
            "connector",
            "add",
            "billing",
            "--org",
            "net",
            "--kind",
            "soap",
            "--url",
            &format!("http://{}/ws", w.api.addr),
            "--auth",
            "basic",
            "--username",
            "svc",
            "--secret-stdin",
        ],
        &format!("{soap_password}\n"),
    )?;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    w.f.cli_ok(
        &[
            "connector",
            "add",
            "down",
            "--org",
            "net",
            "--url",
            &format!("http://{closed}/api"),
        ],
        "",
    )?;
    let envelope = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><GetUser><id>7</id></GetUser></soap:Body></soap:Envelope>";
    let p = w.provider(vec![
        Turn::ToolCalls(vec![(
            "call_connector".into(),
            json!({"connector": "billing", "method": "POST", "path": "", "body": envelope,
                   "soap_action": "urn:billing#GetUser"}),
        )]),
        call(
            "inventory",
            "PUT",
            "/devices/9",
            Some(r#"{"name":"original"}"#),
        ),
        call("down", "GET", "/status", None),
        Turn::Text("done".into()),
    ])?;
    std::thread::scope(|s| -> Result<()> {
        // The person approves the SOAP call inline; the PUT is left pending
        // there and edited through `gatehouse approvals` (a multi-line call).
        let chat = s.spawn(|| w.chat(&["check billing, rename r9"], "a\n"));
        let id = pending(&w.f, "original")?;
        let edited = "PUT /api/devices/9\n\n{\"name\":\"edited\"}";
        let out = w.f.cli_ok(
            &["approvals", "approve", &id.to_string(), "--edit", edited],
            "",
        )?;
        anyhow::ensure!(out.contains("edited"), "{out}");
        let new_id = pending(&w.f, "\"edited\"")?;
        w.f.cli_ok(&["approvals", "approve", &new_id.to_string()], "")?;
        let stdout = chat
            .join()
            .map_err(|_| anyhow::anyhow!("chat panicked"))??;
        // The SOAP call was unknown, named its operation, and asked.
        assert!(stdout.contains("unknown"), "{stdout}");
        assert!(stdout.contains("GetUser"), "{stdout}");
        Ok(())
    })?;
    let seen = w.api.seen();
    let soap = seen
        .iter()
        .find(|x| x.target == "/ws")
        .with_context(|| format!("{seen:#?}"))?;
    assert_eq!(soap.method, "POST");
    assert_eq!(soap.body, envelope);
    assert_eq!(soap.header("soapaction"), Some("urn:billing#GetUser"));
    assert_eq!(soap.header("content-type"), Some("text/xml; charset=utf-8"));
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{soap_password}"));
    assert_eq!(
        soap.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    // Only the edited PUT was sent.
    let puts: Vec<&Seen> = seen.iter().filter(|x| x.method == "PUT").collect();
    assert_eq!(puts.len(), 1, "{seen:#?}");
    assert_eq!(puts[0].body, r#"{"name":"edited"}"#);
    let bodies = w.provider_bodies(&p);
    for b in &bodies {
        assert!(!b.contains(&soap_password) && !b.contains(&basic), "{b}");
    }
    let last = bodies.last().context("last")?;
    assert!(last.contains("GetUserResponse"), "{last}");
    assert!(last.contains("edited"), "{last}");
    assert!(last.contains("connector down unreachable"), "{last}");
    Ok(())
}
