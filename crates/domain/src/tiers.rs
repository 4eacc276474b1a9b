//! Tiers that Tally computes: the operator's ladder, a member's standing on it, and
//! what a sale, a return and the passing of a year do to that standing.
//!
//! The rules, in one place:
//! - A member collects qualifying points (base and rule points of purchases, net of
//!   returns; not the tier bonus itself) or qualifying spend (the amount that earned, in
//!   programme currency) in a yearly period: the calendar year, or the member's own
//!   membership year from the day they joined (`rolling_12_months`).
//! - Upgrade at once: the sale that reaches a level's threshold moves the member up in
//!   its own transaction; the new level's multiplier applies from the next sale.
//! - A level reached during a period is kept through the whole next period.
//! - The review of a period happens `grace_days` after it ends: the member keeps the
//!   level that period's qualifying reaches, or goes down one level at most.
//! - A return lowers the qualifying count of the period its sale counted in (while that
//!   period is still to be reviewed) and never changes the level by itself.
//! - The operator may set a level by hand until a date; the computed level carries on
//!   underneath and applies again after it.

use crate::DomainError;
use crate::breakdown::BreakdownLine;
use jiff::{Span, Timestamp, tz::TimeZone};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most levels a ladder may have.
pub const MAX_LEVELS: usize = 12;
/// The largest earn multiplier of a level.
pub const MAX_MULTIPLIER: Decimal = Decimal::from_parts(10, 0, 0, false, 0);
/// The largest threshold (points, or minor units of spend).
pub const MAX_THRESHOLD: i64 = 1_000_000_000_000;

/// What qualifies a member for a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierBasis {
    /// Base and rule points of purchases, net of returns.
    QualifyingPoints,
    /// The amount that earned (after excluded lines and points paid), in minor units of
    /// the programme currency, net of returns.
    QualifyingSpend,
}

/// The period qualifying is counted in, and reviewed at the end of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierPeriod {
    /// 1 January to 31 December (UTC); reviews on 1 January plus the grace days.
    CalendarYear,
    /// The member's membership year, from the day they joined; reviews on the
    /// anniversary plus the grace days.
    #[serde(rename = "rolling_12_months")]
    Rolling12Months,
}

/// Whose standing the ladder counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierScope {
    /// Each member qualifies on their own.
    #[default]
    Member,
    /// The members of a household qualify together and share one level (a member in
    /// no household qualifies on their own). The household's standing is kept on its
    /// shared wallet; its period runs from the household's opening.
    Household,
}

/// One level of the ladder, as the operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierLevel {
    /// Short code rules read as `member.tier`: lower-case letters, digits, `_`.
    #[schema(example = "gold")]
    pub code: String,
    #[schema(example = "Gold")]
    pub name: String,
    /// Qualifying points (or minor units of spend) in a period that reach this level.
    #[schema(example = 5000)]
    pub threshold: i64,
    /// Applied to base points; the extra is its own line of the breakdown. 1 to 10, at
    /// most two decimals.
    #[schema(value_type = String, example = "1.5")]
    #[serde(with = "rust_decimal::serde::str")]
    pub multiplier: Decimal,
    /// What members of this level get, in words.
    #[serde(default)]
    pub perks: Vec<String>,
}

/// The ladder (`PUT /v1/tiers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierLadder {
    pub basis: TierBasis,
    pub period: TierPeriod,
    /// Days after a period ends before its review may lower a level (0 to 365).
    pub grace_days: u32,
    /// From the lowest level to the highest; thresholds strictly rising.
    pub levels: Vec<TierLevel>,
    /// Per member (default) or per household.
    #[serde(default)]
    pub scope: TierScope,
    /// Whether the points of engagement events count toward the level, as purchases'
    /// do (off by default; a points basis only: an event has no spend).
    #[serde(default)]
    pub events_qualify: bool,
}

impl Default for TierLadder {
    /// No levels: tiers off.
    fn default() -> Self {
        TierLadder {
            basis: TierBasis::QualifyingPoints,
            period: TierPeriod::CalendarYear,
            grace_days: 0,
            levels: Vec::new(),
            scope: TierScope::Member,
            events_qualify: false,
        }
    }
}

