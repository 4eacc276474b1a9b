//! Plans: what a purchase, a return or the passing of time does to one member's points.
//!
//! A planner takes the member's current [`MemberState`] and returns a [`Plan`]: the
//! transfers to post, the lot changes to save, the activity to show, and the balances
//! after. The store writes a plan in one database transaction, with the member's row
//! locked (or in the single SQLite writer), so plans never race each other.

use crate::DomainError;
use crate::earning::{ProgramTerms, Valuation, proportion_half_up};
use crate::ids::{MemberId, PartnerId, TransactionId};
use crate::ledger::{Account, EntryCode, Transfer};
use crate::lots::{Lot, LotOrigin, spend_order};
use crate::money::{MAX_BALANCE, MAX_POINTS, Money};
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
    pub member_id: MemberId,
    pub balance: Balance,
    /// Lots with points left (the store may pass empty ones too; they are ignored).
    pub lots: Vec<Lot>,
    /// Whether `lots` holds every open lot of the member. A store reads them only when
    /// a plan needs them ([`needs_lots`]); a plan that did not see them cannot spend.
    pub lots_loaded: bool,
    /// When the member is next due for settling, as stored.
    pub next_due_at: Option<Timestamp>,
    /// The member's standing on the tier ladder.
    pub tier: crate::tiers::TierState,
    /// The paid plan the member holds (`members.plan`), if any.
    pub plan: Option<String>,
    /// `Some` when this is the state of a shared wallet: then the balances, lots and due
    /// time are the wallet's, its accounts are written, and `member_id` names the
    /// member acting on it (empty for the scheduled run, which acts for no one).
    pub wallet: Option<crate::ids::WalletId>,
    /// The member's default shared wallet (`members.wallet_default`): the one a sale
    /// uses when the till names none.
    pub default_wallet: Option<crate::ids::WalletId>,
    /// The member who referred this one (read for sales: her first qualifying purchase
    /// converts the referral).
    pub referred_by: Option<MemberId>,
    /// When the member joined.
    pub joined_at: Timestamp,
}

impl MemberState {
    /// The state of shared wallet `wallet`, with its balances and due time as stored,
    /// as `member` acts on it.
    pub fn of_wallet(
        wallet: crate::ids::WalletId,
        member: MemberId,
        balance: Balance,
        next_due_at: Option<Timestamp>,
    ) -> MemberState {
        MemberState {
            member_id: member,
            balance,
            next_due_at,
            wallet: Some(wallet),
            ..MemberState::default()
        }
    }

    /// The id of the holder whose balances and lots this is: the wallet, or the member.
    pub fn holder_id(&self) -> &str {
        match &self.wallet {
            Some(w) => w.as_str(),
            None => self.member_id.as_str(),
        }
    }
}

/// Whether an operation must see the member's open lots: to spend points, or to settle
/// what is due at `now`. Without them a plan only adds (a new lot, the balances).
pub fn needs_lots(redeem_points: i64, stored_due: Option<Timestamp>, now: Timestamp) -> bool {
    redeem_points > 0 || stored_due.is_some_and(|d| d <= now)
}

/// A saved lot whose remaining points or pending state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotUpdate {
    pub id: i64,
    pub remaining: i64,
    pub matures_at: Option<Timestamp>,
}

