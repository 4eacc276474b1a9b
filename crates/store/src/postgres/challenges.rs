//! Challenges: saved and listed; a member joining; the steps a sale or event counts for,
//! decided in its own write with the member's row locked (racing sales never complete
//! one twice); a full return taking a step back before completion; her progress and
//! badges.

use super::PgStore;
use crate::StoreError;
use crate::challenges::{
    BadgeRow, ChallengeRow, MemberChallengeRow, ParticipantRow, Unrewarded, badge_code, measure_code, measure_from,
    member_challenge, standing_of, step_facts_of,
};
use crate::model::{from_micros, to_micros};
use jiff::Timestamp;
use sqlx::PgConnection;
use std::collections::{BTreeSet, HashMap, HashSet};
use tally_domain::challenges::{CountedStep, Measure, Standing, Step, StepFacts, StepOutcome, decide_step, progress};
use tally_domain::ids::{ChallengeId, Id, MemberId};

async fn standing(conn: &mut PgConnection, member: &MemberId, challenge: &ChallengeId) -> Result<Standing, StoreError> {
    Ok(step_facts(conn, member, challenge, None).await?.standing)
}

/// Her part in a challenge as a step is decided on: standing, when she joined, her
/// progress, and (for `key`, a distinct measure's) whether that key counts already.
async fn step_facts(
    conn: &mut PgConnection,
    member: &MemberId,
    challenge: &ChallengeId,
    key: Option<&str>,
) -> Result<StepFacts, StoreError> {
    let row: Option<ParticipantRow> = sqlx::query_as(
        "SELECT status, joined_at, progress FROM challenge_members WHERE member_id = $1 AND challenge_id = $2",
    )
    .bind(member.as_str())
    .bind(challenge.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let key_counted = match key {
        Some(k) if standing_of(row.as_ref()) != Standing::Completed => sqlx::query_scalar::<_, i32>(
            "SELECT 1 FROM challenge_steps WHERE member_id = $1 AND challenge_id = $2 AND key = $3 AND undone = 0 LIMIT 1",
        )
        .bind(member.as_str())
        .bind(challenge.as_str())
        .bind(k)
        .fetch_optional(&mut *conn)
        .await?
        .is_some(),
        _ => false,
    };
    Ok(step_facts_of(row, key_counted))
}

async fn counted(
    conn: &mut PgConnection,
    member: &MemberId,
    challenge: &ChallengeId,
) -> Result<Vec<CountedStep>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT key, amount FROM challenge_steps WHERE member_id = $1 AND challenge_id = $2 AND undone = 0
         ORDER BY counted_at, source_id",
    )
    .bind(member.as_str())
    .bind(challenge.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, amount)| CountedStep { key, amount })
        .collect())
}

/// Counts a sale's or event's `steps` for `member` (source `source_id`; her row locked)
/// in its write: each decided on her standing and steps so far. Answers the challenges
/// it completed.
pub(super) async fn count_steps(
    tx: &mut PgConnection,
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
        } = decide_step(step_facts(&mut *tx, member, &step.challenge_id, key).await?, step)
        else {
            continue;
        };
        let inserted = sqlx::query(
            "INSERT INTO challenge_steps (member_id, challenge_id, source_id, key, amount, counted_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(member.as_str())
        .bind(step.challenge_id.as_str())
        .bind(source_id)
        .bind(&step.key)
        .bind(step.amount)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            continue;
        }
        if enrols {
            join(&mut *tx, member, &step.challenge_id, now).await?;
        }
        let status = if completes { "completed" } else { "joined" };
        sqlx::query(
            "UPDATE challenge_members SET progress = $3, status = $4,
                 completed_at = CASE WHEN $4 = 'completed' THEN $5 ELSE completed_at END
             WHERE member_id = $1 AND challenge_id = $2",
        )
        .bind(member.as_str())
        .bind(step.challenge_id.as_str())
        .bind(progress)
        .bind(status)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        if completes {
            award_badge(&mut *tx, member, &step.challenge_id, now).await?;
            completed.push(step.challenge_id.clone());
        }
    }
    Ok(completed)
}

