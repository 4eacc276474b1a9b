//! Settlement on SQLite: prices, a period's statements read in one snapshot, and closing
//! a period (the cut and the write in the writer, the reading on a reader between them).

use super::SqliteStore;
use super::ledger::in_snapshot;
use super::program::{fx_rates, program};
use crate::StoreError;
use crate::codec::fx_rates_from_rows;
use crate::model::ProgramRow;
use crate::model::to_micros;
use crate::settlement::{
    Closing, ExpiredRow, Facts, PERIOD_COLUMNS, PRICE_QUERY, PeriodRow, PriceRow, Scope, SettledPartner, Settlement,
    StoredPeriod, StoredStatement, book_params, book_row, book_sql, build, calendar, check_price_day, closed_periods,
    closing, closing_rates, fallback_prices, funded_by, price_version, programme_sum, rates_json, settled_partner,
    statements, stored_period,
};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tally_domain::earning::FxRates;
use tally_domain::ids::{Id, PartnerId};
use tally_domain::settlement::{
    BookRow, Calendar, ClosedPeriod, Cohort, EntrySet, Liability, Period, PriceBook, PriceVersion, StatementStatus,
};

fn book_rows(c: &Connection, set: &EntrySet) -> Result<Vec<BookRow>, StoreError> {
    // SQLite's SUM stops at i64: the high and low halves are summed apart.
    let sql = book_sql(|i| format!("?{i}"), "SUM(amount >> 32), SUM(amount & 4294967295)");
    let mut stmt = c.prepare_cached(&sql)?;
    let p = book_params(set);
    let mut rows = stmt.query(params![p[0], p[1], p[2], p[3], p[4]])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let (high, low): (i64, i64) = (r.get(4)?, r.get(5)?);
        out.push(book_row(
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            (i128::from(high) << 32) + i128::from(low),
        )?);
    }
    Ok(out)
}

fn holders(c: &Connection) -> Result<i64, StoreError> {
    let members: i64 = c.query_row(
        "SELECT COALESCE(SUM(available + pending + reserved), 0) FROM members",
        [],
        |r| r.get(0),
    )?;
    let wallets: i64 = c.query_row("SELECT COALESCE(SUM(available + pending), 0) FROM wallets", [], |r| {
        r.get(0)
    })?;
    Ok(members.saturating_add(wallets))
}

fn stored_periods(c: &Connection) -> Result<Vec<StoredPeriod>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {PERIOD_COLUMNS} FROM settlement_periods ORDER BY period"
    ))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<Result<Vec<PeriodRow>, _>>()?;
    rows.into_iter().map(stored_period).collect()
}

