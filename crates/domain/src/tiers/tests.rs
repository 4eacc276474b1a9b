use super::*;
use jiff::Timestamp;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn level(code: &str, name: &str, threshold: i64, multiplier: &str) -> TierLevel {
    TierLevel {
        code: code.into(),
        name: name.into(),
        threshold,
        multiplier: multiplier.parse().unwrap(),
        perks: vec![],
    }
}

/// The ladder of the worked example in docs/PROGRAMMES.md.
pub(crate) fn example_ladder() -> TierLadder {
    TierLadder {
        basis: TierBasis::QualifyingPoints,
        period: TierPeriod::CalendarYear,
        grace_days: 30,
        levels: vec![
            level("silver", "Silver", 1000, "1"),
            level("gold", "Gold", 5000, "1.5"),
            level("platinum", "Platinum", 15000, "2"),
        ],
        scope: Default::default(),
        events_qualify: false,
    }
    .check()
    .unwrap()
}

fn silver_at_4950() -> TierState {
    TierState {
        effective: Some("silver".into()),
        earned: Some("silver".into()),
        qualifying: 4950,
        period_start: Some(at("2026-01-01T00:00:00Z")),
        reached_at: Some(at("2026-03-01T00:00:00Z")),
        anchor: at("2024-06-01T00:00:00Z"),
        ..TierState::default()
    }
}

#[test]
fn a_ladder_is_checked_before_it_is_kept() {
    let bad = |f: fn(&mut TierLadder)| {
        let mut l = example_ladder();
        f(&mut l);
        l.check().unwrap_err()
    };
    bad(|l| l.levels[1].threshold = 1000);
    bad(|l| l.levels[1].multiplier = "0.5".parse().unwrap());
    bad(|l| l.levels[1].multiplier = "1.555".parse().unwrap());
    bad(|l| l.levels[1].multiplier = "11".parse().unwrap());
    bad(|l| l.levels[1].code = "silver".into());
    bad(|l| l.levels[1].code = "Gold!".into());
    bad(|l| l.levels[1].name = " ".into());
    bad(|l| l.levels[0].threshold = -1);
    bad(|l| l.grace_days = 366);
    assert!(example_ladder().check().is_ok());
}

#[test]
fn the_worked_example_up_at_once_kept_a_year_then_one_level_down() {
    let ladder = example_ladder();
    let mut s = silver_at_4950();
    let jun = at("2026-06-10T12:00:00Z");
    // EUR 100 at Silver (1×): no bonus, 5,050 qualifying, Gold at once.
    assert!(s.roll(&ladder, jun).is_empty());
    assert_eq!(tier_bonus(&ladder, s.effective.as_deref(), 100), None);
    let up = s.count(&ladder, 100, jun);
    assert_eq!(up.len(), 1);
    assert_eq!(
        (up[0].from.as_deref(), up[0].to.as_deref()),
        (Some("silver"), Some("gold"))
    );
    assert_eq!(up[0].kind, TierChangeKind::Upgrade);
    assert_eq!(s.qualifying, 5050);
    // The next EUR 100 earns 150: a tier line of 50.
    let line = tier_bonus(&ladder, s.effective.as_deref(), 100).unwrap();
    assert_eq!((line.rule.as_str(), line.points), ("tier", 50));
    assert_eq!(line.reason, "Gold: 1.5× base points");
    // The first EUR 100 comes back: 4,950 qualifying, still Gold.
    s.uncount(&ladder, 100, jun);
    assert_eq!(s.qualifying, 4950);
    assert_eq!(s.effective.as_deref(), Some("gold"));
    // 1 January: the new year starts, the review waits for the grace days; on 31
    // January Gold is kept (reached during 2026).
    assert!(s.roll(&ladder, at("2027-01-15T00:00:00Z")).is_empty());
    assert!(s.review_pending);
    assert_eq!(s.previous_qualifying, 4950);
    assert!(s.roll(&ladder, at("2027-01-31T00:00:01Z")).is_empty());
    assert_eq!(s.effective.as_deref(), Some("gold"));
    assert!(!s.review_pending);
    // Under 1,000 in 2027: on the review after, Silver (one level down, not none).
    s.count(&ladder, 400, at("2027-05-01T00:00:00Z"));
    let down = s.roll(&ladder, at("2028-02-01T00:00:00Z"));
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(
        (down[0].from.as_deref(), down[0].to.as_deref()),
        (Some("gold"), Some("silver"))
    );
    assert!(down[0].reason.contains("400 qualifying points"), "{}", down[0].reason);
    // Nothing in 2028: no level after the next review.
    let out = s.roll(&ladder, at("2029-02-01T00:00:00Z"));
    assert_eq!(out[0].to, None);
}

#[test]
fn years_without_activity_are_reviewed_one_by_one() {
    let ladder = example_ladder();
    let mut s = TierState {
        effective: Some("platinum".into()),
        earned: Some("platinum".into()),
        qualifying: 20_000,
        period_start: Some(at("2026-01-01T00:00:00Z")),
        reached_at: Some(at("2026-02-01T00:00:00Z")),
        anchor: at("2020-01-01T00:00:00Z"),
        ..TierState::default()
    };
    // Reviews of 2026 (kept: reached then), 2027 (Gold), 2028 (Silver), all due by March 2029.
    let out = s.roll(&ladder, at("2029-03-01T00:00:00Z"));
    let tos: Vec<_> = out.iter().map(|c| c.to.clone()).collect();
    assert_eq!(tos, vec![Some("gold".to_string()), Some("silver".to_string())]);
    assert_eq!(s.period_start, Some(at("2029-01-01T00:00:00Z")));
}

