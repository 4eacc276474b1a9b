//! What both backends share about rewards: reading a stored reward and redemption,
//! counting a member's redemptions toward a limit, the facts a redemption is decided
//! on, and the answer it stores.

use crate::StoreError;
use crate::codec::to_json;
use crate::model::{MemberOffers, RedeemCmd, RewardRow, from_micros};
use jiff::Timestamp;
use tally_domain::decide::RedeemDecision;
use tally_domain::ids::{Id, RewardId};
use tally_domain::plan::{MemberState, Plan};
use tally_domain::receipt::BalanceView;
use tally_domain::rewards::{Lang, OfferFacts, Redemption, RedemptionStatus, RedemptionView, Reward, RewardSpec};
use tally_domain::rules::MemberFacts;

/// A stored reward, checked again: a spec that no longer passes is corrupt.
pub(crate) fn reward_from_spec(id: String, spec: &str) -> Result<Reward, StoreError> {
    let spec: RewardSpec = serde_json::from_str(spec)?;
    spec.check(RewardId::from_stored(id.clone()))
        .map_err(|e| StoreError::corrupt(format!("reward {id} no longer passes its checks: {e}")))
}

pub(crate) fn redemption_status(s: &str) -> Result<RedemptionStatus, StoreError> {
    RedemptionStatus::parse(s).ok_or_else(|| StoreError::corrupt(format!("a redemption with status {s:?}")))
}

/// How many of `mine` (a member's redemptions: reward id, status, when) count toward
/// `reward`'s limit at `now`.
pub(crate) fn counting<'a>(
    reward: &Reward,
    now: Timestamp,
    mine: impl Iterator<Item = (&'a str, &'a str, Timestamp)>,
) -> Result<u32, StoreError> {
    let Some(since) = reward.limit_window(now) else {
        return Ok(0);
    };
    let mut n = 0u32;
    for (id, status, at) in mine {
        if id == reward.id.as_str() && at >= since && redemption_status(status)?.counts() {
            n = n.saturating_add(1);
        }
    }
    Ok(n)
}

/// The facts one member's redemption of one reward is decided on.
pub(crate) fn offer_facts<'a>(
    facts: &'a MemberFacts,
    state: &MemberState,
    row: &RewardRow,
    taken: i64,
    early_plans: &[String],
    now: Timestamp,
) -> OfferFacts<'a> {
    OfferFacts {
        member: facts,
        available: state.balance.available,
        stock_left: row.stock_left,
        taken: u32::try_from(taken).unwrap_or(u32::MAX),
        plan_early_access: facts.plan.as_ref().is_some_and(|p| early_plans.contains(p)),
        now,
    }
}

/// The answer a redemption stores (without its code, which is never kept) and a
/// replay returns.
pub(crate) fn receipt_json(r: &Redemption, plan: &Plan) -> Result<String, StoreError> {
    let mut view = RedemptionView::from(r);
    view.balance = Some(BalanceView {
        available: plan.balance_after.available,
        pending: plan.balance_after.pending,
    });
    to_json(&view)
}

/// Whether the expiry run may log an error of one voucher and go on with the others:
/// anything but the database being full, unreachable or busy, which every other
/// voucher would meet too.
pub(crate) fn skippable(e: &StoreError) -> bool {
    !matches!(
        e.fault(),
        Some(crate::Fault::StorageFull | crate::Fault::Unavailable | crate::Fault::Busy)
    )
}

/// `status NOT IN (…)` for the redemptions that count toward a limit.
pub(crate) fn counted_sql() -> String {
    let given_back: Vec<String> = RedemptionStatus::GIVEN_BACK
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("status NOT IN ({})", given_back.join(", "))
}

/// A member's catalogue from what a backend read in one snapshot: her facts and points,
/// every reward, and her redemptions (reward id, status, when, in microseconds).
pub(crate) fn offers(
    facts: MemberFacts,
    available: i64,
    rewards: Vec<RewardRow>,
    mine: &[(String, String, i64)],
    now: Timestamp,
) -> Result<MemberOffers, StoreError> {
    let rewards = rewards
        .into_iter()
        .map(|row| {
            let taken = counting(
                &row.reward,
                now,
                mine.iter()
                    .map(|(id, s, at)| (id.as_str(), s.as_str(), from_micros(*at))),
            )?;
            Ok((row, taken))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(MemberOffers {
        facts,
        available,
        rewards,
    })
}

/// The redemption a decision makes, as both backends store it.
pub(crate) fn new_redemption(cmd: &RedeemCmd, row: &RewardRow, d: &RedeemDecision) -> Redemption {
    let voucher = d.status == RedemptionStatus::Issued;
    let spec = &row.reward.spec;
    Redemption {
        id: cmd.redemption_id.clone(),
        member_id: cmd.member_id.clone(),
        reward_id: cmd.reward_id.clone(),
        kind: spec.kind,
        reward_name: row.reward.name_in(Lang::EN).to_string(),
        partner_id: spec.partner_id.clone(),
        charity: spec.charity.clone(),
        points: spec.cost,
        status: d.status,
        created_at: cmd.now,
        expires_at: d.expires_at,
        forfeit_on_expiry: spec.forfeit_on_expiry,
        taken: d.taken.clone(),
        took_stock: d.took_stock,
        code_hint: voucher.then(|| cmd.code_hint.clone()),
        closed_at: (!voucher).then_some(cmd.now),
        used_location_id: None,
    }
}
