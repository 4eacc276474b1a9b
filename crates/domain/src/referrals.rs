//! Referrals: a member's share link leads to the operator's sign-up page with her
//! referral code, so the new member's sign-up names who brought her. Her first
//! qualifying purchase converts the referral ([`decide_conversion`]): Tally then posts
//! `referral_converted` to both members, and the operator's rules reward each side. A
//! full return of that purchase reverses the referral.

use crate::DomainError;
use crate::ids::MemberId;
use crate::money::{Currency, Money};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The event Tally posts to both members when a referral converts.
pub const CONVERTED_EVENT: &str = "referral_converted";
/// The longest conversion window the operator may set, in days.
pub const MAX_WINDOW_DAYS: u32 = 3650;
/// The most conversions per referrer and month the operator may allow.
pub const MAX_PER_MONTH: u32 = 10_000;
/// The largest qualifying minimum, in minor units of the programme currency.
pub const MAX_MIN_PURCHASE_MINOR: i64 = 100_000_000;

/// When a referral converts. Without a policy no referral converts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralPolicy {
    /// The smallest qualifying purchase, in programme currency: the part paid with
    /// money, after lines that earn nothing.
    #[serde(with = "crate::memberships::stored_money")]
    #[schema(value_type = crate::receipt::MoneyView)]
    pub min_purchase: Money,
    /// Days after joining within which her first qualifying purchase must be made.
    #[schema(minimum = 1, maximum = 3650)]
    pub window_days: u32,
    /// Conversions one referrer may have per calendar month (UTC); those beyond it
    /// are declined (`monthly_limit`).
    #[schema(minimum = 1, maximum = 10000)]
    pub max_per_month: u32,
}

impl ReferralPolicy {
    /// Checks the policy the operator wrote against the programme's currency.
    pub fn check(&self, programme: Currency) -> Result<(), DomainError> {
        if self.min_purchase.currency != programme {
            return Err(DomainError::invalid(
                "referrals.min_purchase",
                format!("must be in the programme currency ({})", programme.code()),
            ));
        }
        if !(0..=MAX_MIN_PURCHASE_MINOR).contains(&self.min_purchase.amount) {
            return Err(DomainError::invalid(
                "referrals.min_purchase",
                format!("must be 0 to {MAX_MIN_PURCHASE_MINOR} minor units"),
            ));
        }
        if !(1..=MAX_WINDOW_DAYS).contains(&self.window_days) {
            return Err(DomainError::invalid(
                "referrals.window_days",
                format!("must be 1 to {MAX_WINDOW_DAYS}"),
            ));
        }
        if !(1..=MAX_PER_MONTH).contains(&self.max_per_month) {
            return Err(DomainError::invalid(
                "referrals.max_per_month",
                format!("must be 1 to {MAX_PER_MONTH}"),
            ));
        }
        Ok(())
    }

    /// Whether a purchase worth `amount` (programme currency, paid with money) made at
    /// `occurred_at` and posted at `now` by a member who joined at `joined_at` converts
    /// her referral, if nothing else stands in the way ([`decide_conversion`]). Both
    /// times must fall in the window: a receipt dated before she joined, or posted after
    /// the window closed with an earlier date, does not convert.
    pub fn qualifies(&self, amount: Decimal, occurred_at: Timestamp, now: Timestamp, joined_at: Timestamp) -> bool {
        let window = |t: Timestamp| {
            let seconds = t.as_second() - joined_at.as_second();
            (0..i64::from(self.window_days) * 86_400).contains(&seconds)
        };
        amount >= self.min_purchase.to_decimal() && amount > Decimal::ZERO && window(occurred_at) && window(now)
    }

    /// Whether a converted referral stands after a return of its purchase: not when the
    /// purchase is returned in full, nor when what is kept of it (`amount_minor` in
    /// programme currency at the sale, in proportion to `total` less `returned`) falls
    /// below the minimum.
    pub fn still_converted(&self, amount_minor: i64, total: i64, returned: i64) -> bool {
        still_converted(Some(self), amount_minor, total, returned)
    }
}

