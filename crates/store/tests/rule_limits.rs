//! Caps and budgets under concurrent load, on SQLite and PostgreSQL: random sequences of
//! sales (many at once) and returns never give a rule more than its per-member cap or its
//! budget, never leave budget unused while a member asks for more, and the counters
//! equal what was given minus what returns took back (PostgreSQL's budget counter also
//! holds the server's unused lease).

use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal::Decimal;
use tally_domain::earning::{FxRates, value_purchase};
use tally_domain::identity::Identity;
use tally_domain::ids::{Id, RuleId, TransactionId};
use tally_domain::money::{Currency, Money};
use tally_domain::rules::{Award, Cap, CapPeriod, limits};
use tally_store::testing::TestDb;
use tally_store::*;

const RULE: &str = "rul_limited";

fn now() -> Timestamp {
    "2026-03-10T10:00:00Z".parse().unwrap()
}

#[derive(Debug, Clone)]
struct Case {
    cap: i64,
    budget: i64,
    members: usize,
    /// (member index, rule points asked, amount in CZK minor units) of each sale.
    sales: Vec<(usize, i64, i64)>,
    /// Sales to return in full afterwards (indexes into `sales`).
    returns: Vec<usize>,
}

fn cases() -> impl Strategy<Value = Case> {
    (1i64..400, 1i64..1500, 1usize..5).prop_flat_map(|(cap, budget, members)| {
        let sales = prop::collection::vec((0..members, 1i64..300, 2_520i64..100_000), 1..24);
        (Just(cap), Just(budget), Just(members), sales).prop_flat_map(|(cap, budget, members, sales)| {
            let n = sales.len();
            let returns = prop::collection::vec(0..n, 0..4);
            (
                Just(Case {
                    cap,
                    budget,
                    members,
                    sales,
                    returns: vec![],
                }),
                returns,
            )
                .prop_map(|(mut c, r)| {
                    c.returns = r;
                    c.returns.sort_unstable();
                    c.returns.dedup();
                    c
                })
        })
    })
}

