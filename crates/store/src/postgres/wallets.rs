//! Shared wallets on PostgreSQL: creating them, members joining (a household by invitation
//! code, a business's contacts added), rights, leaving, closing with a split, and the
//! statement per member from the ledger. The wallet's points move in the sale's and the
//! return's own decisions (`sales.rs`, `returns.rs`) and the expiry run (`ledger.rs`).
//! Each change is one transaction that locks the members whose rows it writes (in id
//! order), then the wallet: the order every writer takes them in, a sale included.

use super::PgStore;
use super::ledger::{write_holder_plan, write_plan};
use super::members::{load_wallet_state, member_state};
use crate::model::{
    Holder, JoinWallet, MemberRef, NewWallet, StatementLine, WalletMemberRow, WalletRights, WalletRow, from_micros,
    to_micros,
};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::{PgConnection, Row};
use std::collections::{BTreeSet, HashSet};
use tally_domain::decide::{Share, decide_settle, plan_close};
use tally_domain::ids::{Id, MemberId, WalletId};
use tally_domain::plan::Balance;
use tally_domain::wallets::roster::{
    Candidate, DefaultChange, Invite, Roster, Seat, SeatChange, decide_invite, decide_join, decide_leave, decide_open,
    decide_rights, may_receive_split,
};
use tally_domain::wallets::{Rights, WalletKind, WalletLink};

/// Locks the rows of the wallets `ids` (shared wallets a writer's sales or return use,
/// households whose standing they count in) in one statement, in id order, after the
/// members' rows: a writer takes every wallet it needs at once, so two writers never
/// hold one each while waiting for the other's. Answers those still open, as read
/// under the lock (a wallet closing meanwhile is seen closed).
pub(super) async fn lock_wallets(
    conn: &mut PgConnection,
    ids: BTreeSet<&str>,
) -> Result<HashSet<WalletId>, StoreError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<(String, bool)> =
        sqlx::query_as("SELECT id, closed_at IS NULL FROM wallets WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(ids.into_iter().collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, open)| *open)
        .map(|(id, _)| WalletId::from_stored(id))
        .collect())
}

/// The member's place in an open wallet they have not left, as a sale reads it.
pub(super) async fn wallet_link(
    conn: &mut PgConnection,
    member_id: &MemberId,
    wallet_id: &WalletId,
) -> Result<Option<WalletLink>, StoreError> {
    let row: Option<(String, bool, bool)> = sqlx::query_as(
        "SELECT wm.kind, wm.earn_into, wm.spend FROM wallet_members wm JOIN wallets w ON w.id = wm.wallet_id
         WHERE wm.wallet_id = $1 AND wm.member_id = $2 AND wm.left_at IS NULL AND w.closed_at IS NULL",
    )
    .bind(wallet_id.as_str())
    .bind(member_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(kind, earn_into, spend)| WalletLink {
        wallet_id: wallet_id.clone(),
        kind: WalletKind::parse(&kind).unwrap_or(WalletKind::Business),
        rights: Rights { earn_into, spend },
    }))
}

