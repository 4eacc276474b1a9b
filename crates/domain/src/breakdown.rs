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
    })
}
