//! A member's redemptions (`/me/vouchers`): each with where it stands, and for a
//! voucher not yet used a new code on request. A code is shown only in the answer that
//! issued it, as text and as a QR code: Tally keeps only its hash, so a lost code is
//! replaced, never shown again.

use super::{PageLang, not_found, page, partner_names, path_id, read, refusal};
use crate::web::Web;
use crate::web::api::Api;
use crate::web::i18n::{Key, Lang};
use crate::web::layout::{self, int, rows, text};
use crate::web::qr;
use crate::web::session::Member;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Redemptions listed per page.
const PAGE: u32 = 50;

/// `GET /me/vouchers?cursor=…`: her redemptions, newest first.
pub async fn list(
    State(web): State<Web>,
    member: Member,
    PageLang(lang): PageLang,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let mut path = format!("/v1/members/{}/redemptions?limit={PAGE}", member.id);
    if let Some(cursor) = q.get("cursor").and_then(|c| path_id(c)) {
        path.push_str("&cursor=");
        path.push_str(cursor);
    }
    let answer = read(&web, &member, lang, "/me/vouchers", &path).await?;
    let names = reward_names(&web, &member, lang).await;
    let items = rows(&answer["items"]);
    let main = html! {
        @if items.is_empty() {
            p { (lang.t(Key::VouchersNone)) " " a href="/me/rewards" { (lang.t(Key::VouchersSeeRewards)) } }
        } @else {
            div.scroll {
                table {
                    caption { (lang.t(Key::VouchersCaption)) }
                    thead {
                        tr {
                            th scope="col" { (lang.t(Key::ColumnReward)) }
                            th scope="col" { (lang.t(Key::ColumnStatus)) }
                            th.num scope="col" { (lang.t(Key::ColumnPoints)) }
                            th scope="col" { (lang.t(Key::ColumnValidUntil)) }
                        }
                    }
                    tbody {
                        @for r in items {
                            tr {
                                td { a href={ "/me/vouchers/" (text(&r["id"])) } { (reward_name(&names, r)) } }
                                td { (lang.t(status_label(text(&r["status"])))) }
                                td.num { (lang.points(int(&r["points"]))) }
                                td { @if r["expires_at"].is_string() { (lang.date(&r["expires_at"])) } @else { "—" } }
                            }
                        }
                    }
                }
            }
            @if let Some(cursor) = answer["next_cursor"].as_str() {
                p { a href={ "/me/vouchers?cursor=" (cursor) } { (lang.t(Key::OlderVouchers)) } }
            }
        }
    };
    Ok(layout::ok(
        page(&web, &member, lang, "/me/vouchers", lang.t(Key::VouchersTitle), main).await,
    ))
}

/// The names of the rewards open to her, in her language (a redemption keeps the
/// English name it was redeemed under).
async fn reward_names(web: &Web, member: &Member, lang: Lang) -> HashMap<String, String> {
    let path = format!("/v1/members/{}/rewards?lang={}", member.id, lang.code());
    let offers = Api::member(web, &member.id).get(&path).await.unwrap_or(Value::Null);
    rows(&offers["rewards"])
        .iter()
        .map(|r| (text(&r["reward_id"]).to_string(), text(&r["name"]).to_string()))
        .collect()
}

fn reward_name<'a>(names: &'a HashMap<String, String>, r: &'a Value) -> &'a str {
    names
        .get(text(&r["reward_id"]))
        .map_or_else(|| text(&r["reward_name"]), String::as_str)
}

fn status_label(status: &str) -> Key {
    match status {
        "issued" => Key::StatusIssued,
        "used" => Key::StatusUsed,
        "cancelled" => Key::StatusCancelled,
        "expired" => Key::StatusExpired,
        "forfeited" => Key::StatusForfeited,
        "donated" => Key::StatusDonated,
        _ => Key::StatusUnknown,
    }
}

/// One of her redemptions, or the not-found page for one that is not hers (the API
/// shows any redemption to the operator key the portal calls with).
async fn hers(web: &Web, member: &Member, lang: Lang, raw_id: &str) -> Result<Value, Response> {
    let here = "/me/vouchers";
    let Some(id) = path_id(raw_id) else {
        return Err(not_found(web, member, lang, here).await);
    };
    let r = read(web, member, lang, here, &format!("/v1/redemptions/{id}")).await?;
    if text(&r["member_id"]) != member.id.as_str() {
        return Err(not_found(web, member, lang, here).await);
    }
    Ok(r)
}

