//! Settings in the console (`/console/settings`): a form for each change the API offers
//! that has no page of its own: the programme's terms, the FX rates, the tier ladder,
//! settlement prices, signing up a member, event types, challenges, exchange partners, a
//! reward or an earning rule replaced whole, and an expiry run. Each form's body is the
//! API's own JSON, typed in a textarea that starts from the current value where the API
//! reads one, else from the example docs/API.md gives; it is sent through the API as the
//! signed-in operator (`POST /console/settings/{form}`), and the page comes back with the
//! API's answer or its refusal. The forms are one table, [`FORMS`]: the page and the
//! handler are written once for all of them.

use super::{api, list, name_of, not_found, page, partner_names, plausible_id, writable};
use crate::web::Web;
use crate::web::api::Failure;
use crate::web::form::FormData;
use crate::web::layout::{self, int, points, text};
use crate::web::session::{Staff, path_segment};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/console/settings", get(settings))
        .route("/console/settings/{form}", get(back).post(submit))
}

const SECTION: &str = "/console/settings";

/// Partners' names by id.
type Names = HashMap<String, String>;

/// The HTTP method of a form's API call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Post,
    Put,
    Patch,
}

impl Verb {
    fn method(self) -> Method {
        match self {
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Patch => Method::PATCH,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
        }
    }
}

/// What a form's textarea starts with.
#[derive(Clone, Copy)]
enum Start {
    /// The documented example.
    Example,
    /// The current value: the form's `read` shaped into the body the change takes (the
    /// example when the read failed or the shape has nothing to offer).
    Current(fn(&Value) -> Option<Value>),
    /// No body: the form is a button, and sends `{}`.
    Button,
}

/// The saved item an update form changes, chosen from the list its `read` answers.
#[derive(Clone, Copy)]
struct Pick {
    /// The item, in words ("reward").
    what: &'static str,
    /// An item as an option of the select.
    label: fn(&Value) -> String,
    /// An item as the body that would save it unchanged.
    body: fn(&Value) -> Value,
}

/// One form of the page.
struct Form {
    /// The form's address (`/console/settings/{key}`) and the id of its section.
    key: &'static str,
    /// The section's heading.
    title: &'static str,
    /// What the change does, in a sentence or two.
    about: &'static str,
    /// The body's fields, under the textarea.
    fields: &'static str,
    verb: Verb,
    /// The API path; `{id}` stands for the chosen item (update forms only).
    path: &'static str,
    /// A body that shows the shape (valid JSON, an object).
    example: &'static str,
    /// The API read that shows the current state (one of [`READS`]).
    read: Option<&'static str>,
    start: Start,
    /// How the current state is shown (lists); a `Start::Current` form shows its read
    /// as JSON.
    show: Option<fn(&Value, &Names) -> Markup>,
    pick: Option<Pick>,
    button: &'static str,
    /// Said when the API took the change.
    done: &'static str,
    /// Where the new item's page is, by its id.
    opens: Option<&'static str>,
}

/// Everything the page reads, all at once: each form's `read`, and the partners (for
/// their names).
const READS: [&str; 10] = [
    "/v1/program",
    "/v1/fx-rates",
    "/v1/tiers",
    "/v1/settlement/prices",
    "/v1/event-types",
    "/v1/challenges",
    "/v1/exchange-partners",
    "/v1/rewards",
    "/v1/earning-rules",
    "/v1/partners",
];

