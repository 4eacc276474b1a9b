//! Exchange with other programmes on PostgreSQL. Each change is one transaction that
//! locks the member's row first: an order placed, its answer from the other programme
//! (the order's row locked after the member's, so a confirm and a fail racing each other
//! find it as the winner left it), a credit in. Racing orders of one member queue on her
//! row, so her daily limit and balance hold.

use super::PgStore;
use super::idempotency::stored_answer;
use super::ledger::write_plan;
use super::members::{member_state, resolve_member};
use crate::codec::to_json;
use crate::exchange::{ORDER_COLUMNS, OrderRow, credit_receipt, new_order, order_from, order_receipt, partner_from};
use crate::model::{ExchangeInCmd, ExchangeOrderQuery, ExchangeOutCmd, ExchangeVolume, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::PgConnection;
use tally_domain::decide::{
    MemberRef, Outcome, Posted, decide_exchange_in, decide_exchange_out, decide_exchange_outcome, replay,
};
use tally_domain::exchange::{ExchangeOrder, ExchangePartner, OrderStatus};
use tally_domain::ids::{ExchangeOrderId, ExchangePartnerId, MemberId};

async fn partner(conn: &mut PgConnection, id: &ExchangePartnerId) -> Result<Option<ExchangePartner>, StoreError> {
    let spec: Option<String> = sqlx::query_scalar("SELECT spec FROM exchange_partners WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    spec.map(|s| partner_from(id.to_string(), &s)).transpose()
}

fn found(p: Option<ExchangePartner>) -> Result<ExchangePartner, StoreError> {
    p.ok_or(StoreError::NotFound(Entity::ExchangePartner))
}

async fn order(conn: &mut PgConnection, id: &ExchangeOrderId, lock: bool) -> Result<Option<ExchangeOrder>, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<OrderRow> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM exchange_orders WHERE id = $1{lock}"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(order_from).transpose()
}

async fn moved_since(
    conn: &mut PgConnection,
    table: &str,
    member: &MemberId,
    partner: &ExchangePartnerId,
    since: Timestamp,
) -> Result<i64, StoreError> {
    let failed = if table == "exchange_orders" {
        " AND status <> 'failed'"
    } else {
        ""
    };
    Ok(sqlx::query_scalar(&format!(
        "SELECT COALESCE(SUM(points), 0)::BIGINT FROM {table}
         WHERE member_id = $1 AND exchange_partner_id = $2 AND created_at >= $3{failed}"
    ))
    .bind(member.as_str())
    .bind(partner.as_str())
    .bind(to_micros(since))
    .fetch_one(&mut *conn)
    .await?)
}

/// A sum PostgreSQL gave as exact text, as the nearest `i64` (a month's volume past
/// 9.2 × 10^18 reads as that bound rather than failing).
fn saturated(sum: &str) -> i64 {
    let wide: i128 = sum.parse().unwrap_or(i128::MAX);
    i64::try_from(wide.max(0)).unwrap_or(i64::MAX)
}

const CREDIT_ANSWER: &str =
    "SELECT request_hash, receipt FROM exchange_credits WHERE exchange_partner_id = $1 AND reference = $2";

impl PgStore {
    pub async fn save_exchange_partner(
        &self,
        p: ExchangePartner,
        create: bool,
        now: Timestamp,
    ) -> Result<ExchangePartner, StoreError> {
        let sql = match create {
            true => "INSERT INTO exchange_partners (id, spec, created_at, updated_at) VALUES ($1, $2, $3, $3)",
            false => "UPDATE exchange_partners SET spec = $2, updated_at = $3 WHERE id = $1",
        };
        let n = sqlx::query(sql)
            .bind(p.id.as_str())
            .bind(to_json(&p.spec)?)
            .bind(to_micros(now))
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(Entity::ExchangePartner));
        }
        Ok(p)
    }

    pub async fn exchange_partner(&self, id: ExchangePartnerId) -> Result<Option<ExchangePartner>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        partner(&mut conn, &id).await
    }

    pub async fn exchange_partners(&self) -> Result<Vec<ExchangePartner>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, spec FROM exchange_partners ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(|(id, spec)| partner_from(id, &spec)).collect()
    }

    pub async fn exchange_out(&self, cmd: ExchangeOutCmd) -> Result<Posted, StoreError> {
        let mut tx = self.pool.begin().await?;
        let state = member_state(&mut tx, &MemberRef::Id(cmd.member_id.clone()), true, |_| true).await?;
        let stored = stored_answer(
            &mut tx,
            "SELECT request_hash, receipt FROM exchange_orders WHERE member_id = $1 AND request_id = $2",
            cmd.member_id.as_str(),
            &cmd.request_id,
        )
        .await?;
        if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
            return Ok(posted);
        }
        let p = found(partner(&mut tx, &cmd.exchange_partner_id).await?)?;
        let today = moved_since(
            &mut tx,
            "exchange_orders",
            &cmd.member_id,
            &p.id,
            crate::transfers::day_start(cmd.now),
        )
        .await?;
        let d = decide_exchange_out(
            &p,
            &state,
            today,
            cmd.order_id.as_str(),
            cmd.points,
            &cmd.external_member,
            cmd.now,
        )?;
        let order = new_order(&cmd, &d);
        let receipt = order_receipt(&order, &d.plan)?;
        sqlx::query(
            "INSERT INTO exchange_orders (id, exchange_partner_id, member_id, request_id, request_hash, points, units,
                 external_member, status, taken, receipt, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11)",
        )
        .bind(order.id.as_str())
        .bind(order.exchange_partner_id.as_str())
        .bind(order.member_id.as_str())
        .bind(&cmd.request_id)
        .bind(&cmd.request_hash)
        .bind(order.points)
        .bind(order.units)
        .bind(&order.external_member)
        .bind(to_json(&order.taken)?)
        .bind(&receipt)
        .bind(to_micros(cmd.now))
        .execute(&mut *tx)
        .await?;
        write_plan(&mut tx, &cmd.member_id, &d.plan, cmd.now).await?;
        tx.commit().await?;
        Ok(Posted {
            receipt_json: receipt,
            replayed: false,
            follow_up: None,
            completed: Vec::new(),
        })
    }

    pub async fn exchange_outcome(
        &self,
        id: ExchangeOrderId,
        outcome: Outcome,
        now: Timestamp,
    ) -> Result<ExchangeOrder, StoreError> {
        let mut tx = self.pool.begin().await?;
        let first = order(&mut tx, &id, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::ExchangeOrder))?;
        let state = member_state(&mut tx, &MemberRef::Id(first.member_id.clone()), true, |_| true).await?;
        // Read again under the member's lock, then the order's: a racing answer has
        // either finished or waits behind this one.
        let o = order(&mut tx, &id, true)
            .await?
            .ok_or(StoreError::NotFound(Entity::ExchangeOrder))?;
        let p = found(partner(&mut tx, &o.exchange_partner_id).await?)?;
        let Some(plan) = decide_exchange_outcome(&p, &o, &outcome, &state, now)? else {
            return Ok(o);
        };
        let (status, reason) = match &outcome {
            Outcome::Confirm => (OrderStatus::Confirmed, None),
            Outcome::Fail { reason } => (OrderStatus::Failed, Some(reason.as_str())),
        };
        sqlx::query("UPDATE exchange_orders SET status = $2, failure_reason = $3, closed_at = $4 WHERE id = $1")
            .bind(id.as_str())
            .bind(status.as_str())
            .bind(reason)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        write_plan(&mut tx, &o.member_id, &plan, now).await?;
        let done = order(&mut tx, &id, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::ExchangeOrder))?;
        tx.commit().await?;
        Ok(done)
    }

    pub async fn exchange_in(&self, cmd: ExchangeInCmd) -> Result<Posted, StoreError> {
        let mut tx = self.pool.begin().await?;
        let stored = stored_answer(&mut tx, CREDIT_ANSWER, cmd.exchange_partner_id.as_str(), &cmd.reference).await?;
        if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
            return Ok(posted);
        }
        let p = found(partner(&mut tx, &cmd.exchange_partner_id).await?)?;
        let member = resolve_member(&mut tx, &cmd.member).await?;
        let state = member_state(&mut tx, &MemberRef::Id(member.clone()), true, |_| true).await?;
        // Again under her lock: the same credit sent twice at once (a retry after a
        // timeout) finds the first one's answer here, not its points counted against her.
        let stored = stored_answer(&mut tx, CREDIT_ANSWER, cmd.exchange_partner_id.as_str(), &cmd.reference).await?;
        if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
            return Ok(posted);
        }
        let today = moved_since(
            &mut tx,
            "exchange_credits",
            &member,
            &p.id,
            crate::transfers::day_start(cmd.now),
        )
        .await?;
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
        let inserted = sqlx::query(
            "INSERT INTO exchange_credits (id, exchange_partner_id, member_id, reference, request_hash, units, points,
                 receipt, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (exchange_partner_id, reference) DO NOTHING",
        )
        .bind(cmd.credit_id.as_str())
        .bind(p.id.as_str())
        .bind(member.as_str())
        .bind(&cmd.reference)
        .bind(&cmd.request_hash)
        .bind(cmd.units)
        .bind(points)
        .bind(&receipt)
        .bind(to_micros(cmd.now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            // The same reference credited meanwhile (another member's lock): its answer.
            tx.rollback().await?;
            let mut conn = self.pool.acquire().await?;
            let stored = stored_answer(
                &mut conn,
                CREDIT_ANSWER,
                cmd.exchange_partner_id.as_str(),
                &cmd.reference,
            )
            .await?;
            return replay(stored, &cmd.request_hash, None)?.ok_or(StoreError::NotFound(Entity::ExchangeCredit));
        }
        write_plan(&mut tx, &member, &plan, cmd.now).await?;
        tx.commit().await?;
        Ok(Posted {
            receipt_json: receipt,
            replayed: false,
            follow_up: None,
            completed: Vec::new(),
        })
    }

    pub async fn exchange_order(&self, id: ExchangeOrderId) -> Result<Option<ExchangeOrder>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        order(&mut conn, &id, false).await
    }

    pub async fn exchange_orders(&self, q: ExchangeOrderQuery) -> Result<Vec<ExchangeOrder>, StoreError> {
        let rows: Vec<OrderRow> = sqlx::query_as(&format!(
            "SELECT {ORDER_COLUMNS} FROM exchange_orders
             WHERE ($1::TEXT IS NULL OR member_id = $1) AND ($2::TEXT IS NULL OR exchange_partner_id = $2)
               AND ($3::TEXT IS NULL OR status = $3) AND ($4::TEXT IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(q.member_id.as_ref().map(|m| m.as_str()))
        .bind(q.exchange_partner_id.as_ref().map(|p| p.as_str()))
        .bind(q.status.map(OrderStatus::as_str))
        .bind(&q.before)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(order_from).collect()
    }

    pub async fn exchange_volume(
        &self,
        id: ExchangePartnerId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<ExchangeVolume, StoreError> {
        let mut conn = self.pool.acquire().await?;
        found(partner(&mut conn, &id).await?)?;
        let rows: Vec<(String, i64, String, String)> = sqlx::query_as(
            "SELECT status, COUNT(*), COALESCE(SUM(points), 0)::TEXT, COALESCE(SUM(units), 0)::TEXT
             FROM exchange_orders WHERE exchange_partner_id = $1 AND created_at >= $2 AND created_at < $3
             GROUP BY status",
        )
        .bind(id.as_str())
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_all(&mut *conn)
        .await?;
        let mut v = ExchangeVolume::default();
        for (status, n, points, units) in rows {
            v.add_orders(&status, n, saturated(&points), saturated(&units));
        }
        let (n, points, units): (i64, String, String) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(points), 0)::TEXT, COALESCE(SUM(units), 0)::TEXT
             FROM exchange_credits WHERE exchange_partner_id = $1 AND created_at >= $2 AND created_at < $3",
        )
        .bind(id.as_str())
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_one(&mut *conn)
        .await?;
        v.credits = n;
        v.points_in = saturated(&points);
        v.units_in = saturated(&units);
        Ok(v)
    }
}
