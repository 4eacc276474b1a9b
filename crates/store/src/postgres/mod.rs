//! The PostgreSQL backend: short transactions that lock the member's row.
//!
//! A purchase locks only its member (`SELECT … FOR UPDATE`), so sales of different
//! members run in parallel and sales of one member queue; partner and programme totals
//! are never a row every sale updates. Multi-row writes go in one statement each
//! (`UNNEST` of arrays) to keep round trips few.

mod budgets;
mod rules;

use crate::StoreError;
use crate::common::{
    activity_time, check_assumption, fx_rates_from_rows, merge_due, money, needs_lots, plan_purchase_receipt,
    plan_return_receipt, replay, to_json, verification,
};
use crate::migrations;
use crate::model::*;
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};
use std::collections::HashMap;
use std::str::FromStr;
use tally_domain::earning::FxRates;
use tally_domain::identity::Identity;
use tally_domain::lots::{Lot, LotOrigin};
use tally_domain::money::Currency;
use tally_domain::plan::{Balance, MemberState, Plan, plan_settle};

type Tx = Transaction<'static, Postgres>;

/// Writer tasks that post purchases in groups (`TALLY_PG_WRITERS` overrides), and the
/// most each group takes.
const WRITERS: usize = 4;
const MAX_GROUP: usize = 64;

type Reply = tokio::sync::oneshot::Sender<Result<Posted, StoreError>>;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    purchases: tokio::sync::mpsc::UnboundedSender<(PurchaseCmd, Reply)>,
    budgets: std::sync::Arc<budgets::Budgets>,
}

/// Takes waiting purchases in groups and posts each group in one transaction: one
/// commit (one WAL flush) for many sales. A sale locks only its member's rows (caps are
/// per member; budgets come from the server's lease, `budgets.rs`). Any database error
/// rolls the group back, and its purchases are posted one by one instead; that is safe
/// because a purchase is idempotent by its receipt. Ends when every `PgStore` clone is
/// gone.
async fn run_purchase_writer(
    pool: PgPool,
    budgets: std::sync::Arc<budgets::Budgets>,
    queue: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<(PurchaseCmd, Reply)>>>,
) {
    loop {
        let mut group = Vec::new();
        {
            let mut rx = queue.lock().await;
            match rx.recv().await {
                Some(job) => group.push(job),
                None => return,
            }
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
        }
        // Lock members in one order across groups, so two groups rarely deadlock.
        group.sort_by_key(|job| member_key(&job.0.member));
        post_group(&pool, &budgets, group).await;
    }
}

fn member_key(m: &MemberRef) -> String {
    match m {
        MemberRef::Id(id) => id.clone(),
        MemberRef::Identity(i) => format!("{}:{}", i.kind.as_str(), i.value),
    }
}

enum Outcome {
    Answered(Result<Posted, StoreError>),
    /// A concurrent request posted the same receipt first: read its answer after commit.
    Replay,
}

