//! Tiers on PostgreSQL: a member's standing on the member's row (written with the sale,
//! in the same update as the balances), the history of changes, the scheduled review,
//! and a level set by hand.

use super::PgStore;
use super::members::tier_from_row;
use super::wallets::household_of;
use crate::codec::TIER_COLUMNS;
use crate::model::{Holder, ManualTier, MemberTierRow, TierChangeRow, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::{PgConnection, Row};
use std::sync::Arc;
use tally_domain::ids::{Id, MemberId, WalletId};
use tally_domain::tiers::{TierChange, TierLadder, TierScope, TierState};

/// The standing of a member, or of a household (kept on its wallet's row); with
/// `lock`, the row is locked until the transaction ends.
pub(super) async fn read_tier(
    conn: &mut PgConnection,
    holder: Holder<'_>,
    lock: bool,
) -> Result<TierState, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = sqlx::query(&format!(
        "SELECT {TIER_COLUMNS} FROM {} WHERE id = $1{lock}",
        holder.table()
    ))
    .bind(holder.id())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound(Entity::Member))?;
    tier_from_row(&row, 0)
}

/// The tier columns a member update writes, one array each, for members `0..n`.
#[derive(Default)]
pub(super) struct TierColumns {
    pub effective: Vec<Option<String>>,
    pub earned: Vec<Option<String>>,
    pub qualifying: Vec<i64>,
    pub period_start: Vec<Option<i64>>,
    pub previous: Vec<i64>,
    pub pending: Vec<bool>,
    pub reached: Vec<Option<i64>>,
    pub manual_until: Vec<Option<i64>>,
    pub review_at: Vec<Option<i64>>,
}

impl TierColumns {
    pub fn push(&mut self, s: &TierState, ladder: &TierLadder) {
        self.effective.push(s.effective.clone());
        self.earned.push(s.earned.clone());
        self.qualifying.push(s.qualifying);
        self.period_start.push(s.period_start.map(to_micros));
        self.previous.push(s.previous_qualifying);
        self.pending.push(s.review_pending);
        self.reached.push(s.reached_at.map(to_micros));
        self.manual_until.push(s.manual_until.map(to_micros));
        self.review_at.push(s.next_review_at(ladder).map(to_micros));
    }
}

/// The household whose standing counts for a member under a ladder per household.
pub(super) async fn tier_household(
    conn: &mut PgConnection,
    ladder: &TierLadder,
    member_id: &MemberId,
) -> Result<Option<WalletId>, StoreError> {
    match ladder.scope {
        TierScope::Household => household_of(conn, member_id).await,
        TierScope::Member => Ok(None),
    }
}

/// Under a ladder per household, the member's household and its standing (with `lock`,
/// its row locked until the transaction ends), if they are in one.
pub(super) async fn household_standing(
    conn: &mut PgConnection,
    ladder: &TierLadder,
    member_id: &MemberId,
    lock: bool,
) -> Result<Option<(WalletId, TierState)>, StoreError> {
    let Some(w) = tier_household(conn, ladder, member_id).await? else {
        return Ok(None);
    };
    let standing = read_tier(conn, Holder::Wallet { id: &w, actor: None }, lock).await?;
    Ok(Some((w, standing)))
}

/// Writes the standing of a member or a household and its changes (`transaction_id`:
/// the sale that caused them, if one did).
pub(super) async fn write_tier(
    conn: &mut PgConnection,
    holder: Holder<'_>,
    state: &TierState,
    ladder: &TierLadder,
    changes: &[TierChange],
    transaction_id: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE {} SET tier = $2, tier_earned = $3, tier_qualifying = $4, tier_period_start = $5,
             tier_previous_qualifying = $6, tier_review_pending = $7, tier_reached_at = $8, tier_manual_until = $9,
             tier_review_at = $10
         WHERE id = $1",
        holder.table()
    ))
    .bind(holder.id())
    .bind(&state.effective)
    .bind(&state.earned)
    .bind(state.qualifying)
    .bind(state.period_start.map(to_micros))
    .bind(state.previous_qualifying)
    .bind(state.review_pending)
    .bind(state.reached_at.map(to_micros))
    .bind(state.manual_until.map(to_micros))
    .bind(state.next_review_at(ladder).map(to_micros))
    .execute(&mut *conn)
    .await?;
    let members = vec![holder.id().to_string(); changes.len()];
    let transactions = vec![transaction_id.map(str::to_string); changes.len()];
    write_changes(conn, &members, changes, &transactions).await
}

