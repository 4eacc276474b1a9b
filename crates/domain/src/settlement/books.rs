//! The programme's books for a period: the ledger's entries grouped by account, code and
//! day, what each account is for settlement, the reconciliation of a period, the
//! operator's netting view and the liability.

use super::statement::{Payer, SignedMoney, Statement};
use super::{Period, PriceBook};
use crate::DomainError;
use crate::ids::{Id, PartnerId};
use crate::money::Currency;
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
        let field = match Book::of(&row.account) {
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
        // Funders' accounts go negative as they fund: their flow is the negated sum.
        let funds = matches!(
            Book::of(&row.account),
            Book::Partner(_, Side::Issued | Side::OperatorFunded)
                | Book::ProgramIssued
                | Book::ExchangeIn
                | Book::Unrecovered
        );
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

/// One partner's line in the operator's netting view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NettingLine {
    #[schema(value_type = String)]
    pub partner_id: PartnerId,
    /// The statement's net in the partner's currency: positive, the partner pays.
    pub net: SignedMoney,
    /// The same net in programme currency, before conversion.
    pub net_program: SignedMoney,
    pub payer: Payer,
    /// The statement's content hash once the period is closed.
    pub content_hash: Option<String>,
}

/// A period seen by the operator: what each partner owes or is owed, the operator's
/// margin, and the reconciliation of the period's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Netting {
    pub period: String,
    pub status: super::StatementStatus,
    pub program_currency: String,
    pub partners: Vec<NettingLine>,
    /// What partners pay for the points they funded, in programme currency.
    pub billed_issuance: SignedMoney,
    /// What the operator pays back for redemptions.
    pub reimbursed: SignedMoney,
    pub fees: SignedMoney,
    /// `billed_issuance + fees − reimbursed`: the operator's margin on the period's
    /// cash.
    pub margin: SignedMoney,
    /// Points that expired in the period: never to be paid back.
    pub breakage_points: i64,
    /// Their value at the programme's reimbursement rate on the period's last day: the
    /// liability the period released.
    pub breakage_value: SignedMoney,
    pub reconciliation: Reconciliation,
}

impl Netting {
    /// The netting view of `period` from its statements (one per partner) and its
    /// reconciliation.
    pub fn new(
        period: Period,
        status: super::StatementStatus,
        program_currency: Currency,
        statements: &[(Statement, Option<String>)],
        prices: &PriceBook,
        reconciliation: Reconciliation,
    ) -> Result<Netting, DomainError> {
        let money = |minor: i64| SignedMoney::new(minor, program_currency);
        let (mut billed, mut reimbursed, mut fees) = (0i64, 0i64, 0i64);
        let mut partners = Vec::new();
        for (s, hash) in statements {
            let overflow = DomainError::Invariant("a netting sum overflowed");
            billed = billed.checked_add(s.program.issued).ok_or(overflow.clone())?;
            reimbursed = reimbursed.checked_add(s.program.redeemed).ok_or(overflow.clone())?;
            fees = fees.checked_add(s.program.fees).ok_or(overflow)?;
            partners.push(NettingLine {
                partner_id: s.partner_id.clone(),
                net: s.net.clone(),
                net_program: money(s.program.net),
                payer: s.payer,
                content_hash: hash.clone(),
            });
        }
        let margin = billed
            .checked_add(fees)
            .and_then(|m| m.checked_sub(reimbursed))
            .ok_or(DomainError::Invariant("a netting sum overflowed"))?;
        let breakage_points = reconciliation.flows.expired;
        let last_day = period
            .end()
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap_or(period.start());
        let rate = prices.programme_on(super::day_of(last_day)).reimbursement_rate;
        let breakage_value = super::statement::to_minor(Decimal::from(breakage_points) * rate, program_currency);
        Ok(Netting {
            period: period.to_string(),
            status,
            program_currency: program_currency.code().to_string(),
            partners,
            billed_issuance: money(billed),
            reimbursed: money(reimbursed),
            fees: money(fees),
            margin: money(margin),
            breakage_points,
            breakage_value: money(breakage_value),
            reconciliation,
        })
    }
}

/// One funder's part of the programme's liability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LiabilityLine {
    /// A partner's id, or `operator`.
    pub funder: String,
    /// Points it funded, net of returns, up to the day.
    pub funded: i64,
    /// Its share of the outstanding points, in proportion to what it funded.
    pub outstanding: i64,
    /// Their value at the reimbursement rate.
    pub value: SignedMoney,
}

/// What the programme owes members at the end of a day: the points they hold, valued
/// at the programme's reimbursement rate, split among funders in proportion to what
/// each funded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Liability {
    #[schema(value_type = String, format = Date)]
    pub at: Date,
    pub outstanding_points: i64,
    #[schema(value_type = String)]
    pub reimbursement_rate: Decimal,
    pub value: SignedMoney,
    pub by_funder: Vec<LiabilityLine>,
}

impl Liability {
    /// `funded`: each funder's points funded up to the day (`None` for the operator,
    /// points from other programmes counted with it).
    pub fn new(
        at: Date,
        outstanding_points: i64,
        funded: Vec<(Option<PartnerId>, i64)>,
        prices: &PriceBook,
        currency: Currency,
    ) -> Liability {
        let rate = prices.programme_on(at).reimbursement_rate;
        let total: i128 = funded.iter().map(|(_, f)| i128::from((*f).max(0))).sum();
        let value = |points: i64| {
            SignedMoney::new(
                super::statement::to_minor(Decimal::from(points) * rate, currency),
                currency,
            )
        };
        // Largest remainder: the shares add up to the outstanding points exactly. A
        // negative outstanding (a sale paid with points dated before the points it
        // spent) is split as its size, each share taking its sign.
        let sign = if outstanding_points < 0 { -1 } else { 1 };
        let size = outstanding_points.saturating_abs();
        let mut shares: Vec<(usize, i64, i128)> = funded
            .iter()
            .enumerate()
            .map(|(i, (_, f))| {
                let p = i128::from(size) * i128::from((*f).max(0));
                match total {
                    0 => (i, 0, 0),
                    t => (i, (p / t) as i64, p % t),
                }
            })
            .collect();
        let mut left = size - shares.iter().map(|s| s.1).sum::<i64>();
        shares.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        for s in shares.iter_mut() {
            if left <= 0 || total == 0 {
                break;
            }
            s.1 += 1;
            left -= 1;
        }
        shares.sort_by_key(|s| s.0);
        let by_funder = funded
            .iter()
            .zip(shares)
            .map(|((p, f), (_, share, _))| LiabilityLine {
                funder: p
                    .as_ref()
                    .map_or_else(|| "operator".to_string(), |p| p.as_str().to_string()),
                funded: *f,
                outstanding: sign * share,
                value: value(sign * share),
            })
            .collect();
        Liability {
            at,
            outstanding_points,
            reimbursement_rate: rate,
            value: value(outstanding_points),
            by_funder,
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
