//! `Idempotency-Key` for any POST: a retry with the same key and body gets the first
//! response; the same key with another body is `409 idempotency_conflict`.
//!
//! Keys are scoped to the caller. Responses below 500 are saved after the handler ran;
//! a crash between the handler's commit and that save lets a retry run again, which is
//! why purchases and returns are also idempotent by their `external_id` in the same
//! database transaction that writes them.

use crate::error::ApiError;
use crate::routes::raw_json;
use crate::state::AppState;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tally_store::StoredResponse;

const MAX_BODY: usize = 8 * 1024 * 1024;

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
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let principal = match bearer {
        Some(k) => match state.authenticate(k.trim()).await {
            Ok(p) => p.scope_key(),
            Err(e) => return e.into_response(),
        },
        None => return ApiError::unauthorized().into_response(),
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than this endpoint accepts",
        )
        .into_response();
    };
    let mut fingerprint = parts.uri.path().as_bytes().to_vec();
    fingerprint.push(0);
    fingerprint.extend_from_slice(&bytes);
    let request_hash = tally_store::keys::hash_request(&fingerprint);
    match state.store.idempotent_response(&principal, &key).await {
        Ok(Some(stored)) if stored.request_hash == request_hash => {
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            let mut res = raw_json(status, stored.body);
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return res;
        }
        Ok(Some(_)) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this Idempotency-Key was used with a different request",
            )
            .into_response();
        }
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if res.status().is_server_error() {
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(out) = to_bytes(body, MAX_BODY * 4).await else {
        return ApiError::internal().into_response();
    };
    let stored = StoredResponse {
        request_hash,
        status: parts.status.as_u16(),
        body: String::from_utf8_lossy(&out).into_owned(),
    };
    if let Err(e) = state
        .store
        .save_idempotent_response(&principal, &key, stored, state.now())
        .await
    {
        tracing::error!(error = %e, "could not save an idempotent response");
    }
    Response::from_parts(parts, Body::from(out))
}
