//! Challenges: the operator writes them; members join (or are enrolled automatically);
//! a member's progress in each, in her language, and her badges.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::routes::rewards::{LangParams, language};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use tally_domain::challenges::{Challenge, ChallengeSpec, Counts, Measure, Standing};
use tally_domain::ids::{ChallengeId, MemberId};
use tally_domain::rewards::{Lang, text_in};
use tally_store::MemberRef;
use tally_store::challenges::{ChallengeRow, MemberChallengeRow};
use utoipa::ToSchema;

/// A challenge as saved.
#[derive(Serialize, ToSchema)]
pub struct ChallengeView {
    pub id: String,
    #[serde(flatten)]
    pub spec: ChallengeSpec,
}

fn view(c: &Challenge) -> ChallengeView {
    ChallengeView {
        id: c.id.to_string(),
        spec: c.spec.clone(),
    }
}

fn find(state: &AppState, id: &str) -> Result<Challenge, ApiError> {
    let id: ChallengeId = parse_id(id, "challenge").map_err(|_| ApiError::not_found("challenge"))?;
    state
        .challenges()
        .iter()
        .find(|c| c.id == id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("challenge"))
}

/// Adds a challenge (operator). Its condition is checked as a rule's is (`422
/// invalid_rule` with the line and column); its code must be new (`409
/// challenge_exists`).
#[utoipa::path(post, path = "/v1/challenges", tag = "challenges", request_body = ChallengeSpec,
    responses((status = 201, body = ChallengeView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 409, description = "`challenge_exists`: the code is taken", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`, `invalid_rule`, `rule_too_costly`, `unknown_event_type`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_challenge(
    State(state): State<AppState>,
    _operator: Operator,
    body: ApiJson<ChallengeSpec>,
) -> Result<(StatusCode, Json<ChallengeView>), ApiError> {
    let types = state.store.event_types().await?;
    let id = tally_store::keys::new::<ChallengeId>();
    let challenge = body.value.check(id, |t| types.iter().any(|(name, _)| name == t))?;
    let row = ChallengeRow {
        id: challenge.id.clone(),
        spec_json: serde_json::to_string(&challenge.spec).map_err(|_| ApiError::internal())?,
        created_at: state.now(),
    };
    let (code, measure, target) = (
        challenge.spec.code.clone(),
        challenge.spec.measure,
        challenge.spec.target,
    );
    if !state.store.create_challenge(row, code, measure, target).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "challenge_exists",
            "a challenge with this code exists",
        ));
    }
    state.reload_rules().await?;
    Ok((StatusCode::CREATED, Json(view(&challenge))))
}

/// Every challenge, oldest first (operator: their conditions may name partners and
/// segments).
#[utoipa::path(get, path = "/v1/challenges", tag = "challenges", responses((status = 200, body = [ChallengeView]),
    (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn list_challenges(State(state): State<AppState>, _operator: Operator) -> Json<Vec<ChallengeView>> {
    Json(state.challenges().iter().map(view).collect())
}

/// One challenge (operator).
#[utoipa::path(get, path = "/v1/challenges/{id}", tag = "challenges", params(("id" = String, Path)),
    responses((status = 200, body = ChallengeView), (status = 404, description = "`not_found`", body = crate::error::ErrorBody),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_challenge(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<ChallengeView>, ApiError> {
    Ok(Json(view(&find(&state, &id)?)))
}

/// The badge a challenge gives, in her language.
#[derive(Serialize, ToSchema)]
pub struct BadgeView {
    pub code: String,
    pub name: String,
}

/// One challenge as one member stands in it.
#[derive(Serialize, ToSchema)]
pub struct MemberChallengeView {
    pub challenge_id: String,
    pub code: String,
    /// In her language, else English.
    pub name: String,
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub starts_at: String,
    #[schema(format = DateTime)]
    pub ends_at: String,
    pub counts: Counts,
    pub measure: Measure,
    /// `open` (she does not take part yet), `joined` or `completed`.
    pub status: Standing,
    /// Where she stands: steps, partners or industries so far, or the amount in minor
    /// units of the programme currency.
    pub progress: i64,
    pub target: i64,
    /// The partners or industries she has done (distinct measures), in order.
    pub done: Vec<String>,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    pub badge: BadgeView,
}

fn member_view(c: &Challenge, row: Option<&MemberChallengeRow>, lang: Lang) -> MemberChallengeView {
    let spec = &c.spec;
    MemberChallengeView {
        challenge_id: c.id.to_string(),
        code: spec.code.clone(),
        name: text_in(&spec.name, lang).unwrap_or_default().to_string(),
        description: text_in(&spec.description, lang).map(str::to_string),
        starts_at: c.starts_at.to_string(),
        ends_at: c.ends_at.to_string(),
        counts: spec.counts,
        measure: spec.measure,
        status: row.map_or(Standing::Open, |r| r.standing),
        progress: row.map_or(0, |r| r.progress),
        target: spec.target,
        done: row.map(|r| r.keys.clone()).unwrap_or_default(),
        completed_at: row.and_then(|r| r.completed_at).map(|t| t.to_string()),
        badge: BadgeView {
            code: spec.badge.code.clone(),
            name: text_in(&spec.badge.name, lang).unwrap_or_default().to_string(),
        },
    }
}

async fn known_member(state: &AppState, id: &str) -> Result<MemberId, ApiError> {
    let member_id: MemberId = parse_id(id, "member")?;
    if state.store.member(&member_id).await?.is_none() {
        return Err(ApiError::not_found("member"));
    }
    Ok(member_id)
}

/// A member's challenges (operator): those open now and those she took part in, with
/// her progress, in her language (`?lang=`, else `Accept-Language`, else English).
#[utoipa::path(get, path = "/v1/members/{id}/challenges", tag = "challenges", params(("id" = String, Path), LangParams),
    responses((status = 200, body = [MemberChallengeView]),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn member_challenges(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LangParams>,
    headers: HeaderMap,
) -> Result<Json<Vec<MemberChallengeView>>, ApiError> {
    let lang = language(&q, &headers)?;
    let member_id = known_member(&state, &id).await?;
    let rows = state.store.member_challenges(&member_id).await?;
    let now = state.now();
    let out = state
        .challenges()
        .iter()
        .filter_map(|c| {
            let row = rows.iter().find(|r| r.challenge_id == c.id);
            (row.is_some() || c.open_at(now)).then(|| member_view(c, row, lang))
        })
        .collect();
    Ok(Json(out))
}

/// She takes part from now (operator, for the member's app): steps before count only
/// with automatic enrolment. Joining again changes nothing.
#[utoipa::path(post, path = "/v1/members/{id}/challenges/{challenge_id}/join", tag = "challenges",
    params(("id" = String, Path), ("challenge_id" = String, Path), LangParams),
    responses((status = 200, body = MemberChallengeView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`; `not_found`: no such challenge", body = crate::error::ErrorBody),
        (status = 409, description = "`challenge_closed`: it has ended; `not_eligible`: its enrolment condition does not hold for her", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn join_challenge(
    State(state): State<AppState>,
    _operator: Operator,
    Path((id, challenge_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<LangParams>,
    headers: HeaderMap,
) -> Result<Json<MemberChallengeView>, ApiError> {
    let lang = language(&q, &headers)?;
    let member_id: MemberId = parse_id(&id, "member")?;
    let challenge = find(&state, &challenge_id)?;
    let facts = state
        .store
        .member_facts(
            MemberRef::Id(member_id.clone()),
            None,
            crate::earning::household_tiers(&state),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let now = state.now();
    challenge.may_join(&facts, now)?;
    state.store.join_challenge(&member_id, &challenge.id, now).await?;
    let rows = state.store.member_challenges(&member_id).await?;
    let row = rows.iter().find(|r| r.challenge_id == challenge.id);
    Ok(Json(member_view(&challenge, row, lang)))
}

/// A badge on a member's profile.
#[derive(Serialize, ToSchema)]
pub struct MemberBadgeView {
    pub code: String,
    /// In her language, else English.
    pub name: String,
    pub challenge_id: String,
    #[schema(format = DateTime)]
    pub earned_at: String,
}

/// A member's badges, oldest first (operator).
#[utoipa::path(get, path = "/v1/members/{id}/badges", tag = "challenges", params(("id" = String, Path), LangParams),
    responses((status = 200, body = [MemberBadgeView]),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn member_badges(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LangParams>,
    headers: HeaderMap,
) -> Result<Json<Vec<MemberBadgeView>>, ApiError> {
    let lang = language(&q, &headers)?;
    let member_id = known_member(&state, &id).await?;
    let all = state.challenges();
    let badges = state.store.badges(&member_id).await?;
    Ok(Json(
        badges
            .into_iter()
            .map(|b| {
                let name = all
                    .iter()
                    .find(|c| c.id == b.challenge_id)
                    .and_then(|c| text_in(&c.spec.badge.name, lang))
                    .unwrap_or(&b.code)
                    .to_string();
                MemberBadgeView {
                    name,
                    code: b.code,
                    challenge_id: b.challenge_id.into_string(),
                    earned_at: b.earned_at.to_string(),
                }
            })
            .collect(),
    ))
}
