//! A membership payment: the period it pays, and the plan's bonus points for it.

use crate::DomainError;
use crate::earning::{BreakdownLine, ProgramTerms, Valuation};
use crate::ledger::EntryCode;
use crate::memberships::{Membership, MembershipPlan, PaidPeriod, decide_payment};
use crate::money::Money;
use crate::plan::{MemberState, PartnerTerms, Plan, Purchase, plan_purchase};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// What to write for a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDecision {
    pub period: PaidPeriod,
    /// The bonus points' plan (ledger code `membership_bonus`, funded by the
    /// programme), when the plan gives any.
    pub bonus: Option<Plan>,
}

/// Decides a payment of `amount` for `membership` of `plan`, recorded as `payment_id`.
/// The bonus is written with the payment, in the same transaction, so a period's bonus
/// is posted exactly once: the payment's id never records twice.
pub fn decide_membership_payment(
    state: &MemberState,
    membership: &Membership,
    plan: &MembershipPlan,
    program: &ProgramTerms,
    amount: Money,
    payment_id: &str,
    now: Timestamp,
) -> Result<PaymentDecision, DomainError> {
    let period = decide_payment(membership, plan, amount, now)?;
    if period.bonus_points == 0 {
        return Ok(PaymentDecision { period, bonus: None });
    }
    let day = |t: Timestamp| t.to_zoned(TimeZone::UTC).date();
    let label = format!(
        "Membership bonus: {}, {} to {}",
        plan.name,
        day(period.start),
        day(period.end)
    );
    let valuation = Valuation {
        points_earned: period.bonus_points,
        breakdown: vec![BreakdownLine {
            rule: "membership_bonus".into(),
            version: None,
            points: period.bonus_points,
            reason: label.clone(),
            operator_percent: 100,
        }],
        redeemed_value_minor: 0,
        redeemed_value_local_minor: 0,
        earning_amount: rust_decimal::Decimal::ZERO,
    };
    let programme = PartnerTerms::programme("the programme");
    let purchase = Purchase {
        transaction_id: payment_id,
        partner: &programme,
        occurred_at: now,
        redeem_points: 0,
        valuation: &valuation,
        label: Some(&label),
        code: EntryCode::MembershipBonus,
    };
    let bonus = plan_purchase(state, program, &purchase, now)?;
    Ok(PaymentDecision {
        period,
        bonus: Some(bonus),
    })
}
