//! Referral rewards: a referred member's qualifying sale decides her referral once
//! (in the sale's write), the points of both members are given by posting
//! `referral_converted` to each, and a full return takes them back; all in the single
//! writer, so nothing races.

use super::SqliteStore;
use super::challenges::undo_steps;
use super::events::post_event;
use super::ledger::write_plan;
use super::members::load_state;
use super::wallets::household_of;
use crate::StoreError;
use crate::model::{EventCmd, PurchaseCmd, ReturnCmd, to_micros};
use crate::referrals::{
    INVITED_SQL, InvitedRow, MemberReferrals, RECORD_COLUMNS, ReferralRecord, SOURCE, SUMMARY_SQL, Side,
    event_external_id, invited_from, record_from, take_back,
};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::ids::{Id, MemberId};
use tally_domain::plan::plan_take_back;
use tally_domain::referrals::{ConversionFacts, ReferralStatus, decide_conversion, month_window, still_converted};

/// After a referred member's qualifying sale (`referrer` brought her): decides her
/// referral unless an earlier sale did. Answers her id when it converted.
pub(super) fn decide_referral(
    conn: &Connection,
    cmd: &PurchaseCmd,
    member: &MemberId,
    referrer: &MemberId,
) -> Result<Option<MemberId>, StoreError> {
    let Some(policy) = cmd.program.referrals.as_deref() else {
        return Ok(None);
    };
    if referral(conn, member)?.is_some() {
        return Ok(None);
    }
    let (from, to) = month_window(cmd.now);
    let this_month: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM referrals
             WHERE referrer_id = ?1 AND decided_at >= ?2 AND decided_at < ?3 AND status <> 'declined'",
        )?
        .query_row(params![referrer.as_str(), to_micros(from), to_micros(to)], |r| r.get(0))?;
    let households = (household_of(conn, member)?, household_of(conn, referrer)?);
    let facts = ConversionFacts {
        referrer_this_month: this_month,
        same_household: matches!(households, (Some(a), Some(b)) if a == b),
    };
    let c = decide_conversion(policy, member, referrer, cmd.valuation.earning_amount, facts);
    conn.prepare_cached(
        "INSERT INTO referrals (member_id, referrer_id, status, reason, transaction_id, decided_at, amount_minor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        member.as_str(),
        referrer.as_str(),
        c.status.as_str(),
        c.reason,
        cmd.transaction_id.as_str(),
        to_micros(cmd.now),
        c.amount_minor
    ])?;
    Ok((c.status == ReferralStatus::Converted).then(|| member.clone()))
}

/// After a return of `member`'s purchase `transaction_id` (of `total`, `returned` of it
/// now returned): reverses the referral it converted when too little of it is kept
/// ([`still_converted`]). Answers her id when it did.
pub(super) fn reverse_referral(
    conn: &Connection,
    cmd: &ReturnCmd,
    member: &MemberId,
    (total, returned): (i64, i64),
) -> Result<Option<MemberId>, StoreError> {
    let (transaction_id, now) = (cmd.transaction_id.as_str(), cmd.now);
    let amount: Option<i64> = conn
        .prepare_cached(
            "SELECT amount_minor FROM referrals WHERE member_id = ?1 AND transaction_id = ?2 AND status = 'converted'",
        )?
        .query_row(params![member.as_str(), transaction_id], |r| r.get(0))
        .optional()?;
    let Some(amount) = amount else {
        return Ok(None);
    };
    if still_converted(cmd.program.referrals.as_deref(), amount, total, returned) {
        return Ok(None);
    }
    let n = conn
        .prepare_cached(
            "UPDATE referrals SET status = 'reversed', reversed_at = ?3
             WHERE member_id = ?1 AND transaction_id = ?2 AND status = 'converted'",
        )?
        .execute(params![member.as_str(), transaction_id, to_micros(now)])?;
    Ok((n == 1).then(|| member.clone()))
}

fn referral(conn: &Connection, member: &MemberId) -> Result<Option<ReferralRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM referrals WHERE member_id = ?1"))?
        .query_row([member.as_str()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .optional()?
        .map(record_from))
}

