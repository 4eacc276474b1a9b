//! A sale at a till (and its quote): settle what is due, check the facts the rules
//! assumed, apply caps and budgets, spend and earn, and make the receipt.

use super::awards::{Granted, check_assumption, grant_awards};
use super::commands::PurchaseCmd;
use crate::DomainError;
use crate::earning::Valuation;
use crate::ids::{MemberId, WalletId};
use crate::plan::{Balance, MemberState, Plan, Purchase, plan_purchase};
use crate::receipt::{BalanceView, MoneyView, PurchaseReceipt, SaleWallet};
use crate::tiers::{TierChange, TierChangeView, TierScope, TierState, qualifying_of, tier_bonus};
use crate::wallets::{SaleRoute, WalletLink, route_sale};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;

/// Whether a purchase's receipt is for a sale that is written, or a quote that is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    Posted,
    Quote,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Posted => "posted",
            ReceiptStatus::Quote => "quote",
        }
    }
}

/// What a backend reads for a sale, inside its write transaction (or, for a quote,
/// without locking anything).
#[derive(Debug, Clone, Copy)]
pub struct PurchaseFacts<'a> {
    /// The member's balances, and every open lot when [`crate::plan::needs_lots`] says
    /// the sale needs them.
    pub state: &'a MemberState,
    /// The partner that owns the sale's `location_id`, when it names one that exists.
    pub location_owner: Option<&'a crate::ids::PartnerId>,
    /// The member's visit count at the partner now, read when the rules' draft depends
    /// on it ([`super::RuleDraft::reads_visits`]).
    pub visits: Option<i64>,
    /// How much of each of the draft's counters ([`super::counter_keys`]) is used.
    pub counters: &'a HashMap<String, i64>,
    /// The shared wallet in play (the one the till named, else the member's default),
    /// with the member's rights in it and its state (its lots when it pays or is due),
    /// or `None` when the member has no such wallet.
    pub wallet: Option<WalletFacts<'a>>,
    /// With a ladder per household, the standing of the member's household (its
    /// wallet row, locked), when they belong to one.
    pub household_tier: Option<(&'a WalletId, &'a TierState)>,
}

/// A shared wallet as a sale or a return reads it.
#[derive(Debug, Clone, Copy)]
pub struct WalletFacts<'a> {
    pub link: &'a WalletLink,
    /// The wallet's balances (and lots), with `member_id` the member acting on it.
    pub state: &'a MemberState,
}

/// What a sale writes to a shared wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletPlan {
    pub wallet_id: WalletId,
    pub route: SaleRoute,
    pub plan: Plan,
}

/// What to write for a sale, and what to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseDecision {
    pub member_id: MemberId,
    /// What the sale does to the member's own points (settling what is due, at least).
    pub plan: Plan,
    /// What it does to a shared wallet, when it earns into or pays from one.
    pub wallet: Option<WalletPlan>,
    /// The valuation after caps and budgets (and the tier's bonus), the awards to keep,
    /// the counters to raise.
    pub granted: Granted,
    /// The member's standing after the sale, to write on the member's row.
    pub tier: TierState,
    /// With a ladder per household: the household's standing after the sale, to write
    /// on its wallet row (the member's own standing is then unchanged, and
    /// `tier_changes` are the household's).
    pub household_tier: Option<(WalletId, TierState)>,
    /// What the sale added to the member's qualifying count (kept with the
    /// transaction, so a return takes back its share).
    pub tier_qualifying: i64,
    /// Changes of the member's level: a review that fell due, an upgrade by this sale.
    pub tier_changes: Vec<TierChange>,
    /// The referrer, when the buyer was referred and this sale qualifies to convert her
    /// referral: the store decides the referral ([`crate::referrals::decide_conversion`])
    /// unless an earlier sale did.
    pub referral: Option<MemberId>,
    pub receipt: PurchaseReceipt,
}

impl PurchaseDecision {
    pub fn points_earned(&self) -> i64 {
        self.granted.valuation.points_earned
    }

    /// The part of the points earned the operator funds.
    pub fn points_operator(&self) -> i64 {
        self.granted.valuation.operator_points()
    }
}

