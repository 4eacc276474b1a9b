//! A partner's statement for one period: the points it funded and the points spent at
//! it, priced, converted to its currency at the period's rate, with the fees and the net.

use super::books::{Book, BookRow, Side};
use super::{Period, PriceBook};
use crate::DomainError;
use crate::ids::PartnerId;
use crate::money::Currency;
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An amount that may be negative (a net, a credit): integer minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedMoney {
    pub amount: i64,
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
}

impl SignedMoney {
    pub fn new(amount: i64, currency: Currency) -> Self {
        SignedMoney { amount, currency }
    }

    /// The amount in whole units, exactly (−128165 EUR cents → −1281.65).
    pub fn to_decimal(&self) -> Decimal {
        crate::money::in_units(self.amount, self.currency)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatementStatus {
    /// The period is open: the statement changes as entries arrive, at today's FX rate.
    Open,
    /// The period is closed: the statement is stored and never changes.
    Closed,
}

/// Who pays the net.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Payer {
    /// The partner pays the operator.
    Partner,
    /// The operator pays the partner.
    Operator,
    /// Nobody: the net is zero.
    Nobody,
}

/// The entries of one account, code and day, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Line {
    #[schema(value_type = String, format = Date, example = "2026-11-03")]
    pub day: Date,
    pub side: Side,
    /// The ledger's entry code: `earn`, `return_reversal`, `redeem`, `reward_redeem`, ….
    pub code: String,
    /// How many ledger entries the line adds up.
    pub entries: u64,
    /// Points as the side counts them: issued (or spent) positive, taken back negative.
    pub points: i64,
    /// The price per point in programme currency on the line's day: the issue price
    /// for `issued`, the reimbursement rate for `redeemed`, none for `operator_funded`.
    #[schema(value_type = Option<String>, example = "0.008")]
    pub price: Option<Decimal>,
    /// `points × price × fx_rate`, exact, in the partner's currency; none for
    /// `operator_funded`. The statement rounds each side's sum once.
    #[schema(value_type = Option<String>, example = "12.4")]
    pub amount: Option<Decimal>,
    /// The day lies before the period: an entry dated in a period that was closed when
    /// it was recorded, settled here.
    pub late: bool,
}

/// One side of a statement: its entries, points and amount (rounded once, to the
/// currency's minor unit, half away from zero).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Section {
    pub entries: u64,
    pub points: i64,
    /// Minor units of the statement's currency; 0 for `operator_funded`.
    pub amount: i64,
}

/// The same figures in programme currency, before conversion: what the operator's
/// netting view adds up across partners. Minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProgramAmounts {
    pub issued: i64,
    pub redeemed: i64,
    pub fees: i64,
    pub net: i64,
}

/// A partner's statement for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Statement {
    #[schema(example = "2026-11")]
    pub period: String,
    #[schema(value_type = String)]
    pub partner_id: PartnerId,
    pub status: StatementStatus,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
    /// The partner's currency: every amount of the statement but `program` is in it.
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
    #[schema(value_type = String, example = "EUR")]
    pub program_currency: Currency,
    /// Units of `currency` per unit of programme currency: the period's rate (stated
    /// when it was closed; today's while it is open). 1 when they are the same.
    #[schema(value_type = String, example = "25.2")]
    pub fx_rate: Decimal,
    /// Points the partner funded, net of returns, at the issue price: the partner owes it.
    pub issued: Section,
    /// Points spent at the partner, net of refunds, at the reimbursement rate: the
    /// operator owes it.
    pub redeemed: Section,
    /// Points the operator funded at the partner's tills: not billed.
    pub operator_funded: Section,
    /// The period's fee, at the prices of its first day.
    pub monthly_fee: SignedMoney,
    /// `redemption_fee_percent` of what redemptions are paid back.
    pub redemption_fee: SignedMoney,
    /// `issued + monthly_fee + redemption_fee − redeemed`: positive, the partner pays
    /// the operator; negative, the operator pays the partner.
    pub net: SignedMoney,
    pub payer: Payer,
    /// Entries dated in an earlier period, settled in this one.
    pub late_entries: u64,
    pub program: ProgramAmounts,
    /// Per day, side and code, in that order.
    pub lines: Vec<Line>,
}

