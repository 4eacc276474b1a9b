//! What both backends share about settlement: the query that reads a set of entries by
//! account, code and day, the facts a period's statements are built from, building them,
//! and what a close stores.

use crate::StoreError;
use crate::codec::{currency, decimal};
use crate::model::{from_micros, to_micros};
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tally_domain::earning::FxRates;
use tally_domain::ids::{Id, PartnerId};
use tally_domain::money::Currency;
use tally_domain::settlement::{
    BookRow, Calendar, ClosedPeriod, EntrySet, Flows, Netting, Period, PriceBook, PriceVersion, Prices, Reconciliation,
    Statement, StatementInput, StatementStatus,
};

/// A closed period as stored: the last entry its close saw, the rates it was closed at,
/// what members held after it, and its netting view (the body served, and its hash).
#[derive(Debug, Clone)]
pub struct StoredPeriod {
    pub period: Period,
    pub closed_at: Timestamp,
    pub last_entry_id: i64,
    pub fx_rates: BTreeMap<String, Decimal>,
    pub closing_outstanding: i64,
    pub netting: String,
    pub content_hash: String,
}

/// A closed statement as stored: the body served, byte for byte, and its SHA-256.
#[derive(Debug, Clone)]
pub struct StoredStatement {
    pub partner_id: PartnerId,
    pub body: String,
    pub content_hash: String,
}

/// A period as the API shows it: stored once closed, built from the ledger while open.
#[derive(Debug, Clone)]
pub enum Settlement {
    Closed {
        period: StoredPeriod,
        statements: Vec<StoredStatement>,
    },
    /// An open month: its statements (one partner's when one was asked for), and its
    /// netting view when all were.
    Open {
        statements: Vec<Statement>,
        netting: Option<Netting>,
    },
}

/// A partner as settlement needs it.
#[derive(Debug, Clone)]
pub struct SettledPartner {
    pub id: PartnerId,
    pub currency: Currency,
    pub created_at: Timestamp,
}

/// Everything a period's statements are built from, read in one snapshot.
pub struct Facts {
    pub period: Period,
    pub calendar: Calendar,
    pub stored: Vec<StoredPeriod>,
    pub prices: PriceBook,
    pub partners: Vec<SettledPartner>,
    pub fx: FxRates,
    pub program_currency: Currency,
    /// The period's own entries.
    pub rows: Vec<BookRow>,
    /// Points members and wallets hold in the snapshot (their stored balances); read
    /// only for the netting view.
    pub holders: i64,
    /// The programme side's sum over every entry not settled by the end of the
    /// previous period (read only when the previous period is open: otherwise the
    /// opening comes from its close, or is 0), and of this one.
    pub after_prev: Option<i64>,
    pub after: i64,
}

/// Which facts to read: one partner's statement only, or everything the netting view
/// needs.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub netting: bool,
}

impl Scope {
    /// The entry sets beyond the period's own: after it, and after the previous period
    /// when that one is open and its figure is needed. (In a close's snapshot the sets
    /// after hold the entries past its last one too: with the stored balances read in
    /// the same snapshot, they give what members held after the period.)
    pub fn after_sets(&self, calendar: &Calendar, period: Period) -> (Option<EntrySet>, Option<EntrySet>) {
        if !self.netting {
            return (None, None);
        }
        let after = calendar.after(period);
        let prev = period.prev();
        let prev_open = calendar.settled_by(prev).is_some() && !calendar.closed().iter().any(|c| c.period == prev);
        (Some(after), prev_open.then(|| calendar.after(prev)))
    }
}

/// The query of [`EntrySet`]: bind `recorded_from`, `plus.before`, `plus.until_id`,
/// `minus.before`, `minus.until_id` as the five parameters `ph` writes. An entry's date
/// is its sale's `occurred_at` for the sale's own `earn` and `redeem` entries, else when
/// it was recorded. `sum` is the backend's exact sum of `amount`.
pub fn book_sql(ph: impl Fn(u8) -> String, sum: &str) -> String {
    format!(
        "SELECT account, code, sdate / 86400000000, COUNT(*), {sum}
         FROM (SELECT e.account, e.code, e.amount, e.id,
                      CASE WHEN t.occurred_at IS NULL THEN e.recorded_at ELSE t.occurred_at END AS sdate
               FROM entries e
               LEFT JOIN transactions t
                 ON t.id = e.transaction_id AND e.code IN ('earn', 'redeem') AND e.return_id IS NULL
               WHERE e.account NOT LIKE 'member:%' AND e.account NOT LIKE 'wallet:%'
                 AND e.recorded_at >= {}) x
         WHERE sdate < {} AND id <= {} AND NOT (sdate < {} AND id <= {})
         GROUP BY account, code, sdate / 86400000000",
        ph(1),
        ph(2),
        ph(3),
        ph(4),
        ph(5)
    )
}

