//! The web faces' storage: staff users, sessions, members' sign-in codes, the audit log,
//! signing keys, and the read models of the console, back office and portal pages.

use super::SqliteStore;
use crate::codec::money;
use crate::model::{from_micros, to_micros};
use crate::web::{
    AuditEntry, AuditRow, ISSUED_CODES, MonthPoints, NewLoginCode, NewUser, OPEN_LOTS_READ, OpenLot, PROGRAMME_SIDE,
    PartnerCustomer, PartnerMemberPoints, PartnerTxn, REDEEMED_CODES, SessionRow, TxnCursor, TxnKind, UserRow,
    cursor_bounds, email_taken, return_points, same_hash,
};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::ids::{Id, LocationId, MemberId, PartnerId, TransactionId};

const USER_COLUMNS: &str = "id, email, name, role, partner_id, password_hash, created_at";
/// What a read of a user takes: the columns written at creation, and whether disabled.
const USER_READ: &str = "id, email, name, role, partner_id, password_hash, created_at, disabled_at";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        role: r.get(3)?,
        partner_id: r.get::<_, Option<String>>(4)?.map(PartnerId::from_stored),
        password_hash: r.get(5)?,
        created_at: from_micros(r.get(6)?),
        disabled_at: r.get::<_, Option<i64>>(7)?.map(from_micros),
    })
}

fn create_user(conn: &Connection, u: &NewUser) -> Result<UserRow, StoreError> {
    u.check()?;
    if let Some(p) = &u.partner_id
        && super::partners::partner(conn, p)?.is_none()
    {
        return Err(StoreError::NotFound(Entity::Partner));
    }
    let inserted = conn
        .prepare_cached(&format!(
            "INSERT INTO staff_users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (email) DO NOTHING"
        ))?
        .execute(params![
            u.id,
            u.email,
            u.name,
            u.role,
            u.partner_id.as_ref().map(|p| p.as_str()),
            u.password_hash,
            to_micros(u.now)
        ])?;
    match inserted {
        0 => Err(email_taken(&u.email)),
        _ => Ok(u.row()),
    }
}

fn user_where(conn: &Connection, column: &str, value: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {USER_READ} FROM staff_users WHERE {column} = ?1"))?
        .query_row([value], user_row)
        .optional()?)
}

fn users(conn: &Connection, partner: Option<&PartnerId>) -> Result<Vec<UserRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_READ} FROM staff_users WHERE ?1 IS NULL OR partner_id = ?1 ORDER BY email"
    ))?;
    let rows = stmt.query_map([partner.map(|p| p.as_str())], user_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Saves a session, and drops the sessions that expired by its start.
fn create_session(conn: &Connection, s: &SessionRow) -> Result<(), StoreError> {
    s.check()?;
    conn.prepare_cached(
        "INSERT INTO web_sessions (token_hash, user_id, member_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        s.token_hash,
        s.user_id,
        s.member_id.as_ref().map(|m| m.as_str()),
        to_micros(s.created_at),
        to_micros(s.expires_at)
    ])?;
    conn.prepare_cached("DELETE FROM web_sessions WHERE expires_at <= ?1")?
        .execute([to_micros(s.created_at)])?;
    Ok(())
}

fn session(conn: &Connection, token_hash: &str, now: i64) -> Result<Option<SessionRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT token_hash, user_id, member_id, created_at, expires_at FROM web_sessions
             WHERE token_hash = ?1 AND expires_at > ?2",
        )?
        .query_row(params![token_hash, now], |r| {
            Ok(SessionRow {
                token_hash: r.get(0)?,
                user_id: r.get(1)?,
                member_id: r.get::<_, Option<String>>(2)?.map(MemberId::from_stored),
                created_at: from_micros(r.get(3)?),
                expires_at: from_micros(r.get(4)?),
            })
        })
        .optional()?)
}

/// Disables a user and ends every session of theirs; false when there is no such user.
fn disable_user(conn: &Connection, id: &str, now: i64) -> Result<bool, StoreError> {
    let found = conn
        .prepare_cached("UPDATE staff_users SET disabled_at = COALESCE(disabled_at, ?2) WHERE id = ?1")?
        .execute(params![id, now])?;
    conn.prepare_cached("DELETE FROM web_sessions WHERE user_id = ?1")?
        .execute([id])?;
    Ok(found > 0)
}

