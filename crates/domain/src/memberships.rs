//! Paid memberships: plans the operator sells, a member's membership of one, and what a
//! payment, a cancellation and the passing of time do to it.
//!
//! Payments happen outside Tally (a card processor); the processor or the operator's
//! back end records each one. A payment pays the next period of the plan: from the end of
//! what is covered (the trial, or the last paid period), or from the day the membership
//! started. Fees are money and are kept apart from the points ledger; a plan's bonus
//! points for the paid period are posted with the payment, once, funded by the
//! programme (ledger code `membership_bonus`).
//!
//! Status, from the dates alone:
//! - `trialing`: in the trial, nothing paid yet;
//! - `active`: inside a paid period;
//! - `past_due`: the covered time ended, within the grace days;
//! - `cancelled`: cancelled, running to the end of what is covered;
//! - `expired`: past the grace days unpaid, or past the end of a cancelled one.

use crate::DomainError;
use crate::breakdown::BreakdownLine;
use crate::money::Money;
use jiff::{Span, Timestamp, tz::TimeZone};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most plans a programme may have.
pub const MAX_PLANS: usize = 50;
/// The largest price of a plan, in minor units.
pub const MAX_PRICE_MINOR: i64 = 100_000_000;
/// The most bonus points a plan gives per paid period.
pub const MAX_BONUS_POINTS: i64 = 1_000_000;
/// Days an unpaid membership stays `past_due` before it expires.
pub const GRACE_DAYS: u32 = 14;

/// How often a plan is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingInterval {
    Month,
    Year,
}

/// What a plan gives its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanBenefits {
    /// Applied to base points, as a breakdown line of its own (1: none).
    #[serde(with = "rust_decimal::serde::str")]
    pub earn_multiplier: Decimal,
    /// Points posted with each paid period.
    pub bonus_points: i64,
    /// Members see rewards before everyone else.
    pub early_access: bool,
    /// One reward free per paid period.
    pub free_reward: bool,
}

/// A plan the operator sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipPlan {
    /// What rules read as `member.plan`.
    pub code: String,
    pub name: String,
    #[serde(with = "stored_money")]
    pub price: Money,
    pub interval: BillingInterval,
    pub benefits: PlanBenefits,
    pub trial_days: u32,
}

impl MembershipPlan {
    /// Checks a plan as the operator sent it.
    pub fn check(mut self) -> Result<MembershipPlan, DomainError> {
        if !crate::identity::is_code(&self.code) {
            return Err(DomainError::invalid(
                "code",
                "must be 1 to 32 lower-case letters, digits or _",
            ));
        }
        self.name = crate::identity::parse_label("name", &self.name, 80)?;
        if !(1..=MAX_PRICE_MINOR).contains(&self.price.amount) {
            return Err(DomainError::invalid(
                "price",
                format!("amount must be 1 to {MAX_PRICE_MINOR} minor units"),
            ));
        }
        let m = self.benefits.earn_multiplier;
        if m < Decimal::ONE || m > Decimal::TEN || m.normalize().scale() > 2 {
            return Err(DomainError::invalid(
                "benefits",
                "earn_multiplier must be from 1 to 10 with at most two decimals",
            ));
        }
        self.benefits.earn_multiplier = m.normalize();
        if !(0..=MAX_BONUS_POINTS).contains(&self.benefits.bonus_points) {
            return Err(DomainError::invalid(
                "benefits",
                format!("bonus_points must be 0 to {MAX_BONUS_POINTS}"),
            ));
        }
        if self.trial_days > 365 {
            return Err(DomainError::invalid("trial_days", "must be 0 to 365"));
        }
        Ok(self)
    }

    /// The end of a period of this plan that starts at `start`.
    pub fn period_end(&self, start: Timestamp) -> Timestamp {
        let span = match self.interval {
            BillingInterval::Month => Span::new().months(1),
            BillingInterval::Year => Span::new().years(1),
        };
        start
            .to_zoned(TimeZone::UTC)
            .checked_add(span)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }
}

/// Money as stored and shown: `{"amount": 499, "currency": "EUR"}`.
pub(crate) mod stored_money {
    use crate::money::{Currency, Money};
    use crate::receipt::MoneyView;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
        MoneyView::from(*m).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let v = MoneyView::deserialize(d)?;
        let currency = Currency::parse(&v.currency).map_err(serde::de::Error::custom)?;
        Ok(Money {
            amount: v.amount,
            currency,
        })
    }
}

/// Where a membership stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MembershipStatus {
    Trialing,
    Active,
    PastDue,
    Cancelled,
    Expired,
}

impl MembershipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipStatus::Trialing => "trialing",
            MembershipStatus::Active => "active",
            MembershipStatus::PastDue => "past_due",
            MembershipStatus::Cancelled => "cancelled",
            MembershipStatus::Expired => "expired",
        }
    }

    /// Whether the member has the plan's benefits (and `member.plan` names it).
    pub fn holds_plan(self) -> bool {
        !matches!(self, MembershipStatus::Expired)
    }
}

/// A member's membership of a plan, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub started_at: Timestamp,
    pub trial_until: Option<Timestamp>,
    /// The end of the last paid period.
    pub paid_until: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
}

fn add_days(at: Timestamp, days: u32) -> Timestamp {
    crate::time::add_days(at, days)
}

impl Membership {
    /// A new membership of `plan` starting at `now` (in its trial, if it has one).
    pub fn start(plan: &MembershipPlan, now: Timestamp) -> Membership {
        Membership {
            started_at: now,
            trial_until: (plan.trial_days > 0).then(|| add_days(now, plan.trial_days)),
            paid_until: None,
            cancelled_at: None,
        }
    }

