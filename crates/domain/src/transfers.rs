//! Points members give each other. The operator's policy says who may send and how
//! much (limits against fraud and point farming); [`crate::decide::decide_transfer`]
//! decides one transfer from the facts the store reads, and [`crate::plan::plan_send`]
//! and [`crate::plan::plan_receive`] move the points with their dates.

use crate::DomainError;
use crate::ids::{MemberId, TransferId};
use crate::money::MAX_POINTS;
use crate::rewards::LimitPeriod;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The longest note a sender may attach, in characters.
pub const MAX_NOTE_CHARS: usize = 200;
/// The longest minimum membership age the operator may set, in days.
pub const MAX_MEMBERSHIP_DAYS: u32 = 3650;
/// The most purchases the operator may require before a member sends.
pub const MAX_REQUIRED_PURCHASES: u32 = 1000;

/// Who may send points to another member, and how many. Off until the operator opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferPolicy {
    /// Whether members may send points at all.
    pub enabled: bool,
    /// The smallest transfer, in points.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub min_points: i64,
    /// Points a member may send per calendar day (UTC).
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub max_per_day: i64,
    /// Points a member may send per calendar month (UTC); at least `max_per_day`.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub max_per_month: i64,
    /// Days a member must have been a member before sending.
    #[schema(minimum = 0, maximum = 3650)]
    pub min_membership_days: u32,
    /// Purchases at partners' tills a member must have made before sending.
    #[schema(minimum = 0, maximum = 1000)]
    pub min_purchases: u32,
}

impl Default for TransferPolicy {
    fn default() -> Self {
        TransferPolicy {
            enabled: false,
            min_points: 1,
            max_per_day: 1_000,
            max_per_month: 5_000,
            min_membership_days: 30,
            min_purchases: 1,
        }
    }
}

impl TransferPolicy {
    /// Checks the policy the operator wrote.
    pub fn check(&self) -> Result<(), DomainError> {
        let field = |name, v: i64| {
            if (1..=MAX_POINTS).contains(&v) {
                Ok(())
            } else {
                Err(DomainError::invalid(name, format!("must be 1 to {MAX_POINTS} points")))
            }
        };
        field("transfers.min_points", self.min_points)?;
        field("transfers.max_per_day", self.max_per_day)?;
        field("transfers.max_per_month", self.max_per_month)?;
        if self.max_per_month < self.max_per_day {
            return Err(DomainError::invalid(
                "transfers.max_per_month",
                "must be at least max_per_day",
            ));
        }
        if self.min_points > self.max_per_day {
            return Err(DomainError::invalid(
                "transfers.min_points",
                "must be at most max_per_day",
            ));
        }
        if self.min_membership_days > MAX_MEMBERSHIP_DAYS {
            return Err(DomainError::invalid(
                "transfers.min_membership_days",
                format!("must be 0 to {MAX_MEMBERSHIP_DAYS}"),
            ));
        }
        if self.min_purchases > MAX_REQUIRED_PURCHASES {
            return Err(DomainError::invalid(
                "transfers.min_purchases",
                format!("must be 0 to {MAX_REQUIRED_PURCHASES}"),
            ));
        }
        Ok(())
    }
}

/// When the day and the month (UTC) that hold `now` began: what a sender sent since
/// counts toward the daily and monthly limits.
pub fn limit_windows(now: Timestamp) -> (Timestamp, Timestamp) {
    (
        crate::rewards::period_start(LimitPeriod::Day, now),
        crate::rewards::period_start(LimitPeriod::Month, now),
    )
}

/// A transfer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTransfer {
    pub id: TransferId,
    pub from: MemberId,
    pub to: MemberId,
    pub points: i64,
    pub note: Option<String>,
    pub created_at: Timestamp,
}

/// Which side of a transfer a member is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Sent,
    Received,
}

/// A transfer as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferView {
    pub id: String,
    pub from_member_id: String,
    pub to_member_id: String,
    pub points: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub created_at: String,
    /// In a member's list: whether she sent or received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The sender's balance after sending (in the answer to a transfer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<crate::receipt::BalanceView>,
}

impl MemberTransfer {
    /// The view, from `member`'s side when given.
    pub fn view(&self, member: Option<&MemberId>) -> TransferView {
        TransferView {
            id: self.id.to_string(),
            from_member_id: self.from.to_string(),
            to_member_id: self.to.to_string(),
            points: self.points,
            note: self.note.clone(),
            created_at: self.created_at.to_string(),
            direction: member.map(|m| match *m == self.from {
                true => Direction::Sent,
                false => Direction::Received,
            }),
            balance: None,
        }
    }
}
