//! Errors of the domain: each one is something a caller did or asked that the rules refuse.

/// A refusal by the programme's rules. The HTTP layer maps each variant to a status and a
/// stable `snake_case` code; none of them wraps a storage error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    #[error("no FX rate for {0}")]
    NoFxRate(String),
    #[error("the member has {available} points available, {requested} were asked for")]
    InsufficientPoints { available: i64, requested: i64 },
    #[error("the points to redeem are worth more than the bill")]
    RedeemExceedsTotal,
    #[error("the returns would exceed the purchase amount")]
    ReturnExceedsPurchase,
    #[error("the return currency {got} differs from the purchase currency {expected}")]
    CurrencyMismatch { expected: String, got: String },
    /// A rule's CEL text does not compile or does not fit the rule context.
    #[error("{field}: {message}")]
    InvalidRule { field: &'static str, message: String },
    /// A rule could take too long on a large basket.
    #[error("{field}: {message}")]
    RuleTooCostly { field: &'static str, message: String },
    /// The receipt, return or event id was used before with a different request.
    #[error("the same id was used with a different request")]
    IdempotencyConflict,
    /// What the rules were evaluated with changed before the write (the member's visit
    /// count at the partner): the caller evaluates again and retries.
    #[error("the member changed while the rules were evaluated; try again")]
    Stale,
    #[error("the location does not belong to this partner")]
    UnknownLocation,
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// A membership payment of another amount or currency than the plan's price.
    #[error("the payment must be the plan's price, {expected}")]
    PaymentMismatch { expected: String },
    /// A payment for a membership that is `expired` or `cancelled`.
    #[error("the membership is {0}: start a new one")]
    MembershipOver(&'static str),
    /// The member may not pay with the shared wallet the sale draws on.
    #[error("this member may not spend the points of wallet {0}")]
    NotAllowedToSpend(String),
    /// The till named a shared wallet the member does not belong to.
    #[error("the member does not belong to wallet {0}")]
    NotInWallet(String),
    /// A change to a shared wallet that its state does not allow (`code` says which):
    /// a member already in a household, a household with points left to close, ….
    #[error("{message}")]
    WalletConflict { code: &'static str, message: String },
    /// A reward or a voucher that cannot be redeemed or used as asked (`code` says
    /// why: `sold_out`, `limit_reached`, `voucher_used`, `voucher_expired`, …).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The request would pass one of Tally's limits (points a sale may earn, points an
    /// account may hold); `code` names the limit.
    #[error("{message}")]
    LimitExceeded { code: &'static str, message: String },
    /// A plan broke one of its invariants: a bug, never the caller's fault. Nothing is
    /// written.
    #[error("a plan invariant was broken: {0}")]
    Invariant(&'static str),
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            message: message.into(),
        }
    }
}
