//! Hostile and racing clients, through the real server on SQLite and PostgreSQL:
//! `Idempotency-Key` races, secrets never replayed, and the limits on points and money.

mod common;

use common::{ADMIN, App, apps};
use serde_json::{Value, json};

/// POSTs `body` with an `Idempotency-Key`; the status, the body and whether it was a
/// replay.
async fn post_with_key(app: &App, path: &str, key: &str, idem: &str, body: Value) -> (u16, Value, bool) {
    let res = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(key)
        .header("Idempotency-Key", idem)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    (status, res.json().await.unwrap_or(Value::Null), replayed)
}

async fn exists(app: &App, email: &str) -> bool {
    let (status, _) = app
        .call("GET", &format!("/v1/members/lookup?email={email}"), Some(ADMIN), None)
        .await;
    status == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_runs_one_request_whatever_the_race() {
    for app in apps().await {
        let app = std::sync::Arc::new(app);
        // 30 racing requests under one key, each with another email: one runs.
        let mut tasks = Vec::new();
        for i in 0..30 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let email = format!("race{i}@example.com");
                let r = post_with_key(&app, "/v1/members", ADMIN, "K-RACE", json!({"email": email})).await;
                (email, r)
            }));
        }
        let mut created = Vec::new();
        for t in tasks {
            let (email, (status, body, _)) = t.await.unwrap();
            match status {
                201 => created.push(email),
                409 => assert!(
                    ["idempotency_conflict", "idempotency_in_progress"]
                        .contains(&body["error"]["code"].as_str().unwrap()),
                    "{}: {body}",
                    app.backend
                ),
                other => panic!("{}: {other} {body}", app.backend),
            }
        }
        assert_eq!(created.len(), 1, "{}: {created:?}", app.backend);
        let mut made = 0;
        for i in 0..30 {
            if exists(&app, &format!("race{i}@example.com")).await {
                made += 1;
            }
        }
        assert_eq!(made, 1, "{}: exactly one member was made", app.backend);

        // 20 racing retries of one request: one member, and every answer is that
        // member or "still running"; a later retry replays the member.
        let body = json!({"email": "same@example.com"});
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (app, body) = (app.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                post_with_key(&app, "/v1/members", ADMIN, "K-SAME", body).await
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            let (status, body, _) = t.await.unwrap();
            match status {
                201 => {
                    ids.insert(body["id"].as_str().unwrap().to_string());
                }
                409 => assert_eq!(body["error"]["code"], "idempotency_in_progress", "{}", app.backend),
                other => panic!("{}: {other} {body}", app.backend),
            }
        }
        assert_eq!(ids.len(), 1, "{}: {ids:?}", app.backend);
        let (status, again, replayed) = post_with_key(&app, "/v1/members", ADMIN, "K-SAME", body.clone()).await;
        assert_eq!((status, replayed), (201, true), "{}: {again}", app.backend);
        assert!(ids.contains(again["id"].as_str().unwrap()), "{}", app.backend);

        // The same key on another endpoint is another key.
        let (status, _, replayed) = post_with_key(&app, "/v1/partners", ADMIN, "K-SAME", json!({"name": "Scoped", "industry": "retail", "country": "CZ", "currency": "CZK", "timezone": "Europe/Prague"})).await;
        assert_eq!((status, replayed), (201, false), "{}", app.backend);
    }
}

