//! A small HTTPS client of the sync API, for syncd, the CLI, the tests and
//! the benchmark: one method per endpoint, typed bodies from syncproto,
//! errors as the server's [`ApiError`], and the server certificate pinned by
//! its SHA-256 fingerprint (the `--self-signed` mode's printout). Its own
//! crate so that syncd and the CLI do not link the server (axum, SQLite,
//! PostgreSQL).
//!
//! Owns: certificate pinning ([`PinnedCert`]), the fingerprint format (64
//! lowercase hex digits of SHA-256 over the DER certificate), and the
//! request plumbing.
//! Must never: accept a certificate whose fingerprint is not the pinned one,
//! or hold a key (signing is done by the caller with a key it passes in).

use std::sync::Arc;
use std::time::Duration;

use gatehouse_membership::auth::AuthChallenge;
use gatehouse_syncproto::{
    AccountId, AccountInfo, ApiError, AppendLog, BundleParams, Bytes, Challenge, ChallengeRequest,
    ChallengeResponse, CreateOrg, FetchBundle, GrantList, KeyBundle, KeyGrant, LogAppended,
    LogPage, OrgId, PostGrants, PullResponse, PushRecords, PushResponse, PutBundle, PutRelay,
    RecordEnvelope, RegisterAccount, RelayFrames, RelayInfo, SendFrame, ServerInfo, Session,
    SpaceId, WaitResponse, paths,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Installs the ring provider as the process default (once; later calls are no-ops).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// SHA-256 of a DER certificate, lowercase hex (what a pin is).
pub fn fingerprint(cert: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(cert)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `pin` is a certificate pin: 64 hex digits (`:` separators allowed).
pub fn valid_pin(pin: &str) -> bool {
    let p = pin.trim().replace(':', "");
    p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit())
}

/// HTTP methods for [`SyncClient::raw`].
pub use reqwest::Method;

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("server refused ({status}): {error}")]
    Api { status: u16, error: ApiError },
    /// No answer (down, TLS failure, pin mismatch, timeout).
    #[error("no answer from the sync server: {0}")]
    Transport(String),
    /// An answer that is not what the protocol says.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The server's error code, if it answered with one.
    pub fn code(&self) -> Option<gatehouse_syncproto::ErrorCode> {
        match self {
            ClientError::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }
}

/// Accepts exactly one server certificate: the one whose SHA-256 is the pin.
#[derive(Debug)]
pub struct PinnedCert {
    pin: String,
    algs: WebPkiSupportedAlgorithms,
}