/// Saves a new code for a destination; the destination's earlier codes are spent, so
/// only the newest can be guessed at.
fn create_login_code(conn: &Connection, c: &NewLoginCode) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE login_codes SET used_at = ?2 WHERE destination = ?1 AND used_at IS NULL")?
        .execute(params![c.destination, to_micros(c.now)])?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO login_codes (member_id, destination, code_hash, created_at, expires_at)
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM members WHERE id = ?1)",
        )?
        .execute(params![
            c.member_id.as_str(),
            c.destination,
            c.code_hash,
            to_micros(c.now),
            to_micros(c.expires_at)
        ])?;
    match inserted {
        0 => Err(StoreError::NotFound(Entity::Member)),
        _ => Ok(()),
    }
}

/// Tries a code against the newest live code of the destination: a match uses it, a
/// miss counts an attempt against it.
fn use_login_code(
    conn: &Connection,
    destination: &str,
    code_hash: &str,
    now: i64,
    max_attempts: u32,
) -> Result<Option<MemberId>, StoreError> {
    let live: Option<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT id, code_hash, member_id FROM login_codes
             WHERE destination = ?1 AND used_at IS NULL AND expires_at > ?2 AND attempts < ?3
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row(params![destination, now, max_attempts], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((id, stored, member)) = live else {
        return Ok(None);
    };
    if same_hash(&stored, code_hash) {
        conn.prepare_cached("UPDATE login_codes SET used_at = ?2 WHERE id = ?1")?
            .execute(params![id, now])?;
        return Ok(Some(MemberId::from_stored(member)));
    }
    conn.prepare_cached("UPDATE login_codes SET attempts = attempts + 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(None)
}

fn append_audit(conn: &Connection, a: &AuditRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, user_id, member_id, partner_id, action, target, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        to_micros(a.at),
        a.user_id,
        a.member_id.as_ref().map(|m| m.as_str()),
        a.partner_id.as_ref().map(|p| p.as_str()),
        a.action,
        a.target,
        a.status
    ])?;
    Ok(())
}

