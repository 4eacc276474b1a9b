//! Paid memberships on SQLite: plans, memberships, payments (money, apart from the
//! points ledger; the plan's bonus points go through the ledger with the payment), and
//! the scheduled run that keeps `members.plan` in step with each membership's status.

use super::SqliteStore;
use super::ledger::write_plan;
use super::members::load_state;
use crate::codec::{money, to_json};
use crate::model::{MembershipRow, PaymentCmd, PaymentRow, Posted, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_domain::decide::{StoredAnswer, decide_membership_payment, replay};
use tally_domain::ids::{Id, MemberId};
use tally_domain::memberships::{Held, Membership, MembershipPlan, PaymentReceipt, may_cancel, may_start, member_plan};
use tally_domain::plan::needs_lots;
use tally_domain::receipt::BalanceView;

pub(super) fn plans(conn: &Connection) -> Result<Vec<MembershipPlan>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT spec FROM membership_plans ORDER BY code")?;
    let specs = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(specs
        .iter()
        .map(|s| serde_json::from_str(s))
        .collect::<Result<_, _>>()?)
}

fn plan(conn: &Connection, code: &str) -> Result<MembershipPlan, StoreError> {
    let spec: String = conn
        .prepare_cached("SELECT spec FROM membership_plans WHERE code = ?1")?
        .query_row([code], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound(Entity::MembershipPlan))?;
    Ok(serde_json::from_str(&spec)?)
}

const COLUMNS: &str = "id, member_id, plan_code, started_at, trial_until, paid_until, cancelled_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<MembershipRow> {
    Ok(MembershipRow {
        id: r.get(0)?,
        member_id: MemberId::from_stored(r.get(1)?),
        plan_code: r.get(2)?,
        membership: Membership {
            started_at: from_micros(r.get(3)?),
            trial_until: r.get::<_, Option<i64>>(4)?.map(from_micros),
            paid_until: r.get::<_, Option<i64>>(5)?.map(from_micros),
            cancelled_at: r.get::<_, Option<i64>>(6)?.map(from_micros),
        },
        payments: Vec::new(),
    })
}

fn payments(conn: &Connection, id: &str) -> Result<Vec<PaymentRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, external_id, amount, currency, period_start, period_end, bonus_points, recorded_at
         FROM membership_payments WHERE membership_id = ?1 ORDER BY period_start",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ),
                (
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                ),
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|((id, external_id, amount, currency), (start, end, bonus, at))| {
            Ok(PaymentRow {
                id,
                external_id,
                amount: money(amount, &currency)?,
                period_start: from_micros(start),
                period_end: from_micros(end),
                bonus_points: bonus,
                recorded_at: from_micros(at),
            })
        })
        .collect()
}

fn membership(conn: &Connection, id: &str) -> Result<Option<MembershipRow>, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM memberships WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?;
    match row {
        Some(mut m) => {
            m.payments = payments(conn, id)?;
            Ok(Some(m))
        }
        None => Ok(None),
    }
}

fn member_memberships(conn: &Connection, member_id: &MemberId) -> Result<Vec<MembershipRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM memberships WHERE member_id = ?1 ORDER BY started_at"
    ))?;
    let rows = stmt
        .query_map([member_id.as_str()], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|mut m| {
            m.payments = payments(conn, &m.id)?;
            Ok(m)
        })
        .collect()
}

/// Writes a membership's dates and when it next changes, then the member's `plan` as
/// their memberships say (the domain's `member_plan`).
fn save(conn: &Connection, m: &MembershipRow, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE memberships SET paid_until = ?2, cancelled_at = ?3, due_at = ?4 WHERE id = ?1")?
        .execute(params![
            m.id,
            m.membership.paid_until.map(to_micros),
            m.membership.cancelled_at.map(to_micros),
            m.membership.next_change_at(now).map(to_micros)
        ])?;
    let all = memberships_of(conn, &m.member_id)?;
    let plan = member_plan(
        all.iter().map(|r| Held {
            plan_code: &r.plan_code,
            membership: &r.membership,
        }),
        now,
    );
    conn.prepare_cached("UPDATE members SET plan = ?2 WHERE id = ?1")?
        .execute(params![m.member_id.as_str(), plan])?;
    Ok(())
}

/// A member's memberships without their payments.
fn memberships_of(conn: &Connection, member_id: &MemberId) -> Result<Vec<MembershipRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM memberships WHERE member_id = ?1"))?;
    let rows = stmt
        .query_map([member_id.as_str()], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn create(
    conn: &Connection,
    id: &str,
    member_id: &MemberId,
    code: &str,
    now: Timestamp,
) -> Result<MembershipRow, StoreError> {
    let plan = plan(conn, code)?;
    conn.prepare_cached("SELECT 1 FROM members WHERE id = ?1")?
        .query_row([member_id.as_str()], |_| Ok(()))
        .optional()?
        .ok_or(StoreError::NotFound(Entity::Member))?;
    may_start(memberships_of(conn, member_id)?.into_iter().map(|r| r.membership), now).map_err(|e| {
        StoreError::Conflict {
            code: "membership_exists",
            message: e.to_string(),
        }
    })?;
    let m = Membership::start(&plan, now);
    conn.prepare_cached(
        "INSERT INTO memberships (id, member_id, plan_code, started_at, trial_until) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        member_id.as_str(),
        code,
        to_micros(now),
        m.trial_until.map(to_micros)
    ])?;
    let row = MembershipRow {
        id: id.to_string(),
        member_id: member_id.clone(),
        plan_code: code.to_string(),
        membership: m,
        payments: Vec::new(),
    };
    save(conn, &row, now)?;
    Ok(row)
}

