//! The ledger: writing a decision's plan (entries, lots, activity, balances), the
//! expiry run, and the check that recomputes every balance from the entries.

use super::SqliteStore;
use super::members::{load_state, load_wallet_state};
use crate::StoreError;
use crate::codec::verification;
use crate::model::{Counts, Holder, LedgerBalances, SettleReport, Verification, to_micros};
use jiff::Timestamp;
use rusqlite::{Connection, params};
use std::collections::HashMap;
use tally_domain::decide::decide_settle;
use tally_domain::ids::{Id, MemberId, WalletId};
use tally_domain::ledger::EntryCode;
use tally_domain::plan::Plan;

/// Members the expiry run settles per writer job, so the POS path is never held up long.
const SETTLE_CHUNK: u32 = 200;

/// Writes a member's plan: entries, lots, activity, and the member's balances and due time.
pub(super) fn write_plan(
    conn: &Connection,
    member_id: &MemberId,
    plan: &Plan,
    now: Timestamp,
) -> Result<(), StoreError> {
    write_holder_plan(conn, Holder::Member(member_id), plan, now)
}

/// Writes the plan of a member or a shared wallet: entries (naming the member), lots,
/// activity, and the holder's balances and due time.
pub(super) fn write_holder_plan(
    conn: &Connection,
    holder: Holder<'_>,
    plan: &Plan,
    now: Timestamp,
) -> Result<(), StoreError> {
    let member_id = holder.id();
    let recorded = to_micros(now);
    let mut entry = conn.prepare_cached(
        "INSERT INTO entries (account, member_id, partner_id, amount, code, transaction_id, return_id, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for t in &plan.transfers {
        for (account, amount) in [(&t.from, -t.points), (&t.to, t.points)] {
            entry.execute(params![
                account.key(),
                holder.entry_member(account, t),
                account.partner(),
                amount,
                t.code.as_str(),
                t.transaction_id,
                t.return_id,
                recorded
            ])?;
        }
    }
    let mut update_lot = conn.prepare_cached("UPDATE lots SET remaining = ?2, matures_at = ?3 WHERE id = ?1")?;
    for u in &plan.lot_updates {
        update_lot.execute(params![u.id, u.remaining, u.matures_at.map(to_micros)])?;
    }
    let mut insert_lot = conn.prepare_cached(
        "INSERT INTO lots (member_id, remaining, earned_at, expires_at, matures_at, transaction_id, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for lot in &plan.new_lots {
        insert_lot.execute(params![
            member_id,
            lot.remaining,
            to_micros(lot.earned_at),
            to_micros(lot.expires_at),
            lot.matures_at.map(to_micros),
            lot.transaction_id,
            lot.origin.as_str()
        ])?;
    }
    let mut activity = conn.prepare_cached(
        "INSERT INTO activity (member_id, kind, points, occurred_at, partner_id, transaction_id, description) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for a in &plan.activity {
        activity.execute(params![
            member_id,
            a.kind.as_str(),
            a.points,
            to_micros(a.at),
            a.partner_id,
            a.transaction_id,
            a.description
        ])?;
    }
    let b = plan.balance_after;
    let update = match holder {
        Holder::Member(_) => {
            "UPDATE members SET available = ?2, pending = ?3, lifetime_earned = ?4, next_due_at = ?5, reserved = reserved + ?6 WHERE id = ?1"
        }
        Holder::Wallet { .. } => {
            "UPDATE wallets SET available = ?2, pending = ?3, lifetime_earned = ?4, next_due_at = ?5, reserved = reserved + ?6 WHERE id = ?1"
        }
    };
    conn.prepare_cached(update)?.execute(params![
        member_id,
        b.available,
        b.pending,
        b.lifetime_earned,
        plan.next_due_at.map(to_micros),
        plan.reserved_change
    ])?;
    Ok(())
}

/// Matures and expires what is due for one member; returns (matured, expired) points.
fn settle_member(conn: &Connection, member_id: &MemberId, now: Timestamp) -> Result<(i64, i64), StoreError> {
    let state = load_state(conn, member_id, |_| true)?;
    let Some(plan) = decide_settle(&state, now)? else {
        return Ok((0, 0));
    };
    write_plan(conn, member_id, &plan, now)?;
    Ok((plan.points_with(EntryCode::Mature), plan.points_with(EntryCode::Expire)))
}

/// Matures and expires what is due in one shared wallet; returns (matured, expired).
fn settle_wallet(conn: &Connection, wallet_id: &WalletId, now: Timestamp) -> Result<(i64, i64), StoreError> {
    let state = load_wallet_state(conn, wallet_id, None, |_| true)?;
    let Some(plan) = decide_settle(&state, now)? else {
        return Ok((0, 0));
    };
    write_holder_plan(conn, Holder::of(&state), &plan, now)?;
    Ok((plan.points_with(EntryCode::Mature), plan.points_with(EntryCode::Expire)))
}

