//! Shared wallets: the pooled points of a household (a family, friends) or a business.
//!
//! A shared wallet holds points of its own: its own ledger accounts
//! (`wallet:<id>:available`, `wallet:<id>:pending`), balances and lots, which mature and
//! expire exactly as a member's do (the plans run on a [`MemberState`] whose `wallet`
//! is set). Members belong to it with two rights: `earn_into` (what they earn at the
//! till goes to the wallet) and `spend` (they may pay with its points). Every entry on
//! a wallet's accounts names the member who earned or spent it, so a statement per
//! member comes from the ledger.
//!
//! A member belongs to at most one household and to any number of businesses. A sale
//! uses one shared wallet at most: the one the till names, or the member's default.

use crate::DomainError;
use crate::ids::{MemberId, WalletId};
use crate::ledger::{Account, EntryCode, Transfer};
use crate::lots::{Lot, LotOrigin, spend_order};
use crate::plan::{ActivityItem, ActivityKind, Balance, LotUpdate, MemberState, Plan};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The two kinds of shared wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WalletKind {
    /// A family or friends: an owner invites members by code; one per member.
    Household,
    /// A company with contact persons; a member may be a contact of several.
    Business,
}

impl WalletKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WalletKind::Household => "household",
            WalletKind::Business => "business",
        }
    }

    pub fn parse(s: &str) -> Option<WalletKind> {
        match s {
            "household" => Some(WalletKind::Household),
            "business" => Some(WalletKind::Business),
            _ => None,
        }
    }
}

/// What a member may do with a shared wallet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rights {
    /// The member's points earned at the till go to the wallet.
    pub earn_into: bool,
    /// The member may pay with the wallet's points at the till.
    pub spend: bool,
}

/// A member's place in a shared wallet, as a sale reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletLink {
    pub wallet_id: WalletId,
    pub kind: WalletKind,
    pub rights: Rights,
}

/// Where a sale's points go to and come from: the shared wallet, or the member's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaleRoute {
    pub earns_into_wallet: bool,
    pub pays_from_wallet: bool,
}

impl SaleRoute {
    pub fn uses_wallet(self) -> bool {
        self.earns_into_wallet || self.pays_from_wallet
    }
}

/// Routes a sale: with a shared wallet in play (named by the till, or the member's
/// default), the member's earnings go to it if they have `earn_into`, and points to
/// redeem come from it, which needs `spend`. `named` is the wallet the till named;
/// `link` the member's place in it (or in their default wallet), as read.
pub fn route_sale(
    named: Option<&WalletId>,
    link: Option<&WalletLink>,
    redeem_points: i64,
) -> Result<SaleRoute, DomainError> {
    if let Some(named) = named
        && link.is_none_or(|l| &l.wallet_id != named)
    {
        return Err(DomainError::NotInWallet(named.to_string()));
    }
    let Some(link) = link else {
        return Ok(SaleRoute::default());
    };
    if redeem_points > 0 && !link.rights.spend {
        return Err(DomainError::NotAllowedToSpend(link.wallet_id.to_string()));
    }
    Ok(SaleRoute {
        earns_into_wallet: link.rights.earn_into,
        pays_from_wallet: redeem_points > 0,
    })
}

/// What a member joining a wallet must not already be: in it, or (for a household) in
/// another household. `household` is the member's current household, if any.
pub fn may_join(
    kind: WalletKind,
    wallet: &WalletId,
    already_in: bool,
    household: Option<&WalletId>,
) -> Result<(), DomainError> {
    if already_in {
        return Err(conflict(
            "already_in_wallet",
            "the member already belongs to this wallet",
        ));
    }
    if kind == WalletKind::Household
        && let Some(other) = household
        && other != wallet
    {
        return Err(conflict(
            "household_taken",
            format!("the member already belongs to household {other}; a member belongs to one household at most"),
        ));
    }
    Ok(())
}

/// Invitation codes are a household's: a business's contacts are added directly.
pub fn may_invite(kind: WalletKind) -> Result<(), DomainError> {
    match kind {
        WalletKind::Household => Ok(()),
        WalletKind::Business => Err(conflict(
            "not_a_household",
            "invitation codes are for households; add a business's contacts directly",
        )),
    }
}

/// A household's owner stays until the household closes; anyone else may leave. What
/// was pooled stays in the wallet.
pub fn may_leave(is_owner: bool) -> Result<(), DomainError> {
    match is_owner {
        true => Err(conflict(
            "owner_cannot_leave",
            "the owner of a household closes it instead of leaving",
        )),
        false => Ok(()),
    }
}

fn conflict(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::WalletConflict {
        code,
        message: message.into(),
    }
}

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
