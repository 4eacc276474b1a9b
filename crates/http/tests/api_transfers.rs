//! Points members send each other, through the real HTTP server on SQLite and
//! PostgreSQL: both sides in the ledger and in each member's list, the operator's
//! policy refusing with its own codes and writing nothing, racing transfers that never
//! overdraw or pass a limit, two members sending to each other at once, and input that
//! must be refused.
mod common;

use common::{ADMIN, App, apps};
use serde_json::{Value, json};

fn policy(per_day: i64, per_month: i64) -> Value {
    json!({"transfers": {"enabled": true, "min_points": 10, "max_per_day": per_day, "max_per_month": per_month,
                         "min_membership_days": 30, "min_purchases": 1}})
}

async fn open_transfers(app: &App, per_day: i64, per_month: i64) {
    let p = app.ok("PATCH", "/v1/program", ADMIN, policy(per_day, per_month)).await;
    assert_eq!(p["transfers"]["max_per_day"], per_day, "{p}");
}

async fn send(app: &App, from: &str, to: Value, points: i64, request: &str) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/v1/members/{from}/transfers"),
        Some(ADMIN),
        Some(json!({"request_id": request, "to": to, "points": points})),
    )
    .await
}

async fn list(app: &App, member: &str) -> Vec<Value> {
    app.ok("GET", &format!("/v1/members/{member}/transfers"), ADMIN, Value::Null)
        .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Two members, each with a purchase; Anna has `points`, and both joined 31 days ago.
async fn two_members(app: &App, points: i64) -> (String, String, String) {
    let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
    let anna = app.member("+420601000001").await;
    let ben = app.member("+420601000002").await;
    app.earn(&till, &anna, "A-1", points).await;
    app.earn(&till, &ben, "B-1", 1).await;
    app.advance(31);
    (till, anna, ben)
}

#[tokio::test]
async fn a_member_sends_points_and_both_sides_show_it() {
    for app in apps().await {
        open_transfers(&app, 1_000, 3_000).await;
        let (_, anna, ben) = two_members(&app, 500).await;
        let body = json!({"request_id": "tap-1", "to": {"phone": "+420 601 000 002"}, "points": 200,
                          "note": "for the concert tickets"});
        let (status, sent) = app
            .call(
                "POST",
                &format!("/v1/members/{anna}/transfers"),
                Some(ADMIN),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 201, "{}: {sent}", app.backend);
        assert_eq!(sent["from_member_id"], anna.as_str());
        assert_eq!(sent["to_member_id"], ben.as_str());
        assert_eq!(sent["note"], "for the concert tickets");
        assert_eq!(sent["balance"]["available"], 300);
        assert_eq!(app.balance(&anna).await, (300, 0));
        assert_eq!(app.balance(&ben).await, (201, 0));

        // The same tap again answers the first answer and sends nothing more.
        let entries = app.entries().await;
        let res = app
            .http
            .post(format!("{}/v1/members/{anna}/transfers", app.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["idempotent-replayed"], "true");
        let again: Value = res.json().await.unwrap();
        assert_eq!(again["id"], sent["id"]);
        assert_eq!(app.entries().await, entries);
        assert_eq!(app.balance(&anna).await, (300, 0));
        // The same id with another body is a conflict.
        let (status, v) = send(&app, &anna, json!({"id": ben}), 201, "tap-1").await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (409, Some("idempotency_conflict"))
        );

        // Each sees it from her side; the history says who with.
        let a = list(&app, &anna).await;
        assert_eq!(a.len(), 1);
        assert_eq!(a[0]["direction"], "sent");
        let b = list(&app, &ben).await;
        assert_eq!(b[0]["direction"], "received");
        assert_eq!(b[0]["id"], sent["id"]);
        let history = app
            .ok("GET", &format!("/v1/members/{ben}/activity"), ADMIN, Value::Null)
            .await;
        let line = history["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["kind"] == "transfer_in")
            .unwrap_or_else(|| panic!("{history}"))
            .clone();
        assert_eq!(line["points"], 200);
        assert!(line["description"].as_str().unwrap().contains(&anna), "{line}");
        // Ledger: both sides balanced, program:transfers back to zero.
        let v = app.ok("GET", "/v1/ledger/verify", ADMIN, Value::Null).await;
        assert_eq!(v["balanced"], true, "{v}");

        // The points keep their date: earned 31 days before the transfer, they expire for
        // Ben 24 months after they were earned, not 24 months after they reached him.
        // Two days past that date (and a month before a date counted from the transfer):
        app.advance(731 - 31 + 2);
        app.ok("POST", "/v1/expiry-runs", ADMIN, json!({})).await;
        assert_eq!(app.balance(&ben).await, (0, 0), "{}", app.backend);
        assert_eq!(app.balance(&anna).await, (0, 0));
        let v = app.ok("GET", "/v1/ledger/verify", ADMIN, Value::Null).await;
        assert_eq!(v["balanced"], true, "{v}");
    }
}

#[tokio::test]
async fn each_rule_of_the_policy_refuses_with_its_own_code_and_writes_nothing() {
    for app in apps().await {
        let idle = app.member("+420601000004").await;
        let (till, anna, ben) = two_members(&app, 800).await;
        let fresh = app.member("+420601000003").await;
        app.earn(&till, &fresh, "N-1", 100).await;
        let entries = app.entries().await;
        let to_ben = json!({"id": ben});
        let refused = |status: u16, code: &'static str, (got, v): (u16, Value)| {
            assert_eq!(
                (got, v["error"]["code"].as_str()),
                (status, Some(code)),
                "{}: {v}",
                app.backend
            );
        };
        // Closed until the operator opens it.
        refused(
            409,
            "transfers_closed",
            send(&app, &anna, to_ben.clone(), 100, "r1").await,
        );
        open_transfers(&app, 300, 500).await;
        refused(
            409,
            "transfer_too_small",
            send(&app, &anna, to_ben.clone(), 9, "r2").await,
        );
        refused(
            422,
            "invalid_field",
            send(&app, &anna, json!({"id": anna}), 100, "r3").await,
        );
        refused(
            404,
            "recipient_not_found",
            send(&app, &anna, json!({"phone": "+420601999999"}), 100, "r4").await,
        );
        refused(
            404,
            "recipient_not_found",
            send(&app, &anna, json!({"id": "ptn_01kabcdefghjkmnpqrstvwxyz0"}), 100, "r4b").await,
        );
        refused(
            404,
            "member_not_found",
            send(&app, "mem_01kabcdefghjkmnpqrstvwxyz0", to_ben.clone(), 100, "r5").await,
        );
        // A member of one day, and one who never bought anything.
        refused(
            409,
            "member_too_new",
            send(&app, &fresh, to_ben.clone(), 50, "r6").await,
        );
        refused(409, "needs_purchase", send(&app, &idle, to_ben.clone(), 50, "r7").await);
        refused(
            422,
            "insufficient_points",
            send(&app, &ben, json!({"id": anna}), 50, "r8").await,
        );
        refused(
            409,
            "daily_limit_reached",
            send(&app, &anna, to_ben.clone(), 301, "r9").await,
        );
        assert_eq!(app.entries().await, entries, "{}: a refusal wrote entries", app.backend);
        assert!(list(&app, &anna).await.is_empty());

        // Limits: 300 a day, 500 a month (UTC).
        let (status, v) = send(&app, &anna, to_ben.clone(), 300, "ok-1").await;
        assert_eq!(status, 201, "{v}");
        refused(
            409,
            "daily_limit_reached",
            send(&app, &anna, to_ben.clone(), 10, "r10").await,
        );
        app.advance(1);
        // The test's clock starts on 20 November: the day after is still in December's
        // month of the 300 sent (the clock was moved 31 days on).
        refused(
            409,
            "monthly_limit_reached",
            send(&app, &anna, to_ben.clone(), 201, "r11").await,
        );
        let (status, v) = send(&app, &anna, to_ben.clone(), 200, "ok-2").await;
        assert_eq!(status, 201, "{v}");

        // One household: they pool in its wallet instead.
        app.household(&anna, &ben).await;
        app.advance(1);
        refused(
            409,
            "same_household",
            send(&app, &anna, to_ben.clone(), 10, "r12").await,
        );
        let v = app.ok("GET", "/v1/ledger/verify", ADMIN, Value::Null).await;
        assert_eq!(v["balanced"], true, "{v}");
    }
}

#[tokio::test]
async fn racing_transfers_never_overdraw_or_pass_the_daily_limit() {
    for app in apps().await {
        open_transfers(&app, 600, 10_000).await;
        let (_, anna, ben) = two_members(&app, 1_000).await;
        // Twelve taps of 100 at once: the daily limit lets six through.
        let taps: Vec<String> = (0..12).map(|i| format!("tap-{i}")).collect();
        let answers =
            futures::future::join_all(taps.iter().map(|t| send(&app, &anna, json!({"id": ben}), 100, t))).await;
        let sent = answers.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(sent, 6, "{}: {answers:?}", app.backend);
        for (status, v) in answers.iter().filter(|(s, _)| *s != 201) {
            assert_eq!(
                (*status, v["error"]["code"].as_str()),
                (409, Some("daily_limit_reached")),
                "{v}"
            );
        }
        assert_eq!(app.balance(&anna).await, (400, 0));
        assert_eq!(app.balance(&ben).await, (601, 0));

        // Next day, with 400 left: eight taps of 100 never overdraw her.
        app.advance(1);
        let taps: Vec<String> = (0..8).map(|i| format!("more-{i}")).collect();
        let answers =
            futures::future::join_all(taps.iter().map(|t| send(&app, &anna, json!({"id": ben}), 100, t))).await;
        assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 4, "{answers:?}");
        assert_eq!(app.balance(&anna).await, (0, 0));

        // Both ways at once: each member's row is locked in one order, so they queue.
        app.advance(1);
        let both = (0..6).map(|i| {
            let (from, to) = if i % 2 == 0 { (&ben, &anna) } else { (&anna, &ben) };
            let request = format!("both-{i}");
            let app = &app;
            async move { send(app, from, json!({"id": to}), 50, &request).await }
        });
        let answers = futures::future::join_all(both).await;
        for (status, v) in &answers {
            assert!(
                *status == 201 || v["error"]["code"] == "insufficient_points",
                "{}: {status} {v}",
                app.backend
            );
        }
        assert!(answers.iter().any(|(s, _)| *s == 201), "{answers:?}");
        let (a, _) = app.balance(&anna).await;
        let (b, _) = app.balance(&ben).await;
        assert_eq!(a + b, 1_001, "points neither appear nor vanish");
        let v = app.ok("GET", "/v1/ledger/verify", ADMIN, Value::Null).await;
        assert_eq!(v["balanced"], true, "{v}");
    }
}

