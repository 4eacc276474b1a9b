//! The bridge between a request and the earning rules: gathers the facts a sale or an
//! event offers (partner, location, basket, member when a rule reads it), runs the
//! active rules, and leaves caps and budgets to the store's write transaction.

use crate::error::ApiError;
use crate::state::AppState;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tally_domain::challenges::{Challenge, Counts, Step};
use tally_domain::earning::{Valuation, value_purchase_excluding};
use tally_domain::ids::{Id, MemberId};
use tally_domain::money::Money;
use tally_domain::rules::{
    AppliesTo, Base, BasketFacts, Evaluation, EventFacts, Facts, LocationFacts, MemberFacts, PartnerFacts, RuleSet,
    Scope,
};
use tally_store::{LocationRow, MemberAssumption, MemberRef, PartnerRow, PurchaseCmd, RuleDraft};

pub fn partner_facts(p: &PartnerRow) -> PartnerFacts {
    PartnerFacts {
        id: p.id.to_string(),
        name: p.name.clone(),
        industry: p.industry.clone(),
        country: p.country.clone(),
        currency: p.currency.code().to_string(),
        timezone: p.timezone.clone(),
    }
}

pub fn location_facts(l: &LocationRow) -> LocationFacts {
    LocationFacts {
        id: l.id.to_string(),
        name: l.name.clone(),
        city: l.city.clone(),
        country: l.country.clone(),
        timezone: l.timezone.clone(),
    }
}

/// A validated purchase before rules: the command with its base valuation, and what the
/// rules need that the command does not keep.
#[derive(Clone)]
pub struct PreparedPurchase {
    pub cmd: PurchaseCmd,
    /// The basket as the rules see it, built once (a re-evaluation reuses it).
    pub basket: BasketFacts,
    /// Units of the purchase currency per unit of programme currency.
    pub rate: Decimal,
}

/// What a sale is worth under the rules, before caps and budgets.
pub struct RuledPurchase {
    pub valuation: Valuation,
    pub evaluation: Evaluation,
    pub member: Option<MemberFacts>,
}

/// Where a sale's rules apply: its partner, location and time.
fn purchase_scope<'a>(partner: &'a PartnerRow, cmd: &'a PurchaseCmd) -> Scope<'a> {
    Scope {
        partner_id: Some(partner.id.as_str()),
        location_id: cmd.location_id.as_ref().map(|l| l.as_str()),
        applies_to: AppliesTo::Purchase,
        event_type: None,
        at: cmd.occurred_at,
    }
}

/// Where an event's rules apply: its partner (if any), type and time.
fn event_scope<'a>(partner: Option<&'a PartnerRow>, event: &'a EventFacts, at: jiff::Timestamp) -> Scope<'a> {
    Scope {
        partner_id: partner.map(|p| p.id.as_str()),
        location_id: None,
        applies_to: AppliesTo::Event,
        event_type: Some(&event.event_type),
        at,
    }
}

/// Runs `rules` on an event. `member` gives the member's facts when a rule needs them
/// (a test passes made-up ones; an event reads them from the store).
pub fn evaluate_event(
    rules: &RuleSet,
    partner: Option<&PartnerRow>,
    member: Option<&MemberFacts>,
    event: &EventFacts,
    at: jiff::Timestamp,
) -> Result<Evaluation, ApiError> {
    let partner_f = partner.map(partner_facts);
    let facts = Facts {
        partner: partner_f.as_ref(),
        location: None,
        at,
        basket: None,
        member,
        event: Some(event),
    };
    // Events have no amount: their rules give fixed points.
    let evaluation = rules.evaluate(&event_scope(partner, event, at), &facts, Decimal::ONE, |_| {
        Ok(Base {
            earning_amount: Decimal::ZERO,
            earn_rate: Decimal::ZERO,
        })
    })?;
    Ok(evaluation)
}

