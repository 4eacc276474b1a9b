//! Members in the console: the search by phone, email, card or member id
//! (`/console/members`), and one member's page (`/console/members/{id}`): profile and
//! balance, tier and progress, the history with the reason of every point (paged),
//! shared wallets, redemptions and paid memberships.

use super::{api, failed, list, name_of, or_dash, page, partner_names, yes_no};
use crate::web::Web;
use crate::web::api::Failure;
use crate::web::layout::{self, int, points, text};
use crate::web::session::{Staff, url_escape};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;
use std::collections::HashMap;
use tally_domain::ids::{Id, MemberId};

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/console/members", get(search))
        .route("/console/members/{id}", get(member))
}

const SECTION: &str = "/console/members";
/// History lines per page.
const HISTORY_PAGE: u32 = 50;
/// Redemptions shown (newest first).
const REDEMPTIONS: u32 = 20;

/// What the search box may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Any,
    Email,
    Phone,
    Card,
    Id,
}

impl By {
    fn parse(s: Option<&str>) -> By {
        match s {
            Some("email") => By::Email,
            Some("phone") => By::Phone,
            Some("card") => By::Card,
            Some("id") => By::Id,
            _ => By::Any,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            By::Any => "any",
            By::Email => "email",
            By::Phone => "phone",
            By::Card => "card",
            By::Id => "id",
        }
    }

    fn label(self) -> &'static str {
        match self {
            By::Any => "Whatever it is",
            By::Email => "Email",
            By::Phone => "Phone",
            By::Card => "Card number",
            By::Id => "Member id",
        }
    }
}

/// The lookups to try for what was typed, in order (at most two).
fn lookups(q: &str, by: By) -> Vec<By> {
    match by {
        By::Any if q.starts_with("mem_") => vec![By::Id],
        By::Any if q.contains('@') => vec![By::Email],
        By::Any if q.starts_with('+') => vec![By::Phone],
        By::Any => vec![By::Card, By::Phone],
        other => vec![other],
    }
}

async fn search(
    State(web): State<Web>,
    staff: Staff,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    staff.operator()?;
    let typed = q.get("q").map(|s| s.trim()).filter(|s| !s.is_empty() && s.len() <= 254);
    let by = By::parse(q.get("by").map(String::as_str));
    let Some(typed) = typed else {
        return Ok(layout::ok(search_page(&staff, "", by, None)));
    };
    let api = api(&web, &staff);
    let mut refused: Option<Failure> = None;
    for kind in lookups(typed, by) {
        let found = match kind {
            By::Id => match MemberId::parse(typed) {
                Some(id) => return Ok(layout::see_other(&format!("/console/members/{id}"), vec![])),
                None => continue,
            },
            By::Email | By::Phone | By::Card | By::Any => {
                let path = format!("/v1/members/lookup?{}={}", kind.as_str(), url_escape(typed));
                api.get(&path).await
            }
        };
        match found {
            Ok(m) => {
                let id = text(&m["id"]);
                if MemberId::parse(id).is_some() {
                    return Ok(layout::see_other(&format!("/console/members/{id}"), vec![]));
                }
            }
            Err(f) if f.status == StatusCode::NOT_FOUND => {}
            Err(f) => refused = Some(f),
        }
    }
    let (status, message) = match refused {
        Some(f) => (f.status, f.message),
        None => (
            StatusCode::NOT_FOUND,
            format!(
                "No member has {typed} as {}.",
                match by {
                    By::Any => "an email, phone, card number or id",
                    By::Email => "email",
                    By::Phone => "phone number",
                    By::Card => "card number",
                    By::Id => "id",
                }
            ),
        ),
    };
    Ok(layout::respond(
        status,
        search_page(&staff, typed, by, Some(layout::notice("error", &message))),
    ))
}

fn search_page(staff: &Staff, typed: &str, by: By, message: Option<Markup>) -> Markup {
    let main = html! {
        @if let Some(m) = message { (m) }
        form.inline method="get" action="/console/members" role="search" {
            label for="q" { "Phone, email, card number or member id"
                input #q type="search" name="q" value=(typed) required autocomplete="off"; }
            label for="by" { "Look it up as"
                select #by name="by" {
                    @for b in [By::Any, By::Phone, By::Email, By::Card, By::Id] {
                        option value=(b.as_str()) selected[b == by] { (b.label()) }
                    }
                }
            }
            button type="submit" { "Find the member" }
        }
        p.hint { "Write a phone number with its country code (+420 …). A number of digits alone is tried as a card number, then as a phone number." }
    };
    page(staff, SECTION, "Members", main)
}

