//! The body guard: every request body is read here, once, before anything else looks at
//! it, so a body too large or too slow is answered in the error shape at once.
//!
//! - A declared `Content-Length` over the endpoint's limit is `413 payload_too_large`
//!   before a byte of it is read; a body without a length that grows past the limit is
//!   the same.
//! - Under `/v1`, no body is read before the caller's key is known (`401` otherwise),
//!   and the batch's larger body only from a partner's till (`403` otherwise); the
//!   caller is kept for the handler.
//! - A body that has not fully arrived within [`crate::server::Limits::body_read_timeout`]
//!   is `408 body_timeout`.
//! - A body that breaks off (the client went away) is `400 invalid_body`.
//!
//! Handlers and the idempotency layer then read the buffered bytes, which cannot fail.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Bodies of ordinary requests.
pub const BODY_LIMIT: usize = 64 * 1024;
/// The end-of-day batch of up to 1,000 receipts.
pub const BATCH_BODY_LIMIT: usize = 8 * 1024 * 1024;
pub const BATCH_PATH: &str = "/v1/transactions/batch";

/// The largest body `path` takes.
pub fn limit_for(path: &str) -> usize {
    if path == BATCH_PATH {
        BATCH_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than this endpoint accepts ({limit} bytes)"),
    )
}

pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let limit = limit_for(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return unread(too_large(limit));
    }
    if declared == Some(0) || (declared.is_none() && !req.headers().contains_key(header::TRANSFER_ENCODING)) {
        return next.run(req).await;
    }
    // A web page calling the API on a signed-in person's behalf has set who calls
    // already (an extension, which no client can send).
    if req.uri().path().starts_with("/v1/") && req.extensions().get::<crate::state::Principal>().is_none() {
        let who = match crate::auth::bearer(req.headers()) {
            Some(key) => match state.authenticate(key.trim()).await {
                Ok(who) => who,
                Err(e) => return unread(e),
            },
            None => return unread(ApiError::unauthorized()),
        };
        if limit > BODY_LIMIT && who.partner_scope().is_none() {
            return unread(ApiError::forbidden("this needs a partner API key"));
        }
        req.extensions_mut().insert(who);
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(state.limits.body_read_timeout, to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if is_length_limit(&e) => return unread(too_large(limit)),
        Ok(Err(_)) => {
            return ApiError::bad_request("invalid_body", "the body could not be read to its end").into_response();
        }
        Err(_) => {
            let timeout = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {} s",
                    state.limits.body_read_timeout.as_secs_f64()
                ),
            );
            return unread(timeout);
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// An answer sent with the body (or the rest of it) unread: the connection cannot carry
/// another request, so the client is told it closes.
fn unread(e: ApiError) -> Response {
    let mut res = e.into_response();
    res.headers_mut()
        .insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    res
}

/// Whether reading failed because the body passed the limit (axum wraps
/// `http_body_util::LengthLimitError`).
pub(crate) fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}
