//! Tiers through the real HTTP server, on SQLite and PostgreSQL: the worked example of
//! docs/PROGRAMMES.md (up at once, kept through the next year, one level down at a
//! review), the crossing sale under concurrency, levels by hand, who may see and set what.
mod common;

use common::{ADMIN, App, apps};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

fn ladder() -> Value {
    json!({"basis": "qualifying_points", "period": "calendar_year", "grace_days": 30, "levels": [
        {"code": "silver", "name": "Silver", "threshold": 1000, "multiplier": "1"},
        {"code": "gold", "name": "Gold", "threshold": 5000, "multiplier": "1.5", "perks": ["Late checkout"]},
        {"code": "platinum", "name": "Platinum", "threshold": 15000, "multiplier": "2"}
    ]})
}

fn now(app: &App) -> String {
    Timestamp::from_microsecond(app.clock.load(Ordering::SeqCst))
        .unwrap()
        .to_string()
}

async fn sale(app: &App, key: &str, member: &str, receipt: &str, euros: i64) -> Value {
    app.ok(
        "POST",
        "/v1/transactions",
        key,
        json!({"external_id": receipt, "member": {"id": member}, "occurred_at": now(app),
               "total": {"amount": euros * 100, "currency": "EUR"}}),
    )
    .await
}

async fn tier(app: &App, member: &str, key: &str) -> Value {
    app.ok("GET", &format!("/v1/members/{member}/tier"), key, Value::Null)
        .await
}

async fn review(app: &App) -> Value {
    app.ok("POST", "/v1/expiry-runs", ADMIN, Value::Null).await
}

/// Moves the clock to `at`.
fn set_clock(app: &App, at: &str) {
    let t: Timestamp = at.parse().unwrap();
    app.clock.store(t.as_microsecond(), Ordering::SeqCst);
}

