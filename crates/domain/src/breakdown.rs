//! A line of the explanation of a transaction's points: base earning, a rule, the
//! member's tier or plan. Its own module, so tiers and plans can make lines without
//! depending on base earning (which depends on them).

use serde::Serialize;

/// One line of the explanation of a transaction's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakdownLine {
    pub rule: String,
    /// The version of the rule that gave the points (none for base earning).
    pub version: Option<i64>,
    pub points: i64,
    pub reason: String,
    /// The operator's share of `points` in percent; the selling partner funds the rest
    /// (base points 0; tier and plan bonuses, programme-wide rules 100).
    #[serde(skip)]
    pub operator_percent: u8,
}

impl BreakdownLine {
    /// The points of the line the operator funds (its share rounded down).
    pub fn operator_points(&self) -> i64 {
        let share = i128::from(self.points) * i128::from(self.operator_percent.min(100)) / 100;
        share as i64
    }
}

/// The extra points a multiplier gives on base points (`base × (multiplier − 1)`,
/// rounded down), as a line of its own: `rule` is `tier` or `plan`, `name` the level's
/// or plan's. `None` when it gives nothing.
pub fn multiplier_line(
    rule: &str,
    name: &str,
    multiplier: rust_decimal::Decimal,
    base_points: i64,
) -> Option<BreakdownLine> {
    use rust_decimal::{Decimal, RoundingStrategy};
    let extra =
        (Decimal::from(base_points) * (multiplier - Decimal::ONE)).round_dp_with_strategy(0, RoundingStrategy::ToZero);
    let points = i64::try_from(extra).ok().filter(|p| *p > 0)?;
    Some(BreakdownLine {
        rule: rule.into(),
        version: None,
        points,
        reason: format!("{name}: {multiplier}× base points"),
        // Tier and plan bonuses are the programme's: the operator funds them.
        operator_percent: 100,
    })
}
