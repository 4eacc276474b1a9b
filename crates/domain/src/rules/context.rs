//! The facts a rule is evaluated against, and their CEL values. The field names here are
//! the ones [`super::check::fields`] lists and docs/RULES.md documents.

use crate::money::Currency;
use cel::Value;
use cel::objects::{Key, Map};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::collections::HashMap;
use std::sync::Arc;

/// One basket line as the till sent it (amounts in minor units of the basket currency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFacts {
    pub sku: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
}

impl LineFacts {
    pub fn amount_minor(&self) -> i64 {
        self.unit_price_minor.saturating_mul(self.quantity)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasketFacts {
    pub currency: Currency,
    pub total_minor: i64,
    pub lines: Vec<LineFacts>,
}

/// What rules may know of a member. `visits` counts the member's earlier purchases at
/// the partner of the sale.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberFacts {
    pub id: String,
    pub tier: Option<String>,
    pub segments: Vec<String>,
    pub plan: Option<String>,
    pub country: Option<String>,
    pub joined_at: Timestamp,
    pub visits: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartnerFacts {
    pub id: String,
    pub name: String,
    pub industry: String,
    pub country: String,
    pub currency: String,
    pub timezone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocationFacts {
    pub id: String,
    pub name: String,
    pub city: String,
    pub country: String,
    pub timezone: String,
}

/// A scalar attribute of an engagement event.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Bool(bool),
    Int(i64),
    Double(f64),
    String(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventFacts {
    pub event_type: String,
    pub attributes: Vec<(String, Attr)>,
}

/// Everything one evaluation sees. Absent parts show as empty values, so a rule
/// reading `member.tier` on an unknown member simply does not match.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub partner: Option<&'a PartnerFacts>,
    pub location: Option<&'a LocationFacts>,
    pub at: Timestamp,
    pub basket: Option<&'a BasketFacts>,
    pub member: Option<&'a MemberFacts>,
    pub event: Option<&'a EventFacts>,
}

impl Facts<'_> {
    /// The time zone of the sale: the location's, else the partner's, else UTC.
    pub fn timezone(&self) -> TimeZone {
        let name = self
            .location
            .map(|l| l.timezone.as_str())
            .or(self.partner.map(|p| p.timezone.as_str()))
            .unwrap_or("UTC");
        TimeZone::get(name).unwrap_or(TimeZone::UTC)
    }

    /// The local calendar date of the sale.
    pub fn local_date(&self) -> jiff::civil::Date {
        self.at.to_zoned(self.timezone()).date()
    }
}

pub(crate) fn s(v: &str) -> Value {
    Value::String(Arc::new(v.to_string()))
}

pub(crate) fn map(entries: Vec<(&str, Value)>) -> Value {
    let m: HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k.to_string())), v))
        .collect();
    Value::Map(Map { map: Arc::new(m) })
}

fn major(minor: i64, currency: Currency) -> f64 {
    minor as f64 / 10f64.powi(currency.exponent() as i32)
}

pub(crate) fn line_value(l: &LineFacts, currency: Currency) -> Value {
    map(vec![
        ("sku", s(&l.sku)),
        ("category", s(&l.category)),
        ("quantity", Value::Int(l.quantity)),
        ("unit_price", Value::Float(major(l.unit_price_minor, currency))),
        ("amount", Value::Float(major(l.amount_minor(), currency))),
    ])
}

/// The `basket` and `lines` values for the given lines.
pub(crate) fn basket_values(basket: Option<&BasketFacts>, lines: &[&LineFacts], rate: f64) -> (Value, Value) {
    let Some(b) = basket else {
        let empty = Value::List(Arc::new(Vec::new()));
        return (
            map(vec![
                ("total", Value::Float(0.0)),
                ("total_program", Value::Float(0.0)),
                ("currency", s("")),
                ("quantity", Value::Int(0)),
                ("line_count", Value::Int(0)),
            ]),
            empty,
        );
    };
    let list = Value::List(Arc::new(lines.iter().map(|l| line_value(l, b.currency)).collect()));
    let total = major(b.total_minor, b.currency);
    let basket = map(vec![
        ("total", Value::Float(total)),
        (
            "total_program",
            Value::Float(if rate > 0.0 { total / rate } else { 0.0 }),
        ),
        ("currency", s(b.currency.code())),
        ("quantity", Value::Int(lines.iter().map(|l| l.quantity).sum())),
        ("line_count", Value::Int(lines.len() as i64)),
    ]);
    (basket, list)
}

