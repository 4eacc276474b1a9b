//! Points members send each other: the operator sends for a member's app (issue 13
//! brings the member's own sign-in), within the programme's transfer policy.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, next_cursor, page_limit, parse_id};
use crate::routes::posted_response;
use crate::routes::transactions::{MemberSelector, member_ref};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tally_domain::identity::parse_label;
use tally_domain::ids::{Id, MemberId, TransferId};
use tally_domain::money::parse_points;
use tally_domain::transfers::{MAX_NOTE_CHARS, TransferView};
use tally_store::{MemberRef, TransferCmd, TransferQuery, keys};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The caller's id for this transfer (a member's app makes one per tap): the same id
    /// sends once, and again answers the first answer.
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub request_id: String,
    /// The member the points go to: exactly one of id, email, phone (in international
    /// form), card.
    pub to: MemberSelector,
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub points: i64,
    /// A few words for the recipient, shown with the transfer.
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_label::<200>)]
    pub note: Option<String>,
}

/// Sends points from a member to another (operator, for the member's app). The points
/// leave her soonest-expiring lots and arrive with the dates they had. The programme's
/// transfer policy (`PATCH /v1/program`) says who may send and how much; each of its
/// refusals has its own code. The same `request_id` again answers the first answer
/// (`idempotent-replayed: true`).
#[utoipa::path(post, path = "/v1/members/{id}/transfers", tag = "transfers", params(("id" = String, Path)), request_body = TransferBody,
    responses((status = 201, body = TransferView, headers(("idempotent-replayed" = bool, description = "true when this answers an earlier request again"))),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`: no such sender; `recipient_not_found`: no member by that id, email, phone or card", body = crate::error::ErrorBody),
        (status = 409, description = "`transfers_closed`, `transfer_too_small`, `same_household`, `member_too_new`, `needs_purchase`, `daily_limit_reached`, `monthly_limit_reached`, `idempotency_conflict`", body = crate::error::ErrorBody),
        (status = 422, description = "`insufficient_points`, `balance_limit_exceeded`; `invalid_field`: sending to herself", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn send_points(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<TransferBody>,
) -> Result<Response, ApiError> {
    let from: MemberId = parse_id(&id, "member")?;
    let b = body.value;
    let points = parse_points("points", b.points)?;
    if points == 0 {
        return Err(ApiError::invalid("invalid_field", "points: must be more than zero"));
    }
    let cmd = TransferCmd {
        transfer_id: keys::new::<TransferId>(),
        from,
        to: recipient(&state, &b.to)?,
        points,
        note: b.note.map(|n| parse_label("note", &n, MAX_NOTE_CHARS)).transpose()?,
        request_id: parse_label("request_id", &b.request_id, 100)?,
        request_hash: body.hash,
        policy: state.program().transfers,
        now: state.now(),
    };
    Ok(posted_response(state.store.send_points(cmd).await?))
}

/// The member a transfer goes to; an id of another kind is no member.
fn recipient(state: &AppState, to: &MemberSelector) -> Result<MemberRef, ApiError> {
    if to.id.as_deref().is_some_and(|id| MemberId::parse(id).is_none()) {
        return Err(ApiError::not_found("recipient"));
    }
    member_ref(state, to, None)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransferListParams {
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TransferPage {
    pub items: Vec<TransferView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A member's transfers, sent and received, newest first (operator).
#[utoipa::path(get, path = "/v1/members/{id}/transfers", tag = "transfers", params(("id" = String, Path), TransferListParams),
    responses((status = 200, body = TransferPage),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn member_transfers(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<TransferListParams>,
) -> Result<Json<TransferPage>, ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let limit = page_limit::<TransferId>(p.limit, p.cursor.as_deref())?;
    let rows = state
        .store
        .transfers(TransferQuery {
            member_id: member_id.clone(),
            before: p.cursor,
            limit,
        })
        .await?;
    let next_cursor = next_cursor(&rows, limit, |t| t.id.to_string());
    Ok(Json(TransferPage {
        items: rows.iter().map(|t| t.view(Some(&member_id))).collect(),
        next_cursor,
    }))
}