async fn post_group(pool: &PgPool, budgets: &budgets::Budgets, group: Vec<(PurchaseCmd, Reply)>) {
    // Budget points drawn by the group's posted sales: given back if it rolls back.
    let mut kept = budgets::Taken::new();
    let grouped = async {
        let mut tx = pool.begin().await?;
        let mut outcomes = Vec::with_capacity(group.len());
        for (cmd, _) in &group {
            let mut taken = budgets::Taken::new();
            let outcome = post_purchase_in(&mut tx, cmd, budgets, &mut taken).await;
            if matches!(outcome, Ok(Some(_))) {
                for (k, v) in taken {
                    *kept.entry(k).or_insert(0) += v;
                }
            } else {
                budgets.give_back(&taken).await;
            }
            outcomes.push(match outcome {
                Ok(Some(posted)) => Outcome::Answered(Ok(posted)),
                Ok(None) => Outcome::Replay,
                Err(StoreError::Database(e)) => return Err(StoreError::Database(e)),
                // Refusals happen before a purchase writes anything: the group goes on.
                Err(refused) => Outcome::Answered(Err(refused)),
            });
        }
        tx.commit().await?;
        Ok::<_, StoreError>(outcomes)
    }
    .await;
    match grouped {
        Ok(outcomes) => {
            for ((cmd, reply), outcome) in group.into_iter().zip(outcomes) {
                let answer = match outcome {
                    Outcome::Answered(answer) => answer,
                    Outcome::Replay => replay_existing(pool, &cmd).await,
                };
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            budgets.give_back(&kept).await;
            tracing::debug!(error = %e, size = group.len(), "PostgreSQL group failed; posting one by one");
            for (cmd, reply) in group {
                let _ = reply.send(post_purchase_alone(pool, budgets, &cmd).await);
            }
        }
    }
}

async fn replay_existing(pool: &PgPool, cmd: &PurchaseCmd) -> Result<Posted, StoreError> {
    let seen: (String, String) =
        sqlx::query_as("SELECT request_hash, receipt FROM transactions WHERE partner_id = $1 AND external_id = $2")
            .bind(&cmd.partner.id)
            .bind(&cmd.external_id)
            .fetch_one(pool)
            .await?;
    replay(&seen.0, seen.1, &cmd.request_hash)
}

/// One purchase in its own transaction; retried if PostgreSQL broke a deadlock by
/// cancelling it (it wrote nothing).
async fn post_purchase_alone(
    pool: &PgPool,
    budgets: &budgets::Budgets,
    cmd: &PurchaseCmd,
) -> Result<Posted, StoreError> {
    let mut attempt = 0;
    loop {
        let mut taken = budgets::Taken::new();
        let posted = post_purchase_once(pool, budgets, cmd, &mut taken).await;
        budgets.settle(&posted, &taken).await;
        match posted {
            Err(StoreError::Database(e)) if e.contains("deadlock detected") && attempt < 5 => attempt += 1,
            other => return other,
        }
    }
}

async fn post_purchase_once(
    pool: &PgPool,
    budgets: &budgets::Budgets,
    cmd: &PurchaseCmd,
    taken: &mut budgets::Taken,
) -> Result<Posted, StoreError> {
    let mut tx = pool.begin().await?;
    match post_purchase_in(&mut tx, cmd, budgets, taken).await? {
        Some(posted) => {
            tx.commit().await?;
            Ok(posted)
        }
        None => {
            tx.rollback().await?;
            replay_existing(pool, cmd).await
        }
    }
}

fn ts(us: i64) -> Timestamp {
    from_micros(us)
}

const PARTNER_COLUMNS: &str = "id, name, industry, country, currency, timezone, earn_rate, pending_days, created_at";

fn partner_row(r: &PgRow) -> Result<PartnerRow, StoreError> {
    let earn_rate: String = r.try_get(6)?;
    Ok(PartnerRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        industry: r.try_get(2)?,
        country: r.try_get(3)?,
        currency: Currency::parse(&r.try_get::<String, _>(4)?)?,
        timezone: r.try_get(5)?,
        earn_rate: earn_rate
            .parse()
            .map_err(|_| StoreError::Database("bad earn_rate".into()))?,
        pending_days: r.try_get::<i64, _>(7)? as u32,
        created_at: ts(r.try_get(8)?),
    })
}

fn activity_row(r: &PgRow) -> Result<ActivityRow, StoreError> {
    Ok(ActivityRow {
        id: r.try_get(0)?,
        member_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        points: r.try_get(3)?,
        occurred_at: ts(r.try_get(4)?),
        partner_id: r.try_get(5)?,
        transaction_id: r.try_get(6)?,
        description: r.try_get(7)?,
    })
}

async fn member_id_by_identity(conn: &mut PgConnection, identity: &Identity) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT member_id FROM identities WHERE kind = $1 AND value = $2")
            .bind(identity.kind.as_str())
            .bind(&identity.value)
            .fetch_optional(conn)
            .await?,
    )
}

async fn resolve_member(conn: &mut PgConnection, member: &MemberRef) -> Result<String, StoreError> {
    let id = match member {
        MemberRef::Id(id) => {
            sqlx::query_scalar("SELECT id FROM members WHERE id = $1")
                .bind(id)
                .fetch_optional(conn)
                .await?
        }
        MemberRef::Identity(identity) => member_id_by_identity(conn, identity).await?,
    };
    id.ok_or(StoreError::NotFound("member"))
}

async fn member(conn: &mut PgConnection, id: &str) -> Result<Option<MemberRow>, StoreError> {
    let row = sqlx::query(
        "SELECT id, name, country, referral_code, created_at, available, pending, lifetime_earned, next_due_at, referred_by,
                tier, segments, plan FROM members WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let identities: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, value FROM identities WHERE member_id = $1 ORDER BY kind, value")
            .bind(id)
            .fetch_all(conn)
            .await?;
    Ok(Some(MemberRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        country: r.try_get(2)?,
        referral_code: r.try_get(3)?,
        referred_by: r.try_get(9)?,
        created_at: ts(r.try_get(4)?),
        balance: Balance {
            available: r.try_get(5)?,
            pending: r.try_get(6)?,
            lifetime_earned: r.try_get(7)?,
        },
        identities,
        next_due_at: r.try_get::<Option<i64>, _>(8)?.map(ts),
        profile: MemberProfile {
            tier: r.try_get(10)?,
            segments: crate::common::segments_from_json(&r.try_get::<String, _>(11)?),
            plan: r.try_get(12)?,
        },
    }))
}

