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
