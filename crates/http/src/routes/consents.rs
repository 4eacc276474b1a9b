//! Members' consents to share their personal data with a partner. Without one, a
//! partner's key sees a member as a summary (id, a short name, balance, tier); with one,
//! as the operator does. The operator records a consent on the member's word; members
//! will set their own through the member portal.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use tally_domain::ids::{MemberId, PartnerId};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct ConsentView {
    /// The partner that sees the member's personal data.
    pub partner_id: String,
    pub granted_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentList {
    pub items: Vec<ConsentView>,
}

impl From<tally_store::ConsentRow> for ConsentView {
    fn from(c: tally_store::ConsentRow) -> Self {
        ConsentView {
            partner_id: c.partner_id.into_string(),
            granted_at: c.granted_at.to_string(),
        }
    }
}

/// The partners a member shares their personal data with (operator).
#[utoipa::path(get, path = "/v1/members/{id}/consents", tag = "members", params(("id" = String, Path)),
    responses((status = 200, body = ConsentList), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn list_consents(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<ConsentList>, ApiError> {
    let member: MemberId = parse_id(&id, "member")?;
    if state.store.member(&member).await?.is_none() {
        return Err(ApiError::not_found("member"));
    }
    let items = state
        .store
        .consents(&member)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(ConsentList { items }))
}

/// Records that the member shares their personal data with a partner (operator, on the
/// member's word). Granting again keeps the first grant's time.
#[utoipa::path(put, path = "/v1/members/{id}/consents/{partner_id}", tag = "members", params(("id" = String, Path), ("partner_id" = String, Path)),
    responses((status = 200, body = ConsentView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`, `partner_not_found`", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn grant_consent(
    State(state): State<AppState>,
    _: Operator,
    Path((id, partner)): Path<(String, String)>,
) -> Result<Json<ConsentView>, ApiError> {
    let member: MemberId = parse_id(&id, "member")?;
    let partner: PartnerId = parse_id(&partner, "partner")?;
    let consent = state
        .store
        .set_consent(&member, &partner, true, state.now())
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(Json(consent.into()))
}

/// Withdraws a member's consent for a partner (operator): from the next request on, the
/// partner sees the member's summary only.
#[utoipa::path(delete, path = "/v1/members/{id}/consents/{partner_id}", tag = "members", params(("id" = String, Path), ("partner_id" = String, Path)),
    responses((status = 204, description = "Withdrawn (or there was none)"), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`, `partner_not_found`", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn withdraw_consent(
    State(state): State<AppState>,
    _: Operator,
    Path((id, partner)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let member: MemberId = parse_id(&id, "member")?;
    let partner: PartnerId = parse_id(&partner, "partner")?;
    state.store.set_consent(&member, &partner, false, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
