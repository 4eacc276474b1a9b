//! Settlement on PostgreSQL: prices, a period's statements read in one repeatable-read
//! snapshot, and closing a period (the cut with the entries table locked against writes
//! for one lookup, then the reading and the write).

use super::PgStore;
use crate::StoreError;
use crate::codec::{currency, fx_rates_from_rows};
use crate::model::to_micros;
use crate::settlement::{
    Closing, ExpiredRow, Facts, PERIOD_COLUMNS, PRICE_QUERY, PeriodRow, PriceRow, Scope, SettledPartner, Settlement,
    StoredPeriod, StoredStatement, book_params, book_row, book_sql, build, calendar, check_price_day, closed_periods,
    closing, closing_rates, cohorts_of_expired, day_end, fallback_prices, funded_by, price_version, programme_sum,
    rates_json, settled_partner, statements, stored_period,
};
use jiff::Timestamp;
use sqlx::PgConnection;
use tally_domain::earning::FxRates;
use tally_domain::ids::{Id, PartnerId};
use tally_domain::settlement::{
    BookRow, Calendar, ClosedPeriod, Cohort, EntrySet, Liability, Period, PriceBook, PriceVersion, StatementStatus,
};

const SNAPSHOT: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY";

fn parse_sum(s: &str) -> Result<i128, StoreError> {
    s.parse()
        .map_err(|_| StoreError::corrupt(format!("a sum of entries is {s}")))
}

async fn book_rows(c: &mut PgConnection, set: &EntrySet) -> Result<Vec<BookRow>, StoreError> {
    let sql = book_sql(|i| format!("${i}"), "SUM(amount)::text");
    let p = book_params(set);
    let rows: Vec<(String, String, i64, i64, String)> = sqlx::query_as(&sql)
        .bind(p[0])
        .bind(p[1])
        .bind(p[2])
        .bind(p[3])
        .bind(p[4])
        .fetch_all(&mut *c)
        .await?;
    rows.into_iter()
        .map(|(account, code, day, n, sum)| book_row(account, code, day, n, parse_sum(&sum)?))
        .collect()
}

async fn holders(c: &mut PgConnection) -> Result<i64, StoreError> {
    let (members, wallets): (String, String) = sqlx::query_as(
        "SELECT (SELECT COALESCE(SUM(available + pending + reserved), 0) FROM members)::text,
                (SELECT COALESCE(SUM(available + pending), 0) FROM wallets)::text",
    )
    .fetch_one(&mut *c)
    .await?;
    let total = parse_sum(&members)? + parse_sum(&wallets)?;
    i64::try_from(total).map_err(|_| StoreError::corrupt("what members hold"))
}

async fn stored_periods(c: &mut PgConnection) -> Result<Vec<StoredPeriod>, StoreError> {
    let rows: Vec<PeriodRow> = sqlx::query_as(&format!(
        "SELECT {PERIOD_COLUMNS} FROM settlement_periods ORDER BY period"
    ))
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter().map(stored_period).collect()
}

async fn stored_statements(c: &mut PgConnection, period: Period) -> Result<Vec<StoredStatement>, StoreError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT partner_id, body, content_hash FROM settlement_statements WHERE period = $1 ORDER BY partner_id",
    )
    .bind(period.to_string())
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(p, body, hash)| StoredStatement {
            partner_id: PartnerId::from_stored(p),
            body,
            content_hash: hash,
        })
        .collect())
}

/// Every price version, with the programme's point value (`program`) as the fallback.
async fn price_book(c: &mut PgConnection, program: &(String, i64)) -> Result<PriceBook, StoreError> {
    let versions = price_versions(c).await?;
    Ok(PriceBook::new(
        versions,
        fallback_prices(program.1, currency(&program.0)?),
    ))
}

/// The programme's currency and point value.
async fn program(c: &mut PgConnection) -> Result<(String, i64), StoreError> {
    Ok(
        sqlx::query_as("SELECT currency, point_value_minor FROM program WHERE id = 1")
            .fetch_one(&mut *c)
            .await?,
    )
}

async fn partners(c: &mut PgConnection) -> Result<Vec<SettledPartner>, StoreError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as("SELECT id, currency, created_at FROM partners ORDER BY id")
        .fetch_all(&mut *c)
        .await?;
    rows.into_iter()
        .map(|(id, code, at)| settled_partner(id, code, at))
        .collect()
}