impl TierLadder {
    /// Whether an engagement event's points count toward a level: tiers on, and the
    /// operator lets events qualify.
    pub fn counts_events(&self) -> bool {
        self.events_qualify && !self.levels.is_empty()
    }

    /// Checks a ladder as the operator sent it. An empty list of levels switches tiers
    /// off.
    pub fn check(mut self) -> Result<TierLadder, DomainError> {
        if self.levels.len() > MAX_LEVELS {
            return Err(DomainError::invalid("levels", format!("at most {MAX_LEVELS} levels")));
        }
        if self.grace_days > 365 {
            return Err(DomainError::invalid("grace_days", "must be from 0 to 365"));
        }
        if self.events_qualify && self.basis == TierBasis::QualifyingSpend {
            return Err(DomainError::invalid(
                "events_qualify",
                "events have no spend: they can qualify only on a qualifying_points basis",
            ));
        }
        let mut previous: Option<i64> = None;
        for (i, l) in self.levels.iter_mut().enumerate() {
            if !crate::identity::is_code(&l.code) {
                return Err(DomainError::invalid(
                    "levels",
                    format!("level {}: code must be 1 to 32 lower-case letters, digits or _", i + 1),
                ));
            }
            let name = l.name.trim();
            if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    "levels",
                    format!("level {}: name must be 1 to 80 characters", i + 1),
                ));
            }
            l.name = name.to_string();
            if !(0..=MAX_THRESHOLD).contains(&l.threshold) {
                return Err(DomainError::invalid(
                    "levels",
                    format!("level {}: threshold must be from 0 to {MAX_THRESHOLD}", i + 1),
                ));
            }
            if previous.is_some_and(|p| l.threshold <= p) {
                return Err(DomainError::invalid(
                    "levels",
                    format!("level {}: thresholds must rise from one level to the next", i + 1),
                ));
            }
            previous = Some(l.threshold);
            if l.multiplier < Decimal::ONE || l.multiplier > MAX_MULTIPLIER || l.multiplier.normalize().scale() > 2 {
                return Err(DomainError::invalid(
                    "levels",
                    format!(
                        "level {}: multiplier must be from 1 to 10 with at most two decimals",
                        i + 1
                    ),
                ));
            }
            l.multiplier = l.multiplier.normalize();
            if l.perks.len() > 10 {
                return Err(DomainError::invalid(
                    "levels",
                    format!("level {}: at most 10 perks", i + 1),
                ));
            }
            l.perks = l
                .perks
                .iter()
                .map(|p| crate::identity::parse_label("perks", p, 200))
                .collect::<Result<_, _>>()?;
        }
        let mut codes: Vec<&str> = self.levels.iter().map(|l| l.code.as_str()).collect();
        codes.sort_unstable();
        if codes.windows(2).any(|w| w[0] == w[1]) {
            return Err(DomainError::invalid("levels", "codes must differ"));
        }
        Ok(self)
    }

    fn index_of(&self, code: Option<&str>) -> Option<usize> {
        code.and_then(|c| self.levels.iter().position(|l| l.code == c))
    }

    pub fn level(&self, code: &str) -> Option<&TierLevel> {
        self.levels.iter().find(|l| l.code == code)
    }

    /// The highest level `qualifying` reaches.
    fn reached(&self, qualifying: i64) -> Option<usize> {
        self.levels.iter().rposition(|l| qualifying >= l.threshold)
    }

    /// The start of the period holding `at`, for a member who joined at `anchor`.
    pub fn period_start(&self, anchor: Timestamp, at: Timestamp) -> Timestamp {
        let z = at.to_zoned(TimeZone::UTC);
        match self.period {
            TierPeriod::CalendarYear => jiff::civil::date(z.year(), 1, 1)
                .to_zoned(TimeZone::UTC)
                .map(|d| d.timestamp())
                .unwrap_or(at),
            TierPeriod::Rolling12Months => {
                let a = anchor.to_zoned(TimeZone::UTC);
                let mut years = i64::from(z.year()) - i64::from(a.year());
                loop {
                    let start = add_years(anchor, years);
                    if start <= at || years <= 0 {
                        return start.min(at);
                    }
                    years -= 1;
                }
            }
        }
    }

    /// The end of the period that starts at `start` (the next one's start).
    pub fn period_end(&self, anchor: Timestamp, start: Timestamp) -> Timestamp {
        match self.period {
            TierPeriod::CalendarYear => add_years(start, 1),
            TierPeriod::Rolling12Months => {
                // Counted in whole years from the anchor, so a 29 February join keeps its
                // anniversary (28 February in other years, 29 February in leap years).
                let years =
                    i64::from(start.to_zoned(TimeZone::UTC).year()) - i64::from(anchor.to_zoned(TimeZone::UTC).year());
                let mut end = add_years(anchor, years.max(0) + 1);
                if end <= start {
                    end = add_years(anchor, years.max(0) + 2);
                }
                end
            }
        }
    }

    fn review_at(&self, period_end: Timestamp) -> Timestamp {
        crate::time::add_days(period_end, self.grace_days)
    }
}

