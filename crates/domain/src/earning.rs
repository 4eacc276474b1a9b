//! Base earning: points per amount spent, converted into the programme currency.

use crate::DomainError;
use crate::money::{Currency, Money};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use std::collections::HashMap;

/// The programme's terms that earning and spending depend on.
#[derive(Debug, Clone)]
pub struct ProgramTerms {
    pub currency: Currency,
    /// What one point is worth, in minor units of the programme currency.
    pub point_value_minor: i64,
    pub expiry_months: u32,
}

impl ProgramTerms {
    /// The value of `points` in programme currency units (exact).
    pub fn points_value(&self, points: i64) -> Decimal {
        Decimal::from_i128_with_scale(
            i128::from(points) * i128::from(self.point_value_minor),
            self.currency.exponent(),
        )
    }
}

/// Operator-managed FX rates: units of a currency per one unit of programme currency.
#[derive(Debug, Clone, Default)]
pub struct FxRates {
    rates: HashMap<&'static str, Decimal>,
}

impl FxRates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a rate; it must be positive and sane (at most 10^9 units per programme unit).
    pub fn set(&mut self, currency: Currency, rate: Decimal) -> Result<(), DomainError> {
        if rate <= Decimal::ZERO || rate > Decimal::from(1_000_000_000) {
            return Err(DomainError::invalid(
                "rates",
                format!("rate for {currency} must be positive"),
            ));
        }
        self.rates.insert(currency.code(), rate.normalize());
        Ok(())
    }

    pub fn get(&self, currency: Currency) -> Option<Decimal> {
        self.rates.get(currency.code()).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Decimal)> + '_ {
        self.rates.iter().map(|(k, v)| (*k, *v))
    }

    /// Rate of `currency` against the programme currency (1 for the programme currency).
    pub fn rate_for(&self, program: Currency, currency: Currency) -> Result<Decimal, DomainError> {
        if currency == program {
            return Ok(Decimal::ONE);
        }
        self.get(currency)
            .ok_or_else(|| DomainError::NoFxRate(currency.code().to_string()))
    }
}

/// One line of the explanation of a transaction's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakdownLine {
    pub rule: String,
    /// The version of the rule that gave the points (none for base earning).
    pub version: Option<i64>,
    pub points: i64,
    pub reason: String,
}

/// What a purchase is worth before any points are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valuation {
    pub points_earned: i64,
    pub breakdown: Vec<BreakdownLine>,
    /// Value of the redeemed points in minor units of the programme currency.
    pub redeemed_value_minor: i64,
    /// The same value in minor units of the purchase currency (half up), what the till deducts.
    pub redeemed_value_local_minor: i64,
    /// The amount that earns, in programme currency (exact): the total less excluded
    /// lines, less the value paid with points. Rule effects scale from it.
    pub earning_amount: Decimal,
}

/// Values a purchase: converts `total` to programme currency, subtracts the value of
/// `redeem_points`, multiplies by `earn_rate` and rounds down.
/// EUR 12.99 at rate 1 → 12 points; USD 108.00 at 1.08 → 100; CZK 2,520 at 25.2 → 100.
pub fn value_purchase(
    program: &ProgramTerms,
    rate: Decimal,
    earn_rate: Decimal,
    total: Money,
    redeem_points: i64,
) -> Result<Valuation, DomainError> {
    value_purchase_excluding(program, rate, earn_rate, total, 0, redeem_points)
}

