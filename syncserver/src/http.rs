//! The HTTP API (`/v1`, JSON bodies; gatehouse-syncproto has every body):
//! info, account registration, the device challenge, org creation and the
//! membership log, key grants, record push / pull / wait.
//!
//! Owns: request checking and authorization (the session, the role from the
//! membership log, the writer's signature on every record, the log rules on
//! every entry, the grant's signature and routing) before anything reaches
//! the store.
//! Must never: open a ciphertext (it has no key), trust a field of a request
//! it did not check, or apply part of a push that has a malformed record.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use gatehouse_membership::envelope::{Scope, SignedWrite, content_hash};
use gatehouse_membership::{MembershipState, SignedCard, SignedEntry, SignedGrant, sign};
use gatehouse_syncproto::limits::{
    CHALLENGE_TTL_MS, MAX_BODY_BYTES, MAX_GRANT_BYTES, MAX_LOG_ENTRY_BYTES, MAX_PULL_RECORDS,
    MAX_PUSH_RECORDS, MAX_WAIT_MS, SESSION_TTL_MS,
};
use gatehouse_syncproto::record::ShapeError;
use gatehouse_syncproto::{
    AccountId, AccountInfo, AppendLog, Bytes, Challenge, ChallengeRequest, ChallengeResponse,
    CreateOrg, ErrorCode, GrantList, Hash32, KeyGrant, LogAppended, LogEntryBlob, LogPage, OrgId,
    PostGrants, PullResponse, PulledRecord, PushRecords, PushResponse, PushResult, RecordEnvelope,
    RegisterAccount, Role, ServerInfo, Session, SpaceId, WaitResponse, paths,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::memo::Memo;
use crate::refusal::{Answer, Refusal};
use crate::store::{
    AccountRow, CasOutcome, ChallengeRow, GrantRow, LogRow, MemberRow, RecordWrite, SessionRow,
    Store, StoreError, Writer, random_token,
};

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub server_id: String,
    /// Sessions by token hash (never updated or deleted in the database).
    sessions: Memo<[u8; 32], SessionRow>,
    /// Accounts' identity keys (registered once, never changed).
    identities: Memo<String, [u8; 32]>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, server_id: String) -> AppState {
        AppState {
            store,
            server_id,
            sessions: Memo::default(),
            identities: Memo::default(),
        }
    }

    /// The account's identity key, if it is registered.
    async fn identity(&self, account: &str) -> Result<Option<[u8; 32]>, StoreError> {
        if let Some(k) = self.identities.get(&account.to_string()) {
            return Ok(Some(k));
        }
        let row = self.store.account(account).await?;
        if let Some(r) = &row {
            self.identities.put(account.to_string(), r.identity);
        }
        Ok(row.map(|r| r.identity))
    }
}

pub(crate) type St = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(paths::INFO, get(info))
        .route(paths::ACCOUNTS, post(register))
        .route(paths::ACCOUNT, get(account_info))
        .route(paths::AUTH_CHALLENGE, post(challenge))
        .route(paths::AUTH_RESPONSE, post(respond))
        .route(paths::ORGS, post(create_org))
        .route(paths::ORG_LOG, get(get_log).post(append_log))
        .route(paths::ORG_GRANTS, get(get_grants).post(post_grants))
        .route(paths::SPACE_RECORDS, get(pull).post(push))
        .route(paths::SPACE_WAIT, get(wait))
        .route(paths::BUNDLE, axum::routing::put(crate::bundle::put_bundle))
        .route(paths::BUNDLE_PARAMS, get(crate::bundle::bundle_params))
        .route(paths::BUNDLE_FETCH, post(crate::bundle::fetch_bundle))
        .route(
            paths::RELAY,
            get(crate::relay::get_relay).put(crate::relay::put_relay),
        )
        .route(
            paths::RELAY_FRAMES,
            get(crate::relay::frames).post(crate::relay::send_frame),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The session of `Authorization: Bearer TOKEN`.
pub(crate) async fn session(st: &AppState, headers: &HeaderMap) -> Result<SessionRow, Refusal> {
    let unauth = |m: &str| Refusal::new(ErrorCode::Unauthorized, m);
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            unauth("no session: send Authorization: Bearer TOKEN from /v1/auth/response")
        })?;
    let hash = token_hash(token);
    let s = match st.sessions.get(&hash) {
        Some(s) => s,
        None => {
            let s = st
                .store
                .session(&hash)
                .await?
                .ok_or_else(|| unauth("unknown session token"))?;
            st.sessions.put(hash, s.clone());
            s
        }
    };
    if s.expires_ms <= now_ms() {
        return Err(Refusal::new(
            ErrorCode::Expired,
            "the session expired; sign in again",
        ));
    }
    Ok(s)
}