/// The forms, in the page's order.
const FORMS: &[Form] = &[
    Form {
        key: "program",
        title: "Programme settings",
        about: "The programme's name, what a point is worth, when earned points expire, who may send points to whom, and referrals.",
        fields: "Every field is optional: one left out keeps its value. name (1–100 characters); point_value (minor units of the \
                 programme currency one point is worth, 1 to 1,000,000; every redemption from then on); expiry_months (1 to 240; \
                 points earned from then on); transfers (the whole policy: enabled, min_points, max_per_day, max_per_month, \
                 min_membership_days, min_purchases); referral_signup_url (https://…, null removes it); referrals (min_purchase, \
                 window_days, max_per_month; null: referrals never convert). The currency cannot change.",
        verb: Verb::Patch,
        path: "/v1/program",
        example: r#"{
  "name": "Tally",
  "point_value": 1,
  "expiry_months": 24,
  "transfers": {
    "enabled": false,
    "min_points": 1,
    "max_per_day": 1000,
    "max_per_month": 5000,
    "min_membership_days": 30,
    "min_purchases": 1
  }
}"#,
        read: Some("/v1/program"),
        start: Start::Current(program_patch),
        show: None,
        pick: None,
        button: "Save the programme settings",
        done: "The programme settings are saved.",
        opens: None,
    },
    Form {
        key: "fx-rates",
        title: "FX rates",
        about: "Units of each currency per one unit of programme currency: what a sale in another currency is converted at.",
        fields: "rates: 1 to 200 of them, each a decimal string from 0.000001 to 1,000,000,000, not the programme currency. \
                 Currencies not named keep their rate; none can be removed. Nothing is saved unless every rate is valid.",
        verb: Verb::Put,
        path: "/v1/fx-rates",
        example: r#"{
  "rates": {
    "CZK": "25.2",
    "USD": "1.08"
  }
}"#,
        read: Some("/v1/fx-rates"),
        start: Start::Current(fx_body),
        show: None,
        pick: None,
        button: "Save the FX rates",
        done: "The FX rates are saved.",
        opens: None,
    },
    Form {
        key: "tiers",
        title: "Tier ladder",
        about: "The ladder, replaced whole. Members keep their level until the next review or sale measures them against the new one.",
        fields: "basis (qualifying_points or qualifying_spend), period (calendar_year or rolling_12_months), grace_days (0 to 365), \
                 levels (at most 12, lowest first: code of a–z, 0–9 and _, name, threshold rising from level to level, multiplier \
                 \"1\" to \"10\" with at most two decimals, at most 10 perks), scope (member or household), events_qualify \
                 (qualifying_points only). No levels: tiers are off.",
        verb: Verb::Put,
        path: "/v1/tiers",
        example: r#"{
  "basis": "qualifying_points",
  "period": "calendar_year",
  "grace_days": 30,
  "levels": [
    { "code": "silver", "name": "Silver", "threshold": 1000, "multiplier": "1.25", "perks": ["Free delivery"] },
    { "code": "gold", "name": "Gold", "threshold": 5000, "multiplier": "1.5", "perks": [] }
  ],
  "scope": "member",
  "events_qualify": false
}"#,
        read: Some("/v1/tiers"),
        start: Start::Current(tiers_body),
        show: None,
        pick: None,
        button: "Save the tier ladder",
        done: "The tier ladder is saved.",
        opens: None,
    },
    Form {
        key: "prices",
        title: "Settlement prices",
        about: "What a partner pays per point it funds and what the operator pays back per point redeemed there, from a day on: \
                the programme's prices, or one partner's. A version for the same scope and day replaces the one saved there.",
        fields: "partner_id (absent or null: the programme's, for every partner without its own); effective_from (YYYY-MM-DD, \
                 after the last closed month); issue_price and reimbursement_rate (decimal strings, 0 to 1000, at most 6 \
                 decimals); monthly_fee (0 to 1,000,000,000) and redemption_fee_percent (0 to 100), optional, default \"0\".",
        verb: Verb::Put,
        path: "/v1/settlement/prices",
        example: r#"{
  "partner_id": null,
  "effective_from": "2026-11-01",
  "issue_price": "0.008",
  "reimbursement_rate": "0.0095",
  "monthly_fee": "0",
  "redemption_fee_percent": "0"
}"#,
        read: Some("/v1/settlement/prices"),
        start: Start::Example,
        show: Some(prices_table),
        pick: None,
        button: "Save this version of the prices",
        done: "The prices are saved.",
        opens: None,
    },
    Form {
        key: "member",
        title: "Sign up a member",
        about: "Signs up a member, as a partner's till or sign-up page would.",
        fields: "email or phone (or both) is required; card (4–32 digits), name (1–200 characters), country (two capital \
                 letters; a phone without + is read in it) and referral_code (another member's code) are optional.",
        verb: Verb::Post,
        path: "/v1/members",
        example: r#"{
  "email": "jana.novakova@example.com",
  "name": "Jana Nováková",
  "country": "CZ"
}"#,
        read: None,
        start: Start::Example,
        show: None,
        pick: None,
        button: "Sign up the member",
        done: "The member is signed up.",
        opens: Some("/console/members/"),
    },
    Form {
        key: "event-types",
        title: "Event types",
        about: "The engagement events members can earn on (check-ins, reviews, surveys); earning rules and challenges name them.",
        fields: "name (1–64 characters of a–z, 0–9 and _, not taken) and description (1–200 characters); nothing else.",
        verb: Verb::Post,
        path: "/v1/event-types",
        example: r#"{
  "name": "workshop_attended",
  "description": "Came to a workshop"
}"#,
        read: Some("/v1/event-types"),
        start: Start::Example,
        show: Some(event_types_table),
        pick: None,
        button: "Add the event type",
        done: "The event type is added.",
        opens: None,
    },
    Form {
        key: "challenges",
        title: "Challenges",
        about: "Goals over a window that members join or are enrolled in. Completing one leaves a badge and posts \
                challenge_completed, for a rule to give the points; docs/REWARDS.md explains each field.",
        fields: "code (a–z, 0–9 and _, not taken), name and description (texts by language, en required), starts_at and ends_at \
                 (RFC 3339, at most 3,660 days apart), counts (purchases or events), event_type (with events), condition (CEL, \
                 optional), measure (count, partners, industries or amount), target, enrolment (join or automatic), \
                 enrol_condition (with automatic, optional), badge (code and name).",
        verb: Verb::Post,
        path: "/v1/challenges",
        example: r#"{
  "code": "three_worlds",
  "name": { "en": "Three worlds", "cs": "Tři světy" },
  "description": { "en": "Spend EUR 10 or more at a hotel, a fashion store and a drugstore." },
  "starts_at": "2026-11-01T00:00:00Z",
  "ends_at": "2026-12-01T00:00:00Z",
  "counts": "purchases",
  "condition": "basket.total_program >= 10.0",
  "measure": "industries",
  "target": 3,
  "enrolment": "automatic",
  "badge": { "code": "globetrotter", "name": { "en": "Globetrotter", "cs": "Světoběžník" } }
}"#,
        read: Some("/v1/challenges"),
        start: Start::Example,
        show: Some(challenges_table),
        pick: None,
        button: "Add the challenge",
        done: "The challenge is added.",
        opens: None,
    },
    Form {
        key: "exchange-partners",
        title: "Exchange partners",
        about: "Other loyalty programmes members exchange points with: out to them, in from them, or both.",
        fields: "name, unit_name, direction (out, in or both), rate (points worth units, each 1 to 1,000,000), min_points (a \
                 whole number of steps), step_points (each step worth whole units), daily_limit_points (per member and UTC \
                 day, each way, at least min_points), active (default true).",
        verb: Verb::Post,
        path: "/v1/exchange-partners",
        example: r#"{
  "name": "SkyMiles",
  "unit_name": "miles",
  "direction": "both",
  "rate": { "points": 100, "units": 40 },
  "min_points": 1000,
  "step_points": 100,
  "daily_limit_points": 10000,
  "active": true
}"#,
        read: Some("/v1/exchange-partners"),
        start: Start::Example,
        show: Some(exchange_table),
        pick: None,
        button: "Add the exchange partner",
        done: "The exchange partner is added.",
        opens: None,
    },
    Form {
        key: "reward",
        title: "Change a reward",
        about: "Replaces a reward whole, its stock apart; vouchers already issued keep the terms they were issued with. Load a \
                reward to start from its current JSON.",
        fields: "The body of a new reward (docs/API.md, POST /v1/rewards). stock left out keeps the units left, null stops \
                 counting stock, a number sets the units left; active false withdraws the reward.",
        verb: Verb::Put,
        path: "/v1/rewards/{id}",
        example: r#"{
  "kind": "voucher",
  "name": { "en": "EUR 5 off" },
  "cost": 500,
  "partner_id": "ptn_…",
  "voucher_days": 30,
  "active": true
}"#,
        read: Some("/v1/rewards"),
        start: Start::Example,
        show: None,
        pick: Some(Pick {
            what: "reward",
            label: reward_label,
            body: reward_body,
        }),
        button: "Save the reward",
        done: "The reward is saved.",
        opens: None,
    },
    Form {
        key: "earning-rule",
        title: "Change an earning rule",
        about: "Saves a new version of a rule; past sales keep the version that applied. Rules are never deleted: \"active\": \
                false pauses one. Load a rule to start from its current JSON, and try it on a basket on the Earning rules page.",
        fields: "The whole rule, not a patch (docs/RULES.md): name, partner_id, location_ids, applies_to, event_type, valid_from, \
                 valid_until, condition and lines (CEL), effect, priority, stacking, caps, budget, active, funding.",
        verb: Verb::Put,
        path: "/v1/earning-rules/{id}",
        example: r#"{
  "name": "Double points on Saturdays",
  "condition": "local.weekday == \"saturday\"",
  "effect": { "kind": "multiplier", "factor": "2" },
  "priority": 10,
  "stacking": "stack",
  "active": true
}"#,
        read: Some("/v1/earning-rules"),
        start: Start::Example,
        show: None,
        pick: Some(Pick {
            what: "rule",
            label: rule_label,
            body: rule_body,
        }),
        button: "Save a new version",
        done: "The rule's new version is saved.",
        opens: None,
    },
    Form {
        key: "expiry-run",
        title: "Expiry run",
        about: "Gives back vouchers that expired unused, matures pending points and expires old lots, for every member and \
                shared wallet due, and reviews tiers and memberships. The server does this on its own every few minutes; run \
                it now after changing the ladder, or to see its figures.",
        fields: "",
        verb: Verb::Post,
        path: "/v1/expiry-runs",
        example: "{}",
        read: None,
        start: Start::Button,
        show: None,
        pick: None,
        button: "Run expiry now",
        done: "The expiry run is done.",
        opens: None,
    },
];

