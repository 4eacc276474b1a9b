//! Share links: `GET /r/{code}` sends whoever follows a member's link to the operator's
//! sign-up page with her referral code, so the new member's sign-up names who brought
//! her (`referral_code` in `POST /v1/members`). A referrer's list of the members she
//! invited, with what became of each and the points they earned her.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiQuery, next_cursor, page_limit, parse_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tally_domain::ids::{Id, MemberId};
use tally_domain::referrals::{ReferralStatus, plausible_code, share_target};
use utoipa::{IntoParams, ToSchema};

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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferralListParams {
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub cursor: Option<String>,
}

/// One member she invited.
#[derive(Serialize, ToSchema)]
pub struct InvitedView {
    pub member_id: String,
    /// When the invited member joined (with her code).
    #[schema(format = DateTime)]
    pub joined_at: String,
    /// `invited` until her first qualifying purchase; then `converted`, `declined`
    /// (`reason`: `same_household`, `monthly_limit`) or later `reversed` (that purchase
    /// returned in full).
    pub status: ReferralStatus,
    pub reason: Option<String>,
    /// When her qualifying purchase decided the referral.
    #[schema(format = DateTime)]
    pub decided_at: Option<String>,
    /// Points `referral_converted` gave the referrer for this one, less any taken back.
    pub points: i64,
}

/// A member's referrals: counts and points over all of them, and the members invited.
#[derive(Serialize, ToSchema)]
pub struct ReferralsView {
    /// Members who joined with her code.
    pub invited: i64,
    pub converted: i64,
    pub reversed: i64,
    pub declined: i64,
    /// Points her referrals earned her, less any taken back.
    pub points_earned: i64,
    /// The members she invited, newest first.
    pub items: Vec<InvitedView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The members a member invited with her referral code, what became of each, and the
/// points they earned her (operator).
#[utoipa::path(get, path = "/v1/members/{id}/referrals", tag = "referrals", params(("id" = String, Path), ReferralListParams),
    responses((status = 200, body = ReferralsView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn member_referrals(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ReferralListParams>,
) -> Result<Json<ReferralsView>, ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let limit = page_limit::<MemberId>(p.limit, p.cursor.as_deref())?;
    if state.store.member(&member_id).await?.is_none() {
        return Err(ApiError::not_found("member"));
    }
    let after = p.cursor.map(MemberId::from_stored);
    let r = state.store.member_referrals(&member_id, limit, after).await?;
    let next_cursor = next_cursor(&r.items, limit, |i| i.member_id.to_string());
    Ok(Json(ReferralsView {
        invited: r.invited,
        converted: r.converted,
        reversed: r.reversed,
        declined: r.declined,
        points_earned: r.points_earned,
        items: r
            .items
            .into_iter()
            .map(|i| InvitedView {
                member_id: i.member_id.into_string(),
                joined_at: i.joined_at.to_string(),
                status: i.status,
                reason: i.reason,
                decided_at: i.decided_at.map(|t| t.to_string()),
                points: i.points,
            })
            .collect(),
        next_cursor,
    }))
}
