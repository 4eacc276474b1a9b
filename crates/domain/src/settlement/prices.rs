//! What a point costs a partner and what it pays back: the programme's prices and each
//! partner's own, each version in effect from a day on.

use crate::DomainError;
use crate::ids::PartnerId;
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most a point may cost or pay back, in programme currency.
const MAX_POINT_PRICE: i64 = 1_000;
/// The most a monthly fee may be, in programme currency.
const MAX_MONTHLY_FEE: i64 = 1_000_000_000;
/// Prices and fees keep at most this many decimals.
const MAX_SCALE: u32 = 6;

/// The prices of settlement, all in programme currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// What a partner pays the operator per point it funds: `"0.008"`. 0 to 1000, at
    /// most 6 decimals.
    #[schema(value_type = String, example = "0.008", pattern = r"^(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)$")]
    pub issue_price: Decimal,
    /// What the operator pays a partner per point redeemed at its tills or in the
    /// vouchers it fulfils: `"0.0095"`. 0 to 1000, at most 6 decimals.
    #[schema(value_type = String, example = "0.0095", pattern = r"^(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)$")]
    pub reimbursement_rate: Decimal,
    /// A fee the partner pays per period; default 0. 0 to 10^9, at most 6 decimals.
    #[serde(default)]
    #[schema(value_type = String, example = "0", pattern = r"^(1000000000(\.0{1,6})?|[0-9]{1,9}(\.[0-9]{1,6})?)$")]
    pub monthly_fee: Decimal,
    /// A share of what the operator pays back for redemptions that the partner pays as
    /// a fee, in percent; default 0. 0 to 100, at most 6 decimals.
    #[serde(default)]
    #[schema(value_type = String, example = "0", pattern = r"^(100(\.0{1,6})?|[0-9]{1,2}(\.[0-9]{1,6})?)$")]
    pub redemption_fee_percent: Decimal,
}

impl Prices {
    /// The prices when the programme has set none: a point costs and pays back its
    /// value, without fees.
    pub fn at_point_value(value: Decimal) -> Self {
        Prices {
            issue_price: value,
            reimbursement_rate: value,
            monthly_fee: Decimal::ZERO,
            redemption_fee_percent: Decimal::ZERO,
        }
    }

    pub fn check(&self) -> Result<(), DomainError> {
        bounded("issue_price", self.issue_price, MAX_POINT_PRICE)?;
        bounded("reimbursement_rate", self.reimbursement_rate, MAX_POINT_PRICE)?;
        bounded("monthly_fee", self.monthly_fee, MAX_MONTHLY_FEE)?;
        bounded("redemption_fee_percent", self.redemption_fee_percent, 100)
    }
}

fn bounded(field: &'static str, d: Decimal, max: i64) -> Result<(), DomainError> {
    if d.is_sign_negative() || d > Decimal::from(max) {
        return Err(DomainError::invalid(field, format!("must be from 0 to {max}")));
    }
    if d.normalize().scale() > MAX_SCALE {
        return Err(DomainError::invalid(
            field,
            format!("must have at most {MAX_SCALE} decimals"),
        ));
    }
    Ok(())
}

/// One version of the prices: the programme's (`partner_id` none) or one partner's, in
/// effect from `effective_from` (a UTC day) until the next version of the same scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PriceVersion {
    /// The partner these prices are for; none: the programme's, for every partner
    /// without its own.
    #[schema(value_type = Option<String>)]
    pub partner_id: Option<PartnerId>,
    #[schema(value_type = String, format = Date, example = "2026-11-01")]
    pub effective_from: Date,
    #[serde(flatten)]
    pub prices: Prices,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// Every version of the prices, and what applies when none does.
#[derive(Debug, Clone)]
pub struct PriceBook {
    versions: Vec<PriceVersion>,
    fallback: Prices,
}

impl PriceBook {
    pub fn new(mut versions: Vec<PriceVersion>, fallback: Prices) -> Self {
        versions.sort_by_key(|v| v.effective_from);
        PriceBook { versions, fallback }
    }

    /// The prices of `partner` on `day`: its own latest version in effect, else the
    /// programme's, else the point value. A partner's version, once in effect, stands
    /// against later programme versions: it is that partner's agreement.
    pub fn on(&self, partner: &PartnerId, day: Date) -> &Prices {
        let latest = |own: bool| {
            self.versions
                .iter()
                .rev()
                .filter(|v| v.effective_from <= day)
                .find(|v| match &v.partner_id {
                    Some(p) => own && p == partner,
                    None => !own,
                })
        };
        latest(true)
            .or_else(|| latest(false))
            .map(|v| &v.prices)
            .unwrap_or(&self.fallback)
    }

    /// The programme's own prices on `day` (a partner's versions left aside): what the
    /// liability and breakage are valued at.
    pub fn programme_on(&self, day: Date) -> &Prices {
        self.versions
            .iter()
            .rev()
            .find(|v| v.partner_id.is_none() && v.effective_from <= day)
            .map(|v| &v.prices)
            .unwrap_or(&self.fallback)
    }

    pub fn versions(&self) -> &[PriceVersion] {
        &self.versions
    }
}
