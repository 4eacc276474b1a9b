//! Share links: `GET /r/{code}` sends whoever follows a member's link to the operator's
//! sign-up page with her referral code, so the new member's sign-up names who brought
//! her (`referral_code` in `POST /v1/members`).

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tally_domain::referrals::{plausible_code, share_target};

/// A member's share link (no key: it is followed from a message or a web page). `302`
/// to the programme's sign-up address with `referral_code` added to its query.
#[utoipa::path(get, path = "/r/{code}", tag = "referrals", params(("code" = String, Path, description = "A member's referral code")),
    responses((status = 302, description = "To the sign-up page, with the code", headers(("location" = String, description = "The sign-up address with `referral_code`"))),
        (status = 404, description = "`not_found`: no member has this code, or the programme has no sign-up address", body = crate::error::ErrorBody)))]
pub async fn share_link(State(state): State<AppState>, Path(code): Path<String>) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("referral code");
    let Some(signup) = state.program().referral_signup_url else {
        return Err(not_found());
    };
    let code = code.trim().to_ascii_uppercase();
    if !plausible_code(&code) || state.store.member_by_referral_code(code.clone()).await?.is_none() {
        return Err(not_found());
    }
    let location = HeaderValue::from_str(&share_target(&signup, &code)).map_err(|_| ApiError::internal())?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}