/// What a line of a member's history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Earn,
    EarnPending,
    Redeem,
    Mature,
    Expire,
    ReturnRefund,
    ReturnReversal,
    /// A closing shared wallet's points passed to a member.
    Split,
    /// Points set aside for a redeemed reward's voucher.
    RewardReserve,
    /// A voucher used at its partner (the points were set aside already).
    RewardUse,
    /// A voucher cancelled or expired unused: its points back.
    RewardRelease,
    /// A voucher expired unused of a reward whose points are forfeit.
    RewardForfeit,
    /// Points given to a charity.
    Donation,
    /// Points sent to another member.
    TransferOut,
    /// Points received from another member.
    TransferIn,
    /// Points exchanged out to another programme.
    ExchangeOut,
    /// An exchange out confirmed by the other programme.
    ExchangeConfirm,
    /// An exchange out the other programme refused: the points back.
    ExchangeRefund,
    /// Another programme's units credited as points.
    ExchangeIn,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Earn => "earn",
            ActivityKind::EarnPending => "earn_pending",
            ActivityKind::Redeem => "redeem",
            ActivityKind::Mature => "mature",
            ActivityKind::Expire => "expire",
            ActivityKind::ReturnRefund => "return_refund",
            ActivityKind::ReturnReversal => "return_reversal",
            ActivityKind::Split => "wallet_split",
            ActivityKind::RewardReserve => "reward_reserve",
            ActivityKind::RewardUse => "reward_use",
            ActivityKind::RewardRelease => "reward_release",
            ActivityKind::RewardForfeit => "reward_forfeit",
            ActivityKind::Donation => "donation",
            ActivityKind::TransferOut => "transfer_out",
            ActivityKind::TransferIn => "transfer_in",
            ActivityKind::ExchangeOut => "exchange_out",
            ActivityKind::ExchangeConfirm => "exchange_confirm",
            ActivityKind::ExchangeRefund => "exchange_refund",
            ActivityKind::ExchangeIn => "exchange_in",
        }
    }
}

/// One line of a member's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityItem {
    pub kind: ActivityKind,
    /// When it happened: the sale's or event's own time for what it caused; the time of
    /// posting for maturation and expiry.
    pub at: Timestamp,
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
    /// When the member next needs settling (a lot matures or expires), if ever: from
    /// every open lot when the plan saw them all, else the earlier of the stored time
    /// and the new lot's.
    pub next_due_at: Option<Timestamp>,
    /// How the member's `reserved` account moves (points set aside for vouchers): the
    /// store adds it to the member's row, whose `CHECK` keeps it from going negative.
    pub reserved_change: i64,
}

impl Plan {
    /// Points moved by transfers with `code`.
    pub fn points_with(&self, code: EntryCode) -> i64 {
        self.transfers.iter().filter(|t| t.code == code).map(|t| t.points).sum()
    }
}

/// The partner side of a purchase.
#[derive(Debug, Clone)]
pub struct PartnerTerms {
    /// Empty for the programme itself (see [`PartnerTerms::programme`]).
    pub id: PartnerId,
    pub name: String,
    pub earn_rate: Decimal,
    pub pending_days: u32,
}

impl PartnerTerms {
    /// Terms for what the programme itself gives (engagement events of no partner).
    pub fn programme(name: &str) -> PartnerTerms {
        PartnerTerms {
            id: PartnerId::default(),
            name: name.to_string(),
            earn_rate: Decimal::ZERO,
            pending_days: 0,
        }
    }

    /// The account earned points come from: the partner's, or the programme's.
    pub fn issuer(&self) -> Account {
        if self.id.as_str().is_empty() {
            Account::ProgramIssued
        } else {
            Account::PartnerIssued(self.id.to_string())
        }
    }

    /// The account the operator's share of points earned here comes from: what the
    /// operator funds at this partner's tills, or the programme's own.
    pub fn operator_issuer(&self) -> Account {
        if self.id.as_str().is_empty() {
            Account::ProgramIssued
        } else {
            Account::ProgramFunded(self.id.to_string())
        }
    }

    fn partner_id(&self) -> Option<&str> {
        (!self.id.as_str().is_empty()).then_some(self.id.as_str())
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
    /// The ledger code of the points earned: `earn`, or `membership_bonus`.
    pub code: EntryCode,
}

/// A stored purchase as a return needs it: what it earned, spent and has returned so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRecord {
    pub id: TransactionId,
    pub partner_id: PartnerId,
    pub partner_name: String,
    pub member_id: MemberId,
    pub total: Money,
    pub points_earned: i64,
    /// The points of `points_earned` the operator funded (0 for sales written before
    /// funding was recorded: all of their points came from the partner).
    pub points_operator: i64,
    pub points_redeemed: i64,
    pub returned_amount: i64,
    /// Points taken back so far, recovered or not.
    pub points_reversed: i64,
    pub points_refunded: i64,
    /// What the sale added to its member's tier qualifying count.
    pub tier_qualifying: i64,
    /// When the sale was posted: which tier period it counted in.
    pub recorded_at: Timestamp,
    /// The shared wallet the sale earned into or paid from, and which of the two.
    pub wallet: Option<(crate::ids::WalletId, crate::wallets::SaleRoute)>,
    /// The household whose tier qualifying the sale counted in (a ladder per
    /// household); `None`: the member's own.
    pub tier_household: Option<crate::ids::WalletId>,
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
    state: &'a MemberState,
    /// The holder whose accounts this plan moves: the member's, or a shared wallet's.
    holder: &'a str,
    in_wallet: bool,
    lots: Vec<Lot>,
    original: Vec<Lot>,
    balance: Balance,
    plan: Plan,
    /// What spending took from each lot, in the order taken (a voucher keeps it, so
    /// its points come back with the dates they had).
    taken: Vec<rewards::TakenLot>,
    /// The time of the sale, return or event; settling happens at `now`.
    event_time: Timestamp,
    now: Timestamp,
}

