//! Shared wallets: the pooled points of a household (a family, friends) or a business.
//!
//! A shared wallet holds points of its own: its own ledger accounts
//! (`wallet:<id>:available`, `wallet:<id>:pending`), balances and lots, which mature and
//! expire exactly as a member's do (the plans run on a [`crate::plan::MemberState`]
//! whose `wallet` is set; closing a wallet is decided in [`crate::decide::plan_close`]).
//! Members belong to it with two rights (who joins, leaves and with which rights is
//! decided in [`roster`]): `earn_into` (what they earn at the till goes to the wallet)
//! and `spend` (they may pay with its points). Every entry on a wallet's accounts
//! names the member who earned or spent it, so a statement per member comes from the
//! ledger.
//!
//! A member belongs to at most one household and to any number of businesses. A sale
//! uses one shared wallet at most: the one the till names, or the member's default.

use crate::DomainError;
use crate::ids::WalletId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod roster;

/// The two kinds of shared wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WalletKind {
    /// A family or friends: an owner invites members by code; one per member.
    Household,
    /// A company with contact persons; a member may be a contact of several.
    Business,
}

impl WalletKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WalletKind::Household => "household",
            WalletKind::Business => "business",
        }
    }

    pub fn parse(s: &str) -> Option<WalletKind> {
        match s {
            "household" => Some(WalletKind::Household),
            "business" => Some(WalletKind::Business),
            _ => None,
        }
    }
}

/// What a member may do with a shared wallet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rights {
    /// The member's points earned at the till go to the wallet.
    pub earn_into: bool,
    /// The member may pay with the wallet's points at the till.
    pub spend: bool,
}

/// A member's place in a shared wallet, as a sale reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletLink {
    pub wallet_id: WalletId,
    pub kind: WalletKind,
    pub rights: Rights,
}

/// Where a sale's points go to and come from: the shared wallet, or the member's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaleRoute {
    pub earns_into_wallet: bool,
    pub pays_from_wallet: bool,
}

impl SaleRoute {
    pub fn uses_wallet(self) -> bool {
        self.earns_into_wallet || self.pays_from_wallet
    }
}

/// Routes a sale: with a shared wallet in play (named by the till, or the member's
/// default), the member's earnings go to it if they have `earn_into`, and points to
/// redeem come from it, which needs `spend`. `named` is the wallet the till named;
/// `link` the member's place in it (or in their default wallet), as read.
pub fn route_sale(
    named: Option<&WalletId>,
    link: Option<&WalletLink>,
    redeem_points: i64,
) -> Result<SaleRoute, DomainError> {
    if let Some(named) = named
        && link.is_none_or(|l| &l.wallet_id != named)
    {
        return Err(DomainError::NotInWallet(named.to_string()));
    }
    let Some(link) = link else {
        return Ok(SaleRoute::default());
    };
    if redeem_points > 0 && !link.rights.spend {
        return Err(DomainError::NotAllowedToSpend(link.wallet_id.to_string()));
    }
    Ok(SaleRoute {
        earns_into_wallet: link.rights.earn_into,
        pays_from_wallet: redeem_points > 0,
    })
}

pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::WalletConflict {
        code,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests;
