//! Redeeming rewards and using their vouchers: a member redeems (points set aside, a
//! voucher issued; a donation posts at once), the fulfilling partner's till uses the
//! voucher once, and a voucher not used is cancelled or expires with its points given
//! back. Voucher codes are shown once and kept only as hashes.

use crate::auth::{Operator, Till};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, next_cursor, page_limit, parse_id};
use crate::idempotency::CarriesSecret;
use crate::routes::{posted_response, raw_json};
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tally_domain::identity::parse_label;
use tally_domain::ids::{Id, LocationId, MemberId, RedemptionId, RewardId};
use tally_domain::rewards::{Redemption, RedemptionStatus, RedemptionView};
use tally_domain::vouchers::{canonical_code, code_hint, format_code};
use tally_store::{RedeemCmd, RedemptionQuery, VoucherUse, keys};
use utoipa::{IntoParams, ToSchema};

/// A new voucher code, and its hash and hint as stored.
fn new_code() -> (String, String, String) {
    let code = format_code(keys::random_bytes::<10>());
    let canonical = canonical_code(&code).unwrap_or_default();
    (code, keys::hash_key(&canonical), code_hint(&canonical))
}

/// The stored hash of a code as typed; a mistyped one is refused before any lookup.
fn code_hash(typed: &str) -> Result<String, ApiError> {
    canonical_code(typed).map(|c| keys::hash_key(&c)).ok_or_else(|| {
        ApiError::invalid(
            "voucher_mistyped",
            "this is not a voucher code: 17 letters and digits as ABCD-EFGH-JKMN-PQRS-T; check it and type it again",
        )
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    #[schema(schema_with = crate::schema::field::id)]
    pub reward_id: String,
    /// The caller's id for this redemption (a member's app makes one per tap): the same
    /// id redeems once, and again answers the first answer.
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub request_id: String,
}

/// Redeems a reward for a member (operator, for the member's app). A voucher: its
/// points leave `available` for `reserved`, a unit of stock is taken, and the answer
/// carries the code, that once. A donation posts at once. The same `request_id` again
/// answers the first answer without its code (`idempotent-replayed: true`;
/// `POST /v1/redemptions/{id}/code` issues a new one).
#[utoipa::path(post, path = "/v1/members/{id}/redemptions", tag = "rewards", params(("id" = String, Path)), request_body = RedeemBody,
    responses((status = 201, body = RedemptionView, headers(("idempotent-replayed" = bool, description = "true when this answers an earlier request again"))),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: no such member or reward", body = crate::error::ErrorBody),
        (status = 409, description = "`sold_out`, `limit_reached`, `not_eligible`, `not_open_yet`, `reward_closed`, `idempotency_conflict`", body = crate::error::ErrorBody),
        (status = 422, description = "`insufficient_points`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn redeem(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<RedeemBody>,
) -> Result<Response, ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let reward_id: RewardId = parse_id(&body.value.reward_id, "reward")?;
    let (code, hash, hint) = new_code();
    let cmd = RedeemCmd {
        redemption_id: keys::new::<RedemptionId>(),
        member_id,
        reward_id,
        request_id: parse_label("request_id", &body.value.request_id, 100)?,
        request_hash: body.hash,
        code_hash: hash,
        code_hint: hint,
        early_plans: crate::routes::rewards::early_plans(&state),
        household_tier: state.program().tiers.scope == tally_domain::tiers::TierScope::Household,
        now: state.now(),
    };
    let posted = state.store.redeem(cmd).await?;
    if posted.replayed {
        return Ok(posted_response(posted));
    }
    let mut view: RedemptionView = serde_json::from_str(&posted.receipt_json).map_err(|_| ApiError::internal())?;
    if view.status != RedemptionStatus::Issued {
        // A donation has no code: its answer is kept for a retry like any other.
        return Ok(posted_response(posted));
    }
    view.code = Some(code);
    let body = serde_json::to_string(&view).map_err(|_| ApiError::internal())?;
    let mut res = raw_json(StatusCode::CREATED, body);
    res.extensions_mut().insert(CarriesSecret);
    Ok(res)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only redemptions in this status.
    pub status: Option<RedemptionStatus>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RedemptionPage {
    pub items: Vec<RedemptionView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

async fn page(state: &AppState, mut q: RedemptionQuery, p: ListParams) -> Result<Json<RedemptionPage>, ApiError> {
    let limit = page_limit::<RedemptionId>(p.limit, p.cursor.as_deref())?;
    q.status = p.status;
    q.before = p.cursor;
    q.limit = limit;
    let rows = state.store.redemptions(q).await?;
    let next_cursor = next_cursor(&rows, limit, |r| r.id.to_string());
    Ok(Json(RedemptionPage {
        items: rows.iter().map(RedemptionView::from).collect(),
        next_cursor,
    }))
}

/// A member's redemptions, newest first (operator; a partner sees those it fulfils).
#[utoipa::path(get, path = "/v1/members/{id}/redemptions", tag = "rewards", params(("id" = String, Path), ListParams),
    responses((status = 200, body = RedemptionPage)), security(("bearer" = [])))]
pub async fn member_redemptions(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<RedemptionPage>, ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let q = RedemptionQuery {
        member_id: Some(member_id),
        partner_id: who.partner_scope().cloned(),
        ..RedemptionQuery::default()
    };
    page(&state, q, p).await
}

/// Redemptions, newest first: all for the operator; a partner's, the vouchers it
/// fulfils (`?status=issued`: those still to be used).
#[utoipa::path(get, path = "/v1/redemptions", tag = "rewards", params(ListParams),
    responses((status = 200, body = RedemptionPage)), security(("bearer" = [])))]
