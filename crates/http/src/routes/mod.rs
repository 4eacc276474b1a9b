//! HTTP handlers, one module per resource; named `<verb>_<resource>`.

pub mod challenges;
pub mod consents;
pub mod events;
pub mod exchange;
pub mod members;
pub mod memberships;
pub mod operations;
pub mod partners;
pub mod program;
pub mod redemptions;
pub mod referrals;
pub mod rewards;
pub mod rules;
pub mod settlement;
pub mod tiers;
pub mod transactions;
pub mod transfers;
pub mod wallets;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A JSON body already serialised (a stored receipt), sent with `status`.
pub fn raw_json(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    res
}

/// `201` with a posted receipt; a replay of an earlier request says so in the header
/// `idempotent-replayed: true`.
pub fn posted_response(posted: tally_store::Posted) -> Response {
    let mut res = raw_json(StatusCode::CREATED, posted.receipt_json);
    if posted.replayed {
        res.headers_mut()
            .insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
    }
    res
}
