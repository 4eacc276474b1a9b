//! Engagement events: their types, posting one (once per sender and event id), and a
//! member's list of them.

use super::SqliteStore;
use super::challenges::count_steps;
use super::ledger::write_plan;
use super::members::{load_state, resolve_member, visits};
use super::rules::{draft_counters, write_awards};
use super::tiers::{household_standing, write_tier};
use crate::StoreError;
use crate::codec::to_json;
use crate::model::{EventCmd, EventRow, Holder, Posted, from_micros, to_micros};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::decide::{EventFacts, StoredAnswer, decide_event, replay};
use tally_domain::ids::{EventId, Id, MemberId, PartnerId};
use tally_domain::plan::needs_lots;

fn event_types(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT name, description FROM event_types ORDER BY name")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Adds an event type; false if it already exists.
fn create_event_type(conn: &Connection, name: &str, description: &str, now: Timestamp) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO event_types (name, description, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![name, description, to_micros(now)])?;
    Ok(n == 1)
}

fn stored_event(conn: &Connection, cmd: &EventCmd) -> Result<Option<StoredAnswer>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT request_hash, receipt FROM events WHERE source = ?1 AND external_id = ?2")?
        .query_row(params![cmd.source, cmd.external_id], |r| {
            Ok(StoredAnswer {
                request_hash: r.get(0)?,
                receipt_json: r.get(1)?,
                target: None,
            })
        })
        .optional()?)
}

pub(super) fn post_event(conn: &Connection, cmd: &EventCmd) -> Result<Posted, StoreError> {
    if let Some(posted) = replay(stored_event(conn, cmd)?, &cmd.request_hash, None)? {
        return Ok(posted);
    }
    let type_known = conn
        .prepare_cached("SELECT 1 FROM event_types WHERE name = ?1")?
        .query_row([&cmd.event_type], |r| r.get::<_, i64>(0))
        .optional()?
        .is_some();
    let member_id = resolve_member(conn, &cmd.member)?;
    let partner_id = cmd.partner.as_ref().map(|p| &p.id);
    let state = load_state(conn, &member_id, |due| needs_lots(0, due, cmd.now))?;
    let visits = match (cmd.rules.reads_visits(), partner_id) {
        (true, Some(p)) => Some(visits(conn, &member_id, p)?),
        (true, None) => Some(0),
        (false, _) => None,
    };
    let counters = draft_counters(conn, &cmd.rules, &member_id)?;
    // Where events qualify under a ladder per household, the household's standing counts.
    let ladder = &cmd.program.tiers;
    let household = match ladder.counts_events() {
        true => household_standing(conn, ladder, &member_id)?,
        false => None,
    };
    let facts = EventFacts {
        state: &state,
        type_known,
        visits,
        counters: &counters,
        household_tier: household.as_ref().map(|(w, t)| (w, t)),
    };
    let d = decide_event(cmd, facts)?;
    let receipt = to_json(&d.receipt)?;
    conn.prepare_cached(
        "INSERT INTO events (id, source, external_id, partner_id, member_id, event_type, attributes, occurred_at,
             recorded_at, points_earned, request_hash, receipt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
        .execute(params![
        cmd.id.as_str(),
        cmd.source,
        cmd.external_id,
        partner_id.map(PartnerId::as_str),
        d.member_id.as_str(),
        cmd.event_type,
        cmd.attributes_json,
        to_micros(cmd.occurred_at),
        to_micros(cmd.now),
        d.points_earned(),
        cmd.request_hash,
        receipt
    ])?;
    write_plan(conn, &d.member_id, &d.plan, cmd.now)?;
    write_awards(conn, cmd.id.as_str(), &d.granted)?;
    if let Some(t) = &d.tier {
        let holder = Holder::standing_of(&d.member_id, t.household.as_ref());
        write_tier(conn, holder, &t.standing, ladder, &t.changes, None)?;
    }
    let completed = count_steps(conn, &d.member_id, cmd.id.as_str(), &cmd.rules.steps, cmd.now)?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
        follow_up: None,
        completed,
    })
}

/// A member's events, newest first (a partner sees its own).
fn events(
    conn: &Connection,
    member_id: &MemberId,
    partner_id: Option<&PartnerId>,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, external_id, partner_id, event_type, attributes, occurred_at, points_earned FROM events
         WHERE member_id = ?1 AND (?2 IS NULL OR partner_id = ?2) ORDER BY occurred_at DESC, id DESC LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(
            params![member_id.as_str(), partner_id.map(PartnerId::as_str), limit],
            |r| {
                Ok(EventRow {
                    id: EventId::from_stored(r.get(0)?),
                    external_id: r.get(1)?,
                    partner_id: r.get::<_, Option<String>>(2)?.map(PartnerId::from_stored),
                    event_type: r.get(3)?,
                    attributes_json: r.get(4)?,
                    occurred_at: from_micros(r.get(5)?),
                    points_earned: r.get(6)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl SqliteStore {
    pub async fn event_types(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(event_types).await
    }

    pub async fn create_event_type(
        &self,
        name: String,
        description: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |c| create_event_type(c, &name, &description, now))
            .await
    }

    pub async fn post_event(&self, cmd: EventCmd) -> Result<Posted, StoreError> {
        self.write(move |c| post_event(c, &cmd)).await
    }

    pub async fn events(
        &self,
        member_id: MemberId,
        partner_id: Option<PartnerId>,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.read(move |c| events(c, &member_id, partner_id.as_ref(), limit))
            .await
    }
}
