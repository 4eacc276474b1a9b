//! The decisions on their own: what each command refuses, and what it writes.

use super::*;
use crate::ids::{Id, PartnerId};

/// An id of any kind, for tests.
fn id<T: Id>(s: &str) -> T {
    T::from_stored(s.to_string())
}
use crate::earning::{ProgramTerms, value_purchase};
use crate::lots::{Lot, LotOrigin};
use crate::money::{Currency, Money};
use crate::plan::{Balance, MemberState, PartnerTerms, PurchaseRecord};
use crate::rules::{Award, Limit, LimitScope};
use rust_decimal::Decimal;
use std::collections::HashMap;

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::parse("EUR").unwrap()).unwrap()
}

fn program() -> ProgramTerms {
    ProgramTerms {
        currency: Currency::parse("EUR").unwrap(),
        point_value_minor: 1,
        expiry_months: 24,
        tiers: Default::default(),
        plans: Default::default(),
        referrals: None,
    }
}

fn partner() -> PartnerTerms {
    PartnerTerms {
        id: id("ptn_a"),
        name: "Drugstore".into(),
        earn_rate: Decimal::ONE,
        pending_days: 0,
    }
}

fn sale(amount: i64, redeem: i64) -> PurchaseCmd {
    let now = ts("2026-11-20T10:00:00Z");
    PurchaseCmd {
        transaction_id: id("txn_1"),
        partner: partner(),
        external_id: "R-1".into(),
        request_hash: "h1".into(),
        member: MemberRef::Id(id("mem_1")),
        location_id: None,
        occurred_at: now,
        total: eur(amount),
        lines_json: "[]".into(),
        redeem_points: redeem,
        wallet_id: None,
        valuation: value_purchase(&program(), Decimal::ONE, Decimal::ONE, eur(amount), redeem).unwrap(),
        rules: RuleDraft::default(),
        program: program(),
        now,
    }
}

fn member(available: i64, with_lots: bool) -> MemberState {
    let lot = Lot {
        id: Some(1),
        remaining: available,
        earned_at: ts("2026-01-01T00:00:00Z"),
        expires_at: ts("2028-01-01T00:00:00Z"),
        matures_at: None,
        transaction_id: Some("txn_0".into()),
        origin: LotOrigin::Earn,
    };
    MemberState {
        member_id: id("mem_1"),
        balance: Balance {
            available,
            pending: 0,
            lifetime_earned: available,
        },
        lots: if with_lots { vec![lot] } else { Vec::new() },
        lots_loaded: with_lots,
        next_due_at: Some(ts("2028-01-01T00:00:00Z")),
        tier: Default::default(),
        plan: None,
        wallet: None,
        default_wallet: None,
        ..Default::default()
    }
}

fn facts<'a>(state: &'a MemberState, counters: &'a HashMap<String, i64>) -> PurchaseFacts<'a> {
    PurchaseFacts {
        state,
        location_owner: None,
        visits: None,
        counters,
        wallet: None,
        household_tier: None,
    }
}

fn capped(points: i64, cap: i64) -> Award {
    Award {
        rule_id: id("rul_1"),
        version: 2,
        name: "Double points".into(),
        points,
        limits: vec![Limit {
            scope: LimitScope::Cap {
                period: "month:2026-11".into(),
            },
            limit: cap,
            label: "per member per month".into(),
        }],
        operator_percent: 0,
    }
}

#[test]
fn a_sale_earns_and_spends_with_one_receipt() {
    let state = member(500, true);
    let none = HashMap::new();
    let d = decide_purchase(&sale(10_000, 200), facts(&state, &none), ReceiptStatus::Posted).unwrap();
    assert_eq!(d.receipt.points_redeemed, 200);
    assert_eq!(d.receipt.points_earned, 98);
    assert_eq!(d.receipt.balance.available, 500 - 200 + 98);
    assert_eq!(d.receipt.status, "posted");
    assert_eq!(d.receipt.id, "txn_1");
    assert_eq!(d.plan.balance_after.available, 398);
}

#[test]
fn a_quote_is_the_same_decision_without_an_id() {
    let state = member(500, true);
    let none = HashMap::new();
    let posted = decide_purchase(&sale(10_000, 200), facts(&state, &none), ReceiptStatus::Posted).unwrap();
    let quoted = decide_purchase(&sale(10_000, 200), facts(&state, &none), ReceiptStatus::Quote).unwrap();
    assert_eq!(quoted.receipt.status, "quote");
    assert_eq!(quoted.receipt.id, "");
    assert_eq!(quoted.plan, posted.plan);
    assert_eq!(quoted.receipt.breakdown, posted.receipt.breakdown);
}