async fn member(
    State(web): State<Web>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    staff.operator()?;
    let Some(id) = MemberId::parse(&id).filter(|m| super::plausible_id(m.as_str())) else {
        return Err(super::not_found(&staff, SECTION, "member"));
    };
    // The history's cursor is the API's own: digits only.
    let cursor = q
        .get("cursor")
        .map(String::as_str)
        .filter(|c| !c.is_empty() && c.len() <= 18 && c.bytes().all(|b| b.is_ascii_digit()));
    let activity_path = match cursor {
        Some(c) => format!("/v1/members/{id}/activity?limit={HISTORY_PAGE}&cursor={c}"),
        None => format!("/v1/members/{id}/activity?limit={HISTORY_PAGE}"),
    };
    let profile_path = format!("/v1/members/{id}");
    let tier_path = format!("/v1/members/{id}/tier");
    let wallets_path = format!("/v1/members/{id}/wallets");
    let redemptions_path = format!("/v1/members/{id}/redemptions?limit={REDEMPTIONS}");
    let memberships_path = format!("/v1/members/{id}/memberships");
    // One round of reads, side by side: the page waits for the slowest, not their sum.
    let api = api(&web, &staff);
    let (profile, tier, activity, wallets, redemptions, memberships, partners) = tokio::join!(
        api.get(&profile_path),
        api.get(&tier_path),
        api.get(&activity_path),
        api.get(&wallets_path),
        api.get(&redemptions_path),
        api.get(&memberships_path),
        api.get("/v1/partners"),
    );
    let profile = profile.map_err(|f| failed(&staff, SECTION, &f))?;
    let names = partner_names(&partners);
    let currency = web.app.program().currency.code();
    let title = match text(&profile["name"]) {
        "" => format!("Member {id}"),
        name => name.to_string(),
    };
    let main = html! {
        (profile_section(&profile))
        (tier_section(&tier, currency))
        (history_section(&id, &activity, &names, cursor.is_some()))
        (wallets_section(&wallets))
        (redemptions_section(&redemptions, &names))
        (memberships_section(&memberships))
    };
    Ok(layout::ok(page(&staff, SECTION, &title, main)))
}

/// A section's figures, or the API's words why they could not be read.
fn or_refusal(what: &str, answer: &Result<Value, Failure>, show: impl FnOnce(&Value) -> Markup) -> Markup {
    match answer {
        Ok(v) => show(v),
        Err(f) => layout::notice("error", &format!("{what} could not be read: {}", f.message)),
    }
}

fn profile_section(m: &Value) -> Markup {
    let b = &m["balance"];
    let segments: Vec<&str> = layout::rows(&m["segments"]).iter().map(text).collect();
    let cards: Vec<&str> = layout::rows(&m["cards"]).iter().map(text).collect();
    html! {
        div.cards {
            div.card { span.figure { (points(int(&b["available"]))) } span.label { "Points available" } }
            div.card { span.figure { (points(int(&b["pending"]))) } span.label { "Pending (not yet spendable)" } }
            div.card { span.figure { (points(int(&b["reserved"]))) } span.label { "Set aside for vouchers" } }
            div.card { span.figure { (points(int(&b["lifetime_earned"]))) } span.label { "Earned over the membership" } }
        }
        section {
            h2 { "Profile" }
            table {
                caption { "Who the member is" }
                tbody {
                    tr { th scope="row" { "Member id" } td { code { (text(&m["id"])) } } }
                    tr { th scope="row" { "Name" } td { (or_dash(&m["name"])) } }
                    tr { th scope="row" { "Email" } td { (or_dash(&m["email"])) } }
                    tr { th scope="row" { "Phone" } td { (or_dash(&m["phone"])) } }
                    tr { th scope="row" { "Cards" } td { @if cards.is_empty() { "—" } @else { (cards.join(", ")) } } }
                    tr { th scope="row" { "Country" } td { (or_dash(&m["country"])) } }
                    tr { th scope="row" { "Member since" } td { (layout::when(&m["created_at"])) } }
                    tr { th scope="row" { "Referral code" } td { code { (text(&m["referral_code"])) } } }
                    tr { th scope="row" { "Referred by" } td {
                        @match m["referred_by"].as_str() {
                            Some(r) if MemberId::parse(r).is_some() => { a href={ "/console/members/" (r) } { (r) } }
                            _ => { "—" }
                        }
                    } }
                    tr { th scope="row" { "Tier (as rules read it)" } td { (or_dash(&m["tier"])) } }
                    tr { th scope="row" { "Segments" } td { @if segments.is_empty() { "—" } @else { (segments.join(", ")) } } }
                    tr { th scope="row" { "Plan" } td { (or_dash(&m["plan"])) } }
                }
            }
        }
    }
}

