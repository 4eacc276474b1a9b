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
use tally_domain::DomainError;
use tally_domain::decide::{Share, decide_settle, plan_close};
use tally_domain::ids::{Id, MemberId, WalletId};
use tally_domain::plan::Balance;
use tally_domain::wallets::{Rights, WalletKind, WalletLink, may_invite, may_join, may_leave};

/// The member's place in an open wallet they have not left, as a sale reads it.
/// Whether a wallet is still open (a closed one's points were split; nothing moves).
pub(super) async fn wallet_is_open(conn: &mut PgConnection, id: &WalletId) -> Result<bool, StoreError> {
    let open: Option<bool> = sqlx::query_scalar("SELECT closed_at IS NULL FROM wallets WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(open.unwrap_or(false))
}

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
        "SELECT kind, name, owner_id, company_name, vat_id, created_at, closed_at, available, pending, lifetime_earned
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

/// The wallet, locked until the transaction ends; `NotFound` if there is none, a
/// conflict if it is closed.
async fn open_wallet(conn: &mut PgConnection, id: &WalletId) -> Result<WalletRow, StoreError> {
    let w = wallet(conn, id, true)
        .await?
        .ok_or(StoreError::NotFound(Entity::Wallet))?;
    match w.closed_at {
        Some(_) => Err(closed()),
        None => Ok(w),
    }
}

fn closed() -> StoreError {
    StoreError::Conflict {
        code: "wallet_closed",
        message: "the wallet is closed".into(),
    }
}

/// Locks the rows of those of `ids` that exist, in id order, until the transaction
/// ends; answers how many it locked. Taken before the wallet's row.
async fn lock_members(conn: &mut PgConnection, ids: Vec<&str>) -> Result<usize, StoreError> {
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

/// A unique violation (SQLSTATE 23505).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

/// Adds (or brings back) a member, after the domain's check; the wallet becomes their
/// default when asked, or when they earn into it and have no default yet. The member's
/// row is locked, so a join of theirs into another household waits and then sees this
/// one; should two slip past the check anyway, the index on one household per member
/// refuses the second.
async fn add_member(
    conn: &mut PgConnection,
    w: &WalletRow,
    member_id: &MemberId,
    role: &str,
    rights: Rights,
    make_default: bool,
    now: Timestamp,
) -> Result<(), StoreError> {
    member_exists(conn, member_id).await?;
    let already_in = w
        .members
        .iter()
        .any(|m| &m.member_id == member_id && m.left_at.is_none());
    let household = household_of(conn, member_id).await?;
    may_join(w.kind, &w.id, already_in, household.as_ref())?;
    sqlx::query(
        "INSERT INTO wallet_members (wallet_id, member_id, kind, role, earn_into, spend, joined_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (wallet_id, member_id) DO UPDATE SET role = excluded.role, earn_into = excluded.earn_into,
             spend = excluded.spend, joined_at = excluded.joined_at, left_at = NULL",
    )
    .bind(w.id.as_str())
    .bind(member_id.as_str())
    .bind(w.kind.as_str())
    .bind(role)
    .bind(rights.earn_into)
    .bind(rights.spend)
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
    set_default(conn, member_id, &w.id, make_default, rights.earn_into).await
}

async fn set_default(
    conn: &mut PgConnection,
    member_id: &MemberId,
    wallet_id: &WalletId,
    make_default: bool,
    earn_into: bool,
) -> Result<(), StoreError> {
    let sql = match (make_default, earn_into) {
        (true, _) => "UPDATE members SET wallet_default = $2 WHERE id = $1",
        (false, true) => "UPDATE members SET wallet_default = $2 WHERE id = $1 AND wallet_default IS NULL",
        (false, false) => return Ok(()),
    };
    sqlx::query(sql)
        .bind(member_id.as_str())
        .bind(wallet_id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn clear_default(conn: &mut PgConnection, member_id: &MemberId, wallet_id: &WalletId) -> Result<(), StoreError> {
    sqlx::query("UPDATE members SET wallet_default = NULL WHERE id = $1 AND wallet_default = $2")
        .bind(member_id.as_str())
        .bind(wallet_id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn current<'a>(w: &'a WalletRow, member_id: &MemberId) -> Result<&'a WalletMemberRow, StoreError> {
    w.members
        .iter()
        .find(|m| &m.member_id == member_id && m.left_at.is_none())
        .ok_or(StoreError::NotFound(Entity::Member))
}

impl PgStore {
    pub async fn create_wallet(&self, new: NewWallet) -> Result<WalletRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The owner's row first (a member before a wallet), and no wallet for no one.
        if let Some(owner) = &new.owner
            && lock_members(&mut tx, vec![owner.as_str()]).await? == 0
        {
            return Err(StoreError::NotFound(Entity::Member));
        }
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
        if let Some(owner) = &new.owner {
            let w = wallet(&mut tx, &new.id, false)
                .await?
                .ok_or(StoreError::NotFound(Entity::Wallet))?;
            add_member(&mut tx, &w, owner, "owner", new.owner_rights, false, new.now).await?;
        }
        let row = wallet(&mut tx, &new.id, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::Wallet))?;
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
        let w = open_wallet(&mut tx, &wallet_id).await?;
        may_invite(w.kind)?;
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
        // Whether the member exists is told after the wallet's checks, as on SQLite.
        lock_members(&mut tx, vec![join.member_id.as_str()]).await?;
        let w = open_wallet(&mut tx, &join.wallet_id).await?;
        let role = match w.kind {
            WalletKind::Household => {
                let used = match &join.invite_hash {
                    Some(hash) => sqlx::query(
                        "UPDATE wallet_invites SET used_by = $3, used_at = $4
                         WHERE code_hash = $1 AND wallet_id = $2 AND used_by IS NULL AND expires_at > $4",
                    )
                    .bind(hash)
                    .bind(join.wallet_id.as_str())
                    .bind(join.member_id.as_str())
                    .bind(to_micros(join.now))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                    None => 0,
                };
                if used == 0 {
                    return Err(DomainError::invalid(
                        "code",
                        "joining a household needs a valid invitation code of that household, unused and not expired",
                    )
                    .into());
                }
                "member"
            }
            WalletKind::Business => "contact",
        };
        add_member(
            &mut tx,
            &w,
            &join.member_id,
            role,
            join.rights,
            join.make_default,
            join.now,
        )
        .await?;
        let row = wallet(&mut tx, &join.wallet_id, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::Wallet))?;
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
        let w = open_wallet(&mut tx, &wallet_id).await?;
        current(&w, &member_id)?;
        sqlx::query("UPDATE wallet_members SET earn_into = $3, spend = $4 WHERE wallet_id = $1 AND member_id = $2")
            .bind(wallet_id.as_str())
            .bind(member_id.as_str())
            .bind(rights.earn_into)
            .bind(rights.spend)
            .execute(&mut *tx)
            .await?;
        match make_default {
            Some(true) => set_default(&mut tx, &member_id, &wallet_id, true, rights.earn_into).await?,
            Some(false) => clear_default(&mut tx, &member_id, &wallet_id).await?,
            None => {}
        }
        let row = wallet(&mut tx, &wallet_id, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::Wallet))?;
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
        let w = open_wallet(&mut tx, &wallet_id).await?;
        may_leave(current(&w, &member_id)?.role == "owner")?;
        sqlx::query("UPDATE wallet_members SET left_at = $3 WHERE wallet_id = $1 AND member_id = $2")
            .bind(wallet_id.as_str())
            .bind(member_id.as_str())
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        clear_default(&mut tx, &member_id, &wallet_id).await?;
        let row = wallet(&mut tx, &wallet_id, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::Wallet))?;
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
        let w = open_wallet(&mut tx, &wallet_id).await?;
        for (member_id, _) in &split {
            if current(&w, member_id).is_err() {
                return Err(
                    DomainError::invalid("split", format!("{member_id} is not a member of this wallet")).into(),
                );
            }
        }
        // The wallet's and the members' rows are locked above.
        let state = load_wallet_state(&mut tx, &wallet_id, None, false, |_| true).await?;
        if let Some(plan) = decide_settle(&state, now)? {
            write_holder_plan(&mut tx, Holder::of(&state), &plan, now).await?;
        }
        let state = load_wallet_state(&mut tx, &wallet_id, None, false, |_| true).await?;
        let mut shares = Vec::with_capacity(split.len());
        for (member_id, points) in &split {
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
        let in_wallet: Vec<&str> = w
            .members
            .iter()
            .filter(|m| m.left_at.is_none())
            .map(|m| m.member_id.as_str())
            .collect();
        sqlx::query("UPDATE members SET wallet_default = NULL WHERE id = ANY($2) AND wallet_default = $1")
            .bind(wallet_id.as_str())
            .bind(in_wallet)
            .execute(&mut *tx)
            .await?;
        let row = wallet(&mut tx, &wallet_id, false)
            .await?
            .ok_or(StoreError::NotFound(Entity::Wallet))?;
        tx.commit().await?;
        Ok(row)
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
