//! Challenges (`/me/challenges`): those open to a member and those she takes part in,
//! with her progress and a button to join; and the badges she has earned.

use super::{PageLang, amount, not_found, page, path_id, progress, read, refusal};
use crate::web::Web;
use crate::web::api::Api;
use crate::web::i18n::{Key, Lang};
use crate::web::layout::{self, int, rows, text};
use crate::web::session::Member;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;

/// `GET /me/challenges` (`?joined=1` after joining one).
pub async fn list(
    State(web): State<Web>,
    member: Member,
    PageLang(lang): PageLang,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let notice = q
        .contains_key("joined")
        .then(|| layout::notice("ok", lang.t(Key::ChallengeJoined)));
    Ok(layout::ok(render(&web, &member, lang, notice).await?))
}

async fn render(web: &Web, member: &Member, lang: Lang, notice: Option<Markup>) -> Result<Markup, Response> {
    let here = "/me/challenges";
    let (id, code) = (&member.id, lang.code());
    let challenges = read(
        web,
        member,
        lang,
        here,
        &format!("/v1/members/{id}/challenges?lang={code}"),
    )
    .await?;
    let badges = read(web, member, lang, here, &format!("/v1/members/{id}/badges?lang={code}")).await?;
    let challenges = rows(&challenges);
    let badges = rows(&badges);
    let main = html! {
        @if let Some(n) = notice { (n) }
        section {
            h2 { (lang.t(Key::ChallengesHeading)) }
            @if challenges.is_empty() { p { (lang.t(Key::ChallengesNone)) } }
            @for c in challenges { (challenge(web, lang, c, &member.csrf)) }
        }
        section {
            h2 { (lang.t(Key::BadgesHeading)) }
            @if badges.is_empty() {
                p { (lang.t(Key::BadgesNone)) }
            } @else {
                ul {
                    @for b in badges {
                        li {
                            strong { (text(&b["name"])) }
                            " — " (lang.fill(Key::BadgeEarnedOn, &[("date", &lang.date(&b["earned_at"]))]))
                        }
                    }
                }
            }
        }
    };
    Ok(page(web, member, lang, here, lang.t(Key::ChallengesTitle), main).await)
}

/// One challenge: what it asks, until when, where she stands, and a button to join
/// while she does not take part.
fn challenge(web: &Web, lang: Lang, c: &Value, csrf: &str) -> Markup {
    let name = text(&c["name"]);
    let (done, target) = (int(&c["progress"]), int(&c["target"]));
    let unit = match (text(&c["measure"]), text(&c["counts"])) {
        ("amount", _) => None,
        ("partners", _) => Some(Key::UnitPartners),
        ("industries", _) => Some(Key::UnitIndustries),
        (_, "events") => Some(Key::UnitEvents),
        _ => Some(Key::UnitPurchases),
    };
    let (done_text, target_text) = match unit {
        None => (amount(web, done), amount(web, target)),
        Some(_) => (lang.points(done), lang.points(target)),
    };
    let mut standing = lang.fill(Key::ProgressOf, &[("done", &done_text), ("target", &target_text)]);
    if let Some(unit) = unit {
        standing.push(' ');
        standing.push_str(lang.t(unit));
    }
    let status = text(&c["status"]);
    html! {
        div.card {
            h3 { (name) }
            @if let Some(d) = c["description"].as_str() { p { (d) } }
            p.hint { (lang.fill(Key::ChallengeDates, &[
                ("from", &lang.date(&c["starts_at"])),
                ("to", &lang.date(&c["ends_at"])),
            ])) }
            p { (standing) }
            (progress(done, target, &lang.fill(Key::ChallengeProgress, &[("challenge", name)])))
            @match status {
                "completed" => {
                    p { strong { (lang.fill(Key::ChallengeCompleted, &[("date", &lang.date(&c["completed_at"]))])) } }
                },
                "joined" => {
                    p { (lang.t(Key::ChallengeTakingPart)) }
                },
                _ => {
                    form method="post" action={ "/me/challenges/" (text(&c["challenge_id"])) "/join" } {
                        (layout::csrf(csrf))
                        button type="submit" { (lang.fill(Key::ChallengeJoin, &[("challenge", name)])) }
                    }
                },
            }
            p.hint { (lang.fill(Key::ChallengeBadge, &[("badge", text(&c["badge"]["name"]))])) }
        }
    }
}

/// `POST /me/challenges/{challenge_id}/join`.
pub async fn join(
    State(web): State<Web>,
    member: Member,
    PageLang(lang): PageLang,
    Path(challenge_id): Path<String>,
) -> Result<Response, Response> {
    let Some(challenge_id) = path_id(&challenge_id) else {
        return Err(not_found(&web, &member, lang, "/me/challenges").await);
    };
    let path = format!(
        "/v1/members/{}/challenges/{challenge_id}/join?lang={}",
        member.id,
        lang.code()
    );
    match Api::member(&web, &member.id).post(&path, &json!({})).await {
        Ok(_) => Ok(layout::see_other("/me/challenges?joined=1", vec![])),
        Err(failure) => {
            let notice = layout::notice("error", &refusal(lang, &failure));
            let markup = render(&web, &member, lang, Some(notice)).await?;
            Ok(layout::respond(failure.page_status(), markup))
        }
    }
}
