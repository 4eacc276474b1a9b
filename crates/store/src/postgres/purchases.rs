//! Sales at the till, and their quotes: read the facts (the member's row locked), let
//! the domain decide, write the decision in as few statements as possible.

use super::PgStore;
use super::members::{load_wallet_state, member_state};
use super::partners::location_owner;
use super::rules::current_counters;
use super::tiers::household_standing;
use super::wallets::wallet_link;
use crate::StoreError;
use crate::codec::{money, sale_wallet, stored_answer};
use crate::model::{Posted, PurchaseCmd, TransactionRow, from_micros};
use sqlx::{PgConnection, PgPool, Row};
use tally_domain::decide::{PurchaseFacts, ReceiptStatus, StoredAnswer, WalletFacts, decide_purchase, replay};
use tally_domain::ids::{Id, MemberId, PartnerId, TransactionId, WalletId};
use tally_domain::plan::needs_lots;
use tally_domain::receipt::PurchaseReceipt;

/// The first answer under the partner's receipt id, if it was used.
pub(super) async fn stored_receipt(
    conn: &mut PgConnection,
    cmd: &PurchaseCmd,
) -> Result<Option<StoredAnswer>, StoreError> {
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

/// A stored purchase; with `lock`, its row is locked until the transaction ends.
pub(super) async fn transaction_row(
    conn: &mut PgConnection,
    id: &TransactionId,
    lock: bool,
) -> Result<Option<TransactionRow>, StoreError> {
    let sql = format!(
        "SELECT id, partner_id, member_id, external_id, total_amount, total_currency, points_earned, points_redeemed,
                returned_amount, points_reversed, points_refunded, receipt, tier_qualifying, recorded_at,
                wallet_id, wallet_route, tier_household, points_operator
         FROM transactions WHERE id = $1{}",
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
        points_operator: r.try_get(17)?,
        points_redeemed: r.try_get(7)?,
        returned_amount: r.try_get(8)?,
        points_reversed: r.try_get(9)?,
        points_refunded: r.try_get(10)?,
        receipt_json: r.try_get(11)?,
        tier_qualifying: r.try_get(12)?,
        recorded_at: from_micros(r.try_get(13)?),
        wallet: sale_wallet(r.try_get(14)?, r.try_get::<Option<i16>, _>(15)?.map(i64::from)),
        tier_household: r.try_get::<Option<String>, _>(16)?.map(WalletId::from_stored),
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
        let wallet = match cmd.wallet_in_play(&state) {
            Some(w) => match wallet_link(&mut conn, &state.member_id, w).await? {
                Some(link) => {
                    let want = |due| needs_lots(cmd.redeem_points, due, cmd.now);
                    let wstate = load_wallet_state(&mut conn, w, Some(&state.member_id), false, want).await?;
                    Some((link, wstate))
                }
                None => None,
            },
            None => None,
        };
        let household = household_standing(&mut conn, &cmd.program.tiers, &state.member_id, false).await?;
        let facts = PurchaseFacts {
            state: &state,
            location_owner: owner.as_ref(),
            visits: None,
            counters: &counters,
            wallet: wallet.as_ref().map(|(link, state)| WalletFacts { link, state }),
            household_tier: household.as_ref().map(|(w, t)| (w, t)),
        };
        Ok(decide_purchase(&cmd, facts, ReceiptStatus::Quote)?.receipt)
    }

    pub async fn transaction(&self, id: TransactionId) -> Result<Option<TransactionRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        transaction_row(&mut conn, &id, false).await
    }
}
