//! The web faces' storage, on SQLite and PostgreSQL (when reachable; required in CI):
//! staff users, sessions, members' sign-in codes, the audit log, signing keys, and the
//! read models of the pages over a small ledger built with the ordinary commands.

use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use tally_domain::DomainError;
use tally_domain::earning::{FxRates, value_purchase};
use tally_domain::identity::Identity;
use tally_domain::ids::{Id, LocationId, MemberId, PartnerId, ReturnId, TransactionId};
use tally_domain::money::{Currency, Money};
use tally_store::testing::TestDb;
use tally_store::web::*;
use tally_store::*;

fn t0() -> Timestamp {
    "2026-01-05T10:00:00Z".parse().unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn minutes(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

fn czk() -> Currency {
    Currency::parse("CZK").unwrap()
}

async fn partner(store: &Store, name: &str) -> PartnerRow {
    let p = PartnerRow {
        id: keys::new(),
        name: name.into(),
        industry: "drugstore".into(),
        country: "CZ".into(),
        currency: czk(),
        timezone: "Europe/Prague".into(),
        earn_rate: Decimal::ONE,
        pending_days: 0,
        created_at: t0(),
    };
    store.create_partner(p).await.unwrap()
}

async fn member(store: &Store, email: &str) -> MemberId {
    let m = NewMember {
        id: keys::new(),
        name: None,
        country: Some("CZ".into()),
        referral_code: keys::referral_code(),
        referred_by_code: None,
        identities: vec![Identity::email(email).unwrap()],
        created_at: t0(),
    };
    store.create_member(m).await.unwrap().id
}

fn new_user(email: &str, role: &str, partner: Option<&PartnerId>) -> NewUser {
    NewUser {
        id: keys::new_id("usr"),
        email: email.into(),
        name: email.split('@').next().unwrap().into(),
        role: role.into(),
        partner_id: partner.cloned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        now: t0(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_once_per_email_and_found_by_email_id_and_partner() {
    for db in TestDb::all().await {
        let (s, name) = (&db.store, db.store.backend());
        let shop = partner(s, "Shop").await;
        let admin = s
            .create_user(new_user("zoe@tally.test", "operator_admin", None))
            .await
            .unwrap();
        assert_eq!(admin.created_at, t0(), "{name}");
        let manager = s
            .create_user(new_user("anna@shop.test", "partner_manager", Some(&shop.id)))
            .await
            .unwrap();
        let cashier = s
            .create_user(new_user("bob@shop.test", "partner_cashier", Some(&shop.id)))
            .await
            .unwrap();

        let again = s
            .create_user(new_user("anna@shop.test", "operator_analyst", None))
            .await;
        assert!(
            matches!(
                again,
                Err(StoreError::Conflict {
                    code: "email_taken",
                    ..
                })
            ),
            "{name}: {again:?}"
        );
        let nowhere = PartnerId::from_stored("par_nowhere".into());
        let unknown = s
            .create_user(new_user("c@shop.test", "partner_cashier", Some(&nowhere)))
            .await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound(Entity::Partner))),
            "{name}: {unknown:?}"
        );
        for (role, p) in [
            ("partner_cashier", None),
            ("operator_admin", Some(&shop.id)),
            ("root", None),
        ] {
            let refused = s.create_user(new_user("d@shop.test", role, p)).await;
            assert!(
                matches!(refused, Err(StoreError::Domain(DomainError::Invalid { .. }))),
                "{name}: {role}: {refused:?}"
            );
        }

        assert_eq!(
            s.user_by_email("anna@shop.test").await.unwrap(),
            Some(manager.clone()),
            "{name}"
        );
        assert_eq!(s.user_by_email("nobody@shop.test").await.unwrap(), None, "{name}");
        assert_eq!(s.user(&admin.id).await.unwrap(), Some(admin.clone()), "{name}");
        assert_eq!(s.user("usr_missing").await.unwrap(), None, "{name}");
        assert_eq!(
            s.users(None).await.unwrap(),
            vec![manager.clone(), cashier.clone(), admin.clone()],
            "{name}: every user, by email"
        );
        assert_eq!(
            s.users(Some(&shop.id)).await.unwrap(),
            vec![manager, cashier],
            "{name}: the partner's users"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_last_until_they_expire_or_end() {
    for db in TestDb::all().await {
        let (s, name) = (&db.store, db.store.backend());
        let user = s
            .create_user(new_user("zoe@tally.test", "operator_admin", None))
            .await
            .unwrap();
        let m = member(s, "m@example.cz").await;
        let staff = SessionRow {
            token_hash: keys::hash_key("staff-token"),
            user_id: Some(user.id.clone()),
            member_id: None,
            created_at: t0(),
            expires_at: t0() + minutes(60),
        };
        let portal = SessionRow {
            token_hash: keys::hash_key("member-token"),
            user_id: None,
            member_id: Some(m.clone()),
            created_at: t0(),
            expires_at: t0() + minutes(30),
        };
        s.create_session(staff.clone()).await.unwrap();
        s.create_session(portal.clone()).await.unwrap();

        let found =
            |token: &'static str, now: Timestamp| async move { s.session(&keys::hash_key(token), now).await.unwrap() };
        assert_eq!(found("staff-token", t0()).await, Some(staff.clone()), "{name}");
        assert_eq!(
            found("member-token", t0() + minutes(29)).await,
            Some(portal.clone()),
            "{name}"
        );
        assert_eq!(found("member-token", t0() + minutes(30)).await, None, "{name}: expired");
        assert_eq!(found("other-token", t0()).await, None, "{name}");

        // A session started after the member's expired drops it; the staff one stays.
        let later = SessionRow {
            token_hash: keys::hash_key("later-token"),
            created_at: t0() + minutes(45),
            expires_at: t0() + minutes(90),
            ..staff.clone()
        };
        s.create_session(later.clone()).await.unwrap();
        assert_eq!(
            found("member-token", t0()).await,
            None,
            "{name}: the expired one is gone"
        );
        assert_eq!(
            found("staff-token", t0() + minutes(50)).await,
            Some(staff.clone()),
            "{name}"
        );

        s.end_session(&staff.token_hash).await.unwrap();
        assert_eq!(found("staff-token", t0()).await, None, "{name}: ended");
        s.end_session(&staff.token_hash).await.unwrap();
        assert_eq!(found("later-token", t0() + minutes(50)).await, Some(later), "{name}");

        // Disabling a user ends their sessions and is kept, once.
        assert!(s.disable_user(&user.id, t0() + minutes(55)).await.unwrap(), "{name}");
        assert_eq!(found("later-token", t0() + minutes(56)).await, None, "{name}: ended");
        assert!(s.disable_user(&user.id, t0() + minutes(70)).await.unwrap(), "{name}");
        let disabled = s.user(&user.id).await.unwrap().unwrap();
        assert_eq!(disabled.disabled_at, Some(t0() + minutes(55)), "{name}");
        assert!(!s.disable_user("usr_nobody", t0()).await.unwrap(), "{name}");

        let both = SessionRow {
            token_hash: keys::hash_key("both"),
            member_id: Some(m),
            ..staff
        };
        assert!(
            matches!(
                s.create_session(both).await,
                Err(StoreError::Domain(DomainError::Invalid { .. }))
            ),
            "{name}"
        );
    }
}

fn code(member_id: &MemberId, to: &str, code: &str, now: Timestamp) -> NewLoginCode {
    NewLoginCode {
        member_id: member_id.clone(),
        destination: to.into(),
        code_hash: keys::hash_key(code),
        now,
        expires_at: now + minutes(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_code_signs_in_once() {
    for db in TestDb::all().await {
        let (s, name) = (&db.store, db.store.backend());
        let m = member(s, "m@example.cz").await;
        let to = "m@example.cz";
        s.create_login_code(code(&m, to, "123456", t0())).await.unwrap();
        let try_code = |c: &'static str| async move {
            s.use_login_code(to, &keys::hash_key(c), t0() + minutes(1), 5)
                .await
                .unwrap()
        };
        assert_eq!(try_code("123456").await, Some(m.clone()), "{name}");
        assert_eq!(try_code("123456").await, None, "{name}: used already");

        // A new code spends the address's earlier ones; another destination's code
        // never counts.
        s.create_login_code(code(&m, to, "111111", t0())).await.unwrap();
        s.create_login_code(code(&m, to, "222222", t0() + SignedDuration::from_secs(1)))
            .await
            .unwrap();
        s.create_login_code(code(&m, "+420601123456", "333333", t0()))
            .await
            .unwrap();
        assert_eq!(try_code("333333").await, None, "{name}");
        assert_eq!(try_code("222222").await, Some(m.clone()), "{name}");
        assert_eq!(try_code("111111").await, None, "{name}: spent by the newer code");

        // Tried by many at once, a code still signs in once.
        s.create_login_code(code(&m, to, "777777", t0() + minutes(1)))
            .await
            .unwrap();
        let racing: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.use_login_code(to, &keys::hash_key("777777"), t0() + minutes(2), 5)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut signed_in = 0;
        for r in racing {
            signed_in += usize::from(r.await.unwrap().is_some());
        }
        assert_eq!(signed_in, 1, "{name}: one of the racing tries signs in");

        let nobody = MemberId::from_stored("mem_nobody".into());
        let unknown = s.create_login_code(code(&nobody, to, "444444", t0())).await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound(Entity::Member))),
            "{name}: {unknown:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_use_up_a_code_and_an_expired_one_is_refused() {
    for db in TestDb::all().await {
        let (s, name) = (&db.store, db.store.backend());
        let m = member(s, "m@example.cz").await;
        let to = "m@example.cz";
        s.create_login_code(code(&m, to, "123456", t0())).await.unwrap();
        let now = t0() + minutes(1);
        for n in 0..3 {
            let miss = s.use_login_code(to, &keys::hash_key("000000"), now, 3).await.unwrap();
            assert_eq!(miss, None, "{name}: wrong try {n}");
        }
        let right = s.use_login_code(to, &keys::hash_key("123456"), now, 3).await.unwrap();
        assert_eq!(right, None, "{name}: three wrong tries use the code up");

        s.create_login_code(code(&m, to, "654321", t0())).await.unwrap();
        let late = s
            .use_login_code(to, &keys::hash_key("654321"), t0() + minutes(10), 3)
            .await
            .unwrap();
        assert_eq!(late, None, "{name}: expired at its expiry");
        let early = s
            .use_login_code(to, &keys::hash_key("654321"), t0() + minutes(9), 3)
            .await
            .unwrap();
        assert_eq!(early, Some(m), "{name}: the expired try did not count against it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_appended_to_and_read_per_partner() {
    for db in TestDb::all().await {
        let (s, name) = (&db.store, db.store.backend());
        let (a, b) = (partner(s, "A").await, partner(s, "B").await);
        let m = member(s, "m@example.cz").await;
        let row = |i: i64, user: Option<&str>, member: Option<&MemberId>, p: Option<&PartnerId>| AuditRow {
            at: t0() + minutes(i),
            user_id: user.map(str::to_string),
            member_id: member.cloned(),
            partner_id: p.cloned(),
            action: format!("POST /v1/thing/{i}"),
            target: format!("/v1/thing/{i}"),
            status: 200 + i as u16,
        };
        let rows = vec![
            row(0, Some("usr_op"), None, None),
            row(1, Some("usr_a"), None, Some(&a.id)),
            row(2, None, Some(&m), None),
            row(3, Some("usr_b"), None, Some(&b.id)),
            row(4, Some("usr_a"), None, Some(&a.id)),
        ];
        for r in &rows {
            s.append_audit(r.clone()).await.unwrap();
        }
        let all = s.audit(None, 10).await.unwrap();
        let got: Vec<AuditRow> = all.iter().map(|e| e.row.clone()).collect();
        assert_eq!(
            got,
            rows.iter().rev().cloned().collect::<Vec<_>>(),
            "{name}: newest first"
        );
        assert!(all.windows(2).all(|w| w[0].id > w[1].id), "{name}");

        let of_a: Vec<AuditRow> = s
            .audit(Some(&a.id), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.row)
            .collect();
        assert_eq!(of_a, vec![rows[4].clone(), rows[1].clone()], "{name}: A's users only");
        let last_two: Vec<i64> = s.audit(None, 2).await.unwrap().iter().map(|e| e.id).collect();
        assert_eq!(last_two, all.iter().take(2).map(|e| e.id).collect::<Vec<_>>(), "{name}");
        assert!(s.audit(Some(&a.id), 1).await.unwrap().len() == 1, "{name}");
    }
}

/// The log refuses changes in the database itself, whatever the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_refuses_updates_and_deletes() {
    let row = AuditRow {
        at: t0(),
        user_id: Some("usr_op".into()),
        member_id: None,
        partner_id: None,
        action: "POST /v1/partners".into(),
        target: "/v1/partners".into(),
        status: 201,
    };
    let path = std::env::temp_dir().join(format!("tally-web-audit-{}.db", keys::new_id("t")));
    {
        let store = Store::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        store.append_audit(row.clone()).await.unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        assert!(conn.execute("UPDATE audit_log SET status = 500", []).is_err(), "sqlite");
        assert!(conn.execute("DELETE FROM audit_log", []).is_err(), "sqlite");
        assert_eq!(store.audit(None, 10).await.unwrap()[0].row, row, "sqlite");
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    let Some(db) = TestDb::postgres().await else { return };
    db.store.append_audit(row.clone()).await.unwrap();
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&testing::pg_url()).await.unwrap();
    sqlx::raw_sql(&format!("SET search_path TO {}", db.schema().unwrap()))
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        sqlx::raw_sql("UPDATE audit_log SET status = 500")
            .execute(&mut conn)
            .await
            .is_err(),
        "postgres"
    );
    assert!(
        sqlx::raw_sql("DELETE FROM audit_log").execute(&mut conn).await.is_err(),
        "postgres"
    );
    assert!(
        sqlx::raw_sql("TRUNCATE audit_log").execute(&mut conn).await.is_err(),
        "postgres: TRUNCATE too"
    );
    assert_eq!(db.store.audit(None, 10).await.unwrap()[0].row, row, "postgres");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_agree_on_one_signing_key() {
    for db in TestDb::all().await {
        let (s, name) = (&db.store, db.store.backend());
        assert_eq!(s.web_key("signing", "first".into()).await.unwrap(), "first", "{name}");
        assert_eq!(s.web_key("signing", "second".into()).await.unwrap(), "first", "{name}");
        let racing: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move { s.web_key("race", format!("key-{i}")).await.unwrap() })
            })
            .collect();
        let mut keys = Vec::new();
        for r in racing {
            keys.push(r.await.unwrap());
        }
        assert!(keys.iter().all(|k| k == &keys[0]), "{name}: {keys:?}");
        assert_eq!(s.web_key("race", "late".into()).await.unwrap(), keys[0], "{name}");
    }
}

/// Two partners, three members (one who never buys), sales over two months (one paid
/// partly with points, one at a location), and a return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_read_models_follow_the_ledger() {
    for db in TestDb::all().await {
        let (s, name) = (&db.store, db.store.backend());
        let mut fx = FxRates::new();
        fx.set(czk(), Decimal::new(252, 1)).unwrap();
        s.put_fx_rates(fx, t0()).await.unwrap();
        let program = s.program().await.unwrap();
        let (a, b) = (partner(s, "A").await, partner(s, "B").await);
        let loc = s
            .create_location(LocationRow {
                id: keys::new(),
                partner_id: a.id.clone(),
                name: "Centre".into(),
                city: "Praha".into(),
                country: "CZ".into(),
                timezone: "Europe/Prague".into(),
                created_at: t0(),
            })
            .await
            .unwrap();
        let (m1, m2) = (member(s, "one@example.cz").await, member(s, "two@example.cz").await);
        member(s, "three@example.cz").await;

        let sale = |p: &PartnerRow, m: &MemberId, receipt: &str, minor: i64, redeem: i64, now: Timestamp| {
            let total = Money::new(minor, czk()).unwrap();
            PurchaseCmd {
                transaction_id: keys::new(),
                partner: p.terms(),
                external_id: receipt.into(),
                request_hash: format!("hash-{receipt}"),
                member: MemberRef::Id(m.clone()),
                location_id: None,
                occurred_at: now,
                total,
                lines_json: "[]".into(),
                redeem_points: redeem,
                wallet_id: None,
                valuation: value_purchase(&program.terms(), Decimal::new(252, 1), p.earn_rate, total, redeem).unwrap(),
                rules: Default::default(),
                program: program.terms(),
                now,
            }
        };
        let post = |cmd: PurchaseCmd| async move {
            let id = cmd.transaction_id.clone();
            let posted = s.post_purchase(cmd).await.unwrap();
            let r: serde_json::Value = serde_json::from_str(&posted.receipt_json).unwrap();
            (id, r["points_earned"].as_i64().unwrap())
        };
        let (s1, e1) = post(sale(&a, &m1, "A-1", 252_000, 0, t0())).await;
        let (s2, e2) = post(sale(&a, &m2, "A-2", 126_000, 0, at("2026-01-06T09:00:00Z"))).await;
        let (s3, e3) = post(sale(&b, &m1, "B-1", 252_000, 30, at("2026-02-10T12:00:00Z"))).await;
        let mut at_centre = sale(&a, &m2, "A-3", 50_400, 0, at("2026-02-15T08:00:00Z"));
        at_centre.location_id = Some(loc.id.clone());
        let (s4, e4) = post(at_centre).await;
        assert!(e1 > 0 && e2 > 0 && e3 > 0 && e4 > 0, "{name}");

        let return_id: ReturnId = keys::new();
        let returned = s
            .post_return(ReturnCmd {
                return_id: return_id.clone(),
                partner_id: a.id.clone(),
                transaction_id: s1.clone(),
                external_id: "A-1-R".into(),
                request_hash: "ret-A-1".into(),
                amount: Money::new(126_000, czk()).unwrap(),
                program: program.terms(),
                now: at("2026-02-12T10:00:00Z"),
            })
            .await
            .unwrap();
        let r: serde_json::Value = serde_json::from_str(&returned.receipt_json).unwrap();
        let taken_back = r["points_reversed"].as_i64().unwrap() + r["points_unrecovered"].as_i64().unwrap();
        assert!(taken_back > 0, "{name}");

        assert_eq!(s.member_counts(t0()).await.unwrap(), (3, 2), "{name}");
        assert_eq!(
            s.member_counts(at("2026-02-14T00:00:00Z")).await.unwrap(),
            (3, 1),
            "{name}"
        );
        assert_eq!(
            s.member_counts(at("2026-03-01T00:00:00Z")).await.unwrap(),
            (3, 0),
            "{name}"
        );

        let month = |m: &str, issued: i64, redeemed: i64| MonthPoints {
            month: m.into(),
            issued,
            redeemed,
        };
        assert_eq!(
            s.monthly_points(at("2026-01-01T00:00:00Z")).await.unwrap(),
            vec![month("2026-01", e1 + e2, 0), month("2026-02", e3 + e4, 30)],
            "{name}: gross, the return not netted"
        );
        assert_eq!(
            s.monthly_points(at("2026-02-01T00:00:00Z")).await.unwrap(),
            vec![month("2026-02", e3 + e4, 30)],
            "{name}"
        );

        let flow = |m: &MemberId, p: &PartnerRow, earned: i64, spent: i64| PartnerMemberPoints {
            member_id: m.clone(),
            partner_id: p.id.clone(),
            earned,
            spent,
        };
        let mut expected = vec![flow(&m1, &a, e1, 0), flow(&m1, &b, e3, 30), flow(&m2, &a, e2 + e4, 0)];
        expected.sort_by(|x, y| {
            (x.member_id.as_str(), x.partner_id.as_str()).cmp(&(y.member_id.as_str(), y.partner_id.as_str()))
        });
        assert_eq!(s.partner_member_points().await.unwrap(), expected, "{name}");

        let line = |id: &str,
                    kind,
                    sale: &TransactionId,
                    m: &MemberId,
                    loc: Option<&LocationId>,
                    when,
                    minor,
                    pts: (i64, i64)| PartnerTxn {
            id: id.into(),
            kind,
            sale_id: sale.clone(),
            member_id: m.clone(),
            location_id: loc.cloned(),
            occurred_at: when,
            amount: Money::new(minor, czk()).unwrap(),
            points_earned: pts.0,
            points_redeemed: pts.1,
        };
        let lines_a = vec![
            line(
                s4.as_str(),
                TxnKind::Sale,
                &s4,
                &m2,
                Some(&loc.id),
                at("2026-02-15T08:00:00Z"),
                50_400,
                (e4, 0),
            ),
            line(
                return_id.as_str(),
                TxnKind::Return,
                &s1,
                &m1,
                None,
                at("2026-02-12T10:00:00Z"),
                126_000,
                (taken_back, 0),
            ),
            line(
                s2.as_str(),
                TxnKind::Sale,
                &s2,
                &m2,
                None,
                at("2026-01-06T09:00:00Z"),
                126_000,
                (e2, 0),
            ),
            line(s1.as_str(), TxnKind::Sale, &s1, &m1, None, t0(), 252_000, (e1, 0)),
        ];
        assert_eq!(
            s.partner_transactions(&a.id, None, 10).await.unwrap(),
            lines_a,
            "{name}"
        );
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.partner_transactions(&a.id, cursor, 3).await.unwrap();
            let Some(last) = page.last() else { break };
            cursor = Some(last.cursor());
            pages.push(page);
        }
        assert_eq!(pages.len(), 2, "{name}: pages of three");
        assert_eq!(pages.concat(), lines_a, "{name}: the pages follow on");
        assert_eq!(
            s.partner_transactions(&b.id, None, 10).await.unwrap(),
            vec![line(
                s3.as_str(),
                TxnKind::Sale,
                &s3,
                &m1,
                None,
                at("2026-02-10T12:00:00Z"),
                252_000,
                (e3, 30)
            )],
            "{name}: B's own"
        );

        let customer = |m: &MemberId, visits, last, points_earned| PartnerCustomer {
            member_id: m.clone(),
            visits,
            last_visit: last,
            points_earned,
        };
        // A member's open lots hold all her points, available and pending, soonest to
        // expire first; another member's are not hers.
        for m in [&m1, &m2] {
            let lots = s.open_lots(m).await.unwrap();
            let held = s.member(m).await.unwrap().unwrap().balance;
            assert_eq!(
                lots.iter().map(|l| l.points).sum::<i64>(),
                held.available + held.pending,
                "{name}: the lots hold the balance"
            );
            assert!(lots.windows(2).all(|w| w[0].expires_at <= w[1].expires_at), "{name}");
            assert!(!lots.is_empty(), "{name}");
        }
        assert!(
            s.open_lots(&MemberId::from_stored("mem_nobody".into()))
                .await
                .unwrap()
                .is_empty()
        );

        let ever = at("2020-01-01T00:00:00Z");
        assert_eq!(
            s.partner_customers(&a.id, ever, 10).await.unwrap(),
            vec![
                customer(&m2, 2, at("2026-02-15T08:00:00Z"), e2 + e4),
                customer(&m1, 1, t0(), e1)
            ],
            "{name}"
        );
        assert_eq!(
            s.partner_customers(&a.id, at("2026-02-01T00:00:00Z"), 10)
                .await
                .unwrap(),
            vec![customer(&m2, 1, at("2026-02-15T08:00:00Z"), e4)],
            "{name}: only visits since then count"
        );
        assert_eq!(s.partner_customers(&a.id, ever, 1).await.unwrap().len(), 1, "{name}");
        assert!(
            s.partner_customers(&PartnerId::from_stored("par_none".into()), ever, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