pub(crate) fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, Refusal>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| Refusal::bad(format!("bad {what} in the path: {e}")))
}

fn valid_device(d: &str) -> bool {
    AccountId::new(d).is_ok()
}

// ---------------------------------------------------------------- info, accounts

async fn info(State(st): St) -> Answer<ServerInfo> {
    Ok(Json(ServerInfo {
        versions: vec![gatehouse_syncproto::PROTOCOL_VERSION],
        server_id: st.server_id.clone(),
        max_record_bytes: gatehouse_syncproto::limits::MAX_RECORD_BYTES as u64,
        max_push_records: MAX_PUSH_RECORDS as u64,
        max_body_bytes: MAX_BODY_BYTES as u64,
    }))
}

fn decode_card(bytes: &[u8]) -> Result<SignedCard, Refusal> {
    let card: SignedCard =
        sign::decode_exact("account card", bytes).map_err(|e| Refusal::bad(e.to_string()))?;
    if !card.verify() {
        return Err(Refusal::new(
            ErrorCode::BadSignature,
            "the account card's self-signature does not verify (or the name is invalid)",
        ));
    }
    Ok(card)
}

async fn register(
    State(st): St,
    body: Result<Json<RegisterAccount>, JsonRejection>,
) -> Answer<AccountInfo> {
    let Json(req) = body?;
    let card = decode_card(&req.card.0)?;
    let account =
        AccountId::new(card.card.account.clone()).map_err(|e| Refusal::bad(e.to_string()))?;
    st.store
        .create_account(&AccountRow {
            account: account.to_string(),
            card: req.card.0.clone(),
            identity: card.card.identity,
            created_ms: now_ms(),
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => Refusal::new(
                ErrorCode::Conflict,
                format!("the account name {account} is taken"),
            ),
            e => e.into(),
        })?;
    Ok(Json(AccountInfo {
        account,
        fingerprint: card.card.fingerprint().to_string(),
        card: req.card,
        devices: vec![],
    }))
}

async fn account_info(
    State(st): St,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> Answer<AccountInfo> {
    session(&st, &headers).await?;
    let account: AccountId = parse("account", &account)?;
    let row = st
        .store
        .account(account.as_str())
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("no account {account}")))?;
    let card = decode_card(&row.card)?;
    Ok(Json(AccountInfo {
        account,
        fingerprint: card.card.fingerprint().to_string(),
        card: Bytes(row.card),
        devices: vec![],
    }))
}

// ---------------------------------------------------------------- device challenge

