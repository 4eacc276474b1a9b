//! Rewards on their own: what is refused when saved, whether a member may redeem and why
//! not, and what redeeming, using and giving a voucher back do to her points.

use super::*;
use crate::decide::{Release, decide_redeem, decide_release, decide_use};
use crate::ids::{Id, MemberId, RedemptionId};
use crate::ledger::{Account, EntryCode};
use crate::lots::{Lot, LotOrigin};
use crate::plan::{Balance, MemberState};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn texts(en: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("en".to_string(), en.to_string())])
}

fn spec(cost: i64) -> RewardSpec {
    RewardSpec {
        kind: RewardKind::Voucher,
        name: texts("EUR 5 off"),
        description: BTreeMap::new(),
        cost,
        partner_id: Some(PartnerId::from_stored("ptn_a".into())),
        charity: None,
        limit: None,
        available_from: None,
        available_until: None,
        eligibility: None,
        eligibility_note: BTreeMap::new(),
        early_access: None,
        starts_at: None,
        voucher_days: 30,
        forfeit_on_expiry: false,
        active: true,
    }
}

fn reward(s: RewardSpec) -> Reward {
    s.check(RewardId::from_stored("rwd_1".into())).unwrap()
}

fn member(tier: Option<&str>) -> MemberFacts {
    MemberFacts {
        id: "mem_1".into(),
        tier: tier.map(str::to_string),
        ..MemberFacts::default()
    }
}

fn facts<'a>(m: &'a MemberFacts, available: i64, now: &str) -> OfferFacts<'a> {
    OfferFacts {
        member: m,
        available,
        stock_left: None,
        taken: 0,
        plan_early_access: false,
        now: ts(now),
    }
}