/// A referral's state: `pending` until her first qualifying purchase decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    /// Signed up with a referral code; no qualifying purchase yet.
    Pending,
    /// Her first qualifying purchase posted; both members were sent `referral_converted`.
    Converted,
    /// The qualifying purchase was returned in full, or so much of it that what is kept
    /// falls below the minimum; the points both were given are taken back. A referral
    /// converts once: a later purchase does not convert it again.
    Reversed,
    /// The qualifying purchase came, but the referral earns nothing (`reason` says why).
    Declined,
}

impl ReferralStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::Pending => "pending",
            ReferralStatus::Converted => "converted",
            ReferralStatus::Reversed => "reversed",
            ReferralStatus::Declined => "declined",
        }
    }

    pub fn parse(s: &str) -> ReferralStatus {
        match s {
            "converted" => ReferralStatus::Converted,
            "reversed" => ReferralStatus::Reversed,
            "declined" => ReferralStatus::Declined,
            _ => ReferralStatus::Pending,
        }
    }
}

/// Why a qualifying purchase did not convert a referral.
pub const DECLINED_HOUSEHOLD: &str = "same_household";
pub const DECLINED_MONTHLY_LIMIT: &str = "monthly_limit";

/// What the store read for a qualifying purchase of a referred member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversionFacts {
    /// The referrer's referrals converted this calendar month (UTC), those since
    /// reversed included (so buying and returning cannot cycle past the limit).
    pub referrer_this_month: i64,
    /// Whether the two now belong to one household.
    pub same_household: bool,
}

/// What a qualifying purchase does to a referral: converts it, or declines it with a
/// reason. Either way it is decided once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub referred: MemberId,
    pub referrer: MemberId,
    pub status: ReferralStatus,
    pub reason: Option<&'static str>,
    /// What the purchase counted for, in minor units of the programme currency (a
    /// return later weighs what is kept of it against the minimum).
    pub amount_minor: i64,
}

/// Decides the referral of `referred` (brought by `referrer`) on her first qualifying
/// purchase: declined for members of one household (they pool points instead) and
/// beyond the referrer's monthly limit, converted otherwise.
pub fn decide_conversion(
    policy: &ReferralPolicy,
    referred: &MemberId,
    referrer: &MemberId,
    amount: Decimal,
    facts: ConversionFacts,
) -> Conversion {
    use rust_decimal::prelude::ToPrimitive;
    let exponent = policy.min_purchase.currency.exponent();
    let amount_minor = (amount * Decimal::from(10i64.pow(exponent)))
        .floor()
        .to_i64()
        .unwrap_or(i64::MAX);
    let reason = if facts.same_household {
        Some(DECLINED_HOUSEHOLD)
    } else if facts.referrer_this_month >= i64::from(policy.max_per_month) {
        Some(DECLINED_MONTHLY_LIMIT)
    } else {
        None
    };
    Conversion {
        referred: referred.clone(),
        referrer: referrer.clone(),
        status: if reason.is_some() {
            ReferralStatus::Declined
        } else {
            ReferralStatus::Converted
        },
        reason,
        amount_minor,
    }
}

/// [`ReferralPolicy::still_converted`], for a programme that may have dropped its
/// policy since (then only a full return reverses the referral).
pub fn still_converted(policy: Option<&ReferralPolicy>, amount_minor: i64, total: i64, returned: i64) -> bool {
    if returned >= total {
        return false;
    }
    let Some(policy) = policy else {
        return true;
    };
    let kept = i128::from(amount_minor) * i128::from(total - returned) / i128::from(total.max(1));
    kept >= i128::from(policy.min_purchase.amount)
}

