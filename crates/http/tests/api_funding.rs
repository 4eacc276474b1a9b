//! Who funds each point, through the real HTTP server on SQLite and PostgreSQL: base
//! points and a partner's own rules are drawn from the partner's `issued` account, a
//! programme-wide rule from what the operator funds at that partner, a co-funded rule
//! from both; a return takes back from each funder in the proportion it funded, and
//! only the operator may give the operator a share.
mod common;

use common::{ADMIN, App, apps};
use serde_json::{Value, json};

async fn rule(app: &App, key: &str, spec: Value) -> String {
    app.ok("POST", "/v1/earning-rules", key, spec).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The balance of one programme account (0 when it has no entries).
async fn account(app: &App, name: &str) -> i64 {
    let b = app.ok("GET", "/v1/ledger/balances", ADMIN, Value::Null).await;
    b["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == name)
        .map_or(0, |a| a["balance"].as_i64().unwrap())
}

/// The books balance: the programme's accounts and what holders hold sum to zero.
async fn assert_books_balance(app: &App) {
    let b = app.ok("GET", "/v1/ledger/balances", ADMIN, Value::Null).await;
    let accounts: i64 = b["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["balance"].as_i64().unwrap())
        .sum();
    let holders: i64 = ["members", "wallets"]
        .iter()
        .flat_map(|h| ["available", "pending", "reserved"].map(|k| b[h][k].as_i64().unwrap()))
        .sum();
    assert_eq!(accounts + holders, 0, "{}: {b}", app.backend);
}

#[tokio::test]
async fn each_funder_pays_its_points_and_a_return_takes_back_from_each() {
    for app in apps().await {
        let (berlin, till) = app.partner("Berlin Apparel", "EUR", 0).await;
        let anna = app.member("+420602000001").await;
        // A programme-wide campaign: the operator's.
        let campaign = rule(
            &app,
            ADMIN,
            json!({"name": "Autumn campaign", "effect": {"kind": "fixed", "points": 100}}),
        )
        .await;
        // The store's own bonus, written with its key: the store's.
        let own = rule(
            &app,
            &till,
            json!({"name": "Store bonus", "effect": {"kind": "fixed", "points": 40}}),
        )
        .await;
        // A rule at the store the operator co-funds half and half.
        let shared = rule(
            &app,
            ADMIN,
            json!({"name": "Shared offer", "partner_id": berlin, "effect": {"kind": "fixed", "points": 60},
                   "funding": {"operator_percent": 50}}),
        )
        .await;

        let sale = app
            .ok(
                "POST",
                "/v1/transactions",
                &till,
                json!({"external_id": "F-1", "member": {"id": anna}, "occurred_at": app.now_text(),
                       "total": {"amount": 10000, "currency": "EUR"}}),
            )
            .await;
        // 100 base + 100 + 40 + 60 = 300 points; the operator funds 100 + 30.
        assert_eq!(sale["points_earned"], 300, "{}: {sale}", app.backend);
        let funding = |rule: &str| -> (i64, i64) {
            let line = sale["breakdown"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["rule"] == rule)
                .unwrap_or_else(|| panic!("{rule} in {sale}"));
            (
                line["funding"]["partner"].as_i64().unwrap(),
                line["funding"]["operator"].as_i64().unwrap(),
            )
        };
        assert_eq!(funding("base"), (100, 0), "{}", app.backend);
        assert_eq!(funding(&campaign), (0, 100), "{}", app.backend);
        assert_eq!(funding(&own), (40, 0), "{}", app.backend);
        assert_eq!(funding(&shared), (30, 30), "{}", app.backend);
        let issued = format!("partner:{berlin}:issued");
        let funded = format!("program:funded:{berlin}");
        assert_eq!(account(&app, &issued).await, -170, "{}", app.backend);
        assert_eq!(account(&app, &funded).await, -130, "{}", app.backend);
        assert_books_balance(&app).await;

        // Half back: 150 points, 65 of them the operator's (130 × ½).
        let txn = sale["id"].as_str().unwrap();
        let r = app
            .ok(
                "POST",
                &format!("/v1/transactions/{txn}/returns"),
                &till,
                json!({"external_id": "F-1-R", "amount": {"amount": 5000, "currency": "EUR"}}),
            )
            .await;
        assert_eq!(r["points_reversed"], 150, "{}: {r}", app.backend);
        assert_eq!(account(&app, &issued).await, -85, "{}", app.backend);
        assert_eq!(account(&app, &funded).await, -65, "{}", app.backend);
        // The rest: each funder is made whole.
        app.ok(
            "POST",
            &format!("/v1/transactions/{txn}/returns"),
            &till,
            json!({"external_id": "F-1-R2", "amount": {"amount": 5000, "currency": "EUR"}}),
        )
        .await;
        assert_eq!(account(&app, &issued).await, 0, "{}", app.backend);
        assert_eq!(account(&app, &funded).await, 0, "{}", app.backend);
        assert_books_balance(&app).await;
        app.entries().await;
    }
}

#[tokio::test]
async fn only_the_operator_gives_the_operator_a_share() {
    for app in apps().await {
        let (berlin, till) = app.partner("Berlin Apparel", "EUR", 0).await;
        let before = app.ok("GET", "/v1/earning-rules", ADMIN, Value::Null).await;
        for share in [50, 100, 1] {
            app.refused(
                "POST",
                "/v1/earning-rules",
                Some(&till),
                Some(json!({"name": "Free money", "effect": {"kind": "fixed", "points": 5},
                            "funding": {"operator_percent": share}})),
                403,
                "forbidden",
            )
            .await;
        }
        // A partner may say it funds its own rule.
        rule(
            &app,
            &till,
            json!({"name": "Own", "effect": {"kind": "fixed", "points": 5}, "funding": {"operator_percent": 0}}),
        )
        .await;
        for bad in [
            json!({"operator_percent": 101}),
            json!({"operator_percent": -1}),
            json!({"operator_percent": "50"}),
            json!({"share": 50}),
        ] {
            let (status, v) = app
                .call(
                    "POST",
                    "/v1/earning-rules",
                    Some(ADMIN),
                    Some(json!({"name": "Bad", "partner_id": berlin, "effect": {"kind": "fixed", "points": 5}, "funding": bad})),
                )
                .await;
            assert_eq!(status, 422, "{}: {bad}: {v}", app.backend);
        }
        let after = app.ok("GET", "/v1/earning-rules", ADMIN, Value::Null).await;
        let count = |v: &Value| v.as_array().map_or(0, Vec::len);
        assert_eq!(count(&after), count(&before) + 1, "{}: {after}", app.backend);
        // The books are the operator's.
        app.refused("GET", "/v1/ledger/balances", Some(&till), None, 403, "forbidden")
            .await;
    }
}

#[tokio::test]
async fn a_partner_pays_for_what_its_events_earn_and_its_own_changes() {
    for app in apps().await {
        let (berlin, till) = app.partner("Berlin Apparel", "EUR", 0).await;
        let anna = app.member("+420602000002").await;
        // `review` is one of the event types every programme starts with.
        rule(
            &app,
            ADMIN,
            json!({"name": "Review bonus", "applies_to": "event", "event_type": "review",
                   "effect": {"kind": "fixed", "points": 200}}),
        )
        .await;
        // Sent by the store: the store pays.
        let sent = app
            .ok(
                "POST",
                "/v1/events",
                &till,
                json!({"id": "E-1", "member": {"id": anna}, "type": "review"}),
            )
            .await;
        assert_eq!(sent["breakdown"][0]["funding"], json!({"partner": 200, "operator": 0}));
        assert_eq!(
            account(&app, &format!("partner:{berlin}:issued")).await,
            -200,
            "{}",
            app.backend
        );
        assert_eq!(
            account(&app, &format!("program:funded:{berlin}")).await,
            0,
            "{}",
            app.backend
        );
        // Sent by the operator, for no partner: the programme pays.
        let own = app
            .ok(
                "POST",
                "/v1/events",
                ADMIN,
                json!({"id": "E-2", "member": {"id": anna}, "type": "review"}),
            )
            .await;
        assert_eq!(own["breakdown"][0]["funding"], json!({"partner": 0, "operator": 200}));
        assert_eq!(account(&app, "program:issued").await, -200, "{}", app.backend);

        // The operator co-funds the store's own rule; the store then changes it.
        let offer = rule(
            &app,
            &till,
            json!({"name": "Store offer", "effect": {"kind": "fixed", "points": 10}}),
        )
        .await;
        let path = format!("/v1/earning-rules/{offer}");
        let spec = |funding: Option<Value>| {
            let mut s = json!({"name": "Store offer", "partner_id": berlin, "effect": {"kind": "fixed", "points": 20}});
            if let Some(f) = funding {
                s["funding"] = f;
            }
            s
        };
        let v = app
            .ok("PUT", &path, ADMIN, spec(Some(json!({"operator_percent": 40}))))
            .await;
        assert_eq!(v["funding"]["operator_percent"], 40, "{}: {v}", app.backend);
        // The store may not keep a share while it changes the rule (or it could raise
        // the points the operator pays for), nor send any share back.
        for share in [40, 90] {
            app.refused(
                "PUT",
                &path,
                Some(&till),
                Some(spec(Some(json!({"operator_percent": share})))),
                403,
                "forbidden",
            )
            .await;
        }
        let v = app.ok("GET", &path, ADMIN, Value::Null).await;
        assert_eq!(
            v["funding"]["operator_percent"], 40,
            "{}: refused, unchanged",
            app.backend
        );
        // Its change is its own: the new version is the store's alone.
        let v = app.ok("PUT", &path, &till, spec(None)).await;
        assert_eq!(v["funding"]["operator_percent"], 0, "{}: {v}", app.backend);
        app.entries().await;
    }
}
