//! The copilot's MCP tools end to end: a real MCP server
//! (`gatehouse-mcp-lab-server`, rmcp's server side) configured as records
//! (`gatehouse mcp add`), reached by the real copilotd over stdio (spawned
//! before its sandbox) and streamable HTTP, a scripted model over the real
//! Chat Completions wire format, and a person answering inline in
//! `gatehouse copilot chat`. Asserts what reached the MCP server (it logs
//! every call it receives) and what the model was told.
//!
//! The rule under test: a tool's annotations inform but never lower the
//! class (max(org-assigned, annotation-implied)); unknown asks a person.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gatehouse_labprovider::{ScriptedProvider, Turn};
use gatehouse_tests::broker::{BrokerFixture, Options};
use gatehouse_tests::{ChildGuard, find_binary, install};
use serde_json::{Value, json};

struct World {
    f: BrokerFixture,
    lab_id: String,
    stdio_log: PathBuf,
    http_log: PathBuf,
    /// The HTTP server's bearer token (sealed in the `swh` record).
    token: String,
    _http_server: ChildGuard,
    rt: tokio::runtime::Runtime,
}

impl World {
    /// Broker, sessiond, copilotd; org `lab`; MCP servers `sw` (stdio),
    /// `swh` (streamable HTTP) and `broken` (a stdio server that crashes at
    /// start), configured before copilotd starts.
    fn start() -> Result<World> {
        let mut f = BrokerFixture::start(Options {
            real_sessiond: true,
            real_copilotd: true,
            ..Options::default()
        })?;
        f.cli_ok(
            &["account", "init", "--passphrase-stdin"],
            "copilot-mcp-test-pass\n",
        )?;
        f.cli_ok(&["org", "create", "lab"], "")?;
        let lab_id = f.org_id("lab")?;
        let server = install(
            &f.scratch,
            &find_binary("gatehouse-mcp-lab-server")?,
            "gatehouse-mcp-lab-server",
        )?;
        let logs = f.scratch.user_dir("mcp-logs")?;
        let stdio_log = logs.join("stdio.log");
        let http_log = logs.join("http.log");
        // The HTTP server: started by the test, on loopback; it wants a
        // bearer token, which the record holds sealed.
        let url_file = logs.join("http.url");
        let token = format!("mcp-token-canary-{}", std::process::id());
        let token_file = logs.join("http.token");
        std::fs::write(&token_file, &token)?;
        let mut cmd = std::process::Command::new(&server);
        cmd.args([
            "--log",
            path(&http_log),
            "http",
            "--url-file",
            path(&url_file),
            "--bearer",
            path(&token_file),
        ]);
        let mut http_server = ChildGuard::spawn(&mut cmd)?;
        gatehouse_tests::proc::wait_until("the MCP HTTP server", Duration::from_secs(10), || {
            if let Some(s) = http_server.has_exited()? {
                bail!("the MCP HTTP server exited: {s}");
            }
            Ok(url_file.exists())
        })?;
        let url = std::fs::read_to_string(&url_file)?;
        let bin = path(&server);
        let stdio = [
            "--arg",
            "--log",
            "--arg",
            path(&stdio_log),
            "--arg",
            "stdio",
        ];
        let mut add = vec!["mcp", "add", "sw", "--org", "lab", "--command", bin];
        add.extend_from_slice(&stdio);
        f.cli_ok(&add, "")?;
        f.cli_ok(
            &[
                "mcp",
                "add",
                "swh",
                "--org",
                "lab",
                "--url",
                &url,
                "--token-stdin",
            ],
            &format!("{token}\n"),
        )?;
        // The same server with a wrong token: refused, reported, not fatal.
        f.cli_ok(
            &[
                "mcp",
                "add",
                "swbad",
                "--org",
                "lab",
                "--url",
                &url,
                "--token-stdin",
            ],
            "not-the-token\n",
        )?;
        let crash = [
            "--arg",
            "--log",
            "--arg",
            path(&stdio_log),
            "--arg",
            "crash",
        ];
        let mut add = vec!["mcp", "add", "broken", "--org", "lab", "--command", bin];
        add.extend_from_slice(&crash);
        f.cli_ok(&add, "")?;
        f.start_sessiond()?;
        f.start_copilotd()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let w = World {
            f,
            lab_id,
            stdio_log,
            http_log,
            token,
            _http_server: http_server,
            rt,
        };
        w.wait_settled()?;
        Ok(w)
    }

