//! Members' consents to share their personal data with a partner.

use super::SqliteStore;
use crate::model::{ConsentRow, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::ids::{Id, MemberId, PartnerId};

fn exists(conn: &Connection, sql: &str, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn set_consent(
    conn: &Connection,
    member_id: &MemberId,
    partner_id: &PartnerId,
    granted: bool,
    now: i64,
) -> Result<Option<ConsentRow>, StoreError> {
    if !exists(conn, "SELECT 1 FROM members WHERE id = ?1", member_id.as_str())? {
        return Err(StoreError::NotFound(Entity::Member));
    }
    if !exists(conn, "SELECT 1 FROM partners WHERE id = ?1", partner_id.as_str())? {
        return Err(StoreError::NotFound(Entity::Partner));
    }
    if granted {
        let granted_at: i64 = conn.query_row(
            "INSERT INTO member_consents (member_id, partner_id, granted_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (member_id, partner_id) DO UPDATE
             SET granted_at = CASE WHEN withdrawn_at IS NULL THEN granted_at ELSE excluded.granted_at END,
                 withdrawn_at = NULL
             RETURNING granted_at",
            params![member_id.as_str(), partner_id.as_str(), now],
            |r| r.get(0),
        )?;
        return Ok(Some(ConsentRow {
            partner_id: partner_id.clone(),
            granted_at: from_micros(granted_at),
        }));
    }
    conn.execute(
        "UPDATE member_consents SET withdrawn_at = ?3
         WHERE member_id = ?1 AND partner_id = ?2 AND withdrawn_at IS NULL",
        params![member_id.as_str(), partner_id.as_str(), now],
    )?;
    Ok(None)
}

fn consents(conn: &Connection, member_id: &MemberId) -> Result<Vec<ConsentRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT partner_id, granted_at FROM member_consents
         WHERE member_id = ?1 AND withdrawn_at IS NULL ORDER BY partner_id",
    )?;
    let rows = stmt.query_map([member_id.as_str()], |r| {
        Ok(ConsentRow {
            partner_id: PartnerId::from_stored(r.get(0)?),
            granted_at: from_micros(r.get(1)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl SqliteStore {
    pub async fn set_consent(
        &self,
        member_id: MemberId,
        partner_id: PartnerId,
        granted: bool,
        now: Timestamp,
    ) -> Result<Option<ConsentRow>, StoreError> {
        self.write(move |c| set_consent(c, &member_id, &partner_id, granted, to_micros(now)))
            .await
    }

    pub async fn consents(&self, member_id: MemberId) -> Result<Vec<ConsentRow>, StoreError> {
        self.read(move |c| consents(c, &member_id)).await
    }
}
