//! What both backends share about referral rewards: the stored referral, the events
//! Tally posts for a conversion, and a referrer's list.

use crate::model::from_micros;
use jiff::Timestamp;
use tally_domain::ids::{Id, MemberId};
use tally_domain::plan::TakeBack;
use tally_domain::referrals::ReferralStatus;

/// The sender name of the events Tally posts itself (`events.source`).
pub const SOURCE: &str = "tally";

/// Which member of a referral an event or a take-back is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The member who shared her code.
    Referrer,
    /// The member who joined with it.
    Referred,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Referrer, Side::Referred];

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Referrer => "referrer",
            Side::Referred => "referred",
        }
    }
}

/// The id (per [`SOURCE`]) of the `referral_converted` event a side gets for the
/// referral of `referred`: one per side and referral, ever.
pub fn event_external_id(referred: &MemberId, side: Side) -> String {
    format!("referral:{}:{}", referred.as_str(), side.as_str())
}

/// Whether a new member's identities reach the referrer (her `emails`): a sign-up
/// with the referrer's own mailbox under another spelling refers herself. (Phones and
/// cards are unique across members, so one of hers cannot sign up again.)
pub fn self_referral(identities: &[tally_domain::identity::Identity], emails: &[String]) -> bool {
    identities.iter().any(|i| {
        i.kind == tally_domain::identity::IdentityKind::Email
            && emails
                .iter()
                .any(|e| tally_domain::referrals::same_mailbox(&i.value, e))
    })
}

/// A referral as stored once her first qualifying purchase decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralRecord {
    pub member_id: MemberId,
    pub referrer_id: MemberId,
    pub status: ReferralStatus,
    pub reason: Option<String>,
    pub transaction_id: String,
    pub decided_at: Timestamp,
    /// Whether `referral_converted` was posted to both.
    pub rewarded: bool,
    /// Whether, reversed, what they were given was taken back.
    pub taken_back: bool,
}

impl ReferralRecord {
    /// Whether the points of this referral still have to be given.
    pub fn to_reward(&self) -> bool {
        self.status == ReferralStatus::Converted && !self.rewarded
    }

    /// Whether the points of this referral still have to be taken back.
    pub fn to_take_back(&self) -> bool {
        self.status == ReferralStatus::Reversed && self.rewarded && !self.taken_back
    }

    /// The member a side names.
    pub fn member(&self, side: Side) -> &MemberId {
        match side {
            Side::Referrer => &self.referrer_id,
            Side::Referred => &self.member_id,
        }
    }
}

/// The columns a referral is read from, in [`record_from`]'s order.
pub(crate) const RECORD_COLUMNS: &str =
    "member_id, referrer_id, status, reason, transaction_id, decided_at, rewarded, taken_back";

pub(crate) type RecordTuple = (String, String, String, Option<String>, String, i64, i16, i16);

pub(crate) fn record_from(r: RecordTuple) -> ReferralRecord {
    ReferralRecord {
        member_id: MemberId::from_stored(r.0),
        referrer_id: MemberId::from_stored(r.1),
        status: ReferralStatus::parse(&r.2),
        reason: r.3,
        transaction_id: r.4,
        decided_at: from_micros(r.5),
        rewarded: r.6 != 0,
        taken_back: r.7 != 0,
    }
}

/// How a side's `referral_converted` points are taken back when the referral reverses.
pub(crate) fn take_back<'a>(event_id: &'a str, points: i64, reversal_id: &'a str) -> TakeBack<'a> {
    TakeBack {
        credit_id: event_id,
        issuer: tally_domain::ledger::Account::ProgramIssued,
        points,
        id: reversal_id,
        reason: "the referral's qualifying purchase was returned",
    }
}

/// One member a referrer invited, as her list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitedRow {
    pub member_id: MemberId,
    pub joined_at: Timestamp,
    pub status: ReferralStatus,
    pub reason: Option<String>,
    pub decided_at: Option<Timestamp>,
    /// What `referral_converted` gave the referrer for this one, less what was taken back.
    pub points: i64,
}

/// A referrer's referrals: counts over all of them and a page of the members invited,
/// newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberReferrals {
    pub invited: i64,
    pub converted: i64,
    pub reversed: i64,
    pub declined: i64,
    /// Points the referrer kept from her referrals.
    pub points_earned: i64,
    pub items: Vec<InvitedRow>,
}

/// The columns an invited member is read from (members `m`, referrals `r`, the
/// referrer's event `e`), in [`invited_from`]'s order.
pub(crate) const INVITED_SQL: &str = "SELECT m.id, m.created_at, r.status, r.reason, r.decided_at,
        COALESCE(e.points_earned, 0), CAST(COALESCE(r.taken_back, 0) AS SMALLINT)
     FROM members m
     LEFT JOIN referrals r ON r.member_id = m.id
     LEFT JOIN events e ON e.source = 'tally' AND e.external_id = 'referral:' || m.id || ':referrer'";

pub(crate) type InvitedTuple = (String, i64, Option<String>, Option<String>, Option<i64>, i64, i16);

pub(crate) fn invited_from(r: InvitedTuple) -> InvitedRow {
    InvitedRow {
        member_id: MemberId::from_stored(r.0),
        joined_at: from_micros(r.1),
        status: r.2.as_deref().map_or(ReferralStatus::Pending, ReferralStatus::parse),
        reason: r.3,
        decided_at: r.4.map(from_micros),
        points: if r.6 != 0 { 0 } else { r.5 },
    }
}

/// Counts and points over a referrer's referrals: the SQL (one parameter, the referrer).
pub(crate) const SUMMARY_SQL: &str = "SELECT COUNT(*),
        COUNT(*) FILTER (WHERE r.status = 'converted'),
        COUNT(*) FILTER (WHERE r.status = 'reversed'),
        COUNT(*) FILTER (WHERE r.status = 'declined'),
        CAST(COALESCE(SUM(CASE WHEN r.taken_back = 0 THEN e.points_earned ELSE 0 END), 0) AS BIGINT)
     FROM members m
     LEFT JOIN referrals r ON r.member_id = m.id
     LEFT JOIN events e ON e.source = 'tally' AND e.external_id = 'referral:' || m.id || ':referrer'
     WHERE m.referred_by = ";