    /// `gatehouse copilot show` once no server is still connecting.
    fn wait_settled(&self) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.f.cli_ok(&["copilot", "show"], "")?;
            if !out.contains("connecting") && out.contains("MCP servers:") {
                return Ok(out);
            }
            if Instant::now() > deadline {
                bail!("MCP servers still connecting: {out}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn provider(&self, turns: Vec<Turn>) -> Result<ScriptedProvider> {
        let p = self.rt.block_on(ScriptedProvider::start(turns))?;
        self.f.use_openai_provider(&p.base_url_openai())?;
        Ok(p)
    }

    fn policy(&self, policy: Value) -> Result<()> {
        self.f
            .set_org_policy(&self.lab_id, &policy.to_string(), "copilot-mcp-test-pass")
    }

    /// One chat turn in org `lab`; asserts it succeeded; returns stdout.
    fn chat(&self, args: &[&str], answers: &str) -> Result<String> {
        let mut all = vec!["copilot", "chat", "--org", "lab"];
        all.extend_from_slice(args);
        let out = self.f.cli(&all, answers)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("chat: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(stdout)
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 test path")
}

/// The calls an MCP server received (its log: one JSON line per call).
fn calls(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn received(log: &Path, tool: &str, arguments: &Value) -> bool {
    calls(log)
        .iter()
        .any(|c| c["tool"] == tool && &c["arguments"] == arguments)
}

fn call(tool: &str, arguments: Value) -> Turn {
    Turn::ToolCalls(vec![(tool.into(), arguments)])
}

fn last_body(p: &ScriptedProvider) -> Result<String> {
    let bodies = p.received();
    let last = bodies.last().context("no request reached the provider")?;
    Ok(String::from_utf8_lossy(last).into_owned())
}

#[test]
fn annotations_never_lower_the_class_and_every_call_is_gated() -> Result<()> {
    let w = World::start()?;
    let status = w.wait_settled()?;
    // Both transports initialized; the crashed server is reported, not fatal.
    assert!(
        status.contains("sw (org") && status.contains("ready, 4 tools"),
        "{status}"
    );
    assert!(status.contains("swh (org"), "{status}");
    assert_eq!(status.matches("ready, 4 tools").count(), 2, "{status}");
    assert!(
        status.contains("broken") && status.contains("FAILED"),
        "{status}"
    );
    // The HTTP server's sealed token was released by the broker for its URL
    // and sent (swh is ready above); the record with a wrong one was refused.
    assert!(
        status
            .lines()
            .any(|l| l.contains("swbad") && l.contains("FAILED")),
        "{status}"
    );

    // 1. No org rule, Supervised: the honest read-only hint still asks (and
    //    is rejected); the LYING read-only hint asks too and never runs.
    let p = w.provider(vec![
        call("mcp__sw__lookup_vlan", json!({"vlan": 10})),
        call("mcp__sw__port_status", json!({"port": "ether1"})),
        Turn::Text("ok".into()),
    ])?;
    let out = w.chat(&["look at vlan 10"], "r\nr\n")?;
    assert_eq!(out.matches("needs approval").count(), 2, "{out}");
    assert!(out.contains("unknown"), "{out}");
    assert!(
        out.contains("the server says read-only (a hint, not trusted)"),
        "{out}"
    );
    assert!(calls(&w.stdio_log).is_empty(), "{:?}", calls(&w.stdio_log));
    // The model was offered the tools of the live servers only, with their schema.
    let first = String::from_utf8_lossy(&p.received()[0]).into_owned();
    for t in [
        "mcp__sw__lookup_vlan",
        "mcp__swh__delete_vlan",
        "mcp__sw__port_status",
    ] {
        assert!(first.contains(t), "{t} not offered: {first}");
    }
    assert!(!first.contains("mcp__broken__"), "{first}");
    assert!(last_body(&p)?.contains("rejected"));

    // 2. The org makes lookup_vlan read-only (and, wrongly, delete_vlan too):
    //    lookup runs unprompted under Supervised; destructiveHint keeps
    //    delete_vlan dangerous: it asks, and the rejected call never arrives.
    w.policy(json!({"mcp_tools": {"sw/lookup_vlan": "read-only", "sw/delete_vlan": "read-only"}}))?;
    let p = w.provider(vec![
        call("mcp__sw__lookup_vlan", json!({"vlan": 20})),
        call("mcp__sw__delete_vlan", json!({"vlan": 30})),
        Turn::Text("ok".into()),
    ])?;
    let out = w.chat(&["vlan 20, then delete 30"], "r not today\n")?;
    assert_eq!(out.matches("needs approval").count(), 1, "{out}");
    assert!(out.contains("read-only"), "{out}");
    assert!(out.contains("dangerous"), "{out}");
    assert!(received(&w.stdio_log, "lookup_vlan", &json!({"vlan": 20})));
    assert!(!received(&w.stdio_log, "delete_vlan", &json!({"vlan": 30})));
    let body = last_body(&p)?;
    assert!(body.contains("vlan 20: name users-20"), "{body}");
    assert!(body.contains("not today"), "{body}");

    // 3. Manual: the org's read-only tool asks, and runs once approved.
    let _p = w.provider(vec![
        call("mcp__sw__lookup_vlan", json!({"vlan": 40})),
        Turn::Text("ok".into()),
    ])?;
    let out = w.chat(&["--trust", "manual", "vlan 40"], "a\n")?;
    assert_eq!(out.matches("needs approval").count(), 1, "{out}");
    assert!(received(&w.stdio_log, "lookup_vlan", &json!({"vlan": 40})));

    // 4. Edits: the person's edited arguments are what the server receives;
    //    an edit that names another tool is not run.
    let p = w.provider(vec![
        call(
            "mcp__sw__set_description",
            json!({"vlan": 50, "description": "old"}),
        ),
        call(
            "mcp__sw__set_description",
            json!({"vlan": 52, "description": "x"}),
        ),
        Turn::Text("ok".into()),
    ])?;
    let answers = "e set_description {\"description\":\"edited\",\"vlan\":51}\na\n\
                   e delete_vlan {\"vlan\":52}\na\n";
    let out = w.chat(&["describe vlans"], answers)?;
    assert!(out.contains("needs approval"), "{out}");
    assert!(received(
        &w.stdio_log,
        "set_description",
        &json!({"vlan": 51, "description": "edited"})
    ));
    assert!(!received(
        &w.stdio_log,
        "set_description",
        &json!({"vlan": 50, "description": "old"})
    ));
    assert!(
        !calls(&w.stdio_log)
            .iter()
            .any(|c| c["arguments"]["vlan"] == 52)
    );
    let body = last_body(&p)?;
    assert!(body.contains("edited the arguments"), "{body}");
    assert!(body.contains("only the arguments of"), "{body}");

    // 5. An org block refuses without asking anyone.
    w.policy(json!({"block": [{"id": "no-vlan-deletes", "vendor": null,
        "kind": {"kind": "exact", "value": "sw/delete_vlan"}}]}))?;
    let p = w.provider(vec![
        call("mcp__sw__delete_vlan", json!({"vlan": 60})),
        Turn::Text("ok".into()),
    ])?;
    let out = w.chat(&["delete vlan 60"], "a\n")?;
    assert!(out.contains("REFUSED"), "{out}");
    assert!(!out.contains("needs approval"), "{out}");
    assert!(
        !calls(&w.stdio_log)
            .iter()
            .any(|c| c["arguments"]["vlan"] == 60)
    );
    assert!(last_body(&p)?.contains("no-vlan-deletes"));

    // Only the stdio server received these; the HTTP one saw nothing yet.
    assert!(calls(&w.http_log).is_empty());
    Ok(())
}

#[test]
fn streamable_http_works_errors_are_results_and_stdio_servers_end_with_copilotd() -> Result<()> {
    let mut w = World::start()?;
    w.policy(json!({"mcp_tools": {"swh/lookup_vlan": "read-only"}}))?;
    // Over HTTP: a read-only lookup runs unprompted; a dangerous delete of
    // VLAN 1 is approved, and the server's isError comes back as a result.
    let p = w.provider(vec![
        call("mcp__swh__lookup_vlan", json!({"vlan": 7})),
        call("mcp__swh__delete_vlan", json!({"vlan": 1})),
        call("mcp__nosuch__tool", json!({})),
        Turn::Text("ok".into()),
    ])?;
    let out = w.chat(&["vlan 7, then delete vlan 1"], "a\n")?;
    assert_eq!(out.matches("needs approval").count(), 1, "{out}");
    assert!(received(&w.http_log, "lookup_vlan", &json!({"vlan": 7})));
    assert!(received(&w.http_log, "delete_vlan", &json!({"vlan": 1})));
    assert!(calls(&w.stdio_log).is_empty());
    let body = last_body(&p)?;
    assert!(body.contains("the tool reported an error"), "{body}");
    assert!(body.contains("cannot delete the default VLAN 1"), "{body}");
    assert!(body.contains("no MCP tool"), "{body}");
    // The server's token never reaches the provider, and the refused
    // server's tools were never offered.
    for b in p.received() {
        let b = String::from_utf8_lossy(&b);
        assert!(!b.contains(&w.token), "the MCP token reached the provider");
        assert!(!b.contains("mcp__swbad__"), "{b}");
    }
    // The approval a person saw names the server, the copilot:mcp executor
    // and the exact canonical call.
    assert!(
        out.contains(r#"command:    delete_vlan {"vlan":1}"#),
        "{out}"
    );
    assert!(out.contains("swh (copilot:mcp)"), "{out}");
    // The card names the credential the call carries (swh's sealed token).
    assert!(out.contains("credential: mcp:swh"), "{out}");

    // The stdio server is a child of copilotd outside its sandbox: when
    // copilotd dies (even by SIGKILL) its stdin closes and it exits.
    let marker = path(&w.stdio_log).to_string();
    assert!(
        !server_pids(&marker).is_empty(),
        "the stdio server is not running"
    );
    w.f.copilotd.as_mut().context("copilotd")?.kill9()?;
    gatehouse_tests::proc::wait_until(
        "the stdio MCP server to exit",
        Duration::from_secs(10),
        || Ok(server_pids(&marker).is_empty()),
    )?;
    Ok(())
}

/// Live (non-zombie) processes whose command line mentions `marker`.
fn server_pids(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let alive = gatehouse_tests::proc::status_field(*pid, "State")
                .map(|s| !s.starts_with('Z'))
                .unwrap_or(false);
            alive
                && String::from_utf8_lossy(&cmdline).contains(marker)
                && String::from_utf8_lossy(&cmdline).contains("stdio")
        })
        .collect()
}