/// The member's state, its row locked until the transaction ends when `lock` is set.
async fn load_state(
    conn: &mut PgConnection,
    member_id: &str,
    with_lots: bool,
    lock: bool,
) -> Result<(MemberState, Option<Timestamp>), StoreError> {
    let sql = if lock {
        "SELECT available, pending, lifetime_earned, next_due_at FROM members WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT available, pending, lifetime_earned, next_due_at FROM members WHERE id = $1"
    };
    let r = sqlx::query(sql)
        .bind(member_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("member"))?;
    let balance = Balance {
        available: r.try_get(0)?,
        pending: r.try_get(1)?,
        lifetime_earned: r.try_get(2)?,
    };
    let due = r.try_get::<Option<i64>, _>(3)?.map(ts);
    let mut lots = Vec::new();
    if with_lots {
        let rows = sqlx::query(
            "SELECT id, remaining, earned_at, expires_at, matures_at, transaction_id, origin FROM lots WHERE member_id = $1 AND remaining > 0",
        )
        .bind(member_id)
        .fetch_all(conn)
        .await?;
        for r in rows {
            lots.push(Lot {
                id: Some(r.try_get(0)?),
                remaining: r.try_get(1)?,
                earned_at: ts(r.try_get(2)?),
                expires_at: ts(r.try_get(3)?),
                matures_at: r.try_get::<Option<i64>, _>(4)?.map(ts),
                transaction_id: r.try_get(5)?,
                origin: LotOrigin::parse(&r.try_get::<String, _>(6)?),
            });
        }
    }
    Ok((
        MemberState {
            member_id: member_id.to_string(),
            balance,
            lots,
        },
        due,
    ))
}

/// Writes a plan in one statement: entries, lot changes, new lots, activity and the
/// member's balances (data-modifying CTEs over arrays: one round trip).
async fn write_plan(
    conn: &mut PgConnection,
    member_id: &str,
    plan: &Plan,
    stored_due: Option<Timestamp>,
    lots_loaded: bool,
    event_time: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (mut account, mut member, mut partner, mut amount, mut code, mut txn, mut ret) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for t in &plan.transfers {
        for (a, points) in [(&t.from, -t.points), (&t.to, t.points)] {
            account.push(a.key());
            member.push(a.member().map(str::to_string));
            partner.push(a.partner().map(str::to_string));
            amount.push(points);
            code.push(t.code.as_str());
            txn.push(t.transaction_id.clone());
            ret.push(t.return_id.clone());
        }
    }
    let lu = &plan.lot_updates;
    let nl = &plan.new_lots;
    let ac = &plan.activity;
    let b = plan.balance_after;
    let due = merge_due(stored_due, plan.next_due_at, lots_loaded);
    sqlx::query(
        "WITH e AS (
             INSERT INTO entries (account, member_id, partner_id, amount, code, transaction_id, return_id, recorded_at)
             SELECT a, m, p, n, c, t, r, $8
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])
                 AS u(a, m, p, n, c, t, r)
         ), lu AS (
             UPDATE lots SET remaining = u.r, matures_at = u.m
             FROM UNNEST($9::bigint[], $10::bigint[], $11::bigint[]) AS u(i, r, m) WHERE lots.id = u.i
         ), nl AS (
             INSERT INTO lots (member_id, remaining, earned_at, expires_at, matures_at, transaction_id, origin)
             SELECT $12, r, e, x, m, t, o
             FROM UNNEST($13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::text[], $18::text[])
                 AS u(r, e, x, m, t, o)
         ), ac AS (
             INSERT INTO activity (member_id, kind, points, occurred_at, partner_id, transaction_id, description)
             SELECT $12, k, n, o, p, t, d
             FROM UNNEST($19::text[], $20::bigint[], $21::bigint[], $22::text[], $23::text[], $24::text[])
                 AS u(k, n, o, p, t, d)
         )
         UPDATE members SET available = $25, pending = $26, lifetime_earned = $27, next_due_at = $28 WHERE id = $12",
    )
    .bind(account)
    .bind(member)
    .bind(partner)
    .bind(amount)
    .bind(code)
    .bind(txn)
    .bind(ret)
    .bind(to_micros(now))
    .bind(lu.iter().map(|u| u.id).collect::<Vec<i64>>())
    .bind(lu.iter().map(|u| u.remaining).collect::<Vec<i64>>())
    .bind(
        lu.iter()
            .map(|u| u.matures_at.map(to_micros))
            .collect::<Vec<Option<i64>>>(),
    )
    .bind(member_id)
    .bind(nl.iter().map(|l| l.remaining).collect::<Vec<i64>>())
    .bind(nl.iter().map(|l| to_micros(l.earned_at)).collect::<Vec<i64>>())
    .bind(nl.iter().map(|l| to_micros(l.expires_at)).collect::<Vec<i64>>())
    .bind(
        nl.iter()
            .map(|l| l.matures_at.map(to_micros))
            .collect::<Vec<Option<i64>>>(),
    )
    .bind(
        nl.iter()
            .map(|l| l.transaction_id.clone())
            .collect::<Vec<Option<String>>>(),
    )
    .bind(nl.iter().map(|l| l.origin.as_str()).collect::<Vec<&str>>())
    .bind(ac.iter().map(|a| a.kind).collect::<Vec<&str>>())
    .bind(ac.iter().map(|a| a.points).collect::<Vec<i64>>())
    .bind(
        ac.iter()
            .map(|a| to_micros(activity_time(a, event_time, now)))
            .collect::<Vec<i64>>(),
    )
    .bind(ac.iter().map(|a| a.partner_id.clone()).collect::<Vec<Option<String>>>())
    .bind(
        ac.iter()
            .map(|a| a.transaction_id.clone())
            .collect::<Vec<Option<String>>>(),
    )
    .bind(ac.iter().map(|a| a.description.as_str()).collect::<Vec<&str>>())
    .bind(b.available)
    .bind(b.pending)
    .bind(b.lifetime_earned)
    .bind(due.map(to_micros))
    .execute(conn)
    .await?;
    Ok(())
}

