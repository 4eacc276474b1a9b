//! Plans: what a purchase, a return or the passing of time does to one member's points.
//!
//! A planner takes the member's current [`MemberState`] and returns a [`Plan`]: the
//! transfers to post, the lot changes to save, the activity to show, and the balances
//! after. The store writes a plan in one database transaction, with the member's row
//! locked (or in the single SQLite writer), so plans never race each other.

use crate::DomainError;
use crate::earning::{ProgramTerms, Valuation, proportion_half_up};
use crate::ledger::{Account, EntryCode, Transfer};
use crate::lots::{Lot, LotOrigin, spend_order};
use crate::money::Money;
use crate::time::{add_days, add_months};
use jiff::Timestamp;
use rust_decimal::Decimal;

/// A member's balances as stored on the member's own row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Balance {
    pub available: i64,
    pub pending: i64,
    pub lifetime_earned: i64,
}

/// Everything a planner needs to know about a member: balances and open lots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberState {
    pub member_id: String,
    pub balance: Balance,
    /// Lots with points left (the store may pass empty ones too; they are ignored).
    pub lots: Vec<Lot>,
}

/// A saved lot whose remaining points or pending state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotUpdate {
    pub id: i64,
    pub remaining: i64,
    pub matures_at: Option<Timestamp>,
}

/// One line of a member's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityItem {
    pub kind: &'static str,
    /// Change to what the member holds (available + pending); maturation moves points
    /// between the two and shows the points that became available.
    pub points: i64,
    pub partner_id: Option<String>,
    pub transaction_id: Option<String>,
    pub description: String,
}

/// The effect of one operation on one member, ready to be written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub transfers: Vec<Transfer>,
    pub lot_updates: Vec<LotUpdate>,
    pub new_lots: Vec<Lot>,
    pub activity: Vec<ActivityItem>,
    pub balance_after: Balance,
    /// When the member next needs settling (a lot matures or expires), if ever.
    pub next_due_at: Option<Timestamp>,
}

/// The partner side of a purchase.
#[derive(Debug, Clone)]
pub struct PartnerTerms {
    pub id: String,
    pub name: String,
    pub earn_rate: Decimal,
    pub pending_days: u32,
}

impl PartnerTerms {
    /// Terms for what the programme itself gives (engagement events of no partner).
    pub fn programme(name: &str) -> PartnerTerms {
        PartnerTerms {
            id: String::new(),
            name: name.to_string(),
            earn_rate: Decimal::ZERO,
            pending_days: 0,
        }
    }

    /// The account earned points come from: the partner's, or the programme's.
    pub fn issuer(&self) -> Account {
        if self.id.is_empty() {
            Account::ProgramIssued
        } else {
            Account::PartnerIssued(self.id.clone())
        }
    }

    fn partner_id(&self) -> Option<&str> {
        (!self.id.is_empty()).then_some(self.id.as_str())
    }
}

/// A purchase (or an engagement event) to plan, already validated and valued.
#[derive(Debug, Clone)]
pub struct Purchase<'a> {
    pub transaction_id: &'a str,
    pub partner: &'a PartnerTerms,
    pub occurred_at: Timestamp,
    pub redeem_points: i64,
    pub valuation: &'a Valuation,
    /// What the member's history says of the earning (default "Earned at <partner>").
    pub label: Option<&'a str>,
}

/// A stored purchase as a return needs it: what it earned, spent and has returned so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRecord {
    pub id: String,
    pub partner_id: String,
    pub partner_name: String,
    pub member_id: String,
    pub total: Money,
    pub points_earned: i64,
    pub points_redeemed: i64,
    pub returned_amount: i64,
    /// Points taken back so far, recovered or not.
    pub points_reversed: i64,
    pub points_refunded: i64,
}

/// What a return did, for the response and for updating the purchase record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReturnResult {
    pub points_reversed: i64,
    pub points_unrecovered: i64,
    pub points_refunded: i64,
}

/// A member's state being changed by one operation, recording the plan as it goes.
struct Working<'a> {
    member_id: &'a str,
    lots: Vec<Lot>,
    original: Vec<Lot>,
    balance: Balance,
    plan: Plan,
}

impl<'a> Working<'a> {
    fn new(state: &'a MemberState) -> Self {
        let lots: Vec<Lot> = state.lots.iter().filter(|l| l.remaining > 0).cloned().collect();
        Working {
            member_id: &state.member_id,
            original: lots.clone(),
            lots,
            balance: state.balance,
            plan: Plan::default(),
        }
    }

    fn available(&self) -> Account {
        Account::MemberAvailable(self.member_id.to_string())
    }

    fn pending(&self) -> Account {
        Account::MemberPending(self.member_id.to_string())
    }

    fn transfer(
        &mut self,
        from: Account,
        to: Account,
        points: i64,
        code: EntryCode,
        txn: Option<&str>,
        ret: Option<&str>,
    ) {
        if points == 0 {
            return;
        }
        debug_assert!(points > 0);
        for (account, delta) in [(&from, -points), (&to, points)] {
            match account {
                Account::MemberAvailable(_) => self.balance.available += delta,
                Account::MemberPending(_) => self.balance.pending += delta,
                _ => {}
            }
        }
        self.plan.transfers.push(Transfer {
            from,
            to,
            points,
            code,
            transaction_id: txn.map(str::to_string),
            return_id: ret.map(str::to_string),
        });
    }

