//! An engagement event: what its rules give after caps and budgets, earned into the
//! member's points from the event's partner or the programme.

use super::awards::{Granted, check_assumption, grant_awards};
use super::commands::EventCmd;
use crate::DomainError;
use crate::earning::Valuation;
use crate::ids::WalletId;
use crate::plan::{MemberState, PartnerTerms, Plan, Purchase, plan_purchase};
use crate::receipt::{BalanceView, EventReceipt};
use crate::tiers::{TierChange, TierChangeView, TierScope, TierState, qualifying_of};
use rust_decimal::Decimal;
use std::collections::HashMap;

/// What a backend reads for an event inside its write transaction.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    /// The member's balances, and every open lot when something is due.
    pub state: &'a MemberState,
    /// Whether the event's type is one the programme knows.
    pub type_known: bool,
    /// The member's visit count at the event's partner, read when the draft depends on it.
    pub visits: Option<i64>,
    /// How much of each of the draft's counters is used.
    pub counters: &'a HashMap<String, i64>,
    /// Under a ladder per household that lets events qualify: the member's household
    /// and its standing (row locked on PostgreSQL).
    pub household_tier: Option<(&'a WalletId, &'a TierState)>,
}

/// The standing an event counted in, to write: the member's own, or the household's
/// (`household`) under a ladder per household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTier {
    pub household: Option<WalletId>,
    pub standing: TierState,
    pub changes: Vec<TierChange>,
}

/// What to write for an event, and what to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDecision {
    pub member_id: crate::ids::MemberId,
    pub plan: Plan,
    pub granted: Granted,
    /// Where the ladder lets events qualify and the event earned: the standing to write.
    pub tier: Option<EventTier>,
    pub receipt: EventReceipt,
}

impl EventDecision {
    pub fn points_earned(&self) -> i64 {
        self.granted.valuation.points_earned
    }
}

/// Decides an event. Refuses an unknown event type and a draft whose assumed visit
/// count changed.
pub fn decide_event(cmd: &EventCmd, facts: EventFacts<'_>) -> Result<EventDecision, DomainError> {
    if !facts.type_known {
        return Err(DomainError::UnknownEventType(cmd.event_type.clone()));
    }
    let member_id = &facts.state.member_id;
    check_assumption(&cmd.rules, member_id, facts.visits)?;
    // An event earns nothing by itself; its rules give fixed points.
    let nothing = Valuation {
        points_earned: 0,
        breakdown: Vec::new(),
        redeemed_value_minor: 0,
        redeemed_value_local_minor: 0,
        earning_amount: Decimal::ZERO,
    };
    let mut granted = grant_awards(&nothing, &cmd.rules, member_id, facts.counters)?;
    if cmd.partner.is_none() {
        // No partner sent it: the programme funds every point, and the breakdown says so.
        for line in &mut granted.valuation.breakdown {
            line.operator_percent = 100;
        }
    }
    let terms = cmd
        .partner
        .clone()
        .unwrap_or_else(|| PartnerTerms::programme("the programme"));
    let label = format!("Earned for {}", cmd.event_type.replace('_', " "));
    let purchase = Purchase {
        transaction_id: cmd.id.as_str(),
        partner: &terms,
        occurred_at: cmd.occurred_at,
        redeem_points: 0,
        valuation: &granted.valuation,
        label: Some(&label),
        code: crate::ledger::EntryCode::Earn,
    };
    let plan = plan_purchase(facts.state, &cmd.program, &purchase, cmd.now)?;
    let tier = count_event(cmd, &facts, granted.valuation.points_earned);
    let receipt = EventReceipt {
        id: cmd.id.to_string(),
        external_id: cmd.external_id.clone(),
        member_id: member_id.to_string(),
        partner_id: cmd.partner.as_ref().map(|p| p.id.to_string()),
        event_type: cmd.event_type.clone(),
        occurred_at: cmd.occurred_at.to_string(),
        points_earned: granted.valuation.points_earned,
        breakdown: granted.valuation.breakdown.iter().cloned().map(Into::into).collect(),
        balance: BalanceView {
            available: plan.balance_after.available,
            pending: plan.balance_after.pending,
        },
        tier_change: tier.as_ref().and_then(|t| t.changes.last()).map(TierChangeView::from),
    };
    Ok(EventDecision {
        member_id: member_id.clone(),
        plan,
        granted,
        tier,
        receipt,
    })
}

/// An event's points counted toward the level, where the operator lets events qualify:
/// in the member's standing, or the household's under a ladder per household; the
/// crossing event moves it up at once, as a sale does.
fn count_event(cmd: &EventCmd, facts: &EventFacts<'_>, points: i64) -> Option<EventTier> {
    let ladder = &cmd.program.tiers;
    if !ladder.counts_events() || points <= 0 {
        return None;
    }
    let household = facts.household_tier.filter(|_| ladder.scope == TierScope::Household);
    let mut standing = household.map_or(&facts.state.tier, |(_, t)| t).clone();
    let mut changes = standing.roll(ladder, cmd.now);
    changes.extend(standing.count(ladder, qualifying_of(ladder, points, 0), cmd.now));
    Some(EventTier {
        household: household.map(|(w, _)| w.clone()),
        standing,
        changes,
    })
}