pub async fn list_redemptions(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<RedemptionPage>, ApiError> {
    let q = RedemptionQuery {
        partner_id: who.partner_scope().cloned(),
        ..RedemptionQuery::default()
    };
    page(&state, q, p).await
}

/// A redemption as the caller may see it: any for the operator, one it fulfils for a
/// partner (another's is not found).
fn visible(r: Option<Redemption>, who: &Principal, what: &str) -> Result<Redemption, ApiError> {
    r.filter(|r| who.partner_scope().is_none_or(|p| r.partner_id.as_ref() == Some(p)))
        .ok_or_else(|| ApiError::not_found(what))
}

/// One redemption (a partner: one it fulfils).
#[utoipa::path(get, path = "/v1/redemptions/{id}", tag = "rewards", params(("id" = String, Path)),
    responses((status = 200, body = RedemptionView), (status = 404, description = "`not_found`", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_redemption(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<RedemptionView>, ApiError> {
    let id: RedemptionId = parse_id(&id, "redemption")?;
    let r = visible(state.store.redemption(id).await?, &who, "redemption")?;
    Ok(Json(RedemptionView::from(&r)))
}

/// Cancels an issued voucher before use (operator, for the member; the partner that
/// fulfils it, say an evening called off): its points and its unit of stock come back,
/// once.
#[utoipa::path(post, path = "/v1/redemptions/{id}/cancel", tag = "rewards", params(("id" = String, Path)),
    responses((status = 200, body = RedemptionView), (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`voucher_used`, `voucher_cancelled`, `voucher_expired`, `not_a_voucher` (a donation)", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel_redemption(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<RedemptionView>, ApiError> {
    let id: RedemptionId = parse_id(&id, "redemption")?;
    let r = state
        .store
        .cancel_redemption(id, who.partner_scope().cloned(), state.now())
        .await?;
    Ok(Json(RedemptionView::from(&r)))
}

/// A new code for an issued voucher, for a member who lost hers (operator); the old
/// code stops working. Shown once.
#[utoipa::path(post, path = "/v1/redemptions/{id}/code", tag = "rewards", params(("id" = String, Path)),
    responses((status = 200, body = RedemptionView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`voucher_closed`: used, cancelled or expired", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn reissue_code(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: RedemptionId = parse_id(&id, "redemption")?;
    let (code, hash, hint) = new_code();
    let r = state.store.reissue_code(id, hash, hint, state.now()).await?;
    let mut view = RedemptionView::from(&r);
    view.code = Some(code);
    let mut res = Json(view).into_response();
    res.extensions_mut().insert(CarriesSecret);
    Ok(res)
}

/// A voucher by its code, before using it (a partner: one it fulfils; the operator:
/// any). `422 voucher_mistyped` for a code that cannot be one.
#[utoipa::path(get, path = "/v1/vouchers/{code}", tag = "rewards", params(("code" = String, Path)),
    responses((status = 200, body = RedemptionView), (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 422, description = "`voucher_mistyped`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_voucher(
    State(state): State<AppState>,
    who: Principal,
    Path(code): Path<String>,
) -> Result<Json<RedemptionView>, ApiError> {
    let hash = code_hash(&code)?;
    let r = visible(state.store.voucher(hash).await?, &who, "voucher")?;
    Ok(Json(RedemptionView::from(&r)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UseBody {
    /// Where it was used (one of the partner's locations).
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_id)]
    pub location_id: Option<String>,
}

/// Uses a voucher at the partner that fulfils it (its till's key), once: its points
/// move from the member's `reserved` to the partner's `redeemed`. Send `{}` when there
/// is no location. Refused with its own code: at another partner
/// (`voucher_wrong_partner`), a second time (`voucher_used`), after its expiry
/// (`voucher_expired`) or after it was cancelled (`voucher_cancelled`).
#[utoipa::path(post, path = "/v1/vouchers/{code}/redeem", tag = "rewards", params(("code" = String, Path)), request_body = UseBody,
    responses((status = 200, body = RedemptionView), (status = 403, description = "`forbidden`: this needs a partner API key", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: no voucher has this code", body = crate::error::ErrorBody),
        (status = 409, description = "`voucher_used`, `voucher_expired`, `voucher_cancelled`, `voucher_wrong_partner`", body = crate::error::ErrorBody),
        (status = 422, description = "`voucher_mistyped`, `unknown_location`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn use_voucher(
    State(state): State<AppState>,
    Till(partner_id): Till,
    Path(code): Path<String>,
    body: ApiJson<UseBody>,
) -> Result<Json<RedemptionView>, ApiError> {
    let hash = code_hash(&code)?;
    let location_id = match &body.value.location_id {
        None => None,
        Some(l) => {
            let unknown = || ApiError::invalid("unknown_location", "the location does not belong to this partner");
            let id = LocationId::parse(l).ok_or_else(unknown)?;
            state.location(&partner_id, &id).await?.ok_or_else(unknown)?;
            Some(id.to_string())
        }
    };
    let partner = state.partner(&partner_id).await?;
    let r = state
        .store
        .use_voucher(VoucherUse {
            code_hash: hash,
            partner_id,
            partner_name: partner.name,
            location_id,
            now: state.now(),
        })
        .await?;
    Ok(Json(RedemptionView::from(&r)))
}