/// Decides a sale. Refuses, with nothing to write, a location of another partner, a
/// draft whose assumed visit count changed (`Stale`: evaluate the rules again), more
/// points than the member has, and anything that would break a plan invariant.
pub fn decide_purchase(
    cmd: &PurchaseCmd,
    facts: PurchaseFacts<'_>,
    status: ReceiptStatus,
) -> Result<PurchaseDecision, DomainError> {
    if cmd.location_id.is_some() && facts.location_owner != Some(&cmd.partner.id) {
        return Err(DomainError::UnknownLocation);
    }
    let member_id = &facts.state.member_id;
    if status == ReceiptStatus::Posted {
        check_assumption(&cmd.rules, member_id, facts.visits)?;
    }
    let mut granted = grant_awards(&cmd.valuation, &cmd.rules, member_id, facts.counters)?;
    let household = facts
        .household_tier
        .filter(|_| cmd.program.tiers.scope == TierScope::Household);
    let standing = household.map_or(&facts.state.tier, |(_, t)| t);
    let (counted, tier_qualifying, tier_changes) = apply_tier(cmd, standing, &mut granted.valuation)?;
    let (tier, household_tier) = match household {
        Some((w, _)) => (facts.state.tier.clone(), Some((w.clone(), counted))),
        None => (counted, None),
    };
    apply_plan(cmd, facts.state, &mut granted.valuation)?;
    let route = route_sale(cmd.wallet_id.as_ref(), facts.wallet.map(|w| w.link), cmd.redeem_points)?;
    let purchase = Purchase {
        transaction_id: cmd.transaction_id.as_str(),
        partner: &cmd.partner,
        occurred_at: cmd.occurred_at,
        redeem_points: cmd.redeem_points,
        valuation: &granted.valuation,
        label: None,
        code: crate::ledger::EntryCode::Earn,
    };
    let (plan, wallet) = match facts.wallet.filter(|_| route.uses_wallet()) {
        None => (plan_purchase(facts.state, &cmd.program, &purchase, cmd.now)?, None),
        Some(w) => split_purchase(cmd, facts.state, w, route, &purchase)?,
    };
    let mut receipt = purchase_receipt(cmd, &granted.valuation, member_id, plan.balance_after, status);
    receipt.tier_change = tier_changes.last().map(TierChangeView::from);
    receipt.wallet = wallet.as_ref().map(|w| SaleWallet {
        id: w.wallet_id.to_string(),
        points_earned: if route.earns_into_wallet {
            granted.valuation.points_earned
        } else {
            0
        },
        points_redeemed: if route.pays_from_wallet { cmd.redeem_points } else { 0 },
        balance: BalanceView {
            available: w.plan.balance_after.available,
            pending: w.plan.balance_after.pending,
        },
    });
    let referral = match (&cmd.program.referrals, &facts.state.referred_by) {
        (Some(policy), Some(referrer))
            if status == ReceiptStatus::Posted
                && policy.qualifies(
                    cmd.valuation.earning_amount,
                    cmd.occurred_at,
                    cmd.now,
                    facts.state.joined_at,
                ) =>
        {
            Some(referrer.clone())
        }
        _ => None,
    };
    Ok(PurchaseDecision {
        referral,
        member_id: member_id.clone(),
        plan,
        wallet,
        granted,
        tier,
        household_tier,
        tier_qualifying,
        tier_changes,
        receipt,
    })
}

/// A sale that earns into or pays from a shared wallet, as two plans: the wallet's
/// (what it receives and pays) and the member's own (the rest, and settling what is
/// due). The wallet's history names the member.
fn split_purchase(
    cmd: &PurchaseCmd,
    own: &MemberState,
    wallet: WalletFacts<'_>,
    route: SaleRoute,
    purchase: &Purchase<'_>,
) -> Result<(Plan, Option<WalletPlan>), DomainError> {
    let nothing = Valuation {
        points_earned: 0,
        ..purchase.valuation.clone()
    };
    let label = format!("Earned at {} by {}", cmd.partner.name, own.member_id);
    let (mut to_wallet, mut to_own) = (purchase.clone(), purchase.clone());
    to_wallet.label = Some(&label);
    if route.earns_into_wallet {
        to_own.valuation = &nothing;
    } else {
        to_wallet.valuation = &nothing;
    }
    if route.pays_from_wallet {
        to_own.redeem_points = 0;
    } else {
        to_wallet.redeem_points = 0;
    }
    let wallet_plan = plan_purchase(wallet.state, &cmd.program, &to_wallet, cmd.now)?;
    let own_plan = plan_purchase(own, &cmd.program, &to_own, cmd.now)?;
    Ok((
        own_plan,
        Some(WalletPlan {
            wallet_id: wallet.link.wallet_id.clone(),
            route,
            plan: wallet_plan,
        }),
    ))
}

