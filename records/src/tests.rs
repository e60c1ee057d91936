//! Unit tests of the field table and the store, with an in-process sealer
//! standing in for the broker (the cross-process tests use the real one).

use std::collections::BTreeSet;

use gatehouse_ipc::broker::KeyScope;

use crate::fields::{self, Class, TABLE};
use crate::model::*;
use crate::store::{Filter, Store};
use crate::test_sealer::TestSealer;
use crate::{RecordError, bundle};

const CANARY_PW: &str = "canary-pw-7f3a9c1e";
const CANARY_BODY: &str = "canary-body-step-1-reload-2b8d";

fn s(v: &str) -> Secret {
    Secret::new(v.to_string())
}

/// One fully populated record of every kind (every optional field set).
pub fn samples() -> Vec<Record> {
    vec![
        Record::Host(Host {
            name: "core-sw1".into(),
            folder: "dc1/core".into(),
            address: "10.0.0.1".into(),
            port: 22,
            tags: vec!["core".into(), "prod".into()],
            vendor: Vendor::Ios,
            ssh: Some(SshProtocol {
                username: "admin".into(),
                password: Some(s(CANARY_PW)),
                private_key_path: Some(s("/home/n/.ssh/id_core")),
                key_passphrase: Some(s("canary-passphrase-55aa")),
                host_key_fingerprint: Some("ssh-ed25519 SHA256:abc".into()),
            }),
            http: Some(HttpProtocol {
                port: 443,
                tls: true,
                token: Some(s("canary-token-1234")),
            }),
            onvif: Some(OnvifProtocol {
                port: 8080,
                username: "cam".into(),
                password: Some(s("canary-onvif-99")),
            }),
        }),
        Record::Diagram(Diagram {
            name: "core".into(),
            folder: "dc1".into(),
            nodes: vec![
                DiagramNode {
                    id: "a".into(),
                    host_id: Some("h1".into()),
                    label: Some("sw1".into()),
                },
                DiagramNode {
                    id: "b".into(),
                    host_id: None,
                    label: Some("internet".into()),
                },
            ],
            links: vec![DiagramLink {
                from: "a".into(),
                to: "b".into(),
                label: Some("Gi0/1".into()),
            }],
        }),
        Record::Procedure(Procedure {
            name: "reload-check".into(),
            folder: "runbooks".into(),
            parameters: vec![Parameter {
                name: "host".into(),
                description: "target".into(),
                default: Some("core-sw1".into()),
            }],
            body: s(CANARY_BODY),
            read_only: true,
        }),
        Record::ProcedureRun(ProcedureRun {
            procedure_id: "p1".into(),
            started_ms: 1,
            who: "alice".into(),
            outcome: RunOutcome::Succeeded,
            arguments: vec![RunArgument {
                name: "host".into(),
                value: "canary-arg-77".into(),
            }],
            messages: vec![RunMessage {
                role: "user".into(),
                text: "canary-msg-88".into(),
            }],
            tool_calls: vec![ToolCallSummary {
                tool: "exec".into(),
                host: "core-sw1".into(),
                summary: "canary-tool-99".into(),
            }],
            output: "canary-output-66".into(),
        }),
        Record::Memory(Memory {
            title: "quirks".into(),
            folder: "notes".into(),
            body: s("canary-memory-44"),
            host_ids: vec!["h1".into()],
        }),
        Record::Connector(Connector {
            name: "netbox".into(),
            folder: "".into(),
            kind: ConnectorKind::Rest,
            base_url: "https://netbox.example.net/api".into(),
            auth: ConnectorAuth::ApiKeyHeader {
                header: "X-Api-Key".into(),
                key: s("canary-apikey-33"),
            },
            default_headers: vec![Header {
                name: "Accept".into(),
                value: "application/json".into(),
            }],
        }),
        Record::McpServer(McpServer {
            name: "tickets".into(),
            folder: "".into(),
            transport: McpTransport::Http {
                url: "https://mcp.example.net/".into(),
            },
            auth: McpAuth {
                token: Some(s("canary-mcp-token-22")),
                keys: vec![SecretHeader {
                    name: "API_KEY".into(),
                    value: s("canary-mcp-key-11"),
                }],
                headers: vec![SecretHeader {
                    name: "X-Auth".into(),
                    value: s("canary-mcp-hdr-00"),
                }],
            },
        }),
        Record::KeychainPointer(KeychainPointer {
            name: "core-sw1".into(),
            folder: "".into(),
            secret_kind: "password".into(),
            created_ms: 1,
            rotated_ms: 2,
        }),
        Record::Settings(crate::settings::Settings {
            tier_models: vec![crate::settings::TierModel {
                org: "org1".into(),
                tier: crate::settings::Tier::Fast,
                model: "small-model".into(),
            }],
            ..Default::default()
        }),
    ]
}