/// [`value_purchase`] when `excluded_minor` of the total (lines excluded by the
/// programme's rules: tobacco, gift cards, deposits) earns nothing.
pub fn value_purchase_excluding(
    program: &ProgramTerms,
    rate: Decimal,
    earn_rate: Decimal,
    total: Money,
    excluded_minor: i64,
    redeem_points: i64,
) -> Result<Valuation, DomainError> {
    let total_program = total.to_decimal() / rate;
    let redeemed = program.points_value(redeem_points);
    if redeemed > total_program {
        return Err(DomainError::RedeemExceedsTotal);
    }
    let excluded = Money {
        amount: excluded_minor.clamp(0, total.amount),
        currency: total.currency,
    };
    let earning_base = (total_program - excluded.to_decimal() / rate - redeemed).max(Decimal::ZERO);
    let points = (earning_base * earn_rate)
        .round_dp_with_strategy(0, RoundingStrategy::ToZero)
        .try_into()
        .unwrap_or(0i64)
        .max(0);
    let redeemed_local =
        (redeemed * rate).round_dp_with_strategy(total.currency.exponent(), RoundingStrategy::MidpointAwayFromZero);
    let redeemed_local_minor = (redeemed_local * Decimal::from(10i64.pow(total.currency.exponent())))
        .try_into()
        .unwrap_or(i64::MAX);
    let reason = format!(
        "{} point{} per {} 1{}",
        earn_rate.normalize(),
        if earn_rate == Decimal::ONE { "" } else { "s" },
        program.currency.code(),
        if redeem_points > 0 {
            ", on the amount not paid with points"
        } else {
            ""
        }
    );
    Ok(Valuation {
        points_earned: points,
        breakdown: vec![BreakdownLine {
            rule: "base".into(),
            version: None,
            points,
            reason,
        }],
        redeemed_value_minor: redeem_points.saturating_mul(program.point_value_minor),
        redeemed_value_local_minor: redeemed_local_minor,
        earning_amount: earning_base,
    })
}

/// `numerator * part / whole`, rounded half up; `whole` must be positive.
pub fn proportion_half_up(numerator: i64, part: i64, whole: i64) -> i64 {
    debug_assert!(whole > 0);
    let n = i128::from(numerator) * i128::from(part);
    let w = i128::from(whole);
    ((2 * n + w) / (2 * w)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur_program() -> ProgramTerms {
        ProgramTerms {
            currency: Currency::parse("EUR").unwrap(),
            point_value_minor: 1,
            expiry_months: 24,
        }
    }

    fn money(amount: i64, c: &str) -> Money {
        Money::new(amount, Currency::parse(c).unwrap()).unwrap()
    }

    #[test]
    fn api_md_examples() {
        let p = eur_program();
        let one = Decimal::ONE;
        assert_eq!(
            value_purchase(&p, one, one, money(1299, "EUR"), 0)
                .unwrap()
                .points_earned,
            12
        );
        let usd = Decimal::new(108, 2);
        assert_eq!(
            value_purchase(&p, usd, one, money(10800, "USD"), 0)
                .unwrap()
                .points_earned,
            100
        );
        let czk = Decimal::new(252, 1);
        assert_eq!(
            value_purchase(&p, czk, one, money(252000, "CZK"), 0)
                .unwrap()
                .points_earned,
            100
        );
    }

    #[test]
    fn redeemed_points_do_not_earn() {
        let p = eur_program();
        // EUR 20.00, 500 points worth EUR 5.00 → earn on EUR 15.00.
        let v = value_purchase(&p, Decimal::ONE, Decimal::ONE, money(2000, "EUR"), 500).unwrap();
        assert_eq!(v.points_earned, 15);
        assert_eq!(v.redeemed_value_minor, 500);
        assert_eq!(v.redeemed_value_local_minor, 500);
        let too_much = value_purchase(&p, Decimal::ONE, Decimal::ONE, money(2000, "EUR"), 2001);
        assert_eq!(too_much, Err(DomainError::RedeemExceedsTotal));
    }

    #[test]
    fn zero_decimal_currency() {
        let p = eur_program();
        let jpy_rate = Decimal::new(160, 0);
        let v = value_purchase(&p, jpy_rate, Decimal::new(15, 1), money(16000, "JPY"), 100).unwrap();
        // JPY 16000 = EUR 100; minus EUR 1 redeemed = 99; × 1.5 = 148.5 → 148.
        assert_eq!(v.points_earned, 148);
        assert_eq!(v.redeemed_value_local_minor, 160);
    }

    #[test]
    fn half_up_proportion() {
        assert_eq!(proportion_half_up(100, 1, 2), 50);
        assert_eq!(proportion_half_up(15, 1, 2), 8);
        assert_eq!(proportion_half_up(15, 1, 3), 5);
        assert_eq!(proportion_half_up(7, 0, 3), 0);
    }
}
