//! Shared wallets on their own: who may join and leave.

use super::*;
use crate::ids::Id;

#[test]
fn one_household_per_member_any_number_of_businesses() {
    let (h1, h2) = (
        WalletId::from_stored("wal_1".into()),
        WalletId::from_stored("wal_2".into()),
    );
    assert!(may_join(WalletKind::Household, &h2, false, None).is_ok());
    let err = may_join(WalletKind::Household, &h2, false, Some(&h1)).unwrap_err();
    assert!(matches!(
        err,
        DomainError::WalletConflict {
            code: "household_taken",
            ..
        }
    ));
    assert!(may_join(WalletKind::Business, &h2, false, Some(&h1)).is_ok());
    let err = may_join(WalletKind::Business, &h2, true, None).unwrap_err();
    assert!(matches!(
        err,
        DomainError::WalletConflict {
            code: "already_in_wallet",
            ..
        }
    ));
    assert!(may_leave(true).is_err() && may_leave(false).is_ok());
}