/// Whether a new member's email reaches the referrer's mailbox: the same address up to
/// case and a `+tag`, and for Gmail up to dots. Such a sign-up is a self-referral.
pub fn same_mailbox(a: &str, b: &str) -> bool {
    fn mailbox(email: &str) -> Option<(String, String)> {
        let (local, domain) = email.trim().rsplit_once('@')?;
        let domain = domain.to_ascii_lowercase();
        let mut local = local.split('+').next().unwrap_or("").to_lowercase();
        if domain == "gmail.com" || domain == "googlemail.com" {
            local.retain(|c| c != '.');
            return Some((local, "gmail.com".into()));
        }
        Some((local, domain))
    }
    matches!((mailbox(a), mailbox(b)), (Some(x), Some(y)) if x == y && !x.0.is_empty())
}

/// The month (UTC) a conversion counts in for the referrer's limit: its first instant
/// and the next month's.
pub fn month_window(now: Timestamp) -> (Timestamp, Timestamp) {
    let (_, month) = crate::transfers::limit_windows(now);
    let next = month
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(jiff::Span::new().months(1))
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX);
    (month, next)
}

/// The longest sign-up address the operator may set.
pub const MAX_SIGNUP_URL: usize = 500;

/// Checks the operator's sign-up address: `https://` (or `http://`), no spaces,
/// control characters or fragment, at most [`MAX_SIGNUP_URL`] characters.
pub fn check_signup_url(url: &str) -> Result<String, DomainError> {
    let bad = |why: &str| Err(DomainError::invalid("referral_signup_url", why.to_string()));
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return bad("must start with https:// or http://");
    };
    if url.len() > MAX_SIGNUP_URL {
        return bad("must be at most 500 characters");
    }
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
        return bad("must name a host");
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '#' || !c.is_ascii())
    {
        return bad("must be ASCII without spaces, control characters or a fragment (#)");
    }
    Ok(url.to_string())
}

/// Where a share link sends its visitor: the sign-up address with `referral_code`
/// added to its query. Referral codes are letters and digits, so they need no escaping.
pub fn share_target(signup_url: &str, code: &str) -> String {
    let join = if signup_url.contains('?') { '&' } else { '?' };
    format!("{signup_url}{join}referral_code={code}")
}

