//! The broker service: checks the role table, then dispatches each request
//! to the vault or the approvals book.
//!
//! Owns the order of checks for every request (role first, then state) and
//! the event stream. Must never: run an operation before the role check, or
//! reply with a key.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{
    Action, ApprovalError, Broker, BrokerError, BrokerEvent, BrokerRequest, BrokerResponse,
    BrokerStatus, Hardening, Requester, SealedBytes,
};
use gatehouse_ipc::server::{Events, Handler};
use gatehouse_ipc::{PeerIdentity, PeerRole};
use sha2::Digest as _;
use tokio::sync::broadcast;

use crate::approvals::Approvals;
use crate::audit::{CredentialAudit, RefusalAudit};
use crate::autopilot::{AutoDecision, Grants};
use crate::copilot_records;
use crate::destinations::DestinationBindings;
use crate::host_credentials;
use crate::host_credentials::KeychainUse;
use crate::org_policies::OrgPolicies;
use crate::presence::ShellTickets;
use crate::redact::Redactor;
use crate::roles;
use crate::vault::{Vault, now_ms};

pub struct State {
    pub vault: Vault,
    pub approvals: Approvals,
    pub redactor: Redactor,
    pub autopilot: Grants,
    pub audit: CredentialAudit,
    /// Session audit rows for approval requests refused before running.
    pub refusals: RefusalAudit,
    /// The destinations each keychain entry used as a host credential may go to.
    pub destinations: DestinationBindings,
    /// The org policies (crate::org_policies): Autopilot, presence, MCP classes.
    pub org_policies: OrgPolicies,
    /// Tickets for interactive shells opened from the CLI (crate::presence).
    pub shell_tickets: ShellTickets,
}

/// Where the broker keeps and reads things besides its vault.
pub struct BrokerDirs {
    /// The vault and the used-nonce log (the broker's alone).
    pub state: PathBuf,
    /// `<data>/audit/credentials.jsonl` (appended).
    pub credential_log: PathBuf,
    /// `<data>/audit/sessions.jsonl` (appended: refused approval requests).
    pub session_log: PathBuf,
    /// The privilege boundary's group-only directory of this user and
    /// profile (`None` in a development build): remembered unlock material.
    pub group_state: Option<PathBuf>,
    /// The `gatehouse` group's gid when the boundary is on.
    pub boundary_group: Option<u32>,
    /// The TPM remembered unlock material is sealed to (crate::tpm).
    pub tpm: Option<crate::tpm::TpmPath>,
}

pub struct BrokerService {
    state: Mutex<State>,
    events: broadcast::Sender<BrokerEvent>,
    hardening: Hardening,
    install_dir: String,
    boundary_group: Option<u32>,
}

impl BrokerService {
    pub fn new(
        state: State,
        hardening: Hardening,
        install_dir: String,
        boundary_group: Option<u32>,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(256);
        Arc::new(BrokerService {
            state: Mutex::new(state),
            events,
            hardening,
            install_dir,
            boundary_group,
        })
    }