impl<'a> Working<'a> {
    fn new(state: &'a MemberState, event_time: Timestamp, now: Timestamp) -> Self {
        let lots: Vec<Lot> = state.lots.iter().filter(|l| l.remaining > 0).cloned().collect();
        Working {
            state,
            holder: state.holder_id(),
            in_wallet: state.wallet.is_some(),
            original: lots.clone(),
            lots,
            balance: state.balance,
            plan: Plan::default(),
            taken: Vec::new(),
            event_time,
            now,
        }
    }

    fn available(&self) -> Account {
        match self.in_wallet {
            true => Account::WalletAvailable(self.holder.to_string()),
            false => Account::MemberAvailable(self.holder.to_string()),
        }
    }

    fn pending(&self) -> Account {
        match self.in_wallet {
            true => Account::WalletPending(self.holder.to_string()),
            false => Account::MemberPending(self.holder.to_string()),
        }
    }

    /// Which of the holder's accounts `account` is, if it is one of them. Only a
    /// member (not a shared wallet) has a reserved account.
    fn own(&self, account: &Account) -> Option<Slot> {
        match (account, self.in_wallet) {
            (Account::MemberAvailable(h), false) | (Account::WalletAvailable(h), true) if h == self.holder => {
                Some(Slot::Available)
            }
            (Account::MemberPending(h), false) | (Account::WalletPending(h), true) if h == self.holder => {
                Some(Slot::Pending)
            }
            (Account::MemberReserved(h), false) if h == self.holder => Some(Slot::Reserved),
            _ => None,
        }
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
            match self.own(account) {
                Some(Slot::Available) => self.balance.available += delta,
                Some(Slot::Pending) => self.balance.pending += delta,
                Some(Slot::Reserved) => self.plan.reserved_change += delta,
                None => {}
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
        kind: ActivityKind,
        points: i64,
        partner: Option<&str>,
        txn: Option<&str>,
        description: String,
    ) {
        let at = match kind {
            ActivityKind::Mature | ActivityKind::Expire => self.now,
            _ => self.event_time,
        };
        self.plan.activity.push(ActivityItem {
            kind,
            at,
            points,
            partner_id: partner.map(str::to_string),
            transaction_id: txn.map(str::to_string),
            description,
        });
    }

    /// Matures pending lots whose time has come, then expires lots past their date.
    fn settle(&mut self) {
        let now = self.now;
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
                ActivityKind::Mature,
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
            self.activity(
                ActivityKind::Expire,
                -expired,
                None,
                None,
                format!("{expired} points expired"),
            );
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
            if take > 0 {
                self.taken.push(rewards::TakenLot {
                    points: take,
                    earned_at: self.lots[i].earned_at,
                    expires_at: self.lots[i].expires_at,
                });
            }
        }
        let from = self.available();
        self.transfer(from, to.clone(), taken, code, Some(txn), ret);
        taken
    }

    /// Credits points taken elsewhere back to the holder's available points from
    /// `from`, as lots with the dates they were taken with (`taken`), linked to `id`.
    fn credit_taken(
        &mut self,
        from: Account,
        code: EntryCode,
        id: &str,
        taken: &[rewards::TakenLot],
        origin: LotOrigin,
    ) {
        let points: i64 = taken.iter().map(|t| t.points).sum();
        let to = self.available();
        self.transfer(from, to, points, code, Some(id), None);
        for t in taken.iter().filter(|t| t.points > 0) {
            self.lots.push(Lot {
                id: None,
                remaining: t.points,
                earned_at: t.earned_at,
                expires_at: t.expires_at,
                matures_at: None,
                transaction_id: Some(id.to_string()),
                origin,
            });
        }
    }