async fn challenge(
    State(st): St,
    body: Result<Json<ChallengeRequest>, JsonRejection>,
) -> Answer<Challenge> {
    let Json(req) = body?;
    if !valid_device(&req.device) {
        return Err(Refusal::bad(
            "the device name must be 1..=64 of [A-Za-z0-9._-]",
        ));
    }
    if st.store.account(req.account.as_str()).await?.is_none() {
        return Err(Refusal::new(
            ErrorCode::NotFound,
            format!("no account {}", req.account),
        ));
    }
    let mut nonce = vec![0u8; 32];
    getrandom::fill(&mut nonce)
        .map_err(|e| Refusal::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
    let row = ChallengeRow {
        id: random_token(18)?,
        account: req.account.to_string(),
        device: req.device,
        nonce,
        time_ms: now_ms(),
    };
    st.store.put_challenge(&row).await?;
    Ok(Json(Challenge {
        challenge_id: row.id,
        server: st.server_id.clone(),
        nonce: Bytes(row.nonce),
        time_ms: row.time_ms,
    }))
}

async fn respond(
    State(st): St,
    body: Result<Json<ChallengeResponse>, JsonRejection>,
) -> Answer<Session> {
    let Json(req) = body?;
    let unauth = |m: String| Refusal::new(ErrorCode::Unauthorized, m);
    let c = st
        .store
        .take_challenge(&req.challenge_id)
        .await?
        .ok_or_else(|| unauth("unknown or already used challenge".into()))?;
    if now_ms() > c.time_ms + CHALLENGE_TTL_MS {
        return Err(Refusal::new(
            ErrorCode::Expired,
            "the challenge expired; ask for a new one",
        ));
    }
    if c.account != req.account.as_str() || c.device != req.device {
        return Err(unauth(
            "the challenge was issued to another account or device".into(),
        ));
    }
    let account = st
        .store
        .account(&c.account)
        .await?
        .ok_or_else(|| unauth(format!("no account {}", c.account)))?;
    let signed = gatehouse_membership::auth::AuthChallenge {
        server: st.server_id.clone(),
        account: c.account.clone(),
        device: c.device.clone(),
        nonce: c.nonce.clone(),
        time_ms: c.time_ms,
    };
    if !signed.verify(&account.identity, &req.signature.0) {
        return Err(unauth(format!(
            "the challenge signature does not verify under {}'s identity key",
            c.account
        )));
    }
    let token = random_token(32)?;
    let expires_ms = now_ms() + SESSION_TTL_MS;
    st.store
        .put_session(&SessionRow {
            token_hash: token_hash(&token),
            account: c.account.clone(),
            device: c.device.clone(),
            expires_ms,
        })
        .await?;
    Ok(Json(Session {
        token,
        account: req.account,
        device: c.device,
        expires_ms,
    }))
}

// ---------------------------------------------------------------- orgs and the log

fn decode_entry(bytes: &[u8]) -> Result<SignedEntry, Refusal> {
    if bytes.len() > MAX_LOG_ENTRY_BYTES {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "the log entry is {} bytes; the limit is {MAX_LOG_ENTRY_BYTES}",
                bytes.len()
            ),
        ));
    }
    SignedEntry::from_bytes(bytes).map_err(|e| Refusal::bad(e.to_string()))
}

fn log_rejected(e: impl std::fmt::Display) -> Refusal {
    Refusal::new(ErrorCode::LogRejected, e.to_string())
}

/// The members table after `state` (active with their role, removed as such).
fn member_rows(state: &MembershipState) -> Vec<MemberRow> {
    let mut rows: Vec<MemberRow> = state
        .members
        .iter()
        .map(|(a, m)| MemberRow {
            account: a.clone(),
            role: Some(m.role),
        })
        .collect();
    rows.extend(state.removed.keys().map(|a| MemberRow {
        account: a.clone(),
        role: None,
    }));
    rows
}

/// Loads and verifies the org's whole log (the server re-verifies; the
/// stored log is not trusted blindly either).
pub(crate) async fn org_state(st: &AppState, org: &str) -> Result<MembershipState, Refusal> {
    let rows = st.store.log(org, None).await?;
    if rows.is_empty() {
        return Err(Refusal::new(ErrorCode::NotFound, format!("no org {org}")));
    }
    let entries = rows
        .iter()
        .map(|r| SignedEntry::from_bytes(&r.entry))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Refusal::new(ErrorCode::Internal, format!("stored log: {e}")))?;
    MembershipState::verify_chain(&entries)
        .map_err(|e| Refusal::new(ErrorCode::Internal, format!("stored log: {e}")))
}

/// A confirmed card must be the card the account registered here.
async fn check_registered(st: &AppState, card: &SignedCard) -> Result<(), Refusal> {
    let row = st.store.account(&card.card.account).await?;
    match row {
        Some(r) if r.identity == card.card.identity => Ok(()),
        Some(_) => Err(log_rejected(format!(
            "the card of {} differs from the one registered on this server",
            card.card.account
        ))),
        None => Err(log_rejected(format!(
            "{} has no account on this server",
            card.card.account
        ))),
    }
}

async fn create_org(
    State(st): St,
    headers: HeaderMap,
    body: Result<Json<CreateOrg>, JsonRejection>,
) -> Answer<LogAppended> {
    let s = session(&st, &headers).await?;
    let Json(req) = body?;
    let entry = decode_entry(&req.genesis.0)?;
    let state = MembershipState::genesis(&entry).map_err(log_rejected)?;
    if state.org != req.org.as_str() {
        return Err(log_rejected("the genesis entry names another org"));
    }
    if entry.body.signer != s.account {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            "the genesis must be signed by the session's account",
        ));
    }
    if let gatehouse_membership::Op::Genesis { owner, .. } = &entry.body.op {
        check_registered(&st, owner).await?;
    }
    let hash = entry.hash();
    st.store
        .append_log(
            req.org.as_str(),
            &LogRow {
                seq: 0,
                hash,
                entry: req.genesis.0,
            },
            &member_rows(&state),
        )
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                Refusal::new(ErrorCode::Conflict, format!("the org {} exists", req.org))
            }
            e => e.into(),
        })?;
    Ok(Json(LogAppended {
        seq: 0,
        hash: Hash32(hash),
    }))
}

