//! The ledger: writing a decision's plan (entries, lots, activity, balances) in one
//! statement, the expiry run, and the check that recomputes every balance from the
//! entries.

use super::PgStore;
use super::members::{load_wallet_state, member_state};
use crate::StoreError;
use crate::codec::verification;
use crate::model::{Counts, Holder, LedgerBalances, MemberRef, SettleReport, Verification, to_micros};
use jiff::Timestamp;
use sqlx::{PgConnection, Row};
use std::collections::HashMap;
use tally_domain::decide::decide_settle;
use tally_domain::ids::{Id, MemberId, WalletId};
use tally_domain::ledger::EntryCode;
use tally_domain::plan::Plan;

/// Writes a member's plan in one statement: entries, lot changes, new lots, activity
/// and the member's balances (data-modifying CTEs over arrays: one round trip).
pub(super) async fn write_plan(
    conn: &mut PgConnection,
    member_id: &MemberId,
    plan: &Plan,
    now: Timestamp,
) -> Result<(), StoreError> {
    write_holder_plan(conn, Holder::Member(member_id), plan, now).await
}

/// Writes the plan of a member or of a shared wallet (its entries naming the member).
pub(super) async fn write_holder_plan(
    conn: &mut PgConnection,
    holder: Holder<'_>,
    plan: &Plan,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (mut account, mut member, mut partner, mut amount, mut code, mut txn, mut ret) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for t in &plan.transfers {
        for (a, points) in [(&t.from, -t.points), (&t.to, t.points)] {
            account.push(a.key());
            member.push(holder.entry_member(a, t).map(str::to_string));
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
    let due = plan.next_due_at;
    let sql = format!(
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
         UPDATE {} SET available = $25, pending = $26, lifetime_earned = $27, next_due_at = $28,
             reserved = reserved + $29 WHERE id = $12",
        holder.table()
    );
    sqlx::query(&sql)
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
        .bind(holder.id())
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
        .bind(ac.iter().map(|a| a.kind.as_str()).collect::<Vec<&str>>())
        .bind(ac.iter().map(|a| a.points).collect::<Vec<i64>>())
        .bind(ac.iter().map(|a| to_micros(a.at)).collect::<Vec<i64>>())
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
        .bind(plan.reserved_change)
        .execute(conn)
        .await?;
    Ok(())
}

impl PgStore {
    /// Settles one member in a transaction of its own; returns (matured, expired).
    async fn settle_one(&self, member_id: &MemberId, now: Timestamp) -> Result<(i64, i64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let state = member_state(&mut tx, &MemberRef::Id(member_id.clone()), true, |_| true).await?;
        let Some(plan) = decide_settle(&state, now)? else {
            return Ok((0, 0));
        };
        write_plan(&mut tx, member_id, &plan, now).await?;
        tx.commit().await?;
        Ok((plan.points_with(EntryCode::Mature), plan.points_with(EntryCode::Expire)))
    }

    /// Settles one shared wallet in a transaction of its own; returns (matured, expired).
    pub async fn settle_wallet(&self, wallet_id: &WalletId, now: Timestamp) -> Result<(i64, i64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let state = load_wallet_state(&mut tx, wallet_id, None, true, |_| true).await?;
        let Some(plan) = decide_settle(&state, now)? else {
            return Ok((0, 0));
        };
        write_holder_plan(&mut tx, Holder::of(&state), &plan, now).await?;
        tx.commit().await?;
        Ok((plan.points_with(EntryCode::Mature), plan.points_with(EntryCode::Expire)))
    }

    pub async fn settle_member(&self, member_id: MemberId, now: Timestamp) -> Result<(), StoreError> {
        self.settle_one(&member_id, now).await.map(|_| ())
    }

    pub async fn settle_due(&self, now: Timestamp, limit: u32) -> Result<SettleReport, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM (SELECT id, next_due_at FROM members WHERE next_due_at <= $1
                                 UNION ALL SELECT id, next_due_at FROM wallets WHERE next_due_at <= $1) due
                 ORDER BY next_due_at LIMIT $2",
        )
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut report = SettleReport::default();
        for id in ids {
            let (matured, expired) = match WalletId::is_kind(&id) {
                true => self.settle_wallet(&WalletId::from_stored(id), now).await?,
                false => self.settle_one(&MemberId::from_stored(id), now).await?,
            };
            report.members_settled += 1;
            report.points_matured += matured;
            report.points_expired += expired;
        }
        Ok(report)
    }

    /// Recomputes every account's sum from the entries, in one snapshot. Sums are taken
    /// as `numeric` and read as text, so no ledger overflows the check.
    pub async fn verify_ledger(&self) -> Result<Verification, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT account, SUM(amount::numeric)::text, COUNT(*) FROM entries GROUP BY account")
                .fetch_all(&mut *tx)
                .await?;
        let mut sums = HashMap::new();
        let mut entries_checked = 0u64;
        for (account, sum, count) in rows {
            let sum: i128 = sum
                .parse()
                .map_err(|_| StoreError::corrupt(format!("the sum of {account} is {sum}")))?;
            sums.insert(account, sum);
            entries_checked += count as u64;
        }
        let members: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT 'member:' || id, available, pending, reserved FROM members
             UNION ALL SELECT 'wallet:' || id, available, pending, reserved FROM wallets",
        )
        .fetch_all(&mut *tx)
        .await?;
        let vouchers: Vec<(String, i64)> = sqlx::query_as(
            "SELECT member_id, SUM(points)::bigint FROM redemptions WHERE status = 'issued' GROUP BY member_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let pending: Vec<(String, i64)> = sqlx::query_as(
            "SELECT exchange_partner_id, SUM(points)::bigint FROM exchange_orders WHERE status = 'pending'
             GROUP BY exchange_partner_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(verification(
            sums,
            entries_checked,
            members,
            vouchers.into_iter().collect(),
            pending.into_iter().collect(),
        ))
    }

    /// The programme's accounts and the holders' sums, in one snapshot.
    pub async fn ledger_balances(&self) -> Result<LedgerBalances, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT account, SUM(amount::numeric)::text, COUNT(*) FROM entries
             WHERE account NOT LIKE 'member:%' AND account NOT LIKE 'wallet:%'
             GROUP BY account ORDER BY account",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut out = LedgerBalances::default();
        for (account, sum, count) in rows {
            let balance: i64 = sum
                .parse()
                .map_err(|_| StoreError::corrupt(format!("the sum of {account} is {sum}")))?;
            out.accounts.push((account, balance, count as u64));
        }
        let (available, pending, reserved): (String, String, String) = sqlx::query_as(
            "SELECT COALESCE(SUM(available), 0)::text, COALESCE(SUM(pending), 0)::text,
                    COALESCE(SUM(reserved), 0)::text FROM members",
        )
        .fetch_one(&mut *tx)
        .await?;
        let (w_available, w_pending): (String, String) =
            sqlx::query_as("SELECT COALESCE(SUM(available), 0)::text, COALESCE(SUM(pending), 0)::text FROM wallets")
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        let n = |s: String| -> Result<i64, StoreError> {
            s.parse()
                .map_err(|_| StoreError::corrupt(format!("a holders' sum is {s}")))
        };
        out.members = (n(available)?, n(pending)?, n(reserved)?);
        out.wallets = (n(w_available)?, n(w_pending)?);
        Ok(out)
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
