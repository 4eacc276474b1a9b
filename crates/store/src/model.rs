//! The rows the store keeps and the commands it takes.

use jiff::Timestamp;
use rust_decimal::Decimal;
use tally_domain::earning::ProgramTerms;
use tally_domain::identity::Identity;
use tally_domain::ids::{EventId, LocationId, MemberId, PartnerId, RuleId, TransactionId};
use tally_domain::memberships::{Membership, MembershipPlan};
use tally_domain::money::{Currency, Money};
use tally_domain::plan::{Balance, PartnerTerms};
use tally_domain::tiers::{TierLadder, TierState};

#[derive(Debug, Clone, PartialEq)]
pub struct ProgramRow {
    pub name: String,
    pub currency: Currency,
    pub point_value_minor: i64,
    pub expiry_months: u32,
    /// The tier ladder (no levels: tiers off).
    pub tiers: std::sync::Arc<TierLadder>,
    /// The membership plans on sale, by code.
    pub plans: std::sync::Arc<Vec<MembershipPlan>>,
    /// Who may send points to another member, and how many.
    pub transfers: tally_domain::transfers::TransferPolicy,
    /// Where a member's share link sends its visitor (with her referral code).
    pub referral_signup_url: Option<String>,
    /// When a referred member's purchase converts her referral (`None`: never).
    pub referrals: Option<std::sync::Arc<tally_domain::referrals::ReferralPolicy>>,
}

impl ProgramRow {
    pub fn terms(&self) -> ProgramTerms {
        ProgramTerms {
            currency: self.currency,
            point_value_minor: self.point_value_minor,
            expiry_months: self.expiry_months,
            tiers: self.tiers.clone(),
            plans: self.plans.clone(),
            referrals: self.referrals.clone(),
        }
    }
}

/// Changes to the programme; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ProgramUpdate {
    pub name: Option<String>,
    pub currency: Option<Currency>,
    pub point_value_minor: Option<i64>,
    pub expiry_months: Option<u32>,
    /// A new tier ladder, checked ([`TierLadder::check`]).
    pub tiers: Option<TierLadder>,
    /// A new transfer policy, checked.
    pub transfers: Option<tally_domain::transfers::TransferPolicy>,
    /// A new sign-up address for share links (`Some(None)`: none), checked.
    pub referral_signup_url: Option<Option<String>>,
    /// A new referral policy, checked (`Some(None)`: referrals no longer convert).
    pub referrals: Option<Option<tally_domain::referrals::ReferralPolicy>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartnerRow {
    pub id: PartnerId,
    pub name: String,
    pub industry: String,
    pub country: String,
    pub currency: Currency,
    pub timezone: String,
    pub earn_rate: Decimal,
    pub pending_days: u32,
    pub created_at: Timestamp,
}

