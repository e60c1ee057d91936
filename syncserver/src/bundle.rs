//! The two-secret key bundle endpoints: a device stores its account's
//! sealed key bundle (`PUT /v1/bundle`), and a new device, which has only
//! the passphrase and the Secret Key, fetches the public derivation
//! parameters (`GET /v1/bundle/params/{account}`) and then the bundle
//! against the verifier both secrets derive (`POST /v1/bundle/fetch`).
//!
//! The server stores the verifier only as a slow hash (Argon2id under its
//! own salt), lets one try run at a time per account, and after
//! [`BUNDLE_MAX_WRONG`] wrong verifiers in [`BUNDLE_WINDOW_MS`] answers
//! `rate_limited` until the window ends — the same on every instance,
//! because the counters live in the database.
//! Must never: store or log the verifier, hand out a bundle for a wrong
//! verifier, or let a refused try cost the caller less than the slow hash.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use gatehouse_syncproto::limits::MAX_BUNDLE_BYTES;
use gatehouse_syncproto::{
    AccountId, ApiError, BundleParams, Bytes, ErrorCode, FetchBundle, KdfParams, KeyBundle,
    PutBundle,
};

use crate::http::{St, now_ms, parse, session};
use crate::refusal::{Answer, Refusal};
use crate::store::{BUNDLE_MAX_WRONG, BUNDLE_WINDOW_MS, BundleRow, BundleTry};

/// The client's Argon2id parameters the server accepts (stronger is fine,
/// up to what a phone could still compute; weaker is refused).
fn check_kdf(k: &KdfParams) -> Result<(), Refusal> {
    let bad = |m: String| Err(Refusal::bad(format!("key bundle kdf: {m}")));
    if k.algorithm != "argon2id" {
        return bad(format!("algorithm {:?}; only argon2id", k.algorithm));
    }
    if !(16..=64).contains(&k.salt.len()) {
        return bad(format!("salt of {} bytes; 16 to 64", k.salt.len()));
    }
    if !(8 * 1024..=1024 * 1024).contains(&k.m_kib) {
        return bad(format!("m_kib {}; 8192 to 1048576", k.m_kib));
    }
    if !(1..=10).contains(&k.t) || !(1..=4).contains(&k.p) {
        return bad(format!("t {} and p {}; t 1 to 10, p 1 to 4", k.t, k.p));
    }
    Ok(())
}

/// Argon2id(verifier, salt) with the server's fixed parameters, off the
/// async threads.
async fn slow_hash(verifier: Vec<u8>, salt: Vec<u8>) -> Result<Vec<u8>, Refusal> {
    tokio::task::spawn_blocking(move || {
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(32))
            .map_err(|e| format!("verifier hash parameters: {e}"))?;
        let mut out = vec![0u8; 32];
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(&verifier, &salt, &mut out)
            .map_err(|e| format!("verifier hash: {e}"))?;
        Ok::<_, String>(out)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|m| Refusal::new(ErrorCode::Internal, m))
}

fn verifier_bytes(v: &Bytes) -> Result<Vec<u8>, Refusal> {
    if v.len() != 32 {
        return Err(Refusal::bad(format!(
            "the verifier is {} bytes; it is 32",
            v.len()
        )));
    }
    Ok(v.0.clone())
}

fn stored_kdf(row: &BundleRow) -> Result<KdfParams, Refusal> {
    serde_json::from_str(&row.kdf)
        .map_err(|e| Refusal::new(ErrorCode::Internal, format!("stored kdf: {e}")))
}