fn rule_points(receipt: &serde_json::Value) -> i64 {
    receipt["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["rule"] == RULE)
        .map(|b| b["points"].as_i64().unwrap())
        .sum()
}

async fn run_case(db: TestDb, case: &Case) {
    let store = db.store.clone();
    let backend = store.backend();
    let mut fx = FxRates::new();
    fx.set(Currency::parse("CZK").unwrap(), Decimal::new(252, 1)).unwrap();
    store.put_fx_rates(fx, now()).await.unwrap();
    let program = store.program().await.unwrap();
    let partner = store
        .create_partner(PartnerRow {
            id: keys::new(),
            name: "Drugstore".into(),
            industry: "drugstore".into(),
            country: "CZ".into(),
            currency: Currency::parse("CZK").unwrap(),
            timezone: "Europe/Prague".into(),
            earn_rate: Decimal::ONE,
            pending_days: 0,
            created_at: now(),
        })
        .await
        .unwrap();
    let mut members = Vec::new();
    for i in 0..case.members {
        let m = NewMember {
            id: keys::new(),
            name: None,
            country: Some("CZ".into()),
            referral_code: keys::referral_code(),
            referred_by_code: None,
            identities: vec![Identity::email(&format!("m{i}@example.com")).unwrap()],
            created_at: now(),
        };
        members.push(store.create_member(m).await.unwrap().id);
    }
    let date = now().to_zoned(jiff::tz::TimeZone::get("Europe/Prague").unwrap()).date();
    let caps = [Cap {
        period: CapPeriod::Month,
        points: case.cap,
    }];
    // All sales at once: the writers group and interleave them as they like.
    let mut tasks = Vec::new();
    for (i, &(m, points, amount)) in case.sales.iter().enumerate() {
        let total = Money::new(amount, Currency::parse("CZK").unwrap()).unwrap();
        let valuation = value_purchase(&program.terms(), Decimal::new(252, 1), Decimal::ONE, total, 0).unwrap();
        let cmd = PurchaseCmd {
            transaction_id: keys::new(),
            partner: partner.terms(),
            external_id: format!("S-{i}"),
            request_hash: format!("h-{i}"),
            member: MemberRef::Id(members[m].clone()),
            location_id: None,
            occurred_at: now(),
            total,
            lines_json: "[]".into(),
            redeem_points: 0,
            wallet_id: None,
            valuation,
            rules: RuleDraft {
                steps: Vec::new(),
                awards: vec![Award {
                    rule_id: RuleId::from_stored(RULE.into()),
                    version: 1,
                    name: "Limited bonus".into(),
                    points,
                    limits: limits(&caps, Some(case.budget), date),
                    // Co-funded: the operator pays half of what the rule gives (rounded
                    // down), the partner the rest and the base points.
                    operator_percent: 50,
                }],
                assumed: None,
            },
            program: program.terms(),
            now: now(),
        };
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.post_purchase(cmd).await }));
    }
    let mut given = vec![0i64; case.members];
    let mut txns = Vec::new();
    for (task, &(m, asked, amount)) in tasks.into_iter().zip(&case.sales) {
        let posted = task.await.unwrap().unwrap();
        let receipt: serde_json::Value = serde_json::from_str(&posted.receipt_json).unwrap();
        let got = rule_points(&receipt);
        assert!(got <= asked, "{backend}: a rule gave more than it asked");
        given[m] += got;
        txns.push((receipt["id"].as_str().unwrap().to_string(), m, got, amount));
    }
    let total_given: i64 = given.iter().sum();
    for g in &given {
        assert!(*g <= case.cap, "{backend}: cap {} overrun: {g}", case.cap);
    }
    assert!(
        total_given <= case.budget,
        "{backend}: budget {} overspent: {total_given}",
        case.budget
    );
    // Nothing is left unused while members asked for more: each member got what it
    // asked, or its cap or the budget ran out.
    let asked: Vec<i64> = (0..case.members)
        .map(|m| case.sales.iter().filter(|s| s.0 == m).map(|s| s.1).sum())
        .collect();
    for m in 0..case.members {
        assert!(
            given[m] == asked[m] || given[m] == case.cap || total_given == case.budget,
            "{backend}: member {m} got {} of {} with cap {} and budget {} ({total_given} given)",
            given[m],
            asked[m],
            case.cap,
            case.budget
        );
    }
    // Full returns give their rule points back to the cap and the budget.
    let mut back = vec![0i64; case.members];
    for &r in &case.returns {
        let (txn, m, got, amount) = &txns[r];
        let cmd = ReturnCmd {
            return_id: keys::new(),
            partner_id: partner.id.clone(),
            transaction_id: TransactionId::from_stored(txn.clone()),
            external_id: format!("R-{r}"),
            request_hash: format!("r-{r}"),
            amount: Money::new(*amount, Currency::parse("CZK").unwrap()).unwrap(),
            program: program.terms(),
            now: now(),
        };
        store.post_return(cmd).await.unwrap();
        back[*m] += got;
    }
    let keys: Vec<String> = members
        .iter()
        .flat_map(|m| {
            limits(&caps, None, date)
                .into_iter()
                .map(move |l| l.key(&RuleId::from_stored(RULE.into()), m))
        })
        .chain(std::iter::once(format!("{RULE}:budget")))
        .collect();
    let counters = store.rule_counters(keys.clone()).await.unwrap();
    for (i, key) in keys.iter().take(case.members).enumerate() {
        assert_eq!(
            counters.get(key).copied().unwrap_or(0),
            given[i] - back[i],
            "{backend}: cap counter of member {i}"
        );
    }
    let budget_counter = counters.get(&keys[case.members]).copied().unwrap_or(0);
    let net = total_given - back.iter().sum::<i64>();
    if backend == "sqlite" {
        assert_eq!(budget_counter, net, "{backend}: budget counter");
    } else {
        // PostgreSQL counts what the server leased of the budget (see budgets.rs): at
        // least what was given, never more than the budget.
        assert!(
            net <= budget_counter && budget_counter <= case.budget,
            "{backend}: budget counter {budget_counter}, given {net}, budget {}",
            case.budget
        );
    }
    // The operator funded half of each sale's rule points still kept; full returns
    // took its share back.
    let returned: std::collections::HashSet<usize> = case.returns.iter().copied().collect();
    let operator: i64 = txns
        .iter()
        .enumerate()
        .filter(|(i, _)| !returned.contains(i))
        .map(|(_, (_, _, got, _))| got / 2)
        .sum();
    let books = store.ledger_balances().await.unwrap();
    let funded = books
        .accounts
        .iter()
        .find(|(a, _, _)| *a == format!("program:funded:{}", partner.id))
        .map_or(0, |(_, b, _)| *b);
    assert_eq!(funded, -operator, "{backend}: the operator's share");
    let v = store.verify_ledger().await.unwrap();
    assert!(v.balanced, "{backend}: {v:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn caps_and_budgets_never_overrun_under_concurrent_sales(case in cases()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            for db in TestDb::all().await {
                run_case(db, &case).await;
            }
        });
    }
}
