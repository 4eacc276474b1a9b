//! Settlement reconciliation, on SQLite and PostgreSQL. Random runs of sales (some dated
//! weeks back, some paying with points, some co-funded by the operator), returns,
//! expiry runs, days passing and month closes, under simulated time that only moves
//! forward. Then, for every month from the first:
//! - a closed month's statements are byte for byte what its close stored, and each
//!   stored hash is the SHA-256 of its body;
//! - each month reconciles to the point, one month's closing outstanding is the next
//!   one's opening, and the last equals what members hold now;
//! - over all months, each partner's statements add up to its accounts in the ledger;
//! - each sale's points settle in its own month, or, when that month was already closed
//!   when it was posted, in the first open month as late lines.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::HashMap;
use tally_domain::DomainError;
use tally_domain::earning::{FxRates, value_purchase};
use tally_domain::identity::Identity;
use tally_domain::ids::{Id, MemberId, RuleId, TransactionId};
use tally_domain::money::{Currency, Money};
use tally_domain::rules::Award;
use tally_domain::settlement::{Netting, Period, PriceVersion, Prices, Side, Statement, StatementStatus};
use tally_store::settlement::{Settlement, content_hash};
use tally_store::testing::TestDb;
use tally_store::*;

const MEMBERS: usize = 3;

fn start() -> Timestamp {
    "2026-01-05T10:00:00Z".parse().unwrap()
}

/// Sales are never dated before this.
fn first_day() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// When partners and members were created: before the first day of the run.
fn created() -> Timestamp {
    "2025-12-15T00:00:00Z".parse().unwrap()
}

fn first_period() -> Period {
    Period::parse("2026-01").unwrap()
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

#[derive(Debug, Clone)]
enum Op {
    /// `amount` in EUR cents (a CZK sale is 25 times as many haléře).
    Sale {
        member: usize,
        partner: usize,
        amount: i64,
        rule_points: i64,
        operator_percent: u8,
        redeem: i64,
        days_back: i64,
    },
    /// `sale` is taken modulo the number of sales posted so far.
    Return {
        sale: usize,
        full: bool,
    },
    Advance {
        days: i64,
    },
    Expire,
    Close,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let sale = (
        0..MEMBERS,
        0..2usize,
        100i64..50_000,
        0i64..300,
        prop::sample::select(vec![0u8, 50, 100]),
        prop_oneof![Just(0i64), 1i64..200],
        // −1: a till a day ahead (the API takes `occurred_at` up to a day after now).
        -1i64..40,
    )
        .prop_map(
            |(member, partner, amount, rule_points, operator_percent, redeem, days_back)| Op::Sale {
                member,
                partner,
                amount,
                rule_points,
                operator_percent,
                redeem,
                days_back,
            },
        );
    let op = prop_oneof![
        4 => sale,
        2 => (0usize..1000, any::<bool>()).prop_map(|(sale, full)| Op::Return { sale, full }),
        3 => (1i64..25).prop_map(|days| Op::Advance { days }),
        1 => Just(Op::Expire),
        2 => Just(Op::Close),
    ];
    prop::collection::vec(op, 1..40)
}

struct Partner {
    row: PartnerRow,
    /// Units of its currency per programme unit.
    rate: Decimal,
    /// Minor units of its currency per drawn amount unit.
    scale: i64,
}

/// An accepted sale as the model sees it.
struct Sold {
    txn: String,
    partner: usize,
    total: i64,
    returned: i64,
    /// The month its `earn` and `redeem` entries settle in.
    settles_in: Period,
    /// Posted when its own month was already closed.
    late: bool,
    partner_points: i64,
    operator_points: i64,
    redeemed: i64,
}

/// What a close stored, as fetched right after it.
struct Closed {
    period: Period,
    netting: String,
    content_hash: String,
    closing_outstanding: i64,
    /// (partner, body, hash)
    statements: Vec<(String, String, String)>,
}

fn refusal(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::Domain(DomainError::Refused { code, .. }) => Some(*code),
        _ => None,
    }
}

fn balance(books: &LedgerBalances, account: &str) -> i64 {
    books
        .accounts
        .iter()
        .find(|(a, _, _)| a.as_str() == account)
        .map_or(0, |(_, b, _)| *b)
}