/// `PUT /v1/bundle`: the session's own account only.
pub async fn put_bundle(
    State(st): St,
    headers: HeaderMap,
    body: Result<Json<PutBundle>, JsonRejection>,
) -> Answer<BundleParams> {
    let s = session(&st, &headers).await?;
    let Json(req) = body?;
    check_kdf(&req.kdf)?;
    let verifier = verifier_bytes(&req.verifier)?;
    if req.bundle.is_empty() || req.bundle.len() > MAX_BUNDLE_BYTES {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "the key bundle is {} bytes; it must be 1 to {MAX_BUNDLE_BYTES}",
                req.bundle.len()
            ),
        ));
    }
    let mut salt = vec![0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| Refusal::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
    let verifier_hash = slow_hash(verifier, salt.clone()).await?;
    let account = AccountId::new(s.account.clone()).map_err(|e| Refusal::bad(e.to_string()))?;
    st.store
        .put_bundle(&BundleRow {
            account: s.account.clone(),
            kdf: serde_json::to_string(&req.kdf)
                .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?,
            verifier_salt: salt,
            verifier_hash,
            bundle: req.bundle.0,
            updated_ms: now_ms(),
        })
        .await?;
    Ok(Json(BundleParams {
        account,
        kdf: req.kdf,
    }))
}

/// `GET /v1/bundle/params/{account}`: public, so a new device can derive.
pub async fn bundle_params(State(st): St, Path(account): Path<String>) -> Answer<BundleParams> {
    let account: AccountId = parse("account", &account)?;
    let row = st.store.bundle(account.as_str()).await?.ok_or_else(|| {
        Refusal::new(
            ErrorCode::NotFound,
            format!("{account} has no key bundle here"),
        )
    })?;
    Ok(Json(BundleParams {
        kdf: stored_kdf(&row)?,
        account,
    }))
}

fn rate_limited(account: &AccountId, retry_after_ms: u64, failures: u32) -> Refusal {
    let why = if failures >= BUNDLE_MAX_WRONG {
        format!(
            "{failures} wrong passphrase or Secret Key tries for {account} in {} minutes",
            BUNDLE_WINDOW_MS / 60_000
        )
    } else {
        format!("another try for {account} is running")
    };
    let mut e = ApiError::new(
        ErrorCode::RateLimited,
        format!("{why}; try again in {} s", retry_after_ms.div_ceil(1000)),
    );
    e.retry_after_ms = Some(retry_after_ms);
    Refusal(e)
}

/// `POST /v1/bundle/fetch`: the bundle for the right verifier, one try at a time.
pub async fn fetch_bundle(
    State(st): St,
    body: Result<Json<FetchBundle>, JsonRejection>,
) -> Answer<KeyBundle> {
    let Json(req) = body?;
    let verifier = verifier_bytes(&req.verifier)?;
    let account = req.account;
    let no_bundle = || {
        Refusal::new(
            ErrorCode::NotFound,
            format!("{account} has no key bundle here"),
        )
    };
    match st
        .store
        .claim_bundle_try(account.as_str(), now_ms())
        .await?
    {
        BundleTry::Claimed { .. } => {}
        BundleTry::Wait {
            retry_after_ms,
            failures,
        } => return Err(rate_limited(&account, retry_after_ms, failures)),
        BundleTry::NoBundle => return Err(no_bundle()),
    }
    let row = st
        .store
        .bundle(account.as_str())
        .await?
        .ok_or_else(no_bundle)?;
    let hash = slow_hash(verifier, row.verifier_salt.clone()).await?;
    let right = hash.len() == row.verifier_hash.len()
        && hash
            .iter()
            .zip(&row.verifier_hash)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    let failures = st.store.end_bundle_try(account.as_str(), right).await?;
    if !right {
        let left = BUNDLE_MAX_WRONG.saturating_sub(failures);
        return Err(Refusal::new(
            ErrorCode::Unauthorized,
            format!(
                "wrong passphrase or Secret Key for {account} ({failures} wrong in this window; {left} more before a {}-minute wait)",
                BUNDLE_WINDOW_MS / 60_000
            ),
        ));
    }
    Ok(Json(KeyBundle {
        kdf: stored_kdf(&row)?,
        account,
        bundle: Bytes(row.bundle),
    }))
}
