//! Earning rules: saved as versioned data, checked when saved, tried on a sample basket.

use crate::earning::{PreparedPurchase, evaluate_event, rule_purchase};
use crate::error::ApiError;
use crate::extract::{ApiJson, parse_id};
use crate::routes::transactions::{TransactionBody, prepare_purchase};
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tally_domain::ids::{Id, LocationId, PartnerId, RuleId};
use tally_domain::receipt::BreakdownItem;
use tally_domain::rules::{CompiledRule, EventFacts, MemberFacts, RuleSet, RuleSpec, compile};
use tally_store::{RuleRow, keys};
use utoipa::ToSchema;

/// A rule at its current version.
#[derive(Serialize, ToSchema)]
pub struct RuleView {
    pub id: String,
    /// Grows by one with every change; transactions name the version that applied.
    pub version: i64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub created_at: String,
    pub updated_at: String,
}

/// A saved rule as answered: who funds it filled in as it applies (saved without
/// `funding`, by its scope and kind).
fn filled(mut spec: RuleSpec) -> RuleSpec {
    spec.funding = Some(tally_domain::rules::Funding {
        operator_percent: spec.operator_percent(),
    });
    spec
}

impl From<RuleRow> for RuleView {
    fn from(r: RuleRow) -> Self {
        RuleView {
            id: r.id.into_string(),
            version: r.version,
            spec: filled(r.spec),
            created_at: r.created_at.to_string(),
            updated_at: r.updated_at.to_string(),
        }
    }
}

/// Checks who may save `spec` and that its partner and locations exist, and compiles it
/// as version `version` of rule `id`.
async fn check_spec(
    state: &AppState,
    who: &Principal,
    mut spec: RuleSpec,
    id: &RuleId,
    version: i64,
) -> Result<CompiledRule, ApiError> {
    if let Principal::Partner(own) = who {
        match &spec.partner_id {
            None => spec.partner_id = Some(own.to_string()),
            Some(p) if own == p.as_str() => {}
            Some(_) => return Err(ApiError::forbidden("a partner writes rules for itself only")),
        }
        // A partner's rule, and every version a partner saves, is the partner's alone:
        // the operator's share is the operator's to give, on the version it approved (a
        // partner keeping a share while changing the points, caps or kind of a rule would
        // spend the operator's money).
        if spec.funding.is_some_and(|f| f.operator_percent > 0) {
            return Err(ApiError::forbidden(
                "a partner funds its own rules: only the operator gives the operator a share",
            ));
        }
    }
    if let Some(p) = &spec.partner_id {
        let partner = state
            .partner(&PartnerId::from_stored(p.clone()))
            .await
            .map_err(|_| ApiError::invalid("unknown_partner", "partner_id: no such partner"))?;
        for l in &spec.location_ids {
            let known = match LocationId::parse(l) {
                Some(id) => state.location(&partner.id, &id).await?.is_some(),
                None => false,
            };
            if !known {
                return Err(ApiError::invalid(
                    "unknown_location",
                    format!("location_ids: {l} is not a location of this partner"),
                ));
            }
        }
    }
    if let (tally_domain::rules::AppliesTo::Event, Some(t)) = (spec.applies_to, &spec.event_type)
        && !state.store.event_types().await?.iter().any(|(name, _)| name == t)
    {
        return Err(ApiError::invalid(
            "unknown_event_type",
            format!("event_type: {t} is not an event type; add it with POST /v1/event-types first"),
        ));
    }
    Ok(compile(id, version, spec)?)
}

/// Saves a checked rule (the store numbers its version) and refreshes the rule cache.
async fn save(state: &AppState, rule: CompiledRule) -> Result<RuleView, ApiError> {
    let json = serde_json::to_string(&rule.spec).map_err(|_| ApiError::internal())?;
    let row = state
        .store
        .save_rule(
            rule.id,
            rule.spec.partner_id.clone().map(PartnerId::from_stored),
            json,
            state.now(),
        )
        .await?;
    state.reload_rules().await?;
    Ok(row.into())
}

