//! Shared wallets on their own: which wallet a sale earns into and pays from.

use super::*;
use crate::ids::Id;

fn link(earn_into: bool, spend: bool) -> WalletLink {
    WalletLink {
        wallet_id: WalletId::from_stored("wal_1".into()),
        kind: WalletKind::Household,
        rights: Rights { earn_into, spend },
    }
}

#[test]
fn a_sale_earns_and_pays_as_the_member_may() {
    let l = link(true, false);
    let route = route_sale(None, Some(&l), 0).unwrap();
    assert!(route.earns_into_wallet && !route.pays_from_wallet);
    let err = route_sale(None, Some(&l), 10).unwrap_err();
    assert!(matches!(err, DomainError::NotAllowedToSpend(w) if w == "wal_1"));
    let route = route_sale(None, Some(&link(false, true)), 10).unwrap();
    assert!(!route.earns_into_wallet && route.pays_from_wallet);
    assert_eq!(route_sale(None, None, 10).unwrap(), SaleRoute::default());
}

#[test]
fn a_wallet_the_member_is_not_in_is_refused() {
    let other = WalletId::from_stored("wal_2".into());
    let err = route_sale(Some(&other), Some(&link(true, true)), 0).unwrap_err();
    assert!(matches!(err, DomainError::NotInWallet(w) if w == "wal_2"));
    let err = route_sale(Some(&other), None, 0).unwrap_err();
    assert!(matches!(err, DomainError::NotInWallet(_)));
}
