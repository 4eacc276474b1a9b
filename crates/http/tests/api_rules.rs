//! Earning rules through the real HTTP server, on SQLite and PostgreSQL: each example of
//! the rules issue with its points worked out by hand, rule checking, versioning, the
//! test endpoint, engagement events, and returns giving caps back.
mod common;

use common::{ADMIN, App, apps};
use serde_json::{Value, json};

/// Tills of the three demo-like partners: (id, key).
struct Coalition {
    prague: (String, String),
    hotel: (String, String),
    berlin: (String, String),
}

async fn partner(app: &App, name: &str, industry: &str, country: &str, currency: &str, tz: &str) -> (String, String) {
    let p = app
        .ok(
            "POST",
            "/v1/partners",
            ADMIN,
            json!({"name": name, "industry": industry, "country": country, "currency": currency, "timezone": tz}),
        )
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    let k = app
        .ok("POST", &format!("/v1/partners/{id}/api-keys"), ADMIN, json!({}))
        .await;
    (id, k["key"].as_str().unwrap().to_string())
}

async fn coalition(app: &App) -> Coalition {
    Coalition {
        prague: partner(app, "Lékárna U Anděla", "pharmacy", "CZ", "CZK", "Europe/Prague").await,
        hotel: partner(app, "Harborview Hotel", "hotel", "US", "USD", "America/Los_Angeles").await,
        berlin: partner(app, "Spree Mode", "apparel", "DE", "EUR", "Europe/Berlin").await,
    }
}

