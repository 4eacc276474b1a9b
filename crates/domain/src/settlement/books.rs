//! The programme's books for a period, in points: the ledger's entries grouped by
//! account, code and day, what each account is for settlement, the flows and
//! reconciliation of a period, and breakage by cohort.

use super::Period;
use crate::DomainError;
use crate::ids::{Id, PartnerId};
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The entries of one account with one code on one day: what the store reads. `sum` is
/// the signed sum of their amounts (a debit is negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookRow {
    pub account: String,
    pub code: String,
    pub day: Date,
    pub entries: u64,
    pub sum: i64,
}

/// Which of a partner's accounts a statement line is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// `partner:<id>:issued`: points the partner funded, billed at the issue price.
    Issued,
    /// `partner:<id>:redeemed`: points spent at the partner, paid back at the
    /// reimbursement rate.
    Redeemed,
    /// `program:funded:<id>`: points the operator funded at the partner's tills, shown
    /// and not billed.
    OperatorFunded,
}

/// What an account of the ledger is for settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Book {
    Partner(PartnerId, Side),
    /// `program:issued`: points the programme gave itself (events no partner sends,
    /// membership bonuses, referral rewards).
    ProgramIssued,
    /// `program:unrecovered`: points a return took back that the member had spent; the
    /// operator absorbs them.
    Unrecovered,
    Expired,
    Donations,
    /// `program:transfers`: points between two members, zero after every write.
    Transfers,
    ExchangeIn,
    /// `exchange:<id>:out` and `exchange:<id>:pending`.
    ExchangeOut,
    /// A member's or a shared wallet's account.
    Holder,
    Other,
}

impl Book {
    pub fn of(account: &str) -> Book {
        if account.starts_with("member:") || account.starts_with("wallet:") {
            return Book::Holder;
        }
        let partner = |id: &str| PartnerId::parse(id);
        if let Some(rest) = account.strip_prefix("partner:") {
            let side = match rest.rsplit_once(':') {
                Some((id, "issued")) => partner(id).map(|p| Book::Partner(p, Side::Issued)),
                Some((id, "redeemed")) => partner(id).map(|p| Book::Partner(p, Side::Redeemed)),
                _ => None,
            };
            return side.unwrap_or(Book::Other);
        }
        if let Some(id) = account.strip_prefix("program:funded:") {
            return partner(id).map_or(Book::Other, |p| Book::Partner(p, Side::OperatorFunded));
        }
        if account.starts_with("program:donations:") {
            return Book::Donations;
        }
        if let Some(rest) = account.strip_prefix("exchange:") {
            return match rest.rsplit_once(':').map(|(_, kind)| kind) {
                Some("in") => Book::ExchangeIn,
                Some("out" | "pending") => Book::ExchangeOut,
                _ => Book::Other,
            };
        }
        match account {
            "program:issued" => Book::ProgramIssued,
            "program:unrecovered" => Book::Unrecovered,
            "program:expired" => Book::Expired,
            "program:transfers" => Book::Transfers,
            _ => Book::Other,
        }
    }
}

/// Where the points of a set of entries came from and went, all counted as points
/// flowing to members (positive) or away from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Flows {
    /// Points partners funded, net of returns.
    pub issued_by_partners: i64,
    /// Points the operator funded: at partners' tills, and what the programme gave
    /// itself (events no partner sends, bonuses, referral rewards).
    pub issued_by_operator: i64,
    /// Points that came in from other programmes.
    pub exchanged_in: i64,
    /// Points returns took back that members had already spent: the operator absorbs
    /// them, and the partner is not billed for them.
    pub unrecovered: i64,
    /// Points spent at partners (at the till, in vouchers fulfilled), net of refunds.
    pub redeemed: i64,
    pub donated: i64,
    /// Points exchanged out to other programmes (confirmed or waiting for an answer).
    pub exchanged_out: i64,
    /// Points that expired (breakage), vouchers forfeited included.
    pub expired: i64,
    /// Points on their way between two members: 0 after every write.
    pub in_transit: i64,
    /// Any other account of the programme's side: 0 unless the ledger holds an account
    /// this version does not know.
    pub other: i64,
}

