//! Who may join, change rights, leave and receive a share, decided on facts alone.

use super::*;
use crate::ids::Id;
use jiff::ToSpan;

fn wallet(id: &str) -> WalletId {
    WalletId::from_stored(id.into())
}

fn member(id: &str) -> MemberId {
    MemberId::from_stored(id.into())
}

const BOTH: Rights = Rights {
    earn_into: true,
    spend: true,
};

fn household(closed: bool) -> Roster {
    Roster {
        id: wallet("wal_h"),
        kind: WalletKind::Household,
        closed,
        seats: vec![Seat {
            member_id: member("mem_owner"),
            role: Role::Owner,
            rights: BOTH,
        }],
    }
}

fn business() -> Roster {
    Roster {
        id: wallet("wal_b"),
        kind: WalletKind::Business,
        closed: false,
        seats: Vec::new(),
    }
}

fn candidate(id: &str, household: Option<&str>, default_wallet: Option<&str>) -> Candidate {
    Candidate {
        member_id: member(id),
        household: household.map(wallet),
        default_wallet: default_wallet.map(wallet),
    }
}

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn invite(of: &str) -> Invite {
    Invite {
        wallet_id: wallet(of),
        used: false,
        expires_at: now() + 1.hour(),
    }
}

fn code_of(e: DomainError) -> &'static str {
    match e {
        DomainError::WalletConflict { code, .. } => code,
        DomainError::Invalid { field, .. } => field,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_household_is_joined_with_a_valid_code_of_its_own() {
    let h = household(false);
    let jana = candidate("mem_jana", None, None);
    let change = decide_join(&h, &jana, Some(&invite("wal_h")), BOTH, false, now()).unwrap();
    assert_eq!(change.seat.role, Role::Member);
    assert!(change.uses_invite);
    // She earns into it and had no default: it becomes hers.
    assert_eq!(change.default, DefaultChange::Set);
    for bad in [
        None,
        Some(invite("wal_other")),
        Some(Invite {
            used: true,
            ..invite("wal_h")
        }),
        Some(Invite {
            expires_at: now(),
            ..invite("wal_h")
        }),
    ] {
        let err = decide_join(&h, &jana, bad.as_ref(), BOTH, false, now()).unwrap_err();
        assert_eq!(code_of(err), "code", "{bad:?}");
    }
}

#[test]
fn one_household_per_member_any_number_of_businesses() {
    let in_other = candidate("mem_jana", Some("wal_other"), Some("wal_other"));
    let err = decide_join(&household(false), &in_other, Some(&invite("wal_h")), BOTH, false, now()).unwrap_err();
    assert_eq!(code_of(err), "household_taken");
    let change = decide_join(&business(), &in_other, None, BOTH, false, now()).unwrap();
    assert_eq!(change.seat.role, Role::Contact);
    assert!(!change.uses_invite);
    // She has a default already and did not ask for this one.
    assert_eq!(change.default, DefaultChange::Keep);
    let owner = candidate("mem_owner", Some("wal_h"), None);
    let err = decide_join(&household(false), &owner, Some(&invite("wal_h")), BOTH, false, now()).unwrap_err();
    assert_eq!(code_of(err), "already_in_wallet");
}

#[test]
fn a_closed_wallet_takes_no_change() {
    let h = household(true);
    let jana = candidate("mem_jana", None, None);
    let seat = h.seats[0].clone();
    let owner = candidate("mem_owner", Some("wal_h"), Some("wal_h"));
    let errs = [
        decide_invite(&h).unwrap_err(),
        decide_join(&h, &jana, Some(&invite("wal_h")), BOTH, false, now()).unwrap_err(),
        decide_rights(&h, &seat, &owner, BOTH, None).unwrap_err(),
        decide_leave(&h, &seat, &owner).unwrap_err(),
        may_receive_split(&h, [&seat.member_id]).unwrap_err(),
    ];
    for err in errs {
        assert_eq!(code_of(err), "wallet_closed");
    }
}

#[test]
fn invitations_are_a_households() {
    assert!(decide_invite(&household(false)).is_ok());
    assert_eq!(code_of(decide_invite(&business()).unwrap_err()), "not_a_household");
}

#[test]
fn the_owner_closes_rather_than_leaves_and_a_leaver_loses_the_default() {
    let mut h = household(false);
    h.seats.push(Seat {
        member_id: member("mem_jana"),
        role: Role::Member,
        rights: BOTH,
    });
    let owner = candidate("mem_owner", Some("wal_h"), Some("wal_h"));
    assert_eq!(
        code_of(decide_leave(&h, &h.seats[0], &owner).unwrap_err()),
        "owner_cannot_leave"
    );
    let jana = candidate("mem_jana", Some("wal_h"), Some("wal_h"));
    assert_eq!(decide_leave(&h, &h.seats[1], &jana), Ok(DefaultChange::Clear));
    let elsewhere = candidate("mem_jana", Some("wal_h"), Some("wal_b"));
    assert_eq!(decide_leave(&h, &h.seats[1], &elsewhere), Ok(DefaultChange::Keep));
}

#[test]
fn rights_change_and_the_default_moves_only_when_asked() {
    let h = household(false);
    let seat = h.seats[0].clone();
    let owner = candidate("mem_owner", Some("wal_h"), Some("wal_h"));
    let spend_only = Rights {
        earn_into: false,
        spend: true,
    };
    let change = decide_rights(&h, &seat, &owner, spend_only, None).unwrap();
    assert_eq!(change.seat.rights, spend_only);
    assert_eq!(change.seat.role, Role::Owner);
    assert_eq!(change.default, DefaultChange::Keep);
    let change = decide_rights(&h, &seat, &owner, spend_only, Some(false)).unwrap();
    assert_eq!(change.default, DefaultChange::Clear);
    let elsewhere = candidate("mem_owner", Some("wal_h"), Some("wal_b"));
    let change = decide_rights(&h, &seat, &elsewhere, spend_only, Some(false)).unwrap();
    assert_eq!(change.default, DefaultChange::Keep);
    let change = decide_rights(&h, &seat, &elsewhere, spend_only, Some(true)).unwrap();
    assert_eq!(change.default, DefaultChange::Set);
}

#[test]
fn only_current_members_receive_a_share() {
    let h = household(false);
    assert!(may_receive_split(&h, [&member("mem_owner")]).is_ok());
    assert_eq!(
        code_of(may_receive_split(&h, [&member("mem_owner"), &member("mem_gone")]).unwrap_err()),
        "split"
    );
}

#[test]
fn a_household_opens_with_its_owner_a_business_without() {
    let id = wallet("wal_h");
    let owner = candidate("mem_owner", None, None);
    let seat = decide_open(&id, WalletKind::Household, Some(&owner), BOTH)
        .unwrap()
        .unwrap();
    assert_eq!(seat.seat.role, Role::Owner);
    assert_eq!(seat.default, DefaultChange::Set);
    let taken = candidate("mem_owner", Some("wal_other"), None);
    assert_eq!(
        code_of(decide_open(&id, WalletKind::Household, Some(&taken), BOTH).unwrap_err()),
        "household_taken"
    );
    assert_eq!(
        code_of(decide_open(&id, WalletKind::Household, None, BOTH).unwrap_err()),
        "owner_id"
    );
    assert_eq!(
        decide_open(&wallet("wal_b"), WalletKind::Business, None, BOTH),
        Ok(None)
    );
}

#[test]
fn a_business_has_no_owner_and_asking_for_the_default_moves_it() {
    let owner = candidate("mem_owner", None, None);
    assert_eq!(
        code_of(decide_open(&wallet("wal_b"), WalletKind::Business, Some(&owner), BOTH).unwrap_err()),
        "owner_id"
    );
    // A member with a default elsewhere who asks for this one gets it.
    let elsewhere = candidate("mem_jana", Some("wal_h"), Some("wal_h"));
    let spend_only = Rights {
        earn_into: false,
        spend: true,
    };
    let change = decide_join(&business(), &elsewhere, None, spend_only, true, now()).unwrap();
    assert_eq!(change.default, DefaultChange::Set);
    // Without asking, and not earning into it, nothing moves even with no default.
    let none = candidate("mem_karel", None, None);
    let change = decide_join(&business(), &none, None, spend_only, false, now()).unwrap();
    assert_eq!(change.default, DefaultChange::Keep);
}
