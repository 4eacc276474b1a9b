//! Signing in to the member portal without a password: she gives her email address or
//! phone number, a six-digit code goes there, and the code opens a month-long session
//! on her phone. The answer to the address is the same whether or not it belongs to a
//! member, so the form tells nobody who is one. Codes are kept only as hashes, last ten
//! minutes, allow five tries, replace the address's earlier codes, and are rate-limited
//! per address and per network peer.

use super::{PageLang, public_page, with_cookie};
use crate::web::Web;
use crate::web::form::FormData;
use crate::web::i18n::{Key, Lang};
use crate::web::layout;
use crate::web::limits;
use crate::web::session::{self, MEMBER_COOKIE, MEMBER_SESSION, Member};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::SignedDuration;
use maud::{Markup, html};
use std::collections::HashMap;
use tally_domain::identity::Identity;
use tally_store::keys::{hash_key, random_bytes};
use tally_store::web::{AuditRow, NewLoginCode, SessionRow};

/// How long a code may be used.
const CODE_TTL: SignedDuration = SignedDuration::from_mins(10);
/// Tries a code allows before it is spent.
const CODE_ATTEMPTS: u32 = 5;

/// The network peer of a request, for the rate limits ("unknown" when the server was
/// not started with peer addresses, as in some tests).
pub struct Peer(String);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(crate::web::login::peer(&parts.extensions)))
    }
}

/// Where to go once signed in: a page of the portal the visitor was sent from.
fn next_path(raw: Option<&str>) -> Option<String> {
    session::local_path(raw).filter(|n| n == "/me" || n.starts_with("/me/") || n.starts_with("/me?"))
}

/// A random six-digit code (the modulo's bias is below one in 10^13).
fn six_digits() -> String {
    let n = u64::from_le_bytes(random_bytes::<8>()) % 1_000_000;
    format!("{n:06}")
}

/// `GET /me/login`: the form that asks for her address.
pub async fn form(
    State(web): State<Web>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (pre, set) = session::pre_session(&headers);
    let next = next_path(q.get("next").map(String::as_str));
    let page = address_page(lang, &web.app.signer.csrf(&pre), next.as_deref(), "", None);
    with_cookie(layout::ok(page), set)
}

fn address_page(lang: Lang, csrf: &str, next: Option<&str>, typed: &str, error: Option<&str>) -> Markup {
    public_page(
        lang,
        "/me/login",
        lang.t(Key::SignInTitle),
        html! {
            @if let Some(e) = error { (layout::notice("error", e)) }
            p { (lang.t(Key::SignInIntro)) }
            form.stack method="post" action="/me/login" {
                (layout::csrf(csrf))
                @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                label for="address" { (lang.t(Key::EmailOrPhone)) }
                input #address type="text" name="address" value=(typed) autocomplete="username"
                    autocapitalize="none" spellcheck="false" required aria-describedby="address-hint";
                p.hint #address-hint { (lang.t(Key::PhoneHint)) }
                button type="submit" { (lang.t(Key::SendCode)) }
            }
        },
    )
}

fn code_page(lang: Lang, csrf: &str, next: Option<&str>, destination: &str, error: Option<&str>) -> Markup {
    public_page(
        lang,
        "/me/login",
        lang.t(Key::CodeTitle),
        html! {
            @if let Some(e) = error {
                (layout::notice("error", e))
            } @else {
                (layout::notice("ok", &lang.fill(Key::CodeSent, &[("address", destination)])))
            }
            form.stack method="post" action="/me/login/code" {
                (layout::csrf(csrf))
                @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                input type="hidden" name="destination" value=(destination);
                label for="code" { (lang.t(Key::CodeLabel)) }
                input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code"
                    required aria-describedby="code-hint";
                p.hint #code-hint { (lang.t(Key::CodeHint)) }
                button type="submit" { (lang.t(Key::SignIn)) }
            }
            p { a href="/me/login" { (lang.t(Key::OtherAddress)) } }
        },
    )
}

/// `POST /me/login`: sends a code to the address if it is a member's, and asks for it.
pub async fn send_code(
    State(web): State<Web>,
    PageLang(lang): PageLang,
    Peer(peer): Peer,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    let (pre, set) = session::pre_session(&headers);
    let csrf = web.app.signer.csrf(&pre);
    let next = next_path(form.get("next"));
    let typed = form.text("address");
    let refuse = |status: StatusCode, message: &str| {
        with_cookie(
            layout::respond(
                status,
                address_page(lang, &csrf, next.as_deref(), &typed, Some(message)),
            ),
            set.clone(),
        )
    };
    let identity = if typed.is_empty() {
        Err(Key::AddressMissing)
    } else if typed.contains('@') {
        Identity::email(&typed).map_err(|_| Key::AddressNotEmail)
    } else {
        Identity::phone(&typed, None).map_err(|_| Key::AddressNotPhone)
    };
    let identity = match identity {
        Ok(i) => i,
        Err(key) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, lang.t(key)),
    };
    if !web.app.codes.available() {
        // Said to every address alike, before anyone is looked up.
        let message = lang.fill(Key::CodeNotSent, &[("reason", "this server sends no sign-in codes")]);
        return refuse(StatusCode::SERVICE_UNAVAILABLE, &message);
    }
    let destination = identity.value.clone();
    let now = web.app.now();
    // Counted here for every address, members' or not, so that being refused says
    // nothing about who is a member.
    let peer_key = format!("me:peer:{peer}");
    let destination_key = format!("me:destination:{destination}");
    let limits = [
        (peer_key.as_str(), limits::CODE_CHECKS_PER_PEER),
        (destination_key.as_str(), limits::CODES_PER_DESTINATION),
    ];
    if !web.limiter.take(&limits, now) {
        return refuse(StatusCode::TOO_MANY_REQUESTS, lang.t(Key::TooManyTries));
    }
    // Looked up, written and sent after the answer, in a task of its own: neither the
    // page nor the time it takes tells whether the address is a member's. A failure is
    // logged, not shown.
    let task_web = web.clone();
    let task_destination = destination.clone();
    tokio::spawn(async move { send_code_to(&task_web, &identity, &task_destination, now).await });
    let page = code_page(lang, &csrf, next.as_deref(), &destination, None);
    with_cookie(layout::ok(page), set)
}

