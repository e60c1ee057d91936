//! How the server says no: every error is an [`ApiError`] body with the
//! HTTP status of its code, and a message naming what was wrong.
//!
//! Owns: [`Refusal`] and the mapping of extractor and storage failures to it.
//! Must never: put a request's ciphertext or a token in a message.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_syncproto::limits::MAX_BODY_BYTES;
use gatehouse_syncproto::{ApiError, ErrorCode};

use crate::store::StoreError;

#[derive(Debug)]
pub struct Refusal(pub ApiError);

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal(ApiError::new(code, message))
    }
    pub fn bad(message: impl Into<String>) -> Refusal {
        Refusal::new(ErrorCode::BadRequest, message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        match e {
            StoreError::Conflict(m) => Refusal::new(ErrorCode::Conflict, m),
            StoreError::NotMember(m) => Refusal::new(ErrorCode::NotMember, m),
            StoreError::ReadOnlyRole(m) => Refusal::new(ErrorCode::Forbidden, m),
            StoreError::Db(m) => Refusal::new(
                ErrorCode::Internal,
                format!("storage failed, nothing was applied: {m}"),
            ),
        }
    }
}

impl From<JsonRejection> for Refusal {
    fn from(r: JsonRejection) -> Refusal {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::new(
                ErrorCode::TooLarge,
                format!("the request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
            )
        } else {
            Refusal::bad(format!("malformed body: {}", r.body_text()))
        }
    }
}

impl From<QueryRejection> for Refusal {
    fn from(r: QueryRejection) -> Refusal {
        Refusal::bad(format!("malformed query: {}", r.body_text()))
    }
}

pub type Answer<T> = Result<Json<T>, Refusal>;
