//! The copilotd service: conversations, one turn at a time each, streamed to
//! the person's client.
//!
//! Owns the conversation table (active work: on this machine, in memory,
//! purged at sign-out) and starting turns. Must never: take a chat from a
//! daemon (a conversation is a person's), or keep a conversation after
//! sign-out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_ipc::broker::{BrokerEvent, Hardening};
use gatehouse_ipc::copilotd::{
    CopilotError, CopilotEvent, CopilotRequest, CopilotResponse, CopilotStatus, Copilotd, Trust,
};
use gatehouse_ipc::server::{Events, Handler, PendingStreams};
use gatehouse_ipc::{Layout, PeerIdentity, PeerRole};

use crate::agent::{Agent, Conversation, Links};
use crate::config;
use crate::provider::{Provider, ProviderConfig, ProviderKind};

const MAX_MESSAGE: usize = 64 * 1024;

pub struct CopilotService {
    me: std::sync::Weak<CopilotService>,
    layout: Layout,
    links: Links,
    hosts: Mutex<gatehouse_records::Store>,
    hardening: Hardening,
    /// Conversations not in a turn right now.
    conversations: Mutex<HashMap<u64, Conversation>>,
    next_id: std::sync::atomic::AtomicU64,
    pending: PendingStreams<CopilotEvent>,
}

impl CopilotService {
    pub fn new(
        layout: Layout,
        links: Links,
        hosts: gatehouse_records::Store,
        hardening: Hardening,
    ) -> Arc<CopilotService> {
        Arc::new_cyclic(|me| CopilotService {
            me: me.clone(),
            layout,
            links,
            hosts: Mutex::new(hosts),
            hardening,
            conversations: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
            pending: PendingStreams::default(),
        })
    }

