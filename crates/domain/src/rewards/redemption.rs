//! A member's redemption of a reward: its voucher (or donation) and where it stands.

use super::RewardKind;
use crate::ids::{MemberId, PartnerId, RedemptionId, RewardId};
use crate::plan::TakenLot;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a redemption stands. Only `issued` changes: to `used` at the partner, to
/// `cancelled` (points and stock back), or at its expiry to `expired` (points back) or
/// `forfeited` (points kept, where the reward says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedemptionStatus {
    /// A voucher waiting to be used; its points are reserved.
    Issued,
    Used,
    Cancelled,
    Expired,
    Forfeited,
    /// A donation: posted at once.
    Donated,
}

impl RedemptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RedemptionStatus::Issued => "issued",
            RedemptionStatus::Used => "used",
            RedemptionStatus::Cancelled => "cancelled",
            RedemptionStatus::Expired => "expired",
            RedemptionStatus::Forfeited => "forfeited",
            RedemptionStatus::Donated => "donated",
        }
    }

    pub fn parse(s: &str) -> Option<RedemptionStatus> {
        Some(match s {
            "issued" => RedemptionStatus::Issued,
            "used" => RedemptionStatus::Used,
            "cancelled" => RedemptionStatus::Cancelled,
            "expired" => RedemptionStatus::Expired,
            "forfeited" => RedemptionStatus::Forfeited,
            "donated" => RedemptionStatus::Donated,
            _ => return None,
        })
    }

    /// Whether it counts toward a member's limit: it was not given back.
    pub fn counts(self) -> bool {
        !Self::GIVEN_BACK.contains(&self)
    }

    /// The statuses of redemptions whose points came back: they do not count toward a
    /// limit (the stores count with this list too).
    pub const GIVEN_BACK: [RedemptionStatus; 2] = [RedemptionStatus::Cancelled, RedemptionStatus::Expired];
}

/// A stored redemption, as the decisions about its voucher need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub id: RedemptionId,
    pub member_id: MemberId,
    pub reward_id: RewardId,
    pub kind: RewardKind,
    /// The reward's English name when it was redeemed.
    pub reward_name: String,
    pub partner_id: Option<PartnerId>,
    pub charity: Option<String>,
    pub points: i64,
    pub status: RedemptionStatus,
    pub created_at: Timestamp,
    /// When an unused voucher expires (none for a donation).
    pub expires_at: Option<Timestamp>,
    /// Whether an expired voucher forfeits its points (the reward's setting when it was
    /// redeemed).
    pub forfeit_on_expiry: bool,
    /// The lots its points came from, to give them back as they were.
    pub taken: Vec<TakenLot>,
    /// Whether it took a unit of the reward's stock (given back with it).
    pub took_stock: bool,
    pub code_hint: Option<String>,
    /// When it was used, cancelled or expired.
    pub closed_at: Option<Timestamp>,
    /// Where a used voucher was used.
    pub used_location_id: Option<String>,
}

/// A redemption as the API shows it; the answer to redeeming also carries the
/// member's balance after it, and (that once) the voucher's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RedemptionView {
    pub id: String,
    pub member_id: String,
    pub reward_id: String,
    pub kind: RewardKind,
    /// The reward's English name when it was redeemed.
    pub reward_name: String,
    pub points: i64,
    pub status: RedemptionStatus,
    /// The partner that fulfils it (absent for a donation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charity: Option<String>,
    /// The voucher's code, as `ABCD-EFGH-JKMN-PQRS-T`: only in the answer that issued it
    /// (Tally keeps only its hash). `POST /v1/redemptions/{id}/code` issues a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The code's last four characters before its check character, to tell vouchers
    /// apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hint: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When it was used, cancelled or expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_location_id: Option<String>,
    /// The member's balance after redeeming (in the answer to a redemption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<crate::receipt::BalanceView>,
}

impl From<&Redemption> for RedemptionView {
    fn from(r: &Redemption) -> Self {
        RedemptionView {
            id: r.id.to_string(),
            member_id: r.member_id.to_string(),
            reward_id: r.reward_id.to_string(),
            kind: r.kind,
            reward_name: r.reward_name.clone(),
            points: r.points,
            status: r.status,
            partner_id: r.partner_id.as_ref().map(|p| p.to_string()),
            charity: r.charity.clone(),
            code: None,
            code_hint: r.code_hint.clone(),
            created_at: r.created_at.to_string(),
            expires_at: r.expires_at.map(|t| t.to_string()),
            closed_at: r.closed_at.map(|t| t.to_string()),
            used_location_id: r.used_location_id.clone(),
            balance: None,
        }
    }
}