#[tokio::test]
async fn hostile_input_is_refused_before_anything_is_written() {
    for app in apps().await {
        open_transfers(&app, 1_000, 3_000).await;
        let (till, anna, ben) = two_members(&app, 500).await;
        let entries = app.entries().await;
        let path = format!("/v1/members/{anna}/transfers");
        let to = json!({"id": ben});
        for body in [
            json!({"request_id": "x", "to": to, "points": 0}),
            json!({"request_id": "x", "to": to, "points": -5}),
            json!({"request_id": "x", "to": to, "points": 1_000_000_000_001i64}),
            json!({"request_id": "x", "to": to, "points": 1.5}),
            json!({"request_id": "x", "to": to, "points": "10"}),
            json!({"request_id": "", "to": to, "points": 10}),
            json!({"request_id": "x".repeat(101), "to": to, "points": 10}),
            json!({"request_id": "x", "to": {"id": ben, "phone": "+420601000001"}, "points": 10}),
            json!({"request_id": "x", "to": {}, "points": 10}),
            json!({"request_id": "x", "to": {"phone": "not a phone"}, "points": 10}),
            json!({"request_id": "x", "to": to, "points": 10, "note": "x".repeat(201)}),
            json!({"request_id": "x", "to": to, "points": 10, "note": "a\u{0007}b"}),
            json!({"request_id": "x", "to": to, "points": 10, "from": anna}),
            json!({"request_id": "x", "points": 10}),
        ] {
            let (status, v) = app.call("POST", &path, Some(ADMIN), Some(body.clone())).await;
            assert_eq!(status, 422, "{}: {body} answered {v}", app.backend);
            assert!(
                v["error"]["code"].as_str().is_some_and(|c| c.starts_with("invalid")),
                "{v}"
            );
        }
        // Only the operator moves points between members.
        app.refused(
            "POST",
            &path,
            Some(&till),
            Some(json!({"request_id": "x", "to": to, "points": 10})),
            403,
            "forbidden",
        )
        .await;
        app.refused("GET", &path, Some(&till), None, 403, "forbidden").await;
        // A policy that makes no sense is refused whole.
        for bad in [
            json!({"transfers": {"enabled": true, "min_points": 1, "max_per_day": 500, "max_per_month": 100,
                                  "min_membership_days": 0, "min_purchases": 0}}),
            json!({"transfers": {"enabled": true, "min_points": 0, "max_per_day": 500, "max_per_month": 500,
                                  "min_membership_days": 0, "min_purchases": 0}}),
            json!({"transfers": {"enabled": true, "min_points": 1, "max_per_day": 500, "max_per_month": 500,
                                  "min_membership_days": 9999, "min_purchases": 0}}),
            json!({"transfers": {"enabled": true}}),
        ] {
            let (status, v) = app.call("PATCH", "/v1/program", Some(ADMIN), Some(bad.clone())).await;
            assert_eq!(status, 422, "{bad} answered {v}");
        }
        let p = app.ok("GET", "/v1/program", ADMIN, Value::Null).await;
        assert_eq!(p["transfers"]["max_per_month"], 3_000, "{p}");
        assert_eq!(app.entries().await, entries, "{}", app.backend);
        let (status, v) = app
            .call("GET", &format!("{path}?cursor=not-a-cursor"), Some(ADMIN), None)
            .await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("invalid_cursor")),
            "{v}"
        );
    }
}