fn holders(books: &LedgerBalances) -> i64 {
    let (a, p, r) = books.members;
    let (wa, wp) = books.wallets;
    a + p + r + wa + wp
}

/// The partner-funded and operator-funded points of a receipt's breakdown (a line
/// without `funding` is all the partner's).
fn funding(receipt: &serde_json::Value) -> (i64, i64) {
    let mut partner = 0;
    let mut operator = 0;
    for item in receipt["breakdown"].as_array().unwrap() {
        let points = item["points"].as_i64().unwrap();
        match item.get("funding").filter(|f| !f.is_null()) {
            Some(f) => {
                partner += f["partner"].as_i64().unwrap();
                operator += f["operator"].as_i64().unwrap();
            }
            None => partner += points,
        }
    }
    (partner, operator)
}

/// The month to close next: the one after the last closed, or the first.
fn next_to_close(closed: &[Closed]) -> Period {
    closed.last().map_or(first_period(), |c| c.period.next())
}

/// Closes `p` at `now` (it must be allowed) and remembers what was stored.
async fn close(store: &Store, p: Period, now: Timestamp, closed: &mut Vec<Closed>) {
    let backend = store.backend();
    let first = closed.is_empty();
    let row = store
        .close_period(p, now, FxRates::new())
        .await
        .unwrap_or_else(|e| panic!("{backend}: closing {p} at {now}: {e:?}"));
    assert_eq!(row.period, p, "{backend}: the closed period");
    assert_eq!(
        content_hash(&row.netting),
        row.content_hash,
        "{backend}: {p}'s netting hash"
    );
    let Settlement::Closed { period, statements } = store.settlement(p, None).await.unwrap() else {
        panic!("{backend}: {p} is not closed right after its close");
    };
    assert_eq!(period.netting, row.netting, "{backend}: {p}'s netting as stored");
    assert_eq!(period.content_hash, row.content_hash, "{backend}: {p}'s hash as stored");
    assert_eq!(
        period.closing_outstanding, row.closing_outstanding,
        "{backend}: {p}'s outstanding"
    );
    assert_eq!(statements.len(), 2, "{backend}: {p} has a statement per partner");
    let netting: Netting = serde_json::from_str(&row.netting).unwrap();
    for s in &statements {
        assert_eq!(content_hash(&s.body), s.content_hash, "{backend}: {p}'s statement hash");
        let parsed: Statement = serde_json::from_str(&s.body).unwrap();
        assert_eq!(
            parsed.status,
            StatementStatus::Closed,
            "{backend}: {p}'s statement status"
        );
        assert_eq!(parsed.partner_id, s.partner_id, "{backend}: {p}'s statement partner");
        assert_eq!(parsed.period, p.to_string(), "{backend}: {p}'s statement period");
        let line = netting
            .partners
            .iter()
            .find(|l| l.partner_id == s.partner_id)
            .unwrap_or_else(|| panic!("{backend}: {p}'s netting lacks a partner"));
        assert_eq!(
            line.content_hash.as_deref(),
            Some(s.content_hash.as_str()),
            "{backend}: {p}'s netting names the statement's hash"
        );
    }
    // A closed month stays closed; months close in order.
    let again = store.close_period(p, now, FxRates::new()).await.unwrap_err();
    assert_eq!(
        refusal(&again),
        Some("period_closed"),
        "{backend}: closing {p} twice: {again:?}"
    );
    let skip = store
        .close_period(p.next().next(), now, FxRates::new())
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&skip),
        Some("previous_period_open"),
        "{backend}: skipping a month: {skip:?}"
    );
    if first {
        let before = store.settlement(p.prev(), None).await.unwrap_err();
        assert_eq!(
            refusal(&before),
            Some("before_first_period"),
            "{backend}: a month before the first closed: {before:?}"
        );
    }
    closed.push(Closed {
        period: p,
        netting: row.netting,
        content_hash: row.content_hash,
        closing_outstanding: row.closing_outstanding,
        statements: statements
            .into_iter()
            .map(|s| (s.partner_id.as_str().to_string(), s.body, s.content_hash))
            .collect(),
    });
}

