//! Answers kept under an `Idempotency-Key`.

use super::PgStore;
use crate::StoreError;
use crate::model::{StoredResponse, to_micros};
use jiff::Timestamp;

impl PgStore {
    pub async fn idempotent_response(
        &self,
        principal: String,
        key: String,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let row: Option<(String, i64, String)> =
            sqlx::query_as("SELECT request_hash, status, body FROM idempotency_keys WHERE principal = $1 AND key = $2")
                .bind(principal)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(request_hash, status, body)| StoredResponse {
            request_hash,
            status: status as u16,
            body,
        }))
    }

    pub async fn save_idempotent_response(
        &self,
        principal: String,
        key: String,
        r: StoredResponse,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO idempotency_keys (principal, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (principal, key) DO NOTHING",
        )
        .bind(principal)
        .bind(key)
        .bind(r.request_hash)
        .bind(i64::from(r.status))
        .bind(r.body)
        .bind(to_micros(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
