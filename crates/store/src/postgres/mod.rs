//! The PostgreSQL backend: short transactions that lock only the member's row.
//!
//! A purchase locks its member (`SELECT … FOR UPDATE`), so sales of different members
//! run in parallel and sales of one member queue; partner and programme totals are never
//! a row every sale updates. Multi-row writes go in one statement each (`UNNEST` of
//! arrays) to keep round trips few. Purchases go through writer tasks that commit them
//! in groups (`writer.rs`); campaign budgets are leased (`budgets.rs`).
//!
//! As in the SQLite backend, each module holds one area's statements and the
//! [`PgStore`] methods that run them; commands read facts, call the decision in
//! `tally_domain::decide`, and write what it says.

mod budgets;
mod challenges;
mod changes;
mod consents;
mod events;
mod exchange;
mod idempotency;
mod ledger;
mod members;
mod memberships;
mod partners;
mod program;
mod purchases;
mod referrals;
mod returns;
mod rewards;
mod rules;
mod sales;
mod settlement;
mod tiers;
mod transfers;
mod wallets;
mod web;
mod writer;

use crate::StoreError;
use crate::migrations;
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    purchases: writer::Queue,
    budgets: Arc<budgets::Budgets>,
}

impl PgStore {
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<PgStore, StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            if !tally_domain::ids::is_plausible_id(schema) {
                return Err(StoreError::corrupt("schema names are letters, digits and _"));
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
        migrate(&pool).await?;
        let budgets = Arc::new(budgets::Budgets::new(pool.clone()));
        let purchases = writer::start(pool.clone(), budgets.clone());
        Ok(PgStore {
            pool,
            purchases,
            budgets,
        })
    }
}

async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
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

impl PgStore {
    /// What the PostgreSQL server has written so far, cluster-wide: WAL bytes
    /// (`pg_stat_wal`) and data pages written out of shared buffers (`pg_stat_bgwriter`).
    /// For benchmarks, which take the difference over a run.
    pub async fn write_volume(&self) -> Result<crate::model::WriteVolume, StoreError> {
        let (wal_bytes, pages): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT wal_bytes::bigint FROM pg_stat_wal),
                    (SELECT buffers_checkpoint + buffers_clean + buffers_backend FROM pg_stat_bgwriter)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(crate::model::WriteVolume {
            wal_bytes: wal_bytes.max(0) as u64,
            data_bytes: pages.max(0).saturating_mul(8192) as u64,
        })
    }
}
