//! Inviting friends (`/me/invite`): her share link (`/r/{code}` on this server) as text
//! and as a QR code, her referral code, and what became of those she invited.

use super::{PageLang, page, read};
use crate::web::Web;
use crate::web::i18n::{Key, Lang};
use crate::web::layout::{self, int, rows, text};
use crate::web::qr;
use crate::web::session::{self, Member};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

/// `GET /me/invite`.
pub async fn show(
    State(web): State<Web>,
    member: Member,
    PageLang(lang): PageLang,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let here = "/me/invite";
    let me = read(&web, &member, lang, here, &format!("/v1/members/{}", member.id)).await?;
    let referrals = read(
        &web,
        &member,
        lang,
        here,
        &format!("/v1/members/{}/referrals", member.id),
    )
    .await?;
    let code = text(&me["referral_code"]);
    // The link leads to the programme's sign-up page, when the operator has set one.
    let links_on = web.app.program().referral_signup_url.is_some();
    let link = share_link(&headers, code);
    let main = html! {
        section {
            h2 { (lang.t(Key::InviteLinkHeading)) }
            @if links_on {
                p { (lang.t(Key::InviteIntro)) }
                p.token { a href=(link) { (link) } }
                (qr::svg(&link, lang.t(Key::InviteQrLabel)))
                p { (lang.t(Key::InviteCode)) " " strong.code { (code) } }
            } @else {
                p { (lang.t(Key::InviteCodeOnly)) " " strong.code { (code) } }
            }
        }
        (invited(lang, &referrals))
    };
    Ok(layout::ok(
        page(&web, &member, lang, here, lang.t(Key::InviteTitle), main).await,
    ))
}

/// The absolute address of her share link on this server, from the `Host` the phone
/// asked; a bare path when the request named no usable host.
fn share_link(headers: &HeaderMap, code: &str) -> String {
    let path = format!("/r/{}", session::url_escape(code));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| {
        !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    });
    let Some(host) = host else { return path };
    let local = host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
    let scheme = match headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) {
        Some("http") => "http",
        Some("https") => "https",
        _ if local => "http",
        _ => "https",
    };
    format!("{scheme}://{host}{path}")
}

/// Those she invited: how many, what became of each, and the points they earned her.
fn invited(lang: Lang, r: &Value) -> Markup {
    let items = rows(&r["items"]);
    html! {
        section {
            h2 { (lang.t(Key::InvitedHeading)) }
            div.cards {
                div.card {
                    span.figure { (lang.points(int(&r["invited"]))) }
                    span.label { (lang.t(Key::InvitedCount)) }
                }
                div.card {
                    span.figure { (lang.points(int(&r["converted"]))) }
                    span.label { (lang.t(Key::InvitedConverted)) }
                }
                div.card {
                    span.figure { (lang.points(int(&r["points_earned"]))) }
                    span.label { (lang.t(Key::InvitedPoints)) }
                }
            }
            @if items.is_empty() {
                p { (lang.t(Key::InvitedNone)) }
            } @else {
                div.scroll {
                    table {
                        caption { (lang.t(Key::InvitedCaption)) }
                        thead {
                            tr {
                                th scope="col" { (lang.t(Key::ColumnJoined)) }
                                th scope="col" { (lang.t(Key::ColumnStatus)) }
                                th.num scope="col" { (lang.t(Key::ColumnPoints)) }
                            }
                        }
                        tbody {
                            @for i in items {
                                tr {
                                    td { (lang.date(&i["joined_at"])) }
                                    td {
                                        (lang.t(status_label(text(&i["status"]))))
                                        @if let Some(reason) = reason_label(text(&i["reason"])) {
                                            " (" (lang.t(reason)) ")"
                                        }
                                    }
                                    td.num { (lang.points(int(&i["points"]))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn status_label(status: &str) -> Key {
    match status {
        "converted" => Key::ReferralConverted,
        "declined" => Key::ReferralDeclined,
        "reversed" => Key::ReferralReversed,
        _ => Key::ReferralPending,
    }
}

fn reason_label(reason: &str) -> Option<Key> {
    match reason {
        "same_household" => Some(Key::ReferralSameHousehold),
        "monthly_limit" => Some(Key::ReferralMonthlyLimit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_share_link_is_absolute_on_the_host_asked() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("tally.example"));
        assert_eq!(share_link(&h, "ABCD2345"), "https://tally.example/r/ABCD2345");
        h.insert(header::HOST, HeaderValue::from_static("localhost:8080"));
        assert_eq!(share_link(&h, "ABCD2345"), "http://localhost:8080/r/ABCD2345");
        h.insert(header::HOST, HeaderValue::from_static("evil\"host"));
        assert_eq!(share_link(&h, "ABCD2345"), "/r/ABCD2345");
        assert_eq!(share_link(&HeaderMap::new(), "ABCD2345"), "/r/ABCD2345");
    }
}
