//! What the programme offers members, in the console: the rewards catalogue with its
//! stock and a form adding a reward (`/console/rewards`), and the tier ladder with the
//! paid membership plans and a form adding a plan (`/console/tiers`).

use super::{
    api, failed, list, minor_units, name_of, or_dash, page, partner_names, plausible_id, whole, writable, yes_no,
};
use crate::web::Web;
use crate::web::form::FormData;
use crate::web::layout::{self, int, points, text};
use crate::web::session::Staff;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::html;
use serde_json::{Map, Value, json};

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/console/rewards", get(rewards).post(create_reward))
        .route("/console/tiers", get(tiers))
        .route("/console/tiers/plans", post(create_plan))
}

const REWARDS: &str = "/console/rewards";
const TIERS: &str = "/console/tiers";

/// The kinds of reward, as the API names them, with their labels.
const KINDS: [(&str, &str); 6] = [
    ("voucher", "Voucher (money off at the partner)"),
    ("product", "Free product"),
    ("experience", "Experience (on a date, limited places)"),
    ("early_access", "Early access to a sale"),
    ("merchandise", "Merchandise"),
    ("donation", "Donation to a charity"),
];

async fn rewards(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.operator()?;
    render_rewards(&web, &staff, StatusCode::OK, None, None).await
}