/// The samples an organization can hold (settings are private only).
fn org_samples() -> Vec<Record> {
    samples()
        .into_iter()
        .filter(|r| r.kind() != Kind::Settings)
        .collect()
}

fn canaries() -> Vec<&'static str> {
    vec![
        CANARY_PW,
        CANARY_BODY,
        "canary-passphrase-55aa",
        "canary-token-1234",
        "canary-onvif-99",
        "canary-arg-77",
        "canary-msg-88",
        "canary-tool-99",
        "canary-output-66",
        "canary-memory-44",
        "canary-apikey-33",
        "canary-mcp-token-22",
        "canary-mcp-key-11",
        "canary-mcp-hdr-00",
        "/home/n/.ssh/id_core",
    ]
}

fn org() -> KeyScope {
    KeyScope::Org("org1".into())
}

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let st = Store::open(&d.path().join("records.sqlite")).unwrap();
    (d, st)
}

#[test]
fn every_field_of_every_kind_is_classified_and_every_row_exists() {
    let samples = samples();
    assert_eq!(
        samples
            .iter()
            .map(Record::kind)
            .collect::<BTreeSet<_>>()
            .len(),
        Kind::ALL.len(),
        "a sample of every kind"
    );
    let mut seen = BTreeSet::new();
    for r in &samples {
        let split =
            fields::flatten(r.kind(), r.to_value().unwrap()).unwrap_or_else(|e| panic!("{e}"));
        for f in split.plain.keys().chain(split.sealed.keys()) {
            seen.insert((r.kind(), f.clone()));
        }
    }
    let rows: BTreeSet<_> = TABLE
        .iter()
        .map(|r| (r.kind, r.field.to_string()))
        .collect();
    assert_eq!(rows.len(), TABLE.len(), "duplicate rows in the table");
    let stale: Vec<_> = rows.difference(&seen).collect();
    assert!(stale.is_empty(), "table rows no record has: {stale:?}");
    // Binding fields are plaintext fields of the same kind.
    for r in TABLE {
        if let Class::Sealed { bound_to } = r.class {
            for b in bound_to {
                let br = fields::rule(r.kind, b).unwrap_or_else(|| panic!("{b} not in table"));
                assert_eq!(br.class, Class::Plain, "{} binds to sealed {b}", r.field);
            }
        }
    }
}

#[test]
fn an_unclassified_field_is_refused() {
    let mut v = samples()[0].to_value().unwrap();
    v["ssh"]["new_secret"] = serde_json::json!("x");
    match fields::flatten(Kind::Host, v) {
        Err(RecordError::Unclassified { kind, field }) => {
            assert_eq!((kind, field.as_str()), (Kind::Host, "ssh.new_secret"))
        }
        other => panic!("{other:?}"),
    }
}

