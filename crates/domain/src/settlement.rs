//! Settlement: who owes whom for points, period by period.
//!
//! A partner pays the operator for the points it funds (its base points and its own
//! rules) at the issue price, and the operator pays a partner for the points members
//! spend at its tills (and vouchers it fulfils) at the reimbursement rate. Points the
//! operator funds (programme-wide campaigns, tier and plan bonuses, its share of
//! co-funded rules) are shown on the partner's statement but not billed to it.
//!
//! Everything here is computed from the ledger's entries as the store reads them, grouped
//! by account, code and day (`BookRow`). A period is one calendar month in UTC; which
//! entries settle in which period is the store's question (see `docs/SETTLEMENT.md`):
//! an entry settles in the month of its date (a sale's entries: the sale's
//! `occurred_at`; every other entry: when it was recorded) unless that month was
//! already closed when it was recorded, and then in the first open month (a late item).

mod books;
mod calendar;
mod netting;
mod prices;
mod statement;
#[cfg(test)]
mod tests;

pub use books::{Book, BookRow, Cohort, Flows, Reconciliation, Side};
pub use calendar::{Calendar, ClosedPeriod, EntrySet, Settled};
pub use netting::{Liability, LiabilityLine, Netting, NettingLine};
pub use prices::{PriceBook, PriceVersion, Prices};
pub use statement::{Line, Payer, ProgramAmounts, Section, SignedMoney, Statement, StatementInput, StatementStatus};

use crate::DomainError;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use std::fmt;

/// A settlement period: one calendar month in UTC, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(Date);

impl Period {
    /// Reads `YYYY-MM` strictly: four digits, a dash, a month 01 to 12, a year from 2000.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let b = s.as_bytes();
        let shaped = b.len() == 7 && b[4] == b'-' && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit);
        let bad = || DomainError::invalid("period", "must be a month such as 2026-11 (YYYY-MM)");
        if !shaped {
            return Err(bad());
        }
        let year: i16 = s[..4].parse().map_err(|_| bad())?;
        let month: i8 = s[5..].parse().map_err(|_| bad())?;
        if !(2000..=9998).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Date::new(year, month, 1).map(Period).map_err(|_| bad())
    }

    /// The period a UTC day falls in.
    pub fn of_day(day: Date) -> Self {
        Period(day.first_of_month())
    }

    /// The period an instant falls in.
    pub fn of(at: Timestamp) -> Self {
        Self::of_day(at.to_zoned(TimeZone::UTC).date())
    }

    pub fn first_day(&self) -> Date {
        self.0
    }

    /// Midnight UTC on the first day.
    pub fn start(&self) -> Timestamp {
        self.0
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }

    /// Midnight UTC on the first day of the next month: the period holds `start..end`.
    pub fn end(&self) -> Timestamp {
        self.next().start()
    }

    /// The first day of the next period.
    pub fn end_day(&self) -> Date {
        self.next().first_day()
    }

    pub fn next(&self) -> Period {
        Period(self.0.checked_add(1.month()).unwrap_or(self.0))
    }

    pub fn prev(&self) -> Period {
        Period(self.0.checked_sub(1.month()).unwrap_or(self.0))
    }

    /// Whether `day` lies in this period.
    pub fn holds(&self, day: Date) -> bool {
        Period::of_day(day) == *self
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.0.year(), self.0.month())
    }
}

/// The UTC day of an instant: the day an entry is counted on.
pub fn day_of(at: Timestamp) -> Date {
    at.to_zoned(TimeZone::UTC).date()
}
