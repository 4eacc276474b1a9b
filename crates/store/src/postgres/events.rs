//! Engagement events: their types, posting one (once per sender and event id), and a
//! member's list of them.

use super::PgStore;
use super::budgets::{Budgets, Taken};
use super::challenges::count_steps;
use super::ledger::write_plan;
use super::members::{member_state, visits};
use super::rules::{award_rows, draft_counters, keep_drawn, write_awards};
use super::tiers::{household_standing, write_tier};
use crate::codec::{stored_answer, to_json};
use crate::model::{EventCmd, EventRow, Holder, Posted, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::PgConnection;
use tally_domain::decide::{EventFacts, StoredAnswer, decide_event, replay};
use tally_domain::ids::{EventId, Id, MemberId, PartnerId};
use tally_domain::plan::needs_lots;

async fn stored_event(conn: &mut PgConnection, cmd: &EventCmd) -> Result<Option<StoredAnswer>, StoreError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT request_hash, receipt FROM events WHERE source = $1 AND external_id = $2")
            .bind(&cmd.source)
            .bind(&cmd.external_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(stored_answer))
}

/// id, external id, partner, type, attributes, occurred at, points.
type EventTuple = (String, String, Option<String>, String, String, i64, i64);

/// Posts an event inside `tx` (the caller commits): its answer, or `None` when the same
/// event id was posted concurrently and this one must be replayed after a rollback.
pub(super) async fn write_event(
    tx: &mut PgConnection,
    cmd: &EventCmd,
    budgets: &Budgets,
    taken: &mut Taken,
) -> Result<Option<Posted>, StoreError> {
    if let Some(posted) = replay(stored_event(&mut *tx, cmd).await?, &cmd.request_hash, None)? {
        return Ok(Some(posted));
    }
    let type_known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM event_types WHERE name = $1")
        .bind(&cmd.event_type)
        .fetch_optional(&mut *tx)
        .await?;
    let state = member_state(&mut *tx, &cmd.member, true, |due| needs_lots(0, due, cmd.now)).await?;
    // Where events qualify under a ladder per household, the household's standing
    // counts: its row locked after the member's, before any counter, as a sale's.
    let ladder = &cmd.program.tiers;
    let household = match ladder.counts_events() {
        true => household_standing(&mut *tx, ladder, &state.member_id, true).await?,
        false => None,
    };
    let partner_id = cmd.partner.as_ref().map(|p| &p.id);
    let visits = match (cmd.rules.reads_visits(), partner_id) {
        (true, Some(p)) => Some(visits(&mut *tx, &state.member_id, p).await?),
        (true, None) => Some(0),
        (false, _) => None,
    };
    let counters = draft_counters(&mut *tx, &cmd.rules, &state.member_id, budgets, taken).await?;
    let facts = EventFacts {
        state: &state,
        type_known: type_known.is_some(),
        visits,
        counters: &counters,
        household_tier: household.as_ref().map(|(w, t)| (w, t)),
    };
    let d = match decide_event(cmd, facts) {
        Ok(d) => d,
        // A copy of this event may have committed while this one waited for the
        // member's lock: its answer, not a refusal.
        Err(refusal) => match replay(stored_event(&mut *tx, cmd).await?, &cmd.request_hash, None)? {
            Some(posted) => return Ok(Some(posted)),
            None => return Err(refusal.into()),
        },
    };
    keep_drawn(budgets, taken, &d.granted).await;
    let receipt = to_json(&d.receipt)?;
    let awards = award_rows(&cmd.rules, &d.granted)?;
    let inserted = sqlx::query(
        "INSERT INTO events (id, source, external_id, partner_id, member_id, event_type, attributes, occurred_at,
             recorded_at, points_earned, request_hash, receipt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (source, external_id) DO NOTHING",
    )
            .bind(cmd.id.as_str())
    .bind(&cmd.source)
    .bind(&cmd.external_id)
    .bind(partner_id.map(PartnerId::as_str))
    .bind(d.member_id.as_str())
    .bind(&cmd.event_type)
    .bind(&cmd.attributes_json)
    .bind(to_micros(cmd.occurred_at))
    .bind(to_micros(cmd.now))
    .bind(d.points_earned())
    .bind(&cmd.request_hash)
    .bind(&receipt)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    write_plan(&mut *tx, &d.member_id, &d.plan, cmd.now).await?;
    write_awards(&mut *tx, cmd.id.as_str(), &awards, None).await?;
    if let Some(t) = &d.tier {
        let holder = Holder::standing_of(&d.member_id, t.household.as_ref());
        write_tier(&mut *tx, holder, &t.standing, ladder, &t.changes, None).await?;
    }
    let completed = count_steps(&mut *tx, &d.member_id, cmd.id.as_str(), &cmd.rules.steps, cmd.now).await?;
    Ok(Some(Posted {
        receipt_json: receipt,
        replayed: false,
        follow_up: None,
        completed,
    }))
}

impl PgStore {
    pub async fn event_types(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT name, description FROM event_types ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Adds an event type; false if it already exists.
    pub async fn create_event_type(
        &self,
        name: String,
        description: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO event_types (name, description, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(description)
        .bind(to_micros(now))
        .execute(&self.pool)
        .await?;
        Ok(n.rows_affected() == 1)
    }

    /// Posts an event in a task of its own, so a request that goes away meanwhile
    /// cannot drop budget points the event drew before they are settled.
    pub async fn post_event(&self, cmd: EventCmd) -> Result<Posted, StoreError> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut taken = Taken::new();
            let posted = this.post_event_in(&cmd, &mut taken).await;
            this.budgets.settle(&posted, &taken).await;
            posted
        })
        .await
        .map_err(|_| StoreError::stopped("an event task failed"))?
    }

    async fn post_event_in(&self, cmd: &EventCmd, taken: &mut Taken) -> Result<Posted, StoreError> {
        let mut tx = self.pool.begin().await?;
        match write_event(&mut tx, cmd, &self.budgets, taken).await? {
            Some(posted) => {
                tx.commit().await?;
                Ok(posted)
            }
            None => {
                // The same event id arrived concurrently and was posted first.
                tx.rollback().await?;
                let mut conn = self.pool.acquire().await?;
                let stored = stored_event(&mut conn, cmd).await?;
                replay(stored, &cmd.request_hash, None)?.ok_or(StoreError::NotFound(Entity::Event))
            }
        }
    }

    pub async fn events(
        &self,
        member_id: MemberId,
        partner_id: Option<PartnerId>,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows: Vec<EventTuple> = sqlx::query_as(
            "SELECT id, external_id, partner_id, event_type, attributes, occurred_at, points_earned FROM events
             WHERE member_id = $1 AND ($2::text IS NULL OR partner_id = $2) ORDER BY occurred_at DESC, id DESC LIMIT $3",
        )
                .bind(member_id.as_str())
        .bind(partner_id.as_ref().map(PartnerId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, external_id, partner_id, event_type, attributes_json, at, points_earned)| EventRow {
                    id: EventId::from_stored(id),
                    external_id,
                    partner_id: partner_id.map(PartnerId::from_stored),
                    event_type,
                    attributes_json,
                    occurred_at: from_micros(at),
                    points_earned,
                },
            )
            .collect())
    }
}