#[test]
fn a_review_keeps_what_the_year_reached_and_a_return_lowers_the_year_it_counted_in() {
    let ladder = example_ladder();
    let mut s = silver_at_4950();
    s.reached_at = Some(at("2025-03-01T00:00:00Z"));
    s.count(&ladder, 20_000, at("2026-04-01T00:00:00Z"));
    assert_eq!(s.effective.as_deref(), Some("platinum"));
    s.roll(&ladder, at("2027-01-05T00:00:00Z"));
    // A return in the grace days of a 2026 sale lowers 2026's count.
    s.uncount(&ladder, 1000, at("2026-04-01T00:00:00Z"));
    assert_eq!(s.previous_qualifying, 23_950);
    assert_eq!(s.qualifying, 0);
}

#[test]
fn a_level_set_by_hand_lasts_until_its_date() {
    let ladder = example_ladder();
    let mut s = silver_at_4950();
    let now = at("2026-06-01T00:00:00Z");
    let out = s
        .set_manual(
            &ladder,
            Some("platinum"),
            at("2026-07-01T00:00:00Z"),
            "goodwill after a complaint",
            now,
        )
        .unwrap();
    assert_eq!(out[0].kind, TierChangeKind::Manual);
    assert_eq!(s.effective.as_deref(), Some("platinum"));
    // Qualifying still counts underneath.
    s.count(&ladder, 100, now);
    assert_eq!(s.earned.as_deref(), Some("gold"));
    assert_eq!(s.effective.as_deref(), Some("platinum"));
    let end = s.roll(&ladder, at("2026-07-01T00:00:00Z"));
    assert_eq!(end[0].kind, TierChangeKind::ManualEnded);
    assert_eq!(s.effective.as_deref(), Some("gold"));
    assert!(
        s.set_manual(&ladder, Some("diamond"), at("2027-01-01T00:00:00Z"), "x", now)
            .is_err()
    );
}

#[test]
fn membership_years_start_on_the_day_the_member_joined() {
    let mut ladder = example_ladder();
    ladder.period = TierPeriod::Rolling12Months;
    let anchor = at("2025-03-10T08:00:00Z");
    assert_eq!(
        ladder.period_start(anchor, at("2026-05-01T00:00:00Z")),
        at("2026-03-10T08:00:00Z")
    );
    assert_eq!(
        ladder.period_start(anchor, at("2026-03-01T00:00:00Z")),
        at("2025-03-10T08:00:00Z")
    );
    assert_eq!(
        ladder.period_end(anchor, at("2025-03-10T08:00:00Z")),
        at("2026-03-10T08:00:00Z")
    );
    let mut s = TierState {
        anchor,
        ..TierState::default()
    };
    s.roll(&ladder, at("2025-04-01T00:00:00Z"));
    s.count(&ladder, 1200, at("2025-04-01T00:00:00Z"));
    assert_eq!(s.next_review_at(&ladder), Some(at("2026-04-09T08:00:00Z")));
}

#[test]
fn spend_qualifies_in_minor_units_and_the_tier_bonus_never_qualifies() {
    let mut ladder = example_ladder();
    assert_eq!(qualifying_of(&ladder, 150, 10_000), 150);
    ladder.basis = TierBasis::QualifyingSpend;
    assert_eq!(qualifying_of(&ladder, 150, 10_000), 10_000);
}

#[test]
fn a_29_february_join_keeps_its_anniversary_and_its_grace() {
    let mut ladder = example_ladder();
    ladder.period = TierPeriod::Rolling12Months;
    let anchor = at("2024-02-29T10:00:00Z");
    assert_eq!(
        ladder.period_end(anchor, at("2027-02-28T10:00:00Z")),
        at("2028-02-29T10:00:00Z")
    );
    let mut s = TierState {
        anchor,
        ..TierState::default()
    };
    s.roll(&ladder, at("2027-06-01T00:00:00Z"));
    assert_eq!(s.period_start, Some(at("2027-02-28T10:00:00Z")));
    s.count(&ladder, 6000, at("2027-06-01T00:00:00Z"));
    // On the anniversary the new year starts; the review waits for the grace days.
    assert!(s.roll(&ladder, at("2028-02-29T12:00:00Z")).is_empty());
    assert_eq!(s.period_start, Some(at("2028-02-29T10:00:00Z")));
    assert!(s.review_pending);
    assert_eq!(s.previous_qualifying, 6000);
    assert!(s.next_review_at(&ladder).unwrap() > at("2028-02-29T12:00:00Z"));
}

#[test]
fn a_level_won_back_in_the_grace_days_is_kept() {
    let ladder = example_ladder();
    let mut s = TierState {
        effective: Some("gold".into()),
        earned: Some("gold".into()),
        qualifying: 0,
        period_start: Some(at("2026-01-01T00:00:00Z")),
        reached_at: Some(at("2025-03-01T00:00:00Z")),
        anchor: at("2020-01-01T00:00:00Z"),
        ..TierState::default()
    };
    s.roll(&ladder, at("2027-01-10T00:00:00Z"));
    s.count(&ladder, 5000, at("2027-01-10T00:00:00Z"));
    assert!(s.roll(&ladder, at("2027-02-01T00:00:00Z")).is_empty());
    assert_eq!(s.effective.as_deref(), Some("gold"));
}
