//! Transfers between members on SQLite: one writer job reads both members, the
//! sender's counts and households, asks `decide_transfer`, and writes both plans.

use super::SqliteStore;
use super::idempotency::stored_answer;
use super::ledger::write_plan;
use super::members::{load_state, resolve_member};
use super::wallets::household_of;
use crate::model::{TransferCmd, TransferQuery, to_micros};
use crate::transfers::{TRANSFER_COLUMNS, new_transfer, receipt_json, transfer_facts, transfer_from, windows};
use crate::{Entity, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::decide::{MemberRef, Posted, decide_transfer, replay};
use tally_domain::ids::MemberId;
use tally_domain::transfers::MemberTransfer;

fn send(conn: &Connection, cmd: &TransferCmd) -> Result<Posted, StoreError> {
    let stored = stored_answer(
        conn,
        "SELECT request_hash, receipt FROM transfers WHERE from_member = ?1 AND request_id = ?2",
        cmd.from.as_str(),
        &cmd.request_id,
    )?;
    if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
        return Ok(posted);
    }
    let joined_at: i64 = conn
        .prepare_cached("SELECT created_at FROM members WHERE id = ?1")?
        .query_row([cmd.from.as_str()], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound(Entity::Member))?;
    let to = resolve_member(conn, &cmd.to).map_err(|e| match e {
        StoreError::NotFound(_) => StoreError::NotFound(Entity::Recipient),
        e => e,
    })?;
    let purchases: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(visits), 0) FROM member_partners WHERE member_id = ?1")?
        .query_row([cmd.from.as_str()], |r| r.get(0))?;
    let (day, month) = windows(cmd.now);
    let sent: (i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(CASE WHEN created_at >= ?2 THEN points END), 0), COALESCE(SUM(points), 0)
             FROM transfers WHERE from_member = ?1 AND created_at >= ?3",
        )?
        .query_row(params![cmd.from.as_str(), day, month], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let households = (household_of(conn, &cmd.from)?, household_of(conn, &to)?);
    let same_household = matches!(households, (Some(a), Some(b)) if a == b);
    let facts = transfer_facts(joined_at, purchases, sent, same_household);
    let sender = load_state(conn, &cmd.from, |_| true)?;
    let recipient = load_state(conn, &to, |_| true)?;
    let d = decide_transfer(
        &cmd.policy,
        &facts,
        &sender,
        &recipient,
        cmd.transfer_id.as_str(),
        cmd.points,
        cmd.now,
    )?;
    let transfer = new_transfer(cmd, to.clone());
    let receipt = receipt_json(&transfer, &d.sender)?;
    conn.prepare_cached(
        "INSERT INTO transfers (id, from_member, to_member, points, note, request_id, request_hash, receipt, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        transfer.id.as_str(),
        transfer.from.as_str(),
        transfer.to.as_str(),
        transfer.points,
        transfer.note,
        cmd.request_id,
        cmd.request_hash,
        receipt,
        to_micros(cmd.now)
    ])?;
    write_plan(conn, &cmd.from, &d.sender, cmd.now)?;
    write_plan(conn, &to, &d.recipient, cmd.now)?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
        follow_up: None,
        completed: Vec::new(),
    })
}

fn transfers(conn: &Connection, q: &TransferQuery) -> Result<Vec<MemberTransfer>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE from_member = ?1 AND (?2 IS NULL OR id < ?2)
         UNION ALL
         SELECT {TRANSFER_COLUMNS} FROM transfers WHERE to_member = ?1 AND (?2 IS NULL OR id < ?2)
         ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![q.member_id.as_str(), q.before, q.limit], |r| {
        Ok(transfer_from(
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn member_exists(conn: &Connection, id: &MemberId) -> Result<(), StoreError> {
    resolve_member(conn, &MemberRef::Id(id.clone())).map(|_| ())
}

impl SqliteStore {
    pub async fn send_points(&self, cmd: TransferCmd) -> Result<Posted, StoreError> {
        self.write(move |c| send(c, &cmd)).await
    }

    pub async fn transfers(&self, q: TransferQuery) -> Result<Vec<MemberTransfer>, StoreError> {
        self.read(move |c| {
            member_exists(c, &q.member_id)?;
            transfers(c, &q)
        })
        .await
    }
}