fn add_years(at: Timestamp, years: i64) -> Timestamp {
    at.to_zoned(TimeZone::UTC)
        .checked_add(Span::new().years(years))
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

/// A member's standing, as stored on the member's row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierState {
    /// The level in force (what rules read as `member.tier`): the manual one while it
    /// lasts, else the computed one.
    pub effective: Option<String>,
    /// The computed level.
    pub earned: Option<String>,
    /// Qualifying points (or spend) in the period that starts at `period_start`.
    pub qualifying: i64,
    pub period_start: Option<Timestamp>,
    /// Qualifying in the period before `period_start`, while its review is to come.
    pub previous_qualifying: i64,
    /// Whether the period before `period_start` is still to be reviewed.
    pub review_pending: bool,
    /// When the computed level was last reached by qualifying (it is kept through the
    /// period after the one it was reached in).
    pub reached_at: Option<Timestamp>,
    /// A level set by hand lasts until then.
    pub manual_until: Option<Timestamp>,
    /// When the member joined: the start of their membership years.
    pub anchor: Timestamp,
}

/// Why a level changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierChangeKind {
    Upgrade,
    Review,
    Manual,
    ManualEnded,
}

impl TierChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TierChangeKind::Upgrade => "upgrade",
            TierChangeKind::Review => "review",
            TierChangeKind::Manual => "manual",
            TierChangeKind::ManualEnded => "manual_ended",
        }
    }

    pub fn parse(s: &str) -> TierChangeKind {
        match s {
            "upgrade" => TierChangeKind::Upgrade,
            "manual" => TierChangeKind::Manual,
            "manual_ended" => TierChangeKind::ManualEnded,
            _ => TierChangeKind::Review,
        }
    }
}

/// A change of the level in force, for the history and the receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChange {
    pub at: Timestamp,
    pub from: Option<String>,
    pub to: Option<String>,
    pub kind: TierChangeKind,
    pub reason: String,
}

/// What a receipt says of a change of level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TierChangeView {
    /// The level before (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The level after (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub reason: String,
}

impl From<&TierChange> for TierChangeView {
    fn from(c: &TierChange) -> Self {
        TierChangeView {
            from: c.from.clone(),
            to: c.to.clone(),
            reason: c.reason.clone(),
        }
    }
}

fn name_of(ladder: &TierLadder, code: Option<&str>) -> String {
    match code.and_then(|c| ladder.level(c)) {
        Some(l) => l.name.clone(),
        None => code.map_or_else(|| "no level".to_string(), str::to_string),
    }
}

fn unit(ladder: &TierLadder) -> &'static str {
    match ladder.basis {
        TierBasis::QualifyingPoints => "qualifying points",
        TierBasis::QualifyingSpend => "of qualifying spend (minor units)",
    }
}

impl TierState {
    fn set_effective(&mut self, now: Timestamp, kind: TierChangeKind, reason: String, out: &mut Vec<TierChange>) {
        let manual = self.manual_until.is_some_and(|u| u > now);
        let next = if manual {
            self.effective.clone()
        } else {
            self.earned.clone()
        };
        if next != self.effective {
            out.push(TierChange {
                at: now,
                from: self.effective.clone(),
                to: next.clone(),
                kind,
                reason,
            });
            self.effective = next;
        }
    }

