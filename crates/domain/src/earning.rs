//! Base earning: points per amount spent, converted into the programme currency.

use crate::DomainError;
use crate::money::{Currency, MAX_POINTS, Money};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;

/// The programme's terms that earning and spending depend on.
#[derive(Debug, Clone)]
pub struct ProgramTerms {
    pub currency: Currency,
    /// What one point is worth, in minor units of the programme currency.
    pub point_value_minor: i64,
    pub expiry_months: u32,
    /// The tier ladder (no levels: tiers off).
    pub tiers: std::sync::Arc<crate::tiers::TierLadder>,
    /// The membership plans on sale (their earn multipliers apply to members holding them).
    pub plans: std::sync::Arc<Vec<crate::memberships::MembershipPlan>>,
    /// When a referred member's purchase converts her referral (`None`: never).
    pub referrals: Option<std::sync::Arc<crate::referrals::ReferralPolicy>>,
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

/// The smallest FX rate Tally accepts (units of a currency per programme unit).
pub const MIN_FX_RATE: Decimal = Decimal::from_parts(1, 0, 0, false, 6);
/// The largest FX rate Tally accepts.
pub const MAX_FX_RATE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
/// The largest earn rate of a partner (points per programme unit).
pub const MAX_EARN_RATE: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

/// Operator-managed FX rates: units of a currency per one unit of programme currency.
#[derive(Debug, Clone, Default)]
pub struct FxRates {
    rates: HashMap<&'static str, Decimal>,
}

impl FxRates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a rate: from [`MIN_FX_RATE`] to [`MAX_FX_RATE`] units of the currency per
    /// programme unit, which covers every pair of real currencies and keeps every
    /// conversion of an accepted amount inside `Decimal`.
    pub fn set(&mut self, currency: Currency, rate: Decimal) -> Result<(), DomainError> {
        if rate < MIN_FX_RATE || rate > MAX_FX_RATE {
            return Err(DomainError::invalid(
                "rates",
                format!("rate for {currency} must be from 0.000001 to 1000000000"),
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

pub use crate::breakdown::BreakdownLine;

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

impl Valuation {
    /// The points of `points_earned` the operator funds: the sum of its lines' shares.
    pub fn operator_points(&self) -> i64 {
        let sum: i64 = self.breakdown.iter().map(BreakdownLine::operator_points).sum();
        sum.clamp(0, self.points_earned.max(0))
    }
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
    let overflow = || DomainError::invalid("total", "cannot be converted at this rate");
    let total_program = total.to_decimal().checked_div(rate).ok_or_else(overflow)?;
    let redeemed = program.points_value(redeem_points);
    if redeemed > total_program {
        return Err(DomainError::RedeemExceedsTotal);
    }
    let excluded = Money {
        amount: excluded_minor.clamp(0, total.amount),
        currency: total.currency,
    };
    let excluded_program = excluded.to_decimal().checked_div(rate).ok_or_else(overflow)?;
    let earning_base = (total_program - excluded_program - redeemed).max(Decimal::ZERO);
    let points = earning_base
        .checked_mul(earn_rate)
        .map(|p| p.round_dp_with_strategy(0, RoundingStrategy::ToZero))
        .and_then(|p| i64::try_from(p).ok())
        .filter(|p| *p <= MAX_POINTS)
        .ok_or_else(points_limit)?
        .max(0);
    let redeemed_local = redeemed
        .checked_mul(rate)
        .ok_or_else(overflow)?
        .round_dp_with_strategy(total.currency.exponent(), RoundingStrategy::MidpointAwayFromZero);
    let redeemed_local_minor = redeemed_local
        .checked_mul(Decimal::from(10i64.pow(total.currency.exponent())))
        .and_then(|m| i64::try_from(m).ok())
        .ok_or_else(overflow)?;
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
            // Base points are the selling partner's.
            operator_percent: 0,
        }],
        redeemed_value_minor: redeem_points.saturating_mul(program.point_value_minor),
        redeemed_value_local_minor: redeemed_local_minor,
        earning_amount: earning_base,
    })
}

/// The refusal of a sale or event that would earn more than [`MAX_POINTS`].
pub fn points_limit() -> DomainError {
    DomainError::LimitExceeded {
        code: "points_limit_exceeded",
        message: format!("one sale or event may earn at most {MAX_POINTS} points"),
    }
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
            tiers: Default::default(),
            plans: Default::default(),
            referrals: None,
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
    fn rates_outside_the_limits_are_refused() {
        let huf = Currency::parse("HUF").unwrap();
        let mut fx = FxRates::new();
        for bad in [
            "0",
            "-1",
            "0.0000000000000000000000000001",
            "0.00000099",
            "1000000000.01",
        ] {
            assert!(fx.set(huf, bad.parse().unwrap()).is_err(), "{bad}");
        }
        for good in ["0.000001", "400", "1000000000"] {
            assert!(fx.set(huf, good.parse().unwrap()).is_ok(), "{good}");
        }
    }

    #[test]
    fn extreme_sales_are_refused_not_overflowed() {
        let p = eur_program();
        let biggest = money(crate::money::MAX_AMOUNT_MINOR, "EUR");
        // The largest amount at the smallest rate and the largest earn rate: far past the
        // points one sale may earn, refused with its own code.
        let refused = value_purchase(&p, MIN_FX_RATE, MAX_EARN_RATE, biggest, 0);
        assert!(
            matches!(
                refused,
                Err(DomainError::LimitExceeded {
                    code: "points_limit_exceeded",
                    ..
                })
            ),
            "{refused:?}"
        );
        // Just inside the limit it earns, exactly.
        let v = value_purchase(&p, Decimal::ONE, Decimal::ONE, money(100_000_000_000_000, "EUR"), 0).unwrap();
        assert_eq!(v.points_earned, MAX_POINTS);
        // A sale never earns nothing silently because of the arithmetic.
        let small = value_purchase(&p, MAX_FX_RATE, Decimal::ONE, biggest, 0).unwrap();
        assert_eq!(small.points_earned, 9_999);
    }

    #[test]
    fn half_up_proportion() {
        assert_eq!(proportion_half_up(100, 1, 2), 50);
        assert_eq!(proportion_half_up(15, 1, 2), 8);
        assert_eq!(proportion_half_up(15, 1, 3), 5);
        assert_eq!(proportion_half_up(7, 0, 3), 0);
    }
}
