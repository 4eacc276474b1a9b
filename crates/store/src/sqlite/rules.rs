//! Earning rules: saved versions, the cap and budget counters decisions read, and the
//! awards a sale or event keeps (a return gives their share back).

use super::SqliteStore;
use crate::codec::{keys_json, rule_rows_from, saved_awards_from};
use crate::model::{RuleRow, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use tally_domain::decide::{AwardReversal, Granted, RuleDraft, SavedAward, counter_keys};
use tally_domain::ids::{MemberId, PartnerId, RuleId, TransactionId};

/// `?1, ?2, …` for `n` parameters.
fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",")
}

/// How much of each counter is used (absent counters are unused).
fn counters(conn: &Connection, keys: &[String]) -> Result<HashMap<String, i64>, StoreError> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(100) {
        let sql = format!(
            "SELECT key, used FROM rule_counters WHERE key IN ({})",
            placeholders(chunk.len())
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

/// The counters a draft's awards use, as a decision reads them (none when no rule gave).
pub(super) fn draft_counters(
    conn: &Connection,
    draft: &RuleDraft,
    member_id: &MemberId,
) -> Result<HashMap<String, i64>, StoreError> {
    if draft.awards.is_empty() {
        return Ok(HashMap::new());
    }
    counters(conn, &counter_keys(draft, member_id))
}

/// Keeps the awards that used a counter (for returns) and raises the counters.
pub(super) fn write_awards(conn: &Connection, transaction_id: &str, granted: &Granted) -> Result<(), StoreError> {
    let mut award = conn.prepare_cached(
        "INSERT INTO rule_awards (transaction_id, rule_id, rule_version, points, counter_keys) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for g in granted.counted() {
        award.execute(params![
            transaction_id,
            g.rule_id.as_str(),
            g.version,
            g.points,
            keys_json(&g.keys)?
        ])?;
    }
    let mut counter = conn.prepare_cached(
        "INSERT INTO rule_counters (key, used) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET used = used + excluded.used",
    )?;
    for (key, delta) in &granted.increments {
        counter.execute(params![key, delta])?;
    }
    Ok(())
}

/// The awards a purchase kept, as its return's decision reads them.
pub(super) fn saved_awards(conn: &Connection, transaction_id: &TransactionId) -> Result<Vec<SavedAward>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT rule_id, points, reversed, counter_keys FROM rule_awards WHERE transaction_id = ?1 ORDER BY rule_id",
    )?;
    let rows = stmt
        .query_map([transaction_id.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    saved_awards_from(rows)
}

/// Writes what a return takes back of a purchase's awards and gives back to counters.
pub(super) fn reverse_awards(
    conn: &Connection,
    transaction_id: &TransactionId,
    reversals: &[AwardReversal],
) -> Result<(), StoreError> {
    for r in reversals {
        conn.prepare_cached(
            "UPDATE rule_awards SET reversed = reversed + ?3 WHERE transaction_id = ?1 AND rule_id = ?2",
        )?
        .execute(params![transaction_id.as_str(), r.rule_id.as_str(), r.points])?;
        let mut lower = conn.prepare_cached("UPDATE rule_counters SET used = MAX(used - ?2, 0) WHERE key = ?1")?;
        for key in &r.keys {
            lower.execute(params![key, r.give_back])?;
        }
    }
    Ok(())
}

/// Saves a new rule, or a new version of an existing one; returns the version.
fn save_rule(
    conn: &Connection,
    id: &RuleId,
    partner_id: Option<&PartnerId>,
    spec_json: &str,
    now: Timestamp,
) -> Result<i64, StoreError> {
    let current: Option<i64> = conn
        .prepare_cached("SELECT current_version FROM earning_rules WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?;
    let partner_id = partner_id.map(PartnerId::as_str);
    let id = id.as_str();
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

fn rule_rows(conn: &Connection, id: Option<&RuleId>) -> Result<Vec<RuleRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.id, r.current_version, v.spec, r.created_at, r.updated_at FROM earning_rules r
         JOIN earning_rule_versions v ON v.rule_id = r.id AND v.version = r.current_version
         WHERE ?1 IS NULL OR r.id = ?1 ORDER BY r.id",
    )?;
    let rows = stmt
        .query_map([id.map(RuleId::as_str)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rule_rows_from(rows)
}

fn rule_versions(conn: &Connection, id: &RuleId) -> Result<Vec<(i64, String, Timestamp)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, spec, created_at FROM earning_rule_versions WHERE rule_id = ?1 ORDER BY version",
    )?;
    let rows = stmt
        .query_map([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, from_micros(r.get(2)?))))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl SqliteStore {
    pub async fn save_rule(
        &self,
        id: RuleId,
        partner_id: Option<PartnerId>,
        spec_json: String,
        now: Timestamp,
    ) -> Result<RuleRow, StoreError> {
        self.write(move |c| {
            save_rule(c, &id, partner_id.as_ref(), &spec_json, now)?;
            rule_rows(c, Some(&id))?.pop().ok_or(StoreError::NotFound(Entity::Rule))
        })
        .await
    }

    pub async fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        self.read(|c| rule_rows(c, None)).await
    }

    pub async fn rule(&self, id: RuleId) -> Result<Option<RuleRow>, StoreError> {
        self.read(move |c| Ok(rule_rows(c, Some(&id))?.pop())).await
    }

    pub async fn rule_counters(&self, keys: Vec<String>) -> Result<HashMap<String, i64>, StoreError> {
        self.read(move |c| counters(c, &keys)).await
    }

    pub async fn rule_versions(&self, id: RuleId) -> Result<Vec<(i64, String, Timestamp)>, StoreError> {
        self.read(move |c| rule_versions(c, &id)).await
    }
}