    /// The plan, after checking what every plan must keep true: balances never negative,
    /// the member's accounts moved by exactly the balance change, no spending from lots
    /// the plan did not see. A broken invariant is a bug: it fails loudly in tests and
    /// refuses the write in production.
    fn finish(mut self) -> Result<Plan, DomainError> {
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
        let planned_due = self.lots.iter().filter_map(Lot::due_at).min();
        self.plan.next_due_at = if self.state.lots_loaded {
            planned_due
        } else {
            match (self.state.next_due_at, planned_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        self.plan.balance_after = self.balance;
        self.check()?;
        Ok(self.plan)
    }

    fn check(&self) -> Result<(), DomainError> {
        let before = self.state.balance;
        let after = self.plan.balance_after;
        let (mut available, mut pending, mut reserved) = (0i64, 0i64, 0i64);
        for t in &self.plan.transfers {
            for (account, delta) in [(&t.from, -t.points), (&t.to, t.points)] {
                match self.own(account) {
                    Some(Slot::Available) => available += delta,
                    Some(Slot::Pending) => pending += delta,
                    Some(Slot::Reserved) => reserved += delta,
                    None if account.member().is_some() || account.wallet().is_some() => {
                        return invariant("a plan moved another member's points");
                    }
                    None => {}
                }
            }
            if t.points <= 0 {
                return invariant("a transfer of no or negative points");
            }
        }
        if after.available < 0 || after.pending < 0 {
            return invariant("a balance would go negative");
        }
        if before.available + available != after.available
            || before.pending + pending != after.pending
            || reserved != self.plan.reserved_change
        {
            return invariant("the transfers do not add up to the balance change");
        }
        Ok(())
    }
}

/// A holder's account a plan may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Available,
    Pending,
    Reserved,
}

fn invariant(what: &'static str) -> Result<(), DomainError> {
    debug_assert!(false, "plan invariant broken: {what}");
    Err(DomainError::Invariant(what))
}

/// Matures and expires what is due for one member at `now` (the scheduled expiry run,
/// and the first step of every other plan).
pub fn plan_settle(state: &MemberState, now: Timestamp) -> Result<Plan, DomainError> {
    require_lots(state)?;
    let mut w = Working::new(state, now, now);
    w.settle();
    w.finish()
}

/// Settling and spending need every open lot of the member.
fn require_lots(state: &MemberState) -> Result<(), DomainError> {
    if state.lots_loaded {
        Ok(())
    } else {
        invariant("a plan that spends or settles was not given the member's lots")
    }
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
    if needs_lots(purchase.redeem_points, state.next_due_at, now) {
        require_lots(state)?;
    }
    let mut w = Working::new(state, purchase.occurred_at, now);
    w.settle();
    let partner = purchase.partner;
    let txn = purchase.transaction_id;
    if purchase.redeem_points > w.balance.available {
        return Err(DomainError::InsufficientPoints {
            available: w.balance.available,
            requested: purchase.redeem_points,
        });
    }
    if purchase.redeem_points > 0 {
        let to = Account::PartnerRedeemed(partner.id.to_string());
        w.take_spendable(purchase.redeem_points, &to, EntryCode::Redeem, txn, None);
        w.activity(
            ActivityKind::Redeem,
            -purchase.redeem_points,
            Some(partner.id.as_str()),
            Some(txn),
            format!("Paid with {} points at {}", purchase.redeem_points, partner.name),
        );
    }
    let earned = purchase.valuation.points_earned;
    let held = w.balance.available.saturating_add(w.balance.pending);
    if earned > MAX_POINTS {
        return Err(crate::earning::points_limit());
    }
    if held.saturating_add(earned) > MAX_BALANCE {
        return Err(DomainError::LimitExceeded {
            code: "balance_limit_exceeded",
            message: format!("a member may hold at most {MAX_BALANCE} points"),
        });
    }
    if earned > 0 {
        let matures_at = Some(add_days(purchase.occurred_at, partner.pending_days)).filter(|m| *m > now);
        let to = if matures_at.is_some() {
            w.pending()
        } else {
            w.available()
        };
        // Each funder's share is drawn from its own account: the partner's points from
        // its `issued`, the operator's from what it funds at the partner.
        let operator = purchase.valuation.operator_points();
        for (from, points) in [
            (partner.issuer(), earned - operator),
            (partner.operator_issuer(), operator),
        ] {
            if points > 0 {
                w.transfer(from, to.clone(), points, purchase.code, Some(txn), None);
            }
        }
        w.balance.lifetime_earned = w.balance.lifetime_earned.saturating_add(earned);
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
            if matures_at.is_some() {
                ActivityKind::EarnPending
            } else {
                ActivityKind::Earn
            },
            earned,
            partner.partner_id(),
            Some(txn),
            description,
        );
    }
    w.finish()
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

