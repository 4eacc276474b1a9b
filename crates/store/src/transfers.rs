//! What both backends share about transfers between members: the facts the policy reads,
//! the stored record and its answer.

use crate::StoreError;
use crate::codec::to_json;
use crate::model::{TransferCmd, from_micros, to_micros};
use jiff::Timestamp;
use tally_domain::decide::TransferFacts;
use tally_domain::ids::{Id, MemberId, TransferId};
use tally_domain::plan::Plan;
use tally_domain::receipt::BalanceView;
use tally_domain::transfers::MemberTransfer;

/// The columns a transfer is read from, in [`transfer_from`]'s order.
pub(crate) const TRANSFER_COLUMNS: &str = "id, from_member, to_member, points, note, created_at";

/// A transfer from its columns.
pub(crate) fn transfer_from(
    id: String,
    from: String,
    to: String,
    points: i64,
    note: Option<String>,
    created_at: i64,
) -> MemberTransfer {
    MemberTransfer {
        id: TransferId::from_stored(id),
        from: MemberId::from_stored(from),
        to: MemberId::from_stored(to),
        points,
        note,
        created_at: from_micros(created_at),
    }
}

/// The sender's facts as the policy reads them, from what the store counted.
pub(crate) fn transfer_facts(
    joined_at: i64,
    purchases: i64,
    (sent_today, sent_this_month): (i64, i64),
    same_household: bool,
) -> TransferFacts {
    TransferFacts {
        joined_at: from_micros(joined_at),
        purchases: purchases.max(0) as u64,
        sent_today,
        sent_this_month,
        same_household,
    }
}

/// Since when (stored micros) sent points count today and this month.
pub(crate) fn windows(now: Timestamp) -> (i64, i64) {
    let (day, month) = tally_domain::transfers::limit_windows(now);
    (to_micros(day), to_micros(month))
}

/// When the UTC day that holds `now` began.
pub(crate) fn day_start(now: Timestamp) -> Timestamp {
    tally_domain::transfers::limit_windows(now).0
}

/// The transfer the command records, to `to`.
pub(crate) fn new_transfer(cmd: &TransferCmd, to: MemberId) -> MemberTransfer {
    MemberTransfer {
        id: cmd.transfer_id.clone(),
        from: cmd.from.clone(),
        to,
        points: cmd.points,
        note: cmd.note.clone(),
        created_at: cmd.now,
    }
}

/// The answer to the sender, kept for a retry: the transfer and her balance after it.
pub(crate) fn receipt_json(t: &MemberTransfer, sender: &Plan) -> Result<String, StoreError> {
    let mut view = t.view(None);
    view.balance = Some(BalanceView {
        available: sender.balance_after.available,
        pending: sender.balance_after.pending,
    });
    to_json(&view)
}