#[derive(Deserialize)]
struct AfterQuery {
    after: Option<u64>,
}

async fn get_log(
    State(st): St,
    headers: HeaderMap,
    Path(org): Path<String>,
    q: Result<Query<AfterQuery>, QueryRejection>,
) -> Answer<LogPage> {
    let s = session(&st, &headers).await?;
    let org: OrgId = parse("org", &org)?;
    let Query(q) = q?;
    // Members and removed members (who learn of their removal this way).
    if st.store.member(org.as_str(), &s.account).await?.is_none() {
        return Err(Refusal::new(
            ErrorCode::NotMember,
            format!("{} is not a member of {org}", s.account),
        ));
    }
    let rows = st.store.log(org.as_str(), q.after).await?;
    let head_seq = match rows.last() {
        Some(r) => r.seq,
        None => st
            .store
            .log(org.as_str(), None)
            .await?
            .last()
            .map(|r| r.seq)
            .unwrap_or(0),
    };
    Ok(Json(LogPage {
        entries: rows
            .into_iter()
            .map(|r| LogEntryBlob {
                seq: r.seq,
                hash: Hash32(r.hash),
                entry: Bytes(r.entry),
            })
            .collect(),
        head_seq,
    }))
}

async fn append_log(
    State(st): St,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Result<Json<AppendLog>, JsonRejection>,
) -> Answer<LogAppended> {
    let s = session(&st, &headers).await?;
    let org: OrgId = parse("org", &org)?;
    let Json(req) = body?;
    let entry = decode_entry(&req.entry.0)?;
    if entry.body.signer != s.account {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            format!(
                "the entry is signed as {}, the session is {}",
                entry.body.signer, s.account
            ),
        ));
    }
    let state = org_state(&st, org.as_str()).await?;
    let next = state.applied(&entry).map_err(log_rejected)?;
    if let gatehouse_membership::Op::Confirm { member, .. } = &entry.body.op {
        check_registered(&st, member).await?;
    }
    let hash = entry.hash();
    st.store
        .append_log(
            org.as_str(),
            &LogRow {
                seq: entry.body.seq,
                hash,
                entry: req.entry.0,
            },
            &member_rows(&next),
        )
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(m) => Refusal::new(
                ErrorCode::Conflict,
                format!(
                    "another entry took seq {} first ({m}); pull the log and retry",
                    entry.body.seq
                ),
            ),
            e => e.into(),
        })?;
    Ok(Json(LogAppended {
        seq: entry.body.seq,
        hash: Hash32(hash),
    }))
}

// ---------------------------------------------------------------- grants

async fn post_grants(
    State(st): St,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Result<Json<PostGrants>, JsonRejection>,
) -> Answer<GrantList> {
    let s = session(&st, &headers).await?;
    let org: OrgId = parse("org", &org)?;
    let Json(req) = body?;
    let state = org_state(&st, org.as_str()).await?;
    if !state.role(&s.account).is_some_and(|r| r.administers()) {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("{} is not an owner or admin of {org}", s.account),
        ));
    }
    let mut rows = Vec::with_capacity(req.grants.len());
    for g in &req.grants {
        if g.grant.len() > MAX_GRANT_BYTES {
            return Err(Refusal::new(
                ErrorCode::TooLarge,
                format!(
                    "a grant is {} bytes; the limit is {MAX_GRANT_BYTES}",
                    g.grant.len()
                ),
            ));
        }
        let sg = SignedGrant::from_bytes(&g.grant.0).map_err(|e| Refusal::bad(e.to_string()))?;
        let b = &sg.body;
        if g.org != org
            || b.org != org.as_str()
            || b.generation != g.generation
            || b.recipient != g.recipient.as_str()
            || b.granter != g.granter.as_str()
            || b.log_seq != g.log_seq
            || g.granter.as_str() != s.account
        {
            return Err(Refusal::bad(
                "a grant's routing fields differ from the signed grant or the session",
            ));
        }
        sg.check(&state).map_err(|e| match e {
            gatehouse_membership::GrantError::BadSignature(_) => {
                Refusal::new(ErrorCode::BadSignature, e.to_string())
            }
            e => Refusal::new(ErrorCode::Forbidden, e.to_string()),
        })?;
        rows.push(GrantRow {
            generation: g.generation,
            recipient: g.recipient.to_string(),
            granter: g.granter.to_string(),
            log_seq: g.log_seq,
            grant: g.grant.0.clone(),
        });
    }
    st.store.put_grants(org.as_str(), &rows).await?;
    Ok(Json(GrantList { grants: req.grants }))
}

