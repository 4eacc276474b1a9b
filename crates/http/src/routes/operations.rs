//! Operations: ledger verification, expiry runs, health, metrics, the OpenAPI document.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct MismatchView {
    pub account: String,
    pub stored: i64,
    pub from_entries: i64,
}

#[derive(Serialize, ToSchema)]
pub struct VerificationView {
    pub balanced: bool,
    pub accounts_checked: u64,
    pub entries_checked: u64,
    /// Sum of every entry in the ledger: 0 when balanced.
    pub entries_sum: i64,
    pub mismatches: Vec<MismatchView>,
}

/// Recomputes every balance from the entries (operator).
#[utoipa::path(get, path = "/v1/ledger/verify", tag = "operations", responses((status = 200, body = VerificationView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn verify_ledger(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<VerificationView>, ApiError> {
    let v = state.store.verify_ledger().await?;
    Ok(Json(VerificationView {
        balanced: v.balanced,
        accounts_checked: v.accounts_checked,
        entries_checked: v.entries_checked,
        entries_sum: v.entries_sum,
        mismatches: v
            .mismatches
            .into_iter()
            .map(|m| MismatchView {
                account: m.account,
                stored: m.stored,
                from_entries: m.from_entries,
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ExpiryRunView {
    pub members_settled: u64,
    pub points_matured: i64,
    pub points_expired: i64,
}

/// Matures pending points and expires old lots now, for every member due (operator).
/// The server also does this on a schedule.
#[utoipa::path(post, path = "/v1/expiry-runs", tag = "operations", responses((status = 200, body = ExpiryRunView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn run_expiry(State(state): State<AppState>, _operator: Operator) -> Result<Json<ExpiryRunView>, ApiError> {
    let r = settle_all(&state).await?;
    Ok(Json(ExpiryRunView {
        members_settled: r.members_settled,
        points_matured: r.points_matured,
        points_expired: r.points_expired,
    }))
}

/// Settles every member due at the state's "now", in chunks.
pub async fn settle_all(state: &AppState) -> Result<tally_store::SettleReport, tally_store::StoreError> {
    let now = state.now();
    let mut total = tally_store::SettleReport::default();
    loop {
        let r = state.store.settle_due(now, 1000).await?;
        total.members_settled += r.members_settled;
        total.points_matured += r.points_matured;
        total.points_expired += r.points_expired;
        if r.members_settled < 1000 {
            return Ok(total);
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// Liveness: 200 when the server answers and its database does.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.program().await?;
    Ok(Json(Health {
        status: "ok".into(),
        database: state.store.backend().to_string(),
    }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let counts = state.store.counts().await.unwrap_or_default();
    let body = state.metrics.render(&[
        ("tally_members", "Members in the programme.", counts.members),
        ("tally_partners", "Partners in the coalition.", counts.partners),
        ("tally_transactions", "Purchases posted.", counts.transactions),
        ("tally_ledger_entries", "Entries in the ledger.", counts.entries),
        (
            "tally_rule_failures_total",
            "Earning rules that failed at run time and gave nothing.",
            state.metrics.rule_failures(),
        ),
        (
            "tally_active_rules",
            "Active earning rules.",
            state.rules().len() as u64,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