fn stored_statements(c: &Connection, period: Period) -> Result<Vec<StoredStatement>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT partner_id, body, content_hash FROM settlement_statements WHERE period = ?1 ORDER BY partner_id",
    )?;
    let rows = stmt
        .query_map([period.to_string()], |r| {
            Ok(StoredStatement {
                partner_id: PartnerId::from_stored(r.get(0)?),
                body: r.get(1)?,
                content_hash: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn price_versions(c: &Connection) -> Result<Vec<PriceVersion>, StoreError> {
    let mut stmt = c.prepare_cached(PRICE_QUERY)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<Result<Vec<PriceRow>, _>>()?;
    rows.into_iter().map(price_version).collect()
}

/// Every price version, with the programme's point value as the fallback.
fn price_book(c: &Connection, program: &ProgramRow) -> Result<PriceBook, StoreError> {
    Ok(PriceBook::new(
        price_versions(c)?,
        fallback_prices(program.point_value_minor, program.currency),
    ))
}

fn partners(c: &Connection) -> Result<Vec<SettledPartner>, StoreError> {
    let mut stmt = c.prepare_cached("SELECT id, currency, created_at FROM partners ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<(String, String, i64)>, _>>()?;
    rows.into_iter()
        .map(|(id, code, at)| settled_partner(id, code, at))
        .collect()
}

/// The facts of `period` under `calendar` (the stored one, or with the period being
/// closed added), as `scope` asks.
fn facts(
    c: &Connection,
    period: Period,
    calendar: Calendar,
    stored: Vec<StoredPeriod>,
    scope: Scope,
) -> Result<Facts, StoreError> {
    let rows = book_rows(c, &calendar.period_set(period)?)?;
    let (after, after_prev) = scope.after_sets(&calendar, period);
    let after = after.map(|set| book_rows(c, &set)).transpose()?;
    let after_prev = after_prev.map(|set| book_rows(c, &set)).transpose()?;
    let program = program(c)?;
    Ok(Facts {
        period,
        calendar,
        stored,
        prices: price_book(c, &program)?,
        partners: partners(c)?,
        fx: fx_rates_from_rows(fx_rates(c)?)?,
        program_currency: program.currency,
        rows,
        holders: if scope.netting { holders(c)? } else { 0 },
        after_prev: after_prev.as_deref().map(programme_sum),
        after: after.as_deref().map_or(0, programme_sum),
    })
}

/// The closed periods and their last entries alone (not their bodies).
fn closed_calendar(c: &Connection) -> Result<Calendar, StoreError> {
    let mut stmt = c.prepare_cached("SELECT period, last_entry_id FROM settlement_periods")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<(String, i64)>, _>>()?;
    closed_periods(rows)
}

fn settlement(c: &Connection, period: Period, only: Option<&PartnerId>) -> Result<Settlement, StoreError> {
    let stored = stored_periods(c)?;
    if let Some(p) = stored.iter().find(|s| s.period == period) {
        return Ok(Settlement::Closed {
            period: p.clone(),
            statements: stored_statements(c, period)?,
        });
    }
    let cal = calendar(&stored);
    let scope = Scope {
        netting: only.is_none(),
    };
    let facts = facts(c, period, cal, stored, scope)?;
    Ok(match only {
        Some(_) => Settlement::Open {
            statements: statements(&facts, StatementStatus::Open, None, &facts.fx, only)?,
            netting: None,
        },
        None => {
            let (statements, netting) = build(&facts, StatementStatus::Open, None, &facts.fx)?;
            Settlement::Open {
                statements,
                netting: Some(netting),
            }
        }
    })
}

/// The close's cut, in the writer (nothing is written meanwhile): the last entry.
fn cut(c: &Connection, period: Period, now: Timestamp) -> Result<i64, StoreError> {
    closed_calendar(c)?.may_close(period, now)?;
    Ok(c.query_row("SELECT COALESCE(MAX(id), 0) FROM entries", [], |r| r.get(0))?)
}

/// The close's reading, on a reader, while sales go on: the ledger up to the cut, and
/// the prices it was priced with.
fn read_closing(
    c: &Connection,
    period: Period,
    now: Timestamp,
    last_entry_id: i64,
    stated: &FxRates,
) -> Result<(Closing, Vec<PriceVersion>), StoreError> {
    let stored = stored_periods(c)?;
    calendar(&stored).may_close(period, now)?;
    let mut closed: Vec<ClosedPeriod> = calendar(&stored).closed().to_vec();
    closed.push(ClosedPeriod { period, last_entry_id });
    let facts = facts(c, period, Calendar::new(closed), stored, Scope { netting: true })?;
    let rates = closing_rates(&facts.fx, stated)?;
    Ok((
        closing(&facts, now, last_entry_id, &rates)?,
        facts.prices.versions().to_vec(),
    ))
}

/// The close's write, in the writer: only if no other close came in between and the
/// prices are the ones it read (false: read again).
fn write_closing(
    c: &Connection,
    period: Period,
    now: Timestamp,
    closing: &Closing,
    prices: &[PriceVersion],
) -> Result<bool, StoreError> {
    closed_calendar(c)?.may_close(period, now)?;
    if price_versions(c)? != prices {
        return Ok(false);
    }
    let row = &closing.period;
    c.execute(
        "INSERT INTO settlement_periods (period, closed_at, last_entry_id, fx_rates, closing_outstanding, netting,
                                         content_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            period.to_string(),
            to_micros(now),
            row.last_entry_id,
            rates_json(&row.fx_rates)?,
            row.closing_outstanding,
            row.netting,
            row.content_hash
        ],
    )?;
    let mut insert = c.prepare_cached(
        "INSERT INTO settlement_statements (period, partner_id, body, content_hash) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for s in &closing.statements {
        insert.execute(params![
            period.to_string(),
            s.partner_id.as_str(),
            s.body,
            s.content_hash
        ])?;
    }
    Ok(true)
}

fn put_price(c: &Connection, version: &PriceVersion) -> Result<PriceVersion, StoreError> {
    check_price_day(version, closed_calendar(c)?.last_closed())?;
    if let Some(p) = &version.partner_id {
        let known: Option<i64> = c
            .query_row("SELECT 1 FROM partners WHERE id = ?1", [p.as_str()], |r| r.get(0))
            .optional()?;
        known.ok_or(StoreError::NotFound(crate::Entity::Partner))?;
    }
    let v = version;
    c.execute(
        "INSERT INTO settlement_prices (partner_id, effective_from, issue_price, reimbursement_rate, monthly_fee,
                                        redemption_fee_percent, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (partner_id, effective_from) DO UPDATE SET
           issue_price = excluded.issue_price, reimbursement_rate = excluded.reimbursement_rate,
           monthly_fee = excluded.monthly_fee, redemption_fee_percent = excluded.redemption_fee_percent,
           created_at = excluded.created_at",
        params![
            v.partner_id.as_ref().map_or("", |p| p.as_str()),
            v.effective_from.to_string(),
            v.prices.issue_price.normalize().to_string(),
            v.prices.reimbursement_rate.normalize().to_string(),
            v.prices.monthly_fee.normalize().to_string(),
            v.prices.redemption_fee_percent.normalize().to_string(),
            to_micros(v.created_at)
        ],
    )?;
    Ok(v.clone())
}

/// Expired points by the month they were earned: a sale's month, else (events, bonuses,
/// vouchers) the month they expired less the programme's expiry.
fn expired_by_cohort(c: &Connection, expiry_months: u32) -> Result<Vec<(Period, i64)>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT e.code, t.occurred_at, e.recorded_at, e.amount FROM entries e
         LEFT JOIN transactions t ON t.id = e.transaction_id
         WHERE e.account NOT LIKE 'member:%' AND e.account NOT LIKE 'wallet:%' AND e.recorded_at >= ?1
           AND e.account = 'program:expired'",
    )?;
    let rows = stmt
        .query_map([i64::MIN], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<Vec<ExpiredRow>, _>>()?;
    Ok(crate::settlement::cohorts_of_expired(rows, expiry_months))
}

impl SqliteStore {
    pub async fn put_price(&self, version: PriceVersion) -> Result<PriceVersion, StoreError> {
        self.write(move |c| put_price(c, &version)).await
    }

    pub async fn price_book(&self) -> Result<PriceBook, StoreError> {
        self.read(|c| price_book(c, &program(c)?)).await
    }

    pub async fn settlement_periods(&self) -> Result<Vec<StoredPeriod>, StoreError> {
        self.read(stored_periods).await
    }

    pub async fn settlement(&self, period: Period, only: Option<PartnerId>) -> Result<Settlement, StoreError> {
        self.read(move |c| in_snapshot(c, |c| settlement(c, period, only.as_ref())))
            .await
    }

    /// Closes `period`: the cut in the writer (a moment), the reading on a reader while
    /// sales go on, the write in the writer again. A price saved in between makes it
    /// read again.
    pub async fn close_period(
        &self,
        period: Period,
        now: Timestamp,
        stated: FxRates,
    ) -> Result<StoredPeriod, StoreError> {
        for _ in 0..3 {
            let last = self.write_waiting(move |c| cut(c, period, now)).await?;
            let rates = stated.clone();
            let (closing, prices) = self
                .read(move |c| in_snapshot(c, |c| read_closing(c, period, now, last, &rates)))
                .await?;
            let row = closing.period.clone();
            let read = std::sync::Arc::new((closing, prices));
            if self
                .write_waiting(move |c| write_closing(c, period, now, &read.0, &read.1))
                .await?
            {
                return Ok(row);
            }
        }
        Err(StoreError::Domain(tally_domain::DomainError::Stale))
    }

    pub async fn liability(&self, at: jiff::civil::Date) -> Result<Liability, StoreError> {
        self.read(move |c| {
            in_snapshot(c, |c| {
                let upto = book_rows(c, &EntrySet::dated_before(crate::settlement::day_end(at)))?;
                let program = program(c)?;
                let outstanding = -programme_sum(&upto);
                let prices = price_book(c, &program)?;
                Ok(Liability::new(
                    at,
                    outstanding,
                    funded_by(&upto),
                    &prices,
                    program.currency,
                ))
            })
        })
        .await
    }

    pub async fn breakage(&self) -> Result<Vec<Cohort>, StoreError> {
        self.read(move |c| {
            in_snapshot(c, |c| {
                let rows = book_rows(c, &EntrySet::dated_before(Timestamp::MAX))?;
                let expired = expired_by_cohort(c, program(c)?.expiry_months)?;
                Ok(Cohort::all(&rows, &expired))
            })
        })
        .await
    }
}