    fn activity(
        &mut self,
        kind: &'static str,
        points: i64,
        partner: Option<&str>,
        txn: Option<&str>,
        description: String,
    ) {
        self.plan.activity.push(ActivityItem {
            kind,
            points,
            partner_id: partner.map(str::to_string),
            transaction_id: txn.map(str::to_string),
            description,
        });
    }

    /// Matures pending lots whose time has come, then expires lots past their date.
    fn settle(&mut self, now: Timestamp) {
        let mut matured = 0;
        for i in 0..self.lots.len() {
            let lot = &self.lots[i];
            if lot.matures_at.is_some_and(|m| m <= now) {
                let (points, txn) = (lot.remaining, lot.transaction_id.clone());
                self.lots[i].matures_at = None;
                let (from, to) = (self.pending(), self.available());
                self.transfer(from, to, points, EntryCode::Mature, txn.as_deref(), None);
                matured += points;
            }
        }
        if matured > 0 {
            self.activity(
                "mature",
                matured,
                None,
                None,
                format!("{matured} pending points became available"),
            );
        }
        let mut expired = 0;
        for i in 0..self.lots.len() {
            let lot = &self.lots[i];
            if !lot.is_pending() && lot.remaining > 0 && lot.expires_at <= now {
                let (points, txn) = (lot.remaining, lot.transaction_id.clone());
                self.lots[i].remaining = 0;
                let from = self.available();
                self.transfer(
                    from,
                    Account::ProgramExpired,
                    points,
                    EntryCode::Expire,
                    txn.as_deref(),
                    None,
                );
                expired += points;
            }
        }
        if expired > 0 {
            self.activity("expire", -expired, None, None, format!("{expired} points expired"));
        }
    }

    /// Takes `points` from spendable lots, soonest expiry first; returns what was taken
    /// per lot's transaction so entries can link to where the points came from.
    fn take_spendable(&mut self, mut points: i64, to: &Account, code: EntryCode, txn: &str, ret: Option<&str>) -> i64 {
        let mut taken = 0;
        for i in spend_order(&self.lots) {
            if points == 0 {
                break;
            }
            let take = points.min(self.lots[i].remaining);
            self.lots[i].remaining -= take;
            points -= take;
            taken += take;
        }
        let from = self.available();
        self.transfer(from, to.clone(), taken, code, Some(txn), ret);
        taken
    }

    fn finish(mut self) -> Plan {
        for lot in &self.lots {
            match lot.id {
                Some(id) => {
                    let before = self.original.iter().find(|o| o.id == Some(id));
                    if before.is_none_or(|b| b.remaining != lot.remaining || b.matures_at != lot.matures_at) {
                        self.plan.lot_updates.push(LotUpdate {
                            id,
                            remaining: lot.remaining,
                            matures_at: lot.matures_at,
                        });
                    }
                }
                None if lot.remaining > 0 => self.plan.new_lots.push(lot.clone()),
                None => {}
            }
        }
        self.plan.next_due_at = self.lots.iter().filter_map(Lot::due_at).min();
        self.plan.balance_after = self.balance;
        self.plan
    }
}

/// Matures and expires what is due for one member at `now` (the scheduled expiry run,
/// and the first step of every other plan).
pub fn plan_settle(state: &MemberState, now: Timestamp) -> Plan {
    let mut w = Working::new(state);
    w.settle(now);
    w.finish()
}

/// Plans a purchase: settle, spend `redeem_points` (soonest-expiring lots first), then earn
/// into a new lot that expires `expiry_months` after the purchase and is pending for the
/// partner's `pending_days`.
pub fn plan_purchase(
    state: &MemberState,
    program: &ProgramTerms,
    purchase: &Purchase<'_>,
    now: Timestamp,
) -> Result<Plan, DomainError> {
    let mut w = Working::new(state);
    w.settle(now);
    let partner = purchase.partner;
    let txn = purchase.transaction_id;
    if purchase.redeem_points > w.balance.available {
        return Err(DomainError::InsufficientPoints {
            available: w.balance.available,
            requested: purchase.redeem_points,
        });
    }
    if purchase.redeem_points > 0 {
        let to = Account::PartnerRedeemed(partner.id.clone());
        w.take_spendable(purchase.redeem_points, &to, EntryCode::Redeem, txn, None);
        w.activity(
            "redeem",
            -purchase.redeem_points,
            Some(&partner.id),
            Some(txn),
            format!("Paid with {} points at {}", purchase.redeem_points, partner.name),
        );
    }
    let earned = purchase.valuation.points_earned;
    if earned > 0 {
        let matures_at = Some(add_days(purchase.occurred_at, partner.pending_days)).filter(|m| *m > now);
        let to = if matures_at.is_some() {
            w.pending()
        } else {
            w.available()
        };
        w.transfer(partner.issuer(), to, earned, EntryCode::Earn, Some(txn), None);
        w.balance.lifetime_earned += earned;
        w.lots.push(Lot {
            id: None,
            remaining: earned,
            earned_at: purchase.occurred_at,
            expires_at: add_months(purchase.occurred_at, program.expiry_months),
            matures_at,
            transaction_id: Some(txn.to_string()),
            origin: LotOrigin::Earn,
        });
        let label = purchase
            .label
            .map(str::to_string)
            .unwrap_or_else(|| format!("Earned at {}", partner.name));
        let description = match matures_at {
            Some(m) => format!("{label} (pending until {})", m.strftime("%Y-%m-%d")),
            None => label,
        };
        w.activity(
            if matures_at.is_some() { "earn_pending" } else { "earn" },
            earned,
            partner.partner_id(),
            Some(txn),
            description,
        );
    }
    Ok(w.finish())
}