/// Whether text could be a referral code Tally issued (1 to 32 letters and digits).
pub fn plausible_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 32 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ids::Id;

    fn policy() -> ReferralPolicy {
        ReferralPolicy {
            min_purchase: Money {
                amount: 2500,
                currency: Currency::parse("EUR").unwrap(),
            },
            window_days: 30,
            max_per_month: 2,
        }
    }

    #[test]
    fn a_purchase_qualifies_from_the_minimum_within_the_window() {
        let p = policy();
        let joined: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let q = |amount: i64, occurred: &str, now: &str| {
            p.qualifies(Decimal::new(amount, 2), at(occurred), at(now), joined)
        };
        assert!(q(2500, "2026-11-02T10:00:00Z", "2026-11-02T10:00:00Z"));
        assert!(!q(2499, "2026-11-02T10:00:00Z", "2026-11-02T10:00:00Z"));
        assert!(q(9000, "2026-12-01T09:59:59Z", "2026-12-01T09:59:59Z"));
        assert!(!q(9000, "2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z"));
        // Backdated before she joined, or posted after the window with a date inside it.
        assert!(!q(9000, "2026-11-01T09:00:00Z", "2026-11-02T10:00:00Z"));
        assert!(!q(9000, "2026-11-20T10:00:00Z", "2026-12-05T10:00:00Z"));
        // What a return leaves of the purchase: a full return, or less than the minimum kept.
        assert!(p.still_converted(4000, 4000, 1000));
        assert!(!p.still_converted(4000, 4000, 2000));
        assert!(!p.still_converted(4000, 4000, 4000));
        assert!(still_converted(None, 4000, 4000, 3999));
        assert!(!still_converted(None, 4000, 4000, 4000));
        let free = ReferralPolicy {
            min_purchase: Money {
                amount: 0,
                currency: Currency::parse("EUR").unwrap(),
            },
            ..p.clone()
        };
        assert!(!free.qualifies(
            Decimal::ZERO,
            at("2026-11-02T10:00:00Z"),
            at("2026-11-02T10:00:00Z"),
            joined
        ));
        assert!(p.check(Currency::parse("EUR").unwrap()).is_ok());
        assert!(p.check(Currency::parse("CZK").unwrap()).is_err());
        assert!(
            ReferralPolicy {
                window_days: 0,
                ..p.clone()
            }
            .check(Currency::parse("EUR").unwrap())
            .is_err()
        );
        assert!(
            ReferralPolicy { max_per_month: 0, ..p }
                .check(Currency::parse("EUR").unwrap())
                .is_err()
        );
    }

    #[test]
    fn a_household_or_the_monthly_limit_declines_a_conversion() {
        let (a, b) = (
            MemberId::from_stored("mem_a".into()),
            MemberId::from_stored("mem_b".into()),
        );
        let facts = |n, h| ConversionFacts {
            referrer_this_month: n,
            same_household: h,
        };
        let amount = Decimal::new(30_999, 3);
        let c = decide_conversion(&policy(), &a, &b, amount, facts(1, false));
        assert_eq!(
            (c.status, c.reason, c.amount_minor),
            (ReferralStatus::Converted, None, 3099)
        );
        let c = decide_conversion(&policy(), &a, &b, amount, facts(2, false));
        assert_eq!(
            (c.status, c.reason),
            (ReferralStatus::Declined, Some(DECLINED_MONTHLY_LIMIT))
        );
        let c = decide_conversion(&policy(), &a, &b, amount, facts(0, true));
        assert_eq!(
            (c.status, c.reason),
            (ReferralStatus::Declined, Some(DECLINED_HOUSEHOLD))
        );
    }

    #[test]
    fn one_mailbox_under_another_spelling_is_the_same() {
        assert!(same_mailbox("Jana.Novak@Example.cz", "jana.novak@example.cz"));
        assert!(same_mailbox("jana+tally@example.cz", "jana@example.cz"));
        assert!(same_mailbox("j.a.n.a@gmail.com", "jana+2@googlemail.com"));
        assert!(!same_mailbox("j.ana@example.cz", "jana@example.cz"));
        assert!(!same_mailbox("jana@example.cz", "jana@example.com"));
        assert!(!same_mailbox("+x@example.cz", "+y@example.cz"));
        assert!(!same_mailbox("not an email", "not an email"));
    }

    #[test]
    fn the_limit_month_is_the_calendar_month() {
        let (from, to) = month_window("2026-11-28T23:00:00Z".parse().unwrap());
        assert_eq!(from.to_string(), "2026-11-01T00:00:00Z");
        assert_eq!(to.to_string(), "2026-12-01T00:00:00Z");
    }

    #[test]
    fn the_share_link_adds_the_code_to_the_sign_up_address() {
        assert_eq!(
            share_target("https://join.example/signup", "K7M2PQ9X"),
            "https://join.example/signup?referral_code=K7M2PQ9X"
        );
        assert_eq!(
            share_target("https://join.example/signup?lang=cs", "K7M2PQ9X"),
            "https://join.example/signup?lang=cs&referral_code=K7M2PQ9X"
        );
    }

    #[test]
    fn only_a_plain_web_address_is_a_sign_up_address() {
        assert!(check_signup_url("https://join.example/signup?src=share").is_ok());
        assert!(check_signup_url("http://localhost:3000/join").is_ok());
        for bad in [
            "join.example/signup",
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "https://join.example/sign up",
            "https://join.example/#top",
            "https://join.example/\u{7}",
            "https://jöin.example/",
        ] {
            assert!(check_signup_url(bad).is_err(), "{bad} passed");
        }
        assert!(check_signup_url(&format!("https://a.example/{}", "x".repeat(490))).is_err());
        assert!(plausible_code("K7M2PQ9X"));
        assert!(!plausible_code("K7M-2PQ9X"));
        assert!(!plausible_code(""));
    }
}