impl PartnerRow {
    pub fn terms(&self) -> PartnerTerms {
        PartnerTerms {
            id: self.id.clone(),
            name: self.name.clone(),
            earn_rate: self.earn_rate,
            pending_days: self.pending_days,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocationRow {
    pub id: LocationId,
    pub partner_id: PartnerId,
    pub name: String,
    pub city: String,
    pub country: String,
    pub timezone: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub partner_id: PartnerId,
    pub key_hash: String,
    pub created_at: Timestamp,
}

/// An API key as listed: never the key, nor its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub partner_id: PartnerId,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A member's consent to share their personal data with a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub partner_id: PartnerId,
    pub granted_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewMember {
    pub id: MemberId,
    pub name: Option<String>,
    pub country: Option<String>,
    pub referral_code: String,
    /// The referral code of the member who brought this one, if any.
    pub referred_by_code: Option<String>,
    pub identities: Vec<Identity>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub id: MemberId,
    pub name: Option<String>,
    pub country: Option<String>,
    pub referral_code: String,
    /// The member who referred this one.
    pub referred_by: Option<MemberId>,
    pub created_at: Timestamp,
    pub balance: Balance,
    /// Points set aside for vouchers not yet used (the `reserved` account).
    pub reserved: i64,
    /// `(kind, value)` pairs such as `("phone", "+420601123456")`.
    pub identities: Vec<(String, String)>,
    /// When pending points next mature or a lot next expires.
    pub next_due_at: Option<Timestamp>,
    pub profile: MemberProfile,
}

pub use tally_domain::decide::{
    EventCmd, GrantedAward, MemberAssumption, MemberRef, Posted, PurchaseCmd, ReturnCmd, RuleDraft, SavedAward,
};

/// One earning rule, at its current version.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub id: RuleId,
    pub version: i64,
    pub spec: tally_domain::rules::RuleSpec,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What the operator sets on a member for rules and offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberProfile {
    /// The tier to set; ignored when `keep_tier` (the tier is computed from a ladder).
    pub tier: Option<String>,
    /// On a write: leave the stored tier as it is. Always false as read.
    pub keep_tier: bool,
    /// On a write: leave the stored plan as it is (memberships set it). Always false as
    /// read.
    pub keep_plan: bool,
    pub segments: Vec<String>,
    pub plan: Option<String>,
}

/// The programme's books: every account that is not one member's or one wallet's, with
/// its balance (the sum of its entries) and how many entries it has, and what members
/// and shared wallets hold in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerBalances {
    /// (account, balance, entries), in account order.
    pub accounts: Vec<(String, i64, u64)>,
    /// Members' available, pending and reserved points, summed over every member.
    pub members: (i64, i64, i64),
    /// Shared wallets' available and pending points, summed.
    pub wallets: (i64, i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRow {
    pub id: TransactionId,
    pub partner_id: PartnerId,
    pub member_id: MemberId,
    pub external_id: String,
    pub total: Money,
    pub points_earned: i64,
    /// The part of `points_earned` the operator funded.
    pub points_operator: i64,
    pub points_redeemed: i64,
    pub returned_amount: i64,
    pub points_reversed: i64,
    pub points_refunded: i64,
    pub receipt_json: String,
    /// What the sale added to its member's tier qualifying count.
    pub tier_qualifying: i64,
    pub recorded_at: Timestamp,
    /// The shared wallet the sale earned into or paid from, and how.
    pub wallet: Option<(tally_domain::ids::WalletId, tally_domain::wallets::SaleRoute)>,
    /// The household whose tier qualifying the sale counted in.
    pub tier_household: Option<tally_domain::ids::WalletId>,
}

/// A change of a member's tier, from the history.
#[derive(Debug, Clone, PartialEq)]
pub struct TierChangeRow {
    pub at: Timestamp,
    pub from: Option<String>,
    pub to: Option<String>,
    pub kind: String,
    pub reason: String,
    pub transaction_id: Option<String>,
}

/// What a level set by hand asks for: the level (`None` ends a manual level), until
/// when, and why.
#[derive(Debug, Clone)]
pub struct ManualTier {
    pub code: Option<String>,
    pub until: Timestamp,
    pub reason: String,
}

/// A membership as stored, with its payments (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipRow {
    pub id: String,
    pub member_id: MemberId,
    pub plan_code: String,
    pub membership: Membership,
    pub payments: Vec<PaymentRow>,
}

/// A recorded membership payment.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRow {
    pub id: String,
    pub external_id: String,
    pub amount: Money,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub bonus_points: i64,
    pub recorded_at: Timestamp,
}

/// A payment to record for a membership.
#[derive(Debug, Clone)]
pub struct PaymentCmd {
    pub membership_id: String,
    /// The id the payment gets if it is new.
    pub payment_id: String,
    /// The processor's id: the same id never records twice.
    pub external_id: String,
    pub amount: Money,
    pub request_hash: String,
    pub program: ProgramTerms,
    pub now: Timestamp,
}

/// A member's standing and its history, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberTierRow {
    pub state: TierState,
    pub history: Vec<TierChangeRow>,
    /// With a ladder per household: the household whose standing this is.
    pub household: Option<tally_domain::ids::WalletId>,
}

#[derive(Debug, Clone)]
pub struct ActivityQuery {
    pub member_id: MemberId,
    pub partner_id: Option<PartnerId>,
    /// Only items with an id below this (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub id: i64,
    pub member_id: MemberId,
    pub kind: String,
    pub points: i64,
    pub occurred_at: Timestamp,
    pub partner_id: Option<PartnerId>,
    pub transaction_id: Option<String>,
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SettleReport {
    pub members_settled: u64,
    /// Members whose tier standing the run brought up to date (reviews, manual levels
    /// that ended).
    pub tiers_reviewed: u64,
    /// Memberships whose status changed with time; their member's `plan` followed.
    pub memberships_reviewed: u64,
    /// Vouchers that expired unused (their points back, or forfeit).
    pub vouchers_expired: u64,
    /// Referrals whose points were given or taken back by the run (a follow-up lost to a
    /// crash or a failure after the sale or return).
    pub referrals_finished: u64,
    /// Completed challenges whose `challenge_completed` the run posted.
    pub challenges_rewarded: u64,
    pub points_matured: i64,
    pub points_expired: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    pub account: String,
    pub stored: i64,
    pub from_entries: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    pub balanced: bool,
    pub accounts_checked: u64,
    pub entries_checked: u64,
    /// Sum of all entries: zero in a balanced ledger.
    pub entries_sum: i64,
    pub mismatches: Vec<Mismatch>,
}

/// What claiming an `Idempotency-Key` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its earlier claim was abandoned): this request runs.
    Claimed,
    /// The key was claimed before: by a request still running (`status` 0) or finished.
    Taken(StoredResponse),
}

/// A response saved under an `Idempotency-Key`; `status` 0 while its request runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub members: u64,
    pub partners: u64,
    pub transactions: u64,
    pub entries: u64,
}

