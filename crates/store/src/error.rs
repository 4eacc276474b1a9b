//! Storage errors: the domain's refusals pass through; database failures are kept opaque.

use tally_domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the identity is already taken by another member")]
    IdentityTaken,
    #[error("the same id was used with a different request")]
    IdempotencyConflict,
    #[error("no member has this referral code")]
    UnknownReferralCode,
    #[error("the location does not belong to this partner")]
    UnknownLocation,
    /// What the rules were evaluated with changed before the write (the member's visit
    /// count at the partner): the caller evaluates again and retries.
    #[error("the member changed while the rules were evaluated; try again")]
    Stale,
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// A database failure; the text is for the log, never for the client.
    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}
