//! Exchange with another programme: the rate and its steps, an order out and its two
//! answers, units credited in.

use super::*;
use crate::exchange::{ExchangeDirection, ExchangeRate, ExchangeSpec};
use crate::ids::{ExchangeOrderId, ExchangePartnerId, Id, MemberId};
use crate::lots::{Lot, LotOrigin};
use crate::plan::Balance;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-11-20T12:00:00Z";

fn airline(direction: ExchangeDirection) -> ExchangePartner {
    ExchangePartner {
        id: ExchangePartnerId::from_stored("xpt_1".into()),
        spec: ExchangeSpec {
            name: "SkyMiles".into(),
            unit_name: "miles".into(),
            direction,
            rate: ExchangeRate { points: 100, units: 40 },
            min_points: 500,
            step_points: 100,
            daily_limit_points: 3_000,
            active: true,
        },
    }
}

fn jana() -> MemberState {
    let lots = vec![
        Lot {
            id: Some(1),
            remaining: 700,
            earned_at: ts("2026-02-01T00:00:00Z"),
            expires_at: ts("2027-03-31T00:00:00Z"),
            matures_at: None,
            transaction_id: Some("txn_a".into()),
            origin: LotOrigin::Earn,
        },
        Lot {
            id: Some(2),
            remaining: 800,
            earned_at: ts("2026-01-01T00:00:00Z"),
            expires_at: ts("2026-12-31T00:00:00Z"),
            matures_at: None,
            transaction_id: Some("txn_b".into()),
            origin: LotOrigin::Earn,
        },
    ];
    MemberState {
        member_id: MemberId::from_stored("mem_jana".into()),
        balance: Balance {
            available: 1_500,
            pending: 0,
            lifetime_earned: 1_500,
        },
        lots,
        lots_loaded: true,
        ..MemberState::default()
    }
}

