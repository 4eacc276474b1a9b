//! What the operator sees of a period in money: each partner's net and the margin
//! (the netting view, from the statements), and the liability, valued and split among
//! funders.

use super::books::Reconciliation;
use super::statement::{Payer, SignedMoney, Statement, to_minor};
use super::{Period, PriceBook, StatementStatus};
use crate::DomainError;
use crate::ids::PartnerId;
use crate::money::Currency;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    pub status: StatementStatus,
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
    /// reconciliation. The lines' `content_hash` is left for a close to fill.
    pub fn new(
        period: Period,
        status: StatementStatus,
        program_currency: Currency,
        statements: &[Statement],
        prices: &PriceBook,
        reconciliation: Reconciliation,
    ) -> Result<Netting, DomainError> {
        let money = |minor: i64| SignedMoney::new(minor, program_currency);
        let (mut billed, mut reimbursed, mut fees) = (0i64, 0i64, 0i64);
        let mut partners = Vec::new();
        for s in statements {
            let overflow = DomainError::Invariant("a netting sum overflowed");
            billed = billed.checked_add(s.program.issued).ok_or(overflow.clone())?;
            reimbursed = reimbursed.checked_add(s.program.redeemed).ok_or(overflow.clone())?;
            fees = fees.checked_add(s.program.fees).ok_or(overflow)?;
            partners.push(NettingLine {
                partner_id: s.partner_id.clone(),
                net: s.net.clone(),
                net_program: money(s.program.net),
                payer: s.payer,
                content_hash: None,
            });
        }
        let margin = billed
            .checked_add(fees)
            .and_then(|m| m.checked_sub(reimbursed))
            .ok_or(DomainError::Invariant("a netting sum overflowed"))?;
        let breakage_points = reconciliation.flows.expired;
        let last_day = period.end_day().yesterday().unwrap_or(period.first_day());
        let rate = prices.programme_on(last_day).reimbursement_rate;
        let breakage_value = to_minor(Decimal::from(breakage_points) * rate, program_currency);
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
        let value = |points: i64| SignedMoney::new(to_minor(Decimal::from(points) * rate, currency), currency);
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
