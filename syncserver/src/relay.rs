//! The live-sharing relay (issue 14): a sharer puts a channel's signed
//! participant list, then the sharer and the participants of the current
//! epoch post sealed frames and long-poll for new ones.
//!
//! The server checks the list as every client does (decoded exactly, signed
//! by the session's account, every participant an active member of the org
//! with the keys sealed to their card: `SignedShareList::check` against the
//! org's membership log) and lets only the creator replace it, with a higher
//! epoch. A frame is accepted only from the creator or a participant of the
//! current epoch, for that epoch (so a revoked participant cannot post),
//! checked in the store's own transaction.
//! Must never: open a frame or a participant's keys (it has no key), or
//! serve a channel to an account the current list does not name.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use gatehouse_membership::share::SignedShareList;
use gatehouse_syncproto::limits::{
    MAX_RELAY_FRAME_BYTES, MAX_RELAY_FRAMES, MAX_RELAY_LIST_BYTES, MAX_WAIT_MS,
};
use gatehouse_syncproto::{
    AccountId, Bytes, ChannelId, ErrorCode, OrgId, PutRelay, RelayFrame, RelayFrames, RelayInfo,
    SendFrame,
};
use serde::Deserialize;

use crate::http::{AppState, St, now_ms, org_state, parse, session};
use crate::refusal::{Answer, Refusal};
use crate::store::RelayRow;

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal::new(ErrorCode::Internal, format!("stored relay channel: {e}"))
}

/// `PUT /v1/relay/{channel}`.
pub async fn put_relay(
    State(st): St,
    headers: HeaderMap,
    Path(channel): Path<String>,
    body: Result<Json<PutRelay>, JsonRejection>,
) -> Answer<RelayInfo> {
    let s = session(&st, &headers).await?;
    let channel: ChannelId = parse("channel", &channel)?;
    let Json(body) = body?;
    if body.list.len() > MAX_RELAY_LIST_BYTES {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "share list of {} bytes is over the limit of {MAX_RELAY_LIST_BYTES}",
                body.list.len()
            ),
        ));
    }
    let signed =
        SignedShareList::from_bytes(&body.list.0).map_err(|e| Refusal::bad(e.to_string()))?;
    let l = &signed.list;
    if l.channel != channel.as_str() {
        return Err(Refusal::bad(format!(
            "the share list is for channel {:?}, not {channel}",
            l.channel
        )));
    }
    if l.sharer != s.account {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            format!(
                "the share list's sharer is {:?}, not {}",
                l.sharer, s.account
            ),
        ));
    }
    let org: OrgId = parse("org", &l.org)?;
    let state = org_state(&st, org.as_str()).await?;
    if !state.members.contains_key(&s.account) {
        return Err(Refusal::new(
            ErrorCode::NotMember,
            format!("{} is not a member of {org}", s.account),
        ));
    }
    signed
        .check(&state)
        .map_err(|e| Refusal::new(ErrorCode::BadSignature, e.to_string()))?;
    let row = RelayRow {
        channel: channel.to_string(),
        org: org.to_string(),
        creator: s.account.clone(),
        epoch: l.epoch,
        participants: l.participants.iter().map(|p| p.account.clone()).collect(),
        list: body.list.0,
    };
    st.store.put_relay(&row).await?;
    info(&st, &channel, &s.account).await.map(Json)
}

/// The channel as `account` may see it: its creator or a current participant.
async fn info(st: &AppState, channel: &ChannelId, account: &str) -> Result<RelayInfo, Refusal> {
    let Some((row, head_seq)) = st.store.relay(channel.as_str()).await? else {
        return Err(Refusal::new(
            ErrorCode::NotFound,
            format!("no relay channel {channel}"),
        ));
    };
    if row.creator != account && !row.participants.iter().any(|p| p == account) {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("{account} is not a participant of relay channel {channel}"),
        ));
    }
    Ok(RelayInfo {
        channel: channel.clone(),
        org: OrgId::new(row.org).map_err(internal)?,
        sharer: AccountId::new(row.creator).map_err(internal)?,
        epoch: row.epoch,
        participants: row
            .participants
            .into_iter()
            .map(AccountId::new)
            .collect::<Result<_, _>>()
            .map_err(internal)?,
        list: Bytes(row.list),
        head_seq,
    })
}

