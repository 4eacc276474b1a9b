//! What redeeming a reward does to a member's points: setting them aside for a voucher
//! (or giving them to a charity), the voucher used at its partner, and the points given
//! back (or forfeit) when a voucher is cancelled or expires unused.

use super::{ActivityKind, MemberState, Plan, Working, require_lots};
use crate::DomainError;
use crate::ledger::{Account, EntryCode};
use jiff::Timestamp;

/// Points a reservation took from one lot, with that lot's dates: a voucher given back
/// returns them as they were, so setting points aside never lengthens their life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TakenLot {
    pub points: i64,
    pub earned_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Points leaving a member's available balance for a reward.
#[derive(Debug, Clone)]
pub struct Reservation<'a> {
    /// The redemption's id: every entry and activity line links to it.
    pub id: &'a str,
    pub points: i64,
    /// `MemberReserved` for a voucher, `ProgramDonations` for a donation.
    pub to: Account,
    pub code: EntryCode,
    pub kind: ActivityKind,
    /// The partner that fulfils the reward, shown with the history line.
    pub partner: Option<&'a str>,
    /// What the member's history says.
    pub description: String,
}

/// Settles what is due, then takes `r.points` from the member's spendable lots
/// (soonest expiry first) to `r.to`. Answers the plan and what was taken from each lot.
pub fn plan_reserve(
    state: &MemberState,
    r: &Reservation<'_>,
    now: Timestamp,
) -> Result<(Plan, Vec<TakenLot>), DomainError> {
    if r.points <= 0 {
        return Err(DomainError::invalid("points", "must be more than zero"));
    }
    require_lots(state)?;
    let mut w = Working::new(state, now, now);
    w.settle();
    if r.points > w.balance.available {
        return Err(DomainError::InsufficientPoints {
            available: w.balance.available,
            requested: r.points,
        });
    }
    w.take_spendable(r.points, &r.to, r.code, r.id, None);
    w.activity(r.kind, -r.points, r.partner, Some(r.id), r.description.clone());
    let taken = std::mem::take(&mut w.taken);
    if taken.iter().map(|t| t.points).sum::<i64>() != r.points {
        super::invariant("the lots taken do not add up to the points reserved")?;
    }
    Ok((w.finish()?, taken))
}

/// A voucher used at its partner: its points move from the member's reserved account
/// to what the partner redeemed. What the member holds does not change; the history
/// says where the voucher was used.
pub fn plan_fulfil(
    state: &MemberState,
    redemption_id: &str,
    points: i64,
    partner: &str,
    description: String,
    now: Timestamp,
) -> Result<Plan, DomainError> {
    let passed = super::Passed {
        from: Account::MemberReserved(state.holder_id().to_string()),
        to: Account::PartnerRedeemed(partner.to_string()),
        points,
        code: EntryCode::RewardRedeem,
        kind: ActivityKind::RewardUse,
        partner: Some(partner),
        id: redemption_id,
        description,
    };
    super::pass_on(state, passed, now)
}

/// A voucher cancelled or expired unused. Its points come back into lots with the dates
/// they were taken from (what has expired since then expires in the same plan), or,
/// when `forfeit`, go to `program:expired`.
pub fn plan_release(
    state: &MemberState,
    redemption_id: &str,
    taken: &[TakenLot],
    forfeit: bool,
    description: String,
    now: Timestamp,
) -> Result<Plan, DomainError> {
    let reserved = Account::MemberReserved(state.holder_id().to_string());
    if !forfeit {
        return super::give_back(
            state,
            reserved,
            EntryCode::RewardRelease,
            ActivityKind::RewardRelease,
            redemption_id,
            taken,
            description,
            now,
        );
    }
    require_lots(state)?;
    let points: i64 = taken.iter().map(|t| t.points).sum();
    let mut w = Working::new(state, now, now);
    w.settle();
    w.transfer(
        reserved,
        Account::ProgramExpired,
        points,
        EntryCode::RewardForfeit,
        Some(redemption_id),
        None,
    );
    w.activity(ActivityKind::RewardForfeit, 0, None, Some(redemption_id), description);
    w.finish()
}
