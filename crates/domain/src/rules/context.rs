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
    /// The member who referred this one (her referral code at sign-up), if any.
    pub referred_by: Option<String>,
}

/// `member.referral_age_days` of a member nobody referred: a hundred years, so that
/// `member.referral_age_days <= 30` holds only for members referred in the last 30 days.
pub const NOT_REFERRED_DAYS: i64 = 36_500;

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
}

/// What the rule context derives from the facts (local time, the member's seniority,
/// the total in major units), computed once per evaluation and read by both the CEL
/// values and the native evaluator, so the two can never disagree on them.
pub(crate) struct Derived {
    /// Decimal places of the basket currency.
    pub exponent: i32,
    pub total: f64,
    pub total_program: f64,
    pub joined_on: String,
    pub days: i64,
    /// Days since the member joined through a referral ([`NOT_REFERRED_DAYS`] if none).
    pub referral_days: i64,
    pub local_date: jiff::civil::Date,
    pub date: String,
    pub time: String,
    pub ymd: (i64, i64, i64),
    pub weekday: &'static str,
    pub hm: (i64, i64),
}

impl Derived {
    /// `rate`: units of the basket currency per unit of programme currency.
    pub fn new(facts: &Facts<'_>, rate: f64) -> Derived {
        let exponent = facts.basket.map(|b| b.currency.exponent() as i32).unwrap_or(0);
        let total = facts.basket.map(|b| major(b.total_minor, b.currency)).unwrap_or(0.0);
        // An unknown member shows the defaults: joined at the epoch.
        let joined_at = facts.member.map(|m| m.joined_at).unwrap_or_default();
        let z = facts.at.to_zoned(facts.timezone());
        let days = (facts.at.as_second() - joined_at.as_second()).max(0) / 86_400;
        let referred = facts.member.is_some_and(|m| m.referred_by.is_some());
        Derived {
            exponent,
            total,
            total_program: if facts.basket.is_some() && rate > 0.0 {
                total / rate
            } else {
                0.0
            },
            joined_on: joined_at.to_zoned(TimeZone::UTC).date().to_string(),
            days,
            referral_days: if referred { days } else { NOT_REFERRED_DAYS },
            local_date: z.date(),
            date: z.date().to_string(),
            time: format!("{:02}:{:02}", z.hour(), z.minute()),
            ymd: (i64::from(z.year()), i64::from(z.month()), i64::from(z.day())),
            weekday: weekday_name(z.weekday()),
            hm: (i64::from(z.hour()), i64::from(z.minute())),
        }
    }
}

/// The facts and what is derived from them, over the lines that still earn (all of
/// them before exclusions run).
pub(crate) struct Prepared<'a> {
    pub facts: &'a Facts<'a>,
    pub derived: &'a Derived,
    pub lines: &'a [&'a LineFacts],
    pub quantity: i64,
}

impl<'a> Prepared<'a> {
    pub fn new(facts: &'a Facts<'a>, derived: &'a Derived, lines: &'a [&'a LineFacts]) -> Self {
        Prepared {
            facts,
            derived,
            lines,
            quantity: lines.iter().map(|l| l.quantity).sum(),
        }
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

/// The `basket` and `lines` values.
pub(crate) fn basket_values(p: &Prepared<'_>) -> (Value, Value) {
    let Some(b) = p.facts.basket else {
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
    let list = Value::List(Arc::new(p.lines.iter().map(|l| line_value(l, b.currency)).collect()));
    let basket = map(vec![
        ("total", Value::Float(p.derived.total)),
        ("total_program", Value::Float(p.derived.total_program)),
        ("currency", s(b.currency.code())),
        ("quantity", Value::Int(p.quantity)),
        ("line_count", Value::Int(p.lines.len() as i64)),
    ]);
    (basket, list)
}

pub(crate) fn member_value(m: Option<&MemberFacts>, d: &Derived) -> Value {
    let m = m.cloned().unwrap_or_default();
    map(vec![
        ("id", s(&m.id)),
        ("tier", s(m.tier.as_deref().unwrap_or(""))),
        (
            "segments",
            Value::List(Arc::new(m.segments.iter().map(|x| s(x)).collect())),
        ),
        ("plan", s(m.plan.as_deref().unwrap_or(""))),
        ("country", s(m.country.as_deref().unwrap_or(""))),
        ("joined_on", s(&d.joined_on)),
        ("days_since_joined", Value::Int(d.days)),
        ("visits", Value::Int(m.visits)),
        ("first_visit", Value::Bool(!m.id.is_empty() && m.visits == 0)),
        ("referred_by", s(m.referred_by.as_deref().unwrap_or(""))),
        ("referral_age_days", Value::Int(d.referral_days)),
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

pub(crate) fn local_value(d: &Derived) -> Value {
    map(vec![
        ("date", s(&d.date)),
        ("time", s(&d.time)),
        ("year", Value::Int(d.ymd.0)),
        ("month", Value::Int(d.ymd.1)),
        ("day", Value::Int(d.ymd.2)),
        ("weekday", s(d.weekday)),
        ("hour", Value::Int(d.hm.0)),
        ("minute", Value::Int(d.hm.1)),
    ])
}

fn weekday_name(w: jiff::civil::Weekday) -> &'static str {
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
