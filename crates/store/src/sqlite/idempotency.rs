//! `Idempotency-Key` claims: taken before the request runs, finished with its answer.

use super::SqliteStore;
use crate::StoreError;
use crate::model::{Claim, StoredResponse, to_micros};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

/// The answer kept under a command's id: `sql` selects `request_hash, receipt` by the
/// id and what it is scoped to (`a`, `b`).
pub(super) fn stored_answer(
    conn: &Connection,
    sql: &str,
    a: &str,
    b: &str,
) -> Result<Option<tally_domain::decide::StoredAnswer>, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![a, b], |r| {
            Ok(tally_domain::decide::StoredAnswer {
                request_hash: r.get(0)?,
                receipt_json: r.get(1)?,
                target: None,
            })
        })
        .optional()?)
}

fn claim(
    conn: &Connection,
    principal: &str,
    key: &str,
    request_hash: &str,
    now: Timestamp,
    abandoned_before: Timestamp,
) -> Result<Claim, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT request_hash, status, body, created_at FROM idempotency_keys WHERE principal = ?1 AND key = ?2",
        )?
        .query_row(params![principal, key], |r| {
            Ok((
                StoredResponse {
                    request_hash: r.get(0)?,
                    status: r.get::<_, i64>(1)? as u16,
                    body: r.get(2)?,
                },
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    match found {
        None => {
            conn.prepare_cached(
                "INSERT INTO idempotency_keys (principal, key, request_hash, status, body, created_at) VALUES (?1, ?2, ?3, 0, '', ?4)",
            )?
            .execute(params![principal, key, request_hash, to_micros(now)])?;
            Ok(Claim::Claimed)
        }
        Some((stored, at))
            if stored.status == 0 && at < to_micros(abandoned_before) && stored.request_hash == request_hash =>
        {
            conn.prepare_cached("UPDATE idempotency_keys SET created_at = ?3 WHERE principal = ?1 AND key = ?2")?
                .execute(params![principal, key, to_micros(now)])?;
            Ok(Claim::Claimed)
        }
        Some((stored, _)) => Ok(Claim::Taken(stored)),
    }
}

impl SqliteStore {
    pub async fn claim_idempotency_key(
        &self,
        principal: String,
        key: String,
        request_hash: String,
        now: Timestamp,
        abandoned_before: Timestamp,
    ) -> Result<Claim, StoreError> {
        self.write(move |c| claim(c, &principal, &key, &request_hash, now, abandoned_before))
            .await
    }

    pub async fn finish_idempotency_key(
        &self,
        principal: String,
        key: String,
        status: u16,
        body: String,
    ) -> Result<(), StoreError> {
        self.write_waiting(move |c| {
            c.prepare_cached("UPDATE idempotency_keys SET status = ?3, body = ?4 WHERE principal = ?1 AND key = ?2")?
                .execute(params![principal, key, status, body])?;
            Ok(())
        })
        .await
    }

    pub async fn release_idempotency_key(&self, principal: String, key: String) -> Result<(), StoreError> {
        self.write_waiting(move |c| {
            c.prepare_cached("DELETE FROM idempotency_keys WHERE principal = ?1 AND key = ?2 AND status = 0")?
                .execute(params![principal, key])?;
            Ok(())
        })
        .await
    }
}
