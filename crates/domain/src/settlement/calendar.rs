//! Which entries settle in which period.
//!
//! `A(P)`, the entries settled by the end of period `P`:
//! - `P` closed: the entries dated before its end with an id up to the last entry its
//!   close saw (`last_entry_id`);
//! - `P` before the first closed period: none (the first period closed takes everything
//!   dated before it);
//! - otherwise (`P` open): every entry dated before its end.
//!
//! A period's own entries are `A(P) \ A(P − 1)`. An entry dated in a closed period but
//! recorded after its close is not in that period's `A`, so it falls in the first open
//! period: a late item. Closing goes month by month, so `A` only grows.

use super::{Period, StatementStatus};
use crate::DomainError;
use jiff::{SignedDuration, Timestamp};

/// A closed period and the last entry its close saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedPeriod {
    pub period: Period,
    pub last_entry_id: i64,
}

/// Entries dated before `before` with an id up to `until_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub before: Timestamp,
    pub until_id: i64,
}

/// `plus \ minus`, read from entries recorded at or after `recorded_from` (every entry of
/// the set is: see [`Calendar::period_set`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySet {
    pub recorded_from: Timestamp,
    pub plus: Settled,
    pub minus: Option<Settled>,
}

impl EntrySet {
    /// Every entry dated before `before`, whenever recorded: the ledger up to a day.
    pub fn dated_before(before: Timestamp) -> Self {
        EntrySet {
            recorded_from: Timestamp::MIN,
            plus: Settled {
                before,
                until_id: i64::MAX,
            },
            minus: None,
        }
    }
}

/// A sale may be dated up to a day after it is recorded (`time::check_occurred_at`); a
/// close's last entry may have been stamped a moment before the close began. Two days
/// cover both.
const DATING_SLACK: SignedDuration = SignedDuration::from_hours(48);

/// The closed periods, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    closed: Vec<ClosedPeriod>,
}

impl Calendar {
    pub fn new(mut closed: Vec<ClosedPeriod>) -> Self {
        closed.sort_by_key(|c| c.period);
        Calendar { closed }
    }

    pub fn closed(&self) -> &[ClosedPeriod] {
        &self.closed
    }

    pub fn last_closed(&self) -> Option<Period> {
        self.closed.last().map(|c| c.period)
    }

    pub fn status(&self, p: Period) -> StatementStatus {
        match self.closed.iter().any(|c| c.period == p) || self.before_first(p) {
            true => StatementStatus::Closed,
            false => StatementStatus::Open,
        }
    }

    fn before_first(&self, p: Period) -> bool {
        self.closed.first().is_some_and(|c| p < c.period)
    }

    /// `A(p)`: `None` for the empty set.
    pub fn settled_by(&self, p: Period) -> Option<Settled> {
        if let Some(c) = self.closed.iter().find(|c| c.period == p) {
            return Some(Settled {
                before: p.end(),
                until_id: c.last_entry_id,
            });
        }
        (!self.before_first(p)).then(|| Settled {
            before: p.end(),
            until_id: i64::MAX,
        })
    }

    /// The entries that settle in `p`. A period before the first closed one has none:
    /// refused, naming the period that took them.
    pub fn period_set(&self, p: Period) -> Result<EntrySet, DomainError> {
        let Some(plus) = self.settled_by(p) else {
            let first = self.closed.first().map(|c| c.period.to_string()).unwrap_or_default();
            return Err(DomainError::Refused {
                code: "before_first_period",
                message: format!("settlement began with {first}: entries dated before it are settled in it"),
            });
        };
        Ok(Self::difference(plus, self.settled_by(p.prev())))
    }

    /// Every entry not settled by the end of `p`: what changed members' holdings after it.
    pub fn after(&self, p: Period) -> EntrySet {
        let all = Settled {
            before: Timestamp::MAX,
            until_id: i64::MAX,
        };
        Self::difference(all, self.settled_by(p))
    }

    fn difference(plus: Settled, minus: Option<Settled>) -> EntrySet {
        // Outside `minus`: dated on or after its end (so recorded at most the slack
        // before it), or recorded after a close that ended on or after it.
        let recorded_from = minus
            .map(|m| m.before.checked_sub(DATING_SLACK).unwrap_or(Timestamp::MIN))
            .unwrap_or(Timestamp::MIN);
        EntrySet {
            recorded_from,
            plus,
            minus,
        }
    }

    /// Whether the operator may close `p` at `now`: the month has ended, and it is the
    /// month after the last closed one (any ended month when none is).
    pub fn may_close(&self, p: Period, now: Timestamp) -> Result<(), DomainError> {
        let refuse = |code: &'static str, message: String| Err(DomainError::Refused { code, message });
        if let Some(last) = self.last_closed() {
            if p <= last {
                return refuse(
                    "period_closed",
                    format!(
                        "{p} is closed (settlement is closed through {last}); corrections are adjustments in an open period"
                    ),
                );
            }
            if p != last.next() {
                return refuse("previous_period_open", format!("close {} first", last.next()));
            }
        }
        if now < p.end() {
            return refuse("period_not_ended", format!("{p} has not ended yet"));
        }
        Ok(())
    }
}
