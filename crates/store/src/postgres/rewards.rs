//! The rewards catalogue and redemptions on PostgreSQL. Every change takes its locks in
//! one order, member, then reward, then redemption, so racing redemptions, uses and
//! cancellations wait for each other and never deadlock: a reward's stock is read and
//! written under its row's lock (never oversold), a member's limit under hers.

use super::PgStore;
use super::idempotency::stored_answer;
use super::ledger::write_plan;
use super::members::{member_facts, member_state};
use crate::codec::to_json;
use crate::model::{
    MemberOffers, MemberRef, Posted, RedeemCmd, RedemptionQuery, RewardRow, VoucherUse, from_micros, to_micros,
};
use crate::rewards::{
    counted_sql, new_redemption, offer_facts, offers, receipt_json, redemption_status, reward_from_spec, skippable,
};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tally_domain::decide::{Release, decide_redeem, decide_release, decide_use, replay};
use tally_domain::ids::{Id, MemberId, PartnerId, RedemptionId, RewardId};
use tally_domain::plan::needs_lots;
use tally_domain::rewards::{Redemption, RedemptionStatus, Reward};

const REWARD_COLUMNS: &str = "id, spec, stock_left, created_at, updated_at";

fn reward_row(r: &PgRow) -> Result<RewardRow, StoreError> {
    Ok(RewardRow {
        reward: reward_from_spec(r.try_get(0)?, &r.try_get::<String, _>(1)?)?,
        stock_left: r.try_get(2)?,
        created_at: from_micros(r.try_get(3)?),
        updated_at: from_micros(r.try_get(4)?),
    })
}

/// With `lock`, the row is locked against other writers (`FOR NO KEY UPDATE`: a new
/// redemption's key-share lock on it, for its foreign key, does not wait).
async fn reward(conn: &mut PgConnection, id: &RewardId, lock: bool) -> Result<Option<RewardRow>, StoreError> {
    let lock = if lock { " FOR NO KEY UPDATE" } else { "" };
    sqlx::query(&format!("SELECT {REWARD_COLUMNS} FROM rewards WHERE id = $1{lock}"))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(reward_row)
        .transpose()
}

async fn rewards(conn: &mut PgConnection, partner: Option<&PartnerId>) -> Result<Vec<RewardRow>, StoreError> {
    sqlx::query(&format!(
        "SELECT {REWARD_COLUMNS} FROM rewards WHERE $1::text IS NULL OR partner_id = $1 ORDER BY id"
    ))
    .bind(partner.map(PartnerId::as_str))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(reward_row)
    .collect()
}

const REDEMPTION_COLUMNS: &str = "id, member_id, reward_id, kind, reward_name, partner_id, charity, points, status, created_at, expires_at, forfeit_on_expiry, taken, code_hint, closed_at, used_location_id, took_stock";

fn redemption_row(r: &PgRow) -> Result<Redemption, StoreError> {
    Ok(Redemption {
        id: RedemptionId::from_stored(r.try_get(0)?),
        member_id: MemberId::from_stored(r.try_get(1)?),
        reward_id: RewardId::from_stored(r.try_get(2)?),
        kind: serde_json::from_value(serde_json::Value::String(r.try_get(3)?))?,
        reward_name: r.try_get(4)?,
        partner_id: r.try_get::<Option<String>, _>(5)?.map(PartnerId::from_stored),
        charity: r.try_get(6)?,
        points: r.try_get(7)?,
        status: redemption_status(&r.try_get::<String, _>(8)?)?,
        created_at: from_micros(r.try_get(9)?),
        expires_at: r.try_get::<Option<i64>, _>(10)?.map(from_micros),
        forfeit_on_expiry: r.try_get(11)?,
        taken: serde_json::from_str(&r.try_get::<String, _>(12)?)?,
        took_stock: r.try_get(16)?,
        code_hint: r.try_get(13)?,
        closed_at: r.try_get::<Option<i64>, _>(14)?.map(from_micros),
        used_location_id: r.try_get(15)?,
    })
}

async fn redemption_where(
    conn: &mut PgConnection,
    column: &str,
    key: &str,
    lock: bool,
) -> Result<Option<Redemption>, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE {column} = $1{lock}"
    ))
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(redemption_row)
    .transpose()
}

