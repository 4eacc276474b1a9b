//! A return of part or all of a purchase: points given back and taken back in
//! proportion, and what the purchase's capped awards give back to their counters.

use super::awards::{AwardReversal, SavedAward, award_reversals};
use super::commands::ReturnCmd;
use crate::DomainError;
use crate::earning::proportion_half_up;
use crate::ids::WalletId;
use crate::ledger::EntryCode;
use crate::plan::{MemberState, Plan, PurchaseRecord, ReturnResult, plan_return};
use crate::receipt::{BalanceView, ReturnReceipt, ReturnWallet};
use crate::tiers::{TierChange, TierState};

/// What a backend reads for a return, with the purchase locked (or in the single writer).
#[derive(Debug, Clone, Copy)]
pub struct ReturnFacts<'a> {
    pub purchase: &'a PurchaseRecord,
    /// The buyer's balances and every open lot.
    pub state: &'a MemberState,
    /// The purchase's capped or budgeted awards.
    pub awards: &'a [SavedAward],
    /// The shared wallet the purchase earned into or paid from (every open lot), with
    /// `member_id` the buyer; `None` when it used none, or when that wallet has closed
    /// (its points were split among its members): then the return gives back to and
    /// takes back from the buyer's own points.
    pub wallet: Option<&'a MemberState>,
    /// The standing of the household the purchase counted in (`tier_household`), read
    /// from its wallet row.
    pub household_tier: Option<&'a TierState>,
}

/// What the stored purchase gains: returned amount and points taken or given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseChange {
    pub returned_amount: i64,
    /// Points taken back, recovered or not.
    pub points_reversed: i64,
    pub points_refunded: i64,
}

/// What to write for a return, and what to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnDecision {
    /// What the return does to the buyer's own points.
    pub plan: Plan,
    /// What it does to the shared wallet the purchase used, if any.
    pub wallet_plan: Option<(WalletId, Plan)>,
    pub result: ReturnResult,
    pub purchase_change: PurchaseChange,
    /// How much of the purchase is returned with this return (minor units of its
    /// currency): a referral it converted may reverse ([`crate::referrals::still_converted`]).
    pub returned_after: i64,
    pub award_reversals: Vec<AwardReversal>,
    /// The buyer's standing with the return's share of qualifying taken off (`None`:
    /// unchanged). A return never changes the level itself.
    pub tier: Option<TierState>,
    /// The same for the household the purchase counted in, when it counted in one
    /// (`tier` is then `None`, and `tier_changes` are the household's).
    pub household_tier: Option<(WalletId, TierState)>,
    /// Reviews that fell due before the return, for the member's tier history.
    pub tier_changes: Vec<TierChange>,
    pub receipt: ReturnReceipt,
}

/// Decides a return. Refuses another currency, a zero amount, and more than is left of
/// the purchase.
pub fn decide_return(cmd: &ReturnCmd, facts: ReturnFacts<'_>) -> Result<ReturnDecision, DomainError> {
    let purchase = facts.purchase;
    let ret = cmd.return_id.as_str();
    let (plan, result, wallet_plan) = match (&purchase.wallet, facts.wallet) {
        (Some((wallet_id, route)), Some(wallet)) if route.uses_wallet() => {
            // Earned points are taken back from the holder that earned them, spent
            // points given back to the holder that paid: each part sees only its own.
            let (mut own_part, mut wallet_part) = (purchase.clone(), purchase.clone());
            let not_earner = if route.earns_into_wallet {
                &mut own_part
            } else {
                &mut wallet_part
            };
            (
                not_earner.points_earned,
                not_earner.points_operator,
                not_earner.points_reversed,
            ) = (0, 0, 0);
            let not_payer = if route.pays_from_wallet {
                &mut own_part
            } else {
                &mut wallet_part
            };
            (not_payer.points_redeemed, not_payer.points_refunded) = (0, 0);
            let (own_plan, own) = plan_return(facts.state, &cmd.program, &own_part, ret, cmd.amount, cmd.now)?;
            let (w_plan, w) = plan_return(wallet, &cmd.program, &wallet_part, ret, cmd.amount, cmd.now)?;
            let result = ReturnResult {
                points_reversed: own.points_reversed + w.points_reversed,
                points_unrecovered: own.points_unrecovered + w.points_unrecovered,
                points_refunded: own.points_refunded + w.points_refunded,
            };
            (own_plan, result, Some((wallet_id.clone(), w_plan)))
        }
        _ => {
            let (plan, result) = plan_return(facts.state, &cmd.program, purchase, ret, cmd.amount, cmd.now)?;
            (plan, result, None)
        }
    };
    let returned_after = purchase.returned_amount + cmd.amount.amount;
    let award_reversals = award_reversals(facts.awards, returned_after, purchase.total.amount, &result);
    let (standing, household) = match (&purchase.tier_household, facts.household_tier) {
        (Some(w), Some(t)) => (t, Some(w)),
        _ => (&facts.state.tier, None),
    };
    let (uncounted, tier_changes) = uncount_tier(cmd, purchase, standing, returned_after);
    let (tier, household_tier) = match household {
        Some(w) => (None, uncounted.map(|t| (w.clone(), t))),
        None => (uncounted, None),
    };
    let receipt = ReturnReceipt {
        id: cmd.return_id.to_string(),
        transaction_id: purchase.id.to_string(),
        external_id: cmd.external_id.clone(),
        amount: cmd.amount.into(),
        points_reversed: result.points_reversed,
        points_refunded: result.points_refunded,
        points_unrecovered: result.points_unrecovered,
        balance: BalanceView {
            available: plan.balance_after.available,
            pending: plan.balance_after.pending,
        },
        wallet: wallet_plan.as_ref().map(|(id, p)| ReturnWallet {
            id: id.to_string(),
            points_reversed: p.points_with(EntryCode::ReturnReversal),
            points_refunded: p.points_with(EntryCode::ReturnRefund),
            balance: BalanceView {
                available: p.balance_after.available,
                pending: p.balance_after.pending,
            },
        }),
    };
    Ok(ReturnDecision {
        returned_after: purchase.returned_amount.saturating_add(cmd.amount.amount),
        purchase_change: PurchaseChange {
            returned_amount: cmd.amount.amount,
            points_reversed: result.points_reversed + result.points_unrecovered,
            points_refunded: result.points_refunded,
        },
        plan,
        wallet_plan,
        result,
        award_reversals,
        tier,
        household_tier,
        tier_changes,
        receipt,
    })
}

/// The return's share of what the purchase added to the tier qualifying count (the
/// share of all returns so far less that of the ones before, so partial returns add up
/// to the whole), taken off the period it counted in.
fn uncount_tier(
    cmd: &ReturnCmd,
    p: &PurchaseRecord,
    standing: &TierState,
    returned_after: i64,
) -> (Option<TierState>, Vec<TierChange>) {
    let ladder = &cmd.program.tiers;
    if ladder.levels.is_empty() || p.tier_qualifying <= 0 || p.total.amount <= 0 {
        return (None, Vec::new());
    }
    let share = |returned: i64| proportion_half_up(p.tier_qualifying, returned.min(p.total.amount), p.total.amount);
    let q = share(returned_after) - share(p.returned_amount);
    let mut tier = standing.clone();
    // Reviews that fell due are applied first, so the share lands in the right period.
    let changes = tier.roll(ladder, cmd.now);
    tier.uncount(ladder, q, p.recorded_at);
    ((tier != *standing).then_some(tier), changes)
}
