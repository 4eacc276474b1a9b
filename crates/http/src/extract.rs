//! Request extractors that answer bad input in the API's error shape.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// A JSON body, plus the SHA-256 of its canonical form (keys sorted): the hash tells a
/// retried request from a different one sent under the same id.
pub struct ApiJson<T> {
    pub value: T,
    pub hash: String,
}

/// Parses JSON bytes: bad syntax is 400 `invalid_json`, wrong shape 422 `invalid_field`.
/// A number with no fraction (`5.0`, `1e3`) is an integer in JSON Schema; so it is here.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, serde_json::Value), ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")))?;
    integral_numbers_as_integers(&mut value);
    let typed = read_value(&value, "the body")?;
    Ok((typed, value))
}

/// Reads a parsed JSON value as `T`, strictly (objects only where objects belong); a
/// misfit is 422 `invalid_field`, naming `what`.
pub fn read_value<T: DeserializeOwned>(value: &serde_json::Value, what: &str) -> Result<T, ApiError> {
    T::deserialize(crate::strict_json::Strict(value))
        .map_err(|e| ApiError::invalid("invalid_field", format!("{what} does not fit: {e}")))
}

/// Whether a `Content-Type` says JSON: `application/json`, optionally with
/// `charset=utf-8`, and nothing else (`application/jsonx` is not JSON).
pub fn is_json_content_type(value: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        && parts.all(|p| match p.split_once('=') {
            Some((name, v)) => {
                name.trim().eq_ignore_ascii_case("charset") && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            }
            None => p.trim().is_empty(),
        })
}

/// Refuses a request whose body is not declared as JSON: 415 `unsupported_media_type`.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_content_type);
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send JSON with Content-Type: application/json",
        ))
    }
}

/// Turns `5.0` into `5` throughout `value`, except inside event `attributes`, whose
/// numbers keep the kind they were sent as (rules may compare them as doubles).
fn integral_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k != "attributes" {
                    integral_numbers_as_integers(v);
                }
            }
        }
        _ => {}
    }
}

pub fn canonical_hash(value: &serde_json::Value) -> String {
    tally_store::keys::hash_request(value.to_string().as_bytes())
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        let (value, raw) = parse_json::<T>(&bytes)?;
        Ok(ApiJson {
            value,
            hash: canonical_hash(&raw),
        })
    }
}

/// The bytes of a body declared as JSON (already read by the body guard).
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let limit = crate::body::limit_for(req.uri().path());
        Bytes::from_request(req, state).await.map(JsonBytes).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                crate::body::too_large(limit)
            } else {
                ApiError::bad_request("invalid_body", "the body could not be read")
            }
        })
    }
}

/// Query parameters, with bad ones answered as 422 `invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::invalid("invalid_query", e.body_text()))
    }
}

/// An id from a path or a body as its kind; `404` naming `what` if it could not be one
/// we issued (so nothing implausible reaches a query).
pub fn parse_id<T: tally_domain::ids::Id>(id: &str, what: &str) -> Result<T, ApiError> {
    T::parse(id).ok_or_else(|| ApiError::not_found(what))
}

/// A field that may be absent (`None`, with `#[serde(default)]`), null (`Some(None)`)
/// or a value.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// A page's size (`limit`: 1 to 200, default 50), with its cursor checked to be an id of
/// the kind listed (`422 invalid_query`, `422 invalid_cursor`).
pub fn page_limit<T: tally_domain::ids::Id>(limit: Option<u32>, cursor: Option<&str>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("invalid_query", "limit must be 1 to 200"));
    }
    if cursor.is_some_and(|c| T::parse(c).is_none()) {
        return Err(ApiError::invalid(
            "invalid_cursor",
            "the cursor is not one this API gave",
        ));
    }
    Ok(limit)
}

/// The cursor of the page after `rows`: the last row's id when the page is full.
pub fn next_cursor<R>(rows: &[R], limit: u32, id: impl Fn(&R) -> String) -> Option<String> {
    (rows.len() == limit as usize).then(|| rows.last().map(id)).flatten()
}