/// Runs `rules` on a sale. `member` gives the member's facts when a rule needs them
/// (a test passes made-up ones; a sale reads them from the store).
pub fn rule_purchase(
    rules: &RuleSet,
    partner: &PartnerRow,
    location: Option<&LocationRow>,
    p: &PreparedPurchase,
    member: Option<MemberFacts>,
) -> Result<RuledPurchase, ApiError> {
    let cmd = &p.cmd;
    let scope = purchase_scope(partner, cmd);
    let partner_f = partner_facts(partner);
    let location_f = location.map(location_facts);
    let facts = Facts {
        partner: Some(&partner_f),
        location: location_f.as_ref(),
        at: cmd.occurred_at,
        basket: Some(&p.basket),
        member: member.as_ref(),
        event: None,
    };
    let mut valuation = cmd.valuation.clone();
    let evaluation = rules.evaluate(&scope, &facts, p.rate, |excluded| {
        if excluded > 0 {
            valuation = value_purchase_excluding(
                &cmd.program,
                p.rate,
                partner.earn_rate,
                cmd.total,
                excluded,
                cmd.redeem_points,
            )?;
            let shown = Money {
                amount: excluded.min(cmd.total.amount),
                currency: cmd.total.currency,
            };
            if let Some(base) = valuation.breakdown.first_mut() {
                base.reason.push_str(&format!(
                    "; excluded lines ({} {}) earn nothing",
                    shown.currency.code(),
                    shown.to_decimal()
                ));
            }
        }
        Ok(Base {
            earning_amount: valuation.earning_amount,
            earn_rate: partner.earn_rate,
        })
    })?;
    Ok(RuledPurchase {
        valuation,
        evaluation,
        member,
    })
}

/// Applies the active rules to a prepared sale: the command to post, with its
/// valuation, the rules' draft awards and the challenges it counts toward.
pub async fn with_rules(state: &AppState, partner: &PartnerRow, p: &PreparedPurchase) -> Result<PurchaseCmd, ApiError> {
    let mut cmd = ruled(state, partner, p).await?;
    cmd.rules.steps = sale_steps(state, partner, p, &cmd).await?;
    Ok(cmd)
}

/// What a sale counts for in the open challenges, evaluated before the write as rules
/// are; the write decides each step.
async fn sale_steps(
    state: &AppState,
    partner: &PartnerRow,
    p: &PreparedPurchase,
    cmd: &PurchaseCmd,
) -> Result<Vec<Step>, ApiError> {
    let all = state.challenges();
    let open: Vec<&Challenge> = all
        .iter()
        .filter(|c| c.spec.counts == Counts::Purchases && c.open_at(cmd.occurred_at))
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let member = facts_if(state, open.iter().any(|c| c.reads_member()), &cmd.member, Some(partner)).await?;
    let location = match &cmd.location_id {
        Some(id) => state.location(&partner.id, id).await?,
        None => None,
    };
    let (partner_f, location_f) = (partner_facts(partner), location.as_ref().map(location_facts));
    let facts = Facts {
        partner: Some(&partner_f),
        location: location_f.as_ref(),
        at: cmd.occurred_at,
        basket: Some(&p.basket),
        member: member.as_ref(),
        event: None,
    };
    let exponent = cmd.program.currency.exponent();
    let amount_minor = (cmd.valuation.earning_amount * Decimal::from(10i64.pow(exponent)))
        .floor()
        .to_i64()
        .unwrap_or(i64::MAX);
    let rate = p.rate.to_f64().unwrap_or(1.0);
    Ok(open.iter().filter_map(|c| c.step(&facts, amount_minor, rate)).collect())
}

/// What an event counts for in the open challenges.
async fn event_steps(
    state: &AppState,
    partner: Option<&PartnerRow>,
    member: &MemberRef,
    event: &EventFacts,
    at: jiff::Timestamp,
) -> Result<Vec<Step>, ApiError> {
    let all = state.challenges();
    let open: Vec<&Challenge> = all
        .iter()
        .filter(|c| c.spec.counts == Counts::Events && c.open_at(at))
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let member_facts = facts_if(state, open.iter().any(|c| c.reads_member()), member, partner).await?;
    let partner_f = partner.map(partner_facts);
    let facts = Facts {
        partner: partner_f.as_ref(),
        location: None,
        at,
        basket: None,
        member: member_facts.as_ref(),
        event: Some(event),
    };
    Ok(open.iter().filter_map(|c| c.step(&facts, 0, 1.0)).collect())
}

