//! Earning rules in the console (`/console/rules`): the rules at their current version,
//! a form that saves a new one (its JSON, as `docs/RULES.md` describes it), and the "try
//! a rule on a basket" box (`/console/rules/try`), which values a sample basket with
//! `POST /v1/earning-rules/test` and shows the breakdown; nothing is written by a try.

use super::{
    api, failed, list, minor_units, name_of, page, parse_object, partner_names, plausible_id, whole, writable,
};
use crate::web::Web;
use crate::web::api::Failure;
use crate::web::form::FormData;
use crate::web::layout::{self, int, points, text};
use crate::web::session::Staff;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/console/rules", get(rules).post(create_rule))
        .route("/console/rules/try", post(try_rule))
}

const SECTION: &str = "/console/rules";

/// The rule the forms start from.
const EXAMPLE_RULE: &str = r#"{
  "name": "Double points on Saturdays",
  "condition": "local.weekday == \"saturday\"",
  "effect": { "kind": "multiplier", "factor": "2" },
  "priority": 10,
  "stacking": "stack"
}"#;

/// The basket the try box starts from: sku, category, quantity, unit price.
const EXAMPLE_LINES: &str = "LIP-01, cosmetics, 2, 12.50\nSOAP-7, , 1, 3.20";

/// The longest basket the try box reads (the API takes at most 500 lines).
const MAX_LINES: usize = 500;

