//! Shared wallets on SQLite: creating them, members joining (a household by invitation
//! code, a business's contacts added), rights, leaving, closing with a split, and the
//! statement per member from the ledger. The wallet's points move in the sale's and the
//! return's own decisions (`purchases.rs`, `returns.rs`) and the expiry run.

use super::SqliteStore;
use super::ledger::{write_holder_plan, write_plan};
use super::members::{load_state, load_wallet_state};
use crate::model::{
    Holder, JoinWallet, NewWallet, StatementLine, WalletMemberRow, WalletRights, WalletRow, from_micros, to_micros,
};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::decide::{Share, decide_settle, plan_close};
use tally_domain::ids::{Id, MemberId, WalletId};
use tally_domain::plan::Balance;
use tally_domain::wallets::roster::{
    Candidate, DefaultChange, Invite, Roster, Seat, SeatChange, decide_invite, decide_join, decide_leave, decide_open,
    decide_rights, may_receive_split,
};
use tally_domain::wallets::{Rights, WalletKind, WalletLink};

/// The member's place in an open wallet they have not left, as a sale reads it.
pub(super) fn wallet_link(
    conn: &Connection,
    member_id: &MemberId,
    wallet_id: &WalletId,
) -> Result<Option<WalletLink>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT wm.kind, wm.earn_into, wm.spend FROM wallet_members wm JOIN wallets w ON w.id = wm.wallet_id
             WHERE wm.wallet_id = ?1 AND wm.member_id = ?2 AND wm.left_at IS NULL AND w.closed_at IS NULL",
        )?
        .query_row(params![wallet_id.as_str(), member_id.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, bool>(2)?))
        })
        .optional()?
        .map(|(kind, earn_into, spend)| WalletLink {
            wallet_id: wallet_id.clone(),
            kind: WalletKind::parse(&kind).unwrap_or(WalletKind::Business),
            rights: Rights { earn_into, spend },
        }))
}

