//! The programme's terms and the operator's FX rates.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::State;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_domain::identity::parse_label;
use tally_domain::money::Currency;
use tally_domain::receipt::MoneyView;
use tally_domain::referrals::ReferralPolicy;
use tally_domain::transfers::TransferPolicy;
use tally_store::{ProgramRow, ProgramUpdate};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct ProgramView {
    pub name: String,
    /// The programme currency every purchase is converted into.
    pub currency: String,
    /// What one point is worth when spent.
    pub point_value: MoneyView,
    /// Earned points expire this many months after they were earned.
    pub expiry_months: u32,
    /// Units of each currency per one unit of programme currency.
    pub fx_rates: BTreeMap<String, String>,
    /// Who may send points to another member, and how many.
    pub transfers: TransferPolicy,
    /// Where a member's share link (`/r/{code}`) sends its visitor, with her code;
    /// null: share links answer 404.
    pub referral_signup_url: Option<String>,
    /// When a referred member's first purchase converts her referral; null: referrals
    /// never convert.
    pub referrals: Option<ReferralPolicy>,
}

fn program_view(state: &AppState, p: ProgramRow) -> ProgramView {
    let fx_rates = state.with_fx(|fx| fx.iter().map(|(c, r)| (c.to_string(), r.to_string())).collect());
    ProgramView {
        name: p.name,
        currency: p.currency.code().into(),
        point_value: MoneyView {
            amount: p.point_value_minor,
            currency: p.currency.code().into(),
        },
        expiry_months: p.expiry_months,
        fx_rates,
        transfers: p.transfers,
        referral_signup_url: p.referral_signup_url,
        referrals: p.referrals.as_deref().cloned(),
    }
}

/// The programme: currency, point value, expiry and FX rates.
#[utoipa::path(get, path = "/v1/program", tag = "program", responses((status = 200, body = ProgramView)), security(("bearer" = [])))]
pub async fn get_program(State(state): State<AppState>, _who: Principal) -> Json<ProgramView> {
    Json(program_view(&state, state.program()))
}

#[derive(Deserialize, ToSchema)]
pub struct ProgramPatch {
    #[schema(schema_with = crate::schema::field::nullable_label::<100>)]
    pub name: Option<String>,
    /// Minor units of programme currency one point is worth.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub point_value: Option<i64>,
    /// Applies to points earned from now on.
    #[schema(minimum = 1, maximum = 240)]
    pub expiry_months: Option<u32>,
    /// The transfer policy, replaced whole.
    pub transfers: Option<TransferPolicy>,
    /// The sign-up page share links lead to (`https://…`, at most 500 characters, no
    /// fragment); null removes it.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = "^https?://[!-~]+$")]
    pub referral_signup_url: Option<Option<String>>,
    /// When a referred member's first purchase converts her referral, replaced whole;
    /// null: referrals no longer convert.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<ReferralPolicy>)]
    pub referrals: Option<Option<ReferralPolicy>>,
}

/// Changes the programme's name, point value, expiry, transfer policy, share-link
/// sign-up page or referral policy (operator).
#[utoipa::path(patch, path = "/v1/program", tag = "program", request_body = ProgramPatch, responses((status = 200, body = ProgramView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn update_program(
    State(state): State<AppState>,
    _operator: Operator,
    body: ApiJson<ProgramPatch>,
) -> Result<Json<ProgramView>, ApiError> {
    let b = body.value;
    let name = b.name.map(|n| parse_label("name", &n, 100)).transpose()?;
    if b.point_value.is_some_and(|v| !(1..=1_000_000).contains(&v)) {
        return Err(ApiError::invalid(
            "invalid_field",
            "point_value: must be 1 to 1000000 minor units",
        ));
    }
    if b.expiry_months.is_some_and(|m| !(1..=240).contains(&m)) {
        return Err(ApiError::invalid("invalid_field", "expiry_months: must be 1 to 240"));
    }
    if let Some(t) = &b.transfers {
        t.check()?;
    }
    let referral_signup_url = match b.referral_signup_url {
        Some(Some(url)) => Some(Some(tally_domain::referrals::check_signup_url(&url)?)),
        other => other,
    };
    if let Some(Some(r)) = &b.referrals {
        r.check(state.program().currency)?;
    }
    let update = ProgramUpdate {
        referrals: b.referrals,
        transfers: b.transfers,
        referral_signup_url,
        name,
        currency: None,
        point_value_minor: b.point_value,
        expiry_months: b.expiry_months,
        tiers: None,
    };
    let program = state.store.update_program(update).await?;
    state.set_program(program.clone());
    Ok(Json(program_view(&state, program)))
}

