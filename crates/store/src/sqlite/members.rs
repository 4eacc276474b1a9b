//! Members: identities, the balances and lots their decisions read, the profile and
//! visit counts rules read, and their history.

use super::SqliteStore;
use crate::codec::{TIER_COLUMNS, tier_state};
use crate::codec::{keys_json, segments_from_json};
use crate::model::{
    ActivityQuery, ActivityRow, MemberProfile, MemberRef, MemberRow, NewMember, from_micros, to_micros,
};
use crate::referrals::self_referral;
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_domain::identity::Identity;
use tally_domain::ids::{Id, MemberId, PartnerId, WalletId};
use tally_domain::lots::{Lot, LotOrigin};
use tally_domain::plan::{Balance, MemberState};
use tally_domain::rules::MemberFacts;
use tally_domain::tiers::TierState;

fn create_member(conn: &Connection, m: &NewMember) -> Result<(), StoreError> {
    for identity in &m.identities {
        if member_id_by_identity(conn, identity)?.is_some() {
            return Err(StoreError::IdentityTaken);
        }
    }
    let referred_by: Option<String> = match &m.referred_by_code {
        Some(code) => Some(
            conn.prepare_cached("SELECT id FROM members WHERE referral_code = ?1")?
                .query_row([code], |r| r.get(0))
                .optional()?
                .ok_or(StoreError::UnknownReferralCode)?,
        ),
        None => None,
    };
    if let Some(referrer) = &referred_by {
        let mut stmt = conn.prepare_cached("SELECT value FROM identities WHERE member_id = ?1 AND kind = 'email'")?;
        let emails = stmt
            .query_map([referrer], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        if self_referral(&m.identities, &emails) {
            return Err(StoreError::SelfReferral);
        }
    }
    conn.prepare_cached("INSERT INTO members (id, name, country, referral_code, referred_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![m.id.as_str(), m.name, m.country, m.referral_code, referred_by, to_micros(m.created_at)])?;
    for identity in &m.identities {
        conn.prepare_cached("INSERT INTO identities (kind, value, member_id) VALUES (?1, ?2, ?3)")?
            .execute(params![identity.kind.as_str(), identity.value, m.id.as_str()])?;
    }
    Ok(())
}

fn member_id_by_identity(conn: &Connection, identity: &Identity) -> Result<Option<MemberId>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT member_id FROM identities WHERE kind = ?1 AND value = ?2")?
        .query_row(params![identity.kind.as_str(), identity.value], |r| r.get(0))
        .optional()?
        .map(MemberId::from_stored))
}

