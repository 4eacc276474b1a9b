//! Opaque identifiers: a short type prefix and 26 characters of time-ordered randomness.

use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Makes a new id such as `mem_01jd7x...`: 48 bits of milliseconds then 80 random bits,
/// so ids sort roughly by creation time and never collide in practice.
pub fn new_id(prefix: &str, random: [u8; 10]) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut value: u128 = (u128::from(millis & 0xFFFF_FFFF_FFFF)) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        out.push(ALPHABET[((value >> (i * 5)) & 31) as usize] as char);
    }
    out
}

/// True when `s` could be an id we issued: short, ASCII letters, digits and `_` only.
/// Ids from the path or a body are checked with this before they reach a query.
pub fn is_plausible_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A kind of id: its prefix, and how it is made from text already checked.
pub trait Id: Sized {
    /// The prefix of ids this kind issues, such as `mem`.
    const PREFIX: &'static str;
    /// An id read from storage or just issued: taken as it is.
    fn from_stored(s: String) -> Self;

    /// An id from a request: `None` unless it could be one we issued.
    fn parse(s: &str) -> Option<Self> {
        is_plausible_id(s).then(|| Self::from_stored(s.to_string()))
    }

    /// Whether stored text is an id of this kind (`<prefix>_…`). [`Id::parse`] checks
    /// only that text could be an id: where ids of two kinds share a column, this tells
    /// them apart.
    fn is_kind(s: &str) -> bool {
        s.strip_prefix(Self::PREFIX).is_some_and(|rest| rest.starts_with('_'))
    }

    /// A new id of this kind.
    fn generate(random: [u8; 10]) -> Self {
        Self::from_stored(new_id(Self::PREFIX, random))
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl Id for $name {
            const PREFIX: &'static str = $prefix;
            fn from_stored(s: String) -> Self {
                $name(s)
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// A member of the coalition.
    MemberId,
    "mem"
);
id_type!(
    /// A partner business.
    PartnerId,
    "ptn"
);
id_type!(
    /// A posted sale.
    TransactionId,
    "txn"
);
id_type!(
    /// A return of (part of) a sale.
    ReturnId,
    "ret"
);
id_type!(
    /// A reward in the catalogue.
    RewardId,
    "rwd"
);
id_type!(
    /// A member's redemption of a reward (its voucher, or a donation).
    RedemptionId,
    "rdm"
);
id_type!(
    /// A recorded engagement event.
    EventId,
    "evt"
);
id_type!(
    /// An earning rule (all of its versions).
    RuleId,
    "rul"
);
id_type!(
    /// A partner's location.
    LocationId,
    "loc"
);
id_type!(
    /// A member's membership of a paid plan.
    MembershipId,
    "msh"
);
id_type!(
    /// A recorded membership payment.
    PaymentId,
    "pay"
);
id_type!(
    /// A shared wallet: a household's or a business's pooled points.
    WalletId,
    "wal"
);
id_type!(
    /// Points one member sent another.
    TransferId,
    "trf"
);
id_type!(
    /// Another programme members exchange points with (an airline, a hotel chain).
    ExchangePartnerId,
    "xpt"
);
id_type!(
    /// A member's points exchanged out to another programme.
    ExchangeOrderId,
    "xor"
);
id_type!(
    /// Another programme's units credited to a member as points.
    ExchangeCreditId,
    "xcr"
);
id_type!(
    /// A challenge members take part in (a goal over a window).
    ChallengeId,
    "chl"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_fixed_length() {
        let id = new_id("mem", [7; 10]);
        assert!(id.starts_with("mem_"));
        assert_eq!(id.len(), 30);
        assert!(is_plausible_id(&id));
        assert_ne!(new_id("mem", [1; 10]), new_id("mem", [2; 10]));
    }

    #[test]
    fn ids_of_two_kinds_in_one_column_are_told_apart() {
        let (member, wallet) = (new_id("mem", [7; 10]), new_id("wal", [7; 10]));
        assert!(WalletId::is_kind(&wallet) && !WalletId::is_kind(&member));
        assert!(MemberId::is_kind(&member) && !MemberId::is_kind(&wallet));
        assert!(!WalletId::is_kind("wal") && !WalletId::is_kind("walx_1"));
    }

    #[test]
    fn hostile_ids_are_refused() {
        assert!(!is_plausible_id(""));
        assert!(!is_plausible_id("a'; drop table members; --"));
        assert!(!is_plausible_id(&"a".repeat(65)));
    }
}