/// Finds the member a purchase names and locks its row, in one query.
async fn lock_member(
    conn: &mut PgConnection,
    member: &MemberRef,
) -> Result<(MemberState, Option<Timestamp>), StoreError> {
    let row = match member {
        MemberRef::Id(id) => {
            sqlx::query(
                "SELECT id, available, pending, lifetime_earned, next_due_at FROM members WHERE id = $1 FOR UPDATE",
            )
            .bind(id)
            .fetch_optional(conn)
            .await?
        }
        MemberRef::Identity(identity) => {
            sqlx::query(
                "SELECT m.id, m.available, m.pending, m.lifetime_earned, m.next_due_at
                 FROM identities i JOIN members m ON m.id = i.member_id
                 WHERE i.kind = $1 AND i.value = $2 FOR UPDATE OF m",
            )
            .bind(identity.kind.as_str())
            .bind(&identity.value)
            .fetch_optional(conn)
            .await?
        }
    };
    let r = row.ok_or(StoreError::NotFound("member"))?;
    let state = MemberState {
        member_id: r.try_get(0)?,
        balance: Balance {
            available: r.try_get(1)?,
            pending: r.try_get(2)?,
            lifetime_earned: r.try_get(3)?,
        },
        lots: Vec::new(),
    };
    Ok((state, r.try_get::<Option<i64>, _>(4)?.map(ts)))
}