fn member(conn: &Connection, id: &MemberId) -> Result<Option<MemberRow>, StoreError> {
    type Profile = (Option<String>, String, Option<String>);
    let row = conn
        .prepare_cached(
            "SELECT id, name, country, referral_code, created_at, available, pending, lifetime_earned, next_due_at, referred_by,
                    tier, segments, plan, reserved FROM members WHERE id = ?1",
        )?
        .query_row([id.as_str()], |r| {
            let profile: Profile = (r.get(10)?, r.get(11)?, r.get(12)?);
            Ok((
                MemberRow {
                    id: MemberId::from_stored(r.get(0)?),
                    name: r.get(1)?,
                    country: r.get(2)?,
                    referral_code: r.get(3)?,
                    referred_by: r.get::<_, Option<String>>(9)?.map(MemberId::from_stored),
                    created_at: from_micros(r.get(4)?),
                    balance: Balance {
                        available: r.get(5)?,
                        pending: r.get(6)?,
                        lifetime_earned: r.get(7)?,
                    },
                    identities: Vec::new(),
                    next_due_at: r.get::<_, Option<i64>>(8)?.map(from_micros),
                    reserved: r.get(13)?,
                    profile: MemberProfile::default(),
                },
                profile,
            ))
        })
        .optional()?;
    let Some((mut row, (tier, segments, plan))) = row else {
        return Ok(None);
    };
    row.profile = MemberProfile {
        tier,
        segments: segments_from_json(&segments)?,
        plan,
        keep_tier: false,
        keep_plan: false,
    };
    let mut stmt =
        conn.prepare_cached("SELECT kind, value FROM identities WHERE member_id = ?1 ORDER BY kind, value")?;
    row.identities = stmt
        .query_map([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(row))
}

/// The id of the member a request names; `NotFound` if there is none.
pub(super) fn resolve_member(conn: &Connection, member: &MemberRef) -> Result<MemberId, StoreError> {
    let id = match member {
        MemberRef::Id(id) => conn
            .prepare_cached("SELECT id FROM members WHERE id = ?1")?
            .query_row([id.as_str()], |r| r.get(0))
            .optional()?
            .map(MemberId::from_stored),
        MemberRef::Identity(identity) => member_id_by_identity(conn, identity)?,
    };
    id.ok_or(StoreError::NotFound(Entity::Member))
}

/// The member's balances and stored due time, and every open lot when `want_lots`
/// (given the stored due time) says the decision needs them.
/// Reads the tier columns of a row whose first of them is column `at`.
pub(super) fn tier_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<TierState> {
    Ok(tier_state(
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
        r.get::<_, i64>(at + 5)? != 0,
        r.get(at + 6)?,
        r.get(at + 7)?,
        r.get(at + 8)?,
    ))
}

pub(super) fn load_state(
    conn: &Connection,
    member_id: &MemberId,
    want_lots: impl FnOnce(Option<Timestamp>) -> bool,
) -> Result<MemberState, StoreError> {
    let (balance, next_due, tier, plan, default_wallet, (referred_by, joined_at)) = conn
        .prepare_cached(&format!(
            "SELECT available, pending, lifetime_earned, next_due_at, {TIER_COLUMNS}, plan, wallet_default, referred_by
             FROM members WHERE id = ?1"
        ))?
        .query_row([member_id.as_str()], |r| {
            Ok((
                Balance {
                    available: r.get(0)?,
                    pending: r.get(1)?,
                    lifetime_earned: r.get(2)?,
                },
                r.get::<_, Option<i64>>(3)?.map(from_micros),
                tier_from_row(r, 4)?,
                r.get::<_, Option<String>>(13)?,
                r.get::<_, Option<String>>(14)?.map(WalletId::from_stored),
                (
                    r.get::<_, Option<String>>(15)?.map(MemberId::from_stored),
                    from_micros(r.get(12)?), // created_at, the last tier column
                ),
            ))
        })
        .optional()?
        .ok_or(StoreError::NotFound(Entity::Member))?;
    let lots_loaded = want_lots(next_due);
    let lots = match lots_loaded {
        true => open_lots(conn, member_id.as_str())?,
        false => Vec::new(),
    };
    Ok(MemberState {
        member_id: member_id.clone(),
        balance,
        lots,
        lots_loaded,
        next_due_at: next_due,
        tier,
        plan,
        wallet: None,
        default_wallet,
        referred_by,
        joined_at,
    })
}

/// Every open lot of a member or a shared wallet.
pub(super) fn open_lots(conn: &Connection, holder: &str) -> Result<Vec<Lot>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, remaining, earned_at, expires_at, matures_at, transaction_id, origin FROM lots WHERE member_id = ?1 AND remaining > 0",
    )?;
    let rows = stmt.query_map([holder], |r| {
        Ok(Lot {
            id: Some(r.get(0)?),
            remaining: r.get(1)?,
            earned_at: from_micros(r.get(2)?),
            expires_at: from_micros(r.get(3)?),
            matures_at: r.get::<_, Option<i64>>(4)?.map(from_micros),
            transaction_id: r.get(5)?,
            origin: LotOrigin::parse(&r.get::<_, String>(6)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A shared wallet's balances (and its open lots when `want_lots` says so), as `actor`
/// acts on it (`None`: the scheduled run).
pub(super) fn load_wallet_state(
    conn: &Connection,
    wallet_id: &WalletId,
    actor: Option<&MemberId>,
    want_lots: impl FnOnce(Option<Timestamp>) -> bool,
) -> Result<MemberState, StoreError> {
    let (balance, next_due) = conn
        .prepare_cached("SELECT available, pending, lifetime_earned, next_due_at FROM wallets WHERE id = ?1")?
        .query_row([wallet_id.as_str()], |r| {
            Ok((
                Balance {
                    available: r.get(0)?,
                    pending: r.get(1)?,
                    lifetime_earned: r.get(2)?,
                },
                r.get::<_, Option<i64>>(3)?.map(from_micros),
            ))
        })
        .optional()?
        .ok_or(StoreError::NotFound(Entity::Wallet))?;
    let mut state = MemberState::of_wallet(wallet_id.clone(), actor.cloned().unwrap_or_default(), balance, next_due);
    if want_lots(next_due) {
        state.lots = open_lots(conn, wallet_id.as_str())?;
        state.lots_loaded = true;
    }
    Ok(state)
}

/// The member's purchases at the partner so far.
pub(super) fn visits(conn: &Connection, member_id: &MemberId, partner_id: &PartnerId) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT visits FROM member_partners WHERE member_id = ?1 AND partner_id = ?2")?
        .query_row(params![member_id.as_str(), partner_id.as_str()], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

pub(super) fn bump_visit(
    conn: &Connection,
    member_id: &MemberId,
    partner_id: &PartnerId,
    at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO member_partners (member_id, partner_id, visits, first_at, last_at) VALUES (?1, ?2, 1, ?3, ?3)
         ON CONFLICT (member_id, partner_id) DO UPDATE SET visits = visits + 1, last_at = MAX(last_at, excluded.last_at)",
    )?
    .execute(params![member_id.as_str(), partner_id.as_str(), to_micros(at)])?;
    Ok(())
}

fn set_profile(conn: &Connection, member_id: &MemberId, p: &MemberProfile) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE members SET tier = CASE WHEN ?5 THEN tier ELSE ?2 END, segments = ?3,
                 plan = CASE WHEN ?6 THEN plan ELSE ?4 END WHERE id = ?1",
        )?
        .execute(params![
            member_id.as_str(),
            p.tier,
            keys_json(&p.segments)?,
            p.plan,
            p.keep_tier,
            p.keep_plan
        ])?;
    if n == 0 {
        return Err(StoreError::NotFound(Entity::Member));
    }
    Ok(())
}

/// What rules may know of a member, with the visits at `partner_id`; none if unknown.
pub(super) fn member_facts(
    conn: &Connection,
    member: &MemberRef,
    partner_id: Option<&PartnerId>,
    household_tier: bool,
) -> Result<Option<MemberFacts>, StoreError> {
    let id = match resolve_member(conn, member) {
        Ok(id) => id,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let sql = match household_tier {
        true => {
            "SELECT CASE WHEN wm.wallet_id IS NULL THEN m.tier ELSE h.tier END, m.segments, m.plan, m.country, m.created_at, m.referred_by
             FROM members m
             LEFT JOIN wallet_members wm ON wm.member_id = m.id AND wm.kind = 'household' AND wm.left_at IS NULL
             LEFT JOIN wallets h ON h.id = wm.wallet_id
             WHERE m.id = ?1"
        }
        false => "SELECT tier, segments, plan, country, created_at, referred_by FROM members WHERE id = ?1",
    };
    let row = conn
        .prepare_cached(sql)?
        .query_row([id.as_str()], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .optional()?;
    let Some((tier, segments, plan, country, created, referred_by)) = row else {
        return Ok(None);
    };
    let visits = match partner_id {
        Some(p) => visits(conn, &id, p)?,
        None => 0,
    };
    Ok(Some(MemberFacts {
        id: id.into_string(),
        tier,
        segments: segments_from_json(&segments)?,
        plan,
        country,
        joined_at: from_micros(created),
        visits,
        referred_by,
    }))
}

fn activity(conn: &Connection, q: &ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, member_id, kind, points, occurred_at, partner_id, transaction_id, description FROM activity
         WHERE member_id = ?1 AND (?2 IS NULL OR partner_id = ?2) AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4",
    )?;
    let partner = q.partner_id.as_ref().map(PartnerId::as_str);
    let rows = stmt.query_map(params![q.member_id.as_str(), partner, q.before_id, q.limit], |r| {
        Ok(ActivityRow {
            id: r.get(0)?,
            member_id: MemberId::from_stored(r.get(1)?),
            kind: r.get(2)?,
            points: r.get(3)?,
            occurred_at: from_micros(r.get(4)?),
            partner_id: r.get::<_, Option<String>>(5)?.map(PartnerId::from_stored),
            transaction_id: r.get(6)?,
            description: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

impl SqliteStore {
    pub async fn member_by_referral_code(&self, code: String) -> Result<Option<MemberId>, StoreError> {
        self.read(move |c| {
            Ok(c.prepare_cached("SELECT id FROM members WHERE referral_code = ?1")?
                .query_row([code.as_str()], |r| r.get::<_, String>(0))
                .optional()?
                .map(MemberId::from_stored))
        })
        .await
    }

    pub async fn create_member(&self, new: NewMember) -> Result<MemberRow, StoreError> {
        self.write(move |c| {
            create_member(c, &new)?;
            member(c, &new.id)?.ok_or(StoreError::NotFound(Entity::Member))
        })
        .await
    }

    pub async fn member(&self, id: MemberId) -> Result<Option<MemberRow>, StoreError> {
        self.read(move |c| member(c, &id)).await
    }

    pub async fn lookup_member(&self, identity: Identity) -> Result<Option<MemberRow>, StoreError> {
        self.read(move |c| match member_id_by_identity(c, &identity)? {
            Some(id) => member(c, &id),
            None => Ok(None),
        })
        .await
    }

    pub async fn activity(&self, query: ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
        self.read(move |c| activity(c, &query)).await
    }

    pub async fn set_member_profile(&self, id: MemberId, profile: MemberProfile) -> Result<MemberRow, StoreError> {
        self.write(move |c| {
            set_profile(c, &id, &profile)?;
            member(c, &id)?.ok_or(StoreError::NotFound(Entity::Member))
        })
        .await
    }

    pub async fn member_facts(
        &self,
        member: MemberRef,
        partner_id: Option<PartnerId>,
        household_tier: bool,
    ) -> Result<Option<MemberFacts>, StoreError> {
        self.read(move |c| member_facts(c, &member, partner_id.as_ref(), household_tier))
            .await
    }
}
