//! The core API through the real HTTP server, on SQLite and PostgreSQL: the api.md
//! examples, replays, paying with points, returns, pending and expiry with a moved
//! clock, partner boundaries, and hostile input that must write nothing.
mod common;

use common::{ADMIN, apps};
use serde_json::{Value, json};

fn sale(receipt: &str, member: &str, amount: i64, currency: &str, redeem: i64) -> Value {
    json!({"external_id": receipt, "member": {"id": member}, "total": {"amount": amount, "currency": currency}, "redeem_points": redeem})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_md_examples_earn_explain_and_replay() {
    for app in apps().await {
        let (_, till) = app.partner("Drugstore", "CZK", 0).await;
        let m = app.member("+420 601 123 456").await;
        for (receipt, amount, currency, points) in [
            ("R-1", 1299, "EUR", 12),
            ("R-2", 10800, "USD", 100),
            ("R-3", 252000, "CZK", 100),
        ] {
            let body = sale(receipt, &m, amount, currency, 0);
            let quote = app.ok("POST", "/v1/transactions/quote", &till, body.clone()).await;
            assert_eq!(quote["points_earned"], points, "{} quote {receipt}", app.backend);
            let t = app.ok("POST", "/v1/transactions", &till, body).await;
            assert_eq!(t["points_earned"], points, "{} {receipt}", app.backend);
            assert_eq!(t["breakdown"][0]["points"], points);
            assert_eq!(t["breakdown"][0]["reason"], "1 point per EUR 1");
        }
        assert_eq!(app.balance(&m).await, (212, 0), "{}", app.backend);
        let entries = app.entries().await;
        // The same receipt again: the first answer, nothing written.
        let res = app
            .http
            .post(format!("{}/v1/transactions", app.base))
            .bearer_auth(&till)
            .json(&sale("R-3", &m, 252000, "CZK", 0))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        assert_eq!(app.entries().await, entries, "{}: a replay writes nothing", app.backend);
        let (status, err) = app
            .call(
                "POST",
                "/v1/transactions",
                Some(&till),
                Some(sale("R-3", &m, 1, "CZK", 0)),
            )
            .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (409, Some("idempotency_conflict"))
        );
        // The member is found by the phone as a till types it.
        let found = app
            .ok("GET", "/v1/members/lookup?phone=%2B420601123456", &till, Value::Null)
            .await;
        assert_eq!(found["id"], m.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_with_points_and_return() {
    for app in apps().await {
        let (_, till) = app.partner("Apparel", "EUR", 0).await;
        let m = app.member("+420601000002").await;
        let first = app
            .ok("POST", "/v1/transactions", &till, sale("A-1", &m, 100_000, "EUR", 0))
            .await; // 1000 points
        // EUR 49.99 with 500 points (EUR 5.00): earns on EUR 44.99.
        let t = app
            .ok("POST", "/v1/transactions", &till, sale("A-2", &m, 4999, "EUR", 500))
            .await;
        assert_eq!(
            (t["points_redeemed"].as_i64(), t["points_earned"].as_i64()),
            (Some(500), Some(44)),
            "{}",
            app.backend
        );
        assert_eq!(t["redeemed_value"], json!({"amount": 500, "currency": "EUR"}));
        assert_eq!(t["balance"]["available"], 544);
        let entries = app.entries().await;
        let (status, err) = app
            .call(
                "POST",
                "/v1/transactions",
                Some(&till),
                Some(sale("A-3", &m, 100_000, "EUR", 545)),
            )
            .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (422, Some("insufficient_points")),
            "{}",
            app.backend
        );
        assert_eq!(
            app.entries().await,
            entries,
            "{}: refused spend writes nothing",
            app.backend
        );
        // Half of the jacket back: 250 spent points return, 22 earned are taken back.
        let txn = t["id"].as_str().unwrap();
        let r = app
            .ok(
                "POST",
                &format!("/v1/transactions/{txn}/returns"),
                &till,
                json!({"external_id": "A-2-R", "amount": {"amount": 2500, "currency": "EUR"}}),
            )
            .await;
        assert_eq!(
            (r["points_refunded"].as_i64(), r["points_reversed"].as_i64()),
            (Some(250), Some(22)),
            "{}: {r}",
            app.backend
        );
        assert_eq!(r["balance"]["available"], 544 + 250 - 22);
        let (status, err) = app
            .call(
                "POST",
                &format!("/v1/transactions/{txn}/returns"),
                Some(&till),
                Some(json!({"external_id": "A-2-R2", "amount": {"amount": 2500, "currency": "EUR"}})),
            )
            .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (422, Some("return_exceeds_purchase")),
            "{}",
            app.backend
        );
        // The whole first purchase back after the member spent most of it.
        let first_id = first["id"].as_str().unwrap();
        app.ok("POST", "/v1/transactions", &till, sale("A-4", &m, 7_000, "EUR", 700))
            .await;
        let r = app
            .ok(
                "POST",
                &format!("/v1/transactions/{first_id}/returns"),
                &till,
                json!({"external_id": "A-1-R", "amount": {"amount": 100_000, "currency": "EUR"}}),
            )
            .await;
        let left = 544 + 250 - 22 - 700 + 63; // A-4 earned 63 on the EUR 63.00 not paid with points
        assert_eq!(
            (r["points_reversed"].as_i64(), r["points_unrecovered"].as_i64()),
            (Some(left), Some(1000 - left)),
            "{}: {r}",
            app.backend
        );
        assert_eq!(r["balance"]["available"], 0);
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_points_mature_and_points_expire() {
    for app in apps().await {
        let (_, till) = app.partner("Hotel", "USD", 14).await;
        let m = app.member("+420601000003").await;
        app.ok("POST", "/v1/transactions", &till, sale("H-1", &m, 10800, "USD", 0))
            .await;
        assert_eq!(app.balance(&m).await, (0, 100), "{}", app.backend);
        let (status, _) = app
            .call(
                "POST",
                "/v1/transactions",
                Some(&till),
                Some(sale("H-2", &m, 10800, "USD", 1)),
            )
            .await;
        assert_eq!(status, 422, "{}: pending points cannot be spent", app.backend);
        app.advance(15);
        assert_eq!(app.balance(&m).await, (100, 0), "{}: matured on read", app.backend);
        app.advance(30 * 25);
        let run = app.ok("POST", "/v1/expiry-runs", ADMIN, json!({})).await;
        assert_eq!(run["points_expired"], 100, "{}: {run}", app.backend);
        assert_eq!(app.balance(&m).await, (0, 0));
        let activity = app
            .ok("GET", &format!("/v1/members/{m}/activity"), ADMIN, Value::Null)
            .await;
        let kinds: Vec<&str> = activity["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["expire", "mature", "earn_pending"], "{}", app.backend);
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_see_only_their_own() {
    for app in apps().await {
        let (a_id, a) = app.partner("A", "CZK", 0).await;
        let (_, b) = app.partner("B", "CZK", 0).await;
        let m = app.member("+420601000004").await;
        let t = app
            .ok("POST", "/v1/transactions", &a, sale("X-1", &m, 25200, "CZK", 0))
            .await;
        app.ok("POST", "/v1/transactions", &b, sale("X-1", &m, 50400, "CZK", 0))
            .await;
        let txn = t["id"].as_str().unwrap();
        assert_eq!(
            app.call("GET", &format!("/v1/transactions/{txn}"), Some(&b), None)
                .await
                .0,
            404,
            "{}",
            app.backend
        );
        assert_eq!(
            app.call("GET", &format!("/v1/transactions/{txn}"), Some(&a), None)
                .await
                .0,
            200
        );
        assert_eq!(
            app.call("GET", &format!("/v1/partners/{a_id}"), Some(&b), None).await.0,
            404
        );
        let (status, _) = app
            .call(
                "POST",
                &format!("/v1/transactions/{txn}/returns"),
                Some(&b),
                Some(json!({"external_id": "R", "amount": {"amount": 100, "currency": "CZK"}})),
            )
            .await;
        assert_eq!(status, 404, "{}", app.backend);
        let seen = app
            .ok("GET", &format!("/v1/members/{m}/activity"), &b, Value::Null)
            .await;
        let items = seen["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{}: B sees only its own line", app.backend);
        assert_ne!(items[0]["transaction_id"], txn);
        for (method, path) in [
            ("POST", "/v1/partners"),
            ("PUT", "/v1/fx-rates"),
            ("GET", "/v1/ledger/verify"),
        ] {
            assert_eq!(
                app.call(method, path, Some(&b), Some(json!({}))).await.0,
                403,
                "{method} {path}"
            );
        }
        assert_eq!(app.call("GET", "/v1/program", None, None).await.0, 401);
        assert_eq!(app.call("GET", "/v1/program", Some("tk_wrong"), None).await.0, 401);
        assert_eq!(
            app.call(
                "POST",
                "/v1/transactions",
                Some(ADMIN),
                Some(sale("O-1", &m, 100, "CZK", 0))
            )
            .await
            .0,
            403
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_a_code_and_writes_nothing() {
    for app in apps().await {
        let (_, till) = app.partner("Till", "CZK", 0).await;
        let (other_id, _) = app.partner("Other", "CZK", 0).await;
        let foreign_location = app
            .ok(
                "POST",
                &format!("/v1/partners/{other_id}/locations"),
                ADMIN,
                json!({"name": "Elsewhere", "city": "Brno", "country": "CZ", "timezone": "Europe/Prague"}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let m = app.member("+420601000005").await;
        app.ok("POST", "/v1/transactions", &till, sale("OK-1", &m, 25200, "CZK", 0))
            .await;
        let entries = app.entries().await;
        let good = sale("BAD", &m, 25200, "CZK", 0);
        let with = |key: &str, value: Value| {
            let mut b = good.clone();
            b[key] = value;
            b
        };
        let cases: Vec<(Value, u16, &str)> = vec![
            (
                with("total", json!({"amount": "100", "currency": "CZK"})),
                422,
                "invalid_field",
            ),
            (
                with("total", json!({"amount": -5, "currency": "CZK"})),
                422,
                "invalid_field",
            ),
            (
                with("total", json!({"amount": 1e30, "currency": "CZK"})),
                422,
                "invalid_field",
            ),
            (
                with("total", json!({"amount": 10_000_000_000_000_000i64, "currency": "CZK"})),
                422,
                "invalid_field",
            ),
            (
                with("total", json!({"amount": 100, "currency": "XYZ"})),
                422,
                "unknown_currency",
            ),
            (
                with("total", json!({"amount": 100, "currency": "czk"})),
                422,
                "unknown_currency",
            ),
            (
                with("total", json!({"amount": 100, "currency": "JPY"})),
                422,
                "no_fx_rate",
            ),
            (with("redeem_points", json!(-1)), 422, "invalid_field"),
            (with("member", json!({"id": "mem_nobody"})), 404, "member_not_found"),
            (
                with("member", json!({"phone": "+420601000005", "email": "x@example.cz"})),
                422,
                "invalid_field",
            ),
            (with("location_id", json!(foreign_location)), 422, "unknown_location"),
            (with("occurred_at", json!("1970-01-01T00:00:00Z")), 422, "invalid_field"),
            (with("occurred_at", json!("3000-01-01T00:00:00Z")), 422, "invalid_field"),
            (with("occurred_at", json!("yesterday")), 422, "invalid_field"),
            (with("external_id", json!("")), 422, "invalid_field"),
            (with("external_id", json!("x".repeat(1000))), 422, "invalid_field"),
            (
                with(
                    "lines",
                    json!([{"sku": "S", "quantity": 0, "unit_price": {"amount": 1, "currency": "CZK"}}]),
                ),
                422,
                "invalid_field",
            ),
            (
                with(
                    "lines",
                    json!([{"sku": "S", "quantity": 1, "unit_price": {"amount": 1, "currency": "EUR"}}]),
                ),
                422,
                "currency_mismatch",
            ),
            (json!({"external_id": "BAD"}), 422, "invalid_field"),
        ];
        for (body, status, code) in cases {
            let (got, err) = app
                .call("POST", "/v1/transactions", Some(&till), Some(body.clone()))
                .await;
            assert_eq!(
                (got, err["error"]["code"].as_str()),
                (status, Some(code)),
                "{}: {body}",
                app.backend
            );
        }
        let raw = |body: &'static str, content_type: &'static str| {
            app.http
                .post(format!("{}/v1/transactions", app.base))
                .bearer_auth(&till)
                .header("content-type", content_type)
                .body(body)
        };
        let res = raw("{\"external_id\": ", "application/json").send().await.unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "invalid_json");
        assert_eq!(raw("{}", "text/plain").send().await.unwrap().status(), 415);
        let huge = format!("{{\"external_id\": \"{}\"}}", "x".repeat(100_000));
        let res = app
            .http
            .post(format!("{}/v1/transactions", app.base))
            .bearer_auth(&till)
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{}", app.backend);
        let (status, err) = app.call("GET", "/v1/nowhere", Some(&till), None).await;
        assert_eq!((status, err["error"]["code"].as_str()), (404, Some("not_found")));
        assert_eq!(app.call("DELETE", "/v1/transactions", Some(&till), None).await.0, 405);
        assert_eq!(
            app.entries().await,
            entries,
            "{}: nothing written by any of it",
            app.backend
        );
        assert_eq!(app.balance(&m).await, (10, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_each_receipt_and_replays() {
    for app in apps().await {
        let (_, till) = app.partner("Till", "CZK", 0).await;
        let m = app.member("+420601000006").await;
        let batch = json!({"transactions": [
            sale("B-1", &m, 25200, "CZK", 0), sale("B-2", &m, 50400, "CZK", 0),
            sale("B-3", &m, 100, "XYZ", 0), sale("B-4", &m, 75600, "CZK", 0)]});
        let first = app.ok("POST", "/v1/transactions/batch", &till, batch.clone()).await;
        let statuses: Vec<i64> = first["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_i64().unwrap())
            .collect();
        assert_eq!(statuses, [201, 201, 422, 201], "{}", app.backend);
        assert_eq!(first["results"][2]["error"]["code"], "unknown_currency");
        assert_eq!(app.balance(&m).await, (60, 0));
        let again = app.ok("POST", "/v1/transactions/batch", &till, batch).await;
        assert_eq!(
            again["results"][3]["transaction"]["id"], first["results"][3]["transaction"]["id"],
            "{}",
            app.backend
        );
        assert_eq!(
            app.balance(&m).await,
            (60, 0),
            "{}: a replayed batch earns nothing",
            app.backend
        );
        let too_many: Vec<Value> = (0..1001).map(|i| sale(&format!("M-{i}"), &m, 100, "CZK", 0)).collect();
        let (status, _) = app
            .call(
                "POST",
                "/v1/transactions/batch",
                Some(&till),
                Some(json!({"transactions": too_many})),
            )
            .await;
        assert_eq!(status, 422);
        let (status, v) = app.call("GET", "/healthz", None, None).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("ok")));
        let doc = app
            .http
            .get(format!("{}/openapi.json", app.base))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/v1/transactions"].is_object());
        // Request counts are business figures: the operator's (see api_hostile.rs).
        let (_, metrics) = app.metrics(Some(ADMIN)).await;
        assert!(metrics.contains("tally_http_requests_total"), "{metrics}");
    }
}