    require_lots(state)?;
    let mut w = Working::new(state, now, now);
    w.settle();
    let txn = purchase.id.as_str();
    let partner = purchase.partner_id.as_str();
    let issued = Account::PartnerIssued(partner.to_string());
    // The operator's share of the points taken back, in the proportion it funded them,
    // counted on the points taken back so far (cumulative, half up): it is never more
    // than this return takes, and when every point is back each funder has exactly its
    // own. The partner's share is the rest.
    let funded = purchase.points_operator.clamp(0, purchase.points_earned);
    let operator_reverse = match purchase.points_earned {
        earned if earned > 0 && funded > 0 => {
            let before = purchase.points_reversed.clamp(0, earned);
            let after = (before + reverse.max(0)).min(earned);
            (proportion_half_up(funded, after, earned) - proportion_half_up(funded, before, earned))
                .clamp(0, reverse.max(0))
        }
        _ => 0,
    };
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
            ActivityKind::ReturnRefund,
            result.points_refunded,
            Some(partner),
            Some(txn),
            format!(
                "{} points given back for a return at {}",
                result.points_refunded, purchase.partner_name
            ),
        );
    }

    let funded_by_operator = Account::ProgramFunded(partner.to_string());
    for (issuer, points) in [
        (&issued, reverse.max(0) - operator_reverse),
        (&funded_by_operator, operator_reverse),
    ] {
        let (reversed, unrecovered) = w.take_back(txn, issuer, points, return_id);
        result.points_reversed += reversed;
        result.points_unrecovered += unrecovered;
    }
    let taken_back = result.points_reversed + result.points_unrecovered;
    if taken_back > 0 {
        let mut description = format!(
            "{taken_back} points taken back for a return at {}",
            purchase.partner_name
        );
        if result.points_unrecovered > 0 {
            description.push_str(&format!(" ({} already spent)", result.points_unrecovered));
        }
        w.activity(
            ActivityKind::ReturnReversal,
            -result.points_reversed,
            Some(partner),
            Some(txn),
            description,
        );
    }
    Ok((w.finish()?, result))
}

/// Points an earlier credit gave that are taken back as a return would take them: a
/// referral reversed takes back what `referral_converted` gave each member.
#[derive(Debug, Clone)]
pub struct TakeBack<'a> {
    /// The credit's id (an event's): its lot is taken from first.
    pub credit_id: &'a str,
    /// The account the points came from, and go back to.
    pub issuer: Account,
    pub points: i64,
    /// The id the entries name as their reason (the reversal's).
    pub id: &'a str,
    /// What the member's history says, after "N points taken back".
    pub reason: &'a str,
}

/// Plans taking back `t.points`: from the credit's own lot, then from what else the
/// member can spend; what she no longer has is recorded as unrecovered. Returns the
/// plan and (taken back, unrecovered).
pub fn plan_take_back(state: &MemberState, t: &TakeBack<'_>, now: Timestamp) -> Result<(Plan, i64, i64), DomainError> {
    require_lots(state)?;
    let mut w = Working::new(state, now, now);
    w.settle();
    let (reversed, unrecovered) = w.take_back(t.credit_id, &t.issuer, t.points.max(0), t.id);
    if reversed + unrecovered > 0 {
        let mut description = format!("{} points taken back: {}", reversed + unrecovered, t.reason);
        if unrecovered > 0 {
            description.push_str(&format!(" ({unrecovered} already spent)"));
        }
        w.activity(
            ActivityKind::ReturnReversal,
            -reversed,
            None,
            Some(t.credit_id),
            description,
        );
    }
    Ok((w.finish()?, reversed, unrecovered))
}