pub(crate) fn member_value(m: Option<&MemberFacts>, at: Timestamp) -> Value {
    let m = m.cloned().unwrap_or_default();
    let joined = m.joined_at.to_zoned(TimeZone::UTC).date();
    let days = (at.as_second() - m.joined_at.as_second()).max(0) / 86_400;
    map(vec![
        ("id", s(&m.id)),
        ("tier", s(m.tier.as_deref().unwrap_or(""))),
        (
            "segments",
            Value::List(Arc::new(m.segments.iter().map(|x| s(x)).collect())),
        ),
        ("plan", s(m.plan.as_deref().unwrap_or(""))),
        ("country", s(m.country.as_deref().unwrap_or(""))),
        ("joined_on", s(&joined.to_string())),
        ("days_since_joined", Value::Int(days)),
        ("visits", Value::Int(m.visits)),
        ("first_visit", Value::Bool(!m.id.is_empty() && m.visits == 0)),
    ])
}

pub(crate) fn partner_value(p: Option<&PartnerFacts>) -> Value {
    let p = p.cloned().unwrap_or_default();
    map(vec![
        ("id", s(&p.id)),
        ("name", s(&p.name)),
        ("industry", s(&p.industry)),
        ("country", s(&p.country)),
        ("currency", s(&p.currency)),
    ])
}

pub(crate) fn location_value(l: Option<&LocationFacts>) -> Value {
    let l = l.cloned().unwrap_or_default();
    map(vec![
        ("id", s(&l.id)),
        ("name", s(&l.name)),
        ("city", s(&l.city)),
        ("country", s(&l.country)),
    ])
}

pub(crate) fn local_value(facts: &Facts<'_>) -> Value {
    let z = facts.at.to_zoned(facts.timezone());
    let weekday = weekday_name(z.weekday());
    map(vec![
        ("date", s(&z.date().to_string())),
        ("time", s(&format!("{:02}:{:02}", z.hour(), z.minute()))),
        ("year", Value::Int(i64::from(z.year()))),
        ("month", Value::Int(i64::from(z.month()))),
        ("day", Value::Int(i64::from(z.day()))),
        ("weekday", s(weekday)),
        ("hour", Value::Int(i64::from(z.hour()))),
        ("minute", Value::Int(i64::from(z.minute()))),
    ])
}

pub(crate) fn weekday_name(w: jiff::civil::Weekday) -> &'static str {
    match w {
        jiff::civil::Weekday::Monday => "monday",
        jiff::civil::Weekday::Tuesday => "tuesday",
        jiff::civil::Weekday::Wednesday => "wednesday",
        jiff::civil::Weekday::Thursday => "thursday",
        jiff::civil::Weekday::Friday => "friday",
        jiff::civil::Weekday::Saturday => "saturday",
        jiff::civil::Weekday::Sunday => "sunday",
    }
}

pub(crate) fn event_value(e: Option<&EventFacts>) -> Value {
    let Some(e) = e else {
        return map(vec![("type", s("purchase")), ("attributes", map(Vec::new()))]);
    };
    let attrs = e
        .attributes
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Attr::Bool(b) => Value::Bool(*b),
                Attr::Int(i) => Value::Int(*i),
                Attr::Double(d) => Value::Float(*d),
                Attr::String(x) => s(x),
            };
            (k.as_str(), v)
        })
        .collect();
    map(vec![("type", s(&e.event_type)), ("attributes", map(attrs))])
}
