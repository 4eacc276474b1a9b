//! Challenges on their own: what is refused when saved, what a sale or event counts
//! for, and when a step completes one.

use super::*;
use crate::ids::Id;
use crate::money::Currency;
use crate::rules::{BasketFacts, EventFacts, PartnerFacts};

fn spec(measure: Measure, target: i64) -> ChallengeSpec {
    ChallengeSpec {
        code: "explorer".into(),
        name: BTreeMap::from([("en".into(), "Three partners in November".into())]),
        description: BTreeMap::new(),
        starts_at: "2026-11-01T00:00:00Z".into(),
        ends_at: "2026-12-01T00:00:00Z".into(),
        counts: Counts::Purchases,
        event_type: None,
        condition: Some("basket.total_program >= 10.0".into()),
        measure,
        target,
        enrolment: Enrolment::Join,
        enrol_condition: None,
        badge: BadgeSpec {
            code: "explorer".into(),
            name: BTreeMap::from([("en".into(), "Explorer".into())]),
        },
    }
}

fn id() -> ChallengeId {
    ChallengeId::from_stored("chl_1".into())
}

fn partner(id: &str, industry: &str) -> PartnerFacts {
    PartnerFacts {
        id: id.into(),
        industry: industry.into(),
        ..Default::default()
    }
}

fn basket(eur: i64) -> BasketFacts {
    BasketFacts {
        currency: Currency::parse("EUR").unwrap(),
        total_minor: eur * 100,
        lines: Vec::new(),
    }
}

fn facts<'a>(p: &'a PartnerFacts, b: &'a BasketFacts, at: &str) -> Facts<'a> {
    Facts {
        partner: Some(p),
        location: None,
        at: at.parse().unwrap(),
        basket: Some(b),
        member: None,
        event: None,
    }
}

#[test]
fn a_challenge_is_checked_when_saved() {
    let known = |t: &str| t == "survey_answered";
    assert!(spec(Measure::Partners, 3).check(id(), known).is_ok());
    let refused = |s: ChallengeSpec| s.check(id(), known).unwrap_err();
    let mut s = spec(Measure::Partners, 3);
    s.ends_at = "2026-10-01T00:00:00Z".into();
    assert!(matches!(refused(s), DomainError::Invalid { field: "ends_at", .. }));
    assert!(matches!(
        refused(spec(Measure::Count, 0)),
        DomainError::Invalid { field: "target", .. }
    ));
    let mut s = spec(Measure::Count, 2);
    s.condition = Some("member.visits > 2".into());
    assert!(matches!(refused(s), DomainError::InvalidRule { .. }));
    let mut s = spec(Measure::Amount, 2);
    s.counts = Counts::Events;
    s.event_type = Some("survey_answered".into());
    s.condition = None;
    assert!(matches!(refused(s), DomainError::Invalid { field: "measure", .. }));
    let mut s = spec(Measure::Count, 2);
    s.counts = Counts::Events;
    s.event_type = Some("no_such_type".into());
    assert!(matches!(refused(s), DomainError::UnknownEventType(_)));
    let mut s = spec(Measure::Count, 2);
    s.enrol_condition = Some("member.tier == \"gold\"".into());
    assert!(matches!(
        refused(s),
        DomainError::Invalid {
            field: "enrol_condition",
            ..
        }
    ));
    let mut s = spec(Measure::Count, 2);
    s.name.clear();
    assert!(matches!(refused(s), DomainError::Invalid { field: "name", .. }));
}

#[test]
fn a_sale_counts_in_the_window_when_the_condition_holds() {
    let c = spec(Measure::Industries, 3).check(id(), |_| false).unwrap();
    let (hotel, b) = (partner("ptn_h", "hotel"), basket(40));
    let step = c.step(&facts(&hotel, &b, "2026-11-10T10:00:00Z"), 4000, 1.0).unwrap();
    assert_eq!((step.key.as_str(), step.amount, step.enrols), ("hotel", 1, false));
    assert!(c.step(&facts(&hotel, &b, "2026-12-01T00:00:00Z"), 4000, 1.0).is_none());
    let small = basket(5);
    assert!(
        c.step(&facts(&hotel, &small, "2026-11-10T10:00:00Z"), 500, 1.0)
            .is_none()
    );
    // An event does not count toward a purchase challenge.
    let ev = EventFacts {
        event_type: "survey_answered".into(),
        attributes: Vec::new(),
    };
    let f = Facts {
        event: Some(&ev),
        basket: None,
        ..facts(&hotel, &b, "2026-11-10T10:00:00Z")
    };
    assert!(c.step(&f, 0, 1.0).is_none());
}

#[test]
fn the_step_that_reaches_the_target_completes_it_once() {
    let c = spec(Measure::Partners, 3).check(id(), |_| false).unwrap();
    let step = |key: &str, at: &str| Step {
        challenge_id: id(),
        key: key.into(),
        amount: 1,
        enrols: false,
        measure: c.spec.measure,
        target: c.spec.target,
        occurred_at: at.parse().unwrap(),
    };
    let joined = |progress, key_counted| StepFacts {
        standing: Standing::Joined,
        joined_at: Some("2026-11-05T00:00:00Z".parse().unwrap()),
        progress,
        key_counted,
    };
    let later = "2026-11-10T10:00:00Z";
    // Not joined (and not enrolled automatically): nothing counts.
    let open = StepFacts {
        standing: Standing::Open,
        joined_at: None,
        progress: 0,
        key_counted: false,
    };
    assert_eq!(decide_step(open, &step("a", later)), StepOutcome::Ignored);
    // What happened before she joined does not count, even posted later.
    assert_eq!(
        decide_step(joined(0, false), &step("a", "2026-11-04T10:00:00Z")),
        StepOutcome::Ignored
    );
    // A second visit at the same partner does not add a partner.
    assert_eq!(
        decide_step(joined(2, true), &step("a", later)),
        StepOutcome::Counted {
            progress: 2,
            completes: false,
            enrols: false
        }
    );
    assert_eq!(
        decide_step(joined(2, false), &step("c", later)),
        StepOutcome::Counted {
            progress: 3,
            completes: true,
            enrols: false
        }
    );
    let done = StepFacts {
        standing: Standing::Completed,
        ..joined(3, false)
    };
    assert_eq!(decide_step(done, &step("d", later)), StepOutcome::Ignored);
    // Enrolled by the programme: her first step counts, whenever it happened in the window.
    let auto = Step {
        enrols: true,
        ..step("a", "2026-11-02T10:00:00Z")
    };
    assert_eq!(
        decide_step(open, &auto),
        StepOutcome::Counted {
            progress: 1,
            completes: false,
            enrols: true
        }
    );
    assert_eq!(
        progress(
            Measure::Amount,
            &[
                CountedStep {
                    key: String::new(),
                    amount: i64::MAX
                },
                CountedStep {
                    key: String::new(),
                    amount: 5
                }
            ]
        ),
        i64::MAX
    );
}
