//! Sales at the till, and their quotes: read the facts, let the domain decide, write
//! the decision (or, for a quote, only answer it).

use super::SqliteStore;
use super::challenges::count_steps;
use super::ledger::{write_holder_plan, write_plan};
use super::members::{bump_visit, load_state, load_wallet_state, resolve_member, visits};
use super::partners::location_owner;
use super::referrals::decide_referral;
use super::rules::{draft_counters, write_awards};
use super::tiers::{household_standing, write_tier};
use super::wallets::wallet_link;
use super::writer::{self, Job};
use crate::StoreError;
use crate::codec::{money, route_code, sale_wallet, to_json};
use crate::model::{Holder, MemberRef, Posted, PurchaseCmd, TransactionRow, from_micros, to_micros};
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::decide::{
    PurchaseDecision, PurchaseFacts, ReceiptStatus, StoredAnswer, WalletFacts, decide_purchase, replay,
};
use tally_domain::ids::{Id, MemberId, PartnerId, TransactionId, WalletId};
use tally_domain::plan::needs_lots;
use tally_domain::receipt::PurchaseReceipt;

/// The first answer under the partner's receipt id, if it was used.
fn stored_receipt(conn: &Connection, cmd: &PurchaseCmd) -> Result<Option<StoredAnswer>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT request_hash, receipt FROM transactions WHERE partner_id = ?1 AND external_id = ?2")?
        .query_row(params![cmd.partner.id.as_str(), cmd.external_id], |r| {
            Ok(StoredAnswer {
                request_hash: r.get(0)?,
                receipt_json: r.get(1)?,
                target: None,
            })
        })
        .optional()?)
}

/// Reads a sale's facts and decides it.
fn decide(conn: &Connection, cmd: &PurchaseCmd, status: ReceiptStatus) -> Result<PurchaseDecision, StoreError> {
    let owner = match &cmd.location_id {
        Some(id) => location_owner(conn, id)?,
        None => None,
    };
    let member_id = match &cmd.member {
        // load_state finds (or refuses) a member named by id.
        MemberRef::Id(id) => id.clone(),
        other => resolve_member(conn, other)?,
    };
    let state = load_state(conn, &member_id, |due| needs_lots(cmd.redeem_points, due, cmd.now))?;
    let visits = match cmd.rules.reads_visits() && status == ReceiptStatus::Posted {
        true => Some(visits(conn, &member_id, &cmd.partner.id)?),
        false => None,
    };
    let counters = draft_counters(conn, &cmd.rules, &member_id)?;
    // The shared wallet in play: the one the till named, else the member's default.
    let wallet = match cmd.wallet_in_play(&state) {
        Some(w) => match wallet_link(conn, &member_id, w)? {
            Some(link) => {
                let redeem = cmd.redeem_points;
                let wstate = load_wallet_state(conn, w, Some(&member_id), |due| needs_lots(redeem, due, cmd.now))?;
                Some((link, wstate))
            }
            None => None,
        },
        None => None,
    };
    // With a ladder per household, the household's standing counts.
    let household = household_standing(conn, &cmd.program.tiers, &member_id)?;
    let facts = PurchaseFacts {
        state: &state,
        location_owner: owner.as_ref(),
        visits,
        counters: &counters,
        wallet: wallet.as_ref().map(|(link, state)| WalletFacts { link, state }),
        household_tier: household.as_ref().map(|(w, t)| (w, t)),
    };
    Ok(decide_purchase(cmd, facts, status)?)
}

fn post_purchase(conn: &Connection, cmd: &PurchaseCmd) -> Result<Posted, StoreError> {
    if let Some(posted) = replay(stored_receipt(conn, cmd)?, &cmd.request_hash, None)? {
        return Ok(posted);
    }
    let d = decide(conn, cmd, ReceiptStatus::Posted)?;
    let receipt = to_json(&d.receipt)?;
    conn.prepare_cached(
        "INSERT INTO transactions (id, partner_id, external_id, member_id, location_id, occurred_at, recorded_at,
             total_amount, total_currency, points_earned, points_redeemed, lines, request_hash, receipt, tier_qualifying,
             wallet_id, wallet_route, tier_household, points_operator)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    )?
    .execute(params![
        cmd.transaction_id.as_str(),
        cmd.partner.id.as_str(),
        cmd.external_id,
        d.member_id.as_str(),
        cmd.location_id.as_ref().map(|l| l.as_str()),
        to_micros(cmd.occurred_at),
        to_micros(cmd.now),
        cmd.total.amount,
        cmd.total.currency.code(),
        d.points_earned(),
        cmd.redeem_points,
        cmd.lines_json,
        cmd.request_hash,
        receipt,
        d.tier_qualifying,
        d.wallet.as_ref().map(|w| w.wallet_id.as_str()),
        d.wallet.as_ref().map(|w| route_code(w.route)),
        d.household_tier.as_ref().map(|(w, _)| w.as_str()),
        d.points_operator()
    ])?;
    write_plan(conn, &d.member_id, &d.plan, cmd.now)?;
    if let Some(w) = &d.wallet {
        let holder = Holder::Wallet {
            id: &w.wallet_id,
            actor: Some(&d.member_id),
        };
        write_holder_plan(conn, holder, &w.plan, cmd.now)?;
    }
    if !cmd.program.tiers.levels.is_empty() {
        let (holder, standing) = match &d.household_tier {
            Some((w, t)) => (Holder::Wallet { id: w, actor: None }, t),
            None => (Holder::Member(&d.member_id), &d.tier),
        };
        let sale = Some(cmd.transaction_id.as_str());
        write_tier(conn, holder, standing, &cmd.program.tiers, &d.tier_changes, sale)?;
    }
    write_awards(conn, cmd.transaction_id.as_str(), &d.granted)?;
    bump_visit(conn, &d.member_id, &cmd.partner.id, cmd.occurred_at)?;
    let follow_up = match &d.referral {
        Some(referrer) => decide_referral(conn, cmd, &d.member_id, referrer)?,
        None => None,
    };
    let completed = count_steps(
        conn,
        &d.member_id,
        cmd.transaction_id.as_str(),
        &cmd.rules.steps,
        cmd.now,
    )?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
        follow_up,
        completed,
    })
}