fn code(r: Result<OrderDecision, DomainError>) -> &'static str {
    match r {
        Err(DomainError::Refused { code, .. }) => code,
        Err(DomainError::InsufficientPoints { .. }) => "insufficient_points",
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_rate_converts_only_whole_units_and_the_spec_says_so_when_saved() {
    let rate = ExchangeRate { points: 100, units: 40 };
    assert_eq!(rate.units_for(1_000), Some(400));
    assert_eq!(rate.units_for(110), Some(44));
    assert_eq!(rate.units_for(105), Some(42));
    assert_eq!(rate.units_for(101), None);
    assert_eq!(rate.points_for(400), Some(1_000));
    assert_eq!(rate.points_for(3), None);
    assert_eq!(rate.unit_step(), 2);
    assert!(airline(ExchangeDirection::Both).spec.check().is_ok());
    let mut step = airline(ExchangeDirection::Both);
    step.spec.step_points = 5;
    assert!(step.spec.check().is_ok(), "5 points are 2 miles");
    step.spec.step_points = 1;
    assert!(step.spec.check().is_err(), "1 point is 0.4 miles");
    step.spec.step_points = 300;
    assert!(
        step.spec.check().is_err(),
        "500 is not a whole number of 300-point steps"
    );
}

#[test]
fn an_order_takes_her_points_and_a_failure_gives_them_back_with_their_dates() {
    let sky = airline(ExchangeDirection::Out);
    let d = decide_exchange_out(&sky, &jana(), 0, "xor_1", 1_000, "SK-123", ts(NOW)).unwrap();
    assert_eq!(d.units, 400);
    assert_eq!(d.plan.balance_after.available, 500);
    assert_eq!(d.plan.points_with(EntryCode::ExchangeOut), 1_000);
    // Soonest expiry first: all 800 of December's lot, then 200 of March's.
    assert_eq!(d.taken.iter().map(|t| t.points).collect::<Vec<_>>(), vec![800, 200]);

    let order = ExchangeOrder {
        id: ExchangeOrderId::from_stored("xor_1".into()),
        exchange_partner_id: sky.id.clone(),
        member_id: MemberId::from_stored("mem_jana".into()),
        points: 1_000,
        units: 400,
        external_member: "SK-123".into(),
        status: OrderStatus::Pending,
        taken: d.taken.clone(),
        failure_reason: None,
        created_at: ts(NOW),
        closed_at: None,
    };
    let after = MemberState {
        balance: d.plan.balance_after,
        lots: vec![Lot {
            remaining: 500,
            ..jana().lots[0].clone()
        }],
        ..jana()
    };
    let fail = Outcome::Fail {
        reason: "unknown membership number".into(),
    };
    let refund = decide_exchange_outcome(&sky, &order, &fail, &after, ts(NOW))
        .unwrap()
        .unwrap();
    assert_eq!(refund.balance_after.available, 1_500);
    let back: Vec<(i64, Timestamp)> = refund.new_lots.iter().map(|l| (l.remaining, l.expires_at)).collect();
    assert_eq!(
        back,
        vec![(800, ts("2026-12-31T00:00:00Z")), (200, ts("2027-03-31T00:00:00Z"))]
    );
    let confirm = decide_exchange_outcome(&sky, &order, &Outcome::Confirm, &after, ts(NOW))
        .unwrap()
        .unwrap();
    assert_eq!(
        confirm.balance_after, after.balance,
        "confirming moves no point of hers"
    );
    assert_eq!(confirm.points_with(EntryCode::ExchangeConfirm), 1_000);

    // The same answer again does nothing; the other answer is refused.
    let failed = ExchangeOrder {
        status: OrderStatus::Failed,
        ..order.clone()
    };
    assert_eq!(decide_exchange_outcome(&sky, &failed, &fail, &after, ts(NOW)), Ok(None));
    assert!(matches!(
        decide_exchange_outcome(&sky, &failed, &Outcome::Confirm, &after, ts(NOW)),
        Err(DomainError::Refused {
            code: "order_closed",
            ..
        })
    ));
}

#[test]
fn each_rule_of_the_exchange_refuses_with_its_own_code() {
    let sky = airline(ExchangeDirection::Out);
    let now = ts(NOW);
    assert_eq!(
        code(decide_exchange_out(&sky, &jana(), 0, "x", 400, "S", now)),
        "below_minimum"
    );
    assert_eq!(
        code(decide_exchange_out(&sky, &jana(), 0, "x", 550, "S", now)),
        "not_a_step"
    );
    assert_eq!(
        code(decide_exchange_out(&sky, &jana(), 2_600, "x", 500, "S", now)),
        "daily_limit_reached"
    );
    assert_eq!(
        code(decide_exchange_out(&sky, &jana(), 0, "x", 1_600, "S", now)),
        "insufficient_points"
    );
    let inbound = airline(ExchangeDirection::In);
    assert_eq!(
        code(decide_exchange_out(&inbound, &jana(), 0, "x", 500, "S", now)),
        "exchange_direction"
    );
    let mut closed = airline(ExchangeDirection::Both);
    closed.spec.active = false;
    assert_eq!(
        code(decide_exchange_out(&closed, &jana(), 0, "x", 500, "S", now)),
        "exchange_closed"
    );
    assert!(
        decide_exchange_in(&sky, &jana(), 0, "xcr_1", 400, 24, now).is_err(),
        "out only"
    );
}

#[test]
fn units_in_arrive_as_a_new_lot_within_the_daily_limit() {
    let sky = airline(ExchangeDirection::Both);
    let (plan, points) = decide_exchange_in(&sky, &jana(), 0, "xcr_1", 400, 24, ts(NOW)).unwrap();
    assert_eq!(points, 1_000);
    assert_eq!(plan.balance_after.available, 2_500);
    assert_eq!(plan.new_lots.len(), 1);
    assert_eq!(plan.new_lots[0].expires_at, ts("2028-11-20T12:00:00Z"));
    assert_eq!(plan.new_lots[0].origin, LotOrigin::Exchange);
    assert!(matches!(
        decide_exchange_in(&sky, &jana(), 0, "xcr_1", 3, 24, ts(NOW)),
        Err(DomainError::Invalid { field: "units", .. })
    ));
    assert!(matches!(
        decide_exchange_in(&sky, &jana(), 2_500, "xcr_1", 400, 24, ts(NOW)),
        Err(DomainError::Refused {
            code: "daily_limit_reached",
            ..
        })
    ));
}
