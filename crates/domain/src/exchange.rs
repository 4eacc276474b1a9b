//! Exchange with other programmes (an airline's miles, a hotel chain's points): the
//! operator's exchange partners with their rate, minimum, step and daily limit, and the
//! orders and credits that move points out of and into Tally.
//!
//! Outbound, a member's points leave her lots for `exchange:<id>:pending` at once, and
//! the order waits for the operator's back end: confirmed, they move on to
//! `exchange:<id>:out`; failed, they come back to her as the lots they were taken from,
//! exactly once. Inbound, the other programme's units arrive as points from
//! `exchange:<id>:in`, once per reference.

use crate::DomainError;
use crate::ids::{ExchangeOrderId, ExchangePartnerId, MemberId};
use crate::money::MAX_POINTS;
use crate::plan::TakenLot;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The largest number of points or units on either side of a rate.
pub const MAX_RATE_SIDE: i64 = 1_000_000;

/// Which way points may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeDirection {
    /// Members turn points into the other programme's units.
    Out,
    /// The other programme sends its members' units in as points.
    In,
    Both,
}

impl ExchangeDirection {
    pub fn allows_out(self) -> bool {
        matches!(self, ExchangeDirection::Out | ExchangeDirection::Both)
    }
    pub fn allows_in(self) -> bool {
        matches!(self, ExchangeDirection::In | ExchangeDirection::Both)
    }
}

/// `points` Tally points are worth `units` of the other programme's (100 points = 40
/// miles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRate {
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub points: i64,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub units: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl ExchangeRate {
    /// The units `points` are worth, when they are whole.
    pub fn units_for(&self, points: i64) -> Option<i64> {
        let wide = i128::from(points) * i128::from(self.units);
        (wide % i128::from(self.points) == 0)
            .then(|| i64::try_from(wide / i128::from(self.points)).ok())
            .flatten()
    }

    /// The points `units` are worth, when they are whole.
    pub fn points_for(&self, units: i64) -> Option<i64> {
        let wide = i128::from(units) * i128::from(self.points);
        (wide % i128::from(self.units) == 0)
            .then(|| i64::try_from(wide / i128::from(self.units)).ok())
            .flatten()
    }

    /// The smallest number of units that converts to whole points.
    pub fn unit_step(&self) -> i64 {
        self.units / gcd(self.points, self.units)
    }
}

/// An exchange partner as the operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeSpec {
    pub name: String,
    /// What the other programme calls its units ("miles").
    pub unit_name: String,
    pub direction: ExchangeDirection,
    pub rate: ExchangeRate,
    /// The fewest points a member may exchange out at once.
    pub min_points: i64,
    /// Outbound orders are whole multiples of this many points.
    pub step_points: i64,
    /// Points a member may exchange per UTC day, each way.
    pub daily_limit_points: i64,
    pub active: bool,
}

impl ExchangeSpec {
    /// Checks what the operator wrote; the names are checked by the caller.
    pub fn check(&self) -> Result<(), DomainError> {
        for (field, v) in [("rate.points", self.rate.points), ("rate.units", self.rate.units)] {
            if !(1..=MAX_RATE_SIDE).contains(&v) {
                return Err(DomainError::invalid(field, format!("must be 1 to {MAX_RATE_SIDE}")));
            }
        }
        for (field, v) in [
            ("min_points", self.min_points),
            ("step_points", self.step_points),
            ("daily_limit_points", self.daily_limit_points),
        ] {
            if !(1..=MAX_POINTS).contains(&v) {
                return Err(DomainError::invalid(field, format!("must be 1 to {MAX_POINTS} points")));
            }
        }
        if self.min_points % self.step_points != 0 {
            return Err(DomainError::invalid("min_points", "must be a whole number of steps"));
        }
        if self.daily_limit_points < self.min_points {
            return Err(DomainError::invalid(
                "daily_limit_points",
                "must be at least min_points",
            ));
        }
        if self
            .rate
            .units_for(self.daily_limit_points)
            .is_none_or(|u| u > MAX_POINTS)
        {
            return Err(DomainError::invalid(
                "daily_limit_points",
                format!("a day's points must be worth at most {MAX_POINTS} units"),
            ));
        }
        if self.rate.units_for(self.step_points).is_none() {
            let whole = self.rate.points / gcd(self.rate.points, self.rate.units);
            return Err(DomainError::invalid(
                "step_points",
                format!(
                    "every step must be worth whole {}: at {} points = {} {}, a multiple of {whole} points",
                    self.unit_name, self.rate.points, self.rate.units, self.unit_name
                ),
            ));
        }
        Ok(())
    }
}

/// A saved exchange partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangePartner {
    pub id: ExchangePartnerId,
    pub spec: ExchangeSpec,
}

/// Where an outbound order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Points taken, waiting for the other programme.
    Pending,
    /// The other programme credited the units: the points are gone for good.
    Confirmed,
    /// The other programme refused: the points came back.
    Failed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        match s {
            "pending" => Some(OrderStatus::Pending),
            "confirmed" => Some(OrderStatus::Confirmed),
            "failed" => Some(OrderStatus::Failed),
            _ => None,
        }
    }
}

/// A member's points exchanged out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeOrder {
    pub id: ExchangeOrderId,
    pub exchange_partner_id: ExchangePartnerId,
    pub member_id: MemberId,
    pub points: i64,
    pub units: i64,
    /// Her membership number in the other programme.
    pub external_member: String,
    pub status: OrderStatus,
    /// The lots the points came from: a failed order gives them back as they were.
    pub taken: Vec<TakenLot>,
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExchangeOrderView {
    pub id: String,
    pub exchange_partner_id: String,
    pub member_id: String,
    pub points: i64,
    pub units: i64,
    pub external_member_number: String,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub created_at: String,
    /// When it was confirmed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// The member's balance after the order (in the answer that placed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<crate::receipt::BalanceView>,
}

impl From<&ExchangeOrder> for ExchangeOrderView {
    fn from(o: &ExchangeOrder) -> Self {
        ExchangeOrderView {
            id: o.id.to_string(),
            exchange_partner_id: o.exchange_partner_id.to_string(),
            member_id: o.member_id.to_string(),
            points: o.points,
            units: o.units,
            external_member_number: o.external_member.clone(),
            status: o.status,
            failure_reason: o.failure_reason.clone(),
            created_at: o.created_at.to_string(),
            closed_at: o.closed_at.map(|t| t.to_string()),
            balance: None,
        }
    }
}

/// Units of another programme credited to a member as points (the answer kept for a
/// retry under the same reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExchangeCreditView {
    pub id: String,
    pub exchange_partner_id: String,
    pub member_id: String,
    /// The other programme's reference: one credit per reference.
    pub reference: String,
    pub units: i64,
    pub points: i64,
    pub created_at: String,
    /// The member's balance after it.
    pub balance: crate::receipt::BalanceView,
}