fn cancel(conn: &Connection, id: &str, now: Timestamp) -> Result<MembershipRow, StoreError> {
    let mut m = membership(conn, id)?.ok_or(StoreError::NotFound(Entity::Membership))?;
    may_cancel(&m.membership, now)?;
    if m.membership.cancelled_at.is_none() {
        m.membership.cancelled_at = Some(now);
        save(conn, &m, now)?;
    }
    Ok(m)
}

fn post_payment(conn: &Connection, cmd: &PaymentCmd) -> Result<Posted, StoreError> {
    let mut m = membership(conn, &cmd.membership_id)?.ok_or(StoreError::NotFound(Entity::Membership))?;
    let stored = conn
        .prepare_cached(
            "SELECT request_hash, receipt FROM membership_payments WHERE membership_id = ?1 AND external_id = ?2",
        )?
        .query_row(params![m.id, cmd.external_id], |r| {
            Ok(StoredAnswer {
                request_hash: r.get(0)?,
                receipt_json: r.get(1)?,
                target: None,
            })
        })
        .optional()?;
    if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
        return Ok(posted);
    }
    let plan = plan(conn, &m.plan_code)?;
    let state = load_state(conn, &m.member_id, |due| needs_lots(0, due, cmd.now))?;
    let d = decide_membership_payment(
        &state,
        &m.membership,
        &plan,
        &cmd.program,
        cmd.amount,
        &cmd.payment_id,
        cmd.now,
    )?;
    m.membership.paid_until = Some(d.period.end);
    let balance = match &d.bonus {
        Some(p) => p.balance_after,
        None => state.balance,
    };
    let receipt = PaymentReceipt {
        id: cmd.payment_id.clone(),
        membership_id: m.id.clone(),
        external_id: cmd.external_id.clone(),
        amount: cmd.amount.into(),
        period_start: d.period.start.to_string(),
        period_end: d.period.end.to_string(),
        bonus_points: d.period.bonus_points,
        status: m.membership.status(cmd.now),
        balance: BalanceView {
            available: balance.available,
            pending: balance.pending,
        },
    };
    let receipt = to_json(&receipt)?;
    conn.prepare_cached(
        "INSERT INTO membership_payments (id, membership_id, external_id, amount, currency, period_start, period_end,
             bonus_points, recorded_at, request_hash, receipt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        cmd.payment_id,
        m.id,
        cmd.external_id,
        cmd.amount.amount,
        cmd.amount.currency.code(),
        to_micros(d.period.start),
        to_micros(d.period.end),
        d.period.bonus_points,
        to_micros(cmd.now),
        cmd.request_hash,
        receipt
    ])?;
    if let Some(bonus) = &d.bonus {
        write_plan(conn, &m.member_id, bonus, cmd.now)?;
    }
    save(conn, &m, cmd.now)?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
        follow_up: None,
        completed: Vec::new(),
    })
}

/// Memberships whose status changed with time by `now` (at most `limit`): their
/// member's `plan` follows; answers how many.
fn review_due(conn: &Connection, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM memberships WHERE due_at <= ?1 ORDER BY due_at LIMIT ?2")?
        .query_map(params![to_micros(now), limit], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        if let Some(m) = membership(conn, id)? {
            save(conn, &m, now)?;
        }
    }
    Ok(ids.len() as u64)
}

fn all_memberships(conn: &Connection) -> Result<Vec<MembershipRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM memberships ORDER BY started_at"))?;
    let mut rows = stmt.query_map([], from_row)?.collect::<Result<Vec<_>, _>>()?;
    for m in &mut rows {
        m.payments = payments(conn, &m.id)?;
    }
    Ok(rows)
}

impl SqliteStore {
    pub async fn create_plan(&self, plan: MembershipPlan, now: Timestamp) -> Result<(), StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached("INSERT INTO membership_plans (code, spec, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (code) DO NOTHING")?
                .execute(params![plan.code, to_json(&plan)?, to_micros(now)])?;
            match n {
                0 => Err(StoreError::Conflict {
                    code: "plan_exists",
                    message: format!("a plan with the code {:?} exists", plan.code),
                }),
                _ => Ok(()),
            }
        })
        .await
    }

    pub async fn create_membership(
        &self,
        id: String,
        member_id: MemberId,
        plan_code: String,
        now: Timestamp,
    ) -> Result<MembershipRow, StoreError> {
        self.write(move |c| create(c, &id, &member_id, &plan_code, now)).await
    }

    pub async fn membership(&self, id: String) -> Result<Option<MembershipRow>, StoreError> {
        self.read(move |c| membership(c, &id)).await
    }

    pub async fn member_memberships(&self, member_id: MemberId) -> Result<Vec<MembershipRow>, StoreError> {
        self.read(move |c| member_memberships(c, &member_id)).await
    }

    pub async fn cancel_membership(&self, id: String, now: Timestamp) -> Result<MembershipRow, StoreError> {
        self.write(move |c| cancel(c, &id, now)).await
    }

    pub async fn post_membership_payment(&self, cmd: PaymentCmd) -> Result<Posted, StoreError> {
        self.write(move |c| post_payment(c, &cmd)).await
    }

    pub async fn review_memberships(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.write(move |c| review_due(c, now, limit)).await
    }

    pub async fn all_memberships(&self) -> Result<Vec<MembershipRow>, StoreError> {
        self.read(all_memberships).await
    }
}
