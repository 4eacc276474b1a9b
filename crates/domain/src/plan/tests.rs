//! Unit and property tests of the planners against an in-memory ledger.

use super::*;
use crate::earning::value_purchase;
use crate::ids::Id;
use crate::money::Currency;
use proptest::prelude::*;
use std::collections::HashMap;

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

fn partner(pending_days: u32) -> PartnerTerms {
    PartnerTerms {
        id: PartnerId::from_stored("ptn_a".into()),
        name: "Drugstore".into(),
        earn_rate: Decimal::ONE,
        pending_days,
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A ledger in memory: applies plans the way a store does and checks the invariants.
#[derive(Default)]
struct Model {
    state: MemberState,
    entries: HashMap<String, i64>,
    next_lot: i64,
    purchases: Vec<PurchaseRecord>,
}

impl Model {
    fn new() -> Self {
        Model {
            state: MemberState {
                member_id: MemberId::from_stored("mem_1".into()),
                lots_loaded: true,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn apply(&mut self, plan: &Plan) {
        for t in &plan.transfers {
            *self.entries.entry(t.from.key()).or_default() -= t.points;
            *self.entries.entry(t.to.key()).or_default() += t.points;
        }
        for u in &plan.lot_updates {
            let lot = self
                .state
                .lots
                .iter_mut()
                .find(|l| l.id == Some(u.id))
                .expect("updated lot exists");
            lot.remaining = u.remaining;
            lot.matures_at = u.matures_at;
        }
        for lot in &plan.new_lots {
            self.next_lot += 1;
            self.state.lots.push(Lot {
                id: Some(self.next_lot),
                ..lot.clone()
            });
        }
        self.state.balance = plan.balance_after;
    }

    fn buy(&mut self, amount: i64, redeem: i64, pending_days: u32, now: Timestamp) -> Result<(), DomainError> {
        self.buy_with_campaign(amount, redeem, pending_days, now, 0, 0)
    }

    /// A sale whose valuation also has a campaign line of `bonus` points, `operator_percent`
    /// of them funded by the operator.
    fn buy_with_campaign(
        &mut self,
        amount: i64,
        redeem: i64,
        pending_days: u32,
        now: Timestamp,
        bonus: i64,
        operator_percent: u8,
    ) -> Result<(), DomainError> {
        let p = partner(pending_days);
        let total = Money::new(amount, Currency::parse("EUR").unwrap()).unwrap();
        let mut valuation = value_purchase(&program(), Decimal::ONE, p.earn_rate, total, redeem)?;
        if bonus > 0 {
            valuation.points_earned += bonus;
            valuation.breakdown.push(crate::breakdown::BreakdownLine {
                rule: "rul_campaign".into(),
                version: Some(1),
                points: bonus,
                reason: "Campaign".into(),
                operator_percent,
            });
        }
        let id = format!("txn_{}", self.purchases.len());
        let purchase = Purchase {
            transaction_id: &id,
            partner: &p,
            occurred_at: now,
            redeem_points: redeem,
            valuation: &valuation,
            label: None,
            code: crate::ledger::EntryCode::Earn,
        };
        let plan = plan_purchase(&self.state, &program(), &purchase, now)?;
        self.apply(&plan);
        self.purchases.push(PurchaseRecord {
            id: TransactionId::from_stored(id),
            partner_id: p.id.clone(),
            partner_name: p.name.clone(),
            member_id: MemberId::from_stored("mem_1".into()),
            total,
            points_earned: valuation.points_earned,
            points_operator: valuation.operator_points(),
            points_redeemed: redeem,
            returned_amount: 0,
            points_reversed: 0,
            points_refunded: 0,
            tier_qualifying: 0,
            recorded_at: now,
            wallet: None,
            tier_household: None,
        });
        Ok(())
    }

    fn give_back(&mut self, idx: usize, amount: i64, now: Timestamp) -> Result<ReturnResult, DomainError> {
        let record = self.purchases[idx].clone();
        let money = Money::new(amount, record.total.currency).unwrap();
        let (plan, result) = plan_return(&self.state, &program(), &record, "ret_x", money, now)?;
        self.apply(&plan);
        let r = &mut self.purchases[idx];
        r.returned_amount += amount;
        r.points_reversed += result.points_reversed + result.points_unrecovered;
        r.points_refunded += result.points_refunded;
        Ok(result)
    }

    fn settle(&mut self, now: Timestamp) {
        let plan = plan_settle(&self.state, now).expect("settling keeps the invariants");
        self.apply(&plan);
    }

    fn check(&self) {
        let b = self.state.balance;
        assert_eq!(self.entries.values().sum::<i64>(), 0, "entries sum to zero");
        assert_eq!(
            self.entries.get("member:mem_1:available").copied().unwrap_or(0),
            b.available
        );
        assert_eq!(
            self.entries.get("member:mem_1:pending").copied().unwrap_or(0),
            b.pending
        );
        assert!(b.available >= 0 && b.pending >= 0, "never negative: {b:?}");
        let lots_available: i64 = self
            .state
            .lots
            .iter()
            .filter(|l| !l.is_pending())
            .map(|l| l.remaining)
            .sum();
        let lots_pending: i64 = self
            .state
            .lots
            .iter()
            .filter(|l| l.is_pending())
            .map(|l| l.remaining)
            .sum();
        assert_eq!(lots_available, b.available, "lots back the available balance");
        assert_eq!(lots_pending, b.pending, "lots back the pending balance");
        for p in &self.purchases {
            assert!(p.points_reversed <= p.points_earned);
            assert!(p.points_refunded <= p.points_redeemed);
        }
        // No funder ever gets back more than it funded.
        for funder in ["partner:ptn_a:issued", "program:funded:ptn_a"] {
            assert!(self.entries.get(funder).copied().unwrap_or(0) <= 0, "{funder}");
        }
    }

    fn account(&self, key: &str) -> i64 {
        self.entries.get(key).copied().unwrap_or(0)
    }
}

#[test]
fn each_funder_pays_its_share_and_returns_take_back_in_the_same_proportion() {
    let mut m = Model::new();
    let at = ts("2026-11-02T10:00:00Z");
    // EUR 100.00 earns 100 base points (the partner's) and a 60-point campaign the
    // operator co-funds at 50%: 130 from the partner, 30 from the operator.
    m.buy_with_campaign(10_000, 0, 0, at, 60, 50).unwrap();
    assert_eq!(m.purchases[0].points_operator, 30);
    assert_eq!(m.account("partner:ptn_a:issued"), -130);
    assert_eq!(m.account("program:funded:ptn_a"), -30);
    assert_eq!(m.state.balance.available, 160);
    // Half returned: 80 points back, 15 of them the operator's.
    let r = m.give_back(0, 5_000, at).unwrap();
    assert_eq!(r.points_reversed, 80);
    assert_eq!(m.account("partner:ptn_a:issued"), -65);
    assert_eq!(m.account("program:funded:ptn_a"), -15);
    // The rest: both funders are made whole, to the point.
    m.give_back(0, 5_000, at).unwrap();
    assert_eq!(m.account("partner:ptn_a:issued"), 0);
    assert_eq!(m.account("program:funded:ptn_a"), 0);
    m.check();
}

#[test]
fn after_returns_in_any_steps_each_funder_has_exactly_its_own_back() {
    // Small sales, where rounding matters most, returned in uneven steps: every step
    // takes back no more of the operator's points than it takes in all, and once the
    // whole sale is back each funder has been given back exactly what it funded.
    let at = ts("2026-11-02T10:00:00Z");
    for base_cents in [100, 300, 700] {
        for bonus in 0..=6 {
            for pct in [0u8, 33, 50, 67, 100] {
                for steps in [[40, 20, 40], [91, 1, 8], [1, 1, 98], [33, 33, 34], [10, 80, 10]] {
                    let mut m = Model::new();
                    m.buy_with_campaign(base_cents, 0, 0, at, bonus, pct).unwrap();
                    let mut returned = 0;
                    for (i, step) in steps.iter().enumerate() {
                        let amount = if i == steps.len() - 1 {
                            base_cents - returned
                        } else {
                            base_cents * step / 100
                        };
                        returned += amount;
                        let before = m.account("program:funded:ptn_a");
                        let r = m.give_back(0, amount, at).unwrap();
                        let operator_back = m.account("program:funded:ptn_a") - before;
                        assert!(
                            (0..=r.points_reversed + r.points_unrecovered).contains(&operator_back),
                            "{base_cents} {bonus} {pct}% {steps:?}: step {i} gave the operator {operator_back} of {r:?}"
                        );
                    }
                    let case = format!("{base_cents} cents, {bonus} bonus at {pct}%, steps {steps:?}");
                    assert_eq!(m.account("partner:ptn_a:issued"), 0, "{case}");
                    assert_eq!(m.account("program:funded:ptn_a"), 0, "{case}");
                    m.check();
                }
            }
        }
    }
}

#[test]
fn points_already_spent_are_unrecovered_for_each_funder() {
    let mut m = Model::new();
    let at = ts("2026-11-02T10:00:00Z");
    // 100 base points and 100 the operator funds in full; the member spends 150.
    m.buy_with_campaign(10_000, 0, 0, at, 100, 100).unwrap();
    m.buy(1_000, 150, 0, at).unwrap();
    let r = m.give_back(0, 10_000, at).unwrap();
    assert_eq!(r.points_reversed + r.points_unrecovered, 200);
    // Each funder gets its own points back; what the member had spent is the
    // programme's loss.
    assert_eq!(m.account("partner:ptn_a:issued"), -m.purchases[1].points_earned);
    assert_eq!(m.account("program:funded:ptn_a"), 0);
    assert_eq!(m.account("program:unrecovered"), -r.points_unrecovered);
    m.check();
}

#[test]
fn earn_then_spend_fifo_by_expiry() {
    let mut m = Model::new();
    m.buy(10_000, 0, 0, ts("2026-01-01T00:00:00Z")).unwrap();
    m.buy(5_000, 0, 0, ts("2026-03-01T00:00:00Z")).unwrap();
    assert_eq!(m.state.balance.available, 150);
    m.buy(1_000, 120, 0, ts("2026-04-01T00:00:00Z")).unwrap();
    // The January lot (100) is used up first, then 20 of the March lot.
    let remaining: Vec<i64> = m.state.lots.iter().map(|l| l.remaining).collect();
    assert_eq!(remaining, vec![0, 30, 8]);
    m.check();
}

#[test]
fn spending_more_than_available_is_refused() {
    let mut m = Model::new();
    m.buy(1_000, 0, 0, ts("2026-01-01T00:00:00Z")).unwrap();
    let err = m.buy(1_000, 11, 0, ts("2026-01-02T00:00:00Z")).unwrap_err();
    assert_eq!(
        err,
        DomainError::InsufficientPoints {
            available: 10,
            requested: 11
        }
    );
    m.check();
}

#[test]
fn pending_points_mature_and_lots_expire() {
    let mut m = Model::new();
    m.buy(10_000, 0, 14, ts("2026-01-01T00:00:00Z")).unwrap();
    assert_eq!((m.state.balance.available, m.state.balance.pending), (0, 100));
    assert!(
        m.buy(100, 1, 14, ts("2026-01-05T00:00:00Z")).is_err(),
        "pending points cannot be spent"
    );
    m.settle(ts("2026-01-15T00:00:01Z"));
    assert_eq!((m.state.balance.available, m.state.balance.pending), (100, 0));
    m.settle(ts("2027-12-31T23:59:59Z"));
    assert_eq!(m.state.balance.available, 100, "not yet expired");
    m.settle(ts("2028-01-01T00:00:00Z"));
    assert_eq!(m.state.balance.available, 0, "expired 24 months after earning");
    assert_eq!(m.entries["program:expired"], 100);
    m.check();
}

#[test]
fn partial_returns_reverse_in_proportion_and_never_more() {
    let mut m = Model::new();
    let now = ts("2026-01-01T00:00:00Z");
    m.buy(15_000, 0, 0, now).unwrap(); // 150 points
    let first = m.give_back(0, 5_000, now).unwrap();
    assert_eq!(first.points_reversed, 50);
    let second = m.give_back(0, 10_000, now).unwrap();
    assert_eq!(second.points_reversed, 100);
    assert_eq!(m.give_back(0, 1, now), Err(DomainError::ReturnExceedsPurchase));
    assert_eq!(m.state.balance.available, 0);
    m.check();
}

#[test]
fn returns_of_spent_points_report_unrecovered() {
    let mut m = Model::new();
    let now = ts("2026-01-01T00:00:00Z");
    m.buy(10_000, 0, 0, now).unwrap(); // 100 points
    m.buy(10_000, 100, 0, now).unwrap(); // spends them, earns 99
    m.buy(1, 99, 0, ts("2026-01-01T00:00:00Z")).unwrap_err();
    let r = m.give_back(0, 10_000, now).unwrap();
    // The 99 earned on the second purchase are taken, the last point is lost.
    assert_eq!((r.points_reversed, r.points_unrecovered), (99, 1));
    assert_eq!(m.entries["program:unrecovered"], -1);
    m.check();
}

#[test]
fn returns_refund_spent_points() {
    let mut m = Model::new();
    let now = ts("2026-01-01T00:00:00Z");
    m.buy(20_000, 0, 0, now).unwrap(); // 200
    m.buy(10_000, 100, 0, now).unwrap(); // spends 100 worth EUR 1, earns 99
    let r = m.give_back(1, 5_000, now).unwrap();
    assert_eq!((r.points_refunded, r.points_reversed), (50, 50)); // 99/2 = 49.5 → 50
    m.check();
}

#[derive(Debug, Clone)]
enum Op {
    Buy {
        amount: i64,
        redeem_pct: i64,
        pending_days: u32,
        bonus: i64,
        operator_percent: u8,
    },
    Return {
        which: usize,
        pct: i64,
    },
    Advance {
        days: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0i64..50_000,
            0i64..=100,
            prop_oneof![Just(0u32), 0u32..40],
            prop_oneof![Just(0i64), 1i64..500],
            0u8..=100
        )
            .prop_map(|(amount, redeem_pct, pending_days, bonus, operator_percent)| Op::Buy {
                amount,
                redeem_pct,
                pending_days,
                bonus,
                operator_percent,
            }),
        (0usize..20, 1i64..=100).prop_map(|(which, pct)| Op::Return { which, pct }),
        (0u32..400).prop_map(|days| Op::Advance { days }),
    ]
}

proptest! {
    /// Random earn / spend / return / expire sequences keep every balance equal to its
    /// entries, backed by lots, never negative, and all entries summing to zero.
    #[test]
    fn ledger_invariants_hold(ops in proptest::collection::vec(op(), 1..60)) {
        let mut m = Model::new();
        let mut now = ts("2026-01-01T00:00:00Z");
        for op in ops {
            match op {
                Op::Buy { amount, redeem_pct, pending_days, bonus, operator_percent } => {
                    let redeem = (m.state.balance.available * redeem_pct / 100).min(amount);
                    let _ = m.buy_with_campaign(amount, redeem, pending_days, now, bonus, operator_percent);
                }
                Op::Return { which, pct } => {
                    if !m.purchases.is_empty() {
                        let idx = which % m.purchases.len();
                        let left = m.purchases[idx].total.amount - m.purchases[idx].returned_amount;
                        let amount = (left * pct / 100).max(1);
                        let _ = m.give_back(idx, amount, now);
                    }
                }
                Op::Advance { days } => {
                    now = add_days(now, days);
                    m.settle(now);
                }
            }
            m.check();
        }
    }
}
