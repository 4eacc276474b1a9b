//! Several servers, one truth: two servers on one PostgreSQL database follow each
//! other's changes (LISTEN/NOTIFY), so a rule saved, a key revoked or an FX rate set
//! through one applies to the next request on the other, long before the periodic
//! refresh (300 s) would bring it. PostgreSQL only: a SQLite database belongs to one
//! server.

mod common;

use common::{ADMIN, App, spawn_on};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tally_store::testing::{TestDb, pg_url};

/// How long a change may take to reach the other server. Notifications arrive in
/// milliseconds; the bound only keeps a broken feed from hanging the test.
const AT_MOST: Duration = Duration::from_secs(3);

async fn second_server(db: &TestDb) -> App {
    let store = tally_store::Store::connect_postgres_schema(&pg_url(), db.schema().unwrap())
        .await
        .unwrap();
    // The second server keeps a database handle of its own; the first owns the schema.
    let keep = TestDb::sqlite().await;
    spawn_on(store, keep, tally_http::Limits::default()).await
}

/// Polls `check` until it holds or [`AT_MOST`] passes; how long it took.
async fn within<F, Fut>(mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < AT_MOST {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// A quote for `amount` minor units: the status and the points it would earn.
async fn quote(app: &App, till: &str, member: &str, currency: &str, amount: i64) -> (u16, i64) {
    let body =
        json!({"external_id": "Q-1", "member": {"id": member}, "total": {"amount": amount, "currency": currency}});
    let (status, v) = app.call("POST", "/v1/transactions/quote", Some(till), Some(body)).await;
    (status, v["points_earned"].as_i64().unwrap_or(-1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_server_applies_on_the_other_at_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let second = second_server(&db).await;
    let first = spawn_on(db.store.clone(), db, tally_http::Limits::default()).await;
    assert!(first.follows && second.follows, "both servers follow the change feed");
    first
        .ok("PUT", "/v1/fx-rates", ADMIN, json!({"rates": {"USD": "1.08"}}))
        .await;
    let (partner, till) = first.partner("Shared", "EUR", 0).await;
    let member = first.member("+420601444001").await;
    assert_eq!(
        quote(&second, &till, &member, "EUR", 10_000).await.1,
        100,
        "the second server knows the partner and its key"
    );

    // A rule saved through the first applies to the next sale on the second.
    first
        .ok(
            "POST",
            "/v1/earning-rules",
            ADMIN,
            json!({"name": "Double points", "effect": {"kind": "multiplier", "factor": "2"}}),
        )
        .await;
    let took = within(|| async { quote(&second, &till, &member, "EUR", 10_000).await.1 == 200 }).await;
    assert!(took.is_some(), "the second server applies the new rule");
    let sale = second
        .ok(
            "POST",
            "/v1/transactions",
            &till,
            json!({"external_id": "S-1", "member": {"id": member}, "total": {"amount": 10_000, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(sale["points_earned"], 200, "{sale}");

    // An FX rate set through the second applies on the first.
    second
        .ok(
            "PUT",
            "/v1/fx-rates",
            ADMIN,
            json!({"rates": {"USD": "1.08", "CZK": "25"}}),
        )
        .await;
    assert!(
        within(|| async { quote(&first, &till, &member, "CZK", 25_000).await.0 == 200 })
            .await
            .is_some(),
        "the first server knows CZK"
    );

    // The feed survives a lost connection: every listening connection of this database
    // is ended; the servers listen again, reload everything, and go on following.
    let ended: i64 = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
        sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()) t",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    };
    assert!(ended >= 2, "both servers' listening connections were ended ({ended})");
    // Let them listen again and reload, then put the key back into the second's cache:
    // only a change that arrives through the renewed feed can drop it from there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        second
            .call("GET", &format!("/v1/partners/{partner}"), Some(&till), None)
            .await
            .0,
        200
    );

    // A key revoked through the first is refused by the second, which had it cached.
    let keys = first
        .ok("GET", &format!("/v1/partners/{partner}/api-keys"), ADMIN, Value::Null)
        .await;
    let key_id = keys["items"][0]["id"].as_str().unwrap().to_string();
    first
        .ok(
            "DELETE",
            &format!("/v1/partners/{partner}/api-keys/{key_id}"),
            ADMIN,
            Value::Null,
        )
        .await;
    let refused = within(|| async {
        second
            .call("GET", &format!("/v1/partners/{partner}"), Some(&till), None)
            .await
            .0
            == 401
    })
    .await;
    assert!(refused.is_some(), "the second server refuses the revoked key");
}
