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
mod settlements;
mod users;

use super::Web;
use super::api::{Api, Failure};
use super::layout::{self, Nav};
use super::session::Staff;
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use rust_decimal::Decimal;
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
        .merge(settlements::routes())
        .merge(audit::routes())
}

/// The console's sections, in the order of its navigation.
const SECTIONS: [(&str, &str); 10] = [
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

/// The status a form answers with when the API refused it: the API's own 4xx, or its
/// 5xx when it failed; never a success.
pub fn form_status(f: &Failure) -> StatusCode {
    if f.status.is_client_error() || f.status.is_server_error() {
        f.status
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
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

/// The list of an API answer: `{"items": [...]}`, `{"data": [...]}` or a bare array.
pub fn list(v: &Value) -> &[Value] {
    if v.is_array() {
        layout::rows(v)
    } else if v["items"].is_array() {
        layout::rows(&v["items"])
    } else {
        layout::data(v)
    }
}

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
    match partners {
        Ok(v) => list(v)
            .iter()
            .map(|p| (layout::text(&p["id"]).to_string(), layout::text(&p["name"]).to_string()))
            .collect(),
        Err(_) => HashMap::new(),
    }
}

/// A partner's name, or its id when the name is not known.
pub fn name_of<'a>(names: &'a HashMap<String, String>, id: &'a str) -> &'a str {
    names.get(id).map(String::as_str).unwrap_or(id)
}

/// Whether `s` could be an id of ours (`ptn_…`, `key_…`): letters, digits and
/// underscores, so it is safe inside an API path. The API judges whether it exists.
pub fn plausible_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An amount typed in whole units ("12.50") as minor units of `currency` (1250), or why
/// not.
pub fn minor_units(typed: &str, currency: &str) -> Result<i64, String> {
    let c = tally_domain::money::Currency::parse(currency.trim())
        .map_err(|_| format!("{currency} is not a currency code such as EUR"))?;
    let d: Decimal = typed
        .trim()
        .replace(',', ".")
        .parse()
        .map_err(|_| format!("{typed} is not an amount such as 12.50"))?;
    if d.is_sign_negative() {
        return Err(format!("{typed}: an amount cannot be negative"));
    }
    let scaled = d
        .checked_mul(Decimal::from(10i64.pow(c.exponent())))
        .ok_or_else(|| format!("{typed} is too large"))?;
    if scaled.fract() != Decimal::ZERO {
        return Err(format!("{typed}: {} takes at most {} decimals", c.code(), c.exponent()));
    }
    rust_decimal::prelude::ToPrimitive::to_i64(&scaled).ok_or_else(|| format!("{typed} is too large"))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_amounts_become_minor_units() {
        assert_eq!(minor_units("12.50", "EUR"), Ok(1250));
        assert_eq!(minor_units("12,5", "EUR"), Ok(1250));
        assert_eq!(minor_units("300", "JPY"), Ok(300));
        assert!(minor_units("1.234", "EUR").is_err());
        assert!(minor_units("-1", "EUR").is_err());
        assert!(minor_units("abc", "EUR").is_err());
        assert!(minor_units("1", "XXX").is_err());
    }

    #[test]
    fn ids_for_paths_are_plain() {
        assert!(plausible_id("ptn_01HZX"));
        assert!(!plausible_id("ptn/../x"));
        assert!(!plausible_id("a?b"));
        assert!(!plausible_id(""));
    }
}