async fn ruled(state: &AppState, partner: &PartnerRow, p: &PreparedPurchase) -> Result<PurchaseCmd, ApiError> {
    let rules = state.rules();
    let scope = purchase_scope(partner, &p.cmd);
    if rules.candidates(&scope).next().is_none() {
        return Ok(p.cmd.clone());
    }
    let member = facts_if(state, rules.needs_member(&scope), &p.cmd.member, Some(partner)).await?;
    let location = match &p.cmd.location_id {
        Some(id) => state.location(&partner.id, id).await?,
        None => None,
    };
    let ruled = rule_purchase(&rules, partner, location.as_ref(), p, member)?;
    report_failures(state, &ruled.evaluation);
    let mut cmd = p.cmd.clone();
    cmd.valuation = ruled.valuation;
    cmd.rules = RuleDraft {
        steps: Vec::new(),
        awards: ruled.evaluation.awards,
        // Tier, segments or plan changing meanwhile is just an earlier or later change;
        // the visit count is what a concurrent sale of the member changes.
        assumed: ruled
            .member
            .filter(|_| rules.needs_visits(&scope))
            .map(|m| MemberAssumption {
                member_id: MemberId::from_stored(m.id),
                visits: m.visits,
            }),
    };
    Ok(cmd)
}

/// Runs the event rules for an event; returns the draft awards, and the challenges it
/// counts toward.
pub async fn rule_event(
    state: &AppState,
    partner: Option<&PartnerRow>,
    member: &MemberRef,
    event: &EventFacts,
    at: jiff::Timestamp,
) -> Result<RuleDraft, ApiError> {
    let mut draft = event_rules(state, partner, member, event, at).await?;
    draft.steps = event_steps(state, partner, member, event, at).await?;
    Ok(draft)
}

async fn event_rules(
    state: &AppState,
    partner: Option<&PartnerRow>,
    member: &MemberRef,
    event: &EventFacts,
    at: jiff::Timestamp,
) -> Result<RuleDraft, ApiError> {
    let rules = state.rules();
    let scope = event_scope(partner, event, at);
    if rules.candidates(&scope).next().is_none() {
        return Ok(RuleDraft::default());
    }
    let member_facts = facts_if(state, rules.needs_member(&scope), member, partner).await?;
    let evaluation = evaluate_event(&rules, partner, member_facts.as_ref(), event, at)?;
    report_failures(state, &evaluation);
    Ok(RuleDraft {
        steps: Vec::new(),
        awards: evaluation.awards,
        assumed: member_facts
            .filter(|_| rules.needs_visits(&scope))
            .map(|m| MemberAssumption {
                member_id: MemberId::from_stored(m.id),
                visits: m.visits,
            }),
    })
}

/// The member's facts as rules and challenges read them (her visits at `partner`),
/// read only when `needed`.
async fn facts_if(
    state: &AppState,
    needed: bool,
    member: &MemberRef,
    partner: Option<&PartnerRow>,
) -> Result<Option<MemberFacts>, ApiError> {
    if !needed {
        return Ok(None);
    }
    Ok(state
        .store
        .member_facts(member.clone(), partner.map(|p| p.id.clone()), household_tiers(state))
        .await?)
}

fn report_failures(state: &AppState, evaluation: &Evaluation) {
    for (rule, why) in &evaluation.failures {
        state.metrics.rule_failed();
        tracing::warn!(%rule, %why, "an earning rule failed at run time and gave nothing");
    }
}

/// Whether the ladder counts per household: then rules read a household member's
/// `member.tier` as their household's level.
pub(crate) fn household_tiers(state: &AppState) -> bool {
    state.program().tiers.scope == tally_domain::tiers::TierScope::Household
}

/// An event Tally posts itself (sender `tally`, no partner: the programme funds it) to
/// `member`, with text attributes, its rules (and challenge steps) evaluated as any
/// event's are: `referral_converted`, `challenge_completed`.
pub async fn tally_event(
    state: &AppState,
    member: &MemberId,
    event_type: &str,
    external_id: String,
    attributes: &[(&str, &str)],
    at: jiff::Timestamp,
) -> Result<tally_store::EventCmd, ApiError> {
    let facts = EventFacts {
        event_type: event_type.into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), tally_domain::rules::Attr::String(v.to_string())))
            .collect(),
    };
    let json: serde_json::Map<String, serde_json::Value> = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let attributes_json = serde_json::Value::Object(json).to_string();
    let who = MemberRef::Id(member.clone());
    let rules = rule_event(state, None, &who, &facts, at).await?;
    Ok(tally_store::EventCmd {
        id: tally_store::keys::new::<tally_domain::ids::EventId>(),
        source: tally_store::referrals::SOURCE.into(),
        external_id,
        partner: None,
        member: who,
        event_type: event_type.into(),
        request_hash: tally_store::keys::hash_request(attributes_json.as_bytes()),
        attributes_json,
        occurred_at: at,
        rules,
        program: state.program().terms(),
        now: state.now(),
    })
}
