//! The double-entry ledger's vocabulary: accounts, entry codes and transfers.
//!
//! A transfer moves points from one account to another and becomes two entries, a debit
//! of `-points` on `from` and a credit of `+points` on `to`, so all entries sum to zero.
//! Member accounts hold what members own (never negative); the programme side holds the
//! mirror image: what each partner issued and redeemed, what expired, what was lost.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    MemberAvailable(String),
    MemberPending(String),
    /// Points a member set aside for vouchers not yet used: they leave `available` when
    /// a reward is redeemed and go to the partner when the voucher is used, or back.
    MemberReserved(String),
    /// A shared wallet's spendable points (a household's or a business's pool).
    WalletAvailable(String),
    /// A shared wallet's points waiting to mature.
    WalletPending(String),
    /// Points a partner issued (goes negative as it issues).
    PartnerIssued(String),
    /// Points members spent at a partner's tills (grows as they spend).
    PartnerRedeemed(String),
    /// Points that expired unspent (breakage).
    ProgramExpired,
    /// Points reversed by returns that the member had already spent.
    ProgramUnrecovered,
    /// Points the programme itself gave (engagement events no partner funds).
    ProgramIssued,
    /// Points the operator funded at a partner's tills (programme-wide rules, tier and
    /// plan bonuses, its share of co-funded rules): goes negative as it funds. Not
    /// billed to the partner; its entries name the partner they were earned at.
    ProgramFunded(String),
    /// Points members gave to a charity (its code), for the operator to pay out.
    ProgramDonations(String),
    /// Points on their way from one member to another: a transfer credits it from the
    /// sender and debits it to the recipient in one write, so it always sums to zero.
    ProgramTransfers,
    /// Points exchanged out to another programme (its id), waiting for its answer.
    ExchangePending(String),
    /// Points gone out to another programme for good.
    ExchangeOut(String),
    /// Points that came in from another programme (goes negative as they come in).
    ExchangeIn(String),
}

impl Account {
    /// The account's key in the `entries` table.
    pub fn key(&self) -> String {
        match self {
            Account::MemberAvailable(m) => format!("member:{m}:available"),
            Account::MemberPending(m) => format!("member:{m}:pending"),
            Account::MemberReserved(m) => format!("member:{m}:reserved"),
            Account::WalletAvailable(w) => format!("wallet:{w}:available"),
            Account::WalletPending(w) => format!("wallet:{w}:pending"),
            Account::PartnerIssued(p) => format!("partner:{p}:issued"),
            Account::PartnerRedeemed(p) => format!("partner:{p}:redeemed"),
            Account::ProgramExpired => "program:expired".into(),
            Account::ProgramUnrecovered => "program:unrecovered".into(),
            Account::ProgramIssued => "program:issued".into(),
            Account::ProgramFunded(p) => format!("program:funded:{p}"),
            Account::ProgramDonations(c) => format!("program:donations:{c}"),
            Account::ProgramTransfers => "program:transfers".into(),
            Account::ExchangePending(x) => format!("exchange:{x}:pending"),
            Account::ExchangeOut(x) => format!("exchange:{x}:out"),
            Account::ExchangeIn(x) => format!("exchange:{x}:in"),
        }
    }

    /// The member an account belongs to, if it is a member account.
    pub fn member(&self) -> Option<&str> {
        match self {
            Account::MemberAvailable(m) | Account::MemberPending(m) | Account::MemberReserved(m) => Some(m),
            _ => None,
        }
    }

    /// The shared wallet an account belongs to, if it is a wallet account.
    pub fn wallet(&self) -> Option<&str> {
        match self {
            Account::WalletAvailable(w) | Account::WalletPending(w) => Some(w),
            _ => None,
        }
    }

    pub fn partner(&self) -> Option<&str> {
        match self {
            Account::PartnerIssued(p) | Account::PartnerRedeemed(p) | Account::ProgramFunded(p) => Some(p),
            _ => None,
        }
    }
}

/// Why an entry exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryCode {
    Earn,
    Redeem,
    Mature,
    Expire,
    ReturnReversal,
    ReturnRefund,
    ReturnUnrecovered,
    /// A paid membership's bonus points for a paid period, funded by the programme.
    MembershipBonus,
    /// A closing household's points split among its members by the owner.
    WalletSplit,
    /// Points set aside for a redeemed reward's voucher (available to reserved).
    RewardReserve,
    /// A voucher used at its partner (reserved to the partner's redeemed).
    RewardRedeem,
    /// A voucher cancelled or expired unused: its points back (reserved to available).
    RewardRelease,
    /// A voucher expired unused of a reward whose points are then forfeit (reserved to
    /// expired).
    RewardForfeit,
    /// Points given to a charity (available to the charity's account).
    Donation,
    /// Points a member sent another (the sender's available to `program:transfers`).
    TransferOut,
    /// Points a member received from another (`program:transfers` to the recipient's
    /// available).
    TransferIn,
    /// Points exchanged out: the member's available to `exchange:<id>:pending`.
    ExchangeOut,
    /// An order confirmed: `exchange:<id>:pending` to `exchange:<id>:out`.
    ExchangeConfirm,
    /// An order failed: `exchange:<id>:pending` back to the member's available.
    ExchangeRefund,
    /// Units credited in: `exchange:<id>:in` to the member's available.
    ExchangeIn,
}

impl EntryCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryCode::Earn => "earn",
            EntryCode::Redeem => "redeem",
            EntryCode::Mature => "mature",
            EntryCode::Expire => "expire",
            EntryCode::ReturnReversal => "return_reversal",
            EntryCode::ReturnRefund => "return_refund",
            EntryCode::ReturnUnrecovered => "return_unrecovered",
            EntryCode::MembershipBonus => "membership_bonus",
            EntryCode::WalletSplit => "wallet_split",
            EntryCode::RewardReserve => "reward_reserve",
            EntryCode::RewardRedeem => "reward_redeem",
            EntryCode::RewardRelease => "reward_release",
            EntryCode::RewardForfeit => "reward_forfeit",
            EntryCode::Donation => "donation",
            EntryCode::TransferOut => "transfer_out",
            EntryCode::TransferIn => "transfer_in",
            EntryCode::ExchangeOut => "exchange_out",
            EntryCode::ExchangeConfirm => "exchange_confirm",
            EntryCode::ExchangeRefund => "exchange_refund",
            EntryCode::ExchangeIn => "exchange_in",
        }
    }
}

impl fmt::Display for EntryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A movement of points between two accounts, caused by a transaction (and maybe a return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub from: Account,
    pub to: Account,
    pub points: i64,
    pub code: EntryCode,
    pub transaction_id: Option<String>,
    pub return_id: Option<String>,
}