/// Members and shared wallets due for settling, soonest first (wallet ids start `wal_`).
fn due_members(conn: &Connection, now: Timestamp, limit: u32) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM (SELECT id, next_due_at FROM members WHERE next_due_at <= ?1
                         UNION ALL SELECT id, next_due_at FROM wallets WHERE next_due_at <= ?1)
         ORDER BY next_due_at LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![to_micros(now), limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Recomputes every account's sum from the entries. SQLite's SUM stops at 64 bits, so
/// each amount is summed as its high and low 32 bits and joined in 128 bits.
fn verify(conn: &Connection) -> Result<Verification, StoreError> {
    let mut sums: HashMap<String, i128> = HashMap::new();
    let mut entries_checked = 0u64;
    let mut stmt = conn.prepare(
        "SELECT account, SUM(amount >> 32), SUM(amount & 4294967295), COUNT(*) FROM entries GROUP BY account",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (high, low): (i64, i64) = (r.get(1)?, r.get(2)?);
        sums.insert(r.get(0)?, (i128::from(high) << 32) + i128::from(low));
        entries_checked += r.get::<_, i64>(3)? as u64;
    }
    let mut stored = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT 'member:' || id, available, pending, reserved FROM members
         UNION ALL SELECT 'wallet:' || id, available, pending, reserved FROM wallets",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        stored.push((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
    }
    let vouchers = conn
        .prepare("SELECT member_id, SUM(points) FROM redemptions WHERE status = 'issued' GROUP BY member_id")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<HashMap<_, _>, _>>()?;
    let pending = conn
        .prepare(
            "SELECT exchange_partner_id, SUM(points) FROM exchange_orders WHERE status = 'pending'
             GROUP BY exchange_partner_id",
        )?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<HashMap<_, _>, _>>()?;
    Ok(verification(sums, entries_checked, stored, vouchers, pending))
}

fn balances(conn: &Connection) -> Result<LedgerBalances, StoreError> {
    let mut out = LedgerBalances::default();
    let mut stmt = conn.prepare(
        "SELECT account, SUM(amount >> 32), SUM(amount & 4294967295), COUNT(*) FROM entries
         WHERE account NOT LIKE 'member:%' AND account NOT LIKE 'wallet:%'
         GROUP BY account ORDER BY account",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let account: String = r.get(0)?;
        let (high, low): (i64, i64) = (r.get(1)?, r.get(2)?);
        let sum = (i128::from(high) << 32) + i128::from(low);
        let balance = i64::try_from(sum).map_err(|_| StoreError::corrupt(format!("the sum of {account} is {sum}")))?;
        out.accounts.push((account, balance, r.get::<_, i64>(3)? as u64));
    }
    out.members = conn.query_row(
        "SELECT COALESCE(SUM(available), 0), COALESCE(SUM(pending), 0), COALESCE(SUM(reserved), 0) FROM members",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    out.wallets = conn.query_row(
        "SELECT COALESCE(SUM(available), 0), COALESCE(SUM(pending), 0) FROM wallets",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(out)
}

/// Runs `read` in one read transaction, so everything it reads (entries and the
/// holders' stored balances) is one consistent snapshot.
pub(super) fn in_snapshot<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN")?;
    let out = read(conn);
    conn.execute_batch("COMMIT")?;
    out
}

fn counts(conn: &Connection) -> Result<Counts, StoreError> {
    let count = |table: &str| -> Result<u64, StoreError> {
        Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0))? as u64)
    };
    Ok(Counts {
        members: count("members")?,
        partners: count("partners")?,
        transactions: count("transactions")?,
        entries: count("entries")?,
    })
}

impl SqliteStore {
    pub async fn settle_wallet(&self, wallet_id: &WalletId, now: Timestamp) -> Result<(i64, i64), StoreError> {
        let wallet_id = wallet_id.clone();
        self.write(move |c| settle_wallet(c, &wallet_id, now)).await
    }

    pub async fn settle_member(&self, member_id: MemberId, now: Timestamp) -> Result<(), StoreError> {
        self.write(move |c| settle_member(c, &member_id, now).map(|_| ())).await
    }

    pub async fn settle_due(&self, now: Timestamp, limit: u32) -> Result<SettleReport, StoreError> {
        let mut report = SettleReport::default();
        while report.members_settled < u64::from(limit) {
            let chunk = SETTLE_CHUNK.min(limit - report.members_settled as u32);
            let part = self
                .write(move |c| {
                    let mut part = SettleReport::default();
                    for id in due_members(c, now, chunk)? {
                        let (matured, expired) = match WalletId::is_kind(&id) {
                            true => settle_wallet(c, &WalletId::from_stored(id), now)?,
                            false => settle_member(c, &MemberId::from_stored(id), now)?,
                        };
                        part.members_settled += 1;
                        part.points_matured += matured;
                        part.points_expired += expired;
                    }
                    Ok(part)
                })
                .await?;
            report.members_settled += part.members_settled;
            report.points_matured += part.points_matured;
            report.points_expired += part.points_expired;
            if part.members_settled < u64::from(chunk) {
                break;
            }
        }
        Ok(report)
    }

    pub async fn verify_ledger(&self) -> Result<Verification, StoreError> {
        self.read(|c| in_snapshot(c, verify)).await
    }

    pub async fn counts(&self) -> Result<Counts, StoreError> {
        self.read(counts).await
    }

    pub async fn ledger_balances(&self) -> Result<LedgerBalances, StoreError> {
        self.read(|c| in_snapshot(c, balances)).await
    }
}
