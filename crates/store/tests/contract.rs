//! The storage contract: every test runs on SQLite and on PostgreSQL (when reachable;
//! required in CI) through the public `Store` API.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::sync::Arc;
use tally_domain::earning::{FxRates, value_purchase};
use tally_domain::identity::Identity;
use tally_domain::ids::{Id, LocationId, MemberId, TransactionId};
use tally_domain::money::{Currency, Money};
use tally_store::testing::TestDb;
use tally_store::*;

fn mid(id: &str) -> MemberId {
    MemberId::from_stored(id.to_string())
}

fn tid(id: &str) -> TransactionId {
    TransactionId::from_stored(id.to_string())
}

fn t0() -> Timestamp {
    "2026-01-05T10:00:00Z".parse().unwrap()
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// A programme with one partner and members, on one backend.
struct World {
    db: TestDb,
    program: ProgramRow,
    partner: PartnerRow,
    other: PartnerRow,
}

impl World {
    async fn new(db: TestDb, pending_days: u32) -> World {
        let store = &db.store;
        let mut fx = FxRates::new();
        fx.set(Currency::parse("CZK").unwrap(), Decimal::new(252, 1)).unwrap();
        store.put_fx_rates(fx, t0()).await.unwrap();
        let partner = |name: &str| PartnerRow {
            id: keys::new(),
            name: name.into(),
            industry: "drugstore".into(),
            country: "CZ".into(),
            currency: Currency::parse("CZK").unwrap(),
            timezone: "Europe/Prague".into(),
            earn_rate: Decimal::ONE,
            pending_days,
            created_at: t0(),
        };
        let p = store.create_partner(partner("Drugstore")).await.unwrap();
        let o = store.create_partner(partner("Other")).await.unwrap();
        World {
            program: store.program().await.unwrap(),
            partner: p,
            other: o,
            db,
        }
    }

    fn store(&self) -> &Store {
        &self.db.store
    }

    fn name(&self) -> &'static str {
        self.db.store.backend()
    }

    async fn member(&self, email: &str) -> String {
        let m = NewMember {
            id: keys::new(),
            name: None,
            country: Some("CZ".into()),
            referral_code: keys::referral_code(),
            referred_by_code: None,
            identities: vec![Identity::email(email).unwrap()],
            created_at: t0(),
        };
        self.store().create_member(m).await.unwrap().id.into_string()
    }

    /// A purchase of `czk` whole crowns (1 point per 25.2 CZK) at `now`.
    fn purchase(
        &self,
        partner: &PartnerRow,
        member: &str,
        receipt: &str,
        czk_minor: i64,
        redeem: i64,
        now: Timestamp,
    ) -> PurchaseCmd {
        let total = Money::new(czk_minor, Currency::parse("CZK").unwrap()).unwrap();
        let valuation = value_purchase(
            &self.program.terms(),
            Decimal::new(252, 1),
            partner.earn_rate,
            total,
            redeem,
        )
        .unwrap();
        PurchaseCmd {
            transaction_id: keys::new(),
            partner: partner.terms(),
            external_id: receipt.into(),
            request_hash: format!("hash-{receipt}-{czk_minor}-{redeem}"),
            member: MemberRef::Id(mid(member)),
            location_id: None,
            occurred_at: now,
            total,
            lines_json: "[]".into(),
            redeem_points: redeem,
            wallet_id: None,
            valuation,
            rules: Default::default(),
            program: self.program.terms(),
            now,
        }
    }

    fn give_back(&self, txn: &str, receipt: &str, czk_minor: i64, now: Timestamp) -> ReturnCmd {
        ReturnCmd {
            return_id: keys::new(),
            partner_id: self.partner.id.clone(),
            transaction_id: tid(txn),
            external_id: receipt.into(),
            request_hash: format!("ret-{receipt}-{czk_minor}"),
            amount: Money::new(czk_minor, Currency::parse("CZK").unwrap()).unwrap(),
            program: self.program.terms(),
            now,
        }
    }

    async fn balance(&self, member: &str) -> (i64, i64) {
        let m = self.store().member(&mid(member)).await.unwrap().unwrap();
        (m.balance.available, m.balance.pending)
    }

    async fn assert_balanced(&self) {
        let v = self.store().verify_ledger().await.unwrap();
        assert!(v.balanced, "{}: ledger not balanced: {v:?}", self.name());
    }
}