async fn run_case(db: TestDb, ops: &[Op]) {
    let store = db.store.clone();
    let backend = store.backend();
    let czk = Currency::parse("CZK").unwrap();
    let eur = Currency::parse("EUR").unwrap();
    let mut fx = FxRates::new();
    fx.set(czk, Decimal::new(252, 1)).unwrap();
    store.put_fx_rates(fx, created()).await.unwrap();
    let program = store
        .update_program(ProgramUpdate {
            expiry_months: Some(1),
            ..ProgramUpdate::default()
        })
        .await
        .unwrap();
    let rates = store.fx_rates().await.unwrap();
    let mut partners = Vec::new();
    for (name, country, currency, tz, scale) in [
        ("Berlin", "DE", eur, "Europe/Berlin", 1),
        ("Prague", "CZ", czk, "Europe/Prague", 25),
    ] {
        let row = store
            .create_partner(PartnerRow {
                id: keys::new(),
                name: name.into(),
                industry: "grocery".into(),
                country: country.into(),
                currency,
                timezone: tz.into(),
                earn_rate: Decimal::ONE,
                pending_days: 0,
                created_at: created(),
            })
            .await
            .unwrap();
        let rate = rates.rate_for(program.currency, currency).unwrap();
        partners.push(Partner { row, rate, scale });
    }
    let mut members: Vec<MemberId> = Vec::new();
    for i in 0..MEMBERS {
        let m = NewMember {
            id: keys::new(),
            name: None,
            country: Some("CZ".into()),
            referral_code: keys::referral_code(),
            referred_by_code: None,
            identities: vec![Identity::email(&format!("s{i}@example.com")).unwrap()],
            created_at: created(),
        };
        members.push(store.create_member(m).await.unwrap().id);
    }
    let issue_price = Decimal::new(8, 3);
    let reimbursement_rate = Decimal::new(95, 4);
    store
        .put_price(PriceVersion {
            partner_id: None,
            effective_from: jiff::civil::date(2026, 1, 1),
            prices: Prices {
                issue_price,
                reimbursement_rate,
                monthly_fee: Decimal::ZERO,
                redemption_fee_percent: Decimal::ZERO,
            },
            created_at: created(),
        })
        .await
        .unwrap();

    let mut now = start();
    let mut sold: Vec<Sold> = Vec::new();
    let mut closed: Vec<Closed> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Sale {
                member,
                partner,
                amount,
                rule_points,
                operator_percent,
                redeem,
                days_back,
            } => {
                let p = &partners[partner];
                let occurred_at = now.checked_sub(days(days_back)).unwrap().max(first_day());
                let total = Money::new(amount * p.scale, p.row.currency).unwrap();
                let valuation = match value_purchase(&program.terms(), p.rate, p.row.earn_rate, total, redeem) {
                    Ok(v) => v,
                    Err(DomainError::RedeemExceedsTotal) => continue,
                    Err(e) => panic!("{backend}: valuing a sale: {e:?}"),
                };
                let awards = match rule_points {
                    0 => Vec::new(),
                    points => vec![Award {
                        rule_id: RuleId::from_stored("rul_bonus".into()),
                        version: 1,
                        name: "Bonus".into(),
                        points,
                        limits: Vec::new(),
                        operator_percent,
                    }],
                };
                let cmd = PurchaseCmd {
                    transaction_id: keys::new(),
                    partner: p.row.terms(),
                    external_id: format!("S-{i}"),
                    request_hash: format!("s-{i}"),
                    member: MemberRef::Id(members[member].clone()),
                    location_id: None,
                    occurred_at,
                    total,
                    lines_json: "[]".into(),
                    redeem_points: redeem,
                    wallet_id: None,
                    valuation,
                    rules: RuleDraft {
                        steps: Vec::new(),
                        awards,
                        assumed: None,
                    },
                    program: program.terms(),
                    now,
                };
                let posted = match store.post_purchase(cmd).await {
                    Ok(posted) => posted,
                    Err(StoreError::Domain(
                        DomainError::InsufficientPoints { .. } | DomainError::RedeemExceedsTotal,
                    )) => {
                        continue;
                    }
                    Err(e) => panic!("{backend}: sale {i} at {now}: {e:?}"),
                };
                let receipt: serde_json::Value = serde_json::from_str(&posted.receipt_json).unwrap();
                let (partner_points, operator_points) = funding(&receipt);
                assert_eq!(
                    partner_points + operator_points,
                    receipt["points_earned"].as_i64().unwrap(),
                    "{backend}: sale {i}'s funding adds up to its points"
                );
                let own = Period::of(occurred_at);
                let last_closed = closed.last().map(|c| c.period);
                let late = last_closed.is_some_and(|l| own <= l);
                sold.push(Sold {
                    txn: receipt["id"].as_str().unwrap().to_string(),
                    partner,
                    total: total.amount,
                    returned: 0,
                    settles_in: match last_closed {
                        Some(l) if late => l.next(),
                        _ => own,
                    },
                    late,
                    partner_points,
                    operator_points,
                    redeemed: receipt["points_redeemed"].as_i64().unwrap(),
                });
            }
            Op::Return { sale, full } => {
                if sold.is_empty() {
                    continue;
                }
                let k = sale % sold.len();
                let s = &sold[k];
                let left = s.total - s.returned;
                let amount = match (full, left) {
                    (true, 0) => s.total,
                    (true, left) => left,
                    (false, _) => (s.total / 2).max(1),
                };
                let p = &partners[s.partner];
                let cmd = ReturnCmd {
                    return_id: keys::new(),
                    partner_id: p.row.id.clone(),
                    transaction_id: TransactionId::from_stored(s.txn.clone()),
                    external_id: format!("R-{i}"),
                    request_hash: format!("r-{i}"),
                    amount: Money::new(amount, p.row.currency).unwrap(),
                    program: program.terms(),
                    now,
                };
                match store.post_return(cmd).await {
                    Ok(_) => sold[k].returned += amount,
                    Err(StoreError::Domain(DomainError::ReturnExceedsPurchase)) => {}
                    Err(e) => panic!("{backend}: return {i} at {now}: {e:?}"),
                }
            }
            Op::Advance { days: n } => now = now.checked_add(days(n)).unwrap(),
            Op::Expire => {
                store.settle_due(now, 10_000).await.unwrap();
            }
            Op::Close => {
                let p = next_to_close(&closed);
                if now < p.end() {
                    let e = store.close_period(p, now, FxRates::new()).await.unwrap_err();
                    assert_eq!(
                        refusal(&e),
                        Some("period_not_ended"),
                        "{backend}: closing {p} at {now}: {e:?}"
                    );
                    continue;
                }
                close(&store, p, now, &mut closed).await;
            }
        }
    }
    // At least a couple of months closed, where time allows.
    while closed.len() < 2 && now >= next_to_close(&closed).end() {
        let p = next_to_close(&closed);
        close(&store, p, now, &mut closed).await;
    }

    let stored = store.settlement_periods().await.unwrap();
    assert_eq!(
        stored.iter().map(|s| s.period).collect::<Vec<_>>(),
        closed.iter().map(|c| c.period).collect::<Vec<_>>(),
        "{backend}: the closed periods"
    );

    // Every month from the first (always 2026-01) through the month of tomorrow.
    let last = Period::of(now.checked_add(days(1)).unwrap());
    let mut periods = Vec::new();
    let mut p = first_period();
    while p <= last {
        periods.push(p);
        p = p.next();
    }
    let mut views: Vec<(Period, Vec<Statement>, Netting)> = Vec::new();
    for &p in &periods {
        let (statements, netting) = match store.settlement(p, None).await.unwrap() {
            Settlement::Closed { period, statements } => {
                let c = closed
                    .iter()
                    .find(|c| c.period == p)
                    .unwrap_or_else(|| panic!("{backend}: {p} is closed but no close of it was seen"));
                // 1. Closed statements never change.
                assert_eq!(period.netting, c.netting, "{backend}: {p}'s netting changed");
                assert_eq!(
                    period.content_hash, c.content_hash,
                    "{backend}: {p}'s netting hash changed"
                );
                assert_eq!(
                    period.closing_outstanding, c.closing_outstanding,
                    "{backend}: {p}'s outstanding changed"
                );
                assert_eq!(
                    content_hash(&period.netting),
                    period.content_hash,
                    "{backend}: {p}'s netting hash"
                );
                let now_stored: Vec<(String, String, String)> = statements
                    .iter()
                    .map(|s| {
                        (
                            s.partner_id.as_str().to_string(),
                            s.body.clone(),
                            s.content_hash.clone(),
                        )
                    })
                    .collect();
                assert_eq!(now_stored, c.statements, "{backend}: {p}'s statements changed");
                for s in &statements {
                    assert_eq!(content_hash(&s.body), s.content_hash, "{backend}: {p}'s statement hash");
                }
                let netting: Netting = serde_json::from_str(&period.netting).unwrap();
                assert_eq!(
                    netting.reconciliation.closing_outstanding, period.closing_outstanding,
                    "{backend}: {p}'s stored outstanding"
                );
                let parsed: Vec<Statement> = statements
                    .iter()
                    .map(|s| serde_json::from_str::<Statement>(&s.body).unwrap())
                    .collect();
                (parsed, netting)
            }
            Settlement::Open { statements, netting } => {
                assert!(
                    !closed.iter().any(|c| c.period == p),
                    "{backend}: {p} was closed and reads as open"
                );
                // One partner's statement alone is the same as in the whole month.
                for s in &statements {
                    let Settlement::Open {
                        statements: one,
                        netting: None,
                    } = store.settlement(p, Some(s.partner_id.clone())).await.unwrap()
                    else {
                        panic!("{backend}: {p} for one partner");
                    };
                    assert_eq!(one, vec![s.clone()], "{backend}: {p}: one partner's statement");
                }
                (statements, netting.expect("an open month's netting view"))
            }
        };
        assert_eq!(netting.period, p.to_string(), "{backend}: {p}'s netting period");
        assert_eq!(statements.len(), 2, "{backend}: {p} has a statement per partner");
        for s in &statements {
            assert_eq!(s.period, p.to_string(), "{backend}: {p}'s statement period");
            for l in &s.lines {
                let price = match l.side {
                    Side::Issued => Some(issue_price),
                    Side::Redeemed => Some(reimbursement_rate),
                    Side::OperatorFunded => None,
                };
                assert_eq!(l.price, price, "{backend}: {p}'s line {l:?}");
                assert_eq!(l.late, l.day < p.first_day(), "{backend}: {p}'s line {l:?}");
                assert!(l.day < p.end_day(), "{backend}: {p} holds a later day: {l:?}");
            }
        }
        views.push((p, statements, netting));
    }

    let books = store.ledger_balances().await.unwrap();
    let held = holders(&books);

    // 2. Each month reconciles; months chain; the last ends with what members hold.
    for (p, _, netting) in &views {
        assert_eq!(
            netting.reconciliation.difference, 0,
            "{backend}: {p} does not reconcile: {:?}",
            netting.reconciliation
        );
    }
    let (p0, _, n0) = &views[0];
    assert_eq!(
        n0.reconciliation.opening_outstanding, 0,
        "{backend}: {p0} opens with points out"
    );
    for w in views.windows(2) {
        assert_eq!(
            w[1].2.reconciliation.opening_outstanding, w[0].2.reconciliation.closing_outstanding,
            "{backend}: {} opens with other than {} closed with",
            w[1].0, w[0].0
        );
    }
    let (pl, _, nl) = views.last().unwrap();
    assert_eq!(
        nl.reconciliation.closing_outstanding, held,
        "{backend}: {pl} closes with other than members hold"
    );

    let statement_of = |statements: &[Statement], k: usize| -> Statement {
        statements
            .iter()
            .find(|s| s.partner_id == partners[k].row.id)
            .cloned()
            .unwrap_or_else(|| panic!("{backend}: no statement of partner {k}"))
    };
    let lines = |s: &Statement, side: Side, code: &str, late_only: bool| -> i64 {
        s.lines
            .iter()
            .filter(|l| l.side == side && l.code == code && (l.late || !late_only))
            .map(|l| l.points)
            .sum()
    };

    // 3. Over all months, each partner's statements add up to its accounts.
    for (k, partner) in partners.iter().enumerate() {
        let id = &partner.row.id;
        let (mut issued, mut redeemed, mut funded) = (0i64, 0i64, 0i64);
        for (_, statements, _) in &views {
            let s = statement_of(statements, k);
            issued += s.issued.points;
            redeemed += s.redeemed.points;
            funded += s.operator_funded.points;
        }
        assert_eq!(
            issued,
            -balance(&books, &format!("partner:{id}:issued")),
            "{backend}: partner {k} issued"
        );
        assert_eq!(
            redeemed,
            balance(&books, &format!("partner:{id}:redeemed")),
            "{backend}: partner {k} redeemed"
        );
        assert_eq!(
            funded,
            -balance(&books, &format!("program:funded:{id}")),
            "{backend}: partner {k} operator-funded"
        );
    }

    // 4. Each sale's points settle in the month the model says: (partner-funded,
    // operator-funded, redeemed) per month and partner.
    let mut expected: HashMap<(Period, usize), (i64, i64, i64)> = HashMap::new();
    for x in &sold {
        let e = expected.entry((x.settles_in, x.partner)).or_default();
        e.0 += x.partner_points;
        e.1 += x.operator_points;
        e.2 += x.redeemed;
    }
    for (p, statements, _) in &views {
        for k in 0..partners.len() {
            let s = statement_of(statements, k);
            let (issued, funded, redeemed) = expected.get(&(*p, k)).copied().unwrap_or_default();
            assert_eq!(
                lines(&s, Side::Issued, "earn", false),
                issued,
                "{backend}: partner {k}'s earned points settled in {p}"
            );
            assert_eq!(
                lines(&s, Side::OperatorFunded, "earn", false),
                funded,
                "{backend}: the operator's points at partner {k} settled in {p}"
            );
            assert_eq!(
                lines(&s, Side::Redeemed, "redeem", false),
                redeemed,
                "{backend}: points redeemed at partner {k} settled in {p}"
            );
        }
    }

    // 5. Sales posted after their month closed are late lines, and only they are.
    let (mut late_issued, mut late_funded) = (0i64, 0i64);
    for (_, statements, _) in &views {
        for s in statements {
            late_issued += lines(s, Side::Issued, "earn", true);
            late_funded += lines(s, Side::OperatorFunded, "earn", true);
        }
    }
    let (mut model_issued, mut model_funded) = (0i64, 0i64);
    for x in sold.iter().filter(|x| x.late) {
        model_issued += x.partner_points;
        model_funded += x.operator_points;
    }
    assert_eq!(late_issued, model_issued, "{backend}: late partner-funded points");
    assert_eq!(late_funded, model_funded, "{backend}: late operator-funded points");

    // The liability at the end of tomorrow (sales may be dated a day ahead) is what
    // members hold; breakage counts every expired point once.
    let tomorrow = now.checked_add(days(1)).unwrap();
    let liability = store
        .liability(tally_domain::settlement::day_of(tomorrow))
        .await
        .unwrap();
    assert_eq!(liability.outstanding_points, held, "{backend}: the liability's points");
    let expired: i64 = store.breakage().await.unwrap().iter().map(|c| c.expired).sum();
    assert_eq!(expired, balance(&books, "program:expired"), "{backend}: breakage");

    // Prices may not reach into a closed month.
    if let Some(c) = closed.last() {
        let e = store
            .put_price(PriceVersion {
                partner_id: None,
                effective_from: c.period.first_day(),
                prices: Prices::at_point_value(Decimal::new(1, 2)),
                created_at: now,
            })
            .await
            .unwrap_err();
        assert_eq!(
            refusal(&e),
            Some("period_closed"),
            "{backend}: prices in a closed month: {e:?}"
        );
    }

    // 6. The ledger balances.
    let v = store.verify_ledger().await.unwrap();
    assert!(v.balanced, "{backend}: {v:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn settlement_reconciles_month_by_month(script in ops()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            for db in TestDb::all().await {
                run_case(db, &script).await;
            }
        });
    }
}