pub(super) fn transaction(conn: &Connection, id: &TransactionId) -> Result<Option<TransactionRow>, StoreError> {
    type Row = (
        (String, String, String, String),
        (i64, String),
        (i64, i64, i64, i64, i64, String),
        (i64, i64, Option<String>, Option<i64>, Option<String>, i64),
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT id, partner_id, member_id, external_id, total_amount, total_currency, points_earned, points_redeemed,
                    returned_amount, points_reversed, points_refunded, receipt, tier_qualifying, recorded_at,
                    wallet_id, wallet_route, tier_household, points_operator
             FROM transactions WHERE id = ?1",
        )?
        .query_row([id.as_str()], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
                (r.get(4)?, r.get(5)?),
                (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?),
                (r.get(12)?, r.get(13)?, r.get(14)?, r.get(15)?, r.get(16)?, r.get(17)?),
            ))
        })
        .optional()?;
    let Some((
        (id, partner_id, member_id, external_id),
        (amount, currency),
        rest,
        (tier_qualifying, recorded_at, wallet_id, wallet_route, tier_household, points_operator),
    )) = row
    else {
        return Ok(None);
    };
    let (points_earned, points_redeemed, returned_amount, points_reversed, points_refunded, receipt_json) = rest;
    Ok(Some(TransactionRow {
        id: TransactionId::from_stored(id),
        partner_id: PartnerId::from_stored(partner_id),
        member_id: MemberId::from_stored(member_id),
        external_id,
        total: money(amount, &currency)?,
        points_earned,
        points_operator,
        points_redeemed,
        returned_amount,
        points_reversed,
        points_refunded,
        receipt_json,
        tier_qualifying,
        recorded_at: from_micros(recorded_at),
        wallet: sale_wallet(wallet_id, wallet_route),
        tier_household: tier_household.map(WalletId::from_stored),
    }))
}

impl SqliteStore {
    pub async fn post_purchase(&self, cmd: PurchaseCmd) -> Result<Posted, StoreError> {
        self.write(move |c| post_purchase(c, &cmd)).await
    }

    /// Posts many purchases in one queue entry; each is answered on its own, in order.
    pub async fn post_purchases(&self, cmds: Vec<PurchaseCmd>) -> Vec<Result<Posted, StoreError>> {
        let (jobs, receivers): (Vec<Job>, Vec<_>) = cmds
            .into_iter()
            .map(|cmd| writer::job(move |c| post_purchase(c, &cmd)))
            .unzip();
        if let Err(e) = self.inner.writer.send(jobs) {
            let overloaded = matches!(e, StoreError::Overloaded);
            return receivers
                .iter()
                .map(|_| {
                    Err(match overloaded {
                        true => StoreError::Overloaded,
                        false => StoreError::stopped("the SQLite writer has stopped"),
                    })
                })
                .collect();
        }
        let mut out = Vec::with_capacity(receivers.len());
        for rx in receivers {
            out.push(
                rx.await
                    .unwrap_or_else(|_| Err(StoreError::stopped("the SQLite writer dropped a job"))),
            );
        }
        out
    }

    /// The sale's decision on a reader, without writing: what it would earn and pay.
    pub async fn quote_purchase(&self, cmd: PurchaseCmd) -> Result<PurchaseReceipt, StoreError> {
        self.read(move |c| Ok(decide(c, &cmd, ReceiptStatus::Quote)?.receipt))
            .await
    }
    pub async fn transaction(&self, id: TransactionId) -> Result<Option<TransactionRow>, StoreError> {
        self.read(move |c| transaction(c, &id)).await
    }
}