fn receipt(posted: &Posted) -> serde_json::Value {
    serde_json::from_str(&posted.receipt_json).unwrap()
}

async fn worlds(pending_days: u32) -> Vec<World> {
    let mut out = Vec::new();
    for db in TestDb::all().await {
        out.push(World::new(db, pending_days).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_earns_and_the_same_receipt_never_earns_twice() {
    for w in worlds(0).await {
        let m = w.member("a@example.cz").await;
        let first = w
            .store()
            .post_purchase(w.purchase(&w.partner, &m, "R-1", 252_000, 0, t0()))
            .await
            .unwrap();
        assert_eq!(receipt(&first)["points_earned"], 100, "{}", w.name());
        assert!(!first.replayed);
        let again = w
            .store()
            .post_purchase(w.purchase(&w.partner, &m, "R-1", 252_000, 0, t0()))
            .await
            .unwrap();
        assert!(again.replayed, "{}", w.name());
        assert_eq!(
            again.receipt_json,
            first.receipt_json,
            "{}: replay is the first answer",
            w.name()
        );
        let changed = w
            .store()
            .post_purchase(w.purchase(&w.partner, &m, "R-1", 100, 0, t0()))
            .await;
        assert!(
            matches!(
                changed,
                Err(StoreError::Domain(tally_domain::DomainError::IdempotencyConflict))
            ),
            "{}: {changed:?}",
            w.name()
        );
        // The same receipt id at another partner is another receipt.
        w.store()
            .post_purchase(w.purchase(&w.other, &m, "R-1", 252_000, 0, t0()))
            .await
            .unwrap();
        assert_eq!(w.balance(&m).await, (200, 0), "{}", w.name());
        assert_eq!(w.store().counts().await.unwrap().transactions, 2);
        w.assert_balanced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_purchase_writes_nothing() {
    for w in worlds(0).await {
        let m = w.member("b@example.cz").await;
        w.store()
            .post_purchase(w.purchase(&w.partner, &m, "R-1", 25_200, 0, t0()))
            .await
            .unwrap();
        let before = w.store().counts().await.unwrap();
        let too_much = w
            .store()
            .post_purchase(w.purchase(&w.partner, &m, "R-2", 252_000, 11, t0()))
            .await;
        assert!(
            matches!(
                too_much,
                Err(StoreError::Domain(tally_domain::DomainError::InsufficientPoints {
                    available: 10,
                    requested: 11
                }))
            ),
            "{}: {too_much:?}",
            w.name()
        );
        let unknown = w
            .store()
            .post_purchase(w.purchase(&w.partner, "mem_nobody", "R-3", 100, 0, t0()))
            .await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound(tally_store::Entity::Member))),
            "{}",
            w.name()
        );
        let mut bad_location = w.purchase(&w.partner, &m, "R-4", 100, 0, t0());
        bad_location.location_id = Some(LocationId::from_stored("loc_elsewhere".into()));
        assert!(matches!(
            w.store().post_purchase(bad_location).await,
            Err(StoreError::Domain(tally_domain::DomainError::UnknownLocation))
        ));
        assert_eq!(
            w.store().counts().await.unwrap(),
            before,
            "{}: nothing written",
            w.name()
        );
        assert_eq!(w.balance(&m).await, (10, 0));
        w.assert_balanced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spends_never_overdraw() {
    for w in worlds(0).await {
        let m = w.member("c@example.cz").await;
        w.store()
            .post_purchase(w.purchase(&w.partner, &m, "EARN", 252_000, 0, t0()))
            .await
            .unwrap(); // 100 points
        let w = Arc::new(w);
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (w, m) = (w.clone(), m.clone());
            // Each spends 10 points on a CZK 25.20 bill (worth EUR 1.00: points may pay all of it).
            tasks.push(tokio::spawn(async move {
                w.store()
                    .post_purchase(w.purchase(&w.partner, &m, &format!("SPEND-{i}"), 2_520, 10, t0()))
                    .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Domain(tally_domain::DomainError::InsufficientPoints { .. })) => {}
                Err(e) => panic!("{}: unexpected {e}", w.name()),
            }
        }
        assert_eq!(ok, 10, "{}: exactly 100 points were there to spend", w.name());
        assert_eq!(w.balance(&m).await, (0, 0), "{}", w.name());
        w.assert_balanced().await;
    }
}

/// Many sales in one queue entry (as the batch endpoint sends them), so that a
/// PostgreSQL writer takes them as one group: several of one member, named by id and by
/// identity, each decided after the one before it; a copy of a receipt inside the
/// batch; a member that does not exist; another member beside them. Each gets its own
/// answer, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_sales_of_one_member_is_decided_in_order() {
    for w in worlds(0).await {
        let m = w.member("group@example.cz").await;
        let other = w.member("beside@example.cz").await;
        let by_identity = |mut cmd: PurchaseCmd| {
            cmd.member = MemberRef::Identity(Identity::email("group@example.cz").unwrap());
            cmd
        };
        let answers = w
            .store()
            .post_purchases(vec![
                // 100 points.
                w.purchase(&w.partner, &m, "G-EARN", 252_000, 0, t0()),
                // Pays EUR 0.70 of a EUR 1.00 bill with 70 of them; the rest earns nothing.
                by_identity(w.purchase(&w.partner, &m, "G-SPEND-1", 2_520, 70, t0())),
                // 30 are left: refused, whoever names the member.
                w.purchase(&w.partner, &m, "G-SPEND-2", 2_520, 70, t0()),
                w.purchase(&w.partner, &m, "G-EARN", 252_000, 0, t0()),
                w.purchase(
                    &w.partner,
                    "mem_0000000000000000000000nobody",
                    "G-NOBODY",
                    252_000,
                    0,
                    t0(),
                ),
                w.purchase(&w.partner, &other, "G-OTHER", 252_000, 0, t0()),
            ])
            .await;
        let name = w.name();
        let [earn, spend, refused, copy, nobody, beside] = &answers[..] else {
            panic!("{name}: one answer per sale");
        };
        let earn = earn.as_ref().unwrap();
        assert!(!earn.replayed, "{name}");
        assert_eq!(receipt(earn)["points_earned"], 100, "{name}");
        let spend = spend.as_ref().unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(receipt(spend)["points_redeemed"], 70, "{name}");
        assert!(
            matches!(
                refused,
                Err(StoreError::Domain(tally_domain::DomainError::InsufficientPoints { .. }))
            ),
            "{name}: {refused:?}"
        );
        let copy = copy.as_ref().unwrap();
        assert!(copy.replayed, "{name}: the copy is answered as the first");
        assert_eq!(receipt(copy)["id"], receipt(earn)["id"], "{name}");
        assert!(
            matches!(nobody, Err(StoreError::NotFound(Entity::Member))),
            "{name}: {nobody:?}"
        );
        assert_eq!(receipt(beside.as_ref().unwrap())["points_earned"], 100, "{name}");
        assert_eq!(w.balance(&m).await, (30, 0), "{name}");
        assert_eq!(w.balance(&other).await, (100, 0), "{name}");
        w.assert_balanced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_duplicates_post_once() {
    for w in worlds(0).await {
        let m = w.member("d@example.cz").await;
        let w = Arc::new(w);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (w, m) = (w.clone(), m.clone());
            tasks.push(tokio::spawn(async move {
                w.store()
                    .post_purchase(w.purchase(&w.partner, &m, "DUP", 252_000, 0, t0()))
                    .await
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(receipt(&t.await.unwrap().unwrap())["id"].clone());
        }
        answers.dedup();
        assert_eq!(answers.len(), 1, "{}: every retry got the one transaction", w.name());
        assert_eq!(w.balance(&m).await, (100, 0), "{}", w.name());
        w.assert_balanced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_reverse_in_proportion_and_racing_returns_never_exceed() {
    for w in worlds(0).await {
        let m = w.member("e@example.cz").await;
        let p = w
            .store()
            .post_purchase(w.purchase(&w.partner, &m, "R-1", 252_000, 0, t0()))
            .await
            .unwrap();
        let txn = receipt(&p)["id"].as_str().unwrap().to_string();
        let r = w
            .store()
            .post_return(w.give_back(&txn, "RET-1", 63_000, t0()))
            .await
            .unwrap();
        assert_eq!(receipt(&r)["points_reversed"], 25, "{}", w.name());
        let w = Arc::new(w);
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (w, txn) = (w.clone(), txn.clone());
            // Each returns 100,000 of the 189,000 left: only one can fit.
            tasks.push(tokio::spawn(async move {
                w.store()
                    .post_return(w.give_back(&txn, &format!("RACE-{i}"), 100_000, t0()))
                    .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Domain(tally_domain::DomainError::ReturnExceedsPurchase)) => {}
                Err(e) => panic!("{}: unexpected {e}", w.name()),
            }
        }
        assert_eq!(ok, 1, "{}", w.name());
        let t = w.store().transaction(&tid(&txn)).await.unwrap().unwrap();
        assert_eq!(
            (t.returned_amount, t.points_reversed),
            (163_000, 65),
            "{}: 100 × 163/252 = 64.7 → 65",
            w.name()
        );
        assert_eq!(w.balance(&m).await, (35, 0));
        // A return by another partner does not find the purchase.
        let mut foreign = w.give_back(&txn, "X", 1, t0());
        foreign.partner_id = w.other.id.clone();
        assert!(matches!(
            w.store().post_return(foreign).await,
            Err(StoreError::NotFound(tally_store::Entity::Transaction))
        ));
        w.assert_balanced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_points_mature_and_lots_expire_on_the_expiry_run() {
    for w in worlds(14).await {
        let m = w.member("f@example.cz").await;
        w.store()
            .post_purchase(w.purchase(&w.partner, &m, "R-1", 252_000, 0, t0()))
            .await
            .unwrap();
        assert_eq!(w.balance(&m).await, (0, 100), "{}: pending first", w.name());
        let early = w.store().settle_due(t0() + days(13), 100).await.unwrap();
        assert_eq!(early.members_settled, 0, "{}", w.name());
        let report = w.store().settle_due(t0() + days(15), 100).await.unwrap();
        assert_eq!(
            (report.members_settled, report.points_matured),
            (1, 100),
            "{}",
            w.name()
        );
        assert_eq!(w.balance(&m).await, (100, 0));
        let expiry = tally_domain::time::add_months(t0(), 24);
        assert_eq!(
            w.store()
                .settle_due(expiry - SignedDuration::from_secs(1), 100)
                .await
                .unwrap()
                .points_expired,
            0
        );
        let report = w.store().settle_due(expiry, 100).await.unwrap();
        assert_eq!(report.points_expired, 100, "{}", w.name());
        assert_eq!(w.balance(&m).await, (0, 0));
        let activity = w
            .store()
            .activity(ActivityQuery {
                member_id: mid(&m),
                partner_id: None,
                before_id: None,
                limit: 10,
            })
            .await
            .unwrap();
        let kinds: Vec<&str> = activity.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, vec!["expire", "mature", "earn_pending"], "{}", w.name());
        assert_eq!(
            w.store().member(&mid(&m)).await.unwrap().unwrap().next_due_at,
            None,
            "nothing left to settle"
        );
        w.assert_balanced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_pages_and_partner_scope() {
    for w in worlds(0).await {
        let m = w.member("g@example.cz").await;
        for i in 0..5 {
            let partner = if i % 2 == 0 { &w.partner } else { &w.other };
            w.store()
                .post_purchase(w.purchase(partner, &m, &format!("R-{i}"), 25_200, 0, t0()))
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = w
                .store()
                .activity(ActivityQuery {
                    member_id: mid(&m),
                    partner_id: None,
                    before_id: before,
                    limit: 2,
                })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            before = page.last().map(|a| a.id);
            seen.extend(page.into_iter().map(|a| a.id));
        }
        assert_eq!(seen.len(), 5, "{}", w.name());
        assert!(seen.windows(2).all(|p| p[0] > p[1]), "newest first, no repeats");
        let own = w
            .store()
            .activity(ActivityQuery {
                member_id: mid(&m),
                partner_id: Some(w.other.id.clone()),
                before_id: None,
                limit: 50,
            })
            .await
            .unwrap();
        assert_eq!(own.len(), 2, "{}", w.name());
        assert!(
            own.iter()
                .all(|a| a.partner_id.as_ref().map(|p| p.as_str()) == Some(w.other.id.as_str()))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_are_unique_and_found() {
    for w in worlds(0).await {
        let id = w.member("h@example.cz").await;
        let found = w
            .store()
            .lookup_member(&Identity::email("H@example.cz").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id.as_str(), id, "{}", w.name());
        let dup = NewMember {
            id: keys::new(),
            name: None,
            country: None,
            referral_code: keys::referral_code(),
            referred_by_code: None,
            identities: vec![
                Identity::phone("+420601000001", None).unwrap(),
                Identity::email("h@example.cz").unwrap(),
            ],
            created_at: t0(),
        };
        assert!(
            matches!(w.store().create_member(dup).await, Err(StoreError::IdentityTaken)),
            "{}",
            w.name()
        );
        assert!(
            w.store()
                .lookup_member(&Identity::phone("+420601000001", None).unwrap())
                .await
                .unwrap()
                .is_none(),
            "{}: a refused member leaves no identity",
            w.name()
        );
        assert_eq!(w.store().counts().await.unwrap().members, 1);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Buy { member: usize, czk: i64, redeem: i64 },
    Return { nth: usize, pct: i64 },
    Advance { days: i64 },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            4 => (0usize..3, 0i64..300_000, 0i64..150).prop_map(|(member, czk, redeem)| Op::Buy { member, czk, redeem }),
            2 => (0usize..30, 1i64..=100).prop_map(|(nth, pct)| Op::Return { nth, pct }),
            1 => (1i64..400).prop_map(|days| Op::Advance { days }),
        ],
        1..40,
    )
}

async fn run_ops(w: &World, ops: Vec<Op>) {
    let members = [
        w.member("p1@example.cz").await,
        w.member("p2@example.cz").await,
        w.member("p3@example.cz").await,
    ];
    let mut now = t0();
    let mut purchases: Vec<(String, i64)> = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Op::Buy { member, czk, redeem } => {
                let bill_cents = czk * 10 / 252; // CZK minor units → EUR cents, rounded down
                if redeem > bill_cents {
                    continue; // the rules refuse it before the store sees it (redeem_exceeds_total)
                }
                let cmd = w.purchase(&w.partner, &members[member], &format!("P-{i}"), czk, redeem, now);
                if let Ok(p) = w.store().post_purchase(cmd).await {
                    purchases.push((receipt(&p)["id"].as_str().unwrap().to_string(), czk));
                }
            }
            Op::Return { nth, pct } if !purchases.is_empty() => {
                let (txn, total) = &purchases[nth % purchases.len()];
                let _ = w
                    .store()
                    .post_return(w.give_back(txn, &format!("RET-{i}"), (total * pct / 100).max(1), now))
                    .await;
            }
            Op::Return { .. } => {}
            Op::Advance { days: d } => {
                now += days(d);
                w.store().settle_due(now, 1000).await.unwrap();
            }
        }
        let v = w.store().verify_ledger().await.unwrap();
        assert!(v.balanced, "{} after op {i}: {v:?}", w.name());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    /// Random purchases, redemptions, returns and expiry runs through the real store keep
    /// the ledger balanced on both backends (balances equal entries, never negative).
    #[test]
    fn store_keeps_the_ledger_balanced(ops in ops()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            for w in worlds(3).await {
                run_ops(&w, ops.clone()).await;
            }
        });
    }
}

/// Behaviours the two backends once decided differently, now decided once in the
/// domain: pinned here on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_id_belongs_to_one_purchase() {
    for w in worlds(0).await {
        let m = w.member("ret-id@example.com").await;
        let first = w
            .store()
            .post_purchase(w.purchase(&w.partner, &m, "RI-1", 252_000, 0, t0()))
            .await
            .unwrap();
        let second = w
            .store()
            .post_purchase(w.purchase(&w.partner, &m, "RI-2", 252_000, 0, t0()))
            .await
            .unwrap();
        let (first, second) = (
            receipt(&first)["id"].as_str().unwrap().to_string(),
            receipt(&second)["id"].as_str().unwrap().to_string(),
        );
        let ret = w
            .store()
            .post_return(w.give_back(&first, "RET-1", 25_200, t0()))
            .await
            .unwrap();
        assert!(!ret.replayed, "{}", w.name());
        // The same return again replays, byte for byte.
        let again = w
            .store()
            .post_return(w.give_back(&first, "RET-1", 25_200, t0()))
            .await
            .unwrap();
        assert!(again.replayed, "{}", w.name());
        assert_eq!(again.receipt_json, ret.receipt_json, "{}", w.name());
        // The same return id on the other purchase is another request: a conflict, and
        // the other purchase keeps all of its points.
        let reused = w.store().post_return(w.give_back(&second, "RET-1", 25_200, t0())).await;
        assert!(
            matches!(
                reused,
                Err(StoreError::Domain(tally_domain::DomainError::IdempotencyConflict))
            ),
            "{}: {reused:?}",
            w.name()
        );
        let t = w.store().transaction(&tid(&second)).await.unwrap().unwrap();
        assert_eq!((t.returned_amount, t.points_reversed), (0, 0), "{}", w.name());
        // A return of a purchase that does not exist is not found, whatever its id.
        let missing = w
            .store()
            .post_return(w.give_back("txn_missing", "RET-1", 1, t0()))
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound(tally_store::Entity::Transaction))),
            "{}: {missing:?}",
            w.name()
        );
        w.assert_balanced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_settles_what_is_due_first() {
    for w in worlds(14).await {
        let m = w.member("event-due@example.com").await;
        w.store()
            .post_purchase(w.purchase(&w.partner, &m, "ED-1", 252_000, 0, t0()))
            .await
            .unwrap();
        assert_eq!(w.balance(&m).await, (0, 100), "{}", w.name());
        let created = w
            .store()
            .create_event_type("visit_app".into(), "opened the app".into(), t0())
            .await
            .unwrap();
        assert!(created, "{}", w.name());
        let later = t0() + days(15);
        let cmd = EventCmd {
            id: keys::new(),
            source: w.partner.id.to_string(),
            external_id: "E-1".into(),
            partner: Some(w.partner.terms()),
            member: MemberRef::Id(mid(&m)),
            event_type: "visit_app".into(),
            attributes_json: "{}".into(),
            occurred_at: later,
            request_hash: "e-1".into(),
            rules: Default::default(),
            program: w.program.terms(),
            now: later,
        };
        let posted = w.store().post_event(cmd.clone()).await.unwrap();
        // The pending points matured before the event was recorded, on both backends.
        assert_eq!(receipt(&posted)["balance"]["available"], 100, "{}", w.name());
        assert_eq!(w.balance(&m).await, (100, 0), "{}", w.name());
        let member = w.store().member(&mid(&m)).await.unwrap().unwrap();
        assert!(member.next_due_at.is_some_and(|d| d > later), "{}", w.name());
        // An unknown type is refused and writes nothing.
        let unknown = EventCmd {
            external_id: "E-2".into(),
            event_type: "nope".into(),
            ..cmd
        };
        assert!(
            matches!(
                w.store().post_event(unknown).await,
                Err(StoreError::Domain(tally_domain::DomainError::UnknownEventType(_)))
            ),
            "{}",
            w.name()
        );
        w.assert_balanced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_is_the_sale_without_the_write() {
    for w in worlds(0).await {
        let m = w.member("quote@example.com").await;
        w.store()
            .post_purchase(w.purchase(&w.partner, &m, "Q-0", 504_000, 0, t0()))
            .await
            .unwrap();
        let cmd = w.purchase(&w.partner, &m, "Q-1", 252_000, 50, t0());
        let quoted = w.store().quote_purchase(cmd.clone()).await.unwrap();
        assert_eq!(
            (quoted.status.as_str(), quoted.id.as_str()),
            ("quote", ""),
            "{}",
            w.name()
        );
        assert_eq!(w.balance(&m).await, (200, 0), "{}: a quote writes nothing", w.name());
        let posted = receipt(&w.store().post_purchase(cmd.clone()).await.unwrap());
        assert_eq!(posted["points_earned"], quoted.points_earned, "{}", w.name());
        assert_eq!(posted["balance"]["available"], quoted.balance.available, "{}", w.name());
        // A location of another partner is refused by the quote as by the sale.
        let loc = LocationRow {
            id: keys::new(),
            partner_id: w.other.id.clone(),
            name: "Elsewhere".into(),
            city: "Brno".into(),
            country: "CZ".into(),
            timezone: "Europe/Prague".into(),
            created_at: t0(),
        };
        let loc = w.store().create_location(loc).await.unwrap();
        let mut at_other = w.purchase(&w.partner, &m, "Q-2", 1_000, 0, t0());
        at_other.location_id = Some(loc.id);
        let unknown = |r: &Result<_, StoreError>| {
            matches!(r, Err(StoreError::Domain(tally_domain::DomainError::UnknownLocation)))
        };
        assert!(
            unknown(&w.store().quote_purchase(at_other.clone()).await.map(|_| ())),
            "{}",
            w.name()
        );
        assert!(
            unknown(&w.store().post_purchase(at_other).await.map(|_| ())),
            "{}",
            w.name()
        );
        w.assert_balanced().await;
    }
}