impl Working<'_> {
    /// Takes back `points` a credit (`txn`) gave to `issuer`: first from the credit's own
    /// earned lot, pending or not, then from whatever else the member can spend; the rest
    /// is booked as unrecovered. Returns (taken back, unrecovered).
    fn take_back(&mut self, txn: &str, issuer: &Account, points: i64, id: &str) -> (i64, i64) {
        let mut to_reverse = points;
        let mut reversed = 0;
        for i in 0..self.lots.len() {
            let lot = &self.lots[i];
            if to_reverse == 0 || lot.origin != LotOrigin::Earn || lot.transaction_id.as_deref() != Some(txn) {
                continue;
            }
            let take = to_reverse.min(lot.remaining);
            let from = if lot.is_pending() {
                self.pending()
            } else {
                self.available()
            };
            self.lots[i].remaining -= take;
            to_reverse -= take;
            reversed += take;
            self.transfer(
                from,
                issuer.clone(),
                take,
                EntryCode::ReturnReversal,
                Some(txn),
                Some(id),
            );
        }
        if to_reverse > 0 {
            let took = self.take_spendable(to_reverse, issuer, EntryCode::ReturnReversal, txn, Some(id));
            to_reverse -= took;
            reversed += took;
        }
        if to_reverse > 0 {
            self.transfer(
                Account::ProgramUnrecovered,
                issuer.clone(),
                to_reverse,
                EntryCode::ReturnUnrecovered,
                Some(txn),
                Some(id),
            );
        }
        self.balance.lifetime_earned -= reversed + to_reverse;
        (reversed, to_reverse)
    }
}

/// Points set aside that move on from one account to another, none of them the
/// member's spendable ones: what the member holds does not change, her history says so.
struct Passed<'a> {
    from: Account,
    to: Account,
    points: i64,
    code: EntryCode,
    kind: ActivityKind,
    partner: Option<&'a str>,
    id: &'a str,
    description: String,
}

/// Settles what is due, then passes the points on (a voucher used, an exchange
/// confirmed).
fn pass_on(state: &MemberState, p: Passed<'_>, now: Timestamp) -> Result<Plan, DomainError> {
    if needs_lots(0, state.next_due_at, now) {
        require_lots(state)?;
    }
    let mut w = Working::new(state, now, now);
    w.settle();
    w.transfer(p.from, p.to, p.points, p.code, Some(p.id), None);
    w.activity(p.kind, 0, p.partner, Some(p.id), p.description);
    w.finish()
}

/// Points set aside (in `from`) come back to the holder as the lots they were taken
/// from (`taken`), linked to `id`; points whose date passed meanwhile expire in the same
/// plan, as they would have. A voucher given back, an exchange order refunded.
#[allow(clippy::too_many_arguments)]
fn give_back(
    state: &MemberState,
    from: Account,
    code: EntryCode,
    kind: ActivityKind,
    id: &str,
    taken: &[rewards::TakenLot],
    description: String,
    now: Timestamp,
) -> Result<Plan, DomainError> {
    require_lots(state)?;
    let points: i64 = taken.iter().map(|t| t.points).sum();
    let mut w = Working::new(state, now, now);
    w.settle();
    w.credit_taken(from, code, id, taken, LotOrigin::Release);
    w.activity(kind, points, None, Some(id), description);
    w.settle();
    w.finish()
}

mod rewards;
pub use rewards::{Reservation, TakenLot, plan_fulfil, plan_release, plan_reserve};
mod transfers;
pub use transfers::{plan_receive, plan_send};
mod exchange;
pub use exchange::{plan_exchange_confirm, plan_exchange_credit, plan_exchange_refund};

#[cfg(test)]
mod tests;