fn tier_section(tier: &Result<Value, Failure>, currency: &str) -> Markup {
    html! {
        section {
            h2 { "Tier" }
            (or_refusal("The tier", tier, |t| {
                let spend = text(&t["basis"]) == "qualifying_spend";
                let amount = |v: &Value| if spend { layout::in_currency(int(v), currency) } else { format!("{} points", points(int(v))) };
                html! {
                    @if t["enabled"].as_bool() != Some(true) {
                        p { "The programme has no tier ladder." }
                    } @else {
                        p {
                            @match t["level"]["name"].as_str() {
                                Some(name) => { "Level: " strong { (name) } " (" (text(&t["level"]["code"])) ", earns × " (text(&t["level"]["multiplier"])) ")" }
                                None => { "No level yet." }
                            }
                            @if t["manual_until"].is_string() { " Set by hand until " (layout::when(&t["manual_until"])) "." }
                        }
                        p {
                            "Qualifying this period (" (layout::when(&t["period_start"])) " to " (layout::when(&t["period_end"])) "): "
                            strong { (amount(&t["qualifying"])) } "."
                        }
                        @if t["next"].is_object() {
                            @let n = &t["next"];
                            p {
                                label for="tier-progress" { "Progress to " (text(&n["name"])) ": " (amount(&n["missing"])) " to go" }
                                " "
                                progress #tier-progress max=(int(&n["threshold"]).max(1)) value=(int(&t["qualifying"]).clamp(0, int(&n["threshold"]).max(1))) {
                                    (amount(&t["qualifying"])) " of " (amount(&n["threshold"]))
                                }
                            }
                        }
                        @if t["review"].is_object() {
                            p { "Next review " (layout::when(&t["review"]["at"]))
                                @if let Some(k) = t["review"]["keeps"].as_str() { ", keeping " (k) } "." }
                        }
                        @if !list(&t["history"]).is_empty() {
                            div.scroll {
                                table {
                                    caption { "Changes of level, newest first" }
                                    thead { tr {
                                        th scope="col" { "When" } th scope="col" { "From" } th scope="col" { "To" }
                                        th scope="col" { "Kind" } th scope="col" { "Reason" }
                                    } }
                                    tbody {
                                        @for h in list(&t["history"]) {
                                            tr {
                                                td { (layout::when(&h["at"])) }
                                                td { (or_dash(&h["from"])) }
                                                td { (or_dash(&h["to"])) }
                                                td { (text(&h["kind"])) }
                                                td { (text(&h["reason"])) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }))
        }
    }
}

fn history_section(
    id: &MemberId,
    activity: &Result<Value, Failure>,
    names: &HashMap<String, String>,
    paged: bool,
) -> Markup {
    html! {
        section #history {
            h2 { "History" }
            p.hint { "Every change to the member's points, newest first, with its reason." }
            (or_refusal("The history", activity, |a| html! {
                @if list(a).is_empty() {
                    p { "Nothing here." }
                } @else {
                    div.scroll {
                        table {
                            caption { "Points history" }
                            thead { tr {
                                th scope="col" { "When" } th scope="col" { "What" } th.num scope="col" { "Points" }
                                th scope="col" { "Partner" } th scope="col" { "Reason" } th scope="col" { "Transaction" }
                            } }
                            tbody {
                                @for e in list(a) {
                                    @let p = int(&e["points"]);
                                    tr {
                                        td { (layout::when(&e["occurred_at"])) }
                                        td { (text(&e["kind"]).replace('_', " ")) }
                                        td.num.pos[p > 0].neg[p < 0] { @if p > 0 { "+" } (points(p)) }
                                        td { @match e["partner_id"].as_str() { Some(pid) => { (name_of(names, pid)) } None => { "—" } } }
                                        td { (text(&e["description"])) }
                                        td { @match e["transaction_id"].as_str() { Some(t) => { code { (t) } } None => { "—" } } }
                                    }
                                }
                            }
                        }
                    }
                }
                p {
                    @if paged { a href={ "/console/members/" (id) "#history" } { "Newest" } " " }
                    @if let Some(next) = a["next_cursor"].as_str() {
                        a href={ "/console/members/" (id) "?cursor=" (url_escape(next)) "#history" } { "Older history" }
                    }
                }
            }))
        }
    }
}

fn wallets_section(wallets: &Result<Value, Failure>) -> Markup {
    html! {
        section {
            h2 { "Shared wallets" }
            (or_refusal("The wallets", wallets, |w| html! {
                @if list(w).is_empty() {
                    p { "The member belongs to no shared wallet." }
                } @else {
                    div.scroll {
                        table {
                            caption { "Wallets the member belongs to" }
                            thead { tr {
                                th scope="col" { "Wallet" } th scope="col" { "Kind" } th scope="col" { "Role" }
                                th scope="col" { "Earns into it" } th scope="col" { "May spend" } th scope="col" { "Default" }
                                th.num scope="col" { "Available" }
                            } }
                            tbody {
                                @for x in list(w) {
                                    tr {
                                        th scope="row" { (or_dash(&x["name"])) " " code { (text(&x["id"])) } }
                                        td { (text(&x["kind"])) }
                                        td { (or_dash(&x["role"])) }
                                        td { (yes_no(&x["earn_into"])) }
                                        td { (yes_no(&x["spend"])) }
                                        td { (yes_no(&x["default"])) }
                                        td.num { @if x["available"].is_i64() { (points(int(&x["available"]))) } @else { "—" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }))
        }
    }
}

fn redemptions_section(redemptions: &Result<Value, Failure>, names: &HashMap<String, String>) -> Markup {
    html! {
        section {
            h2 { "Redemptions" }
            (or_refusal("The redemptions", redemptions, |r| html! {
                @if list(r).is_empty() {
                    p { "No redemptions." }
                } @else {
                    div.scroll {
                        table {
                            caption { "The latest " (REDEMPTIONS) " redemptions, newest first" }
                            thead { tr {
                                th scope="col" { "When" } th scope="col" { "Reward" } th scope="col" { "Kind" }
                                th.num scope="col" { "Points" } th scope="col" { "Status" } th scope="col" { "At" }
                                th scope="col" { "Voucher ends" } th scope="col" { "Code ends in" }
                            } }
                            tbody {
                                @for x in list(r) {
                                    tr {
                                        td { (layout::when(&x["created_at"])) }
                                        th scope="row" { (text(&x["reward_name"])) }
                                        td { (text(&x["kind"]).replace('_', " ")) }
                                        td.num { (points(int(&x["points"]))) }
                                        td { (text(&x["status"])) }
                                        td {
                                            @match (x["partner_id"].as_str(), x["charity"].as_str()) {
                                                (Some(p), _) => { (name_of(names, p)) }
                                                (None, Some(c)) => { "Charity " (c) }
                                                _ => { "—" }
                                            }
                                        }
                                        td { @if x["expires_at"].is_string() { (layout::when(&x["expires_at"])) } @else { "—" } }
                                        td { (or_dash(&x["code_hint"])) }
                                    }
                                }
                            }
                        }
                    }
                }
            }))
        }
    }
}

fn memberships_section(memberships: &Result<Value, Failure>) -> Markup {
    html! {
        section {
            h2 { "Paid memberships" }
            (or_refusal("The memberships", memberships, |m| html! {
                @if list(m).is_empty() {
                    p { "No paid memberships." }
                } @else {
                    div.scroll {
                        table {
                            caption { "Memberships, oldest first" }
                            thead { tr {
                                th scope="col" { "Plan" } th scope="col" { "Status" } th scope="col" { "Since" }
                                th scope="col" { "Paid until" } th scope="col" { "Renews" } th scope="col" { "Cancelled" }
                                th.num scope="col" { "Payments" }
                            } }
                            tbody {
                                @for x in list(m) {
                                    tr {
                                        th scope="row" { (text(&x["plan"])) }
                                        td { (text(&x["status"]).replace('_', " ")) }
                                        td { (layout::when(&x["started_at"])) }
                                        td { @if x["paid_until"].is_string() { (layout::when(&x["paid_until"])) } @else { "—" } }
                                        td { @if x["renewal_at"].is_string() { (layout::when(&x["renewal_at"])) } @else { "—" } }
                                        td { @if x["cancelled_at"].is_string() { (layout::when(&x["cancelled_at"])) } @else { "—" } }
                                        td.num { (list(&x["payments"]).len()) }
                                    }
                                }
                            }
                        }
                    }
                }
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_typed_picks_the_lookup() {
        assert!(lookups("mem_01ABC", By::Any) == vec![By::Id]);
        assert!(lookups("jana@example.com", By::Any) == vec![By::Email]);
        assert!(lookups("+420601123456", By::Any) == vec![By::Phone]);
        assert!(lookups("4242424242", By::Any) == vec![By::Card, By::Phone]);
        assert!(lookups("4242424242", By::Phone) == vec![By::Phone]);
    }
}
