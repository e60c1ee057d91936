//! The copilot's record tools end to end: a scripted model over the real
//! Chat Completions wire format, the real copilotd, sessiond, broker and
//! lab devices, and the real CLI. Reads open only procedure and memory
//! bodies (a host's sealed password never reaches the provider); a
//! procedure's steps go through the gate like any command; writes wait for
//! a person and write exactly what they approved (edits included), sealed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gatehouse_labprovider::{ScriptedProvider, Turn};
use gatehouse_tests::ChildGuard;
use gatehouse_tests::broker::{BrokerFixture, Options};
use serde_json::{Value, json};

struct World {
    f: BrokerFixture,
    r1_log: std::path::PathBuf,
    /// A literal password sealed in a host record of the org.
    canary: String,
    rt: tokio::runtime::Runtime,
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
            "records-test-pass\n",
        )?;
        f.cli_ok(&["lab", "up", "--log-data"], "")?;
        f.start_sessiond()?;
        f.start_copilotd()?;
        let r1_log = f.lab_log("r1")?;
        let canary = format!("vault-canary-{}", std::process::id());
        f.cli_ok(
            &[
                "host",
                "add",
                "vault1",
                "--org",
                "lab",
                "--address",
                "10.9.9.9",
                "--vendor",
                "linux",
                "--ssh-user",
                "ops",
                "--password-stdin",
            ],
            &format!("{canary}\n"),
        )?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        Ok(World {
            f,
            r1_log,
            canary,
            rt,
        })
    }

    fn provider(&self, turns: Vec<Turn>) -> Result<ScriptedProvider> {
        let p = self.rt.block_on(ScriptedProvider::start(turns))?;
        self.f.use_openai_provider(&p.base_url_openai())?;
        Ok(p)
    }

    fn received(&self, needle: &str) -> Result<bool> {
        gatehouse_tests::device_received(&self.r1_log, needle)
    }

    fn chat(&self, args: &[&str], answers: &str) -> Result<String> {
        let mut all = vec!["copilot", "chat", "--org", "lab"];
        all.extend_from_slice(args);
        let out = self.f.cli(&all, answers)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "chat failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    fn add(&self, kind: &str, name: &str, body: &str, extra: &[&str]) -> Result<()> {
        let mut args = vec![kind, "add", name, "--org", "lab", "--body", "-"];
        args.extend_from_slice(extra);
        self.f.cli_ok(&args, body).map(|_| ())
    }

    /// A record's fields as `gatehouse records show --reveal` prints them
    /// (MAC verified, sealed fields opened by the person's tool).
    fn show(&self, kind: &str, key: &str) -> Result<Value> {
        let v: Value = serde_json::from_str(&self.f.cli_ok(
            &[
                "records", "show", "--kind", kind, key, "--org", "lab", "--reveal", "--json",
            ],
            "",
        )?)?;
        Ok(v)
    }

    fn exists(&self, kind: &str, key: &str) -> Result<bool> {
        let out = self.f.cli(
            &[
                "records", "show", "--kind", kind, key, "--org", "lab", "--json",
            ],
            "",
        )?;
        Ok(out.status.success())
    }

    /// The database file and its WAL, as bytes.
    fn db_bytes(&self) -> Vec<u8> {
        let mut db = Vec::new();
        for suffix in ["", "-wal"] {
            let path = self
                .f
                .home
                .join(format!("{}{suffix}", gatehouse_records::store::FILE_NAME));
            if let Ok(b) = std::fs::read(path) {
                db.extend(b);
            }
        }
        db
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.f.cli(&["lab", "down"], "");
    }
}

fn tool(name: &str, args: Value) -> Turn {
    Turn::ToolCalls(vec![(name.into(), args)])
}

