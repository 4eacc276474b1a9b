//! Durability: the real `tally serve` is killed with SIGKILL while tills post sales.
//! After a restart, every sale that was acknowledged (2xx) is there (it replays), and
//! the ledger is balanced. On SQLite and PostgreSQL.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_store::testing::TestDb;

const ADMIN: &str = "crash-test-operator";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("serve")
        .env("TALLY_DATABASE_URL", url)
        .env("TALLY_LISTEN", format!("127.0.0.1:{port}"))
        .env("TALLY_ADMIN_KEY", ADMIN)
        .env("TALLY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tally serve")
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tally serve did not become ready at {base}");
}

async fn post(http: &reqwest::Client, base: &str, path: &str, key: &str, body: Value) -> Value {
    let res = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

fn sale(receipt: u64, member: &str) -> Value {
    json!({"external_id": format!("K-{receipt}"), "member": {"id": member}, "total": {"amount": 2520 + receipt as i64, "currency": "EUR"}})
}

async fn kill_mid_stream(url: String, backend: &str) {
    let http = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&url, port);
    wait_ready(&http, &base).await;
    let partner = post(
        &http,
        &base,
        "/v1/partners",
        ADMIN,
        json!({"name": "Till", "industry": "retail", "country": "DE", "currency": "EUR", "timezone": "Europe/Berlin"}),
    )
    .await;
    let pid = partner["id"].as_str().unwrap().to_string();
    let key = post(&http, &base, &format!("/v1/partners/{pid}/api-keys"), ADMIN, json!({})).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let member = post(&http, &base, "/v1/members", ADMIN, json!({"email": "crash@example.de"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for c in 0..8u64 {
        let (http, base, key, member, acked) = (http.clone(), base.clone(), key.clone(), member.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let receipt = c * 1_000_000 + i;
                let sent = http
                    .post(format!("{base}/v1/transactions"))
                    .bearer_auth(&key)
                    .json(&sale(receipt, &member))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push(receipt),
                    Ok(r) => panic!("unexpected {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Let sales flow, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.lock().unwrap().len() < 300 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "{backend}: only {} sales before the kill",
        acked.len()
    );

    let mut server = start(&url, port);
    wait_ready(&http, &base).await;
    for receipt in &acked {
        let res = http
            .post(format!("{base}/v1/transactions"))
            .bearer_auth(&key)
            .json(&sale(*receipt, &member))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{backend}: K-{receipt}");
        assert_eq!(
            res.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()),
            Some("true"),
            "{backend}: acknowledged sale K-{receipt} was lost"
        );
    }
    let verify: Value = http
        .get(format!("{base}/v1/ledger/verify"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["balanced"], true, "{backend}: {verify}");
    let balance: Value = http
        .get(format!("{base}/v1/members/{member}/balance"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let acked_points: i64 = acked.iter().map(|r| (2520 + *r as i64) / 100).sum();
    assert!(
        balance["available"].as_i64().unwrap() >= acked_points,
        "{backend}: {balance} < {acked_points}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_sale_on_sqlite() {
    let path = std::env::temp_dir().join(format!("tally-crash-{}.db", std::process::id()));
    kill_mid_stream(format!("sqlite://{}", path.display()), "sqlite").await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_sale_on_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    let schema = db
        .schema()
        .expect("a PostgreSQL test database has a schema")
        .to_string();
    let url = format!("{}?options=-c%20search_path%3D{schema}", tally_store::testing::pg_url());
    kill_mid_stream(url, "postgres").await;
    drop(db);
}
