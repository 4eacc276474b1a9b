//! What the web faces (operator console, partner back office, member portal) keep and
//! read: staff accounts, sign-in sessions, members' one-time sign-in codes, the audit
//! log, the servers' signing keys, and the read models their pages draw from the ledger
//! and the sales. Both backends share the rows, the checks and the ledger's
//! classification here.

use crate::StoreError;
use jiff::Timestamp;
use tally_domain::DomainError;
use tally_domain::ids::{LocationId, MemberId, PartnerId, TransactionId};
use tally_domain::money::Money;

/// The operator's roles: their users belong to no partner.
pub const OPERATOR_ROLES: [&str; 2] = ["operator_admin", "operator_analyst"];
/// A partner's roles: their users belong to one partner.
pub const PARTNER_ROLES: [&str; 2] = ["partner_manager", "partner_cashier"];

/// A staff account to create. The caller makes the id (`usr_…`), lowercases the email
/// and hashes the password (an argon2 PHC string).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub name: String,
    /// One of [`OPERATOR_ROLES`] (no `partner_id`) or [`PARTNER_ROLES`] (with one).
    pub role: String,
    pub partner_id: Option<PartnerId>,
    pub password_hash: String,
    pub now: Timestamp,
}

/// A staff account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub partner_id: Option<PartnerId>,
    pub password_hash: String,
    pub created_at: Timestamp,
    /// When the account was disabled; a disabled account cannot sign in.
    pub disabled_at: Option<Timestamp>,
}

impl NewUser {
    /// The role is known and the partner goes with it: a partner's role names a
    /// partner, an operator's none.
    pub fn check(&self) -> Result<(), StoreError> {
        let partner_role = PARTNER_ROLES.contains(&self.role.as_str());
        if !partner_role && !OPERATOR_ROLES.contains(&self.role.as_str()) {
            return Err(DomainError::invalid("role", format!("{:?} is not a staff role", self.role)).into());
        }
        if partner_role != self.partner_id.is_some() {
            let message = match partner_role {
                true => "a partner's user belongs to a partner",
                false => "an operator's user belongs to no partner",
            };
            return Err(DomainError::invalid("partner_id", message).into());
        }
        Ok(())
    }

    pub(crate) fn row(&self) -> UserRow {
        UserRow {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role.clone(),
            partner_id: self.partner_id.clone(),
            password_hash: self.password_hash.clone(),
            created_at: self.now,
            disabled_at: None,
        }
    }
}

/// The answer to a user whose email another user has.
pub(crate) fn email_taken(email: &str) -> StoreError {
    StoreError::Conflict {
        code: "email_taken",
        message: format!("a user with the email {email} exists already"),
    }
}

/// A signed-in browser, by the SHA-256 (hex) of its cookie's token: a staff user's or a
/// member's, never both. The user or member must exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: Option<String>,
    pub member_id: Option<MemberId>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl SessionRow {
    /// Exactly one of the user and the member.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.user_id.is_some() == self.member_id.is_some() {
            return Err(DomainError::invalid("session", "a session is a staff user's or a member's").into());
        }
        Ok(())
    }
}

/// A one-time sign-in code sent to a member (kept as its hash).
#[derive(Debug, Clone)]
pub struct NewLoginCode {
    pub member_id: MemberId,
    /// Where it was sent: a normalised email or an E.164 phone number.
    pub destination: String,
    pub code_hash: String,
    pub now: Timestamp,
    pub expires_at: Timestamp,
}

/// One line of the audit log: who (a staff user, with the partner they belong to, or a
/// member) did what, and how it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub at: Timestamp,
    pub user_id: Option<String>,
    pub member_id: Option<MemberId>,
    /// The partner the acting user belongs to; `None` for the operator's users and for
    /// members.
    pub partner_id: Option<PartnerId>,
    /// Such as `POST /v1/rewards`.
    pub action: String,
    pub target: String,
    pub status: u16,
}

/// A line of the audit log as read: the row and its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub row: AuditRow,
}

/// Points issued to and redeemed by members in one calendar month (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthPoints {
    /// `YYYY-MM`.
    pub month: String,
    pub issued: i64,
    pub redeemed: i64,
}

/// What one member earned at one partner's sales, and spent there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerMemberPoints {
    pub member_id: MemberId,
    pub partner_id: PartnerId,
    pub earned: i64,
    pub spent: i64,
}

