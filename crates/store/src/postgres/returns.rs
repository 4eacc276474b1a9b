//! Returns of a purchase: the purchase first, locked (returns of one purchase queue;
//! only its own partner may return it), then the return id (the same return again
//! replays; the id on another purchase is a conflict), then the decision and its write.

use super::PgStore;
use super::challenges::undo_steps;
use super::ledger::{write_holder_plan, write_plan};
use super::members::{load_wallet_state, member_state};
use super::partners::partner_name;
use super::purchases::transaction_row;
use super::referrals::reverse_referral;
use super::rules::{reverse_awards, saved_awards};
use super::tiers::{read_tier, write_tier};
use super::wallets::lock_wallets;
use crate::codec::{purchase_record, to_json};
use crate::model::{Holder, MemberRef, Posted, ReturnCmd, to_micros};
use crate::{Entity, StoreError};
use sqlx::PgConnection;
use tally_domain::decide::{ReturnFacts, StoredAnswer, decide_return, replay};
use tally_domain::ids::WalletId;

async fn stored_return(conn: &mut PgConnection, cmd: &ReturnCmd) -> Result<Option<StoredAnswer>, StoreError> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT request_hash, receipt, transaction_id FROM returns WHERE partner_id = $1 AND external_id = $2",
    )
    .bind(cmd.partner_id.as_str())
    .bind(&cmd.external_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(request_hash, receipt_json, target)| StoredAnswer {
        request_hash,
        receipt_json,
        target: Some(target),
    }))
}

impl PgStore {
    pub async fn post_return(&self, cmd: ReturnCmd) -> Result<Posted, StoreError> {
        let mut tx = self.pool.begin().await?;
        let txn = transaction_row(&mut tx, &cmd.transaction_id, true)
            .await?
            .filter(|t| t.partner_id == cmd.partner_id)
            .ok_or(StoreError::NotFound(Entity::Transaction))?;
        if let Some(posted) = replay(
            stored_return(&mut tx, &cmd).await?,
            &cmd.request_hash,
            Some(txn.id.as_str()),
        )? {
            return Ok(posted);
        }
        let name = partner_name(&mut tx, &txn.partner_id).await?;
        let state = member_state(&mut tx, &MemberRef::Id(txn.member_id.clone()), true, |_| true).await?;
        let awards = saved_awards(&mut tx, &txn.id).await?;
        let record = purchase_record(&txn, name);
        // The wallet the purchase used and the household it counted in (a ladder per
        // household), locked together after the member as every writer does. A wallet
        // closed by then, as read under its lock, is left alone.
        let wallets = txn.wallet.iter().map(|(w, _)| w).chain(&txn.tier_household);
        let open = lock_wallets(&mut tx, wallets.map(WalletId::as_str).collect()).await?;
        let wallet = match &txn.wallet {
            Some((w, _)) if open.contains(w) => {
                Some(load_wallet_state(&mut tx, w, Some(&txn.member_id), false, |_| true).await?)
            }
            Some(_) => None,
            None => None,
        };
        let household_tier = match &txn.tier_household {
            Some(w) => Some(read_tier(&mut tx, Holder::Wallet { id: w, actor: None }, false).await?),
            None => None,
        };
        let facts = ReturnFacts {
            purchase: &record,
            state: &state,
            awards: &awards,
            wallet: wallet.as_ref(),
            household_tier: household_tier.as_ref(),
        };
        let d = decide_return(&cmd, facts)?;
        let receipt = to_json(&d.receipt)?;
        let inserted = sqlx::query(
            "INSERT INTO returns (id, transaction_id, partner_id, external_id, amount, recorded_at, request_hash, receipt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (partner_id, external_id) DO NOTHING",
        )
                .bind(cmd.return_id.as_str())
        .bind(txn.id.as_str())
        .bind(cmd.partner_id.as_str())
        .bind(&cmd.external_id)
        .bind(cmd.amount.amount)
        .bind(to_micros(cmd.now))
        .bind(&cmd.request_hash)
        .bind(&receipt)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // The same return id was used at the same moment for another purchase.
            return Err(tally_domain::DomainError::IdempotencyConflict.into());
        }
        let change = d.purchase_change;
        sqlx::query(
            "UPDATE transactions SET returned_amount = returned_amount + $2, points_reversed = points_reversed + $3,
                 points_refunded = points_refunded + $4 WHERE id = $1",
        )
        .bind(txn.id.as_str())
        .bind(change.returned_amount)
        .bind(change.points_reversed)
        .bind(change.points_refunded)
        .execute(&mut *tx)
        .await?;
        write_plan(&mut tx, &txn.member_id, &d.plan, cmd.now).await?;
        if let Some((wallet_id, plan)) = &d.wallet_plan {
            let holder = Holder::Wallet {
                id: wallet_id,
                actor: Some(&txn.member_id),
            };
            write_holder_plan(&mut tx, holder, plan, cmd.now).await?;
        }
        reverse_awards(&mut tx, &txn.id, &d.award_reversals).await?;
        if let Some(tier) = &d.tier {
            let holder = Holder::Member(&txn.member_id);
            write_tier(&mut tx, holder, tier, &cmd.program.tiers, &d.tier_changes, None).await?;
        }
        if let Some((w, tier)) = &d.household_tier {
            let holder = Holder::Wallet { id: w, actor: None };
            write_tier(&mut tx, holder, tier, &cmd.program.tiers, &d.tier_changes, None).await?;
        }
        let follow_up =
            reverse_referral(&mut tx, &cmd, &txn.member_id, (record.total.amount, d.returned_after)).await?;
        if d.returned_after >= record.total.amount {
            undo_steps(&mut tx, &txn.member_id, txn.id.as_str()).await?;
        }
        tx.commit().await?;
        Ok(Posted {
            receipt_json: receipt,
            replayed: false,
            follow_up,
            completed: Vec::new(),
        })
    }
}