/// What a statement is built from besides its rows.
pub struct StatementInput<'a> {
    pub period: Period,
    pub partner_id: &'a PartnerId,
    pub status: StatementStatus,
    pub closed_at: Option<Timestamp>,
    pub currency: Currency,
    pub program_currency: Currency,
    pub fx_rate: Decimal,
    pub prices: &'a PriceBook,
    /// Whether a month before this one was closed: only then is an entry dated before
    /// the month late (the first month closed takes earlier entries as its own).
    pub after_a_close: bool,
}

fn too_large() -> DomainError {
    DomainError::LimitExceeded {
        code: "amount_too_large",
        message: "a statement's amount is past what Tally can express".into(),
    }
}

/// `amount` (in major units) to integer minor units of `currency`, half away from zero.
pub(crate) fn to_minor(amount: Decimal, currency: Currency) -> i64 {
    try_minor(amount, currency).unwrap_or(if amount.is_sign_negative() { i64::MIN } else { i64::MAX })
}

fn try_minor(amount: Decimal, currency: Currency) -> Result<i64, DomainError> {
    use rust_decimal::prelude::ToPrimitive;
    amount
        .checked_mul(Decimal::from(10i64.pow(currency.exponent())))
        .map(|d| d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero))
        .and_then(|d| d.to_i64())
        .ok_or_else(too_large)
}

fn mul(a: Decimal, b: Decimal) -> Result<Decimal, DomainError> {
    a.checked_mul(b).ok_or_else(too_large)
}

fn add(a: Decimal, b: Decimal) -> Result<Decimal, DomainError> {
    a.checked_add(b).ok_or_else(too_large)
}