/// The form with this key; none for any other text (the address is refused).
fn find(key: &str) -> Option<&'static Form> {
    FORMS.iter().find(|f| f.key == key)
}

/// The answer to `path`, one of [`READS`].
fn read_of<'a>(answers: &'a [Result<Value, Failure>], path: &str) -> Option<&'a Result<Value, Failure>> {
    READS.iter().position(|r| *r == path).and_then(|i| answers.get(i))
}

/// A form sent, and what came of it.
struct Outcome<'a> {
    key: &'static str,
    /// The body as typed (kept in the textarea when refused).
    typed: &'a str,
    /// The item chosen, for an update form.
    id: Option<&'a str>,
    /// The API's answer, or why the change was not made.
    result: Result<Value, String>,
}

async fn settings(
    State(web): State<Web>,
    staff: Staff,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    staff.operator()?;
    // `?edit={form}&id={id}`: an update form starts from that item's current JSON.
    let edit = match (q.get("edit").and_then(|k| find(k)), q.get("id")) {
        (Some(f), Some(id)) if f.pick.is_some() && plausible_id(id) => Some((f.key, id.as_str())),
        _ => None,
    };
    Ok(render(&web, &staff, StatusCode::OK, None, edit).await)
}

/// A form's address opened as a page (a bookmark, a reload): the page itself.
async fn back() -> Response {
    layout::see_other(SECTION, vec![])
}

