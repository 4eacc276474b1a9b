//! What both backends share about rewards: reading a stored reward and redemption,
//! counting a member's redemptions toward a limit, the facts a redemption is decided
//! on, and the answer it stores.

use crate::StoreError;
use crate::codec::to_json;
use crate::model::RewardRow;
use jiff::Timestamp;
use tally_domain::ids::{Id, RewardId};
use tally_domain::plan::{MemberState, Plan};
use tally_domain::receipt::BalanceView;
use tally_domain::rewards::{OfferFacts, Redemption, RedemptionStatus, RedemptionView, Reward, RewardSpec};
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

/// Whether a voucher may get a new code: issued and not past its expiry (a till would
/// refuse the new code).
pub(crate) fn may_reissue(r: &Redemption, now: Timestamp) -> Result<(), StoreError> {
    let status = match r.status {
        RedemptionStatus::Issued if r.expires_at.is_some_and(|e| e <= now) => "expired",
        RedemptionStatus::Issued => return Ok(()),
        other => other.as_str(),
    };
    Err(tally_domain::DomainError::Refused {
        code: "voucher_closed",
        message: format!("the voucher is {status}: only a voucher that can still be used gets a new code"),
    }
    .into())
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
