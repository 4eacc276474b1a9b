//! Exchange with other programmes on SQLite: the partners, orders placed, confirmed or
//! failed, units credited in, and the volume per partner; each change decided in one
//! writer job.

use super::SqliteStore;
use super::idempotency::stored_answer;
use super::ledger::write_plan;
use super::members::{load_state, resolve_member};
use crate::codec::to_json;
use crate::exchange::{ORDER_COLUMNS, OrderRow, credit_receipt, new_order, order_from, order_receipt, partner_from};
use crate::model::{ExchangeInCmd, ExchangeOrderQuery, ExchangeOutCmd, ExchangeVolume, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_domain::decide::{Outcome, Posted, decide_exchange_in, decide_exchange_out, decide_exchange_outcome, replay};
use tally_domain::exchange::{ExchangeOrder, ExchangePartner, OrderStatus};
use tally_domain::ids::{ExchangeOrderId, ExchangePartnerId};

fn partner(conn: &Connection, id: &ExchangePartnerId) -> Result<Option<ExchangePartner>, StoreError> {
    conn.prepare_cached("SELECT spec FROM exchange_partners WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get::<_, String>(0))
        .optional()?
        .map(|spec| partner_from(id.to_string(), &spec))
        .transpose()
}

fn found(p: Option<ExchangePartner>) -> Result<ExchangePartner, StoreError> {
    p.ok_or(StoreError::NotFound(Entity::ExchangePartner))
}

fn order_row(r: &Row<'_>) -> rusqlite::Result<OrderRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn order(conn: &Connection, id: &ExchangeOrderId) -> Result<Option<ExchangeOrder>, StoreError> {
    conn.prepare_cached(&format!("SELECT {ORDER_COLUMNS} FROM exchange_orders WHERE id = ?1"))?
        .query_row([id.as_str()], order_row)
        .optional()?
        .map(order_from)
        .transpose()
}

/// Points a member moved with a partner since `since`, out (orders not failed) or in.
fn moved_since(conn: &Connection, table: &str, cmd_member: &str, partner: &str, since: i64) -> Result<i64, StoreError> {
    let failed = if table == "exchange_orders" {
        " AND status <> 'failed'"
    } else {
        ""
    };
    Ok(conn
        .prepare_cached(&format!(
            "SELECT COALESCE(SUM(points), 0) FROM {table}
             WHERE member_id = ?1 AND exchange_partner_id = ?2 AND created_at >= ?3{failed}"
        ))?
        .query_row(params![cmd_member, partner, since], |r| r.get(0))?)
}

fn place(conn: &Connection, cmd: &ExchangeOutCmd) -> Result<Posted, StoreError> {
    let stored = stored_answer(
        conn,
        "SELECT request_hash, receipt FROM exchange_orders WHERE member_id = ?1 AND request_id = ?2",
        cmd.member_id.as_str(),
        &cmd.request_id,
    )?;
    if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
        return Ok(posted);
    }
    let state = load_state(conn, &cmd.member_id, |_| true)?;
    let p = found(partner(conn, &cmd.exchange_partner_id)?)?;
    let today = moved_since(
        conn,
        "exchange_orders",
        cmd.member_id.as_str(),
        p.id.as_str(),
        to_micros(crate::transfers::day_start(cmd.now)),
    )?;
    let d = decide_exchange_out(
        &p,
        &state,
        today,
        cmd.order_id.as_str(),
        cmd.points,
        &cmd.external_member,
        cmd.now,
    )?;
    let order = new_order(cmd, &d);
    let receipt = order_receipt(&order, &d.plan)?;
    conn.prepare_cached(
        "INSERT INTO exchange_orders (id, exchange_partner_id, member_id, request_id, request_hash, points, units,
             external_member, status, taken, receipt, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?11)",
    )?
    .execute(params![
        order.id.as_str(),
        order.exchange_partner_id.as_str(),
        order.member_id.as_str(),
        cmd.request_id,
        cmd.request_hash,
        order.points,
        order.units,
        order.external_member,
        to_json(&order.taken)?,
        receipt,
        to_micros(cmd.now)
    ])?;
    write_plan(conn, &cmd.member_id, &d.plan, cmd.now)?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
        follow_up: None,
        completed: Vec::new(),
    })
}

