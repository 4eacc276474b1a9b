//! Exchange with other programmes (operator): exchange partners with their rate and
//! limits, members' points exchanged out as orders the operator's back end confirms or
//! fails, units credited in once per reference, and each partner's volume per month.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, next_cursor, page_limit, parse_id};
use crate::routes::posted_response;
use crate::routes::transactions::{MemberSelector, member_ref};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tally_domain::decide::Outcome;
use tally_domain::exchange::{
    ExchangeCreditView, ExchangeDirection, ExchangeOrderView, ExchangePartner, ExchangeRate, ExchangeSpec, OrderStatus,
};
use tally_domain::identity::parse_label;
use tally_domain::ids::{ExchangeCreditId, ExchangeOrderId, ExchangePartnerId, Id, MemberId};
use tally_domain::money::parse_points;
use tally_store::{ExchangeInCmd, ExchangeOrderQuery, ExchangeOutCmd, keys};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangePartnerBody {
    /// The other programme ("SkyMiles").
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub name: String,
    /// What it calls its units ("miles").
    #[schema(schema_with = crate::schema::field::label::<40>)]
    pub unit_name: String,
    pub direction: ExchangeDirection,
    /// `points` Tally points are worth `units` of its units.
    pub rate: ExchangeRate,
    /// The fewest points a member may exchange out at once; a whole number of steps.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub min_points: i64,
    /// Orders out are whole multiples of this many points, each worth whole units.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub step_points: i64,
    /// Points a member may exchange with it per UTC day, each way; at least `min_points`.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub daily_limit_points: i64,
    /// Default true; false closes the exchange (orders pending can still be answered).
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ExchangePartnerView {
    pub id: String,
    pub name: String,
    pub unit_name: String,
    pub direction: ExchangeDirection,
    pub rate: ExchangeRate,
    pub min_points: i64,
    pub step_points: i64,
    pub daily_limit_points: i64,
    pub active: bool,
}

fn view(p: ExchangePartner) -> ExchangePartnerView {
    let s = p.spec;
    ExchangePartnerView {
        id: p.id.to_string(),
        name: s.name,
        unit_name: s.unit_name,
        direction: s.direction,
        rate: s.rate,
        min_points: s.min_points,
        step_points: s.step_points,
        daily_limit_points: s.daily_limit_points,
        active: s.active,
    }
}

fn spec_of(b: ExchangePartnerBody, id: ExchangePartnerId) -> Result<ExchangePartner, ApiError> {
    let spec = ExchangeSpec {
        name: parse_label("name", &b.name, 100)?,
        unit_name: parse_label("unit_name", &b.unit_name, 40)?,
        direction: b.direction,
        rate: b.rate,
        min_points: b.min_points,
        step_points: b.step_points,
        daily_limit_points: b.daily_limit_points,
        active: b.active.unwrap_or(true),
    };
    spec.check()?;
    Ok(ExchangePartner { id, spec })
}

/// Adds an exchange partner (operator).
#[utoipa::path(post, path = "/v1/exchange-partners", tag = "exchange", request_body = ExchangePartnerBody,
    responses((status = 201, body = ExchangePartnerView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_exchange_partner(
    State(state): State<AppState>,
    _operator: Operator,
    body: ApiJson<ExchangePartnerBody>,
) -> Result<(StatusCode, Json<ExchangePartnerView>), ApiError> {
    let p = spec_of(body.value, keys::new::<ExchangePartnerId>())?;
    let saved = state.store.save_exchange_partner(p, true, state.now()).await?;
    Ok((StatusCode::CREATED, Json(view(saved))))
}

/// Replaces an exchange partner (operator). Orders already placed keep their units.
#[utoipa::path(put, path = "/v1/exchange-partners/{id}", tag = "exchange", params(("id" = String, Path)), request_body = ExchangePartnerBody,
    responses((status = 200, body = ExchangePartnerView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_exchange_partner(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<ExchangePartnerBody>,
) -> Result<Json<ExchangePartnerView>, ApiError> {
    let id: ExchangePartnerId = parse_id(&id, "exchange partner")?;
    let p = spec_of(body.value, id)?;
    Ok(Json(view(
        state.store.save_exchange_partner(p, false, state.now()).await?,
    )))
}

/// The exchange partners (operator).
#[utoipa::path(get, path = "/v1/exchange-partners", tag = "exchange",
    responses((status = 200, body = Vec<ExchangePartnerView>),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_exchange_partners(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Vec<ExchangePartnerView>>, ApiError> {
    Ok(Json(
        state.store.exchange_partners().await?.into_iter().map(view).collect(),
    ))
}

/// One exchange partner (operator).
#[utoipa::path(get, path = "/v1/exchange-partners/{id}", tag = "exchange", params(("id" = String, Path)),
    responses((status = 200, body = ExchangePartnerView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_exchange_partner(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<ExchangePartnerView>, ApiError> {
    let id: ExchangePartnerId = parse_id(&id, "exchange partner")?;
    let p = state
        .store
        .exchange_partner(id)
        .await?
        .ok_or_else(|| ApiError::not_found("exchange partner"))?;
    Ok(Json(view(p)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeOrderBody {
    /// The caller's id for this order: the same id places one order.
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub request_id: String,
    #[schema(schema_with = crate::schema::field::id)]
    pub exchange_partner_id: String,
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub points: i64,
    /// The member's number in the other programme.
    #[schema(schema_with = crate::schema::field::label::<64>)]
    pub external_member_number: String,
}

/// Exchanges a member's points out to another programme (operator, for the member's
/// app): the points leave her at once and the order is `pending` until the operator's
/// back end confirms or fails it. The same `request_id` again answers the first answer.
#[utoipa::path(post, path = "/v1/members/{id}/exchange-orders", tag = "exchange", params(("id" = String, Path)), request_body = ExchangeOrderBody,
    responses((status = 201, body = ExchangeOrderView, headers(("idempotent-replayed" = bool, description = "true when this answers an earlier request again"))),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`; `not_found`: no such exchange partner", body = crate::error::ErrorBody),
        (status = 409, description = "`exchange_closed`, `exchange_direction`, `below_minimum`, `not_a_step`, `daily_limit_reached`, `idempotency_conflict`", body = crate::error::ErrorBody),
        (status = 422, description = "`insufficient_points`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_exchange_order(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<ExchangeOrderBody>,
) -> Result<Response, ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let b = body.value;
    let points = parse_points("points", b.points)?;
    if points == 0 {
        return Err(ApiError::invalid("invalid_field", "points: must be more than zero"));
    }
    let cmd = ExchangeOutCmd {
        order_id: keys::new::<ExchangeOrderId>(),
        member_id,
        exchange_partner_id: parse_id(&b.exchange_partner_id, "exchange partner")?,
        points,
        external_member: parse_label("external_member_number", &b.external_member_number, 64)?,
        request_id: parse_label("request_id", &b.request_id, 100)?,
        request_hash: body.hash,
        now: state.now(),
    };
    Ok(posted_response(state.store.exchange_out(cmd).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListParams {
    /// Only this member's orders.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub member_id: Option<String>,
    /// Only orders to this exchange partner.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub exchange_partner_id: Option<String>,
    pub status: Option<OrderStatus>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ExchangeOrderPage {
    pub items: Vec<ExchangeOrderView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Exchange orders, newest first (operator): `?status=pending` is what the back end has
/// still to answer.
#[utoipa::path(get, path = "/v1/exchange-orders", tag = "exchange", params(OrderListParams),
    responses((status = 200, body = ExchangeOrderPage),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_exchange_orders(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(p): ApiQuery<OrderListParams>,
) -> Result<Json<ExchangeOrderPage>, ApiError> {
    let limit = page_limit::<ExchangeOrderId>(p.limit, p.cursor.as_deref())?;
    let bad = |what: &str| ApiError::invalid("invalid_query", format!("{what} is not an id of its kind"));
    let member_id = p
        .member_id
        .map(|m| MemberId::parse(&m).ok_or_else(|| bad("member_id")))
        .transpose()?;
    let exchange_partner_id = p
        .exchange_partner_id
        .map(|x| ExchangePartnerId::parse(&x).ok_or_else(|| bad("exchange_partner_id")))
        .transpose()?;
    let rows = state
        .store
        .exchange_orders(ExchangeOrderQuery {
            member_id,
            exchange_partner_id,
            status: p.status,
            before: p.cursor,
            limit,
        })
        .await?;
    let next_cursor = next_cursor(&rows, limit, |o| o.id.to_string());
    Ok(Json(ExchangeOrderPage {
        items: rows.iter().map(ExchangeOrderView::from).collect(),
        next_cursor,
    }))
}

/// One exchange order (operator).
#[utoipa::path(get, path = "/v1/exchange-orders/{id}", tag = "exchange", params(("id" = String, Path)),
    responses((status = 200, body = ExchangeOrderView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_exchange_order(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<ExchangeOrderView>, ApiError> {
    let id: ExchangeOrderId = parse_id(&id, "exchange order")?;
    let o = state
        .store
        .exchange_order(id)
        .await?
        .ok_or_else(|| ApiError::not_found("exchange order"))?;
    Ok(Json(ExchangeOrderView::from(&o)))
}

async fn answer(state: &AppState, id: &str, outcome: Outcome) -> Result<Json<ExchangeOrderView>, ApiError> {
    let id: ExchangeOrderId = parse_id(id, "exchange order")?;
    let o = state.store.exchange_outcome(id, outcome, state.now()).await?;
    Ok(Json(ExchangeOrderView::from(&o)))
}

/// The other programme credited the units (operator's back end): the order is
/// `confirmed` and its points leave for good. Sent again, it answers the order as it is.
#[utoipa::path(post, path = "/v1/exchange-orders/{id}/confirm", tag = "exchange", params(("id" = String, Path)),
    responses((status = 200, body = ExchangeOrderView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 409, description = "`order_closed`: the order failed already", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn confirm_exchange_order(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<ExchangeOrderView>, ApiError> {
    answer(&state, &id, Outcome::Confirm).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    /// Why the other programme refused ("unknown membership number").
    #[schema(schema_with = crate::schema::field::label::<200>)]
    pub reason: String,
}

/// The other programme refused the order (operator's back end): it is `failed` and its
/// points come back to the member, once, as the lots they were taken from. Sent again,
/// it answers the order as it is.
#[utoipa::path(post, path = "/v1/exchange-orders/{id}/fail", tag = "exchange", params(("id" = String, Path)), request_body = FailBody,
    responses((status = 200, body = ExchangeOrderView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 409, description = "`order_closed`: the order was confirmed already", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn fail_exchange_order(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<FailBody>,
) -> Result<Json<ExchangeOrderView>, ApiError> {
    let reason = parse_label("reason", &body.value.reason, 200)?;
    answer(&state, &id, Outcome::Fail { reason }).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditBody {
    /// The other programme's reference for this credit: one credit per reference.
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub reference: String,
    /// The member credited: exactly one of id, email, phone (international form), card.
    pub member: MemberSelector,
    /// Units of the other programme, a whole number of points' worth.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub units: i64,
}

/// Credits units of another programme to a member as points (operator's back end): a new
/// lot that expires as earned points do. The same reference again answers the first
/// answer; another body under it is `409 idempotency_conflict`.
#[utoipa::path(post, path = "/v1/exchange-partners/{id}/credits", tag = "exchange", params(("id" = String, Path)), request_body = CreditBody,
    responses((status = 201, body = ExchangeCreditView, headers(("idempotent-replayed" = bool, description = "true when this answers an earlier request again"))),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`exchange_closed`, `exchange_direction`, `daily_limit_reached`, `idempotency_conflict`", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`: units not worth whole points; `balance_limit_exceeded`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn credit_exchange(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<CreditBody>,
) -> Result<Response, ApiError> {
    let exchange_partner_id: ExchangePartnerId = parse_id(&id, "exchange partner")?;
    let b = body.value;
    let units = parse_points("units", b.units)?;
    if units == 0 {
        return Err(ApiError::invalid("invalid_field", "units: must be more than zero"));
    }
    let cmd = ExchangeInCmd {
        credit_id: keys::new::<ExchangeCreditId>(),
        exchange_partner_id,
        member: member_ref(&state, &b.member, None)?,
        units,
        reference: parse_label("reference", &b.reference, 100)?,
        request_hash: body.hash,
        expiry_months: state.program().expiry_months,
        now: state.now(),
    };
    Ok(posted_response(state.store.exchange_in(cmd).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VolumeParams {
    /// The calendar month (UTC), `YYYY-MM`; default this month.
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub month: Option<String>,
}

/// An exchange partner's volume in one month, for settling with it.
#[derive(Serialize, ToSchema)]
pub struct ExchangeVolumeView {
    pub exchange_partner_id: String,
    pub month: String,
    /// Orders placed in the month, by where they stand now.
    pub orders_pending: i64,
    pub points_pending: i64,
    pub orders_confirmed: i64,
    /// Points gone out, and the units the other programme owes members for them.
    pub points_out: i64,
    pub units_out: i64,
    pub orders_failed: i64,
    pub points_refunded: i64,
    /// Credits in: their count, the units received and the points given for them.
    pub credits: i64,
    pub units_in: i64,
    pub points_in: i64,
}

/// The first day of `YYYY-MM`, read strictly: four digits, a dash, a month 01 to 12.
fn month(m: &str) -> Option<jiff::civil::Date> {
    let b = m.as_bytes();
    if b.len() != 7 || b[4] != b'-' || !b.iter().enumerate().all(|(i, c)| i == 4 || c.is_ascii_digit()) {
        return None;
    }
    let year: i16 = m[..4].parse().ok()?;
    let month: i8 = m[5..].parse().ok()?;
    jiff::civil::Date::new(year, month, 1).ok()
}

/// What went out to and came in from an exchange partner in one month (operator): the
/// exchange's side of the settlement data.
#[utoipa::path(get, path = "/v1/exchange-partners/{id}/volume", tag = "exchange", params(("id" = String, Path), VolumeParams),
    responses((status = 200, body = ExchangeVolumeView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn exchange_volume(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<VolumeParams>,
) -> Result<Json<ExchangeVolumeView>, ApiError> {
    let id: ExchangePartnerId = parse_id(&id, "exchange partner")?;
    let first = match &p.month {
        Some(m) => month(m).ok_or_else(|| ApiError::invalid("invalid_query", "month must be YYYY-MM"))?,
        None => state.now().to_zoned(jiff::tz::TimeZone::UTC).date().first_of_month(),
    };
    let at = |d: jiff::civil::Date| {
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(jiff::Timestamp::MAX)
    };
    // December 9999 has no next month: it runs to the end of time.
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .map(at)
        .unwrap_or(jiff::Timestamp::MAX);
    let v = state.store.exchange_volume(id.clone(), at(first), next).await?;
    Ok(Json(ExchangeVolumeView {
        exchange_partner_id: id.to_string(),
        month: first.strftime("%Y-%m").to_string(),
        orders_pending: v.orders_pending,
        points_pending: v.points_pending,
        orders_confirmed: v.orders_confirmed,
        points_out: v.points_out,
        units_out: v.units_out,
        orders_failed: v.orders_failed,
        points_refunded: v.points_failed,
        credits: v.credits,
        units_in: v.units_in,
        points_in: v.points_in,
    }))
}