/// Appends tier changes to the history: `changes[k]` of member `members[k]`, caused by
/// sale `transactions[k]` if any.
pub(super) async fn write_changes(
    conn: &mut PgConnection,
    members: &[String],
    changes: &[TierChange],
    transactions: &[Option<String>],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO tier_changes (member_id, at, from_tier, to_tier, kind, reason, transaction_id)
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])",
    )
    .bind(members)
    .bind(changes.iter().map(|c| to_micros(c.at)).collect::<Vec<i64>>())
    .bind(changes.iter().map(|c| c.from.clone()).collect::<Vec<Option<String>>>())
    .bind(changes.iter().map(|c| c.to.clone()).collect::<Vec<Option<String>>>())
    .bind(changes.iter().map(|c| c.kind.as_str()).collect::<Vec<&str>>())
    .bind(changes.iter().map(|c| c.reason.as_str()).collect::<Vec<&str>>())
    .bind(transactions)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn history(conn: &mut PgConnection, holder: &str) -> Result<Vec<TierChangeRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT at, from_tier, to_tier, kind, reason, transaction_id FROM tier_changes
         WHERE member_id = $1 ORDER BY id DESC LIMIT 100",
    )
    .bind(holder)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TierChangeRow {
                at: from_micros(r.try_get(0)?),
                from: r.try_get(1)?,
                to: r.try_get(2)?,
                kind: r.try_get(3)?,
                reason: r.try_get(4)?,
                transaction_id: r.try_get(5)?,
            })
        })
        .collect()
}

impl PgStore {
    /// After the ladder changed: every member with a standing is due for the scheduled
    /// review, which measures them against the new ladder.
    pub async fn mark_tier_reviews(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut marked = 0;
        for table in ["members", "wallets"] {
            marked += sqlx::query(&format!(
                "UPDATE {table} SET tier_review_at = $1 WHERE tier IS NOT NULL OR tier_period_start IS NOT NULL"
            ))
            .bind(to_micros(now))
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(marked)
    }

    /// Brings up to date every member whose standing changes with time by `now` (at
    /// most `limit`), each in a transaction of its own; answers how many.
    pub async fn review_tiers(&self, ladder: Arc<TierLadder>, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM (SELECT id, tier_review_at FROM members WHERE tier_review_at <= $1
                                 UNION ALL SELECT id, tier_review_at FROM wallets WHERE tier_review_at <= $1) due
                 ORDER BY tier_review_at LIMIT $2",
        )
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        for id in &ids {
            let (member, wallet) = (MemberId::from_stored(id.clone()), WalletId::from_stored(id.clone()));
            let holder = match WalletId::is_kind(id) {
                true => Holder::Wallet {
                    id: &wallet,
                    actor: None,
                },
                false => Holder::Member(&member),
            };
            let mut tx = self.pool.begin().await?;
            let mut state = read_tier(&mut tx, holder, true).await?;
            let changes = state.roll(&ladder, now);
            write_tier(&mut tx, holder, &state, &ladder, &changes, None).await?;
            tx.commit().await?;
        }
        Ok(ids.len() as u64)
    }

    /// A member's standing (or, under a ladder per household, their household's) with
    /// its history.
    pub async fn member_tier(&self, member_id: MemberId, ladder: Arc<TierLadder>) -> Result<MemberTierRow, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_tier(&mut conn, Holder::Member(&member_id), false).await?;
        let household = tier_household(&mut conn, &ladder, &member_id).await?;
        let holder = Holder::standing_of(&member_id, household.as_ref());
        Ok(MemberTierRow {
            state: read_tier(&mut conn, holder, false).await?,
            history: history(&mut conn, holder.id()).await?,
            household,
        })
    }

    pub async fn set_member_tier(
        &self,
        member_id: MemberId,
        ladder: Arc<TierLadder>,
        manual: ManualTier,
        now: Timestamp,
    ) -> Result<MemberTierRow, StoreError> {
        // Under a ladder per household, a level by hand is the household's (its row
        // locked after the member's, as every writer does).
        let mut tx = self.pool.begin().await?;
        read_tier(&mut tx, Holder::Member(&member_id), true).await?;
        let household = tier_household(&mut tx, &ladder, &member_id).await?;
        let holder = Holder::standing_of(&member_id, household.as_ref());
        let mut state = read_tier(&mut tx, holder, true).await?;
        let changes = state.set_manual(&ladder, manual.code.as_deref(), manual.until, &manual.reason, now)?;
        write_tier(&mut tx, holder, &state, &ladder, &changes, None).await?;
        let history = history(&mut tx, holder.id()).await?;
        tx.commit().await?;
        Ok(MemberTierRow {
            state,
            history,
            household,
        })
    }
}