fn answer(
    conn: &Connection,
    id: &ExchangeOrderId,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<ExchangeOrder, StoreError> {
    let o = order(conn, id)?.ok_or(StoreError::NotFound(Entity::ExchangeOrder))?;
    let p = found(partner(conn, &o.exchange_partner_id)?)?;
    let state = load_state(conn, &o.member_id, |_| true)?;
    let Some(plan) = decide_exchange_outcome(&p, &o, outcome, &state, now)? else {
        return Ok(o);
    };
    let (status, reason) = match outcome {
        Outcome::Confirm => (OrderStatus::Confirmed, None),
        Outcome::Fail { reason } => (OrderStatus::Failed, Some(reason.as_str())),
    };
    conn.prepare_cached(
        "UPDATE exchange_orders SET status = ?2, failure_reason = ?3, closed_at = ?4 WHERE id = ?1 AND status = 'pending'",
    )?
    .execute(params![id.as_str(), status.as_str(), reason, to_micros(now)])?;
    write_plan(conn, &o.member_id, &plan, now)?;
    order(conn, id)?.ok_or(StoreError::NotFound(Entity::ExchangeOrder))
}

fn credit(conn: &Connection, cmd: &ExchangeInCmd) -> Result<Posted, StoreError> {
    let stored = stored_answer(
        conn,
        "SELECT request_hash, receipt FROM exchange_credits WHERE exchange_partner_id = ?1 AND reference = ?2",
        cmd.exchange_partner_id.as_str(),
        &cmd.reference,
    )?;
    if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
        return Ok(posted);
    }
    let p = found(partner(conn, &cmd.exchange_partner_id)?)?;
    let member = resolve_member(conn, &cmd.member)?;
    let state = load_state(conn, &member, |_| true)?;
    let today = moved_since(
        conn,
        "exchange_credits",
        member.as_str(),
        p.id.as_str(),
        to_micros(crate::transfers::day_start(cmd.now)),
    )?;
    let (plan, points) = decide_exchange_in(
        &p,
        &state,
        today,
        cmd.credit_id.as_str(),
        cmd.units,
        cmd.expiry_months,
        cmd.now,
    )?;
    let receipt = credit_receipt(
        cmd.credit_id.as_str(),
        &p.id,
        &member,
        &cmd.reference,
        cmd.units,
        points,
        cmd.now,
        &plan,
    )?;
    conn.prepare_cached(
        "INSERT INTO exchange_credits (id, exchange_partner_id, member_id, reference, request_hash, units, points,
             receipt, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        cmd.credit_id.as_str(),
        p.id.as_str(),
        member.as_str(),
        cmd.reference,
        cmd.request_hash,
        cmd.units,
        points,
        receipt,
        to_micros(cmd.now)
    ])?;
    write_plan(conn, &member, &plan, cmd.now)?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
        follow_up: None,
        completed: Vec::new(),
    })
}

fn orders(conn: &Connection, q: &ExchangeOrderQuery) -> Result<Vec<ExchangeOrder>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ORDER_COLUMNS} FROM exchange_orders
         WHERE (?1 IS NULL OR member_id = ?1) AND (?2 IS NULL OR exchange_partner_id = ?2)
           AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR id < ?4)
         ORDER BY id DESC LIMIT ?5"
    ))?;
    let rows = stmt
        .query_map(
            params![
                q.member_id.as_ref().map(|m| m.as_str()),
                q.exchange_partner_id.as_ref().map(|p| p.as_str()),
                q.status.map(OrderStatus::as_str),
                q.before,
                q.limit
            ],
            order_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(order_from).collect()
}

/// Sums of points and of units, each as its high and low 32 bits, which cannot
/// overflow SQLite's 64-bit sums however many rows there are ([`joined`] puts them
/// together).
const SPLIT_SUMS: &str = "COALESCE(SUM(points >> 32), 0), COALESCE(SUM(points & 4294967295), 0),
     COALESCE(SUM(units >> 32), 0), COALESCE(SUM(units & 4294967295), 0)";