async fn get_grants(
    State(st): St,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> Answer<GrantList> {
    let s = session(&st, &headers).await?;
    let org: OrgId = parse("org", &org)?;
    member_role(&st, &org, &s.account).await?;
    let rows = st.store.grants_for(org.as_str(), &s.account).await?;
    let recipient = AccountId::new(s.account.clone()).map_err(|e| Refusal::bad(e.to_string()))?;
    Ok(Json(GrantList {
        grants: rows
            .into_iter()
            .map(|r| {
                Ok(KeyGrant {
                    org: org.clone(),
                    generation: r.generation,
                    recipient: recipient.clone(),
                    granter: AccountId::new(r.granter)
                        .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?,
                    log_seq: r.log_seq,
                    grant: Bytes(r.grant),
                })
            })
            .collect::<Result<_, Refusal>>()?,
    }))
}

// ---------------------------------------------------------------- records

/// The role of an active member, or why not.
async fn member_role(st: &AppState, org: &OrgId, account: &str) -> Result<Role, Refusal> {
    match st.store.member(org.as_str(), account).await? {
        Some(MemberRow { role: Some(r), .. }) => Ok(r),
        Some(MemberRow { role: None, .. }) => Err(Refusal::new(
            ErrorCode::NotMember,
            format!("{account} was removed from {org}"),
        )),
        None => Err(Refusal::new(
            ErrorCode::NotMember,
            format!("{account} is not a member of {org}"),
        )),
    }
}

async fn authorize(
    st: &AppState,
    s: &SessionRow,
    space: &SpaceId,
    write: bool,
) -> Result<(), Refusal> {
    match space {
        SpaceId::Private(a) if a.as_str() == s.account => Ok(()),
        SpaceId::Private(_) => Err(Refusal::new(
            ErrorCode::Forbidden,
            "a private space is only its own account's",
        )),
        SpaceId::Org(o) => {
            let role = member_role(st, o, &s.account).await?;
            if write && role == Role::Viewer {
                return Err(Refusal::new(
                    ErrorCode::Forbidden,
                    format!("{} is a viewer of {o} and may not write records", s.account),
                ));
            }
            Ok(())
        }
    }
}

fn scope_of(space: &SpaceId) -> Scope {
    match space {
        SpaceId::Org(o) => Scope::Org(o.to_string()),
        SpaceId::Private(a) => Scope::Private(a.to_string()),
    }
}

/// Checks one envelope: shape and size, the writer is the session, and the
/// writer's signature covers exactly this envelope.
fn check_record(
    i: usize,
    r: &RecordEnvelope,
    space: &SpaceId,
    s: &SessionRow,
    identity: &[u8; 32],
) -> Result<(), Refusal> {
    let at = |m: String| format!("record {i} ({}/{}): {m}", r.kind, r.id);
    if &r.space != space {
        return Err(Refusal::bad(at(format!(
            "is for space {}, pushed to {space}",
            r.space
        ))));
    }
    r.check_shape().map_err(|e| match e {
        ShapeError::TooLarge { .. } => Refusal::new(ErrorCode::TooLarge, at(e.to_string())),
        e => Refusal::bad(at(e.to_string())),
    })?;
    if r.writer.as_str() != s.account {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            at(format!(
                "names writer {}, the session is {}",
                r.writer, s.account
            )),
        ));
    }
    let w = SignedWrite::from_bytes(&r.write.0).map_err(|e| Refusal::bad(at(e.to_string())))?;
    let b = &w.body;
    let content = content_hash(
        &r.plain,
        r.sealed
            .iter()
            .map(|f| (f.field.as_str(), f.ciphertext.as_slice())),
    );
    if b.scope != scope_of(space)
        || b.kind != r.kind.as_str()
        || b.id != r.id.as_str()
        || b.revision != r.revision
        || b.base_revision != r.base_revision
        || b.deleted != r.deleted
        || b.writer != r.writer.as_str()
        || b.content != content
    {
        return Err(Refusal::new(
            ErrorCode::BadSignature,
            at("the signed write does not describe this envelope".into()),
        ));
    }
    if !w.verify(identity) {
        return Err(Refusal::new(
            ErrorCode::BadSignature,
            at(format!(
                "the write signature does not verify under {}'s identity key",
                s.account
            )),
        ));
    }
    Ok(())
}