/// What the page shows besides the rules: a refused new rule, a try and its outcome.
#[derive(Default)]
struct Shown<'a> {
    /// The new rule as typed, and why it was refused.
    refused: Option<(&'a str, String)>,
    /// The try box as filled in, and the API's answer (or why it was not asked).
    trial: Option<(&'a FormData, Result<Value, String>)>,
}

async fn rules(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.operator()?;
    Ok(layout::ok(render(&web, &staff, Shown::default()).await?))
}

async fn render(web: &Web, staff: &Staff, shown: Shown<'_>) -> Result<Markup, Response> {
    let api = api(web, staff);
    let (rules, partners) = tokio::join!(api.get("/v1/earning-rules"), api.get("/v1/partners"));
    let rules = rules.map_err(|f| failed(staff, SECTION, &f))?;
    let names = partner_names(&partners);
    let main = html! {
        p {
            "Rules add points on top of base earning (points per unit of programme currency spent), "
            "or exclude lines from earning. Each saved change is a new version; past sales keep the "
            "version that applied. " a href="#try-box" { "Try a rule on a basket" } " before saving it."
        }
        (rules_table(list(&rules), &names))
        section {
            h2 { "Add a rule" }
            (writable(staff, "Adding a rule", create_form(staff, shown.refused.as_ref())))
        }
        (try_section(web, staff, list(&rules), &partners, shown.trial.as_ref()))
    };
    Ok(page(staff, SECTION, "Earning rules", main))
}

fn rules_table(rules: &[Value], names: &HashMap<String, String>) -> Markup {
    html! {
        @if rules.is_empty() {
            p { "No rules yet: every sale earns its base points only." }
        } @else {
            div.scroll {
                table {
                    caption { "Rules at their current version, in the order they are saved" }
                    thead { tr {
                        th scope="col" { "Rule" }
                        th scope="col" { "For" }
                        th scope="col" { "When" }
                        th scope="col" { "Gives" }
                        th scope="col" { "Order" }
                        th scope="col" { "Limits" }
                        th scope="col" { "Paid by" }
                        th scope="col" { "State" }
                    } }
                    tbody {
                        @for r in rules {
                            tr {
                                th scope="row" {
                                    (text(&r["name"])) br;
                                    code { (text(&r["id"])) } " v" (int(&r["version"]))
                                }
                                td {
                                    @match r["partner_id"].as_str() {
                                        Some(p) => { (name_of(names, p)) },
                                        None => { "The whole programme" },
                                    }
                                    @if !layout::rows(&r["location_ids"]).is_empty() {
                                        br; (layout::rows(&r["location_ids"]).len()) " locations only"
                                    }
                                }
                                td {
                                    @if text(&r["applies_to"]) == "event" {
                                        "Event " code { (text(&r["event_type"])) }
                                    } @else { "Sales" }
                                    @if let Some(c) = r["condition"].as_str() { br; "if " code { (c) } }
                                    @if let Some(l) = r["lines"].as_str() { br; "lines " code { (l) } }
                                    @if r["valid_from"].is_string() || r["valid_until"].is_string() {
                                        br; (window(r))
                                    }
                                }
                                td { (effect(&r["effect"])) }
                                td { "priority " (int(&r["priority"])) ", " (text(&r["stacking"]).replace('_', " ")) }
                                td {
                                    @for c in layout::rows(&r["caps"]) {
                                        (points(int(&c["points"]))) " a member per " (text(&c["period"])) br;
                                    }
                                    @if r["budget"].is_i64() { "budget " (points(int(&r["budget"]))) }
                                    @if layout::rows(&r["caps"]).is_empty() && !r["budget"].is_i64() { "—" }
                                }
                                td { (funding(r)) }
                                td { @if r["active"].as_bool() == Some(false) { "paused" } @else { "active" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A rule's effect in words.
fn effect(e: &Value) -> String {
    let s = |k: &str| or_number(&e[k]);
    match text(&e["kind"]) {
        "per_amount" => format!("{} points per unit spent", s("points")),
        "multiplier" => format!("base points × {}", s("factor")),
        "fixed" => format!("{} points", s("points")),
        "per_unit" => match e["max_units"].as_i64() {
            Some(m) => format!("{} points per unit bought, at most {m} units", s("points")),
            None => format!("{} points per unit bought", s("points")),
        },
        "exclude" => "the lines earn nothing".into(),
        other => other.to_string(),
    }
}

fn or_number(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "?".into(),
    }
}

/// Who pays for a rule's points.
fn funding(r: &Value) -> String {
    match r["funding"]["operator_percent"].as_i64() {
        Some(0) => "the partner".into(),
        Some(100) => "the operator".into(),
        Some(p) => format!("operator {p} %, partner {} %", 100 - p),
        None => "—".into(),
    }
}

fn window(r: &Value) -> String {
    match (r["valid_from"].as_str(), r["valid_until"].as_str()) {
        (Some(_), Some(_)) => format!(
            "from {} until {}",
            layout::when(&r["valid_from"]),
            layout::when(&r["valid_until"])
        ),
        (Some(_), None) => format!("from {}", layout::when(&r["valid_from"])),
        (None, Some(_)) => format!("until {}", layout::when(&r["valid_until"])),
        (None, None) => String::new(),
    }
}

fn create_form(staff: &Staff, refused: Option<&(&str, String)>) -> Markup {
    html! {
        @if let Some((_, why)) = refused { (layout::notice("error", why)) }
        form.stack method="post" action="/console/rules" {
            (layout::csrf(&staff.csrf))
            label for="rule-json" { "The rule, as JSON" }
            textarea #rule-json name="rule" rows="12" required aria-describedby="rule-json-hint" {
                (refused.map(|(typed, _)| *typed).unwrap_or(EXAMPLE_RULE))
            }
            p.hint #rule-json-hint {
                "Fields: name, partner_id (absent: the whole programme), location_ids, applies_to "
                "(purchase or event), event_type, valid_from, valid_until, condition and lines (CEL), "
                "effect (kind per_amount, multiplier, fixed, per_unit or exclude), priority, stacking "
                "(stack, best_of or stop), caps, budget, active, funding. The API checks the CEL and "
                "says where a fault is."
            }
            button type="submit" { "Save the rule" }
        }
    }
}

async fn create_rule(State(web): State<Web>, staff: Staff, form: FormData) -> Result<Response, Response> {
    staff.operator()?;
    let typed = form.get("rule").unwrap_or("");
    let rule = match parse_object("The rule", typed) {
        Ok(r) => r,
        Err(why) => return rule_refused(&web, &staff, typed, StatusCode::UNPROCESSABLE_ENTITY, why).await,
    };
    match api(&web, &staff).post("/v1/earning-rules", &rule).await {
        Ok(_) => Ok(layout::see_other(SECTION, vec![])),
        Err(f) => rule_refused(&web, &staff, typed, f.page_status(), f.message).await,
    }
}

/// The page again, with the new rule as typed and why it was refused.
async fn rule_refused(
    web: &Web,
    staff: &Staff,
    typed: &str,
    status: StatusCode,
    why: String,
) -> Result<Response, Response> {
    let shown = Shown {
        refused: Some((typed, why)),
        ..Shown::default()
    };
    Ok(layout::respond(status, render(web, staff, shown).await?))
}

fn try_section(
    web: &Web,
    staff: &Staff,
    rules: &[Value],
    partners: &Result<Value, Failure>,
    trial: Option<&(&FormData, Result<Value, String>)>,
) -> Markup {
    let typed = |name: &str| trial.and_then(|(f, _)| f.get(name)).map(str::to_string);
    let chosen_rule = typed("rule_id").unwrap_or_default();
    let chosen_partner = typed("partner_id").unwrap_or_default();
    let partners: &[Value] = partners.as_ref().map(list).unwrap_or_default();
    html! {
        section #try-box {
            h2 { "Try a rule on a basket" }
            p.hint { "A sample sale is valued as a till's would be, with the rule chosen and the programme's exclusions; caps and budgets are not applied and nothing is saved." }
            @if let Some((_, outcome)) = trial { (outcome_view(outcome)) }
            // A try changes nothing: analysts may try rules too.
            form.stack method="post" action="/console/rules/try" {
                    (layout::csrf(&staff.csrf))
                    label for="try-rule-id" { "Rule to try" }
                    select #try-rule-id name="rule_id" {
                        option value="written" selected[chosen_rule.is_empty() || chosen_rule == "written"] { "The rule written below (not saved)" }
                        option value="active" selected[chosen_rule == "active"] { "Every active rule" }
                        @for r in rules {
                            @let id = text(&r["id"]);
                            option value=(id) selected[chosen_rule == id] { "Saved: " (text(&r["name"])) }
                        }
                    }
                    label for="try-rule" { "The rule written out (JSON)" }
                    textarea #try-rule name="try_rule" rows="8" {
                        (typed("try_rule").unwrap_or_else(|| EXAMPLE_RULE.to_string()))
                    }
                    label for="try-partner" { "Partner where the sale happens" }
                    select #try-partner name="partner_id" required {
                        @for p in partners {
                            @let id = text(&p["id"]);
                            option value=(id) selected[chosen_partner == id] { (text(&p["name"])) " (" (text(&p["currency"])) ")" }
                        }
                    }
                    label for="try-currency" { "Currency of the basket" }
                    input #try-currency type="text" name="currency" maxlength="3" required
                        value=(typed("currency").unwrap_or_else(|| web.app.program().currency.code().to_string()));
                    label for="try-lines" { "Lines: SKU, category, quantity, unit price (one a line)" }
                    textarea #try-lines name="lines" rows="5" aria-describedby="try-lines-hint" {
                        (typed("lines").unwrap_or_else(|| EXAMPLE_LINES.to_string()))
                    }
                    span.hint #try-lines-hint { "Leave the category empty when the till sends none. Prices in whole units, such as 12.50." }
                    label for="try-total" { "Total (optional; the lines' sum when empty)" }
                    input #try-total type="text" inputmode="decimal" name="total" value=(typed("total").unwrap_or_default());
                    label for="try-tier" { "Member's tier (optional)" }
                    input #try-tier type="text" name="tier" value=(typed("tier").unwrap_or_default());
                    label for="try-segments" { "Member's segments (optional, separated by commas)" }
                    input #try-segments type="text" name="segments" value=(typed("segments").unwrap_or_default());
                    label for="try-visits" { "Earlier purchases at this partner (0: a first visit)" }
                    input #try-visits type="number" min="0" name="visits" value=(typed("visits").unwrap_or_else(|| "3".into()));
                    button type="submit" { "Try it on this basket" }
                }
        }
    }
}

fn outcome_view(outcome: &Result<Value, String>) -> Markup {
    match outcome {
        Err(why) => layout::notice("error", why),
        Ok(r) => html! {
            div.card role="status" {
                p { "This basket earns " strong { (points(int(&r["points_earned"]))) " points" } "." }
                @if !layout::rows(&r["breakdown"]).is_empty() {
                    div.scroll {
                        table {
                            caption { "Why: one line per reason" }
                            thead { tr {
                                th scope="col" { "Reason" } th.num scope="col" { "Points" } th scope="col" { "Rule" }
                                th.num scope="col" { "Paid by the partner" } th.num scope="col" { "Paid by the operator" }
                            } }
                            tbody {
                                @for b in layout::rows(&r["breakdown"]) {
                                    tr {
                                        th scope="row" { (text(&b["reason"])) }
                                        td.num { (points(int(&b["points"]))) }
                                        td { code { (text(&b["rule"])) } @if b["version"].is_i64() { " v" (int(&b["version"])) } }
                                        td.num { @if b["funding"].is_object() { (points(int(&b["funding"]["partner"]))) } @else { "—" } }
                                        td.num { @if b["funding"].is_object() { (points(int(&b["funding"]["operator"]))) } @else { "—" } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !layout::rows(&r["failures"]).is_empty() {
                    p { "Rules that failed on this sample:" }
                    ul { @for f in layout::rows(&r["failures"]) { li { (text(f)) } } }
                }
                p.hint { (text(&r["note"])) }
            }
        },
    }
}

async fn try_rule(State(web): State<Web>, staff: Staff, form: FormData) -> Result<Response, Response> {
    staff.operator()?;
    let (status, outcome) = match trial_body(&web, &form) {
        Err(why) => (StatusCode::UNPROCESSABLE_ENTITY, Err(why)),
        Ok(body) => match api(&web, &staff).ask("/v1/earning-rules/test", &body).await {
            Ok(v) => (StatusCode::OK, Ok(v)),
            Err(f) => (f.page_status(), Err(f.message)),
        },
    };
    let shown = Shown {
        trial: Some((&form, outcome)),
        ..Shown::default()
    };
    Ok(layout::respond(status, render(&web, &staff, shown).await?))
}

/// The body of `POST /v1/earning-rules/test` from the try box, or why it cannot be made.
fn trial_body(web: &Web, form: &FormData) -> Result<Value, String> {
    let mut body = Map::new();
    match form.get("rule_id").unwrap_or("written") {
        "written" => {
            let rule = parse_object("The rule written out", form.get("try_rule").unwrap_or(""))?;
            body.insert("rule".into(), rule);
        }
        "active" => {}
        id if plausible_id(id) => {
            body.insert("rule_id".into(), json!(id));
        }
        _ => return Err("Choose a rule to try.".into()),
    }
    let partner = form
        .get("partner_id")
        .filter(|p| plausible_id(p))
        .ok_or("Choose the partner where the sale happens.")?;
    body.insert("partner_id".into(), json!(partner));
    let currency = form
        .get("currency")
        .map(str::to_uppercase)
        .unwrap_or_else(|| web.app.program().currency.code().to_string());
    let mut lines = Vec::new();
    let mut sum: i64 = 0;
    for (n, raw) in form.get("lines").unwrap_or("").lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        if lines.len() == MAX_LINES {
            return Err(format!("A basket has at most {MAX_LINES} lines."));
        }
        let line = basket_line(raw, &currency).map_err(|why| format!("Line {}: {why}", n + 1))?;
        sum = sum.saturating_add(line.1);
        lines.push(line.0);
    }
    let total = match form.get("total") {
        Some(t) => minor_units(t, &currency).map_err(|why| format!("Total: {why}"))?,
        None if !lines.is_empty() => sum,
        None => return Err("Give the basket some lines, or a total.".into()),
    };
    body.insert(
        "basket".into(),
        json!({
            "external_id": "console-try",
            "member": { "id": "mem_sample" },
            "total": { "amount": total, "currency": currency },
            "lines": lines,
        }),
    );
    let mut member = Map::new();
    if let Some(t) = form.get("tier") {
        member.insert("tier".into(), json!(t));
    }
    let segments: Vec<&str> = form
        .get("segments")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !segments.is_empty() {
        member.insert("segments".into(), json!(segments));
    }
    if let Some(v) = whole("Earlier purchases", form.get("visits"), 0..=1_000_000)? {
        member.insert("visits".into(), json!(v));
    }
    body.insert("member".into(), Value::Object(member));
    Ok(Value::Object(body))
}

/// One typed line ("SKU, category, quantity, unit price") as the API's line, with its
/// amount in minor units.
fn basket_line(raw: &str, currency: &str) -> Result<(Value, i64), String> {
    let parts: Vec<&str> = raw.split([',', ';', '\t']).map(str::trim).collect();
    let [sku, category, quantity, price] = parts.as_slice() else {
        return Err("write SKU, category, quantity and unit price, separated by commas.".into());
    };
    if sku.is_empty() {
        return Err("the SKU is missing.".into());
    }
    let quantity: i64 = quantity
        .parse()
        .ok()
        .filter(|q| (1..=1_000_000).contains(q))
        .ok_or("the quantity must be a whole number from 1 to 1,000,000.")?;
    let unit = minor_units(price, currency)?;
    let category = if category.is_empty() {
        Value::Null
    } else {
        json!(category)
    };
    let line = json!({
        "sku": sku,
        "category": category,
        "quantity": quantity,
        "unit_price": { "amount": unit, "currency": currency },
    });
    Ok((line, unit.saturating_mul(quantity)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_become_api_lines() {
        let (line, amount) = basket_line("LIP-01, cosmetics, 2, 12.50", "EUR").unwrap();
        assert_eq!(amount, 2500);
        assert_eq!(line["unit_price"]["amount"], 1250);
        assert_eq!(line["category"], "cosmetics");
        let (line, _) = basket_line("SOAP-7, , 1, 3.20", "EUR").unwrap();
        assert!(line["category"].is_null());
        assert!(basket_line("SOAP-7, 1, 3.20", "EUR").is_err());
        assert!(basket_line("SOAP-7, x, 0, 3.20", "EUR").is_err());
    }

    #[test]
    fn the_rule_must_be_a_json_object() {
        assert!(parse_object("The rule", EXAMPLE_RULE).is_ok());
        assert!(parse_object("The rule", "[1]").is_err());
        assert!(parse_object("The rule", "{").unwrap_err().contains("line 1"));
    }

    #[test]
    fn effects_read_as_words() {
        assert_eq!(effect(&json!({"kind": "multiplier", "factor": "2"})), "base points × 2");
        assert_eq!(effect(&json!({"kind": "fixed", "points": 50})), "50 points");
    }
}
