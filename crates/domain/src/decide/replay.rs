//! Ids seen before: a sale's receipt id, a return's id, an event's id.

use super::Posted;
use crate::DomainError;

/// What the store kept of the first request under an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub request_hash: String,
    pub receipt_json: String,
    /// What the id was used on, when the request's path names it too (the purchase a
    /// return belongs to): the same id on another purchase is another request.
    pub target: Option<String>,
}

/// The same request again gets the first answer; anything else under a used id is a
/// conflict. `None` when the id is new.
pub fn replay(
    stored: Option<StoredAnswer>,
    request_hash: &str,
    target: Option<&str>,
) -> Result<Option<Posted>, DomainError> {
    let Some(stored) = stored else { return Ok(None) };
    if stored.request_hash == request_hash && stored.target.as_deref() == target {
        Ok(Some(Posted {
            receipt_json: stored.receipt_json,
            replayed: true,
            follow_up: None,
            completed: Vec::new(),
        }))
    } else {
        Err(DomainError::IdempotencyConflict)
    }
}
