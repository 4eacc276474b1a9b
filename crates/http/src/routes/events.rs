//! Engagement events (reviews, surveys, shared referral links, check-ins): recorded per
//! member, and earning through the same rules and ledger as purchases.

use crate::error::ApiError;
use crate::extract::{ApiJson, parse_id};
use crate::routes::posted_response;
use crate::routes::transactions::{MemberSelector, member_ref};
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tally_domain::identity::parse_label;
use tally_domain::ids::{EventId, MemberId, PartnerId};
use tally_domain::receipt::EventReceipt;
use tally_domain::rules::{Attr, EventFacts};
use tally_store::{EventCmd, StoreError, keys};
use utoipa::ToSchema;

/// Event attributes: at most 20, scalar values, short text.
pub fn attributes(map: &serde_json::Map<String, serde_json::Value>) -> Result<Vec<(String, Attr)>, ApiError> {
    if map.len() > 20 {
        return Err(ApiError::invalid("invalid_field", "attributes: at most 20"));
    }
    map.iter()
        .map(|(k, v)| {
            let key = parse_label("attributes", k, 64)?;
            let value = match v {
                serde_json::Value::Bool(b) => Attr::Bool(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Attr::Int(i),
                    None => Attr::Double(n.as_f64().filter(|f| f.is_finite()).unwrap_or(0.0)),
                },
                serde_json::Value::String(s) if s.chars().count() <= 500 => Attr::String(s.clone()),
                _ => {
                    return Err(ApiError::invalid(
                        "invalid_field",
                        format!("attributes.{key}: must be true/false, a number, or text of at most 500 characters"),
                    ));
                }
            };
            Ok((key, value))
        })
        .collect()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// The sender's id for the event: the same id never earns twice.
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub id: String,
    pub member: MemberSelector,
    /// `review`, `survey_answered`, `referral_shared`, `check_in`, or a type the operator added.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::field::label::<64>)]
    pub event_type: String,
    /// At most 20; each true/false, a number, or text of at most 500 characters.
    #[serde(default)]
    #[schema(schema_with = attributes_schema)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// RFC 3339 (default: now); at most 400 days ago, not in the future.
    #[schema(schema_with = crate::schema::field::nullable_time)]
    pub occurred_at: Option<String>,
    /// With the operator key: the partner the event happened at (it funds the points);
    /// without, the programme does. A partner key is always its own partner.
    #[schema(schema_with = crate::schema::field::nullable_id)]
    pub partner_id: Option<String>,
}

/// What [`attributes`] takes.
pub fn attributes_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
    let value = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::String).max_length(Some(500)));
    ObjectBuilder::new()
        .max_properties(Some(20))
        .property_names(Some(crate::schema::field::label::<64>()))
        .additional_properties(Some(AdditionalProperties::RefOr(value.into())))
        .build()
}