async fn submit(
    State(web): State<Web>,
    staff: Staff,
    Path(key): Path<String>,
    form: FormData,
) -> Result<Response, Response> {
    staff.operator()?;
    let Some(f) = find(&key) else {
        return Err(not_found(&staff, SECTION, "settings form"));
    };
    let typed = form.raw("body");
    let id = form.get("id");
    let (status, result) = match request(f, typed, id) {
        Err(why) => (StatusCode::UNPROCESSABLE_ENTITY, Err(why)),
        Ok((path, body)) => match api(&web, &staff)
            .send_once(
                f.verb.method(),
                &path,
                &body,
                super::once_key(&staff, form.get("once")).as_deref(),
            )
            .await
        {
            Ok(answer) => (StatusCode::OK, Ok(answer)),
            Err(failure) => (failure.page_status(), Err(failure.message)),
        },
    };
    let outcome = Outcome {
        key: f.key,
        typed,
        id,
        result,
    };
    Ok(render(&web, &staff, status, Some(&outcome), None).await)
}

/// The API path and body a form sends, or why it cannot be sent (then nothing is).
fn request(f: &Form, typed: &str, id: Option<&str>) -> Result<(String, Value), String> {
    let path = match f.pick {
        Some(p) => match id {
            Some(id) if plausible_id(id) => f.path.replace("{id}", id),
            _ => return Err(format!("Choose the {} to change from the list.", p.what)),
        },
        None => f.path.to_string(),
    };
    let body = match f.start {
        Start::Button => json!({}),
        Start::Example | Start::Current(_) => super::parse_object("The body", typed)?,
    };
    Ok((path, body))
}

async fn render(
    web: &Web,
    staff: &Staff,
    status: StatusCode,
    outcome: Option<&Outcome<'_>>,
    edit: Option<(&str, &str)>,
) -> Response {
    let api = api(web, staff);
    let r = &READS;
    let (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9) = tokio::join!(
        api.get(r[0]),
        api.get(r[1]),
        api.get(r[2]),
        api.get(r[3]),
        api.get(r[4]),
        api.get(r[5]),
        api.get(r[6]),
        api.get(r[7]),
        api.get(r[8]),
        api.get(r[9]),
    );
    let answers = [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9];
    let names = read_of(&answers, "/v1/partners").map(partner_names).unwrap_or_default();
    let main = html! {
        p {
            "The changes the API offers that have no page of their own. Each form sends its JSON to the API "
            "as you; the API checks it and says what is wrong, and docs/API.md describes every body."
        }
        nav aria-label="Forms on this page" {
            ul { @for f in FORMS { li { a href={ "#" (f.key) } { (f.title) } } } }
        }
        @for f in FORMS {
            (section(f, staff, &answers, &names, outcome, edit))
        }
    };
    layout::respond(status, page(staff, SECTION, "Settings", main))
}