/// A split sum as the nearest `i64` (past 9.2 × 10^18 it reads as that bound).
fn joined(high: i64, low: i64) -> i64 {
    let wide = (i128::from(high) << 32) + i128::from(low);
    i64::try_from(wide.max(0)).unwrap_or(i64::MAX)
}

fn volume(conn: &Connection, id: &ExchangePartnerId, from: i64, to: i64) -> Result<ExchangeVolume, StoreError> {
    found(partner(conn, id)?)?;
    let mut v = ExchangeVolume::default();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT status, COUNT(*), {SPLIT_SUMS} FROM exchange_orders
         WHERE exchange_partner_id = ?1 AND created_at >= ?2 AND created_at < ?3 GROUP BY status"
    ))?;
    let rows = stmt.query_map(params![id.as_str(), from, to], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            joined(r.get(2)?, r.get(3)?),
            joined(r.get(4)?, r.get(5)?),
        ))
    })?;
    for row in rows {
        let (status, n, points, units) = row?;
        v.add_orders(&status, n, points, units);
    }
    let (n, points, units) = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*), {SPLIT_SUMS} FROM exchange_credits
             WHERE exchange_partner_id = ?1 AND created_at >= ?2 AND created_at < ?3"
        ))?
        .query_row(params![id.as_str(), from, to], |r| {
            Ok((r.get(0)?, joined(r.get(1)?, r.get(2)?), joined(r.get(3)?, r.get(4)?)))
        })?;
    v.credits = n;
    v.points_in = points;
    v.units_in = units;
    Ok(v)
}

impl SqliteStore {
    /// Saves an exchange partner: a new one, or (`create` false) one that exists.
    pub async fn save_exchange_partner(
        &self,
        p: ExchangePartner,
        create: bool,
        now: Timestamp,
    ) -> Result<ExchangePartner, StoreError> {
        self.write(move |c| {
            let spec = to_json(&p.spec)?;
            let n = match create {
                true => c.execute(
                    "INSERT INTO exchange_partners (id, spec, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                    params![p.id.as_str(), spec, to_micros(now)],
                )?,
                false => c.execute(
                    "UPDATE exchange_partners SET spec = ?2, updated_at = ?3 WHERE id = ?1",
                    params![p.id.as_str(), spec, to_micros(now)],
                )?,
            };
            if n == 0 {
                return Err(StoreError::NotFound(Entity::ExchangePartner));
            }
            Ok(p.clone())
        })
        .await
    }

    pub async fn exchange_partner(&self, id: ExchangePartnerId) -> Result<Option<ExchangePartner>, StoreError> {
        self.read(move |c| partner(c, &id)).await
    }

    pub async fn exchange_partners(&self) -> Result<Vec<ExchangePartner>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT id, spec FROM exchange_partners ORDER BY id")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(|(id, spec)| partner_from(id, &spec)).collect()
        })
        .await
    }

    pub async fn exchange_out(&self, cmd: ExchangeOutCmd) -> Result<Posted, StoreError> {
        self.write(move |c| place(c, &cmd)).await
    }

    pub async fn exchange_outcome(
        &self,
        id: ExchangeOrderId,
        outcome: Outcome,
        now: Timestamp,
    ) -> Result<ExchangeOrder, StoreError> {
        self.write(move |c| answer(c, &id, &outcome, now)).await
    }

    pub async fn exchange_in(&self, cmd: ExchangeInCmd) -> Result<Posted, StoreError> {
        self.write(move |c| credit(c, &cmd)).await
    }

    pub async fn exchange_order(&self, id: ExchangeOrderId) -> Result<Option<ExchangeOrder>, StoreError> {
        self.read(move |c| order(c, &id)).await
    }

    pub async fn exchange_orders(&self, q: ExchangeOrderQuery) -> Result<Vec<ExchangeOrder>, StoreError> {
        self.read(move |c| orders(c, &q)).await
    }

    pub async fn exchange_volume(
        &self,
        id: ExchangePartnerId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<ExchangeVolume, StoreError> {
        self.read(move |c| volume(c, &id, to_micros(from), to_micros(to))).await
    }
}