#[derive(Deserialize, ToSchema)]
pub struct FxRatesBody {
    /// Units of that currency per one unit of programme currency, as decimal strings:
    /// `{"USD": "1.08", "CZK": "25.2"}`; 1 to 200 of them, not the programme currency.
    #[schema(schema_with = rates_schema)]
    pub rates: BTreeMap<String, String>,
}

pub fn rates_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    let rate = ObjectBuilder::new()
        .schema_type(Type::String)
        // More than 0 and at most 10^9.
        .pattern(Some(
            r"^\s*([1-9][0-9]{0,8}(\.[0-9]{1,12})?|1000000000(\.0{1,12})?|0\.[0-9]{0,11}[1-9][0-9]{0,11})\s*$",
        ))
        .examples([serde_json::json!("25.2")]);
    ObjectBuilder::new()
        .min_properties(Some(1))
        .max_properties(Some(200))
        .property_names(Some(crate::schema::CurrencyCode::schema_object()))
        .additional_properties(Some(AdditionalProperties::RefOr(rate.into())))
        .build()
}

#[derive(Serialize, ToSchema)]
pub struct FxRatesView {
    pub currency: String,
    pub rates: BTreeMap<String, String>,
}

fn fx_view(state: &AppState) -> FxRatesView {
    FxRatesView {
        currency: state.program().currency.code().into(),
        rates: state.with_fx(|fx| fx.iter().map(|(c, r)| (c.to_string(), r.to_string())).collect()),
    }
}

/// The current FX rates.
#[utoipa::path(get, path = "/v1/fx-rates", tag = "program", responses((status = 200, body = FxRatesView)), security(("bearer" = [])))]
pub async fn get_fx_rates(State(state): State<AppState>, _who: Principal) -> Json<FxRatesView> {
    Json(fx_view(&state))
}

/// Sets FX rates (operator); currencies not named keep their rate.
#[utoipa::path(put, path = "/v1/fx-rates", tag = "program", request_body = FxRatesBody, responses((status = 200, body = FxRatesView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn put_fx_rates(
    State(state): State<AppState>,
    _operator: Operator,
    body: ApiJson<FxRatesBody>,
) -> Result<Json<FxRatesView>, ApiError> {
    let parsed = parse_rates(&body.value.rates, state.program().currency)?;
    state.store.put_fx_rates(parsed.clone(), state.now()).await?;
    let mut all = state.fx();
    for (code, rate) in parsed.iter() {
        all.set(Currency::parse(code)?, rate)?;
    }
    state.set_fx(all);
    Ok(Json(fx_view(&state)))
}

/// Rates as a request gives them (`{"CZK": "25.2"}`, 1 to 200, not the programme
/// currency), checked.
pub fn parse_rates(
    rates: &BTreeMap<String, String>,
    program: Currency,
) -> Result<tally_domain::earning::FxRates, ApiError> {
    if rates.is_empty() || rates.len() > 200 {
        return Err(ApiError::invalid("invalid_field", "rates: give 1 to 200 rates"));
    }
    let mut parsed = tally_domain::earning::FxRates::new();
    for (code, rate) in rates {
        let currency = Currency::parse(code)?;
        if currency == program {
            return Err(ApiError::invalid(
                "invalid_field",
                format!("rates: {code} is the programme currency (its rate is 1)"),
            ));
        }
        let rate: Decimal = rate.trim().parse().map_err(|_| {
            ApiError::invalid(
                "invalid_field",
                format!("rates: {code} rate {rate:?} is not a decimal number"),
            )
        })?;
        parsed.set(currency, rate)?;
    }
    Ok(parsed)
}
