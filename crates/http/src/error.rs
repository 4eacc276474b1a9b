//! The one error shape of the API: `{"error": {"code", "message"}}` with a fitting status.
//! 5xx answers say nothing about internals; the details go to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tally_domain::DomainError;
use tally_store::{Fault, StoreError};
use utoipa::ToSchema;

/// A response extension: this answer reports a full disk (for `/healthz`, which cannot
/// see one by reading).
#[derive(Debug, Clone, Copy)]
pub struct Reported(pub Fault);

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The database fault this answer reports, for `/healthz`.
    pub fault: Option<Fault>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable `snake_case` code such as `insufficient_points`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fault: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required (Authorization: Bearer <key>)",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        let code = match what {
            "member" => "member_not_found",
            "partner" => "partner_not_found",
            "transaction" => "transaction_not_found",
            "wallet" => "wallet_not_found",
            "recipient" => "recipient_not_found",
            _ => "not_found",
        };
        Self::new(StatusCode::NOT_FOUND, code, format!("{what} not found"))
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; it has been logged",
        )
    }

    pub fn body(&self) -> String {
        serde_json::json!({"error": {"code": self.code, "message": self.message}}).to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.body()).into_response();
        res.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        if let Some(fault) = self.fault {
            res.extensions_mut().insert(Reported(fault));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Nothing was done: the till may send the same request again shortly.
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        res
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let code = match &e {
            DomainError::Invalid { .. } => "invalid_field",
            DomainError::UnknownCurrency(_) => "unknown_currency",
            DomainError::NoFxRate(_) => "no_fx_rate",
            DomainError::InsufficientPoints { .. } => "insufficient_points",
            DomainError::RedeemExceedsTotal => "redeem_exceeds_total",
            DomainError::ReturnExceedsPurchase => "return_exceeds_purchase",
            DomainError::CurrencyMismatch { .. } => "currency_mismatch",
            DomainError::InvalidRule { .. } => "invalid_rule",
            DomainError::RuleTooCostly { .. } => "rule_too_costly",
            DomainError::UnknownLocation => "unknown_location",
            DomainError::LimitExceeded { code, .. } => *code,
            DomainError::UnknownEventType(_) => "unknown_event_type",
            DomainError::PaymentMismatch { .. } => "payment_mismatch",
            DomainError::MembershipOver(_) => "membership_over",
            DomainError::NotAllowedToSpend(_) => "not_allowed_to_spend",
            DomainError::NotInWallet(_) => "not_in_wallet",
            DomainError::WalletConflict { code, .. } | DomainError::Refused { code, .. } => {
                return ApiError::new(StatusCode::CONFLICT, code, e.to_string());
            }
            DomainError::IdempotencyConflict => {
                return ApiError::new(StatusCode::CONFLICT, "idempotency_conflict", e.to_string());
            }
            DomainError::Stale => return ApiError::new(StatusCode::CONFLICT, "retry", e.to_string()),
            DomainError::Invariant(what) => {
                tracing::error!(invariant = what, "a plan broke an invariant; nothing was written");
                return ApiError::internal();
            }
        };
        ApiError::invalid(code, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            StoreError::NotFound(what) => ApiError::not_found(what.as_str()),
            StoreError::IdentityTaken => ApiError::new(StatusCode::CONFLICT, "identity_taken", e.to_string()),
            StoreError::UnknownReferralCode => ApiError::invalid("unknown_referral_code", e.to_string()),
            StoreError::SelfReferral => ApiError::invalid("self_referral", e.to_string()),
            StoreError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            StoreError::Overloaded => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many requests are waiting to be written; try again in a second",
            ),
            StoreError::Database(_) if e.fault() == Some(Fault::StorageFull) => {
                tracing::error!(error = %e, "the database is out of space; writes are refused until it has room");
                ApiError {
                    fault: Some(Fault::StorageFull),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage_full",
                        "the database is out of space; nothing was written; try again later",
                    )
                }
            }
            StoreError::Database(_) if e.fault() == Some(Fault::Unavailable) => {
                tracing::warn!(error = %e, "the database is unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database cannot be reached just now; try again in a second",
                )
            }
            StoreError::Database(_) if e.fault() == Some(Fault::Busy) => {
                tracing::warn!(error = %e, "the database is busy");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the database is busy; try again in a second",
                )
            }
            StoreError::Database(_) | StoreError::Encoding(_) => {
                let detail = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                tracing::error!(error = %e, %detail, "storage failure");
                ApiError::internal()
            }
        }
    }
}

/// The safety net of the one error shape: an error answer made outside our handlers
/// (an extractor of the framework, such as a path that is not valid UTF-8) in another
/// shape is rewritten into `{"error": {"code", "message"}}`, keeping its status and
/// headers. Our own answers are JSON already and pass untouched.
pub async fn one_shape(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this endpoint does not take that method".into()),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the body is larger than this endpoint accepts".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send JSON with Content-Type: application/json".into(),
        ),
        s if s.is_server_error() => {
            tracing::error!(status = %s, body = %String::from_utf8_lossy(&text), "an error answer outside the handlers");
            (
                "internal_error",
                "something went wrong on our side; it has been logged".into(),
            )
        }
        StatusCode::UNPROCESSABLE_ENTITY => (
            "invalid_field",
            String::from_utf8_lossy(&text).chars().take(300).collect(),
        ),
        _ => (
            "bad_request",
            String::from_utf8_lossy(&text).chars().take(300).collect(),
        ),
    };
    let mut shaped = ApiError::new(status, code, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            shaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    shaped
}
