//! Paid memberships: plans the operator sells (`/v1/membership-plans`), a member's
//! memberships, payments recorded by the processor or the operator's back end, and the
//! operator's report (revenue per plan and month, active and churned memberships).

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, parse_id};
use crate::routes::posted_response;
use crate::routes::transactions::MoneyInput;
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_domain::identity::parse_label;
use tally_domain::ids::{MemberId, MembershipId, PaymentId};
use tally_domain::memberships::{BillingInterval, MembershipPlan, MembershipStatus, PaymentReceipt, PlanBenefits};
use tally_domain::receipt::MoneyView;
use tally_store::{MembershipRow, PaymentCmd, keys};
use utoipa::ToSchema;

fn code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some("^[a-z0-9_]{1,32}$"))
        .examples([serde_json::json!("plus")])
        .build()
}

fn multiplier_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(r"^([1-9](\.[0-9]{1,2})?|10(\.0{1,2})?)$"))
        .examples([serde_json::json!("1.25")])
        .build()
}

/// What a plan gives.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BenefitsBody {
    /// Applied to base points, as a breakdown line of its own (`"1"`: none).
    #[schema(schema_with = multiplier_schema)]
    pub earn_multiplier: String,
    /// Points posted with each paid period (ledger code `membership_bonus`).
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub bonus_points: i64,
    /// Members see rewards before everyone else.
    pub early_access: bool,
    /// One reward free per paid period.
    pub free_reward: bool,
}

/// A plan (`POST /v1/membership-plans`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// What rules read as `member.plan`.
    #[schema(schema_with = code_schema)]
    pub code: String,
    #[schema(schema_with = crate::schema::field::label::<80>)]
    pub name: String,
    /// The price of one period: 1 to 100,000,000 minor units.
    pub price: MoneyInput,
    pub interval: BillingInterval,
    pub benefits: BenefitsBody,
    /// Days free before the first payment is due (0 to 365).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 365)]
    pub trial_days: u32,
}

/// A plan as sold.
#[derive(Serialize, ToSchema)]
pub struct PlanView {
    #[schema(schema_with = code_schema)]
    pub code: String,
    pub name: String,
    pub price: MoneyView,
    pub interval: BillingInterval,
    pub benefits: BenefitsBody,
    pub trial_days: u32,
}

fn plan_view(p: &MembershipPlan) -> PlanView {
    PlanView {
        code: p.code.clone(),
        name: p.name.clone(),
        price: p.price.into(),
        interval: p.interval,
        benefits: BenefitsBody {
            earn_multiplier: p.benefits.earn_multiplier.to_string(),
            bonus_points: p.benefits.bonus_points,
            early_access: p.benefits.early_access,
            free_reward: p.benefits.free_reward,
        },
        trial_days: p.trial_days,
    }
}

fn multiplier(raw: &str) -> Result<rust_decimal::Decimal, ApiError> {
    crate::routes::tiers::multiplier_text(raw).ok_or_else(|| {
        ApiError::invalid(
            "invalid_field",
            "benefits: earn_multiplier must be 1 to 10 with at most two decimals, as \"1.25\"",
        )
    })
}

/// Creates a membership plan (operator). `409 plan_exists` for a code in use.
#[utoipa::path(post, path = "/v1/membership-plans", tag = "memberships", request_body = PlanBody,
    responses((status = 201, body = PlanView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 409, description = "`plan_exists`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_plan(
    State(state): State<AppState>,
    _operator: Operator,
    body: ApiJson<PlanBody>,
) -> Result<(StatusCode, Json<PlanView>), ApiError> {
    let b = body.value;
    let price = tally_domain::money::Money {
        amount: b.price.amount,
        currency: tally_domain::money::Currency::parse(&b.price.currency)?,
    };
    let plan = MembershipPlan {
        code: b.code,
        name: b.name,
        price,
        interval: b.interval,
        benefits: PlanBenefits {
            earn_multiplier: multiplier(&b.benefits.earn_multiplier)?,
            bonus_points: b.benefits.bonus_points,
            early_access: b.benefits.early_access,
            free_reward: b.benefits.free_reward,
        },
        trial_days: b.trial_days,
    }
    .check()?;
    state.store.create_plan(plan.clone(), state.now()).await?;
    state.set_program(state.store.program().await?);
    Ok((StatusCode::CREATED, Json(plan_view(&plan))))
}

/// The plans on sale.
#[utoipa::path(get, path = "/v1/membership-plans", tag = "memberships", responses((status = 200, body = Vec<PlanView>)), security(("bearer" = [])))]
pub async fn list_plans(State(state): State<AppState>, _who: Principal) -> Json<Vec<PlanView>> {
    Json(state.program().plans.iter().map(plan_view).collect())
}

/// A recorded payment.
#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    pub id: String,
    pub external_id: String,
    pub amount: MoneyView,
    pub period_start: String,
    pub period_end: String,
    pub bonus_points: i64,
    pub recorded_at: String,
}