async fn award_badge(
    tx: &mut PgConnection,
    member: &MemberId,
    challenge: &ChallengeId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let spec: String = sqlx::query_scalar("SELECT spec FROM challenges WHERE id = $1")
        .bind(challenge.as_str())
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO badges (member_id, code, challenge_id, earned_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(member.as_str())
    .bind(badge_code(&spec)?)
    .bind(challenge.as_str())
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A purchase returned in full (its member's row locked): its steps in challenges she
/// has not completed no longer count, and her progress there is counted again.
pub(super) async fn undo_steps(tx: &mut PgConnection, member: &MemberId, source_id: &str) -> Result<(), StoreError> {
    let affected: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.challenge_id, c.measure FROM challenge_steps s
         JOIN challenge_members m ON m.member_id = s.member_id AND m.challenge_id = s.challenge_id
         JOIN challenges c ON c.id = s.challenge_id
         WHERE s.source_id = $1 AND s.member_id = $2 AND s.undone = 0 AND m.status = 'joined'",
    )
    .bind(source_id)
    .bind(member.as_str())
    .fetch_all(&mut *tx)
    .await?;
    for (challenge, measure) in affected {
        let challenge = ChallengeId::from_stored(challenge);
        sqlx::query(
            "UPDATE challenge_steps SET undone = 1 WHERE member_id = $1 AND challenge_id = $2 AND source_id = $3",
        )
        .bind(member.as_str())
        .bind(challenge.as_str())
        .bind(source_id)
        .execute(&mut *tx)
        .await?;
        let now = progress(measure_from(&measure), &counted(&mut *tx, member, &challenge).await?);
        sqlx::query("UPDATE challenge_members SET progress = $3 WHERE member_id = $1 AND challenge_id = $2")
            .bind(member.as_str())
            .bind(challenge.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

async fn join(
    conn: &mut PgConnection,
    member: &MemberId,
    challenge: &ChallengeId,
    now: Timestamp,
) -> Result<Standing, StoreError> {
    sqlx::query(
        "INSERT INTO challenge_members (member_id, challenge_id, status, joined_at) VALUES ($1, $2, 'joined', $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(member.as_str())
    .bind(challenge.as_str())
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    standing(conn, member, challenge).await
}

impl PgStore {
    /// Saves a checked challenge; false when its code is taken.
    pub async fn create_challenge(
        &self,
        row: ChallengeRow,
        code: String,
        measure: Measure,
        target: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO challenges (id, code, spec, measure, target, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (code) DO NOTHING",
        )
        .bind(row.id.as_str())
        .bind(code)
        .bind(&row.spec_json)
        .bind(measure_code(measure))
        .bind(target)
        .bind(to_micros(row.created_at))
        .execute(&self.pool)
        .await?;
        Ok(n.rows_affected() == 1)
    }

    pub async fn challenges(&self) -> Result<Vec<ChallengeRow>, StoreError> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT id, spec, created_at FROM challenges ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, spec_json, at)| ChallengeRow {
                id: ChallengeId::from_stored(id),
                spec_json,
                created_at: from_micros(at),
            })
            .collect())
    }

    pub async fn join_challenge(
        &self,
        member: MemberId,
        challenge: ChallengeId,
        now: Timestamp,
    ) -> Result<Standing, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Under the member's lock, as every write of her steps.
        sqlx::query("SELECT 1 FROM members WHERE id = $1 FOR NO KEY UPDATE")
            .bind(member.as_str())
            .execute(&mut *tx)
            .await?;
        let standing = join(&mut tx, &member, &challenge, now).await?;
        tx.commit().await?;
        Ok(standing)
    }

    pub async fn member_challenges(&self, member: MemberId) -> Result<Vec<MemberChallengeRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT challenge_id, status, progress, completed_at FROM challenge_members WHERE member_id = $1",
        )
        .bind(member.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, status, progress, completed) in rows {
            let steps = counted(&mut conn, &member, &ChallengeId::from_stored(id.clone())).await?;
            out.push(member_challenge(id, &status, progress, completed, steps));
        }
        Ok(out)
    }

    pub async fn badges(&self, member: MemberId) -> Result<Vec<BadgeRow>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT code, challenge_id, earned_at FROM badges WHERE member_id = $1 ORDER BY earned_at, code",
        )
        .bind(member.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(code, c, at)| BadgeRow {
                code,
                challenge_id: ChallengeId::from_stored(c),
                earned_at: from_micros(at),
            })
            .collect())
    }

    pub async fn unrewarded_challenges(&self, limit: u32) -> Result<Vec<Unrewarded>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT challenge_id, member_id, completed_at FROM challenge_members
             WHERE status = 'completed' AND rewarded = 0 ORDER BY completed_at LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(c, m, at)| Unrewarded {
                challenge_id: ChallengeId::from_stored(c),
                member_id: MemberId::from_stored(m),
                completed_at: from_micros(at),
            })
            .collect())
    }

    pub async fn mark_challenge_rewarded(&self, challenge: ChallengeId, member: MemberId) -> Result<(), StoreError> {
        sqlx::query("UPDATE challenge_members SET rewarded = 1 WHERE member_id = $1 AND challenge_id = $2")
            .bind(member.as_str())
            .bind(challenge.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A member's standing in a challenge after the group's steps: status, progress, when she
/// joined and when she completed it (microseconds).
type Written = (Standing, i64, i64, Option<i64>);

/// The challenge steps of a sale group's written sales, decided in the order the sales
/// arrived, in four statements however many there are: the members' standings and the
/// distinct keys they have counted read at once, each step decided in memory on what
/// the steps before it left, then the steps, the standings and any badges written at
/// once. Every member is locked by the group. Answers, per sale (by `index`), the
/// challenges it completed.
pub(super) async fn count_group_steps(
    tx: &mut PgConnection,
    sales: &[(usize, &MemberId, &str, &[Step], Timestamp)],
) -> Result<HashMap<usize, Vec<ChallengeId>>, StoreError> {
    let pairs: BTreeSet<(&str, &str)> = sales
        .iter()
        .flat_map(|(_, m, _, steps, _)| steps.iter().map(move |s| (m.as_str(), s.challenge_id.as_str())))
        .collect();
    let (members, challenges): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
    let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT c.member_id, c.challenge_id, c.status, c.joined_at, c.progress
         FROM challenge_members c JOIN UNNEST($1::text[], $2::text[]) AS u(m, ch)
           ON c.member_id = u.m AND c.challenge_id = u.ch",
    )
    .bind(&members)
    .bind(&challenges)
    .fetch_all(&mut *tx)
    .await?;
    let mut facts: HashMap<(String, String), StepFacts> = rows
        .into_iter()
        .map(|(m, c, status, joined, progress)| {
            let f = StepFacts {
                standing: Standing::parse(&status),
                joined_at: Some(from_micros(joined)),
                progress,
                key_counted: false,
            };
            ((m, c), f)
        })
        .collect();
    // The partners or industries counted already: only where a step brings one.
    let distinct: BTreeSet<(&str, &str, &str)> = sales
        .iter()
        .flat_map(|(_, m, _, steps, _)| {
            steps
                .iter()
                .filter(|s| matches!(s.measure, Measure::Partners | Measure::Industries))
                .map(move |s| (m.as_str(), s.challenge_id.as_str(), s.key.as_str()))
        })
        .collect();
    let mut keys: HashSet<(String, String, String)> = HashSet::new();
    if !distinct.is_empty() {
        let (mut km, mut kc, mut kk) = (vec![], vec![], vec![]);
        for (m, c, k) in &distinct {
            km.push(*m);
            kc.push(*c);
            kk.push(*k);
        }
        let counted: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT DISTINCT s.member_id, s.challenge_id, s.key
             FROM challenge_steps s JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS u(m, ch, k)
               ON s.member_id = u.m AND s.challenge_id = u.ch AND s.key = u.k
             WHERE s.undone = 0",
        )
        .bind(&km)
        .bind(&kc)
        .bind(&kk)
        .fetch_all(&mut *tx)
        .await?;
        keys.extend(counted);
    }
    // What to write: the steps, each member's last standing per challenge, the badges.
    let (mut s_member, mut s_challenge, mut s_source, mut s_key, mut s_amount, mut s_at) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut standings: HashMap<(String, String), Written> = HashMap::new();
    let (mut b_member, mut b_challenge, mut b_at) = (vec![], vec![], vec![]);
    let mut completed: HashMap<usize, Vec<ChallengeId>> = HashMap::new();
    for (index, member, source, steps, now) in sales {
        for step in *steps {
            let pair = (member.as_str().to_string(), step.challenge_id.as_str().to_string());
            let mut f = facts.get(&pair).copied().unwrap_or(StepFacts {
                standing: Standing::Open,
                joined_at: None,
                progress: 0,
                key_counted: false,
            });
            let distinct = matches!(step.measure, Measure::Partners | Measure::Industries);
            let key = (pair.0.clone(), pair.1.clone(), step.key.clone());
            f.key_counted = distinct && keys.contains(&key);
            let StepOutcome::Counted {
                progress,
                completes,
                enrols,
            } = decide_step(f, step)
            else {
                continue;
            };
            let at = to_micros(*now);
            s_member.push(pair.0.clone());
            s_challenge.push(pair.1.clone());
            s_source.push(source.to_string());
            s_key.push(step.key.clone());
            s_amount.push(step.amount);
            s_at.push(at);
            if distinct {
                keys.insert(key);
            }
            let joined = match enrols {
                true => at,
                false => f.joined_at.map_or(at, to_micros),
            };
            let standing = if completes {
                Standing::Completed
            } else {
                Standing::Joined
            };
            standings.insert(pair.clone(), (standing, progress, joined, completes.then_some(at)));
            facts.insert(
                pair.clone(),
                StepFacts {
                    standing,
                    joined_at: Some(from_micros(joined)),
                    progress,
                    key_counted: false,
                },
            );
            if completes {
                b_member.push(pair.0.clone());
                b_challenge.push(pair.1.clone());
                b_at.push(at);
                completed.entry(*index).or_default().push(step.challenge_id.clone());
            }
        }
    }
    if s_member.is_empty() {
        return Ok(completed);
    }
    let inserted = sqlx::query(
        "INSERT INTO challenge_steps (member_id, challenge_id, source_id, key, amount, counted_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&s_member)
    .bind(&s_challenge)
    .bind(&s_source)
    .bind(&s_key)
    .bind(&s_amount)
    .bind(&s_at)
    .execute(&mut *tx)
    .await?;
    // Each is a new sale's (its row just written), once per challenge: a step already
    // there would mean the standings decided above are not what the rows say.
    if inserted.rows_affected() != s_member.len() as u64 {
        return Err(StoreError::stopped("a challenge step of a new sale was there already"));
    }
    let (mut m_member, mut m_challenge, mut m_status, mut m_progress, mut m_joined, mut m_completed) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((m, c), (standing, progress, joined, done)) in standings {
        m_member.push(m);
        m_challenge.push(c);
        m_status.push(standing.as_str());
        m_progress.push(progress);
        m_joined.push(joined);
        m_completed.push(done);
    }
    sqlx::query(
        "INSERT INTO challenge_members (member_id, challenge_id, status, progress, joined_at, completed_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
         ON CONFLICT (member_id, challenge_id) DO UPDATE
         SET status = EXCLUDED.status, progress = EXCLUDED.progress,
             completed_at = COALESCE(EXCLUDED.completed_at, challenge_members.completed_at)",
    )
    .bind(&m_member)
    .bind(&m_challenge)
    .bind(&m_status)
    .bind(&m_progress)
    .bind(&m_joined)
    .bind(&m_completed)
    .execute(&mut *tx)
    .await?;
    if !b_member.is_empty() {
        sqlx::query(
            "INSERT INTO badges (member_id, code, challenge_id, earned_at)
             SELECT u.m, (c.spec::json -> 'badge' ->> 'code'), u.ch, u.at
             FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS u(m, ch, at) JOIN challenges c ON c.id = u.ch
             ON CONFLICT DO NOTHING",
        )
        .bind(&b_member)
        .bind(&b_challenge)
        .bind(&b_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(completed)
}