/// Records an engagement event for a member; event rules earn points on it.
#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = EventBody,
    responses((status = 201, body = EventReceipt, headers(("idempotent-replayed" = bool, description = "true when this answers an earlier request again"))),
        (status = 403, description = "`forbidden`: a partner records its own events", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found` or `partner_not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`idempotency_conflict`, or `retry`: the member changed meanwhile too often; send it again", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_event(
    State(state): State<AppState>,
    who: Principal,
    body: ApiJson<EventBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let partner_id = match (&who, &b.partner_id) {
        (Principal::Partner(own), None) => Some(own.clone()),
        (Principal::Partner(own), Some(p)) if own == p.as_str() => Some(own.clone()),
        (Principal::Partner(_), Some(_)) => return Err(ApiError::forbidden("a partner records its own events")),
        (Principal::Operator, p) => p.as_deref().map(|p| parse_id::<PartnerId>(p, "partner")).transpose()?,
    };
    let partner = match &partner_id {
        Some(p) => Some(state.partner(p).await?),
        None => None,
    };
    let external_id = parse_label("id", &b.id, 100)?;
    let event_type = parse_label("type", &b.event_type, 64)?;
    if [
        tally_domain::referrals::CONVERTED_EVENT,
        tally_domain::challenges::COMPLETED_EVENT,
    ]
    .contains(&event_type.as_str())
    {
        return Err(ApiError::invalid(
            "reserved_event_type",
            format!("{event_type} is posted by Tally itself"),
        ));
    }
    let attrs = attributes(&b.attributes)?;
    let member = member_ref(&state, &b.member, partner.as_ref().map(|p| p.country.as_str()))?;
    let now = state.now();
    let occurred_at = match &b.occurred_at {
        None => now,
        Some(s) => s
            .parse()
            .map_err(|_| ApiError::invalid("invalid_field", "occurred_at: must be an RFC 3339 time"))?,
    };
    tally_domain::time::check_occurred_at(occurred_at, now, 400)?;
    let facts = EventFacts {
        event_type: event_type.clone(),
        attributes: attrs,
    };
    let mut cmd = EventCmd {
        id: keys::new::<EventId>(),
        // Event ids are unique per sender: a partner's key, or the operator's.
        source: match &who {
            Principal::Partner(own) => own.to_string(),
            Principal::Operator => "operator".into(),
        },
        external_id,
        partner: partner.as_ref().map(|p| p.terms()),
        member,
        event_type,
        attributes_json: serde_json::Value::Object(b.attributes).to_string(),
        occurred_at,
        request_hash: body.hash,
        rules: Default::default(),
        program: state.program().terms(),
        now,
    };
    let mut attempt = 0;
    loop {
        cmd.rules = crate::earning::rule_event(&state, partner.as_ref(), &cmd.member, &facts, occurred_at).await?;
        match state.store.post_event(cmd.clone()).await {
            Err(StoreError::Domain(tally_domain::DomainError::Stale))
                if attempt < crate::routes::transactions::MAX_STALE_RETRIES =>
            {
                attempt += 1
            }
            other => {
                let posted = other?;
                crate::follow_up::after_write(&state, &posted).await;
                return Ok(posted_response(posted));
            }
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub external_id: String,
    pub partner_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    pub occurred_at: String,
    pub points_earned: i64,
}

/// A member's engagement events, newest first (a partner sees its own).
#[utoipa::path(get, path = "/v1/members/{id}/events", tag = "events", params(("id" = String, Path)),
    responses((status = 200, body = [EventView])), security(("bearer" = [])))]
pub async fn list_member_events(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    let id: MemberId = parse_id(&id, "member")?;
    let rows = state.store.events(&id, who.partner_scope(), 200).await?;
    Ok(Json(
        rows.into_iter()
            .map(|e| EventView {
                id: e.id.into_string(),
                external_id: e.external_id,
                partner_id: e.partner_id.map(PartnerId::into_string),
                event_type: e.event_type,
                attributes: serde_json::from_str(&e.attributes_json).unwrap_or_default(),
                occurred_at: e.occurred_at.to_string(),
                points_earned: e.points_earned,
            })
            .collect(),
    ))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventType {
    /// Lower-case letters, digits and `_`.
    #[schema(pattern = "^[a-z0-9_]{1,64}$", min_length = 1, max_length = 64)]
    pub name: String,
    #[schema(schema_with = crate::schema::field::label::<200>)]
    pub description: String,
}

/// The event types members can earn on.
#[utoipa::path(get, path = "/v1/event-types", tag = "events", responses((status = 200, body = [EventType])), security(("bearer" = [])))]
pub async fn list_event_types(State(state): State<AppState>, _: Principal) -> Result<Json<Vec<EventType>>, ApiError> {
    Ok(Json(
        state
            .store
            .event_types()
            .await?
            .into_iter()
            .map(|(name, description)| EventType { name, description })
            .collect(),
    ))
}

/// Adds a custom event type (operator), such as `workshop_attended`.
#[utoipa::path(post, path = "/v1/event-types", tag = "events", request_body = EventType,
    responses((status = 201, body = EventType), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 409, description = "`event_type_exists`, or `idempotency_conflict`", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn create_event_type(
    State(state): State<AppState>,
    _: crate::auth::Operator,
    body: ApiJson<EventType>,
) -> Result<(StatusCode, Json<EventType>), ApiError> {
    let name = parse_label("name", &body.value.name, 64)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(ApiError::invalid(
            "invalid_field",
            "name: lower-case letters, digits and _ only",
        ));
    }
    let description = parse_label("description", &body.value.description, 200)?;
    if !state
        .store
        .create_event_type(name.clone(), description.clone(), state.now())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "event_type_exists",
            "this event type exists already",
        ));
    }
    Ok((StatusCode::CREATED, Json(EventType { name, description })))
}
