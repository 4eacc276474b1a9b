//! The web faces, served by the same server as the API: the operator console
//! (`/console`), a partner's back office (`/partner`), the member portal (`/me`) and the
//! till (`/till`). Server-rendered HTML (maud) that works without JavaScript; the till
//! alone adds a little of our own script for its live quote.
//!
//! Pages read and change through the API in-process ([`api::Api`]), as the signed-in
//! person: an operator's staff as the operator, a partner's staff as that partner, a
//! member on her own id. So a page can do nothing the API would refuse that person.

// A page refuses with a whole page (`Err(Response)`), once per request: the size of the
// error variant costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod api;
mod assets;
mod chart;
pub mod codes;
mod console;
mod form;
mod i18n;
pub mod layout;
mod limits;
pub mod login;
mod me;
mod partner;
mod qr;
pub mod session;
mod statement;
mod till;
mod values;

use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;

/// What every page handler holds: the server's state, the API to act through, and the
/// sign-in rate limits.
#[derive(Clone)]
pub struct Web {
    pub app: AppState,
    pub api: Router,
    limiter: Arc<limits::Limiter>,
    /// The console dashboard's ledger figures, read at most every few minutes.
    figures: Arc<console::FiguresCache>,
}

/// The pages; `api` is the API router the pages call in-process.
pub fn router(app: AppState, api: Router) -> Router {
    let web = Web {
        app,
        api,
        limiter: Arc::default(),
        figures: Arc::default(),
    };
    Router::new()
        .route("/", get(login::start))
        .route("/assets/tally.css", get(assets::css))
        .route("/assets/till.js", get(assets::till_js))
        .merge(login::routes())
        .merge(console::routes())
        .merge(partner::routes())
        .merge(me::routes())
        .merge(till::routes())
        .layer(middleware::from_fn_with_state(web.clone(), session::csrf_guard))
        .layer(middleware::from_fn(headers))
        .with_state(web)
}

/// A page that takes longer than the server's request time limit is answered with a
/// page saying so (the API's own limit answers in its JSON shape).
pub async fn time_limit(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => layout::problem(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Took too long",
            "Tally took too long to answer. A change you sent may or may not have been made: look before you send it again.",
        ),
    }
}

/// Security headers on every web answer, the framework's own rejections included, and
/// the time the server took (`Server-Timing`, which browsers' developer tools show).
async fn headers(req: Request, next: Next) -> Response {
    // Not on the sign-in forms: their time could tell a member's address from another.
    let timed = !matches!(req.uri().path(), "/login" | "/me/login" | "/me/login/code");
    let started = std::time::Instant::now();
    let mut res = next.run(req).await;
    layout::secure_headers(res.headers_mut());
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if timed && let Ok(v) = axum::http::HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        res.headers_mut().insert("server-timing", v);
    }
    res
}
