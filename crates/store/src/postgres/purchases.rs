//! Sales at the till, and their quotes: read the facts (the member's row locked), let
//! the domain decide, write the decision in as few statements as possible.

use super::PgStore;
use super::budgets::{Budgets, Taken};
use super::ledger::write_plan;
use super::members::{member_state, visits};
use super::partners::location_owner;
use super::rules::{award_rows, current_counters, draft_counters, keep_drawn, write_awards};
use crate::StoreError;
use crate::codec::{money, stored_answer, to_json};
use crate::model::{Posted, PurchaseCmd, TransactionRow, to_micros};
use sqlx::{PgConnection, PgPool, Row};
use tally_domain::decide::{PurchaseFacts, ReceiptStatus, StoredAnswer, decide_purchase, replay};
use tally_domain::ids::{Id, MemberId, PartnerId, TransactionId};
use tally_domain::plan::needs_lots;
use tally_domain::receipt::PurchaseReceipt;

/// The first answer under the partner's receipt id, if it was used.
async fn stored_receipt(conn: &mut PgConnection, cmd: &PurchaseCmd) -> Result<Option<StoredAnswer>, StoreError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT request_hash, receipt FROM transactions WHERE partner_id = $1 AND external_id = $2")
            .bind(cmd.partner.id.as_str())
            .bind(&cmd.external_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(stored_answer))
}

/// The answer of a receipt another request posted first.
pub(super) async fn replay_existing(pool: &PgPool, cmd: &PurchaseCmd) -> Result<Posted, StoreError> {
    let mut conn = pool.acquire().await?;
    let stored = stored_receipt(&mut conn, cmd).await?;
    replay(stored, &cmd.request_hash, None)?.ok_or(StoreError::NotFound(crate::Entity::Transaction))
}

/// Posts one purchase inside `tx`; `Ok(None)` means another request posted the same
/// receipt first (the caller rolls back and replays it). Budget points the sale drew
/// are added to `taken`; the caller gives them back if the sale does not commit.
pub(super) async fn post_purchase_in(
    tx: &mut PgConnection,
    cmd: &PurchaseCmd,
    budgets: &Budgets,
    taken: &mut Taken,
) -> Result<Option<Posted>, StoreError> {
    if let Some(posted) = replay(stored_receipt(tx, cmd).await?, &cmd.request_hash, None)? {
        return Ok(Some(posted));
    }
    let owner = match &cmd.location_id {
        Some(id) => location_owner(tx, id).await?,
        None => None,
    };
    let state = member_state(tx, &cmd.member, true, |due| needs_lots(cmd.redeem_points, due, cmd.now)).await?;
    let visits = match cmd.rules.reads_visits() {
        true => Some(visits(tx, &state.member_id, &cmd.partner.id).await?),
        false => None,
    };
    let counters = draft_counters(tx, &cmd.rules, &state.member_id, budgets, taken).await?;
    let facts = PurchaseFacts {
        state: &state,
        location_owner: owner.as_ref(),
        visits,
        counters: &counters,
    };
    let d = match decide_purchase(cmd, facts, ReceiptStatus::Posted) {
        Ok(d) => d,
        Err(refusal) => {
            // A copy of this receipt may have committed while this one waited for the
            // member's lock (and spent the points this one would): its answer, not a
            // refusal. Checked on refusals only, so a sale pays nothing for it.
            if let Some(posted) = replay(stored_receipt(tx, cmd).await?, &cmd.request_hash, None)? {
                return Ok(Some(posted));
            }
            return Err(refusal.into());
        }
    };
    keep_drawn(budgets, taken, &d.granted).await;
    // Everything is encoded before the first write: past it, only the database fails.
    let receipt = to_json(&d.receipt)?;
    let awards = award_rows(&cmd.rules, &d.granted)?;
    let inserted = sqlx::query(
        "INSERT INTO transactions (id, partner_id, external_id, member_id, location_id, occurred_at, recorded_at,
             total_amount, total_currency, points_earned, points_redeemed, lines, request_hash, receipt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (partner_id, external_id) DO NOTHING",
    )
    .bind(cmd.transaction_id.as_str())
    .bind(cmd.partner.id.as_str())
    .bind(&cmd.external_id)
    .bind(d.member_id.as_str())
    .bind(cmd.location_id.as_ref().map(|l| l.as_str()))
    .bind(to_micros(cmd.occurred_at))
    .bind(to_micros(cmd.now))
    .bind(cmd.total.amount)
    .bind(cmd.total.currency.code())
    .bind(d.points_earned())
    .bind(cmd.redeem_points)
    .bind(&cmd.lines_json)
    .bind(&cmd.request_hash)
    .bind(&receipt)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    write_plan(tx, &d.member_id, &d.plan, cmd.now).await?;
    let visit = Some((&d.member_id, &cmd.partner.id, cmd.occurred_at));
    write_awards(tx, cmd.transaction_id.as_str(), &awards, visit).await?;
    Ok(Some(Posted {
        receipt_json: receipt,
        replayed: false,
    }))
}