async fn push(
    State(st): St,
    headers: HeaderMap,
    Path(space): Path<String>,
    body: Result<Json<PushRecords>, JsonRejection>,
) -> Answer<PushResponse> {
    let s = session(&st, &headers).await?;
    let space: SpaceId = parse("space", &space)?;
    let Json(req) = body?;
    // An org member's role is checked by the store inside the push's own
    // transaction (a removal committed first is never missed); a private
    // space is its owner's only.
    let writer = match &space {
        SpaceId::Org(o) => Writer::OrgMember {
            org: o.as_str(),
            account: &s.account,
        },
        SpaceId::Private(_) => {
            authorize(&st, &s, &space, true).await?;
            Writer::SpaceOwner
        }
    };
    if req.records.len() > MAX_PUSH_RECORDS {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "{} records in one push; the limit is {MAX_PUSH_RECORDS}",
                req.records.len()
            ),
        ));
    }
    let identity = st
        .identity(&s.account)
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::Unauthorized, "the session's account is gone"))?;
    let mut writes = Vec::with_capacity(req.records.len());
    for (i, r) in req.records.iter().enumerate() {
        check_record(i, r, &space, &s, &identity)?;
        writes.push(RecordWrite {
            kind: r.kind.to_string(),
            id: r.id.to_string(),
            revision: r.revision,
            base_revision: r.base_revision,
            envelope: serde_json::to_string(r)
                .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?,
        });
    }
    let (outcomes, head_seq) = st.store.push(&space.to_string(), writer, &writes).await?;
    Ok(Json(PushResponse {
        results: outcomes
            .into_iter()
            .map(|o| match o {
                CasOutcome::Accepted { seq } => PushResult::Accepted { seq },
                CasOutcome::Conflict {
                    current_revision,
                    current_seq,
                } => PushResult::Conflict {
                    current_revision,
                    current_seq,
                },
            })
            .collect(),
        head_seq,
    }))
}

#[derive(Deserialize)]
struct PullQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

async fn pull(
    State(st): St,
    headers: HeaderMap,
    Path(space): Path<String>,
    q: Result<Query<PullQuery>, QueryRejection>,
) -> Answer<PullResponse> {
    let s = session(&st, &headers).await?;
    let space: SpaceId = parse("space", &space)?;
    let Query(q) = q?;
    authorize(&st, &s, &space, false).await?;
    let limit = q
        .limit
        .unwrap_or(MAX_PULL_RECORDS)
        .clamp(1, MAX_PULL_RECORDS);
    let (rows, head_seq) = st.store.pull(&space.to_string(), q.after, limit).await?;
    let more = rows.len() == limit && rows.last().is_some_and(|(seq, _)| *seq < head_seq);
    let records = rows
        .into_iter()
        .map(|(seq, env)| {
            serde_json::from_str(&env)
                .map(|record| PulledRecord { seq, record })
                .map_err(|e| Refusal::new(ErrorCode::Internal, format!("stored record: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Json(PullResponse {
        records,
        head_seq,
        more,
    }))
}

#[derive(Deserialize)]
struct WaitQuery {
    #[serde(default)]
    after: u64,
    timeout_ms: Option<u64>,
}

async fn wait(
    State(st): St,
    headers: HeaderMap,
    Path(space): Path<String>,
    q: Result<Query<WaitQuery>, QueryRejection>,
) -> Answer<WaitResponse> {
    let s = session(&st, &headers).await?;
    let space: SpaceId = parse("space", &space)?;
    let Query(q) = q?;
    authorize(&st, &s, &space, false).await?;
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(30_000).min(MAX_WAIT_MS));
    let deadline = tokio::time::Instant::now() + timeout;
    let key = space.to_string();
    let (mut feed, poll) = st.store.change_feed();
    loop {
        feed.mark_unchanged();
        let head_seq = st.store.head(&key).await?;
        if head_seq > q.after {
            return Ok(Json(WaitResponse {
                head_seq,
                changed: true,
            }));
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(Json(WaitResponse {
                head_seq,
                changed: false,
            }));
        }
        let _ = tokio::time::timeout(left.min(poll), feed.changed()).await;
    }
}
