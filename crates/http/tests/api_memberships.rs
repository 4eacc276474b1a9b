//! Paid memberships through the real HTTP server, on SQLite and PostgreSQL: plans, a
//! membership from trial to paid to lapsed, payments recorded exactly once (also when
//! the same payment arrives many times at once), the plan's multiplier at the till, the
//! operator's report, and who may do what.
mod common;

use common::{ADMIN, App, apps};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

fn plus() -> Value {
    json!({"code": "plus", "name": "Tally Plus", "price": {"amount": 499, "currency": "EUR"}, "interval": "month",
           "benefits": {"earn_multiplier": "1.25", "bonus_points": 200, "early_access": true, "free_reward": false},
           "trial_days": 14})
}

fn now(app: &App) -> Timestamp {
    Timestamp::from_microsecond(app.clock.load(Ordering::SeqCst)).unwrap()
}

async fn sale(app: &App, key: &str, member: &str, receipt: &str, euros: i64) -> Value {
    app.ok(
        "POST",
        "/v1/transactions",
        key,
        json!({"external_id": receipt, "member": {"id": member}, "occurred_at": now(app).to_string(),
               "total": {"amount": euros * 100, "currency": "EUR"}}),
    )
    .await
}

async fn pay(app: &App, membership: &str, external: &str, amount: i64) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/v1/memberships/{membership}/payments"),
        Some(ADMIN),
        Some(json!({"external_id": external, "amount": {"amount": amount, "currency": "EUR"}})),
    )
    .await
}

/// Starts a Plus membership for `member`.
async fn start_plus(app: &App, member: &str) -> Value {
    app.ok(
        "POST",
        &format!("/v1/members/{member}/memberships"),
        ADMIN,
        json!({"plan": "plus"}),
    )
    .await
}

async fn plan_of(app: &App, member: &str) -> Value {
    app.ok("GET", &format!("/v1/members/{member}"), ADMIN, Value::Null)
        .await["plan"]
        .clone()
}