/// The broker recomputes a service auth's binding from the plaintext field
/// its own table names: that table must be this one.
#[test]
fn the_brokers_service_auth_bindings_are_the_field_tables() {
    for (kind, bound) in gatehouse_broker::service_auth::SERVICE_KINDS {
        let kind: Kind = kind.parse().unwrap();
        let Class::Sealed { bound_to } = fields::rule(kind, "auth").unwrap().class else {
            panic!("{kind} auth is not sealed");
        };
        assert_eq!(bound_to, [*bound], "{kind}");
    }
    let kinds: Vec<&str> = gatehouse_broker::service_auth::SERVICE_KINDS
        .iter()
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(kinds, [Kind::Connector.as_str(), Kind::McpServer.as_str()]);
}

#[test]
fn the_policy_the_issue_states() {
    let sealed =
        |k: Kind, f: &str| matches!(fields::rule(k, f).unwrap().class, Class::Sealed { .. });
    for f in [
        "ssh.password",
        "ssh.private_key_path",
        "ssh.key_passphrase",
        "http.token",
        "onvif.password",
    ] {
        assert!(sealed(Kind::Host, f), "{f}");
        if f.starts_with("ssh.") {
            let Class::Sealed { bound_to } = fields::rule(Kind::Host, f).unwrap().class else {
                unreachable!()
            };
            assert_eq!(
                bound_to,
                [
                    "address",
                    "port",
                    "ssh.username",
                    "ssh.host_key_fingerprint"
                ]
            );
        }
    }
    for f in [
        "name",
        "folder",
        "address",
        "port",
        "tags",
        "vendor",
        "ssh.username",
    ] {
        assert!(!sealed(Kind::Host, f), "{f}");
    }
    assert!(sealed(Kind::Connector, "auth") && sealed(Kind::McpServer, "auth"));
    assert!(sealed(Kind::Procedure, "body") && sealed(Kind::Memory, "body"));
    for f in ["arguments", "messages", "tool_calls", "output"] {
        assert!(sealed(Kind::ProcedureRun, f));
    }
    assert!(fields::rules_of(Kind::KeychainPointer).all(|r| r.class == Class::Plain));
}

#[test]
fn each_kind_round_trips_through_a_reopened_store_and_no_secret_is_on_disk() {
    let (d, mut st) = store();
    let mut sealer = TestSealer::default();
    let mut ids = Vec::new();
    for (i, r) in samples().into_iter().enumerate() {
        // Settings are private only.
        let scope = if i % 2 == 0 && r.kind() != Kind::Settings {
            org()
        } else {
            KeyScope::Private
        };
        let m = st
            .create(&mut sealer, "alice", scope.clone(), r.clone())
            .unwrap();
        assert_eq!(
            (m.revision, m.scope.clone(), m.owner.as_str()),
            (1, scope, "alice")
        );
        ids.push((m, r));
    }
    drop(st);
    let st = Store::open(&d.path().join("records.sqlite")).unwrap();
    for (m, r) in &ids {
        let stored = st.get(m.kind, &m.id).unwrap();
        let o = Store::open_record(&mut sealer, &stored).unwrap();
        assert_eq!(&o.record, r);
        assert_eq!(&o.meta, m);
    }
    drop(st);
    let mut raw = Vec::new();
    for f in ["records.sqlite", "records.sqlite-wal"] {
        if let Ok(b) = std::fs::read(d.path().join(f)) {
            raw.extend(b);
        }
    }
    assert!(raw.len() > 4096);
    for c in canaries() {
        assert!(
            !raw.windows(c.len()).any(|w| w == c.as_bytes()),
            "{c} found in the database file"
        );
    }
    // …while plaintext fields are there, for listing.
    assert!(raw.windows(8).any(|w| w == b"10.0.0.1"));
}

fn raw_conn(d: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(d.path().join("records.sqlite")).unwrap()
}

