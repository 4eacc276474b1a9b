//! Returns of a purchase: the purchase first (only its own partner may return it), then
//! the return id (the same return again replays; the id on another purchase is a
//! conflict), then the decision and its write.

use super::SqliteStore;
use super::challenges::undo_steps;
use super::ledger::{write_holder_plan, write_plan};
use super::members::{load_state, load_wallet_state};
use super::partners::partner;
use super::purchases::transaction;
use super::referrals::reverse_referral;
use super::rules::{reverse_awards, saved_awards};
use super::tiers::{read_tier, write_tier};
use super::wallets::wallet_is_open;
use crate::codec::{purchase_record, to_json};
use crate::model::{Holder, Posted, ReturnCmd, to_micros};
use crate::{Entity, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::decide::{ReturnFacts, StoredAnswer, decide_return, replay};

fn stored_return(conn: &Connection, cmd: &ReturnCmd) -> Result<Option<StoredAnswer>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT request_hash, receipt, transaction_id FROM returns WHERE partner_id = ?1 AND external_id = ?2",
        )?
        .query_row(params![cmd.partner_id.as_str(), cmd.external_id], |r| {
            Ok(StoredAnswer {
                request_hash: r.get(0)?,
                receipt_json: r.get(1)?,
                target: Some(r.get(2)?),
            })
        })
        .optional()?)
}

fn post_return(conn: &Connection, cmd: &ReturnCmd) -> Result<Posted, StoreError> {
    let txn = transaction(conn, &cmd.transaction_id)?
        .filter(|t| t.partner_id == cmd.partner_id)
        .ok_or(StoreError::NotFound(Entity::Transaction))?;
    if let Some(posted) = replay(stored_return(conn, cmd)?, &cmd.request_hash, Some(txn.id.as_str()))? {
        return Ok(posted);
    }
    let partner_name = partner(conn, &txn.partner_id)?.map(|p| p.name).unwrap_or_default();
    let state = load_state(conn, &txn.member_id, |_| true)?;
    let awards = saved_awards(conn, &txn.id)?;
    let record = purchase_record(&txn, partner_name);
    let wallet = match &txn.wallet {
        Some((w, _)) if wallet_is_open(conn, w)? => Some(load_wallet_state(conn, w, Some(&txn.member_id), |_| true)?),
        Some(_) => None,
        None => None,
    };
    let household_tier = match &txn.tier_household {
        Some(w) => Some(read_tier(conn, Holder::Wallet { id: w, actor: None })?),
        None => None,
    };
    let facts = ReturnFacts {
        purchase: &record,
        state: &state,
        awards: &awards,
        wallet: wallet.as_ref(),
        household_tier: household_tier.as_ref(),
    };
    let d = decide_return(cmd, facts)?;
    let receipt = to_json(&d.receipt)?;
    conn.prepare_cached(
        "INSERT INTO returns (id, transaction_id, partner_id, external_id, amount, recorded_at, request_hash, receipt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        cmd.return_id.as_str(),
        txn.id.as_str(),
        cmd.partner_id.as_str(),
        cmd.external_id,
        cmd.amount.amount,
        to_micros(cmd.now),
        cmd.request_hash,
        receipt
    ])?;
    let change = d.purchase_change;
    conn.prepare_cached(
        "UPDATE transactions SET returned_amount = returned_amount + ?2, points_reversed = points_reversed + ?3,
             points_refunded = points_refunded + ?4 WHERE id = ?1",
    )?
    .execute(params![
        txn.id.as_str(),
        change.returned_amount,
        change.points_reversed,
        change.points_refunded
    ])?;
    write_plan(conn, &txn.member_id, &d.plan, cmd.now)?;
    if let Some((wallet_id, plan)) = &d.wallet_plan {
        let holder = Holder::Wallet {
            id: wallet_id,
            actor: Some(&txn.member_id),
        };
        write_holder_plan(conn, holder, plan, cmd.now)?;
    }
    reverse_awards(conn, &txn.id, &d.award_reversals)?;
    if let Some(tier) = &d.tier {
        write_tier(
            conn,
            Holder::Member(&txn.member_id),
            tier,
            &cmd.program.tiers,
            &d.tier_changes,
            None,
        )?;
    }
    if let Some((w, tier)) = &d.household_tier {
        let holder = Holder::Wallet { id: w, actor: None };
        write_tier(conn, holder, tier, &cmd.program.tiers, &d.tier_changes, None)?;
    }
    let follow_up = reverse_referral(conn, cmd, &txn.member_id, (record.total.amount, d.returned_after))?;
    if d.returned_after >= record.total.amount {
        undo_steps(conn, &txn.member_id, txn.id.as_str())?;
    }
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
        follow_up,
        completed: Vec::new(),
    })
}

impl SqliteStore {
    pub async fn post_return(&self, cmd: ReturnCmd) -> Result<Posted, StoreError> {
        self.write(move |c| post_return(c, &cmd)).await
    }
}
