//! Paid memberships on PostgreSQL: plans, memberships, payments (money, apart from the
//! points ledger; the plan's bonus points go through the ledger with the payment), and
//! the scheduled run that keeps `members.plan` in step with each membership's status.
//! A payment locks its membership, then its member, in that order.

use super::PgStore;
use super::ledger::write_plan;
use super::members::member_state;
use crate::codec::{money, to_json};
use crate::model::{MemberRef, MembershipRow, PaymentCmd, PaymentRow, Posted, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tally_domain::decide::{StoredAnswer, decide_membership_payment, replay};
use tally_domain::ids::{Id, MemberId};
use tally_domain::memberships::{Held, Membership, MembershipPlan, PaymentReceipt, may_cancel, may_start, member_plan};
use tally_domain::plan::needs_lots;
use tally_domain::receipt::BalanceView;

pub(super) async fn plans(conn: &mut PgConnection) -> Result<Vec<MembershipPlan>, StoreError> {
    let specs: Vec<String> = sqlx::query_scalar("SELECT spec FROM membership_plans ORDER BY code")
        .fetch_all(&mut *conn)
        .await?;
    Ok(specs
        .iter()
        .map(|s| serde_json::from_str(s))
        .collect::<Result<_, _>>()?)
}

async fn plan(conn: &mut PgConnection, code: &str) -> Result<MembershipPlan, StoreError> {
    let spec: String = sqlx::query_scalar("SELECT spec FROM membership_plans WHERE code = $1")
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound(Entity::MembershipPlan))?;
    Ok(serde_json::from_str(&spec)?)
}

const COLUMNS: &str = "id, member_id, plan_code, started_at, trial_until, paid_until, cancelled_at";

fn from_row(r: &PgRow) -> Result<MembershipRow, StoreError> {
    Ok(MembershipRow {
        id: r.try_get(0)?,
        member_id: MemberId::from_stored(r.try_get(1)?),
        plan_code: r.try_get(2)?,
        membership: Membership {
            started_at: from_micros(r.try_get(3)?),
            trial_until: r.try_get::<Option<i64>, _>(4)?.map(from_micros),
            paid_until: r.try_get::<Option<i64>, _>(5)?.map(from_micros),
            cancelled_at: r.try_get::<Option<i64>, _>(6)?.map(from_micros),
        },
        payments: Vec::new(),
    })
}

async fn payments(conn: &mut PgConnection, id: &str) -> Result<Vec<PaymentRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, external_id, amount, currency, period_start, period_end, bonus_points, recorded_at
         FROM membership_payments WHERE membership_id = $1 ORDER BY period_start",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PaymentRow {
                id: r.try_get(0)?,
                external_id: r.try_get(1)?,
                amount: money(r.try_get(2)?, &r.try_get::<String, _>(3)?)?,
                period_start: from_micros(r.try_get(4)?),
                period_end: from_micros(r.try_get(5)?),
                bonus_points: r.try_get(6)?,
                recorded_at: from_micros(r.try_get(7)?),
            })
        })
        .collect()
}

async fn membership(conn: &mut PgConnection, id: &str, lock: bool) -> Result<Option<MembershipRow>, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM memberships WHERE id = $1{lock}"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(r) => {
            let mut m = from_row(&r)?;
            m.payments = payments(conn, id).await?;
            Ok(Some(m))
        }
        None => Ok(None),
    }
}

async fn with_payments(conn: &mut PgConnection, rows: Vec<PgRow>) -> Result<Vec<MembershipRow>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut m = from_row(r)?;
        m.payments = payments(conn, &m.id).await?;
        out.push(m);
    }
    Ok(out)
}