/// What a database server has written so far (PostgreSQL: WAL and data pages); a
/// benchmark takes the difference over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteVolume {
    pub wal_bytes: u64,
    pub data_bytes: u64,
}

/// Microseconds since the Unix epoch: how both schemas store times.
pub fn to_micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A stored engagement event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: EventId,
    pub external_id: String,
    pub partner_id: Option<PartnerId>,
    pub event_type: String,
    pub attributes_json: String,
    pub occurred_at: Timestamp,
    pub points_earned: i64,
}

/// Whose balances and lots a plan changes: a member's, or a shared wallet's (with the
/// member acting on it, whom its entries name; `None` for the scheduled run).
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    Member(&'a MemberId),
    Wallet {
        id: &'a tally_domain::ids::WalletId,
        actor: Option<&'a MemberId>,
    },
}

impl<'a> Holder<'a> {
    /// Whose tier standing a member's is: their household's (under a ladder per
    /// household, when they are in one: `household`), else their own.
    pub fn standing_of(member: &'a MemberId, household: Option<&'a tally_domain::ids::WalletId>) -> Holder<'a> {
        match household {
            Some(id) => Holder::Wallet { id, actor: None },
            None => Holder::Member(member),
        }
    }
}

impl Holder<'_> {
    pub fn id(&self) -> &str {
        match self {
            Holder::Member(m) => m.as_str(),
            Holder::Wallet { id, .. } => id.as_str(),
        }
    }

    /// The table that keeps the holder's balances.
    pub fn table(&self) -> &'static str {
        match self {
            Holder::Member(_) => "members",
            Holder::Wallet { .. } => "wallets",
        }
    }

    /// The member an entry on `account` names: a member account's own, or on a
    /// wallet's account the member acting.
    /// A wallet's entry with no member acting (a closing wallet's split) names the
    /// member on the other side of the transfer.
    pub fn entry_member<'b>(
        &'b self,
        account: &'b tally_domain::ledger::Account,
        transfer: &'b tally_domain::ledger::Transfer,
    ) -> Option<&'b str> {
        match (account.member(), self) {
            (Some(m), _) => Some(m),
            (None, Holder::Wallet { actor, .. }) if account.wallet().is_some() => actor
                .map(|a| a.as_str())
                .or_else(|| transfer.from.member().or(transfer.to.member())),
            _ => None,
        }
    }

    /// The holder of a state read for a plan.
    pub fn of(state: &tally_domain::plan::MemberState) -> Holder<'_> {
        match &state.wallet {
            Some(id) => Holder::Wallet {
                id,
                actor: (!state.member_id.as_str().is_empty()).then_some(&state.member_id),
            },
            None => Holder::Member(&state.member_id),
        }
    }
}