#[tokio::test]
async fn the_worked_example_holds_through_the_api() {
    for app in apps().await {
        app.ok("PUT", "/v1/tiers", ADMIN, ladder()).await;
        let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
        let jana = app.member("+420601111222").await;
        // 4,950 qualifying points: Silver, reached at once.
        let first = sale(&app, &till, &jana, "r-1", 4950).await;
        assert_eq!(first["tier_change"]["to"], "silver", "{}: {first}", app.backend);
        let t = tier(&app, &jana, ADMIN).await;
        assert_eq!(
            (t["level"]["code"].as_str(), t["qualifying"].as_i64()),
            (Some("silver"), Some(4950))
        );
        assert_eq!(
            (t["next"]["code"].as_str(), t["next"]["missing"].as_i64()),
            (Some("gold"), Some(50))
        );
        // EUR 100: 5,050, Gold at once; this sale earns 100 (Silver is 1×).
        let crossing = sale(&app, &till, &jana, "r-2", 100).await;
        assert_eq!(crossing["points_earned"], 100, "{}: {crossing}", app.backend);
        assert_eq!(crossing["tier_change"]["from"], "silver");
        assert_eq!(crossing["tier_change"]["to"], "gold");
        // The next EUR 100 earns 150, the tier's 50 on a line of its own.
        let next = sale(&app, &till, &jana, "r-3", 100).await;
        assert_eq!(next["points_earned"], 150, "{}: {next}", app.backend);
        assert!(next.get("tier_change").is_none());
        let line = next["breakdown"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rule"] == "tier")
            .cloned()
            .unwrap();
        assert_eq!(
            (line["points"].as_i64(), line["reason"].as_str()),
            (Some(50), Some("Gold: 1.5× base points"))
        );
        // She returns the crossing purchase: its 100 come off qualifying, Gold stays.
        let txn = crossing["id"].as_str().unwrap();
        app.ok(
            "POST",
            &format!("/v1/transactions/{txn}/returns"),
            &till,
            json!({"external_id": "ret-1", "amount": {"amount": 10000, "currency": "EUR"}}),
        )
        .await;
        let t = tier(&app, &jana, ADMIN).await;
        assert_eq!(
            (t["level"]["code"].as_str(), t["qualifying"].as_i64()),
            (Some("gold"), Some(5050))
        );
        assert_eq!(t["review"]["keeps"], "gold", "{}: {t}", app.backend);
        // The review of 2026 on 31 January 2027 keeps Gold (reached in 2026).
        set_clock(&app, "2027-02-01T09:00:00Z");
        review(&app).await;
        let t = tier(&app, &jana, ADMIN).await;
        assert_eq!(t["level"]["code"], "gold", "{}: {t}", app.backend);
        assert_eq!(t["qualifying"], 0);
        // 400 points in 2027; the review of 2027 takes her one level down: Silver, not none.
        sale(&app, &till, &jana, "r-4", 400).await;
        set_clock(&app, "2028-02-01T09:00:00Z");
        let run = review(&app).await;
        assert!(run["tiers_reviewed"].as_u64().unwrap() >= 1, "{}: {run}", app.backend);
        let t = tier(&app, &jana, ADMIN).await;
        assert_eq!(t["level"]["code"], "silver", "{}: {t}", app.backend);
        let history = t["history"].as_array().unwrap();
        assert_eq!(history[0]["kind"], "review");
        assert_eq!(
            (history[0]["from"].as_str(), history[0]["to"].as_str()),
            (Some("gold"), Some("silver"))
        );
        assert!(history[0]["reason"].as_str().unwrap().contains("400 qualifying points"));
        assert_eq!(history[1]["kind"], "upgrade");
        assert!(history[1]["transaction_id"].is_string());
        app.entries().await;
    }
}

#[tokio::test]
async fn concurrent_sales_across_a_threshold_upgrade_once() {
    for app in apps().await {
        app.ok("PUT", "/v1/tiers", ADMIN, ladder()).await;
        let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
        let m = app.member("+420601111333").await;
        sale(&app, &till, &m, "c-0", 4900).await;
        let sales = (0..6).map(|i| {
            let (app, till, m) = (&app, till.clone(), m.clone());
            async move { sale(app, &till, &m, &format!("c-{}", i + 1), 50).await }
        });
        let answers = futures::future::join_all(sales).await;
        let upgrades = answers.iter().filter(|a| a["tier_change"]["to"] == "gold").count();
        assert_eq!(upgrades, 1, "{}: {answers:?}", app.backend);
        let t = tier(&app, &m, ADMIN).await;
        assert_eq!(
            (t["level"]["code"].as_str(), t["qualifying"].as_i64()),
            (Some("gold"), Some(5200))
        );
        let ups = t["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["to"] == "gold")
            .count();
        assert_eq!(ups, 1);
    }
}

#[tokio::test]
async fn levels_by_hand_and_who_may_do_what() {
    for app in apps().await {
        let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
        let m = app.member("+420601111444").await;
        // A tier typed in before there was a ladder gives way to the computed one.
        let legacy = app.member("+420601111555").await;
        app.ok(
            "PATCH",
            &format!("/v1/members/{legacy}"),
            ADMIN,
            json!({"tier": "VIP Plus", "segments": []}),
        )
        .await;
        // No ladder yet: tiers off, a level by hand is refused, PATCH still sets a tier.
        let t = tier(&app, &m, ADMIN).await;
        assert_eq!(t["enabled"], false);
        let manual = json!({"code": "gold", "until": "2027-01-31T00:00:00Z", "reason": "goodwill"});
        app.refused(
            "PUT",
            &format!("/v1/members/{m}/tier"),
            Some(ADMIN),
            Some(manual.clone()),
            422,
            "tiers_off",
        )
        .await;
        app.refused("PUT", "/v1/tiers", Some(&till), Some(ladder()), 403, "forbidden")
            .await;
        let mut bad = ladder();
        bad["levels"][1]["threshold"] = json!(900);
        app.refused("PUT", "/v1/tiers", Some(ADMIN), Some(bad), 422, "invalid_field")
            .await;
        app.ok("PUT", "/v1/tiers", ADMIN, ladder()).await;
        assert_eq!(
            app.ok("GET", "/v1/tiers", &till, Value::Null).await["levels"][1]["multiplier"],
            "1.5"
        );
        for bad in ["01.5", "+2", "1.500", "1.", "1_5"] {
            let mut l = ladder();
            l["levels"][1]["multiplier"] = json!(bad);
            app.refused("PUT", "/v1/tiers", Some(ADMIN), Some(l), 422, "invalid_field")
                .await;
        }
        assert!(review(&app).await["tiers_reviewed"].as_u64().unwrap() >= 1);
        let t = tier(&app, &legacy, ADMIN).await;
        assert!(t.get("level").is_none(), "{}: {t}", app.backend);
        assert_eq!(t["history"][0]["from"], "VIP Plus");
        // With a ladder, the tier is computed: PATCH may not set it, and keeps it.
        app.refused(
            "PATCH",
            &format!("/v1/members/{m}"),
            Some(ADMIN),
            Some(json!({"tier": "gold", "segments": []})),
            422,
            "tier_is_computed",
        )
        .await;
        app.refused(
            "PUT",
            &format!("/v1/members/{m}/tier"),
            Some(&till),
            Some(manual.clone()),
            403,
            "forbidden",
        )
        .await;
        let t = app.ok("PUT", &format!("/v1/members/{m}/tier"), ADMIN, manual).await;
        assert_eq!(
            (t["level"]["code"].as_str(), t["manual_until"].as_str()),
            (Some("gold"), Some("2027-01-31T00:00:00Z"))
        );
        app.ok(
            "PATCH",
            &format!("/v1/members/{m}"),
            ADMIN,
            json!({"segments": ["vip"]}),
        )
        .await;
        // Gold by hand earns Gold's bonus; the partner sees the level, not the sales
        // behind the history.
        let s = sale(&app, &till, &m, "h-1", 100).await;
        assert_eq!(s["points_earned"], 150, "{}: {s}", app.backend);
        let seen = tier(&app, &m, &till).await;
        assert_eq!(seen["level"]["code"], "gold");
        for coalition_wide in ["qualifying", "next", "review"] {
            assert!(seen.get(coalition_wide).is_none(), "{}: {seen}", app.backend);
        }
        assert_eq!(seen["history"], json!([]));
        let full = tier(&app, &m, ADMIN).await;
        assert_eq!(
            (full["qualifying"].as_i64(), full["history"][0]["kind"].as_str()),
            (Some(100), Some("manual"))
        );
        // After the date the computed level (Silver from 100? none: under 1,000) applies.
        set_clock(&app, "2027-01-31T00:00:01Z");
        review(&app).await;
        let t = tier(&app, &m, ADMIN).await;
        assert!(t.get("level").is_none(), "{}: {t}", app.backend);
        assert_eq!(t["history"][0]["kind"], "manual_ended");
        app.refused(
            "PUT",
            &format!("/v1/members/{m}/tier"),
            Some(ADMIN),
            Some(json!({"code": "diamond", "until": "2028-01-01T00:00:00Z", "reason": "x"})),
            422,
            "invalid_field",
        )
        .await;
    }
}

/// A ladder per household: its members qualify together, share one level (and its
/// multiplier, and `member.tier` in rules), a return takes back from the household, and
/// a member of no household keeps a standing of their own.
#[tokio::test]
async fn a_household_qualifies_together_when_the_ladder_says_so() {
    for app in apps().await {
        let mut household_ladder = ladder();
        household_ladder["scope"] = json!("household");
        let put = app.ok("PUT", "/v1/tiers", ADMIN, household_ladder).await;
        assert_eq!(put["scope"], "household");
        let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
        let (petra, tomas, solo) = (
            app.member("+420601111501").await,
            app.member("+420601111502").await,
            app.member("+420601111503").await,
        );
        // Tomáš neither earns into nor spends the wallet: the household level is shared
        // all the same.
        let home = app.household(&petra, &tomas).await;
        app.ok(
            "POST",
            "/v1/earning-rules",
            ADMIN,
            json!({"name": "Silver thanks", "condition": "member.tier == \"silver\"", "effect": {"kind": "fixed", "points": 7}}),
        )
        .await;

        let first = sale(&app, &till, &petra, "h-1", 600).await;
        assert!(first.get("tier_change").is_none(), "{first}");
        let second = sale(&app, &till, &tomas, "h-2", 500).await;
        assert_eq!(second["tier_change"]["to"], "silver", "{}: {second}", app.backend);
        let t = tier(&app, &petra, ADMIN).await;
        assert_eq!(t["household_id"], home.as_str(), "{t}");
        assert_eq!(
            (t["level"]["code"].as_str(), t["qualifying"].as_i64()),
            (Some("silver"), Some(1100)),
            "{}: {t}",
            app.backend
        );
        assert_eq!(tier(&app, &tomas, ADMIN).await["level"]["code"], "silver");
        // A partner sees the level, not which household it is.
        let seen = tier(&app, &tomas, &till).await;
        assert!(
            seen.get("household_id").is_none() && seen["level"]["code"] == "silver",
            "{seen}"
        );
        // Petra's next sale: rules read the household's level as member.tier.
        let third = sale(&app, &till, &petra, "h-3", 100).await;
        assert!(
            third["breakdown"].as_array().unwrap().iter().any(|l| l["points"] == 7),
            "{}: {third}",
            app.backend
        );
        // A member of no household qualifies alone.
        sale(&app, &till, &solo, "s-1", 900).await;
        let t = tier(&app, &solo, ADMIN).await;
        assert!(t.get("household_id").is_none() && t.get("level").is_none(), "{t}");
        assert_eq!(t["qualifying"], 900);
        // Returning Tomáš's sale takes its share off the household; the level stays.
        let ret = app
            .ok(
                "POST",
                &format!("/v1/transactions/{}/returns", second["id"].as_str().unwrap()),
                &till,
                json!({"external_id": "h-2-r", "amount": {"amount": 50000, "currency": "EUR"}}),
            )
            .await;
        assert_eq!(ret["points_reversed"], 500, "{ret}");
        let t = tier(&app, &petra, ADMIN).await;
        assert_eq!(
            (t["level"]["code"].as_str(), t["qualifying"].as_i64()),
            (Some("silver"), Some(600 + 107)),
            "{}: {t}",
            app.backend
        );
        // A level by hand under a ladder per household is the household's.
        app.ok(
            "PUT",
            &format!("/v1/members/{tomas}/tier"),
            ADMIN,
            json!({"code": "gold", "until": "2027-06-30T00:00:00Z", "reason": "Family welcome"}),
        )
        .await;
        assert_eq!(tier(&app, &petra, ADMIN).await["level"]["code"], "gold");
    }
}

#[tokio::test]
async fn events_qualify_only_when_the_operator_says_so() {
    for app in apps().await {
        app.ok("PUT", "/v1/tiers", ADMIN, ladder()).await;
        app.ok(
            "POST",
            "/v1/event-types",
            ADMIN,
            json!({"name": "style_quiz", "description": "Answered the style quiz"}),
        )
        .await;
        app.ok(
            "POST",
            "/v1/earning-rules",
            ADMIN,
            json!({"name": "Quiz thanks", "applies_to": "event", "event_type": "style_quiz",
                   "effect": {"kind": "fixed", "points": 600}}),
        )
        .await;
        let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
        let jana = app.member("+420601555001").await;
        sale(&app, &till, &jana, "q-1", 500).await;
        let event = |id: &'static str| {
            let (app, jana) = (&app, jana.clone());
            async move {
                app.ok(
                    "POST",
                    "/v1/events",
                    ADMIN,
                    json!({"id": id, "member": {"id": jana}, "type": "style_quiz"}),
                )
                .await
            }
        };
        // By default an event's points do not qualify.
        let e = event("E-1").await;
        assert_eq!(e["points_earned"], 600, "{e}");
        assert!(e.get("tier_change").is_none(), "{}: {e}", app.backend);
        let t = tier(&app, &jana, ADMIN).await;
        assert_eq!((t["qualifying"].as_i64(), t.get("level")), (Some(500), None), "{t}");

        // The operator lets them: the next event's 600 cross Silver at once.
        let mut with_events = ladder();
        with_events["events_qualify"] = json!(true);
        let saved = app.ok("PUT", "/v1/tiers", ADMIN, with_events).await;
        assert_eq!(saved["events_qualify"], true, "{saved}");
        let e = event("E-2").await;
        assert_eq!(e["tier_change"]["to"], "silver", "{}: {e}", app.backend);
        let t = tier(&app, &jana, ADMIN).await;
        assert_eq!(
            (t["level"]["code"].as_str(), t["qualifying"].as_i64()),
            (Some("silver"), Some(1100)),
            "{}: {t}",
            app.backend
        );
        // The same event again is answered as first posted, and counts once.
        let again = event("E-2").await;
        assert_eq!(again, e);
        assert_eq!(tier(&app, &jana, ADMIN).await["qualifying"], 1100);

        // An event has no spend: a spend basis cannot count events.
        let mut spend = ladder();
        spend["basis"] = json!("qualifying_spend");
        spend["events_qualify"] = json!(true);
        app.refused("PUT", "/v1/tiers", Some(ADMIN), Some(spend), 422, "invalid_field")
            .await;
        app.entries().await;
    }
}