/// The five parameters of [`book_sql`].
pub fn book_params(set: &EntrySet) -> [i64; 5] {
    let (mb, mu) = set
        .minus
        .map(|m| (to_micros(m.before), m.until_id))
        .unwrap_or((i64::MIN, i64::MIN));
    [
        to_micros(set.recorded_from),
        to_micros(set.plus.before),
        set.plus.until_id,
        mb,
        mu,
    ]
}

/// A row of [`book_sql`] (the sum already exact) as a [`BookRow`].
pub fn book_row(account: String, code: String, epoch_day: i64, entries: i64, sum: i128) -> Result<BookRow, StoreError> {
    let day = Date::constant(1970, 1, 1)
        .checked_add(jiff::Span::new().days(epoch_day))
        .map_err(|_| StoreError::corrupt(format!("an entry's day {epoch_day}")))?;
    let sum = i64::try_from(sum).map_err(|_| StoreError::corrupt(format!("the sum of {account} on {day}")))?;
    Ok(BookRow {
        account,
        code,
        day,
        entries: entries.max(0) as u64,
        sum,
    })
}

/// The sum over rows of [`book_sql`] (all on the programme's side): what members'
/// holdings changed by, negated.
pub fn programme_sum(rows: &[BookRow]) -> i64 {
    rows.iter().fold(0i64, |s, r| s.saturating_add(r.sum))
}

pub fn calendar(stored: &[StoredPeriod]) -> Calendar {
    Calendar::new(
        stored
            .iter()
            .map(|s| ClosedPeriod {
                period: s.period,
                last_entry_id: s.last_entry_id,
            })
            .collect(),
    )
}

/// The fallback prices: a point costs and pays back its value.
pub fn fallback_prices(point_value_minor: i64, program: Currency) -> Prices {
    let mut value = Decimal::from(point_value_minor);
    value.set_scale(program.exponent()).ok();
    Prices::at_point_value(value.normalize())
}

