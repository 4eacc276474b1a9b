//! Challenges: saved and listed; a member joining; the steps a sale or event counts for,
//! decided in its own write (the single writer: racing sales never complete one twice);
//! a full return taking a step back before completion; her progress and badges.

use super::SqliteStore;
use crate::StoreError;
use crate::challenges::{
    BadgeRow, ChallengeRow, MemberChallengeRow, ParticipantRow, Unrewarded, measure_code, measure_from,
    member_challenge, standing_of, step_facts_of,
};
use crate::model::{from_micros, to_micros};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::challenges::{CountedStep, Measure, Standing, Step, StepFacts, StepOutcome, decide_step, progress};
use tally_domain::ids::{ChallengeId, Id, MemberId};

fn standing(conn: &Connection, member: &MemberId, challenge: &ChallengeId) -> Result<Standing, StoreError> {
    Ok(step_facts(conn, member, challenge, None)?.standing)
}

/// Her part in a challenge as a step is decided on: standing, when she joined, her
/// progress, and (for `key`, a distinct measure's) whether that key counts already.
fn step_facts(
    conn: &Connection,
    member: &MemberId,
    challenge: &ChallengeId,
    key: Option<&str>,
) -> Result<StepFacts, StoreError> {
    let row: Option<ParticipantRow> = conn
        .prepare_cached(
            "SELECT status, joined_at, progress FROM challenge_members WHERE member_id = ?1 AND challenge_id = ?2",
        )?
        .query_row(params![member.as_str(), challenge.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let key_counted = match key {
        Some(k) if standing_of(row.as_ref()) != Standing::Completed => conn
            .prepare_cached(
                "SELECT 1 FROM challenge_steps WHERE member_id = ?1 AND challenge_id = ?2 AND key = ?3 AND undone = 0 LIMIT 1",
            )?
            .query_row(params![member.as_str(), challenge.as_str(), k], |r| r.get::<_, i64>(0))
            .optional()?
            .is_some(),
        _ => false,
    };
    Ok(step_facts_of(row, key_counted))
}

fn counted(conn: &Connection, member: &MemberId, challenge: &ChallengeId) -> Result<Vec<CountedStep>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, amount FROM challenge_steps WHERE member_id = ?1 AND challenge_id = ?2 AND undone = 0
         ORDER BY counted_at, source_id",
    )?;
    let rows = stmt.query_map(params![member.as_str(), challenge.as_str()], |r| {
        Ok(CountedStep {
            key: r.get(0)?,
            amount: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Counts a sale's or event's `steps` for `member` (source `source_id`) in its write:
/// each decided on her standing and steps so far. Answers the challenges it completed.
pub(super) fn count_steps(
    conn: &Connection,
    member: &MemberId,
    source_id: &str,
    steps: &[Step],
    now: Timestamp,
) -> Result<Vec<ChallengeId>, StoreError> {
    let mut completed = Vec::new();
    for step in steps {
        let key = matches!(step.measure, Measure::Partners | Measure::Industries).then_some(step.key.as_str());
        let StepOutcome::Counted {
            progress,
            completes,
            enrols,
        } = decide_step(step_facts(conn, member, &step.challenge_id, key)?, step)
        else {
            continue;
        };
        let inserted = conn
            .prepare_cached(
                "INSERT INTO challenge_steps (member_id, challenge_id, source_id, key, amount, counted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                member.as_str(),
                step.challenge_id.as_str(),
                source_id,
                step.key,
                step.amount,
                to_micros(now)
            ])?;
        if inserted == 0 {
            continue;
        }
        if enrols {
            join(conn, member, &step.challenge_id, now)?;
        }
        let status = if completes { "completed" } else { "joined" };
        conn.prepare_cached(
            "UPDATE challenge_members SET progress = ?3, status = ?4,
                 completed_at = CASE WHEN ?4 = 'completed' THEN ?5 ELSE completed_at END
             WHERE member_id = ?1 AND challenge_id = ?2",
        )?
        .execute(params![
            member.as_str(),
            step.challenge_id.as_str(),
            progress,
            status,
            to_micros(now)
        ])?;
        if completes {
            award_badge(conn, member, &step.challenge_id, now)?;
            completed.push(step.challenge_id.clone());
        }
    }
    Ok(completed)
}

fn award_badge(
    conn: &Connection,
    member: &MemberId,
    challenge: &ChallengeId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let spec: String = conn
        .prepare_cached("SELECT spec FROM challenges WHERE id = ?1")?
        .query_row([challenge.as_str()], |r| r.get(0))?;
    let code = crate::challenges::badge_code(&spec)?;
    conn.prepare_cached(
        "INSERT INTO badges (member_id, code, challenge_id, earned_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )?
    .execute(params![member.as_str(), code, challenge.as_str(), to_micros(now)])?;
    Ok(())
}

/// A purchase returned in full: its steps in challenges she has not completed no longer
/// count, and her progress there is counted again.
pub(super) fn undo_steps(conn: &Connection, member: &MemberId, source_id: &str) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.challenge_id, c.measure FROM challenge_steps s
         JOIN challenge_members m ON m.member_id = s.member_id AND m.challenge_id = s.challenge_id
         JOIN challenges c ON c.id = s.challenge_id
         WHERE s.source_id = ?1 AND s.member_id = ?2 AND s.undone = 0 AND m.status = 'joined'",
    )?;
    let affected = stmt
        .query_map(params![source_id, member.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (challenge, measure) in affected {
        let challenge = ChallengeId::from_stored(challenge);
        conn.prepare_cached(
            "UPDATE challenge_steps SET undone = 1 WHERE member_id = ?1 AND challenge_id = ?2 AND source_id = ?3",
        )?
        .execute(params![member.as_str(), challenge.as_str(), source_id])?;
        let now = progress(measure_from(&measure), &counted(conn, member, &challenge)?);
        conn.prepare_cached("UPDATE challenge_members SET progress = ?3 WHERE member_id = ?1 AND challenge_id = ?2")?
            .execute(params![member.as_str(), challenge.as_str(), now])?;
    }
    Ok(())
}

/// She takes part from now (nothing if she already does). Answers her standing.
fn join(conn: &Connection, member: &MemberId, challenge: &ChallengeId, now: Timestamp) -> Result<Standing, StoreError> {
    conn.prepare_cached(
        "INSERT INTO challenge_members (member_id, challenge_id, status, joined_at) VALUES (?1, ?2, 'joined', ?3)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![member.as_str(), challenge.as_str(), to_micros(now)])?;
    standing(conn, member, challenge)
}

fn create(
    conn: &Connection,
    row: &ChallengeRow,
    code: &str,
    measure: Measure,
    target: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO challenges (id, code, spec, measure, target, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (code) DO NOTHING",
        )?
        .execute(params![
            row.id.as_str(),
            code,
            row.spec_json,
            measure_code(measure),
            target,
            to_micros(row.created_at)
        ])?;
    Ok(n == 1)
}

fn challenges(conn: &Connection) -> Result<Vec<ChallengeRow>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, spec, created_at FROM challenges ORDER BY created_at, id")?;
    let rows = stmt.query_map([], |r| {
        Ok(ChallengeRow {
            id: ChallengeId::from_stored(r.get(0)?),
            spec_json: r.get(1)?,
            created_at: from_micros(r.get(2)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn member_challenges(conn: &Connection, member: &MemberId) -> Result<Vec<MemberChallengeRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT challenge_id, status, progress, completed_at FROM challenge_members WHERE member_id = ?1",
    )?;
    let rows = stmt
        .query_map([member.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, status, progress, completed) in rows {
        let steps = counted(conn, member, &ChallengeId::from_stored(id.clone()))?;
        out.push(member_challenge(id, &status, progress, completed, steps));
    }
    Ok(out)
}

fn badges(conn: &Connection, member: &MemberId) -> Result<Vec<BadgeRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT code, challenge_id, earned_at FROM badges WHERE member_id = ?1 ORDER BY earned_at, code",
    )?;
    let rows = stmt.query_map([member.as_str()], |r| {
        Ok(BadgeRow {
            code: r.get(0)?,
            challenge_id: ChallengeId::from_stored(r.get(1)?),
            earned_at: from_micros(r.get(2)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn unrewarded(conn: &Connection, limit: u32) -> Result<Vec<Unrewarded>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT challenge_id, member_id, completed_at FROM challenge_members
         WHERE status = 'completed' AND rewarded = 0 ORDER BY completed_at LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(Unrewarded {
            challenge_id: ChallengeId::from_stored(r.get(0)?),
            member_id: MemberId::from_stored(r.get(1)?),
            completed_at: from_micros(r.get(2)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

impl SqliteStore {
    /// Saves a checked challenge; false when its code is taken.
    pub async fn create_challenge(
        &self,
        row: ChallengeRow,
        code: String,
        measure: Measure,
        target: i64,
    ) -> Result<bool, StoreError> {
        self.write(move |c| create(c, &row, &code, measure, target)).await
    }

    pub async fn challenges(&self) -> Result<Vec<ChallengeRow>, StoreError> {
        self.read(challenges).await
    }

    pub async fn join_challenge(
        &self,
        member: MemberId,
        challenge: ChallengeId,
        now: Timestamp,
    ) -> Result<Standing, StoreError> {
        self.write(move |c| join(c, &member, &challenge, now)).await
    }

    pub async fn member_challenges(&self, member: MemberId) -> Result<Vec<MemberChallengeRow>, StoreError> {
        self.read(move |c| member_challenges(c, &member)).await
    }

    pub async fn badges(&self, member: MemberId) -> Result<Vec<BadgeRow>, StoreError> {
        self.read(move |c| badges(c, &member)).await
    }

    pub async fn unrewarded_challenges(&self, limit: u32) -> Result<Vec<Unrewarded>, StoreError> {
        self.read(move |c| unrewarded(c, limit)).await
    }

    pub async fn mark_challenge_rewarded(&self, challenge: ChallengeId, member: MemberId) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached("UPDATE challenge_members SET rewarded = 1 WHERE member_id = ?1 AND challenge_id = ?2")?
                .execute(params![member.as_str(), challenge.as_str()])?;
            Ok(())
        })
        .await
    }
}
