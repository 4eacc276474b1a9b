//! What a member reads: a reward's texts in her language (English as the fallback) and
//! why she cannot redeem it, in English, German or Czech.

use super::Availability;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::collections::BTreeMap;

/// A language as two small letters (`en`, `de`, `cs`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lang([u8; 2]);

impl Lang {
    pub const EN: Lang = Lang(*b"en");

    /// Two small ASCII letters, or `None`.
    pub fn parse_code(code: &str) -> Option<Lang> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_lowercase() && b.is_ascii_lowercase() => Some(Lang([*a, *b])),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header (`de-DE,de;q=0.9,en;q=0.8`)
    /// that is one of `offered`, else English. Quality values are read in order of
    /// appearance, which is how browsers send them.
    pub fn negotiate(header: &str, offered: &[Lang]) -> Lang {
        header
            .split(',')
            .take(20)
            .filter_map(|part| {
                let tag = part.split(';').next()?.trim();
                let primary = tag.split('-').next()?.to_ascii_lowercase();
                Lang::parse_code(&primary)
            })
            .find(|l| offered.contains(l))
            .unwrap_or(Lang::EN)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("en")
    }
}

/// The languages Tally's own texts (the reasons) are written in.
pub const OWN_LANGUAGES: [Lang; 3] = [Lang::EN, Lang(*b"de"), Lang(*b"cs")];

/// The text in `lang`, else the English one.
pub fn text_in(texts: &BTreeMap<String, String>, lang: Lang) -> Option<&str> {
    texts.get(lang.as_str()).or_else(|| texts.get("en")).map(String::as_str)
}

const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
/// Czech months in the genitive, as a date is written ("3. prosince").
const MONTHS_CS: [&str; 12] = [
    "ledna",
    "února",
    "března",
    "dubna",
    "května",
    "června",
    "července",
    "srpna",
    "září",
    "října",
    "listopadu",
    "prosince",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn day(at: Timestamp, lang: &str) -> String {
    let d = at.to_zoned(TimeZone::UTC).date();
    let m = usize::from(d.month().unsigned_abs()).saturating_sub(1).min(11);
    match lang {
        "de" => format!("{}. {}", d.day(), MONTHS_DE[m]),
        "cs" => format!("{}. {}", d.day(), MONTHS_CS[m]),
        _ => format!("{} {}", d.day(), MONTHS_EN[m]),
    }
}

fn points(n: i64, lang: &str) -> String {
    match lang {
        "de" if n == 1 => "1 Punkt".into(),
        "de" => format!("{n} Punkte"),
        "cs" if n == 1 => "1 bod".into(),
        "cs" if (2..=4).contains(&n) => format!("{n} body"),
        "cs" => format!("{n} bodů"),
        _ if n == 1 => "1 more point".into(),
        _ => format!("{n} more points"),
    }
}

/// Why a member cannot redeem a reward, in `lang` (English where Tally has no text in
/// it); `note` is the reward's own eligibility note in her language. `None` when she
/// can.
pub fn reason_text(a: &Availability, lang: Lang, note: Option<&str>) -> Option<String> {
    let l = match lang.as_str() {
        l @ ("de" | "cs") => l,
        _ => "en",
    };
    let pick = |en: &str, de: &str, cs: &str| -> String {
        match l {
            "de" => de.to_string(),
            "cs" => cs.to_string(),
            _ => en.to_string(),
        }
    };
    Some(match *a {
        Availability::Redeemable => return None,
        Availability::NeedsPoints { short } => match l {
            "de" => format!("noch {} nötig", points(short, l)),
            "cs" => format!("chybí ještě {}", points(short, l)),
            _ => format!("needs {}", points(short, l)),
        },
        Availability::NotEligible => match note {
            Some(n) => n.to_string(),
            None => pick(
                "not available to you",
                "für Sie nicht verfügbar",
                "pro vás není k dispozici",
            ),
        },
        Availability::OpensOn { at } => match l {
            "de" => format!("für Sie ab {}", day(at, l)),
            "cs" => format!("pro vás od {}", day(at, l)),
            _ => format!("opens to you on {}", day(at, l)),
        },
        Availability::SoldOut => pick("sold out", "ausverkauft", "vyprodáno"),
        Availability::LimitReached { until: None } => pick("limit reached", "Limit erreicht", "limit vyčerpán"),
        Availability::LimitReached { until: Some(at) } => match l {
            "de" => format!("Limit erreicht, wieder ab {}", day(at, l)),
            "cs" => format!("limit vyčerpán, znovu od {}", day(at, l)),
            _ => format!("limit reached, again from {}", day(at, l)),
        },
        Availability::Closed => pick("no longer available", "nicht mehr verfügbar", "již není k dispozici"),
    })
}
