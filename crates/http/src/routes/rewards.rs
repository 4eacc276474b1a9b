//! The rewards catalogue (`/v1/rewards`: the operator's, and each partner's for the
//! rewards it fulfils) and what one member can redeem and why not
//! (`/v1/members/{id}/rewards`).

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_domain::ids::{Id, MemberId, PartnerId, RewardId};
use tally_domain::rewards::{
    Availability, EarlyAccess, Lang, MemberLimit, OWN_LANGUAGES, OfferFacts, RewardKind, RewardSpec, reason_text,
    text_in,
};
use tally_store::{RewardRow, keys};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

/// Texts by language: two small letters each, English required where `en` is listed.
fn texts_schema(max: usize, english: bool) -> Object {
    let text = crate::schema::field::label_with_newlines(max);
    let mut b = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-z]{2}$")),
        ))
        .additional_properties(Some(utoipa::openapi::schema::Schema::Object(text.clone())))
        .max_properties(Some(12))
        .examples([serde_json::json!({"en": "Concert evening", "de": "Konzertabend", "cs": "Koncertní večer"})]);
    if english {
        b = b.property("en", text).required("en");
    }
    b.build()
}

fn name_schema() -> Object {
    texts_schema(120, true)
}

fn description_schema() -> Object {
    texts_schema(2000, false)
}

fn note_schema() -> Object {
    texts_schema(120, false)
}

fn condition_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .max_length(Some(2000))
        .description(Some("CEL over `member` and `local`, as a rule's condition reads them."))
        .examples([serde_json::json!("member.tier == \"gold\"")])
        .build()
}

fn charity_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .pattern(Some("^[a-z0-9_]{1,32}$"))
        .examples([serde_json::json!("red_cross")])
        .build()
}

/// A reward as the operator (or the partner that fulfils it) writes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardBody {
    pub kind: RewardKind,
    /// By language; English (`en`) is required and is the fallback.
    #[schema(schema_with = name_schema)]
    pub name: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(schema_with = description_schema)]
    pub description: BTreeMap<String, String>,
    /// Points a member pays.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub cost: i64,
    /// The partner that fulfils it (a partner's key may name only itself); none for a
    /// donation.
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_id)]
    pub partner_id: Option<String>,
    /// A donation's charity: its points go to `program:donations:<charity>`.
    #[serde(default)]
    #[schema(schema_with = charity_schema)]
    pub charity: Option<String>,
    /// Units left (0 to 10,000,000), an experience's places; null: no stock kept.
    /// Absent: none kept for a new reward, the units left unchanged on a `PUT`.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10_000_000)]
    pub stock: Option<Option<i64>>,
    #[serde(default)]
    pub limit: Option<MemberLimit>,
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_time)]
    pub available_from: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_time)]
    pub available_until: Option<String>,
    /// Who may redeem it. Absent: every member.
    #[serde(default)]
    #[schema(schema_with = condition_schema)]
    pub eligibility: Option<String>,
    /// What a member who may not is told, by language ("for Gold members").
    #[serde(default)]
    #[schema(schema_with = note_schema)]
    pub eligibility_note: BTreeMap<String, String>,
    #[serde(default)]
    pub early_access: Option<EarlyAccess>,
    /// An experience's date (required for one, refused for the others).
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_time)]
    pub starts_at: Option<String>,
    /// Days a voucher may be used: 1 to 365, default 30.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 365)]
    pub voucher_days: Option<u32>,
    /// An expired voucher forfeits its points instead of giving them back.
    #[serde(default)]
    pub forfeit_on_expiry: bool,
    /// Default true; false withdraws it (no member sees it, vouchers issued stay good).
    #[serde(default)]
    pub active: Option<bool>,
}