/// A new shared wallet.
#[derive(Debug, Clone)]
pub struct NewWallet {
    pub id: tally_domain::ids::WalletId,
    pub kind: tally_domain::wallets::WalletKind,
    pub name: String,
    /// A household's owner, who joins it with `owner_rights`.
    pub owner: Option<MemberId>,
    pub owner_rights: tally_domain::wallets::Rights,
    pub company_name: Option<String>,
    pub vat_id: Option<String>,
    pub now: Timestamp,
}

/// A shared wallet with its members (those who left too, with the date).
#[derive(Debug, Clone, PartialEq)]
pub struct WalletRow {
    pub id: tally_domain::ids::WalletId,
    pub kind: tally_domain::wallets::WalletKind,
    pub name: String,
    pub owner: Option<MemberId>,
    pub company_name: Option<String>,
    pub vat_id: Option<String>,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub balance: Balance,
    /// When pending points mature or points expire next, if ever.
    pub next_due_at: Option<Timestamp>,
    pub members: Vec<WalletMemberRow>,
}

impl WalletRow {
    /// The wallet as a change to its members reads it: its current members' seats.
    pub fn roster(&self) -> Result<tally_domain::wallets::roster::Roster, crate::StoreError> {
        use tally_domain::wallets::roster::{Role, Roster, Seat};
        let seats = self
            .members
            .iter()
            .filter(|m| m.left_at.is_none())
            .map(|m| {
                Ok(Seat {
                    member_id: m.member_id.clone(),
                    role: Role::parse(&m.role).ok_or_else(|| {
                        crate::StoreError::corrupt(format!("{} has role {:?} in {}", m.member_id, m.role, self.id))
                    })?,
                    rights: m.rights,
                })
            })
            .collect::<Result<_, crate::StoreError>>()?;
        Ok(Roster {
            id: self.id.clone(),
            kind: self.kind,
            closed: self.closed_at.is_some(),
            seats,
        })
    }
}

/// A member's place in a shared wallet.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletMemberRow {
    pub wallet_id: tally_domain::ids::WalletId,
    pub member_id: MemberId,
    /// `owner` (of a household), `member` (of a household) or `contact` (of a business).
    pub role: String,
    pub rights: tally_domain::wallets::Rights,
    /// Whether this is the member's default wallet at the till.
    pub is_default: bool,
    pub joined_at: Timestamp,
    pub left_at: Option<Timestamp>,
}

/// A member joining a wallet: by a household's invitation code (its hash), or added as
/// a business's contact.
#[derive(Debug, Clone)]
pub struct JoinWallet {
    pub wallet_id: tally_domain::ids::WalletId,
    pub member_id: MemberId,
    pub invite_hash: Option<String>,
    pub rights: tally_domain::wallets::Rights,
    pub make_default: bool,
    pub now: Timestamp,
}

/// A change of a member's rights in a wallet (and whether it is their default).
#[derive(Debug, Clone)]
pub struct WalletRights {
    pub wallet_id: tally_domain::ids::WalletId,
    pub member_id: MemberId,
    pub rights: tally_domain::wallets::Rights,
    pub make_default: Option<bool>,
}

/// What each member earned into and spent from a wallet, by entry code, from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// `None` for what no member caused (expiry).
    pub member_id: Option<MemberId>,
    pub code: String,
    pub points: i64,
    pub entries: i64,
}