/// `GET /me/vouchers/{redemption_id}`.
pub async fn show(
    State(web): State<Web>,
    member: Member,
    PageLang(lang): PageLang,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let r = hers(&web, &member, lang, &id).await?;
    Ok(layout::ok(detail(&web, &member, lang, &r, None).await))
}

/// A redemption: where it stands, where to use it, and for an issued voucher the form
/// that replaces its code.
async fn detail(web: &Web, member: &Member, lang: Lang, r: &Value, error: Option<&str>) -> Markup {
    let partners = partner_names(&Api::member(web, &member.id)).await;
    let names = reward_names(web, member, lang).await;
    let id = text(&r["id"]);
    let status = text(&r["status"]);
    let main = html! {
        @if let Some(e) = error { (layout::notice("error", e)) }
        h2 { (reward_name(&names, r)) }
        (facts(lang, r, &partners))
        @if status == "issued" {
            p { (lang.t(Key::VoucherCodeOnce)) }
            form method="post" action={ "/me/vouchers/" (id) "/code" } {
                (layout::csrf(&member.csrf))
                button type="submit" { (lang.t(Key::VoucherNewCode)) }
            }
            p.hint { (lang.t(Key::VoucherNewCodeHint)) }
        }
        p { a href="/me/vouchers" { (lang.t(Key::AllVouchers)) } }
    };
    page(web, member, lang, "/me/vouchers", lang.t(Key::VoucherTitle), main).await
}

/// What a redemption is: its status, points, where it is used and until when.
fn facts(lang: Lang, r: &Value, partners: &HashMap<String, String>) -> Markup {
    html! {
        dl {
            dt { (lang.t(Key::ColumnStatus)) }
            dd { (lang.t(status_label(text(&r["status"])))) }
            dt { (lang.t(Key::ColumnPoints)) }
            dd { (lang.count_points(int(&r["points"]))) }
            @if let Some(p) = partners.get(text(&r["partner_id"])) {
                dt { (lang.t(Key::VoucherUseAt)) }
                dd { (p) }
            }
            @if let Some(charity) = r["charity"].as_str() {
                dt { (lang.t(Key::VoucherCharity)) }
                dd { (charity) }
            }
            @if r["expires_at"].is_string() {
                dt { (lang.t(Key::ColumnValidUntil)) }
                dd { (lang.date_time(&r["expires_at"])) }
            }
            @if let Some(hint) = r["code_hint"].as_str() {
                dt { (lang.t(Key::VoucherCodeEnds)) }
                dd.code { (hint) }
            }
        }
    }
}

/// The page that shows a voucher's code, this once: as text to read out or type, and
/// as a QR code for the partner's till.
pub async fn code_page(web: &Web, member: &Member, lang: Lang, r: &Value, code: &str) -> Markup {
    let partners = partner_names(&Api::member(web, &member.id)).await;
    let names = reward_names(web, member, lang).await;
    let left = r["balance"]["available"].as_i64();
    let main = html! {
        (layout::notice("ok", lang.t(Key::VoucherShownOnce)))
        h2 { (reward_name(&names, r)) }
        p { (lang.t(Key::VoucherYourCode)) }
        p.code { (code) }
        (qr::svg(code, lang.t(Key::VoucherQrLabel)))
        (facts(lang, r, &partners))
        @if let Some(left) = left {
            p { (lang.fill(Key::PointsLeft, &[("points", &lang.count_points(left))])) }
        }
        p { a href={ "/me/vouchers/" (text(&r["id"])) } { (lang.t(Key::VoucherDetails)) } }
    };
    page(web, member, lang, "/me/vouchers", lang.t(Key::VoucherTitle), main).await
}

/// `POST /me/vouchers/{redemption_id}/code`: a new code for her voucher (the old one
/// stops working), shown this once.
pub async fn new_code(
    State(web): State<Web>,
    member: Member,
    PageLang(lang): PageLang,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    // Hers first: the API replaces the code of any voucher for the operator key.
    let r = hers(&web, &member, lang, &id).await?;
    let id = text(&r["id"]);
    let api = Api::member(&web, &member.id);
    match api.post(&format!("/v1/redemptions/{id}/code"), &json!({})).await {
        Ok(renewed) => match renewed["code"].as_str() {
            Some(code) => Ok(layout::ok(code_page(&web, &member, lang, &renewed, code).await)),
            None => Ok(layout::ok(detail(&web, &member, lang, &renewed, None).await)),
        },
        Err(failure) => {
            let markup = detail(&web, &member, lang, &r, Some(&refusal(lang, &failure))).await;
            Ok(layout::respond(failure.page_status(), markup))
        }
    }
}
