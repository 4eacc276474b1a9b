//! What the API answers for a purchase or a return. The store saves this exact answer
//! with the transaction, so a retried request gets the first response byte for byte.

use crate::breakdown::BreakdownLine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Money as it appears in JSON: integer minor units and an ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MoneyView {
    /// Minor units (cents): 1299 is EUR 12.99.
    pub amount: i64,
    #[schema(example = "EUR")]
    pub currency: String,
}

impl From<crate::money::Money> for MoneyView {
    fn from(m: crate::money::Money) -> Self {
        MoneyView {
            amount: m.amount,
            currency: m.currency.code().to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceView {
    /// Points the member can spend now.
    pub available: i64,
    /// Points waiting for the partner's return window to pass.
    pub pending: i64,
}

/// One line of the explanation of a transaction's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BreakdownItem {
    /// `base` for points per amount spent; a rule's id otherwise.
    pub rule: String,
    /// The version of the rule that applied (absent for `base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    pub points: i64,
    /// The explanation shown to the member and the cashier.
    pub reason: String,
    /// Who pays for the line's points (absent on receipts written before funding was
    /// recorded: their points were all the partner's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<FundingView>,
}

/// The points of a line each funder pays for: the selling partner, and the operator
/// (programme-wide rules, tier and plan bonuses, its share of co-funded rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FundingView {
    pub partner: i64,
    pub operator: i64,
}

impl FundingView {
    /// `points` of which `operator` are the operator's.
    pub fn split(points: i64, operator: i64) -> FundingView {
        FundingView {
            partner: points - operator,
            operator,
        }
    }
}

impl From<BreakdownLine> for BreakdownItem {
    fn from(b: BreakdownLine) -> Self {
        BreakdownItem {
            funding: Some(FundingView::split(b.points, b.operator_points())),
            rule: b.rule,
            version: b.version,
            points: b.points,
            reason: b.reason,
        }
    }
}

/// The answer to a purchase (and to its quote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PurchaseReceipt {
    /// The transaction id (empty in a quote).
    pub id: String,
    pub member_id: String,
    pub partner_id: String,
    pub external_id: String,
    pub location_id: Option<String>,
    /// RFC 3339 time of the sale at the till.
    pub occurred_at: String,
    pub total: MoneyView,
    pub points_earned: i64,
    pub points_redeemed: i64,
    /// Value of the redeemed points in programme currency.
    pub redeemed_value: MoneyView,
    /// The same value in the purchase currency: what the till takes off the bill.
    pub redeemed_value_local: MoneyView,
    /// `posted` (earned points may still be pending, see `balance`), or `quote`.
    pub status: String,
    pub breakdown: Vec<BreakdownItem>,
    /// The member's balance after this transaction.
    pub balance: BalanceView,
    /// Present when the member's tier changed with this sale: an upgrade it reached (the
    /// new level's multiplier applies from the next sale), or a review that fell due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_change: Option<crate::tiers::TierChangeView>,
    /// Present when a shared wallet took part: the points it received, the points it
    /// paid, and its balance after (`balance` above stays the member's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<SaleWallet>,
}

/// A shared wallet's part in a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SaleWallet {
    /// The shared wallet (`wal_…`).
    pub id: String,
    /// Points of this sale earned into the wallet (the member has `earn_into`).
    pub points_earned: i64,
    /// Points of this sale paid from the wallet.
    pub points_redeemed: i64,
    /// The wallet's balance after the sale.
    pub balance: BalanceView,
}

/// A shared wallet's part in a return: the wallet that paid is refunded, the wallet
/// that earned gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReturnWallet {
    pub id: String,
    /// Earned points taken back from the wallet.
    pub points_reversed: i64,
    /// Spent points given back to the wallet.
    pub points_refunded: i64,
    pub balance: BalanceView,
}

/// The answer to a return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReturnReceipt {
    pub id: String,
    pub transaction_id: String,
    pub external_id: String,
    pub amount: MoneyView,
    /// Earned points taken back from the member.
    pub points_reversed: i64,
    /// Points spent on the purchase given back to the member.
    pub points_refunded: i64,
    /// Points that should have been taken back but the member had already spent.
    pub points_unrecovered: i64,
    /// The member's own balance after the return.
    pub balance: BalanceView,
    /// Present when the purchase earned into or was paid from a shared wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<ReturnWallet>,
}

/// The answer to an engagement event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventReceipt {
    pub id: String,
    /// The id the sender gave the event: the same id never earns twice.
    pub external_id: String,
    pub member_id: String,
    pub partner_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: String,
    pub points_earned: i64,
    /// Which rules gave the points, and why.
    pub breakdown: Vec<BreakdownItem>,
    pub balance: BalanceView,
    /// Present when the event moved the member's tier: where the operator lets events
    /// qualify (`events_qualify`), an upgrade it reached, or a review that fell due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_change: Option<crate::tiers::TierChangeView>,
}
