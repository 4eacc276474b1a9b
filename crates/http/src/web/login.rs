//! Staff sign-in (operator and partner staff): email and password, argon2 hashes,
//! a session cookie, rate limits per account and per network peer, and the start page
//! that points each kind of visitor to their face.

use super::Web;
use super::form::FormData;
use super::layout::{self, Nav};
use super::limits;
use super::session::{self, Role, STAFF_COOKIE, STAFF_SESSION, Staff};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use maud::html;
use std::collections::HashMap;
use tally_store::keys::{hash_key, random_bytes};
use tally_store::web::{AuditRow, SessionRow};

/// Shortest password a staff account may have.
pub const MIN_PASSWORD: usize = 12;
/// Longest password read (argon2 takes any length; this bounds the work per request).
pub const MAX_PASSWORD: usize = 256;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/login", get(form).post(submit))
        .route("/logout", post(logout))
}

/// An argon2id hash (PHC string) of a new password, or why the password is refused.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("a password needs at least {MIN_PASSWORD} characters"));
    }
    if password.len() > MAX_PASSWORD {
        return Err(format!("a password may have at most {MAX_PASSWORD} bytes"));
    }
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password off the async threads, two at a time at most: each check takes
/// argon2's memory and a core, and sign-in is open to anyone.
async fn verify_in_turn(hash: String, password: String) -> bool {
    static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let Ok(_turn) = TURNS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false)
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash no password matches, checked when the account does not exist, so an unknown
/// email costs as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&super::session::new_token()).expect("a random token is a valid password"))
}

/// The start page: one link per face.
pub async fn start() -> Response {
    let nav = Nav {
        face: "",
        items: vec![],
        current: "/",
        who: None,
        extra: None,
    };
    layout::ok(layout::page(
        "en",
        "Welcome to Tally",
        &nav,
        html! {
            p { "One balance for members across every partner of the coalition. Choose your way in:" }
            ul.faces {
                li { a href="/me" { "Member portal" } " — your points, rewards and card." }
                li { a href="/till" { "Till" } " — for a partner's cashiers." }
                li { a href="/partner" { "Partner back office" } " — for a partner's managers." }
                li { a href="/console" { "Operator console" } " — for the programme's staff." }
            }
        },
    ))
}

async fn form(headers: HeaderMap, State(web): State<Web>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (pre, set) = session::pre_session(&headers);
    let next = session::local_path(q.get("next").map(String::as_str));
    let mut res = layout::ok(login_page(&web.app.signer.csrf(&pre), next.as_deref(), None));
    if let Some(c) = set {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

fn login_page(csrf: &str, next: Option<&str>, error: Option<&str>) -> maud::Markup {
    let nav = Nav {
        face: "Staff",
        items: vec![],
        current: "/login",
        who: None,
        extra: None,
    };
    layout::page(
        "en",
        "Staff sign-in",
        &nav,
        html! {
            @if let Some(e) = error { (layout::notice("error", e)) }
            form.stack method="post" action="/login" {
                (layout::csrf(csrf))
                @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            p.hint { "Members sign in on the " a href="/me/login" { "member portal" } " with a one-time code." }
        },
    )
}

/// The network peer of a request, for rate limits ("unknown" when not served by
/// `tally serve`, as in some tests).
pub fn peer(req_ext: &axum::http::Extensions) -> String {
    req_ext
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

async fn submit(State(web): State<Web>, req: Request) -> Response {
    let peer = peer(req.extensions());
    let headers = req.headers().clone();
    let form = match <FormData as axum::extract::FromRequest<Web>>::from_request(req, &web).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let csrf = session::cookie(&headers, session::PRE_COOKIE)
        .map(|pre| web.app.signer.csrf(pre))
        .unwrap_or_default();
    let next = session::local_path(form.get("next"));
    let refuse =
        |status: StatusCode, message: &str| layout::respond(status, login_page(&csrf, next.as_deref(), Some(message)));
    let email = form.text("email").to_lowercase();
    let password = form.raw("password").to_string();
    if email.is_empty() || password.is_empty() || email.len() > 254 || password.len() > MAX_PASSWORD {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "Enter your email and password.");
    }
    let now = web.app.now();
    // Counted before the password is checked: a guesser from one peer gets a few tries
    // at an account, all peers together a few more, and one peer a few dozen in all.
    let account_key = format!("login:account:{email}");
    let account_peer_key = format!("login:account:{email}:{peer}");
    let peer_key = format!("login:peer:{peer}");
    let limits = [
        (account_peer_key.as_str(), limits::ACCOUNT_PEER_ATTEMPTS),
        (account_key.as_str(), limits::ACCOUNT_ATTEMPTS),
        (peer_key.as_str(), limits::PEER_ATTEMPTS),
    ];
    if !web.limiter.take(&limits, now) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts. Wait a quarter of an hour and try again.",
        );
    }
    let user = match web.app.store.user_by_email(&email).await {
        Ok(u) => u,
        Err(e) => return layout::store_failed(e),
    };
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    let checked = verify_in_turn(hash, password).await;
    let audit = |status: u16, user_id: Option<String>, partner_id| AuditRow {
        at: now,
        user_id,
        member_id: None,
        partner_id,
        action: "sign in".into(),
        target: email.clone(),
        status,
    };
    let user = match user {
        Some(u) if checked && Role::parse(&u.role).is_some() && u.disabled_at.is_none() => u,
        other => {
            let (id, partner) = other.map(|u| (Some(u.id), u.partner_id)).unwrap_or((None, None));
            if let Err(e) = web.app.store.append_audit(audit(401, id, partner)).await {
                tracing::error!(error = %e, "the audit log could not be written");
            }
            return refuse(
                StatusCode::UNAUTHORIZED,
                "That email and password do not match an account.",
            );
        }
    };
    web.limiter.clear(&account_key);
    web.limiter.clear(&account_peer_key);
    let token = session::new_token();
    let row = SessionRow {
        token_hash: hash_key(&token),
        user_id: Some(user.id.clone()),
        member_id: None,
        created_at: now,
        expires_at: now.saturating_add(STAFF_SESSION).unwrap_or(now),
    };
    if let Err(e) = web.app.store.create_session(row).await {
        return layout::store_failed(e);
    }
    if let Err(e) = web
        .app
        .store
        .append_audit(audit(200, Some(user.id.clone()), user.partner_id.clone()))
        .await
    {
        tracing::error!(error = %e, "the audit log could not be written");
    }
    let role = Role::parse(&user.role).expect("checked above");
    let to = next.unwrap_or_else(|| role.home().to_string());
    layout::see_other(
        &to,
        vec![session::set_cookie(STAFF_COOKIE, &token, STAFF_SESSION.as_secs())],
    )
}

async fn logout(State(web): State<Web>, staff: Staff) -> Response {
    if let Err(e) = web.app.store.end_session(&staff.token_hash).await {
        return layout::store_failed(e);
    }
    layout::see_other("/login", vec![session::clear_cookie(STAFF_COOKIE)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert!(hash_password("short").is_err());
    }
}
