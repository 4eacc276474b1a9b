//! PostgreSQL statements for earning rules: rule versions, caps and budget counters
//! (locked in key order, so a budget is never overspent by concurrent writers), the
//! points each rule gave, member facts for rules, and engagement events.

use super::budgets::{Budgets, Taken};
use super::{Tx, load_state, member, resolve_member, write_plan};
use crate::StoreError;
use crate::common::{
    award_reversals, check_assumption, counter_keys, empty_valuation, grant_awards, keys_from_json, keys_json,
    plan_event_receipt, replay, rule_rows_from, segments_from_json,
};
use crate::model::*;
use jiff::Timestamp;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use tally_domain::rules::MemberFacts;

pub async fn visits(conn: &mut PgConnection, member_id: &str, partner_id: &str) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT visits FROM member_partners WHERE member_id = $1 AND partner_id = $2")
            .bind(member_id)
            .bind(partner_id)
            .fetch_optional(conn)
            .await?
            .unwrap_or(0),
    )
}

/// The counters' use (a missing counter is unused); with `lock`, the rows are locked in
/// key order until the transaction ends. Only cap counters are read this way, and a
/// member's cap counters are only written by sales holding the member's row, so a
/// missing one cannot appear meanwhile; it is created when the sale writes.
pub async fn counters(
    conn: &mut PgConnection,
    keys: &[String],
    lock: bool,
) -> Result<HashMap<String, i64>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = if lock {
        "SELECT key, used FROM rule_counters WHERE key = ANY($1) ORDER BY key FOR UPDATE"
    } else {
        "SELECT key, used FROM rule_counters WHERE key = ANY($1)"
    };
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).bind(keys).fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().collect())
}

/// Applies caps and budgets inside the write transaction. Caps: the member's counters,
/// locked until it ends (only this member's sales touch them, and those queue on the
/// member's row anyway). Budgets: drawn from the server's lease (see `budgets.rs`); what
/// the sale drew is added to `taken`, for the caller to give back if the sale does not
/// commit.
pub async fn grant(
    conn: &mut PgConnection,
    base: &tally_domain::earning::Valuation,
    draft: &RuleDraft,
    member_id: &str,
    budgets: &Budgets,
    taken: &mut Taken,
) -> Result<Granted, StoreError> {
    if draft.awards.is_empty() {
        return Ok((base.clone(), Vec::new(), Vec::new()));
    }
    let is_budget = |k: &String| k.ends_with(":budget");
    let caps: Vec<String> = counter_keys(draft, member_id)
        .into_iter()
        .filter(|k| !is_budget(k))
        .collect();
    let mut used = counters(conn, &caps, true).await?;
    for award in &draft.awards {
        let Some(budget) = award.limits.iter().find(|l| l.scope == "budget") else {
            continue;
        };
        // Draw only what the caps leave.
        let cap_left = award
            .limits
            .iter()
            .filter(|l| l.scope != "budget")
            .map(|l| l.limit - used.get(&l.key(&award.rule_id, member_id)).copied().unwrap_or(0))
            .min()
            .unwrap_or(i64::MAX);
        let key = budget.key(&award.rule_id, member_id);
        let got = budgets.take(&key, award.points.min(cap_left), budget.limit).await?;
        *taken.entry(key.clone()).or_insert(0) += got;
        used.insert(key, budget.limit - got);
    }
    let (valuation, granted, increments) = grant_awards(base, draft, member_id, &used);
    // Budget counters were raised by their leases; what the sale drew and did not give
    // goes back to the lease.
    let mut unused = Taken::new();
    for (key, drew) in taken.iter_mut() {
        let gave = increments.iter().find(|(k, _)| k == key).map_or(0, |(_, p)| *p);
        if *drew > gave {
            unused.insert(key.clone(), *drew - gave);
            *drew = gave;
        }
    }
    budgets.give_back(&unused).await;
    let increments = increments.into_iter().filter(|(k, _)| !is_budget(k)).collect();
    Ok((valuation, granted, increments))
}

