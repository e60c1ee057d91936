//! Approval requests, decisions, signed tokens and single use.
//!
//! Owns the life of an approval: request → pending → decided by a person →
//! token signed over every field of the action, the requester, the approver,
//! a nonce and an expiry → consumed once by the executor. The used-nonce log
//! survives broker restarts until each token's expiry.
//! Must never: let a requester decide its own request, sign anything for an
//! action a person did not approve as-is, or accept a token twice.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

use gatehouse_ipc::broker::{
    Action, ActionField, ApprovalError, ApprovalOutcome, ApprovalState, ApprovalToken,
    ApprovalView, Decision, Requester,
};
use serde::Serialize;

use crate::crypto;
use crate::vault::now_ms;

/// How long an approved token stays valid, by default.
pub const DEFAULT_TOKEN_TTL_MS: u64 = 60_000;
/// How long a request may wait for a decision.
pub const PENDING_TTL_MS: u64 = 15 * 60_000;
const MAX_PENDING: usize = 1024;

/// The exact bytes an approval signature covers.
#[derive(Serialize)]
struct SignedApproval<'a> {
    domain: &'static str,
    approval_id: u64,
    action: &'a Action,
    requester: &'a Requester,
    approver: &'a Requester,
    nonce: &'a [u8; 16],
    expires_ms: u64,
}

/// The bytes a token's signature must cover.
pub fn signed_bytes(t: &ApprovalToken) -> Vec<u8> {
    let s = SignedApproval {
        domain: "gatehouse/approval/v1",
        approval_id: t.approval_id,
        action: &t.action,
        requester: &t.requester,
        approver: &t.approver,
        nonce: &t.nonce,
        expires_ms: t.expires_ms,
    };
    postcard::to_stdvec(&s).expect("approval fields serialize")
}

struct Pending {
    view: ApprovalView,
    token: Option<ApprovalToken>,
}

/// Signs the token for a pending request and marks it approved by `approver`.
fn approve(
    p: &mut Pending,
    approver: Requester,
    token_ttl_ms: u64,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, gatehouse_ipc::broker::BrokerError>,
) -> Result<(), gatehouse_ipc::broker::BrokerError> {
    let mut token = ApprovalToken {
        approval_id: p.view.id,
        action: p.view.action.clone(),
        requester: p.view.requester.clone(),
        approver: approver.clone(),
        nonce: crypto::random_bytes(),
        expires_ms: now_ms() + token_ttl_ms,
        signature: Vec::new(),
    };
    token.signature = sign(&signed_bytes(&token))?;
    p.token = Some(token);
    p.view.state = ApprovalState::Approved;
    p.view.decided_by = Some(approver);
    Ok(())
}

pub struct Approvals {
    requests: BTreeMap<u64, Pending>,
    /// Requests that ended without running (rejected, withdrawn, expired,
    /// dropped) and why, not yet written to the audit log: see
    /// [`Approvals::take_refused`].
    refused: Vec<(ApprovalView, String)>,
    next_id: u64,
    used: HashMap<[u8; 16], u64>,
    nonce_log: PathBuf,
    token_ttl_ms: u64,
}

