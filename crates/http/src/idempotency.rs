//! `Idempotency-Key` for any POST: a retry with the same key and body gets the first
//! response; the same key with another body is `409 idempotency_conflict`.
//!
//! The key is claimed in the store before the handler runs, so two requests racing with
//! one key never both run: the second gets `409 idempotency_in_progress` (try again
//! shortly) or, once the first has answered, its answer. Keys are scoped to the caller
//! and the endpoint. The answer is saved when the handler is done; an answer of ours
//! that failed (5xx) lets the key go, so a retry runs again. A claim whose request never
//! answered (the server stopped) is taken over after [`ABANDONED_AFTER`]. Purchases
//! and returns are also idempotent by their `external_id` in the same database
//! transaction that writes them.
//!
//! An answer that carries a secret (a new API key) is never stored: its replay says the
//! secret was shown once.

use crate::error::ApiError;
use crate::routes::raw_json;
use crate::state::{AppState, Principal};
use axum::body::{Body, to_bytes};
use axum::extract::FromRequestParts;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tally_store::Claim;

/// A response extension a handler sets when its answer holds a secret that must not be
/// kept (a new API key).
#[derive(Clone, Copy, Debug)]
pub struct CarriesSecret;

/// How long a claimed key waits for its request before another request may take it
/// over (well past the 30 s a request may take).
const ABANDONED_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

/// The largest answer kept for a replay (a batch of 1,000 receipts answers well below).
const MAX_ANSWER: usize = 32 * 1024 * 1024;

/// The path as kept with a key: a voucher's path holds its code, a secret, so only its
/// hash is kept.
fn stored_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.starts_with("/v1/vouchers/") {
        true => format!("/v1/vouchers/sha256:{}", tally_store::keys::hash_key(path)).into(),
        false => path.into(),
    }
}

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_string))
    else {
        return next.run(req).await;
    };
    let key = match key {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => k,
        _ => {
            return ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .into_response();
        }
    };
    // The caller as the handler will see it: the body guard has usually checked the key
    // already, and the extractor then takes it from there.
    let (mut parts, body) = req.into_parts();
    let principal = match Principal::from_request_parts(&mut parts, &state).await {
        Ok(p) => format!("{}|POST {}", p.scope_key(), stored_path(parts.uri.path())),
        Err(e) => return e.into_response(),
    };
    // The body guard has read the body within the endpoint's limit.
    let limit = crate::body::limit_for(parts.uri.path());
    let Ok(bytes) = to_bytes(body, limit).await else {
        return crate::body::too_large(limit).into_response();
    };
    let request_hash = tally_store::keys::hash_request(&bytes);
    let now = state.now();
    let abandoned_before = now.checked_sub(ABANDONED_AFTER).unwrap_or(now);
    match state
        .store
        .claim_idempotency_key(&principal, &key, &request_hash, now, abandoned_before)
        .await
    {
        Ok(Claim::Claimed) => {}
        Ok(Claim::Taken(stored)) if stored.request_hash != request_hash => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this Idempotency-Key was used with a different request",
            )
            .into_response();
        }
        Ok(Claim::Taken(stored)) if stored.status == 0 => {
            let mut res = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still running; try again shortly",
            )
            .into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return res;
        }
        Ok(Claim::Taken(stored)) => {
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            let mut res = raw_json(status, stored.body);
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return res;
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    // Whatever stops this request from here on (a timeout, a panic, a client that went
    // away) lets the key go, so a retry can run.
    let mut guard = ClaimGuard {
        state: state.clone(),
        principal: principal.clone(),
        key: key.clone(),
        armed: true,
    };
    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if res.status().is_server_error() {
        return res; // the guard lets the key go
    }
    let (parts, body) = res.into_parts();
    let Ok(out) = to_bytes(body, MAX_ANSWER).await else {
        return ApiError::internal().into_response();
    };
    // "Send it again" (a sale whose member kept changing) is not a final answer.
    if parts.status == StatusCode::CONFLICT && out.windows(16).any(|w| w == br#""code":"retry","#) {
        return Response::from_parts(parts, Body::from(out));
    }
    guard.armed = false;
    let (status, kept) = if parts.extensions.get::<CarriesSecret>().is_some() {
        let shown_once = ApiError::new(
            StatusCode::CONFLICT,
            "secret_shown_once",
            "this request made a secret that was shown once and is not kept; make a new one if it was lost",
        );
        (shown_once.status.as_u16(), shown_once.body())
    } else {
        (parts.status.as_u16(), String::from_utf8_lossy(&out).into_owned())
    };
    if let Err(e) = state.store.finish_idempotency_key(&principal, &key, status, kept).await {
        tracing::error!(error = %e, "could not save an idempotent response");
    }
    Response::from_parts(parts, Body::from(out))
}

/// Lets a claimed key go unless disarmed: the request answered, and its answer is saved.
struct ClaimGuard {
    state: AppState,
    principal: String,
    key: String,
    armed: bool,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (state, principal, key) = (
            self.state.clone(),
            std::mem::take(&mut self.principal),
            std::mem::take(&mut self.key),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = state.store.release_idempotency_key(&principal, &key).await {
                    tracing::error!(error = %e, "could not release an Idempotency-Key");
                }
            });
        }
    }
}
