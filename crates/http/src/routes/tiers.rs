//! Tiers: the operator's ladder (`/v1/tiers`) and a member's standing on it
//! (`/v1/members/{id}/tier`), with a level set by hand.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, parse_id};
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use tally_domain::ids::MemberId;
use tally_domain::tiers::{TierBasis, TierLadder, TierLevel, TierPeriod, TierScope, TierState};
use tally_store::{ManualTier, MemberTierRow, ProgramUpdate};
use utoipa::ToSchema;

fn code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some("^[a-z0-9_]{1,32}$"))
        .examples([serde_json::json!("gold")])
        .build()
}

fn nullable_code_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some("^[a-z0-9_]{1,32}$"))
        .build()
}

fn multiplier_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        // 1 to 10, at most two decimals.
        .pattern(Some(r"^([1-9](\.[0-9]{1,2})?|10(\.0{1,2})?)$"))
        .examples([serde_json::json!("1.5")])
        .build()
}

fn perk_schema() -> utoipa::openapi::schema::Object {
    crate::schema::field::label::<200>()
}

/// One level, from the lowest to the highest.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelBody {
    /// What rules read as `member.tier`.
    #[schema(schema_with = code_schema)]
    pub code: String,
    #[schema(schema_with = crate::schema::field::label::<80>)]
    pub name: String,
    /// Qualifying points (or minor units of spend) in a period that reach this level;
    /// rising from one level to the next.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub threshold: i64,
    /// Applied to base points: "1.5" gives half the base points again, as a line of the
    /// breakdown of its own.
    #[schema(schema_with = multiplier_schema)]
    pub multiplier: String,
    /// What members of this level get, in words.
    #[serde(default)]
    #[schema(max_items = 10, schema_with = perks_schema)]
    pub perks: Vec<String>,
}

fn perks_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(perk_schema())
        .max_items(Some(10))
        .build()
}

/// The ladder. An empty list of levels switches tiers off.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TiersBody {
    /// `qualifying_points`: base and rule points of purchases, net of returns (not the
    /// tier bonus, transfers or membership bonuses; events only with `events_qualify`). `qualifying_spend`: the amount that earned, in
    /// minor units of the programme currency, net of returns.
    pub basis: TierBasis,
    /// `calendar_year`, or `rolling_12_months`: the member's own membership year from the
    /// day they joined.
    pub period: TierPeriod,
    /// Days after a period ends before its review may lower a level.
    #[schema(minimum = 0, maximum = 365)]
    pub grace_days: u32,
    #[schema(max_items = 12)]
    pub levels: Vec<LevelBody>,
    /// `member` (default): each member qualifies on their own. `household`: the members
    /// of a household qualify together and share one level.
    #[serde(default)]
    pub scope: TierScope,
    /// Whether engagement events' points qualify too (default false; with the
    /// `qualifying_points` basis only).
    #[serde(default)]
    pub events_qualify: bool,
}

fn ladder_view(l: &TierLadder) -> TiersBody {
    TiersBody {
        basis: l.basis,
        period: l.period,
        grace_days: l.grace_days,
        scope: l.scope,
        events_qualify: l.events_qualify,
        levels: l
            .levels
            .iter()
            .map(|v| LevelBody {
                code: v.code.clone(),
                name: v.name.clone(),
                threshold: v.threshold,
                multiplier: v.multiplier.to_string(),
                perks: v.perks.clone(),
            })
            .collect(),
    }
}

