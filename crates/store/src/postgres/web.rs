//! The web faces' storage: staff users, sessions, members' sign-in codes, the audit log,
//! signing keys, and the read models of the console, back office and portal pages.

use super::PgStore;
use crate::codec::money;
use crate::model::{from_micros, to_micros};
use crate::web::{
    AuditEntry, AuditRow, ISSUED_CODES, MonthPoints, NewLoginCode, NewUser, OPEN_LOTS_READ, OpenLot, PROGRAMME_SIDE,
    PartnerCustomer, PartnerMemberPoints, PartnerTxn, REDEEMED_CODES, SessionRow, TxnCursor, TxnKind, UserRow,
    cursor_bounds, email_taken, return_points, same_hash,
};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::postgres::PgRow;
use tally_domain::ids::{Id, LocationId, MemberId, PartnerId, TransactionId};

const USER_COLUMNS: &str = "id, email, name, role, partner_id, password_hash, created_at";
/// What a read of a user takes: the columns written at creation, and whether disabled.
const USER_READ: &str = "id, email, name, role, partner_id, password_hash, created_at, disabled_at";

fn user_row(r: &PgRow) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: r.try_get(0)?,
        email: r.try_get(1)?,
        name: r.try_get(2)?,
        role: r.try_get(3)?,
        partner_id: r.try_get::<Option<String>, _>(4)?.map(PartnerId::from_stored),
        password_hash: r.try_get(5)?,
        created_at: from_micros(r.try_get(6)?),
        disabled_at: r.try_get::<Option<i64>, _>(7)?.map(from_micros),
    })
}

fn partner_txn(r: &PgRow) -> Result<PartnerTxn, StoreError> {
    let kind = TxnKind::parse(&r.try_get::<String, _>(0)?)?;
    let (points_earned, points_redeemed) = match (kind, r.try_get::<Option<String>, _>(10)?) {
        (TxnKind::Return, Some(receipt)) => return_points(&receipt)?,
        _ => (r.try_get(8)?, r.try_get(9)?),
    };
    Ok(PartnerTxn {
        id: r.try_get(1)?,
        kind,
        sale_id: TransactionId::from_stored(r.try_get(2)?),
        member_id: MemberId::from_stored(r.try_get(3)?),
        location_id: r.try_get::<Option<String>, _>(4)?.map(LocationId::from_stored),
        occurred_at: from_micros(r.try_get(5)?),
        amount: money(r.try_get(6)?, &r.try_get::<String, _>(7)?)?,
        points_earned,
        points_redeemed,
    })
}

