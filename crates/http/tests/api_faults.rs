//! Faults of the database are answered `503` with their own code and `Retry-After`,
//! never `500`, and `/healthz` reports them while they last (each server its own).

mod common;

use common::{ADMIN, spawn_app};
use serde_json::{Value, json};
use tally_store::testing::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_503_storage_full_reads_go_on_and_writes_resume() {
    let app = spawn_app(TestDb::sqlite().await).await;
    app.ok("PUT", "/v1/fx-rates", ADMIN, json!({"rates": {"USD": "1.08"}}))
        .await;
    let (_, till) = app.partner("Disk", "EUR", 0).await;
    let member = app.member("+420601888001").await;
    app.ok(
        "POST",
        "/v1/transactions",
        &till,
        json!({"external_id": "D-0", "member": {"id": member}, "total": {"amount": 1000, "currency": "EUR"}}),
    )
    .await;
    let entries = app.entries().await;

    assert!(app.db.cap_sqlite_growth(Some(0)).await);
    let mut full = None;
    for i in 1..=500 {
        let res = app
            .http
            .post(format!("{}/v1/transactions", app.base))
            .bearer_auth(&till)
            .json(&json!({"external_id": format!("D-{i}"), "member": {"id": member}, "total": {"amount": 1000, "currency": "EUR"}}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let retry_after = res.headers().get("retry-after").is_some();
        let body: Value = res.json().await.unwrap();
        match status {
            201 => {}
            503 => {
                assert!(retry_after, "a 503 says when to retry");
                full = Some((i, body));
                break;
            }
            other => panic!("a full disk answered {other}: {body}"),
        }
    }
    let (at, body) = full.expect("the capped database fills up");
    assert_eq!(body["error"]["code"], "storage_full", "{body}");

    // While it lasts: reads answer, /healthz says why writes fail.
    let (status, health) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(
        (status, health["error"]["code"].as_str()),
        (503, Some("storage_full")),
        "{health}"
    );
    let (status, _) = app
        .call("GET", &format!("/v1/members/{member}"), Some(ADMIN), None)
        .await;
    assert_eq!(status, 200, "reads go on");

    // Space returns: the same receipt is accepted, once.
    assert!(app.db.cap_sqlite_growth(None).await);
    let sale = json!({"external_id": format!("D-{at}"), "member": {"id": member}, "total": {"amount": 1000, "currency": "EUR"}});
    app.ok("POST", "/v1/transactions", &till, sale.clone()).await;
    let (status, _) = app.call("POST", "/v1/transactions", Some(&till), Some(sale)).await;
    assert_eq!(status, 201, "a replay");
    let after = app.entries().await;
    assert!(after > entries, "the ledger grew and verifies");
}

/// A TCP proxy between the server and PostgreSQL that can be cut (every connection
/// dropped, new ones refused) and restored on the same port: PostgreSQL going away.
struct Proxy {
    port: u16,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Proxy {
            port,
            target,
            task: None,
        };
        proxy.task = Some(Self::run(listener, proxy.target.clone()));
        proxy
    }

    fn run(listener: tokio::net::TcpListener, target: String) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                links.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        })
    }

    /// Drops every connection and refuses new ones; returns once they are closed.
    async fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await; // the listener and the JoinSet of links are dropped
        }
        // The links' tasks were aborted with their set; give them a moment to go.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.task = Some(Self::run(listener, self.target.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_gone_is_503_database_unavailable_and_writes_resume_when_it_returns() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    // postgres://user@host:port/db → the proxy in place of host:port.
    let url = tally_store::testing::pg_url();
    let at = url.find('@').expect("a user in the test URL") + 1;
    let slash = at + url[at..].find('/').expect("a database in the test URL");
    let mut proxy = Proxy::start(url[at..slash].to_string()).await;
    let proxied = format!("{}127.0.0.1:{}{}", &url[..at], proxy.port, &url[slash..]);
    let store = tally_store::Store::connect_postgres_schema(&proxied, db.schema().unwrap())
        .await
        .unwrap();
    let app = common::spawn_on(store, db, tally_http::Limits::default()).await;
    app.ok("PUT", "/v1/fx-rates", ADMIN, json!({"rates": {"USD": "1.08"}}))
        .await;
    let (_, till) = app.partner("Gone", "EUR", 0).await;
    let member = app.member("+420601888002").await;
    let sale = |n: u32| json!({"external_id": format!("G-{n}"), "member": {"id": member}, "total": {"amount": 1000, "currency": "EUR"}});
    app.ok("POST", "/v1/transactions", &till, sale(1)).await;

    proxy.cut().await;
    let (status, body) = app.call("POST", "/v1/transactions", Some(&till), Some(sale(2))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("database_unavailable")),
        "{body}"
    );
    let (status, body) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("database_unavailable")),
        "{body}"
    );
    let (status, body) = app
        .call("GET", &format!("/v1/members/{member}"), Some(ADMIN), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("database_unavailable")),
        "{body}"
    );

    proxy.restore().await;
    let (status, body) = app.call("POST", "/v1/transactions", Some(&till), Some(sale(2))).await;
    assert_eq!(status, 201, "the retry of the refused sale is taken: {body}");
    let (available, _) = app.balance(&member).await;
    assert_eq!(available, 20, "two sales, each once");
    app.entries().await;
}
