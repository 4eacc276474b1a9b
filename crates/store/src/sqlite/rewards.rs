//! The rewards catalogue and redemptions on SQLite: rewards with their stock, a
//! member's catalogue, redeeming (points set aside and a voucher issued, or a
//! donation), a voucher used at its partner, cancelled, or expired by the scheduled
//! run. Every change runs in the single writer, so a reward's stock and a member's
//! limit are read and written with nothing in between.

use super::SqliteStore;
use super::idempotency::stored_answer;
use super::ledger::write_plan;
use super::members::{load_state, member_facts};
use crate::codec::to_json;
use crate::model::{
    MemberOffers, MemberRef, Posted, RedeemCmd, RedemptionQuery, RewardRow, VoucherUse, from_micros, to_micros,
};
use crate::rewards::{
    counted_sql, new_redemption, offer_facts, offers, receipt_json, redemption_status, reward_from_spec,
};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_domain::decide::{Release, decide_redeem, decide_release, decide_use, replay};
use tally_domain::ids::{Id, MemberId, PartnerId, RedemptionId, RewardId};
use tally_domain::plan::needs_lots;
use tally_domain::rewards::{Redemption, RedemptionStatus, Reward};

const REWARD_COLUMNS: &str = "id, spec, stock_left, created_at, updated_at";

fn reward_row(r: &Row<'_>) -> rusqlite::Result<(String, String, Option<i64>, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_reward_row(
    (id, spec, stock, created, updated): (String, String, Option<i64>, i64, i64),
) -> Result<RewardRow, StoreError> {
    Ok(RewardRow {
        reward: reward_from_spec(id, &spec)?,
        stock_left: stock,
        created_at: from_micros(created),
        updated_at: from_micros(updated),
    })
}

fn reward(conn: &Connection, id: &RewardId) -> Result<Option<RewardRow>, StoreError> {
    conn.prepare_cached(&format!("SELECT {REWARD_COLUMNS} FROM rewards WHERE id = ?1"))?
        .query_row([id.as_str()], reward_row)
        .optional()?
        .map(to_reward_row)
        .transpose()
}

fn rewards(conn: &Connection, partner: Option<&PartnerId>) -> Result<Vec<RewardRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {REWARD_COLUMNS} FROM rewards WHERE ?1 IS NULL OR partner_id = ?1 ORDER BY id"
        ))?
        .query_map([partner.map(PartnerId::as_str)], reward_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(to_reward_row).collect()
}

/// Saves a new reward, or replaces one (`scope`: only a reward this partner fulfils).
fn save_reward(
    conn: &Connection,
    reward: &Reward,
    stock: Option<Option<i64>>,
    scope: Option<&PartnerId>,
    insert: bool,
    now: Timestamp,
) -> Result<RewardRow, StoreError> {
    let spec = to_json(&reward.spec)?;
    let partner = reward.spec.partner_id.as_ref().map(PartnerId::as_str);
    if insert {
        conn.prepare_cached(
            "INSERT INTO rewards (id, partner_id, spec, stock_left, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?
        .execute(params![reward.id.as_str(), partner, spec, stock.flatten(), to_micros(now)])?;
    } else {
        let n = conn
            .prepare_cached(
                "UPDATE rewards SET partner_id = ?2, spec = ?3,
                     stock_left = CASE WHEN ?7 THEN ?4 ELSE stock_left END, updated_at = ?5
                 WHERE id = ?1 AND (?6 IS NULL OR partner_id = ?6)",
            )?
            .execute(params![
                reward.id.as_str(),
                partner,
                spec,
                stock.flatten(),
                to_micros(now),
                scope.map(PartnerId::as_str),
                stock.is_some()
            ])?;
        if n == 0 {
            return Err(StoreError::NotFound(Entity::Reward));
        }
    }
    self::reward(conn, &reward.id)?.ok_or(StoreError::NotFound(Entity::Reward))
}

const REDEMPTION_COLUMNS: &str = "id, member_id, reward_id, kind, reward_name, partner_id, charity, points, status, created_at, expires_at, forfeit_on_expiry, taken, code_hint, closed_at, used_location_id, took_stock";

/// A redemption from a row of `REDEMPTION_COLUMNS`.
fn redemption_row(r: &Row<'_>) -> Result<Redemption, StoreError> {
    Ok(Redemption {
        id: RedemptionId::from_stored(r.get(0)?),
        member_id: MemberId::from_stored(r.get(1)?),
        reward_id: RewardId::from_stored(r.get(2)?),
        kind: serde_json::from_value(serde_json::Value::String(r.get(3)?))?,
        reward_name: r.get(4)?,
        partner_id: r.get::<_, Option<String>>(5)?.map(PartnerId::from_stored),
        charity: r.get(6)?,
        points: r.get(7)?,
        status: redemption_status(&r.get::<_, String>(8)?)?,
        created_at: from_micros(r.get(9)?),
        expires_at: r.get::<_, Option<i64>>(10)?.map(from_micros),
        forfeit_on_expiry: r.get(11)?,
        taken: serde_json::from_str(&r.get::<_, String>(12)?)?,
        took_stock: r.get(16)?,
        code_hint: r.get(13)?,
        closed_at: r.get::<_, Option<i64>>(14)?.map(from_micros),
        used_location_id: r.get(15)?,
    })
}

fn redemption_where(conn: &Connection, clause: &str, key: &str) -> Result<Option<Redemption>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE {clause} = ?1"
    ))?
    .query([key])?
    .next()?
    .map(redemption_row)
    .transpose()
}

