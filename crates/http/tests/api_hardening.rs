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
