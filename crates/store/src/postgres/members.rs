//! Members: identities, the balances and lots their decisions read (locked for a
//! write), the profile and visit counts rules read, and their history.

use super::PgStore;
use crate::codec::{TIER_COLUMNS, tier_state};
use crate::codec::{keys_json, segments_from_json};
use crate::model::{
    ActivityQuery, ActivityRow, MemberProfile, MemberRef, MemberRow, NewMember, from_micros, to_micros,
};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tally_domain::identity::Identity;
use tally_domain::ids::{Id, MemberId, PartnerId, WalletId};
use tally_domain::lots::{Lot, LotOrigin};
use tally_domain::plan::{Balance, MemberState};
use tally_domain::rules::MemberFacts;
use tally_domain::tiers::TierState;

async fn member_id_by_identity(conn: &mut PgConnection, identity: &Identity) -> Result<Option<MemberId>, StoreError> {
    let id: Option<String> = sqlx::query_scalar("SELECT member_id FROM identities WHERE kind = $1 AND value = $2")
        .bind(identity.kind.as_str())
        .bind(&identity.value)
        .fetch_optional(conn)
        .await?;
    Ok(id.map(MemberId::from_stored))
}

/// The id of the member a request names; `NotFound` if there is none.
pub(super) async fn resolve_member(conn: &mut PgConnection, member: &MemberRef) -> Result<MemberId, StoreError> {
    let id = match member {
        MemberRef::Id(id) => {
            let found: Option<String> = sqlx::query_scalar("SELECT id FROM members WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(conn)
                .await?;
            found.map(MemberId::from_stored)
        }
        MemberRef::Identity(identity) => member_id_by_identity(conn, identity).await?,
    };
    id.ok_or(StoreError::NotFound(Entity::Member))
}

pub(super) async fn member(conn: &mut PgConnection, id: &MemberId) -> Result<Option<MemberRow>, StoreError> {
    let row = sqlx::query(
        "SELECT id, name, country, referral_code, created_at, available, pending, lifetime_earned, next_due_at, referred_by,
                tier, segments, plan, reserved FROM members WHERE id = $1",
    )
        .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let identities: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, value FROM identities WHERE member_id = $1 ORDER BY kind, value")
            .bind(id.as_str())
            .fetch_all(conn)
            .await?;
    Ok(Some(MemberRow {
        id: MemberId::from_stored(r.try_get(0)?),
        name: r.try_get(1)?,
        country: r.try_get(2)?,
        referral_code: r.try_get(3)?,
        referred_by: r.try_get::<Option<String>, _>(9)?.map(MemberId::from_stored),
        created_at: from_micros(r.try_get(4)?),
        balance: Balance {
            available: r.try_get(5)?,
            pending: r.try_get(6)?,
            lifetime_earned: r.try_get(7)?,
        },
        identities,
        next_due_at: r.try_get::<Option<i64>, _>(8)?.map(from_micros),
        reserved: r.try_get(13)?,
        profile: MemberProfile {
            tier: r.try_get(10)?,
            segments: segments_from_json(&r.try_get::<String, _>(11)?)?,
            plan: r.try_get(12)?,
            keep_tier: false,
            keep_plan: false,
        },
    }))
}

/// Reads the tier columns of a row whose first of them is column `at`.
pub(super) fn tier_from_row(r: &PgRow, at: usize) -> Result<TierState, StoreError> {
    Ok(tier_state(
        r.try_get(at)?,
        r.try_get(at + 1)?,
        r.try_get(at + 2)?,
        r.try_get(at + 3)?,
        r.try_get(at + 4)?,
        r.try_get(at + 5)?,
        r.try_get(at + 6)?,
        r.try_get(at + 7)?,
        r.try_get(at + 8)?,
    ))
}

/// The state of the member a request names, found in one query; with `lock`, its row is
/// locked until the transaction ends. Every open lot is read too when `want_lots`
/// (given the stored due time) says the decision needs them.
pub(super) async fn member_state(
    conn: &mut PgConnection,
    member: &MemberRef,
    lock: bool,
    want_lots: impl FnOnce(Option<Timestamp>) -> bool,
) -> Result<MemberState, StoreError> {
    let lock = if lock { " FOR UPDATE OF m" } else { "" };
    let row: Option<PgRow> = match member {
        MemberRef::Id(id) => sqlx::query(&format!(
            "SELECT m.id, m.available, m.pending, m.lifetime_earned, m.next_due_at, {TIER_COLUMNS}, m.plan, m.wallet_default,
                 m.referred_by
             FROM members m WHERE m.id = $1{lock}"
        ))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?,
        MemberRef::Identity(identity) => {
            sqlx::query(&format!(
                "SELECT m.id, m.available, m.pending, m.lifetime_earned, m.next_due_at, {TIER_COLUMNS}, m.plan,
                     m.wallet_default, m.referred_by
                 FROM identities i JOIN members m ON m.id = i.member_id
                 WHERE i.kind = $1 AND i.value = $2{lock}"
            ))
            .bind(identity.kind.as_str())
            .bind(&identity.value)
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    let r = row.ok_or(StoreError::NotFound(Entity::Member))?;
    let member_id = MemberId::from_stored(r.try_get(0)?);
    let next_due_at = r.try_get::<Option<i64>, _>(4)?.map(from_micros);
    let lots_loaded = want_lots(next_due_at);
    let lots = match lots_loaded {
        true => open_lots(conn, member_id.as_str()).await?,
        false => Vec::new(),
    };
    Ok(MemberState {
        member_id,
        balance: Balance {
            available: r.try_get(1)?,
            pending: r.try_get(2)?,
            lifetime_earned: r.try_get(3)?,
        },
        lots,
        lots_loaded,
        next_due_at,
        tier: tier_from_row(&r, 5)?,
        plan: r.try_get(14)?,
        wallet: None,
        default_wallet: r.try_get::<Option<String>, _>(15)?.map(WalletId::from_stored),
        referred_by: r.try_get::<Option<String>, _>(16)?.map(MemberId::from_stored),
        // created_at, the last of the tier columns
        joined_at: from_micros(r.try_get(13)?),
    })
}

/// Every open lot of a member or a shared wallet.
pub(super) async fn open_lots(conn: &mut PgConnection, holder: &str) -> Result<Vec<Lot>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, remaining, earned_at, expires_at, matures_at, transaction_id, origin FROM lots WHERE member_id = $1 AND remaining > 0",
    )
    .bind(holder)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| lot_from(r, 0)).collect()
}

