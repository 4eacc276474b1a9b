//! Exchange with other programmes through the real HTTP server, on SQLite and
//! PostgreSQL: an order out confirmed or failed (points back exactly once), units
//! credited in once per reference, the volume per month, each refusal with its own code,
//! racing orders and racing answers, and input that must be refused.
mod common;

use common::{ADMIN, App, apps};
use serde_json::{Value, json};

fn airline(direction: &str) -> Value {
    json!({"name": "SkyMiles", "unit_name": "miles", "direction": direction,
           "rate": {"points": 100, "units": 40}, "min_points": 500, "step_points": 100,
           "daily_limit_points": 3000})
}

async fn partner(app: &App, body: Value) -> String {
    app.ok("POST", "/v1/exchange-partners", ADMIN, body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn order(app: &App, member: &str, xp: &str, points: i64, request: &str) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/v1/members/{member}/exchange-orders"),
        Some(ADMIN),
        Some(
            json!({"request_id": request, "exchange_partner_id": xp, "points": points,
                    "external_member_number": "SK-4471-2290"}),
        ),
    )
    .await
}

async fn verified(app: &App) {
    let v = app.ok("GET", "/v1/ledger/verify", ADMIN, Value::Null).await;
    assert_eq!(v["balanced"], true, "{}: {v}", app.backend);
}

#[tokio::test]
async fn points_go_out_and_come_back_exactly_once_and_units_come_in_once() {
    for app in apps().await {
        let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
        let jana = app.member("+420601123456").await;
        app.earn(&till, &jana, "R-1", 2_000).await;
        let sky = partner(&app, airline("both")).await;

        // Out: 1,000 points for 400 miles, pending until SkyMiles answers.
        let (status, o) = order(&app, &jana, &sky, 1_000, "tap-1").await;
        assert_eq!(status, 201, "{}: {o}", app.backend);
        assert_eq!(
            (o["status"].as_str(), o["units"].as_i64()),
            (Some("pending"), Some(400))
        );
        assert_eq!(o["balance"]["available"], 1_000);
        assert_eq!(app.balance(&jana).await, (1_000, 0));
        let (status, again) = order(&app, &jana, &sky, 1_000, "tap-1").await;
        assert_eq!((status, &again["id"]), (201, &o["id"]), "the same tap places one order");
        let (status, v) = order(&app, &jana, &sky, 600, "tap-1").await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (409, Some("idempotency_conflict"))
        );
        verified(&app).await;
        let pending = app
            .ok(
                "GET",
                &format!("/v1/exchange-orders?status=pending&exchange_partner_id={sky}"),
                ADMIN,
                Value::Null,
            )
            .await;
        assert_eq!(pending["items"].as_array().unwrap().len(), 1, "{pending}");

        // Confirmed: gone for good; the same answer again changes nothing; the other is refused.
        let id = o["id"].as_str().unwrap();
        let c = app
            .ok("POST", &format!("/v1/exchange-orders/{id}/confirm"), ADMIN, Value::Null)
            .await;
        assert_eq!(c["status"], "confirmed");
        let c2 = app
            .ok("POST", &format!("/v1/exchange-orders/{id}/confirm"), ADMIN, Value::Null)
            .await;
        assert_eq!(c2["closed_at"], c["closed_at"]);
        app.refused(
            "POST",
            &format!("/v1/exchange-orders/{id}/fail"),
            Some(ADMIN),
            Some(json!({"reason": "too late"})),
            409,
            "order_closed",
        )
        .await;
        assert_eq!(app.balance(&jana).await, (1_000, 0));

        // Failed: the points come back, once, however often the back end says so.
        let (_, o2) = order(&app, &jana, &sky, 500, "tap-2").await;
        let id2 = o2["id"].as_str().unwrap();
        assert_eq!(app.balance(&jana).await, (500, 0));
        for _ in 0..2 {
            let f = app
                .ok(
                    "POST",
                    &format!("/v1/exchange-orders/{id2}/fail"),
                    ADMIN,
                    json!({"reason": "unknown membership number"}),
                )
                .await;
            assert_eq!(f["status"], "failed");
            assert_eq!(f["failure_reason"], "unknown membership number");
        }
        assert_eq!(app.balance(&jana).await, (1_000, 0));
        verified(&app).await;

        // In: 400 miles are 1,000 points, once per SkyMiles' reference.
        let credit = json!({"reference": "SKY-7781", "member": {"phone": "+420601123456"}, "units": 400});
        let path = format!("/v1/exchange-partners/{sky}/credits");
        let (status, c) = app.call("POST", &path, Some(ADMIN), Some(credit.clone())).await;
        assert_eq!(status, 201, "{c}");
        assert_eq!(
            (c["points"].as_i64(), c["balance"]["available"].as_i64()),
            (Some(1_000), Some(2_000))
        );
        let (status, c2) = app.call("POST", &path, Some(ADMIN), Some(credit)).await;
        assert_eq!((status, &c2["id"]), (201, &c["id"]));
        app.refused(
            "POST",
            &path,
            Some(ADMIN),
            Some(json!({"reference": "SKY-7781", "member": {"id": jana}, "units": 800})),
            409,
            "idempotency_conflict",
        )
        .await;
        assert_eq!(app.balance(&jana).await, (2_000, 0));
        let activity = app
            .ok(
                "GET",
                &format!("/v1/members/{jana}/activity?limit=10"),
                ADMIN,
                Value::Null,
            )
            .await;
        let kinds: Vec<&str> = activity["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["kind"].as_str())
            .collect();
        for kind in ["exchange_in", "exchange_refund", "exchange_confirm", "exchange_out"] {
            assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
        }

        // The month's volume, the exchange's side of settling with SkyMiles.
        let v = app
            .ok(
                "GET",
                &format!("/v1/exchange-partners/{sky}/volume"),
                ADMIN,
                Value::Null,
            )
            .await;
        assert_eq!(
            (
                v["orders_confirmed"].as_i64(),
                v["points_out"].as_i64(),
                v["units_out"].as_i64()
            ),
            (Some(1), Some(1_000), Some(400)),
            "{v}"
        );
        assert_eq!(
            (v["orders_failed"].as_i64(), v["points_refunded"].as_i64()),
            (Some(1), Some(500))
        );
        assert_eq!(
            (v["credits"].as_i64(), v["units_in"].as_i64(), v["points_in"].as_i64()),
            (Some(1), Some(400), Some(1_000))
        );
        verified(&app).await;
    }
}

