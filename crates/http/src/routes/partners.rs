//! Partners, their locations and their API keys (operator).

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, parse_id};
use crate::idempotency::CarriesSecret;
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_domain::identity::{parse_country, parse_label};
use tally_domain::ids::{LocationId, PartnerId};
use tally_domain::money::Currency;
use tally_domain::time::parse_timezone;
use tally_store::{ApiKeyRow, LocationRow, PartnerRow, keys};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct NewPartner {
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub name: String,
    #[schema(schema_with = crate::schema::field::label::<50>)]
    pub industry: String,
    #[schema(schema_with = crate::schema::field::country)]
    pub country: String,
    #[schema(value_type = crate::schema::CurrencyCode)]
    pub currency: String,
    #[schema(value_type = crate::schema::TimeZoneName)]
    pub timezone: String,
    /// Points per one unit of programme currency spent: a decimal string from 0 to 1000
    /// (default "1").
    #[schema(value_type = Option<String>, pattern = r"^\s*(1000(\.0{1,10})?|[0-9]{1,3}(\.[0-9]{1,10})?)\s*$", example = "1.5")]
    pub earn_rate: Option<String>,
    /// Days earned points stay pending before they can be spent (default 0).
    #[schema(maximum = 365)]
    pub pending_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct PartnerView {
    pub id: String,
    pub name: String,
    pub industry: String,
    pub country: String,
    pub currency: String,
    pub timezone: String,
    pub earn_rate: String,
    pub pending_days: u32,
    pub created_at: String,
}

impl From<PartnerRow> for PartnerView {
    fn from(p: PartnerRow) -> Self {
        PartnerView {
            id: p.id.into_string(),
            name: p.name,
            industry: p.industry,
            country: p.country,
            currency: p.currency.code().into(),
            timezone: p.timezone,
            earn_rate: p.earn_rate.normalize().to_string(),
            pending_days: p.pending_days,
            created_at: p.created_at.to_string(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PartnerList {
    pub items: Vec<PartnerView>,
    pub next_cursor: Option<String>,
}

/// Adds a partner business to the coalition (operator).
#[utoipa::path(post, path = "/v1/partners", tag = "partners", request_body = NewPartner, responses((status = 201, body = PartnerView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn create_partner(
    State(state): State<AppState>,
    _operator: Operator,
    body: ApiJson<NewPartner>,
) -> Result<(StatusCode, Json<PartnerView>), ApiError> {
    let b = body.value;
    let earn_rate: Decimal = match b.earn_rate.as_deref() {
        None => Decimal::ONE,
        Some(s) => s
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("invalid_field", "earn_rate: must be a decimal string such as \"1.5\""))?,
    };
    if earn_rate < Decimal::ZERO || earn_rate > tally_domain::earning::MAX_EARN_RATE {
        return Err(ApiError::invalid(
            "invalid_field",
            "earn_rate: must be between 0 and 1000",
        ));
    }
    let pending_days = b.pending_days.unwrap_or(0);
    if pending_days > 365 {
        return Err(ApiError::invalid("invalid_field", "pending_days: must be 0 to 365"));
    }
    let partner = PartnerRow {
        id: keys::new::<PartnerId>(),
        name: parse_label("name", &b.name, 100)?,
        industry: parse_label("industry", &b.industry, 50)?,
        country: parse_country("country", &b.country)?,
        currency: Currency::parse(&b.currency)?,
        timezone: parse_timezone("timezone", &b.timezone)?,
        earn_rate,
        pending_days,
        created_at: state.now(),
    };
    let partner = state.store.create_partner(partner).await?;
    state.remember_partner(partner.clone());
    Ok((StatusCode::CREATED, Json(partner.into())))
}

/// All partners (operator).
#[utoipa::path(get, path = "/v1/partners", tag = "partners", responses((status = 200, body = PartnerList), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn list_partners(State(state): State<AppState>, _operator: Operator) -> Result<Json<PartnerList>, ApiError> {
    let items = state.store.partners().await?.into_iter().map(Into::into).collect();
    Ok(Json(PartnerList {
        items,
        next_cursor: None,
    }))
}

/// Checks that the caller may see partner `id`: the operator, or that partner itself.
/// Another partner gets 404, so partner ids do not leak.
pub fn check_partner_access(who: &Principal, id: &PartnerId) -> Result<(), ApiError> {
    match who.partner_scope() {
        Some(own) if own != id => Err(ApiError::not_found("partner")),
        _ => Ok(()),
    }
}

/// One partner (operator, or the partner itself).
#[utoipa::path(get, path = "/v1/partners/{id}", tag = "partners", params(("id" = String, Path)), responses((status = 200, body = PartnerView)), security(("bearer" = [])))]
pub async fn get_partner(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<PartnerView>, ApiError> {
    let id: PartnerId = parse_id(&id, "partner")?;
    check_partner_access(&who, &id)?;
    Ok(Json(state.partner(&id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
pub struct NewLocation {
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub name: String,
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub city: String,
    #[schema(schema_with = crate::schema::field::country)]
    pub country: String,
    #[schema(value_type = crate::schema::TimeZoneName)]
    pub timezone: String,
}

#[derive(Serialize, ToSchema)]
pub struct LocationView {
    pub id: String,
    pub partner_id: String,
    pub name: String,
    pub city: String,
    pub country: String,
    pub timezone: String,
}

impl From<LocationRow> for LocationView {
    fn from(l: LocationRow) -> Self {
        LocationView {
            id: l.id.into_string(),
            partner_id: l.partner_id.into_string(),
            name: l.name,
            city: l.city,
            country: l.country,
            timezone: l.timezone,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LocationList {
    pub items: Vec<LocationView>,
    pub next_cursor: Option<String>,
}

/// Adds a store, hotel or other location to a partner (operator).
#[utoipa::path(post, path = "/v1/partners/{id}/locations", tag = "partners", params(("id" = String, Path)), request_body = NewLocation, responses((status = 201, body = LocationView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn create_location(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<NewLocation>,
) -> Result<(StatusCode, Json<LocationView>), ApiError> {
    let id: PartnerId = parse_id(&id, "partner")?;
    let b = body.value;
    let location = LocationRow {
        id: keys::new::<LocationId>(),
        partner_id: id,
        name: parse_label("name", &b.name, 100)?,
        city: parse_label("city", &b.city, 100)?,
        country: parse_country("country", &b.country)?,
        timezone: parse_timezone("timezone", &b.timezone)?,
        created_at: state.now(),
    };
    let location = state.store.create_location(location).await?;
    Ok((StatusCode::CREATED, Json(location.into())))
}

/// A partner's locations (operator, or the partner itself).
#[utoipa::path(get, path = "/v1/partners/{id}/locations", tag = "partners", params(("id" = String, Path)), responses((status = 200, body = LocationList)), security(("bearer" = [])))]
pub async fn list_locations(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<LocationList>, ApiError> {
    let id: PartnerId = parse_id(&id, "partner")?;
    check_partner_access(&who, &id)?;
    state.partner(&id).await?;
    let items = state.store.locations(&id).await?.into_iter().map(Into::into).collect();
    Ok(Json(LocationList {
        items,
        next_cursor: None,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct NewApiKey {
    pub id: String,
    /// The key itself: shown only in this answer, stored only as a hash.
    pub key: String,
}

/// Makes an API key for a partner's tills (operator).
#[utoipa::path(post, path = "/v1/partners/{id}/api-keys", tag = "partners", params(("id" = String, Path)), responses((status = 201, body = NewApiKey), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Extension<CarriesSecret>, Json<NewApiKey>), ApiError> {
    let id: PartnerId = parse_id(&id, "partner")?;
    state.partner(&id).await?;
    let key = keys::generate_key();
    let row = ApiKeyRow {
        id: keys::new_id("key"),
        partner_id: id,
        key_hash: keys::hash_key(&key),
        created_at: state.now(),
    };
    let id = row.id.clone();
    state.store.create_api_key(row).await?;
    // The key is shown once: an Idempotency-Key replay does not show it again.
    Ok((
        StatusCode::CREATED,
        axum::Extension(CarriesSecret),
        Json(NewApiKey { id, key }),
    ))
}

/// An API key as listed: its id and dates, never the key.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub partner_id: String,
    pub created_at: String,
    /// When it was revoked; a revoked key is refused at once.
    pub revoked_at: Option<String>,
}

impl From<tally_store::ApiKeyInfo> for ApiKeyView {
    fn from(k: tally_store::ApiKeyInfo) -> Self {
        ApiKeyView {
            id: k.id,
            partner_id: k.partner_id.into_string(),
            created_at: k.created_at.to_string(),
            revoked_at: k.revoked_at.map(|t| t.to_string()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// A partner's API keys, revoked ones included, without the keys (operator, or the
/// partner itself).
#[utoipa::path(get, path = "/v1/partners/{id}/api-keys", tag = "partners", params(("id" = String, Path)), responses((status = 200, body = ApiKeyList)), security(("bearer" = [])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let id: PartnerId = parse_id(&id, "partner")?;
    check_partner_access(&who, &id)?;
    state.partner(&id).await?;
    let items = state.store.api_keys(&id).await?.into_iter().map(Into::into).collect();
    Ok(Json(ApiKeyList { items }))
}

/// Revokes a partner's API key (operator). It is refused from the next request on, by
/// every server on the database; revoking it again changes nothing.
#[utoipa::path(delete, path = "/v1/partners/{id}/api-keys/{key_id}", tag = "partners", params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: the partner has no key with this id; `partner_not_found`: not a partner id", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    _operator: Operator,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let id: PartnerId = parse_id(&id, "partner")?;
    if key_id.is_empty() || key_id.len() > 64 {
        return Err(ApiError::not_found("api key"));
    }
    let (info, hash) = state.store.revoke_api_key(&id, &key_id, state.now()).await?;
    state.forget_key(&hash);
    Ok(Json(info.into()))
}
