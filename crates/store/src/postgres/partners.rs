//! Partners, their locations, and their API keys (stored only as hashes).

use super::PgStore;
use crate::codec::{currency, decimal};
use crate::model::{ApiKeyInfo, ApiKeyRow, LocationRow, PartnerRow, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tally_domain::ids::{Id, LocationId, PartnerId};

fn api_key_info(r: &PgRow) -> Result<ApiKeyInfo, StoreError> {
    Ok(ApiKeyInfo {
        id: r.try_get(0)?,
        partner_id: PartnerId::from_stored(r.try_get(1)?),
        created_at: from_micros(r.try_get(2)?),
        revoked_at: r.try_get::<Option<i64>, _>(3)?.map(from_micros),
    })
}

const PARTNER_COLUMNS: &str = "id, name, industry, country, currency, timezone, earn_rate, pending_days, created_at";

fn partner_row(r: &PgRow) -> Result<PartnerRow, StoreError> {
    Ok(PartnerRow {
        id: PartnerId::from_stored(r.try_get(0)?),
        name: r.try_get(1)?,
        industry: r.try_get(2)?,
        country: r.try_get(3)?,
        currency: currency(&r.try_get::<String, _>(4)?)?,
        timezone: r.try_get(5)?,
        earn_rate: decimal(&r.try_get::<String, _>(6)?, "earn_rate")?,
        pending_days: r.try_get::<i64, _>(7)? as u32,
        created_at: from_micros(r.try_get(8)?),
    })
}

/// The name a partner's activity lines and returns show.
pub(super) async fn partner_name(conn: &mut PgConnection, id: &PartnerId) -> Result<String, StoreError> {
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM partners WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?;
    Ok(name.unwrap_or_default())
}

/// The partner that owns a location, if the location exists.
pub(super) async fn location_owner(
    conn: &mut PgConnection,
    location_id: &LocationId,
) -> Result<Option<PartnerId>, StoreError> {
    let owner: Option<String> = sqlx::query_scalar("SELECT partner_id FROM locations WHERE id = $1")
        .bind(location_id.as_str())
        .fetch_optional(conn)
        .await?;
    Ok(owner.map(PartnerId::from_stored))
}

impl PgStore {
    async fn require_partner(&self, id: &PartnerId) -> Result<(), StoreError> {
        match self.partner(id.clone()).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(Entity::Partner)),
        }
    }

    pub async fn create_partner(&self, p: PartnerRow) -> Result<PartnerRow, StoreError> {
        sqlx::query(&format!(
            "INSERT INTO partners ({PARTNER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(p.id.as_str())
        .bind(&p.name)
        .bind(&p.industry)
        .bind(&p.country)
        .bind(p.currency.code())
        .bind(&p.timezone)
        .bind(p.earn_rate.to_string())
        .bind(i64::from(p.pending_days))
        .bind(to_micros(p.created_at))
        .execute(&self.pool)
        .await?;
        Ok(p)
    }

    pub async fn partners(&self) -> Result<Vec<PartnerRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PARTNER_COLUMNS} FROM partners ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(partner_row).collect()
    }

    pub async fn partner(&self, id: PartnerId) -> Result<Option<PartnerRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(partner_row).transpose()
    }

    pub async fn create_location(&self, l: LocationRow) -> Result<LocationRow, StoreError> {
        self.require_partner(&l.partner_id).await?;
        sqlx::query("INSERT INTO locations (id, partner_id, name, city, country, timezone, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(l.id.as_str())
            .bind(l.partner_id.as_str())
            .bind(&l.name)
            .bind(&l.city)
            .bind(&l.country)
            .bind(&l.timezone)
            .bind(to_micros(l.created_at))
            .execute(&self.pool)
            .await?;
        Ok(l)
    }

    pub async fn locations(&self, partner_id: PartnerId) -> Result<Vec<LocationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, partner_id, name, city, country, timezone, created_at FROM locations WHERE partner_id = $1 ORDER BY created_at, id",
        )
                .bind(partner_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LocationRow {
                    id: LocationId::from_stored(r.try_get(0)?),
                    partner_id: PartnerId::from_stored(r.try_get(1)?),
                    name: r.try_get(2)?,
                    city: r.try_get(3)?,
                    country: r.try_get(4)?,
                    timezone: r.try_get(5)?,
                    created_at: from_micros(r.try_get(6)?),
                })
            })
            .collect()
    }

    pub async fn create_api_key(&self, k: ApiKeyRow) -> Result<(), StoreError> {
        self.require_partner(&k.partner_id).await?;
        sqlx::query("INSERT INTO api_keys (id, partner_id, key_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&k.id)
            .bind(k.partner_id.as_str())
            .bind(&k.key_hash)
            .bind(to_micros(k.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn api_key_partner(&self, hash: String) -> Result<Option<PartnerId>, StoreError> {
        let partner: Option<String> =
            sqlx::query_scalar("SELECT partner_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(partner.map(PartnerId::from_stored))
    }

    pub async fn api_keys(&self, partner_id: PartnerId) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, partner_id, created_at, revoked_at FROM api_keys WHERE partner_id = $1 ORDER BY created_at, id",
        )
        .bind(partner_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_key_info).collect()
    }

    /// Revokes a partner's key (a key already revoked keeps its first revocation time).
    pub async fn revoke_api_key(
        &self,
        partner_id: PartnerId,
        key_id: String,
        now: Timestamp,
    ) -> Result<(ApiKeyInfo, String), StoreError> {
        // A key revoked already keeps its time; a revocation racing another waits for
        // its row lock and then matches the same row, so both answer the key.
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND partner_id = $2
             RETURNING id, partner_id, created_at, revoked_at, key_hash",
        )
        .bind(&key_id)
        .bind(partner_id.as_str())
        .bind(to_micros(now))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Entity::ApiKey))?;
        Ok((api_key_info(&row)?, row.try_get(4)?))
    }
}
