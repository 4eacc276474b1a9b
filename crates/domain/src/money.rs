//! Money in integer minor units of an ISO 4217 currency, and points as plain integers.

use crate::DomainError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest amount in minor units Tally accepts (amounts are below 10^15): ten
/// trillion units of any currency is far past any real receipt and keeps every product
/// of amounts inside `i64`/`Decimal`.
pub const MAX_AMOUNT_MINOR: i64 = 999_999_999_999_999;
/// The largest number of points one request may move, and one sale or event may earn.
pub const MAX_POINTS: i64 = 1_000_000_000_000;
/// The most points one member account (available plus pending) may hold. With at most
/// [`MAX_POINTS`] a sale, no balance, entry or sum of a member's entries can leave `i64`.
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;

/// An ISO 4217 currency with a known number of decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, DomainError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(DomainError::UnknownCurrency(code.chars().take(16).collect()));
        }
        let c =
            iso_currency::Currency::from_code(code).ok_or_else(|| DomainError::UnknownCurrency(code.to_string()))?;
        // Funds codes and metals (XAU, XDR…) have no minor unit: not money a till takes.
        c.exponent()
            .ok_or_else(|| DomainError::UnknownCurrency(code.to_string()))?;
        Ok(Currency(c))
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point: 0 for JPY, 2 for EUR, 3 for KWD.
    pub fn exponent(&self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: integer minor units of one currency, never negative in Tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Result<Self, DomainError> {
        if amount < 0 {
            return Err(DomainError::invalid("amount", "must not be negative"));
        }
        if amount > MAX_AMOUNT_MINOR {
            return Err(DomainError::invalid("amount", "must be below 10^15 minor units"));
        }
        Ok(Money { amount, currency })
    }

    /// The amount in whole units as an exact decimal (1299 EUR cents → 12.99).
    pub fn to_decimal(&self) -> Decimal {
        in_units(self.amount, self.currency)
    }

    /// Human form for explanations: `EUR 12.99`, `JPY 500`.
    pub fn display(&self) -> String {
        format!("{} {}", self.currency.code(), self.to_decimal())
    }
}

/// Minor units of `currency` in whole units, exactly, keeping the currency's decimals
/// (1299 EUR cents → 12.99, 0 → 0.00, −5 → −0.05).
pub fn in_units(minor: i64, currency: Currency) -> Decimal {
    Decimal::from_i128_with_scale(i128::from(minor), currency.exponent())
}

/// A points count given by a caller: a non-negative integer no larger than [`MAX_POINTS`].
pub fn parse_points(field: &'static str, value: i64) -> Result<i64, DomainError> {
    if value < 0 {
        return Err(DomainError::invalid(field, "must not be negative"));
    }
    if value > MAX_POINTS {
        return Err(DomainError::invalid(field, "is larger than Tally accepts"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_know_their_decimals() {
        assert_eq!(Currency::parse("EUR").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
    }

    #[test]
    fn bad_currencies_are_refused() {
        for bad in ["eur", "EURO", "", "XXX", "ZZZ", "XAU", "€"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn money_refuses_negative_and_absurd() {
        let eur = Currency::parse("EUR").unwrap();
        assert!(Money::new(-1, eur).is_err());
        assert!(Money::new(MAX_AMOUNT_MINOR + 1, eur).is_err());
        assert_eq!(Money::new(1299, eur).unwrap().display(), "EUR 12.99");
    }
}