/// SHA-256 of a stored body, hex.
pub fn content_hash(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rates as stored on a closed period.
pub fn rates_json(rates: &BTreeMap<String, Decimal>) -> Result<String, StoreError> {
    crate::codec::to_json(rates)
}

pub fn rates_from_json(text: &str) -> Result<BTreeMap<String, Decimal>, StoreError> {
    let raw: BTreeMap<String, String> = serde_json::from_str(text)?;
    raw.into_iter()
        .map(|(k, v)| decimal(&v, "a closed period's rate").map(|d| (k, d)))
        .collect()
}

/// The columns of a stored period, in the order [`stored_period`] reads them.
pub const PERIOD_COLUMNS: &str =
    "period, closed_at, last_entry_id, fx_rates, closing_outstanding, netting, content_hash";

/// A stored period's row, as [`PERIOD_COLUMNS`] selects it.
pub type PeriodRow = (String, i64, i64, String, i64, String, String);

pub fn stored_period(row: PeriodRow) -> Result<StoredPeriod, StoreError> {
    let (period, closed_at, last, rates, outstanding, netting, hash) = row;
    Ok(StoredPeriod {
        period: Period::parse(&period).map_err(|_| StoreError::corrupt(format!("a period {period}")))?,
        closed_at: from_micros(closed_at),
        last_entry_id: last,
        fx_rates: rates_from_json(&rates)?,
        closing_outstanding: outstanding,
        netting,
        content_hash: hash,
    })
}

/// The calendar from `(period, last_entry_id)` rows, without the periods' bodies.
pub fn closed_periods(rows: Vec<(String, i64)>) -> Result<Calendar, StoreError> {
    let closed = rows
        .into_iter()
        .map(|(period, last_entry_id)| {
            Ok(ClosedPeriod {
                period: Period::parse(&period).map_err(|_| StoreError::corrupt(format!("a period {period}")))?,
                last_entry_id,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Calendar::new(closed))
}

/// A partner's row (`id, currency, created_at`) as settlement needs it.
pub fn settled_partner(id: String, code: String, created_at: i64) -> Result<SettledPartner, StoreError> {
    Ok(SettledPartner {
        id: PartnerId::from_stored(id),
        currency: currency(&code)?,
        created_at: from_micros(created_at),
    })
}

/// The columns of a stored price version, in the order [`price_version`] reads them,
/// and the order versions are listed in.
pub const PRICE_QUERY: &str = "SELECT partner_id, effective_from, issue_price, reimbursement_rate, monthly_fee,
        redemption_fee_percent, created_at
 FROM settlement_prices ORDER BY effective_from, partner_id";

/// A stored price version's row, as [`PRICE_QUERY`] selects it.
pub type PriceRow = (String, String, String, String, String, String, i64);

/// A stored price version's columns to the domain's.
pub fn price_version(row: PriceRow) -> Result<PriceVersion, StoreError> {
    let (partner_id, effective_from, issue, reimburse, fee, fee_percent, created_at) = row;
    Ok(PriceVersion {
        partner_id: (!partner_id.is_empty()).then(|| PartnerId::from_stored(partner_id)),
        effective_from: effective_from
            .parse()
            .map_err(|_| StoreError::corrupt(format!("a price version's day {effective_from}")))?,
        prices: Prices {
            issue_price: decimal(&issue, "issue_price")?,
            reimbursement_rate: decimal(&reimburse, "reimbursement_rate")?,
            monthly_fee: decimal(&fee, "monthly_fee")?,
            redemption_fee_percent: decimal(&fee_percent, "redemption_fee_percent")?,
        },
        created_at: from_micros(created_at),
    })
}

/// A price version may not reach into a closed period: its statements are final.
pub fn check_price_day(version: &PriceVersion, last_closed: Option<Period>) -> Result<(), StoreError> {
    if let Some(last) = last_closed
        && version.effective_from < last.end_day()
    {
        return Err(StoreError::Domain(tally_domain::DomainError::Refused {
            code: "period_closed",
            message: format!(
                "settlement is closed through {last}: new prices take effect from {} on",
                last.end_day()
            ),
        }));
    }
    Ok(())
}

/// The statements of `facts.period` with these rates (units of each currency per
/// programme unit): every partner's, or `only` one's.
pub fn statements(
    facts: &Facts,
    status: StatementStatus,
    closed_at: Option<Timestamp>,
    rates: &FxRates,
    only: Option<&PartnerId>,
) -> Result<Vec<Statement>, StoreError> {
    let p = facts.period;
    let after_a_close = facts.calendar.closed().iter().any(|c| c.period < p);
    let mut statements = Vec::new();
    let partners = facts
        .partners
        .iter()
        .filter(|x| x.created_at < p.end() && only.is_none_or(|o| o == &x.id));
    for partner in partners {
        let fx_rate = rates.rate_for(facts.program_currency, partner.currency)?;
        statements.push(Statement::build(
            StatementInput {
                period: p,
                partner_id: &partner.id,
                status,
                closed_at,
                currency: partner.currency,
                program_currency: facts.program_currency,
                fx_rate,
                prices: &facts.prices,
                after_a_close,
            },
            &facts.rows,
        )?);
    }
    Ok(statements)
}

/// The statements and netting view of `facts.period` (read with `Scope::netting`).
pub fn build(
    facts: &Facts,
    status: StatementStatus,
    closed_at: Option<Timestamp>,
    rates: &FxRates,
) -> Result<(Vec<Statement>, Netting), StoreError> {
    let p = facts.period;
    let statements = statements(facts, status, closed_at, rates, None)?;
    let flows = Flows::of(&facts.rows)?;
    let closing = facts.holders.saturating_add(facts.after);
    // After a closed period, what members held is what its close measured; otherwise
    // what they hold now less what every later entry changed.
    let opening = match facts.stored.iter().find(|s| s.period == p.prev()) {
        Some(prev) => prev.closing_outstanding,
        None if facts.calendar.settled_by(p.prev()).is_none() => 0,
        None => facts.holders.saturating_add(facts.after_prev.unwrap_or(0)),
    };
    let reconciliation = Reconciliation::new(opening, flows, closing);
    let netting = Netting::new(
        p,
        status,
        facts.program_currency,
        &statements,
        &facts.prices,
        reconciliation,
    )?;
    Ok((statements, netting))
}

/// The rates a period closes at: today's, with those the operator states for it.
pub fn closing_rates(current: &FxRates, stated: &FxRates) -> Result<FxRates, StoreError> {
    let mut rates = FxRates::new();
    for (code, rate) in current.iter().chain(stated.iter()) {
        rates.set(currency(code)?, rate)?;
    }
    Ok(rates)
}

/// What a close writes: the period's row and one statement per partner, each body the
/// bytes served from then on.
pub struct Closing {
    pub period: StoredPeriod,
    pub statements: Vec<StoredStatement>,
}

pub fn closing(facts: &Facts, now: Timestamp, last_entry_id: i64, rates: &FxRates) -> Result<Closing, StoreError> {
    let (statements, mut netting) = build(facts, StatementStatus::Closed, Some(now), rates)?;
    let mut stored = Vec::with_capacity(statements.len());
    for s in &statements {
        let body = crate::codec::to_json(s)?;
        let hash = content_hash(&body);
        if let Some(line) = netting.partners.iter_mut().find(|l| l.partner_id == s.partner_id) {
            line.content_hash = Some(hash.clone());
        }
        stored.push(StoredStatement {
            partner_id: s.partner_id.clone(),
            body,
            content_hash: hash,
        });
    }
    let body = crate::codec::to_json(&netting)?;
    Ok(Closing {
        period: StoredPeriod {
            period: facts.period,
            closed_at: now,
            last_entry_id,
            fx_rates: rates.iter().map(|(c, r)| (c.to_string(), r)).collect(),
            closing_outstanding: netting.reconciliation.closing_outstanding,
            content_hash: content_hash(&body),
            netting: body,
        },
        statements: stored,
    })
}

/// The partners' points funded up to a day, for the liability: each partner's
/// `issued` and the operator's accounts (what came in from other programmes with it).
pub fn funded_by(rows: &[BookRow]) -> Vec<(Option<PartnerId>, i64)> {
    use tally_domain::settlement::{Book, Side};
    let mut by: BTreeMap<Option<PartnerId>, i64> = BTreeMap::new();
    for r in rows {
        let funder = match Book::of(&r.account) {
            Book::Partner(p, Side::Issued) => Some(p),
            Book::Partner(_, Side::OperatorFunded) | Book::ProgramIssued | Book::ExchangeIn | Book::Unrecovered => None,
            _ => continue,
        };
        let slot = by.entry(funder).or_default();
        *slot = slot.saturating_sub(r.sum);
    }
    // Partners first in id order, the operator last.
    let operator = by.remove(&None);
    let mut out: Vec<_> = by.into_iter().collect();
    out.push((None, operator.unwrap_or(0)));
    out
}

/// Midnight UTC after `day`: entries dated on the day are before it.
pub fn day_end(day: Date) -> Timestamp {
    day.tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

/// One entry on `program:expired`, as the breakage query reads it: its code, the sale's
/// `occurred_at` when the points came from a sale, when it was recorded, its amount.
pub type ExpiredRow = (String, Option<i64>, i64, i64);

/// Expired points by the month they were earned: a sale's month; for other points that
/// ran out (`expire`: events, bonuses, points received) the month they expired less the
/// programme's expiry, when they were earned; a forfeited voucher (`reward_forfeit`),
/// whose points' months are not kept, in the month it was forfeited.
pub fn cohorts_of_expired(rows: Vec<ExpiredRow>, expiry_months: u32) -> Vec<(Period, i64)> {
    let mut by: BTreeMap<Period, i64> = BTreeMap::new();
    for (code, sold, recorded, amount) in rows {
        let cohort = match sold {
            Some(at) => Period::of(from_micros(at)),
            None if code != "expire" => Period::of(from_micros(recorded)),
            None => {
                let mut p = Period::of(from_micros(recorded));
                for _ in 0..expiry_months {
                    p = p.prev();
                }
                p
            }
        };
        let slot = by.entry(cohort).or_default();
        *slot = slot.saturating_add(amount);
    }
    by.into_iter().collect()
}
