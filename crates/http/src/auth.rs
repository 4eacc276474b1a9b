//! Authentication: `Authorization: Bearer <key>` resolves to the operator or a partner.

use crate::error::ApiError;
use crate::state::{AppState, Principal};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use tally_domain::ids::PartnerId;

/// The key of `Authorization: Bearer <key>`, if the header says so.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Known already when the body guard checked the key before reading a body.
        if let Some(who) = parts.extensions.get::<Principal>() {
            return Ok(who.clone());
        }
        let key = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        state.authenticate(key.trim()).await
    }
}

impl Principal {
    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Partner(_) => Err(ApiError::forbidden("this needs the operator key")),
        }
    }

    /// The calling partner; the operator is refused (tills use partner keys).
    pub fn require_partner(&self) -> Result<&PartnerId, ApiError> {
        match self {
            Principal::Partner(id) => Ok(id),
            Principal::Operator => Err(ApiError::forbidden("this needs a partner API key")),
        }
    }

    /// The partner whose data alone may be shown, `None` for the operator.
    pub fn partner_scope(&self) -> Option<&PartnerId> {
        match self {
            Principal::Partner(id) => Some(id),
            Principal::Operator => None,
        }
    }

    /// A string naming the caller, to scope idempotency keys.
    pub fn scope_key(&self) -> String {
        match self {
            Principal::Operator => "operator".into(),
            Principal::Partner(id) => format!("partner:{id}"),
        }
    }
}

/// The operator, checked before the body is read: a partner key on an operator endpoint
/// is `403` whatever it sends.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Principal::from_request_parts(parts, state).await?.require_operator()?;
        Ok(Operator)
    }
}

/// A partner's till, checked before the body is read; holds the partner id.
pub struct Till(pub PartnerId);

impl FromRequestParts<AppState> for Till {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let who = Principal::from_request_parts(parts, state).await?;
        Ok(Till(who.require_partner()?.clone()))
    }
}
