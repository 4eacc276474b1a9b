//! What pages read from forms and API answers alike: ids safe inside an API path,
//! amounts typed in whole units, partner names by id, and digits grouped by thousands.
//! It uses nothing else of the web module (the page shell uses it).

use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::HashMap;

/// Whether `s` could be an id or code of ours (`ptn_…`, a challenge's code): letters,
/// digits, `_` and `-`, so it is safe inside an API path. The API judges whether it
/// exists.
pub fn plausible_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An amount typed in whole units ("12.50", "12,5") as minor units of `currency`
/// (1250), or why not: digits and one decimal mark only, never negative, at most the
/// currency's decimals, at most 10^12 minor units.
pub fn minor_units(typed: &str, currency: &str) -> Result<i64, String> {
    let c = tally_domain::money::Currency::parse(currency.trim())
        .map_err(|_| format!("{currency} is not a currency code such as EUR"))?;
    let typed = typed.trim();
    if typed.is_empty() || !typed.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',') {
        return Err(format!("{typed:?} is not an amount such as 12.50"));
    }
    let d: Decimal = typed
        .replace(',', ".")
        .parse()
        .map_err(|_| format!("{typed} is not an amount such as 12.50"))?;
    let scaled = d
        .checked_mul(Decimal::from(10i64.pow(c.exponent())))
        .ok_or_else(|| format!("{typed} is too large"))?;
    if scaled.fract() != Decimal::ZERO {
        return Err(format!("{typed}: {} takes at most {} decimals", c.code(), c.exponent()));
    }
    rust_decimal::prelude::ToPrimitive::to_i64(&scaled)
        .filter(|m| *m <= 1_000_000_000_000)
        .ok_or_else(|| format!("{typed} is too large"))
}

/// Partners' names by id, from the answer of `GET /v1/partners` (`{"items": [...]}`;
/// none when it failed: pages then show ids).
pub fn partner_names(partners: &Value) -> HashMap<String, String> {
    partners["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?.to_string(), p["name"].as_str()?.to_string())))
        .collect()
}

/// 1234567 with `sep` → "1,234,567" (and a minus sign for negatives).
pub fn grouped(n: i64, sep: char) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('−');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_amounts_become_exact_minor_units_or_a_reason() {
        assert_eq!(minor_units("12.50", "EUR"), Ok(1250));
        assert_eq!(minor_units("12,5", "EUR"), Ok(1250));
        assert_eq!(minor_units(" 3 ", "EUR"), Ok(300));
        assert_eq!(minor_units("300", "JPY"), Ok(300));
        for bad in ["1.234", "-1", "1e9", "abc", "", "99999999999999999999", "1 000"] {
            assert!(minor_units(bad, "EUR").is_err(), "{bad}");
        }
        assert!(minor_units("5.5", "JPY").is_err());
        assert!(minor_units("1", "XXX").is_err());
    }

    #[test]
    fn ids_for_paths_are_plain() {
        assert!(plausible_id("ptn_01HZX"));
        assert!(plausible_id("spring-challenge"));
        assert!(!plausible_id("ptn/../x"));
        assert!(!plausible_id("a?b"));
        assert!(!plausible_id(""));
    }

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(grouped(0, ','), "0");
        assert_eq!(grouped(999, ','), "999");
        assert_eq!(grouped(1000, '.'), "1.000");
        assert_eq!(grouped(-1234567, ','), "−1,234,567");
    }
}