/// A reward in the catalogue.
#[derive(Serialize, ToSchema)]
pub struct RewardView {
    pub id: String,
    pub kind: RewardKind,
    pub name: BTreeMap<String, String>,
    pub description: BTreeMap<String, String>,
    pub cost: i64,
    pub partner_id: Option<String>,
    pub charity: Option<String>,
    /// Units left; null: no stock kept.
    pub stock_left: Option<i64>,
    pub limit: Option<MemberLimit>,
    pub available_from: Option<String>,
    pub available_until: Option<String>,
    pub eligibility: Option<String>,
    pub eligibility_note: BTreeMap<String, String>,
    pub early_access: Option<EarlyAccess>,
    pub starts_at: Option<String>,
    pub voucher_days: u32,
    pub forfeit_on_expiry: bool,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn view(row: RewardRow) -> RewardView {
    let s = row.reward.spec;
    let t = |t: Option<Timestamp>| t.map(|t| t.to_string());
    RewardView {
        id: row.reward.id.to_string(),
        kind: s.kind,
        name: s.name,
        description: s.description,
        cost: s.cost,
        partner_id: s.partner_id.map(|p| p.to_string()),
        charity: s.charity,
        stock_left: row.stock_left,
        limit: s.limit,
        available_from: t(s.available_from),
        available_until: t(s.available_until),
        eligibility: s.eligibility,
        eligibility_note: s.eligibility_note,
        early_access: s.early_access,
        starts_at: t(s.starts_at),
        voucher_days: s.voucher_days,
        forfeit_on_expiry: s.forfeit_on_expiry,
        active: s.active,
        created_at: row.created_at.to_string(),
        updated_at: row.updated_at.to_string(),
    }
}

fn time(field: &'static str, raw: &Option<String>) -> Result<Option<Timestamp>, ApiError> {
    raw.as_deref()
        .map(|s| {
            s.parse::<Timestamp>().map_err(|_| {
                ApiError::invalid(
                    "invalid_field",
                    format!("{field}: must be an RFC 3339 time such as 2026-12-03T18:00:00+01:00"),
                )
            })
        })
        .transpose()
}

/// The spec a body says, checked; a partner may write only rewards it fulfils.
fn spec_of(
    b: RewardBody,
    who: &Principal,
    id: RewardId,
) -> Result<(tally_domain::rewards::Reward, Option<Option<i64>>), ApiError> {
    let partner_id = match (&b.partner_id, who.partner_scope()) {
        (Some(p), None) => Some(
            PartnerId::parse(p)
                .ok_or_else(|| ApiError::invalid("invalid_field", "partner_id: no partner has this id"))?,
        ),
        (Some(p), Some(me)) if p == me.as_str() => Some(me.clone()),
        (None, Some(me)) if b.kind != RewardKind::Donation => Some(me.clone()),
        (_, Some(_)) => {
            return Err(ApiError::forbidden(
                "a partner writes only rewards it fulfils; donations are the operator's",
            ));
        }
        (None, None) => None,
    };
    if let Some(Some(s)) = b.stock
        && !(0..=10_000_000).contains(&s)
    {
        return Err(ApiError::invalid("invalid_field", "stock: 0 to 10,000,000"));
    }
    let spec = RewardSpec {
        kind: b.kind,
        name: b.name,
        description: b.description,
        cost: b.cost,
        partner_id,
        charity: b.charity,
        limit: b.limit,
        available_from: time("available_from", &b.available_from)?,
        available_until: time("available_until", &b.available_until)?,
        eligibility: b.eligibility,
        eligibility_note: b.eligibility_note,
        early_access: b.early_access,
        starts_at: time("starts_at", &b.starts_at)?,
        voucher_days: b.voucher_days.unwrap_or(30),
        forfeit_on_expiry: b.forfeit_on_expiry,
        active: b.active.unwrap_or(true),
    };
    Ok((spec.check(id)?, b.stock))
}

/// `422 unknown_partner` when the fulfilling partner does not exist (as for a rule).
async fn known_partner(state: &AppState, reward: &tally_domain::rewards::Reward) -> Result<(), ApiError> {
    if let Some(p) = &reward.spec.partner_id {
        match state.partner(p).await {
            Ok(_) => {}
            Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
                return Err(ApiError::invalid("unknown_partner", "partner_id: no such partner"));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Adds a reward (operator; a partner for a reward it fulfils). Conditions are checked
/// as a rule's are: `422 invalid_rule` with the line and column.
#[utoipa::path(post, path = "/v1/rewards", tag = "rewards", request_body = RewardBody,
    responses((status = 201, body = RewardView),
        (status = 403, description = "`forbidden`: a partner naming another partner, or a donation", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`, `invalid_rule`, `unknown_partner`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_reward(
    State(state): State<AppState>,
    who: Principal,
    body: ApiJson<RewardBody>,
) -> Result<(StatusCode, Json<RewardView>), ApiError> {
    let (reward, stock) = spec_of(body.value, &who, keys::new::<RewardId>())?;
    known_partner(&state, &reward).await?;
    let row = state
        .store
        .save_reward(reward, stock, who.partner_scope().cloned(), true, state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// Replaces a reward (operator; a partner, one it fulfils). `stock` sets the units left.
/// Vouchers already issued keep the terms they were issued with.
#[utoipa::path(put, path = "/v1/rewards/{id}", tag = "rewards", params(("id" = String, Path)), request_body = RewardBody,
    responses((status = 200, body = RewardView), (status = 404, description = "`not_found`: no such reward (or not this partner's)", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`: a partner naming another partner, or a donation", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`, `invalid_rule`, `unknown_partner`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_reward(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: ApiJson<RewardBody>,
) -> Result<Json<RewardView>, ApiError> {
    let id: RewardId = parse_id(&id, "reward")?;
    let (reward, stock) = spec_of(body.value, &who, id)?;
    known_partner(&state, &reward).await?;
    let row = state
        .store
        .save_reward(reward, stock, who.partner_scope().cloned(), false, state.now())
        .await?;
    Ok(Json(view(row)))
}

/// The catalogue: every reward for the operator, a partner's own for a partner.
#[utoipa::path(get, path = "/v1/rewards", tag = "rewards", responses((status = 200, body = Vec<RewardView>)), security(("bearer" = [])))]
pub async fn list_rewards(State(state): State<AppState>, who: Principal) -> Result<Json<Vec<RewardView>>, ApiError> {
    let rows = state.store.rewards(who.partner_scope().cloned()).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// One reward (a partner: only one it fulfils).
#[utoipa::path(get, path = "/v1/rewards/{id}", tag = "rewards", params(("id" = String, Path)),
    responses((status = 200, body = RewardView), (status = 404, description = "`not_found`", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_reward(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<RewardView>, ApiError> {
    let id: RewardId = parse_id(&id, "reward")?;
    let row = state
        .store
        .reward(id)
        .await?
        .filter(|r| {
            who.partner_scope()
                .is_none_or(|p| r.reward.spec.partner_id.as_ref() == Some(p))
        })
        .ok_or_else(|| ApiError::not_found("reward"))?;
    Ok(Json(view(row)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangParams {
    /// The member's language (two small letters); else `Accept-Language`, else English.
    #[param(pattern = "^[a-z]{2}$")]
    pub lang: Option<String>,
}

/// One reward as one member sees it.
#[derive(Serialize, ToSchema)]
pub struct OfferView {
    pub reward_id: String,
    pub kind: RewardKind,
    /// In the member's language, else English.
    pub name: String,
    pub description: Option<String>,
    pub cost: i64,
    pub partner_id: Option<String>,
    pub charity: Option<String>,
    pub starts_at: Option<String>,
    /// Units left; null: no stock kept.
    pub stock_left: Option<i64>,
    pub can_redeem: bool,
    /// Why not: `insufficient_points`, `not_eligible`, `not_open_yet`, `sold_out`,
    /// `limit_reached`; null when she can.
    pub reason_code: Option<String>,
    /// The same in her language ("needs 300 more points", "opens to you on 3 December").
    pub reason: Option<String>,
    /// When it opens to her, while it has not.
    pub opens_at: Option<String>,
}

/// What a member can redeem now and why not the rest.
#[derive(Serialize, ToSchema)]
pub struct OffersView {
    pub member_id: String,
    /// The language of the names and reasons.
    pub language: String,
    /// Points she can spend now.
    pub available: i64,
    pub rewards: Vec<OfferView>,
}

/// The member's language: `?lang=`, else the first of `Accept-Language` Tally writes in.
pub(crate) fn language(q: &LangParams, headers: &HeaderMap) -> Result<Lang, ApiError> {
    if let Some(l) = &q.lang {
        return Lang::parse_code(l).ok_or_else(|| ApiError::invalid("invalid_query", "lang: two small letters, as de"));
    }
    let header = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(Lang::negotiate(header, &OWN_LANGUAGES))
}

/// Plans whose holders have early access to rewards.
pub fn early_plans(state: &AppState) -> Vec<String> {
    state
        .program()
        .plans
        .iter()
        .filter(|p| p.benefits.early_access)
        .map(|p| p.code.clone())
        .collect()
}

/// Every reward open to members, as this member sees it: whether she can redeem it
/// now, and if not why, in her language (operator).
#[utoipa::path(get, path = "/v1/members/{id}/rewards", tag = "rewards", params(("id" = String, Path), LangParams),
    responses((status = 200, body = OffersView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn member_rewards(
    State(state): State<AppState>,
    _operator: crate::auth::Operator,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LangParams>,
    headers: HeaderMap,
) -> Result<Json<OffersView>, ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let lang = language(&q, &headers)?;
    let now = state.now();
    state.store.settle_member(&member_id, now).await?;
    let household = state.program().tiers.scope == tally_domain::tiers::TierScope::Household;
    let offers = state.store.member_offers(member_id.clone(), household, now).await?;
    let early = early_plans(&state);
    let plan_early = offers.facts.plan.as_ref().is_some_and(|p| early.contains(p));
    let rewards = offers
        .rewards
        .iter()
        .filter(|(row, _)| row.reward.is_open(now))
        .map(|(row, taken)| {
            let r = &row.reward;
            let a = r.availability(&OfferFacts {
                member: &offers.facts,
                available: offers.available,
                stock_left: row.stock_left,
                taken: *taken,
                plan_early_access: plan_early,
                now,
            });
            let note = text_in(&r.spec.eligibility_note, lang);
            OfferView {
                reward_id: r.id.to_string(),
                kind: r.spec.kind,
                name: r.name_in(lang).to_string(),
                description: text_in(&r.spec.description, lang).map(str::to_string),
                cost: r.spec.cost,
                partner_id: r.spec.partner_id.as_ref().map(|p| p.to_string()),
                charity: r.spec.charity.clone(),
                starts_at: r.spec.starts_at.map(|t| t.to_string()),
                stock_left: row.stock_left,
                can_redeem: a == Availability::Redeemable,
                reason_code: (a != Availability::Redeemable).then(|| a.code().to_string()),
                reason: reason_text(&a, lang, note),
                opens_at: match a {
                    Availability::OpensOn { at } => Some(at.to_string()),
                    _ => None,
                },
            }
        })
        .collect();
    Ok(Json(OffersView {
        member_id: member_id.to_string(),
        language: lang.as_str().to_string(),
        available: offers.available,
        rewards,
    }))
}
