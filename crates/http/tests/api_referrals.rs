//! Share links through the real HTTP server, on SQLite and PostgreSQL: a member's link
//! leads to the operator's sign-up page with her code, the sign-up records who referred
//! the new member, and a link without a sign-up address or a member is not found.
mod common;

use common::{ADMIN, apps};
use serde_json::{Value, json};

#[tokio::test]
async fn a_share_link_leads_to_sign_up_with_the_code() {
    for app in apps().await {
        // A client that shows the redirect instead of following it off the machine.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let anna = app.member("+420601000001").await;
        let code = app.ok("GET", &format!("/v1/members/{anna}"), ADMIN, Value::Null).await["referral_code"]
            .as_str()
            .unwrap()
            .to_string();
        let link = |c: &str| format!("{}/r/{c}", app.base);

        // No sign-up address yet: the link leads nowhere.
        let res = http.get(link(&code)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{}", app.backend);

        let p = app
            .ok(
                "PATCH",
                "/v1/program",
                ADMIN,
                json!({"referral_signup_url": "https://join.example/signup?lang=cs"}),
            )
            .await;
        assert_eq!(p["referral_signup_url"], "https://join.example/signup?lang=cs");
        for c in [code.clone(), code.to_lowercase()] {
            let res = http.get(link(&c)).send().await.unwrap();
            assert_eq!(res.status(), 302, "{}", app.backend);
            assert_eq!(
                res.headers()["location"],
                format!("https://join.example/signup?lang=cs&referral_code={code}").as_str()
            );
        }
        for unknown in ["ZZZZZZZZ", "not-a-code", "%00"] {
            let res = http.get(link(unknown)).send().await.unwrap();
            assert_eq!(res.status(), 404, "{unknown}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "not_found");
        }

        // The sign-up page posts the code with the new member: she records who brought her.
        let ben = app
            .ok(
                "POST",
                "/v1/members",
                ADMIN,
                json!({"phone": "+420601000002", "referral_code": code}),
            )
            .await;
        let ben = app
            .ok(
                "GET",
                &format!("/v1/members/{}", ben["id"].as_str().unwrap()),
                ADMIN,
                Value::Null,
            )
            .await;
        assert_eq!(ben["referred_by"], anna.as_str(), "{ben}");

        // Addresses that are not plain web pages are refused; null removes it.
        for bad in [
            "join.example/signup",
            "javascript:alert(1)",
            "https://join.example/#x",
            "https://",
        ] {
            let (status, v) = app
                .call(
                    "PATCH",
                    "/v1/program",
                    Some(ADMIN),
                    Some(json!({"referral_signup_url": bad})),
                )
                .await;
            assert_eq!(status, 422, "{bad}: {v}");
        }
        app.ok("PATCH", "/v1/program", ADMIN, json!({"name": "Tally"})).await;
        let p = app.ok("GET", "/v1/program", ADMIN, Value::Null).await;
        assert_eq!(
            p["referral_signup_url"], "https://join.example/signup?lang=cs",
            "absent keeps it"
        );
        app.ok("PATCH", "/v1/program", ADMIN, json!({"referral_signup_url": null}))
            .await;
        let res = http.get(link(&code)).send().await.unwrap();
        assert_eq!(res.status(), 404);
    }
}

/// The programme's referral policy and the two rules of a double-sided reward: 300 for
/// the referrer and 500 for the new member on `referral_converted`, and 50 on every
/// sale of a member referred in the last 30 days (the rules context).
async fn referral_programme(app: &common::App, max_per_month: u32) {
    app.ok(
        "PATCH",
        "/v1/program",
        ADMIN,
        json!({"referrals": {"min_purchase": {"amount": 2500, "currency": "EUR"}, "window_days": 30,
               "max_per_month": max_per_month}}),
    )
    .await;
    for (side, points) in [("referrer", 300), ("referred", 500)] {
        app.ok(
            "POST",
            "/v1/earning-rules",
            ADMIN,
            json!({"name": format!("Referral: {side}"), "applies_to": "event", "event_type": "referral_converted",
                   "condition": format!("event.attributes.side == \"{side}\""),
                   "effect": {"kind": "fixed", "points": points}}),
        )
        .await;
    }
    app.ok(
        "POST",
        "/v1/earning-rules",
        ADMIN,
        json!({"name": "Welcome month for referred members",
               "condition": "member.referred_by != \"\" && member.referral_age_days <= 30",
               "effect": {"kind": "fixed", "points": 50}}),
    )
    .await;
}

async fn code_of(app: &common::App, member: &str) -> String {
    app.ok("GET", &format!("/v1/members/{member}"), ADMIN, Value::Null)
        .await["referral_code"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn referred(app: &common::App, phone: &str, code: &str) -> String {
    app.ok(
        "POST",
        "/v1/members",
        ADMIN,
        json!({"phone": phone, "country": "CZ", "referral_code": code}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn referrals(app: &common::App, member: &str) -> Value {
    app.ok("GET", &format!("/v1/members/{member}/referrals"), ADMIN, Value::Null)
        .await
}

#[tokio::test]
async fn a_first_qualifying_purchase_rewards_both_once_and_a_return_below_the_minimum_takes_it_back() {
    for app in apps().await {
        let (_, till) = app.partner("Berlin Apparel", "EUR", 0).await;
        referral_programme(&app, 5).await;
        let anna = app
            .ok(
                "POST",
                "/v1/members",
                ADMIN,
                json!({"phone": "+420601000011", "email": "anna.novak@example.cz"}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let code = code_of(&app, &anna).await;

        // Her own mailbox under another spelling refers herself.
        app.refused(
            "POST",
            "/v1/members",
            Some(ADMIN),
            Some(json!({"email": "Anna.Novak+deals@example.cz", "referral_code": code})),
            422,
            "self_referral",
        )
        .await;
        let ben = referred(&app, "+420601000012", &code).await;
        let v = referrals(&app, &anna).await;
        assert_eq!(
            (v["invited"].as_i64(), v["converted"].as_i64()),
            (Some(1), Some(0)),
            "{v}"
        );
        assert_eq!(v["items"][0]["member_id"], ben.as_str());
        assert_eq!(v["items"][0]["status"], "pending");

        // Below the minimum: no conversion, but the rules see a recently referred member.
        let (ben0, _) = app.balance(&ben).await;
        app.sale(&till, &ben, "r-small", 10).await;
        let (ben1, _) = app.balance(&ben).await;
        let small_base = ben1 - ben0 - 50;
        assert!(small_base >= 0, "the welcome rule gave 50: {ben0} → {ben1}");
        assert_eq!(app.balance(&anna).await.0, 0);
        assert_eq!(referrals(&app, &anna).await["items"][0]["status"], "pending");

        // The first qualifying purchase converts: 300 to Anna, 500 to Ben.
        let first = app.sale(&till, &ben, "r-first", 40).await;
        let (ben2, _) = app.balance(&ben).await;
        assert_eq!(app.balance(&anna).await.0, 300, "{}", app.backend);
        let v = referrals(&app, &anna).await;
        assert_eq!(v["converted"], 1, "{v}");
        assert_eq!(v["points_earned"], 300, "{v}");
        assert_eq!(v["items"][0]["status"], "converted");
        assert_eq!(v["items"][0]["points"], 300);
        let events = app
            .ok("GET", &format!("/v1/members/{anna}/events"), ADMIN, Value::Null)
            .await;
        assert!(events.to_string().contains("referral_converted"), "{events}");

        // Later purchases convert nothing more.
        app.sale(&till, &ben, "r-again", 40).await;
        assert_eq!(app.balance(&anna).await.0, 300);

        // A return that keeps EUR 30 of the qualifying purchase (at least the minimum)
        // leaves the referral standing.
        let ret = |external: &str, euros: i64| json!({"external_id": external, "amount": {"amount": euros * 100, "currency": "EUR"}});
        app.ok(
            "POST",
            &format!("/v1/transactions/{first}/returns"),
            &till,
            ret("ret-1", 10),
        )
        .await;
        assert_eq!(app.balance(&anna).await.0, 300);
        assert_eq!(referrals(&app, &anna).await["items"][0]["status"], "converted");

        // One that leaves EUR 20, under the minimum, reverses it: both lose what it gave
        // them (buying big and returning most of it does not farm referrals).
        let (ben3, _) = app.balance(&ben).await;
        app.ok(
            "POST",
            &format!("/v1/transactions/{first}/returns"),
            &till,
            ret("ret-2", 10),
        )
        .await;
        assert_eq!(app.balance(&anna).await.0, 0, "{}", app.backend);
        let (ben4, _) = app.balance(&ben).await;
        assert!(
            ben4 <= ben3 - 500,
            "the 500 taken back: {ben3} → {ben4} (earned {ben2})"
        );
        let v = referrals(&app, &anna).await;
        assert_eq!(
            (v["reversed"].as_i64(), v["points_earned"].as_i64()),
            (Some(1), Some(0)),
            "{v}"
        );
        assert_eq!(v["items"][0]["status"], "reversed");
        let history = app
            .ok("GET", &format!("/v1/members/{anna}/activity"), ADMIN, Value::Null)
            .await;
        assert!(
            history.to_string().contains("qualifying purchase was returned"),
            "{history}"
        );

        // Nothing is left for the scheduled run, and the ledger balances.
        let run = app.ok("POST", "/v1/expiry-runs", ADMIN, json!({})).await;
        assert_eq!(run["referrals_finished"], 0, "{run}");
        app.entries().await;

        // Only Tally posts referral_converted.
        app.refused(
            "POST",
            "/v1/events",
            Some(&till),
            Some(json!({"id": "forged-1", "type": "referral_converted", "member": {"id": anna}})),
            422,
            "reserved_event_type",
        )
        .await;
        // The list is the operator's, and of a member that exists.
        app.refused(
            "GET",
            &format!("/v1/members/{anna}/referrals"),
            Some(&till),
            None,
            403,
            "forbidden",
        )
        .await;
        app.refused(
            "GET",
            "/v1/members/mem_nobody/referrals",
            Some(ADMIN),
            None,
            404,
            "member_not_found",
        )
        .await;
        let _ = small_base;
    }
}

#[tokio::test]
async fn a_household_the_monthly_limit_and_the_window_decline_or_miss_a_conversion() {
    for app in apps().await {
        let (_, till) = app.partner("Prague Drugstore", "EUR", 0).await;
        referral_programme(&app, 1).await;
        let anna = app.member("+420601000021").await;
        let code = code_of(&app, &anna).await;
        let (carl, dan, eve, frank) = (
            referred(&app, "+420601000022", &code).await,
            referred(&app, "+420601000023", &code).await,
            referred(&app, "+420601000024", &code).await,
            referred(&app, "+420601000025", &code).await,
        );

        // Eve joins Anna's household: her referral earns nothing.
        app.household(&anna, &eve).await;
        app.sale(&till, &eve, "e-1", 30).await;
        // Carl converts (the month's one); Dan's is beyond the limit.
        app.sale(&till, &carl, "c-1", 30).await;
        app.sale(&till, &dan, "d-1", 30).await;
        assert_eq!(app.balance(&anna).await.0, 300, "{}", app.backend);
        // Frank's receipts: one dated the day before he joined, then, after the window,
        // one now and one dated inside the window but posted late. None converts.
        let dated = |receipt: &str, at: String| {
            json!({"external_id": receipt, "member": {"id": frank}, "occurred_at": at,
                   "total": {"amount": 3000, "currency": "EUR"}})
        };
        let day_before: jiff::Timestamp =
            app.now_text().parse::<jiff::Timestamp>().unwrap() - jiff::SignedDuration::from_hours(24);
        app.ok("POST", "/v1/transactions", &till, dated("f-0", day_before.to_string()))
            .await;
        let inside = app.now_text().parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_hours(24 * 10);
        app.advance(31);
        app.sale(&till, &frank, "f-1", 30).await;
        app.ok("POST", "/v1/transactions", &till, dated("f-2", inside.to_string()))
            .await;
        assert_eq!(app.balance(&anna).await.0, 300);

        let v = referrals(&app, &anna).await;
        let status = |m: &str| {
            let item = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["member_id"] == m)
                .unwrap();
            (
                item["status"].as_str().unwrap().to_string(),
                item["reason"].as_str().map(str::to_string),
            )
        };
        assert_eq!(status(&eve), ("declined".into(), Some("same_household".into())), "{v}");
        assert_eq!(status(&carl), ("converted".into(), None));
        assert_eq!(status(&dan), ("declined".into(), Some("monthly_limit".into())));
        assert_eq!(status(&frank), ("pending".into(), None));
        assert_eq!(
            (v["invited"].as_i64(), v["converted"].as_i64(), v["declined"].as_i64()),
            (Some(4), Some(1), Some(2))
        );

        // Pages: two at a time, newest first, every member once.
        let page = app
            .ok(
                "GET",
                &format!("/v1/members/{anna}/referrals?limit=2"),
                ADMIN,
                Value::Null,
            )
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let cursor = page["next_cursor"].as_str().unwrap();
        let next = app
            .ok(
                "GET",
                &format!("/v1/members/{anna}/referrals?limit=2&cursor={cursor}"),
                ADMIN,
                Value::Null,
            )
            .await;
        let mut seen: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .chain(next["items"].as_array().unwrap())
            .map(|i| i["member_id"].as_str().unwrap().to_string())
            .collect();
        seen.sort();
        let mut all = vec![carl.clone(), dan.clone(), eve.clone(), frank.clone()];
        all.sort();
        assert_eq!(seen, all);
        app.refused(
            "PATCH",
            "/v1/program",
            Some(ADMIN),
            Some(json!({"referrals": {"min_purchase": {"amount": 2500, "currency": "CZK"}, "window_days": 30, "max_per_month": 1}})),
            422,
            "invalid_field",
        )
        .await;
        app.refused(
            "PATCH",
            "/v1/program",
            Some(ADMIN),
            Some(json!({"referrals": {"min_purchase": {"amount": 2500, "currency": "EUR"}, "window_days": 0, "max_per_month": 1}})),
            422,
            "invalid_field",
        )
        .await;
        app.entries().await;
    }
}

#[tokio::test]
async fn racing_sales_convert_a_referral_once_and_keep_the_monthly_limit() {
    for app in apps().await {
        let (_, till) = app.partner("Grand Harbor Hotels", "EUR", 0).await;
        referral_programme(&app, 3).await;
        let anna = app.member("+420601000031").await;
        let code = code_of(&app, &anna).await;
        let ben = referred(&app, "+420601000032", &code).await;
        // Eight qualifying sales of one referred member at once: one conversion.
        let sales = (0..8).map(|i| {
            let (app, till, ben) = (&app, &till, &ben);
            async move { app.sale(till, ben, &format!("race-{i}"), 30).await }
        });
        futures::future::join_all(sales).await;
        assert_eq!(
            app.balance(&anna).await.0,
            300,
            "{}: {}",
            app.backend,
            referrals(&app, &anna).await
        );

        // Eight referred members buying at once against a limit of three a month (one used).
        let mut others = Vec::new();
        for i in 0..8 {
            others.push(referred(&app, &format!("+42060100004{i}"), &code).await);
        }
        let sales = others.iter().enumerate().map(|(i, m)| {
            let (app, till) = (&app, &till);
            async move { app.sale(till, m, &format!("many-{i}"), 30).await }
        });
        futures::future::join_all(sales).await;
        let v = referrals(&app, &anna).await;
        assert_eq!(
            (v["converted"].as_i64(), v["declined"].as_i64()),
            (Some(3), Some(6)),
            "{}: {v}",
            app.backend
        );
        assert_eq!(app.balance(&anna).await.0, 900);
        app.entries().await;
    }
}