impl Statement {
    /// The statement of `input.partner_id` from the period's rows (rows of other
    /// accounts are left aside).
    pub fn build(input: StatementInput<'_>, rows: &[BookRow]) -> Result<Statement, DomainError> {
        let StatementInput {
            period,
            partner_id,
            status,
            closed_at,
            currency,
            program_currency,
            fx_rate,
            prices,
            after_a_close,
        } = input;
        // (day, side, code) → (entries, signed sum): rows of one key merge.
        let mut merged: BTreeMap<(Date, Side, String), (u64, i64)> = BTreeMap::new();
        for row in rows {
            let Book::Partner(p, side) = Book::of(&row.account) else {
                continue;
            };
            if &p != partner_id {
                continue;
            }
            let slot = merged.entry((row.day, side, row.code.clone())).or_default();
            slot.0 += row.entries;
            slot.1 = slot.1.checked_add(row.sum).ok_or_else(too_large)?;
        }
        let (mut issued, mut redeemed, mut funded) = (Section::default(), Section::default(), Section::default());
        // Exact sums in programme currency; converted and rounded once per side.
        let (mut issued_value, mut redeemed_value, mut fee_value) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        let mut late_entries = 0u64;
        let mut lines = Vec::with_capacity(merged.len());
        for ((day, side, code), (entries, sum)) in merged {
            // Funders' accounts go negative as they fund; redeemed grows as members spend.
            let points = match side {
                Side::Issued | Side::OperatorFunded => sum.checked_neg().ok_or_else(too_large)?,
                Side::Redeemed => sum,
            };
            let on = prices.on(partner_id, day);
            let (section, price) = match side {
                Side::Issued => (&mut issued, Some(on.issue_price)),
                Side::Redeemed => (&mut redeemed, Some(on.reimbursement_rate)),
                Side::OperatorFunded => (&mut funded, None),
            };
            section.entries += entries;
            section.points = section.points.checked_add(points).ok_or_else(too_large)?;
            let value = price.map(|p| mul(Decimal::from(points), p)).transpose()?;
            match (side, value) {
                (Side::Issued, Some(v)) => issued_value = add(issued_value, v)?,
                (Side::Redeemed, Some(v)) => {
                    redeemed_value = add(redeemed_value, v)?;
                    let fee = mul(v, on.redemption_fee_percent)? / Decimal::ONE_HUNDRED;
                    fee_value = add(fee_value, fee)?;
                }
                _ => {}
            }
            let late = after_a_close && day < period.first_day();
            if late {
                late_entries += entries;
            }
            lines.push(Line {
                day,
                side,
                code,
                entries,
                points,
                price,
                amount: value.map(|v| mul(v, fx_rate).map(|a| a.normalize())).transpose()?,
                late,
            });
        }
        let monthly = prices.on(partner_id, period.first_day()).monthly_fee;
        let local = |v: Decimal| mul(v, fx_rate).and_then(|a| try_minor(a, currency));
        issued.amount = local(issued_value)?;
        redeemed.amount = local(redeemed_value)?;
        let monthly_fee = local(monthly)?;
        let redemption_fee = local(fee_value)?;
        let net = [issued.amount, monthly_fee, redemption_fee]
            .into_iter()
            .try_fold(0i64, i64::checked_add)
            .and_then(|n| n.checked_sub(redeemed.amount))
            .ok_or_else(too_large)?;
        let home = |v: Decimal| try_minor(v, program_currency);
        let mut program = ProgramAmounts {
            issued: home(issued_value)?,
            redeemed: home(redeemed_value)?,
            fees: home(monthly)?.checked_add(home(fee_value)?).ok_or_else(too_large)?,
            net: 0,
        };
        program.net = program
            .issued
            .checked_add(program.fees)
            .and_then(|n| n.checked_sub(program.redeemed))
            .ok_or_else(too_large)?;
        Ok(Statement {
            period: period.to_string(),
            partner_id: partner_id.clone(),
            status,
            closed_at,
            currency,
            program_currency,
            fx_rate: fx_rate.normalize(),
            issued,
            redeemed,
            operator_funded: funded,
            monthly_fee: SignedMoney::new(monthly_fee, currency),
            redemption_fee: SignedMoney::new(redemption_fee, currency),
            net: SignedMoney::new(net, currency),
            payer: match net {
                n if n > 0 => Payer::Partner,
                n if n < 0 => Payer::Operator,
                _ => Payer::Nobody,
            },
            late_entries,
            program,
            lines,
        })
    }

    /// The statement as CSV: a header, one row per line, then the totals.
    pub fn to_csv(&self) -> String {
        let mut out =
            String::from("period,partner_id,currency,fx_rate,day,side,code,entries,points,price,amount,late\n");
        let side = |s: Side| match s {
            Side::Issued => "issued",
            Side::Redeemed => "redeemed",
            Side::OperatorFunded => "operator_funded",
        };
        let opt = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
        let head = format!(
            "{},{},{},{}",
            self.period,
            self.partner_id.as_str(),
            self.currency,
            self.fx_rate
        );
        for l in &self.lines {
            out.push_str(&format!(
                "{head},{},{},{},{},{},{},{},{}\n",
                l.day,
                side(l.side),
                l.code,
                l.entries,
                l.points,
                opt(l.price),
                opt(l.amount),
                l.late
            ));
        }
        let major = |minor: i64| crate::money::in_units(minor, self.currency).to_string();
        let total = |name: &str, entries: u64, points: i64, amount: i64| {
            format!("{head},total,{name},,{entries},{points},,{},\n", major(amount))
        };
        out.push_str(&total(
            "issued",
            self.issued.entries,
            self.issued.points,
            self.issued.amount,
        ));
        out.push_str(&total(
            "redeemed",
            self.redeemed.entries,
            self.redeemed.points,
            self.redeemed.amount,
        ));
        out.push_str(&total(
            "operator_funded",
            self.operator_funded.entries,
            self.operator_funded.points,
            0,
        ));
        out.push_str(&total("monthly_fee", 0, 0, self.monthly_fee.amount));
        out.push_str(&total("redemption_fee", 0, 0, self.redemption_fee.amount));
        out.push_str(&total("net", 0, 0, self.net.amount));
        out
    }
}
