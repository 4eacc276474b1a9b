//! Answers kept under an `Idempotency-Key`.

use super::SqliteStore;
use crate::StoreError;
use crate::model::{StoredResponse, to_micros};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

fn idempotent_response(conn: &Connection, principal: &str, key: &str) -> Result<Option<StoredResponse>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT request_hash, status, body FROM idempotency_keys WHERE principal = ?1 AND key = ?2")?
        .query_row(params![principal, key], |r| {
            Ok(StoredResponse {
                request_hash: r.get(0)?,
                status: r.get::<_, i64>(1)? as u16,
                body: r.get(2)?,
            })
        })
        .optional()?)
}

fn save_idempotent_response(
    conn: &Connection,
    principal: &str,
    key: &str,
    resp: &StoredResponse,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (principal, key, request_hash, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (principal, key) DO NOTHING",
    )?
    .execute(params![principal, key, resp.request_hash, resp.status, resp.body, to_micros(now)])?;
    Ok(())
}

impl SqliteStore {
    pub async fn idempotent_response(
        &self,
        principal: String,
        key: String,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.read(move |c| idempotent_response(c, &principal, &key)).await
    }

    pub async fn save_idempotent_response(
        &self,
        principal: String,
        key: String,
        response: StoredResponse,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(move |c| save_idempotent_response(c, &principal, &key, &response, now))
            .await
    }
}
