//! Transfers between members on PostgreSQL: one transaction locks both members' rows
//! (in id order, so two members sending to each other at once queue instead of
//! deadlocking), reads the sender's counts and households, asks `decide_transfer`, and
//! writes both plans. The sender's lock keeps her limits and balance true under racing
//! transfers.

use super::PgStore;
use super::idempotency::stored_answer;
use super::ledger::write_plan;
use super::members::{member_state, resolve_member};
use super::wallets::{household_of, lock_members};
use crate::model::{TransferCmd, TransferQuery, to_micros};
use crate::transfers::{TRANSFER_COLUMNS, new_transfer, receipt_json, transfer_facts, transfer_from, windows};
use crate::{Entity, StoreError};
use tally_domain::decide::{MemberRef, Posted, decide_transfer, replay};
use tally_domain::transfers::MemberTransfer;

const TRANSFER_ANSWER: &str = "SELECT request_hash, receipt FROM transfers WHERE from_member = $1 AND request_id = $2";

type TransferRow = (String, String, String, i64, Option<String>, i64);

impl PgStore {
    pub async fn send_points(&self, cmd: TransferCmd) -> Result<Posted, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A transfer sent before answers as it was, whatever became of the recipient's
        // identities since (a committed answer never changes; it is checked again under
        // the locks for one racing this request). The sender is looked for first, as on
        // SQLite.
        if let Some(posted) = replay(
            stored_answer(&mut tx, TRANSFER_ANSWER, cmd.from.as_str(), &cmd.request_id).await?,
            &cmd.request_hash,
            None,
        )? {
            return Ok(posted);
        }
        resolve_member(&mut tx, &MemberRef::Id(cmd.from.clone())).await?;
        let to = resolve_member(&mut tx, &cmd.to).await.map_err(|e| match e {
            StoreError::NotFound(_) => StoreError::NotFound(Entity::Recipient),
            e => e,
        })?;
        lock_members(&mut tx, vec![cmd.from.as_str(), to.as_str()]).await?;
        if let Some(posted) = replay(
            stored_answer(&mut tx, TRANSFER_ANSWER, cmd.from.as_str(), &cmd.request_id).await?,
            &cmd.request_hash,
            None,
        )? {
            return Ok(posted);
        }
        let joined_at: i64 = sqlx::query_scalar("SELECT created_at FROM members WHERE id = $1")
            .bind(cmd.from.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(Entity::Member))?;
        let purchases: i64 =
            sqlx::query_scalar("SELECT COALESCE(SUM(visits), 0)::BIGINT FROM member_partners WHERE member_id = $1")
                .bind(cmd.from.as_str())
                .fetch_one(&mut *tx)
                .await?;
        let (day, month) = windows(cmd.now);
        let sent: (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(points) FILTER (WHERE created_at >= $2), 0)::BIGINT, COALESCE(SUM(points), 0)::BIGINT
             FROM transfers WHERE from_member = $1 AND created_at >= $3",
        )
        .bind(cmd.from.as_str())
        .bind(day)
        .bind(month)
        .fetch_one(&mut *tx)
        .await?;
        let households = (
            household_of(&mut tx, &cmd.from).await?,
            household_of(&mut tx, &to).await?,
        );
        let same_household = matches!(households, (Some(a), Some(b)) if a == b);
        let facts = transfer_facts(joined_at, purchases, sent, same_household);
        let sender = member_state(&mut tx, &MemberRef::Id(cmd.from.clone()), false, |_| true).await?;
        let recipient = member_state(&mut tx, &MemberRef::Id(to.clone()), false, |_| true).await?;
        let d = decide_transfer(
            &cmd.policy,
            &facts,
            &sender,
            &recipient,
            cmd.transfer_id.as_str(),
            cmd.points,
            cmd.now,
        )?;
        let transfer = new_transfer(&cmd, to.clone());
        let receipt = receipt_json(&transfer, &d.sender)?;
        sqlx::query(
            "INSERT INTO transfers (id, from_member, to_member, points, note, request_id, request_hash, receipt, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(transfer.id.as_str())
        .bind(transfer.from.as_str())
        .bind(transfer.to.as_str())
        .bind(transfer.points)
        .bind(&transfer.note)
        .bind(&cmd.request_id)
        .bind(&cmd.request_hash)
        .bind(&receipt)
        .bind(to_micros(cmd.now))
        .execute(&mut *tx)
        .await?;
        write_plan(&mut tx, &cmd.from, &d.sender, cmd.now).await?;
        write_plan(&mut tx, &to, &d.recipient, cmd.now).await?;
        tx.commit().await?;
        Ok(Posted {
            receipt_json: receipt,
            replayed: false,
            follow_up: None,
            completed: Vec::new(),
        })
    }

    pub async fn transfers(&self, q: TransferQuery) -> Result<Vec<MemberTransfer>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        resolve_member(&mut conn, &MemberRef::Id(q.member_id.clone())).await?;
        let rows: Vec<TransferRow> = sqlx::query_as(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE from_member = $1 AND ($2::TEXT IS NULL OR id < $2)
             UNION ALL
             SELECT {TRANSFER_COLUMNS} FROM transfers WHERE to_member = $1 AND ($2::TEXT IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(q.member_id.as_str())
        .bind(&q.before)
        .bind(i64::from(q.limit))
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, from, to, points, note, at)| transfer_from(id, from, to, points, note, at))
            .collect())
    }
}