/// A member's membership.
#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    pub id: String,
    pub member_id: String,
    #[schema(schema_with = code_schema)]
    pub plan: String,
    pub status: MembershipStatus,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_until: Option<String>,
    /// The end of the last paid period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<String>,
    /// When the next payment is due (the end of what is covered); absent once it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_at: Option<String>,
    pub payments: Vec<PaymentView>,
}

fn membership_view(m: MembershipRow, now: Timestamp) -> MembershipView {
    let status = m.membership.status(now);
    let renews = !matches!(status, MembershipStatus::Expired | MembershipStatus::Cancelled);
    MembershipView {
        status,
        renewal_at: renews.then(|| m.membership.covered_until().to_string()),
        id: m.id,
        member_id: m.member_id.to_string(),
        plan: m.plan_code,
        started_at: m.membership.started_at.to_string(),
        trial_until: m.membership.trial_until.map(|t| t.to_string()),
        paid_until: m.membership.paid_until.map(|t| t.to_string()),
        cancelled_at: m.membership.cancelled_at.map(|t| t.to_string()),
        payments: m
            .payments
            .into_iter()
            .map(|p| PaymentView {
                id: p.id,
                external_id: p.external_id,
                amount: p.amount.into(),
                period_start: p.period_start.to_string(),
                period_end: p.period_end.to_string(),
                bonus_points: p.bonus_points,
                recorded_at: p.recorded_at.to_string(),
            })
            .collect(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMembership {
    /// The plan's code.
    #[schema(schema_with = code_schema)]
    pub plan: String,
}

/// Starts a membership for a member (operator): in the plan's trial, or due for its
/// first payment. `409 membership_exists` while the member has one that has not ended.
#[utoipa::path(post, path = "/v1/members/{id}/memberships", tag = "memberships", params(("id" = String, Path)), request_body = NewMembership,
    responses((status = 201, body = MembershipView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 409, description = "`membership_exists`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_membership(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<NewMembership>,
) -> Result<(StatusCode, Json<MembershipView>), ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let plan = body.value.plan;
    if !tally_domain::identity::is_code(&plan) {
        return Err(ApiError::invalid("invalid_field", "plan: must be a plan's code"));
    }
    let now = state.now();
    let row = state
        .store
        .create_membership(keys::new::<MembershipId>().to_string(), member_id, plan, now)
        .await?;
    Ok((StatusCode::CREATED, Json(membership_view(row, now))))
}

/// A member's memberships, oldest first (operator).
#[utoipa::path(get, path = "/v1/members/{id}/memberships", tag = "memberships", params(("id" = String, Path)),
    responses((status = 200, body = Vec<MembershipView>), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_memberships(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<Vec<MembershipView>>, ApiError> {
    let member_id: MemberId = parse_id(&id, "member")?;
    let now = state.now();
    let rows = state.store.member_memberships(member_id).await?;
    Ok(Json(rows.into_iter().map(|m| membership_view(m, now)).collect()))
}

async fn load(state: &AppState, id: &str) -> Result<MembershipRow, ApiError> {
    let id: MembershipId = parse_id(id, "membership")?;
    state
        .store
        .membership(id.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("membership"))
}

/// One membership with its payments (operator).
#[utoipa::path(get, path = "/v1/memberships/{id}", tag = "memberships", params(("id" = String, Path)),
    responses((status = 200, body = MembershipView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_membership(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<MembershipView>, ApiError> {
    let row = load(&state, &id).await?;
    Ok(Json(membership_view(row, state.now())))
}

/// Cancels a membership (operator): it runs to the end of what is covered, then ends.
/// Cancelling again changes nothing.
#[utoipa::path(post, path = "/v1/memberships/{id}/cancel", tag = "memberships", params(("id" = String, Path)),
    responses((status = 200, body = MembershipView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 422, description = "`membership_over`: the membership has ended", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel_membership(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<MembershipView>, ApiError> {
    let id: MembershipId = parse_id(&id, "membership")?;
    let now = state.now();
    let row = state.store.cancel_membership(id.to_string(), now).await?;
    Ok(Json(membership_view(row, now)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// The processor's id for the payment: the same id records once.
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub external_id: String,
    /// Exactly the plan's price.
    pub amount: MoneyInput,
}

/// Records a payment (operator: the processor's or the back end's key). It pays the
/// period after what is covered and posts the plan's bonus points for it. The same
/// `external_id` again answers the first answer (`idempotent-replayed: true`); with
/// another body, `409 idempotency_conflict`. `422 payment_mismatch` for another amount or
/// currency than the price; `422 membership_over` for an expired or cancelled one.
#[utoipa::path(post, path = "/v1/memberships/{id}/payments", tag = "memberships", params(("id" = String, Path)), request_body = PaymentBody,
    responses((status = 201, body = PaymentReceipt, headers(("idempotent-replayed" = bool, description = "true when this answers an earlier request again"))),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_payment(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<PaymentBody>,
) -> Result<Response, ApiError> {
    let id: MembershipId = parse_id(&id, "membership")?;
    let amount = body.value.amount;
    let cmd = PaymentCmd {
        membership_id: id.to_string(),
        payment_id: keys::new::<PaymentId>().to_string(),
        external_id: parse_label("external_id", &body.value.external_id, 100)?,
        amount: tally_domain::money::Money {
            amount: amount.amount,
            currency: tally_domain::money::Currency::parse(&amount.currency)?,
        },
        request_hash: body.hash,
        program: state.program().terms(),
        now: state.now(),
    };
    Ok(posted_response(state.store.post_membership_payment(cmd).await?))
}

/// One plan's month in the report.
#[derive(Serialize, ToSchema)]
pub struct PlanMonth {
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Payments recorded in the month.
    pub revenue: MoneyView,
    pub payments: u64,
    /// Memberships started in the month.
    pub started: u64,
    /// Memberships that ended in the month (lapsed unpaid, or cancelled and run out).
    pub churned: u64,
}

/// One plan in the report.
#[derive(Serialize, ToSchema)]
pub struct PlanReport {
    #[schema(schema_with = code_schema)]
    pub plan: String,
    /// Memberships by status now.
    pub trialing: u64,
    pub active: u64,
    pub past_due: u64,
    pub cancelled: u64,
    pub expired: u64,
    /// Month by month, oldest first.
    pub months: Vec<PlanMonth>,
}

fn month_entry<'a>(months: &'a mut BTreeMap<String, PlanMonth>, currency: &str, key: String) -> &'a mut PlanMonth {
    months.entry(key.clone()).or_insert_with(|| PlanMonth {
        month: key,
        revenue: MoneyView {
            amount: 0,
            currency: currency.to_string(),
        },
        payments: 0,
        started: 0,
        churned: 0,
    })
}

/// Revenue per plan and month, and memberships by status, started and churned
/// (operator).
#[utoipa::path(get, path = "/v1/memberships/report", tag = "memberships",
    responses((status = 200, body = Vec<PlanReport>), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn membership_report(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Vec<PlanReport>>, ApiError> {
    let now = state.now();
    let program = state.program();
    let month = |t: Timestamp| {
        let d = t.to_zoned(TimeZone::UTC).date();
        format!("{:04}-{:02}", d.year(), d.month())
    };
    let mut reports: BTreeMap<String, (PlanReport, BTreeMap<String, PlanMonth>)> = BTreeMap::new();
    for p in program.plans.iter() {
        reports.insert(
            p.code.clone(),
            (
                PlanReport {
                    plan: p.code.clone(),
                    trialing: 0,
                    active: 0,
                    past_due: 0,
                    cancelled: 0,
                    expired: 0,
                    months: Vec::new(),
                },
                BTreeMap::new(),
            ),
        );
    }
    for m in state.store.all_memberships().await? {
        let price = program.plans.iter().find(|p| p.code == m.plan_code).map(|p| p.price);
        let Some((report, months)) = reports.get_mut(&m.plan_code) else {
            continue;
        };
        let currency = price.map_or_else(
            || program.currency.code().to_string(),
            |p| p.currency.code().to_string(),
        );
        match m.membership.status(now) {
            MembershipStatus::Trialing => report.trialing += 1,
            MembershipStatus::Active => report.active += 1,
            MembershipStatus::PastDue => report.past_due += 1,
            MembershipStatus::Cancelled => report.cancelled += 1,
            MembershipStatus::Expired => report.expired += 1,
        }
        month_entry(months, &currency, month(m.membership.started_at)).started += 1;
        if let Some(end) = m.membership.ended_at(now) {
            month_entry(months, &currency, month(end)).churned += 1;
        }
        for p in &m.payments {
            let e = month_entry(months, &currency, month(p.recorded_at));
            e.payments += 1;
            e.revenue.amount = e.revenue.amount.saturating_add(p.amount.amount);
        }
    }
    Ok(Json(
        reports
            .into_values()
            .map(|(mut r, months)| {
                r.months = months.into_values().collect();
                r
            })
            .collect(),
    ))
}