async fn transaction_row(conn: &mut PgConnection, id: &str, lock: bool) -> Result<Option<TransactionRow>, StoreError> {
    let sql = format!(
        "SELECT id, partner_id, member_id, external_id, total_amount, total_currency, points_earned, points_redeemed,
                returned_amount, points_reversed, points_refunded, receipt FROM transactions WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(r) = sqlx::query(&sql).bind(id).fetch_optional(conn).await? else {
        return Ok(None);
    };
    Ok(Some(TransactionRow {
        id: r.try_get(0)?,
        partner_id: r.try_get(1)?,
        member_id: r.try_get(2)?,
        external_id: r.try_get(3)?,
        total: money(r.try_get(4)?, &r.try_get::<String, _>(5)?)?,
        points_earned: r.try_get(6)?,
        points_redeemed: r.try_get(7)?,
        returned_amount: r.try_get(8)?,
        points_reversed: r.try_get(9)?,
        points_refunded: r.try_get(10)?,
        receipt_json: r.try_get(11)?,
    }))
}

/// Posts one purchase inside `tx`; `Ok(None)` means another request posted the same
/// receipt first (the caller rolls back and replays it).
async fn post_purchase_in(
    tx: &mut Tx,
    cmd: &PurchaseCmd,
    budgets: &budgets::Budgets,
    taken: &mut budgets::Taken,
) -> Result<Option<Posted>, StoreError> {
    let seen: Option<(String, String)> =
        sqlx::query_as("SELECT request_hash, receipt FROM transactions WHERE partner_id = $1 AND external_id = $2")
            .bind(&cmd.partner.id)
            .bind(&cmd.external_id)
            .fetch_optional(&mut **tx)
            .await?;
    if let Some((hash, receipt)) = seen {
        return replay(&hash, receipt, &cmd.request_hash).map(Some);
    }
    if let Some(location_id) = &cmd.location_id {
        let owner: Option<String> = sqlx::query_scalar("SELECT partner_id FROM locations WHERE id = $1")
            .bind(location_id)
            .fetch_optional(&mut **tx)
            .await?;
        if owner.as_deref() != Some(cmd.partner.id.as_str()) {
            return Err(StoreError::UnknownLocation);
        }
    }
    let (state, stored_due) = lock_member(tx, &cmd.member).await?;
    let member_id = state.member_id.clone();
    let needs_lots = needs_lots(cmd, stored_due);
    let state = if needs_lots {
        load_state(tx, &member_id, true, false).await?.0
    } else {
        state
    };
    if cmd.rules.assumed.is_some() {
        let current = rules::visits(tx, &member_id, &cmd.partner.id).await?;
        check_assumption(&cmd.rules, &member_id, || Ok(current))?;
    }
    let (valuation, granted, increments) =
        rules::grant(tx, &cmd.valuation, &cmd.rules, &member_id, budgets, taken).await?;
    let (plan, receipt) = plan_purchase_receipt(&state, cmd, &valuation, "posted")?;
    let receipt = to_json(&receipt)?;
    let inserted = sqlx::query(
        "INSERT INTO transactions (id, partner_id, external_id, member_id, location_id, occurred_at, recorded_at,
             total_amount, total_currency, points_earned, points_redeemed, lines, request_hash, receipt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (partner_id, external_id) DO NOTHING",
    )
    .bind(&cmd.transaction_id)
    .bind(&cmd.partner.id)
    .bind(&cmd.external_id)
    .bind(&member_id)
    .bind(&cmd.location_id)
    .bind(to_micros(cmd.occurred_at))
    .bind(to_micros(cmd.now))
    .bind(cmd.total.amount)
    .bind(cmd.total.currency.code())
    .bind(valuation.points_earned)
    .bind(cmd.redeem_points)
    .bind(&cmd.lines_json)
    .bind(&cmd.request_hash)
    .bind(&receipt)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    write_plan(tx, &member_id, &plan, stored_due, needs_lots, cmd.occurred_at, cmd.now).await?;
    let visit = Some((member_id.as_str(), cmd.partner.id.as_str(), cmd.occurred_at));
    rules::write_awards(tx, &cmd.transaction_id, &granted, &increments, visit).await?;
    Ok(Some(Posted {
        receipt_json: receipt,
        replayed: false,
    }))
}

impl PgStore {
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<PgStore, StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            if !tally_domain::ids::is_plausible_id(schema) {
                return Err(StoreError::Database("schema names are letters, digits and _".into()));
            }
            let mut conn = PgConnection::connect_with(&options).await?;
            sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let (purchases, queue) = tokio::sync::mpsc::unbounded_channel();
        let budgets = std::sync::Arc::new(budgets::Budgets::new(pool.clone()));
        let store = PgStore {
            pool,
            purchases,
            budgets,
        };
        store.migrate().await?;
        let queue = std::sync::Arc::new(tokio::sync::Mutex::new(queue));
        let writers = std::env::var("TALLY_PG_WRITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(WRITERS)
            .clamp(1, 16);
        for _ in 0..writers {
            tokio::spawn(run_purchase_writer(
                store.pool.clone(),
                store.budgets.clone(),
                queue.clone(),
            ));
        }
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // One migrator at a time, even with several servers starting together.
        sqlx::query("SELECT pg_advisory_xact_lock(7461)")
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(migrations::CREATE_TABLE).execute(&mut *tx).await?;
        for m in migrations::POSTGRES {
            let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tally_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_one(&mut *tx)
                .await?;
            if done > 0 {
                continue;
            }
            sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO tally_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(Timestamp::now().as_microsecond())
                .execute(&mut *tx)
                .await?;
            tracing::info!(version = m.version, name = m.name, "applied PostgreSQL migration");
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn program(&self) -> Result<ProgramRow, StoreError> {
        let r = sqlx::query("SELECT name, currency, point_value_minor, expiry_months FROM program WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(ProgramRow {
            name: r.try_get(0)?,
            currency: Currency::parse(&r.try_get::<String, _>(1)?)?,
            point_value_minor: r.try_get(2)?,
            expiry_months: r.try_get::<i64, _>(3)? as u32,
        })
    }

    pub async fn update_program(&self, u: ProgramUpdate) -> Result<ProgramRow, StoreError> {
        sqlx::query(
            "UPDATE program SET name = COALESCE($1, name), currency = COALESCE($2, currency),
                 point_value_minor = COALESCE($3, point_value_minor), expiry_months = COALESCE($4, expiry_months) WHERE id = 1",
        )
        .bind(u.name)
        .bind(u.currency.map(|c| c.code()))
        .bind(u.point_value_minor)
        .bind(u.expiry_months.map(i64::from))
        .execute(&self.pool)
        .await?;
        self.program().await
    }

    pub async fn admin_key_hash(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT admin_key_hash FROM program WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn set_admin_key_hash(&self, hash: String) -> Result<(), StoreError> {
        sqlx::query("UPDATE program SET admin_key_hash = $1 WHERE id = 1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn fx_rates(&self) -> Result<FxRates, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT currency, rate FROM fx_rates")
            .fetch_all(&self.pool)
            .await?;
        fx_rates_from_rows(rows)
    }

    pub async fn put_fx_rates(&self, rates: FxRates, now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (code, rate) in rates.iter() {
            sqlx::query(
                "INSERT INTO fx_rates (currency, rate, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (currency) DO UPDATE SET rate = excluded.rate, updated_at = excluded.updated_at",
            )
            .bind(code)
            .bind(rate.to_string())
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_partner(&self, p: PartnerRow) -> Result<PartnerRow, StoreError> {
        sqlx::query(&format!(
            "INSERT INTO partners ({PARTNER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.industry)
        .bind(&p.country)
        .bind(p.currency.code())
        .bind(&p.timezone)
        .bind(p.earn_rate.to_string())
        .bind(i64::from(p.pending_days))
        .bind(to_micros(p.created_at))
        .execute(&self.pool)
        .await?;
        Ok(p)
    }

    pub async fn partners(&self) -> Result<Vec<PartnerRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PARTNER_COLUMNS} FROM partners ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(partner_row).collect()
    }

    pub async fn partner(&self, id: String) -> Result<Option<PartnerRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(partner_row).transpose()
    }

    pub async fn create_location(&self, l: LocationRow) -> Result<LocationRow, StoreError> {
        if self.partner(l.partner_id.clone()).await?.is_none() {
            return Err(StoreError::NotFound("partner"));
        }
        sqlx::query("INSERT INTO locations (id, partner_id, name, city, country, timezone, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&l.id)
            .bind(&l.partner_id)
            .bind(&l.name)
            .bind(&l.city)
            .bind(&l.country)
            .bind(&l.timezone)
            .bind(to_micros(l.created_at))
            .execute(&self.pool)
            .await?;
        Ok(l)
    }

    pub async fn locations(&self, partner_id: String) -> Result<Vec<LocationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, partner_id, name, city, country, timezone, created_at FROM locations WHERE partner_id = $1 ORDER BY created_at, id",
        )
        .bind(partner_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LocationRow {
                    id: r.try_get(0)?,
                    partner_id: r.try_get(1)?,
                    name: r.try_get(2)?,
                    city: r.try_get(3)?,
                    country: r.try_get(4)?,
                    timezone: r.try_get(5)?,
                    created_at: ts(r.try_get(6)?),
                })
            })
            .collect()
    }

    pub async fn create_api_key(&self, k: ApiKeyRow) -> Result<(), StoreError> {
        if self.partner(k.partner_id.clone()).await?.is_none() {
            return Err(StoreError::NotFound("partner"));
        }
        sqlx::query("INSERT INTO api_keys (id, partner_id, key_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&k.id)
            .bind(&k.partner_id)
            .bind(&k.key_hash)
            .bind(to_micros(k.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn api_key_partner(&self, hash: String) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT partner_id FROM api_keys WHERE key_hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn create_member(&self, m: NewMember) -> Result<MemberRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let referred_by: Option<String> = match &m.referred_by_code {
            Some(code) => Some(
                sqlx::query_scalar("SELECT id FROM members WHERE referral_code = $1")
                    .bind(code)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::UnknownReferralCode)?,
            ),
            None => None,
        };
        sqlx::query("INSERT INTO members (id, name, country, referral_code, referred_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&m.id)
            .bind(&m.name)
            .bind(&m.country)
            .bind(&m.referral_code)
            .bind(referred_by)
            .bind(to_micros(m.created_at))
            .execute(&mut *tx)
            .await?;
        for identity in &m.identities {
            let inserted = sqlx::query(
                "INSERT INTO identities (kind, value, member_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(identity.kind.as_str())
            .bind(&identity.value)
            .bind(&m.id)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::IdentityTaken);
            }
        }
        let row = member(&mut tx, &m.id).await?.ok_or(StoreError::NotFound("member"))?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn member(&self, id: String) -> Result<Option<MemberRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        member(&mut conn, &id).await
    }

    pub async fn lookup_member(&self, identity: Identity) -> Result<Option<MemberRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        match member_id_by_identity(&mut conn, &identity).await? {
            Some(id) => member(&mut conn, &id).await,
            None => Ok(None),
        }
    }

    pub async fn activity(&self, q: ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, member_id, kind, points, occurred_at, partner_id, transaction_id, description FROM activity
             WHERE member_id = $1 AND ($2::text IS NULL OR partner_id = $2) AND ($3::bigint IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(&q.member_id)
        .bind(&q.partner_id)
        .bind(q.before_id)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(activity_row).collect()
    }

    pub async fn post_purchase(&self, cmd: PurchaseCmd) -> Result<Posted, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.purchases
            .send((cmd, reply))
            .map_err(|_| StoreError::Database("the purchase writers have stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Database("a purchase writer dropped a purchase".into()))?
    }

    pub async fn post_purchases(&self, cmds: Vec<PurchaseCmd>) -> Vec<Result<Posted, StoreError>> {
        let mut answers = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let _ = self.purchases.send((cmd, reply));
            answers.push(answer);
        }
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            out.push(
                answer
                    .await
                    .unwrap_or_else(|_| Err(StoreError::Database("a purchase writer dropped a purchase".into()))),
            );
        }
        out
    }

    pub async fn member_state(&self, member: MemberRef) -> Result<MemberState, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let id = resolve_member(&mut conn, &member).await?;
        Ok(load_state(&mut conn, &id, true, false).await?.0)
    }

    pub async fn post_return(&self, cmd: ReturnCmd) -> Result<Posted, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Lock the purchase first: returns of one purchase are serialised.
        let txn = transaction_row(&mut tx, &cmd.transaction_id, true)
            .await?
            .filter(|t| t.partner_id == cmd.partner_id)
            .ok_or(StoreError::NotFound("transaction"))?;
        let seen: Option<(String, String)> =
            sqlx::query_as("SELECT request_hash, receipt FROM returns WHERE partner_id = $1 AND external_id = $2")
                .bind(&cmd.partner_id)
                .bind(&cmd.external_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((hash, receipt)) = seen {
            return replay(&hash, receipt, &cmd.request_hash);
        }
        let partner_name: String = sqlx::query_scalar("SELECT name FROM partners WHERE id = $1")
            .bind(&txn.partner_id)
            .fetch_one(&mut *tx)
            .await?;
        let (state, stored_due) = load_state(&mut tx, &txn.member_id, true, true).await?;
        let (plan, result, receipt) = plan_return_receipt(&txn, partner_name, &state, &cmd)?;
        let inserted = sqlx::query(
            "INSERT INTO returns (id, transaction_id, partner_id, external_id, amount, recorded_at, request_hash, receipt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (partner_id, external_id) DO NOTHING",
        )
        .bind(&cmd.return_id)
        .bind(&txn.id)
        .bind(&cmd.partner_id)
        .bind(&cmd.external_id)
        .bind(cmd.amount.amount)
        .bind(to_micros(cmd.now))
        .bind(&cmd.request_hash)
        .bind(&receipt)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // The same return id was used for another purchase of this partner.
            return Err(StoreError::IdempotencyConflict);
        }
        sqlx::query(
            "UPDATE transactions SET returned_amount = returned_amount + $2, points_reversed = points_reversed + $3,
                 points_refunded = points_refunded + $4 WHERE id = $1",
        )
        .bind(&txn.id)
        .bind(cmd.amount.amount)
        .bind(result.points_reversed + result.points_unrecovered)
        .bind(result.points_refunded)
        .execute(&mut *tx)
        .await?;
        write_plan(&mut tx, &txn.member_id, &plan, stored_due, true, cmd.now, cmd.now).await?;
        rules::reverse_awards(
            &mut tx,
            &txn.id,
            txn.returned_amount + cmd.amount.amount,
            txn.total.amount,
            &result,
        )
        .await?;
        tx.commit().await?;
        Ok(Posted {
            receipt_json: receipt,
            replayed: false,
        })
    }

    pub async fn save_rule(
        &self,
        id: String,
        partner_id: Option<String>,
        spec_json: String,
        now: Timestamp,
    ) -> Result<RuleRow, StoreError> {
        rules::save_rule(&self.pool, &id, partner_id.as_deref(), &spec_json, now).await
    }

    pub async fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        rules::rule_rows(&self.pool, None).await
    }

    pub async fn rule(&self, id: String) -> Result<Option<RuleRow>, StoreError> {
        Ok(rules::rule_rows(&self.pool, Some(&id)).await?.pop())
    }

    pub async fn rule_versions(&self, id: String) -> Result<Vec<(i64, String, Timestamp)>, StoreError> {
        rules::rule_versions(&self.pool, &id).await
    }

    pub async fn set_member_profile(&self, id: String, profile: MemberProfile) -> Result<MemberRow, StoreError> {
        rules::set_profile(&self.pool, &id, &profile).await
    }

    pub async fn member_facts(
        &self,
        member: MemberRef,
        partner_id: Option<String>,
    ) -> Result<Option<tally_domain::rules::MemberFacts>, StoreError> {
        rules::member_facts(&self.pool, &member, partner_id.as_deref()).await
    }

    pub async fn rule_counters(&self, keys: Vec<String>) -> Result<HashMap<String, i64>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        rules::counters(&mut conn, &keys, false).await
    }

    pub async fn event_types(&self) -> Result<Vec<(String, String)>, StoreError> {
        rules::event_types(&self.pool).await
    }

    pub async fn create_event_type(
        &self,
        name: String,
        description: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        rules::create_event_type(&self.pool, &name, &description, now).await
    }

    pub async fn post_event(&self, cmd: EventCmd) -> Result<Posted, StoreError> {
        rules::post_event(&self.pool, &self.budgets, &cmd).await
    }

    pub async fn events(
        &self,
        member_id: String,
        partner_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        rules::events(&self.pool, &member_id, partner_id.as_deref(), limit).await
    }

    pub async fn transaction(&self, id: String) -> Result<Option<TransactionRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        transaction_row(&mut conn, &id, false).await
    }

    async fn settle_one(&self, member_id: &str, now: Timestamp) -> Result<(i64, i64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let (state, stored_due) = load_state(&mut tx, member_id, true, true).await?;
        let plan = plan_settle(&state, now);
        if plan.transfers.is_empty() && plan.next_due_at == stored_due {
            return Ok((0, 0));
        }
        write_plan(&mut tx, member_id, &plan, stored_due, true, now, now).await?;
        tx.commit().await?;
        use tally_domain::ledger::EntryCode;
        let sum = |code| {
            plan.transfers
                .iter()
                .filter(|t| t.code == code)
                .map(|t| t.points)
                .sum::<i64>()
        };
        Ok((sum(EntryCode::Mature), sum(EntryCode::Expire)))
    }

    pub async fn settle_member(&self, member_id: String, now: Timestamp) -> Result<(), StoreError> {
        self.settle_one(&member_id, now).await.map(|_| ())
    }

    pub async fn settle_due(&self, now: Timestamp, limit: u32) -> Result<SettleReport, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM members WHERE next_due_at <= $1 ORDER BY next_due_at LIMIT $2")
                .bind(to_micros(now))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        let mut report = SettleReport::default();
        for id in ids {
            let (matured, expired) = self.settle_one(&id, now).await?;
            report.members_settled += 1;
            report.points_matured += matured;
            report.points_expired += expired;
        }
        Ok(report)
    }

    pub async fn verify_ledger(&self) -> Result<Verification, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT account, SUM(amount)::bigint, COUNT(*) FROM entries GROUP BY account")
                .fetch_all(&mut *tx)
                .await?;
        let mut sums = HashMap::new();
        let mut entries_checked = 0u64;
        for (account, sum, count) in rows {
            sums.insert(account, sum);
            entries_checked += count as u64;
        }
        let members: Vec<(String, i64, i64)> = sqlx::query_as("SELECT id, available, pending FROM members")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(verification(sums, entries_checked, members))
    }

    pub async fn idempotent_response(
        &self,
        principal: String,
        key: String,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let row: Option<(String, i64, String)> =
            sqlx::query_as("SELECT request_hash, status, body FROM idempotency_keys WHERE principal = $1 AND key = $2")
                .bind(principal)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(request_hash, status, body)| StoredResponse {
            request_hash,
            status: status as u16,
            body,
        }))
    }

    pub async fn save_idempotent_response(
        &self,
        principal: String,
        key: String,
        r: StoredResponse,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO idempotency_keys (principal, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (principal, key) DO NOTHING",
        )
        .bind(principal)
        .bind(key)
        .bind(r.request_hash)
        .bind(i64::from(r.status))
        .bind(r.body)
        .bind(to_micros(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM members), (SELECT COUNT(*) FROM partners), (SELECT COUNT(*) FROM transactions), (SELECT COUNT(*) FROM entries)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            members: r.try_get::<i64, _>(0)? as u64,
            partners: r.try_get::<i64, _>(1)? as u64,
            transactions: r.try_get::<i64, _>(2)? as u64,
            entries: r.try_get::<i64, _>(3)? as u64,
        })
    }
}