/// Plans a (partial) return of `amount` of a purchase. Spent points are given back first,
/// in proportion to the amount returned; then earned points are taken back in proportion
/// (half up, counted over all returns of the purchase so rounding never adds up to more
/// than was earned): from the purchase's own lot, then from other spendable points; what
/// the member no longer has is recorded as unrecovered.
pub fn plan_return(
    state: &MemberState,
    program: &ProgramTerms,
    purchase: &PurchaseRecord,
    return_id: &str,
    amount: Money,
    now: Timestamp,
) -> Result<(Plan, ReturnResult), DomainError> {
    if amount.currency != purchase.total.currency {
        return Err(DomainError::CurrencyMismatch {
            expected: purchase.total.currency.code().into(),
            got: amount.currency.code().into(),
        });
    }
    if amount.amount == 0 {
        return Err(DomainError::invalid("amount", "must be more than zero"));
    }
    let returned_after = purchase.returned_amount + amount.amount;
    if returned_after > purchase.total.amount {
        return Err(DomainError::ReturnExceedsPurchase);
    }
    let whole = purchase.total.amount.max(1);
    let part = if purchase.total.amount == 0 { 1 } else { returned_after };
    let refund = proportion_half_up(purchase.points_redeemed, part, whole) - purchase.points_refunded;
    let reverse = proportion_half_up(purchase.points_earned, part, whole) - purchase.points_reversed;

    let mut w = Working::new(state);
    w.settle(now);
    let txn = purchase.id.as_str();
    let partner = purchase.partner_id.as_str();
    let issued = Account::PartnerIssued(partner.to_string());
    let mut result = ReturnResult {
        points_refunded: refund.max(0),
        ..Default::default()
    };

    if result.points_refunded > 0 {
        let to = w.available();
        w.transfer(
            Account::PartnerRedeemed(partner.to_string()),
            to,
            result.points_refunded,
            EntryCode::ReturnRefund,
            Some(txn),
            Some(return_id),
        );
        w.lots.push(Lot {
            id: None,
            remaining: result.points_refunded,
            earned_at: now,
            expires_at: add_months(now, program.expiry_months),
            matures_at: None,
            transaction_id: Some(txn.to_string()),
            origin: LotOrigin::Refund,
        });
        w.activity(
            "return_refund",
            result.points_refunded,
            Some(partner),
            Some(txn),
            format!(
                "{} points given back for a return at {}",
                result.points_refunded, purchase.partner_name
            ),
        );
    }

    let mut to_reverse = reverse.max(0);
    // First the purchase's own earned lot, pending or not.
    for i in 0..w.lots.len() {
        let lot = &w.lots[i];
        if to_reverse == 0 || lot.origin != LotOrigin::Earn || lot.transaction_id.as_deref() != Some(txn) {
            continue;
        }
        let take = to_reverse.min(lot.remaining);
        let from = if lot.is_pending() { w.pending() } else { w.available() };
        w.lots[i].remaining -= take;
        to_reverse -= take;
        result.points_reversed += take;
        w.transfer(
            from,
            issued.clone(),
            take,
            EntryCode::ReturnReversal,
            Some(txn),
            Some(return_id),
        );
    }
    // Then whatever else the member can spend.
    if to_reverse > 0 {
        let took = w.take_spendable(to_reverse, &issued, EntryCode::ReturnReversal, txn, Some(return_id));
        to_reverse -= took;
        result.points_reversed += took;
    }
    if to_reverse > 0 {
        result.points_unrecovered = to_reverse;
        w.transfer(
            Account::ProgramUnrecovered,
            issued,
            to_reverse,
            EntryCode::ReturnUnrecovered,
            Some(txn),
            Some(return_id),
        );
    }
    let taken_back = result.points_reversed + result.points_unrecovered;
    w.balance.lifetime_earned -= taken_back;
    if taken_back > 0 {
        let mut description = format!(
            "{taken_back} points taken back for a return at {}",
            purchase.partner_name
        );
        if result.points_unrecovered > 0 {
            description.push_str(&format!(" ({} already spent)", result.points_unrecovered));
        }
        w.activity(
            "return_reversal",
            -result.points_reversed,
            Some(partner),
            Some(txn),
            description,
        );
    }
    Ok((w.finish(), result))
}

#[cfg(test)]
mod tests;