/// Copies of one receipt sent at once (a till retrying on a timeout) all get the first
/// answer, even when the sale spends the member's points: a copy that waited for the
/// member's lock while the first spent them replays it, never `insufficient_points`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_copies_of_a_receipt_all_get_its_answer() {
    for app in apps().await {
        let (_, till) = app.partner("Race", "EUR", 0).await;
        for round in 0..5 {
            let member = app.member(&format!("+42060133{round:04}")).await;
            app.ok(
                "POST",
                "/v1/transactions",
                &till,
                json!({"external_id": format!("EARN-{round}"), "member": {"id": member}, "total": {"amount": 10_000, "currency": "EUR"}}),
            )
            .await; // 100 points
            let spend = json!({"external_id": format!("SPEND-{round}"), "member": {"id": member},
                "total": {"amount": 5_000, "currency": "EUR"}, "redeem_points": 100});
            let copies: Vec<_> = (0..12)
                .map(|_| {
                    let req = app
                        .http
                        .post(format!("{}/v1/transactions", app.base))
                        .bearer_auth(&till)
                        .json(&spend);
                    tokio::spawn(async move {
                        let res = req.send().await.unwrap();
                        (res.status().as_u16(), res.text().await.unwrap())
                    })
                })
                .collect();
            let mut ids = std::collections::HashSet::new();
            for copy in copies {
                let (status, body) = copy.await.unwrap();
                assert_eq!(status, 201, "{}: round {round}: {body}", app.backend);
                let v: Value = serde_json::from_str(&body).unwrap();
                ids.insert(v["id"].as_str().unwrap().to_string());
            }
            assert_eq!(ids.len(), 1, "{}: one sale, answered to every copy", app.backend);
            assert_eq!(
                app.balance(&member).await.0,
                49,
                "{}: spent once (100 − 100, and 49 earned on the EUR 49 paid)",
                app.backend
            );
        }
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_api_key_is_shown_once_even_to_a_retry() {
    for app in apps().await {
        let (partner, _) = app.partner("Keys", "CZK", 0).await;
        let path = format!("/v1/partners/{partner}/api-keys");
        let (status, first, _) = post_with_key(&app, &path, ADMIN, "K-KEY", json!({})).await;
        assert_eq!(status, 201, "{}: {first}", app.backend);
        let secret = first["key"].as_str().unwrap().to_string();
        let (status, again, replayed) = post_with_key(&app, &path, ADMIN, "K-KEY", json!({})).await;
        assert_eq!((status, replayed), (409, true), "{}: {again}", app.backend);
        assert_eq!(again["error"]["code"], "secret_shown_once", "{}", app.backend);
        assert!(
            !again.to_string().contains(&secret),
            "{}: the secret came back",
            app.backend
        );
        // The key works.
        let (status, _) = app
            .call("GET", &format!("/v1/partners/{partner}"), Some(&secret), None)
            .await;
        assert_eq!(status, 200, "{}", app.backend);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_and_money_stay_inside_their_limits() {
    for app in apps().await {
        // Rates outside 0.000001 .. 10^9 are refused and change nothing.
        for bad in ["0.0000000000000000000000000001", "0.0000009", "1000000001", "0", "-1"] {
            let (status, body) = app
                .call("PUT", "/v1/fx-rates", Some(ADMIN), Some(json!({"rates": {"HUF": bad}})))
                .await;
            assert_eq!(status, 422, "{}: {bad}: {body}", app.backend);
        }
        let (_, rates) = app.call("GET", "/v1/fx-rates", Some(ADMIN), None).await;
        assert!(!rates.to_string().contains("HUF"), "{}: {rates}", app.backend);

        // A partner at the largest earn rate cannot make a sale earn past the limit.
        let p = app
            .ok("POST", "/v1/partners", ADMIN, json!({"name": "Rich", "industry": "retail", "country": "CZ", "currency": "EUR", "timezone": "Europe/Prague", "earn_rate": "1000"}))
            .await;
        let k = app
            .ok(
                "POST",
                &format!("/v1/partners/{}/api-keys", p["id"].as_str().unwrap()),
                ADMIN,
                json!({}),
            )
            .await;
        let till = k["key"].as_str().unwrap();
        let member = app.member("+420601999001").await;
        let sale = |receipt: &str, amount: i64| json!({"external_id": receipt, "member": {"id": member}, "total": {"amount": amount, "currency": "EUR"}});
        let (status, body) = app
            .call(
                "POST",
                "/v1/transactions",
                Some(till),
                Some(sale("BIG-1", 999_999_999_999_999)),
            )
            .await;
        assert_eq!(status, 422, "{}: {body}", app.backend);
        assert_eq!(body["error"]["code"], "points_limit_exceeded", "{}", app.backend);
        // Exactly 10^15 minor units is refused as "below 10^15" says.
        let (status, body) = app
            .call(
                "POST",
                "/v1/transactions",
                Some(till),
                Some(sale("BIG-2", 1_000_000_000_000_000)),
            )
            .await;
        assert_eq!(status, 422, "{}: {body}", app.backend);
        assert_eq!(body["error"]["code"], "invalid_field", "{}", app.backend);
        // The largest sale that fits earns 10^12 points; the member's balance then grows
        // to its limit and no further, with a 422, never a 5xx.
        let fits = 100_000_000_000; // EUR 1,000,000,000.00 × 1000 = 10^12 points
        let mut refused = None;
        for i in 0..1_100 {
            let (status, body) = app
                .call(
                    "POST",
                    "/v1/transactions",
                    Some(till),
                    Some(sale(&format!("FIT-{i}"), fits)),
                )
                .await;
            match status {
                201 => {}
                422 => {
                    refused = Some((i, body));
                    break;
                }
                other => panic!("{}: {other} {body}", app.backend),
            }
        }
        let (at, body) = refused.expect("the balance limit refuses");
        assert_eq!(at, 1_000, "{}: 1000 sales of 10^12 fill 10^15", app.backend);
        assert_eq!(body["error"]["code"], "balance_limit_exceeded", "{}", app.backend);
        assert_eq!(
            app.balance(&member).await,
            (1_000_000_000_000_000, 0),
            "{}",
            app.backend
        );
        app.entries().await;
    }
}

mod extremes {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// A decimal string anywhere from far below to far above what Tally takes.
    fn decimal() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("0".to_string()),
            Just("0.000001".to_string()),
            Just("0.0000009".to_string()),
            Just("1000".to_string()),
            Just("1000.0000000001".to_string()),
            Just("1000000000".to_string()),
            Just("1000000001".to_string()),
            Just("0.0000000000000000000000000001".to_string()),
            Just("79228162514264337593543950335".to_string()),
            Just("-1".to_string()),
            (0u64..1_000_000_000_000, 0u32..12)
                .prop_map(|(n, scale)| rust_decimal::Decimal::new(n as i64, scale).to_string()),
        ]
    }

    /// Amounts at every scale (log-uniform), and the edges.
    fn amount() -> impl Strategy<Value = i64> {
        prop_oneof![
            1 => Just(0i64),
            1 => Just(999_999_999_999_999),
            1 => Just(1_000_000_000_000_000),
            1 => Just(i64::MAX),
            1 => Just(-1),
            6 => (1u32..16).prop_flat_map(|k| 0i64..10i64.pow(k)),
        ]
    }

    /// Mostly rates a partner may have, at every scale; sometimes one it may not.
    fn earn_rate() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => decimal(),
            7 => (0u32..7, 0i64..1_000_000, 0u32..7).prop_map(|(k, n, scale)| {
                let rate = rust_decimal::Decimal::new(n % 10i64.pow(k.max(1)), scale);
                rate.min(rust_decimal::Decimal::from(1000)).to_string()
            }),
        ]
    }

    #[derive(Debug, Clone)]
    struct Case {
        earn_rate: String,
        huf_rate: String,
        currency: &'static str,
        amount: i64,
        redeem: i64,
        factor: Option<String>,
        give_back: i64,
        member: usize,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            earn_rate(),
            decimal(),
            prop::sample::select(vec!["EUR", "EUR", "HUF", "JPY", "KWD"]),
            amount(),
            prop_oneof![6 => Just(0i64), 1 => Just(1_000_000_000_000), 1 => Just(1_000_000_000_001), 2 => 0i64..1_000],
            prop::option::of(decimal()),
            amount(),
            0usize..3,
        )
            .prop_map(
                |(earn_rate, huf_rate, currency, amount, redeem, factor, give_back, member)| Case {
                    earn_rate,
                    huf_rate,
                    currency,
                    amount,
                    redeem,
                    factor,
                    give_back,
                    member,
                },
            )
    }

    /// Random extreme earn rates, FX rates, amounts, redemptions, rule factors and
    /// returns through the HTTP API: never a 5xx, and the ledger verifies after all.
    #[test]
    fn extreme_values_never_break_the_server_or_the_ledger() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let apps = rt.block_on(apps());
        for app in &apps {
            let members: Vec<String> = rt.block_on(async {
                let mut out = Vec::new();
                for i in 0..3 {
                    out.push(app.member(&format!("+42060155{i:04}")).await);
                }
                out
            });
            let counter = std::sync::atomic::AtomicU32::new(0);
            let posted = std::sync::atomic::AtomicU32::new(0);
            let refused = std::sync::atomic::AtomicU32::new(0);
            let mut runner = TestRunner::new(Config::with_cases(96));
            runner
                .run(&case(), |c| {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let answers = rt.block_on(async {
                        let mut answers = Vec::new();
                        let (s, v) = app
                            .call("PUT", "/v1/fx-rates", Some(ADMIN), Some(json!({"rates": {"USD": "1.08", "HUF": c.huf_rate}})))
                            .await;
                        answers.push(("fx", s, v));
                        let (s, p) = app
                            .call("POST", "/v1/partners", Some(ADMIN), Some(json!({"name": format!("X{n}"), "industry": "retail", "country": "CZ", "currency": "EUR", "timezone": "Europe/Prague", "earn_rate": c.earn_rate})))
                            .await;
                        answers.push(("partner", s, p.clone()));
                        // A refused rate leaves the sale to a partner at rate 1.
                        let pid = match p["id"].as_str() {
                            Some(id) => id.to_string(),
                            None => app
                                .ok("POST", "/v1/partners", ADMIN, json!({"name": format!("X{n}"), "industry": "retail", "country": "CZ", "currency": "EUR", "timezone": "Europe/Prague"}))
                                .await["id"]
                                .as_str()
                                .unwrap()
                                .to_string(),
                        };
                        let key = app.ok("POST", &format!("/v1/partners/{pid}/api-keys"), ADMIN, json!({})).await["key"]
                            .as_str()
                            .unwrap()
                            .to_string();
                        if let Some(f) = &c.factor {
                            let (s, v) = app
                                .call("POST", "/v1/earning-rules", Some(&key), Some(json!({"name": "x", "effect": {"kind": "multiplier", "factor": f}})))
                                .await;
                            answers.push(("rule", s, v));
                        }
                        let sale = json!({"external_id": format!("X-{n}"), "member": {"id": members[c.member]},
                            "total": {"amount": c.amount, "currency": c.currency}, "redeem_points": c.redeem});
                        let (s, t) = app.call("POST", "/v1/transactions", Some(&key), Some(sale)).await;
                        answers.push(("sale", s, t.clone()));
                        if s == 201 {
                            let ret = json!({"external_id": format!("XR-{n}"), "amount": {"amount": c.give_back, "currency": c.currency}});
                            let (s, v) = app
                                .call("POST", &format!("/v1/transactions/{}/returns", t["id"].as_str().unwrap()), Some(&key), Some(ret))
                                .await;
                            answers.push(("return", s, v));
                        }
                        answers
                    });
                    for (what, status, body) in answers {
                        prop_assert!(status < 500, "{}: {what} answered {status}: {body} ({c:?})", app.backend);
                        if what == "sale" {
                            let tally = if status == 201 { &posted } else { &refused };
                            tally.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    Ok(())
                })
                .unwrap();
            // Both sides were reached: sales taken and sales refused.
            let (posted, refused) = (posted.into_inner(), refused.into_inner());
            assert!(
                posted > 0 && refused > 0,
                "{}: {posted} posted, {refused} refused",
                app.backend
            );
            eprintln!("{}: {posted} extreme sales posted, {refused} refused", app.backend);
            rt.block_on(app.entries()); // asserts the ledger is balanced
        }
        drop(apps);
    }
}