impl Flows {
    /// Adds a row of any account; holders' rows are ignored (the flows are what the
    /// programme's side sees).
    pub fn add(&mut self, row: &BookRow) -> Result<(), DomainError> {
        let book = Book::of(&row.account);
        // Funders' accounts go negative as they fund: their flow is the negated sum.
        let funds = matches!(
            book,
            Book::Partner(_, Side::Issued | Side::OperatorFunded)
                | Book::ProgramIssued
                | Book::ExchangeIn
                | Book::Unrecovered
        );
        let field = match book {
            Book::Partner(_, Side::Issued) => &mut self.issued_by_partners,
            Book::Partner(_, Side::OperatorFunded) | Book::ProgramIssued => &mut self.issued_by_operator,
            Book::ExchangeIn => &mut self.exchanged_in,
            Book::Unrecovered => &mut self.unrecovered,
            Book::Partner(_, Side::Redeemed) => &mut self.redeemed,
            Book::Donations => &mut self.donated,
            Book::ExchangeOut => &mut self.exchanged_out,
            Book::Expired => &mut self.expired,
            Book::Transfers => &mut self.in_transit,
            Book::Other => &mut self.other,
            Book::Holder => return Ok(()),
        };
        let flow = if funds { row.sum.checked_neg() } else { Some(row.sum) };
        *field = flow
            .and_then(|f| field.checked_add(f))
            .ok_or(DomainError::Invariant("a period's flows overflowed"))?;
        Ok(())
    }

    pub fn of(rows: &[BookRow]) -> Result<Flows, DomainError> {
        let mut flows = Flows::default();
        for row in rows {
            flows.add(row)?;
        }
        Ok(flows)
    }

    /// Points in: funded by partners and the operator, from other programmes, absorbed.
    pub fn issuance(&self) -> i64 {
        self.issued_by_partners
            .saturating_add(self.issued_by_operator)
            .saturating_add(self.exchanged_in)
            .saturating_add(self.unrecovered)
    }

    /// Points out: spent, given, exchanged out, expired, in transit, anywhere else.
    pub fn outflow(&self) -> i64 {
        self.redeemed
            .saturating_add(self.donated)
            .saturating_add(self.exchanged_out)
            .saturating_add(self.expired)
            .saturating_add(self.in_transit)
            .saturating_add(self.other)
    }
}

/// A period's points reconciled: what members held before, what came in and went out,
/// and what they held after, measured from their stored balances (not from the flows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reconciliation {
    /// Points members and shared wallets held after the previous period's entries.
    pub opening_outstanding: i64,
    pub flows: Flows,
    /// Points members and shared wallets held after this period's entries: their
    /// stored balances less what later entries changed.
    pub closing_outstanding: i64,
    /// `opening_outstanding + issuance − outflow − closing_outstanding`: 0 when the
    /// books reconcile, to the point.
    pub difference: i64,
}

impl Reconciliation {
    pub fn new(opening_outstanding: i64, flows: Flows, closing_outstanding: i64) -> Self {
        let difference = opening_outstanding
            .saturating_add(flows.issuance())
            .saturating_sub(flows.outflow())
            .saturating_sub(closing_outstanding);
        Reconciliation {
            opening_outstanding,
            flows,
            closing_outstanding,
            difference,
        }
    }
}

/// Breakage of one monthly cohort: of the points members earned that month, how many
/// expired unspent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cohort {
    #[schema(example = "2026-05")]
    pub month: String,
    /// Points funded that month (by partners and the operator, net of returns).
    pub issued: i64,
    /// Points of that month that expired.
    pub expired: i64,
    /// `expired ÷ issued`, to four decimals; none when nothing was issued.
    #[schema(value_type = Option<String>, example = "0.0125")]
    pub breakage: Option<Decimal>,
}

impl Cohort {
    /// The cohorts from every funding row (by the day it is dated) and the expired
    /// points by the month they were earned.
    pub fn all(rows: &[BookRow], expired: &[(Period, i64)]) -> Vec<Cohort> {
        let mut by: std::collections::BTreeMap<Period, (i64, i64)> = std::collections::BTreeMap::new();
        for r in rows {
            let funds = matches!(
                Book::of(&r.account),
                Book::Partner(_, Side::Issued | Side::OperatorFunded) | Book::ProgramIssued | Book::ExchangeIn
            );
            if funds {
                let slot = by.entry(Period::of_day(r.day)).or_default();
                slot.0 = slot.0.saturating_sub(r.sum);
            }
        }
        for (p, points) in expired {
            let slot = by.entry(*p).or_default();
            slot.1 = slot.1.saturating_add(*points);
        }
        by.into_iter()
            .map(|(p, (issued, expired))| Cohort {
                month: p.to_string(),
                issued,
                expired,
                breakage: (issued > 0).then(|| (Decimal::from(expired) / Decimal::from(issued)).round_dp(4)),
            })
            .collect()
    }
}