/// A wallet with its members (those who left too); with `lock`, its row is locked until
/// the transaction ends.
async fn wallet(conn: &mut PgConnection, id: &WalletId, lock: bool) -> Result<Option<WalletRow>, StoreError> {
    let sql = format!(
        "SELECT kind, name, owner_id, company_name, vat_id, created_at, closed_at, available, pending, lifetime_earned,
             next_due_at
         FROM wallets WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(r) = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let mut row = WalletRow {
        id: id.clone(),
        kind: WalletKind::parse(&r.try_get::<String, _>(0)?).unwrap_or(WalletKind::Business),
        name: r.try_get(1)?,
        owner: r.try_get::<Option<String>, _>(2)?.map(MemberId::from_stored),
        company_name: r.try_get(3)?,
        vat_id: r.try_get(4)?,
        created_at: from_micros(r.try_get(5)?),
        closed_at: r.try_get::<Option<i64>, _>(6)?.map(from_micros),
        balance: Balance {
            available: r.try_get(7)?,
            pending: r.try_get(8)?,
            lifetime_earned: r.try_get(9)?,
        },
        next_due_at: r.try_get::<Option<i64>, _>(10)?.map(from_micros),
        members: Vec::new(),
    };
    let members = sqlx::query(
        "SELECT wm.member_id, wm.role, wm.earn_into, wm.spend, m.wallet_default IS NOT DISTINCT FROM wm.wallet_id,
             wm.joined_at, wm.left_at
         FROM wallet_members wm JOIN members m ON m.id = wm.member_id
         WHERE wm.wallet_id = $1 ORDER BY wm.joined_at, wm.member_id",
    )
    .bind(id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    row.members = members
        .iter()
        .map(|r| -> Result<WalletMemberRow, StoreError> {
            Ok(WalletMemberRow {
                wallet_id: id.clone(),
                member_id: MemberId::from_stored(r.try_get(0)?),
                role: r.try_get(1)?,
                rights: Rights {
                    earn_into: r.try_get(2)?,
                    spend: r.try_get(3)?,
                },
                is_default: r.try_get(4)?,
                joined_at: from_micros(r.try_get(5)?),
                left_at: r.try_get::<Option<i64>, _>(6)?.map(from_micros),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(row))
}

/// The wallet, locked until the transaction ends, as a change to its members reads it.
async fn locked_roster(conn: &mut PgConnection, id: &WalletId) -> Result<Roster, StoreError> {
    found(wallet(conn, id, true).await?)?.roster()
}

fn found(w: Option<WalletRow>) -> Result<WalletRow, StoreError> {
    w.ok_or(StoreError::NotFound(Entity::Wallet))
}

/// Locks the rows of those of `ids` that exist, in id order, until the transaction
/// ends; answers how many it locked. Taken before the wallet's row.
pub(super) async fn lock_members(conn: &mut PgConnection, ids: Vec<&str>) -> Result<usize, StoreError> {
    let locked: Vec<i32> = sqlx::query_scalar("SELECT 1 FROM members WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    Ok(locked.len())
}

async fn member_exists(conn: &mut PgConnection, id: &MemberId) -> Result<(), StoreError> {
    sqlx::query_scalar::<_, i32>("SELECT 1 FROM members WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .map(|_| ())
        .ok_or(StoreError::NotFound(Entity::Member))
}

/// The household the member belongs to now, if any.
pub(super) async fn household_of(
    conn: &mut PgConnection,
    member_id: &MemberId,
) -> Result<Option<WalletId>, StoreError> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT wallet_id FROM wallet_members WHERE member_id = $1 AND kind = 'household' AND left_at IS NULL",
    )
    .bind(member_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.map(WalletId::from_stored))
}

/// A member as a change to a wallet reads them (their row locked by the caller): their
/// household and default wallet.
async fn candidate(conn: &mut PgConnection, member_id: &MemberId) -> Result<Candidate, StoreError> {
    let default_wallet: Option<String> = sqlx::query_scalar("SELECT wallet_default FROM members WHERE id = $1")
        .bind(member_id.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound(Entity::Member))?;
    Ok(Candidate {
        member_id: member_id.clone(),
        household: household_of(conn, member_id).await?,
        default_wallet: default_wallet.map(WalletId::from_stored),
    })
}

/// The invitation whose code has this hash, locked (two joins with one code queue).
async fn invite(conn: &mut PgConnection, code_hash: &str) -> Result<Option<Invite>, StoreError> {
    let row: Option<(String, bool, i64)> = sqlx::query_as(
        "SELECT wallet_id, used_by IS NOT NULL, expires_at FROM wallet_invites WHERE code_hash = $1 FOR UPDATE",
    )
    .bind(code_hash)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(wallet_id, used, expires_at)| Invite {
        wallet_id: WalletId::from_stored(wallet_id),
        used,
        expires_at: from_micros(expires_at),
    }))
}

/// A unique violation (SQLSTATE 23505).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

/// Writes the seat of a member joining (or coming back) as the domain decided it, and
/// what becomes of their default wallet. The member's row is locked, so a join of theirs
/// into another household waits and then sees this one; should two slip past the check
/// anyway, the index on one household per member refuses the second.
async fn write_seat(
    conn: &mut PgConnection,
    wallet_id: &WalletId,
    kind: WalletKind,
    change: &SeatChange,
    now: Timestamp,
) -> Result<(), StoreError> {
    let seat = &change.seat;
    sqlx::query(
        "INSERT INTO wallet_members (wallet_id, member_id, kind, role, earn_into, spend, joined_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (wallet_id, member_id) DO UPDATE SET role = excluded.role, earn_into = excluded.earn_into,
             spend = excluded.spend, joined_at = excluded.joined_at, left_at = NULL",
    )
    .bind(wallet_id.as_str())
    .bind(seat.member_id.as_str())
    .bind(kind.as_str())
    .bind(seat.role.as_str())
    .bind(seat.rights.earn_into)
    .bind(seat.rights.spend)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| match is_unique_violation(&e) {
        true => StoreError::Conflict {
            code: "household_taken",
            message: "the member already belongs to a household; a member belongs to one household at most".into(),
        },
        false => e.into(),
    })?;
    write_default(conn, &seat.member_id, wallet_id, change.default).await
}

async fn write_default(
    conn: &mut PgConnection,
    member_id: &MemberId,
    wallet_id: &WalletId,
    change: DefaultChange,
) -> Result<(), StoreError> {
    let wallet = match change {
        DefaultChange::Keep => return Ok(()),
        DefaultChange::Set => Some(wallet_id.as_str()),
        DefaultChange::Clear => None,
    };
    sqlx::query("UPDATE members SET wallet_default = $2 WHERE id = $1")
        .bind(member_id.as_str())
        .bind(wallet)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A current member's seat, or `member_not_found`: they are not in the wallet now.
fn seat_of<'a>(roster: &'a Roster, member_id: &MemberId) -> Result<&'a Seat, StoreError> {
    roster.seat(member_id).ok_or(StoreError::NotFound(Entity::Member))
}

/// How often closing starts again when members joined between its reading who is in
/// the wallet and its locking them.
const CLOSE_ATTEMPTS: usize = 5;

impl PgStore {
    pub async fn create_wallet(&self, new: NewWallet) -> Result<WalletRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The owner's row first (a member before a wallet).
        let owner = match &new.owner {
            Some(owner) => {
                lock_members(&mut tx, vec![owner.as_str()]).await?;
                Some(candidate(&mut tx, owner).await?)
            }
            None => None,
        };
        let seat = decide_open(&new.id, new.kind, owner.as_ref(), new.owner_rights)?;
        sqlx::query(
            "INSERT INTO wallets (id, kind, name, owner_id, company_name, vat_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new.id.as_str())
        .bind(new.kind.as_str())
        .bind(&new.name)
        .bind(new.owner.as_ref().map(MemberId::as_str))
        .bind(&new.company_name)
        .bind(&new.vat_id)
        .bind(to_micros(new.now))
        .execute(&mut *tx)
        .await?;
        if let Some(seat) = &seat {
            write_seat(&mut tx, &new.id, new.kind, seat, new.now).await?;
        }
        let row = found(wallet(&mut tx, &new.id, false).await?)?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn wallet(&self, id: WalletId) -> Result<Option<WalletRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        wallet(&mut conn, &id, false).await
    }

    /// The open wallets a member belongs to now.
    pub async fn member_wallets(&self, member_id: MemberId) -> Result<Vec<WalletRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        member_exists(&mut conn, &member_id).await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT wm.wallet_id FROM wallet_members wm JOIN wallets w ON w.id = wm.wallet_id
             WHERE wm.member_id = $1 AND wm.left_at IS NULL AND w.closed_at IS NULL ORDER BY wm.joined_at",
        )
        .bind(member_id.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let mut wallets = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(w) = wallet(&mut conn, &WalletId::from_stored(id), false).await? {
                wallets.push(w);
            }
        }
        Ok(wallets)
    }

    pub async fn create_wallet_invite(
        &self,
        wallet_id: WalletId,
        code_hash: String,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        decide_invite(&locked_roster(&mut tx, &wallet_id).await?)?;
        sqlx::query(
            "INSERT INTO wallet_invites (code_hash, wallet_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&code_hash)
        .bind(wallet_id.as_str())
        .bind(to_micros(now))
        .bind(to_micros(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn join_wallet(&self, join: JoinWallet) -> Result<WalletRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_members(&mut tx, vec![join.member_id.as_str()]).await?;
        let roster = locked_roster(&mut tx, &join.wallet_id).await?;
        roster.must_be_open()?;
        let member = candidate(&mut tx, &join.member_id).await?;
        let invite = match &join.invite_hash {
            Some(hash) => invite(&mut tx, hash).await?,
            None => None,
        };
        let change = decide_join(
            &roster,
            &member,
            invite.as_ref(),
            join.rights,
            join.make_default,
            join.now,
        )?;
        if change.uses_invite
            && let Some(hash) = &join.invite_hash
        {
            sqlx::query("UPDATE wallet_invites SET used_by = $2, used_at = $3 WHERE code_hash = $1")
                .bind(hash)
                .bind(join.member_id.as_str())
                .bind(to_micros(join.now))
                .execute(&mut *tx)
                .await?;
        }
        write_seat(&mut tx, &roster.id, roster.kind, &change, join.now).await?;
        let row = found(wallet(&mut tx, &join.wallet_id, false).await?)?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn set_wallet_rights(&self, rights: WalletRights) -> Result<WalletRow, StoreError> {
        let WalletRights {
            wallet_id,
            member_id,
            rights,
            make_default,
        } = rights;
        let mut tx = self.pool.begin().await?;
        lock_members(&mut tx, vec![member_id.as_str()]).await?;
        let roster = locked_roster(&mut tx, &wallet_id).await?;
        roster.must_be_open()?;
        let seat = seat_of(&roster, &member_id)?;
        let member = candidate(&mut tx, &member_id).await?;
        let change = decide_rights(&roster, seat, &member, rights, make_default)?;
        sqlx::query("UPDATE wallet_members SET earn_into = $3, spend = $4 WHERE wallet_id = $1 AND member_id = $2")
            .bind(wallet_id.as_str())
            .bind(member_id.as_str())
            .bind(change.seat.rights.earn_into)
            .bind(change.seat.rights.spend)
            .execute(&mut *tx)
            .await?;
        write_default(&mut tx, &member_id, &wallet_id, change.default).await?;
        let row = found(wallet(&mut tx, &wallet_id, false).await?)?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn leave_wallet(
        &self,
        wallet_id: WalletId,
        member_id: MemberId,
        now: Timestamp,
    ) -> Result<WalletRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_members(&mut tx, vec![member_id.as_str()]).await?;
        let roster = locked_roster(&mut tx, &wallet_id).await?;
        roster.must_be_open()?;
        let seat = seat_of(&roster, &member_id)?;
        let default = decide_leave(&roster, seat, &candidate(&mut tx, &member_id).await?)?;
        sqlx::query("UPDATE wallet_members SET left_at = $3 WHERE wallet_id = $1 AND member_id = $2")
            .bind(wallet_id.as_str())
            .bind(member_id.as_str())
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        write_default(&mut tx, &member_id, &wallet_id, default).await?;
        let row = found(wallet(&mut tx, &wallet_id, false).await?)?;
        tx.commit().await?;
        Ok(row)
    }

    /// Closes a wallet: settles what is due, gives every point out as `split` says (to its
    /// current members), and ends every membership of it.
    pub async fn close_wallet(
        &self,
        wallet_id: WalletId,
        split: Vec<(MemberId, i64)>,
        now: Timestamp,
    ) -> Result<WalletRow, StoreError> {
        for _ in 0..CLOSE_ATTEMPTS {
            if let Some(row) = self.try_close(&wallet_id, &split, now).await? {
                return Ok(row);
            }
        }
        // `409 retry`: a retry with the same Idempotency-Key runs again.
        Err(tally_domain::DomainError::Stale.into())
    }

    /// One attempt at closing: `None` when a member joined between reading who is in the
    /// wallet and locking them (nothing is written; the caller starts again).
    async fn try_close(
        &self,
        wallet_id: &WalletId,
        split: &[(MemberId, i64)],
        now: Timestamp,
    ) -> Result<Option<WalletRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Every member whose row closing writes (the split's, and any whose default the
        // wallet is: its current members), locked before the wallet.
        let current_ids: Vec<String> =
            sqlx::query_scalar("SELECT member_id FROM wallet_members WHERE wallet_id = $1 AND left_at IS NULL")
                .bind(wallet_id.as_str())
                .fetch_all(&mut *tx)
                .await?;
        let ids = current_ids
            .iter()
            .map(String::as_str)
            .chain(split.iter().map(|(m, _)| m.as_str()))
            .collect();
        lock_members(&mut tx, ids).await?;
        let roster = locked_roster(&mut tx, wallet_id).await?;
        if roster
            .seats
            .iter()
            .any(|s| !current_ids.iter().any(|c| c == s.member_id.as_str()))
        {
            // Let the locks go now, before the next attempt takes them again.
            tx.rollback().await?;
            return Ok(None);
        }
        may_receive_split(&roster, split.iter().map(|(m, _)| m))?;
        // What has fallen due is settled first (a decision of its own), so the split
        // gives out what the wallet holds now. The wallet's and members' rows are locked.
        let state = load_wallet_state(&mut tx, wallet_id, None, false, |_| true).await?;
        if let Some(plan) = decide_settle(&state, now)? {
            write_holder_plan(&mut tx, Holder::of(&state), &plan, now).await?;
        }
        let state = load_wallet_state(&mut tx, wallet_id, None, false, |_| true).await?;
        let mut shares = Vec::with_capacity(split.len());
        for (member_id, points) in split {
            shares.push(Share {
                member: member_state(&mut tx, &MemberRef::Id(member_id.clone()), false, |_| false).await?,
                points: *points,
            });
        }
        let close = plan_close(&state, &shares, now)?;
        write_holder_plan(&mut tx, Holder::of(&state), &close.wallet, now).await?;
        for (member_id, plan) in &close.members {
            write_plan(&mut tx, member_id, plan, now).await?;
        }
        sqlx::query("UPDATE wallets SET closed_at = $2 WHERE id = $1")
            .bind(wallet_id.as_str())
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE wallet_members SET left_at = $2 WHERE wallet_id = $1 AND left_at IS NULL")
            .bind(wallet_id.as_str())
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        // Only a current member has the wallet as default (leaving clears it): looked
        // for among them by key, not in every member's row.
        sqlx::query("UPDATE members SET wallet_default = NULL WHERE id = ANY($2) AND wallet_default = $1")
            .bind(wallet_id.as_str())
            .bind(&current_ids)
            .execute(&mut *tx)
            .await?;
        let row = found(wallet(&mut tx, wallet_id, false).await?)?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// What each member moved in and out of the wallet, per entry code, from its entries.
    pub async fn wallet_statement(&self, wallet_id: WalletId) -> Result<Vec<StatementLine>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM wallets WHERE id = $1")
            .bind(wallet_id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound(Entity::Wallet))?;
        // `account LIKE 'wallet:%'` lets the partial index on wallet entries serve.
        let rows: Vec<(Option<String>, String, i64, i64)> = sqlx::query_as(
            "SELECT member_id, code, SUM(amount)::BIGINT, COUNT(*) FROM entries
             WHERE account IN ($1, $2) AND account LIKE 'wallet:%' AND code <> 'mature'
             GROUP BY member_id, code ORDER BY member_id NULLS FIRST, code",
        )
        .bind(format!("wallet:{wallet_id}:available"))
        .bind(format!("wallet:{wallet_id}:pending"))
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(member_id, code, points, entries)| StatementLine {
                member_id: member_id.map(MemberId::from_stored),
                code,
                points,
                entries,
            })
            .collect())
    }
}