/// A stored purchase; with `lock`, its row is locked until the transaction ends.
pub(super) async fn transaction_row(
    conn: &mut PgConnection,
    id: &TransactionId,
    lock: bool,
) -> Result<Option<TransactionRow>, StoreError> {
    let sql = format!(
        "SELECT id, partner_id, member_id, external_id, total_amount, total_currency, points_earned, points_redeemed,
                returned_amount, points_reversed, points_refunded, receipt FROM transactions WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(r) = sqlx::query(&sql).bind(id.as_str()).fetch_optional(conn).await? else {
        return Ok(None);
    };
    Ok(Some(TransactionRow {
        id: TransactionId::from_stored(r.try_get(0)?),
        partner_id: PartnerId::from_stored(r.try_get(1)?),
        member_id: MemberId::from_stored(r.try_get(2)?),
        external_id: r.try_get(3)?,
        total: money(r.try_get(4)?, &r.try_get::<String, _>(5)?)?,
        points_earned: r.try_get(6)?,
        points_redeemed: r.try_get(7)?,
        returned_amount: r.try_get(8)?,
        points_reversed: r.try_get(9)?,
        points_refunded: r.try_get(10)?,
        receipt_json: r.try_get(11)?,
    }))
}

impl PgStore {
    pub async fn post_purchase(&self, cmd: PurchaseCmd) -> Result<Posted, StoreError> {
        self.purchases.post(cmd)?.await
    }

    /// Posts many purchases; each is answered on its own, in order.
    pub async fn post_purchases(&self, cmds: Vec<PurchaseCmd>) -> Vec<Result<Posted, StoreError>> {
        let answers: Vec<_> = cmds.into_iter().map(|cmd| self.purchases.post(cmd)).collect();
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            out.push(match answer {
                Ok(answer) => answer.await,
                Err(e) => Err(e),
            });
        }
        out
    }

    /// The sale's decision without the write: nothing is locked, no budget is drawn.
    pub async fn quote_purchase(&self, cmd: PurchaseCmd) -> Result<PurchaseReceipt, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let owner = match &cmd.location_id {
            Some(id) => location_owner(&mut conn, id).await?,
            None => None,
        };
        let state = member_state(&mut conn, &cmd.member, false, |due| {
            needs_lots(cmd.redeem_points, due, cmd.now)
        })
        .await?;
        let counters = current_counters(&mut conn, &cmd.rules, &state.member_id).await?;
        let facts = PurchaseFacts {
            state: &state,
            location_owner: owner.as_ref(),
            visits: None,
            counters: &counters,
        };
        Ok(decide_purchase(&cmd, facts, ReceiptStatus::Quote)?.receipt)
    }

    pub async fn transaction(&self, id: TransactionId) -> Result<Option<TransactionRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        transaction_row(&mut conn, &id, false).await
    }
}
