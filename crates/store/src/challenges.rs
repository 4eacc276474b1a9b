//! What both backends share about challenges: the stored challenge, a member's part in
//! each, her badges.

use jiff::Timestamp;
use tally_domain::challenges::{Measure, Standing};
use tally_domain::ids::{ChallengeId, Id, MemberId};

/// A challenge as stored: its spec as JSON (checked again when read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub id: ChallengeId,
    pub spec_json: String,
    pub created_at: Timestamp,
}

/// A member's part in one challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChallengeRow {
    pub challenge_id: ChallengeId,
    pub standing: Standing,
    pub progress: i64,
    pub completed_at: Option<Timestamp>,
    /// The partners or industries counted so far (distinct measures), in order.
    pub keys: Vec<String>,
}

/// A member's row in a challenge (`challenge_members`): status, joined at, progress.
pub(crate) type ParticipantRow = (String, i64, i64);

/// Her standing from her row; without one she has not started.
pub(crate) fn standing_of(row: Option<&ParticipantRow>) -> Standing {
    row.map_or(Standing::Open, |r| Standing::parse(&r.0))
}

/// The facts a step is decided on: her row, and whether the step's partner or industry
/// counts already (read only for distinct measures, and not once she completed).
pub(crate) fn step_facts_of(row: Option<ParticipantRow>, key_counted: bool) -> tally_domain::challenges::StepFacts {
    tally_domain::challenges::StepFacts {
        standing: standing_of(row.as_ref()),
        joined_at: row.as_ref().map(|r| crate::model::from_micros(r.1)),
        progress: row.map_or(0, |r| r.2),
        key_counted,
    }
}

/// Her part in a challenge from its row (`challenge_members`) and the steps counted
/// there: the partners or industries among them once each, in the order counted.
pub(crate) fn member_challenge(
    challenge_id: String,
    status: &str,
    progress: i64,
    completed_at: Option<i64>,
    steps: Vec<tally_domain::challenges::CountedStep>,
) -> MemberChallengeRow {
    let mut keys: Vec<String> = Vec::new();
    for s in steps {
        if !s.key.is_empty() && !keys.contains(&s.key) {
            keys.push(s.key);
        }
    }
    MemberChallengeRow {
        challenge_id: ChallengeId::from_stored(challenge_id),
        standing: Standing::parse(status),
        progress,
        completed_at: completed_at.map(crate::model::from_micros),
        keys,
    }
}

/// A badge on a member's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeRow {
    pub code: String,
    pub challenge_id: ChallengeId,
    pub earned_at: Timestamp,
}

/// A completed challenge whose `challenge_completed` is still to be posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrewarded {
    pub challenge_id: ChallengeId,
    pub member_id: MemberId,
    pub completed_at: Timestamp,
}

/// The badge code of a stored challenge.
pub(crate) fn badge_code(spec_json: &str) -> Result<String, crate::StoreError> {
    let spec: tally_domain::challenges::ChallengeSpec = serde_json::from_str(spec_json)?;
    Ok(spec.badge.code)
}

/// The measure as stored in `challenges.measure`.
pub(crate) fn measure_code(m: Measure) -> &'static str {
    match m {
        Measure::Count => "count",
        Measure::Partners => "partners",
        Measure::Industries => "industries",
        Measure::Amount => "amount",
    }
}

pub(crate) fn measure_from(s: &str) -> Measure {
    match s {
        "partners" => Measure::Partners,
        "industries" => Measure::Industries,
        "amount" => Measure::Amount,
        _ => Measure::Count,
    }
}

/// The `challenge_completed` event's id (per sender `tally`): one per member and
/// challenge, ever.
pub fn event_external_id(challenge: &ChallengeId, member: &MemberId) -> String {
    format!("challenge:{}:{}", challenge.as_str(), member.as_str())
}