#[tokio::test]
async fn a_membership_from_trial_to_paid_to_lapsed() {
    for app in apps().await {
        let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
        app.refused(
            "POST",
            "/v1/membership-plans",
            Some(&till),
            Some(plus()),
            403,
            "forbidden",
        )
        .await;
        let created = app.ok("POST", "/v1/membership-plans", ADMIN, plus()).await;
        assert_eq!(created["benefits"]["earn_multiplier"], "1.25");
        app.refused(
            "POST",
            "/v1/membership-plans",
            Some(ADMIN),
            Some(plus()),
            409,
            "plan_exists",
        )
        .await;
        let mut bad = plus();
        bad["code"] = json!("plus2");
        bad["benefits"]["earn_multiplier"] = json!("0.5");
        app.refused(
            "POST",
            "/v1/membership-plans",
            Some(ADMIN),
            Some(bad),
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(
            app.ok("GET", "/v1/membership-plans", &till, Value::Null).await[0]["code"],
            "plus"
        );

        let jana = app.member("+420602000111").await;
        let m = start_plus(&app, &jana).await;
        assert_eq!(m["status"], "trialing", "{}: {m}", app.backend);
        let id = m["id"].as_str().unwrap().to_string();
        assert_eq!(plan_of(&app, &jana).await, "plus");
        app.refused(
            "POST",
            &format!("/v1/members/{jana}/memberships"),
            Some(ADMIN),
            Some(json!({"plan": "plus"})),
            409,
            "membership_exists",
        )
        .await;

        // The plan's multiplier at the till: EUR 100 earns 125, the 25 on a line of its own.
        let s = sale(&app, &till, &jana, "m-1", 100).await;
        assert_eq!(s["points_earned"], 125, "{}: {s}", app.backend);
        assert!(
            s["breakdown"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["rule"] == "plan" && l["points"] == 25)
        );

        // A payment of the wrong amount is refused; the right one pays the month after the
        // trial and posts 200 bonus points, once.
        let (status, v) = pay(&app, &id, "ch_1", 500).await;
        assert_eq!((status, v["error"]["code"].as_str()), (422, Some("payment_mismatch")));
        let (status, first) = pay(&app, &id, "ch_1", 499).await;
        assert_eq!(status, 201, "{}: {first}", app.backend);
        assert_eq!(first["bonus_points"], 200);
        assert_eq!(first["balance"]["available"], 325);
        let trial_end = m["trial_until"].as_str().unwrap();
        assert_eq!(first["period_start"], trial_end);
        let (again_status, again) = pay(&app, &id, "ch_1", 499).await;
        assert_eq!((again_status, &again), (201, &first));
        let (status, v) = pay(&app, &id, "ch_1", 4990).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (409, Some("idempotency_conflict"))
        );
        assert_eq!(app.balance(&jana).await, (325, 0));

        // Unpaid after the month: past due, then expired after the grace days; the plan and
        // its multiplier go with it.
        app.advance(14 + 31 + 1);
        app.ok("POST", "/v1/expiry-runs", ADMIN, Value::Null).await;
        let m = app
            .ok("GET", &format!("/v1/memberships/{id}"), ADMIN, Value::Null)
            .await;
        assert_eq!(m["status"], "past_due", "{}: {m}", app.backend);
        assert_eq!(plan_of(&app, &jana).await, "plus");
        app.advance(14);
        let run = app.ok("POST", "/v1/expiry-runs", ADMIN, Value::Null).await;
        assert!(
            run["memberships_reviewed"].as_u64().unwrap() >= 1,
            "{}: {run}",
            app.backend
        );
        let m = app
            .ok("GET", &format!("/v1/memberships/{id}"), ADMIN, Value::Null)
            .await;
        assert_eq!(m["status"], "expired");
        assert_eq!(plan_of(&app, &jana).await, Value::Null);
        assert_eq!(sale(&app, &till, &jana, "m-2", 100).await["points_earned"], 100);
        let (status, v) = pay(&app, &id, "ch_2", 499).await;
        assert_eq!((status, v["error"]["code"].as_str()), (422, Some("membership_over")));
        app.refused(
            "POST",
            &format!("/v1/memberships/{id}/cancel"),
            Some(ADMIN),
            None,
            422,
            "membership_over",
        )
        .await;

        // A new membership, cancelled: it runs to the end of what is covered.
        let m2 = start_plus(&app, &jana).await;
        let id2 = m2["id"].as_str().unwrap();
        let c = app
            .ok("POST", &format!("/v1/memberships/{id2}/cancel"), ADMIN, Value::Null)
            .await;
        assert_eq!(c["status"], "cancelled");
        assert_eq!(plan_of(&app, &jana).await, "plus");
        // A cancelled one running out may be replaced; the plan stays.
        let m3 = start_plus(&app, &jana).await;
        assert_eq!(m3["status"], "trialing");
        assert_eq!(plan_of(&app, &jana).await, "plus");
        // Paid a period ahead, no more.
        let id3 = m3["id"].as_str().unwrap();
        assert_eq!(pay(&app, id3, "ch_3", 499).await.0, 201);
        let (status, v) = pay(&app, id3, "ch_4", 499).await;
        assert_eq!((status, v["error"]["code"].as_str()), (422, Some("paid_ahead")));
        // The plan comes from memberships: PATCH may not set it, and keeps it.
        app.refused(
            "PATCH",
            &format!("/v1/members/{jana}"),
            Some(ADMIN),
            Some(json!({"plan": "gold_card", "segments": []})),
            422,
            "plan_from_membership",
        )
        .await;
        app.ok(
            "PATCH",
            &format!("/v1/members/{jana}"),
            ADMIN,
            json!({"segments": ["students"]}),
        )
        .await;
        assert_eq!(plan_of(&app, &jana).await, "plus");
        app.refused(
            "POST",
            &format!("/v1/members/{jana}/memberships"),
            Some(ADMIN),
            Some(json!({"plan": "\u{0}"})),
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(
            app.ok("GET", &format!("/v1/members/{jana}/memberships"), ADMIN, Value::Null)
                .await
                .as_array()
                .unwrap()
                .len(),
            3
        );

        // The report: the months' revenue (two payments), one churned, one cancelled, one
        // in its trial (paid ahead).
        let report = app.ok("GET", "/v1/memberships/report", ADMIN, Value::Null).await;
        let plus = &report[0];
        assert_eq!(
            (
                plus["plan"].as_str(),
                plus["expired"].as_u64(),
                plus["cancelled"].as_u64()
            ),
            (Some("plus"), Some(1), Some(1))
        );
        let revenue: i64 = plus["months"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["revenue"]["amount"].as_i64().unwrap())
            .sum();
        let churned: u64 = plus["months"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["churned"].as_u64().unwrap())
            .sum();
        assert_eq!((revenue, churned), (998, 1), "{}: {report}", app.backend);
        app.refused("GET", "/v1/memberships/report", Some(&till), None, 403, "forbidden")
            .await;
        app.refused(
            "GET",
            &format!("/v1/memberships/{id}"),
            Some(&till),
            None,
            403,
            "forbidden",
        )
        .await;
        app.entries().await;
    }
}

#[tokio::test]
async fn one_payment_sent_many_times_at_once_posts_its_bonus_once() {
    for app in apps().await {
        app.ok("POST", "/v1/membership-plans", ADMIN, plus()).await;
        let m = app.member("+420602000222").await;
        let ms = start_plus(&app, &m).await;
        let id = ms["id"].as_str().unwrap().to_string();
        let calls = (0..8).map(|_| {
            let (app, id) = (&app, id.clone());
            async move { pay(app, &id, "ch_race", 499).await }
        });
        let answers = futures::future::join_all(calls).await;
        assert!(
            answers.iter().all(|(s, v)| *s == 201 && *v == answers[0].1),
            "{}: {answers:?}",
            app.backend
        );
        assert_eq!(app.balance(&m).await, (200, 0));
        let view = app
            .ok("GET", &format!("/v1/memberships/{id}"), ADMIN, Value::Null)
            .await;
        assert_eq!(view["payments"].as_array().unwrap().len(), 1);
        // It lapses; a new membership starts before the scheduled run has seen the old
        // one end, and that run does not take the plan away for the old one's sake.
        app.advance(14 + 31 + 14 + 1);
        start_plus(&app, &m).await;
        let run = app.ok("POST", "/v1/expiry-runs", ADMIN, Value::Null).await;
        assert!(
            run["memberships_reviewed"].as_u64().unwrap() >= 1,
            "{}: {run}",
            app.backend
        );
        let member = app.ok("GET", &format!("/v1/members/{m}"), ADMIN, Value::Null).await;
        assert_eq!(member["plan"], "plus", "{}: {member}", app.backend);
        app.entries().await;
    }
}
