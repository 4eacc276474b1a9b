//! SQLite statements for earning rules: rule versions, caps and budget counters, the
//! points each rule gave, member facts for rules, and engagement events.

use super::ops::{load_state, resolve_member, write_plan};
use crate::StoreError;
use crate::common::{
    award_reversals, check_assumption, counter_keys, empty_valuation, grant_awards, keys_from_json, keys_json,
    plan_event_receipt, replay, rule_rows_from, segments_from_json,
};
use crate::model::*;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use tally_domain::rules::MemberFacts;

/// The member's purchases at the partner so far.
pub fn visits(conn: &Connection, member_id: &str, partner_id: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT visits FROM member_partners WHERE member_id = ?1 AND partner_id = ?2")?
        .query_row(params![member_id, partner_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

pub fn bump_visit(conn: &Connection, member_id: &str, partner_id: &str, at: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO member_partners (member_id, partner_id, visits, first_at, last_at) VALUES (?1, ?2, 1, ?3, ?3)
         ON CONFLICT (member_id, partner_id) DO UPDATE SET visits = visits + 1, last_at = MAX(last_at, excluded.last_at)",
    )?
    .execute(params![member_id, partner_id, to_micros(at)])?;
    Ok(())
}

/// `?1, ?2, …` for `n` parameters.
fn placeholders(n: usize, per_row: usize) -> String {
    (0..n)
        .map(|i| {
            let row: Vec<String> = (1..=per_row).map(|j| format!("?{}", i * per_row + j)).collect();
            if per_row == 1 {
                row.join(",")
            } else {
                format!("({})", row.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// How much of each counter is used (absent counters are unused); one statement.
pub fn counters(conn: &Connection, keys: &[String]) -> Result<HashMap<String, i64>, StoreError> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(100) {
        let sql = format!(
            "SELECT key, used FROM rule_counters WHERE key IN ({})",
            placeholders(chunk.len(), 1)
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(chunk), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (k, used) = row?;
            out.insert(k, used);
        }
    }
    Ok(out)
}

/// Applies the draft's caps and budgets for `member_id` (inside the write).
pub fn grant(
    conn: &Connection,
    base: &tally_domain::earning::Valuation,
    draft: &RuleDraft,
    member_id: &str,
) -> Result<Granted, StoreError> {
    if draft.awards.is_empty() {
        return Ok((base.clone(), Vec::new(), Vec::new()));
    }
    let used = counters(conn, &counter_keys(draft, member_id))?;
    Ok(grant_awards(base, draft, member_id, &used))
}

pub fn write_awards(
    conn: &Connection,
    transaction_id: &str,
    granted: &[GrantedAward],
    increments: &[(String, i64)],
) -> Result<(), StoreError> {
    let mut award = conn.prepare_cached(
        "INSERT INTO rule_awards (transaction_id, rule_id, rule_version, points, counter_keys) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for g in granted {
        award.execute(params![
            transaction_id,
            g.rule_id,
            g.version,
            g.points,
            keys_json(&g.keys)
        ])?;
    }
    let mut counter = conn.prepare_cached(
        "INSERT INTO rule_counters (key, used) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET used = used + excluded.used",
    )?;
    for (key, delta) in increments {
        counter.execute(params![key, delta])?;
    }
    Ok(())
}

/// Gives back to caps and budgets what a return takes back of a purchase's rule points.
pub fn reverse_awards(
    conn: &Connection,
    transaction_id: &str,
    returned_after: i64,
    total: i64,
    result: &tally_domain::plan::ReturnResult,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT rule_id, points, reversed, counter_keys FROM rule_awards WHERE transaction_id = ?1")?;
    let awards = stmt
        .query_map([transaction_id], |r| {
            Ok(AwardRow {
                rule_id: r.get(0)?,
                points: r.get(1)?,
                reversed: r.get(2)?,
                keys: keys_from_json(&r.get::<_, String>(3)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (rule_id, delta, give_back, keys) in award_reversals(&awards, returned_after, total, result) {
        conn.prepare_cached(
            "UPDATE rule_awards SET reversed = reversed + ?3 WHERE transaction_id = ?1 AND rule_id = ?2",
        )?
        .execute(params![transaction_id, rule_id, delta])?;
        let mut lower = conn.prepare_cached("UPDATE rule_counters SET used = MAX(used - ?2, 0) WHERE key = ?1")?;
        for key in keys {
            lower.execute(params![key, give_back])?;
        }
    }
    Ok(())
}

/// Saves a new rule, or a new version of an existing one; returns the version.
pub fn save_rule(
    conn: &Connection,
    id: &str,
    partner_id: Option<&str>,
    spec_json: &str,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let current: Option<i64> = conn
        .prepare_cached("SELECT current_version FROM earning_rules WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let version = current.map_or(1, |v| v + 1);
    if current.is_some() {
        conn.prepare_cached(
            "UPDATE earning_rules SET current_version = ?2, partner_id = ?3, updated_at = ?4 WHERE id = ?1",
        )?
        .execute(params![id, version, partner_id, to_micros(now)])?;
    } else {
        conn.prepare_cached(
            "INSERT INTO earning_rules (id, partner_id, current_version, created_at, updated_at) VALUES (?1, ?2, 1, ?3, ?3)",
        )?
        .execute(params![id, partner_id, to_micros(now)])?;
    }
    conn.prepare_cached(
        "INSERT INTO earning_rule_versions (rule_id, version, spec, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, version, spec_json, to_micros(now)])?;
    Ok(version)
}

fn rule_rows(conn: &Connection, id: Option<&str>) -> Result<Vec<RuleRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.id, r.current_version, v.spec, r.created_at, r.updated_at FROM earning_rules r
         JOIN earning_rule_versions v ON v.rule_id = r.id AND v.version = r.current_version
         WHERE ?1 IS NULL OR r.id = ?1 ORDER BY r.id",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rule_rows_from(rows)
}

pub fn rules(conn: &Connection) -> Result<Vec<RuleRow>, StoreError> {
    rule_rows(conn, None)
}

pub fn rule(conn: &Connection, id: &str) -> Result<Option<RuleRow>, StoreError> {
    Ok(rule_rows(conn, Some(id))?.pop())
}

/// Every saved version of a rule, oldest first.
pub fn rule_versions(conn: &Connection, id: &str) -> Result<Vec<(i64, String, Timestamp)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, spec, created_at FROM earning_rule_versions WHERE rule_id = ?1 ORDER BY version",
    )?;
    let rows = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, from_micros(r.get(2)?))))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn set_profile(conn: &Connection, member_id: &str, p: &MemberProfile) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached("UPDATE members SET tier = ?2, segments = ?3, plan = ?4 WHERE id = ?1")?
        .execute(params![member_id, p.tier, keys_json(&p.segments), p.plan])?;
    if n == 0 {
        return Err(StoreError::NotFound("member"));
    }
    Ok(())
}

/// What rules may know of a member, with the visits at `partner_id`; none if unknown.
pub fn member_facts(
    conn: &Connection,
    member: &MemberRef,
    partner_id: Option<&str>,
) -> Result<Option<MemberFacts>, StoreError> {
    let id = match resolve_member(conn, member) {
        Ok(id) => id,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let row = conn
        .prepare_cached("SELECT tier, segments, plan, country, created_at FROM members WHERE id = ?1")?
        .query_row([&id], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((tier, segments, plan, country, created)) = row else {
        return Ok(None);
    };
    let visits = match partner_id {
        Some(p) => visits(conn, &id, p)?,
        None => 0,
    };
    Ok(Some(MemberFacts {
        id,
        tier,
        segments: segments_from_json(&segments),
        plan,
        country,
        joined_at: from_micros(created),
        visits,
    }))
}

pub fn event_types(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT name, description FROM event_types ORDER BY name")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Adds an event type; false if it already exists.
pub fn create_event_type(conn: &Connection, name: &str, description: &str, now: Timestamp) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO event_types (name, description, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![name, description, to_micros(now)])?;
    Ok(n == 1)
}

pub fn post_event(conn: &Connection, cmd: &EventCmd) -> Result<Posted, StoreError> {
    let seen: Option<(String, String)> = conn
        .prepare_cached("SELECT request_hash, receipt FROM events WHERE source = ?1 AND external_id = ?2")?
        .query_row(params![cmd.source, cmd.external_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((hash, receipt)) = seen {
        return replay(&hash, receipt, &cmd.request_hash);
    }
    let known: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM event_types WHERE name = ?1")?
        .query_row([&cmd.event_type], |r| r.get(0))
        .optional()?;
    if known.is_none() {
        return Err(StoreError::UnknownEventType(cmd.event_type.clone()));
    }
    let member_id = resolve_member(conn, &cmd.member)?;
    let partner_id = cmd.partner.as_ref().map(|p| p.id.clone());
    check_assumption(&cmd.rules, &member_id, || match &partner_id {
        Some(p) => visits(conn, &member_id, p),
        None => Ok(0),
    })?;
    let (state, stored_due) = load_state(conn, &member_id, false)?;
    let needs_lots = stored_due.is_some_and(|d| d <= cmd.now);
    let state = if needs_lots {
        load_state(conn, &member_id, true)?.0
    } else {
        state
    };
    let (valuation, granted, increments) = grant(conn, &empty_valuation(), &cmd.rules, &member_id)?;
    let (plan, receipt) = plan_event_receipt(&state, cmd, &valuation)?;
    conn.prepare_cached(
        "INSERT INTO events (id, source, external_id, partner_id, member_id, event_type, attributes, occurred_at,
             recorded_at, points_earned, request_hash, receipt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        cmd.id,
        cmd.source,
        cmd.external_id,
        partner_id,
        member_id,
        cmd.event_type,
        cmd.attributes_json,
        to_micros(cmd.occurred_at),
        to_micros(cmd.now),
        valuation.points_earned,
        cmd.request_hash,
        receipt
    ])?;
    write_plan(
        conn,
        &member_id,
        &plan,
        stored_due,
        needs_lots,
        cmd.occurred_at,
        cmd.now,
    )?;
    write_awards(conn, &cmd.id, &granted, &increments)?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
    })
}

/// A member's events, newest first (a partner sees its own).
pub fn events(
    conn: &Connection,
    member_id: &str,
    partner_id: Option<&str>,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, external_id, partner_id, event_type, attributes, occurred_at, points_earned FROM events
         WHERE member_id = ?1 AND (?2 IS NULL OR partner_id = ?2) ORDER BY occurred_at DESC, id DESC LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![member_id, partner_id, limit], |r| {
            Ok(EventRow {
                id: r.get(0)?,
                external_id: r.get(1)?,
                partner_id: r.get(2)?,
                event_type: r.get(3)?,
                attributes_json: r.get(4)?,
                occurred_at: from_micros(r.get(5)?),
                points_earned: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
