//! Calendar arithmetic for expiry and maturation, in UTC.

use crate::DomainError;
use jiff::{Span, Timestamp, tz::TimeZone};

/// `at` plus whole calendar months (Jan 31 + 1 month → Feb 28/29).
pub fn add_months(at: Timestamp, months: u32) -> Timestamp {
    at.to_zoned(TimeZone::UTC)
        .checked_add(Span::new().months(i64::from(months)))
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

/// `at` plus whole days of 24 hours.
pub fn add_days(at: Timestamp, days: u32) -> Timestamp {
    at.checked_add(Span::new().hours(24 * i64::from(days)))
        .unwrap_or(Timestamp::MAX)
}

/// The real-world time of a receipt must be plausible: not more than a day ahead of the
/// server's clock (till clocks drift), and not older than `max_age_days`.
pub fn check_occurred_at(occurred_at: Timestamp, now: Timestamp, max_age_days: u32) -> Result<(), DomainError> {
    if occurred_at > add_days(now, 1) {
        return Err(DomainError::invalid("occurred_at", "is in the future"));
    }
    if occurred_at
        < now
            .checked_sub(Span::new().hours(24 * i64::from(max_age_days)))
            .unwrap_or(Timestamp::MIN)
    {
        return Err(DomainError::invalid("occurred_at", "is too far in the past"));
    }
    Ok(())
}

/// A time zone name from the IANA database, such as `Europe/Prague`.
pub fn parse_timezone(field: &'static str, name: &str) -> Result<String, DomainError> {
    if name.len() > 64 {
        return Err(DomainError::invalid(field, "is not a known time zone"));
    }
    TimeZone::get(name)
        .map(|_| name.to_string())
        .map_err(|_| DomainError::invalid(field, "is not a known time zone such as Europe/Prague"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_clamp_to_month_end() {
        let t: Timestamp = "2026-01-31T10:00:00Z".parse().unwrap();
        assert_eq!(add_months(t, 1).to_string(), "2026-02-28T10:00:00Z");
        assert_eq!(add_months(t, 24).to_string(), "2028-01-31T10:00:00Z");
    }

    #[test]
    fn occurred_at_window() {
        let now: Timestamp = "2026-11-20T10:00:00Z".parse().unwrap();
        assert!(check_occurred_at(now, now, 400).is_ok());
        assert!(check_occurred_at(add_days(now, 2), now, 400).is_err());
        assert!(check_occurred_at("1970-01-01T00:00:00Z".parse().unwrap(), now, 400).is_err());
    }

    #[test]
    fn timezones_are_checked() {
        assert!(parse_timezone("tz", "Europe/Prague").is_ok());
        assert!(parse_timezone("tz", "Mars/Olympus").is_err());
    }
}
