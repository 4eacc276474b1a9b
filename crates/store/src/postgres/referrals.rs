//! Referral rewards: a referred member's qualifying sale decides her referral once (in
//! the sale group's transaction, under an advisory lock per referrer so her monthly
//! limit holds across writers), the points of both members are given by posting
//! `referral_converted` to each with both members and the referral row locked, and a
//! full return takes them back the same way.

use super::PgStore;
use super::budgets::Taken;
use super::challenges::undo_steps;
use super::events::write_event;
use super::ledger::write_plan;
use super::members::member_state;
use super::wallets::household_of;
use crate::StoreError;
use crate::model::{EventCmd, MemberRef, PurchaseCmd, ReturnCmd, to_micros};
use crate::referrals::{
    INVITED_SQL, InvitedTuple, MemberReferrals, RECORD_COLUMNS, RecordTuple, ReferralRecord, SOURCE, SUMMARY_SQL, Side,
    event_external_id, invited_from, record_from, take_back,
};
use jiff::Timestamp;
use sqlx::PgConnection;
use tally_domain::ids::{Id, MemberId};
use tally_domain::plan::plan_take_back;
use tally_domain::referrals::{ConversionFacts, ReferralStatus, decide_conversion, month_window, still_converted};

/// Holds the referrers' advisory locks until the transaction ends, in id order (as
/// rows are locked), so two writers deciding referrals of one referrer take turns.
pub(super) async fn lock_referrers(tx: &mut PgConnection, mut ids: Vec<&str>) -> Result<(), StoreError> {
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('tally.referrer:' || $1, 0))")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// After a referred member's qualifying sale (`referrer` brought her; her row and the
/// referrer's advisory lock held): decides her referral unless an earlier sale did.
/// Answers her id when it converted.
pub(super) async fn decide_referral(
    tx: &mut PgConnection,
    cmd: &PurchaseCmd,
    member: &MemberId,
    referrer: &MemberId,
) -> Result<Option<MemberId>, StoreError> {
    let Some(policy) = cmd.program.referrals.as_deref() else {
        return Ok(None);
    };
    if referral(&mut *tx, member, false).await?.is_some() {
        return Ok(None);
    }
    let (from, to) = month_window(cmd.now);
    let this_month: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM referrals
         WHERE referrer_id = $1 AND decided_at >= $2 AND decided_at < $3 AND status <> 'declined'",
    )
    .bind(referrer.as_str())
    .bind(to_micros(from))
    .bind(to_micros(to))
    .fetch_one(&mut *tx)
    .await?;
    let households = (
        household_of(&mut *tx, member).await?,
        household_of(&mut *tx, referrer).await?,
    );
    let facts = ConversionFacts {
        referrer_this_month: this_month,
        same_household: matches!(households, (Some(a), Some(b)) if a == b),
    };
    let c = decide_conversion(policy, member, referrer, cmd.valuation.earning_amount, facts);
    sqlx::query(
        "INSERT INTO referrals (member_id, referrer_id, status, reason, transaction_id, decided_at, amount_minor)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(member.as_str())
    .bind(referrer.as_str())
    .bind(c.status.as_str())
    .bind(c.reason)
    .bind(cmd.transaction_id.as_str())
    .bind(to_micros(cmd.now))
    .bind(c.amount_minor)
    .execute(&mut *tx)
    .await?;
    Ok((c.status == ReferralStatus::Converted).then(|| member.clone()))
}

/// After a return of `member`'s purchase `transaction_id` (of `total`, `returned` of it
/// now returned; the purchase row locked): reverses the referral it converted when too
/// little of it is kept ([`still_converted`]). Answers her id when it did.
pub(super) async fn reverse_referral(
    tx: &mut PgConnection,
    cmd: &ReturnCmd,
    member: &MemberId,
    (total, returned): (i64, i64),
) -> Result<Option<MemberId>, StoreError> {
    let (transaction_id, now) = (cmd.transaction_id.as_str(), cmd.now);
    let amount: Option<i64> = sqlx::query_scalar(
        "SELECT amount_minor FROM referrals WHERE member_id = $1 AND transaction_id = $2 AND status = 'converted'",
    )
    .bind(member.as_str())
    .bind(transaction_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(amount) = amount else {
        return Ok(None);
    };
    if still_converted(cmd.program.referrals.as_deref(), amount, total, returned) {
        return Ok(None);
    }
    let n = sqlx::query(
        "UPDATE referrals SET status = 'reversed', reversed_at = $3
         WHERE member_id = $1 AND transaction_id = $2 AND status = 'converted'",
    )
    .bind(member.as_str())
    .bind(transaction_id)
    .bind(to_micros(now))
    .execute(&mut *tx)
    .await?;
    Ok((n.rows_affected() == 1).then(|| member.clone()))
}

async fn referral(
    conn: &mut PgConnection,
    member: &MemberId,
    lock: bool,
) -> Result<Option<ReferralRecord>, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<RecordTuple> = sqlx::query_as(&format!(
        "SELECT {RECORD_COLUMNS} FROM referrals WHERE member_id = $1{lock}"
    ))
    .bind(member.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(record_from))
}