/// Creates an earning rule (operator, or a partner for its own sales). The condition
/// is checked against the rule context; errors say where and why.
#[utoipa::path(post, path = "/v1/earning-rules", tag = "rules", request_body = RuleSpec,
    responses((status = 201, body = RuleView), (status = 403, description = "`forbidden`: a partner writes rules for itself only, and programme-wide rules are the operator's", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_rule`, `rule_too_costly`, `invalid_field`, `unknown_partner`, `unknown_location`, `unknown_event_type`: `message` says where and why", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn create_rule(
    State(state): State<AppState>,
    who: Principal,
    body: ApiJson<RuleSpec>,
) -> Result<(StatusCode, Json<RuleView>), ApiError> {
    let rule = check_spec(&state, &who, body.value, &keys::new::<RuleId>(), 1).await?;
    Ok((StatusCode::CREATED, Json(save(&state, rule).await?)))
}

/// Saves a new version of a rule. Past transactions keep the version that applied.
#[utoipa::path(put, path = "/v1/earning-rules/{id}", tag = "rules", params(("id" = String, Path)), request_body = RuleSpec,
    responses((status = 200, body = RuleView), (status = 403, description = "`forbidden`: a partner writes rules for itself only, and programme-wide rules are the operator's", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_rule`, `rule_too_costly`, `invalid_field`, `unknown_partner`, `unknown_location`, `unknown_event_type`: `message` says where and why", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_rule(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: ApiJson<RuleSpec>,
) -> Result<Json<RuleView>, ApiError> {
    let current = visible_rule(&state, &who, &id, true).await?;
    let rule = check_spec(&state, &who, body.value, &current.id, current.version + 1).await?;
    Ok(Json(save(&state, rule).await?))
}

/// A rule a caller may see (a partner: its own and programme-wide ones) or change (its own).
async fn visible_rule(state: &AppState, who: &Principal, id: &str, to_change: bool) -> Result<RuleRow, ApiError> {
    let id: RuleId = parse_id(id, "rule")?;
    let rule = state
        .store
        .rule(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("rule"))?;
    if let Some(own) = who.partner_scope() {
        match rule.spec.partner_id.as_deref() {
            Some(p) if own == p => {}
            None if !to_change => {}
            None => return Err(ApiError::forbidden("programme-wide rules are the operator's")),
            Some(_) => return Err(ApiError::not_found("rule")),
        }
    }
    Ok(rule)
}

/// The rules a caller may see: all for the operator; a partner's own and the
/// programme-wide ones for a partner.
#[utoipa::path(get, path = "/v1/earning-rules", tag = "rules", responses((status = 200, body = [RuleView])), security(("bearer" = [])))]
pub async fn list_rules(State(state): State<AppState>, who: Principal) -> Result<Json<Vec<RuleView>>, ApiError> {
    let scope = who.partner_scope();
    Ok(Json(
        state
            .store
            .rules()
            .await?
            .into_iter()
            .filter(|r| {
                scope.is_none()
                    || r.spec.partner_id.is_none()
                    || r.spec.partner_id.as_deref() == scope.map(PartnerId::as_str)
            })
            .map(Into::into)
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct RuleVersionView {
    pub version: i64,
    pub spec: RuleSpec,
    pub saved_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct RuleDetail {
    #[serde(flatten)]
    pub rule: RuleView,
    /// Every version, oldest first.
    pub versions: Vec<RuleVersionView>,
}

/// A rule with all its versions.
#[utoipa::path(get, path = "/v1/earning-rules/{id}", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = RuleDetail)), security(("bearer" = [])))]
pub async fn get_rule(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<RuleDetail>, ApiError> {
    let rule = visible_rule(&state, &who, &id, false).await?;
    let versions = state
        .store
        .rule_versions(&rule.id)
        .await?
        .into_iter()
        .map(|(version, spec, at)| {
            Ok(RuleVersionView {
                version,
                spec: filled(serde_json::from_str(&spec).map_err(|_| ApiError::internal())?),
                saved_at: at.to_string(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(RuleDetail {
        rule: rule.into(),
        versions,
    }))
}

/// Made-up member facts for a test.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SampleMember {
    pub tier: Option<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    pub plan: Option<String>,
    pub country: Option<String>,
    /// RFC 3339 (default: a year before the sale).
    #[schema(schema_with = crate::schema::field::nullable_time)]
    pub joined_at: Option<String>,
    /// Earlier purchases at this partner (0: a first visit).
    #[serde(default)]
    pub visits: i64,
    /// The member who referred this one, if any.
    pub referred_by: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct SampleEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default)]
    #[schema(schema_with = crate::routes::events::attributes_schema)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// RFC 3339 (default: now); at most 400 days ago, not in the future.
    #[schema(schema_with = crate::schema::field::nullable_time)]
    pub occurred_at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTestBody {
    /// A rule to try, not saved.
    pub rule: Option<RuleSpec>,
    /// Or a saved rule to try. With neither, every active rule runs.
    #[schema(schema_with = crate::schema::field::nullable_id)]
    pub rule_id: Option<String>,
    /// The partner of the sample (a partner key uses itself, and may name only itself).
    #[schema(schema_with = crate::schema::field::nullable_id)]
    pub partner_id: Option<String>,
    /// A sample sale, as sent to `POST /v1/transactions` (member and external_id may be placeholders).
    pub basket: Option<TransactionBody>,
    /// Or a sample engagement event.
    pub event: Option<SampleEvent>,
    #[serde(default)]
    pub member: SampleMember,
}

#[derive(Serialize, ToSchema)]
pub struct RuleTestResult {
    /// Base points plus what the rules gave, before caps and budgets.
    pub points_earned: i64,
    pub breakdown: Vec<BreakdownItem>,
    /// Rules that failed at run time on this sample, and why.
    pub failures: Vec<String>,
    /// Caps and budgets are not applied in a test.
    pub note: String,
}

/// Tries a rule (saved or not) on a sample basket or event and member, and shows the
/// breakdown. Nothing is written.
#[utoipa::path(post, path = "/v1/earning-rules/test", tag = "rules", request_body = RuleTestBody,
    responses((status = 200, body = RuleTestResult), (status = 403, description = "`forbidden`: a partner writes rules for itself only, and programme-wide rules are the operator's", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found` / `partner_not_found`: no such rule or partner", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_rule`, `invalid_field` and others: `message` says where and why", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn test_rule(
    State(state): State<AppState>,
    who: Principal,
    body: ApiJson<RuleTestBody>,
) -> Result<Json<RuleTestResult>, ApiError> {
    let b = body.value;
    let active = state.rules();
    let rules: RuleSet = match (b.rule, b.rule_id) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("invalid_field", "give rule or rule_id, not both")),
        (Some(spec), None) => with_exclusions(
            &active,
            check_spec(&state, &who, spec, &RuleId::from_stored("rul_test".into()), 0).await?,
        ),
        (None, Some(id)) => {
            let row = visible_rule(&state, &who, &id, false).await?;
            with_exclusions(&active, compile(&row.id, row.version, row.spec)?)
        }
        (None, None) => (*active).clone(),
    };
    let named = b
        .partner_id
        .as_deref()
        .map(|p| parse_id::<PartnerId>(p, "partner"))
        .transpose()?;
    let partner_id = match (who.partner_scope(), named) {
        (Some(own), Some(p)) if &p != own => {
            return Err(ApiError::forbidden(
                "partner_id: a partner tries rules at its own tills only",
            ));
        }
        (Some(own), _) => Some(own.clone()),
        (None, p) => p,
    };
    let partner = match &partner_id {
        Some(p) => Some(state.partner(p).await?),
        None => None,
    };
    let joined_at = match &b.member.joined_at {
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::invalid("invalid_field", "member.joined_at: must be an RFC 3339 time"))?,
        None => state
            .now()
            .checked_sub(jiff::Span::new().hours(24 * 365))
            .unwrap_or(state.now()),
    };
    let member = MemberFacts {
        id: "mem_sample".into(),
        tier: b.member.tier,
        segments: b.member.segments,
        plan: b.member.plan,
        country: b.member.country,
        joined_at,
        visits: b.member.visits.max(0),
        referred_by: b.member.referred_by,
    };
    let (points, breakdown, failures) = match (b.basket, b.event) {
        (Some(basket), None) => {
            let partner =
                partner.ok_or_else(|| ApiError::invalid("invalid_field", "partner_id: a basket needs a partner"))?;
            let prepared: PreparedPurchase = prepare_purchase(&state, &partner, basket, String::new())?;
            let location = match &prepared.cmd.location_id {
                Some(id) => state.location(&partner.id, id).await?,
                None => None,
            };
            let ruled = rule_purchase(&rules, &partner, location.as_ref(), &prepared, Some(member))?;
            let mut breakdown: Vec<BreakdownItem> = ruled.valuation.breakdown.into_iter().map(Into::into).collect();
            let mut points = ruled.valuation.points_earned;
            for a in ruled.evaluation.awards {
                points += a.points;
                breakdown.push(award_item(&a));
            }
            (points, breakdown, ruled.evaluation.failures)
        }
        (None, Some(event)) => {
            let at = match &event.occurred_at {
                Some(t) => t
                    .parse()
                    .map_err(|_| ApiError::invalid("invalid_field", "event.occurred_at: must be an RFC 3339 time"))?,
                None => state.now(),
            };
            tally_domain::time::check_occurred_at(at, state.now(), 400)?;
            let facts_event = EventFacts {
                event_type: event.event_type.clone(),
                attributes: crate::routes::events::attributes(&event.attributes)?,
            };
            let eval = evaluate_event(&rules, partner.as_ref(), Some(&member), &facts_event, at)?;
            let points = eval.awards.iter().map(|a| a.points).sum();
            (points, eval.awards.iter().map(award_item).collect(), eval.failures)
        }
        _ => return Err(ApiError::invalid("invalid_field", "give a basket or an event")),
    };
    Ok(Json(RuleTestResult {
        points_earned: points,
        breakdown,
        failures: failures.into_iter().map(|(r, why)| format!("{r}: {why}")).collect(),
        note: "caps and budgets are not applied in a test".into(),
    }))
}

fn award_item(a: &tally_domain::rules::Award) -> BreakdownItem {
    tally_domain::breakdown::BreakdownLine {
        rule: a.rule_id.to_string(),
        version: Some(a.version),
        points: a.points,
        reason: a.sentence(a.points),
        operator_percent: a.operator_percent,
    }
    .into()
}

/// The tried rule with the programme's active exclusions (they apply before any rule).
fn with_exclusions(active: &RuleSet, tried: tally_domain::rules::CompiledRule) -> RuleSet {
    let mut rules: Vec<_> = active
        .rules()
        .iter()
        .filter(|r| matches!(r.spec.effect, tally_domain::rules::Effect::Exclude) && r.id != tried.id)
        .cloned()
        .collect();
    rules.push(tried);
    RuleSet::new(rules)
}