/// Whether a wallet is still open (a closed one's points were split; nothing moves).
pub(super) fn wallet_is_open(conn: &Connection, id: &WalletId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT closed_at IS NULL FROM wallets WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

fn wallet(conn: &Connection, id: &WalletId) -> Result<Option<WalletRow>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT kind, name, owner_id, company_name, vat_id, created_at, closed_at, available, pending, lifetime_earned,
                 next_due_at
             FROM wallets WHERE id = ?1",
        )?
        .query_row([id.as_str()], |r| {
            Ok(WalletRow {
                id: id.clone(),
                kind: WalletKind::parse(&r.get::<_, String>(0)?).unwrap_or(WalletKind::Business),
                name: r.get(1)?,
                owner: r.get::<_, Option<String>>(2)?.map(MemberId::from_stored),
                company_name: r.get(3)?,
                vat_id: r.get(4)?,
                created_at: from_micros(r.get(5)?),
                closed_at: r.get::<_, Option<i64>>(6)?.map(from_micros),
                balance: Balance {
                    available: r.get(7)?,
                    pending: r.get(8)?,
                    lifetime_earned: r.get(9)?,
                },
                next_due_at: r.get::<_, Option<i64>>(10)?.map(from_micros),
                members: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT wm.member_id, wm.role, wm.earn_into, wm.spend, m.wallet_default IS wm.wallet_id, wm.joined_at, wm.left_at
         FROM wallet_members wm JOIN members m ON m.id = wm.member_id
         WHERE wm.wallet_id = ?1 ORDER BY wm.joined_at, wm.member_id",
    )?;
    row.members = stmt
        .query_map([id.as_str()], |r| {
            Ok(WalletMemberRow {
                wallet_id: id.clone(),
                member_id: MemberId::from_stored(r.get(0)?),
                role: r.get(1)?,
                rights: Rights {
                    earn_into: r.get(2)?,
                    spend: r.get(3)?,
                },
                is_default: r.get(4)?,
                joined_at: from_micros(r.get(5)?),
                left_at: r.get::<_, Option<i64>>(6)?.map(from_micros),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(row))
}

fn member_exists(conn: &Connection, id: &MemberId) -> Result<(), StoreError> {
    conn.prepare_cached("SELECT 1 FROM members WHERE id = ?1")?
        .query_row([id.as_str()], |_| Ok(()))
        .optional()?
        .ok_or(StoreError::NotFound(Entity::Member))
}

/// The household the member belongs to now, if any.
pub(super) fn household_of(conn: &Connection, member_id: &MemberId) -> Result<Option<WalletId>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT wallet_id FROM wallet_members WHERE member_id = ?1 AND kind = 'household' AND left_at IS NULL",
        )?
        .query_row([member_id.as_str()], |r| r.get::<_, String>(0))
        .optional()?
        .map(WalletId::from_stored))
}

/// A member as a change to a wallet reads them: their household and default wallet.
fn candidate(conn: &Connection, member_id: &MemberId) -> Result<Candidate, StoreError> {
    let default_wallet = conn
        .prepare_cached("SELECT wallet_default FROM members WHERE id = ?1")?
        .query_row([member_id.as_str()], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .ok_or(StoreError::NotFound(Entity::Member))?;
    Ok(Candidate {
        member_id: member_id.clone(),
        household: household_of(conn, member_id)?,
        default_wallet: default_wallet.map(WalletId::from_stored),
    })
}

/// Writes the seat of a member joining (or coming back) as the domain decided it, and
/// what becomes of their default wallet.
fn write_seat(
    conn: &Connection,
    wallet_id: &WalletId,
    kind: WalletKind,
    change: &SeatChange,
    now: Timestamp,
) -> Result<(), StoreError> {
    let seat = &change.seat;
    conn.prepare_cached(
        "INSERT INTO wallet_members (wallet_id, member_id, kind, role, earn_into, spend, joined_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (wallet_id, member_id) DO UPDATE SET role = excluded.role, earn_into = excluded.earn_into,
             spend = excluded.spend, joined_at = excluded.joined_at, left_at = NULL",
    )?
    .execute(params![
        wallet_id.as_str(),
        seat.member_id.as_str(),
        kind.as_str(),
        seat.role.as_str(),
        seat.rights.earn_into,
        seat.rights.spend,
        to_micros(now)
    ])?;
    write_default(conn, &seat.member_id, wallet_id, change.default)
}

fn write_default(
    conn: &Connection,
    member_id: &MemberId,
    wallet_id: &WalletId,
    change: DefaultChange,
) -> Result<(), StoreError> {
    let wallet = match change {
        DefaultChange::Keep => return Ok(()),
        DefaultChange::Set => Some(wallet_id.as_str()),
        DefaultChange::Clear => None,
    };
    conn.prepare_cached("UPDATE members SET wallet_default = ?2 WHERE id = ?1")?
        .execute(params![member_id.as_str(), wallet])?;
    Ok(())
}

fn create(conn: &Connection, new: &NewWallet) -> Result<WalletRow, StoreError> {
    let owner = new.owner.as_ref().map(|o| candidate(conn, o)).transpose()?;
    let seat = decide_open(&new.id, new.kind, owner.as_ref(), new.owner_rights)?;
    conn.prepare_cached(
        "INSERT INTO wallets (id, kind, name, owner_id, company_name, vat_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.id.as_str(),
        new.kind.as_str(),
        new.name,
        new.owner.as_ref().map(MemberId::as_str),
        new.company_name,
        new.vat_id,
        to_micros(new.now)
    ])?;
    if let Some(seat) = &seat {
        write_seat(conn, &new.id, new.kind, seat, new.now)?;
    }
    found(wallet(conn, &new.id)?)
}

fn found(w: Option<WalletRow>) -> Result<WalletRow, StoreError> {
    w.ok_or(StoreError::NotFound(Entity::Wallet))
}

fn create_invite(
    conn: &Connection,
    wallet_id: &WalletId,
    code_hash: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    decide_invite(&found(wallet(conn, wallet_id)?)?.roster()?)?;
    conn.prepare_cached(
        "INSERT INTO wallet_invites (code_hash, wallet_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        code_hash,
        wallet_id.as_str(),
        to_micros(now),
        to_micros(expires_at)
    ])?;
    Ok(())
}

/// The invitation whose code has this hash, if any.
fn invite(conn: &Connection, code_hash: &str) -> Result<Option<Invite>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT wallet_id, used_by IS NOT NULL, expires_at FROM wallet_invites WHERE code_hash = ?1")?
        .query_row([code_hash], |r| {
            Ok(Invite {
                wallet_id: WalletId::from_stored(r.get(0)?),
                used: r.get(1)?,
                expires_at: from_micros(r.get(2)?),
            })
        })
        .optional()?)
}

