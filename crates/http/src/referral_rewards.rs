//! Referral rewards after the write that decided them. A referred member's first
//! qualifying sale converts her referral in the sale's own transaction; right after it
//! commits, Tally posts `referral_converted` to her and to her referrer, each evaluated
//! by the operator's event rules (`event.attributes.side` tells the two apart). A full
//! return of that sale reverses the referral in the return's transaction, and the
//! points both were given are then taken back. Either step is done once (the referral
//! row says whether it was); one lost to a crash is finished by the scheduled run.

use crate::earning::rule_event;
use crate::error::ApiError;
use crate::state::AppState;
use tally_domain::ids::{EventId, MemberId};
use tally_domain::referrals::CONVERTED_EVENT;
use tally_domain::rules::{Attr, EventFacts};
use tally_store::referrals::{ReferralRecord, SOURCE, Side, event_external_id};
use tally_store::{EventCmd, MemberRef, keys};

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
    let facts = EventFacts {
        event_type: CONVERTED_EVENT.into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), Attr::String(v.to_string())))
            .collect(),
    };
    let json: serde_json::Map<String, serde_json::Value> = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let attributes_json = serde_json::Value::Object(json).to_string();
    let member = MemberRef::Id(r.member(side).clone());
    let rules = rule_event(state, None, &member, &facts, r.decided_at).await?;
    Ok(EventCmd {
        id: keys::new::<EventId>(),
        source: SOURCE.into(),
        external_id: event_external_id(&r.member_id, side),
        partner: None,
        member,
        event_type: CONVERTED_EVENT.into(),
        request_hash: keys::hash_request(attributes_json.as_bytes()),
        attributes_json,
        occurred_at: r.decided_at,
        rules,
        program: state.program().terms(),
        now: state.now(),
    })
}
