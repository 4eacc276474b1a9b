//! Sales at the till, and their quotes: read the facts (the member's row locked), let
//! the domain decide, write the decision in as few statements as possible.

use super::PgStore;
use super::budgets::{Budgets, Taken};
use super::ledger::{bind_plan, plan_statement};
use super::members::{member_state, member_state_probing, visits};
use super::partners::location_owner;
use super::rules::{AwardRows, award_rows, bind_awards, current_counters, draft_counters, keep_drawn};
use crate::StoreError;
use crate::codec::{money, stored_answer, to_json};
use crate::model::{Posted, PurchaseCmd, TransactionRow, to_micros};
use sqlx::{PgConnection, PgPool, Row};
use tally_domain::decide::{PurchaseDecision, PurchaseFacts, ReceiptStatus, StoredAnswer, decide_purchase, replay};
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
    let receipt_id = Some((cmd.partner.id.as_str(), cmd.external_id.as_str()));
    let needs = |due| needs_lots(cmd.redeem_points, due, cmd.now);
    let (state, stored) = match member_state_probing(tx, &cmd.member, true, receipt_id, needs).await {
        Ok(found) => found,
        // A receipt is answered as stored even if its member can no longer be named so.
        Err(StoreError::NotFound(e)) => match replay(stored_receipt(tx, cmd).await?, &cmd.request_hash, None)? {
            Some(posted) => return Ok(Some(posted)),
            None => return Err(StoreError::NotFound(e)),
        },
        Err(e) => return Err(e),
    };
    if let Some(posted) = replay(stored, &cmd.request_hash, None)? {
        return Ok(Some(posted));
    }
    let owner = match &cmd.location_id {
        Some(id) => location_owner(tx, id).await?,
        None => None,
    };
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
    if !write_sale(tx, cmd, &d, &receipt, &awards).await? {
        return Ok(None);
    }
    Ok(Some(Posted {
        receipt_json: receipt,
        replayed: false,
    }))
}

/// Every write of a sale in one statement: the transaction row first, then (each only
/// if that row was written: another request may have taken the receipt id meanwhile)
/// the plan, the counted awards and cap counters, and the member's visit at the
/// partner. True when the sale was written.
async fn write_sale(
    tx: &mut PgConnection,
    cmd: &PurchaseCmd,
    d: &PurchaseDecision,
    receipt: &str,
    awards: &AwardRows,
) -> Result<bool, StoreError> {
    const GATE: &str = " AND EXISTS (SELECT 1 FROM t)";
    let sale = format!(
        "t AS (
             INSERT INTO transactions (id, partner_id, external_id, member_id, location_id, occurred_at, recorded_at,
                 total_amount, total_currency, points_earned, points_redeemed, lines, request_hash, receipt)
             VALUES ($29, $30, $31, $12, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41)
             ON CONFLICT (partner_id, external_id) DO NOTHING RETURNING 1
         ), aw AS (
             INSERT INTO rule_awards (transaction_id, rule_id, rule_version, points, counter_keys)
             SELECT $29, r, v, p, k FROM UNNEST($42::text[], $43::bigint[], $44::bigint[], $45::text[]) AS x(r, v, p, k)
             WHERE TRUE{GATE}
         ), ct AS (
             INSERT INTO rule_counters (key, used)
             SELECT k, n FROM UNNEST($46::text[], $47::bigint[]) AS x(k, n) WHERE TRUE{GATE}
             ON CONFLICT (key) DO UPDATE SET used = rule_counters.used + EXCLUDED.used
         ), mp AS (
             INSERT INTO member_partners (member_id, partner_id, visits, first_at, last_at)
             SELECT $12::text, $30::text, 1, $33::bigint, $33::bigint WHERE TRUE{GATE}
             ON CONFLICT (member_id, partner_id) DO UPDATE
             SET visits = member_partners.visits + 1, last_at = GREATEST(member_partners.last_at, EXCLUDED.last_at)
         ),"
    );
    let statement = plan_statement(&sale, GATE);
    let query = bind_plan(sqlx::query(&statement), &d.member_id, &d.plan, cmd.now)
        .bind(cmd.transaction_id.as_str())
        .bind(cmd.partner.id.as_str())
        .bind(&cmd.external_id)
        .bind(cmd.location_id.as_ref().map(|l| l.as_str()))
        .bind(to_micros(cmd.occurred_at))
        .bind(to_micros(cmd.now))
        .bind(cmd.total.amount)
        .bind(cmd.total.currency.code())
        .bind(d.points_earned())
        .bind(cmd.redeem_points)
        .bind(&cmd.lines_json)
        .bind(&cmd.request_hash)
        .bind(receipt);
    let written = bind_awards(query, awards).execute(&mut *tx).await?;
    Ok(written.rows_affected() == 1)
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