fn join(conn: &Connection, j: &JoinWallet) -> Result<WalletRow, StoreError> {
    let roster = found(wallet(conn, &j.wallet_id)?)?.roster()?;
    let invite = match &j.invite_hash {
        Some(hash) => invite(conn, hash)?,
        None => None,
    };
    roster.must_be_open()?;
    let member = candidate(conn, &j.member_id)?;
    let change = decide_join(&roster, &member, invite.as_ref(), j.rights, j.make_default, j.now)?;
    if change.uses_invite
        && let Some(hash) = &j.invite_hash
    {
        conn.prepare_cached("UPDATE wallet_invites SET used_by = ?2, used_at = ?3 WHERE code_hash = ?1")?
            .execute(params![hash, j.member_id.as_str(), to_micros(j.now)])?;
    }
    write_seat(conn, &roster.id, roster.kind, &change, j.now)?;
    found(wallet(conn, &j.wallet_id)?)
}

/// A current member's seat, or `member_not_found`: they are not in the wallet now.
fn seat_of<'a>(roster: &'a Roster, member_id: &MemberId) -> Result<&'a Seat, StoreError> {
    roster.seat(member_id).ok_or(StoreError::NotFound(Entity::Member))
}

fn set_rights(conn: &Connection, r: &WalletRights) -> Result<WalletRow, StoreError> {
    let roster = found(wallet(conn, &r.wallet_id)?)?.roster()?;
    roster.must_be_open()?;
    let seat = seat_of(&roster, &r.member_id)?;
    let member = candidate(conn, &r.member_id)?;
    let change = decide_rights(&roster, seat, &member, r.rights, r.make_default)?;
    conn.prepare_cached(
        "UPDATE wallet_members SET earn_into = ?3, spend = ?4 WHERE wallet_id = ?1 AND member_id = ?2",
    )?
    .execute(params![
        r.wallet_id.as_str(),
        r.member_id.as_str(),
        change.seat.rights.earn_into,
        change.seat.rights.spend
    ])?;
    write_default(conn, &r.member_id, &r.wallet_id, change.default)?;
    found(wallet(conn, &r.wallet_id)?)
}

fn leave(
    conn: &Connection,
    wallet_id: &WalletId,
    member_id: &MemberId,
    now: Timestamp,
) -> Result<WalletRow, StoreError> {
    let roster = found(wallet(conn, wallet_id)?)?.roster()?;
    roster.must_be_open()?;
    let seat = seat_of(&roster, member_id)?;
    let default = decide_leave(&roster, seat, &candidate(conn, member_id)?)?;
    conn.prepare_cached("UPDATE wallet_members SET left_at = ?3 WHERE wallet_id = ?1 AND member_id = ?2")?
        .execute(params![wallet_id.as_str(), member_id.as_str(), to_micros(now)])?;
    write_default(conn, member_id, wallet_id, default)?;
    found(wallet(conn, wallet_id)?)
}

