//! An earning rule as operators and partners write it: scope, window, condition, effect,
//! order, caps and budget. Plain data (JSON in the API, JSON in the store); the CEL text
//! is compiled and checked by [`super::compile`].

use crate::DomainError;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest condition or line filter accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 2_000;
/// Most caps one rule may carry.
pub const MAX_CAPS: usize = 4;

/// What a rule reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum AppliesTo {
    /// A sale at a till (`POST /v1/transactions`).
    #[default]
    Purchase,
    /// An engagement event (`POST /v1/events`).
    Event,
}

/// How a rule combines with the others that match, walked in priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stacking {
    /// Adds its points to the others'.
    #[default]
    Stack,
    /// Competes with the other `best_of` rules that match: only the one giving the most applies.
    BestOf,
    /// Adds its points, then no rule of lower priority is looked at.
    Stop,
}

/// What a matching rule gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// `points` for every unit of programme currency spent on the qualifying lines
    /// (the whole basket without a line filter), rounded down.
    PerAmount {
        /// More than 0, at most 1000.
        #[schema(value_type = String, example = "2", pattern = r"^[0-9]{1,4}(\.[0-9]{1,10})?$")]
        points: Decimal,
    },
    /// Multiplies the base points of the qualifying lines: `factor` 2 is double points,
    /// so the rule adds the base points once more. Rounded down.
    Multiplier {
        /// More than 1, at most 100.
        #[schema(value_type = String, example = "2", pattern = r"^[0-9]{1,3}(\.[0-9]{1,10})?$")]
        factor: Decimal,
    },
    /// A fixed number of points when the rule matches.
    Fixed {
        #[schema(minimum = 1, maximum = 10_000_000)]
        points: i64,
    },
    /// `points` for each unit bought on the qualifying lines, counting at most
    /// `max_units` units per basket (no limit when absent).
    PerUnit {
        #[schema(minimum = 1, maximum = 10_000_000)]
        points: i64,
        #[schema(minimum = 1, maximum = 1_000_000)]
        max_units: Option<i64>,
    },
    /// The qualifying lines earn nothing at all: no base points, and no other rule sees
    /// them. Exclusions apply before any other rule, whatever their priority.
    Exclude,
}

/// The period a per-member cap counts over, in the local time of the sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapPeriod {
    Day,
    /// ISO week, Monday to Sunday.
    Week,
    Month,
    /// The whole life of the rule.
    Campaign,
}

impl CapPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            CapPeriod::Day => "day",
            CapPeriod::Week => "week",
            CapPeriod::Month => "month",
            CapPeriod::Campaign => "campaign",
        }
    }
}

/// At most `points` from this rule per member per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cap {
    pub period: CapPeriod,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub points: i64,
}

/// Who pays for the points a rule gives: the operator's share in percent, the selling
/// partner the rest. Absent: a partner's rule is the partner's, a programme-wide rule the
/// operator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Funding {
    /// 0: the partner funds every point; 100: the operator does; 50: half each (the
    /// operator's half rounded down).
    #[schema(minimum = 0, maximum = 100)]
    pub operator_percent: u8,
}

/// An earning rule as written (one version of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Shown to members in the breakdown: "Double points on cosmetics on Saturdays".
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// The partner whose sales and events the rule applies to; none for the whole
    /// programme (operator only). A partner key always writes rules for itself.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_]{1,64}$")]
    pub partner_id: Option<String>,
    /// Only these locations (of `partner_id`); empty for all.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub location_ids: Vec<String>,
    #[serde(default)]
    pub applies_to: AppliesTo,
    /// For event rules: the event type it reacts to (`review`, `survey_answered`, ...).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub event_type: Option<String>,
    /// RFC 3339; the rule applies to sales and events that happen at or after it.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub valid_from: Option<String>,
    /// RFC 3339; ... and before it.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub valid_until: Option<String>,
    /// A CEL expression that must be true for the rule to apply (default `true`).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub condition: Option<String>,
    /// A CEL expression over `line`, choosing the lines the effect counts (default: all).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub lines: Option<String>,
    pub effect: Effect,
    /// Higher runs first (default 0).
    #[serde(default)]
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    pub priority: i32,
    #[serde(default)]
    pub stacking: Stacking,
    #[serde(default)]
    #[schema(max_items = 4)]
    pub caps: Vec<Cap>,
    /// Total points the rule may ever give, over all members.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub budget: Option<i64>,
    /// A paused rule is kept but gives nothing (default true).
    #[serde(default = "yes")]
    pub active: bool,
    /// Who funds the rule's points (see [`Funding`]); only the operator writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<Funding>,
}

fn yes() -> bool {
    true
}

/// The window a rule is valid in, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Window {
    pub fn contains(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|f| at >= f) && self.until.is_none_or(|u| at < u)
    }
}

fn parse_time(field: &'static str, value: &Option<String>) -> Result<Option<Timestamp>, DomainError> {
    value
        .as_deref()
        .map(|s| {
            s.parse::<Timestamp>()
                .map_err(|_| DomainError::invalid(field, "must be an RFC 3339 time such as 2026-10-01T00:00:00+02:00"))
        })
        .transpose()
}

