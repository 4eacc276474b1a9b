//! The operator console (`/console`), for the programme operator's staff: the dashboard,
//! partners and their staff, members, earning rules, rewards, tiers and plans,
//! settlement and the audit log. Pages read and change through the API as the operator
//! (an analyst's account may look but the API refuses it any change, so its pages show
//! no forms); the console's own navigation and the helpers its pages share live here.

mod audit;
mod catalog;
mod dashboard;
mod members;
mod partners;
mod rules;
mod settings;
mod settlements;
mod users;

pub use dashboard::FiguresCache;

use super::Web;
use super::api::{Api, Failure};
use super::layout::{self, Nav};
use super::session::Staff;
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;
use std::collections::HashMap;

pub fn routes() -> Router<Web> {
    Router::new()
        .merge(dashboard::routes())
        .merge(partners::routes())
        .merge(users::routes())
        .merge(members::routes())
        .merge(rules::routes())
        .merge(catalog::routes())
        .merge(settings::routes())
        .merge(settlements::routes())
        .merge(audit::routes())
}

/// The console's sections, in the order of its navigation.
const SECTIONS: [(&str, &str); 11] = [
    ("/console", "Dashboard"),
    ("/console/members", "Members"),
    ("/console/partners", "Partners"),
    ("/console/rules", "Earning rules"),
    ("/console/rewards", "Rewards"),
    ("/console/tiers", "Tiers and plans"),
    ("/console/settlements", "Settlement"),
    ("/console/liability", "Liability"),
    ("/console/audit", "Audit log"),
    ("/console/users", "Operator staff"),
    ("/console/settings", "Settings"),
];

/// The console's navigation; `current` is the section the page belongs to.
pub fn nav<'a>(staff: &Staff, current: &'a str) -> Nav<'a> {
    Nav {
        face: "Console",
        items: SECTIONS
            .iter()
            .map(|(href, label)| (*href, label.to_string()))
            .collect(),
        current,
        who: Some((
            format!("{} ({})", staff.user.name, staff.role.label()),
            "/logout",
            staff.csrf.clone(),
        )),
        extra: None,
    }
}

/// A console page: `section` is the navigation entry it belongs to.
pub fn page(staff: &Staff, section: &str, title: &str, main: Markup) -> Markup {
    layout::page("en", title, &nav(staff, section), main)
}

/// The API as this member of staff: the operator's scope, the analyst's read-only.
pub fn api<'a>(web: &'a Web, staff: &Staff) -> Api<'a> {
    Api::staff(web, staff)
}

/// A page that could not be shown because the API refused or failed a read: the
/// console's frame, the API's own words and its status.
pub fn failed(staff: &Staff, section: &str, f: &Failure) -> Response {
    let title = match f.status {
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_client_error() => "Not possible",
        _ => "Try again",
    };
    layout::respond(
        f.status,
        page(
            staff,
            section,
            title,
            html! {
                (layout::notice("error", &f.message))
                p { a href=(section) { "Back" } }
            },
        ),
    )
}

/// A page for an id in the address that cannot be one (so no API call is made with it).
pub fn not_found(staff: &Staff, section: &str, what: &str) -> Response {
    layout::respond(
        StatusCode::NOT_FOUND,
        page(
            staff,
            section,
            "Not found",
            html! {
                (layout::notice("error", &format!("There is no {what} with this address.")))
                p { a href=(section) { "Back" } }
            },
        ),
    )
}

/// The `Idempotency-Key` of a form sent by `staff`: the form's random value with the
/// sender's account, so a value seen by another account replays nothing of theirs (all
/// of the operator's staff act as the operator, one idempotency scope).
pub fn once_key(staff: &Staff, once: Option<&str>) -> Option<String> {
    once.filter(|o| o.len() <= 64 && o.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|o| format!("web:{}:{o}", staff.user.id))
}

/// Text typed as a JSON object (`what` names it in the message), or why it is not one.
pub fn parse_object(what: &str, typed: &str) -> Result<Value, String> {
    if typed.trim().is_empty() {
        return Err(format!("{what} is empty: write it as JSON, {{ … }}."));
    }
    match serde_json::from_str::<Value>(typed) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(format!("{what} must be a JSON object, {{ … }}.")),
        Err(e) => Err(format!(
            "{what} is not valid JSON: line {}, column {}: {e}.",
            e.line(),
            e.column()
        )),
    }
}

/// A form, for staff who may change things; for an analyst, a line saying why there is
/// none (the API would refuse the change).
pub fn writable(staff: &Staff, what: &str, form: Markup) -> Markup {
    if staff.read_only() {
        html! {
            p.hint {
                (what) " is not offered here: an analyst's account can look at everything but change nothing."
            }
        }
    } else {
        form
    }
}

/// The list of an API answer (`{"items": [...]}` or a bare array).
pub use crate::web::layout::data as list;

/// A field's text, or a dash when absent or empty.
pub fn or_dash(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        _ => "—".into(),
    }
}

/// A true/false field as "yes"/"no".
pub fn yes_no(v: &Value) -> &'static str {
    if v.as_bool() == Some(true) { "yes" } else { "no" }
}

/// The names of the partners, by id, from `GET /v1/partners` (empty when it failed:
/// pages then show ids).
pub fn partner_names(partners: &Result<Value, Failure>) -> HashMap<String, String> {
    partners
        .as_ref()
        .map(crate::web::values::partner_names)
        .unwrap_or_default()
}

/// A partner's name, or its id when the name is not known.
pub fn name_of<'a>(names: &'a HashMap<String, String>, id: &'a str) -> &'a str {
    names.get(id).map(String::as_str).unwrap_or(id)
}

pub use crate::web::values::{minor_units, plausible_id};

/// A whole number typed in a form, within `range`, or the message to show.
pub fn whole(field: &str, typed: Option<&str>, range: std::ops::RangeInclusive<i64>) -> Result<Option<i64>, String> {
    match typed {
        None => Ok(None),
        Some(t) => match t.replace([',', ' '], "").parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "{field}: a whole number from {} to {}",
                layout::points(*range.start()),
                layout::points(*range.end())
            )),
        },
    }
}