    /// Opens the broker's state in `state_dir` (account, used-nonce log),
    /// unlocks it if this device was remembered, and builds the service.
    pub fn open(
        dirs: BrokerDirs,
        keychain: crate::keychain::Keychain,
        token_ttl_ms: u64,
        hardening: Hardening,
        install_dir: String,
    ) -> Result<Arc<Self>, String> {
        let state_dir = dirs.state.as_path();
        let mut vault = Vault::open(state_dir, keychain).map_err(|e| format!("vault: {e}"))?;
        let remember = match &dirs.group_state {
            Some(dir) => crate::remembered::RememberStore::in_group_dir(dir),
            None => crate::remembered::RememberStore::keychain(),
        };
        // Sealed to the TPM when there is one (GATEHOUSE_TPM, or /dev/tpmrm0).
        vault.set_remember_store(remember.sealed_to(dirs.tpm.clone()));
        match vault.sign_in_remembered() {
            Ok(true) => tracing::info!("signed in with remembered device unlock"),
            Ok(false) => {}
            Err(e) => tracing::warn!("remembered unlock failed: {e}"),
        }
        let approvals = Approvals::open(state_dir.join("used-nonces.log"), token_ttl_ms)
            .map_err(|e| format!("nonce log: {e}"))?;
        // Group-only with the boundary on: the user cannot add a destination by editing it.
        let destinations = DestinationBindings::open(
            dirs.group_state
                .as_deref()
                .unwrap_or(state_dir)
                .join("destinations.json"),
        )?;
        // Group-only with the boundary on: the user cannot lift a block by editing it.
        let org_policies = OrgPolicies::open(dirs.group_state.as_deref().unwrap_or(state_dir))?;
        Ok(Self::new(
            State {
                vault,
                approvals,
                redactor: Redactor::default(),
                autopilot: Grants::default(),
                audit: CredentialAudit::new(dirs.credential_log),
                refusals: RefusalAudit::new(dirs.session_log),
                destinations,
                org_policies,
                shell_tickets: ShellTickets::default(),
            },
            hardening,
            install_dir,
            dirs.boundary_group,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock would poison it; the state is still
        // consistent (every mutation completes before it is visible), so keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why deciding request `id` needs proof of presence, if it does: with
    /// the privilege boundary on, every approve or edit from the CLI (any
    /// program running as the user can run the CLI) and every dangerous
    /// one (a window can be driven by synthetic input). A rejection needs
    /// none: it cannot make anything run. In a development build (boundary
    /// off) nothing is asked: any same-uid program can take any role there.
    fn presence_needed(
        &self,
        st: &mut State,
        id: u64,
        role: PeerRole,
        decision: &gatehouse_ipc::broker::Decision,
    ) -> Option<String> {
        self.boundary_group?;
        if matches!(decision, gatehouse_ipc::broker::Decision::Reject { .. }) {
            return None;
        }
        let class = st.approvals.show(id).ok().map(|v| v.class);
        if class.as_deref() == Some("dangerous") {
            return Some("a dangerous request".into());
        }
        (role == PeerRole::Cli).then(|| "a decision made from the CLI".into())
    }

    /// Whether the org policy of `scope` asks presence for a shell opened
    /// from the CLI (`connect_needs_presence`). A policy that cannot be read
    /// asks for it: the safe side.
    fn shell_needs_presence(&self, st: &State, scope: &gatehouse_ipc::broker::KeyScope) -> bool {
        let Some(org) = crate::presence::org_of(scope) else {
            return false;
        };
        st.org_policies
            .get(org)
            .map(|p| p.connect_needs_presence)
            .unwrap_or(true)
    }

    /// The shell check in front of a credential use for an interactive
    /// shell (crate::presence): a ticket when the org asks for presence.
    fn check_shell(
        &self,
        st: &mut State,
        host: &gatehouse_ipc::broker::HostCredential,
    ) -> Result<(), BrokerError> {
        if host.shell.is_none() {
            return Ok(());
        }
        let needs = self.shell_needs_presence(st, &host.record.item.scope);
        st.shell_tickets.check(host, needs, now_ms())
    }

    fn status(&self, st: &State, peer: &PeerIdentity) -> BrokerStatus {
        BrokerStatus {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            uid: nix::unistd::getuid().as_raw(),
            hardening: Hardening {
                secret_memory: st.vault.memory_kind(),
                ..self.hardening.clone()
            },
            keychain_backend: st.vault.keychain.backend().name().into(),
            keychain_warning: st.vault.keychain.backend().warning().map(str::to_string),
            account_initialized: st.vault.initialized(),
            signed_in: st.vault.signed_in(),
            remembered_device: st.vault.remembered(),
            orgs: st.vault.org_count(),
            pending_approvals: st.approvals.pending_count(),
            autopilot_tasks: st.autopilot.running(now_ms()),
            cached_secrets: st.vault.cache.len(),
            peer_pidfd: peer.pidfd_pinned,
            install_dir: self.install_dir.clone(),
            boundary_group: self.boundary_group,
            remembered_at: st.vault.remembered().then(|| {
                st.vault
                    .remember_store()
                    .describe_stored(&st.vault.keychain)
            }),
            tpm: st.vault.remember_store().tpm.as_ref().map(|t| t.describe()),
        }
    }

    /// Checks the role table, then runs `req` for `peer` (what `handle` runs
    /// on a blocking thread; public for the socket-free fuzz entry point).
    pub fn dispatch(
        &self,
        peer: &PeerIdentity,
        req: BrokerRequest,
    ) -> Result<BrokerResponse, BrokerError> {
        let op = req.operation();
        if !roles::allowed(peer.role, op) {
            return Err(BrokerError::Forbidden {
                role: peer.role,
                operation: op,
            });
        }
        let me = Requester {
            role: peer.role,
            pid: peer.pid,
            exe: peer.exe.display().to_string(),
        };
        let mut st = self.lock();
        let st = &mut *st;
        let result = self.dispatch_in(st, peer, me, op, req);
        // Every request that ended without running (here or by expiry) is audited.
        st.approvals.expire();
        for (view, reason) in st.approvals.take_refused() {
            st.refusals.refused(&st.vault, &view, reason);
        }
        result
    }

    /// [`Self::dispatch`] once allowed, under the state lock.
    fn dispatch_in(
        &self,
        st: &mut State,
        peer: &PeerIdentity,
        me: Requester,
        op: gatehouse_ipc::broker::Operation,
        req: BrokerRequest,
    ) -> Result<BrokerResponse, BrokerError> {
        match req {
            BrokerRequest::Status => Ok(BrokerResponse::Status(Box::new(self.status(st, peer)))),
            BrokerRequest::AccountInit { passphrase } => {
                st.vault.init(passphrase.expose())?;
                let _ = self.events.send(BrokerEvent::SignedIn);
                Ok(BrokerResponse::Done)
            }
            BrokerRequest::SignIn {
                passphrase,
                remember_device,
            } => {
                st.vault.sign_in(passphrase.expose(), remember_device)?;
                let _ = self.events.send(BrokerEvent::SignedIn);
                Ok(BrokerResponse::SignedIn {
                    orgs: st.vault.org_count(),
                    keychain_entries: st.vault.keychain_list().map(|l| l.len()).unwrap_or(0),
                })
            }
            BrokerRequest::SignOut => {
                let mut report = st.vault.sign_out();
                st.redactor.clear();
                st.autopilot.clear();
                report.daemons_notified = self.events.send(BrokerEvent::SignedOut).unwrap_or(0);
                Ok(BrokerResponse::SignedOut(report))
            }
            BrokerRequest::OrgCreate { name } => {
                Ok(BrokerResponse::Org(st.vault.create_org(&name)?))
            }
            BrokerRequest::OrgList => Ok(BrokerResponse::Orgs(st.vault.orgs()?)),
            BrokerRequest::KeychainSet {
                name,
                kind,
                payload,
            } => {
                st.vault.keychain_set(&name, kind, payload.expose())?;
                Ok(BrokerResponse::Done)
            }
            BrokerRequest::KeychainList => Ok(BrokerResponse::Keychain(st.vault.keychain_list()?)),
            BrokerRequest::KeychainRemove { name } => {
                st.vault.keychain_remove(&name)?;
                st.destinations.forget(&name)?;
                Ok(BrokerResponse::Done)
            }
            BrokerRequest::KeychainBind {
                name,
                destination,
                presence,
            } => {
                if !st.vault.keychain_list()?.iter().any(|e| e.name == name) {
                    return Err(BrokerError::KeychainNotFound(name));
                }
                st.vault.verify_presence(presence.expose())?;
                st.destinations.bind(&name, &destination)?;
                Ok(BrokerResponse::Done)
            }
            BrokerRequest::AccountSecretKey { presence } => {
                let shown = st.vault.secret_key(presence.expose())?;
                Ok(BrokerResponse::SecretKey(SecretBytes::copy_from(
                    shown.as_bytes(),
                )))
            }
            BrokerRequest::OrgPolicyGet { org } => {
                let policy = st
                    .org_policies
                    .get(&org)
                    .map_err(|reason| BrokerError::Invalid {
                        what: format!("the policy of organization {org}"),
                        reason,
                    })?;
                let json = serde_json::to_string(&policy)
                    .map_err(|e| BrokerError::Internal(format!("org policy: {e}")))?;
                Ok(BrokerResponse::OrgPolicy(json))
            }
            // Audited, refused or not: a policy change lifts or adds blocks.
            BrokerRequest::OrgPolicySet {
                org,
                policy,
                presence,
            } => {
                let digest: String = sha2::Sha256::digest(policy.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let result = st
                    .vault
                    .verify_presence(presence.expose())
                    .and_then(|()| st.org_policies.set(&org, &policy));
                st.audit.audited(
                    op,
                    &me,
                    format!("org-policy/{org}"),
                    format!("policy sha256 {digest}"),
                    result,
                )?;
                Ok(BrokerResponse::Done)
            }
            BrokerRequest::SyncCard { account } => {
                Ok(BrokerResponse::Card(st.vault.sync_card(&account)?))
            }
            BrokerRequest::SyncSignChallenge { challenge } => Ok(BrokerResponse::Signature(
                crate::sync_signing::sign_challenge(&mut st.vault, &challenge)?,
            )),
            BrokerRequest::SyncSignWrite { record, write } => Ok(BrokerResponse::Signature(
                crate::sync_signing::sign_write(&mut st.vault, &record, &write)?,
            )),
            BrokerRequest::SyncKeyBundle { presence } => Ok(BrokerResponse::KeyBundle(Box::new(
                st.vault.key_bundle(presence.expose())?,
            ))),
            BrokerRequest::BundleVerifier {
                account,
                kdf,
                passphrase,
                secret_key,
            } => Ok(BrokerResponse::Verifier(crate::vault::bundle_verifier(
                &account,
                &kdf,
                passphrase.expose(),
                secret_key.expose(),
            )?)),
            BrokerRequest::AccountFromBundle {
                account,
                kdf,
                passphrase,
                secret_key,
                bundle,
            } => {
                st.vault.restore_from_bundle(
                    &account,
                    &kdf,
                    passphrase.expose(),
                    secret_key.expose(),
                    &bundle,
                )?;
                let _ = self.events.send(BrokerEvent::SignedIn);
                Ok(BrokerResponse::SignedIn {
                    orgs: st.vault.org_count(),
                    keychain_entries: st.vault.keychain_list().map(|l| l.len()).unwrap_or(0),
                })
            }
            BrokerRequest::SealFields { items } => {
                let sealed = items
                    .iter()
                    .map(|i| {
                        st.vault
                            .seal_field(&i.address, i.plaintext.expose())
                            .map(SealedBytes)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(BrokerResponse::Sealed(sealed))
            }
            // Every opened field is audited (a reveal in the UI, `host show
            // --reveal`, an edit): its row is on disk before the value leaves.
            BrokerRequest::OpenFields { items } => {
                let result = items
                    .iter()
                    .map(|i| {
                        st.vault
                            .open_field(&i.address, &i.sealed)
                            .map(|p| SecretBytes::copy_from(&p))
                    })
                    .collect::<Result<Vec<_>, _>>();
                let credentials = items.iter().map(|i| i.address.to_string()).collect();
                let destination = format!("shown to {} pid {}", me.role, me.pid);
                let opened = st
                    .audit
                    .audited_all(op, &me, credentials, destination, result)?;
                Ok(BrokerResponse::Opened(opened))
            }
            // A reveal is audited like an open; a refused one (no presence,
            // a wrong passphrase) too, before the error goes back.
            BrokerRequest::RevealFields { items, presence } => {
                let why = crate::presence::reveal_needs_presence(
                    self.boundary_group.is_some(),
                    peer.role,
                    &items,
                );
                let result = match (why, presence) {
                    (Some(why), None) => Err(BrokerError::PresenceRequired { why }),
                    (Some(_), Some(p)) => st.vault.verify_presence(p.expose()),
                    (None, _) => Ok(()),
                }
                .and_then(|()| {
                    items
                        .iter()
                        .map(|i| {
                            st.vault
                                .open_field(&i.address, &i.sealed)
                                .map(|p| SecretBytes::copy_from(&p))
                        })
                        .collect::<Result<Vec<_>, _>>()
                });
                let credentials = items.iter().map(|i| i.address.to_string()).collect();
                let destination = format!("revealed to {} pid {}", me.role, me.pid);
                let opened = st
                    .audit
                    .audited_all(op, &me, credentials, destination, result)?;
                Ok(BrokerResponse::Opened(opened))
            }
            BrokerRequest::ShellTicket {
                scope,
                record_id,
                presence,
            } => {
                if !st.vault.signed_in() {
                    return Err(BrokerError::SignedOut);
                }
                if !self.shell_needs_presence(st, &scope) {
                    return Ok(BrokerResponse::ShellTicket(None));
                }
                let Some(passphrase) = presence else {
                    return Err(BrokerError::PresenceRequired {
                        why: "an interactive shell to a host of this organization (its policy says connect_needs_presence)".into(),
                    });
                };
                st.vault.verify_presence(passphrase.expose())?;
                let ticket = st.shell_tickets.issue(scope, record_id, now_ms());
                Ok(BrokerResponse::ShellTicket(Some(ticket)))
            }
            BrokerRequest::RequestApproval { action } => {
                check_action(&action)?;
                if !st.vault.signed_in() {
                    return Err(BrokerError::SignedOut);
                }
                let (class, reasons) = classify_action_in(&action, &st.org_policies);
                let id = st.approvals.request(action, me, class.clone(), reasons);
                let _ = self.events.send(BrokerEvent::ApprovalPending { id });
                Ok(BrokerResponse::ApprovalRequested { id, class })
            }
            BrokerRequest::ListApprovals => Ok(BrokerResponse::Approvals(st.approvals.list())),
            BrokerRequest::ShowApproval { id } => Ok(BrokerResponse::Approval(Box::new(
                st.approvals.show(id).map_err(BrokerError::Approval)?,
            ))),
            BrokerRequest::ApprovalOutcome { id } => Ok(BrokerResponse::Outcome(Box::new(
                st.approvals
                    .outcome(id, &me)
                    .map_err(BrokerError::Approval)?,
            ))),
            BrokerRequest::DecideApproval {
                id,
                decision,
                presence,
            } => {
                if let gatehouse_ipc::broker::Decision::Edit { command } = &decision {
                    check_command(command)?;
                }
                if let Some(why) = self.presence_needed(st, id, peer.role, &decision) {
                    let Some(passphrase) = presence else {
                        return Err(BrokerError::PresenceRequired { why });
                    };
                    st.vault.verify_presence(passphrase.expose())?;
                }
                let State {
                    vault,
                    approvals,
                    org_policies,
                    ..
                } = st;
                let (state, new_id) = approvals.decide(
                    id,
                    decision,
                    me,
                    |msg| vault.sign_approval(msg),
                    |a| classify_action_in(a, org_policies),
                )?;
                let _ = self.events.send(BrokerEvent::ApprovalDecided { id, state });
                if let Some(new_id) = new_id {
                    let _ = self
                        .events
                        .send(BrokerEvent::ApprovalPending { id: new_id });
                }
                Ok(BrokerResponse::Decided { state, new_id })
            }
            BrokerRequest::ConsumeApproval { token, action } => {
                let State {
                    vault, approvals, ..
                } = st;
                let verified = vault
                    .verify_approval(&crate::approvals::signed_bytes(&token), &token.signature)?;
                approvals
                    .consume(&token, &action, &me, |_, _| verified)
                    .map_err(BrokerError::Approval)?;
                Ok(BrokerResponse::Consumed)
            }
            BrokerRequest::CheckApproval { token, action } => {
                let State {
                    vault, approvals, ..
                } = st;
                let verified = vault
                    .verify_approval(&crate::approvals::signed_bytes(&token), &token.signature)?;
                approvals
                    .check(&token, &action, &me, |_, _| verified)
                    .map_err(BrokerError::Approval)?;
                Ok(BrokerResponse::ApprovalValid)
            }
            BrokerRequest::Redact { text } => {
                let State {
                    vault, redactor, ..
                } = st;
                if !vault.signed_in() {
                    return Err(BrokerError::SignedOut);
                }
                let (text, spans) = redactor.redact(vault, &text);
                Ok(BrokerResponse::Redacted { text, spans })
            }
            BrokerRequest::Subscribe => Ok(BrokerResponse::Subscribed),
            BrokerRequest::MacRecords { items } => {
                let macs = items
                    .iter()
                    .map(|i| st.vault.record_mac(i).map(|m| SealedBytes(m.to_vec())))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(BrokerResponse::Macs(macs))
            }
            BrokerRequest::VerifyRecords { items } => {
                let ok = items
                    .iter()
                    .map(|v| {
                        st.vault
                            .record_mac(&v.item)
                            .map(|m| crate::crypto::mac_eq(&m, &v.mac))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(BrokerResponse::Verified(ok))
            }
            // Every credential use is audited before it leaves (crate::audit).
            BrokerRequest::ReleasePassword { host } => {
                let shell = self.check_shell(st, &host);
                let mut used = KeychainUse::new(&mut st.destinations);
                let result = shell.and_then(|()| {
                    host_credentials::release_password(&mut st.vault, &host, &mut used)
                });
                let (credential, destination) = host_credential_names(&host, &used.entries);
                let password = st.audit.audited(op, &me, credential, destination, result)?;
                Ok(BrokerResponse::Password(SecretBytes::copy_from(&password)))
            }
            BrokerRequest::SshPublicKey { host } => {
                let mut used = KeychainUse::new(&mut st.destinations);
                let result = host_credentials::public_key(&mut st.vault, &host, &mut used);
                let (credential, destination) = host_credential_names(&host, &used.entries);
                Ok(BrokerResponse::PublicKey(st.audit.audited(
                    op,
                    &me,
                    credential,
                    destination,
                    result,
                )?))
            }
            BrokerRequest::SshSign { host, to_sign } => {
                let shell = self.check_shell(st, &host);
                let mut used = KeychainUse::new(&mut st.destinations);
                let result = shell.and_then(|()| {
                    host_credentials::sign(&mut st.vault, &host, &to_sign, &mut used)
                });
                let (credential, destination) = host_credential_names(&host, &used.entries);
                Ok(BrokerResponse::Signature(st.audit.audited(
                    op,
                    &me,
                    credential,
                    destination,
                    result,
                )?))
            }
            BrokerRequest::ReleaseProviderKey { name, endpoint } => {
                let result = host_credentials::provider_key(&st.vault, &name, &endpoint);
                let key =
                    st.audit
                        .audited(op, &me, format!("keychain:{name}"), endpoint, result)?;
                Ok(BrokerResponse::ProviderKey(SecretBytes::copy_from(&key)))
            }
            BrokerRequest::GrantAutopilot { bound } => {
                if !st.vault.signed_in() {
                    return Err(BrokerError::SignedOut);
                }
                let (grant, expires_ms) = st.autopilot.grant(bound, me, now_ms())?;
                Ok(BrokerResponse::AutopilotGranted { grant, expires_ms })
            }
            BrokerRequest::EndAutopilot { grant } => {
                st.autopilot.end(grant);
                tracing::info!("Autopilot task {grant} ended by {} pid {}", me.role, me.pid);
                Ok(BrokerResponse::Done)
            }
            BrokerRequest::WithdrawApproval { id, reason } => {
                let reason: String = reason.chars().take(500).collect();
                st.approvals
                    .withdraw(id, &me, reason)
                    .map_err(BrokerError::Approval)?;
                let _ = self.events.send(BrokerEvent::ApprovalDecided {
                    id,
                    state: gatehouse_ipc::broker::ApprovalState::Withdrawn,
                });
                Ok(BrokerResponse::Done)
            }
            BrokerRequest::RequestAutoApproval { action, grant } => {
                check_action(&action)?;
                if !st.vault.signed_in() {
                    return Err(BrokerError::SignedOut);
                }
                let (class, reasons) = classify_action_in(&action, &st.org_policies);
                let policy = st.org_policies.get(&action.org);
                let decision = st.autopilot.decide(
                    grant,
                    &action,
                    policy.as_ref().map_err(|e| e.as_str()),
                    now_ms(),
                );
                match decision {
                    AutoDecision::Approve { rule, granted_by } => {
                        let State {
                            vault, approvals, ..
                        } = st;
                        let rule = format!("Autopilot task {grant}: {rule}");
                        let id = approvals.auto_approve(
                            action,
                            me,
                            class.clone(),
                            reasons,
                            granted_by,
                            rule.clone(),
                            |msg| vault.sign_approval(msg),
                        )?;
                        let _ = self.events.send(BrokerEvent::ApprovalDecided {
                            id,
                            state: gatehouse_ipc::broker::ApprovalState::Approved,
                        });
                        Ok(BrokerResponse::AutoApprovalRequested {
                            id,
                            class,
                            auto_approved: Some(rule),
                            why_person: None,
                        })
                    }
                    AutoDecision::Person(why) => {
                        let id = st.approvals.request(action, me, class.clone(), reasons);
                        let _ = self.events.send(BrokerEvent::ApprovalPending { id });
                        Ok(BrokerResponse::AutoApprovalRequested {
                            id,
                            class,
                            auto_approved: None,
                            why_person: Some(why),
                        })
                    }
                }
            }
            BrokerRequest::ReleaseServiceAuth { service } => {
                let result = crate::service_auth::release_service_auth(&mut st.vault, &service);
                let auth = st.audit.audited(
                    op,
                    &me,
                    service.field.to_string(),
                    service.destination.clone(),
                    result,
                )?;
                Ok(BrokerResponse::ServiceAuth(SecretBytes::copy_from(&auth)))
            }
            BrokerRequest::RecordingKey { recording_id } => {
                let key = host_credentials::recording_key(&st.vault, &recording_id)?;
                Ok(BrokerResponse::RecordingKey(SecretBytes::copy_from(&key)))
            }
            BrokerRequest::OpenNote { record, field } => {
                let body = copilot_records::open_note(&mut st.vault, &record, &field)?;
                Ok(BrokerResponse::Note(SecretBytes::copy_from(&body)))
            }
            BrokerRequest::MacApprovedRecord(req) => {
                let State {
                    vault, approvals, ..
                } = st;
                let mac = copilot_records::mac_approved_record(vault, approvals, &me, &req)?;
                Ok(BrokerResponse::Macs(vec![SealedBytes(mac.to_vec())]))
            }
        }
    }
}

fn check_command(command: &str) -> Result<(), BrokerError> {
    if command.trim().is_empty() || command.len() > 64 * 1024 {
        return Err(BrokerError::Invalid {
            what: "command".into(),
            reason: "empty or over 64 KiB".into(),
        });
    }
    Ok(())
}

fn check_action(a: &Action) -> Result<(), BrokerError> {
    check_command(&a.command)?;
    for (what, v) in [("host", &a.host), ("org", &a.org), ("vendor", &a.vendor)] {
        if v.is_empty() || v.len() > 256 {
            return Err(BrokerError::Invalid {
                what: what.into(),
                reason: "empty or over 256 bytes".into(),
            });
        }
    }
    Ok(())
}

/// How a host credential request is named in the credential log.
/// The credential log's names of one host credential use: the field (and
/// the keychain entries it referred to) and the destination.
fn host_credential_names(
    h: &gatehouse_ipc::broker::HostCredential,
    entries: &[String],
) -> (String, String) {
    let mut credential = h.field.to_string();
    for e in entries {
        credential.push_str(&format!(" (keychain:{e})"));
    }
    (
        credential,
        crate::destinations::destination_name(&h.destination),
    )
}

/// The vendor of a copilot connector call (its command is a connector
/// call's text, see `gatehouse_policy::ConnectorRequest`).
const CONNECTOR_VENDOR: &str = "copilot:connector";

/// The vendor of a copilot MCP tool call (host = server, command = `<tool>
/// <canonical JSON arguments>`).
const MCP_VENDOR: &str = "copilot:mcp";

/// Classifies an action with the org policies the broker keeps: an MCP
/// tool call takes the class `gatehouse_policy::classify_mcp_tool` gives
/// from the org's own assignment (read here, never taken from the
/// requester) and the server's hints as the requester stated them (hints
/// only raise); everything else is [`classify_action`].
pub fn classify_action_in(a: &Action, org_policies: &OrgPolicies) -> (String, Vec<String>) {
    if a.vendor != MCP_VENDOR {
        return classify_action(a);
    }
    let tool = a.command.split_whitespace().next().unwrap_or("");
    let policy = org_policies.get(&a.org).map(|mut p| {
        // pre-approval would need a signed policy (as for commands)
        p.allow.clear();
        p
    });
    match policy {
        Ok(p) => {
            let hints = gatehouse_policy::McpHints::from_stated(&a.expected_effect);
            let v = gatehouse_policy::classify_mcp_tool(&p, &a.host, tool, &hints);
            (v.class.to_string(), v.reasons)
        }
        Err(e) => (
            "unknown".into(),
            vec![format!("the organization policy cannot be read: {e}")],
        ),
    }
}

/// Classifies an action's command for the approval card (a person's edit
/// included: the card always shows the broker's own classification). MCP
/// tool calls need the org policies: see [`classify_action_in`]; here
/// they are unknown.
pub fn classify_action(a: &Action) -> (String, Vec<String>) {
    if let Some(c) = copilot_records::classify(&a.vendor) {
        return c;
    }
    if a.vendor == CONNECTOR_VENDOR {
        let verdict = gatehouse_policy::classify_connector(&a.command);
        return (
            verdict.class.to_string(),
            verdict
                .reasons
                .into_iter()
                .map(|r| r.into_owned())
                .collect(),
        );
    }
    match gatehouse_policy::Vendor::parse_platform(&a.vendor) {
        Some(v) => {
            let verdict = gatehouse_policy::classify(v, &a.command);
            (
                verdict.class.to_string(),
                verdict
                    .reasons
                    .into_iter()
                    .map(|r| r.into_owned())
                    .collect(),
            )
        }
        None => (
            "unknown".into(),
            vec![format!("platform {:?} has no classifier", a.vendor)],
        ),
    }
}

impl Handler<Broker> for BrokerService {
    async fn handle(
        &self,
        peer: &PeerIdentity,
        _conn: u64,
        req: BrokerRequest,
    ) -> Result<BrokerResponse, BrokerError> {
        // Key derivation has a deep call tree; everything else is shallow.
        let deep = matches!(
            req,
            BrokerRequest::AccountInit { .. }
                | BrokerRequest::SignIn { .. }
                | BrokerRequest::RevealFields {
                    presence: Some(_),
                    ..
                }
                | BrokerRequest::ShellTicket {
                    presence: Some(_),
                    ..
                }
                | BrokerRequest::OrgPolicySet { .. }
                | BrokerRequest::SyncKeyBundle { .. }
                | BrokerRequest::BundleVerifier { .. }
                | BrokerRequest::AccountFromBundle { .. }
        );
        // Requests that wait on Argon2id or the OS keychain (D-Bus) leave this
        // worker thread to the runtime's other tasks; the rest are microseconds.
        let blocking = deep
            || matches!(
                req,
                BrokerRequest::SignOut
                    | BrokerRequest::KeychainSet { .. }
                    | BrokerRequest::KeychainRemove { .. }
                    | BrokerRequest::ReleasePassword { .. }
                    | BrokerRequest::SshPublicKey { .. }
                    | BrokerRequest::SshSign { .. }
                    | BrokerRequest::ReleaseProviderKey { .. }
                    | BrokerRequest::ReleaseServiceAuth { .. }
                    | BrokerRequest::RevealFields { .. }
                    | BrokerRequest::ShellTicket { .. }
            );
        let run = || {
            let result = self.dispatch(peer, req);
            // Crypto leaves key residues on this thread's stack; wipe them at the depth they were made.
            if deep {
                gatehouse_sandbox::secret_mem::scrub_stack_deep();
            } else {
                gatehouse_sandbox::secret_mem::scrub_stack();
            }
            result
        };
        let result = if blocking {
            tokio::task::block_in_place(run)
        } else {
            run()
        };
        if let Err(BrokerError::Approval(ApprovalError::Replayed)) = &result {
            tracing::warn!("replayed approval token from pid {}", peer.pid);
        }
        result
    }

    fn subscribes(&self, req: &BrokerRequest) -> bool {
        matches!(req, BrokerRequest::Subscribe)
    }

    fn take_events(&self, _conn: u64) -> Option<Events<BrokerEvent>> {
        Some(Events::Broadcast(self.events.subscribe()))
    }
}