/// A multiplier as the API writes it (what `multiplier_schema` says: 1 to 10 with at
/// most two decimals, no sign, no leading zero), parsed; `None` otherwise. Tier levels
/// and membership plans read theirs with it.
pub(crate) fn multiplier_text(raw: &str) -> Option<rust_decimal::Decimal> {
    let (whole, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = matches!(whole.len(), 1 | 2)
        && !whole.starts_with('0')
        && digits(whole)
        && frac.len() <= 2
        && digits(frac)
        && (!raw.contains('.') || !frac.is_empty());
    well_formed.then(|| raw.parse().ok()).flatten()
}

/// The tier ladder.
#[utoipa::path(get, path = "/v1/tiers", tag = "tiers", responses((status = 200, body = TiersBody)), security(("bearer" = [])))]
pub async fn get_tiers(State(state): State<AppState>, _who: Principal) -> Json<TiersBody> {
    Json(ladder_view(&state.program().tiers))
}

/// Sets the tier ladder (operator). Members keep their level until the next scheduled
/// run (within minutes; or `POST /v1/expiry-runs`) or their next sale measures them
/// against the new ladder.
#[utoipa::path(put, path = "/v1/tiers", tag = "tiers", request_body = TiersBody, responses((status = 200, body = TiersBody), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn put_tiers(
    State(state): State<AppState>,
    _operator: Operator,
    body: ApiJson<TiersBody>,
) -> Result<Json<TiersBody>, ApiError> {
    let b = body.value;
    let mut levels = Vec::with_capacity(b.levels.len());
    for (i, l) in b.levels.into_iter().enumerate() {
        let multiplier = multiplier_text(&l.multiplier).ok_or_else(|| {
            ApiError::invalid(
                "invalid_field",
                format!(
                    "levels: level {}: multiplier must be 1 to 10 with at most two decimals, as \"1.5\"",
                    i + 1
                ),
            )
        })?;
        levels.push(TierLevel {
            code: l.code,
            name: l.name,
            threshold: l.threshold,
            multiplier,
            perks: l.perks,
        });
    }
    let ladder = TierLadder {
        basis: b.basis,
        period: b.period,
        grace_days: b.grace_days,
        levels,
        scope: b.scope,
        events_qualify: b.events_qualify,
    }
    .check()?;
    let update = ProgramUpdate {
        tiers: Some(ladder),
        ..ProgramUpdate::default()
    };
    let program = state.store.update_program(update).await?;
    state.set_program(program.clone());
    // The next scheduled run measures every member with a standing against it.
    state.store.mark_tier_reviews(state.now()).await?;
    Ok(Json(ladder_view(&program.tiers)))
}

/// A level of the ladder, as a member sees it.
#[derive(Serialize, ToSchema)]
pub struct LevelView {
    #[schema(schema_with = code_schema)]
    pub code: String,
    pub name: String,
    pub threshold: i64,
    #[schema(schema_with = multiplier_schema)]
    pub multiplier: String,
    pub perks: Vec<String>,
}

/// The next level and what is missing.
#[derive(Serialize, ToSchema)]
pub struct NextLevelView {
    #[schema(schema_with = code_schema)]
    pub code: String,
    pub name: String,
    pub threshold: i64,
    /// Qualifying points (or spend) still missing this period.
    pub missing: i64,
}

/// The coming review.
#[derive(Serialize, ToSchema)]
pub struct ReviewView {
    /// When the review happens (the period's end plus the grace days).
    pub at: String,
    /// The period the review looks at ends at (RFC 3339).
    pub period_end: String,
    /// The level the member keeps if nothing changes before the review (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = code_schema)]
    pub keeps: Option<String>,
}