fn member_offers(
    conn: &Connection,
    member_id: &MemberId,
    household_tier: bool,
    now: Timestamp,
) -> Result<MemberOffers, StoreError> {
    // One snapshot: her points, her redemptions and the stock as of one moment.
    let tx = conn.unchecked_transaction()?;
    let facts = member_facts(&tx, &MemberRef::Id(member_id.clone()), None, household_tier)?
        .ok_or(StoreError::NotFound(Entity::Member))?;
    let available: i64 = tx
        .prepare_cached("SELECT available FROM members WHERE id = ?1")?
        .query_row([member_id.as_str()], |r| r.get(0))?;
    let mine: Vec<(String, String, i64)> = tx
        .prepare_cached("SELECT reward_id, status, created_at FROM redemptions WHERE member_id = ?1")?
        .query_map([member_id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let all = rewards(&tx, None)?;
    tx.finish()?;
    offers(facts, available, all, &mine, now)
}

fn redeem(conn: &Connection, cmd: &RedeemCmd) -> Result<Posted, StoreError> {
    let stored = stored_answer(
        conn,
        "SELECT request_hash, receipt FROM redemptions WHERE member_id = ?1 AND request_id = ?2",
        cmd.member_id.as_str(),
        &cmd.request_id,
    )?;
    if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
        return Ok(posted);
    }
    let row = reward(conn, &cmd.reward_id)?.ok_or(StoreError::NotFound(Entity::Reward))?;
    let facts = member_facts(conn, &MemberRef::Id(cmd.member_id.clone()), None, cmd.household_tier)?
        .ok_or(StoreError::NotFound(Entity::Member))?;
    let state = load_state(conn, &cmd.member_id, |_| true)?;
    let since = row.reward.limit_window(cmd.now).map(to_micros).unwrap_or(i64::MAX);
    let taken: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM redemptions WHERE member_id = ?1 AND reward_id = ?2 AND created_at >= ?3 AND {}",
            counted_sql()
        ))?
        .query_row(params![cmd.member_id.as_str(), cmd.reward_id.as_str(), since], |r| {
            r.get(0)
        })?;
    let offer = offer_facts(&facts, &state, &row, taken, &cmd.early_plans, cmd.now);
    let d = decide_redeem(&row.reward, &offer, &state, cmd.redemption_id.as_str())?;
    let voucher = d.status == RedemptionStatus::Issued;
    let redemption = new_redemption(cmd, &row, &d);
    let receipt = receipt_json(&redemption, &d.plan)?;
    conn.prepare_cached(
        "INSERT INTO redemptions (id, member_id, reward_id, partner_id, request_id, request_hash, kind, reward_name,
             charity, points, status, code_hash, code_hint, taken, forfeit_on_expiry, created_at, expires_at,
             closed_at, receipt, took_stock)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    )?
    .execute(params![
        redemption.id.as_str(),
        redemption.member_id.as_str(),
        redemption.reward_id.as_str(),
        redemption.partner_id.as_ref().map(PartnerId::as_str),
        cmd.request_id,
        cmd.request_hash,
        redemption.kind.as_str(),
        redemption.reward_name,
        redemption.charity,
        redemption.points,
        redemption.status.as_str(),
        voucher.then_some(cmd.code_hash.as_str()),
        redemption.code_hint,
        to_json(&redemption.taken)?,
        redemption.forfeit_on_expiry,
        to_micros(cmd.now),
        redemption.expires_at.map(to_micros),
        redemption.closed_at.map(to_micros),
        receipt,
        redemption.took_stock
    ])?;
    write_plan(conn, &cmd.member_id, &d.plan, cmd.now)?;
    if let Some(left) = d.stock_left {
        conn.prepare_cached("UPDATE rewards SET stock_left = ?2 WHERE id = ?1")?
            .execute(params![cmd.reward_id.as_str(), left])?;
    }
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
        follow_up: None,
        completed: Vec::new(),
    })
}