/// A member with `lots` of (points, expires_at) available.
fn state(lots: &[(i64, &str)]) -> MemberState {
    let lots: Vec<Lot> = lots
        .iter()
        .enumerate()
        .map(|(i, (points, expires))| Lot {
            id: Some(i as i64 + 1),
            remaining: *points,
            earned_at: ts("2026-01-01T00:00:00Z"),
            expires_at: ts(expires),
            matures_at: None,
            transaction_id: Some(format!("txn_{i}")),
            origin: LotOrigin::Earn,
        })
        .collect();
    let available = lots.iter().map(|l| l.remaining).sum();
    MemberState {
        member_id: MemberId::from_stored("mem_1".into()),
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

#[test]
fn what_cannot_be_a_reward_is_refused_with_the_field() {
    let refused = |f: &dyn Fn(&mut RewardSpec)| {
        let mut s = spec(100);
        f(&mut s);
        match s.check(RewardId::from_stored("rwd_1".into())) {
            Err(DomainError::Invalid { field, .. }) | Err(DomainError::InvalidRule { field, .. }) => field,
            other => panic!("accepted: {other:?}"),
        }
    };
    assert_eq!(
        refused(&|s| s.name = BTreeMap::from([("de".into(), "Nur Deutsch".into())])),
        "name"
    );
    assert_eq!(refused(&|s| s.cost = 0), "cost");
    assert_eq!(refused(&|s| s.partner_id = None), "partner_id");
    assert_eq!(refused(&|s| s.kind = RewardKind::Experience), "starts_at");
    assert_eq!(refused(&|s| s.kind = RewardKind::Donation), "partner_id");
    assert_eq!(refused(&|s| s.charity = Some("red_cross".into())), "charity");
    assert_eq!(refused(&|s| s.voucher_days = 0), "voucher_days");
    assert_eq!(
        refused(&|s| s.eligibility = Some("member.tier ==".into())),
        "eligibility"
    );
    assert_eq!(
        refused(&|s| s.eligibility = Some("basket.total > 1.0".into())),
        "eligibility"
    );
    assert_eq!(
        refused(&|s| s.eligibility = Some("member.visits > 1".into())),
        "eligibility"
    );
    assert_eq!(
        refused(&|s| s.early_access = Some(EarlyAccess {
            days: 3,
            condition: None
        })),
        "early_access"
    );
    assert_eq!(
        refused(&|s| {
            s.available_from = Some(ts("2026-12-02T00:00:00Z"));
            s.available_until = Some(ts("2026-12-01T00:00:00Z"));
        }),
        "available_until"
    );
    assert_eq!(
        refused(&|s| s.name.insert("EN".into(), "upper".into()).map(|_| ()).unwrap_or(())),
        "name"
    );
}

#[test]
fn why_a_member_cannot_redeem_comes_in_the_order_she_can_act_on() {
    let jana = member(None);
    let now = "2026-11-20T09:00:00Z";
    let r = reward(spec(500));
    assert_eq!(r.availability(&facts(&jana, 500, now)), Availability::Redeemable);
    assert_eq!(
        r.availability(&facts(&jana, 200, now)),
        Availability::NeedsPoints { short: 300 }
    );
    let gold_only = reward(RewardSpec {
        eligibility: Some("member.tier == \"gold\"".into()),
        ..spec(500)
    });
    assert_eq!(gold_only.availability(&facts(&jana, 0, now)), Availability::NotEligible);
    let gold = member(Some("gold"));
    assert_eq!(
        gold_only.availability(&facts(&gold, 0, now)),
        Availability::NeedsPoints { short: 500 }
    );
    let sold = OfferFacts {
        stock_left: Some(0),
        ..facts(&gold, 1000, now)
    };
    assert_eq!(gold_only.availability(&sold), Availability::SoldOut);
    let limited = reward(RewardSpec {
        limit: Some(MemberLimit {
            count: 1,
            per: LimitPeriod::Week,
        }),
        ..spec(10)
    });
    let took = OfferFacts {
        taken: 1,
        ..facts(&jana, 1000, now)
    };
    // 20 November 2026 is a Friday: the week began on Monday 16th, the next on 23rd.
    assert_eq!(limited.limit_window(ts(now)), Some(ts("2026-11-16T00:00:00Z")));
    assert_eq!(
        limited.availability(&took),
        Availability::LimitReached {
            until: Some(ts("2026-11-23T00:00:00Z"))
        }
    );
    let withdrawn = reward(RewardSpec {
        active: false,
        ..spec(10)
    });
    assert_eq!(withdrawn.availability(&facts(&jana, 1000, now)), Availability::Closed);
}

#[test]
fn early_access_opens_days_before_to_those_who_have_it() {
    let launch = reward(RewardSpec {
        available_from: Some(ts("2026-12-03T09:00:00Z")),
        early_access: Some(EarlyAccess {
            days: 7,
            condition: Some("member.tier == \"gold\"".into()),
        }),
        ..spec(50)
    });
    let (jana, gold) = (member(None), member(Some("gold")));
    let at = |m, now| launch.availability(&facts(m, 1000, now));
    let now = "2026-11-27T09:00:00Z";
    assert_eq!(
        at(&jana, now),
        Availability::OpensOn {
            at: ts("2026-12-03T09:00:00Z")
        }
    );
    assert_eq!(at(&gold, now), Availability::Redeemable);
    assert_eq!(
        at(&gold, "2026-11-26T08:59:59Z"),
        Availability::OpensOn {
            at: ts("2026-11-26T09:00:00Z")
        }
    );
    let plus = OfferFacts {
        plan_early_access: true,
        ..facts(&jana, 1000, now)
    };
    assert_eq!(
        launch.availability(&plus),
        Availability::Redeemable,
        "a plan's early access"
    );
    assert_eq!(at(&jana, "2026-12-03T09:00:00Z"), Availability::Redeemable);
}

#[test]
fn reasons_read_in_three_languages() {
    let de = Lang::parse_code("de").unwrap();
    let cs = Lang::parse_code("cs").unwrap();
    let short = |n| Availability::NeedsPoints { short: n };
    assert_eq!(reason_text(&short(1), Lang::EN, None).unwrap(), "needs 1 more point");
    assert_eq!(reason_text(&short(300), de, None).unwrap(), "noch 300 Punkte nötig");
    assert_eq!(reason_text(&short(3), cs, None).unwrap(), "chybí ještě 3 body");
    assert_eq!(reason_text(&short(5), cs, None).unwrap(), "chybí ještě 5 bodů");
    let opens = Availability::OpensOn {
        at: ts("2026-12-03T09:00:00Z"),
    };
    assert_eq!(reason_text(&opens, cs, None).unwrap(), "pro vás od 3. prosince");
    assert_eq!(
        reason_text(&Availability::NotEligible, de, Some("für Gold")).unwrap(),
        "für Gold"
    );
    assert_eq!(reason_text(&Availability::Redeemable, de, None), None);
    assert_eq!(Lang::negotiate("fr-FR,de;q=0.8,en;q=0.5", &OWN_LANGUAGES), de);
    assert_eq!(Lang::negotiate("", &OWN_LANGUAGES), Lang::EN);
}

#[test]
fn an_experience_voucher_lasts_a_day_past_its_start() {
    let evening = reward(RewardSpec {
        kind: RewardKind::Experience,
        starts_at: Some(ts("2026-12-12T19:00:00Z")),
        ..spec(300)
    });
    assert_eq!(
        evening.voucher_expiry(ts("2026-12-01T10:00:00Z")),
        ts("2026-12-13T19:00:00Z")
    );
    assert_eq!(
        reward(spec(1)).voucher_expiry(ts("2026-12-01T10:00:00Z")),
        ts("2026-12-31T10:00:00Z")
    );
    assert!(!evening.is_open(ts("2026-12-12T19:00:00Z")), "closed once it begins");
}

fn redeemed(r: &Reward, st: &MemberState, now: &str) -> (Redemption, crate::plan::Plan) {
    let m = member(None);
    let d = decide_redeem(r, &facts(&m, st.balance.available, now), st, "rdm_1").unwrap();
    let redemption = Redemption {
        id: RedemptionId::from_stored("rdm_1".into()),
        member_id: st.member_id.clone(),
        reward_id: r.id.clone(),
        kind: r.spec.kind,
        reward_name: "EUR 5 off".into(),
        partner_id: r.spec.partner_id.clone(),
        charity: None,
        points: r.spec.cost,
        status: d.status,
        created_at: ts(now),
        expires_at: d.expires_at,
        forfeit_on_expiry: r.spec.forfeit_on_expiry,
        taken: d.taken.clone(),
        took_stock: d.took_stock,
        code_hint: None,
        closed_at: None,
        used_location_id: None,
    };
    (redemption, d.plan)
}

/// `st` after `plan`: balances and lots as the store would read them next.
fn after(st: &MemberState, plan: &crate::plan::Plan) -> MemberState {
    let mut next = st.clone();
    next.balance = plan.balance_after;
    for u in &plan.lot_updates {
        if let Some(l) = next.lots.iter_mut().find(|l| l.id == Some(u.id)) {
            l.remaining = u.remaining;
        }
    }
    let base = next.lots.len() as i64;
    next.lots.extend(plan.new_lots.iter().enumerate().map(|(i, l)| Lot {
        id: Some(base + i as i64 + 1),
        ..l.clone()
    }));
    next
}

#[test]
fn a_voucher_reserves_then_pays_the_partner() {
    let st = state(&[(300, "2027-01-31T00:00:00Z"), (300, "2028-01-31T00:00:00Z")]);
    let r = reward(spec(400));
    let (v, plan) = redeemed(&r, &st, "2026-11-20T09:00:00Z");
    assert_eq!(v.status, RedemptionStatus::Issued);
    assert_eq!(plan.balance_after.available, 200);
    assert_eq!(plan.reserved_change, 400);
    assert_eq!(plan.points_with(EntryCode::RewardReserve), 400);
    // Soonest-expiring first, with their dates kept.
    assert_eq!(
        v.taken.iter().map(|t| (t.points, t.expires_at)).collect::<Vec<_>>(),
        vec![(300, ts("2027-01-31T00:00:00Z")), (100, ts("2028-01-31T00:00:00Z"))]
    );
    let st = after(&st, &plan);
    let partner = PartnerId::from_stored("ptn_a".into());
    let other = PartnerId::from_stored("ptn_b".into());
    let refused = decide_use(&v, &st, &other, "B", ts("2026-11-21T09:00:00Z")).unwrap_err();
    assert!(matches!(
        refused,
        DomainError::Refused {
            code: "voucher_wrong_partner",
            ..
        }
    ));
    let expired = decide_use(&v, &st, &partner, "A", ts("2026-12-20T09:00:00Z")).unwrap_err();
    assert!(matches!(
        expired,
        DomainError::Refused {
            code: "voucher_expired",
            ..
        }
    ));
    let used = decide_use(&v, &st, &partner, "A", ts("2026-11-21T09:00:00Z")).unwrap();
    assert_eq!(used.reserved_change, -400);
    assert_eq!(used.balance_after.available, 200, "what she holds does not change");
    assert_eq!(
        used.transfers[0].to,
        Account::PartnerRedeemed("ptn_a".into()),
        "the partner's redeemed account"
    );
    let again = Redemption {
        status: RedemptionStatus::Used,
        ..v
    };
    let refused = decide_use(&again, &st, &partner, "A", ts("2026-11-21T09:00:00Z")).unwrap_err();
    assert!(matches!(
        refused,
        DomainError::Refused {
            code: "voucher_used",
            ..
        }
    ));
}

#[test]
fn a_voucher_given_back_returns_points_with_their_dates_once() {
    let st = state(&[(300, "2026-12-10T00:00:00Z"), (300, "2028-01-31T00:00:00Z")]);
    let r = reward(spec(400));
    let (v, plan) = redeemed(&r, &st, "2026-11-20T09:00:00Z");
    let st = after(&st, &plan);
    // Cancelled before use: 400 back, in two lots with the dates they had.
    let d = decide_release(&v, &st, Release::Cancel, ts("2026-11-25T09:00:00Z"))
        .unwrap()
        .unwrap();
    assert_eq!(d.status, RedemptionStatus::Cancelled);
    assert_eq!(d.plan.balance_after.available, 600);
    assert_eq!(d.plan.reserved_change, -400);
    let dates: Vec<_> = d
        .plan
        .new_lots
        .iter()
        .map(|l| (l.remaining, l.expires_at, l.origin))
        .collect();
    assert_eq!(
        dates,
        vec![
            (300, ts("2026-12-10T00:00:00Z"), LotOrigin::Release),
            (100, ts("2028-01-31T00:00:00Z"), LotOrigin::Release)
        ]
    );
    // Expiring after the first lot's date: what would have expired expires now.
    let d = decide_release(&v, &st, Release::Expire, ts("2026-12-20T09:00:00Z"))
        .unwrap()
        .unwrap();
    assert_eq!(d.status, RedemptionStatus::Expired);
    assert_eq!(d.plan.balance_after.available, 300);
    assert_eq!(d.plan.points_with(EntryCode::Expire), 300);
    // Not due yet, or not issued: nothing to do; a second cancel is refused.
    assert_eq!(
        decide_release(&v, &st, Release::Expire, ts("2026-11-25T09:00:00Z")).unwrap(),
        None
    );
    let closed = Redemption {
        status: RedemptionStatus::Cancelled,
        ..v.clone()
    };
    assert_eq!(
        decide_release(&closed, &st, Release::Expire, ts("2027-01-01T00:00:00Z")).unwrap(),
        None
    );
    let refused = decide_release(&closed, &st, Release::Cancel, ts("2026-11-25T09:00:00Z")).unwrap_err();
    assert!(matches!(
        refused,
        DomainError::Refused {
            code: "voucher_cancelled",
            ..
        }
    ));
    // Forfeit: the points go to program:expired.
    let strict = Redemption {
        forfeit_on_expiry: true,
        ..v
    };
    let d = decide_release(&strict, &st, Release::Expire, ts("2026-12-20T09:00:00Z"))
        .unwrap()
        .unwrap();
    assert_eq!(d.status, RedemptionStatus::Forfeited);
    assert_eq!(d.plan.balance_after.available, 200);
    assert_eq!(d.plan.points_with(EntryCode::RewardForfeit), 400);
    assert!(d.plan.new_lots.is_empty());
}

#[test]
fn a_donation_posts_to_the_charity_and_refusals_write_nothing() {
    let st = state(&[(300, "2027-01-31T00:00:00Z")]);
    let gift = reward(RewardSpec {
        kind: RewardKind::Donation,
        partner_id: None,
        charity: Some("red_cross".into()),
        ..spec(250)
    });
    let (v, plan) = redeemed(&gift, &st, "2026-11-20T09:00:00Z");
    assert_eq!(v.status, RedemptionStatus::Donated);
    assert_eq!(v.expires_at, None);
    assert_eq!(plan.reserved_change, 0);
    assert_eq!(plan.transfers[0].to, Account::ProgramDonations("red_cross".into()));
    let m = member(None);
    let poor = decide_redeem(
        &gift,
        &facts(&m, 100, "2026-11-20T09:00:00Z"),
        &state(&[(100, "2027-01-31T00:00:00Z")]),
        "rdm_2",
    );
    assert!(matches!(poor, Err(DomainError::InsufficientPoints { .. })));
    let sold = OfferFacts {
        stock_left: Some(0),
        ..facts(&m, 300, "2026-11-20T09:00:00Z")
    };
    let refused = decide_redeem(&gift, &sold, &st, "rdm_3").unwrap_err();
    assert!(matches!(refused, DomainError::Refused { code: "sold_out", .. }));
}
