//! The member portal (`/me`): a member signs in with a one-time code sent to her email
//! address or phone and sees her points, rewards and vouchers, her household, her
//! invitations, her challenges and the card a till scans, in English, German or Czech.
//!
//! Every page acts through the API on her own id, taken from her session and never from
//! the request, so a member sees and changes only what is hers. This module holds the
//! routes and what the pages share: the page shell with the portal's navigation and
//! language switch, the page language, and the sayings of a refused request.

mod card;
mod challenges;
mod home;
mod household;
mod invite;
mod rewards;
mod signin;
mod vouchers;

use super::Web;
use super::api::{Api, Failure};
use super::i18n::{self, Key, Lang};
use super::layout::{self, Nav};
use super::session::{self, Member};
use axum::Router;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::Value;
use std::collections::HashMap;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/me", get(home::show))
        .route("/me/history", get(home::history))
        .route("/me/login", get(signin::form).post(signin::send_code))
        .route("/me/login/code", post(signin::check_code))
        .route("/me/logout", post(signin::logout))
        .route("/me/lang", get(switch_language))
        .route("/me/rewards", get(rewards::list))
        .route("/me/rewards/{reward_id}/redeem", post(rewards::redeem))
        .route("/me/vouchers", get(vouchers::list))
        .route("/me/vouchers/{redemption_id}", get(vouchers::show))
        .route("/me/vouchers/{redemption_id}/code", post(vouchers::new_code))
        .route("/me/household", get(household::show))
        .route("/me/invite", get(invite::show))
        .route("/me/challenges", get(challenges::list))
        .route("/me/challenges/{challenge_id}/join", post(challenges::join))
        .route("/me/card", get(card::show))
}

/// The language a page is shown in: `?lang=`, else the `tally_lang` cookie, else
/// `Accept-Language`, else English.
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let asked = parts.uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "lang")
                .map(|(_, v)| v.into_owned())
        });
        Ok(PageLang(Lang::from_request(&parts.headers, asked.as_deref())))
    }
}

/// The portal's sections, in the order of its navigation.
const SECTIONS: [(&str, Key); 7] = [
    ("/me", Key::NavHome),
    ("/me/rewards", Key::NavRewards),
    ("/me/vouchers", Key::NavVouchers),
    ("/me/challenges", Key::NavChallenges),
    ("/me/household", Key::NavHousehold),
    ("/me/invite", Key::NavInvite),
    ("/me/card", Key::NavCard),
];

/// A whole page for the signed-in member: her name and sign-out, the sections and the
/// language switch in the header, `title` as its one heading.
async fn page(web: &Web, member: &Member, lang: Lang, current: &str, title: &str, main: Markup) -> Markup {
    let me = Api::member(web, &member.id)
        .get(&format!("/v1/members/{}", member.id))
        .await
        .unwrap_or(Value::Null);
    let name = [&me["name"], &me["email"], &me["phone"]]
        .iter()
        .map(|v| layout::text(v))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_string();
    let nav = Nav {
        face: lang.t(Key::Portal),
        items: SECTIONS
            .iter()
            .map(|(href, key)| (*href, lang.t(*key).to_string()))
            .collect(),
        current,
        who: Some((name, "/me/logout", member.csrf.clone())),
        extra: Some(switch(lang, current)),
    };
    layout::page(lang.code(), title, &nav, main)
}

/// A page for a visitor who has not signed in (the sign-in forms): the language switch
/// only.
fn public_page(lang: Lang, current: &str, title: &str, main: Markup) -> Markup {
    let nav = Nav {
        face: lang.t(Key::Portal),
        items: vec![],
        current,
        who: None,
        extra: Some(switch(lang, current)),
    };
    layout::page(lang.code(), title, &nav, main)
}

/// The page that answers a read the API refused or could not make, in her language.
async fn failed(web: &Web, member: &Member, lang: Lang, current: &str, failure: &Failure) -> Response {
    let title = match failure.status {
        StatusCode::NOT_FOUND => lang.t(Key::NotFoundTitle),
        _ => lang.t(Key::TroubleTitle),
    };
    let main = html! {
        (layout::notice("error", &refusal(lang, failure)))
        p { a href="/me" { (lang.t(Key::BackHome)) } }
    };
    layout::respond(
        failure.page_status(),
        page(web, member, lang, current, title, main).await,
    )
}