impl Approvals {
    /// Loads the used-nonce log, dropping expired entries.
    pub fn open(nonce_log: PathBuf, token_ttl_ms: u64) -> std::io::Result<Approvals> {
        let now = now_ms();
        let mut used = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&nonce_log) {
            for line in text.lines() {
                let mut it = line.split_whitespace();
                let (Some(n), Some(exp)) = (it.next(), it.next()) else {
                    continue;
                };
                let (Some(nonce), Ok(exp)) = (parse_nonce(n), exp.parse::<u64>()) else {
                    continue;
                };
                if exp > now {
                    used.insert(nonce, exp);
                }
            }
        }
        // Compact: rewrite only live entries.
        let mut text = String::new();
        for (n, exp) in &used {
            text.push_str(&format!("{} {exp}\n", crypto::hex(n)));
        }
        crate::vault::write_atomic(&nonce_log, text.as_bytes())?;
        Ok(Approvals {
            requests: BTreeMap::new(),
            refused: Vec::new(),
            next_id: 1 + (now % 1_000_000) * 1000,
            used,
            nonce_log,
            token_ttl_ms,
        })
    }

    /// Marks requests that waited too long as expired and drops the oldest
    /// beyond [`MAX_PENDING`]; a pending request either way is refused.
    pub fn expire(&mut self) {
        let now = now_ms();
        for p in self.requests.values_mut() {
            if p.view.state == ApprovalState::Pending && now > p.view.created_ms + PENDING_TTL_MS {
                p.view.state = ApprovalState::Expired;
                self.refused.push((
                    p.view.clone(),
                    format!(
                        "expired: no person decided within {} minutes",
                        PENDING_TTL_MS / 60_000
                    ),
                ));
            }
        }
        self.used.retain(|_, exp| *exp > now);
        while self.requests.len() > MAX_PENDING {
            let Some((_, p)) = self.requests.pop_first() else {
                break;
            };
            if p.view.state == ApprovalState::Pending {
                self.refused.push((
                    p.view,
                    format!("dropped: more than {MAX_PENDING} requests were waiting"),
                ));
            }
        }
    }

    /// The requests refused since the last call (each once) and why, for
    /// the session audit log: every refusal leaves a row.
    pub fn take_refused(&mut self) -> Vec<(ApprovalView, String)> {
        std::mem::take(&mut self.refused)
    }

    pub fn pending_count(&self) -> usize {
        self.requests
            .values()
            .filter(|p| p.view.state == ApprovalState::Pending)
            .count()
    }

    pub fn request(
        &mut self,
        action: Action,
        requester: Requester,
        class: String,
        reasons: Vec<String>,
    ) -> u64 {
        self.expire();
        let id = self.next_id;
        self.next_id += 1;
        let view = ApprovalView {
            id,
            action,
            requester,
            class,
            reasons,
            state: ApprovalState::Pending,
            created_ms: now_ms(),
            decided_by: None,
            replaced_by: None,
            reject_reason: None,
            autopilot: None,
        };
        self.requests.insert(id, Pending { view, token: None });
        id
    }

    pub fn list(&mut self) -> Vec<ApprovalView> {
        self.expire();
        self.requests.values().map(|p| p.view.clone()).collect()
    }

    pub fn show(&mut self, id: u64) -> Result<ApprovalView, ApprovalError> {
        self.expire();
        self.requests
            .get(&id)
            .map(|p| p.view.clone())
            .ok_or(ApprovalError::NotFound)
    }

    /// Records a person's decision. `sign` signs the token bytes; `classify`
    /// classifies an edited command. Returns the new state and, for an edit, the new request id.
    pub fn decide(
        &mut self,
        id: u64,
        decision: Decision,
        decider: Requester,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, gatehouse_ipc::broker::BrokerError>,
        classify: impl FnOnce(&Action) -> (String, Vec<String>),
    ) -> Result<(ApprovalState, Option<u64>), gatehouse_ipc::broker::BrokerError> {
        use gatehouse_ipc::broker::BrokerError::Approval;
        self.expire();
        let p = self
            .requests
            .get_mut(&id)
            .ok_or(Approval(ApprovalError::NotFound))?;
        if p.view.state != ApprovalState::Pending {
            return Err(Approval(ApprovalError::NotPending));
        }
        if p.view.requester.pid == decider.pid {
            return Err(Approval(ApprovalError::SelfDecision));
        }
        match decision {
            Decision::Approve => {
                approve(p, decider, self.token_ttl_ms, sign)?;
                Ok((ApprovalState::Approved, None))
            }
            Decision::Reject { reason } => {
                let why = if reason.trim().is_empty() {
                    format!("rejected by {} pid {}", decider.role, decider.pid)
                } else {
                    format!(
                        "rejected by {} pid {}: {}",
                        decider.role,
                        decider.pid,
                        reason.trim()
                    )
                };
                p.view.state = ApprovalState::Rejected;
                p.view.decided_by = Some(decider);
                p.view.reject_reason = Some(reason);
                self.refused.push((p.view.clone(), why));
                Ok((ApprovalState::Rejected, None))
            }
            Decision::Edit { command } => {
                let mut action = p.view.action.clone();
                action.command = command;
                let requester = p.view.requester.clone();
                p.view.state = ApprovalState::Edited;
                p.view.decided_by = Some(decider);
                let (class, reasons) = classify(&action);
                let new_id = self.request(action, requester, class, reasons);
                if let Some(old) = self.requests.get_mut(&id) {
                    old.view.replaced_by = Some(new_id);
                }
                Ok((ApprovalState::Edited, Some(new_id)))
            }
        }
    }

    /// Files a request and approves it at once on behalf of `granted_by`, the
    /// person who started the Autopilot task whose grant permitted it
    /// (`rule`). The caller has made that decision (`autopilot::Grants`).
    #[allow(clippy::too_many_arguments)]
    pub fn auto_approve(
        &mut self,
        action: Action,
        requester: Requester,
        class: String,
        reasons: Vec<String>,
        granted_by: Requester,
        rule: String,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, gatehouse_ipc::broker::BrokerError>,
    ) -> Result<u64, gatehouse_ipc::broker::BrokerError> {
        let id = self.request(action, requester, class, reasons);
        let ttl = self.token_ttl_ms;
        let p = self
            .requests
            .get_mut(&id)
            .ok_or(gatehouse_ipc::broker::BrokerError::Approval(
                ApprovalError::NotFound,
            ))?;
        p.view.autopilot = Some(rule);
        approve(p, granted_by, ttl, sign)?;
        Ok(id)
    }

    /// The requesting process withdraws its own pending request (its
    /// person went away): the card closes with `reason`, and nobody can
    /// approve it any more.
    pub fn withdraw(
        &mut self,
        id: u64,
        asker: &Requester,
        reason: String,
    ) -> Result<(), ApprovalError> {
        self.expire();
        let p = self.requests.get_mut(&id).ok_or(ApprovalError::NotFound)?;
        if p.view.requester.role != asker.role || p.view.requester.pid != asker.pid {
            return Err(ApprovalError::NotRequester);
        }
        if p.view.state != ApprovalState::Pending {
            return Err(ApprovalError::NotPending);
        }
        let why = format!(
            "withdrawn by its requester ({} pid {}): {}",
            asker.role,
            asker.pid,
            reason.trim()
        );
        p.view.state = ApprovalState::Withdrawn;
        p.view.reject_reason = Some(reason);
        self.refused.push((p.view.clone(), why));
        Ok(())
    }

    /// What the requester learns; only the requesting process gets the token.
    pub fn outcome(
        &mut self,
        id: u64,
        asker: &Requester,
    ) -> Result<ApprovalOutcome, ApprovalError> {
        self.expire();
        let p = self.requests.get(&id).ok_or(ApprovalError::NotFound)?;
        if p.view.requester.role != asker.role || p.view.requester.pid != asker.pid {
            return Err(ApprovalError::NotRequester);
        }
        Ok(match p.view.state {
            ApprovalState::Pending => ApprovalOutcome::Pending,
            ApprovalState::Approved => match &p.token {
                Some(t) => ApprovalOutcome::Approved(Box::new(t.clone())),
                None => ApprovalOutcome::Expired,
            },
            ApprovalState::Rejected | ApprovalState::Withdrawn => ApprovalOutcome::Rejected {
                reason: p.view.reject_reason.clone().unwrap_or_default(),
            },
            ApprovalState::Edited => ApprovalOutcome::Edited {
                new_id: p.view.replaced_by.unwrap_or(0),
            },
            ApprovalState::Expired => ApprovalOutcome::Expired,
        })
    }

    /// Verifies a token for `action` without spending it: signature,
    /// executor, coverage of every field, expiry and not yet used. The
    /// executor checks this before it asks for a device credential, and
    /// spends the token with [`Approvals::consume`] once connected.
    pub fn check(
        &self,
        token: &ApprovalToken,
        action: &Action,
        consumer: &Requester,
        verify: impl FnOnce(&[u8], &[u8]) -> bool,
    ) -> Result<(), ApprovalError> {
        if !verify(&signed_bytes(token), &token.signature) {
            return Err(ApprovalError::BadSignature);
        }
        // The executor of this kind of action, and copilotd only for the
        // tokens it asked for itself (sessiond checks its own requesters).
        let executor = token.action.executor();
        if consumer.role != executor
            || (executor == gatehouse_ipc::PeerRole::Copilotd && *consumer != token.requester)
        {
            return Err(ApprovalError::WrongExecutor { executor });
        }
        let a = &token.action;
        let mismatch = [
            (a.host != action.host, ActionField::Host),
            (a.vendor != action.vendor, ActionField::Vendor),
            (a.org != action.org, ActionField::Org),
            (a.credential != action.credential, ActionField::Credential),
            (
                a.command.as_bytes() != action.command.as_bytes(),
                ActionField::Command,
            ),
            (
                a.expected_effect != action.expected_effect,
                ActionField::ExpectedEffect,
            ),
        ];
        if let Some((_, field)) = mismatch.iter().find(|(differs, _)| *differs) {
            return Err(ApprovalError::Mismatch(*field));
        }
        let now = now_ms();
        if now >= token.expires_ms {
            return Err(ApprovalError::Expired);
        }
        if self.used.contains_key(&token.nonce) {
            return Err(ApprovalError::Replayed);
        }
        Ok(())
    }

    /// Verifies and spends a token for `action`. `verify` checks the broker signature.
    pub fn consume(
        &mut self,
        token: &ApprovalToken,
        action: &Action,
        consumer: &Requester,
        verify: impl FnOnce(&[u8], &[u8]) -> bool,
    ) -> Result<(), ApprovalError> {
        self.check(token, action, consumer, verify)?;
        // Persist before acknowledging: a restart must not make the token usable again.
        let line = format!("{} {}\n", crypto::hex(&token.nonce), token.expires_ms);
        let persisted = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.nonce_log)
            .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|_| f.sync_data()));
        if persisted.is_err() {
            // Refuse rather than risk a replay after restart.
            return Err(ApprovalError::Replayed);
        }
        self.used.insert(token.nonce, token.expires_ms);
        Ok(())
    }
}

fn parse_nonce(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
