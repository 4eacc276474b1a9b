//! The commands the decisions take: a sale, a return, an engagement event, validated
//! and valued by the HTTP layer before any backend sees them.

use crate::earning::{ProgramTerms, Valuation};
use crate::identity::Identity;
use crate::ids::{EventId, LocationId, MemberId, PartnerId, ReturnId, TransactionId};
use crate::money::Money;
use crate::plan::PartnerTerms;
use crate::rules::Award;
use jiff::Timestamp;

/// How a request names a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    Id(MemberId),
    Identity(Identity),
}

/// A purchase, validated and valued by the caller; the decision settles, spends and earns.
#[derive(Debug, Clone)]
pub struct PurchaseCmd {
    pub transaction_id: TransactionId,
    pub partner: PartnerTerms,
    pub external_id: String,
    /// SHA-256 of the request body: a retry with another body is a conflict.
    pub request_hash: String,
    pub member: MemberRef,
    pub location_id: Option<LocationId>,
    pub occurred_at: Timestamp,
    pub total: Money,
    /// The basket lines as JSON, kept for rules and analytics.
    pub lines_json: String,
    pub redeem_points: i64,
    /// The shared wallet the till named for this sale; `None`: the member's default.
    pub wallet_id: Option<crate::ids::WalletId>,
    pub valuation: Valuation,
    /// What the earning rules would give, before caps and budgets.
    pub rules: RuleDraft,
    pub program: ProgramTerms,
    pub now: Timestamp,
}

impl PurchaseCmd {
    /// The shared wallet a sale may use: the one the till named, else the member's
    /// default (`state` is the member's).
    pub fn wallet_in_play<'a>(&'a self, state: &'a crate::plan::MemberState) -> Option<&'a crate::ids::WalletId> {
        self.wallet_id.as_ref().or(state.default_wallet.as_ref())
    }
}

/// The earning rules' awards for one sale or event, as evaluated before the write; the
/// decision applies caps and budgets from the counters read in the write transaction.
/// With them, what the sale or event counts for in the open challenges.
#[derive(Debug, Clone, Default)]
pub struct RuleDraft {
    pub awards: Vec<Award>,
    /// One step per challenge it counts toward; the write decides each
    /// ([`crate::challenges::decide_step`]).
    pub steps: Vec<crate::challenges::Step>,
    /// Set when a rule read the member's visit count: the member and count the rules
    /// saw. If either changed by the time of the write, the decision is `Stale`.
    pub assumed: Option<MemberAssumption>,
}

impl RuleDraft {
    /// Whether the write must read the member's current visit count at the partner.
    pub fn reads_visits(&self) -> bool {
        self.assumed.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAssumption {
    pub member_id: MemberId,
    pub visits: i64,
}

/// An engagement event to record (and maybe earn on).
#[derive(Debug, Clone)]
pub struct EventCmd {
    pub id: EventId,
    /// The partner id, or `operator`: event ids are unique per source.
    pub source: String,
    pub external_id: String,
    /// The partner the event happened at (it funds the points); none for the programme.
    pub partner: Option<PartnerTerms>,
    pub member: MemberRef,
    pub event_type: String,
    pub attributes_json: String,
    pub occurred_at: Timestamp,
    pub request_hash: String,
    pub rules: RuleDraft,
    pub program: ProgramTerms,
    pub now: Timestamp,
}

/// A return of part or all of a purchase.
#[derive(Debug, Clone)]
pub struct ReturnCmd {
    pub return_id: ReturnId,
    /// The partner asking; only the partner that made the sale may return it.
    pub partner_id: PartnerId,
    pub transaction_id: TransactionId,
    pub external_id: String,
    pub request_hash: String,
    pub amount: Money,
    pub program: ProgramTerms,
    pub now: Timestamp,
}

/// The answer to a purchase, return or event: the JSON the client got the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub receipt_json: String,
    /// True when this answer is a replay of an earlier request.
    pub replayed: bool,
    /// The referred member whose referral this write converted (her points and her
    /// referrer's are given next) or reversed (taken back next).
    pub follow_up: Option<MemberId>,
    /// The challenges this write completed for its member (`challenge_completed` is
    /// posted to her next).
    pub completed: Vec<crate::ids::ChallengeId>,
}