/// The paid plan the member holds gives its bonus on base points, as a line of its own
/// (it does not qualify for tiers).
fn apply_plan(cmd: &PurchaseCmd, state: &MemberState, valuation: &mut Valuation) -> Result<(), DomainError> {
    let Some(code) = state.plan.as_deref() else {
        return Ok(());
    };
    let Some(plan) = cmd.program.plans.iter().find(|p| p.code == code) else {
        return Ok(());
    };
    if let Some(line) = crate::memberships::plan_bonus(plan, cmd.valuation.points_earned) {
        valuation.points_earned = valuation
            .points_earned
            .checked_add(line.points)
            .filter(|p| *p <= crate::money::MAX_POINTS)
            .ok_or_else(crate::earning::points_limit)?;
        valuation.breakdown.push(line);
    }
    Ok(())
}

/// The member's level at the time of the sale (after any review that fell due) gives
/// its bonus on base points, as a line of its own; the sale's base and rule points (or
/// the amount that earned) then count toward the next level, which applies from the
/// next sale.
fn apply_tier(
    cmd: &PurchaseCmd,
    standing: &TierState,
    valuation: &mut Valuation,
) -> Result<(TierState, i64, Vec<TierChange>), DomainError> {
    let ladder = &cmd.program.tiers;
    let mut tier = standing.clone();
    if ladder.levels.is_empty() {
        return Ok((tier, 0, Vec::new()));
    }
    let mut changes = tier.roll(ladder, cmd.now);
    let without_tier = valuation.points_earned;
    if let Some(line) = tier_bonus(ladder, tier.effective.as_deref(), cmd.valuation.points_earned) {
        valuation.points_earned = valuation
            .points_earned
            .checked_add(line.points)
            .filter(|p| *p <= crate::money::MAX_POINTS)
            .ok_or_else(crate::earning::points_limit)?;
        valuation.breakdown.insert(1.min(valuation.breakdown.len()), line);
    }
    let scale = Decimal::from(10i64.pow(cmd.program.currency.exponent()));
    let spend_minor = (valuation.earning_amount * scale)
        .round_dp_with_strategy(0, RoundingStrategy::ToZero)
        .to_i64()
        .unwrap_or(i64::MAX);
    let qualifying = qualifying_of(ladder, without_tier, spend_minor);
    changes.extend(tier.count(ladder, qualifying, cmd.now));
    Ok((tier, qualifying, changes))
}

/// The receipt for a purchase (or a quote, which has no id).
fn purchase_receipt(
    cmd: &PurchaseCmd,
    v: &Valuation,
    member_id: &MemberId,
    balance: Balance,
    status: ReceiptStatus,
) -> PurchaseReceipt {
    PurchaseReceipt {
        id: match status {
            ReceiptStatus::Quote => String::new(),
            ReceiptStatus::Posted => cmd.transaction_id.to_string(),
        },
        member_id: member_id.to_string(),
        partner_id: cmd.partner.id.to_string(),
        external_id: cmd.external_id.clone(),
        location_id: cmd.location_id.as_ref().map(ToString::to_string),
        occurred_at: cmd.occurred_at.to_string(),
        total: cmd.total.into(),
        points_earned: v.points_earned,
        points_redeemed: cmd.redeem_points,
        redeemed_value: MoneyView {
            amount: v.redeemed_value_minor,
            currency: cmd.program.currency.code().into(),
        },
        redeemed_value_local: MoneyView {
            amount: v.redeemed_value_local_minor,
            currency: cmd.total.currency.code().into(),
        },
        status: status.as_str().to_string(),
        breakdown: v.breakdown.iter().cloned().map(Into::into).collect(),
        balance: BalanceView {
            available: balance.available,
            pending: balance.pending,
        },
        tier_change: None,
        wallet: None,
    }
}