    /// Brings the standing to `now`: starts the periods that began since it was last
    /// written, applies the reviews that fell due (one level down at most each), and
    /// ends a manual level whose date passed. Answers the changes of the level in force.
    pub fn roll(&mut self, ladder: &TierLadder, now: Timestamp) -> Vec<TierChange> {
        let mut out = Vec::new();
        if ladder.levels.is_empty() {
            return out;
        }
        let current = ladder.period_start(self.anchor, now);
        // The stored start, on the ladder's own boundaries (they move when the operator
        // changes the kind of period).
        let mut start = self
            .period_start
            .map_or(current, |s| ladder.period_start(self.anchor, s).min(current));
        // Periods that ended since: each pending review is due (a period is longer than
        // the longest grace), and each ended period becomes the one to review next.
        let mut steps = 0;
        while start < current && steps < 200 {
            steps += 1;
            if self.review_pending {
                // Stamped with the day it fell due, not the day it was caught up on.
                let due = ladder.review_at(start).min(now);
                self.review(ladder, start, due, &mut out);
            }
            self.previous_qualifying = self.qualifying;
            self.qualifying = 0;
            self.review_pending = true;
            start = ladder.period_end(self.anchor, start);
        }
        if start < current {
            // A standing older than 200 periods: nothing of it is left to review.
            start = current;
            self.review_pending = false;
            self.previous_qualifying = 0;
        }
        self.period_start = Some(start);
        if self.review_pending && ladder.review_at(start) <= now {
            self.review(ladder, start, ladder.review_at(start), &mut out);
        }
        if self.manual_until.is_some_and(|u| u <= now) {
            self.manual_until = None;
            self.set_effective(
                now,
                TierChangeKind::ManualEnded,
                "the level set by hand ended".into(),
                &mut out,
            );
        }
        if self.manual_until.is_none() && self.effective != self.earned {
            // A tier typed in before the programme had a ladder gives way to the
            // computed one.
            self.set_effective(
                now,
                TierChangeKind::Review,
                "the tier is computed from the programme's ladder".into(),
                &mut out,
            );
        }
        out
    }

    /// The review of the period that ended at `ended_at` (its qualifying is
    /// `previous_qualifying`): the level that qualifying reaches, or one level down at
    /// most; a level reached during that period or since is kept.
    fn review(&mut self, ladder: &TierLadder, ended_at: Timestamp, now: Timestamp, out: &mut Vec<TierChange>) {
        self.review_pending = false;
        // A level reached during the reviewed period (or since) is kept through the next.
        let reviewed_start = ladder.period_start(self.anchor, previous_instant(ended_at));
        let reached_in_period = self.reached_at.is_some_and(|r| r >= reviewed_start);
        let held = ladder.index_of(self.earned.as_deref());
        let reached = ladder.reached(self.previous_qualifying);
        let next = match (held, reached) {
            _ if reached_in_period => held,
            (Some(h), Some(r)) if r >= h => Some(r),
            (Some(h), r) => Some(h.saturating_sub(1)).filter(|n| h > 0 && Some(*n) >= r).or(r),
            (None, r) => r,
        };
        let next_code = next.map(|i| ladder.levels[i].code.clone());
        if next_code != self.earned {
            let q = self.previous_qualifying;
            self.earned = next_code;
            if next < held {
                self.reached_at = None;
            }
            let reason = format!(
                "review of the period to {}: {q} {}, {} from {}",
                ended_at.to_zoned(TimeZone::UTC).date(),
                unit(ladder),
                name_of(ladder, self.earned.as_deref()),
                name_of(ladder, held.map(|i| ladder.levels[i].code.as_str())),
            );
            self.set_effective(now, TierChangeKind::Review, reason, out);
        }
    }