/// Saves what the rules gave, in one statement: capped awards (for returns), the
/// counters raised, and (for a sale) the member's visit at the partner.
pub async fn write_awards(
    conn: &mut PgConnection,
    transaction_id: &str,
    granted: &[GrantedAward],
    increments: &[(String, i64)],
    visit: Option<(&str, &str, Timestamp)>,
) -> Result<(), StoreError> {
    let kept: Vec<&GrantedAward> = granted.iter().filter(|g| !g.keys.is_empty()).collect();
    if kept.is_empty() && increments.is_empty() && visit.is_none() {
        return Ok(());
    }
    let (rules, versions, points, keys): (Vec<&str>, Vec<i64>, Vec<i64>, Vec<String>) =
        kept.iter()
            .fold((vec![], vec![], vec![], vec![]), |(mut r, mut v, mut p, mut k), g| {
                r.push(g.rule_id.as_str());
                v.push(g.version);
                p.push(g.points);
                k.push(keys_json(&g.keys));
                (r, v, p, k)
            });
    let (counter_keys, deltas): (Vec<String>, Vec<i64>) = increments.iter().cloned().unzip();
    let (member, partner, at) = match visit {
        Some((m, p, at)) => (Some(m), Some(p), to_micros(at)),
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
    .bind(&rules)
    .bind(&versions)
    .bind(&points)
    .bind(&keys)
    .bind(&counter_keys)
    .bind(&deltas)
    .bind(member)
    .bind(partner)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn reverse_awards(
    conn: &mut PgConnection,
    transaction_id: &str,
    returned_after: i64,
    total: i64,
    result: &tally_domain::plan::ReturnResult,
) -> Result<(), StoreError> {
    let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
        "SELECT rule_id, points, reversed, counter_keys FROM rule_awards WHERE transaction_id = $1 ORDER BY rule_id",
    )
    .bind(transaction_id)
    .fetch_all(&mut *conn)
    .await?;
    let awards: Vec<AwardRow> = rows
        .into_iter()
        .map(|(rule_id, points, reversed, keys)| AwardRow {
            rule_id,
            points,
            reversed,
            keys: keys_from_json(&keys),
        })
        .collect();
    for (rule_id, delta, give_back, mut keys) in award_reversals(&awards, returned_after, total, result) {
        sqlx::query("UPDATE rule_awards SET reversed = reversed + $3 WHERE transaction_id = $1 AND rule_id = $2")
            .bind(transaction_id)
            .bind(&rule_id)
            .bind(delta)
            .execute(&mut *conn)
            .await?;
        keys.sort();
        for key in keys {
            sqlx::query("UPDATE rule_counters SET used = GREATEST(used - $2, 0) WHERE key = $1")
                .bind(key)
                .bind(give_back)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

pub async fn save_rule(
    pool: &PgPool,
    id: &str,
    partner_id: Option<&str>,
    spec_json: &str,
    now: Timestamp,
) -> Result<RuleRow, StoreError> {
    let mut tx = pool.begin().await?;
    let current: Option<i64> = sqlx::query_scalar("SELECT current_version FROM earning_rules WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let version = current.map_or(1, |v| v + 1);
    sqlx::query(
        "INSERT INTO earning_rules (id, partner_id, current_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (id) DO UPDATE SET current_version = EXCLUDED.current_version, partner_id = EXCLUDED.partner_id,
             updated_at = EXCLUDED.updated_at",
    )
    .bind(id)
    .bind(partner_id)
    .bind(version)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO earning_rule_versions (rule_id, version, spec, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(version)
        .bind(spec_json)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    rule_rows(pool, Some(id))
        .await?
        .pop()
        .ok_or(StoreError::NotFound("rule"))
}

pub async fn rule_rows(pool: &PgPool, id: Option<&str>) -> Result<Vec<RuleRow>, StoreError> {
    let rows: Vec<(String, i64, String, i64, i64)> = sqlx::query_as(
        "SELECT r.id, r.current_version, v.spec, r.created_at, r.updated_at FROM earning_rules r
         JOIN earning_rule_versions v ON v.rule_id = r.id AND v.version = r.current_version
         WHERE $1::text IS NULL OR r.id = $1 ORDER BY r.id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    rule_rows_from(rows)
}

pub async fn rule_versions(pool: &PgPool, id: &str) -> Result<Vec<(i64, String, Timestamp)>, StoreError> {
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT version, spec, created_at FROM earning_rule_versions WHERE rule_id = $1 ORDER BY version",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(v, s, c)| (v, s, from_micros(c))).collect())
}

pub async fn set_profile(pool: &PgPool, member_id: &str, p: &MemberProfile) -> Result<MemberRow, StoreError> {
    let mut conn = pool.acquire().await?;
    let n = sqlx::query("UPDATE members SET tier = $2, segments = $3, plan = $4 WHERE id = $1")
        .bind(member_id)
        .bind(&p.tier)
        .bind(keys_json(&p.segments))
        .bind(&p.plan)
        .execute(&mut *conn)
        .await?;
    if n.rows_affected() == 0 {
        return Err(StoreError::NotFound("member"));
    }
    member(&mut conn, member_id)
        .await?
        .ok_or(StoreError::NotFound("member"))
}

pub async fn member_facts(
    pool: &PgPool,
    member_ref: &MemberRef,
    partner_id: Option<&str>,
) -> Result<Option<MemberFacts>, StoreError> {
    let mut conn = pool.acquire().await?;
    let id = match resolve_member(&mut conn, member_ref).await {
        Ok(id) => id,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(r) = sqlx::query("SELECT tier, segments, plan, country, created_at FROM members WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let visits = match partner_id {
        Some(p) => visits(&mut conn, &id, p).await?,
        None => 0,
    };
    Ok(Some(MemberFacts {
        id,
        tier: r.try_get(0)?,
        segments: segments_from_json(&r.try_get::<String, _>(1)?),
        plan: r.try_get(2)?,
        country: r.try_get(3)?,
        joined_at: from_micros(r.try_get(4)?),
        visits,
    }))
}

pub async fn event_types(pool: &PgPool) -> Result<Vec<(String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT name, description FROM event_types ORDER BY name")
            .fetch_all(pool)
            .await?,
    )
}

pub async fn create_event_type(
    pool: &PgPool,
    name: &str,
    description: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "INSERT INTO event_types (name, description, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(description)
    .bind(to_micros(now))
    .execute(pool)
    .await?;
    Ok(n.rows_affected() == 1)
}

async fn event_seen(conn: &mut PgConnection, cmd: &EventCmd) -> Result<Option<(String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT request_hash, receipt FROM events WHERE source = $1 AND external_id = $2")
            .bind(&cmd.source)
            .bind(&cmd.external_id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn post_event(pool: &PgPool, budgets: &Budgets, cmd: &EventCmd) -> Result<Posted, StoreError> {
    let mut taken = Taken::new();
    let posted = post_event_in(pool, budgets, cmd, &mut taken).await;
    budgets.settle(&posted, &taken).await;
    posted
}

async fn post_event_in(
    pool: &PgPool,
    budgets: &Budgets,
    cmd: &EventCmd,
    taken: &mut Taken,
) -> Result<Posted, StoreError> {
    let mut tx: Tx = pool.begin().await?;
    if let Some((hash, receipt)) = event_seen(&mut tx, cmd).await? {
        return replay(&hash, receipt, &cmd.request_hash);
    }
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM event_types WHERE name = $1")
        .bind(&cmd.event_type)
        .fetch_optional(&mut *tx)
        .await?;
    if known.is_none() {
        return Err(StoreError::UnknownEventType(cmd.event_type.clone()));
    }
    let member_id = resolve_member(&mut tx, &cmd.member).await?;
    let (state, stored_due) = load_state(&mut tx, &member_id, true, true).await?;
    let partner_id = cmd.partner.as_ref().map(|p| p.id.clone());
    // The visit count is read only when the rules' draft depends on it.
    if cmd.rules.assumed.is_some() {
        let current = match &partner_id {
            Some(p) => visits(&mut tx, &member_id, p).await?,
            None => 0,
        };
        check_assumption(&cmd.rules, &member_id, || Ok(current))?;
    }
    let (valuation, granted, increments) =
        grant(&mut tx, &empty_valuation(), &cmd.rules, &member_id, budgets, taken).await?;
    let (plan, receipt) = plan_event_receipt(&state, cmd, &valuation)?;
    let inserted = sqlx::query(
        "INSERT INTO events (id, source, external_id, partner_id, member_id, event_type, attributes, occurred_at,
             recorded_at, points_earned, request_hash, receipt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (source, external_id) DO NOTHING",
    )
    .bind(&cmd.id)
    .bind(&cmd.source)
    .bind(&cmd.external_id)
    .bind(&partner_id)
    .bind(&member_id)
    .bind(&cmd.event_type)
    .bind(&cmd.attributes_json)
    .bind(to_micros(cmd.occurred_at))
    .bind(to_micros(cmd.now))
    .bind(valuation.points_earned)
    .bind(&cmd.request_hash)
    .bind(&receipt)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // The same event id arrived concurrently and was posted first.
        tx.rollback().await?;
        let mut conn = pool.acquire().await?;
        let (hash, receipt) = event_seen(&mut conn, cmd).await?.ok_or(StoreError::NotFound("event"))?;
        return replay(&hash, receipt, &cmd.request_hash);
    }
    write_plan(&mut tx, &member_id, &plan, stored_due, true, cmd.occurred_at, cmd.now).await?;
    write_awards(&mut tx, &cmd.id, &granted, &increments, None).await?;
    tx.commit().await?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
    })
}

/// id, external id, partner, type, attributes, occurred at, points.
type EventTuple = (String, String, Option<String>, String, String, i64, i64);

pub async fn events(
    pool: &PgPool,
    member_id: &str,
    partner_id: Option<&str>,
    limit: u32,
) -> Result<Vec<EventRow>, StoreError> {
    let rows: Vec<EventTuple> = sqlx::query_as(
        "SELECT id, external_id, partner_id, event_type, attributes, occurred_at, points_earned FROM events
         WHERE member_id = $1 AND ($2::text IS NULL OR partner_id = $2) ORDER BY occurred_at DESC, id DESC LIMIT $3",
    )
    .bind(member_id)
    .bind(partner_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, external_id, partner_id, event_type, attributes_json, at, points_earned)| EventRow {
                id,
                external_id,
                partner_id,
                event_type,
                attributes_json,
                occurred_at: from_micros(at),
                points_earned,
            },
        )
        .collect())
}
