//! The programme row, the operator key's hash, and FX rates.

use super::SqliteStore;
use crate::StoreError;
use crate::codec::{currency, fx_rates_from_rows, referral_policy, tier_ladder, to_json, transfer_policy};
use crate::model::{ProgramRow, ProgramUpdate, to_micros};
use jiff::Timestamp;
use rusqlite::{Connection, params};
use tally_domain::earning::FxRates;

pub(super) fn program(conn: &Connection) -> Result<ProgramRow, StoreError> {
    type Columns = (
        String,
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let (name, code, point_value_minor, expiry_months, tiers, transfers, signup, referrals): Columns = conn
        .prepare_cached(
            "SELECT name, currency, point_value_minor, expiry_months, tiers, transfer_policy, referral_signup_url,
                    referral_policy
             FROM program WHERE id = 1",
        )?
        .query_row([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?;
    Ok(ProgramRow {
        name,
        currency: currency(&code)?,
        point_value_minor,
        expiry_months: expiry_months as u32,
        tiers: tier_ladder(tiers.as_deref()),
        transfers: transfer_policy(transfers.as_deref()),
        referral_signup_url: signup,
        referrals: referral_policy(referrals.as_deref()),
        plans: std::sync::Arc::new(super::memberships::plans(conn)?),
    })
}

fn update_program(conn: &Connection, u: &ProgramUpdate) -> Result<ProgramRow, StoreError> {
    let current = program(conn)?;
    let tiers = match &u.tiers {
        Some(t) => to_json(t)?,
        None => to_json(current.tiers.as_ref())?,
    };
    let transfers = to_json(u.transfers.as_ref().unwrap_or(&current.transfers))?;
    let signup = u.referral_signup_url.clone().unwrap_or(current.referral_signup_url);
    let referrals = match &u.referrals {
        Some(p) => p.as_ref().map(to_json).transpose()?,
        None => current.referrals.as_deref().map(to_json).transpose()?,
    };
    conn.execute(
        "UPDATE program SET name = ?1, currency = ?2, point_value_minor = ?3, expiry_months = ?4, tiers = ?5,
             transfer_policy = ?6, referral_signup_url = ?7, referral_policy = ?8 WHERE id = 1",
        params![
            u.name.clone().unwrap_or(current.name),
            u.currency.unwrap_or(current.currency).code(),
            u.point_value_minor.unwrap_or(current.point_value_minor),
            u.expiry_months.unwrap_or(current.expiry_months),
            tiers,
            transfers,
            signup,
            referrals,
        ],
    )?;
    program(conn)
}

pub(super) fn fx_rates(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT currency, rate FROM fx_rates")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn put_fx_rate(conn: &Connection, currency: &str, rate: &str, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO fx_rates (currency, rate, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (currency) DO UPDATE SET rate = excluded.rate, updated_at = excluded.updated_at",
    )?
    .execute(params![currency, rate, to_micros(now)])?;
    Ok(())
}

impl SqliteStore {
    pub async fn program(&self) -> Result<ProgramRow, StoreError> {
        self.read(program).await
    }

    pub async fn update_program(&self, update: ProgramUpdate) -> Result<ProgramRow, StoreError> {
        self.write(move |c| update_program(c, &update)).await
    }

    pub async fn admin_key_hash(&self) -> Result<Option<String>, StoreError> {
        self.read(|c| Ok(c.query_row("SELECT admin_key_hash FROM program WHERE id = 1", [], |r| r.get(0))?))
            .await
    }

    pub async fn set_admin_key_hash(&self, hash: String) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute("UPDATE program SET admin_key_hash = ?1 WHERE id = 1", [&hash])?;
            Ok(())
        })
        .await
    }

    pub async fn fx_rates(&self) -> Result<FxRates, StoreError> {
        fx_rates_from_rows(self.read(fx_rates).await?)
    }

    pub async fn put_fx_rates(&self, rates: FxRates, now: Timestamp) -> Result<(), StoreError> {
        self.write(move |c| {
            for (code, rate) in rates.iter() {
                put_fx_rate(c, code, &rate.to_string(), now)?;
            }
            Ok(())
        })
        .await
    }
}
