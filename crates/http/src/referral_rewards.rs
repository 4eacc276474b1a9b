//! Referral rewards after the write that decided them. A referred member's first
//! qualifying sale converts her referral in the sale's own transaction; right after it
//! commits, Tally posts `referral_converted` to her and to her referrer, each evaluated
//! by the operator's event rules (`event.attributes.side` tells the two apart). A full
//! return of that sale reverses the referral in the return's transaction, and the
//! points both were given are then taken back. Either step is done once (the referral
//! row says whether it was); one lost to a crash is finished by the scheduled run.

use crate::earning::tally_event;
use crate::error::ApiError;
use crate::state::AppState;
use tally_domain::ids::MemberId;
use tally_domain::referrals::CONVERTED_EVENT;
use tally_store::EventCmd;
use tally_store::referrals::{ReferralRecord, Side, event_external_id};

/// Gives or takes back the points of the referral of `member`, whichever is due.
/// Answers whether it did either.
pub async fn follow_up(state: &AppState, member: &MemberId) -> Result<bool, ApiError> {
    let Some(r) = state.store.referral(member).await? else {
        return Ok(false);
    };
    if r.to_reward() {
        let mut cmds = Vec::with_capacity(2);
        for side in Side::BOTH {
            cmds.push(conversion_event(state, &r, side).await?);
        }
        return Ok(state.store.reward_referral(member, cmds).await?);
    }
    if r.to_take_back() {
        return Ok(state.store.take_back_referral(member, state.now()).await?);
    }
    Ok(false)
}

/// The `referral_converted` event of one side, with the rules that apply to it.
async fn conversion_event(state: &AppState, r: &ReferralRecord, side: Side) -> Result<EventCmd, ApiError> {
    let attributes = [
        ("side", side.as_str()),
        ("referred_member", r.member_id.as_str()),
        ("referrer", r.referrer_id.as_str()),
        ("transaction_id", r.transaction_id.as_str()),
    ];
    let external_id = event_external_id(&r.member_id, side);
    tally_event(
        state,
        r.member(side),
        CONVERTED_EVENT,
        external_id,
        &attributes,
        r.decided_at,
    )
    .await
}