async fn facts(
    c: &mut PgConnection,
    period: Period,
    calendar: Calendar,
    stored: Vec<StoredPeriod>,
    scope: Scope,
) -> Result<Facts, StoreError> {
    let rows = book_rows(c, &calendar.period_set(period)?).await?;
    let (after, after_prev) = scope.after_sets(&calendar, period);
    let after = match after {
        Some(set) => Some(programme_sum(&book_rows(c, &set).await?)),
        None => None,
    };
    let after_prev = match after_prev {
        Some(set) => Some(programme_sum(&book_rows(c, &set).await?)),
        None => None,
    };
    let fx_rows: Vec<(String, String)> = sqlx::query_as("SELECT currency, rate FROM fx_rates")
        .fetch_all(&mut *c)
        .await?;
    let holders = match scope.netting {
        true => holders(c).await?,
        false => 0,
    };
    let program = program(c).await?;
    Ok(Facts {
        period,
        calendar,
        stored,
        prices: price_book(c, &program).await?,
        partners: partners(c).await?,
        fx: fx_rates_from_rows(fx_rows)?,
        program_currency: currency(&program.0)?,
        rows,
        holders,
        after_prev,
        after: after.unwrap_or(0),
    })
}

/// The closed periods and their last entries alone (not their bodies).
async fn closed_calendar(c: &mut PgConnection) -> Result<Calendar, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT period, last_entry_id FROM settlement_periods")
        .fetch_all(&mut *c)
        .await?;
    closed_periods(rows)
}

async fn price_versions(c: &mut PgConnection) -> Result<Vec<PriceVersion>, StoreError> {
    let rows: Vec<PriceRow> = sqlx::query_as(PRICE_QUERY).fetch_all(&mut *c).await?;
    rows.into_iter().map(price_version).collect()
}