async fn rule(app: &App, key: &str, spec: Value) -> String {
    app.ok("POST", "/v1/earning-rules", key, spec).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn line(sku: &str, category: &str, quantity: i64, unit_price: i64, currency: &str) -> Value {
    json!({"sku": sku, "category": category, "quantity": quantity, "unit_price": {"amount": unit_price, "currency": currency}})
}

fn basket(receipt: &str, member: &str, at: &str, currency: &str, lines: Vec<Value>) -> Value {
    let total: i64 = lines
        .iter()
        .map(|l| l["quantity"].as_i64().unwrap() * l["unit_price"]["amount"].as_i64().unwrap())
        .sum();
    json!({"external_id": receipt, "member": {"id": member}, "occurred_at": at,
           "total": {"amount": total, "currency": currency}, "lines": lines})
}

/// Points by rule in a receipt's breakdown: ("base" | rule id, points).
fn breakdown(receipt: &Value) -> Vec<(String, i64)> {
    receipt["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["rule"].as_str().unwrap().to_string(), b["points"].as_i64().unwrap()))
        .collect()
}

fn reason(receipt: &Value, rule: &str) -> String {
    receipt["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["rule"] == rule)
        .map(|b| b["reason"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn setup() -> Vec<(App, Coalition)> {
    let mut out = Vec::new();
    for app in apps().await {
        let c = coalition(&app).await;
        out.push((app, c));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_points_on_cosmetics_on_saturdays_in_prague() {
    for (app, c) in setup().await {
        let (_, till) = &c.prague;
        // Written by the partner itself: the rule is scoped to its sales.
        let r = rule(
            &app,
            till,
            json!({"name": "Double points on cosmetics on Saturdays", "condition": "local.weekday == \"saturday\"",
                   "lines": "line.category == \"cosmetics\"", "effect": {"kind": "multiplier", "factor": "2"}}),
        )
        .await;
        let m = app.member("+420601000001").await;
        // CZK 2,520 (2 × 630 cosmetics + 1,260 thermometer) at 25.2 CZK/EUR = 100 base
        // points; cosmetics are half of it: doubling them adds 50.
        let lines = || {
            vec![
                line("SKU-1", "cosmetics", 2, 63_000, "CZK"),
                line("TH-1", "devices", 1, 126_000, "CZK"),
            ]
        };
        // 23:30 UTC on Friday is 00:30 on Saturday in Prague.
        let sat = app
            .ok(
                "POST",
                "/v1/transactions",
                till,
                basket("P-1", &m, "2026-11-20T23:30:00Z", "CZK", lines()),
            )
            .await;
        assert_eq!(
            breakdown(&sat),
            vec![("base".into(), 100), (r.clone(), 50)],
            "{}",
            app.backend
        );
        assert_eq!(sat["points_earned"], 150);
        assert_eq!(reason(&sat, &r), "Double points on cosmetics on Saturdays: +50");
        assert_eq!(sat["breakdown"][1]["version"], 1);
        // 11:00 on Friday in Prague: base only.
        let fri = app
            .ok(
                "POST",
                "/v1/transactions",
                till,
                basket("P-2", &m, "2026-11-20T10:00:00Z", "CZK", lines()),
            )
            .await;
        assert_eq!(fri["points_earned"], 100, "{}", app.backend);
        // Another partner's sale on a Saturday does not see this partner's rule.
        let (_, berlin) = &c.berlin;
        let other = app
            .ok(
                "POST",
                "/v1/transactions",
                berlin,
                basket(
                    "B-1",
                    &m,
                    "2026-11-20T23:30:00Z",
                    "EUR",
                    vec![line("LIP", "cosmetics", 1, 1000, "EUR")],
                ),
            )
            .await;
        assert_eq!(other["points_earned"], 10);
        // The quote says the same as the sale.
        let q = app
            .ok(
                "POST",
                "/v1/transactions/quote",
                till,
                basket("P-3", &m, "2026-11-20T23:30:00Z", "CZK", lines()),
            )
            .await;
        assert_eq!(breakdown(&q), vec![("base".into(), 100), (r.clone(), 50)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_stay_bonus_at_the_san_diego_hotel() {
    for (app, c) in setup().await {
        let (hotel, till) = &c.hotel;
        let r = rule(
            &app,
            ADMIN,
            json!({"name": "500 bonus points on your first stay", "partner_id": hotel,
                   "condition": "member.first_visit", "effect": {"kind": "fixed", "points": 500}}),
        )
        .await;
        let m = app.member("+420601000002").await;
        // USD 216.00 at 1.08 USD/EUR = 200 base points.
        let stay = |r: &str| {
            basket(
                r,
                &m,
                "2026-11-20T08:00:00Z",
                "USD",
                vec![line("ROOM", "stay", 2, 10_800, "USD")],
            )
        };
        let first = app.ok("POST", "/v1/transactions", till, stay("H-1")).await;
        assert_eq!(
            breakdown(&first),
            vec![("base".into(), 200), (r.clone(), 500)],
            "{}",
            app.backend
        );
        let second = app.ok("POST", "/v1/transactions", till, stay("H-2")).await;
        assert_eq!(breakdown(&second), vec![("base".into(), 200)], "{}", app.backend);
        // A replay of the first stay answers the same, and earns nothing more.
        let again = app.ok("POST", "/v1/transactions", till, stay("H-1")).await;
        assert_eq!(again, first);
        assert_eq!(app.balance(&m).await, (900, 0));
        // Returning the whole first stay takes back base and bonus (700).
        let id = first["id"].as_str().unwrap();
        let ret = app
            .ok(
                "POST",
                &format!("/v1/transactions/{id}/returns"),
                till,
                json!({"external_id": "HR-1", "amount": {"amount": 21_600, "currency": "USD"}}),
            )
            .await;
        assert_eq!(ret["points_reversed"], 700);
        assert_eq!(app.balance(&m).await, (200, 0));
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_stays_earn_the_first_stay_bonus_once() {
    for (app, c) in setup().await {
        let (hotel, till) = &c.hotel;
        let r = rule(
            &app,
            ADMIN,
            json!({"name": "500 bonus points on your first stay", "partner_id": hotel,
                   "condition": "member.first_visit", "effect": {"kind": "fixed", "points": 500}}),
        )
        .await;
        let m = app.member("+420601000011").await;
        // Eight stays of one member at once: each is evaluated as a first visit, but only
        // the one written first keeps that; the others are evaluated again.
        let mut stays = Vec::new();
        for i in 0..8 {
            let body = basket(
                &format!("HS-{i}"),
                &m,
                "2026-11-20T08:00:00Z",
                "USD",
                vec![line("ROOM", "stay", 1, 10_800, "USD")],
            );
            let (http, base, key) = (app.http.clone(), app.base.clone(), till.clone());
            stays.push(tokio::spawn(async move {
                let res = http
                    .post(format!("{base}/v1/transactions"))
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }));
        }
        let mut bonuses = 0;
        for s in stays {
            let (status, receipt) = s.await.unwrap();
            assert_eq!(status, 201, "{}: {receipt}", app.backend);
            bonuses += breakdown(&receipt).iter().filter(|(rule, _)| *rule == r).count();
        }
        assert_eq!(bonuses, 1, "{}", app.backend);
        // 8 × 100 base + 500.
        assert_eq!(app.balance(&m).await, (1300, 0));
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triple_points_for_gold_at_apparel_with_a_monthly_cap_and_a_budget() {
    for (app, c) in setup().await {
        let (_, till) = &c.berlin;
        let r = rule(
            &app,
            ADMIN,
            json!({"name": "Triple points for Gold members in the Berlin autumn sale",
                   "condition": "member.tier == \"gold\" && partner.industry == \"apparel\"",
                   "valid_from": "2026-11-01T00:00:00+01:00", "valid_until": "2026-12-01T00:00:00+01:00",
                   "effect": {"kind": "multiplier", "factor": "3"},
                   "caps": [{"period": "month", "points": 2000}], "budget": 1000000}),
        )
        .await;
        let gold = app.member("+420601000003").await;
        let plain = app.member("+420601000004").await;
        let profile = app
            .ok(
                "PATCH",
                &format!("/v1/members/{gold}"),
                ADMIN,
                json!({"tier": "gold", "segments": ["fashion"]}),
            )
            .await;
        assert_eq!(profile["tier"], "gold");
        let coat = |r: &str, m: &str, eur: i64| {
            basket(
                r,
                m,
                "2026-11-20T08:00:00Z",
                "EUR",
                vec![line("COAT", "outerwear", 1, eur * 100, "EUR")],
            )
        };
        // EUR 400: 400 base, triple adds 800.
        let first = app.ok("POST", "/v1/transactions", till, coat("S-1", &gold, 400)).await;
        assert_eq!(
            breakdown(&first),
            vec![("base".into(), 400), (r.clone(), 800)],
            "{}",
            app.backend
        );
        // EUR 700: triple would add 1,400, but only 1,200 of the 2,000 monthly cap is left.
        let second = app.ok("POST", "/v1/transactions", till, coat("S-2", &gold, 700)).await;
        assert_eq!(
            breakdown(&second),
            vec![("base".into(), 700), (r.clone(), 1200)],
            "{}",
            app.backend
        );
        assert!(
            reason(&second, &r).contains("limit reached: 2000 points per member per month"),
            "{}",
            reason(&second, &r)
        );
        // Cap used up: base only.
        let third = app.ok("POST", "/v1/transactions", till, coat("S-3", &gold, 100)).await;
        assert_eq!(breakdown(&third), vec![("base".into(), 100)]);
        // Not gold: base only.
        let other = app.ok("POST", "/v1/transactions", till, coat("S-4", &plain, 400)).await;
        assert_eq!(breakdown(&other), vec![("base".into(), 400)]);
        // Returning half of the first sale takes back 600 (half of 1,200) and gives the
        // cap back the 400 rule points it reverses.
        let id = first["id"].as_str().unwrap();
        let ret = app
            .ok(
                "POST",
                &format!("/v1/transactions/{id}/returns"),
                till,
                json!({"external_id": "SR-1", "amount": {"amount": 20_000, "currency": "EUR"}}),
            )
            .await;
        assert_eq!(ret["points_reversed"], 600);
        let fourth = app.ok("POST", "/v1/transactions", till, coat("S-5", &gold, 300)).await;
        assert_eq!(
            breakdown(&fourth),
            vec![("base".into(), 300), (r.clone(), 400)],
            "{}",
            app.backend
        );
        // December is outside the campaign.
        app.advance(11);
        let dec = app
            .ok(
                "POST",
                "/v1/transactions",
                till,
                basket(
                    "S-6",
                    &gold,
                    "2026-12-01T10:00:00Z",
                    "EUR",
                    vec![line("COAT", "outerwear", 1, 10_000, "EUR")],
                ),
            )
            .await;
        assert_eq!(breakdown(&dec), vec![("base".into(), 100)]);
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_of_points_already_spent_does_not_renew_the_cap() {
    for (app, c) in setup().await {
        let (_, berlin) = &c.berlin;
        let (_, prague) = &c.prague;
        let r = rule(
            &app,
            ADMIN,
            json!({"name": "Triple points", "effect": {"kind": "multiplier", "factor": "3"},
                   "caps": [{"period": "month", "points": 2000}]}),
        )
        .await;
        let m = app.member("+420601000010").await;
        let coat = |id: &str, eur: i64| {
            basket(
                id,
                &m,
                "2026-11-20T08:00:00Z",
                "EUR",
                vec![line("COAT", "outerwear", 1, eur * 100, "EUR")],
            )
        };
        // EUR 1,000: 1,000 base + 2,000 (the whole monthly cap).
        let sale = app.ok("POST", "/v1/transactions", berlin, coat("C-1", 1000)).await;
        assert_eq!(
            breakdown(&sale),
            vec![("base".into(), 1000), (r.clone(), 2000)],
            "{}",
            app.backend
        );
        // She spends the 3,000 points in Prague (EUR 30 of a EUR 40 bill) and earns 10
        // there (the rule, programme-wide, triples those to 30).
        let spend = json!({"external_id": "P-1", "member": {"id": m}, "occurred_at": "2026-11-20T08:00:00Z",
                           "total": {"amount": 100_800, "currency": "CZK"}, "redeem_points": 3000});
        let paid = app.ok("POST", "/v1/transactions", prague, spend).await;
        assert_eq!(paid["points_earned"], 10, "{}: {paid}", app.backend);
        // Returning the coat takes back 3,000: 10 she still has, 2,990 already spent. The
        // cap gets back only the share she still had: 2,000 × 10 / 3,000 = 6.
        let id = sale["id"].as_str().unwrap();
        let ret = app
            .ok(
                "POST",
                &format!("/v1/transactions/{id}/returns"),
                berlin,
                json!({"external_id": "CR-1", "amount": {"amount": 100_000, "currency": "EUR"}}),
            )
            .await;
        assert_eq!(
            (ret["points_reversed"].as_i64(), ret["points_unrecovered"].as_i64()),
            (Some(10), Some(2990))
        );
        let next = app.ok("POST", "/v1/transactions", berlin, coat("C-2", 100)).await;
        assert_eq!(
            breakdown(&next),
            vec![("base".into(), 100), (r.clone(), 6)],
            "{}",
            app.backend
        );
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_is_never_overspent_by_concurrent_sales() {
    for (app, c) in setup().await {
        let (_, till) = &c.berlin;
        let r = rule(
            &app,
            ADMIN,
            json!({"name": "First 1,000 bonus points", "effect": {"kind": "fixed", "points": 70}, "budget": 1000}),
        )
        .await;
        let mut members = Vec::new();
        for i in 0..8 {
            members.push(app.member(&format!("+42060100010{i}")).await);
        }
        let mut sales = Vec::new();
        for (i, m) in members.iter().enumerate() {
            for j in 0..4 {
                let body = basket(
                    &format!("BU-{i}-{j}"),
                    m,
                    "2026-11-20T08:00:00Z",
                    "EUR",
                    vec![line("T", "t", 1, 1000, "EUR")],
                );
                let (http, base, key) = (app.http.clone(), app.base.clone(), till.clone());
                sales.push(tokio::spawn(async move {
                    let res = http
                        .post(format!("{base}/v1/transactions"))
                        .bearer_auth(key)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status().as_u16(), 201);
                    res.json::<Value>().await.unwrap()
                }));
            }
        }
        let mut bonus = 0;
        for s in sales {
            let receipt = s.await.unwrap();
            bonus += breakdown(&receipt)
                .iter()
                .filter(|(rule, _)| *rule == r)
                .map(|(_, p)| p)
                .sum::<i64>();
        }
        // 32 sales × 70 would be 2,240; the budget gives exactly 1,000 (14 × 70 + 20).
        assert_eq!(bonus, 1000, "{}", app.backend);
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_unit_bonus_with_a_basket_limit_and_exclusions_first() {
    for (app, c) in setup().await {
        let (_, till) = &c.prague;
        let sku = rule(
            &app,
            till,
            json!({"name": "50 points per SKU-123", "lines": "line.sku == \"SKU-123\"",
                   "effect": {"kind": "per_unit", "points": 50, "max_units": 3}}),
        )
        .await;
        let excl = rule(
            &app,
            ADMIN,
            json!({"name": "No points on tobacco, gift cards and deposits",
                   "lines": "line.category in [\"tobacco\", \"gift_card\", \"deposit\"]", "effect": {"kind": "exclude"}}),
        )
        .await;
        let m = app.member("+420601000005").await;
        // 5 × SKU-123 at CZK 100.80 = CZK 504 = 20 base points; 5 units, 3 count: +150.
        let five = app
            .ok(
                "POST",
                "/v1/transactions",
                till,
                basket(
                    "U-1",
                    &m,
                    "2026-11-20T08:00:00Z",
                    "CZK",
                    vec![line("SKU-123", "vitamins", 5, 10_080, "CZK")],
                ),
            )
            .await;
        assert_eq!(
            breakdown(&five),
            vec![("base".into(), 20), (sku.clone(), 150)],
            "{}",
            app.backend
        );
        // CZK 5,040: cosmetics 2,520, cigarettes 2 × 1,008, a deposit 504 → only 2,520
        // earns: 100 points. A SKU-123 sold as a gift card earns nothing either.
        let mixed = app
            .ok(
                "POST",
                "/v1/transactions",
                till,
                basket(
                    "U-2",
                    &m,
                    "2026-11-20T08:00:00Z",
                    "CZK",
                    vec![
                        line("SKU-1", "cosmetics", 1, 252_000, "CZK"),
                        line("CIG", "tobacco", 2, 100_800, "CZK"),
                        line("BOTTLE", "deposit", 1, 50_400, "CZK"),
                        line("SKU-123", "gift_card", 2, 10_000, "CZK"),
                    ],
                ),
            )
            .await;
        assert_eq!(breakdown(&mixed), vec![("base".into(), 100)], "{}", app.backend);
        assert!(
            reason(&mixed, "base").contains("excluded lines (CZK 2720.00) earn nothing"),
            "{}",
            reason(&mixed, "base")
        );
        // The exclusion is the operator's: a partner cannot change it.
        let (status, v) = app
            .call(
                "PUT",
                &format!("/v1/earning-rules/{excl}"),
                Some(till),
                Some(json!({"name": "x", "effect": {"kind": "exclude"}})),
            )
            .await;
        assert_eq!(status, 403, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engagement_events_earn_through_rules_once_per_event_id() {
    for (app, c) in setup().await {
        for (t, p, name) in [
            ("survey_answered", 100, "100 points for answering a survey"),
            ("review", 200, "200 points for a product review"),
            ("referral_shared", 30, "30 points for sharing your referral link"),
        ] {
            rule(
                &app,
                ADMIN,
                json!({"name": name, "applies_to": "event", "event_type": t, "effect": {"kind": "fixed", "points": p}}),
            )
            .await;
        }
        let m = app.member("+420601000006").await;
        let (prague, till) = &c.prague;
        let survey = app
            .ok(
                "POST",
                "/v1/events",
                ADMIN,
                json!({"id": "E-1", "member": {"id": m}, "type": "survey_answered", "attributes": {"score": 9}}),
            )
            .await;
        assert_eq!(survey["points_earned"], 100, "{}", app.backend);
        assert_eq!(
            survey["breakdown"][0]["reason"],
            "100 points for answering a survey: +100"
        );
        let review = app.ok("POST", "/v1/events", till, json!({"id": "E-2", "member": {"phone": "601 000 006"}, "type": "review", "attributes": {"rating": 5, "sku": "SKU-1"}})).await;
        assert_eq!(review["points_earned"], 200);
        assert_eq!(review["partner_id"], prague.as_str());
        let share = app
            .ok(
                "POST",
                "/v1/events",
                ADMIN,
                json!({"id": "E-3", "member": {"id": m}, "type": "referral_shared"}),
            )
            .await;
        assert_eq!(share["points_earned"], 30);
        // The same event id again: the first answer, nothing more earned.
        let again = app
            .ok(
                "POST",
                "/v1/events",
                ADMIN,
                json!({"id": "E-1", "member": {"id": m}, "type": "survey_answered", "attributes": {"score": 9}}),
            )
            .await;
        assert_eq!(again, survey);
        assert_eq!(app.balance(&m).await, (330, 0));
        // A type nobody defined is refused and writes nothing; the operator can add one.
        let before = app.entries().await;
        let (status, v) = app
            .call(
                "POST",
                "/v1/events",
                Some(ADMIN),
                Some(json!({"id": "E-4", "member": {"id": m}, "type": "workshop_attended"})),
            )
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("unknown_event_type")),
            "{v}"
        );
        assert_eq!(app.entries().await, before);
        app.ok(
            "POST",
            "/v1/event-types",
            ADMIN,
            json!({"name": "workshop_attended", "description": "Came to a workshop"}),
        )
        .await;
        rule(&app, ADMIN, json!({"name": "Workshop bonus", "applies_to": "event", "event_type": "workshop_attended",
            "condition": "has(event.attributes.hours) && event.attributes.hours >= 2", "effect": {"kind": "fixed", "points": 40}})).await;
        let w = app
            .ok(
                "POST",
                "/v1/events",
                ADMIN,
                json!({"id": "E-4", "member": {"id": m}, "type": "workshop_attended", "attributes": {"hours": 3}}),
            )
            .await;
        assert_eq!(w["points_earned"], 40);
        let short = app
            .ok(
                "POST",
                "/v1/events",
                ADMIN,
                json!({"id": "E-5", "member": {"id": m}, "type": "workshop_attended", "attributes": {"hours": 1}}),
            )
            .await;
        assert_eq!(short["points_earned"], 0);
        // Events are kept per member; a partner sees its own.
        let all = app
            .ok("GET", &format!("/v1/members/{m}/events"), ADMIN, Value::Null)
            .await;
        assert_eq!(all.as_array().unwrap().len(), 5);
        let own = app
            .ok("GET", &format!("/v1/members/{m}/events"), till, Value::Null)
            .await;
        assert_eq!(own.as_array().unwrap().len(), 1);
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_rules_obey_their_caps() {
    for (app, _) in setup().await {
        let r = rule(
            &app,
            ADMIN,
            json!({"name": "30 points for sharing your referral link", "applies_to": "event",
            "event_type": "referral_shared", "effect": {"kind": "fixed", "points": 30},
            "caps": [{"period": "day", "points": 60}]}),
        )
        .await;
        let m = app.member("+420601000012").await;
        let share =
            |id: &str, at: &str| json!({"id": id, "member": {"id": m}, "type": "referral_shared", "occurred_at": at});
        let mut got = Vec::new();
        for (id, at) in [
            ("S-1", "2026-11-19T10:00:00Z"),
            ("S-2", "2026-11-19T11:00:00Z"),
            ("S-3", "2026-11-19T12:00:00Z"),
            ("S-4", "2026-11-20T08:00:00Z"),
        ] {
            let e = app.ok("POST", "/v1/events", ADMIN, share(id, at)).await;
            got.push(
                breakdown(&e)
                    .iter()
                    .filter(|(rule, _)| *rule == r)
                    .map(|(_, p)| *p)
                    .sum::<i64>(),
            );
        }
        // 60 a day: two shares on the 19th earn, the third does not; the 20th is a new day.
        assert_eq!(got, vec![30, 30, 0, 30], "{}", app.backend);
        assert_eq!(app.balance(&m).await, (90, 0));
        app.entries().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_checked_when_saved_and_versioned_when_changed() {
    for (app, c) in setup().await {
        let (_, till) = &c.prague;
        let bad =
            |condition: &str| json!({"name": "x", "condition": condition, "effect": {"kind": "fixed", "points": 1}});
        for (condition, code, says) in [
            (
                "member.tierr == \"gold\"",
                "invalid_rule",
                "line 1, column 7: `member` has no field `tierr`",
            ),
            (
                "basket.total > \"100\"",
                "invalid_rule",
                "cannot order a double against a string",
            ),
            ("local.weekday ==", "invalid_rule", "condition: line 1"),
            (
                "lines.all(a, lines.all(b, a.sku != b.sku))",
                "rule_too_costly",
                "too costly",
            ),
        ] {
            let (status, v) = app
                .call("POST", "/v1/earning-rules", Some(till), Some(bad(condition)))
                .await;
            assert_eq!(
                (status, v["error"]["code"].as_str()),
                (422, Some(code)),
                "{condition}: {v}"
            );
            assert!(v["error"]["message"].as_str().unwrap().contains(says), "{v}");
        }
        let (status, _) = app
            .call(
                "POST",
                "/v1/earning-rules",
                Some(till),
                Some(json!({"name": "x", "partner_id": c.berlin.0, "effect": {"kind": "fixed", "points": 1}})),
            )
            .await;
        assert_eq!(status, 403);
        let (status, v) = app
            .call(
                "POST",
                "/v1/earning-rules",
                Some(till),
                Some(json!({"name": "x", "effect": {"kind": "teleport"}})),
            )
            .await;
        assert_eq!(status, 422, "{v}");
        assert_eq!(
            app.ok("GET", "/v1/earning-rules", ADMIN, Value::Null)
                .await
                .as_array()
                .unwrap()
                .len(),
            0
        );

        // Version 1 gives 10, version 2 gives 20; the first sale keeps version 1.
        let r = rule(
            &app,
            till,
            json!({"name": "Welcome bonus", "effect": {"kind": "fixed", "points": 10}}),
        )
        .await;
        let m = app.member("+420601000007").await;
        let sale = |id: &str| {
            basket(
                id,
                &m,
                "2026-11-20T08:00:00Z",
                "CZK",
                vec![line("A", "a", 1, 25_200, "CZK")],
            )
        };
        let first = app.ok("POST", "/v1/transactions", till, sale("V-1")).await;
        let v2 = app
            .ok(
                "PUT",
                &format!("/v1/earning-rules/{r}"),
                till,
                json!({"name": "Welcome bonus", "effect": {"kind": "fixed", "points": 20}}),
            )
            .await;
        assert_eq!(v2["version"], 2);
        let second = app.ok("POST", "/v1/transactions", till, sale("V-2")).await;
        assert_eq!(
            (
                second["breakdown"][1]["points"].as_i64(),
                second["breakdown"][1]["version"].as_i64()
            ),
            (Some(20), Some(2))
        );
        let stored = app
            .ok(
                "GET",
                &format!("/v1/transactions/{}", first["id"].as_str().unwrap()),
                till,
                Value::Null,
            )
            .await;
        assert_eq!(
            (
                stored["breakdown"][1]["points"].as_i64(),
                stored["breakdown"][1]["version"].as_i64()
            ),
            (Some(10), Some(1))
        );
        let detail = app
            .ok("GET", &format!("/v1/earning-rules/{r}"), till, Value::Null)
            .await;
        assert_eq!(detail["versions"].as_array().unwrap().len(), 2);
        // Another partner neither sees nor changes it.
        let (_, berlin) = &c.berlin;
        let (status, _) = app
            .call("GET", &format!("/v1/earning-rules/{r}"), Some(berlin), None)
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            app.ok("GET", "/v1/earning-rules", berlin, Value::Null)
                .await
                .as_array()
                .unwrap()
                .len(),
            0
        );
        // Paused: gives nothing.
        app.ok(
            "PUT",
            &format!("/v1/earning-rules/{r}"),
            till,
            json!({"name": "Welcome bonus", "effect": {"kind": "fixed", "points": 20}, "active": false}),
        )
        .await;
        let third = app.ok("POST", "/v1/transactions", till, sale("V-3")).await;
        assert_eq!(breakdown(&third), vec![("base".into(), 10)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trying_a_rule_on_a_sample_basket_writes_nothing() {
    for (app, c) in setup().await {
        let (prague, till) = &c.prague;
        let before = app.entries().await;
        let body = json!({
            "rule": {"name": "Gold Saturdays", "condition": "member.tier == \"gold\" && local.weekday == \"saturday\"",
                     "effect": {"kind": "multiplier", "factor": "2"}},
            "basket": basket("T-1", "mem_sample", "2026-11-20T23:30:00Z", "CZK", vec![line("SKU-1", "cosmetics", 2, 126_000, "CZK")]),
            "member": {"tier": "gold"}
        });
        let tried = app.ok("POST", "/v1/earning-rules/test", till, body.clone()).await;
        // CZK 2,520 → 100 base; doubled: +100.
        assert_eq!(tried["points_earned"], 200, "{}: {tried}", app.backend);
        // A partner may name itself, not another partner nor a malformed id.
        let mut own = body.clone();
        own["partner_id"] = json!(prague);
        assert_eq!(app.ok("POST", "/v1/earning-rules/test", till, own).await, tried);
        let mut other = body.clone();
        other["partner_id"] = json!(c.berlin.0);
        app.refused(
            "POST",
            "/v1/earning-rules/test",
            Some(till),
            Some(other),
            403,
            "forbidden",
        )
        .await;
        let mut malformed = body.clone();
        malformed["partner_id"] = json!("9y_ysJS*");
        let (status, _) = app
            .call("POST", "/v1/earning-rules/test", Some(till), Some(malformed))
            .await;
        assert_eq!(status, 404, "{}", app.backend);
        assert_eq!(tried["breakdown"][1]["reason"], "Gold Saturdays: +100");
        // The operator names the partner; a silver member gets base only.
        let mut op = body.clone();
        op["partner_id"] = json!(prague);
        op["member"] = json!({"tier": "silver"});
        assert_eq!(
            app.ok("POST", "/v1/earning-rules/test", ADMIN, op).await["points_earned"],
            100
        );
        // A broken rule is refused the same way as when saving.
        let mut broken = body.clone();
        broken["rule"]["condition"] = json!("member.tier = \"gold\"");
        let (status, v) = app
            .call("POST", "/v1/earning-rules/test", Some(till), Some(broken))
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("invalid_rule")),
            "{v}"
        );
        assert_eq!(app.entries().await, before);
        assert_eq!(
            app.ok("GET", "/v1/earning-rules", ADMIN, Value::Null)
                .await
                .as_array()
                .unwrap()
                .len(),
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_costly_rule_is_refused_and_the_costliest_admitted_one_leaves_the_till_working() {
    for (app, c) in setup().await {
        let (_, till) = &c.prague;
        // A loop in a line filter runs once per line: 500 × 500 steps, refused.
        let (status, v) = app
            .call("POST", "/v1/earning-rules", Some(till), Some(json!({"name": "x", "lines": "lines.exists(l, l.sku == line.sku)", "effect": {"kind": "fixed", "points": 1}})))
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("rule_too_costly")),
            "{v}"
        );
        // The costliest kind the checker admits: one pass over the lines against a long list.
        let skus: Vec<String> = (0..40).map(|i| format!("SKU-{i}")).collect();
        rule(
            &app,
            till,
            json!({"name": "Any of 40 SKUs", "condition": format!("lines.exists(l, l.sku in {skus:?})"),
            "lines": "line.amount * 2.0 > 1.0", "effect": {"kind": "multiplier", "factor": "1.5"}}),
        )
        .await;
        let m = app.member("+420601000009").await;
        // A line whose amount would overflow is refused, and nothing is written.
        let huge = json!({"external_id": "HUGE-1", "member": {"id": m}, "total": {"amount": 100_000, "currency": "CZK"},
                          "lines": [line("X", "misc", 1_000_000, 100_000_000_000_000, "CZK")]});
        let (status, v) = app.call("POST", "/v1/transactions", Some(till), Some(huge)).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("invalid_field")),
            "{v}"
        );
        // The largest basket a till may send: 500 lines.
        let big: Vec<Value> = (0..500)
            .map(|i| line(&format!("X-{i}"), "misc", 1, 2_520, "CZK"))
            .collect();
        let (status, v) = app
            .call(
                "POST",
                "/v1/transactions",
                Some(till),
                Some(basket("BIG-1", &m, "2026-11-20T08:00:00Z", "CZK", big)),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        // CZK 12,600 = 500 base points; no SKU of the list: no bonus.
        assert_eq!(v["points_earned"], 500);
        // Meanwhile other tills keep answering.
        let (_, berlin) = &c.berlin;
        let mut sales = Vec::new();
        for i in 0..8 {
            let body = basket(
                &format!("N-{i}"),
                &m,
                "2026-11-20T08:00:00Z",
                "EUR",
                vec![line("A", "a", 1, 1000, "EUR")],
            );
            let (http, base, key) = (app.http.clone(), app.base.clone(), berlin.clone());
            sales.push(tokio::spawn(async move {
                http.post(format!("{base}/v1/transactions"))
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        for s in sales {
            assert_eq!(s.await.unwrap(), 201);
        }
        app.entries().await;
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    fn rule_text() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "member",
            "basket",
            "lines",
            "line",
            "local",
            "event",
            ".",
            "tier",
            "total",
            "sku",
            "attributes",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "==",
            "!=",
            "<",
            ">=",
            "&&",
            "||",
            "!",
            "-",
            "+",
            "*",
            "/",
            "%",
            "?",
            ":",
            ",",
            "1",
            "0",
            "2.5",
            "\"x\"",
            "true",
            "null",
            "in",
            "exists",
            "all",
            "map",
            "filter",
            "has",
            "size",
            "l",
            "'",
            "\\",
            "0x",
            "9223372036854775807",
            "1e308",
            "\u{0}",
            "é",
            " ",
        ]);
        prop_oneof![prop::collection::vec(atoms, 0..30).prop_map(|v| v.concat()), ".{0,60}"]
    }

    /// Whatever rule text arrives over HTTP, the answer is 200 or 422, never a 5xx.
    #[test]
    fn rule_text_from_the_api_never_breaks_the_server() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, till) = rt.block_on(async {
            let app = common::spawn_app(tally_store::testing::TestDb::sqlite().await).await;
            app.ok("PUT", "/v1/fx-rates", ADMIN, json!({"rates": {"CZK": "25.2"}}))
                .await;
            let (_, till) = partner(&app, "Fuzz", "pharmacy", "CZ", "CZK", "Europe/Prague").await;
            (app, till)
        });
        let mut runner = TestRunner::new(Config::with_cases(300));
        runner
            .run(&(rule_text(), prop::option::of(rule_text())), |(condition, filter)| {
                let mut spec =
                    json!({"name": "fuzz", "condition": condition, "effect": {"kind": "fixed", "points": 1}});
                if let Some(f) = filter {
                    spec["lines"] = json!(f);
                }
                let body = json!({"rule": spec, "basket": basket("F-1", "mem_x", "2026-11-20T08:00:00Z", "CZK",
                    vec![line("SKU-1", "cosmetics", 2, 10_000, "CZK")])});
                let (status, v) = rt.block_on(app.call("POST", "/v1/earning-rules/test", Some(&till), Some(body)));
                prop_assert!(status == 200 || status == 422, "{status}: {v}");
                Ok(())
            })
            .unwrap();
        // The app and its database go here, before the runtime.
        drop(app);
    }
}
