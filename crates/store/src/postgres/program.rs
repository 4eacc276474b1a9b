//! The programme row, the operator key's hash, and FX rates.

use super::PgStore;
use crate::StoreError;
use crate::codec::{currency, fx_rates_from_rows, referral_policy, tier_ladder, to_json, transfer_policy};
use crate::model::{ProgramRow, ProgramUpdate, to_micros};
use jiff::Timestamp;
use sqlx::Row;
use tally_domain::earning::FxRates;

impl PgStore {
    pub async fn program(&self) -> Result<ProgramRow, StoreError> {
        let r = sqlx::query(
            "SELECT name, currency, point_value_minor, expiry_months, tiers, transfer_policy, referral_signup_url,
                    referral_policy
             FROM program WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        let plans = std::sync::Arc::new(super::memberships::plans(&mut conn).await?);
        Ok(ProgramRow {
            plans,
            name: r.try_get(0)?,
            currency: currency(&r.try_get::<String, _>(1)?)?,
            point_value_minor: r.try_get(2)?,
            expiry_months: r.try_get::<i64, _>(3)? as u32,
            tiers: tier_ladder(r.try_get::<Option<String>, _>(4)?.as_deref()),
            transfers: transfer_policy(r.try_get::<Option<String>, _>(5)?.as_deref()),
            referral_signup_url: r.try_get(6)?,
            referrals: referral_policy(r.try_get::<Option<String>, _>(7)?.as_deref()),
        })
    }

    pub async fn update_program(&self, u: ProgramUpdate) -> Result<ProgramRow, StoreError> {
        sqlx::query(
            "UPDATE program SET name = COALESCE($1, name), currency = COALESCE($2, currency),
                 point_value_minor = COALESCE($3, point_value_minor), expiry_months = COALESCE($4, expiry_months),
                 tiers = COALESCE($5, tiers), transfer_policy = COALESCE($6, transfer_policy),
                 referral_signup_url = CASE WHEN $7 THEN $8 ELSE referral_signup_url END,
                 referral_policy = CASE WHEN $9 THEN $10 ELSE referral_policy END WHERE id = 1",
        )
        .bind(u.name)
        .bind(u.currency.map(|c| c.code()))
        .bind(u.point_value_minor)
        .bind(u.expiry_months.map(i64::from))
        .bind(u.tiers.as_ref().map(to_json).transpose()?)
        .bind(u.transfers.as_ref().map(to_json).transpose()?)
        .bind(u.referral_signup_url.is_some())
        .bind(u.referral_signup_url.clone().flatten())
        .bind(u.referrals.is_some())
        .bind(u.referrals.clone().flatten().as_ref().map(to_json).transpose()?)
        .execute(&self.pool)
        .await?;
        self.program().await
    }

    pub async fn admin_key_hash(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT admin_key_hash FROM program WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn set_admin_key_hash(&self, hash: String) -> Result<(), StoreError> {
        sqlx::query("UPDATE program SET admin_key_hash = $1 WHERE id = 1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn fx_rates(&self) -> Result<FxRates, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT currency, rate FROM fx_rates")
            .fetch_all(&self.pool)
            .await?;
        fx_rates_from_rows(rows)
    }

    pub async fn put_fx_rates(&self, rates: FxRates, now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (code, rate) in rates.iter() {
            sqlx::query(
                "INSERT INTO fx_rates (currency, rate, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (currency) DO UPDATE SET rate = excluded.rate, updated_at = excluded.updated_at",
            )
            .bind(code)
            .bind(rate.to_string())
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