/// `GET /v1/relay/{channel}`.
pub async fn get_relay(
    State(st): St,
    headers: HeaderMap,
    Path(channel): Path<String>,
) -> Answer<RelayInfo> {
    let s = session(&st, &headers).await?;
    let channel: ChannelId = parse("channel", &channel)?;
    info(&st, &channel, &s.account).await.map(Json)
}

/// `POST /v1/relay/{channel}/frames`: the frame's seq.
pub async fn send_frame(
    State(st): St,
    headers: HeaderMap,
    Path(channel): Path<String>,
    body: Result<Json<SendFrame>, JsonRejection>,
) -> Answer<u64> {
    let s = session(&st, &headers).await?;
    let channel: ChannelId = parse("channel", &channel)?;
    let Json(frame) = body?;
    if frame.body.len() > MAX_RELAY_FRAME_BYTES {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "relay frame of {} bytes is over the limit of {MAX_RELAY_FRAME_BYTES}",
                frame.body.len()
            ),
        ));
    }
    let appended = st
        .store
        .append_frame(
            channel.as_str(),
            &s.account,
            frame.epoch,
            &frame.body.0,
            now_ms(),
        )
        .await?;
    match appended {
        Some(seq) => Ok(Json(seq)),
        None => {
            // Say why (a read after the refusal: the reason may be stale, the refusal is not).
            let why = match st.store.relay(channel.as_str()).await? {
                None => {
                    return Err(Refusal::new(
                        ErrorCode::NotFound,
                        format!("no relay channel {channel}"),
                    ));
                }
                Some((row, _))
                    if row.creator != s.account && !row.participants.contains(&s.account) =>
                {
                    format!(
                        "{} is not a participant of relay channel {channel}",
                        s.account
                    )
                }
                Some((row, _)) => format!(
                    "relay channel {channel} is at epoch {}, not {}: the frame was sealed under an old list",
                    row.epoch, frame.epoch
                ),
            };
            Err(Refusal::new(ErrorCode::Forbidden, why))
        }
    }
}

#[derive(Deserialize)]
pub struct FramesQuery {
    #[serde(default)]
    after: u64,
    timeout_ms: Option<u64>,
}

/// `GET /v1/relay/{channel}/frames?after=SEQ&timeout_ms=T`.
pub async fn frames(
    State(st): St,
    headers: HeaderMap,
    Path(channel): Path<String>,
    q: Result<Query<FramesQuery>, QueryRejection>,
) -> Answer<RelayFrames> {
    let s = session(&st, &headers).await?;
    let channel: ChannelId = parse("channel", &channel)?;
    let Query(q) = q?;
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(0).min(MAX_WAIT_MS));
    let deadline = tokio::time::Instant::now() + timeout;
    let (mut feed, poll) = st.store.change_feed();
    loop {
        feed.mark_unchanged();
        // Checked at every read: a participant revoked while waiting gets nothing more.
        info(&st, &channel, &s.account).await?;
        let (rows, head_seq) = st
            .store
            .frames(channel.as_str(), q.after, MAX_RELAY_FRAMES)
            .await?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !rows.is_empty() || left.is_zero() {
            let frames = rows
                .into_iter()
                .map(|r| {
                    Ok(RelayFrame {
                        seq: r.seq,
                        sender: AccountId::new(r.sender).map_err(internal)?,
                        epoch: r.epoch,
                        body: Bytes(r.body),
                        at_ms: r.at_ms,
                    })
                })
                .collect::<Result<_, Refusal>>()?;
            return Ok(Json(RelayFrames { frames, head_seq }));
        }
        let _ = tokio::time::timeout(left.min(poll), feed.changed()).await;
    }
}
