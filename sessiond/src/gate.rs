//! The gate in front of every command sessiond runs for someone.
//!
//! Owns: classifying a command for a host (the `policy` crate, the org's
//! blocks), the exact [`Action`] an approval must cover, and the checks on a
//! presented token before sessiond asks the broker to spend it.
//! Must never: let a command that is not read-only through without a token,
//! lower a class, or treat org policy as a way to skip a person's approval
//! (org policy here only blocks; an allow-list would need a signed policy).

use gatehouse_ipc::PeerIdentity;
use gatehouse_ipc::broker::{Action, ActionField, ApprovalError, ApprovalToken};
use gatehouse_ipc::sessiond::{Prepared, SessiondError};
use gatehouse_policy::{Class, OrgPolicy, Vendor, apply_org_policy, classify};

use crate::hosts::Host;

/// Parses an org's policy as the broker gave it (`OrgPolicyGet`: the broker
/// keeps policies where the user's other programs cannot write). Only the
/// blocking parts are used (see the module docs).
pub fn parse_policy(json: &str) -> Result<OrgPolicy, SessiondError> {
    let mut policy: OrgPolicy = serde_json::from_str(json).map_err(|e| SessiondError::Invalid {
        what: "org policy".into(),
        reason: format!("the broker's copy does not parse: {e}"),
    })?;
    policy.allow.clear();
    Ok(policy)
}

/// Classifies `command` for `host` under `policy` and builds the action an
/// approval must cover.
pub fn prepare(host: &Host, command: &str, policy: &OrgPolicy) -> Prepared {
    let action = Action {
        host: host.name.clone(),
        vendor: host.vendor.clone(),
        org: host.org.clone(),
        credential: host.credential_context(),
        command: command.to_string(),
        expected_effect: String::new(),
    };
    let Some(vendor) = Vendor::parse_platform(&host.vendor) else {
        return Prepared {
            action,
            class: Class::Unknown.to_string(),
            reasons: vec![format!("platform {:?} has no classifier", host.vendor)],
            needs_approval: true,
            blocked: None,
        };
    };
    let verdict = apply_org_policy(policy, classify(vendor, command));
    let blocked = verdict
        .org_policy
        .as_ref()
        .filter(|d| d.outcome == gatehouse_policy::OrgOutcome::Blocked)
        .map(|d| d.reason.clone());
    Prepared {
        needs_approval: verdict.class != Class::ReadOnly,
        class: verdict.class.to_string(),
        reasons: verdict.reasons.iter().map(|r| r.to_string()).collect(),
        action,
        blocked,
    }
}

/// Checks a presented token against what is about to run, before the broker
/// is asked to spend it: it must be this process's own token and cover this
/// exact action. (The broker checks the signature, expiry and single use.)
pub fn check_token(
    token: &ApprovalToken,
    prepared: &Prepared,
    peer: &PeerIdentity,
) -> Result<(), SessiondError> {
    if token.requester.pid != peer.pid || token.requester.role != peer.role {
        return Err(SessiondError::TokenNotYours {
            token_pid: token.requester.pid,
            peer_pid: peer.pid,
        });
    }
    let (a, b) = (&token.action, &prepared.action);
    let differs = [
        (a.host != b.host, ActionField::Host),
        (a.vendor != b.vendor, ActionField::Vendor),
        (a.org != b.org, ActionField::Org),
        (a.credential != b.credential, ActionField::Credential),
        (
            a.command.as_bytes() != b.command.as_bytes(),
            ActionField::Command,
        ),
    ];
    if let Some((_, field)) = differs.iter().find(|(d, _)| *d) {
        return Err(SessiondError::Approval(ApprovalError::Mismatch(*field)));
    }
    Ok(())
}