/// Closes a wallet: settles what is due, gives every point out as `split` says (to its
/// current members), and ends every membership of it.
fn close(
    conn: &Connection,
    wallet_id: &WalletId,
    split: &[(MemberId, i64)],
    now: Timestamp,
) -> Result<WalletRow, StoreError> {
    let roster = found(wallet(conn, wallet_id)?)?.roster()?;
    may_receive_split(&roster, split.iter().map(|(m, _)| m))?;
    // What has fallen due is settled first (a decision of its own), so the split gives
    // out what the wallet holds now.
    let state = load_wallet_state(conn, wallet_id, None, |_| true)?;
    if let Some(plan) = decide_settle(&state, now)? {
        write_holder_plan(conn, Holder::of(&state), &plan, now)?;
    }
    let state = load_wallet_state(conn, wallet_id, None, |_| true)?;
    let shares = split
        .iter()
        .map(|(m, points)| {
            Ok(Share {
                member: load_state(conn, m, |_| false)?,
                points: *points,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let close = plan_close(&state, &shares, now)?;
    write_holder_plan(conn, Holder::of(&state), &close.wallet, now)?;
    for (member_id, plan) in &close.members {
        write_plan(conn, member_id, plan, now)?;
    }
    conn.prepare_cached("UPDATE wallets SET closed_at = ?2 WHERE id = ?1")?
        .execute(params![wallet_id.as_str(), to_micros(now)])?;
    conn.prepare_cached("UPDATE wallet_members SET left_at = ?2 WHERE wallet_id = ?1 AND left_at IS NULL")?
        .execute(params![wallet_id.as_str(), to_micros(now)])?;
    conn.prepare_cached("UPDATE members SET wallet_default = NULL WHERE wallet_default = ?1")?
        .execute([wallet_id.as_str()])?;
    found(wallet(conn, wallet_id)?)
}

/// The open wallets a member belongs to now.
fn member_wallets(conn: &Connection, member_id: &MemberId) -> Result<Vec<WalletRow>, StoreError> {
    member_exists(conn, member_id)?;
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT wm.wallet_id FROM wallet_members wm JOIN wallets w ON w.id = wm.wallet_id
             WHERE wm.member_id = ?1 AND wm.left_at IS NULL AND w.closed_at IS NULL ORDER BY wm.joined_at",
        )?
        .query_map([member_id.as_str()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.into_iter()
        .filter_map(|id| wallet(conn, &WalletId::from_stored(id)).transpose())
        .collect()
}

/// What each member moved in and out of the wallet, per entry code, from its entries.
fn statement(conn: &Connection, wallet_id: &WalletId) -> Result<Vec<StatementLine>, StoreError> {
    wallet(conn, wallet_id)?.ok_or(StoreError::NotFound(Entity::Wallet))?;
    let mut stmt = conn.prepare_cached(
        "SELECT member_id, code, SUM(amount), COUNT(*) FROM entries
         WHERE account IN (?1, ?2) AND account LIKE 'wallet:%' AND code != 'mature'
         GROUP BY member_id, code ORDER BY member_id, code",
    )?;
    let rows = stmt.query_map(
        params![
            format!("wallet:{wallet_id}:available"),
            format!("wallet:{wallet_id}:pending")
        ],
        |r| {
            Ok(StatementLine {
                member_id: r.get::<_, Option<String>>(0)?.map(MemberId::from_stored),
                code: r.get(1)?,
                points: r.get(2)?,
                entries: r.get(3)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

impl SqliteStore {
    pub async fn create_wallet(&self, new: NewWallet) -> Result<WalletRow, StoreError> {
        self.write(move |c| create(c, &new)).await
    }

    pub async fn wallet(&self, id: WalletId) -> Result<Option<WalletRow>, StoreError> {
        self.read(move |c| wallet(c, &id)).await
    }

    pub async fn member_wallets(&self, member_id: MemberId) -> Result<Vec<WalletRow>, StoreError> {
        self.read(move |c| member_wallets(c, &member_id)).await
    }

    pub async fn create_wallet_invite(
        &self,
        wallet_id: WalletId,
        code_hash: String,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(move |c| create_invite(c, &wallet_id, &code_hash, expires_at, now))
            .await
    }

    pub async fn join_wallet(&self, join: JoinWallet) -> Result<WalletRow, StoreError> {
        self.write(move |c| self::join(c, &join)).await
    }

    pub async fn set_wallet_rights(&self, rights: WalletRights) -> Result<WalletRow, StoreError> {
        self.write(move |c| set_rights(c, &rights)).await
    }

    pub async fn leave_wallet(
        &self,
        wallet_id: WalletId,
        member_id: MemberId,
        now: Timestamp,
    ) -> Result<WalletRow, StoreError> {
        self.write(move |c| leave(c, &wallet_id, &member_id, now)).await
    }

    pub async fn close_wallet(
        &self,
        wallet_id: WalletId,
        split: Vec<(MemberId, i64)>,
        now: Timestamp,
    ) -> Result<WalletRow, StoreError> {
        self.write(move |c| close(c, &wallet_id, &split, now)).await
    }

    pub async fn wallet_statement(&self, wallet_id: WalletId) -> Result<Vec<StatementLine>, StoreError> {
        self.read(move |c| statement(c, &wallet_id)).await
    }
}
