//! Partners, their locations, and their API keys (stored only as hashes).

use super::SqliteStore;
use crate::codec::{currency, decimal};
use crate::model::{ApiKeyInfo, ApiKeyRow, LocationRow, PartnerRow, from_micros, to_micros};
use crate::{Entity, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::ids::{Id, LocationId, PartnerId};

const PARTNER_COLUMNS: &str = "id, name, industry, country, currency, timezone, earn_rate, pending_days, created_at";

type PartnerTuple = (String, String, String, String, String, String, String, i64, i64);

fn partner_tuple(r: &rusqlite::Row<'_>) -> rusqlite::Result<PartnerTuple> {
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
    ))
}

fn partner_row(t: PartnerTuple) -> Result<PartnerRow, StoreError> {
    let (id, name, industry, country, code, timezone, earn_rate, pending_days, created_at) = t;
    Ok(PartnerRow {
        id: PartnerId::from_stored(id),
        name,
        industry,
        country,
        currency: currency(&code)?,
        timezone,
        earn_rate: decimal(&earn_rate, "earn_rate")?,
        pending_days: pending_days as u32,
        created_at: from_micros(created_at),
    })
}

fn partners(conn: &Connection) -> Result<Vec<PartnerRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PARTNER_COLUMNS} FROM partners ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([], partner_tuple)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(partner_row).collect()
}

pub(super) fn partner(conn: &Connection, id: &PartnerId) -> Result<Option<PartnerRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = ?1"))?;
    stmt.query_row([id.as_str()], partner_tuple)
        .optional()?
        .map(partner_row)
        .transpose()
}

fn create_partner(conn: &Connection, p: &PartnerRow) -> Result<(), StoreError> {
    conn.execute(
        &format!("INSERT INTO partners ({PARTNER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            p.id.as_str(),
            p.name,
            p.industry,
            p.country,
            p.currency.code(),
            p.timezone,
            p.earn_rate.to_string(),
            p.pending_days,
            to_micros(p.created_at)
        ],
    )?;
    Ok(())
}

fn require_partner(conn: &Connection, id: &PartnerId) -> Result<(), StoreError> {
    match partner(conn, id)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(Entity::Partner)),
    }
}

fn create_location(conn: &Connection, l: &LocationRow) -> Result<(), StoreError> {
    require_partner(conn, &l.partner_id)?;
    conn.execute(
        "INSERT INTO locations (id, partner_id, name, city, country, timezone, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![l.id.as_str(), l.partner_id.as_str(), l.name, l.city, l.country, l.timezone, to_micros(l.created_at)],
    )?;
    Ok(())
}

fn locations(conn: &Connection, partner_id: &PartnerId) -> Result<Vec<LocationRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, partner_id, name, city, country, timezone, created_at FROM locations WHERE partner_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([partner_id.as_str()], |r| {
        Ok(LocationRow {
            id: LocationId::from_stored(r.get(0)?),
            partner_id: PartnerId::from_stored(r.get(1)?),
            name: r.get(2)?,
            city: r.get(3)?,
            country: r.get(4)?,
            timezone: r.get(5)?,
            created_at: from_micros(r.get(6)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The partner that owns a location, if the location exists.
pub(super) fn location_owner(conn: &Connection, location_id: &LocationId) -> Result<Option<PartnerId>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT partner_id FROM locations WHERE id = ?1")?
        .query_row([location_id.as_str()], |r| r.get(0))
        .optional()?
        .map(PartnerId::from_stored))
}

fn create_api_key(conn: &Connection, k: &ApiKeyRow) -> Result<(), StoreError> {
    require_partner(conn, &k.partner_id)?;
    conn.execute(
        "INSERT INTO api_keys (id, partner_id, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![k.id, k.partner_id.as_str(), k.key_hash, to_micros(k.created_at)],
    )?;
    Ok(())
}

fn api_key_partner(conn: &Connection, hash: &str) -> Result<Option<PartnerId>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT partner_id FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL")?
        .query_row([hash], |r| r.get(0))
        .optional()?
        .map(PartnerId::from_stored))
}

fn api_key_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: r.get(0)?,
        partner_id: PartnerId::from_stored(r.get(1)?),
        created_at: from_micros(r.get(2)?),
        revoked_at: r.get::<_, Option<i64>>(3)?.map(from_micros),
    })
}

fn api_keys(conn: &Connection, partner_id: &PartnerId) -> Result<Vec<ApiKeyInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, partner_id, created_at, revoked_at FROM api_keys WHERE partner_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([partner_id.as_str()], api_key_info)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a partner's key (a key already revoked keeps its first revocation time).
fn revoke_api_key(
    conn: &Connection,
    partner_id: &PartnerId,
    key_id: &str,
    now: i64,
) -> Result<(ApiKeyInfo, String), StoreError> {
    conn.query_row(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE id = ?1 AND partner_id = ?2
         RETURNING id, partner_id, created_at, revoked_at, key_hash",
        params![key_id, partner_id.as_str(), now],
        |r| Ok((api_key_info(r)?, r.get(4)?)),
    )
    .optional()?
    .ok_or(StoreError::NotFound(Entity::ApiKey))
}

impl SqliteStore {
    pub async fn create_partner(&self, partner: PartnerRow) -> Result<PartnerRow, StoreError> {
        self.write(move |c| create_partner(c, &partner).map(|_| partner.clone()))
            .await
    }

    pub async fn partners(&self) -> Result<Vec<PartnerRow>, StoreError> {
        self.read(partners).await
    }
    pub async fn partner(&self, id: PartnerId) -> Result<Option<PartnerRow>, StoreError> {
        self.read(move |c| partner(c, &id)).await
    }

    pub async fn create_location(&self, location: LocationRow) -> Result<LocationRow, StoreError> {
        self.write(move |c| create_location(c, &location).map(|_| location.clone()))
            .await
    }
    pub async fn locations(&self, partner_id: PartnerId) -> Result<Vec<LocationRow>, StoreError> {
        self.read(move |c| locations(c, &partner_id)).await
    }

    pub async fn create_api_key(&self, key: ApiKeyRow) -> Result<(), StoreError> {
        self.write(move |c| create_api_key(c, &key)).await
    }
    pub async fn api_key_partner(&self, hash: String) -> Result<Option<PartnerId>, StoreError> {
        self.read(move |c| api_key_partner(c, &hash)).await
    }
    pub async fn api_keys(&self, partner_id: PartnerId) -> Result<Vec<ApiKeyInfo>, StoreError> {
        self.read(move |c| api_keys(c, &partner_id)).await
    }
    pub async fn revoke_api_key(
        &self,
        partner_id: PartnerId,
        key_id: String,
        now: Timestamp,
    ) -> Result<(ApiKeyInfo, String), StoreError> {
        self.write(move |c| revoke_api_key(c, &partner_id, &key_id, to_micros(now)))
            .await
    }
}