impl PgStore {
    pub async fn create_user(&self, u: NewUser) -> Result<UserRow, StoreError> {
        u.check()?;
        if let Some(p) = &u.partner_id
            && self.partner(p.clone()).await?.is_none()
        {
            return Err(StoreError::NotFound(Entity::Partner));
        }
        let inserted = sqlx::query(&format!(
            "INSERT INTO staff_users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (email) DO NOTHING"
        ))
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.role)
        .bind(u.partner_id.as_ref().map(|p| p.as_str()))
        .bind(&u.password_hash)
        .bind(to_micros(u.now))
        .execute(&self.pool)
        .await?;
        match inserted.rows_affected() {
            0 => Err(email_taken(&u.email)),
            _ => Ok(u.row()),
        }
    }

    async fn user_where(&self, column: &str, value: String) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_READ} FROM staff_users WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    pub async fn user_by_email(&self, email: String) -> Result<Option<UserRow>, StoreError> {
        self.user_where("email", email).await
    }

    pub async fn user(&self, id: String) -> Result<Option<UserRow>, StoreError> {
        self.user_where("id", id).await
    }

    pub async fn users(&self, partner: Option<PartnerId>) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_READ} FROM staff_users WHERE $1::text IS NULL OR partner_id = $1
             ORDER BY email COLLATE \"C\""
        ))
        .bind(partner.as_ref().map(|p| p.as_str()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_row).collect()
    }

    /// Saves a session, and drops the sessions that expired by its start.
    pub async fn create_session(&self, s: SessionRow) -> Result<(), StoreError> {
        s.check()?;
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, user_id, member_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.token_hash)
        .bind(&s.user_id)
        .bind(s.member_id.as_ref().map(|m| m.as_str()))
        .bind(to_micros(s.created_at))
        .bind(to_micros(s.expires_at))
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(to_micros(s.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn session(&self, token_hash: String, now: Timestamp) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, user_id, member_id, created_at, expires_at FROM web_sessions
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(to_micros(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                token_hash: r.try_get(0)?,
                user_id: r.try_get(1)?,
                member_id: r.try_get::<Option<String>, _>(2)?.map(MemberId::from_stored),
                created_at: from_micros(r.try_get(3)?),
                expires_at: from_micros(r.try_get(4)?),
            })
        })
        .transpose()
    }

    pub async fn end_session(&self, token_hash: String) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Disables a user and ends every session of theirs; false when there is no such user.
    pub async fn disable_user(&self, id: String, now: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("UPDATE staff_users SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1")
            .bind(&id)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(found > 0)
    }

    /// Saves a new code for a destination; the destination's earlier codes are spent, so
    /// only the newest can be guessed at.
    pub async fn create_login_code(&self, c: NewLoginCode) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE login_codes SET used_at = $2 WHERE destination = $1 AND used_at IS NULL")
            .bind(&c.destination)
            .bind(to_micros(c.now))
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO login_codes (member_id, destination, code_hash, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM members WHERE id = $1)",
        )
        .bind(c.member_id.as_str())
        .bind(&c.destination)
        .bind(&c.code_hash)
        .bind(to_micros(c.now))
        .bind(to_micros(c.expires_at))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Member));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Tries a code against the newest live code of the destination, locked: a match
    /// uses it, a miss counts an attempt against it. Two tries of one code queue on its
    /// row, and the second sees it used.
    pub async fn use_login_code(
        &self,
        destination: String,
        code_hash: String,
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<Option<MemberId>, StoreError> {
        let now = to_micros(now);
        let mut tx = self.pool.begin().await?;
        let live: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT id, code_hash, member_id FROM login_codes
             WHERE destination = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3
             ORDER BY created_at DESC, id DESC LIMIT 1 FOR UPDATE",
        )
        .bind(&destination)
        .bind(now)
        .bind(i64::from(max_attempts))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, stored, member)) = live else {
            return Ok(None);
        };
        let used = same_hash(&stored, &code_hash);
        let update = match used {
            true => sqlx::query("UPDATE login_codes SET used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now),
            false => sqlx::query("UPDATE login_codes SET attempts = attempts + 1 WHERE id = $1").bind(id),
        };
        update.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(used.then(|| MemberId::from_stored(member)))
    }

    pub async fn append_audit(&self, a: AuditRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, user_id, member_id, partner_id, action, target, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(to_micros(a.at))
        .bind(&a.user_id)
        .bind(a.member_id.as_ref().map(|m| m.as_str()))
        .bind(a.partner_id.as_ref().map(|p| p.as_str()))
        .bind(&a.action)
        .bind(&a.target)
        .bind(i64::from(a.status))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn audit(&self, partner: Option<PartnerId>, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let filter = if partner.is_some() {
            "WHERE partner_id = $1"
        } else {
            "WHERE $1::text IS NULL"
        };
        let rows = sqlx::query(&format!(
            "SELECT id, at, user_id, member_id, partner_id, action, target, status FROM audit_log
             {filter} ORDER BY id DESC LIMIT $2"
        ))
        .bind(partner.as_ref().map(|p| p.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    row: AuditRow {
                        at: from_micros(r.try_get(1)?),
                        user_id: r.try_get(2)?,
                        member_id: r.try_get::<Option<String>, _>(3)?.map(MemberId::from_stored),
                        partner_id: r.try_get::<Option<String>, _>(4)?.map(PartnerId::from_stored),
                        action: r.try_get(5)?,
                        target: r.try_get(6)?,
                        status: r.try_get::<i64, _>(7)?.clamp(0, i64::from(u16::MAX)) as u16,
                    },
                })
            })
            .collect()
    }

    /// Keeps `fresh` under `name` unless a value is there already; answers the stored
    /// one. Two statements: the read's snapshot sees a value another server committed
    /// while the insert waited on it.
    pub async fn web_key(&self, name: String, fresh: String) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO web_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(&name)
            .bind(fresh)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM web_keys WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn member_counts(&self, active_since: Timestamp) -> Result<(u64, u64), StoreError> {
        let (total, active): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM members),
                    (SELECT COUNT(DISTINCT member_id) FROM transactions WHERE occurred_at >= $1)",
        )
        .bind(to_micros(active_since))
        .fetch_one(&self.pool)
        .await?;
        Ok((total.max(0) as u64, active.max(0) as u64))
    }

    pub async fn monthly_points(&self, from: Timestamp) -> Result<Vec<MonthPoints>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT to_char(to_timestamp(recorded_at / 1000000) AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
                    (-SUM(CASE WHEN code IN ({ISSUED_CODES}) THEN amount ELSE 0 END))::bigint,
                    SUM(CASE WHEN code IN ({REDEEMED_CODES}) THEN amount ELSE 0 END)::bigint
             FROM entries
             WHERE recorded_at >= $1 AND {PROGRAMME_SIDE} AND code IN ({ISSUED_CODES}, {REDEEMED_CODES})
             GROUP BY month ORDER BY month"
        ))
        .bind(to_micros(from))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(month, issued, redeemed)| MonthPoints {
                month,
                issued,
                redeemed,
            })
            .collect())
    }

    pub async fn partner_member_points(&self) -> Result<Vec<PartnerMemberPoints>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT t.member_id, t.partner_id,
                    (-SUM(CASE WHEN e.code = 'earn' THEN e.amount ELSE 0 END))::bigint,
                    SUM(CASE WHEN e.code = 'redeem' THEN e.amount ELSE 0 END)::bigint
             FROM entries e JOIN transactions t ON t.id = e.transaction_id
             WHERE e.code IN ('earn', 'redeem') AND {PROGRAMME_SIDE}
             GROUP BY t.member_id, t.partner_id
             ORDER BY t.member_id COLLATE \"C\", t.partner_id COLLATE \"C\""
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(member, partner, earned, spent)| PartnerMemberPoints {
                member_id: MemberId::from_stored(member),
                partner_id: PartnerId::from_stored(partner),
                earned,
                spent,
            })
            .collect())
    }

    pub async fn partner_transactions(
        &self,
        partner: PartnerId,
        before: Option<TxnCursor>,
        limit: u32,
    ) -> Result<Vec<PartnerTxn>, StoreError> {
        let (at, id) = cursor_bounds(before.as_ref());
        let rows = sqlx::query(
            "SELECT kind, id, sale_id, member_id, location_id, at, amount, currency, earned, redeemed, receipt
             FROM ((SELECT 'sale' AS kind, id, id AS sale_id, member_id, location_id, occurred_at AS at,
                           total_amount AS amount, total_currency AS currency, points_earned AS earned,
                           points_redeemed AS redeemed, NULL::text AS receipt
                    FROM transactions
                    WHERE partner_id = $1 AND (occurred_at < $2 OR (occurred_at = $2 AND id COLLATE \"C\" < $3))
                    ORDER BY occurred_at DESC, id COLLATE \"C\" DESC LIMIT $4)
                   UNION ALL
                   (SELECT 'return', r.id, r.transaction_id, t.member_id, t.location_id, r.recorded_at,
                           r.amount, t.total_currency, 0, 0, r.receipt
                    FROM returns r JOIN transactions t ON t.id = r.transaction_id
                    WHERE r.partner_id = $1 AND (r.recorded_at < $2 OR (r.recorded_at = $2 AND r.id COLLATE \"C\" < $3))
                    ORDER BY r.recorded_at DESC, r.id COLLATE \"C\" DESC LIMIT $4)) x
             ORDER BY at DESC, id COLLATE \"C\" DESC LIMIT $4",
        )
        .bind(partner.as_str())
        .bind(at)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(partner_txn).collect()
    }

    /// A member's lots that still hold points, soonest to expire first.
    pub async fn open_lots(&self, member: MemberId) -> Result<Vec<OpenLot>, StoreError> {
        let rows = sqlx::query(
            "SELECT remaining, matures_at, expires_at FROM lots
             WHERE member_id = $1 AND remaining > 0 ORDER BY expires_at, id LIMIT $2",
        )
        .bind(member.as_str())
        .bind(i64::from(OPEN_LOTS_READ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OpenLot {
                    points: r.try_get(0)?,
                    matures_at: r.try_get::<Option<i64>, _>(1)?.map(from_micros),
                    expires_at: from_micros(r.try_get(2)?),
                })
            })
            .collect()
    }

    pub async fn partner_customers(
        &self,
        partner: PartnerId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<PartnerCustomer>, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT member_id, COUNT(*), MAX(occurred_at) AS last, SUM(points_earned)::bigint
             FROM transactions WHERE partner_id = $1 AND occurred_at >= $3
             GROUP BY member_id ORDER BY last DESC, member_id COLLATE \"C\" LIMIT $2",
        )
        .bind(partner.as_str())
        .bind(i64::from(limit))
        .bind(to_micros(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(member, visits, last, earned)| PartnerCustomer {
                member_id: MemberId::from_stored(member),
                visits: visits.max(0) as u64,
                last_visit: from_micros(last),
                points_earned: earned,
            })
            .collect())
    }
}