    /// Counts a sale's qualifying points or spend, and moves the member up at once if
    /// that reaches a higher level. Call [`TierState::roll`] first.
    pub fn count(&mut self, ladder: &TierLadder, qualifying: i64, now: Timestamp) -> Vec<TierChange> {
        let mut out = Vec::new();
        if ladder.levels.is_empty() || qualifying <= 0 {
            return out;
        }
        self.qualifying = self.qualifying.saturating_add(qualifying);
        let held = ladder.index_of(self.earned.as_deref());
        let reached = ladder.reached(self.qualifying);
        if reached.is_some() && reached == held {
            // Reaching the level held again (say in the grace days) keeps it through the
            // next period, as reaching it the first time does.
            self.reached_at = Some(now);
        }
        if reached > held {
            let level = &ladder.levels[reached.expect("reached is above held")];
            self.earned = Some(level.code.clone());
            self.reached_at = Some(now);
            let reason = format!(
                "reached {}: {} {} this period",
                level.name,
                level.threshold,
                unit(ladder)
            );
            self.set_effective(now, TierChangeKind::Upgrade, reason, &mut out);
        }
        out
    }

    /// Takes a return's share of qualifying off the period its sale counted in, if that
    /// period is the current one or the one still to be reviewed. The level stays.
    pub fn uncount(&mut self, ladder: &TierLadder, qualifying: i64, sale_recorded_at: Timestamp) {
        if qualifying <= 0 {
            return;
        }
        let Some(start) = self.period_start else { return };
        if sale_recorded_at >= start {
            self.qualifying = (self.qualifying - qualifying).max(0);
        } else if self.review_pending && sale_recorded_at >= ladder.period_start(self.anchor, previous_instant(start)) {
            self.previous_qualifying = (self.previous_qualifying - qualifying).max(0);
        }
    }

    /// Sets a level by hand until `until` (or ends a manual level with `None` for the
    /// code).
    pub fn set_manual(
        &mut self,
        ladder: &TierLadder,
        code: Option<&str>,
        until: Timestamp,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<TierChange>, DomainError> {
        let mut out = self.roll(ladder, now);
        match code {
            Some(c) => {
                if ladder.level(c).is_none() {
                    return Err(DomainError::invalid("code", "is not a level of the ladder"));
                }
                if until <= now {
                    return Err(DomainError::invalid("until", "must be in the future"));
                }
                self.manual_until = Some(until);
                // Recorded even when the level stays: the history keeps the reason and
                // the date.
                out.push(TierChange {
                    at: now,
                    from: self.effective.clone(),
                    to: Some(c.to_string()),
                    kind: TierChangeKind::Manual,
                    reason: format!("{reason} (until {})", until.to_zoned(TimeZone::UTC).date()),
                });
                self.effective = Some(c.to_string());
            }
            None => {
                self.manual_until = None;
                self.set_effective(now, TierChangeKind::ManualEnded, reason.to_string(), &mut out);
            }
        }
        Ok(out)
    }

    /// When the standing next changes with time alone: the pending review, the end of
    /// a manual level, or the review of the current period.
    pub fn next_review_at(&self, ladder: &TierLadder) -> Option<Timestamp> {
        if ladder.levels.is_empty() {
            return None;
        }
        let start = self.period_start?;
        let review = match self.review_pending {
            true => ladder.review_at(start),
            false => ladder.review_at(ladder.period_end(self.anchor, start)),
        };
        Some(match self.manual_until {
            Some(u) => u.min(review),
            None => review,
        })
    }
}

fn previous_instant(t: Timestamp) -> Timestamp {
    t.checked_sub(Span::new().microseconds(1)).unwrap_or(t)
}

/// The extra points of the member's level on a sale's base points, as a breakdown line
/// (`None` at multiplier 1 or with no level).
pub fn tier_bonus(ladder: &TierLadder, effective: Option<&str>, base_points: i64) -> Option<BreakdownLine> {
    let level = ladder.level(effective?)?;
    crate::breakdown::multiplier_line("tier", &level.name, level.multiplier, base_points)
}

/// What a sale adds to its member's qualifying count: its base and rule points (not the
/// tier's own bonus), or the amount that earned in minor units of the programme
/// currency.
pub fn qualifying_of(ladder: &TierLadder, points_without_tier: i64, earning_amount_minor: i64) -> i64 {
    match ladder.basis {
        TierBasis::QualifyingPoints => points_without_tier.max(0),
        TierBasis::QualifyingSpend => earning_amount_minor.max(0),
    }
}

#[cfg(test)]
mod tests;