/// One form's section: what it does, what came of sending it, the current state, the
/// form.
fn section(
    f: &Form,
    staff: &Staff,
    answers: &[Result<Value, Failure>],
    names: &Names,
    outcome: Option<&Outcome<'_>>,
    edit: Option<(&str, &str)>,
) -> Markup {
    let read = f.read.and_then(|p| read_of(answers, p));
    let mine = outcome.filter(|o| o.key == f.key);
    let items: &[Value] = match (f.pick, read) {
        (Some(_), Some(Ok(v))) => list(v),
        _ => &[],
    };
    let chosen: Option<&str> = match mine {
        Some(o) => o.id,
        None => edit.filter(|(k, _)| *k == f.key).map(|(_, id)| id),
    };
    let body = body_text(f, read, items, mine, chosen);
    let id = |suffix: &str| format!("{}-{suffix}", f.key);
    let form = html! {
        @if let Some(p) = f.pick {
            form.inline method="get" action={ (SECTION) "#" (f.key) } {
                input type="hidden" name="edit" value=(f.key);
                label for=(id("load")) { "Load a " (p.what) "'s current JSON" }
                select id=(id("load")) name="id" {
                    @for item in items {
                        @let item_id = text(&item["id"]);
                        option value=(item_id) selected[chosen == Some(item_id)] { ((p.label)(item)) }
                    }
                }
                button.secondary type="submit" { "Load it into the form" }
            }
        }
        form.stack.wide method="post" action={ (SECTION) "/" (f.key) "#" (f.key) } {
            (layout::csrf(&staff.csrf))
            // Sent again (a reload), the form replays the first answer instead of acting twice.
            input type="hidden" name="once" value=(hex::encode(tally_store::keys::random_bytes::<12>()));
            @if let Some(p) = f.pick {
                label for=(id("id")) { "The " (p.what) " to change" }
                select id=(id("id")) name="id" required {
                    option value="" selected[chosen.is_none()] { "Choose the " (p.what) }
                    @for item in items {
                        @let item_id = text(&item["id"]);
                        option value=(item_id) selected[chosen == Some(item_id)] { ((p.label)(item)) }
                    }
                }
            }
            @if !matches!(f.start, Start::Button) {
                label for=(id("body")) { "The body, as JSON" }
                textarea id=(id("body")) name="body" rows=(rows(&body)) required spellcheck="false"
                    aria-describedby=(id("hint")) { (body) }
                p.hint id=(id("hint")) { (f.fields) }
            }
            button type="submit" { (f.button) }
        }
    };
    html! {
        section id=(f.key) {
            h2 { (f.title) }
            p { (f.about) }
            p.hint { "The API: " code { (f.verb.as_str()) " " (f.path) } }
            @if let Some(o) = mine {
                @match &o.result {
                    Ok(answer) => {
                        (layout::notice("ok", &done_message(f, answer)))
                        @if let (Some(prefix), Some(new_id)) = (f.opens, answer["id"].as_str()) {
                            p { a href={ (prefix) (path_segment(new_id)) } { "Open " (new_id) } }
                        }
                        // A form that shows the current value shows the answer there.
                        @if !matches!(f.start, Start::Current(_)) {
                            (json_view("The API's answer", answer, false))
                        }
                    },
                    Err(why) => { (layout::notice("error", why)) },
                }
            }
            @match read {
                Some(Err(failure)) => {
                    (layout::notice("error", &format!("The current state could not be read: {}", failure.message)))
                },
                Some(Ok(v)) => {
                    @if let Some(show) = f.show {
                        (show(v, names))
                    } @else if matches!(f.start, Start::Current(_)) {
                        (json_view(&format!("{}: the current value", f.title), v, staff.read_only()))
                    }
                },
                None => {},
            }
            (writable(staff, "This form", form))
        }
    }
}

/// What the textarea holds: the body as typed when it was refused; else the chosen
/// item's current JSON (an update form); else the current value; else the example.
fn body_text(
    f: &Form,
    read: Option<&Result<Value, Failure>>,
    items: &[Value],
    mine: Option<&Outcome<'_>>,
    chosen: Option<&str>,
) -> String {
    if let Some(o) = mine
        && o.result.is_err()
    {
        return o.typed.to_string();
    }
    if let (Some(p), Some(id)) = (f.pick, chosen)
        && let Some(item) = items.iter().find(|i| text(&i["id"]) == id)
    {
        return pretty(&(p.body)(item));
    }
    if let (Start::Current(shape), Some(Ok(v))) = (f.start, read)
        && let Some(body) = shape(v)
    {
        return pretty(&body);
    }
    f.example.to_string()
}

