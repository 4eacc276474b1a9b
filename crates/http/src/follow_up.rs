//! What a sale, return or event leaves to do after it commits: a referral's points
//! given or taken back ([`crate::referral_rewards`]), and `challenge_completed` posted
//! to a member who completed a challenge. Each is done once (the stored row says
//! whether it was); one a crash left undone is finished by the scheduled run.

use crate::earning::tally_event;
use crate::error::ApiError;
use crate::referral_rewards::follow_up;
use crate::state::AppState;
use jiff::Timestamp;
use tally_domain::challenges::COMPLETED_EVENT;
use tally_domain::ids::{ChallengeId, Id, MemberId};
use tally_store::Posted;

/// After a sale, return or event: its follow-ups. A failure is logged and left to the
/// scheduled run; the sale, return or event itself stands.
pub async fn after_write(state: &AppState, posted: &Posted) {
    if let Some(member) = &posted.follow_up
        && let Err(e) = follow_up(state, member).await
    {
        tracing::warn!(member = %member.as_str(), error = %e.message, "a referral's points are left to the scheduled run");
    }
    if posted.completed.is_empty() {
        return;
    }
    let Some(member) = member_of(&posted.receipt_json) else {
        return;
    };
    for challenge in &posted.completed {
        if let Err(e) = reward_challenge(state, challenge, &member, state.now()).await {
            tracing::warn!(%challenge, error = %e.message, "a completed challenge is left to the scheduled run");
        }
    }
}

/// The member an answer is about (`member_id` of a receipt).
fn member_of(receipt_json: &str) -> Option<MemberId> {
    let v: serde_json::Value = serde_json::from_str(receipt_json).ok()?;
    Some(MemberId::from_stored(v.get("member_id")?.as_str()?.to_string()))
}

/// Posts `challenge_completed` to `member` for `challenge` (once: the event's id is
/// the pair's), then records it posted.
async fn reward_challenge(
    state: &AppState,
    challenge: &ChallengeId,
    member: &MemberId,
    at: Timestamp,
) -> Result<(), ApiError> {
    let mut all = state.challenges();
    if !all.iter().any(|c| &c.id == challenge) {
        // Saved through another server and not announced here yet: read them again.
        state.reload_rules().await?;
        all = state.challenges();
    }
    let Some(c) = all.iter().find(|c| &c.id == challenge) else {
        return Err(ApiError::not_found("challenge"));
    };
    let attributes = [
        ("challenge", c.spec.code.as_str()),
        ("challenge_id", challenge.as_str()),
        ("badge", c.spec.badge.code.as_str()),
    ];
    let external_id = tally_store::challenges::event_external_id(challenge, member);
    let cmd = tally_event(state, member, COMPLETED_EVENT, external_id, &attributes, at).await?;
    let posted = state.store.post_event(cmd).await?;
    state.store.mark_challenge_rewarded(challenge, member).await?;
    // A challenge counting completions may have completed in turn.
    for next in &posted.completed {
        Box::pin(reward_challenge(state, next, member, at)).await?;
    }
    Ok(())
}

/// Finishes what sales, returns and events left undone (the scheduled run): referrals
/// whose points were not given or taken back, completed challenges not yet rewarded.
/// Answers how many of each it finished.
pub async fn finish_all(state: &AppState) -> (u64, u64) {
    let mut referrals = 0;
    match state.store.unfinished_referrals(1000).await {
        Ok(unfinished) => {
            for member in unfinished {
                match follow_up(state, &member).await {
                    Ok(true) => referrals += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(member = %member.as_str(), error = %e.message, "a referral could not be finished")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not list the referrals left to finish"),
    }
    let mut challenges = 0;
    match state.store.unrewarded_challenges(1000).await {
        Ok(unrewarded) => {
            for u in unrewarded {
                match reward_challenge(state, &u.challenge_id, &u.member_id, u.completed_at).await {
                    Ok(()) => challenges += 1,
                    Err(e) => {
                        tracing::warn!(challenge = %u.challenge_id, error = %e.message, "a completed challenge could not be rewarded")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not list the completed challenges left to reward"),
    }
    (referrals, challenges)
}
