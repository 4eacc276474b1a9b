//! Operations: ledger verification, expiry runs, health, metrics, the OpenAPI document.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
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

/// One account of the programme's books.
#[derive(Serialize, ToSchema)]
pub struct AccountBalanceView {
    /// `partner:<id>:issued` (points the partner funded: negative as it funds),
    /// `partner:<id>:redeemed` (points spent at its tills), `program:funded:<id>` (points
    /// the operator funded at the partner's tills), `program:issued`, `program:expired`,
    /// `program:unrecovered`, and the rest of the ledger's programme side.
    pub account: String,
    /// The sum of its entries.
    pub balance: i64,
    pub entries: u64,
}

/// What members or shared wallets hold in all.
#[derive(Serialize, ToSchema)]
pub struct HoldersView {
    pub available: i64,
    pub pending: i64,
    /// Points set aside for vouchers (members only; 0 for wallets).
    pub reserved: i64,
}

/// The programme's books: every account but members' and wallets' own, and what
/// members and wallets hold in all. With a balanced ledger the accounts' balances and
/// the holders' points sum to zero.
#[derive(Serialize, ToSchema)]
pub struct LedgerBalancesView {
    pub accounts: Vec<AccountBalanceView>,
    pub members: HoldersView,
    pub wallets: HoldersView,
}

/// The programme's books from the entries: who funded the points issued, what was
/// redeemed at each partner, what expired (operator). It reads every entry, as the
/// ledger's verification does.
#[utoipa::path(get, path = "/v1/ledger/balances", tag = "operations", responses((status = 200, body = LedgerBalancesView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn ledger_balances(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<LedgerBalancesView>, ApiError> {
    let b = state.store.ledger_balances().await?;
    Ok(Json(LedgerBalancesView {
        accounts: b
            .accounts
            .into_iter()
            .map(|(account, balance, entries)| AccountBalanceView {
                account,
                balance,
                entries,
            })
            .collect(),
        members: HoldersView {
            available: b.members.0,
            pending: b.members.1,
            reserved: b.members.2,
        },
        wallets: HoldersView {
            available: b.wallets.0,
            pending: b.wallets.1,
            reserved: 0,
        },
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ExpiryRunView {
    pub members_settled: u64,
    pub points_matured: i64,
    pub points_expired: i64,
    /// Members whose tier standing was brought up to date (a review fell due, a level
    /// set by hand ended).
    pub tiers_reviewed: u64,
    /// Memberships whose status changed with time (past due, expired, a cancelled one
    /// run out); the member's `plan` follows.
    pub memberships_reviewed: u64,
    /// Vouchers that reached their expiry unused: points given back (or forfeit) and
    /// stock returned.
    pub vouchers_expired: u64,
    /// Referrals whose points the run gave or took back: ones a sale or return left
    /// unfinished (a crash, a failure right after it).
    pub referrals_finished: u64,
    /// Completed challenges whose `challenge_completed` the run posted (one a crash
    /// left unposted).
    pub challenges_rewarded: u64,
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
        tiers_reviewed: r.tiers_reviewed,
        memberships_reviewed: r.memberships_reviewed,
        vouchers_expired: r.vouchers_expired,
        referrals_finished: r.referrals_finished,
        challenges_rewarded: r.challenges_rewarded,
    }))
}

/// Settles every member due at the state's "now", in chunks.
pub async fn settle_all(state: &AppState) -> Result<tally_store::SettleReport, tally_store::StoreError> {
    let now = state.now();
    let mut total = tally_store::SettleReport::default();
    // Vouchers first: points they give back are then settled with the member's others.
    loop {
        let n = state.store.expire_vouchers(now, 1000).await?;
        total.vouchers_expired += n;
        if n < 1000 {
            break;
        }
    }
    loop {
        let r = state.store.settle_due(now, 1000).await?;
        total.members_settled += r.members_settled;
        total.points_matured += r.points_matured;
        total.points_expired += r.points_expired;
        if r.members_settled < 1000 {
            break;
        }
    }
    // A failure here is logged and leaves the rest of the run to go on.
    (total.referrals_finished, total.challenges_rewarded) = crate::follow_up::finish_all(state).await;
    loop {
        let n = state.store.review_memberships(now, 1000).await?;
        total.memberships_reviewed += n;
        if n < 1000 {
            break;
        }
    }
    let ladder = state.program().tiers;
    if ladder.levels.is_empty() {
        return Ok(total);
    }
    loop {
        let n = state.store.review_tiers(ladder.clone(), now, 1000).await?;
        total.tiers_reviewed += n;
        if n < 1000 {
            return Ok(total);
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`; a fault is answered `503` instead.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
}

/// Health: 200 when the server answers and its database answers a read within 2 s (a
/// busy database is not down). `503 storage_full` while writes fail for want of space
/// (seen by answers in the last 10 s; reads go on), `503 database_unavailable` when the
/// database does not answer; both with `Retry-After`.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health),
    (status = 503, description = "`storage_full` or `database_unavailable`", body = crate::error::ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if state.health.recent() == Some(tally_store::Fault::StorageFull) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_full",
            "the database is out of space: reads work, writes are refused until it has room",
        ));
    }
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.program()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.fault() == Some(tally_store::Fault::Busy) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database did not answer within 2 s",
            ));
        }
    }
    Ok(Json(Health {
        status: "ok".into(),
        database: state.store.backend().to_string(),
    }))
}

/// Prometheus metrics. Without the operator key only the rule gauges; with it also
/// request counts and latencies by route and status, and counts of members, partners,
/// sales and ledger entries.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String)), security((), ("bearer" = [])))]
pub async fn metrics(State(state): State<AppState>, who: Result<Principal, ApiError>) -> impl IntoResponse {
    // Counts of members, partners and sales, and of requests by route and status (which
    // tell the same), are business figures: only for the operator.
    let operator = matches!(who, Ok(Principal::Operator));
    let mut figures = Vec::new();
    if operator {
        let counts = state.store.counts().await.unwrap_or_default();
        figures.extend([
            ("tally_members", "Members in the programme.", counts.members),
            ("tally_partners", "Partners in the coalition.", counts.partners),
            ("tally_transactions", "Purchases posted.", counts.transactions),
            ("tally_ledger_entries", "Entries in the ledger.", counts.entries),
        ]);
    }
    figures.extend([
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
        (
            "tally_key_lookups_total",
            "Bearer keys looked up in the database (in neither the key cache nor the cache of unknown keys); a flood of guessed keys shows here.",
            state.metrics.key_lookups(),
        ),
    ]);
    let body = state.metrics.render(operator, &figures);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