#[tokio::test]
async fn each_rule_refuses_with_its_own_code_and_writes_nothing() {
    for app in apps().await {
        let (till, _) = app.partner("Spree Mode", "EUR", 0).await;
        let (_, till_key) = (till, app.partner("Lékárna", "EUR", 0).await.1);
        let jana = app.member("+420601123456").await;
        app.earn(&till_key, &jana, "R-1", 2_000).await;
        let sky = partner(&app, airline("out")).await;
        let hotel = partner(
            &app,
            json!({"name": "Grand Points", "unit_name": "points", "direction": "in",
            "rate": {"points": 1, "units": 1}, "min_points": 1, "step_points": 1, "daily_limit_points": 1000}),
        )
        .await;
        let entries = app.entries().await;
        let refused = |status: u16, code: &'static str, (got, v): (u16, Value)| {
            assert_eq!(
                (got, v["error"]["code"].as_str()),
                (status, Some(code)),
                "{}: {v}",
                app.backend
            );
        };
        refused(409, "below_minimum", order(&app, &jana, &sky, 400, "a").await);
        refused(409, "not_a_step", order(&app, &jana, &sky, 550, "b").await);
        refused(422, "insufficient_points", order(&app, &jana, &sky, 2_100, "c").await);
        refused(409, "daily_limit_reached", order(&app, &jana, &sky, 3_100, "d").await);
        refused(409, "exchange_direction", order(&app, &jana, &hotel, 500, "e").await);
        refused(
            404,
            "not_found",
            order(&app, &jana, "xpt_01kabcdefghjkmnpqrstvwxyz0", 500, "f").await,
        );
        refused(
            404,
            "member_not_found",
            order(&app, "mem_01kabcdefghjkmnpqrstvwxyz0", &sky, 500, "g").await,
        );
        let credit = |xp: &str, units: i64| {
            let app = &app;
            let path = format!("/v1/exchange-partners/{xp}/credits");
            let jana = jana.clone();
            async move {
                app.call(
                    "POST",
                    &path,
                    Some(ADMIN),
                    Some(json!({"reference": format!("R{units}"), "member": {"id": jana}, "units": units})),
                )
                .await
            }
        };
        refused(409, "exchange_direction", credit(&sky, 400).await);
        let both = partner(&app, airline("both")).await;
        refused(422, "invalid_field", credit(&both, 3).await);
        refused(409, "daily_limit_reached", credit(&hotel, 1_001).await);
        // Closed: nothing more goes either way.
        let mut closed = airline("both");
        closed["active"] = json!(false);
        app.ok("PUT", &format!("/v1/exchange-partners/{sky}"), ADMIN, closed)
            .await;
        refused(409, "exchange_closed", order(&app, &jana, &sky, 500, "h").await);
        assert_eq!(app.entries().await, entries, "{}: a refusal wrote entries", app.backend);

        // A spec that cannot work is refused when saved.
        for (field, value) in [
            ("step_points", json!(1)),
            ("min_points", json!(550)),
            ("daily_limit_points", json!(100)),
            ("rate", json!({"points": 0, "units": 40})),
            ("rate", json!({"points": 100, "units": 1_000_001})),
            ("direction", json!("sideways")),
            ("name", json!("")),
            ("unit_name", json!("x".repeat(41))),
            ("min_points", json!(-500)),
        ] {
            let mut body = airline("out");
            body[field] = value;
            let (status, v) = app
                .call("POST", "/v1/exchange-partners", Some(ADMIN), Some(body.clone()))
                .await;
            assert_eq!(status, 422, "{}: {body} answered {v}", app.backend);
        }
        // A day's points worth more than 10^12 miles: refused, so a month's sums stay bounded.
        let mut vast = airline("out");
        vast["rate"] = json!({"points": 1, "units": 1_000_000});
        vast["daily_limit_points"] = json!(10_000_000);
        let (status, v) = app.call("POST", "/v1/exchange-partners", Some(ADMIN), Some(vast)).await;
        assert_eq!(status, 422, "{v}");
        // Only the operator: a partner's till is forbidden everywhere here.
        app.refused("GET", "/v1/exchange-partners", Some(&till_key), None, 403, "forbidden")
            .await;
        app.refused(
            "POST",
            "/v1/exchange-partners",
            Some(&till_key),
            Some(airline("out")),
            403,
            "forbidden",
        )
        .await;
        app.refused("GET", "/v1/exchange-orders", Some(&till_key), None, 403, "forbidden")
            .await;
        let (status, v) = order(&app, &jana, &sky, 500, "i").await;
        assert_eq!(status, 409, "{v}");
        app.refused(
            "GET",
            &format!("/v1/exchange-partners/{sky}/volume?month=2026-13"),
            Some(ADMIN),
            None,
            422,
            "invalid_query",
        )
        .await;
        app.refused(
            "GET",
            "/v1/exchange-orders?cursor=no-pe",
            Some(ADMIN),
            None,
            422,
            "invalid_cursor",
        )
        .await;
        for month in ["2026-1", "+2026-01", "26-01", "2026-01-01", "2026-00"] {
            app.refused(
                "GET",
                &format!("/v1/exchange-partners/{sky}/volume?month={month}"),
                Some(ADMIN),
                None,
                422,
                "invalid_query",
            )
            .await;
        }
        for month in ["9999-12", "0000-01"] {
            let v = app
                .ok(
                    "GET",
                    &format!("/v1/exchange-partners/{sky}/volume?month={month}"),
                    ADMIN,
                    Value::Null,
                )
                .await;
            assert_eq!(
                (v["month"].as_str(), v["orders_confirmed"].as_i64()),
                (Some(month), Some(0)),
                "{v}"
            );
        }
        verified(&app).await;
    }
}