/// A reward as stored: checked, with the units left (`None`: no stock kept).
#[derive(Debug, Clone)]
pub struct RewardRow {
    pub reward: tally_domain::rewards::Reward,
    pub stock_left: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a member's catalogue is decided on: her facts as rules see them, her points,
/// and every reward with how many of it she took that count toward its limit now.
#[derive(Debug, Clone)]
pub struct MemberOffers {
    pub facts: tally_domain::rules::MemberFacts,
    pub available: i64,
    pub rewards: Vec<(RewardRow, u32)>,
}

/// A member redeems a reward.
#[derive(Debug, Clone)]
pub struct RedeemCmd {
    pub redemption_id: tally_domain::ids::RedemptionId,
    pub member_id: MemberId,
    pub reward_id: tally_domain::ids::RewardId,
    /// The caller's id for this redemption: the same id redeems once.
    pub request_id: String,
    pub request_hash: String,
    /// The new voucher code's hash and hint (unused for a donation).
    pub code_hash: String,
    pub code_hint: String,
    /// Plans whose holders have early access.
    pub early_plans: Vec<String>,
    /// Whether tiers are held per household (then `member.tier` is the household's).
    pub household_tier: bool,
    pub now: Timestamp,
}

/// A partner's till uses a voucher.
#[derive(Debug, Clone)]
pub struct VoucherUse {
    pub code_hash: String,
    pub partner_id: PartnerId,
    pub partner_name: String,
    pub location_id: Option<String>,
    pub now: Timestamp,
}

/// Which redemptions to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct RedemptionQuery {
    pub member_id: Option<MemberId>,
    /// Only those this partner fulfils.
    pub partner_id: Option<PartnerId>,
    pub status: Option<tally_domain::rewards::RedemptionStatus>,
    /// Only ids before this one (the next page).
    pub before: Option<String>,
    pub limit: u32,
}

/// A member sends points to another.
#[derive(Debug, Clone)]
pub struct TransferCmd {
    pub transfer_id: tally_domain::ids::TransferId,
    pub from: MemberId,
    /// The recipient, by id or identity.
    pub to: tally_domain::decide::MemberRef,
    pub points: i64,
    pub note: Option<String>,
    /// The caller's id for this transfer: the same id sends once.
    pub request_id: String,
    pub request_hash: String,
    pub policy: tally_domain::transfers::TransferPolicy,
    pub now: Timestamp,
}

/// A member's transfers, sent and received, newest first.
#[derive(Debug, Clone)]
pub struct TransferQuery {
    pub member_id: MemberId,
    /// Only ids before this one (the next page).
    pub before: Option<String>,
    pub limit: u32,
}

/// A member's points exchanged out to another programme.
#[derive(Debug, Clone)]
pub struct ExchangeOutCmd {
    pub order_id: tally_domain::ids::ExchangeOrderId,
    pub member_id: MemberId,
    pub exchange_partner_id: tally_domain::ids::ExchangePartnerId,
    pub points: i64,
    pub external_member: String,
    /// The caller's id for this order: the same id places one order.
    pub request_id: String,
    pub request_hash: String,
    pub now: Timestamp,
}

/// Another programme's units credited to a member.
#[derive(Debug, Clone)]
pub struct ExchangeInCmd {
    pub credit_id: tally_domain::ids::ExchangeCreditId,
    pub exchange_partner_id: tally_domain::ids::ExchangePartnerId,
    pub member: tally_domain::decide::MemberRef,
    pub units: i64,
    /// The other programme's reference: one credit per reference.
    pub reference: String,
    pub request_hash: String,
    /// The programme's expiry: the new lot expires as earned points do.
    pub expiry_months: u32,
    pub now: Timestamp,
}

/// Which exchange orders to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct ExchangeOrderQuery {
    pub member_id: Option<MemberId>,
    pub exchange_partner_id: Option<tally_domain::ids::ExchangePartnerId>,
    pub status: Option<tally_domain::exchange::OrderStatus>,
    /// Only ids before this one (the next page).
    pub before: Option<String>,
    pub limit: u32,
}

/// What went out to and came in from one exchange partner in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeVolume {
    pub orders_pending: i64,
    pub points_pending: i64,
    pub orders_confirmed: i64,
    pub points_out: i64,
    pub units_out: i64,
    pub orders_failed: i64,
    pub points_failed: i64,
    pub credits: i64,
    pub points_in: i64,
    pub units_in: i64,
}

impl ExchangeVolume {
    /// Adds the orders in `status` (`n` of them, their points and units).
    pub fn add_orders(&mut self, status: &str, n: i64, points: i64, units: i64) {
        match status {
            "pending" => {
                self.orders_pending += n;
                self.points_pending += points;
            }
            "confirmed" => {
                self.orders_confirmed += n;
                self.points_out += points;
                self.units_out += units;
            }
            _ => {
                self.orders_failed += n;
                self.points_failed += points;
            }
        }
    }
}