impl PgStore {
    pub async fn put_price(&self, version: PriceVersion) -> Result<PriceVersion, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A close holds this lock in EXCLUSIVE mode: a price is saved before or after it.
        sqlx::query("LOCK TABLE settlement_periods IN SHARE MODE")
            .execute(&mut *tx)
            .await?;
        check_price_day(&version, closed_calendar(&mut tx).await?.last_closed())?;
        if let Some(p) = &version.partner_id {
            let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM partners WHERE id = $1")
                .bind(p.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            known.ok_or(StoreError::NotFound(crate::Entity::Partner))?;
        }
        let v = &version;
        sqlx::query(
            "INSERT INTO settlement_prices (partner_id, effective_from, issue_price, reimbursement_rate, monthly_fee,
                                            redemption_fee_percent, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (partner_id, effective_from) DO UPDATE SET
               issue_price = excluded.issue_price, reimbursement_rate = excluded.reimbursement_rate,
               monthly_fee = excluded.monthly_fee, redemption_fee_percent = excluded.redemption_fee_percent,
               created_at = excluded.created_at",
        )
        .bind(v.partner_id.as_ref().map_or("", |p| p.as_str()))
        .bind(v.effective_from.to_string())
        .bind(v.prices.issue_price.normalize().to_string())
        .bind(v.prices.reimbursement_rate.normalize().to_string())
        .bind(v.prices.monthly_fee.normalize().to_string())
        .bind(v.prices.redemption_fee_percent.normalize().to_string())
        .bind(to_micros(v.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    pub async fn price_book(&self) -> Result<PriceBook, StoreError> {
        let mut c = self.pool.acquire().await?;
        let program = program(&mut c).await?;
        price_book(&mut c, &program).await
    }

    pub async fn settlement_periods(&self) -> Result<Vec<StoredPeriod>, StoreError> {
        let mut c = self.pool.acquire().await?;
        stored_periods(&mut c).await
    }

    pub async fn settlement(&self, period: Period, only: Option<PartnerId>) -> Result<Settlement, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(SNAPSHOT).execute(&mut *tx).await?;
        let stored = stored_periods(&mut tx).await?;
        if let Some(p) = stored.iter().find(|s| s.period == period) {
            let statements = stored_statements(&mut tx, period).await?;
            tx.commit().await?;
            return Ok(Settlement::Closed {
                period: p.clone(),
                statements,
            });
        }
        let cal = calendar(&stored);
        let scope = Scope {
            netting: only.is_none(),
        };
        let facts = facts(&mut tx, period, cal, stored, scope).await?;
        tx.commit().await?;
        Ok(match only {
            Some(p) => Settlement::Open {
                statements: statements(&facts, StatementStatus::Open, None, &facts.fx, Some(&p))?,
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

    /// Closes `period` in three steps, so sales wait only for the first:
    /// 1. the cut: with `entries` locked in SHARE mode (sales wait, and every entry
    ///    written before is committed), the last entry id;
    /// 2. the reading, in a repeatable-read snapshot taken after the cut: the ledger up
    ///    to the cut and what members hold, while sales go on;
    /// 3. the write, with `settlement_periods` locked: only if no other close came in
    ///    between and the prices are the ones it read (a price saved meanwhile makes it
    ///    read again).
    pub async fn close_period(
        &self,
        period: Period,
        now: Timestamp,
        stated: FxRates,
    ) -> Result<StoredPeriod, StoreError> {
        for _ in 0..3 {
            let mut tx = self.pool.begin().await?;
            sqlx::query("LOCK TABLE entries IN SHARE MODE")
                .execute(&mut *tx)
                .await?;
            closed_calendar(&mut tx).await?.may_close(period, now)?;
            let last_entry_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0)::bigint FROM entries")
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;

            let mut tx = self.pool.begin().await?;
            sqlx::query(SNAPSHOT).execute(&mut *tx).await?;
            let stored = stored_periods(&mut tx).await?;
            calendar(&stored).may_close(period, now)?;
            let mut closed: Vec<ClosedPeriod> = calendar(&stored).closed().to_vec();
            closed.push(ClosedPeriod { period, last_entry_id });
            let facts = facts(&mut tx, period, Calendar::new(closed), stored, Scope { netting: true }).await?;
            tx.commit().await?;
            let rates = closing_rates(&facts.fx, &stated)?;
            let Closing {
                period: row,
                statements,
            } = closing(&facts, now, last_entry_id, &rates)?;

            let mut tx = self.pool.begin().await?;
            sqlx::query("LOCK TABLE settlement_periods IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            closed_calendar(&mut tx).await?.may_close(period, now)?;
            if price_versions(&mut tx).await?.as_slice() != facts.prices.versions() {
                continue;
            }
            sqlx::query(
                "INSERT INTO settlement_periods (period, closed_at, last_entry_id, fx_rates, closing_outstanding,
                                                 netting, content_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(period.to_string())
            .bind(to_micros(now))
            .bind(last_entry_id)
            .bind(rates_json(&row.fx_rates)?)
            .bind(row.closing_outstanding)
            .bind(&row.netting)
            .bind(&row.content_hash)
            .execute(&mut *tx)
            .await?;
            let mut ids = Vec::new();
            let mut bodies = Vec::new();
            let mut hashes = Vec::new();
            for s in statements {
                ids.push(s.partner_id.as_str().to_string());
                bodies.push(s.body);
                hashes.push(s.content_hash);
            }
            sqlx::query(
                "INSERT INTO settlement_statements (period, partner_id, body, content_hash)
                 SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[])",
            )
            .bind(period.to_string())
            .bind(ids)
            .bind(bodies)
            .bind(hashes)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(row);
        }
        Err(StoreError::Domain(tally_domain::DomainError::Stale))
    }

    pub async fn liability(&self, at: jiff::civil::Date) -> Result<Liability, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(SNAPSHOT).execute(&mut *tx).await?;
        let upto = book_rows(&mut tx, &EntrySet::dated_before(day_end(at))).await?;
        let program = program(&mut tx).await?;
        let prices = price_book(&mut tx, &program).await?;
        tx.commit().await?;
        Ok(Liability::new(
            at,
            -programme_sum(&upto),
            funded_by(&upto),
            &prices,
            currency(&program.0)?,
        ))
    }

    pub async fn breakage(&self) -> Result<Vec<Cohort>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(SNAPSHOT).execute(&mut *tx).await?;
        let rows = book_rows(&mut tx, &EntrySet::dated_before(Timestamp::MAX)).await?;
        let months: i64 = sqlx::query_scalar("SELECT expiry_months FROM program WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let expired: Vec<ExpiredRow> = sqlx::query_as(
            "SELECT e.code, t.occurred_at, e.recorded_at, e.amount FROM entries e
             LEFT JOIN transactions t ON t.id = e.transaction_id
             WHERE e.account = 'program:expired'",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Cohort::all(&rows, &cohorts_of_expired(expired, months as u32)))
    }
}