async fn render_rewards(
    web: &Web,
    staff: &Staff,
    status: StatusCode,
    message: Option<&str>,
    typed: Option<&FormData>,
) -> Result<Response, Response> {
    let api = api(web, staff);
    let (rewards, partners) = tokio::join!(api.get("/v1/rewards"), api.get("/v1/partners"));
    let rewards = rewards.map_err(|f| failed(staff, REWARDS, &f))?;
    let names = partner_names(&partners);
    let value = |name: &str| typed.and_then(|f| f.get(name)).unwrap_or("").to_string();
    let chosen_kind = value("kind");
    let chosen_partner = value("partner_id");
    let mut partner_list: Vec<(&String, &String)> = names.iter().collect();
    partner_list.sort_by(|a, b| a.1.cmp(b.1));
    let main = html! {
        @if list(&rewards).is_empty() {
            p { "The catalogue is empty." }
        } @else {
            div.scroll {
                table {
                    caption { "The rewards catalogue" }
                    thead { tr {
                        th scope="col" { "Reward" } th scope="col" { "Kind" } th.num scope="col" { "Points" }
                        th scope="col" { "Fulfilled by" } th.num scope="col" { "Stock left" }
                        th scope="col" { "Open" } th scope="col" { "Who may redeem" } th scope="col" { "State" }
                    } }
                    tbody {
                        @for r in list(&rewards) {
                            tr {
                                th scope="row" { (text(&r["name"]["en"])) br; code { (text(&r["id"])) } }
                                td { (text(&r["kind"]).replace('_', " ")) }
                                td.num { (points(int(&r["cost"]))) }
                                td {
                                    @match (r["partner_id"].as_str(), r["charity"].as_str()) {
                                        (Some(p), _) => { (name_of(&names, p)) },
                                        (None, Some(c)) => { "Charity " (c) },
                                        _ => { "—" },
                                    }
                                }
                                td.num {
                                    @if r["stock_left"].is_i64() {
                                        @let left = int(&r["stock_left"]);
                                        @if left == 0 { strong { "sold out" } } @else { (points(left)) }
                                    } @else { "not counted" }
                                }
                                td {
                                    @if r["starts_at"].is_string() { "on " (layout::when(&r["starts_at"])) br; }
                                    @if r["available_from"].is_string() { "from " (layout::when(&r["available_from"])) br; }
                                    @if r["available_until"].is_string() { "until " (layout::when(&r["available_until"])) }
                                    @if !r["starts_at"].is_string() && !r["available_from"].is_string() && !r["available_until"].is_string() { "always" }
                                }
                                td { @match r["eligibility"].as_str() { Some(c) => { code { (c) } }, None => { "every member" }, } }
                                td { @if r["active"].as_bool() == Some(false) { "withdrawn" } @else { "offered" } }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Add a reward" }
            @if let Some(m) = message { (layout::notice("error", m)) }
            (writable(staff, "Adding a reward", html! {
                form.stack method="post" action=(REWARDS) {
                    (layout::csrf(&staff.csrf))
                    label for="rw-kind" { "Kind" }
                    select #rw-kind name="kind" {
                        @for (k, label) in KINDS {
                            option value=(k) selected[chosen_kind == k] { (label) }
                        }
                    }
                    label for="rw-name" { "Name (English)" }
                    input #rw-name type="text" name="name" maxlength="120" required value=(value("name"));
                    label for="rw-description" { "Description (English, optional)" }
                    textarea #rw-description name="description" rows="3" { (value("description")) }
                    label for="rw-cost" { "Points it costs" }
                    input #rw-cost type="number" min="1" name="cost" required value=(value("cost"));
                    label for="rw-partner" { "Partner that fulfils it" }
                    select #rw-partner name="partner_id" {
                        option value="" selected[chosen_partner.is_empty()] { "None (a donation)" }
                        @for (id, name) in &partner_list {
                            option value=(id) selected[chosen_partner == id.as_str()] { (name) }
                        }
                    }
                    label for="rw-charity" { "Charity (a donation only)" }
                    input #rw-charity type="text" name="charity" pattern="[a-z0-9_]{1,32}" value=(value("charity"))
                        aria-describedby="rw-charity-hint";
                    span.hint #rw-charity-hint { "A short code such as red_cross." }
                    label for="rw-stock" { "Units in stock (optional; empty: not counted)" }
                    input #rw-stock type="number" min="0" max="10000000" name="stock" value=(value("stock"));
                    label for="rw-starts" { "Date of an experience (UTC)" }
                    input #rw-starts type="datetime-local" name="starts_at" value=(value("starts_at"));
                    label for="rw-from" { "Open from (UTC, optional)" }
                    input #rw-from type="datetime-local" name="available_from" value=(value("available_from"));
                    label for="rw-until" { "Open until (UTC, optional)" }
                    input #rw-until type="datetime-local" name="available_until" value=(value("available_until"));
                    label for="rw-days" { "Days a voucher may be used (optional; 30 when empty)" }
                    input #rw-days type="number" min="1" max="365" name="voucher_days" value=(value("voucher_days"));
                    label for="rw-eligibility" { "Who may redeem it (optional CEL condition)" }
                    input #rw-eligibility type="text" name="eligibility" value=(value("eligibility"))
                        aria-describedby="rw-eligibility-hint";
                    span.hint #rw-eligibility-hint { "Such as member.tier == \"gold\"; empty: every member." }
                    label for="rw-forfeit" {
                        input #rw-forfeit type="checkbox" name="forfeit_on_expiry" value="yes" checked[typed.is_some_and(|f| f.get("forfeit_on_expiry").is_some())];
                        " An expired voucher forfeits its points (instead of giving them back)"
                    }
                    button type="submit" { "Add the reward" }
                }
            }))
        }
    };
    Ok(layout::respond(status, page(staff, REWARDS, "Rewards", main)))
}

/// A time from a `datetime-local` field, read as UTC, as RFC 3339; other text as typed
/// (the API says what is wrong with it).
fn utc(typed: &str) -> String {
    let b = typed.as_bytes();
    let local = |len: usize| b.len() == len && b.get(10) == Some(&b'T') && !typed.contains(['Z', '+']);
    if local(16) {
        format!("{typed}:00Z")
    } else if local(19) {
        format!("{typed}Z")
    } else {
        typed.to_string()
    }
}

async fn create_reward(State(web): State<Web>, staff: Staff, form: FormData) -> Result<Response, Response> {
    staff.operator()?;
    let body = match reward_body(&form) {
        Ok(b) => b,
        Err(why) => {
            return render_rewards(&web, &staff, StatusCode::UNPROCESSABLE_ENTITY, Some(&why), Some(&form)).await;
        }
    };
    match api(&web, &staff).post("/v1/rewards", &body).await {
        Ok(_) => Ok(layout::see_other(REWARDS, vec![])),
        Err(f) => render_rewards(&web, &staff, f.page_status(), Some(&f.message), Some(&form)).await,
    }
}

/// `POST /v1/rewards`'s body from the form, or why it cannot be made.
fn reward_body(form: &FormData) -> Result<Value, String> {
    let kind = form
        .get("kind")
        .filter(|k| KINDS.iter().any(|(known, _)| known == k))
        .ok_or("Choose the kind of reward.")?;
    let cost = whole("Points it costs", form.get("cost"), 1..=1_000_000_000_000)?.ok_or("Give the points it costs.")?;
    let mut b = Map::new();
    b.insert("kind".into(), json!(kind));
    b.insert("name".into(), json!({ "en": form.text("name") }));
    if let Some(d) = form.get("description") {
        b.insert("description".into(), json!({ "en": d }));
    }
    b.insert("cost".into(), json!(cost));
    if let Some(p) = form.get("partner_id") {
        if !plausible_id(p) {
            return Err("Choose the partner from the list.".into());
        }
        b.insert("partner_id".into(), json!(p));
    }
    if let Some(c) = form.get("charity") {
        b.insert("charity".into(), json!(c));
    }
    if let Some(s) = whole("Units in stock", form.get("stock"), 0..=10_000_000)? {
        b.insert("stock".into(), json!(s));
    }
    for field in ["starts_at", "available_from", "available_until"] {
        if let Some(t) = form.get(field) {
            b.insert(field.into(), json!(utc(t)));
        }
    }
    if let Some(d) = whole("Days a voucher may be used", form.get("voucher_days"), 1..=365)? {
        b.insert("voucher_days".into(), json!(d));
    }
    if let Some(e) = form.get("eligibility") {
        b.insert("eligibility".into(), json!(e));
    }
    b.insert(
        "forfeit_on_expiry".into(),
        json!(form.get("forfeit_on_expiry").is_some()),
    );
    Ok(Value::Object(b))
}

async fn tiers(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.operator()?;
    render_tiers(&web, &staff, StatusCode::OK, None, None).await
}

async fn render_tiers(
    web: &Web,
    staff: &Staff,
    status: StatusCode,
    message: Option<&str>,
    typed: Option<&FormData>,
) -> Result<Response, Response> {
    let api = api(web, staff);
    let (ladder, plans) = tokio::join!(api.get("/v1/tiers"), api.get("/v1/membership-plans"));
    let ladder = ladder.map_err(|f| failed(staff, TIERS, &f))?;
    let plans = plans.map_err(|f| failed(staff, TIERS, &f))?;
    let currency = web.app.program().currency.code();
    let value = |name: &str| typed.and_then(|f| f.get(name)).unwrap_or("").to_string();
    let or = |name: &str, default: &str| typed.and_then(|f| f.get(name)).unwrap_or(default).to_string();
    let spend = text(&ladder["basis"]) == "qualifying_spend";
    let levels = list(&ladder["levels"]);
    let main = html! {
        section {
            h2 { "The tier ladder" }
            @if levels.is_empty() {
                p { "The programme has no tiers." }
            } @else {
                p {
                    "Members qualify by "
                    @if spend { "what they spend" } @else { "the points they earn at partners" }
                    " over "
                    @if text(&ladder["period"]) == "calendar_year" { "the calendar year" } @else { "their membership year" }
                    ", reviewed " (int(&ladder["grace_days"])) " days after it ends"
                    @if text(&ladder["scope"]) == "household" { ", together with their household" }
                    @if ladder["events_qualify"].as_bool() == Some(true) { "; engagement events count too" }
                    "."
                }
                div.scroll {
                    table {
                        caption { "Levels, lowest first" }
                        thead { tr {
                            th scope="col" { "Level" } th scope="col" { "Code" }
                            th.num scope="col" { @if spend { "Spend to qualify" } @else { "Points to qualify" } }
                            th.num scope="col" { "Earns ×" } th scope="col" { "Perks" }
                        } }
                        tbody {
                            @for l in levels {
                                tr {
                                    th scope="row" { (text(&l["name"])) }
                                    td { code { (text(&l["code"])) } }
                                    td.num {
                                        @if spend { (layout::in_currency(int(&l["threshold"]), currency)) }
                                        @else { (points(int(&l["threshold"]))) }
                                    }
                                    td.num { (text(&l["multiplier"])) }
                                    td {
                                        @let perks: Vec<&str> = layout::rows(&l["perks"]).iter().map(text).collect();
                                        @if perks.is_empty() { "—" } @else { (perks.join("; ")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.hint { "The ladder is replaced as a whole with PUT /v1/tiers (see docs/API.md)." }
        }
        section #plans {
            h2 { "Paid membership plans" }
            @if list(&plans).is_empty() {
                p { "No plans on sale." }
            } @else {
                div.scroll {
                    table {
                        caption { "Plans on sale" }
                        thead { tr {
                            th scope="col" { "Plan" } th scope="col" { "Code" } th.num scope="col" { "Price" }
                            th scope="col" { "Every" } th.num scope="col" { "Earns ×" } th.num scope="col" { "Bonus points a period" }
                            th scope="col" { "Early access" } th scope="col" { "Free reward" } th.num scope="col" { "Free days" }
                        } }
                        tbody {
                            @for p in list(&plans) {
                                tr {
                                    th scope="row" { (text(&p["name"])) }
                                    td { code { (text(&p["code"])) } }
                                    td.num { (layout::money(&p["price"])) }
                                    td { (text(&p["interval"])) }
                                    td.num { (text(&p["benefits"]["earn_multiplier"])) }
                                    td.num { (points(int(&p["benefits"]["bonus_points"]))) }
                                    td { (yes_no(&p["benefits"]["early_access"])) }
                                    td { (yes_no(&p["benefits"]["free_reward"])) }
                                    td.num { (or_dash(&p["trial_days"])) }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Add a plan" }
            @if let Some(m) = message { (layout::notice("error", m)) }
            (writable(staff, "Adding a plan", html! {
                form.stack method="post" action="/console/tiers/plans" {
                    (layout::csrf(&staff.csrf))
                    label for="pl-code" { "Code (what rules read as member.plan)" }
                    input #pl-code type="text" name="code" pattern="[a-z0-9_]{1,32}" required value=(value("code"))
                        aria-describedby="pl-code-hint";
                    span.hint #pl-code-hint { "Small letters, digits and _, such as plus." }
                    label for="pl-name" { "Name" }
                    input #pl-name type="text" name="name" maxlength="80" required value=(value("name"));
                    label for="pl-price" { "Price of one period" }
                    input #pl-price type="text" inputmode="decimal" name="price" required value=(value("price"))
                        aria-describedby="pl-price-hint";
                    span.hint #pl-price-hint { "In whole units, such as 4.99." }
                    label for="pl-currency" { "Currency" }
                    input #pl-currency type="text" name="currency" maxlength="3" required value=(or("currency", currency));
                    label for="pl-interval" { "Paid every" }
                    select #pl-interval name="interval" {
                        option value="month" selected[value("interval") != "year"] { "Month" }
                        option value="year" selected[value("interval") == "year"] { "Year" }
                    }
                    label for="pl-multiplier" { "Earns × (1 to 10, at most two decimals)" }
                    input #pl-multiplier type="text" inputmode="decimal" name="earn_multiplier" required value=(or("earn_multiplier", "1"));
                    label for="pl-bonus" { "Bonus points with each paid period" }
                    input #pl-bonus type="number" min="0" max="1000000" name="bonus_points" value=(or("bonus_points", "0"));
                    label for="pl-trial" { "Free days before the first payment" }
                    input #pl-trial type="number" min="0" max="365" name="trial_days" value=(or("trial_days", "0"));
                    label for="pl-early" {
                        input #pl-early type="checkbox" name="early_access" value="yes" checked[typed.is_some_and(|f| f.get("early_access").is_some())];
                        " Members see rewards before everyone else"
                    }
                    label for="pl-free" {
                        input #pl-free type="checkbox" name="free_reward" value="yes" checked[typed.is_some_and(|f| f.get("free_reward").is_some())];
                        " One reward free each paid period"
                    }
                    button type="submit" { "Add the plan" }
                }
            }))
        }
    };
    Ok(layout::respond(status, page(staff, TIERS, "Tiers and plans", main)))
}

async fn create_plan(State(web): State<Web>, staff: Staff, form: FormData) -> Result<Response, Response> {
    staff.operator()?;
    let body = match plan_body(&form) {
        Ok(b) => b,
        Err(why) => return render_tiers(&web, &staff, StatusCode::UNPROCESSABLE_ENTITY, Some(&why), Some(&form)).await,
    };
    match api(&web, &staff).post("/v1/membership-plans", &body).await {
        Ok(_) => Ok(layout::see_other("/console/tiers#plans", vec![])),
        Err(f) => render_tiers(&web, &staff, f.page_status(), Some(&f.message), Some(&form)).await,
    }
}

/// `POST /v1/membership-plans`'s body from the form, or why it cannot be made.
fn plan_body(form: &FormData) -> Result<Value, String> {
    let currency = form.text("currency").to_uppercase();
    let price = minor_units(form.get("price").unwrap_or(""), &currency).map_err(|why| format!("Price: {why}"))?;
    let interval = match form.get("interval") {
        Some("year") => "year",
        _ => "month",
    };
    let bonus = whole("Bonus points", form.get("bonus_points"), 0..=1_000_000)?.unwrap_or(0);
    let trial = whole("Free days", form.get("trial_days"), 0..=365)?.unwrap_or(0);
    Ok(json!({
        "code": form.text("code"),
        "name": form.text("name"),
        "price": { "amount": price, "currency": currency },
        "interval": interval,
        "benefits": {
            "earn_multiplier": form.get("earn_multiplier").unwrap_or("1"),
            "bonus_points": bonus,
            "early_access": form.get("early_access").is_some(),
            "free_reward": form.get("free_reward").is_some(),
        },
        "trial_days": trial,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_are_read_as_utc() {
        assert_eq!(utc("2026-12-03T18:00"), "2026-12-03T18:00:00Z");
        assert_eq!(utc("2026-12-03T18:00:30"), "2026-12-03T18:00:30Z");
        assert_eq!(utc("2026-12-03T18:00:00+01:00"), "2026-12-03T18:00:00+01:00");
    }

    #[test]
    fn a_plan_form_becomes_the_api_body() {
        let form = FormData::parse(
            b"code=plus&name=Plus&price=4.99&currency=eur&interval=year&earn_multiplier=1.5&early_access=yes",
        );
        let b = plan_body(&form).unwrap();
        assert_eq!(b["price"]["amount"], 499);
        assert_eq!(b["price"]["currency"], "EUR");
        assert_eq!(b["interval"], "year");
        assert_eq!(b["benefits"]["early_access"], true);
        assert_eq!(b["benefits"]["free_reward"], false);
        assert_eq!(b["trial_days"], 0);
    }
}