/// A shared wallet's balances (and its open lots when `want_lots` says so), as `actor`
/// acts on it (`None`: the scheduled run); with `lock`, its row is locked until the
/// transaction ends.
pub(super) async fn load_wallet_state(
    conn: &mut PgConnection,
    wallet_id: &WalletId,
    actor: Option<&MemberId>,
    lock: bool,
    want_lots: impl FnOnce(Option<Timestamp>) -> bool,
) -> Result<MemberState, StoreError> {
    let sql = format!(
        "SELECT available, pending, lifetime_earned, next_due_at FROM wallets WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let r = sqlx::query(&sql)
        .bind(wallet_id.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound(Entity::Wallet))?;
    let next_due = r.try_get::<Option<i64>, _>(3)?.map(from_micros);
    let balance = Balance {
        available: r.try_get(0)?,
        pending: r.try_get(1)?,
        lifetime_earned: r.try_get(2)?,
    };
    let mut state = MemberState::of_wallet(wallet_id.clone(), actor.cloned().unwrap_or_default(), balance, next_due);
    if want_lots(next_due) {
        state.lots = open_lots(conn, wallet_id.as_str()).await?;
        state.lots_loaded = true;
    }
    Ok(state)
}

/// A lot from a row whose columns from `first` on are id, remaining, earned_at,
/// expires_at, matures_at, transaction_id and origin.
pub(super) fn lot_from(r: &PgRow, first: usize) -> Result<Lot, StoreError> {
    Ok(Lot {
        id: Some(r.try_get(first)?),
        remaining: r.try_get(first + 1)?,
        earned_at: from_micros(r.try_get(first + 2)?),
        expires_at: from_micros(r.try_get(first + 3)?),
        matures_at: r.try_get::<Option<i64>, _>(first + 4)?.map(from_micros),
        transaction_id: r.try_get(first + 5)?,
        origin: LotOrigin::parse(&r.try_get::<String, _>(first + 6)?),
    })
}

/// The member's purchases at the partner so far.
pub(super) async fn visits(
    conn: &mut PgConnection,
    member_id: &MemberId,
    partner_id: &PartnerId,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT visits FROM member_partners WHERE member_id = $1 AND partner_id = $2")
            .bind(member_id.as_str())
            .bind(partner_id.as_str())
            .fetch_optional(conn)
            .await?
            .unwrap_or(0),
    )
}

fn activity_row(r: &PgRow) -> Result<ActivityRow, StoreError> {
    Ok(ActivityRow {
        id: r.try_get(0)?,
        member_id: MemberId::from_stored(r.try_get(1)?),
        kind: r.try_get(2)?,
        points: r.try_get(3)?,
        occurred_at: from_micros(r.try_get(4)?),
        partner_id: r.try_get::<Option<String>, _>(5)?.map(PartnerId::from_stored),
        transaction_id: r.try_get(6)?,
        description: r.try_get(7)?,
    })
}