impl PinnedCert {
    pub fn new(pin_hex: &str) -> PinnedCert {
        PinnedCert {
            pin: pin_hex.trim().to_ascii_lowercase().replace(':', ""),
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server certificate's SHA-256 is {got}, not the pinned {}",
                self.pin
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A client of one server, optionally signed in.
#[derive(Clone)]
pub struct SyncClient {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl SyncClient {
    /// `base` is `https://HOST:PORT`; `pin` the certificate's SHA-256 (hex).
    pub fn new(base: &str, pin: &str) -> Result<SyncClient, ClientError> {
        install_provider();
        let cfg = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCert::new(pin)))
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(cfg)
            .timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(SyncClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            token: None,
        })
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The same client using `token` as its session.
    pub fn with_token(&self, token: &str) -> SyncClient {
        SyncClient {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends raw bytes (tests of malformed bodies); returns status and body text.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, String), ClientError> {
        let rq = self
            .http
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(body);
        let (status, bytes) = self.send(rq).await?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// The one place a request leaves: adds the session, sends, reads the body.
    async fn send(&self, mut rq: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), ClientError> {
        if let Some(t) = &self.token {
            rq = rq.bearer_auth(t);
        }
        let r = rq
            .send()
            .await
            .map_err(|e| ClientError::Transport(error_chain(&e)))?;
        let status = r.status().as_u16();
        let bytes = r
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(error_chain(&e)))?;
        Ok((status, bytes.to_vec()))
    }

    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError> {
        let mut rq = self.http.request(method, self.url(path));
        if let Some(b) = body {
            rq = rq.json(b);
        }
        let (status, bytes) = self.send(rq).await?;
        if status >= 400 {
            let error = serde_json::from_slice::<ApiError>(&bytes).map_err(|_| {
                ClientError::Protocol(format!(
                    "status {status} with a body that is not an error: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ))
            })?;
            return Err(ClientError::Api { status, error });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        self.call::<(), R>(reqwest::Method::GET, path, None).await
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn info(&self) -> Result<ServerInfo, ClientError> {
        self.get("/v1/info").await
    }

    /// Registers an account from `postcard(SignedCard)`.
    pub async fn register(&self, card: Vec<u8>) -> Result<AccountInfo, ClientError> {
        self.post("/v1/accounts", &RegisterAccount { card: Bytes(card) })
            .await
    }

    pub async fn account(&self, account: &str) -> Result<AccountInfo, ClientError> {
        self.get(&format!("/v1/accounts/{account}")).await
    }

    pub async fn challenge(&self, account: &str, device: &str) -> Result<Challenge, ClientError> {
        self.post(
            "/v1/auth/challenge",
            &ChallengeRequest {
                account: AccountId::new(account)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?,
                device: device.into(),
            },
        )
        .await
    }

    pub async fn respond(&self, r: &ChallengeResponse) -> Result<Session, ClientError> {
        self.post("/v1/auth/response", r).await
    }

    /// Challenge, sign with `identity_seed` (what the broker does), respond;
    /// returns a client using the new session.
    pub async fn sign_in(
        &self,
        account: &str,
        device: &str,
        identity_seed: &[u8; 32],
    ) -> Result<SyncClient, ClientError> {
        self.sign_in_with(account, device, |body| async move {
            Ok(body.sign(identity_seed))
        })
        .await
    }

    /// Challenge, have `sign` sign the [`AuthChallenge`] body (syncd asks
    /// the broker), respond; returns a client using the new session.
    pub async fn sign_in_with<F, Fut>(
        &self,
        account: &str,
        device: &str,
        sign: F,
    ) -> Result<SyncClient, ClientError>
    where
        F: FnOnce(AuthChallenge) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, ClientError>>,
    {
        let c = self.challenge(account, device).await?;
        let signature = sign(AuthChallenge {
            server: c.server.clone(),
            account: account.into(),
            device: device.into(),
            nonce: c.nonce.0.clone(),
            time_ms: c.time_ms,
        })
        .await?;
        let s = self
            .respond(&ChallengeResponse {
                challenge_id: c.challenge_id,
                account: AccountId::new(account)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?,
                device: device.into(),
                signature: Bytes(signature),
            })
            .await?;
        Ok(self.with_token(&s.token))
    }

    pub async fn create_org(
        &self,
        org: &OrgId,
        genesis: Vec<u8>,
    ) -> Result<LogAppended, ClientError> {
        self.post(
            "/v1/orgs",
            &CreateOrg {
                org: org.clone(),
                genesis: Bytes(genesis),
            },
        )
        .await
    }

    pub async fn append_log(
        &self,
        org: &OrgId,
        entry: Vec<u8>,
    ) -> Result<LogAppended, ClientError> {
        self.post(
            &format!("/v1/orgs/{org}/log"),
            &AppendLog {
                entry: Bytes(entry),
            },
        )
        .await
    }

    pub async fn log(&self, org: &OrgId, after: Option<u64>) -> Result<LogPage, ClientError> {
        match after {
            Some(a) => self.get(&format!("/v1/orgs/{org}/log?after={a}")).await,
            None => self.get(&format!("/v1/orgs/{org}/log")).await,
        }
    }

    pub async fn post_grants(
        &self,
        org: &OrgId,
        grants: Vec<KeyGrant>,
    ) -> Result<GrantList, ClientError> {
        self.post(&format!("/v1/orgs/{org}/grants"), &PostGrants { grants })
            .await
    }

    pub async fn grants(&self, org: &OrgId) -> Result<GrantList, ClientError> {
        self.get(&format!("/v1/orgs/{org}/grants")).await
    }

    pub async fn push(
        &self,
        space: &SpaceId,
        records: Vec<RecordEnvelope>,
    ) -> Result<PushResponse, ClientError> {
        self.post(
            &format!("/v1/spaces/{space}/records"),
            &PushRecords { records },
        )
        .await
    }

    pub async fn pull(
        &self,
        space: &SpaceId,
        after: u64,
        limit: Option<usize>,
    ) -> Result<PullResponse, ClientError> {
        let limit = limit.map(|l| format!("&limit={l}")).unwrap_or_default();
        self.get(&format!("/v1/spaces/{space}/records?after={after}{limit}"))
            .await
    }

    /// Stores this session's account's key bundle.
    pub async fn put_bundle(&self, b: &PutBundle) -> Result<BundleParams, ClientError> {
        self.call(reqwest::Method::PUT, paths::BUNDLE, Some(b))
            .await
    }

    /// The public derivation parameters of `account`'s key bundle.
    pub async fn bundle_params(&self, account: &str) -> Result<BundleParams, ClientError> {
        self.get(&paths::BUNDLE_PARAMS.replace("{account}", account))
            .await
    }

    /// `account`'s sealed key bundle, against the verifier both secrets derive.
    pub async fn fetch_bundle(
        &self,
        account: &str,
        verifier: &[u8],
    ) -> Result<KeyBundle, ClientError> {
        self.post(
            paths::BUNDLE_FETCH,
            &FetchBundle {
                account: AccountId::new(account)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?,
                verifier: Bytes(verifier.to_vec()),
            },
        )
        .await
    }

    /// Puts a relay channel's share list (`postcard(SignedShareList)`).
    pub async fn put_relay(&self, channel: &str, list: Vec<u8>) -> Result<RelayInfo, ClientError> {
        self.call(
            reqwest::Method::PUT,
            &paths::RELAY.replace("{channel}", channel),
            Some(&PutRelay { list: Bytes(list) }),
        )
        .await
    }

    pub async fn relay(&self, channel: &str) -> Result<RelayInfo, ClientError> {
        self.get(&paths::RELAY.replace("{channel}", channel)).await
    }

    /// Posts one sealed frame; its seq.
    pub async fn send_frame(
        &self,
        channel: &str,
        epoch: u64,
        frame: Vec<u8>,
    ) -> Result<u64, ClientError> {
        self.post(
            &paths::RELAY_FRAMES.replace("{channel}", channel),
            &SendFrame {
                epoch,
                body: Bytes(frame),
            },
        )
        .await
    }

    /// Frames after `after`, waiting up to `timeout_ms` for one.
    pub async fn frames(
        &self,
        channel: &str,
        after: u64,
        timeout_ms: u64,
    ) -> Result<RelayFrames, ClientError> {
        self.get(&format!(
            "{}?after={after}&timeout_ms={timeout_ms}",
            paths::RELAY_FRAMES.replace("{channel}", channel)
        ))
        .await
    }

    pub async fn wait(
        &self,
        space: &SpaceId,
        after: u64,
        timeout_ms: u64,
    ) -> Result<WaitResponse, ClientError> {
        self.get(&format!(
            "/v1/spaces/{space}/wait?after={after}&timeout_ms={timeout_ms}"
        ))
        .await
    }
}

/// An error with its sources (reqwest hides the TLS reason in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
