//! `Idempotency-Key` claims: taken before the request runs, finished with its answer.

use super::PgStore;
use crate::StoreError;
use crate::model::{Claim, StoredResponse, to_micros};
use jiff::Timestamp;

/// The answer kept under a command's id: `sql` selects `request_hash, receipt` by the
/// id and what it is scoped to (`a`, `b`).
pub(super) async fn stored_answer(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    a: &str,
    b: &str,
) -> Result<Option<tally_domain::decide::StoredAnswer>, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as(sql).bind(a).bind(b).fetch_optional(&mut *conn).await?;
    Ok(
        row.map(|(request_hash, receipt_json)| tally_domain::decide::StoredAnswer {
            request_hash,
            receipt_json,
            target: None,
        }),
    )
}

impl PgStore {
    pub async fn claim_idempotency_key(
        &self,
        principal: String,
        key: String,
        request_hash: String,
        now: Timestamp,
        abandoned_before: Timestamp,
    ) -> Result<Claim, StoreError> {
        // A claim let go between the insert and the read is claimed again.
        for _ in 0..3 {
            if let Some(claim) = self
                .try_claim(&principal, &key, &request_hash, now, abandoned_before)
                .await?
            {
                return Ok(claim);
            }
        }
        Err(StoreError::Overloaded)
    }

    async fn try_claim(
        &self,
        principal: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        abandoned_before: Timestamp,
    ) -> Result<Option<Claim>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (principal, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, 0, '', $4)
             ON CONFLICT (principal, key) DO NOTHING",
        )
        .bind(principal)
        .bind(key)
        .bind(request_hash)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            tx.commit().await?;
            return Ok(Some(Claim::Claimed));
        }
        let found: Option<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT request_hash, status, body, created_at FROM idempotency_keys WHERE principal = $1 AND key = $2 FOR UPDATE",
        )
        .bind(principal)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((hash, status, body, at)) = found else {
            return Ok(None);
        };
        let claim = if status == 0 && at < to_micros(abandoned_before) && hash == request_hash {
            sqlx::query("UPDATE idempotency_keys SET created_at = $3 WHERE principal = $1 AND key = $2")
                .bind(principal)
                .bind(key)
                .bind(to_micros(now))
                .execute(&mut *tx)
                .await?;
            Claim::Claimed
        } else {
            Claim::Taken(StoredResponse {
                request_hash: hash,
                status: status as u16,
                body,
            })
        };
        tx.commit().await?;
        Ok(Some(claim))
    }

    pub async fn finish_idempotency_key(
        &self,
        principal: String,
        key: String,
        status: u16,
        body: String,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE idempotency_keys SET status = $3, body = $4 WHERE principal = $1 AND key = $2")
            .bind(principal)
            .bind(key)
            .bind(i64::from(status))
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn release_idempotency_key(&self, principal: String, key: String) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND status = 0")
            .bind(principal)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
