//! Challenges through the real HTTP server, on SQLite and PostgreSQL: a member joins a
//! cross-partner challenge, her purchases at partners of different industries count
//! (one returned in full before completion no longer does), the step that reaches the
//! target completes it once with a badge and the points of a rule on
//! `challenge_completed`; automatic enrolment by a condition over the member, counting
//! events; racing sales that complete it; and what is refused.
mod common;

use common::{ADMIN, App, apps};
use serde_json::{Value, json};

/// A partner of `industry` and its till key.
async fn partner(app: &App, name: &str, industry: &str) -> String {
    let p = app
        .ok(
            "POST",
            "/v1/partners",
            ADMIN,
            json!({"name": name, "industry": industry, "country": "CZ",
                 "currency": "EUR", "timezone": "Europe/Prague", "pending_days": 0}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    app.ok("POST", &format!("/v1/partners/{id}/api-keys"), ADMIN, json!({}))
        .await["key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn at(app: &App, days: i64) -> String {
    (app.now_text().parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_hours(24 * days)).to_string()
}

/// "Explorer": purchases of EUR 10 or more at partners of three industries within 30
/// days, joined; 400 points on completion through a rule.
async fn explorer(app: &App) -> String {
    app.ok(
        "POST",
        "/v1/earning-rules",
        ADMIN,
        json!({"name": "400 points for the Explorer challenge", "applies_to": "event",
               "event_type": "challenge_completed", "condition": "event.attributes.challenge == \"explorer\"",
               "effect": {"kind": "fixed", "points": 400}}),
    )
    .await;
    app.ok(
        "POST",
        "/v1/challenges",
        ADMIN,
        json!({"code": "explorer", "name": {"en": "Three worlds", "cs": "Tři světy"},
               "description": {"en": "Shop at partners of three industries this month."},
               "starts_at": at(app, -1), "ends_at": at(app, 30), "counts": "purchases",
               "condition": "basket.total_program >= 10.0", "measure": "industries", "target": 3,
               "enrolment": "join", "badge": {"code": "explorer", "name": {"en": "Explorer", "cs": "Objevitelka"}}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn standing(app: &App, member: &str, challenge: &str) -> Value {
    let all = app
        .ok(
            "GET",
            &format!("/v1/members/{member}/challenges?lang=cs"),
            ADMIN,
            Value::Null,
        )
        .await;
    all.as_array()
        .unwrap()
        .iter()
        .find(|c| c["challenge_id"] == challenge)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_cross_partner_challenge_completes_once_with_a_badge_and_its_points() {
    for app in apps().await {
        let hotel = partner(&app, "Grand Harbor", "hotel").await;
        let apparel = partner(&app, "Spree Mode", "apparel").await;
        let drugstore = partner(&app, "Lékárna", "drugstore").await;
        let challenge = explorer(&app).await;
        let anna = app.member("+420601000051").await;

        // Before she joins, nothing counts.
        app.sale(&hotel, &anna, "h-0", 50).await;
        let s = standing(&app, &anna, &challenge).await;
        assert_eq!(
            (s["status"].as_str(), s["progress"].as_i64()),
            (Some("open"), Some(0)),
            "{s}"
        );
        assert_eq!(s["name"], "Tři světy");
        let joined = app
            .ok(
                "POST",
                &format!("/v1/members/{anna}/challenges/{challenge}/join"),
                ADMIN,
                json!({}),
            )
            .await;
        assert_eq!(joined["status"], "joined");

        // A receipt dated before she joined, posted after, does not count either.
        let before_joining =
            (app.now_text().parse::<jiff::Timestamp>().unwrap() - jiff::SignedDuration::from_hours(2)).to_string();
        app.ok(
            "POST",
            "/v1/transactions",
            &apparel,
            json!({"external_id": "a-late", "member": {"id": anna}, "occurred_at": before_joining,
                   "total": {"amount": 5000, "currency": "EUR"}}),
        )
        .await;
        assert_eq!(standing(&app, &anna, &challenge).await["progress"], 0);
        app.sale(&hotel, &anna, "h-1", 50).await;
        app.sale(&hotel, &anna, "h-2", 60).await;
        app.sale(&drugstore, &anna, "d-small", 5).await;
        let s = standing(&app, &anna, &challenge).await;
        assert_eq!(s["progress"], 1, "{}: {s}", app.backend);
        assert_eq!(s["done"], json!(["hotel"]));

        // A counted purchase returned in full before completion no longer counts.
        let shirt = app.sale(&apparel, &anna, "a-1", 20).await;
        assert_eq!(standing(&app, &anna, &challenge).await["progress"], 2);
        app.ok(
            "POST",
            &format!("/v1/transactions/{shirt}/returns"),
            &apparel,
            json!({"external_id": "a-1-r", "amount": {"amount": 2000, "currency": "EUR"}}),
        )
        .await;
        let s = standing(&app, &anna, &challenge).await;
        assert_eq!(
            (s["progress"].as_i64(), s["done"].clone()),
            (Some(1), json!(["hotel"])),
            "{s}"
        );

        // Apparel again and the drugstore: three industries, completed once.
        app.sale(&apparel, &anna, "a-2", 25).await;
        let (before, _) = app.balance(&anna).await;
        let last = app.sale(&drugstore, &anna, "d-1", 15).await;
        let (after, _) = app.balance(&anna).await;
        let s = standing(&app, &anna, &challenge).await;
        assert_eq!(s["status"], "completed", "{}: {s}", app.backend);
        assert_eq!(s["progress"], 3);
        assert!(s["completed_at"].is_string());
        let earned = app
            .ok("GET", &format!("/v1/transactions/{last}"), ADMIN, Value::Null)
            .await["points_earned"]
            .as_i64()
            .unwrap();
        assert_eq!(
            after - before,
            earned + 400,
            "the sale's points and the challenge's 400"
        );
        let badges = app
            .ok("GET", &format!("/v1/members/{anna}/badges?lang=cs"), ADMIN, Value::Null)
            .await;
        assert_eq!(badges.as_array().unwrap().len(), 1, "{badges}");
        assert_eq!(badges[0]["code"], "explorer");
        assert_eq!(badges[0]["name"], "Objevitelka");

        // After completion nothing changes it: more sales, a return of a counted one.
        app.sale(&hotel, &anna, "h-3", 40).await;
        app.ok(
            "POST",
            &format!("/v1/transactions/{last}/returns"),
            &drugstore,
            json!({"external_id": "d-1-r", "amount": {"amount": 1500, "currency": "EUR"}}),
        )
        .await;
        let s = standing(&app, &anna, &challenge).await;
        assert_eq!(
            (s["status"].as_str(), s["progress"].as_i64()),
            (Some("completed"), Some(3))
        );
        let (now, _) = app.balance(&anna).await;
        assert!(now >= after - earned, "the 400 stay: {after} → {now}");
        let run = app.ok("POST", "/v1/expiry-runs", ADMIN, json!({})).await;
        assert_eq!(run["challenges_rewarded"], 0, "{run}");
        app.entries().await;
    }
}

#[tokio::test]
async fn automatic_enrolment_counts_events_for_the_members_it_names() {
    for app in apps().await {
        app.ok(
            "POST",
            "/v1/challenges",
            ADMIN,
            json!({"code": "voice", "name": {"en": "Your voice"}, "starts_at": at(&app, -1), "ends_at": at(&app, 30),
                   "counts": "events", "event_type": "survey_answered", "measure": "count", "target": 2,
                   "enrolment": "automatic", "enrol_condition": "\"vip\" in member.segments",
                   "badge": {"code": "voice", "name": {"en": "Heard"}}}),
        )
        .await;
        let (vip, other) = (app.member("+420601000061").await, app.member("+420601000062").await);
        app.ok(
            "PATCH",
            &format!("/v1/members/{vip}"),
            ADMIN,
            json!({"segments": ["vip"]}),
        )
        .await;
        for (m, n) in [(&vip, "a"), (&vip, "b"), (&other, "c"), (&other, "d")] {
            app.ok(
                "POST",
                "/v1/events",
                ADMIN,
                json!({"id": format!("survey-{n}"), "member": {"id": m}, "type": "survey_answered"}),
            )
            .await;
        }
        let c = |m: &str| {
            let m = m.to_string();
            let app = &app;
            async move {
                app.ok("GET", &format!("/v1/members/{m}/challenges"), ADMIN, Value::Null)
                    .await[0]
                    .clone()
            }
        };
        let v = c(&vip).await;
        assert_eq!(
            (v["status"].as_str(), v["progress"].as_i64()),
            (Some("completed"), Some(2)),
            "{}: {v}",
            app.backend
        );
        let o = c(&other).await;
        assert_eq!(
            (o["status"].as_str(), o["progress"].as_i64()),
            (Some("open"), Some(0)),
            "{o}"
        );
        let challenge = v["challenge_id"].as_str().unwrap();
        app.refused(
            "POST",
            &format!("/v1/members/{other}/challenges/{challenge}/join"),
            Some(ADMIN),
            Some(json!({})),
            409,
            "not_eligible",
        )
        .await;
    }
}

#[tokio::test]
async fn racing_sales_complete_a_challenge_once() {
    for app in apps().await {
        let hotel = partner(&app, "Grand Harbor", "hotel").await;
        let apparel = partner(&app, "Spree Mode", "apparel").await;
        let drugstore = partner(&app, "Lékárna", "drugstore").await;
        let challenge = explorer(&app).await;
        let anna = app.member("+420601000071").await;
        app.ok(
            "POST",
            &format!("/v1/members/{anna}/challenges/{challenge}/join"),
            ADMIN,
            json!({}),
        )
        .await;
        app.sale(&hotel, &anna, "h-1", 50).await;
        app.sale(&apparel, &anna, "a-1", 50).await;
        let (before, _) = app.balance(&anna).await;
        let sales = (0..8).map(|i| {
            let (app, drugstore, anna) = (&app, &drugstore, &anna);
            async move { app.sale(drugstore, anna, &format!("race-{i}"), 10).await }
        });
        let ids = futures::future::join_all(sales).await;
        let mut earned = 0;
        for id in &ids {
            earned += app
                .ok("GET", &format!("/v1/transactions/{id}"), ADMIN, Value::Null)
                .await["points_earned"]
                .as_i64()
                .unwrap();
        }
        let (after, _) = app.balance(&anna).await;
        assert_eq!(after - before, earned + 400, "{}: 400 once", app.backend);
        let badges = app
            .ok("GET", &format!("/v1/members/{anna}/badges"), ADMIN, Value::Null)
            .await;
        assert_eq!(badges.as_array().unwrap().len(), 1);
        app.entries().await;
    }
}

#[tokio::test]
async fn bad_challenges_and_joins_are_refused() {
    for app in apps().await {
        let good = json!({"code": "c1", "name": {"en": "One"}, "starts_at": at(&app, -1), "ends_at": at(&app, 2),
                          "counts": "purchases", "measure": "count", "target": 1, "enrolment": "join",
                          "badge": {"code": "one", "name": {"en": "One"}}});
        let with = |k: &str, v: Value| {
            let mut b = good.clone();
            b[k] = v;
            b
        };
        let cases = [
            (with("ends_at", json!(at(&app, -2))), 422, "invalid_field"),
            (with("target", json!(0)), 422, "invalid_field"),
            (with("condition", json!("basket.totl > 1")), 422, "invalid_rule"),
            (with("condition", json!("member.visits > 1")), 422, "invalid_rule"),
            (with("code", json!("Not A Code")), 422, "invalid_field"),
            (with("name", json!({"de": "Nur Deutsch"})), 422, "invalid_field"),
            (with("enrol_condition", json!("true")), 422, "invalid_field"),
            (
                json!({"code": "c2", "name": {"en": "Two"}, "starts_at": at(&app, -1), "ends_at": at(&app, 2),
                       "counts": "events", "event_type": "no_such_type", "measure": "count", "target": 1,
                       "enrolment": "join", "badge": {"code": "two", "name": {"en": "Two"}}}),
                422,
                "unknown_event_type",
            ),
            (with("extra", json!(1)), 422, "invalid_field"),
            (
                with("condition", json!("true || ".repeat(300) + "true")),
                422,
                "invalid_field",
            ),
        ];
        for (body, status, code) in cases {
            app.refused("POST", "/v1/challenges", Some(ADMIN), Some(body.clone()), status, code)
                .await;
        }
        let till = partner(&app, "Spree Mode", "apparel").await;
        app.refused(
            "POST",
            "/v1/challenges",
            Some(&till),
            Some(good.clone()),
            403,
            "forbidden",
        )
        .await;
        let c = app.ok("POST", "/v1/challenges", ADMIN, good.clone()).await;
        app.refused(
            "POST",
            "/v1/challenges",
            Some(ADMIN),
            Some(good.clone()),
            409,
            "challenge_exists",
        )
        .await;
        let id = c["id"].as_str().unwrap();
        // Challenges are the operator's (their conditions may name partners and
        // segments), and so are members' standings in them.
        let listed = app.ok("GET", "/v1/challenges", ADMIN, Value::Null).await;
        assert_eq!(listed.as_array().unwrap().len(), 1);
        app.refused("GET", "/v1/challenges", Some(&till), None, 403, "forbidden")
            .await;
        app.refused(
            "GET",
            &format!("/v1/challenges/{id}"),
            Some(&till),
            None,
            403,
            "forbidden",
        )
        .await;
        let anna = app.member("+420601000081").await;
        app.refused(
            "GET",
            &format!("/v1/members/{anna}/challenges"),
            Some(&till),
            None,
            403,
            "forbidden",
        )
        .await;
        app.refused(
            "POST",
            &format!("/v1/members/{anna}/challenges/chl_nothing/join"),
            Some(ADMIN),
            Some(json!({})),
            404,
            "not_found",
        )
        .await;
        app.refused(
            "POST",
            &format!("/v1/members/mem_nobody/challenges/{id}/join"),
            Some(ADMIN),
            Some(json!({})),
            404,
            "member_not_found",
        )
        .await;
        app.refused(
            "POST",
            "/v1/events",
            Some(&till),
            Some(json!({"id": "forged", "type": "challenge_completed", "member": {"id": anna}})),
            422,
            "reserved_event_type",
        )
        .await;
        app.advance(3);
        app.refused(
            "POST",
            &format!("/v1/members/{anna}/challenges/{id}/join"),
            Some(ADMIN),
            Some(json!({})),
            409,
            "challenge_closed",
        )
        .await;
    }
}
