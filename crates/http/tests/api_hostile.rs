//! A hostile client, through the real server on SQLite and PostgreSQL: bodies that are
//! too large, never arrive or arrive too slowly; connections that hold on; JSON of the
//! wrong shape or type; revoked keys; partners reaching for members' personal data;
//! metrics read without a key. Each answer is checked for its status and code in the
//! one error shape, and nothing refused writes anything.

mod common;

use common::{ADMIN, App, spawn_app_with};
use serde_json::{Value, json};
use std::time::Duration;
use tally_store::testing::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short deadlines, so the slow-client cases take a second, not ten.
fn short_limits() -> tally_http::Limits {
    tally_http::Limits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(1),
        max_connections: 64,
    }
}

async fn hostile_apps() -> Vec<App> {
    let mut out = Vec::new();
    for db in TestDb::all().await {
        out.push(spawn_app_with(db, short_limits()).await);
    }
    out
}

fn addr(app: &App) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Sends raw bytes on a new connection and reads one answer (or until the server
/// closes the connection, or `wait` passes); the status and the body.
async fn raw(app: &App, request: &[u8], wait: Duration) -> (u16, String) {
    let mut conn = TcpStream::connect(addr(app)).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut chunk = [0u8; 4096];
        loop {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if complete(&buf) {
                return;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Whether `buf` holds a whole answer with a `content-length`.
fn complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .is_some_and(|n| body.len() >= n)
}

/// Sends raw bytes, and asserts the answer is `status` with the error `code`.
async fn refused_raw(app: &App, request: &[u8], status: u16, code_: &str) {
    let (got, body) = raw(app, request, Duration::from_secs(5)).await;
    assert_eq!((got, code(&body).as_str()), (status, code_), "{}", app.backend);
}

fn code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("<not the error shape: {body:?}>"))
}

/// A request of the strict-JSON table: method, path, key, content type, body, and the
/// status and code it must get.
type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, String, u16, &'a str);

/// A partner with a till key; the id and the key.
async fn partner(app: &App, name: &str) -> (String, String) {
    app.partner(name, "EUR", 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_too_large_or_too_slow_are_refused_at_once_in_the_error_shape() {
    for app in hostile_apps().await {
        let (_, till) = partner(&app, "Body").await;
        let entries = app.entries().await;
        let head = |path: &str, length: u64, extra: &str| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {till}\r\nContent-Type: application/json\r\n{extra}Content-Length: {length}\r\n\r\n"
            )
        };
        // Declared far over the limit, and nothing sent: 413 before any byte is read,
        // with or without an Idempotency-Key (whose layer also reads bodies).
        for extra in ["", "Idempotency-Key: big-1\r\n"] {
            for length in [1_000_000_000u64, 10 * 1024 * 1024] {
                let started = std::time::Instant::now();
                let (status, body) = raw(
                    &app,
                    head("/v1/transactions", length, extra).as_bytes(),
                    Duration::from_secs(5),
                )
                .await;
                assert_eq!(
                    (status, code(&body).as_str()),
                    (413, "payload_too_large"),
                    "{}: {length} {extra}",
                    app.backend
                );
                assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "{}: answered at once",
                    app.backend
                );
            }
        }
        // No body is read before the key is known: a bad key is 401 at once, and the
        // batch's larger body is a till's only (the operator's key is 403 at once).
        let anonymous = "POST /v1/transactions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n";
        refused_raw(&app, anonymous.as_bytes(), 401, "unauthorized").await;
        let operator_batch = format!(
            "POST /v1/transactions/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\n\r\n"
        );
        refused_raw(&app, operator_batch.as_bytes(), 403, "forbidden").await;
        // The batch takes more, but not without end.
        refused_raw(
            &app,
            head("/v1/transactions/batch", 9 * 1024 * 1024, "").as_bytes(),
            413,
            "payload_too_large",
        )
        .await;
        // A body that stops arriving: 408 after the body timeout, not a 503 after 30 s.
        let mut partial = head("/v1/transactions", 1000, "").into_bytes();
        partial.extend_from_slice(b"{\"external_id\": \"SLOW-1\"");
        refused_raw(&app, &partial, 408, "body_timeout").await;
        // A chunked body (no declared length) that grows past the limit: 413.
        let mut chunked = format!(
            "POST /v1/transactions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {till}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        let chunk = vec![b' '; 70 * 1024];
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        refused_raw(&app, &chunked, 413, "payload_too_large").await;
        assert_eq!(app.entries().await, entries, "{}: nothing was written", app.backend);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_the_connection_cap_holds() {
    for app in hostile_apps().await {
        // Slowloris: half a request head, then nothing. The server closes the
        // connection after the header timeout (1 s here).
        let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(Duration::from_secs(4), slow.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
            "{}: a slow head is cut off",
            app.backend
        );
        // A kept-alive connection that goes idle is closed the same way.
        let mut idle = TcpStream::connect(addr(&app)).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let read_all = tokio::time::timeout(Duration::from_secs(4), idle.read_to_end(&mut answer)).await;
        assert!(
            read_all.is_ok(),
            "{}: an idle kept-alive connection is closed",
            app.backend
        );
        assert!(
            String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
            "{}",
            app.backend
        );
    }

    // A client that asks and never reads the answers is cut off after the write
    // timeout, so it cannot keep the only connection slot.
    let app = spawn_app_with(
        TestDb::sqlite().await,
        tally_http::Limits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(30),
            ..short_limits()
        },
    )
    .await;
    let mut greedy = TcpStream::connect(addr(&app)).await.unwrap();
    let asks = "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(400);
    greedy.write_all(asks.as_bytes()).await.unwrap();
    let served = tokio::time::timeout(Duration::from_secs(10), reqwest::get(format!("{}/healthz", app.base))).await;
    assert!(
        matches!(served, Ok(Ok(ref r)) if r.status() == 200),
        "the slot is freed once the stalled answer times out: {served:?}"
    );
    drop(greedy);

    // The cap: with two connections allowed and both held, a third is not served until
    // one of them goes.
    let db = TestDb::sqlite().await;
    let app = spawn_app_with(
        db,
        tally_http::Limits {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(30),
            ..short_limits()
        },
    )
    .await;
    let held: Vec<TcpStream> = vec![
        TcpStream::connect(addr(&app)).await.unwrap(),
        TcpStream::connect(addr(&app)).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::spawn({
        let url = format!("{}/healthz", app.base);
        async move { reqwest::get(url).await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a third connection waits while two are held");
    drop(held);
    let status = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "and is served once one goes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_json_objects_of_the_declared_type_are_read() {
    for app in hostile_apps().await {
        let (_, till) = partner(&app, "Strict").await;
        let member = app.member("+420601777001").await;
        app.ok(
            "PATCH",
            &format!("/v1/members/{member}"),
            ADMIN,
            json!({"tier": "gold"}),
        )
        .await;
        let entries = app.entries().await;
        let send = |method: &str, path: &str, key: &str, content_type: Option<&str>, body: &str| {
            let mut req = app
                .http
                .request(method.parse().unwrap(), format!("{}{path}", app.base))
                .bearer_auth(key)
                .body(body.to_string());
            if let Some(ct) = content_type {
                req = req.header("Content-Type", ct);
            }
            async move {
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                (status, code(&res.text().await.unwrap()))
            }
        };
        let sale =
            json!({"external_id": "S-1", "member": {"id": member}, "total": {"amount": 1000, "currency": "EUR"}})
                .to_string();
        let member_path = format!("/v1/members/{member}");
        let cases: Vec<Case> = vec![
            // An array where an object belongs, at the top or inside.
            (
                "PATCH",
                &member_path,
                ADMIN,
                Some("application/json"),
                "[]".into(),
                422,
                "invalid_field",
            ),
            (
                "POST",
                "/v1/transactions",
                &till,
                Some("application/json"),
                json!({"external_id": "S-2", "member": {"id": member}, "total": [1000, "EUR"]}).to_string(),
                422,
                "invalid_field",
            ),
            (
                "POST",
                "/v1/transactions/batch",
                &till,
                Some("application/json"),
                json!({"transactions": [["S-3", {"id": member}, {"amount": 1, "currency": "EUR"}]]}).to_string(),
                200,
                "",
            ),
            // Content types that are not JSON, the batch included.
            (
                "POST",
                "/v1/transactions",
                &till,
                Some("application/jsonx"),
                sale.clone(),
                415,
                "unsupported_media_type",
            ),
            (
                "POST",
                "/v1/transactions",
                &till,
                Some("text/plain"),
                sale.clone(),
                415,
                "unsupported_media_type",
            ),
            (
                "POST",
                "/v1/transactions",
                &till,
                Some("application/json; charset=latin1"),
                sale.clone(),
                415,
                "unsupported_media_type",
            ),
            (
                "POST",
                "/v1/transactions",
                &till,
                None,
                sale.clone(),
                415,
                "unsupported_media_type",
            ),
            (
                "POST",
                "/v1/transactions/batch",
                &till,
                None,
                json!({"transactions": []}).to_string(),
                415,
                "unsupported_media_type",
            ),
            (
                "POST",
                "/v1/transactions/batch",
                &till,
                Some("application/jsonx"),
                json!({"transactions": []}).to_string(),
                415,
                "unsupported_media_type",
            ),
            // Bad JSON, and JSON that is not an object.
            (
                "POST",
                "/v1/transactions",
                &till,
                Some("application/json"),
                "{\"external_id\":".into(),
                400,
                "invalid_json",
            ),
            (
                "POST",
                "/v1/transactions",
                &till,
                Some("application/json"),
                "\"a sale\"".into(),
                422,
                "invalid_field",
            ),
            (
                "PUT",
                "/v1/fx-rates",
                ADMIN,
                Some("application/json"),
                "[[\"HUF\", \"400\"]]".into(),
                422,
                "invalid_field",
            ),
            (
                "POST",
                "/v1/earning-rules",
                ADMIN,
                Some("application/json"),
                json!({"name": "Array effect", "effect": ["fixed", 10]}).to_string(),
                422,
                "invalid_field",
            ),
        ];
        for (method, path, key, ct, body, status, want) in cases {
            let (got, got_code) = send(method, path, key, ct, &body).await;
            if status == 200 {
                // The batch answers each receipt: this one is refused in its slot.
                let res = app
                    .http
                    .post(format!("{}{path}", app.base))
                    .bearer_auth(key)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let v: Value = res.json().await.unwrap();
                assert_eq!(v["results"][0]["status"], 422, "{}: {v}", app.backend);
                assert_eq!(
                    v["results"][0]["error"]["code"], "invalid_field",
                    "{}: {v}",
                    app.backend
                );
                continue;
            }
            assert_eq!(
                (got, got_code.as_str()),
                (status, want),
                "{}: {method} {path} {ct:?} {body}",
                app.backend
            );
        }
        // Answers of the framework's own extractors come in the one error shape too.
        let (status, body) = raw(
            &app,
            format!("GET /v1/members/%FF%FE HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\r\n").as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            (status, code(&body).as_str()),
            (400, "bad_request"),
            "{}: {body}",
            app.backend
        );
        // JSON with a charset is JSON.
        let (status, _) = send(
            "POST",
            "/v1/transactions",
            &till,
            Some("application/json; charset=UTF-8"),
            &sale,
        )
        .await;
        assert_eq!(status, 201, "{}", app.backend);
        // The profile survived the `[]`.
        let m = app
            .ok("GET", &format!("/v1/members/{member}"), ADMIN, Value::Null)
            .await;
        assert_eq!(m["tier"], "gold", "{}", app.backend);
        assert!(app.entries().await > entries, "{}", app.backend);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_rule_needs_an_event_type_that_exists() {
    for app in hostile_apps().await {
        let rule = |t: &str| json!({"name": "Bonus", "applies_to": "event", "event_type": t, "effect": {"kind": "fixed", "points": 10}});
        let (status, body) = app
            .call("POST", "/v1/earning-rules", Some(ADMIN), Some(rule("no_such_event")))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("unknown_event_type")),
            "{}: {body}",
            app.backend
        );
        app.ok(
            "POST",
            "/v1/event-types",
            ADMIN,
            json!({"name": "workshop_attended", "description": "A workshop"}),
        )
        .await;
        app.ok("POST", "/v1/earning-rules", ADMIN, rule("workshop_attended"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_at_once_and_keys_are_listed_without_secrets() {
    for app in hostile_apps().await {
        let (pid, till) = partner(&app, "Keys").await;
        let (other, other_till) = partner(&app, "Other").await;
        let second = app
            .ok("POST", &format!("/v1/partners/{pid}/api-keys"), ADMIN, json!({}))
            .await;
        let (status, _) = app.call("GET", "/healthz", Some(&till), None).await;
        assert_eq!(status, 200);
        // The partner warms the key cache, then the operator revokes the key.
        assert_eq!(
            app.call("GET", &format!("/v1/partners/{pid}"), Some(&till), None)
                .await
                .0,
            200
        );
        let list = app
            .ok("GET", &format!("/v1/partners/{pid}/api-keys"), ADMIN, Value::Null)
            .await;
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{}: {list}", app.backend);
        assert!(!list.to_string().contains(&till), "{}: no key in the list", app.backend);
        assert!(
            items
                .iter()
                .all(|k| k.get("key").is_none() && k.get("key_hash").is_none())
        );
        let first_id = items.iter().find(|k| k["id"] != second["id"]).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        // Only the operator revokes; another partner cannot even see the list.
        app.refused(
            "DELETE",
            &format!("/v1/partners/{pid}/api-keys/{first_id}"),
            Some(&till),
            None,
            403,
            "forbidden",
        )
        .await;
        let (status, _) = app
            .call("GET", &format!("/v1/partners/{pid}/api-keys"), Some(&other_till), None)
            .await;
        assert_eq!(status, 404, "{}", app.backend);
        // A key of another partner is not found under this one.
        let others = app
            .ok("GET", &format!("/v1/partners/{other}/api-keys"), ADMIN, Value::Null)
            .await;
        let other_key = others["items"][0]["id"].as_str().unwrap();
        let (status, _) = app
            .call(
                "DELETE",
                &format!("/v1/partners/{pid}/api-keys/{other_key}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 404, "{}", app.backend);
        let revoked = app
            .ok(
                "DELETE",
                &format!("/v1/partners/{pid}/api-keys/{first_id}"),
                ADMIN,
                Value::Null,
            )
            .await;
        assert!(revoked["revoked_at"].is_string(), "{}: {revoked}", app.backend);
        app.refused(
            "GET",
            &format!("/v1/partners/{pid}"),
            Some(&till),
            None,
            401,
            "unauthorized",
        )
        .await;
        // Revoking again changes nothing; the other key and the other partner work on.
        let again = app
            .ok(
                "DELETE",
                &format!("/v1/partners/{pid}/api-keys/{first_id}"),
                ADMIN,
                Value::Null,
            )
            .await;
        assert_eq!(again["revoked_at"], revoked["revoked_at"], "{}", app.backend);
        let second_key = second["key"].as_str().unwrap();
        assert_eq!(
            app.call("GET", &format!("/v1/partners/{pid}"), Some(second_key), None)
                .await
                .0,
            200
        );
        assert_eq!(
            app.call("GET", &format!("/v1/partners/{other}"), Some(&other_till), None)
                .await
                .0,
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_business_counts_to_the_operator_only() {
    for app in hostile_apps().await {
        let (_, till) = partner(&app, "Metrics").await;
        for key in [None, Some(till.as_str()), Some("not-a-key")] {
            let (status, text) = app.metrics(key).await;
            assert_eq!(status, 200);
            assert!(text.contains("tally_active_rules"), "{}: {text}", app.backend);
            assert!(
                !text.contains("tally_members"),
                "{}: {key:?} sees no member count",
                app.backend
            );
            assert!(
                !text.contains("tally_http_requests_total"),
                "{}: {key:?} sees no request counts",
                app.backend
            );
        }
        let (_, text) = app.metrics(Some(ADMIN)).await;
        assert!(text.contains("tally_members"), "{}: {text}", app.backend);
        assert!(text.contains("tally_http_requests_total"), "{}: {text}", app.backend);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_sees_a_summary_of_a_member_unless_the_member_shares_more() {
    for app in hostile_apps().await {
        let (hotel, hotel_till) = partner(&app, "Hotel").await;
        let (_, shop_till) = partner(&app, "Shop").await;
        let member = app
            .ok(
                "POST",
                "/v1/members",
                ADMIN,
                json!({"phone": "+420601555001", "email": "jana@example.com", "card": "12345678", "name": "Jana Marie Nováková", "country": "CZ"}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.ok(
            "PATCH",
            &format!("/v1/members/{member}"),
            ADMIN,
            json!({"tier": "gold"}),
        )
        .await;
        app.ok(
            "POST",
            "/v1/transactions",
            &shop_till,
            json!({"external_id": "SHOP-1", "member": {"id": member}, "total": {"amount": 10_000, "currency": "EUR"}}),
        )
        .await;
        let personal = [
            "jana@example.com",
            "+420601555001",
            "12345678",
            "Nováková",
            "referral_code",
            "\"country\"",
        ];
        let paths = [
            format!("/v1/members/{member}"),
            "/v1/members/lookup?phone=%2B420601555001".to_string(),
            "/v1/members/lookup?email=jana@example.com".to_string(),
            "/v1/members/lookup?card=12345678".to_string(),
        ];
        let sees_all = |v: &Value| personal.iter().all(|p| v.to_string().contains(p));
        let sees_none = |v: &Value| personal.iter().all(|p| !v.to_string().contains(p));
        // The matrix: operator, a partner without consent, with consent, after withdrawal.
        for path in &paths {
            let v = app.ok("GET", path, ADMIN, Value::Null).await;
            assert!(sees_all(&v), "{}: the operator sees all: {v}", app.backend);
            for till in [&hotel_till, &shop_till] {
                let v = app.ok("GET", path, till, Value::Null).await;
                assert!(sees_none(&v), "{}: {path}: a partner sees a summary: {v}", app.backend);
                assert_eq!(v["display_name"], "Jana N.", "{}", app.backend);
                assert_eq!(v["tier"], "gold");
                assert_eq!(v["balance"]["available"], 100, "{}: {v}", app.backend);
                assert_eq!(v["shares_personal_data"], false);
            }
        }
        // Partners cannot read or set consents.
        for (method, path) in [
            ("GET", format!("/v1/members/{member}/consents")),
            ("PUT", format!("/v1/members/{member}/consents/{hotel}")),
            ("DELETE", format!("/v1/members/{member}/consents/{hotel}")),
        ] {
            let (status, _) = app.call(method, &path, Some(&hotel_till), None).await;
            assert_eq!(status, 403, "{}: {method} {path}", app.backend);
        }
        let consent = app
            .ok(
                "PUT",
                &format!("/v1/members/{member}/consents/{hotel}"),
                ADMIN,
                Value::Null,
            )
            .await;
        assert_eq!(consent["partner_id"], hotel.as_str());
        for path in &paths {
            let v = app.ok("GET", path, &hotel_till, Value::Null).await;
            assert!(sees_all(&v), "{}: with consent the hotel sees all: {v}", app.backend);
            let v = app.ok("GET", path, &shop_till, Value::Null).await;
            assert!(sees_none(&v), "{}: the shop still does not: {v}", app.backend);
        }
        let list = app
            .ok("GET", &format!("/v1/members/{member}/consents"), ADMIN, Value::Null)
            .await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        let (status, _) = app
            .call(
                "DELETE",
                &format!("/v1/members/{member}/consents/{hotel}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 204);
        let v = app.ok("GET", &paths[0], &hotel_till, Value::Null).await;
        assert!(sees_none(&v), "{}: withdrawn: {v}", app.backend);
        // Activity shown to a partner stays its own: the hotel sees none of the shop's.
        let activity = app
            .ok(
                "GET",
                &format!("/v1/members/{member}/activity"),
                &hotel_till,
                Value::Null,
            )
            .await;
        assert_eq!(
            activity["items"].as_array().unwrap().len(),
            0,
            "{}: {activity}",
            app.backend
        );
        let activity = app
            .ok(
                "GET",
                &format!("/v1/members/{member}/activity"),
                &shop_till,
                Value::Null,
            )
            .await;
        assert!(!activity["items"].as_array().unwrap().is_empty(), "{}", app.backend);
        // Unknown members and partners in consents are 404.
        app.refused(
            "PUT",
            &format!("/v1/members/{member}/consents/prt_nobody"),
            Some(ADMIN),
            None,
            404,
            "partner_not_found",
        )
        .await;
        app.refused(
            "PUT",
            &format!("/v1/members/mem_nobody/consents/{hotel}"),
            Some(ADMIN),
            None,
            404,
            "member_not_found",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessed_key_costs_the_database_one_lookup() {
    for app in hostile_apps().await {
        let lookups = || async {
            let (_, text) = app.metrics(Some(ADMIN)).await;
            text.lines()
                .find_map(|l| l.strip_prefix("tally_key_lookups_total "))
                .and_then(|n| n.parse::<u64>().ok())
                .expect("the lookup counter is shown")
        };
        let before = lookups().await;
        for _ in 0..50 {
            app.refused(
                "GET",
                "/v1/program",
                Some("tk_guess_the_same"),
                None,
                401,
                "unauthorized",
            )
            .await;
        }
        assert_eq!(
            lookups().await,
            before + 1,
            "{}: one lookup for 50 tries of one key",
            app.backend
        );
        for i in 0..5 {
            app.refused(
                "GET",
                "/v1/program",
                Some(&format!("tk_guess_{i}")),
                None,
                401,
                "unauthorized",
            )
            .await;
        }
        assert_eq!(lookups().await, before + 6, "{}: one per new key", app.backend);
    }
}