/// Rows for a textarea holding `body`: its lines and one, from 6 to 30.
fn rows(body: &str) -> usize {
    (body.lines().count() + 1).clamp(6, 30)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The notice of a change the API took, with the new item's id.
fn done_message(f: &Form, answer: &Value) -> String {
    match (f.verb, answer["id"].as_str()) {
        (Verb::Post, Some(id)) => format!("{} Its id is {id}.", f.done),
        _ => f.done.to_string(),
    }
}

/// A JSON value to read, folded (open for an analyst, who has no textarea to read it
/// in); it scrolls sideways, so it takes the keyboard's focus.
fn json_view(label: &str, v: &Value, open: bool) -> Markup {
    html! {
        @if !v.is_null() {
            details open[open] {
                summary { (label) }
                div.scroll tabindex="0" role="region" aria-label=(label) {
                    pre { (pretty(v)) }
                }
            }
        }
    }
}

/// `GET /v1/program` as `PATCH /v1/program` takes it: the point value as minor units,
/// without the currency and rates it cannot change there.
fn program_patch(v: &Value) -> Option<Value> {
    let mut body = serde_json::Map::new();
    for field in ["name", "expiry_months", "transfers", "referral_signup_url", "referrals"] {
        if let Some(x) = v.get(field) {
            body.insert(field.into(), x.clone());
        }
    }
    if let Some(minor) = v["point_value"]["amount"].as_i64() {
        body.insert("point_value".into(), json!(minor));
    }
    (!body.is_empty()).then_some(Value::Object(body))
}

/// `GET /v1/fx-rates` as `PUT /v1/fx-rates` takes it (none while no rate is set: the
/// example then shows the shape).
fn fx_body(v: &Value) -> Option<Value> {
    let rates = v["rates"].as_object().filter(|r| !r.is_empty())?;
    Some(json!({ "rates": rates }))
}

/// `GET /v1/tiers` answers the body `PUT /v1/tiers` takes.
fn tiers_body(v: &Value) -> Option<Value> {
    v.is_object().then(|| v.clone())
}

/// `v` without `fields` and without nulls (absent and null read alike, `stock` apart,
/// which the view does not hold).
fn without(v: &Value, fields: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, x)| !x.is_null() && !fields.contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn reward_label(r: &Value) -> String {
    let mut label = format!("{} ({})", text(&r["name"]["en"]), text(&r["id"]));
    if r["active"].as_bool() == Some(false) {
        label.push_str(", withdrawn");
    }
    label
}

/// A reward as its `PUT` takes it; `stock` left out keeps the units left.
fn reward_body(r: &Value) -> Value {
    without(r, &["id", "stock_left", "created_at", "updated_at"])
}

fn rule_label(r: &Value) -> String {
    let mut label = format!("{} v{} ({})", text(&r["name"]), int(&r["version"]), text(&r["id"]));
    if r["active"].as_bool() == Some(false) {
        label.push_str(", paused");
    }
    label
}

/// A rule at its current version as its `PUT` takes it.
fn rule_body(r: &Value) -> Value {
    without(r, &["id", "version", "created_at", "updated_at"])
}

fn prices_table(v: &Value, names: &Names) -> Markup {
    let versions = layout::rows(&v["versions"]);
    let mut partners: Vec<(&String, &String)> = names.iter().collect();
    partners.sort_by(|a, b| a.1.cmp(b.1));
    html! {
        @if versions.is_empty() {
            p { "No prices are set: a point costs and pays back the programme's point value." }
        } @else {
            div.scroll {
                table {
                    caption { "Versions of the prices, by the day they take effect" }
                    thead { tr {
                        th scope="col" { "For" } th scope="col" { "From" }
                        th.num scope="col" { "Issue price" } th.num scope="col" { "Reimbursement rate" }
                        th.num scope="col" { "Monthly fee" } th.num scope="col" { "Redemption fee %" }
                    } }
                    tbody {
                        @for p in versions {
                            tr {
                                th scope="row" {
                                    @match p["partner_id"].as_str() {
                                        Some(id) => { (name_of(names, id)) br; code { (id) } },
                                        None => { "The programme" },
                                    }
                                }
                                td { (text(&p["effective_from"])) }
                                td.num { (text(&p["issue_price"])) }
                                td.num { (text(&p["reimbursement_rate"])) }
                                td.num { (text(&p["monthly_fee"])) }
                                td.num { (text(&p["redemption_fee_percent"])) }
                            }
                        }
                    }
                }
            }
        }
        @if !partners.is_empty() {
            details {
                summary { "Partners' ids, for partner_id" }
                ul { @for (id, name) in &partners { li { (name) ": " code { (id) } } } }
            }
        }
    }
}

fn event_types_table(v: &Value, _: &Names) -> Markup {
    let types = list(v);
    html! {
        @if types.is_empty() {
            p { "No event types." }
        } @else {
            div.scroll {
                table {
                    caption { "Event types members can earn on" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Description" } } }
                    tbody {
                        @for t in types {
                            tr { th scope="row" { code { (text(&t["name"])) } } td { (text(&t["description"])) } }
                        }
                    }
                }
            }
        }
    }
}

fn challenges_table(v: &Value, _: &Names) -> Markup {
    let challenges = list(v);
    html! {
        @if challenges.is_empty() {
            p { "No challenges yet." }
        } @else {
            div.scroll {
                table {
                    caption { "Challenges, oldest first" }
                    thead { tr {
                        th scope="col" { "Challenge" } th scope="col" { "Runs (UTC)" } th scope="col" { "Counts" }
                        th scope="col" { "Goal" } th scope="col" { "Who takes part" } th scope="col" { "Badge" }
                    } }
                    tbody {
                        @for c in challenges {
                            tr {
                                th scope="row" { (text(&c["name"]["en"])) br; code { (text(&c["code"])) } }
                                td { (layout::when(&c["starts_at"])) " to " (layout::when(&c["ends_at"])) }
                                td {
                                    @if text(&c["counts"]) == "events" {
                                        "events " code { (text(&c["event_type"])) }
                                    } @else { "purchases" }
                                    @if let Some(condition) = c["condition"].as_str() { br; "if " code { (condition) } }
                                }
                                td { (goal(c)) }
                                td {
                                    @if text(&c["enrolment"]) == "automatic" {
                                        "every member"
                                        @if let Some(e) = c["enrol_condition"].as_str() { " if " code { (e) } }
                                    } @else { "members who join" }
                                }
                                td { (text(&c["badge"]["name"]["en"])) br; code { (text(&c["badge"]["code"])) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A challenge's target, in words.
fn goal(c: &Value) -> String {
    let target = points(int(&c["target"]));
    match text(&c["measure"]) {
        "partners" => format!("{target} different partners"),
        "industries" => format!("{target} different industries"),
        "amount" => format!("{target} minor units of the programme currency spent"),
        _ => format!("{target} times"),
    }
}

fn exchange_table(v: &Value, _: &Names) -> Markup {
    let partners = list(v);
    html! {
        @if partners.is_empty() {
            p { "No exchange partners yet." }
        } @else {
            div.scroll {
                table {
                    caption { "Exchange partners" }
                    thead { tr {
                        th scope="col" { "Programme" } th scope="col" { "Direction" } th scope="col" { "Rate" }
                        th.num scope="col" { "Smallest order" } th.num scope="col" { "Step" }
                        th.num scope="col" { "A member's daily limit" } th scope="col" { "State" }
                    } }
                    tbody {
                        @for x in partners {
                            tr {
                                th scope="row" { (text(&x["name"])) br; code { (text(&x["id"])) } }
                                td { (direction(text(&x["direction"]))) }
                                td {
                                    (points(int(&x["rate"]["points"]))) " points = "
                                    (points(int(&x["rate"]["units"]))) " " (text(&x["unit_name"]))
                                }
                                td.num { (points(int(&x["min_points"]))) }
                                td.num { (points(int(&x["step_points"]))) }
                                td.num { (points(int(&x["daily_limit_points"]))) }
                                td { @if x["active"].as_bool() == Some(false) { "closed" } @else { "open" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn direction(d: &str) -> &str {
    match d {
        "out" => "points out only",
        "in" => "units in only",
        "both" => "both ways",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_keys_are_unique_plain_and_found() {
        for (i, f) in FORMS.iter().enumerate() {
            assert!(plausible_id(f.key) && f.key == f.key.to_lowercase(), "{}", f.key);
            assert!(FORMS[i + 1..].iter().all(|g| g.key != f.key), "{} twice", f.key);
            assert!(find(f.key).is_some_and(|g| g.key == f.key && g.path == f.path));
            // A section's id and its fields' ids (`{key}-body`, …) never meet another's.
            for suffix in ["-load", "-id", "-body", "-hint"] {
                assert!(FORMS.iter().all(|g| g.key != format!("{}{suffix}", f.key)), "{}", f.key);
            }
            assert_ne!(f.key, "main");
        }
    }

    #[test]
    fn an_unknown_form_key_is_refused() {
        for key in ["", "nope", "PROGRAM", "program/../tiers", "tiers ", "partners"] {
            assert!(find(key).is_none(), "{key}");
        }
    }

    #[test]
    fn every_read_is_read_once_and_used() {
        for f in FORMS {
            if let Some(path) = f.read {
                assert!(READS.contains(&path), "{} reads {path}", f.key);
            }
            assert!(
                f.pick.is_none() || f.read.is_some(),
                "{} has nothing to pick from",
                f.key
            );
            assert!(!matches!(f.start, Start::Current(_)) || f.read.is_some(), "{}", f.key);
        }
        for (i, path) in READS.iter().enumerate() {
            assert!(!READS[i + 1..].contains(path), "{path} twice");
            assert!(
                *path == "/v1/partners" || FORMS.iter().any(|f| f.read == Some(*path)),
                "{path} is read for nothing"
            );
        }
    }

    #[test]
    fn ids_go_into_the_paths_of_update_forms_only() {
        for f in FORMS {
            assert_eq!(f.path.contains("{id}"), f.pick.is_some(), "{}", f.key);
            assert!(f.path.starts_with("/v1/"), "{}", f.key);
        }
    }

    #[test]
    fn every_example_is_a_json_object() {
        for f in FORMS {
            assert!(
                crate::web::console::parse_object("The body", f.example).is_ok(),
                "{}",
                f.key
            );
        }
    }

    #[test]
    fn a_body_that_is_no_json_object_is_refused_before_the_api() {
        let tiers = find("tiers").unwrap();
        assert!(request(tiers, "", None).unwrap_err().contains("empty"));
        assert!(request(tiers, "[1, 2]", None).unwrap_err().contains("object"));
        assert!(request(tiers, "{\"basis\": ", None).unwrap_err().contains("line 1"));
        let (path, body) = request(tiers, r#"{"levels": []}"#, None).unwrap();
        assert_eq!(path, "/v1/tiers");
        assert_eq!(body["levels"], json!([]));
    }

    #[test]
    fn an_update_form_needs_a_plain_id() {
        let reward = find("reward").unwrap();
        let body = r#"{"cost": 5}"#;
        assert!(request(reward, body, None).is_err());
        assert!(request(reward, body, Some("rwd_1/../../members")).is_err());
        assert!(request(reward, body, Some("rwd_1?x=1")).is_err());
        let (path, _) = request(reward, body, Some("rwd_01HZX")).unwrap();
        assert_eq!(path, "/v1/rewards/rwd_01HZX");
        let (path, _) = request(find("earning-rule").unwrap(), body, Some("rul_7")).unwrap();
        assert_eq!(path, "/v1/earning-rules/rul_7");
    }

    #[test]
    fn the_expiry_run_sends_an_empty_object_whatever_is_typed() {
        let run = find("expiry-run").unwrap();
        let (path, body) = request(run, "not json", None).unwrap();
        assert_eq!(path, "/v1/expiry-runs");
        assert_eq!(body, json!({}));
        assert_eq!(run.verb.method(), Method::POST);
        assert_eq!(find("program").unwrap().verb.method(), Method::PATCH);
    }

    #[test]
    fn current_values_become_the_bodies_their_changes_take() {
        let program = json!({
            "name": "Tally", "currency": "EUR", "point_value": {"amount": 1, "currency": "EUR"},
            "expiry_months": 24, "fx_rates": {"CZK": "25.2"},
            "transfers": {"enabled": false, "min_points": 1}, "referral_signup_url": null, "referrals": null
        });
        let patch = program_patch(&program).unwrap();
        assert_eq!(patch["point_value"], 1);
        assert_eq!(patch["expiry_months"], 24);
        assert!(patch.get("currency").is_none() && patch.get("fx_rates").is_none());
        assert!(patch["referrals"].is_null());

        assert_eq!(
            fx_body(&json!({"currency": "EUR", "rates": {"CZK": "25.2"}})),
            Some(json!({"rates": {"CZK": "25.2"}}))
        );
        assert_eq!(fx_body(&json!({"currency": "EUR", "rates": {}})), None);

        let reward = json!({
            "id": "rwd_1", "kind": "voucher", "name": {"en": "EUR 5 off"}, "cost": 500, "partner_id": "ptn_1",
            "charity": null, "stock_left": 3, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
            "active": false
        });
        let body = reward_body(&reward);
        for gone in ["id", "stock_left", "created_at", "updated_at", "charity"] {
            assert!(body.get(gone).is_none(), "{gone}");
        }
        assert_eq!(body["cost"], 500);
        assert_eq!(reward_label(&reward), "EUR 5 off (rwd_1), withdrawn");

        let rule = json!({"id": "rul_1", "version": 3, "name": "Saturdays", "effect": {"kind": "fixed", "points": 5}});
        assert_eq!(
            rule_body(&rule),
            json!({"name": "Saturdays", "effect": {"kind": "fixed", "points": 5}})
        );
        assert_eq!(rule_label(&rule), "Saturdays v3 (rul_1)");
    }

    #[test]
    fn a_refused_body_stays_as_typed() {
        let tiers = find("tiers").unwrap();
        let refused = Outcome {
            key: "tiers",
            typed: "{ \"levels\": ",
            id: None,
            result: Err("no".into()),
        };
        let ladder: Result<Value, Failure> = Ok(json!({"basis": "qualifying_points", "levels": []}));
        assert_eq!(
            body_text(tiers, Some(&ladder), &[], Some(&refused), None),
            "{ \"levels\": "
        );
        assert!(body_text(tiers, Some(&ladder), &[], None, None).contains("qualifying_points"));
        let failed: Result<Value, Failure> = Err(Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "timeout".into(),
            message: "slow".into(),
        });
        assert_eq!(body_text(tiers, Some(&failed), &[], None, None), tiers.example);
    }
}