#[test]
fn a_location_of_another_partner_is_refused() {
    let state = member(0, false);
    let none = HashMap::new();
    let mut cmd = sale(1000, 0);
    cmd.location_id = Some(id("loc_x"));
    let (other, own): (PartnerId, PartnerId) = (id("ptn_other"), id("ptn_a"));
    for owner in [None, Some(&other)] {
        let f = PurchaseFacts {
            location_owner: owner,
            ..facts(&state, &none)
        };
        for status in [ReceiptStatus::Posted, ReceiptStatus::Quote] {
            assert_eq!(decide_purchase(&cmd, f, status), Err(DomainError::UnknownLocation));
        }
    }
    let f = PurchaseFacts {
        location_owner: Some(&own),
        ..facts(&state, &none)
    };
    assert!(decide_purchase(&cmd, f, ReceiptStatus::Posted).is_ok());
}

#[test]
fn a_changed_visit_count_is_stale_and_a_missing_one_a_bug() {
    let state = member(0, false);
    let none = HashMap::new();
    let mut cmd = sale(1000, 0);
    cmd.rules.assumed = Some(MemberAssumption {
        member_id: id("mem_1"),
        visits: 0,
    });
    let with = |visits| PurchaseFacts {
        visits,
        ..facts(&state, &none)
    };
    assert!(decide_purchase(&cmd, with(Some(0)), ReceiptStatus::Posted).is_ok());
    assert_eq!(
        decide_purchase(&cmd, with(Some(1)), ReceiptStatus::Posted),
        Err(DomainError::Stale)
    );
    assert!(matches!(
        decide_purchase(&cmd, with(None), ReceiptStatus::Posted),
        Err(DomainError::Invariant(_))
    ));
    // A quote does not write, so it does not check.
    assert!(decide_purchase(&cmd, with(None), ReceiptStatus::Quote).is_ok());
}

#[test]
fn caps_cut_an_award_and_say_so() {
    let state = member(0, false);
    let mut used = HashMap::new();
    used.insert("mem_1:month:2026-11:rul_1".to_string(), 1_950);
    let mut cmd = sale(10_000, 0);
    cmd.rules.awards = vec![capped(100, 2_000)];
    let d = decide_purchase(&cmd, facts(&state, &used), ReceiptStatus::Posted).unwrap();
    assert_eq!(d.points_earned(), 100 + 50);
    assert_eq!(
        d.granted.increments,
        vec![("mem_1:month:2026-11:rul_1".to_string(), 50)]
    );
    assert_eq!(d.granted.awards[0].points, 50);
    let reason = &d.receipt.breakdown[1].reason;
    assert!(
        reason.contains("limit reached: 2000 points per member per month"),
        "{reason}"
    );
}

/// A broken invariant panics in debug builds (tests), and refuses in release builds.
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "plan invariant broken"))]
fn spending_without_the_lots_is_a_broken_invariant() {
    let state = member(500, false);
    let none = HashMap::new();
    assert!(matches!(
        decide_purchase(&sale(10_000, 200), facts(&state, &none), ReceiptStatus::Posted),
        Err(DomainError::Invariant(_))
    ));
}

#[test]
fn more_points_than_the_member_has_are_refused() {
    let state = member(100, true);
    let none = HashMap::new();
    assert!(matches!(
        decide_purchase(&sale(10_000, 200), facts(&state, &none), ReceiptStatus::Posted),
        Err(DomainError::InsufficientPoints { .. })
    ));
}

#[test]
fn replays_need_the_same_request_on_the_same_target() {
    let stored = |target: Option<&str>| {
        Some(StoredAnswer {
            request_hash: "h".into(),
            receipt_json: "{}".into(),
            target: target.map(str::to_string),
        })
    };
    assert_eq!(replay(None, "h", None), Ok(None));
    assert!(replay(stored(None), "h", None).unwrap().unwrap().replayed);
    assert_eq!(
        replay(stored(None), "other", None),
        Err(DomainError::IdempotencyConflict)
    );
    assert!(replay(stored(Some("txn_1")), "h", Some("txn_1")).unwrap().is_some());
    assert_eq!(
        replay(stored(Some("txn_1")), "h", Some("txn_2")),
        Err(DomainError::IdempotencyConflict)
    );
}

