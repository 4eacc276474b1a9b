//! Tally's HTTP API: the axum router, authentication, the error shape, idempotency,
//! OpenAPI and metrics. Handlers validate and parse every field into domain types,
//! then call the store; see `docs/ARCHITECTURE.md` for the path of a POS transaction.

pub mod auth;
pub mod body;
pub mod earning;
pub mod error;
pub mod extract;
pub mod follow_up;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod referral_rewards;
pub mod routes;
pub mod schema;
pub mod server;
pub mod signing;
pub mod state;
pub mod strict_json;
pub mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, patch, post, put};
use error::ApiError;
use routes::{
    challenges, consents, events, exchange, members, memberships, operations, partners, program, redemptions,
    referrals, rewards, rules, settlement, tiers, transactions, transfers, wallets,
};
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;

use body::{BATCH_BODY_LIMIT, BATCH_PATH, BODY_LIMIT};
pub use server::{Limits, serve};
pub use state::{AppState, Clock, Principal, system_clock};

/// The API and the web faces, on one address.
pub fn router(state: AppState) -> Router {
    let api = api_router(state.clone());
    let request_timeout = state.limits.request_timeout;
    let pages = web::router(state, api.clone())
        .layer(middleware::from_fn_with_state(request_timeout, web::time_limit))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a page panicked");
            web::layout::problem(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Tally could not show this page; it has been logged.",
            )
        }));
    api.merge(pages)
}

