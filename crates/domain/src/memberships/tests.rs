use super::*;
use crate::money::Currency;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn plus(trial_days: u32) -> MembershipPlan {
    MembershipPlan {
        code: "plus".into(),
        name: "Tally Plus".into(),
        price: Money {
            amount: 499,
            currency: Currency::parse("EUR").unwrap(),
        },
        interval: BillingInterval::Month,
        benefits: PlanBenefits {
            earn_multiplier: "1.25".parse().unwrap(),
            bonus_points: 200,
            early_access: true,
            free_reward: false,
        },
        trial_days,
    }
    .check()
    .unwrap()
}

fn eur(amount: i64) -> Money {
    Money {
        amount,
        currency: Currency::parse("EUR").unwrap(),
    }
}

#[test]
fn a_plan_is_checked() {
    let mut p = plus(0);
    p.benefits.earn_multiplier = "0.9".parse().unwrap();
    assert!(p.check().is_err());
    let mut p = plus(0);
    p.price.amount = 0;
    assert!(p.check().is_err());
    let mut p = plus(0);
    p.code = "Plus".into();
    assert!(p.check().is_err());
    let mut p = plus(0);
    p.benefits.bonus_points = MAX_BONUS_POINTS + 1;
    assert!(p.check().is_err());
}

#[test]
fn a_trial_then_paid_months_then_past_due_then_expired() {
    let plan = plus(14);
    let mut m = Membership::start(&plan, at("2026-03-01T10:00:00Z"));
    assert_eq!(m.status(at("2026-03-05T00:00:00Z")), MembershipStatus::Trialing);
    // Paid during the trial: the first month starts when the trial ends.
    let p = decide_payment(&m, &plan, eur(499), at("2026-03-10T00:00:00Z")).unwrap();
    assert_eq!(
        (p.start, p.end),
        (at("2026-03-15T10:00:00Z"), at("2026-04-15T10:00:00Z"))
    );
    assert_eq!(p.bonus_points, 200);
    m.paid_until = Some(p.end);
    assert_eq!(m.status(at("2026-03-20T00:00:00Z")), MembershipStatus::Active);
    // Unpaid after 15 April: past due for the grace days, then expired.
    assert_eq!(m.status(at("2026-04-20T00:00:00Z")), MembershipStatus::PastDue);
    assert_eq!(
        m.next_change_at(at("2026-04-20T00:00:00Z")),
        Some(at("2026-04-29T10:00:00Z"))
    );
    assert_eq!(m.status(at("2026-04-29T10:00:00Z")), MembershipStatus::Expired);
    assert!(matches!(
        decide_payment(&m, &plan, eur(499), at("2026-05-01T00:00:00Z")),
        Err(DomainError::MembershipOver("expired"))
    ));
    assert_eq!(m.ended_at(at("2026-05-01T00:00:00Z")), Some(at("2026-04-29T10:00:00Z")));
}

#[test]
fn a_late_payment_in_the_grace_days_keeps_the_renewal_date() {
    let plan = plus(0);
    let mut m = Membership::start(&plan, at("2026-01-31T00:00:00Z"));
    assert_eq!(m.status(at("2026-01-31T00:00:00Z")), MembershipStatus::PastDue);
    let first = decide_payment(&m, &plan, eur(499), at("2026-01-31T00:00:01Z")).unwrap();
    assert_eq!(first.end, at("2026-02-28T00:00:00Z"));
    m.paid_until = Some(first.end);
    let second = decide_payment(&m, &plan, eur(499), at("2026-03-05T00:00:00Z")).unwrap();
    assert_eq!(
        (second.start, second.end),
        (at("2026-02-28T00:00:00Z"), at("2026-03-28T00:00:00Z"))
    );
}

#[test]
fn the_wrong_amount_or_currency_is_refused_and_a_cancelled_one_runs_to_its_end() {
    let plan = plus(0);
    let mut m = Membership::start(&plan, at("2026-01-01T00:00:00Z"));
    assert!(matches!(
        decide_payment(&m, &plan, eur(500), at("2026-01-01T00:00:00Z")),
        Err(DomainError::PaymentMismatch { .. })
    ));
    let czk = Money {
        amount: 499,
        currency: Currency::parse("CZK").unwrap(),
    };
    assert!(decide_payment(&m, &plan, czk, at("2026-01-01T00:00:00Z")).is_err());
    m.paid_until = Some(at("2026-02-01T00:00:00Z"));
    m.cancelled_at = Some(at("2026-01-10T00:00:00Z"));
    assert_eq!(m.status(at("2026-01-20T00:00:00Z")), MembershipStatus::Cancelled);
    assert!(MembershipStatus::Cancelled.holds_plan());
    assert_eq!(m.status(at("2026-02-01T00:00:00Z")), MembershipStatus::Expired);
    assert_eq!(
        m.next_change_at(at("2026-01-20T00:00:00Z")),
        Some(at("2026-02-01T00:00:00Z"))
    );
}

#[test]
fn the_plan_multiplier_is_a_line_of_its_own() {
    let line = plan_bonus(&plus(0), 100).unwrap();
    assert_eq!((line.rule.as_str(), line.points), ("plan", 25));
    assert_eq!(line.reason, "Tally Plus: 1.25× base points");
}

#[test]
fn the_plan_a_member_holds_comes_from_their_memberships() {
    let plan = plus(0);
    let now = at("2026-03-10T00:00:00Z");
    // Never paid, no trial: due at once, no benefits.
    let unpaid = Membership::start(&plan, at("2026-03-01T00:00:00Z"));
    assert_eq!(unpaid.status(now), MembershipStatus::PastDue);
    assert!(!unpaid.holds_plan(now));
    // An old lapsed one and a newer paid one of another plan: the newer's plan.
    let lapsed = Membership {
        started_at: at("2025-01-01T00:00:00Z"),
        trial_until: None,
        paid_until: Some(at("2025-02-01T00:00:00Z")),
        cancelled_at: None,
    };
    let paid = Membership {
        started_at: at("2026-03-01T00:00:00Z"),
        trial_until: None,
        paid_until: Some(at("2026-04-01T00:00:00Z")),
        cancelled_at: None,
    };
    let held = |list: &[(&'static str, &Membership)]| {
        member_plan(
            list.iter().map(|(c, m)| Held {
                plan_code: c,
                membership: m,
            }),
            now,
        )
    };
    assert_eq!(held(&[("gold", &lapsed), ("plus", &paid)]), Some("plus".into()));
    assert_eq!(held(&[("gold", &lapsed), ("plus", &unpaid)]), None);
    // Starting one: refused while one runs; a cancelled one running out may be replaced.
    assert!(may_start([paid.clone()], now).is_err());
    let mut cancelled = paid.clone();
    cancelled.cancelled_at = Some(now);
    assert!(may_start([cancelled, lapsed.clone()], now).is_ok());
    assert!(may_cancel(&lapsed, now).is_err());
}

#[test]
fn a_payment_pays_one_period_ahead_at_most() {
    let plan = plus(0);
    let now = at("2026-03-10T00:00:00Z");
    let m = Membership {
        started_at: at("2026-03-01T00:00:00Z"),
        trial_until: None,
        paid_until: Some(at("2026-05-01T00:00:00Z")),
        cancelled_at: None,
    };
    assert!(matches!(
        decide_payment(&m, &plan, eur(499), now),
        Err(DomainError::LimitExceeded { code: "paid_ahead", .. })
    ));
}