impl PgStore {
    pub async fn member_by_referral_code(&self, code: String) -> Result<Option<MemberId>, StoreError> {
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM members WHERE referral_code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.map(MemberId::from_stored))
    }

    pub async fn create_member(&self, m: NewMember) -> Result<MemberRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let referred_by: Option<String> = match &m.referred_by_code {
            Some(code) => Some(
                sqlx::query_scalar("SELECT id FROM members WHERE referral_code = $1")
                    .bind(code)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::UnknownReferralCode)?,
            ),
            None => None,
        };
        if let Some(referrer) = &referred_by {
            let emails: Vec<String> =
                sqlx::query_scalar("SELECT value FROM identities WHERE member_id = $1 AND kind = 'email'")
                    .bind(referrer)
                    .fetch_all(&mut *tx)
                    .await?;
            if crate::referrals::self_referral(&m.identities, &emails) {
                return Err(StoreError::SelfReferral);
            }
        }
        sqlx::query("INSERT INTO members (id, name, country, referral_code, referred_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(m.id.as_str())
            .bind(&m.name)
            .bind(&m.country)
            .bind(&m.referral_code)
            .bind(referred_by)
            .bind(to_micros(m.created_at))
            .execute(&mut *tx)
            .await?;
        for identity in &m.identities {
            let inserted = sqlx::query(
                "INSERT INTO identities (kind, value, member_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(identity.kind.as_str())
            .bind(&identity.value)
            .bind(m.id.as_str())
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::IdentityTaken);
            }
        }
        let row = member(&mut tx, &m.id)
            .await?
            .ok_or(StoreError::NotFound(Entity::Member))?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn member(&self, id: MemberId) -> Result<Option<MemberRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        member(&mut conn, &id).await
    }

    pub async fn lookup_member(&self, identity: Identity) -> Result<Option<MemberRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        match member_id_by_identity(&mut conn, &identity).await? {
            Some(id) => member(&mut conn, &id).await,
            None => Ok(None),
        }
    }

    pub async fn activity(&self, q: ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, member_id, kind, points, occurred_at, partner_id, transaction_id, description FROM activity
             WHERE member_id = $1 AND ($2::text IS NULL OR partner_id = $2) AND ($3::bigint IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(q.member_id.as_str())
        .bind(q.partner_id.as_ref().map(PartnerId::as_str))
        .bind(q.before_id)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(activity_row).collect()
    }

    pub async fn set_member_profile(&self, id: MemberId, p: MemberProfile) -> Result<MemberRow, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let n = sqlx::query(
            "UPDATE members SET tier = CASE WHEN $5 THEN tier ELSE $2 END, segments = $3,
                 plan = CASE WHEN $6 THEN plan ELSE $4 END WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(&p.tier)
        .bind(keys_json(&p.segments)?)
        .bind(&p.plan)
        .bind(p.keep_tier)
        .bind(p.keep_plan)
        .execute(&mut *conn)
        .await?;
        if n.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Member));
        }
        member(&mut conn, &id)
            .await?
            .ok_or(StoreError::NotFound(Entity::Member))
    }

    /// What rules may know of a member, with the visits at `partner_id`; none if unknown.
    pub async fn member_facts(
        &self,
        member_ref: MemberRef,
        partner_id: Option<PartnerId>,
        household_tier: bool,
    ) -> Result<Option<MemberFacts>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        member_facts(&mut conn, &member_ref, partner_id.as_ref(), household_tier).await
    }
}

/// What rules may know of a member, with the visits at `partner_id`; none if unknown.
pub(super) async fn member_facts(
    conn: &mut PgConnection,
    member_ref: &MemberRef,
    partner_id: Option<&PartnerId>,
    household_tier: bool,
) -> Result<Option<MemberFacts>, StoreError> {
    let id = match resolve_member(&mut *conn, member_ref).await {
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
                 WHERE m.id = $1"
            }
            false => "SELECT tier, segments, plan, country, created_at, referred_by FROM members WHERE id = $1",
        };
    let Some(r) = sqlx::query(sql).bind(id.as_str()).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let visits = match partner_id {
        Some(p) => visits(&mut *conn, &id, p).await?,
        None => 0,
    };
    Ok(Some(MemberFacts {
        id: id.into_string(),
        tier: r.try_get(0)?,
        segments: segments_from_json(&r.try_get::<String, _>(1)?)?,
        plan: r.try_get(2)?,
        country: r.try_get(3)?,
        joined_at: from_micros(r.try_get(4)?),
        visits,
        referred_by: r.try_get(5)?,
    }))
}