fn use_voucher(conn: &Connection, u: &VoucherUse) -> Result<Redemption, StoreError> {
    let mut r = redemption_where(conn, "code_hash", &u.code_hash)?.ok_or(StoreError::NotFound(Entity::Voucher))?;
    let state = load_state(conn, &r.member_id, |due| needs_lots(0, due, u.now))?;
    let plan = decide_use(&r, &state, &u.partner_id, &u.partner_name, u.now)?;
    conn.prepare_cached("UPDATE redemptions SET status = 'used', closed_at = ?2, used_location_id = ?3 WHERE id = ?1")?
        .execute(params![r.id.as_str(), to_micros(u.now), u.location_id])?;
    write_plan(conn, &r.member_id, &plan, u.now)?;
    r.status = RedemptionStatus::Used;
    r.closed_at = Some(u.now);
    r.used_location_id = u.location_id.clone();
    Ok(r)
}

/// Gives a voucher back (`Cancel`, or `Expire` when due); answers the redemption as it
/// now stands, or `None` when an expiry found nothing to do.
fn release(
    conn: &Connection,
    id: &RedemptionId,
    scope: Option<&PartnerId>,
    why: Release,
    now: Timestamp,
) -> Result<Option<Redemption>, StoreError> {
    let mut r = redemption_where(conn, "id", id.as_str())?
        .filter(|r| scope.is_none_or(|p| r.partner_id.as_ref() == Some(p)))
        .ok_or(StoreError::NotFound(Entity::Redemption))?;
    let state = load_state(conn, &r.member_id, |_| true)?;
    let Some(d) = decide_release(&r, &state, why, now)? else {
        return Ok(None);
    };
    conn.prepare_cached("UPDATE redemptions SET status = ?2, closed_at = ?3 WHERE id = ?1")?
        .execute(params![r.id.as_str(), d.status.as_str(), to_micros(now)])?;
    write_plan(conn, &r.member_id, &d.plan, now)?;
    if r.took_stock {
        conn.prepare_cached("UPDATE rewards SET stock_left = stock_left + 1 WHERE id = ?1 AND stock_left IS NOT NULL")?
            .execute([r.reward_id.as_str()])?;
    }
    r.status = d.status;
    r.closed_at = Some(now);
    Ok(Some(r))
}

