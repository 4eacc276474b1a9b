//! What exchanging with another programme does to a member's points: an outbound order
//! takes them to `exchange:<id>:pending`; confirmed they move on to `exchange:<id>:out`,
//! failed they come back as the lots they were taken from; units credited inbound arrive
//! from `exchange:<id>:in` as a new lot.

use super::{ActivityKind, MemberState, Plan, TakenLot, Working, needs_lots, require_lots};
use crate::DomainError;
use crate::ledger::{Account, EntryCode};
use crate::lots::{Lot, LotOrigin};
use crate::money::MAX_BALANCE;
use crate::time::add_months;
use jiff::Timestamp;

/// The order confirmed by the other programme: its points leave the pending account for
/// good. What the member holds does not change; her history says so.
pub fn plan_exchange_confirm(
    state: &MemberState,
    partner: &str,
    order_id: &str,
    points: i64,
    description: String,
    now: Timestamp,
) -> Result<Plan, DomainError> {
    let passed = super::Passed {
        from: Account::ExchangePending(partner.to_string()),
        to: Account::ExchangeOut(partner.to_string()),
        points,
        code: EntryCode::ExchangeConfirm,
        kind: ActivityKind::ExchangeConfirm,
        partner: None,
        id: order_id,
        description,
    };
    super::pass_on(state, passed, now)
}

/// The order failed: its points come back as the lots they were taken from (what has
/// expired since expires in the same plan).
pub fn plan_exchange_refund(
    state: &MemberState,
    partner: &str,
    order_id: &str,
    taken: &[TakenLot],
    description: String,
    now: Timestamp,
) -> Result<Plan, DomainError> {
    super::give_back(
        state,
        Account::ExchangePending(partner.to_string()),
        EntryCode::ExchangeRefund,
        ActivityKind::ExchangeRefund,
        order_id,
        taken,
        description,
        now,
    )
}

/// Units from another programme credited as `points`, a new lot that expires as earned
/// points do (`expiry_months`).
pub fn plan_exchange_credit(
    state: &MemberState,
    partner: &str,
    credit_id: &str,
    points: i64,
    expiry_months: u32,
    description: String,
    now: Timestamp,
) -> Result<Plan, DomainError> {
    if needs_lots(0, state.next_due_at, now) {
        require_lots(state)?;
    }
    let mut w = Working::new(state, now, now);
    w.settle();
    let holds = w.balance.available.saturating_add(w.balance.pending);
    if holds.checked_add(points).is_none_or(|b| b > MAX_BALANCE) {
        return Err(DomainError::LimitExceeded {
            code: "balance_limit_exceeded",
            message: "the member would hold more points than a member may".into(),
        });
    }
    let to = w.available();
    w.transfer(
        Account::ExchangeIn(partner.to_string()),
        to,
        points,
        EntryCode::ExchangeIn,
        Some(credit_id),
        None,
    );
    w.lots.push(Lot {
        id: None,
        remaining: points,
        earned_at: now,
        expires_at: add_months(now, expiry_months),
        matures_at: None,
        transaction_id: Some(credit_id.to_string()),
        origin: LotOrigin::Exchange,
    });
    w.activity(ActivityKind::ExchangeIn, points, None, Some(credit_id), description);
    w.finish()
}
