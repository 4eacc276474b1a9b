//! Settlement: the prices of points, each partner's statement per period (JSON and CSV),
//! the operator's netting view, closing a period, the liability and breakage.

use super::program::{parse_rates, rates_schema};
use super::raw_json;
use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_domain::ids::PartnerId;
use tally_domain::settlement::{Cohort, Liability, Netting, Period, PriceVersion, Prices, Statement};
use tally_store::settlement::Settlement;
use utoipa::{IntoParams, ToSchema};

/// A version of the prices, for the programme or one partner.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    /// The partner these prices are for; absent or null: the programme's, for every
    /// partner without its own.
    #[schema(schema_with = crate::schema::field::nullable_id)]
    pub partner_id: Option<String>,
    /// The UTC day the prices take effect, `YYYY-MM-DD`: after the last closed period.
    #[schema(
        example = "2026-11-01",
        pattern = r"^(2[0-9]{3}|[3-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
    )]
    pub effective_from: String,
    /// What a partner pays per point it funds, in programme currency: 0 to 1000, at
    /// most 6 decimals.
    #[schema(example = "0.008", pattern = r"^(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)$")]
    pub issue_price: String,
    /// What the operator pays a partner per point redeemed there: 0 to 1000, at most 6
    /// decimals.
    #[schema(example = "0.0095", pattern = r"^(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)$")]
    pub reimbursement_rate: String,
    /// A fee per period in programme currency; default 0. 0 to 10^9.
    #[schema(example = "0", pattern = r"^(1000000000(\.0{1,6})?|[0-9]{1,9}(\.[0-9]{1,6})?)$")]
    pub monthly_fee: Option<String>,
    /// Percent of what redemptions are paid back, kept as a fee; default 0. 0 to 100.
    #[schema(example = "0", pattern = r"^(100(\.0{1,6})?|[0-9]{1,2}(\.[0-9]{1,6})?)$")]
    pub redemption_fee_percent: Option<String>,
}

/// A plain decimal as the schema states it: fewer integer digits than `max` has (or
/// `max` itself, with only zeros after the point), then maybe a point and 1 to 6 digits.
fn plain_decimal(field: &'static str, text: &str, max: &str) -> Result<Decimal, ApiError> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(|f| (1..=6).contains(&f.len()) && digits(f));
    let int_ok = !int.is_empty()
        && digits(int)
        && (int.len() < max.len() || int == max && frac.is_none_or(|f| f.bytes().all(|b| b == b'0')));
    if !(int_ok && frac_ok) {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("{field}: must be a decimal from 0 to {max} such as \"0.008\" (at most 6 decimals)"),
        ));
    }
    text.parse::<Decimal>()
        .map(|d| d.normalize())
        .map_err(|_| ApiError::invalid("invalid_field", format!("{field}: must be a decimal")))
}

/// A UTC day written `YYYY-MM-DD`, from 2000 to 9998.
fn day(field: &'static str, text: &str) -> Result<Date, ApiError> {
    let b = text.as_bytes();
    let bad = || {
        ApiError::invalid(
            "invalid_field",
            format!("{field}: must be a day such as 2026-11-01 (YYYY-MM-DD)"),
        )
    };
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(bad());
    }
    let d: Date = text.parse().map_err(|_| bad())?;
    if !(2000..=9998).contains(&d.year()) {
        return Err(bad());
    }
    Ok(d)
}

