//! Campaign budgets on PostgreSQL, without a hot row. A budget's counter is one row every
//! sale under the rule would lock until its commit, so sales of all members would queue
//! on it. Instead the server takes slices of the budget ("leases") in short transactions
//! of their own, and sales draw on the slices in memory while they hold only their own
//! member's locks. The counter counts what was leased: a budget is never overspent, even
//! by several servers; what a server leased and did not give is unused if it stops.
//!
//! A lease transaction commits without waiting for the disk: the sale that uses the
//! points commits durably after it, and PostgreSQL flushes its log in order, so a
//! durable sale never outlives the lease it drew on.

use crate::StoreError;
use sqlx::PgPool;
use std::collections::HashMap;

/// Budget points a sale drew, per budget counter key.
pub type Taken = HashMap<String, i64>;

pub struct Budgets {
    pool: PgPool,
    /// Leased and not yet given, per budget counter key.
    leases: tokio::sync::Mutex<HashMap<String, i64>>,
}

impl Budgets {
    pub fn new(pool: PgPool) -> Budgets {
        Budgets {
            pool,
            leases: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Draws up to `want` points of the budget `key` (of `limit` points in all): from the
    /// lease in memory, leasing more when it runs short. Fewer only when the budget is
    /// spent.
    pub async fn take(&self, key: &str, want: i64, limit: i64) -> Result<i64, StoreError> {
        if want <= 0 {
            return Ok(0);
        }
        let mut leases = self.leases.lock().await;
        let have = leases.entry(key.to_string()).or_insert(0);
        if *have < want {
            // A slice of a fiftieth of the budget (at most 10,000 points) saves round
            // trips; never less than this sale needs.
            let slice = (want - *have).max((limit / 50).min(10_000));
            *have += lease(&self.pool, key, slice, limit).await?;
        }
        let took = want.min(*have);
        *have -= took;
        Ok(took)
    }

    /// Puts back points drawn by a sale that was refused, replayed or rolled back, or
    /// that its caps cut.
    pub async fn give_back(&self, taken: &Taken) {
        if taken.values().all(|p| *p <= 0) {
            return;
        }
        let mut leases = self.leases.lock().await;
        for (key, points) in taken.iter().filter(|(_, p)| **p > 0) {
            *leases.entry(key.clone()).or_insert(0) += points;
        }
    }

    /// After a sale or event: what it drew stays given only if it was posted now (not
    /// refused, failed or replayed).
    pub async fn settle(&self, posted: &Result<crate::model::Posted, StoreError>, taken: &Taken) {
        if !matches!(posted, Ok(p) if !p.replayed) {
            self.give_back(taken).await;
        }
    }
}

/// Adds up to `slice` points to the counter `key` without passing `limit`; returns how
/// many.
async fn lease(pool: &PgPool, key: &str, slice: i64, limit: i64) -> Result<i64, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO rule_counters (key, used) VALUES ($1, 0) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    let used: i64 = sqlx::query_scalar("SELECT used FROM rule_counters WHERE key = $1 FOR UPDATE")
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
    let got = slice.min((limit - used).max(0));
    if got > 0 {
        sqlx::query("UPDATE rule_counters SET used = used + $2 WHERE key = $1")
            .bind(key)
            .bind(got)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(got)
}
