//! Earned points as lots: each lot expires on its own date and may wait to mature.

use jiff::Timestamp;

/// Where a lot's points came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LotOrigin {
    /// Earned on a purchase.
    Earn,
    /// Spent points given back by a return.
    Refund,
    /// Points a closing shared wallet passed to a member (the lot keeps its dates).
    Split,
    /// A voucher's points given back when it was cancelled or expired unused (the lot
    /// keeps the dates of the points it took).
    Release,
    /// Points another member sent (the lot keeps the dates they had with the sender).
    Transfer,
    /// Another programme's units credited as points.
    Exchange,
}

impl LotOrigin {
    pub fn as_str(&self) -> &'static str {
        match self {
            LotOrigin::Earn => "earn",
            LotOrigin::Refund => "refund",
            LotOrigin::Split => "split",
            LotOrigin::Release => "release",
            LotOrigin::Transfer => "transfer",
            LotOrigin::Exchange => "exchange",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "refund" => LotOrigin::Refund,
            "split" => LotOrigin::Split,
            "release" => LotOrigin::Release,
            "transfer" => LotOrigin::Transfer,
            "exchange" => LotOrigin::Exchange,
            _ => LotOrigin::Earn,
        }
    }
}

/// Points a member holds from one origin. `id` is `None` until the store saves the lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    pub id: Option<i64>,
    pub remaining: i64,
    pub earned_at: Timestamp,
    pub expires_at: Timestamp,
    /// `Some` while the points are pending: they may be spent from this time on.
    pub matures_at: Option<Timestamp>,
    pub transaction_id: Option<String>,
    pub origin: LotOrigin,
}

impl Lot {
    pub fn is_pending(&self) -> bool {
        self.matures_at.is_some()
    }

    /// The next moment this lot needs the settler: maturity if pending, else expiry.
    pub fn due_at(&self) -> Option<Timestamp> {
        if self.remaining == 0 {
            None
        } else {
            Some(self.matures_at.unwrap_or(self.expires_at))
        }
    }
}

/// Indexes of spendable lots in the order they are consumed: soonest expiry first, then
/// oldest. Pending and empty lots are skipped.
pub fn spend_order(lots: &[Lot]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..lots.len())
        .filter(|&i| !lots[i].is_pending() && lots[i].remaining > 0)
        .collect();
    idx.sort_by_key(|&i| (lots[i].expires_at, lots[i].earned_at, lots[i].id.unwrap_or(i64::MAX)));
    idx
}
