//! Closing a shared wallet: every point it holds split among its members, each receiving
//! lots with the dates the points had.

use crate::DomainError;
use crate::ids::MemberId;
use crate::ledger::{Account, EntryCode, Transfer};
use crate::lots::{Lot, LotOrigin, spend_order};
use crate::plan::{ActivityItem, ActivityKind, Balance, LotUpdate, MemberState, Plan};
use crate::wallets::conflict;
use jiff::Timestamp;

/// One member's share of a closing wallet's points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub member: MemberState,
    pub points: i64,
}

/// What closing a wallet writes: the wallet's plan (the transfers to each member) and
/// each receiving member's plan (their new lots and balances).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosePlan {
    pub wallet: Plan,
    pub members: Vec<(MemberId, Plan)>,
}

/// Closes a wallet at `now`: its available points are split as `shares` say, taken
/// from its lots soonest expiry first, each member receiving lots with the dates of
/// the points they got. The shares must add up to everything it holds, and nothing may
/// be pending (it would arrive after the wallet closed). `wallet` must have its lots,
/// already settled at `now` (the caller settles first).
pub fn plan_close(wallet: &MemberState, shares: &[Share], now: Timestamp) -> Result<ClosePlan, DomainError> {
    let Some(wallet_id) = wallet.wallet.as_ref() else {
        return Err(DomainError::Invariant("closing a wallet was given a member's state"));
    };
    if !wallet.lots_loaded {
        return Err(DomainError::Invariant("closing a wallet was not given its lots"));
    }
    if wallet.balance.pending > 0 {
        return Err(conflict(
            "wallet_not_empty",
            format!(
                "{} points are still pending; close the wallet once they are available",
                wallet.balance.pending
            ),
        ));
    }
    let total: i64 = shares
        .iter()
        .try_fold(0i64, |sum, s| sum.checked_add(s.points))
        .unwrap_or(i64::MAX);
    if total != wallet.balance.available {
        return Err(conflict(
            "wallet_not_empty",
            format!(
                "the wallet holds {} points and the split gives out {total}: give out every point",
                wallet.balance.available
            ),
        ));
    }
    if let Some(negative) = shares.iter().find(|s| s.points < 0) {
        return Err(DomainError::invalid(
            "split",
            format!("{} is given a negative share", negative.member.member_id),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = shares.iter().find(|s| !seen.insert(&s.member.member_id)) {
        return Err(DomainError::invalid(
            "split",
            format!("{} is named twice: give each member one share", twice.member.member_id),
        ));
    }
    let mut lots: Vec<Lot> = wallet.lots.iter().filter(|l| l.remaining > 0).cloned().collect();
    let order = spend_order(&lots);
    let mut next = order.into_iter().peekable();
    let mut out = ClosePlan {
        wallet: Plan::default(),
        members: Vec::new(),
    };
    for share in shares {
        if share.points <= 0 {
            continue;
        }
        let member = &share.member;
        let mut received: Vec<Lot> = Vec::new();
        let mut left = share.points;
        while left > 0 {
            let Some(&i) = next.peek() else {
                return Err(DomainError::Invariant("a wallet's lots hold less than its balance"));
            };
            let take = left.min(lots[i].remaining);
            lots[i].remaining -= take;
            left -= take;
            received.push(Lot {
                id: None,
                remaining: take,
                origin: LotOrigin::Split,
                matures_at: None,
                ..lots[i].clone()
            });
            if lots[i].remaining == 0 {
                next.next();
            }
        }
        out.wallet.transfers.push(Transfer {
            from: Account::WalletAvailable(wallet_id.to_string()),
            to: Account::MemberAvailable(member.member_id.to_string()),
            points: share.points,
            code: EntryCode::WalletSplit,
            transaction_id: None,
            return_id: None,
        });
        out.wallet.activity.push(ActivityItem {
            kind: ActivityKind::Split,
            at: now,
            points: -share.points,
            partner_id: None,
            transaction_id: None,
            description: format!(
                "{} points passed to {} as the wallet closed",
                share.points, member.member_id
            ),
        });
        let balance = Balance {
            available: member
                .balance
                .available
                .checked_add(share.points)
                .filter(|b| *b <= crate::money::MAX_BALANCE)
                .ok_or_else(|| DomainError::LimitExceeded {
                    code: "balance_limit_exceeded",
                    message: format!("{} would hold more points than a member may", member.member_id),
                })?,
            ..member.balance
        };
        let due = received.iter().filter_map(Lot::due_at).min();
        out.members.push((
            member.member_id.clone(),
            Plan {
                new_lots: received,
                activity: vec![ActivityItem {
                    kind: ActivityKind::Split,
                    at: now,
                    points: share.points,
                    partner_id: None,
                    transaction_id: None,
                    description: format!("{} points from shared wallet {wallet_id} as it closed", share.points),
                }],
                balance_after: balance,
                next_due_at: match (member.next_due_at, due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                ..Plan::default()
            },
        ));
    }
    out.wallet.lot_updates = lots
        .iter()
        .zip(wallet.lots.iter().filter(|l| l.remaining > 0))
        .filter(|(after, before)| after.remaining != before.remaining)
        .filter_map(|(after, _)| {
            after.id.map(|id| LotUpdate {
                id,
                remaining: after.remaining,
                matures_at: after.matures_at,
            })
        })
        .collect();
    out.wallet.balance_after = Balance {
        available: 0,
        ..wallet.balance
    };
    out.wallet.next_due_at = None;
    Ok(out)
}

#[cfg(test)]
mod tests;