#[test]
fn an_address_edited_without_the_key_is_reported_tampered_and_the_password_does_not_open() {
    let (d, mut st) = store();
    let mut sealer = TestSealer::default();
    let m = st
        .create(&mut sealer, "alice", org(), samples().remove(0))
        .unwrap();
    let c = raw_conn(&d);
    let plain: String = c
        .query_row("SELECT plain FROM records WHERE id = ?1", [&m.id], |r| {
            r.get(0)
        })
        .unwrap();
    c.execute(
        "UPDATE records SET plain = ?1 WHERE id = ?2",
        [plain.replace("10.0.0.1", "203.0.113.66"), m.id.clone()],
    )
    .unwrap();
    let stored = st.get(Kind::Host, &m.id).unwrap();
    match Store::open_record(&mut sealer, &stored) {
        Err(RecordError::Tampered { kind, id, fields }) => {
            assert_eq!((kind, id), (Kind::Host, m.id.clone()));
            let names: Vec<_> = fields.iter().map(|(f, _)| f.as_str()).collect();
            // Every secret bound to the address no longer opens; the rest still would.
            assert!(names.contains(&"ssh.password"), "{names:?}");
            assert!(names.contains(&"http.token") && names.contains(&"onvif.password"));
            let e = Store::open_record(&mut sealer, &stored)
                .unwrap_err()
                .to_string();
            assert!(e.contains("was modified without the key (tampered)"), "{e}");
            assert!(e.contains("field ssh.password does not open"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Listing still shows it (plaintext, no broker): the change is not hidden.
    let l = st.list(&Filter::kind(Kind::Host)).unwrap();
    assert_eq!(l[0].str_field("address"), Some("203.0.113.66"));
}

#[test]
fn a_ciphertext_copied_to_another_record_fails_naming_record_and_field() {
    let (d, mut st) = store();
    let mut sealer = TestSealer::default();
    let mut h2 = samples().remove(0);
    if let Record::Host(h) = &mut h2 {
        h.name = "core-sw2".into();
    }
    let a = st
        .create(&mut sealer, "alice", org(), samples().remove(0))
        .unwrap();
    let b = st.create(&mut sealer, "alice", org(), h2).unwrap();
    let c = raw_conn(&d);
    c.execute(
        "UPDATE sealed_fields SET ciphertext = (SELECT ciphertext FROM sealed_fields WHERE id = ?1 AND field = 'ssh.password') WHERE id = ?2 AND field = 'ssh.password'",
        [&a.id, &b.id],
    )
    .unwrap();
    let e = Store::open_record(&mut sealer, &st.get(Kind::Host, &b.id).unwrap()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&format!("record host/{}", b.id)), "{msg}");
    assert!(msg.contains("field ssh.password does not open"), "{msg}");
    match e {
        RecordError::Tampered { fields, .. } => {
            assert_eq!(
                fields.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
                ["ssh.password"]
            )
        }
        other => panic!("{other:?}"),
    }
    // The source record is untouched.
    Store::open_record(&mut sealer, &st.get(Kind::Host, &a.id).unwrap()).unwrap();
}

fn count(d: &tempfile::TempDir) -> (i64, i64, i64) {
    let c = raw_conn(d);
    let q = |t: &str| {
        c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    };
    (q("records"), q("sealed_fields"), q("audit"))
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let (d, mut st) = store();
    let mut sealer = TestSealer::default();
    st.create(&mut sealer, "alice", org(), samples().remove(0))
        .unwrap();
    let before = count(&d);
    let host = |f: &dyn Fn(&mut Host)| {
        let Record::Host(mut h) = samples().remove(0) else {
            unreachable!()
        };
        h.name = "other".into();
        f(&mut h);
        Record::Host(h)
    };
    let cases: Vec<(Record, &str)> = vec![
        (
            host(&|h| h.address = "10.0.0.300".into()),
            "invalid address",
        ),
        (host(&|h| h.address = "bad host!".into()), "invalid address"),
        (host(&|h| h.port = 0), "invalid port"),
        (
            host(&|h| h.name = "core-sw1".into()),
            "invalid name: a host named \"core-sw1\" already exists in folder \"dc1/core\"",
        ),
        (
            host(&|h| h.ssh.as_mut().unwrap().password = Some(Secret::keychain("nope"))),
            "invalid ssh.password: no keychain entry named \"nope\"",
        ),
        (host(&|h| h.tags = vec!["a b".into()]), "invalid tags"),
    ];
    for (r, want) in cases {
        let e = st
            .create(&mut sealer, "alice", org(), r)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(want), "{e} (wanted {want})");
        assert_eq!(count(&d), before, "{want}: something was written");
    }
    assert!(
        "cisco"
            .parse::<Vendor>()
            .unwrap_err()
            .to_string()
            .starts_with("invalid vendor: unknown vendor \"cisco\"")
    );
    assert!(
        crate::validate::parse_port("port", "70000")
            .unwrap_err()
            .to_string()
            .starts_with("invalid port")
    );
    // An existing reference is fine.
    sealer.keychain.push("core-sw1".into());
    st.create(
        &mut sealer,
        "alice",
        org(),
        host(&|h| h.ssh.as_mut().unwrap().password = Some(Secret::keychain("core-sw1"))),
    )
    .unwrap();
    // A record of another org.
    let err = st
        .resolve(
            Kind::Host,
            Some(&KeyScope::Org("org2".into())),
            "dc1/core/core-sw1",
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("belongs to org org1, not org org2"),
        "{err}"
    );
}

#[test]
fn edits_reseal_remac_and_bump_the_revision_and_stale_edits_conflict() {
    let (_d, mut st) = store();
    let mut sealer = TestSealer::default();
    let m = st
        .create(&mut sealer, "alice", org(), samples().remove(0))
        .unwrap();
    let o = Store::open_record(&mut sealer, &st.get(Kind::Host, &m.id).unwrap()).unwrap();
    let Record::Host(mut h) = o.record.clone() else {
        unreachable!()
    };
    h.address = "10.9.9.9".into();
    let m2 = st
        .update(&mut sealer, "bob", &o.meta, Record::Host(h.clone()))
        .unwrap();
    assert_eq!(m2.revision, 2);
    assert_eq!(m2.owner, "alice");
    let o2 = Store::open_record(&mut sealer, &st.get(Kind::Host, &m.id).unwrap()).unwrap();
    assert_eq!(o2.record, Record::Host(h.clone()));
    assert!(matches!(
        st.update(&mut sealer, "bob", &o.meta, Record::Host(h)),
        Err(RecordError::Conflict {
            expected: 1,
            found: 2,
            ..
        })
    ));
    let audit = st.audit(10).unwrap();
    assert_eq!(
        audit
            .iter()
            .map(|a| (a.action.as_str(), a.actor.as_str(), a.revision))
            .collect::<Vec<_>>(),
        [("update", "bob", 2), ("create", "alice", 1)]
    );
    st.remove("bob", &o2.meta).unwrap();
    assert!(matches!(
        st.get(Kind::Host, &m.id),
        Err(RecordError::NotFound { .. })
    ));
    assert_eq!(st.audit(1).unwrap()[0].action, "delete");
}

#[test]
fn listing_filters_plaintext_fields_without_a_sealer() {
    let (_d, mut st) = store();
    let mut sealer = TestSealer::default();
    let mut items = Vec::new();
    for i in 0..50 {
        let Record::Host(mut h) = samples().remove(0) else {
            unreachable!()
        };
        h.name = format!("sw{i}");
        h.folder = if i % 2 == 0 {
            "dc1/core".into()
        } else {
            "dc2".into()
        };
        h.tags = vec![if i % 5 == 0 {
            "edge".into()
        } else {
            "core".into()
        }];
        h.vendor = if i % 10 == 0 {
            Vendor::Junos
        } else {
            Vendor::Ios
        };
        items.push((org(), Record::Host(h)));
    }
    st.create_many(&mut sealer, "alice", items, 7, &mut |_, _| {})
        .unwrap();
    let calls = sealer.calls;
    let n = |f: Filter| {
        st.list(&Filter {
            kind: Some(Kind::Host),
            ..f
        })
        .unwrap()
        .len()
    };
    assert_eq!(n(Filter::default()), 50);
    assert_eq!(
        n(Filter {
            folder: Some("/dc1/".into()),
            ..Filter::default()
        }),
        25
    );
    assert_eq!(
        n(Filter {
            folder: Some("dc1/core".into()),
            ..Filter::default()
        }),
        25
    );
    assert_eq!(
        n(Filter {
            folder: Some("dc1/co".into()),
            ..Filter::default()
        }),
        0
    );
    assert_eq!(
        n(Filter {
            tag: Some("edge".into()),
            ..Filter::default()
        }),
        10
    );
    assert_eq!(
        n(Filter {
            vendor: Some("junos".into()),
            ..Filter::default()
        }),
        5
    );
    assert_eq!(
        n(Filter {
            text: Some("SW4".into()),
            ..Filter::default()
        }),
        11
    );
    assert_eq!(
        n(Filter {
            text: Some(CANARY_PW.into()),
            ..Filter::default()
        }),
        0
    );
    assert_eq!(
        n(Filter {
            scope: Some(KeyScope::Private),
            ..Filter::default()
        }),
        0
    );
    assert_eq!(sealer.calls, calls, "listing called the sealer");
}

#[test]
fn batches_open_in_one_call_and_report_each_bad_record() {
    let (d, mut st) = store();
    let mut sealer = TestSealer::default();
    let items = (0..20)
        .map(|i| {
            let Record::Host(mut h) = samples().remove(0) else {
                unreachable!()
            };
            h.name = format!("sw{i}");
            (org(), Record::Host(h))
        })
        .collect();
    let metas = st
        .create_many(&mut sealer, "alice", items, 100, &mut |_, _| {})
        .unwrap();
    raw_conn(&d)
        .execute(
            "UPDATE records SET owner = 'mallory' WHERE id = ?1",
            [&metas[3].id],
        )
        .unwrap();
    let stored = st.load(&Filter::kind(Kind::Host)).unwrap();
    let before = sealer.calls;
    let res = Store::open_many(&mut sealer, &stored).unwrap();
    assert_eq!(res.iter().filter(|r| r.is_ok()).count(), 19);
    let bad: Vec<_> = res.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        matches!(bad[0], RecordError::Tampered { id, fields, .. } if id == &metas[3].id && fields.is_empty())
    );
    // verify + open + per-field diagnosis of the one bad record (4 sealed fields).
    assert_eq!(sealer.calls - before, 2 + 5);
}

#[test]
fn bundles_round_trip_and_refuse_other_orgs() {
    let (_d, mut st) = store();
    let mut sealer = TestSealer::default();
    for r in org_samples() {
        st.create(&mut sealer, "alice", org(), r).unwrap();
    }
    st.create(&mut sealer, "alice", KeyScope::Private, samples().remove(2))
        .unwrap();
    let file = bundle::export_org(&st, &mut sealer, "org1").unwrap();
    assert_eq!(file.count, org_samples().len());
    let text = serde_json::to_string(&file).unwrap();
    assert!(!text.contains(CANARY_PW) && !text.contains("core-sw1"));

    let (_d2, mut st2) = store();
    let rep = bundle::import(&mut st2, &mut sealer, "bob", &file, &["org1".into()]).unwrap();
    assert_eq!(rep.created.len(), org_samples().len());
    let again = bundle::import(&mut st2, &mut sealer, "bob", &file, &["org1".into()]).unwrap();
    assert_eq!(
        (again.created.len(), again.skipped.len()),
        (0, org_samples().len())
    );
    for s in st2.load(&Filter::default()).unwrap() {
        let o = Store::open_record(&mut sealer, &s).unwrap();
        assert!(samples().contains(&o.record));
        assert_eq!(o.meta.owner, "alice");
    }
    let e = bundle::import(&mut st2, &mut sealer, "bob", &file, &["org2".into()]).unwrap_err();
    assert!(e.to_string().contains("not a member"), "{e}");
    let mut moved = file.clone();
    moved.count += 1;
    assert!(bundle::import(&mut st2, &mut sealer, "bob", &moved, &["org1".into()]).is_err());
}

#[test]
fn schema_is_versioned_and_a_newer_one_is_refused() {
    let (d, st) = store();
    assert_eq!(st.schema_version().unwrap(), crate::store::SCHEMA_VERSION);
    drop(st);
    raw_conn(&d)
        .execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    assert!(matches!(
        Store::open(&d.path().join("records.sqlite")),
        Err(RecordError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn secrets_never_show_in_debug() {
    let r = samples().remove(0);
    let dbg = format!("{r:?}");
    assert!(
        !dbg.contains(CANARY_PW) && dbg.contains("Secret(••••)"),
        "{dbg}"
    );
    assert_eq!(format!("{:?}", Secret::keychain("x")), "Secret(keychain:x)");
}

#[test]
fn addresses_ports_urls_and_folders() {
    use crate::validate::*;
    for ok in [
        "10.0.0.1",
        "::1",
        "fe80::1",
        "core-sw1",
        "core-sw1.dc1.example.net",
        "sw_1",
        "host.",
    ] {
        check_address("address", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "",
        "10.0.0.256",
        "1.2.3",
        "-sw",
        "sw-",
        "a..b",
        "bad host",
        "sw1/x",
        &"a".repeat(64),
    ] {
        let e = check_address("address", bad).unwrap_err().to_string();
        assert!(e.starts_with("invalid address:"), "{bad}: {e}");
    }
    assert_eq!(parse_port("port", " 22 ").unwrap(), 22);
    for bad in ["0", "65536", "-1", "ssh", ""] {
        assert!(parse_port("port", bad).is_err(), "{bad}");
    }
    for ok in [
        "https://a.example/x?y",
        "http://10.0.0.1:8080/",
        "https://user@[::1]:443/",
    ] {
        check_url("base_url", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["ftp://a", "https://", "https://a:0/", "https://bad host/"] {
        assert!(check_url("base_url", bad).is_err(), "{bad}");
    }
    assert_eq!(normalize_folder("//dc1//core/").unwrap(), "dc1/core");
    assert!(normalize_folder("dc1/../x").is_err());
}

#[test]
fn the_database_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (d, _st) = store();
    let mode = std::fs::metadata(d.path().join("records.sqlite"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn the_decrypted_cache_is_dropped_on_sign_out_and_by_revision() {
    use crate::cache::OpenedCache;
    use gatehouse_ipc::broker::BrokerEvent;
    let (_d, mut st) = store();
    let mut sealer = TestSealer::default();
    let m = st
        .create(&mut sealer, "alice", org(), samples().remove(0))
        .unwrap();
    let mut cache = OpenedCache::new();
    cache.put(Store::open_record(&mut sealer, &st.get(Kind::Host, &m.id).unwrap()).unwrap());
    assert!(cache.get(Kind::Host, &m.id, 1).is_some());
    assert!(cache.get(Kind::Host, &m.id, 2).is_none(), "stale revision");
    assert!(!cache.on_event(&BrokerEvent::SignedIn));
    assert!(cache.on_event(&BrokerEvent::SignedOut));
    assert!(cache.is_empty());
}

#[test]
fn a_name_index_edited_without_the_key_cannot_redirect_lookups() {
    let (d, mut st) = store();
    let mut sealer = TestSealer::default();
    let m = st
        .create(&mut sealer, "alice", org(), samples().remove(0))
        .unwrap();
    raw_conn(&d)
        .execute("UPDATE records SET name = 'decoy' WHERE id = ?1", [&m.id])
        .unwrap();
    let e = st.resolve(Kind::Host, None, "decoy").unwrap_err();
    assert!(matches!(e, RecordError::IndexMismatch { .. }), "{e}");
    assert!(e.to_string().contains("tampered"));
}

#[test]
fn settings_are_one_private_record_checked_on_write() {
    use crate::settings::{self, Key, Settings};
    let (_d, mut st) = store();
    let mut sealer = TestSealer::default();
    // Nothing stored: defaults.
    let (s0, meta) = settings::load(&st, &mut sealer).unwrap();
    assert_eq!(s0, Settings::default());
    assert!(meta.is_none());
    let mut s = s0.clone();
    s.set(Key::Theme, None, "light").unwrap();
    s.set(
        Key::TierModel(settings::Tier::Best),
        Some("org1"),
        "big-model",
    )
    .unwrap();
    s.set(Key::ClearsRecordings, None, "true").unwrap();
    // Bad values change nothing and name the setting.
    for (k, v) in [
        (Key::FontSize, "7"),
        (Key::Theme, "purple"),
        (Key::DefaultTier, "cheap"),
        (Key::ClearsDecryptedCache, "false"),
        (Key::CopilotTrust, "yolo"),
    ] {
        let before = s.clone();
        let e = s.set(k, None, v).unwrap_err().to_string();
        assert!(e.contains(k.as_str()), "{e}");
        assert_eq!(s, before);
    }
    assert!(
        s.set(Key::TierModel(settings::Tier::Fast), None, "m")
            .unwrap_err()
            .to_string()
            .contains("--org")
    );
    let m = settings::save(&mut st, &mut sealer, "alice", None, s.clone()).unwrap();
    let (back, meta) = settings::load(&st, &mut sealer).unwrap();
    assert_eq!(back, s);
    assert_eq!(
        back.model_for("org1", Some(settings::Tier::Best)),
        Some("big-model")
    );
    assert_eq!(
        back.model_for("org1", None),
        None,
        "default tier is balanced"
    );
    assert_eq!(meta.as_ref().map(|m| m.id.clone()), Some(m.id.clone()));
    // A second settings record, or one in an organization, is refused.
    let e = st
        .create(
            &mut sealer,
            "alice",
            org(),
            Record::Settings(Settings::default()),
        )
        .unwrap_err();
    assert!(e.to_string().contains("private"), "{e}");
    assert!(
        st.create(
            &mut sealer,
            "alice",
            KeyScope::Private,
            Record::Settings(Settings::default())
        )
        .is_err()
    );
    // A stale write conflicts.
    let mut newer = back.clone();
    newer.font_size = 16;
    settings::save(&mut st, &mut sealer, "alice", meta.as_ref(), newer).unwrap();
    assert!(settings::save(&mut st, &mut sealer, "alice", meta.as_ref(), back).is_err());
    // Tampered plaintext does not load as verified settings.
    rusqlite::Connection::open(st.path())
        .unwrap()
        .execute(
            "UPDATE records SET plain = replace(plain, '\"light\"', '\"dark\"') WHERE kind = 'settings'",
            [],
        )
        .unwrap();
    assert!(settings::load(&st, &mut sealer).is_err());
    assert_eq!(
        settings::unverified(&st).unwrap().theme,
        settings::Theme::Dark
    );
}

#[test]
fn host_names_that_cannot_be_host_names_are_refused_and_names_ignore_case() {
    let (_d, mut st) = store();
    let mut sealer = TestSealer::default();
    let host = |name: &str| {
        let Record::Host(mut h) = samples().remove(0) else {
            unreachable!()
        };
        h.name = name.into();
        h.folder = "lab".into();
        Record::Host(h)
    };
    for bad in ["#", "#core", "42", "r1,", "a,b", "core sw1"] {
        let e = st
            .create(&mut sealer, "alice", org(), host(bad))
            .unwrap_err();
        assert!(
            matches!(&e, RecordError::Invalid { field, .. } if field == "name"),
            "{bad:?}: {e}"
        );
    }
    st.create(&mut sealer, "alice", org(), host("R1")).unwrap();
    let e = st
        .create(&mut sealer, "alice", org(), host("r1"))
        .unwrap_err();
    assert!(matches!(e, RecordError::Duplicate { .. }), "{e}");
    // Another folder is another namespace.
    let Record::Host(mut h) = host("r1") else {
        unreachable!()
    };
    h.folder = "other".into();
    st.create(&mut sealer, "alice", org(), Record::Host(h))
        .unwrap();
}
