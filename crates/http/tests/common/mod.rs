//! The test harness shared by the API tests: a real server on port 0 over each test
//! database, with a clock the test moves, and helpers to call it.
#![allow(dead_code)]

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tally_store::testing::TestDb;

pub const ADMIN: &str = "test-operator-key";

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<AtomicI64>,
    pub backend: &'static str,
    /// Whether the server follows other servers' changes (PostgreSQL).
    pub follows: bool,
    pub db: TestDb,
}

pub async fn spawn_app(db: TestDb) -> App {
    spawn_app_with(db, tally_http::Limits::default()).await
}

/// A server with its own connection and body limits.
pub async fn spawn_app_with(db: TestDb, limits: tally_http::Limits) -> App {
    let store = db.store.clone();
    spawn_on(store, db, limits).await
}

/// A server over `store` (which may reach `db` another way, as through a proxy).
pub async fn spawn_on(store: tally_store::Store, db: TestDb, limits: tally_http::Limits) -> App {
    spawn_full(store, db, limits, None).await
}

/// A server whose members' sign-in codes go to `codes` instead of nowhere.
pub async fn spawn_app_with_codes(db: TestDb, codes: Arc<dyn tally_http::web::codes::CodeSender>) -> App {
    let store = db.store.clone();
    spawn_full(store, db, tally_http::Limits::default(), Some(codes)).await
}

async fn spawn_full(
    store: tally_store::Store,
    db: TestDb,
    limits: tally_http::Limits,
    codes: Option<Arc<dyn tally_http::web::codes::CodeSender>>,
) -> App {
    let clock = Arc::new(AtomicI64::new(
        "2026-11-20T09:00:00Z".parse::<Timestamp>().unwrap().as_microsecond(),
    ));
    let c = clock.clone();
    let read: tally_http::Clock = Arc::new(move || Timestamp::from_microsecond(c.load(Ordering::SeqCst)).unwrap());
    let mut state = tally_http::AppState::new(store, read, tally_store::keys::hash_key(ADMIN))
        .await
        .unwrap();
    state.limits = limits;
    if let Some(codes) = codes {
        state.codes = codes;
    }
    let follows = state.follow_changes().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(tally_http::serve(listener, state, std::future::pending()));
    App {
        base,
        http: reqwest::Client::new(),
        clock,
        backend: db.store.backend(),
        follows,
        db,
    }
}

impl App {
    pub async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// `GET /metrics` as `key` sees it (none: anonymous): the status and the text.
    pub async fn metrics(&self, key: Option<&str>) -> (u16, String) {
        let mut req = self.http.get(format!("{}/metrics", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub async fn ok(&self, method: &str, path: &str, key: &str, body: Value) -> Value {
        let (status, v) = self.call(method, path, Some(key), Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "{}: {method} {path} answered {status}: {v}",
            self.backend
        );
        v
    }

    /// Calls, and asserts the answer is `status` with the error `code`.
    pub async fn refused(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) {
        let (got, v) = self.call(method, path, key, body).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{}: {method} {path}: {v}",
            self.backend
        );
    }

    pub fn advance(&self, days: i64) {
        self.clock.fetch_add(
            SignedDuration::from_hours(24 * days).as_micros() as i64,
            Ordering::SeqCst,
        );
    }

    /// A partner and its till key.
    pub async fn partner(&self, name: &str, currency: &str, pending_days: u32) -> (String, String) {
        let p = self
            .ok("POST", "/v1/partners", ADMIN, json!({"name": name, "industry": "retail", "country": "CZ", "currency": currency, "timezone": "Europe/Prague", "pending_days": pending_days}))
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        let k = self
            .ok("POST", &format!("/v1/partners/{id}/api-keys"), ADMIN, json!({}))
            .await;
        (id, k["key"].as_str().unwrap().to_string())
    }

    pub async fn member(&self, phone: &str) -> String {
        self.ok("POST", "/v1/members", ADMIN, json!({"phone": phone, "country": "CZ"}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The test clock's time, as RFC 3339.
    pub fn now_text(&self) -> String {
        Timestamp::from_microsecond(self.clock.load(Ordering::SeqCst))
            .unwrap()
            .to_string()
    }

    /// A sale of `euros` at the partner of `till` for `member`, now.
    pub async fn earn(&self, till: &str, member: &str, receipt: &str, euros: i64) {
        self.sale(till, member, receipt, euros).await;
    }

    /// The same, answering the sale's transaction id.
    pub async fn sale(&self, till: &str, member: &str, receipt: &str, euros: i64) -> String {
        self.ok(
            "POST",
            "/v1/transactions",
            till,
            json!({"external_id": receipt, "member": {"id": member}, "occurred_at": self.now_text(),
                   "total": {"amount": euros * 100, "currency": "EUR"}}),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `owner` opens a household and `member` joins it (earning and spending her own).
    pub async fn household(&self, owner: &str, member: &str) -> String {
        let w = self
            .ok(
                "POST",
                "/v1/wallets",
                ADMIN,
                json!({"kind": "household", "name": "Home", "owner_id": owner}),
            )
            .await;
        let wallet = w["id"].as_str().unwrap().to_string();
        let code = self
            .ok("POST", &format!("/v1/wallets/{wallet}/invites"), ADMIN, json!({}))
            .await["code"]
            .clone();
        self.ok(
            "POST",
            &format!("/v1/wallets/{wallet}/members"),
            ADMIN,
            json!({"member_id": member, "code": code, "earn_into": false, "spend": false}),
        )
        .await;
        wallet
    }

    pub async fn balance(&self, member: &str) -> (i64, i64) {
        let b = self
            .ok("GET", &format!("/v1/members/{member}/balance"), ADMIN, Value::Null)
            .await;
        (b["available"].as_i64().unwrap(), b["pending"].as_i64().unwrap())
    }

    pub async fn entries(&self) -> i64 {
        let v = self.ok("GET", "/v1/ledger/verify", ADMIN, Value::Null).await;
        assert_eq!(v["balanced"], true, "{}: {v}", self.backend);
        v["entries_checked"].as_i64().unwrap()
    }
}

pub async fn apps() -> Vec<App> {
    let mut out = Vec::new();
    for db in TestDb::all().await {
        let app = spawn_app(db).await;
        app.ok(
            "PUT",
            "/v1/fx-rates",
            ADMIN,
            json!({"rates": {"USD": "1.08", "CZK": "25.2"}}),
        )
        .await;
        out.push(app);
    }
    out
}
