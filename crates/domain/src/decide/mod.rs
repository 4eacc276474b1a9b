//! Decisions: one pure function per command a till or the operator sends.
//!
//! A backend reads the facts a command needs (the member's balances and lots, the
//! stored receipt if the id was seen before, cap and budget counters, the purchase a
//! return names), calls the decision here, and writes what it says in one database
//! transaction. Nothing in this module does I/O, so SQLite, PostgreSQL and the quote
//! decide the same way by construction:
//!
//! | command | decision | refuses with |
//! | --- | --- | --- |
//! | a sale | [`decide_purchase`] → [`PurchaseDecision`] | `insufficient_points`, `unknown_location`, `stale`, … |
//! | a quote | [`decide_purchase`] with [`ReceiptStatus::Quote`]; nothing is written | the same |
//! | a return | [`decide_return`] → [`ReturnDecision`] | `return_exceeds_purchase`, `currency_mismatch` |
//! | an engagement event | [`decide_event`] → [`EventDecision`] | `unknown_event_type`, `stale` |
//! | a membership payment | [`decide_membership_payment`] → [`PaymentDecision`] | `payment_mismatch`, `membership_over` |
//! | redeeming a reward | [`decide_redeem`] → [`RedeemDecision`] | `insufficient_points`, `sold_out`, `limit_reached`, `not_eligible`, `not_open_yet` |
//! | a voucher used at the till | [`decide_use`] → a plan | `voucher_used`, `voucher_expired`, `voucher_cancelled`, `voucher_wrong_partner` |
//! | a voucher cancelled or expired | [`decide_release`] → [`ReleaseDecision`] | `voucher_used`, `voucher_cancelled`, `voucher_expired` |
//! | points sent to another member | [`decide_transfer`] → [`TransferDecision`] | `transfers_closed`, `same_household`, `member_too_new`, `needs_purchase`, `daily_limit_reached`, `monthly_limit_reached`, `insufficient_points` |
//! | an exchange out to another programme | [`decide_exchange_out`] → [`OrderDecision`] | `exchange_closed`, `exchange_direction`, `below_minimum`, `not_a_step`, `daily_limit_reached`, `insufficient_points` |
//! | its answer from the other programme | [`decide_exchange_outcome`] → a plan, or nothing (the same answer again) | `order_closed` |
//! | units credited in | [`decide_exchange_in`] → a plan and the points | `exchange_closed`, `exchange_direction`, `daily_limit_reached`, `invalid_field` |
//! | closing a shared wallet | [`plan_close`] → [`ClosePlan`] | `wallet_not_empty`, `invalid_field` |
//! | the passing of time | [`decide_settle`] → a plan, or nothing to do | |
//! | any id seen before | [`replay`] → the first answer, or `idempotency_conflict` | |

mod awards;
mod commands;
mod events;
mod exchange;
mod memberships;
mod purchase;
mod redemptions;
mod replay;
mod returns;
mod transfers;
mod wallets;

pub use awards::{AwardReversal, Granted, GrantedAward, SavedAward, award_reversals, counter_keys, grant_awards};
pub use commands::{EventCmd, MemberAssumption, MemberRef, Posted, PurchaseCmd, ReturnCmd, RuleDraft};
pub use events::{EventDecision, EventFacts, EventTier, decide_event};
pub use exchange::{OrderDecision, Outcome, decide_exchange_in, decide_exchange_out, decide_exchange_outcome};
pub use memberships::{PaymentDecision, decide_membership_payment};
pub use purchase::{PurchaseDecision, PurchaseFacts, ReceiptStatus, WalletFacts, WalletPlan, decide_purchase};
pub use redemptions::{
    RedeemDecision, Release, ReleaseDecision, decide_redeem, decide_release, decide_use, may_reissue,
};
pub use replay::{StoredAnswer, replay};
pub use returns::{PurchaseChange, ReturnDecision, ReturnFacts, decide_return};
pub use transfers::{TransferDecision, TransferFacts, decide_transfer};
pub use wallets::{ClosePlan, Share, plan_close};

use crate::DomainError;
use crate::plan::{MemberState, Plan, plan_settle};
use jiff::Timestamp;

/// Settling one member at `now` (the expiry run): the plan to write, or `None` when
/// nothing matures, expires or changes the member's next due time.
pub fn decide_settle(state: &MemberState, now: Timestamp) -> Result<Option<Plan>, DomainError> {
    let plan = plan_settle(state, now)?;
    Ok((!plan.transfers.is_empty() || plan.next_due_at != state.next_due_at).then_some(plan))
}

#[cfg(test)]
mod tests;