#[tokio::test]
async fn racing_orders_never_overdraw_and_racing_answers_refund_once() {
    for app in apps().await {
        let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
        let jana = app.member("+420601123456").await;
        app.earn(&till, &jana, "R-1", 2_000).await;
        let sky = partner(&app, airline("both")).await;
        // Ten taps of 500 at once: her 2,000 points pay for four.
        let taps: Vec<String> = (0..10).map(|i| format!("tap-{i}")).collect();
        let answers = futures::future::join_all(taps.iter().map(|t| order(&app, &jana, &sky, 500, t))).await;
        let placed: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, v)| v).collect();
        assert_eq!(placed.len(), 4, "{}: {answers:?}", app.backend);
        assert_eq!(app.balance(&jana).await, (0, 0));
        // A confirm and a fail racing for each order: one wins each, points back once.
        let races = placed.iter().flat_map(|o| {
            let id = o["id"].as_str().unwrap().to_string();
            let app = &app;
            [
                Box::pin(async move {
                    app.call("POST", &format!("/v1/exchange-orders/{id}/confirm"), Some(ADMIN), None)
                        .await
                }) as std::pin::Pin<Box<dyn std::future::Future<Output = (u16, Value)>>>,
                Box::pin({
                    let id = o["id"].as_str().unwrap().to_string();
                    async move {
                        app.call(
                            "POST",
                            &format!("/v1/exchange-orders/{id}/fail"),
                            Some(ADMIN),
                            Some(json!({"reason": "timeout"})),
                        )
                        .await
                    }
                }),
            ]
        });
        let answers = futures::future::join_all(races).await;
        let failed = answers
            .iter()
            .filter(|(s, v)| *s == 200 && v["status"] == "failed")
            .count();
        let confirmed = answers
            .iter()
            .filter(|(s, v)| *s == 200 && v["status"] == "confirmed")
            .count();
        let closed = answers
            .iter()
            .filter(|(s, v)| *s == 409 && v["error"]["code"] == "order_closed")
            .count();
        assert_eq!((failed + confirmed, closed), (4, 4), "{}: {answers:?}", app.backend);
        assert_eq!(app.balance(&jana).await.0, 500 * failed as i64);
        verified(&app).await;
    }
}
