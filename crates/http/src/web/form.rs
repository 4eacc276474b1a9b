//! A submitted form, read by hand: every field is optional text, so a missing or odd
//! field becomes a message on the page rather than a bare framework rejection.

use axum::extract::{FromRequest, Request};
use axum::response::Response;

/// The longest value any field of ours takes; longer values are cut before reading.
const FIELD_LIMIT: usize = 2_000;

pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(bytes: &[u8]) -> FormData {
        FormData(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.chars().take(FIELD_LIMIT).collect()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in order, blanks included (rows of a table).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .collect()
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), super::session::FORM_LIMIT)
            .await
            .map_err(|_| {
                super::layout::problem(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "Too much",
                    "That form was larger than Tally accepts.",
                )
            })?;
        Ok(FormData::parse(&bytes))
    }
}
