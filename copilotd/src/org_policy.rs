//! Organization policies as copilotd reads them: from the broker
//! (`OrgPolicyGet`), which keeps them in its own state, for the tools
//! copilotd gates itself (connector calls and MCP tools: classes and blocks).
//!
//! Owns only asking and parsing. Must never: read a policy from a file (the
//! user's other programs can write those), treat an unreadable or malformed
//! policy as "no policy" (that would drop the org's blocks: the caller
//! refuses instead), or write a policy.

use gatehouse_ipc::broker::{Broker, BrokerRequest, BrokerResponse};
use gatehouse_ipc::client::SharedClient;
use gatehouse_policy::OrgPolicy;

/// `org`'s policy as the broker keeps it (the empty policy when the org has
/// none). `Err` says why it could not be had.
pub async fn load(broker: &SharedClient<Broker>, org: &str) -> Result<OrgPolicy, String> {
    let reply = broker
        .call(BrokerRequest::OrgPolicyGet {
            org: org.to_string(),
        })
        .await
        .map_err(|e| format!("the broker did not give it: {e}"))?;
    let BrokerResponse::OrgPolicy(json) = reply else {
        return Err("unexpected reply from the broker to OrgPolicyGet".into());
    };
    serde_json::from_str(&json).map_err(|e| format!("the broker's copy does not parse: {e}"))
}