fn positive_decimal(field: &'static str, d: Decimal, max: i64) -> Result<(), DomainError> {
    if d <= Decimal::ZERO || d > Decimal::from(max) {
        return Err(DomainError::invalid(
            field,
            format!("must be more than 0 and at most {max}"),
        ));
    }
    Ok(())
}

impl RuleSpec {
    /// The operator's share of the points the rule gives, in percent. Without
    /// `funding`: a partner's rule is the partner's, a programme-wide purchase rule the
    /// operator's, and an event rule the sender's (a partner pays for what its events
    /// earn, or it could post events for points the operator pays; an event no partner
    /// sends is the programme's whatever the share).
    pub fn operator_percent(&self) -> u8 {
        match (self.funding, &self.partner_id, self.applies_to) {
            (Some(f), _, _) => f.operator_percent,
            (None, Some(_), _) | (None, None, AppliesTo::Event) => 0,
            (None, None, AppliesTo::Purchase) => 100,
        }
    }

    /// Checks everything but the CEL text; returns the parsed window.
    pub fn validate(&self) -> Result<Window, DomainError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 120 || name.chars().any(char::is_control) {
            return Err(DomainError::invalid("name", "must be 1 to 120 printable characters"));
        }
        if self.location_ids.len() > 100 {
            return Err(DomainError::invalid("location_ids", "at most 100 locations"));
        }
        if !self.location_ids.is_empty() && self.partner_id.is_none() {
            return Err(DomainError::invalid("location_ids", "locations need a partner_id"));
        }
        match (self.applies_to, &self.event_type) {
            (AppliesTo::Event, Some(t)) => crate::identity::parse_label("event_type", t, 64).map(|_| ())?,
            (AppliesTo::Event, None) => {
                return Err(DomainError::invalid(
                    "event_type",
                    "an event rule names the event type it reacts to",
                ));
            }
            (AppliesTo::Purchase, Some(_)) => {
                return Err(DomainError::invalid(
                    "event_type",
                    "only event rules have an event type",
                ));
            }
            (AppliesTo::Purchase, None) => {}
        }
        let window = Window {
            from: parse_time("valid_from", &self.valid_from)?,
            until: parse_time("valid_until", &self.valid_until)?,
        };
        if let (Some(f), Some(u)) = (window.from, window.until)
            && u <= f
        {
            return Err(DomainError::invalid("valid_until", "must be after valid_from"));
        }
        for (field, text) in [("condition", &self.condition), ("lines", &self.lines)] {
            if text.as_ref().is_some_and(|t| t.len() > MAX_EXPRESSION_LEN) {
                return Err(DomainError::invalid(
                    field,
                    format!("at most {MAX_EXPRESSION_LEN} characters"),
                ));
            }
        }
        if self.lines.is_some() && self.applies_to == AppliesTo::Event {
            return Err(DomainError::invalid("lines", "events have no lines"));
        }
        match &self.effect {
            Effect::PerAmount { points } => positive_decimal("effect.points", *points, 1_000)?,
            Effect::Multiplier { factor } => {
                if *factor <= Decimal::ONE || *factor > Decimal::from(100) {
                    return Err(DomainError::invalid(
                        "effect.factor",
                        "must be more than 1 and at most 100",
                    ));
                }
            }
            Effect::Fixed { points } | Effect::PerUnit { points, .. } => {
                if !(1..=10_000_000).contains(points) {
                    return Err(DomainError::invalid("effect.points", "must be 1 to 10000000"));
                }
            }
            Effect::Exclude => {}
        }
        if let Effect::PerUnit { max_units: Some(m), .. } = self.effect
            && !(1..=1_000_000).contains(&m)
        {
            return Err(DomainError::invalid("effect.max_units", "must be 1 to 1000000"));
        }
        if self.applies_to == AppliesTo::Event && !matches!(self.effect, Effect::Fixed { .. }) {
            return Err(DomainError::invalid(
                "effect",
                "an event rule gives a fixed number of points",
            ));
        }
        if matches!(self.effect, Effect::Exclude) && (!self.caps.is_empty() || self.budget.is_some()) {
            return Err(DomainError::invalid("effect", "an exclusion has no caps or budget"));
        }
        if self.caps.len() > MAX_CAPS {
            return Err(DomainError::invalid("caps", format!("at most {MAX_CAPS} caps")));
        }
        for cap in &self.caps {
            if !(1..=1_000_000_000).contains(&cap.points) {
                return Err(DomainError::invalid("caps.points", "must be 1 to 1000000000"));
            }
        }
        if self.budget.is_some_and(|b| !(1..=1_000_000_000_000).contains(&b)) {
            return Err(DomainError::invalid("budget", "must be 1 to 10^12 points"));
        }
        if self.funding.is_some_and(|f| f.operator_percent > 100) {
            return Err(DomainError::invalid("funding.operator_percent", "must be 0 to 100"));
        }
        if !(-1_000_000..=1_000_000).contains(&self.priority) {
            return Err(DomainError::invalid("priority", "must be between -1000000 and 1000000"));
        }
        Ok(window)
    }
}