/// Entry codes that issue points to members, for [`MonthPoints::issued`]: what a sale,
/// an event (referral and challenge rewards included) or the operator funds (`earn`),
/// and a paid membership's bonus (`membership_bonus`). Not points moved between members
/// (`transfer_in`, `wallet_split`), given back by a return (`return_refund`), released
/// from a voucher, or exchanged in from another programme (`exchange_in`).
pub const ISSUED_CODES: &str = "'earn', 'membership_bonus'";

/// Entry codes of points members spend, for [`MonthPoints::redeemed`]: paying at a
/// partner's till (`redeem`), a voucher used at its partner (`reward_redeem`), and a
/// gift to a charity (`donation`). Not points set aside for a voucher not yet used
/// (`reward_reserve`), sent to another member, exchanged out or expired.
pub const REDEEMED_CODES: &str = "'redeem', 'reward_redeem', 'donation'";

/// How the read models read the ledger: each transfer is two entries, one on a member's
/// (or shared wallet's) account and its mirror on the programme's side (a partner's
/// `issued`/`redeemed`, `program:funded:…`, `program:issued`, `program:donations:…`).
/// They read only the programme's side, which is what the partial index on
/// `entries (recorded_at)` holds: issued points are its debits (negated), spent points
/// its credits. Months are those the entries were recorded in, and figures are gross:
/// a return is not netted out of the month of its sale.
pub const PROGRAMME_SIDE: &str = "account NOT LIKE 'member:%' AND account NOT LIKE 'wallet:%'";

/// A partner's sale or a return of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnKind {
    Sale,
    Return,
}

impl TxnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnKind::Sale => "sale",
            TxnKind::Return => "return",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<TxnKind, StoreError> {
        match s {
            "sale" => Ok(TxnKind::Sale),
            "return" => Ok(TxnKind::Return),
            other => Err(StoreError::corrupt(format!("a transaction kind {other:?}"))),
        }
    }
}

/// One of a partner's sales or returns, for its back office. A return's figures are
/// what it undid, all non-negative like a sale's: the amount returned, the sale's earned
/// points it took back, and its redeemed points it gave back.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerTxn {
    /// The sale's id (`txn_…`) or the return's (`ret_…`).
    pub id: String,
    pub kind: TxnKind,
    /// The sale: itself, or the one returned.
    pub sale_id: TransactionId,
    pub member_id: MemberId,
    /// The sale's location.
    pub location_id: Option<LocationId>,
    /// When the sale took place; when the return was recorded.
    pub occurred_at: Timestamp,
    pub amount: Money,
    pub points_earned: i64,
    pub points_redeemed: i64,
}

impl PartnerTxn {
    /// Where the page after this line starts.
    pub fn cursor(&self) -> TxnCursor {
        TxnCursor {
            at: self.occurred_at,
            id: self.id.clone(),
        }
    }
}

/// A place in a partner's transactions, newest first: the lines after it are older, or
/// as old with a smaller id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnCursor {
    pub at: Timestamp,
    pub id: String,
}

/// The bounds of a page of transactions: `(at, id)` to bind, where no cursor is after
/// every line.
pub(crate) fn cursor_bounds(before: Option<&TxnCursor>) -> (i64, String) {
    match before {
        Some(c) => (crate::model::to_micros(c.at), c.id.clone()),
        None => (i64::MAX, String::new()),
    }
}

/// What a return undid of its sale's points, from its stored receipt: the earned points
/// taken back (those the member had spent already included) and the redeemed points
/// given back.
pub(crate) fn return_points(receipt_json: &str) -> Result<(i64, i64), StoreError> {
    #[derive(serde::Deserialize)]
    struct Undone {
        points_reversed: i64,
        points_refunded: i64,
        #[serde(default)]
        points_unrecovered: i64,
    }
    let u: Undone = serde_json::from_str(receipt_json)?;
    Ok((
        u.points_reversed.saturating_add(u.points_unrecovered),
        u.points_refunded,
    ))
}

/// Points a member holds in one lot: when they become hers to spend (`matures_at`, while
/// pending) and when they expire. The member portal lists them by day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLot {
    pub points: i64,
    pub matures_at: Option<Timestamp>,
    pub expires_at: Timestamp,
}

/// At most this many of a member's open lots are read for her page (a member with more
/// sees the soonest to expire).
pub const OPEN_LOTS_READ: u32 = 500;

/// A member who bought at a partner: how often, when last, and the points earned there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerCustomer {
    pub member_id: MemberId,
    /// Sales (returns are not visits).
    pub visits: u64,
    pub last_visit: Timestamp,
    /// Earned at the partner's sales, as posted (returns not taken off).
    pub points_earned: i64,
}

/// Whether two hashes (or tags) are equal, in time that does not depend on where they
/// differ; the server's signed tokens are checked with it too.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}
