//! The rewards a member can redeem now and why not the others, in her language as the
//! API words them, with a button to redeem each she can. Redeeming answers with the
//! voucher's code at once: the API gives it only in that answer.

use super::{PageLang, not_found, page, partner_names, path_id, read, refusal, vouchers};
use crate::web::Web;
use crate::web::api::Api;
use crate::web::form::FormData;
use crate::web::i18n::{Key, Lang};
use crate::web::layout::{self, int, rows, text};
use crate::web::session::{self, Member};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;

/// `GET /me/rewards`.
pub async fn list(State(web): State<Web>, member: Member, PageLang(lang): PageLang) -> Result<Response, Response> {
    Ok(layout::ok(catalogue(&web, &member, lang, None).await?))
}

/// The catalogue as she sees it, with a refusal said above it when there is one.
async fn catalogue(web: &Web, member: &Member, lang: Lang, error: Option<&str>) -> Result<maud::Markup, Response> {
    let path = format!("/v1/members/{}/rewards?lang={}", member.id, lang.code());
    let offers = read(web, member, lang, "/me/rewards", &path).await?;
    let partners = partner_names(&Api::member(web, &member.id)).await;
    let (open, closed): (Vec<&Value>, Vec<&Value>) = rows(&offers["rewards"])
        .iter()
        .partition(|r| r["can_redeem"].as_bool() == Some(true));
    let main = html! {
        @if let Some(e) = error { (layout::notice("error", e)) }
        p { (lang.fill(Key::RewardsYouHave, &[("points", &lang.count_points(int(&offers["available"])))])) }
        section {
            h2 { (lang.t(Key::RewardsCanRedeem)) }
            @if open.is_empty() { p { (lang.t(Key::RewardsNoneYet)) } }
            @for r in &open { (offer(lang, r, &partners, Some(&member.csrf))) }
        }
        @if !closed.is_empty() {
            section {
                h2 { (lang.t(Key::RewardsNotYet)) }
                @for r in &closed { (offer(lang, r, &partners, None)) }
            }
        }
        p { a href="/me/vouchers" { (lang.t(Key::YourVouchers)) } }
    };
    Ok(page(web, member, lang, "/me/rewards", lang.t(Key::RewardsTitle), main).await)
}

/// One reward: what it is and costs, and a button to redeem it (with `csrf`) or the
/// reason she cannot yet.
fn offer(lang: Lang, r: &Value, partners: &HashMap<String, String>, csrf: Option<&str>) -> Markup {
    let name = text(&r["name"]);
    let cost = lang.count_points(int(&r["cost"]));
    let partner = partners.get(text(&r["partner_id"]));
    html! {
        div.card {
            h3 { (name) }
            p {
                strong { (cost) }
                @if let Some(kind) = kind_label(text(&r["kind"])) { " · " (lang.t(kind)) }
                @if let Some(p) = partner { " · " (lang.fill(Key::RewardAt, &[("partner", p)])) }
            }
            @if let Some(d) = r["description"].as_str() { p { (d) } }
            @if r["starts_at"].is_string() {
                p { (lang.fill(Key::RewardOn, &[("date", &lang.date_time(&r["starts_at"]))])) }
            }
            @if let Some(left) = r["stock_left"].as_i64() {
                p.hint { (lang.fill(Key::RewardLeft, &[("count", &lang.points(left))])) }
            }
            @if let Some(csrf) = csrf {
                form method="post" action={ "/me/rewards/" (text(&r["reward_id"])) "/redeem" } {
                    (layout::csrf(csrf))
                    // One id per form shown: a second tap on the same button redeems once.
                    input type="hidden" name="request_id" value=(session::new_token());
                    button type="submit" { (lang.fill(Key::RedeemButton, &[("reward", name), ("points", &cost)])) }
                }
            } @else if let Some(reason) = r["reason"].as_str() {
                p { (reason) }
            }
        }
    }
}

/// What kind of reward it is, in her words.
fn kind_label(kind: &str) -> Option<Key> {
    Some(match kind {
        "voucher" => Key::RewardVoucher,
        "product" => Key::RewardProduct,
        "experience" => Key::RewardExperience,
        "early_access" => Key::RewardEarlyAccess,
        "merchandise" => Key::RewardMerchandise,
        "donation" => Key::RewardDonation,
        _ => return None,
    })
}

/// `POST /me/rewards/{reward_id}/redeem`: redeems it for her. A voucher's code is shown
/// in this answer (the API gives it once); a donation, or the same form sent again,
/// goes to the redemption's page.
pub async fn redeem(
    State(web): State<Web>,
    member: Member,
    PageLang(lang): PageLang,
    Path(reward_id): Path<String>,
    form: FormData,
) -> Result<Response, Response> {
    let Some(reward_id) = path_id(&reward_id) else {
        return Err(not_found(&web, &member, lang, "/me/rewards").await);
    };
    let request_id = form
        .get("request_id")
        .filter(|r| r.len() <= 100)
        .map_or_else(session::new_token, str::to_string);
    let body = json!({"reward_id": reward_id, "request_id": request_id});
    let api = Api::member(&web, &member.id);
    match api.post(&format!("/v1/members/{}/redemptions", member.id), &body).await {
        Ok(redemption) => match (redemption["code"].as_str(), path_id(text(&redemption["id"]))) {
            (Some(code), _) => Ok(layout::ok(
                vouchers::code_page(&web, &member, lang, &redemption, code).await,
            )),
            (None, Some(id)) => Ok(layout::see_other(&format!("/me/vouchers/{id}"), vec![])),
            (None, None) => Ok(layout::see_other("/me/vouchers", vec![])),
        },
        Err(failure) => {
            let markup = catalogue(&web, &member, lang, Some(&refusal(lang, &failure))).await?;
            Ok(layout::respond(failure.page_status(), markup))
        }
    }
}
