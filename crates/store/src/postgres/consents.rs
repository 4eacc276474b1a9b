//! Members' consents to share their personal data with a partner.

use super::PgStore;
use crate::model::{ConsentRow, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::Row;
use tally_domain::ids::{Id, MemberId, PartnerId};

impl PgStore {
    pub async fn set_consent(
        &self,
        member_id: MemberId,
        partner_id: PartnerId,
        granted: bool,
        now: Timestamp,
    ) -> Result<Option<ConsentRow>, StoreError> {
        let (member, partner): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM members WHERE id = $1), EXISTS (SELECT 1 FROM partners WHERE id = $2)",
        )
        .bind(member_id.as_str())
        .bind(partner_id.as_str())
        .fetch_one(&self.pool)
        .await?;
        if !member {
            return Err(StoreError::NotFound(Entity::Member));
        }
        if !partner {
            return Err(StoreError::NotFound(Entity::Partner));
        }
        if granted {
            let granted_at: i64 = sqlx::query_scalar(
                "INSERT INTO member_consents (member_id, partner_id, granted_at) VALUES ($1, $2, $3)
                 ON CONFLICT (member_id, partner_id) DO UPDATE
                 SET granted_at = CASE WHEN member_consents.withdrawn_at IS NULL
                                       THEN member_consents.granted_at ELSE excluded.granted_at END,
                     withdrawn_at = NULL
                 RETURNING granted_at",
            )
            .bind(member_id.as_str())
            .bind(partner_id.as_str())
            .bind(to_micros(now))
            .fetch_one(&self.pool)
            .await?;
            return Ok(Some(ConsentRow {
                partner_id,
                granted_at: from_micros(granted_at),
            }));
        }
        sqlx::query(
            "UPDATE member_consents SET withdrawn_at = $3
             WHERE member_id = $1 AND partner_id = $2 AND withdrawn_at IS NULL",
        )
        .bind(member_id.as_str())
        .bind(partner_id.as_str())
        .bind(to_micros(now))
        .execute(&self.pool)
        .await?;
        Ok(None)
    }

    pub async fn consents(&self, member_id: MemberId) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT partner_id, granted_at FROM member_consents
             WHERE member_id = $1 AND withdrawn_at IS NULL ORDER BY partner_id",
        )
        .bind(member_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConsentRow {
                    partner_id: PartnerId::from_stored(r.try_get(0)?),
                    granted_at: from_micros(r.try_get(1)?),
                })
            })
            .collect()
    }
}