fn audit(conn: &Connection, partner: Option<&PartnerId>, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
    let filter = if partner.is_some() {
        "WHERE partner_id = ?1"
    } else {
        "WHERE ?1 IS NULL"
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, at, user_id, member_id, partner_id, action, target, status FROM audit_log
         {filter} ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![partner.map(|p| p.as_str()), limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            row: AuditRow {
                at: from_micros(r.get(1)?),
                user_id: r.get(2)?,
                member_id: r.get::<_, Option<String>>(3)?.map(MemberId::from_stored),
                partner_id: r.get::<_, Option<String>>(4)?.map(PartnerId::from_stored),
                action: r.get(5)?,
                target: r.get(6)?,
                status: r.get::<_, i64>(7)?.clamp(0, i64::from(u16::MAX)) as u16,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Keeps `fresh` under `name` unless a value is there already; answers the stored one.
fn web_key(conn: &Connection, name: &str, fresh: &str) -> Result<String, StoreError> {
    conn.prepare_cached("INSERT INTO web_keys (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")?
        .execute(params![name, fresh])?;
    Ok(conn
        .prepare_cached("SELECT value FROM web_keys WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?)
}

fn member_counts(conn: &Connection, active_since: i64) -> Result<(u64, u64), StoreError> {
    let (total, active): (i64, i64) = conn
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM members),
                    (SELECT COUNT(DISTINCT member_id) FROM transactions WHERE occurred_at >= ?1)",
        )?
        .query_row([active_since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((total.max(0) as u64, active.max(0) as u64))
}

fn monthly_points(conn: &Connection, from: i64) -> Result<Vec<MonthPoints>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT strftime('%Y-%m', recorded_at / 1000000, 'unixepoch') AS month,
                -SUM(CASE WHEN code IN ({ISSUED_CODES}) THEN amount ELSE 0 END),
                SUM(CASE WHEN code IN ({REDEEMED_CODES}) THEN amount ELSE 0 END)
         FROM entries
         WHERE recorded_at >= ?1 AND {PROGRAMME_SIDE} AND code IN ({ISSUED_CODES}, {REDEEMED_CODES})
         GROUP BY month ORDER BY month"
    ))?;
    let rows = stmt.query_map([from], |r| {
        Ok(MonthPoints {
            month: r.get(0)?,
            issued: r.get(1)?,
            redeemed: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn partner_member_points(conn: &Connection) -> Result<Vec<PartnerMemberPoints>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.member_id, t.partner_id,
                -SUM(CASE WHEN e.code = 'earn' THEN e.amount ELSE 0 END),
                SUM(CASE WHEN e.code = 'redeem' THEN e.amount ELSE 0 END)
         FROM entries e JOIN transactions t ON t.id = e.transaction_id
         WHERE e.code IN ('earn', 'redeem') AND {PROGRAMME_SIDE}
         GROUP BY t.member_id, t.partner_id ORDER BY t.member_id, t.partner_id"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(PartnerMemberPoints {
            member_id: MemberId::from_stored(r.get(0)?),
            partner_id: PartnerId::from_stored(r.get(1)?),
            earned: r.get(2)?,
            spent: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

type TxnTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    String,
    i64,
    i64,
    Option<String>,
);

fn partner_txn(t: TxnTuple) -> Result<PartnerTxn, StoreError> {
    let (kind, id, sale, member, location, at, amount, currency, earned, redeemed, receipt) = t;
    let kind = TxnKind::parse(&kind)?;
    let (points_earned, points_redeemed) = match (kind, receipt) {
        (TxnKind::Return, Some(receipt)) => return_points(&receipt)?,
        _ => (earned, redeemed),
    };
    Ok(PartnerTxn {
        id,
        kind,
        sale_id: TransactionId::from_stored(sale),
        member_id: MemberId::from_stored(member),
        location_id: location.map(LocationId::from_stored),
        occurred_at: from_micros(at),
        amount: money(amount, &currency)?,
        points_earned,
        points_redeemed,
    })
}

fn partner_transactions(
    conn: &Connection,
    partner: &PartnerId,
    before: Option<&TxnCursor>,
    limit: u32,
) -> Result<Vec<PartnerTxn>, StoreError> {
    let (at, id) = cursor_bounds(before);
    let mut stmt = conn.prepare_cached(
        "SELECT kind, id, sale_id, member_id, location_id, at, amount, currency, earned, redeemed, receipt
         FROM (SELECT * FROM (
                   SELECT 'sale' AS kind, id, id AS sale_id, member_id, location_id, occurred_at AS at,
                          total_amount AS amount, total_currency AS currency, points_earned AS earned,
                          points_redeemed AS redeemed, NULL AS receipt
                   FROM transactions
                   WHERE partner_id = ?1 AND (occurred_at < ?2 OR (occurred_at = ?2 AND id < ?3))
                   ORDER BY occurred_at DESC, id DESC LIMIT ?4)
               UNION ALL
               SELECT * FROM (
                   SELECT 'return', r.id, r.transaction_id, t.member_id, t.location_id, r.recorded_at,
                          r.amount, t.total_currency, 0, 0, r.receipt
                   FROM returns r JOIN transactions t ON t.id = r.transaction_id
                   WHERE r.partner_id = ?1 AND (r.recorded_at < ?2 OR (r.recorded_at = ?2 AND r.id < ?3))
                   ORDER BY r.recorded_at DESC, r.id DESC LIMIT ?4))
         ORDER BY at DESC, id DESC LIMIT ?4",
    )?;
    let rows = stmt
        .query_map(params![partner.as_str(), at, id, limit], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })?
        .collect::<Result<Vec<TxnTuple>, _>>()?;
    rows.into_iter().map(partner_txn).collect()
}

/// A member's lots that still hold points, soonest to expire first.
fn open_lots(conn: &Connection, member: &MemberId) -> Result<Vec<OpenLot>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT remaining, matures_at, expires_at FROM lots
         WHERE member_id = ?1 AND remaining > 0 ORDER BY expires_at, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![member.as_str(), OPEN_LOTS_READ], |r| {
        Ok(OpenLot {
            points: r.get(0)?,
            matures_at: r.get::<_, Option<i64>>(1)?.map(from_micros),
            expires_at: from_micros(r.get(2)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn partner_customers(
    conn: &Connection,
    partner: &PartnerId,
    since: i64,
    limit: u32,
) -> Result<Vec<PartnerCustomer>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT member_id, COUNT(*), MAX(occurred_at) AS last, SUM(points_earned)
         FROM transactions WHERE partner_id = ?1 AND occurred_at >= ?3
         GROUP BY member_id ORDER BY last DESC, member_id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![partner.as_str(), limit, since], |r| {
        Ok(PartnerCustomer {
            member_id: MemberId::from_stored(r.get(0)?),
            visits: r.get::<_, i64>(1)?.max(0) as u64,
            last_visit: from_micros(r.get(2)?),
            points_earned: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl SqliteStore {
    pub async fn create_user(&self, user: NewUser) -> Result<UserRow, StoreError> {
        self.write(move |c| create_user(c, &user)).await
    }

    pub async fn user_by_email(&self, email: String) -> Result<Option<UserRow>, StoreError> {
        self.read(move |c| user_where(c, "email", &email)).await
    }

    pub async fn user(&self, id: String) -> Result<Option<UserRow>, StoreError> {
        self.read(move |c| user_where(c, "id", &id)).await
    }

    pub async fn users(&self, partner: Option<PartnerId>) -> Result<Vec<UserRow>, StoreError> {
        self.read(move |c| users(c, partner.as_ref())).await
    }

    pub async fn create_session(&self, session: SessionRow) -> Result<(), StoreError> {
        self.write(move |c| create_session(c, &session)).await
    }

    pub async fn session(&self, token_hash: String, now: Timestamp) -> Result<Option<SessionRow>, StoreError> {
        self.read(move |c| session(c, &token_hash, to_micros(now))).await
    }

    pub async fn end_session(&self, token_hash: String) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM web_sessions WHERE token_hash = ?1")?
                .execute([&token_hash])?;
            Ok(())
        })
        .await
    }

    pub async fn create_login_code(&self, code: NewLoginCode) -> Result<(), StoreError> {
        self.write(move |c| create_login_code(c, &code)).await
    }

    pub async fn disable_user(&self, id: String, now: Timestamp) -> Result<bool, StoreError> {
        self.write(move |c| disable_user(c, &id, to_micros(now))).await
    }

    pub async fn use_login_code(
        &self,
        destination: String,
        code_hash: String,
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<Option<MemberId>, StoreError> {
        self.write(move |c| use_login_code(c, &destination, &code_hash, to_micros(now), max_attempts))
            .await
    }

    pub async fn append_audit(&self, row: AuditRow) -> Result<(), StoreError> {
        self.write(move |c| append_audit(c, &row)).await
    }

    pub async fn audit(&self, partner: Option<PartnerId>, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(move |c| audit(c, partner.as_ref(), limit)).await
    }

    pub async fn web_key(&self, name: String, fresh: String) -> Result<String, StoreError> {
        self.write(move |c| web_key(c, &name, &fresh)).await
    }

    pub async fn member_counts(&self, active_since: Timestamp) -> Result<(u64, u64), StoreError> {
        self.read(move |c| member_counts(c, to_micros(active_since))).await
    }

    pub async fn monthly_points(&self, from: Timestamp) -> Result<Vec<MonthPoints>, StoreError> {
        self.read(move |c| monthly_points(c, to_micros(from))).await
    }

    pub async fn partner_member_points(&self) -> Result<Vec<PartnerMemberPoints>, StoreError> {
        self.read(partner_member_points).await
    }

    pub async fn partner_transactions(
        &self,
        partner: PartnerId,
        before: Option<TxnCursor>,
        limit: u32,
    ) -> Result<Vec<PartnerTxn>, StoreError> {
        self.read(move |c| partner_transactions(c, &partner, before.as_ref(), limit))
            .await
    }

    pub async fn open_lots(&self, member: MemberId) -> Result<Vec<OpenLot>, StoreError> {
        self.read(move |c| open_lots(c, &member)).await
    }

    pub async fn partner_customers(
        &self,
        partner: PartnerId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<PartnerCustomer>, StoreError> {
        self.read(move |c| partner_customers(c, &partner, to_micros(since), limit))
            .await
    }
}