/// Sets a version of the prices (operator). The same scope and day again replaces it;
/// a day in a closed period is refused.
#[utoipa::path(put, path = "/v1/settlement/prices", tag = "settlement", request_body = PriceBody,
    responses((status = 200, body = PriceVersion),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`partner_not_found`: no partner has `partner_id`", body = crate::error::ErrorBody),
        (status = 409, description = "`period_closed`: `effective_from` lies in a closed period", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_price(
    State(state): State<AppState>,
    _operator: Operator,
    body: ApiJson<PriceBody>,
) -> Result<Json<PriceVersion>, ApiError> {
    let b = body.value;
    let partner_id = b
        .partner_id
        .as_deref()
        .map(|p| parse_id::<PartnerId>(p, "partner"))
        .transpose()?;
    let prices = Prices {
        issue_price: plain_decimal("issue_price", &b.issue_price, "1000")?,
        reimbursement_rate: plain_decimal("reimbursement_rate", &b.reimbursement_rate, "1000")?,
        monthly_fee: b
            .monthly_fee
            .as_deref()
            .map(|f| plain_decimal("monthly_fee", f, "1000000000"))
            .transpose()?
            .unwrap_or_default(),
        redemption_fee_percent: b
            .redemption_fee_percent
            .as_deref()
            .map(|f| plain_decimal("redemption_fee_percent", f, "100"))
            .transpose()?
            .unwrap_or_default(),
    };
    prices.check()?;
    let version = PriceVersion {
        partner_id,
        effective_from: day("effective_from", &b.effective_from)?,
        prices,
        created_at: state.now(),
    };
    Ok(Json(state.store.put_price(version).await?))
}

#[derive(Serialize, ToSchema)]
pub struct PricesView {
    /// Every version, by the day it takes effect: the programme's and each partner's
    /// (a partner sees the programme's and its own). Without any, a point costs and
    /// pays back the programme's point value.
    pub versions: Vec<PriceVersion>,
}

/// The prices of settlement (operator, or a partner: the programme's and its own).
#[utoipa::path(get, path = "/v1/settlement/prices", tag = "settlement", responses((status = 200, body = PricesView)), security(("bearer" = [])))]
pub async fn list_prices(State(state): State<AppState>, who: Principal) -> Result<Json<PricesView>, ApiError> {
    let book = state.store.price_book().await?;
    let versions = book
        .versions()
        .iter()
        .filter(|v| match (who.partner_scope(), &v.partner_id) {
            (Some(own), Some(p)) => own == p,
            _ => true,
        })
        .cloned()
        .collect();
    Ok(Json(PricesView { versions }))
}

#[derive(Serialize, ToSchema)]
pub struct ClosedPeriodView {
    #[schema(example = "2026-10")]
    pub period: String,
    #[schema(value_type = String, format = DateTime)]
    pub closed_at: jiff::Timestamp,
    /// SHA-256 of the period's netting view as served.
    pub content_hash: String,
    /// The rates it was closed at: units of each currency per programme unit.
    pub fx_rates: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
pub struct PeriodsView {
    /// Closed periods, oldest first.
    pub closed: Vec<ClosedPeriodView>,
    /// The first open period, the next to close: none until a period is closed.
    pub next_to_close: Option<String>,
}

/// The closed periods (operator).
#[utoipa::path(get, path = "/v1/settlements", tag = "settlement",
    responses((status = 200, body = PeriodsView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_periods(State(state): State<AppState>, _operator: Operator) -> Result<Json<PeriodsView>, ApiError> {
    let stored = state.store.settlement_periods().await?;
    let next_to_close = stored.last().map(|p| p.period.next().to_string());
    let closed = stored
        .into_iter()
        .map(|p| ClosedPeriodView {
            period: p.period.to_string(),
            closed_at: p.closed_at,
            content_hash: p.content_hash,
            fx_rates: p.fx_rates.into_iter().map(|(c, r)| (c, r.to_string())).collect(),
        })
        .collect();
    Ok(Json(PeriodsView { closed, next_to_close }))
}

/// A period from the path: `YYYY-MM`, begun.
fn period(state: &AppState, text: &str) -> Result<Period, ApiError> {
    let p = Period::parse(text)?;
    if p.start() > state.now() {
        return Err(ApiError::invalid("invalid_field", format!("period: {p} has not begun")));
    }
    Ok(p)
}

/// A stored body with its hash as the `ETag`.
fn stored(body: String, hash: &str) -> Response {
    let mut res = raw_json(StatusCode::OK, body);
    if let Ok(v) = HeaderValue::from_str(&format!("\"{hash}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// The operator's view of a period (operator): each partner's net and who pays whom,
/// the margin, breakage and the reconciliation of the period's points. Once closed,
/// the stored view, byte for byte (its SHA-256 is the `ETag`).
#[utoipa::path(get, path = "/v1/settlements/{period}", tag = "settlement", params(("period" = String, Path, example = "2026-11", pattern = r"^(2[0-9]{3}|[3-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])$")),
    responses((status = 200, body = Netting),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 409, description = "`before_first_period`: the period lies before the first closed one, which settled its entries", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`: not a month `YYYY-MM`, or one that has not begun; `no_fx_rate`: a partner's currency has no FX rate (an open month converts at today's rates)", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_netting(
    State(state): State<AppState>,
    _operator: Operator,
    Path(p): Path<String>,
) -> Result<Response, ApiError> {
    let p = period(&state, &p)?;
    Ok(match state.store.settlement(p, None).await? {
        Settlement::Closed { period, .. } => stored(period.netting, &period.content_hash),
        Settlement::Open { netting, .. } => Json(netting.ok_or_else(ApiError::internal)?).into_response(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// The period's FX rates, if not today's: units of each currency per programme unit,
    /// `{"CZK": "25.2"}`. Currencies not named close at today's rate.
    #[schema(schema_with = rates_or_null)]
    pub fx_rates: Option<BTreeMap<String, String>>,
}

/// The rates' schema, or null (today's rates).
fn rates_or_null() -> utoipa::openapi::schema::Object {
    let mut o = rates_schema();
    o.schema_type = utoipa::openapi::schema::SchemaType::from_iter([
        utoipa::openapi::schema::Type::Object,
        utoipa::openapi::schema::Type::Null,
    ]);
    o
}

/// Closes a period (operator): each partner's statement is stored with its SHA-256 and
/// never changes; entries dated in it that arrive later settle in the next open period
/// as late items. Periods close in order, once each, after they end.
#[utoipa::path(post, path = "/v1/settlements/{period}/close", tag = "settlement", params(("period" = String, Path, example = "2026-10", pattern = r"^(2[0-9]{3}|[3-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])$")), request_body = CloseBody,
    responses((status = 200, body = Netting),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 409, description = "`period_closed`: it is closed already; `previous_period_open`: close the month before first; `period_not_ended`: the month has not ended; `retry`: prices kept changing while it read, try again", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`: not a month `YYYY-MM`, or bad rates (the programme currency among them); `no_fx_rate`: a partner's currency has no rate, today's or stated", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn close_period(
    State(state): State<AppState>,
    _operator: Operator,
    Path(p): Path<String>,
    body: ApiJson<CloseBody>,
) -> Result<Response, ApiError> {
    let p = period(&state, &p)?;
    let stated = match &body.value.fx_rates {
        Some(r) => parse_rates(r, state.program().currency)?,
        None => tally_domain::earning::FxRates::new(),
    };
    let closed = state.store.close_period(p, state.now(), stated).await?;
    Ok(stored(closed.netting, &closed.content_hash))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    /// `csv` for the statement as CSV (one row per line, then the totals); default JSON.
    #[param(inline, value_type = Option<String>, pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// A partner's statement for a period (operator, or the partner itself): the points it
/// funded at the issue price, the points redeemed at it at the reimbursement rate, the
/// points the operator funded there (not billed), fees and the net, in the partner's
/// currency at the period's rate, with lines per day and entry code. Once closed, the
/// stored statement, byte for byte (its SHA-256 is the `ETag`).
#[utoipa::path(get, path = "/v1/settlements/{period}/partners/{id}", tag = "settlement",
    params(("period" = String, Path, example = "2026-11", pattern = r"^(2[0-9]{3}|[3-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])$"), ("id" = String, Path), StatementParams),
    responses((status = 200, description = "The statement: JSON, or CSV with `?format=csv`",
            content((Statement = "application/json"), (String = "text/csv"))),
        (status = 409, description = "`before_first_period`: the period lies before the first closed one, which settled its entries", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`: not a month `YYYY-MM`, or one that has not begun; `no_fx_rate`: a partner's currency has no FX rate (an open month converts at today's rates)", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_statement(
    State(state): State<AppState>,
    who: Principal,
    Path((p, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<StatementParams>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid("invalid_query", "format: must be json or csv")),
    };
    let id: PartnerId = parse_id(&id, "partner")?;
    if who.partner_scope().is_some_and(|own| own != &id) {
        return Err(ApiError::not_found("partner"));
    }
    let p = period(&state, &p)?;
    let statement = match state.store.settlement(p, Some(id.clone())).await? {
        Settlement::Closed { statements, .. } => {
            let s = statements
                .into_iter()
                .find(|s| s.partner_id == id)
                .ok_or_else(|| ApiError::not_found("partner"))?;
            if !csv {
                return Ok(stored(s.body, &s.content_hash));
            }
            serde_json::from_str::<Statement>(&s.body).map_err(|e| {
                tracing::error!(error = %e, "a stored statement does not read back");
                ApiError::internal()
            })?
        }
        Settlement::Open { statements, .. } => statements
            .into_iter()
            .find(|s| s.partner_id == id)
            .ok_or_else(|| ApiError::not_found("partner"))?,
    };
    if !csv {
        return Ok(Json(statement).into_response());
    }
    let name = format!(
        "attachment; filename=\"statement-{}-{}.csv\"",
        statement.period,
        id.as_str()
    );
    let mut res = (StatusCode::OK, statement.to_csv()).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LiabilityParams {
    /// The UTC day, `YYYY-MM-DD`; default today. Entries dated on it count.
    #[param(inline, value_type = Option<String>, pattern = r"^(2[0-9]{3}|[3-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    pub at: Option<String>,
}

/// What the programme owes members at the end of a day (operator): the points they
/// hold, valued at the programme's reimbursement rate, split among funders in
/// proportion to what each funded. It reads the ledger up to the day.
#[utoipa::path(get, path = "/v1/ledger/liability", tag = "settlement", params(LiabilityParams),
    responses((status = 200, body = Liability),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_liability(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(q): ApiQuery<LiabilityParams>,
) -> Result<Json<Liability>, ApiError> {
    let at = match q.at.as_deref() {
        Some(t) => day("at", t).map_err(|e| ApiError::invalid("invalid_query", e.message))?,
        None => tally_domain::settlement::day_of(state.now()),
    };
    Ok(Json(state.store.liability(at).await?))
}

#[derive(Serialize, ToSchema)]
pub struct BreakageView {
    /// One line per month points were earned, oldest first.
    pub cohorts: Vec<Cohort>,
}

/// Breakage by monthly cohort (operator): of the points earned each month, how many
/// expired unspent. It reads the whole ledger.
#[utoipa::path(get, path = "/v1/ledger/breakage", tag = "settlement",
    responses((status = 200, body = BreakageView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_breakage(State(state): State<AppState>, _operator: Operator) -> Result<Json<BreakageView>, ApiError> {
    Ok(Json(BreakageView {
        cohorts: state.store.breakage().await?,
    }))
}