/// Makes, keeps and sends a code for the member at `destination`, if there is one.
async fn send_code_to(web: &Web, identity: &Identity, destination: &str, now: jiff::Timestamp) {
    let member = match web.app.store.lookup_member(identity).await {
        Ok(Some(m)) => m,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "a sign-in code could not be made");
            return;
        }
    };
    let code = six_digits();
    let row = NewLoginCode {
        member_id: member.id,
        destination: destination.to_string(),
        code_hash: hash_key(&format!("{destination}:{code}")),
        now,
        expires_at: now.saturating_add(CODE_TTL).unwrap_or(now),
    };
    if let Err(e) = web.app.store.create_login_code(row).await {
        tracing::error!(error = %e, "a sign-in code could not be kept");
        return;
    }
    if let Err(reason) = web.app.codes.send(destination, &code) {
        tracing::error!(%reason, "a sign-in code could not be sent");
    }
}

/// `POST /me/login/code`: a right code opens her session; a wrong one asks again.
pub async fn check_code(
    State(web): State<Web>,
    PageLang(lang): PageLang,
    Peer(peer): Peer,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    let (pre, set) = session::pre_session(&headers);
    let csrf = web.app.signer.csrf(&pre);
    let next = next_path(form.get("next"));
    let destination = form.text("destination");
    let code: String = form.text("code").chars().filter(|c| !c.is_whitespace()).collect();
    let refuse = |status: StatusCode, key: Key| {
        let page = code_page(lang, &csrf, next.as_deref(), &destination, Some(lang.t(key)));
        with_cookie(layout::respond(status, page), set.clone())
    };
    let now = web.app.now();
    let peer_key = format!("me:peer:{peer}");
    // Checks count per peer and per address: guessers on many peers still get only a
    // few tries at one member's codes.
    let destination_key = format!("me:checks:{destination}");
    let limits = [
        (peer_key.as_str(), limits::CODE_CHECKS_PER_PEER),
        (destination_key.as_str(), limits::CODE_CHECKS_PER_DESTINATION),
    ];
    if !web.limiter.take(&limits, now) {
        return refuse(StatusCode::TOO_MANY_REQUESTS, Key::TooManyTries);
    }
    if destination.is_empty() || destination.len() > 254 || code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, Key::CodeWrong);
    }
    let code_hash = hash_key(&format!("{destination}:{code}"));
    let member_id = match web
        .app
        .store
        .use_login_code(&destination, &code_hash, now, CODE_ATTEMPTS)
        .await
    {
        Ok(Some(id)) => id,
        Ok(None) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, Key::CodeWrong),
        Err(e) => return layout::store_failed(e),
    };
    let token = session::new_token();
    let row = SessionRow {
        token_hash: hash_key(&token),
        user_id: None,
        member_id: Some(member_id.clone()),
        created_at: now,
        expires_at: now.saturating_add(MEMBER_SESSION).unwrap_or(now),
    };
    if let Err(e) = web.app.store.create_session(row).await {
        return layout::store_failed(e);
    }
    let audit = AuditRow {
        at: now,
        user_id: None,
        member_id: Some(member_id),
        partner_id: None,
        action: "member sign in".into(),
        target: destination,
        status: 200,
    };
    if let Err(e) = web.app.store.append_audit(audit).await {
        tracing::error!(error = %e, "the audit log could not be written");
    }
    let to = next.unwrap_or_else(|| "/me".into());
    layout::see_other(
        &to,
        vec![session::set_cookie(MEMBER_COOKIE, &token, MEMBER_SESSION.as_secs())],
    )
}

/// `POST /me/logout`: ends her session on this phone.
pub async fn logout(State(web): State<Web>, member: Member) -> Response {
    if let Err(e) = web.app.store.end_session(&member.token_hash).await {
        return layout::store_failed(e);
    }
    layout::see_other("/me/login", vec![session::clear_cookie(MEMBER_COOKIE)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_six_digits() {
        for _ in 0..100 {
            let c = six_digits();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn only_portal_pages_are_returned_to() {
        assert_eq!(next_path(Some("/me/rewards")).as_deref(), Some("/me/rewards"));
        assert_eq!(next_path(Some("/me")).as_deref(), Some("/me"));
        assert_eq!(next_path(Some("/console")), None);
        assert_eq!(next_path(Some("/mellow")), None);
        assert_eq!(next_path(Some("//evil.example/me")), None);
    }
}