/// Locks both members of the referral of `member` (in id order, as every writer
/// does), then its row. `FOR NO KEY UPDATE`: a sale that writes the referred member's
/// row twice in one transaction checks her `referred_by` key again, share-locking the
/// referrer's row while it holds hers; a no-key lock lets that check through instead
/// of waiting on it (a deadlock).
async fn lock_referral(tx: &mut PgConnection, member: &MemberId) -> Result<Option<ReferralRecord>, StoreError> {
    let Some(r) = referral(&mut *tx, member, false).await? else {
        return Ok(None);
    };
    let _: Vec<i32> = sqlx::query_scalar("SELECT 1 FROM members WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(vec![r.member_id.as_str(), r.referrer_id.as_str()])
        .fetch_all(&mut *tx)
        .await?;
    referral(&mut *tx, member, true).await
}

/// The most times a referral's follow-up is tried again after a deadlock (a writer
/// that took the two members the other way round) before it is left to the scheduled run.
const TRANSIENT_RETRIES: u32 = 3;

impl PgStore {
    pub async fn referral(&self, member: MemberId) -> Result<Option<ReferralRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        referral(&mut conn, &member, false).await
    }

    /// Posts `referral_converted` to both members (`cmds`, one per side) if the
    /// referral is still converted and not yet rewarded. Answers whether it did.
    pub async fn reward_referral(&self, member: MemberId, cmds: Vec<EventCmd>) -> Result<bool, StoreError> {
        let this = self.clone();
        // In a task of its own, as an event: budget points drawn are settled whatever
        // becomes of the request.
        tokio::spawn(async move {
            let mut attempt = 0;
            loop {
                let mut taken = Taken::new();
                let done = this.reward_in(&member, &cmds, &mut taken).await;
                if !matches!(done, Ok(true)) {
                    this.budgets.give_back(&taken).await;
                }
                match done {
                    Err(e) if e.is_transient() && attempt < TRANSIENT_RETRIES => attempt += 1,
                    other => return other,
                }
            }
        })
        .await
        .map_err(|_| StoreError::stopped("a referral task failed"))?
    }

    async fn reward_in(&self, member: &MemberId, cmds: &[EventCmd], taken: &mut Taken) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !lock_referral(&mut tx, member).await?.is_some_and(|r| r.to_reward()) {
            return Ok(false);
        }
        for cmd in cmds {
            if write_event(&mut tx, cmd, &self.budgets, taken).await?.is_none() {
                return Err(StoreError::stopped("a referral's event was posted by another writer"));
            }
        }
        sqlx::query("UPDATE referrals SET rewarded = 1 WHERE member_id = $1")
            .bind(member.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes back what `referral_converted` gave each member, once, if the referral
    /// was reversed after its points were given. Answers whether it did.
    pub async fn take_back_referral(&self, member: MemberId, now: Timestamp) -> Result<bool, StoreError> {
        let mut attempt = 0;
        loop {
            match self.take_back_in(&member, now).await {
                Err(e) if e.is_transient() && attempt < TRANSIENT_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    async fn take_back_in(&self, member: &MemberId, now: Timestamp) -> Result<bool, StoreError> {
        let member = member.clone();
        let mut tx = self.pool.begin().await?;
        let Some(r) = lock_referral(&mut tx, &member)
            .await?
            .filter(ReferralRecord::to_take_back)
        else {
            return Ok(false);
        };
        let reversal = format!("referral:{}", member.as_str());
        for side in Side::BOTH {
            let event: Option<(String, i64)> =
                sqlx::query_as("SELECT id, points_earned FROM events WHERE source = $1 AND external_id = $2")
                    .bind(SOURCE)
                    .bind(event_external_id(&member, side))
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((event_id, points)) = event.filter(|(_, p)| *p > 0) else {
                continue;
            };
            let holder = r.member(side);
            let state = member_state(&mut tx, &MemberRef::Id(holder.clone()), true, |_| true).await?;
            let (plan, _, _) = plan_take_back(&state, &take_back(&event_id, points, &reversal), now)?;
            write_plan(&mut tx, holder, &plan, now).await?;
            // A challenge counting referral events no longer counts this one.
            undo_steps(&mut tx, holder, &event_id).await?;
        }
        sqlx::query("UPDATE referrals SET taken_back = 1 WHERE member_id = $1")
            .bind(member.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn unfinished_referrals(&self, limit: u32) -> Result<Vec<MemberId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT member_id FROM referrals
             WHERE (status = 'converted' AND rewarded = 0) OR (status = 'reversed' AND rewarded = 1 AND taken_back = 0)
             ORDER BY decided_at
             LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(MemberId::from_stored).collect())
    }

    pub async fn member_referrals(
        &self,
        referrer: MemberId,
        limit: u32,
        after: Option<MemberId>,
    ) -> Result<MemberReferrals, StoreError> {
        let (invited, converted, reversed, declined, points_earned): (i64, i64, i64, i64, i64) =
            sqlx::query_as(&format!("{SUMMARY_SQL}$1"))
                .bind(referrer.as_str())
                .fetch_one(&self.pool)
                .await?;
        let rows: Vec<InvitedTuple> = sqlx::query_as(&format!(
            "{INVITED_SQL}
             WHERE m.referred_by = $1
               AND ($2::text IS NULL OR (m.created_at, m.id) < (SELECT created_at, id FROM members WHERE id = $2))
             ORDER BY m.created_at DESC, m.id DESC LIMIT $3"
        ))
        .bind(referrer.as_str())
        .bind(after.as_ref().map(MemberId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(MemberReferrals {
            invited,
            converted,
            reversed,
            declined,
            points_earned,
            items: rows.into_iter().map(invited_from).collect(),
        })
    }
}