/// Posts `referral_converted` to both members (`cmds`, one per side) if the referral
/// is still converted and not yet rewarded. Answers whether it did.
fn reward(conn: &Connection, member: &MemberId, cmds: &[EventCmd]) -> Result<bool, StoreError> {
    if !referral(conn, member)?.is_some_and(|r| r.to_reward()) {
        return Ok(false);
    }
    for cmd in cmds {
        post_event(conn, cmd)?;
    }
    conn.prepare_cached("UPDATE referrals SET rewarded = 1 WHERE member_id = ?1")?
        .execute([member.as_str()])?;
    Ok(true)
}

/// Takes back what `referral_converted` gave each member, once, if the referral was
/// reversed after its points were given. Answers whether it did.
fn take_back_points(conn: &Connection, member: &MemberId, now: Timestamp) -> Result<bool, StoreError> {
    let Some(r) = referral(conn, member)?.filter(ReferralRecord::to_take_back) else {
        return Ok(false);
    };
    let reversal = format!("referral:{}", member.as_str());
    for side in Side::BOTH {
        let event: Option<(String, i64)> = conn
            .prepare_cached("SELECT id, points_earned FROM events WHERE source = ?1 AND external_id = ?2")?
            .query_row(params![SOURCE, event_external_id(member, side)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((event_id, points)) = event.filter(|(_, p)| *p > 0) else {
            continue;
        };
        let holder = r.member(side);
        let state = load_state(conn, holder, |_| true)?;
        let (plan, _, _) = plan_take_back(&state, &take_back(&event_id, points, &reversal), now)?;
        write_plan(conn, holder, &plan, now)?;
        // A challenge counting referral events no longer counts this one.
        undo_steps(conn, holder, &event_id)?;
    }
    conn.prepare_cached("UPDATE referrals SET taken_back = 1 WHERE member_id = ?1")?
        .execute([member.as_str()])?;
    Ok(true)
}

fn unfinished(conn: &Connection, limit: u32) -> Result<Vec<MemberId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT member_id FROM referrals
         WHERE (status = 'converted' AND rewarded = 0) OR (status = 'reversed' AND rewarded = 1 AND taken_back = 0)
             ORDER BY decided_at
         LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| r.get::<_, String>(0))?;
    Ok(rows
        .map(|r| r.map(MemberId::from_stored))
        .collect::<Result<Vec<_>, _>>()?)
}

fn member_referrals(
    conn: &Connection,
    referrer: &MemberId,
    limit: u32,
    after: Option<&MemberId>,
) -> Result<MemberReferrals, StoreError> {
    let (invited, converted, reversed, declined, points_earned) = conn
        .prepare_cached(&format!("{SUMMARY_SQL}?1"))?
        .query_row([referrer.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    let mut stmt = conn.prepare_cached(&format!(
        "{INVITED_SQL}
         WHERE m.referred_by = ?1
           AND (?2 IS NULL OR (m.created_at, m.id) < (SELECT created_at, id FROM members WHERE id = ?2))
         ORDER BY m.created_at DESC, m.id DESC LIMIT ?3"
    ))?;
    let items = stmt
        .query_map(params![referrer.as_str(), after.map(MemberId::as_str), limit], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .map(|r| r.map(invited_from))
        .collect::<Result<Vec<InvitedRow>, _>>()?;
    Ok(MemberReferrals {
        invited,
        converted,
        reversed,
        declined,
        points_earned,
        items,
    })
}

impl SqliteStore {
    pub async fn referral(&self, member: MemberId) -> Result<Option<ReferralRecord>, StoreError> {
        self.read(move |c| referral(c, &member)).await
    }

    pub async fn reward_referral(&self, member: MemberId, cmds: Vec<EventCmd>) -> Result<bool, StoreError> {
        self.write(move |c| reward(c, &member, &cmds)).await
    }

    pub async fn take_back_referral(&self, member: MemberId, now: Timestamp) -> Result<bool, StoreError> {
        self.write(move |c| take_back_points(c, &member, now)).await
    }

    pub async fn unfinished_referrals(&self, limit: u32) -> Result<Vec<MemberId>, StoreError> {
        self.read(move |c| unfinished(c, limit)).await
    }

    pub async fn member_referrals(
        &self,
        referrer: MemberId,
        limit: u32,
        after: Option<MemberId>,
    ) -> Result<MemberReferrals, StoreError> {
        self.read(move |c| member_referrals(c, &referrer, limit, after.as_ref()))
            .await
    }
}
