//! Her card (`/me/card`): a QR token a till scans instead of asking her phone number.
//! It names her, is signed by the server, and lasts a few minutes, so a photo of it is
//! of no use later; nothing about it is stored.

use super::{PageLang, page};
use crate::web::Web;
use crate::web::i18n::Key;
use crate::web::layout;
use crate::web::qr;
use crate::web::session::Member;
use axum::extract::State;
use axum::response::Response;
use maud::html;

/// `GET /me/card`: a fresh token at each visit.
pub async fn show(State(web): State<Web>, member: Member, PageLang(lang): PageLang) -> Response {
    let (token, expires) = web.app.signer.member_token(&member.id, web.app.now());
    let minutes = crate::signing::MEMBER_TOKEN_TTL.as_mins().to_string();
    let main = html! {
        p { (lang.t(Key::CardIntro)) }
        (qr::svg(&token, lang.t(Key::CardQrLabel)))
        p { (lang.fill(Key::CardValid, &[("time", &lang.clock(expires)), ("minutes", &minutes)])) }
        p { a.button href="/me/card" { (lang.t(Key::CardRefresh)) } }
        h2 { (lang.t(Key::CardTextHeading)) }
        p { (lang.t(Key::CardTextIntro)) }
        p.token { (token) }
        p.hint { (lang.t(Key::CardSafety)) }
    };
    layout::ok(page(&web, &member, lang, "/me/card", lang.t(Key::CardTitle), main).await)
}