/// Writes a membership's dates and when it next changes, then the member's `plan` as
/// their memberships say (the domain's `member_plan`). The member's row is locked before
/// their memberships are read, so a membership created meanwhile is seen.
async fn save(conn: &mut PgConnection, m: &MembershipRow, now: Timestamp) -> Result<(), StoreError> {
    sqlx::query("UPDATE memberships SET paid_until = $2, cancelled_at = $3, due_at = $4 WHERE id = $1")
        .bind(&m.id)
        .bind(m.membership.paid_until.map(to_micros))
        .bind(m.membership.cancelled_at.map(to_micros))
        .bind(m.membership.next_change_at(now).map(to_micros))
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT 1 FROM members WHERE id = $1 FOR UPDATE")
        .bind(m.member_id.as_str())
        .execute(&mut *conn)
        .await?;
    let all = memberships_of(conn, &m.member_id).await?;
    let plan = member_plan(
        all.iter().map(|r| Held {
            plan_code: &r.plan_code,
            membership: &r.membership,
        }),
        now,
    );
    sqlx::query("UPDATE members SET plan = $2 WHERE id = $1")
        .bind(m.member_id.as_str())
        .bind(plan)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A member's memberships without their payments.
async fn memberships_of(conn: &mut PgConnection, member_id: &MemberId) -> Result<Vec<MembershipRow>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM memberships WHERE member_id = $1"))
        .bind(member_id.as_str())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

impl PgStore {
    pub async fn create_plan(&self, plan: MembershipPlan, now: Timestamp) -> Result<(), StoreError> {
        let n = sqlx::query(
            "INSERT INTO membership_plans (code, spec, created_at) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING",
        )
        .bind(&plan.code)
        .bind(to_json(&plan)?)
        .bind(to_micros(now))
        .execute(&self.pool)
        .await?;
        match n.rows_affected() {
            0 => Err(StoreError::Conflict {
                code: "plan_exists",
                message: format!("a plan with the code {:?} exists", plan.code),
            }),
            _ => Ok(()),
        }
    }

    pub async fn create_membership(
        &self,
        id: String,
        member_id: MemberId,
        plan_code: String,
        now: Timestamp,
    ) -> Result<MembershipRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let plan = plan(&mut tx, &plan_code).await?;
        // The member's row, locked: two memberships created at once for one member wait
        // for each other.
        sqlx::query("SELECT 1 FROM members WHERE id = $1 FOR UPDATE")
            .bind(member_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(Entity::Member))?;
        let existing = memberships_of(&mut tx, &member_id).await?;
        may_start(existing.into_iter().map(|r| r.membership), now).map_err(|e| StoreError::Conflict {
            code: "membership_exists",
            message: e.to_string(),
        })?;
        let m = Membership::start(&plan, now);
        sqlx::query(
            "INSERT INTO memberships (id, member_id, plan_code, started_at, trial_until) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(member_id.as_str())
        .bind(&plan_code)
        .bind(to_micros(now))
        .bind(m.trial_until.map(to_micros))
        .execute(&mut *tx)
        .await?;
        let row = MembershipRow {
            id,
            member_id,
            plan_code,
            membership: m,
            payments: Vec::new(),
        };
        save(&mut tx, &row, now).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn membership(&self, id: String) -> Result<Option<MembershipRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        membership(&mut conn, &id, false).await
    }

    pub async fn member_memberships(&self, member_id: MemberId) -> Result<Vec<MembershipRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM memberships WHERE member_id = $1 ORDER BY started_at"
        ))
        .bind(member_id.as_str())
        .fetch_all(&mut *conn)
        .await?;
        with_payments(&mut conn, rows).await
    }

    pub async fn all_memberships(&self) -> Result<Vec<MembershipRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM memberships ORDER BY started_at"))
            .fetch_all(&mut *conn)
            .await?;
        with_payments(&mut conn, rows).await
    }

    pub async fn cancel_membership(&self, id: String, now: Timestamp) -> Result<MembershipRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut m = membership(&mut tx, &id, true)
            .await?
            .ok_or(StoreError::NotFound(Entity::Membership))?;
        may_cancel(&m.membership, now)?;
        if m.membership.cancelled_at.is_none() {
            m.membership.cancelled_at = Some(now);
            save(&mut tx, &m, now).await?;
        }
        tx.commit().await?;
        Ok(m)
    }

    pub async fn post_membership_payment(&self, cmd: PaymentCmd) -> Result<Posted, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut m = membership(&mut tx, &cmd.membership_id, true)
            .await?
            .ok_or(StoreError::NotFound(Entity::Membership))?;
        let stored: Option<(String, String)> = sqlx::query_as(
            "SELECT request_hash, receipt FROM membership_payments WHERE membership_id = $1 AND external_id = $2",
        )
        .bind(&m.id)
        .bind(&cmd.external_id)
        .fetch_optional(&mut *tx)
        .await?;
        let stored = stored.map(|(request_hash, receipt_json)| StoredAnswer {
            request_hash,
            receipt_json,
            target: None,
        });
        if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
            return Ok(posted);
        }
        let plan = plan(&mut tx, &m.plan_code).await?;
        let now = cmd.now;
        let state = member_state(&mut tx, &MemberRef::Id(m.member_id.clone()), true, |due| {
            needs_lots(0, due, now)
        })
        .await?;
        let d = decide_membership_payment(
            &state,
            &m.membership,
            &plan,
            &cmd.program,
            cmd.amount,
            &cmd.payment_id,
            now,
        )?;
        m.membership.paid_until = Some(d.period.end);
        let balance = d.bonus.as_ref().map_or(state.balance, |p| p.balance_after);
        let receipt = to_json(&PaymentReceipt {
            id: cmd.payment_id.clone(),
            membership_id: m.id.clone(),
            external_id: cmd.external_id.clone(),
            amount: cmd.amount.into(),
            period_start: d.period.start.to_string(),
            period_end: d.period.end.to_string(),
            bonus_points: d.period.bonus_points,
            status: m.membership.status(now),
            balance: BalanceView {
                available: balance.available,
                pending: balance.pending,
            },
        })?;
        sqlx::query(
            "INSERT INTO membership_payments (id, membership_id, external_id, amount, currency, period_start,
                 period_end, bonus_points, recorded_at, request_hash, receipt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&cmd.payment_id)
        .bind(&m.id)
        .bind(&cmd.external_id)
        .bind(cmd.amount.amount)
        .bind(cmd.amount.currency.code())
        .bind(to_micros(d.period.start))
        .bind(to_micros(d.period.end))
        .bind(d.period.bonus_points)
        .bind(to_micros(now))
        .bind(&cmd.request_hash)
        .bind(&receipt)
        .execute(&mut *tx)
        .await?;
        if let Some(bonus) = &d.bonus {
            write_plan(&mut tx, &m.member_id, bonus, now).await?;
        }
        save(&mut tx, &m, now).await?;
        tx.commit().await?;
        Ok(Posted {
            receipt_json: receipt,
            replayed: false,
            follow_up: None,
            completed: Vec::new(),
        })
    }

    /// Memberships whose status changed with time by `now` (at most `limit`), each in a
    /// transaction of its own: their member's `plan` follows. Answers how many.
    pub async fn review_memberships(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM memberships WHERE due_at <= $1 ORDER BY due_at LIMIT $2")
                .bind(to_micros(now))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        for id in &ids {
            let mut tx = self.pool.begin().await?;
            if let Some(m) = membership(&mut tx, id, true).await? {
                save(&mut tx, &m, now).await?;
            }
            tx.commit().await?;
        }
        Ok(ids.len() as u64)
    }
}
