//! Transfers between members: each of the policy's refusals, and the points arriving
//! with the dates they had.

use super::*;
use crate::ids::{Id, MemberId};
use crate::ledger::{Account, EntryCode};
use crate::lots::{Lot, LotOrigin};
use crate::plan::Balance;
use std::collections::HashMap;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-11-20T12:00:00Z";

fn lot(id: i64, points: i64, expires: &str) -> Lot {
    Lot {
        id: Some(id),
        remaining: points,
        earned_at: ts("2026-01-10T09:00:00Z"),
        expires_at: ts(expires),
        matures_at: None,
        transaction_id: Some(format!("txn_{id}")),
        origin: LotOrigin::Earn,
    }
}

fn member(id: &str, lots: Vec<Lot>) -> MemberState {
    let available = lots.iter().map(|l| l.remaining).sum();
    MemberState {
        member_id: MemberId::from_stored(id.into()),
        balance: Balance {
            available,
            pending: 0,
            lifetime_earned: available,
        },
        lots,
        lots_loaded: true,
        ..MemberState::default()
    }
}

fn open() -> TransferPolicy {
    TransferPolicy {
        enabled: true,
        min_points: 10,
        max_per_day: 500,
        max_per_month: 800,
        min_membership_days: 30,
        min_purchases: 1,
    }
}

fn facts() -> TransferFacts {
    TransferFacts {
        joined_at: ts("2026-01-01T00:00:00Z"),
        purchases: 3,
        sent_today: 0,
        sent_this_month: 0,
        same_household: false,
    }
}

fn send(policy: &TransferPolicy, facts: &TransferFacts, points: i64) -> Result<TransferDecision, DomainError> {
    let sender = member(
        "mem_a",
        vec![lot(1, 300, "2027-06-30T00:00:00Z"), lot(2, 400, "2027-01-31T00:00:00Z")],
    );
    let recipient = member("mem_b", vec![lot(9, 50, "2028-01-01T00:00:00Z")]);
    decide_transfer(policy, facts, &sender, &recipient, "trf_1", points, ts(NOW))
}

fn refusal(r: Result<TransferDecision, DomainError>) -> &'static str {
    match r {
        Err(DomainError::Refused { code, .. }) => code,
        Err(DomainError::InsufficientPoints { .. }) => "insufficient_points",
        Err(DomainError::Invalid { .. }) => "invalid",
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn points_arrive_with_the_dates_they_had_soonest_expiry_first() {
    let d = send(&open(), &facts(), 450).unwrap();
    assert_eq!(d.sender.balance_after.available, 250);
    assert_eq!(d.recipient.balance_after.available, 500);
    // 400 from the lot expiring in January, then 50 from June's.
    let arrived: Vec<(i64, Timestamp, LotOrigin)> = d
        .recipient
        .new_lots
        .iter()
        .map(|l| (l.remaining, l.expires_at, l.origin))
        .collect();
    assert_eq!(
        arrived,
        vec![
            (400, ts("2027-01-31T00:00:00Z"), LotOrigin::Transfer),
            (50, ts("2027-06-30T00:00:00Z"), LotOrigin::Transfer)
        ]
    );
    // Both sides together: the clearing account nets to zero, and nothing else moves.
    let mut sums: HashMap<String, i64> = HashMap::new();
    for t in d.sender.transfers.iter().chain(&d.recipient.transfers) {
        *sums.entry(t.from.key()).or_default() -= t.points;
        *sums.entry(t.to.key()).or_default() += t.points;
    }
    assert_eq!(sums[&Account::ProgramTransfers.key()], 0);
    assert_eq!(sums[&Account::MemberAvailable("mem_a".into()).key()], -450);
    assert_eq!(sums[&Account::MemberAvailable("mem_b".into()).key()], 450);
    assert_eq!(d.sender.points_with(EntryCode::TransferOut), 450);
    assert_eq!(d.recipient.points_with(EntryCode::TransferIn), 450);
}

#[test]
fn each_rule_of_the_policy_refuses_with_its_own_code() {
    let closed = TransferPolicy {
        enabled: false,
        ..open()
    };
    assert_eq!(refusal(send(&closed, &facts(), 100)), "transfers_closed");
    assert_eq!(refusal(send(&open(), &facts(), 9)), "transfer_too_small");
    let household = TransferFacts {
        same_household: true,
        ..facts()
    };
    assert_eq!(refusal(send(&open(), &household, 100)), "same_household");
    let new = TransferFacts {
        joined_at: ts("2026-11-01T00:00:00Z"),
        ..facts()
    };
    assert_eq!(refusal(send(&open(), &new, 100)), "member_too_new");
    let never_bought = TransferFacts {
        purchases: 0,
        ..facts()
    };
    assert_eq!(refusal(send(&open(), &never_bought, 100)), "needs_purchase");
    let busy_day = TransferFacts {
        sent_today: 450,
        sent_this_month: 450,
        ..facts()
    };
    assert!(send(&open(), &busy_day, 50).is_ok());
    assert_eq!(refusal(send(&open(), &busy_day, 51)), "daily_limit_reached");
    let busy_month = TransferFacts {
        sent_this_month: 700,
        ..facts()
    };
    assert!(send(&open(), &busy_month, 100).is_ok());
    assert_eq!(refusal(send(&open(), &busy_month, 101)), "monthly_limit_reached");
    let generous = TransferPolicy {
        max_per_day: 5_000,
        max_per_month: 5_000,
        ..open()
    };
    assert_eq!(refusal(send(&generous, &facts(), 701)), "insufficient_points");
    assert!(send(&generous, &facts(), 700).is_ok());
}

#[test]
fn a_member_cannot_send_to_herself() {
    let a = member("mem_a", vec![lot(1, 300, "2027-06-30T00:00:00Z")]);
    let r = decide_transfer(&open(), &facts(), &a, &a.clone(), "trf_1", 100, ts(NOW));
    assert_eq!(refusal(r), "invalid");
}

#[test]
fn points_that_expired_before_the_transfer_cannot_be_sent() {
    let sender = member(
        "mem_a",
        vec![lot(1, 300, "2026-11-01T00:00:00Z"), lot(2, 100, "2027-01-31T00:00:00Z")],
    );
    let recipient = member("mem_b", vec![]);
    let r = decide_transfer(&open(), &facts(), &sender, &recipient, "trf_1", 200, ts(NOW));
    assert_eq!(refusal(r), "insufficient_points");
    let d = decide_transfer(&open(), &facts(), &sender, &recipient, "trf_1", 100, ts(NOW)).unwrap();
    // The sender's 300 expired points expire in the same plan, and the 100 arrive.
    assert_eq!(d.sender.points_with(EntryCode::Expire), 300);
    assert_eq!(d.recipient.balance_after.available, 100);
}

#[test]
fn the_policy_is_checked_when_saved() {
    assert!(open().check().is_ok());
    assert!(TransferPolicy::default().check().is_ok());
    for bad in [
        TransferPolicy {
            max_per_month: 100,
            ..open()
        },
        TransferPolicy {
            min_points: 0,
            ..open()
        },
        TransferPolicy {
            min_points: 501,
            ..open()
        },
        TransferPolicy {
            max_per_day: crate::money::MAX_POINTS + 1,
            max_per_month: crate::money::MAX_POINTS + 1,
            ..open()
        },
        TransferPolicy {
            min_membership_days: 3651,
            ..open()
        },
        TransferPolicy {
            min_purchases: 1001,
            ..open()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?} passed its check");
    }
}