/// Locks the redemption's member, then reads the redemption again under its own lock
/// (what it was before the member's lock was taken may have changed).
async fn locked_redemption(
    conn: &mut PgConnection,
    found: &Redemption,
    with_reward: bool,
) -> Result<(tally_domain::plan::MemberState, Redemption), StoreError> {
    let state = member_state(&mut *conn, &MemberRef::Id(found.member_id.clone()), true, |_| true).await?;
    if with_reward {
        reward(&mut *conn, &found.reward_id, true).await?;
    }
    let r = redemption_where(&mut *conn, "id", found.id.as_str(), true)
        .await?
        .ok_or(StoreError::NotFound(Entity::Redemption))?;
    Ok((state, r))
}

/// How many of the reward the member redeemed in its limit's current period that count.
async fn taken_since(conn: &mut PgConnection, cmd: &RedeemCmd, row: &RewardRow) -> Result<i64, StoreError> {
    let since = row.reward.limit_window(cmd.now).map(to_micros).unwrap_or(i64::MAX);
    Ok(sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM redemptions WHERE member_id = $1 AND reward_id = $2 AND created_at >= $3 AND {}",
        counted_sql()
    ))
    .bind(cmd.member_id.as_str())
    .bind(cmd.reward_id.as_str())
    .bind(since)
    .fetch_one(&mut *conn)
    .await?)
}

