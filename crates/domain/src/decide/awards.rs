//! Caps and budgets: what each rule's award keeps after its counters, and what a return
//! gives back to them.

use super::RuleDraft;
use crate::DomainError;
use crate::earning::{BreakdownLine, Valuation, proportion_half_up};
use crate::ids::{MemberId, RuleId};
use crate::plan::ReturnResult;
use std::collections::HashMap;

/// An award after caps and budgets, as saved with its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedAward {
    pub rule_id: RuleId,
    pub version: i64,
    pub points: i64,
    /// The counters it used (caps and budget), to give back on a return.
    pub keys: Vec<String>,
}

/// What the rules give once caps and budgets are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The base valuation plus every award that kept points, each explained.
    pub valuation: Valuation,
    pub awards: Vec<GrantedAward>,
    /// How much each counter grows, in key order.
    pub increments: Vec<(String, i64)>,
}

impl Granted {
    /// The awards a store keeps with the transaction: those that used a cap or budget,
    /// whose counters a return gives back to.
    pub fn counted(&self) -> impl Iterator<Item = &GrantedAward> {
        self.awards.iter().filter(|a| !a.keys.is_empty())
    }
}

/// A saved award as a return needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedAward {
    pub rule_id: RuleId,
    pub points: i64,
    /// Points of it taken back by earlier returns.
    pub reversed: i64,
    pub keys: Vec<String>,
}

/// What a return takes back of one award, and gives back to its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardReversal {
    pub rule_id: RuleId,
    /// Points of the award newly taken back.
    pub points: i64,
    /// Points its counters get back (only the share the member still had).
    pub give_back: i64,
    pub keys: Vec<String>,
}

/// The counters (caps and budgets) the draft's awards use, each once, in a fixed order
/// so concurrent writers lock them in the same order.
pub fn counter_keys(draft: &RuleDraft, member_id: &MemberId) -> Vec<String> {
    let mut keys: Vec<String> = draft
        .awards
        .iter()
        .flat_map(|a| a.limits.iter().map(|l| l.key(&a.rule_id, member_id)))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Refuses a write whose rules saw another member, or another visit count, than the
/// one read now (`visits` is read only when the draft depends on it).
pub fn check_assumption(draft: &RuleDraft, member_id: &MemberId, visits: Option<i64>) -> Result<(), DomainError> {
    match (&draft.assumed, visits) {
        (None, _) => Ok(()),
        (Some(a), _) if a.member_id != *member_id => Err(DomainError::Stale),
        (Some(a), Some(now)) if now == a.visits => Ok(()),
        (Some(_), Some(_)) => Err(DomainError::Stale),
        (Some(_), None) => Err(DomainError::Invariant(
            "the rules read the visit count and it was not read",
        )),
    }
}

/// Applies caps and budgets: each award gets at most what every one of its counters has
/// left (`used` holds how much of each counter is used; a missing one is unused).
pub fn grant_awards(
    base: &Valuation,
    draft: &RuleDraft,
    member_id: &MemberId,
    used: &HashMap<String, i64>,
) -> Result<Granted, DomainError> {
    let mut valuation = base.clone();
    let mut used = used.clone();
    let mut awards = Vec::new();
    let mut increments: HashMap<String, i64> = HashMap::new();
    for award in &draft.awards {
        let keys: Vec<String> = award.limits.iter().map(|l| l.key(&award.rule_id, member_id)).collect();
        let mut points = award.points;
        let mut reached = None;
        for (limit, key) in award.limits.iter().zip(&keys) {
            let left = limit.limit.saturating_sub(used.get(key).copied().unwrap_or(0)).max(0);
            if left < points {
                points = left;
                reached = Some(limit);
            }
        }
        if points <= 0 {
            continue;
        }
        for key in &keys {
            let u = used.entry(key.clone()).or_insert(0);
            *u = u.saturating_add(points);
            let i = increments.entry(key.clone()).or_insert(0);
            *i = i.saturating_add(points);
        }
        let mut reason = award.sentence(points);
        if let Some(l) = reached {
            reason.push_str(&format!(" (limit reached: {} points {})", l.limit, l.label));
        }
        valuation.points_earned = valuation
            .points_earned
            .checked_add(points)
            .filter(|p| *p <= crate::money::MAX_POINTS)
            .ok_or_else(crate::earning::points_limit)?;
        valuation.breakdown.push(BreakdownLine {
            rule: award.rule_id.to_string(),
            version: Some(award.version),
            points,
            reason,
            operator_percent: award.operator_percent,
        });
        awards.push(GrantedAward {
            rule_id: award.rule_id.clone(),
            version: award.version,
            points,
            keys,
        });
    }
    let mut increments: Vec<(String, i64)> = increments.into_iter().collect();
    increments.sort();
    Ok(Granted {
        valuation,
        awards,
        increments,
    })
}

/// What a return gives back to caps and budgets: each award's points are taken back in
/// the proportion of the purchase returned so far (half up, cumulative, as the ledger
/// does), and its counters get back only the share the member still had: points the
/// member already spent (`result.points_unrecovered`) stay counted, or earning a cap,
/// spending it and returning the goods would renew the cap.
pub fn award_reversals(
    awards: &[SavedAward],
    returned_after: i64,
    total: i64,
    result: &ReturnResult,
) -> Vec<AwardReversal> {
    let whole = total.max(1);
    let part = if total == 0 { 1 } else { returned_after.min(total) };
    let taken_back = result.points_reversed + result.points_unrecovered;
    awards
        .iter()
        .filter_map(|a| {
            let points = proportion_half_up(a.points, part, whole) - a.reversed;
            let give_back = if taken_back == 0 {
                0
            } else {
                (i128::from(points) * i128::from(result.points_reversed) / i128::from(taken_back)) as i64
            };
            (points > 0).then(|| AwardReversal {
                rule_id: a.rule_id.clone(),
                points,
                give_back,
                keys: a.keys.clone(),
            })
        })
        .collect()
}