fn expire_due(conn: &Connection, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM redemptions WHERE status = 'issued' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
        )?
        .query_map(params![to_micros(now), limit], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut done = 0;
    for id in ids {
        // Each voucher on its own: one that cannot be given back (a bug, a corrupt row)
        // is logged and left, and the rest of the run goes on.
        conn.execute_batch("SAVEPOINT voucher")?;
        match release(conn, &RedemptionId::from_stored(id.clone()), None, Release::Expire, now) {
            Ok(r) => {
                conn.execute_batch("RELEASE voucher")?;
                done += u64::from(r.is_some());
            }
            Err(e) if crate::rewards::skippable(&e) => {
                conn.execute_batch("ROLLBACK TO voucher; RELEASE voucher")?;
                tracing::error!(redemption = %id, error = %e, "a voucher could not be given back at its expiry; left for the next run");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn list(conn: &Connection, q: &RedemptionQuery) -> Result<Vec<Redemption>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions
         WHERE (?1 IS NULL OR member_id = ?1) AND (?2 IS NULL OR partner_id = ?2) AND (?3 IS NULL OR status = ?3)
           AND (?4 IS NULL OR id < ?4)
         ORDER BY id DESC LIMIT ?5"
    ))?;
    let mut rows = stmt.query(params![
        q.member_id.as_ref().map(MemberId::as_str),
        q.partner_id.as_ref().map(PartnerId::as_str),
        q.status.map(RedemptionStatus::as_str),
        q.before,
        q.limit
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(redemption_row(r)?);
    }
    Ok(out)
}

fn reissue(
    conn: &Connection,
    id: &RedemptionId,
    hash: &str,
    hint: &str,
    now: Timestamp,
) -> Result<Redemption, StoreError> {
    let mut r = redemption_where(conn, "id", id.as_str())?.ok_or(StoreError::NotFound(Entity::Redemption))?;
    tally_domain::decide::may_reissue(&r, now)?;
    conn.prepare_cached("UPDATE redemptions SET code_hash = ?2, code_hint = ?3 WHERE id = ?1")?
        .execute(params![id.as_str(), hash, hint])?;
    r.code_hint = Some(hint.to_string());
    Ok(r)
}

impl SqliteStore {
    pub async fn save_reward(
        &self,
        reward: Reward,
        stock: Option<Option<i64>>,
        scope: Option<PartnerId>,
        insert: bool,
        now: Timestamp,
    ) -> Result<RewardRow, StoreError> {
        self.write(move |c| save_reward(c, &reward, stock, scope.as_ref(), insert, now))
            .await
    }

    pub async fn reward(&self, id: RewardId) -> Result<Option<RewardRow>, StoreError> {
        self.read(move |c| reward(c, &id)).await
    }

    pub async fn rewards(&self, partner: Option<PartnerId>) -> Result<Vec<RewardRow>, StoreError> {
        self.read(move |c| rewards(c, partner.as_ref())).await
    }

    pub async fn member_offers(
        &self,
        member_id: MemberId,
        household_tier: bool,
        now: Timestamp,
    ) -> Result<MemberOffers, StoreError> {
        self.read(move |c| member_offers(c, &member_id, household_tier, now))
            .await
    }

    pub async fn redeem(&self, cmd: RedeemCmd) -> Result<Posted, StoreError> {
        self.write(move |c| redeem(c, &cmd)).await
    }

    pub async fn use_voucher(&self, u: VoucherUse) -> Result<Redemption, StoreError> {
        self.write(move |c| use_voucher(c, &u)).await
    }

    pub async fn voucher(&self, code_hash: String) -> Result<Option<Redemption>, StoreError> {
        self.read(move |c| redemption_where(c, "code_hash", &code_hash)).await
    }

    pub async fn redemption(&self, id: RedemptionId) -> Result<Option<Redemption>, StoreError> {
        self.read(move |c| redemption_where(c, "id", id.as_str())).await
    }

    pub async fn cancel_redemption(
        &self,
        id: RedemptionId,
        scope: Option<PartnerId>,
        now: Timestamp,
    ) -> Result<Redemption, StoreError> {
        self.write(move |c| {
            release(c, &id, scope.as_ref(), Release::Cancel, now)?.ok_or(StoreError::NotFound(Entity::Redemption))
        })
        .await
    }

    pub async fn expire_vouchers(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.write(move |c| expire_due(c, now, limit)).await
    }

    pub async fn redemptions(&self, q: RedemptionQuery) -> Result<Vec<Redemption>, StoreError> {
        self.read(move |c| list(c, &q)).await
    }

    pub async fn reissue_code(
        &self,
        id: RedemptionId,
        hash: String,
        hint: String,
        now: Timestamp,
    ) -> Result<Redemption, StoreError> {
        self.write(move |c| reissue(c, &id, &hash, &hint, now)).await
    }
}
