//! Closing a shared wallet with a split.

use super::*;
use crate::ids::{Id, WalletId};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn lot(id: i64, remaining: i64, expires: &str) -> Lot {
    Lot {
        id: Some(id),
        remaining,
        earned_at: ts("2026-01-01T00:00:00Z"),
        expires_at: ts(expires),
        matures_at: None,
        transaction_id: Some(format!("txn_{id}")),
        origin: LotOrigin::Earn,
    }
}

fn wallet(lots: Vec<Lot>) -> MemberState {
    let available = lots.iter().map(|l| l.remaining).sum();
    MemberState {
        lots,
        lots_loaded: true,
        ..MemberState::of_wallet(
            WalletId::from_stored("wal_h".into()),
            MemberId::default(),
            Balance {
                available,
                pending: 0,
                lifetime_earned: available,
            },
            None,
        )
    }
}

fn member(id: &str, available: i64) -> MemberState {
    MemberState {
        member_id: MemberId::from_stored(id.into()),
        balance: Balance {
            available,
            pending: 0,
            lifetime_earned: available,
        },
        ..MemberState::default()
    }
}

#[test]
fn closing_splits_every_point_keeping_the_dates() {
    let w = wallet(vec![
        lot(1, 300, "2027-06-01T00:00:00Z"),
        lot(2, 200, "2027-01-01T00:00:00Z"),
    ]);
    let shares = [
        Share {
            member: member("mem_a", 10),
            points: 250,
        },
        Share {
            member: member("mem_b", 0),
            points: 250,
        },
    ];
    let now = ts("2026-11-28T00:00:00Z");
    let close = plan_close(&w, &shares, now).unwrap();
    assert_eq!(close.wallet.balance_after.available, 0);
    assert_eq!(close.wallet.transfers.iter().map(|t| t.points).sum::<i64>(), 500);
    // The soonest-expiring lot goes first: mem_a gets all 200 of it and 50 of the other.
    let (a, plan_a) = &close.members[0];
    assert_eq!(a.as_str(), "mem_a");
    assert_eq!(plan_a.balance_after.available, 260);
    let got: Vec<(i64, Timestamp)> = plan_a.new_lots.iter().map(|l| (l.remaining, l.expires_at)).collect();
    assert_eq!(
        got,
        vec![(200, ts("2027-01-01T00:00:00Z")), (50, ts("2027-06-01T00:00:00Z"))]
    );
    assert_eq!(plan_a.next_due_at, Some(ts("2027-01-01T00:00:00Z")));
    let (_, plan_b) = &close.members[1];
    assert_eq!(plan_b.new_lots.iter().map(|l| l.remaining).sum::<i64>(), 250);
    let updates: Vec<(i64, i64)> = close.wallet.lot_updates.iter().map(|u| (u.id, u.remaining)).collect();
    assert_eq!(updates, vec![(1, 0), (2, 0)]);
}

#[test]
fn closing_refuses_a_split_that_leaves_points_or_names_a_member_twice() {
    let w = wallet(vec![lot(1, 100, "2027-06-01T00:00:00Z")]);
    let now = ts("2026-11-28T00:00:00Z");
    let short = [Share {
        member: member("mem_a", 0),
        points: 99,
    }];
    let err = plan_close(&w, &short, now).unwrap_err();
    assert!(matches!(
        err,
        DomainError::WalletConflict {
            code: "wallet_not_empty",
            ..
        }
    ));
    let twice = [
        Share {
            member: member("mem_a", 0),
            points: 50,
        },
        Share {
            member: member("mem_a", 0),
            points: 50,
        },
    ];
    assert!(matches!(
        plan_close(&w, &twice, now).unwrap_err(),
        DomainError::Invalid { .. }
    ));
    let mut pending = w.clone();
    pending.balance.pending = 5;
    let all = [Share {
        member: member("mem_a", 0),
        points: 100,
    }];
    assert!(plan_close(&pending, &all, now).is_err());
    assert!(plan_close(&w, &all, now).is_ok());
}
