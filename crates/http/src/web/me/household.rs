//! The shared wallets a member belongs to (`/me/household`): a household's or a
//! company's points, what she may do with them, and who else shares them (by first
//! name and initial only).

use super::{PageLang, page, path_id, read};
use crate::web::Web;
use crate::web::i18n::{Key, Lang};
use crate::web::layout::{self, int, rows, text};
use crate::web::session::Member;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

/// One wallet as the page shows it: her place in it (from her list), the wallet
/// itself, and the names of those in it now.
struct Shared {
    mine: Value,
    wallet: Value,
    people: Vec<(String, Value)>,
}

/// `GET /me/household`.
pub async fn show(State(web): State<Web>, member: Member, PageLang(lang): PageLang) -> Result<Response, Response> {
    let here = "/me/household";
    let list = read(&web, &member, lang, here, &format!("/v1/members/{}/wallets", member.id)).await?;
    let mut shared = Vec::new();
    // Only the wallets of her own list are read: the ids come from the API, not the request.
    for mine in rows(&list) {
        let Some(id) = path_id(text(&mine["id"])) else { continue };
        let wallet = read(&web, &member, lang, here, &format!("/v1/wallets/{id}")).await?;
        let mut people = Vec::new();
        for m in rows(&wallet["members"]).iter().filter(|m| m["left_at"].is_null()) {
            let who = text(&m["member_id"]);
            let name = if who == member.id.as_str() {
                lang.t(Key::You).to_string()
            } else {
                first_name(&web, who)
                    .await
                    .unwrap_or_else(|| lang.t(Key::AMember).to_string())
            };
            people.push((name, m.clone()));
        }
        shared.push(Shared {
            mine: mine.clone(),
            wallet,
            people,
        });
    }
    let main = html! {
        @if shared.is_empty() {
            p { (lang.t(Key::HouseholdNone)) }
        }
        @for s in &shared { (wallet_section(lang, s)) }
    };
    Ok(layout::ok(
        page(&web, &member, lang, here, lang.t(Key::HouseholdTitle), main).await,
    ))
}

/// Another member of her wallet as "Jana N.", if she gave a name. Read from the store:
/// the portal's API calls reach only her own member paths, and of another member a
/// wallet's people see no more than this.
async fn first_name(web: &Web, id: &str) -> Option<String> {
    let id = <tally_domain::ids::MemberId as tally_domain::ids::Id>::parse(path_id(id)?)?;
    let other = web.app.store.member(&id).await.ok()??;
    crate::routes::members::short_name(other.name.as_deref()?)
}

fn wallet_section(lang: Lang, s: &Shared) -> Markup {
    let w = &s.wallet;
    let kind = match text(&w["kind"]) {
        "business" => Key::WalletBusiness,
        _ => Key::WalletHousehold,
    };
    html! {
        section {
            h2 { (text(&w["name"])) }
            p.hint { (lang.t(kind)) }
            // The wallet's points are shown to those who may spend them, as the API's
            // member view does.
            @if s.mine["spend"].as_bool() == Some(true) {
                div.cards {
                    div.card {
                        span.figure { (lang.points(int(&w["balance"]["available"]))) }
                        span.label { (lang.t(Key::WalletAvailable)) }
                    }
                    div.card {
                        span.figure { (lang.points(int(&w["balance"]["pending"]))) }
                        span.label { (lang.t(Key::PendingLabel)) }
                    }
                }
            }
            ul {
                li { (lang.t(if s.mine["spend"].as_bool() == Some(true) { Key::WalletCanSpend } else { Key::WalletCannotSpend })) }
                li { (lang.t(if s.mine["earn_into"].as_bool() == Some(true) { Key::WalletEarnsInto } else { Key::WalletNoEarn })) }
                @if s.mine["default"].as_bool() == Some(true) { li { (lang.t(Key::WalletDefault)) } }
            }
            div.scroll {
                table {
                    caption { (lang.fill(Key::WalletPeople, &[("wallet", text(&w["name"]))])) }
                    thead {
                        tr {
                            th scope="col" { (lang.t(Key::ColumnName)) }
                            th scope="col" { (lang.t(Key::ColumnRole)) }
                            th scope="col" { (lang.t(Key::ColumnSince)) }
                        }
                    }
                    tbody {
                        @for (name, m) in &s.people {
                            tr {
                                td { (name) }
                                td { (lang.t(role_label(text(&m["role"])))) }
                                td { (lang.date(&m["joined_at"])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn role_label(role: &str) -> Key {
    match role {
        "owner" => Key::RoleOwner,
        "contact" => Key::RoleContact,
        _ => Key::RoleMember,
    }
}
