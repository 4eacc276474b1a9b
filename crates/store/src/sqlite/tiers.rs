//! Tiers on SQLite: a member's standing on the member's row (written with the sale, in
//! the same row as the balances), the history of changes, the scheduled review, and a
//! level set by hand.

use super::SqliteStore;
use super::members::tier_from_row;
use super::wallets::household_of;
use crate::codec::TIER_COLUMNS;
use crate::model::{Holder, ManualTier, MemberTierRow, TierChangeRow, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use tally_domain::DomainError;
use tally_domain::ids::{Id, MemberId, WalletId};
use tally_domain::tiers::{TierChange, TierLadder, TierScope, TierState};

/// The standing of a member, or of a household (kept on its wallet's row).
pub(super) fn read_tier(conn: &Connection, holder: Holder<'_>) -> Result<TierState, StoreError> {
    conn.prepare_cached(&format!("SELECT {TIER_COLUMNS} FROM {} WHERE id = ?1", holder.table()))?
        .query_row([holder.id()], |r| tier_from_row(r, 0))
        .optional()?
        .ok_or(StoreError::NotFound(Entity::Member))
}

/// Writes the standing of a member or a household and its changes (`transaction_id`:
/// the sale that caused them, if one did).
pub(super) fn write_tier(
    conn: &Connection,
    holder: Holder<'_>,
    state: &TierState,
    ladder: &TierLadder,
    changes: &[TierChange],
    transaction_id: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "UPDATE {} SET tier = ?2, tier_earned = ?3, tier_qualifying = ?4, tier_period_start = ?5,
             tier_previous_qualifying = ?6, tier_review_pending = ?7, tier_reached_at = ?8, tier_manual_until = ?9,
             tier_review_at = ?10
         WHERE id = ?1",
        holder.table()
    ))?
    .execute(params![
        holder.id(),
        state.effective,
        state.earned,
        state.qualifying,
        state.period_start.map(to_micros),
        state.previous_qualifying,
        i64::from(state.review_pending),
        state.reached_at.map(to_micros),
        state.manual_until.map(to_micros),
        state.next_review_at(ladder).map(to_micros),
    ])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO tier_changes (member_id, at, from_tier, to_tier, kind, reason, transaction_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for c in changes {
        insert.execute(params![
            holder.id(),
            to_micros(c.at),
            c.from,
            c.to,
            c.kind.as_str(),
            c.reason,
            transaction_id
        ])?;
    }
    Ok(())
}

/// Brings up to date every member whose standing changes with time by `now` (at most
/// `limit`); answers how many.
fn review_due(conn: &Connection, ladder: &TierLadder, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM (SELECT id, tier_review_at FROM members WHERE tier_review_at <= ?1
                             UNION ALL SELECT id, tier_review_at FROM wallets WHERE tier_review_at <= ?1)
             ORDER BY tier_review_at LIMIT ?2",
        )?
        .query_map(params![to_micros(now), limit], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let reviewed = ids.len() as u64;
    for id in ids {
        let (member, wallet) = (MemberId::from_stored(id.clone()), WalletId::from_stored(id));
        let holder = match WalletId::is_kind(wallet.as_str()) {
            true => Holder::Wallet {
                id: &wallet,
                actor: None,
            },
            false => Holder::Member(&member),
        };
        let mut state = read_tier(conn, holder)?;
        let changes = state.roll(ladder, now);
        write_tier(conn, holder, &state, ladder, &changes, None)?;
    }
    Ok(reviewed)
}

fn history(conn: &Connection, holder: &str) -> Result<Vec<TierChangeRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, from_tier, to_tier, kind, reason, transaction_id FROM tier_changes
         WHERE member_id = ?1 ORDER BY id DESC LIMIT 100",
    )?;
    let rows = stmt.query_map([holder], |r| {
        Ok(TierChangeRow {
            at: from_micros(r.get(0)?),
            from: r.get(1)?,
            to: r.get(2)?,
            kind: r.get(3)?,
            reason: r.get(4)?,
            transaction_id: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The household whose standing counts for a member under a ladder per household.
pub(super) fn tier_household(
    conn: &Connection,
    ladder: &TierLadder,
    member_id: &MemberId,
) -> Result<Option<WalletId>, StoreError> {
    match ladder.scope {
        TierScope::Household => household_of(conn, member_id),
        TierScope::Member => Ok(None),
    }
}

/// Under a ladder per household, the member's household and its standing, if they are
/// in one.
pub(super) fn household_standing(
    conn: &Connection,
    ladder: &TierLadder,
    member_id: &MemberId,
) -> Result<Option<(WalletId, TierState)>, StoreError> {
    let Some(w) = tier_household(conn, ladder, member_id)? else {
        return Ok(None);
    };
    let standing = read_tier(conn, Holder::Wallet { id: &w, actor: None })?;
    Ok(Some((w, standing)))
}

/// A member's standing (or, under a ladder per household, their household's) with its
/// history.
fn member_tier(conn: &Connection, ladder: &TierLadder, member_id: &MemberId) -> Result<MemberTierRow, StoreError> {
    read_tier(conn, Holder::Member(member_id))?;
    let household = tier_household(conn, ladder, member_id)?;
    let holder = Holder::standing_of(member_id, household.as_ref());
    Ok(MemberTierRow {
        state: read_tier(conn, holder)?,
        history: history(conn, holder.id())?,
        household,
    })
}

impl SqliteStore {
    /// After the ladder changed: every member with a standing is due for the scheduled
    /// review, which measures them against the new ladder.
    pub async fn mark_tier_reviews(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write(move |c| {
            let mut marked = 0;
            for table in ["members", "wallets"] {
                marked += c
                    .prepare_cached(&format!(
                        "UPDATE {table} SET tier_review_at = ?1 WHERE tier IS NOT NULL OR tier_period_start IS NOT NULL"
                    ))?
                    .execute([to_micros(now)])? as u64;
            }
            Ok(marked)
        })
        .await
    }

    pub async fn review_tiers(&self, ladder: Arc<TierLadder>, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.write(move |c| review_due(c, &ladder, now, limit)).await
    }

    pub async fn member_tier(&self, member_id: MemberId, ladder: Arc<TierLadder>) -> Result<MemberTierRow, StoreError> {
        self.read(move |c| member_tier(c, &ladder, &member_id)).await
    }

    pub async fn set_member_tier(
        &self,
        member_id: MemberId,
        ladder: Arc<TierLadder>,
        manual: ManualTier,
        now: Timestamp,
    ) -> Result<MemberTierRow, StoreError> {
        self.write(move |c| {
            // Under a ladder per household, a level by hand is the household's.
            read_tier(c, Holder::Member(&member_id))?;
            let household = tier_household(c, &ladder, &member_id)?;
            let holder = Holder::standing_of(&member_id, household.as_ref());
            let mut state = read_tier(c, holder)?;
            let changes: Vec<TierChange> = state
                .set_manual(&ladder, manual.code.as_deref(), manual.until, &manual.reason, now)
                .map_err(|e: DomainError| StoreError::from(e))?;
            write_tier(c, holder, &state, &ladder, &changes, None)?;
            member_tier(c, &ladder, &member_id)
        })
        .await
    }
}
