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
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            message: message.into(),
        }
    }
}
