//! Earning rules: saved versions, the cap and budget counters decisions read (caps
//! locked in key order; budgets drawn from the server's lease, `budgets.rs`), and the
//! awards a sale or event keeps (a return gives their share back).

use super::PgStore;
use super::budgets::{Budgets, Taken};
use crate::codec::{keys_json, rule_rows_from, saved_awards_from};
use crate::model::{RuleRow, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::{PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use tally_domain::decide::{AwardReversal, Granted, RuleDraft, SavedAward, counter_keys};
use tally_domain::ids::{MemberId, PartnerId, RuleId, TransactionId};

/// The counters' use (a missing counter is unused), the rows locked in key order until
/// the transaction ends; `keys` may be several members' (a writer's round). Only cap
/// counters are read this way, and a member's cap
/// counters are only written by sales holding the member's row, so a missing one cannot
/// appear meanwhile; it is created when the sale writes.
pub(super) async fn locked_counters(
    conn: &mut PgConnection,
    keys: &[String],
) -> Result<HashMap<String, i64>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT key, used FROM rule_counters WHERE key = ANY($1) ORDER BY key FOR UPDATE")
            .bind(keys)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// How much of each counter is used, as it stands (nothing is locked or drawn).
async fn counters(conn: &mut PgConnection, keys: &[String]) -> Result<HashMap<String, i64>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT key, used FROM rule_counters WHERE key = ANY($1)")
        .bind(keys)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// The counters a draft's awards use, as a quote reads them.
pub(super) async fn current_counters(
    conn: &mut PgConnection,
    draft: &RuleDraft,
    member_id: &MemberId,
) -> Result<HashMap<String, i64>, StoreError> {
    if draft.awards.is_empty() {
        return Ok(HashMap::new());
    }
    counters(conn, &counter_keys(draft, member_id)).await
}

/// The counters a draft's awards use, as its decision reads them. Caps: the member's
/// counters, locked. Budgets: each award draws from the lease what its caps leave, and
/// the decision sees the budget as used but for what was drawn (added to `taken`, for
/// [`keep_drawn`] to settle after the decision).
pub(super) async fn draft_counters(
    conn: &mut PgConnection,
    draft: &RuleDraft,
    member_id: &MemberId,
    budgets: &Budgets,
    taken: &mut Taken,
) -> Result<HashMap<String, i64>, StoreError> {
    let caps = locked_counters(conn, &cap_keys(draft, member_id)).await?;
    draw_budgets(draft, member_id, caps, budgets, taken).await
}

/// The cap counters (not budgets) a draft's awards use for this member, in key order.
pub(super) fn cap_keys(draft: &RuleDraft, member_id: &MemberId) -> Vec<String> {
    if draft.awards.is_empty() {
        return Vec::new();
    }
    let budget_keys = budget_keys(draft);
    counter_keys(draft, member_id)
        .into_iter()
        .filter(|k| !budget_keys.contains(k))
        .collect()
}

/// [`draft_counters`] with the member's cap counters already locked (`caps`: their
/// use; a missing one is unused).
pub(super) async fn draw_budgets(
    draft: &RuleDraft,
    member_id: &MemberId,
    mut used: HashMap<String, i64>,
    budgets: &Budgets,
    taken: &mut Taken,
) -> Result<HashMap<String, i64>, StoreError> {
    for award in &draft.awards {
        let Some(budget) = award.limits.iter().find(|l| l.is_budget()) else {
            continue;
        };
        // Draw only what the caps leave.
        let cap_left = award
            .limits
            .iter()
            .filter(|l| !l.is_budget())
            .map(|l| l.limit - used.get(&l.key(&award.rule_id, member_id)).copied().unwrap_or(0))
            .min()
            .unwrap_or(i64::MAX);
        let key = budget.key(&award.rule_id, member_id);
        let got = budgets.take(&key, award.points.min(cap_left), budget.limit).await?;
        *taken.entry(key.clone()).or_insert(0) += got;
        used.insert(key, budget.limit - got);
    }
    Ok(used)
}

fn budget_keys(draft: &RuleDraft) -> HashSet<String> {
    draft
        .awards
        .iter()
        .flat_map(|a| {
            a.limits
                .iter()
                .filter(|l| l.is_budget())
                .map(|l| l.key(&a.rule_id, &MemberId::default()))
        })
        .collect()
}

/// After a decision: budget points drawn and not given go back to the lease, and
/// `taken` keeps only what the sale gave (to give back too if it does not commit).
pub(super) async fn keep_drawn(budgets: &Budgets, taken: &mut Taken, granted: &Granted) {
    let mut unused = Taken::new();
    for (key, drew) in taken.iter_mut() {
        let gave = granted.increments.iter().find(|(k, _)| k == key).map_or(0, |(_, p)| *p);
        if *drew > gave {
            unused.insert(key.clone(), *drew - gave);
            *drew = gave;
        }
    }
    budgets.give_back(&unused).await;
}

/// What a sale or event writes of its rules, encoded before anything is written (so
/// nothing can fail half-way but the database).
pub(super) struct AwardRows {
    pub(super) rules: Vec<String>,
    pub(super) versions: Vec<i64>,
    pub(super) points: Vec<i64>,
    pub(super) keys: Vec<String>,
    pub(super) counter_keys: Vec<String>,
    pub(super) deltas: Vec<i64>,
}

/// The counted awards (for returns) and the cap counters to raise; budget counters were
/// raised by their leases.
pub(super) fn award_rows(draft: &RuleDraft, granted: &Granted) -> Result<AwardRows, StoreError> {
    let budget_keys = budget_keys(draft);
    let mut rows = AwardRows {
        rules: vec![],
        versions: vec![],
        points: vec![],
        keys: vec![],
        counter_keys: vec![],
        deltas: vec![],
    };
    for g in granted.counted() {
        rows.rules.push(g.rule_id.to_string());
        rows.versions.push(g.version);
        rows.points.push(g.points);
        rows.keys.push(keys_json(&g.keys)?);
    }
    for (key, delta) in granted.increments.iter().filter(|(k, _)| !budget_keys.contains(k)) {
        rows.counter_keys.push(key.clone());
        rows.deltas.push(*delta);
    }
    Ok(rows)
}

/// Saves what the rules gave in one statement, and for a sale the member's visit at
/// the partner.
pub(super) async fn write_awards(
    conn: &mut PgConnection,
    transaction_id: &str,
    rows: &AwardRows,
    visit: Option<(&MemberId, &PartnerId, Timestamp)>,
) -> Result<(), StoreError> {
    if rows.rules.is_empty() && rows.counter_keys.is_empty() && visit.is_none() {
        return Ok(());
    }
    let (member, partner, at) = match visit {
        Some((m, p, at)) => (Some(m.as_str()), Some(p.as_str()), to_micros(at)),
        None => (None, None, 0),
    };
    sqlx::query(
        "WITH awards AS (
             INSERT INTO rule_awards (transaction_id, rule_id, rule_version, points, counter_keys)
             SELECT $1, r, v, p, k FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS x(r, v, p, k)
         ), counters AS (
             INSERT INTO rule_counters (key, used) SELECT * FROM UNNEST($6::text[], $7::bigint[])
             ON CONFLICT (key) DO UPDATE SET used = rule_counters.used + EXCLUDED.used
         )
         INSERT INTO member_partners (member_id, partner_id, visits, first_at, last_at)
         SELECT $8, $9, 1, $10, $10 WHERE $8::text IS NOT NULL
         ON CONFLICT (member_id, partner_id) DO UPDATE
         SET visits = member_partners.visits + 1, last_at = GREATEST(member_partners.last_at, EXCLUDED.last_at)",
    )
    .bind(transaction_id)
    .bind(&rows.rules)
    .bind(&rows.versions)
    .bind(&rows.points)
    .bind(&rows.keys)
    .bind(&rows.counter_keys)
    .bind(&rows.deltas)
    .bind(member)
    .bind(partner)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The awards a purchase kept, as its return's decision reads them.
pub(super) async fn saved_awards(
    conn: &mut PgConnection,
    transaction_id: &TransactionId,
) -> Result<Vec<SavedAward>, StoreError> {
    let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
        "SELECT rule_id, points, reversed, counter_keys FROM rule_awards WHERE transaction_id = $1 ORDER BY rule_id",
    )
    .bind(transaction_id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    saved_awards_from(rows)
}

/// Writes what a return takes back of a purchase's awards and gives back to counters.
pub(super) async fn reverse_awards(
    conn: &mut PgConnection,
    transaction_id: &TransactionId,
    reversals: &[AwardReversal],
) -> Result<(), StoreError> {
    for r in reversals {
        sqlx::query("UPDATE rule_awards SET reversed = reversed + $3 WHERE transaction_id = $1 AND rule_id = $2")
            .bind(transaction_id.as_str())
            .bind(r.rule_id.as_str())
            .bind(r.points)
            .execute(&mut *conn)
            .await?;
        let mut keys = r.keys.clone();
        keys.sort();
        for key in keys {
            sqlx::query("UPDATE rule_counters SET used = GREATEST(used - $2, 0) WHERE key = $1")
                .bind(key)
                .bind(r.give_back)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

async fn rule_rows(pool: &PgPool, id: Option<&RuleId>) -> Result<Vec<RuleRow>, StoreError> {
    let rows: Vec<(String, i64, String, i64, i64)> = sqlx::query_as(
        "SELECT r.id, r.current_version, v.spec, r.created_at, r.updated_at FROM earning_rules r
         JOIN earning_rule_versions v ON v.rule_id = r.id AND v.version = r.current_version
         WHERE $1::text IS NULL OR r.id = $1 ORDER BY r.id",
    )
    .bind(id.map(RuleId::as_str))
    .fetch_all(pool)
    .await?;
    rule_rows_from(rows)
}

impl PgStore {
    pub async fn save_rule(
        &self,
        id: RuleId,
        partner_id: Option<PartnerId>,
        spec_json: String,
        now: Timestamp,
    ) -> Result<RuleRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT current_version FROM earning_rules WHERE id = $1 FOR UPDATE")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let version = current.map_or(1, |v| v + 1);
        sqlx::query(
            "INSERT INTO earning_rules (id, partner_id, current_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (id) DO UPDATE SET current_version = EXCLUDED.current_version, partner_id = EXCLUDED.partner_id,
                 updated_at = EXCLUDED.updated_at",
        )
                .bind(id.as_str())
        .bind(partner_id.as_ref().map(PartnerId::as_str))
        .bind(version)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO earning_rule_versions (rule_id, version, spec, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id.as_str())
            .bind(version)
            .bind(&spec_json)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        rule_rows(&self.pool, Some(&id))
            .await?
            .pop()
            .ok_or(StoreError::NotFound(Entity::Rule))
    }

    pub async fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        rule_rows(&self.pool, None).await
    }

    pub async fn rule(&self, id: RuleId) -> Result<Option<RuleRow>, StoreError> {
        Ok(rule_rows(&self.pool, Some(&id)).await?.pop())
    }

    pub async fn rule_counters(&self, keys: Vec<String>) -> Result<HashMap<String, i64>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        counters(&mut conn, &keys).await
    }

    pub async fn rule_versions(&self, id: RuleId) -> Result<Vec<(i64, String, Timestamp)>, StoreError> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT version, spec, created_at FROM earning_rule_versions WHERE rule_id = $1 ORDER BY version",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(v, s, c)| (v, s, from_micros(c))).collect())
    }
}