#[test]
fn a_return_takes_back_in_proportion_and_gives_counters_back() {
    let mut state = member(100, true);
    state.lots[0].transaction_id = Some("txn_1".into());
    let purchase = PurchaseRecord {
        id: id("txn_1"),
        partner_id: id("ptn_a"),
        partner_name: "Drugstore".into(),
        member_id: id("mem_1"),
        total: eur(10_000),
        points_earned: 100,
        points_operator: 0,
        points_redeemed: 0,
        returned_amount: 0,
        points_reversed: 0,
        points_refunded: 0,
        tier_qualifying: 0,
        recorded_at: ts("2026-11-01T00:00:00Z"),
        wallet: None,
        tier_household: None,
    };
    let awards = [SavedAward {
        rule_id: id("rul_1"),
        points: 40,
        reversed: 0,
        keys: vec!["k".into()],
    }];
    let cmd = ReturnCmd {
        return_id: id("ret_1"),
        partner_id: id("ptn_a"),
        transaction_id: id("txn_1"),
        external_id: "R-1-1".into(),
        request_hash: "h".into(),
        amount: eur(5_000),
        program: program(),
        now: ts("2026-11-21T10:00:00Z"),
    };
    let f = ReturnFacts {
        purchase: &purchase,
        state: &state,
        awards: &awards,
        wallet: None,
        household_tier: None,
    };
    let d = decide_return(&cmd, f).unwrap();
    assert_eq!(d.receipt.points_reversed, 50);
    assert_eq!(d.purchase_change.returned_amount, 5_000);
    assert_eq!(d.purchase_change.points_reversed, 50);
    assert_eq!(d.award_reversals.len(), 1);
    assert_eq!((d.award_reversals[0].points, d.award_reversals[0].give_back), (20, 20));
    let too_much = ReturnCmd {
        amount: eur(10_001),
        ..cmd
    };
    assert_eq!(decide_return(&too_much, f), Err(DomainError::ReturnExceedsPurchase));
}

/// An event of `event_type` for mem_1 at partner A, whose one rule gives 200 points.
fn event(event_type: &str, program: ProgramTerms) -> EventCmd {
    let now = ts("2026-11-20T10:00:00Z");
    EventCmd {
        id: id("evt_1"),
        source: "ptn_a".into(),
        external_id: "E-1".into(),
        partner: Some(partner()),
        member: MemberRef::Id(id("mem_1")),
        event_type: event_type.into(),
        attributes_json: "{}".into(),
        occurred_at: now,
        request_hash: "h".into(),
        rules: RuleDraft {
            steps: Vec::new(),
            awards: vec![capped(200, 1_000)],
            assumed: None,
        },
        program,
        now,
    }
}

#[test]
fn an_unknown_event_type_is_refused() {
    let state = member(0, false);
    let none = HashMap::new();
    let cmd = event("nope", program());
    let f = EventFacts {
        state: &state,
        type_known: false,
        visits: None,
        counters: &none,
        household_tier: None,
    };
    assert_eq!(decide_event(&cmd, f), Err(DomainError::UnknownEventType("nope".into())));
    let d = decide_event(&cmd, EventFacts { type_known: true, ..f }).unwrap();
    assert_eq!(d.points_earned(), 200);
    assert_eq!(d.receipt.balance.available, 200);
}

#[test]
fn an_event_qualifies_where_the_operator_lets_it_in_the_households_standing() {
    let state = member(0, false);
    let none = HashMap::new();
    let mut ladder = crate::tiers::TierLadder {
        levels: vec![crate::tiers::TierLevel {
            code: "silver".into(),
            name: "Silver".into(),
            threshold: 150,
            multiplier: Decimal::ONE,
            perks: Vec::new(),
        }],
        scope: crate::tiers::TierScope::Household,
        ..Default::default()
    };
    let cmd = |ladder: &crate::tiers::TierLadder| {
        event(
            "quiz",
            ProgramTerms {
                tiers: std::sync::Arc::new(ladder.clone()),
                ..program()
            },
        )
    };
    let home: crate::ids::WalletId = id("wal_home");
    let standing = crate::tiers::TierState::default();
    let f = EventFacts {
        state: &state,
        type_known: true,
        visits: None,
        counters: &none,
        household_tier: Some((&home, &standing)),
    };
    // Off by default: nothing to write, no change on the receipt.
    let d = decide_event(&cmd(&ladder), f).unwrap();
    assert_eq!((d.tier, d.receipt.tier_change), (None, None));
    ladder.events_qualify = true;
    let d = decide_event(&cmd(&ladder), f).unwrap();
    let t = d.tier.expect("the event counts");
    assert_eq!(t.household, Some(home.clone()));
    assert_eq!(
        (t.standing.qualifying, t.standing.effective.as_deref()),
        (200, Some("silver"))
    );
    assert_eq!(d.receipt.tier_change.and_then(|c| c.to), Some("silver".to_string()));
    // A member of no household counts in their own standing.
    let d = decide_event(
        &cmd(&ladder),
        EventFacts {
            household_tier: None,
            ..f
        },
    )
    .unwrap();
    assert_eq!(d.tier.map(|t| (t.household, t.standing.qualifying)), Some((None, 200)));
}