/// The whole API.
pub fn api_router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    let request_timeout = state.limits.request_timeout;
    Router::new()
        .route("/v1/program", get(program::get_program).patch(program::update_program))
        .route("/v1/fx-rates", get(program::get_fx_rates).put(program::put_fx_rates))
        .route(
            "/v1/partners",
            post(partners::create_partner).get(partners::list_partners),
        )
        .route("/v1/partners/{id}", get(partners::get_partner))
        .route(
            "/v1/partners/{id}/locations",
            post(partners::create_location).get(partners::list_locations),
        )
        .route(
            "/v1/partners/{id}/api-keys",
            post(partners::create_api_key).get(partners::list_api_keys),
        )
        .route("/v1/partners/{id}/api-keys/{key_id}", delete(partners::revoke_api_key))
        .route("/v1/members/{id}/consents", get(consents::list_consents))
        .route(
            "/v1/members/{id}/consents/{partner_id}",
            put(consents::grant_consent).delete(consents::withdraw_consent),
        )
        .route("/v1/members", post(members::create_member))
        .route("/v1/members/lookup", get(members::lookup_member))
        .route(
            "/v1/members/{id}",
            get(members::get_member).patch(members::update_member),
        )
        .route("/v1/members/{id}/events", get(events::list_member_events))
        .route("/v1/earning-rules", post(rules::create_rule).get(rules::list_rules))
        .route("/v1/earning-rules/test", post(rules::test_rule))
        .route("/v1/earning-rules/{id}", get(rules::get_rule).put(rules::update_rule))
        .route("/v1/events", post(events::create_event))
        .route(
            "/v1/event-types",
            get(events::list_event_types).post(events::create_event_type),
        )
        .route("/v1/members/{id}/balance", get(members::get_balance))
        .route("/v1/tiers", get(tiers::get_tiers).put(tiers::put_tiers))
        .route(
            "/v1/membership-plans",
            post(memberships::create_plan).get(memberships::list_plans),
        )
        .route(
            "/v1/members/{id}/memberships",
            post(memberships::create_membership).get(memberships::list_memberships),
        )
        .route("/v1/memberships/report", get(memberships::membership_report))
        .route("/v1/wallets", post(wallets::create_wallet))
        .route("/v1/wallets/{id}", get(wallets::get_wallet))
        .route("/v1/wallets/{id}/invites", post(wallets::create_invite))
        .route("/v1/wallets/{id}/members", post(wallets::join_wallet))
        .route(
            "/v1/wallets/{id}/members/{member_id}",
            patch(wallets::set_rights).delete(wallets::leave_wallet),
        )
        .route("/v1/wallets/{id}/close", post(wallets::close_wallet))
        .route("/v1/wallets/{id}/statement", get(wallets::wallet_statement))
        .route("/v1/members/{id}/wallets", get(wallets::member_wallets))
        .route("/v1/memberships/{id}", get(memberships::get_membership))
        .route("/v1/memberships/{id}/cancel", post(memberships::cancel_membership))
        .route("/v1/memberships/{id}/payments", post(memberships::create_payment))
        .route(
            "/v1/members/{id}/tier",
            get(tiers::get_member_tier).put(tiers::put_member_tier),
        )
        .route("/v1/members/{id}/activity", get(members::list_activity))
        .route("/v1/rewards", post(rewards::create_reward).get(rewards::list_rewards))
        .route("/v1/rewards/{id}", get(rewards::get_reward).put(rewards::update_reward))
        .route("/v1/members/{id}/rewards", get(rewards::member_rewards))
        .route(
            "/v1/members/{id}/redemptions",
            post(redemptions::redeem).get(redemptions::member_redemptions),
        )
        .route(
            "/v1/members/{id}/transfers",
            post(transfers::send_points).get(transfers::member_transfers),
        )
        .route("/v1/members/{id}/referrals", get(referrals::member_referrals))
        .route(
            "/v1/challenges",
            post(challenges::create_challenge).get(challenges::list_challenges),
        )
        .route("/v1/challenges/{id}", get(challenges::get_challenge))
        .route("/v1/members/{id}/challenges", get(challenges::member_challenges))
        .route(
            "/v1/members/{id}/challenges/{challenge_id}/join",
            post(challenges::join_challenge),
        )
        .route("/v1/members/{id}/badges", get(challenges::member_badges))
        .route(
            "/v1/exchange-partners",
            post(exchange::create_exchange_partner).get(exchange::list_exchange_partners),
        )
        .route(
            "/v1/exchange-partners/{id}",
            get(exchange::get_exchange_partner).put(exchange::update_exchange_partner),
        )
        .route("/v1/exchange-partners/{id}/credits", post(exchange::credit_exchange))
        .route("/v1/exchange-partners/{id}/volume", get(exchange::exchange_volume))
        .route(
            "/v1/members/{id}/exchange-orders",
            post(exchange::create_exchange_order),
        )
        .route("/v1/exchange-orders", get(exchange::list_exchange_orders))
        .route("/v1/exchange-orders/{id}", get(exchange::get_exchange_order))
        .route(
            "/v1/exchange-orders/{id}/confirm",
            post(exchange::confirm_exchange_order),
        )
        .route("/v1/exchange-orders/{id}/fail", post(exchange::fail_exchange_order))
        .route("/v1/redemptions", get(redemptions::list_redemptions))
        .route("/v1/redemptions/{id}", get(redemptions::get_redemption))
        .route("/v1/redemptions/{id}/cancel", post(redemptions::cancel_redemption))
        .route("/v1/redemptions/{id}/code", post(redemptions::reissue_code))
        .route("/v1/vouchers/{code}", get(redemptions::get_voucher))
        .route("/v1/vouchers/{code}/redeem", post(redemptions::use_voucher))
        .route("/v1/transactions", post(transactions::create_transaction))
        .route("/v1/transactions/quote", post(transactions::quote_transaction))
        .route(
            BATCH_PATH,
            post(transactions::create_transaction_batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)),
        )
        .route("/v1/transactions/{id}", get(transactions::get_transaction))
        .route("/v1/transactions/{id}/returns", post(transactions::create_return))
        .route("/v1/ledger/verify", get(operations::verify_ledger))
        .route("/v1/ledger/balances", get(operations::ledger_balances))
        .route("/v1/ledger/liability", get(settlement::get_liability))
        .route("/v1/ledger/breakage", get(settlement::get_breakage))
        .route(
            "/v1/settlement/prices",
            get(settlement::list_prices).put(settlement::put_price),
        )
        .route("/v1/settlements", get(settlement::list_periods))
        .route("/v1/settlements/{period}", get(settlement::get_netting))
        .route("/v1/settlements/{period}/close", post(settlement::close_period))
        .route("/v1/settlements/{period}/partners/{id}", get(settlement::get_statement))
        .route("/v1/expiry-runs", post(operations::run_expiry))
        .route("/r/{code}", get(referrals::share_link))
        .route("/healthz", get(operations::healthz))
        .route("/metrics", get(operations::metrics))
        .route("/openapi.json", get(openapi::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::idempotency))
        .layer(middleware::from_fn_with_state(state.clone(), body::guard))
        .layer(middleware::from_fn_with_state(state.clone(), note_faults))
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .layer(middleware::from_fn(error::one_shape))
        .layer(middleware::from_fn_with_state(request_timeout, time_limit))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            axum::response::IntoResponse::into_response(ApiError::internal())
        }))
        .with_state(state)
}

/// Answers `503 timeout` in the API's error shape when a request takes longer than
/// [`Limits::request_timeout`].
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long; it may or may not have been applied, so retry it with the same Idempotency-Key or external_id",
        )),
    }
}

/// Notes the database faults answers report, for `/healthz`.
async fn note_faults(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let res = next.run(req).await;
    if let Some(error::Reported(fault)) = res.extensions().get::<error::Reported>() {
        state.health.record(*fault);
    }
    res
}

async fn not_found() -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}
