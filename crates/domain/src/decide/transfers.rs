//! A member sending points to another: refused by the operator's policy, or planned as
//! two plans, one per member, written together.

use crate::DomainError;
use crate::plan::{MemberState, Plan, TakenLot, plan_receive, plan_send, plan_settle};
use crate::transfers::TransferPolicy;
use jiff::{SignedDuration, Timestamp};

/// What the store read about the sender, as the policy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferFacts {
    /// When the sender became a member.
    pub joined_at: Timestamp,
    /// Purchases the sender made at partners' tills.
    pub purchases: u64,
    /// Points the sender sent since the day (UTC) began, and since the month began.
    pub sent_today: i64,
    pub sent_this_month: i64,
    /// Whether the two belong to one household.
    pub same_household: bool,
}

/// What to write for a transfer: each side's plan, and the lots the points came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferDecision {
    pub sender: Plan,
    pub recipient: Plan,
    pub taken: Vec<TakenLot>,
}

fn refused(code: &'static str, message: String) -> DomainError {
    DomainError::Refused { code, message }
}

/// Decides `points` sent from `sender` to `recipient` at `now` as `transfer_id`.
/// Both states must hold their lots.
pub fn decide_transfer(
    policy: &TransferPolicy,
    facts: &TransferFacts,
    sender: &MemberState,
    recipient: &MemberState,
    transfer_id: &str,
    points: i64,
    now: Timestamp,
) -> Result<TransferDecision, DomainError> {
    if sender.member_id == recipient.member_id {
        return Err(DomainError::invalid("to", "a member cannot send points to herself"));
    }
    if !policy.enabled {
        return Err(refused(
            "transfers_closed",
            "the programme does not let members send each other points".into(),
        ));
    }
    if points < policy.min_points {
        return Err(refused(
            "transfer_too_small",
            format!("send at least {} points", policy.min_points),
        ));
    }
    if facts.same_household {
        return Err(refused(
            "same_household",
            "members of one household share their points in its wallet; they do not send them to each other".into(),
        ));
    }
    let may_send_from = facts
        .joined_at
        .checked_add(SignedDuration::from_hours(24 * i64::from(policy.min_membership_days)))
        .unwrap_or(Timestamp::MAX);
    if now < may_send_from {
        return Err(refused(
            "member_too_new",
            format!(
                "members can send points {} days after joining: this member from {}",
                policy.min_membership_days,
                may_send_from.strftime("%Y-%m-%d")
            ),
        ));
    }
    if facts.purchases < u64::from(policy.min_purchases) {
        return Err(refused(
            "needs_purchase",
            format!(
                "members can send points after {} purchase(s) at a partner; this member has made {}",
                policy.min_purchases, facts.purchases
            ),
        ));
    }
    let left_today = policy.max_per_day.saturating_sub(facts.sent_today).max(0);
    if points > left_today {
        return Err(refused(
            "daily_limit_reached",
            format!(
                "a member may send {} points a day; {left_today} more today",
                policy.max_per_day
            ),
        ));
    }
    let left_month = policy.max_per_month.saturating_sub(facts.sent_this_month).max(0);
    if points > left_month {
        return Err(refused(
            "monthly_limit_reached",
            format!(
                "a member may send {} points a month; {left_month} more this month",
                policy.max_per_month
            ),
        ));
    }
    let available = plan_settle(sender, now)?.balance_after.available;
    if points > available {
        return Err(DomainError::InsufficientPoints {
            available,
            requested: points,
        });
    }
    let (sender_plan, taken) = plan_send(
        sender,
        transfer_id,
        points,
        format!("Sent {points} points to member {}", recipient.member_id),
        now,
    )?;
    let recipient_plan = plan_receive(
        recipient,
        transfer_id,
        &taken,
        format!("{points} points from member {}", sender.member_id),
        now,
    )?;
    Ok(TransferDecision {
        sender: sender_plan,
        recipient: recipient_plan,
        taken,
    })
}

#[cfg(test)]
mod tests;