    fn conversations(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Conversation>> {
        self.conversations.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sign-out purges every conversation (their histories are active work).
    pub fn on_broker_event(&self, e: &BrokerEvent) {
        if *e == BrokerEvent::SignedOut {
            let n = {
                let mut c = self.conversations();
                let n = c.len();
                c.clear();
                n
            };
            tracing::info!("sign-out: purged {n} conversations");
        }
    }

    /// The provider as configured now, with its API key released by the
    /// broker for that endpoint (if it needs one).
    /// The configured provider, and its prices if the settings give them.
    async fn provider(&self) -> Result<(Provider, Option<config::Prices>), CopilotError> {
        let settings = config::load(&self.layout.root)
            .map_err(|e| CopilotError::Invalid {
                what: "provider settings".into(),
                reason: e,
            })?
            .ok_or(CopilotError::NoProvider)?;
        let api_key = match &settings.api_key_ref {
            None => None,
            Some(r) => {
                let name = r.strip_prefix("keychain:").unwrap_or(r).to_string();
                let req = gatehouse_ipc::broker::BrokerRequest::ReleaseProviderKey {
                    name,
                    endpoint: settings.endpoint.clone(),
                };
                match self.links.broker.call(req).await {
                    Ok(gatehouse_ipc::broker::BrokerResponse::ProviderKey(k)) => Some(
                        zeroize::Zeroizing::new(String::from_utf8_lossy(k.expose()).into_owned()),
                    ),
                    Ok(_) => return Err(CopilotError::Internal("unexpected broker reply".into())),
                    Err(e) => return Err(CopilotError::Provider(format!("API key: {e}"))),
                }
            }
        };
        let cfg = ProviderConfig {
            kind: match settings.kind {
                config::Kind::Openai => ProviderKind::OpenAi,
                config::Kind::Anthropic => ProviderKind::Anthropic,
            },
            base_url: settings.endpoint.clone(),
            model: settings.model.clone(),
            api_key,
            timeout: Duration::from_secs(120),
            max_retries: 3,
        };
        let p = Provider::new(cfg).map_err(|e| CopilotError::Provider(e.to_string()))?;
        Ok((p, settings.prices))
    }

    async fn status(&self) -> CopilotStatus {
        CopilotStatus {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            hardening: Hardening {
                dumpable: nix::sys::prctl::get_dumpable().unwrap_or(true),
                ..self.hardening.clone()
            },
            provider: config::load(&self.layout.root)
                .ok()
                .flatten()
                .map(|s| format!("{} at {}", s.model, s.endpoint)),
            conversations: self.conversations().len(),
            mcp_servers: crate::mcp::status(),
        }
    }

    async fn chat(
        self: &Arc<Self>,
        conn: u64,
        conversation: Option<u64>,
        message: String,
        settings: gatehouse_ipc::copilotd::ChatSettings,
    ) -> Result<CopilotResponse, CopilotError> {
        if message.trim().is_empty() || message.len() > MAX_MESSAGE {
            return Err(CopilotError::Invalid {
                what: "message".into(),
                reason: "empty or over 64 KiB".into(),
            });
        }
        if settings.trust == Trust::Autonomous
            && (settings.autopilot.is_none() || settings.hosts.is_empty())
        {
            return Err(CopilotError::Invalid {
                what: "Autopilot".into(),
                reason: "needs a task a person started in the broker, bounded in hosts, steps and time (`gatehouse copilot chat --autopilot --host H --minutes M --max-steps N`)".into(),
            });
        }
        let (provider, prices) = self.provider().await?;
        let mut conv = match conversation {
            Some(id) => self
                .conversations()
                .remove(&id)
                .ok_or(CopilotError::NoSuchConversation(id))?,
            None => Conversation {
                id: self
                    .next_id
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                ..Conversation::default()
            },
        };
        let id = conv.id;
        let tx = self.pending.open(conn, 256);
        let this = self.clone();
        tokio::spawn(async move {
            let agent = Agent {
                links: &this.links,
                provider: &provider,
                events: &tx,
                hosts: &this.hosts,
                autopilot: settings
                    .autopilot
                    .filter(|_| settings.trust == Trust::Autonomous)
                    .map(|a| a.grant),
            };
            let before = conv.usage.clone();
            let ended = agent.turn(&mut conv, &message, &settings).await;
            let reason = match ended {
                Ok(r) => r,
                Err(e) => Some(e.to_string()),
            };
            let (input, output) = (
                conv.usage.input_tokens - before.input_tokens,
                conv.usage.output_tokens - before.output_tokens,
            );
            let usage = gatehouse_ipc::copilotd::Usage {
                input_tokens: input,
                output_tokens: output,
                requests: conv.usage.requests - before.requests,
                cost_micro_usd: prices.map(|p| p.cost_micro_usd(input, output)),
            };
            // `conv.usage` counts tokens as they come; the cost is added per turn.
            conv.usage.cost_micro_usd = before.cost_micro_usd;
            conv.usage.input_tokens = before.input_tokens;
            conv.usage.output_tokens = before.output_tokens;
            conv.usage.requests = before.requests;
            conv.usage.add(&usage);
            let total = conv.usage.clone();
            this.conversations().insert(id, conv);
            let _ = tx
                .send(CopilotEvent::TurnEnded {
                    conversation: id,
                    usage,
                    total,
                    reason,
                })
                .await;
        });
        Ok(CopilotResponse::Started { conversation: id })
    }
}

impl Handler<Copilotd> for CopilotService {
    async fn handle(
        &self,
        peer: &PeerIdentity,
        conn: u64,
        req: CopilotRequest,
    ) -> Result<CopilotResponse, CopilotError> {
        if !matches!(peer.role, PeerRole::Cli | PeerRole::Ui) {
            return Err(CopilotError::Forbidden(peer.role));
        }
        let Some(this) = self.me.upgrade() else {
            return Err(CopilotError::Internal("shutting down".into()));
        };
        match req {
            CopilotRequest::Status => Ok(CopilotResponse::Status(Box::new(this.status().await))),
            CopilotRequest::Chat {
                conversation,
                message,
                settings,
            } => this.chat(conn, conversation, message, settings).await,
            CopilotRequest::Forget { conversation } => {
                this.conversations()
                    .remove(&conversation)
                    .ok_or(CopilotError::NoSuchConversation(conversation))?;
                Ok(CopilotResponse::Done)
            }
        }
    }

    fn subscribes(&self, req: &CopilotRequest) -> bool {
        matches!(req, CopilotRequest::Chat { .. })
    }

    fn take_events(&self, conn: u64) -> Option<Events<CopilotEvent>> {
        self.pending.take(conn)
    }

    fn disconnected(&self, conn: u64) {
        self.pending.forget(conn);
    }
}