#[test]
fn settling_with_nothing_due_writes_nothing() {
    let state = member(100, true);
    assert_eq!(decide_settle(&state, ts("2026-11-20T10:00:00Z")), Ok(None));
    let plan = decide_settle(&state, ts("2028-01-02T00:00:00Z")).unwrap().unwrap();
    assert_eq!(plan.balance_after.available, 0);
}

#[test]
fn a_balance_never_passes_its_limit() {
    let mut state = member(0, false);
    state.balance.available = crate::money::MAX_BALANCE - 10;
    let none = HashMap::new();
    let refused = decide_purchase(&sale(10_000, 0), facts(&state, &none), ReceiptStatus::Posted);
    assert!(
        matches!(
            refused,
            Err(DomainError::LimitExceeded {
                code: "balance_limit_exceeded",
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(decide_purchase(&sale(1_000, 0), facts(&state, &none), ReceiptStatus::Posted).is_ok());
}

mod wallets {
    use super::*;
    use crate::ids::WalletId;
    use crate::ledger::Account;
    use crate::wallets::{Rights, SaleRoute, WalletKind, WalletLink};

    fn wallet_state(available: i64) -> MemberState {
        let mut w = member(available, true);
        w.wallet = Some(id("wal_h"));
        w.lots[0].id = Some(9);
        w
    }

    fn link(earn_into: bool, spend: bool) -> WalletLink {
        WalletLink {
            wallet_id: id("wal_h"),
            kind: WalletKind::Household,
            rights: Rights { earn_into, spend },
        }
    }

    fn with_wallet<'a>(
        state: &'a MemberState,
        counters: &'a HashMap<String, i64>,
        link: &'a WalletLink,
        wallet: &'a MemberState,
    ) -> PurchaseFacts<'a> {
        PurchaseFacts {
            wallet: Some(WalletFacts { link, state: wallet }),
            ..facts(state, counters)
        }
    }

    #[test]
    fn earning_into_and_paying_from_the_wallet_leaves_the_member_alone() {
        let (own, wallet, none, l) = (member(500, true), wallet_state(300), HashMap::new(), link(true, true));
        let d = decide_purchase(
            &sale(10_000, 200),
            with_wallet(&own, &none, &l, &wallet),
            ReceiptStatus::Posted,
        )
        .unwrap();
        assert_eq!(
            d.plan.balance_after.available, 500,
            "the member's own points do not move"
        );
        assert!(d.plan.transfers.is_empty());
        let w = d.wallet.expect("the wallet took part");
        assert_eq!(
            w.route,
            SaleRoute {
                earns_into_wallet: true,
                pays_from_wallet: true
            }
        );
        assert_eq!(w.plan.balance_after.available, 300 - 200 + d.receipt.points_earned);
        assert!(
            w.plan
                .transfers
                .iter()
                .all(|t| { [&t.from, &t.to].iter().all(|a| a.member().is_none()) })
        );
        assert!(
            w.plan
                .transfers
                .iter()
                .any(|t| t.from == Account::WalletAvailable("wal_h".into()))
        );
        let rw = d.receipt.wallet.expect("the answer says which wallet paid");
        assert_eq!(
            (rw.id.as_str(), rw.points_redeemed, rw.points_earned),
            ("wal_h", 200, d.receipt.points_earned)
        );
    }

    #[test]
    fn a_member_without_spend_is_refused_and_one_without_earn_into_earns_for_themself() {
        let (own, wallet, none) = (member(500, true), wallet_state(300), HashMap::new());
        let earn_only = link(true, false);
        let err = decide_purchase(
            &sale(10_000, 50),
            with_wallet(&own, &none, &earn_only, &wallet),
            ReceiptStatus::Posted,
        )
        .unwrap_err();
        assert_eq!(err, DomainError::NotAllowedToSpend("wal_h".into()));
        let spend_only = link(false, true);
        let d = decide_purchase(
            &sale(10_000, 50),
            with_wallet(&own, &none, &spend_only, &wallet),
            ReceiptStatus::Posted,
        )
        .unwrap();
        assert_eq!(d.plan.balance_after.available, 500 + d.receipt.points_earned);
        assert_eq!(d.wallet.unwrap().plan.balance_after.available, 250);
        // Without redeeming, a spend-only link does not touch the wallet at all.
        let d = decide_purchase(
            &sale(10_000, 0),
            with_wallet(&own, &none, &spend_only, &wallet),
            ReceiptStatus::Posted,
        )
        .unwrap();
        assert!(d.wallet.is_none() && d.receipt.wallet.is_none());
    }

    #[test]
    fn a_wallet_the_member_is_not_in_is_refused() {
        let (own, none) = (member(500, true), HashMap::new());
        let mut cmd = sale(10_000, 0);
        cmd.wallet_id = Some(id::<WalletId>("wal_x"));
        assert_eq!(
            decide_purchase(&cmd, facts(&own, &none), ReceiptStatus::Posted).unwrap_err(),
            DomainError::NotInWallet("wal_x".into())
        );
    }

    #[test]
    fn a_wallet_cannot_pay_more_than_it_holds() {
        let (own, wallet, none, l) = (member(5_000, true), wallet_state(100), HashMap::new(), link(true, true));
        let err = decide_purchase(
            &sale(10_000, 101),
            with_wallet(&own, &none, &l, &wallet),
            ReceiptStatus::Posted,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            DomainError::InsufficientPoints {
                available: 100,
                requested: 101
            }
        ));
    }

    #[test]
    fn a_return_refunds_the_wallet_that_paid_and_takes_back_from_the_earner() {
        // Paid 200 from the wallet, earned 100 for the member (no earn_into).
        let mut own = member(100, true);
        own.lots[0].transaction_id = Some("txn_1".into());
        let wallet = wallet_state(0);
        let purchase = PurchaseRecord {
            id: id("txn_1"),
            partner_id: id("ptn_a"),
            partner_name: "Drugstore".into(),
            member_id: id("mem_1"),
            total: eur(10_000),
            points_earned: 100,
            points_operator: 40,
            points_redeemed: 200,
            returned_amount: 0,
            points_reversed: 0,
            points_refunded: 0,
            tier_qualifying: 0,
            recorded_at: ts("2026-11-01T00:00:00Z"),
            wallet: Some((
                id("wal_h"),
                SaleRoute {
                    earns_into_wallet: false,
                    pays_from_wallet: true,
                },
            )),
            tier_household: None,
        };
        let cmd = ReturnCmd {
            return_id: id("ret_1"),
            partner_id: id("ptn_a"),
            transaction_id: id("txn_1"),
            external_id: "R-1-1".into(),
            request_hash: "h".into(),
            amount: eur(10_000),
            program: program(),
            now: ts("2026-11-21T10:00:00Z"),
        };
        let f = ReturnFacts {
            purchase: &purchase,
            state: &own,
            awards: &[],
            wallet: Some(&wallet),
            household_tier: None,
        };
        let d = decide_return(&cmd, f).unwrap();
        assert_eq!((d.result.points_refunded, d.result.points_reversed), (200, 100));
        assert_eq!(
            d.plan.balance_after.available, 0,
            "the member gives back what they earned"
        );
        // Each funder gets back its own share: 60 to the partner, 40 to the operator.
        let back = |to: crate::ledger::Account| -> i64 {
            d.plan
                .transfers
                .iter()
                .filter(|t| t.to == to && t.code == crate::ledger::EntryCode::ReturnReversal)
                .map(|t| t.points)
                .sum()
        };
        assert_eq!(back(crate::ledger::Account::PartnerIssued("ptn_a".into())), 60);
        assert_eq!(back(crate::ledger::Account::ProgramFunded("ptn_a".into())), 40);
        let (wid, wplan) = d.wallet_plan.expect("the wallet is refunded");
        assert_eq!((wid.as_str(), wplan.balance_after.available), ("wal_h", 200));
        assert_eq!(d.receipt.wallet.unwrap().points_refunded, 200);
    }
}