/// A change of level, from the history.
#[derive(Serialize, ToSchema)]
pub struct TierChangeItem {
    pub at: String,
    /// The level before (absent: none). A tier typed in before the programme had a
    /// ladder may be any label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `upgrade`, `review`, `manual` or `manual_ended`.
    pub kind: String,
    pub reason: String,
    /// The sale that caused it, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

/// A member's standing on the ladder.
#[derive(Serialize, ToSchema)]
pub struct MemberTierView {
    pub member_id: String,
    /// False when the programme has no ladder.
    pub enabled: bool,
    /// The level in force (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<LevelView>,
    /// Set when the level in force was set by hand: until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manual_until: Option<String>,
    pub basis: TierBasis,
    /// Qualifying points (or minor units of spend) this period, across the coalition
    /// (operator only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualifying: Option<i64>,
    pub period_start: String,
    pub period_end: String,
    /// The next level and what is missing (operator only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextLevelView>,
    /// The coming review: the one in its grace days if there is one, else the review of
    /// this period (operator only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewView>,
    /// Changes of level, newest first (the last 100); empty for a partner.
    pub history: Vec<TierChangeItem>,
    /// With a ladder per household: the household whose standing this is (its members
    /// qualify together and share the level); absent otherwise, and for a partner the
    /// member has not shared their personal data with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub household_id: Option<String>,
}

fn level_view(l: &TierLevel) -> LevelView {
    LevelView {
        code: l.code.clone(),
        name: l.name.clone(),
        threshold: l.threshold,
        multiplier: l.multiplier.to_string(),
        perks: l.perks.clone(),
    }
}

/// The standing as of `now`, worked out from the stored one without writing: reviews
/// that fell due since are applied as the scheduled review will apply them.
/// `personal`: the caller may see the member's personal data (which household they
/// belong to is).
fn member_tier_view(
    state: &AppState,
    who: &Principal,
    personal: bool,
    member_id: &MemberId,
    row: MemberTierRow,
) -> MemberTierView {
    let ladder = state.program().tiers;
    let now = state.now();
    let mut s: TierState = row.state;
    s.roll(&ladder, now);
    let start = s.period_start.unwrap_or_else(|| ladder.period_start(s.anchor, now));
    let end = ladder.period_end(s.anchor, start);
    let held = s.effective.as_deref().and_then(|c| ladder.level(c));
    let next = ladder
        .levels
        .iter()
        .find(|l| l.threshold > s.qualifying && held.is_none_or(|h| l.threshold > h.threshold))
        .map(|l| NextLevelView {
            code: l.code.clone(),
            name: l.name.clone(),
            threshold: l.threshold,
            missing: l.threshold - s.qualifying,
        });
    // The coming review: of the period that ended, while its grace days run; else of
    // this one, as if nothing changed before it.
    let review = (!ladder.levels.is_empty()).then(|| {
        let reviewed_end = if s.review_pending { start } else { end };
        let review_at = after_grace(&ladder, reviewed_end);
        let mut probe = s.clone();
        probe.manual_until = None;
        probe.roll(&ladder, review_at);
        ReviewView {
            at: review_at.to_string(),
            period_end: reviewed_end.to_string(),
            keeps: probe.earned,
        }
    });
    let operator = matches!(who, Principal::Operator);
    // A partner sees the level; qualifying is coalition-wide, so it stays the operator's.
    let (qualifying, next, review) = match operator {
        true => (Some(s.qualifying), next, review),
        false => (None, None, None),
    };
    MemberTierView {
        // Which household a member belongs to is personal data.
        household_id: row.household.as_ref().filter(|_| personal).map(|w| w.to_string()),
        member_id: member_id.to_string(),
        enabled: !ladder.levels.is_empty(),
        level: held.map(level_view),
        manual_until: s.manual_until.filter(|u| *u > now).map(|u| u.to_string()),
        basis: ladder.basis,
        qualifying,
        period_start: start.to_string(),
        period_end: end.to_string(),
        next,
        review,
        // The history's reasons name coalition-wide totals and the operator's notes: the
        // operator's to read.
        history: row
            .history
            .into_iter()
            .filter(|_| operator)
            .map(|h| TierChangeItem {
                at: h.at.to_string(),
                from: h.from,
                to: h.to,
                kind: h.kind,
                reason: h.reason,
                transaction_id: h.transaction_id,
            })
            .collect(),
    }
}

fn after_grace(ladder: &TierLadder, end: jiff::Timestamp) -> jiff::Timestamp {
    tally_domain::time::add_days(end, ladder.grace_days)
}

/// A member's tier: the level, qualifying this period, what the next level needs, the
/// coming review and what it keeps, and the history of changes with reasons.
#[utoipa::path(get, path = "/v1/members/{id}/tier", tag = "tiers", params(("id" = String, Path)), responses((status = 200, body = MemberTierView)), security(("bearer" = [])))]
pub async fn get_member_tier(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<MemberTierView>, ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let row = state
        .store
        .member_tier(member_id.clone(), state.program().tiers)
        .await?;
    // Consents are looked up only when there is a household to show or hide.
    let personal = match row.household {
        Some(_) => crate::routes::members::sees_personal_data(&state, &who, &member_id).await?,
        None => false,
    };
    Ok(Json(member_tier_view(&state, &who, personal, &member_id, row)))
}

/// A level set by hand.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualTierBody {
    /// A level of the ladder; null ends a level set by hand (the computed one applies).
    #[schema(schema_with = nullable_code_schema)]
    pub code: Option<String>,
    /// Until when (RFC 3339, in the future); ignored when `code` is null.
    #[schema(format = DateTime, example = "2027-06-30T00:00:00Z")]
    pub until: String,
    /// Why, for the member's history.
    #[schema(schema_with = crate::schema::field::label::<200>)]
    pub reason: String,
}

/// Sets a member's level by hand until a date, with a reason (operator). Qualifying goes
/// on counting underneath; the computed level applies again after the date.
#[utoipa::path(put, path = "/v1/members/{id}/tier", tag = "tiers", params(("id" = String, Path)), request_body = ManualTierBody, responses((status = 200, body = MemberTierView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn put_member_tier(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<ManualTierBody>,
) -> Result<Json<MemberTierView>, ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let b = body.value;
    let reason = tally_domain::identity::parse_label("reason", &b.reason, 200)?;
    let until: jiff::Timestamp = b
        .until
        .parse()
        .map_err(|_| ApiError::invalid("invalid_field", "until: must be an RFC 3339 time"))?;
    let ladder = state.program().tiers;
    if ladder.levels.is_empty() {
        return Err(ApiError::invalid(
            "tiers_off",
            "the programme has no tier ladder: PUT /v1/tiers first",
        ));
    }
    let manual = ManualTier {
        code: b.code,
        until,
        reason,
    };
    let row = state
        .store
        .set_member_tier(member_id.clone(), ladder, manual, state.now())
        .await?;
    Ok(Json(member_tier_view(
        &state,
        &Principal::Operator,
        true,
        &member_id,
        row,
    )))
}