    /// The end of what is covered: the last paid period, the trial, or the start.
    pub fn covered_until(&self) -> Timestamp {
        [Some(self.started_at), self.trial_until, self.paid_until]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(self.started_at)
    }

    pub fn status(&self, now: Timestamp) -> MembershipStatus {
        let covered = self.covered_until();
        if self.cancelled_at.is_some() {
            return match now < covered {
                true => MembershipStatus::Cancelled,
                false => MembershipStatus::Expired,
            };
        }
        if self.paid_until.is_some_and(|p| now < p) {
            return MembershipStatus::Active;
        }
        if self.trial_until.is_some_and(|t| now < t) {
            return MembershipStatus::Trialing;
        }
        match now < add_days(covered, GRACE_DAYS) {
            true => MembershipStatus::PastDue,
            false => MembershipStatus::Expired,
        }
    }

    /// When the status next changes with time alone (`None`: never again).
    pub fn next_change_at(&self, now: Timestamp) -> Option<Timestamp> {
        let covered = self.covered_until();
        let lapse = match self.cancelled_at {
            Some(_) => covered,
            None => add_days(covered, GRACE_DAYS),
        };
        [self.trial_until, self.paid_until, Some(covered), Some(lapse)]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// Whether the member has the plan's benefits now: not ended, and covered by a
    /// trial or a payment (a membership never paid, without a trial, gives nothing).
    pub fn holds_plan(&self, now: Timestamp) -> bool {
        self.status(now).holds_plan() && (self.trial_until.is_some() || self.paid_until.is_some())
    }

    /// When the membership ended, if it has (for churn).
    pub fn ended_at(&self, now: Timestamp) -> Option<Timestamp> {
        (self.status(now) == MembershipStatus::Expired).then(|| match self.cancelled_at {
            Some(c) => self.covered_until().max(c),
            None => add_days(self.covered_until(), GRACE_DAYS),
        })
    }
}

/// What a recorded payment pays for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidPeriod {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The plan's bonus points for the period (0: none to post).
    pub bonus_points: i64,
}

/// Decides a payment: the exact price of the plan, for a membership that is not over.
/// It pays the period after what is covered.
pub fn decide_payment(
    membership: &Membership,
    plan: &MembershipPlan,
    amount: Money,
    now: Timestamp,
) -> Result<PaidPeriod, DomainError> {
    if amount.currency != plan.price.currency || amount.amount != plan.price.amount {
        return Err(DomainError::PaymentMismatch {
            expected: format!("{} {}", plan.price.amount, plan.price.currency.code()),
        });
    }
    match membership.status(now) {
        MembershipStatus::Expired => return Err(DomainError::MembershipOver("expired")),
        MembershipStatus::Cancelled => return Err(DomainError::MembershipOver("cancelled")),
        _ => {}
    }
    let start = membership.covered_until();
    // One period ahead at most: what is paid must be something the member can use.
    if start > plan.period_end(now) {
        return Err(DomainError::LimitExceeded {
            code: "paid_ahead",
            message: "the membership is already paid more than a period ahead".into(),
        });
    }
    Ok(PaidPeriod {
        start,
        end: plan.period_end(start),
        bonus_points: plan.benefits.bonus_points,
    })
}

/// The answer to a recorded payment (the same answer again for a retry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentReceipt {
    pub id: String,
    pub membership_id: String,
    /// The processor's id for the payment.
    pub external_id: String,
    pub amount: crate::receipt::MoneyView,
    /// The paid period (RFC 3339).
    pub period_start: String,
    pub period_end: String,
    /// The plan's bonus points posted for the period (ledger code `membership_bonus`).
    pub bonus_points: i64,
    /// The membership's status after the payment.
    pub status: MembershipStatus,
    /// The member's balance after the bonus.
    pub balance: crate::receipt::BalanceView,
}

/// A member's memberships, each with its plan code.
pub struct Held<'a> {
    pub plan_code: &'a str,
    pub membership: &'a Membership,
}

/// The plan a member holds now (`member.plan`): that of their newest membership that
/// holds one, if any.
pub fn member_plan<'a>(memberships: impl IntoIterator<Item = Held<'a>>, now: Timestamp) -> Option<String> {
    memberships
        .into_iter()
        .filter(|h| h.membership.holds_plan(now))
        .max_by_key(|h| h.membership.started_at)
        .map(|h| h.plan_code.to_string())
}

/// Whether a member may start a membership: none of theirs may still run, except a
/// cancelled one running out (the new one replaces it).
pub fn may_start(memberships: impl IntoIterator<Item = Membership>, now: Timestamp) -> Result<(), DomainError> {
    let running = memberships
        .into_iter()
        .any(|m| !matches!(m.status(now), MembershipStatus::Expired | MembershipStatus::Cancelled));
    match running {
        true => Err(DomainError::LimitExceeded {
            code: "membership_exists",
            message: "the member already has a membership that has not ended".into(),
        }),
        false => Ok(()),
    }
}

/// Whether a membership may be cancelled (an ended one may not; cancelling again
/// changes nothing).
pub fn may_cancel(m: &Membership, now: Timestamp) -> Result<(), DomainError> {
    match m.cancelled_at.is_none() && m.status(now) == MembershipStatus::Expired {
        true => Err(DomainError::MembershipOver("expired")),
        false => Ok(()),
    }
}

/// The plan's bonus on a sale's base points, as a breakdown line (`None` at multiplier 1).
pub fn plan_bonus(plan: &MembershipPlan, base_points: i64) -> Option<BreakdownLine> {
    crate::breakdown::multiplier_line("plan", &plan.name, plan.benefits.earn_multiplier, base_points)
}

#[cfg(test)]
mod tests;