impl PgStore {
    pub async fn save_reward(
        &self,
        reward: Reward,
        stock: Option<Option<i64>>,
        scope: Option<PartnerId>,
        insert: bool,
        now: Timestamp,
    ) -> Result<RewardRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let spec = to_json(&reward.spec)?;
        let partner = reward.spec.partner_id.as_ref().map(PartnerId::as_str);
        let n = if insert {
            sqlx::query(
                "INSERT INTO rewards (id, partner_id, spec, stock_left, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(reward.id.as_str())
            .bind(partner)
            .bind(&spec)
            .bind(stock.flatten())
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query(
                "UPDATE rewards SET partner_id = $2, spec = $3,
                     stock_left = CASE WHEN $7 THEN $4 ELSE stock_left END, updated_at = $5
                 WHERE id = $1 AND ($6::text IS NULL OR partner_id = $6)",
            )
            .bind(reward.id.as_str())
            .bind(partner)
            .bind(&spec)
            .bind(stock.flatten())
            .bind(to_micros(now))
            .bind(scope.as_ref().map(PartnerId::as_str))
            .bind(stock.is_some())
            .execute(&mut *tx)
            .await?
        };
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Reward));
        }
        let row = self::reward(&mut tx, &reward.id, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::Reward))?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn reward(&self, id: RewardId) -> Result<Option<RewardRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        reward(&mut conn, &id, false).await
    }

    pub async fn rewards(&self, partner: Option<PartnerId>) -> Result<Vec<RewardRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        rewards(&mut conn, partner.as_ref()).await
    }

    pub async fn member_offers(
        &self,
        member_id: MemberId,
        household_tier: bool,
        now: Timestamp,
    ) -> Result<MemberOffers, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let facts = member_facts(&mut tx, &MemberRef::Id(member_id.clone()), None, household_tier)
            .await?
            .ok_or(StoreError::NotFound(Entity::Member))?;
        let available: i64 = sqlx::query_scalar("SELECT available FROM members WHERE id = $1")
            .bind(member_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let mine: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT reward_id, status, created_at FROM redemptions WHERE member_id = $1")
                .bind(member_id.as_str())
                .fetch_all(&mut *tx)
                .await?;
        let all = rewards(&mut tx, None).await?;
        tx.commit().await?;
        offers(facts, available, all, &mine, now)
    }

    /// Redeems: the member's row locked, her facts and count read, then the reward's row
    /// locked when it keeps stock, decided, and written in one transaction.
    pub async fn redeem(&self, cmd: RedeemCmd) -> Result<Posted, StoreError> {
        let mut tx = self.pool.begin().await?;
        let member = MemberRef::Id(cmd.member_id.clone());
        let state = member_state(&mut tx, &member, true, |_| true).await?;
        let stored = stored_answer(
            &mut tx,
            "SELECT request_hash, receipt FROM redemptions WHERE member_id = $1 AND request_id = $2",
            cmd.member_id.as_str(),
            &cmd.request_id,
        )
        .await?;
        if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
            return Ok(posted);
        }
        let found = reward(&mut tx, &cmd.reward_id, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::Reward))?;
        let facts = member_facts(&mut tx, &member, None, cmd.household_tier)
            .await?
            .ok_or(StoreError::NotFound(Entity::Member))?;
        let mut taken = taken_since(&mut tx, &cmd, &found).await?;
        // A reward that keeps stock is read again under its row's lock, as late as can
        // be: every redemption of it waits here for the one before to commit. One
        // without stock is not locked (her limit is kept by her own row's lock).
        let row = match found.stock_left {
            Some(_) => reward(&mut tx, &cmd.reward_id, true)
                .await?
                .ok_or(StoreError::NotFound(Entity::Reward))?,
            None => found.clone(),
        };
        if row.reward.spec != found.reward.spec {
            // Changed while she was read: count again in the period the reward says now.
            taken = taken_since(&mut tx, &cmd, &row).await?;
        }
        let offer = offer_facts(&facts, &state, &row, taken, &cmd.early_plans, cmd.now);
        let d = decide_redeem(&row.reward, &offer, &state, cmd.redemption_id.as_str())?;
        let voucher = d.status == RedemptionStatus::Issued;
        let redemption = new_redemption(&cmd, &row, &d);
        let receipt = receipt_json(&redemption, &d.plan)?;
        sqlx::query(
            "INSERT INTO redemptions (id, member_id, reward_id, partner_id, request_id, request_hash, kind, reward_name,
                 charity, points, status, code_hash, code_hint, taken, forfeit_on_expiry, created_at, expires_at,
                 closed_at, receipt, took_stock)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(redemption.id.as_str())
        .bind(redemption.member_id.as_str())
        .bind(redemption.reward_id.as_str())
        .bind(redemption.partner_id.as_ref().map(PartnerId::as_str))
        .bind(&cmd.request_id)
        .bind(&cmd.request_hash)
        .bind(redemption.kind.as_str())
        .bind(&redemption.reward_name)
        .bind(&redemption.charity)
        .bind(redemption.points)
        .bind(redemption.status.as_str())
        .bind(voucher.then_some(cmd.code_hash.as_str()))
        .bind(&redemption.code_hint)
        .bind(to_json(&redemption.taken)?)
        .bind(redemption.forfeit_on_expiry)
        .bind(to_micros(cmd.now))
        .bind(redemption.expires_at.map(to_micros))
        .bind(redemption.closed_at.map(to_micros))
        .bind(&receipt)
        .bind(redemption.took_stock)
        .execute(&mut *tx)
        .await?;
        write_plan(&mut tx, &cmd.member_id, &d.plan, cmd.now).await?;
        if let Some(left) = d.stock_left {
            sqlx::query("UPDATE rewards SET stock_left = $2 WHERE id = $1")
                .bind(cmd.reward_id.as_str())
                .bind(left)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Posted {
            receipt_json: receipt,
            replayed: false,
            follow_up: None,
            completed: Vec::new(),
        })
    }

    pub async fn use_voucher(&self, u: VoucherUse) -> Result<Redemption, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = redemption_where(&mut tx, "code_hash", &u.code_hash, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::Voucher))?;
        let now = u.now;
        let state = member_state(&mut tx, &MemberRef::Id(found.member_id.clone()), true, |due| {
            needs_lots(0, due, now)
        })
        .await?;
        // Again under its lock and by its code: a new code issued meanwhile retires this one.
        let mut r = redemption_where(&mut tx, "code_hash", &u.code_hash, true)
            .await?
            .ok_or(StoreError::NotFound(Entity::Voucher))?;
        let plan = decide_use(&r, &state, &u.partner_id, &u.partner_name, now)?;
        sqlx::query("UPDATE redemptions SET status = 'used', closed_at = $2, used_location_id = $3 WHERE id = $1")
            .bind(r.id.as_str())
            .bind(to_micros(now))
            .bind(&u.location_id)
            .execute(&mut *tx)
            .await?;
        write_plan(&mut tx, &r.member_id, &plan, now).await?;
        tx.commit().await?;
        r.status = RedemptionStatus::Used;
        r.closed_at = Some(now);
        r.used_location_id = u.location_id;
        Ok(r)
    }

    pub async fn voucher(&self, code_hash: String) -> Result<Option<Redemption>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        redemption_where(&mut conn, "code_hash", &code_hash, false).await
    }

    pub async fn redemption(&self, id: RedemptionId) -> Result<Option<Redemption>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        redemption_where(&mut conn, "id", id.as_str(), false).await
    }

    /// Gives a voucher back in its own transaction; `None` when an expiry found nothing
    /// to do.
    async fn release(
        &self,
        id: &RedemptionId,
        scope: Option<&PartnerId>,
        why: Release,
        now: Timestamp,
    ) -> Result<Option<Redemption>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = redemption_where(&mut tx, "id", id.as_str(), false)
            .await?
            .filter(|r| scope.is_none_or(|p| r.partner_id.as_ref() == Some(p)))
            .ok_or(StoreError::NotFound(Entity::Redemption))?;
        let (state, mut r) = locked_redemption(&mut tx, &found, true).await?;
        let Some(d) = decide_release(&r, &state, why, now)? else {
            return Ok(None);
        };
        sqlx::query("UPDATE redemptions SET status = $2, closed_at = $3 WHERE id = $1")
            .bind(r.id.as_str())
            .bind(d.status.as_str())
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        write_plan(&mut tx, &r.member_id, &d.plan, now).await?;
        if r.took_stock {
            sqlx::query("UPDATE rewards SET stock_left = stock_left + 1 WHERE id = $1 AND stock_left IS NOT NULL")
                .bind(r.reward_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        r.status = d.status;
        r.closed_at = Some(now);
        Ok(Some(r))
    }

    pub async fn cancel_redemption(
        &self,
        id: RedemptionId,
        scope: Option<PartnerId>,
        now: Timestamp,
    ) -> Result<Redemption, StoreError> {
        self.release(&id, scope.as_ref(), Release::Cancel, now)
            .await?
            .ok_or(StoreError::NotFound(Entity::Redemption))
    }

    pub async fn expire_vouchers(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM redemptions WHERE status = 'issued' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut done = 0;
        for id in ids {
            // Each voucher in its own transaction: one that cannot be given back (a bug,
            // a corrupt row) is logged and left, and the rest of the run goes on.
            match self
                .release(&RedemptionId::from_stored(id.clone()), None, Release::Expire, now)
                .await
            {
                Ok(r) => done += u64::from(r.is_some()),
                Err(e) if skippable(&e) => {
                    tracing::error!(redemption = %id, error = %e, "a voucher could not be given back at its expiry; left for the next run");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    pub async fn redemptions(&self, q: RedemptionQuery) -> Result<Vec<Redemption>, StoreError> {
        sqlx::query(&format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions
             WHERE ($1::text IS NULL OR member_id = $1) AND ($2::text IS NULL OR partner_id = $2)
               AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(q.member_id.as_ref().map(MemberId::as_str))
        .bind(q.partner_id.as_ref().map(PartnerId::as_str))
        .bind(q.status.map(RedemptionStatus::as_str))
        .bind(&q.before)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(redemption_row)
        .collect()
    }

    pub async fn reissue_code(
        &self,
        id: RedemptionId,
        hash: String,
        hint: String,
        now: Timestamp,
    ) -> Result<Redemption, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut r = redemption_where(&mut tx, "id", id.as_str(), true)
            .await?
            .ok_or(StoreError::NotFound(Entity::Redemption))?;
        tally_domain::decide::may_reissue(&r, now)?;
        sqlx::query("UPDATE redemptions SET code_hash = $2, code_hint = $3 WHERE id = $1")
            .bind(id.as_str())
            .bind(&hash)
            .bind(&hint)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        r.code_hint = Some(hint);
        Ok(r)
    }
}
