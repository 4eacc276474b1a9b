//! What a transfer between members does to each side's points. The sender's points
//! leave her available lots, soonest expiry first, for `program:transfers`; they arrive
//! in the recipient's available points as lots with the dates they had, so giving
//! points away never lengthens their life.

use super::{ActivityKind, MemberState, Plan, Reservation, TakenLot, Working, needs_lots, plan_reserve, require_lots};
use crate::DomainError;
use crate::ledger::{Account, EntryCode};
use crate::lots::LotOrigin;
use crate::money::MAX_BALANCE;
use jiff::Timestamp;

/// The sender's side: settles what is due, then takes `points` from her spendable lots.
/// Answers the plan and what was taken from each lot (the recipient's lots).
pub fn plan_send(
    state: &MemberState,
    transfer_id: &str,
    points: i64,
    description: String,
    now: Timestamp,
) -> Result<(Plan, Vec<TakenLot>), DomainError> {
    let send = Reservation {
        id: transfer_id,
        points,
        to: Account::ProgramTransfers,
        code: EntryCode::TransferOut,
        kind: ActivityKind::TransferOut,
        partner: None,
        description,
    };
    plan_reserve(state, &send, now)
}

/// The recipient's side: settles what is due, then credits what the sender's lots gave
/// as lots with their dates.
pub fn plan_receive(
    state: &MemberState,
    transfer_id: &str,
    taken: &[TakenLot],
    description: String,
    now: Timestamp,
) -> Result<Plan, DomainError> {
    if needs_lots(0, state.next_due_at, now) {
        require_lots(state)?;
    }
    let points: i64 = taken.iter().map(|t| t.points).sum();
    let mut w = Working::new(state, now, now);
    w.settle();
    let holds = w.balance.available.saturating_add(w.balance.pending);
    if holds.checked_add(points).is_none_or(|b| b > MAX_BALANCE) {
        return Err(DomainError::LimitExceeded {
            code: "balance_limit_exceeded",
            message: "the recipient would hold more points than a member may".into(),
        });
    }
    w.credit_taken(
        Account::ProgramTransfers,
        EntryCode::TransferIn,
        transfer_id,
        taken,
        LotOrigin::Transfer,
    );
    w.activity(ActivityKind::TransferIn, points, None, Some(transfer_id), description);
    w.finish()
}