fn bodies(p: &ScriptedProvider) -> Vec<String> {
    p.received()
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

/// The tool result the model received last in request `body` (the
/// provider's view: a JSON-escaped string inside the request).
fn last_tool_result(body: &str) -> Result<String> {
    let v: Value = serde_json::from_str(body)?;
    v["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "tool"))
        .and_then(|m| m["content"].as_str())
        .map(str::to_string)
        .context("no tool result")
}

#[test]
fn reads_open_only_bodies_and_search_finds_body_text() -> Result<()> {
    let w = World::start()?;
    let steps = "1. Show the addresses of {{router}}.\n2. Check ticket {{ticket}}.\n";
    w.add(
        "procedure",
        "add-address",
        steps,
        &[
            "--param",
            "router=r1:the router",
            "--param",
            "ticket:change ticket",
        ],
    )?;
    w.add(
        "memory",
        "r1-notes",
        "The uplink on ether2 flaps at night; check the SFP first.",
        &["--host", "r1"],
    )?;
    w.add(
        "memory",
        "vault-notes",
        "vault1 is the jump host; nothing about links here.",
        &["--host", "vault1"],
    )?;
    let p = w.provider(vec![
        tool("list_procedures", json!({})),
        tool("read_procedure", json!({"procedure": "add-address"})),
        tool("search_memories", json!({"query": "ETHER2 Flaps"})),
        tool(
            "search_memories",
            json!({"query": "uplink", "host": "vault1"}),
        ),
        tool("show_host", json!({"host": "vault1"})),
        Turn::Text("Found the note about r1's uplink.".into()),
    ])?;
    let stdout = w.chat(&["what do we know about r1's links?"], "")?;
    // Reads run without asking anyone.
    assert!(!stdout.contains("needs approval"), "{stdout}");
    assert_eq!(stdout.matches("read-only").count(), 4, "{stdout}");
    let b = bodies(&p);
    assert_eq!(b.len(), 6, "one request per model turn");
    let listed = last_tool_result(&b[1])?;
    assert!(
        listed.contains("add-address") && listed.contains("ticket"),
        "{listed}"
    );
    assert!(
        !listed.contains("Show the addresses"),
        "listing opens nothing: {listed}"
    );
    let read = last_tool_result(&b[2])?;
    assert!(read.contains(steps), "{read}");
    let found: Value = serde_json::from_str(&last_tool_result(&b[3])?)?;
    let matches = found["matches"].as_array().context("matches")?;
    assert_eq!(matches.len(), 1, "{found}");
    assert_eq!(matches[0]["title"], "r1-notes");
    assert!(
        matches[0]["snippet"]
            .as_str()
            .is_some_and(|s| s.contains("ether2 flaps")),
        "{found}"
    );
    // Limited to the host's memories: vault1's note does not mention the uplink.
    let none: Value = serde_json::from_str(&last_tool_result(&b[4])?)?;
    assert_eq!(none["matches"], json!([]), "{none}");
    // The host's sealed password was never opened for the provider.
    for body in &b {
        assert!(
            !body.contains(&w.canary),
            "the canary reached the provider: {body}"
        );
    }
    assert!(!stdout.contains(&w.canary));
    Ok(())
}

#[test]
fn run_procedure_steps_are_gated_run_commands() -> Result<()> {
    let w = World::start()?;
    w.add(
        "procedure",
        "add-address",
        "1. /ip address print on {{router}}\n2. /ip address add address=10.55.5.1/24 interface=ether2 comment={{ticket}}\n",
        &["--param", "router=r1:the router", "--param", "ticket:change ticket"],
    )?;
    let p = w.provider(vec![
        tool("run_procedure", json!({"procedure": "add-address"})),
        tool(
            "run_procedure",
            json!({"procedure": "add-address", "args": {"ticket": "T-4242"}}),
        ),
        tool("run_command", json!({"host": "r1", "command": "/ip address print"})),
        tool(
            "run_command",
            json!({"host": "r1", "command": "/ip address add address=10.55.5.1/24 interface=ether2 comment=T-4242"}),
        ),
        Turn::Text("Runbook done.".into()),
    ])?;
    let stdout = w.chat(&["run add-address"], "a\n")?;
    let b = bodies(&p);
    assert_eq!(b.len(), 5);
    // A missing argument is an error naming it; nothing ran.
    let missing = last_tool_result(&b[1])?;
    assert!(
        missing.starts_with("error:") && missing.contains("ticket"),
        "{missing}"
    );
    // The steps come back with the arguments filled in, to be run one by one.
    let steps = last_tool_result(&b[2])?;
    assert!(steps.contains("comment=T-4242"), "{steps}");
    assert!(steps.contains("print on r1"), "{steps}");
    assert!(steps.contains("run_command"), "{steps}");
    // The read-only step ran without asking; the change waited for a person
    // (approved here), then ran.
    assert!(w.received("/ip address print")?);
    assert_eq!(stdout.matches("needs approval").count(), 1, "{stdout}");
    assert!(w.received("10.55.5.1/24")?);
    Ok(())
}

/// Decides pending approval requests from another process, in order, as a
/// person at `gatehouse approvals` would: each answer is `approve`,
/// `reject`, or `edit TEXT` (then the edited request is approved).
fn decide_in_order(f: &BrokerFixture, answers: &[&str]) -> Result<Vec<Value>> {
    let mut seen = Vec::new();
    let mut shown = Vec::new();
    for answer in answers {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (id, view) = loop {
            let list: Value =
                serde_json::from_str(&f.cli_ok(&["approvals", "list", "--json"], "")?)?;
            if let Some(v) = list.as_array().and_then(|a| {
                a.iter()
                    .find(|v| v["state"] == "Pending" && !seen.contains(&v["id"]))
            }) {
                break (v["id"].as_u64().context("id")?, v.clone());
            }
            if Instant::now() > deadline {
                bail!("no pending request for answer {answer:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        seen.push(json!(id));
        shown.push(view);
        let id = id.to_string();
        match answer.split_once(' ') {
            None if *answer == "approve" => {
                f.cli_ok(&["approvals", "approve", &id], "")?;
            }
            None => {
                f.cli_ok(&["approvals", "reject", &id], "")?;
            }
            Some((_, text)) => {
                let out = f.cli_ok(&["approvals", "approve", &id, "--edit", text], "")?;
                let new_id = out
                    .split_whitespace()
                    .find_map(|w| w.parse::<u64>().ok().filter(|n| n.to_string() != id))
                    .context("edited request id")?;
                seen.push(json!(new_id));
                f.cli_ok(&["approvals", "approve", &new_id.to_string()], "")?;
            }
        }
    }
    Ok(shown)
}

#[test]
fn writes_wait_for_a_person_and_write_what_they_approved() -> Result<()> {
    let w = World::start()?;
    w.add(
        "procedure",
        "rollback",
        "1. old step\n",
        &["--param", "router=r1:the router"],
    )?;
    w.add("procedure", "cleanup", "1. keep me\n", &[])?;
    let tag = std::process::id();
    let approved_body = format!("Uplink ether2 flaps; approved-body-{tag}");
    let rejected_body = format!("rejected-body-{tag}");
    let edited_body = format!("edited-body-{tag}\nsecond line");
    let new_steps = format!("1. new step {tag}\n");
    let edited_steps = format!("1. edited step {tag}\n");
    let p = w.provider(vec![
        tool(
            "write_memory",
            json!({"title": "r1-uplink", "body": approved_body, "hosts": ["r1"]}),
        ),
        tool(
            "write_memory",
            json!({"title": "r1-rejected", "body": rejected_body}),
        ),
        tool(
            "write_memory",
            json!({"title": "r1-draft", "body": "draft body"}),
        ),
        tool(
            "update_procedure",
            json!({"procedure": "rollback", "body": new_steps}),
        ),
        tool(
            "update_procedure",
            json!({"procedure": "cleanup", "body": "1. delete everything\n"}),
        ),
        tool(
            "update_procedure",
            json!({"procedure": "rollback", "body": "1. model's version\n"}),
        ),
        Turn::Text("Notes written.".into()),
    ])?;
    let mut c = w.f.command(&w.f.install_dir().join("gatehouse"));
    c.args([
        "--profile",
        &w.f.profile,
        "copilot",
        "chat",
        "--org",
        "lab",
        "--no-inline-approvals",
        "write down what we found",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut chat = ChildGuard::spawn(&mut c)?;
    let edited_memory = format!("write_memory\ntitle: r1-edited\nhost: r1\n\n{edited_body}");
    let edited_update = format!("update_procedure\nprocedure: rollback\n\n{edited_steps}");
    let shown = decide_in_order(
        &w.f,
        &[
            "approve",
            "reject",
            &format!("edit {edited_memory}"),
            "approve",
            "reject",
            &format!("edit {edited_update}"),
        ],
    )?;
    let status = chat.child_mut().wait()?;
    assert!(status.success());
    // Each request showed the exact write, as a moderate records action.
    assert_eq!(
        shown[0]["action"]["command"],
        format!("write_memory\ntitle: r1-uplink\nhost: r1\n\n{approved_body}")
    );
    assert_eq!(
        shown[3]["action"]["command"],
        format!("update_procedure\nprocedure: rollback\n\n{new_steps}")
    );
    for v in &shown {
        assert_eq!(v["action"]["host"], "records", "{v}");
        assert_eq!(v["action"]["vendor"], "copilot:records", "{v}");
        assert_eq!(v["class"], "moderate", "{v}");
        assert_eq!(v["requester"]["role"], "copilotd", "{v}");
    }

    // Approved: stored, readable by the person's tool, linked to r1.
    let m = w.show("memory", "r1-uplink")?;
    assert_eq!(m["fields"]["body"], approved_body.as_str());
    assert_eq!(m["owner"], "copilot");
    assert_eq!(m["fields"]["host_ids"].as_array().map(Vec::len), Some(1));
    // Rejected: not stored. Edited: the edited text, not the model's.
    assert!(!w.exists("memory", "r1-rejected")?);
    assert!(!w.exists("memory", "r1-draft")?);
    let e = w.show("memory", "r1-edited")?;
    assert_eq!(e["fields"]["body"], edited_body.as_str());
    // Procedures: approved then edited (revision 3, the edited steps); the
    // rejected update left `cleanup` alone; parameters kept.
    let r = w.show("procedure", "rollback")?;
    assert_eq!(r["fields"]["body"], edited_steps.as_str());
    assert_eq!(r["revision"], 3);
    assert_eq!(r["fields"]["parameters"][0]["name"], "router");
    let k = w.show("procedure", "cleanup")?;
    assert_eq!(k["fields"]["body"], "1. keep me\n");
    assert_eq!(k["revision"], 1);

    // Sealed on disk: no body in plaintext in the database or its WAL.
    let db = w.db_bytes();
    assert!(!db.is_empty());
    for needle in [&approved_body, &edited_body, &new_steps, &edited_steps] {
        assert!(
            !db.windows(needle.len()).any(|x| x == needle.as_bytes()),
            "{needle:?} is in the database in plaintext"
        );
    }
    // The model was told each outcome.
    let b = bodies(&p);
    assert_eq!(b.len(), 7);
    let told: Vec<String> = b[1..]
        .iter()
        .map(|x| last_tool_result(x))
        .collect::<Result<_>>()?;
    assert!(
        told[0].contains("Written: memory \"r1-uplink\""),
        "{}",
        told[0]
    );
    assert!(told[1].contains("rejected"), "{}", told[1]);
    assert!(
        told[2].contains("edited") && told[2].contains("r1-edited"),
        "{}",
        told[2]
    );
    assert!(
        told[3].contains("Written: procedure \"rollback\""),
        "{}",
        told[3]
    );
    assert!(told[4].contains("rejected"), "{}", told[4]);
    assert!(
        told[5].contains("edited") && told[5].contains("revision 3"),
        "{}",
        told[5]
    );
    Ok(())
}

#[test]
fn ask_mode_shows_writes_as_suggestions_and_unreadable_edits_write_nothing() -> Result<()> {
    let w = World::start()?;
    let p = w.provider(vec![
        tool("write_memory", json!({"title": "ask-note", "body": "b"})),
        Turn::Text("ok".into()),
    ])?;
    let stdout = w.chat(&["--mode", "ask", "note it"], "")?;
    assert!(stdout.contains("suggestion only"), "{stdout}");
    assert!(!w.exists("memory", "ask-note")?);
    assert!(last_tool_result(&bodies(&p)[1])?.contains("Not written"));

    let p = w.provider(vec![
        tool("write_memory", json!({"title": "edit-note", "body": "b"})),
        Turn::Text("ok".into()),
    ])?;
    let out = w.chat(&["note it"], "e this is not a record write\na\n")?;
    assert!(out.contains("needs approval"), "{out}");
    assert!(!w.exists("memory", "edit-note")?);
    let told = last_tool_result(&bodies(&p)[1])?;
    assert!(
        told.contains("cannot be read") && told.contains("Nothing was written"),
        "{told}"
    );
    Ok(())
}