/// Reads `path` through the API as her; a failure becomes the page that says so.
async fn read(web: &Web, member: &Member, lang: Lang, current: &str, path: &str) -> Result<Value, Response> {
    match Api::member(web, &member.id).get(path).await {
        Ok(v) => Ok(v),
        Err(failure) => Err(failed(web, member, lang, current, &failure).await),
    }
}

/// What the API said, in her language where Tally knows the reason; the API's own
/// words (English) otherwise.
fn refusal(lang: Lang, failure: &Failure) -> String {
    let key = match failure.code.as_str() {
        "insufficient_points" => Key::RefusedPoints,
        "sold_out" => Key::RefusedSoldOut,
        "limit_reached" => Key::RefusedLimit,
        "not_eligible" => Key::RefusedNotEligible,
        "not_open_yet" => Key::RefusedNotOpen,
        "reward_closed" => Key::RefusedRewardClosed,
        "challenge_closed" => Key::RefusedChallengeClosed,
        "voucher_closed" => Key::RefusedVoucherClosed,
        "idempotency_conflict" | "idempotency_in_progress" => Key::RefusedTwice,
        _ if failure.status == StatusCode::NOT_FOUND => Key::RefusedNotFound,
        _ if failure.status.is_server_error() => Key::RefusedTrouble,
        _ => return failure.message.clone(),
    };
    lang.t(key).to_string()
}

/// The language switch: each language a link that keeps the page and sets the
/// `tally_lang` cookie.
fn switch(lang: Lang, here: &str) -> Markup {
    let back = session::url_escape(here);
    html! {
        nav.langs aria-label=(lang.t(Key::LanguageNav)) {
            ul {
                @for l in Lang::ALL {
                    li {
                        @if l == lang {
                            a href={ "/me/lang?lang=" (l.code()) "&next=" (back) } lang=(l.code()) hreflang=(l.code()) aria-current="true" { (l.name()) }
                        } @else {
                            a href={ "/me/lang?lang=" (l.code()) "&next=" (back) } lang=(l.code()) hreflang=(l.code()) { (l.name()) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /me/lang?lang=de&next=/me/rewards`: remembers the language for a year and
/// returns to the page.
async fn switch_language(Query(q): Query<HashMap<String, String>>) -> Response {
    let next = session::local_path(q.get("next").map(String::as_str))
        .filter(|n| n.starts_with("/me"))
        .unwrap_or_else(|| "/me".into());
    match q.get("lang").and_then(|l| Lang::parse(l)) {
        Some(lang) => layout::see_other(&next, vec![i18n::cookie(lang)]),
        None => layout::see_other(&next, vec![]),
    }
}

/// An id from the request's path, before it goes into an API path: the characters
/// ids are made of only (the API then answers 404 for one that is not hers).
fn path_id(raw: &str) -> Option<&str> {
    crate::web::values::plausible_id(raw).then_some(raw)
}

/// The page for an id in the path that cannot be one.
async fn not_found(web: &Web, member: &Member, lang: Lang, current: &str) -> Response {
    let failure = Failure {
        status: StatusCode::NOT_FOUND,
        code: "not_found".into(),
        message: String::new(),
    };
    failed(web, member, lang, current, &failure).await
}

/// The partners' names by id (rewards and vouchers name where they are used).
async fn partner_names(api: &Api<'_>) -> HashMap<String, String> {
    crate::web::values::partner_names(&api.get("/v1/partners").await.unwrap_or(Value::Null))
}

/// An amount in minor units of the programme's currency, as "EUR 12.50".
fn amount(web: &Web, minor: i64) -> String {
    let currency = web.app.program().currency;
    format!("{} {}", currency.code(), tally_domain::money::in_units(minor, currency))
}

/// How far `value` is toward `max`, as a bar with its own name (the text beside it says
/// the same in words).
fn progress(value: i64, max: i64, label: &str) -> Markup {
    let max = max.max(1);
    let value = value.clamp(0, max);
    let percent = i128::from(value) * 100 / i128::from(max);
    html! {
        progress max=(max) value=(value) aria-label=(label) { (percent) "%" }
    }
}

/// An answer with the pre-sign-in cookie of a first visit, when there is one.
fn with_cookie(mut res: Response, cookie: Option<axum::http::HeaderValue>) -> Response {
    if let Some(c) = cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}
