//! The rewards catalogue, redemptions and vouchers through the real HTTP server, on
//! SQLite and PostgreSQL: what a member can redeem and why not, a voucher from
//! redemption to the till (and cancelled, expired, forfeit), donations, racing
//! redemptions for the last units and past a member's limit, who sees what, and input
//! that must be refused.
mod common;

use common::{ADMIN, App, apps};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

fn now(app: &App) -> Timestamp {
    Timestamp::from_microsecond(app.clock.load(Ordering::SeqCst)).unwrap()
}

/// Gives `member` points through a sale of `euros` at the partner of `till` (one point
/// per euro), and answers her available points after it.
async fn earn(app: &App, till: &str, member: &str, receipt: &str, euros: i64) -> i64 {
    let r = app
        .ok(
            "POST",
            "/v1/transactions",
            till,
            json!({"external_id": receipt, "member": {"id": member}, "occurred_at": now(app).to_string(),
                   "total": {"amount": euros * 100, "currency": "EUR"}}),
        )
        .await;
    r["balance"]["available"].as_i64().unwrap()
}

fn voucher(partner: &str, cost: i64) -> Value {
    json!({"kind": "voucher", "name": {"en": "EUR 5 off", "de": "5 EUR Rabatt", "cs": "Sleva 5 EUR"},
           "description": {"en": "Five euros off your next visit."}, "cost": cost, "partner_id": partner})
}

async fn reward(app: &App, body: Value) -> String {
    app.ok("POST", "/v1/rewards", ADMIN, body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn redeem(app: &App, member: &str, reward: &str, request: &str) -> (u16, Value) {
    app.call(
        "POST",
        &format!("/v1/members/{member}/redemptions"),
        Some(ADMIN),
        Some(json!({"reward_id": reward, "request_id": request})),
    )
    .await
}

async fn offers(app: &App, member: &str, lang: &str) -> Value {
    app.ok(
        "GET",
        &format!("/v1/members/{member}/rewards?lang={lang}"),
        ADMIN,
        Value::Null,
    )
    .await
}

fn offer<'a>(all: &'a Value, reward: &str) -> &'a Value {
    all["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["reward_id"] == reward)
        .unwrap_or(&Value::Null)
}

/// The member's `reserved` account as the ledger has it.
async fn reserved(app: &App, member: &str) -> i64 {
    app.ok("GET", &format!("/v1/members/{member}"), ADMIN, Value::Null)
        .await["balance"]["reserved"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_member_sees_what_she_can_redeem_and_why_not() {
    for app in apps().await {
        let (store, till) = app.partner("Spree Mode", "EUR", 0).await;
        let jana = app.member("+420601123456").await;
        assert_eq!(earn(&app, &till, &jana, "R-1", 200).await, 200);
        let cheap = reward(&app, voucher(&store, 150)).await;
        let dear = reward(&app, voucher(&store, 500)).await;
        let gold = reward(
            &app,
            json!({"kind": "product", "name": {"en": "Silk scarf"}, "cost": 100, "partner_id": store,
                   "eligibility": "member.tier == \"gold\"",
                   "eligibility_note": {"en": "for Gold members", "de": "für Gold-Mitglieder"}}),
        )
        .await;
        let opens = now(&app)
            .checked_add(jiff::SignedDuration::from_hours(24 * 13))
            .unwrap();
        let launch = reward(
            &app,
            json!({"kind": "early_access", "name": {"en": "Winter collection, first look"}, "cost": 50,
                   "partner_id": store, "available_from": opens.to_string(),
                   "early_access": {"days": 7, "condition": "member.tier == \"gold\""}}),
        )
        .await;
        let last = reward(
            &app,
            json!({"kind": "merchandise", "name": {"en": "Tote bag"}, "cost": 10, "partner_id": store,
                   "stock": 1, "limit": {"count": 1, "per": "month"}}),
        )
        .await;
        let closed = reward(
            &app,
            json!({"kind": "product", "name": {"en": "Old offer"}, "cost": 10, "partner_id": store, "active": false}),
        )
        .await;

        let all = offers(&app, &jana, "en").await;
        assert_eq!(all["available"], 200);
        assert_eq!(offer(&all, &cheap)["can_redeem"], true, "{all}");
        assert_eq!(offer(&all, &cheap)["reason"], Value::Null);
        assert_eq!(offer(&all, &dear)["can_redeem"], false);
        assert_eq!(offer(&all, &dear)["reason_code"], "insufficient_points");
        assert_eq!(offer(&all, &dear)["reason"], "needs 300 more points");
        assert_eq!(offer(&all, &gold)["reason"], "for Gold members");
        assert_eq!(offer(&all, &gold)["reason_code"], "not_eligible");
        assert_eq!(offer(&all, &launch)["reason_code"], "not_open_yet");
        assert_eq!(offer(&all, &launch)["reason"], "opens to you on 3 December");
        assert_eq!(offer(&all, &closed), &Value::Null, "a withdrawn reward is not shown");

        // In German: the reward's own texts, and Tally's reasons.
        let de = offers(&app, &jana, "de").await;
        assert_eq!(de["language"], "de");
        assert_eq!(offer(&de, &cheap)["name"], "5 EUR Rabatt");
        assert_eq!(offer(&de, &dear)["reason"], "noch 300 Punkte nötig");
        assert_eq!(offer(&de, &gold)["reason"], "für Gold-Mitglieder");
        assert_eq!(offer(&de, &launch)["reason"], "für Sie ab 3. Dezember");
        // Czech from Accept-Language, the description falling back to English.
        let res = app
            .http
            .get(format!("{}/v1/members/{jana}/rewards", app.base))
            .bearer_auth(ADMIN)
            .header("Accept-Language", "cs-CZ,cs;q=0.9,en;q=0.5")
            .send()
            .await
            .unwrap();
        let cs: Value = res.json().await.unwrap();
        assert_eq!(cs["language"], "cs");
        assert_eq!(offer(&cs, &cheap)["name"], "Sleva 5 EUR");
        assert_eq!(offer(&cs, &cheap)["description"], "Five euros off your next visit.");
        assert_eq!(offer(&cs, &dear)["reason"], "chybí ještě 300 bodů");

        // A Gold member has early access: the launch opens to her a week earlier.
        app.ok("PATCH", &format!("/v1/members/{jana}"), ADMIN, json!({"tier": "gold"}))
            .await;
        let all = offers(&app, &jana, "en").await;
        assert_eq!(offer(&all, &gold)["can_redeem"], true, "{all}");
        assert_eq!(offer(&all, &launch)["reason"], "opens to you on 26 November");
        app.advance(6);
        assert_eq!(offer(&offers(&app, &jana, "en").await, &launch)["can_redeem"], true);

        // The last unit, then her limit.
        let (status, _) = redeem(&app, &jana, &last, "tap-1").await;
        assert_eq!(status, 201);
        let all = offers(&app, &jana, "en").await;
        assert_eq!(offer(&all, &last)["reason_code"], "sold_out");
        assert_eq!(offer(&all, &last)["stock_left"], 0);
        app.ok(
            "PUT",
            &format!("/v1/rewards/{last}"),
            ADMIN,
            json!({"kind": "merchandise", "name": {"en": "Tote bag"},
               "cost": 10, "partner_id": store, "stock": 5, "limit": {"count": 1, "per": "month"}}),
        )
        .await;
        // A PUT without `stock` leaves the units left as they are.
        let kept = app
            .ok(
                "PUT",
                &format!("/v1/rewards/{last}"),
                ADMIN,
                json!({"kind": "merchandise", "name": {"en": "Tote bag", "de": "Tragetasche"}, "cost": 10,
                       "partner_id": store, "limit": {"count": 1, "per": "month"}}),
            )
            .await;
        assert_eq!(kept["stock_left"], 5);
        let all = offers(&app, &jana, "en").await;
        assert_eq!(offer(&all, &last)["reason_code"], "limit_reached");
        assert_eq!(offer(&all, &last)["reason"], "limit reached, again from 1 December");
        app.refused(
            "POST",
            &format!("/v1/members/{jana}/redemptions"),
            Some(ADMIN),
            Some(json!({"reward_id": last, "request_id": "tap-2"})),
            409,
            "limit_reached",
        )
        .await;
        app.advance(5);
        assert_eq!(
            offer(&offers(&app, &jana, "en").await, &last)["can_redeem"],
            true,
            "a new month"
        );
        app.entries().await;
    }
}

#[tokio::test]
async fn a_voucher_from_redemption_to_the_till() {
    for app in apps().await {
        let (store, till) = app.partner("Spree Mode", "EUR", 0).await;
        let (_, other_till) = app.partner("Hotel del Mar", "EUR", 0).await;
        let jana = app.member("+420601123456").await;
        earn(&app, &till, &jana, "R-1", 1000).await;
        let five_off = reward(&app, voucher(&store, 400)).await;

        let (status, v) = redeem(&app, &jana, &five_off, "tap-1").await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["status"], "issued");
        assert_eq!(v["points"], 400);
        assert_eq!(v["balance"]["available"], 600);
        let code = v["code"].as_str().unwrap().to_string();
        assert_eq!(code.len(), 21, "{code}");
        assert_eq!(v["code_hint"].as_str().unwrap(), &code.replace('-', "")[12..16]);
        let id = v["id"].as_str().unwrap().to_string();
        assert_eq!(reserved(&app, &jana).await, 400);
        assert_eq!(app.balance(&jana).await, (600, 0));

        // The same request again: the same redemption, its code not shown again.
        let (status, again) = redeem(&app, &jana, &five_off, "tap-1").await;
        assert_eq!(status, 201);
        assert_eq!(again["id"], id.as_str());
        assert_eq!(again["code"], Value::Null);
        assert_eq!(app.balance(&jana).await, (600, 0));

        // A mistyped code is refused before any lookup; another partner's till may not
        // use it; the right till uses it once.
        let mut typo = code.clone().into_bytes();
        typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(typo).unwrap();
        let use_at = |code: String| format!("/v1/vouchers/{code}/redeem");
        app.refused(
            "POST",
            &use_at(typo),
            Some(&till),
            Some(json!({})),
            422,
            "voucher_mistyped",
        )
        .await;
        app.refused(
            "POST",
            &use_at(code.clone()),
            Some(&other_till),
            Some(json!({})),
            409,
            "voucher_wrong_partner",
        )
        .await;
        app.refused(
            "POST",
            &use_at(code.clone()),
            Some(ADMIN),
            Some(json!({})),
            403,
            "forbidden",
        )
        .await;
        let seen = app
            .ok(
                "GET",
                &format!("/v1/vouchers/{}", code.to_lowercase()),
                &till,
                Value::Null,
            )
            .await;
        assert_eq!(seen["status"], "issued");
        let used = app.ok("POST", &use_at(code.clone()), &till, json!({})).await;
        assert_eq!(used["status"], "used");
        assert_eq!(reserved(&app, &jana).await, 0);
        assert_eq!(app.balance(&jana).await, (600, 0));
        app.refused(
            "POST",
            &use_at(code.clone()),
            Some(&till),
            Some(json!({})),
            409,
            "voucher_used",
        )
        .await;
        app.refused(
            "POST",
            &format!("/v1/redemptions/{id}/cancel"),
            Some(ADMIN),
            None,
            409,
            "voucher_used",
        )
        .await;

        // Cancelled before use: points and stock back, once.
        let stocked = reward(
            &app,
            json!({"kind": "experience", "name": {"en": "Concert evening"}, "cost": 300, "partner_id": store,
                   "stock": 2, "starts_at": "2026-12-12T19:00:00+01:00"}),
        )
        .await;
        let (_, v) = redeem(&app, &jana, &stocked, "tap-2").await;
        let (cid, ccode) = (
            v["id"].as_str().unwrap().to_string(),
            v["code"].as_str().unwrap().to_string(),
        );
        assert_eq!(app.balance(&jana).await, (300, 0));
        let r = app
            .ok("GET", &format!("/v1/rewards/{stocked}"), ADMIN, Value::Null)
            .await;
        assert_eq!(r["stock_left"], 1);
        let c = app
            .ok("POST", &format!("/v1/redemptions/{cid}/cancel"), ADMIN, Value::Null)
            .await;
        assert_eq!(c["status"], "cancelled");
        assert_eq!(app.balance(&jana).await, (600, 0));
        assert_eq!(reserved(&app, &jana).await, 0);
        let r = app
            .ok("GET", &format!("/v1/rewards/{stocked}"), ADMIN, Value::Null)
            .await;
        assert_eq!(r["stock_left"], 2);
        app.refused(
            "POST",
            &format!("/v1/redemptions/{cid}/cancel"),
            Some(ADMIN),
            None,
            409,
            "voucher_cancelled",
        )
        .await;
        app.refused(
            "POST",
            &use_at(ccode),
            Some(&till),
            Some(json!({})),
            409,
            "voucher_cancelled",
        )
        .await;

        // Expired unused: refused at the till from its expiry, given back by the run.
        let short = reward(
            &app,
            json!({"kind": "voucher", "name": {"en": "Coffee"}, "cost": 100, "partner_id": store, "voucher_days": 3}),
        )
        .await;
        let (_, v) = redeem(&app, &jana, &short, "tap-3").await;
        let ecode = v["code"].as_str().unwrap().to_string();
        let eid = v["id"].as_str().unwrap().to_string();
        assert_eq!(app.balance(&jana).await, (500, 0));
        app.advance(4);
        app.refused(
            "POST",
            &use_at(ecode.clone()),
            Some(&till),
            Some(json!({})),
            409,
            "voucher_expired",
        )
        .await;
        // A lapsed voucher gets no new code, even before the run has given it back.
        app.refused(
            "POST",
            &format!("/v1/redemptions/{eid}/code"),
            Some(ADMIN),
            None,
            409,
            "voucher_closed",
        )
        .await;
        let run = app.ok("POST", "/v1/expiry-runs", ADMIN, Value::Null).await;
        assert_eq!(run["vouchers_expired"], 1);
        assert_eq!(app.balance(&jana).await, (600, 0));
        let e = app
            .ok("GET", &format!("/v1/redemptions/{eid}"), ADMIN, Value::Null)
            .await;
        assert_eq!(e["status"], "expired");
        let run = app.ok("POST", "/v1/expiry-runs", ADMIN, Value::Null).await;
        assert_eq!(run["vouchers_expired"], 0, "given back once");

        // A reward whose expired vouchers are forfeit keeps the points.
        let strict = reward(
            &app,
            json!({"kind": "voucher", "name": {"en": "Flash sale"}, "cost": 100, "partner_id": store,
                   "voucher_days": 1, "forfeit_on_expiry": true}),
        )
        .await;
        redeem(&app, &jana, &strict, "tap-4").await;
        app.advance(2);
        app.ok("POST", "/v1/expiry-runs", ADMIN, Value::Null).await;
        assert_eq!(app.balance(&jana).await, (500, 0));
        assert_eq!(reserved(&app, &jana).await, 0);

        // A voucher issued while the reward kept no stock gives none back when cancelled
        // after the operator began counting: the places are the ones the operator set.
        let (_, v) = redeem(&app, &jana, &five_off, "tap-5").await;
        let nid = v["id"].as_str().unwrap().to_string();
        let mut counted = voucher(&store, 400);
        counted["stock"] = json!(5);
        app.ok("PUT", &format!("/v1/rewards/{five_off}"), ADMIN, counted).await;
        app.ok("POST", &format!("/v1/redemptions/{nid}/cancel"), ADMIN, Value::Null)
            .await;
        let r = app
            .ok("GET", &format!("/v1/rewards/{five_off}"), ADMIN, Value::Null)
            .await;
        assert_eq!(r["stock_left"], 5, "{}", app.backend);

        // Her history says each step.
        let h = app
            .ok("GET", &format!("/v1/members/{jana}/activity"), ADMIN, Value::Null)
            .await;
        let kinds: Vec<&str> = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap())
            .collect();
        for k in ["reward_reserve", "reward_use", "reward_release", "reward_forfeit"] {
            assert!(kinds.contains(&k), "{k} in {kinds:?}");
        }
        let list = app
            .ok("GET", &format!("/v1/members/{jana}/redemptions"), ADMIN, Value::Null)
            .await;
        assert_eq!(list["items"].as_array().unwrap().len(), 5);
        app.entries().await;
    }
}

#[tokio::test]
async fn a_donation_posts_at_once() {
    for app in apps().await {
        let (_, till) = app.partner("Spree Mode", "EUR", 0).await;
        let jana = app.member("+420601123456").await;
        earn(&app, &till, &jana, "R-1", 300).await;
        let gift = reward(
            &app,
            json!({"kind": "donation", "name": {"en": "Red Cross: a warm meal"}, "cost": 250, "charity": "red_cross"}),
        )
        .await;
        let (status, v) = redeem(&app, &jana, &gift, "tap-1").await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["status"], "donated");
        assert_eq!(v["code"], Value::Null);
        assert_eq!(v["charity"], "red_cross");
        assert_eq!(app.balance(&jana).await, (50, 0));
        assert_eq!(reserved(&app, &jana).await, 0);
        let id = v["id"].as_str().unwrap();
        app.refused(
            "POST",
            &format!("/v1/redemptions/{id}/cancel"),
            Some(ADMIN),
            None,
            409,
            "not_a_voucher",
        )
        .await;
        let (status, v) = redeem(&app, &jana, &gift, "tap-2").await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("insufficient_points"))
        );
        app.entries().await;
    }
}

#[tokio::test]
async fn racing_redemptions_never_oversell_nor_pass_a_limit() {
    for app in apps().await {
        let (store, till) = app.partner("Spree Mode", "EUR", 0).await;
        let last_three = reward(
            &app,
            json!({"kind": "experience", "name": {"en": "Backstage tour"}, "cost": 10, "partner_id": store,
                   "stock": 3, "starts_at": "2026-12-20T18:00:00Z"}),
        )
        .await;
        let mut members = Vec::new();
        for i in 0..12 {
            let m = app.member(&format!("+42060112{i:04}")).await;
            earn(&app, &till, &m, &format!("R-{i}"), 50).await;
            members.push(m);
        }
        let races = members.iter().map(|m| redeem(&app, m, &last_three, "race"));
        let answers = futures::future::join_all(races).await;
        let won = answers.iter().filter(|(s, _)| *s == 201).count();
        let sold_out = answers
            .iter()
            .filter(|(s, v)| *s == 409 && v["error"]["code"] == "sold_out")
            .count();
        assert_eq!((won, sold_out), (3, 9), "{}: {answers:?}", app.backend);
        let r = app
            .ok("GET", &format!("/v1/rewards/{last_three}"), ADMIN, Value::Null)
            .await;
        assert_eq!(r["stock_left"], 0);

        // One member tapping many times at once never passes her limit.
        let twice = reward(
            &app,
            json!({"kind": "voucher", "name": {"en": "Coffee"}, "cost": 5, "partner_id": store,
                   "limit": {"count": 2, "per": "day"}}),
        )
        .await;
        let jana = &members[0];
        let taps: Vec<String> = (0..8).map(|i| format!("tap-{i}")).collect();
        let answers = futures::future::join_all(taps.iter().map(|t| redeem(&app, jana, &twice, t))).await;
        let won = answers.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(won, 2, "{}: {answers:?}", app.backend);
        assert!(
            answers
                .iter()
                .all(|(s, v)| *s == 201 || v["error"]["code"] == "limit_reached")
        );
        app.entries().await;
    }
}

#[tokio::test]
async fn partners_see_and_fulfil_only_their_own() {
    for app in apps().await {
        let (store, till) = app.partner("Spree Mode", "EUR", 0).await;
        let (hotel, hotel_till) = app.partner("Hotel del Mar", "EUR", 0).await;
        let jana = app.member("+420601123456").await;
        earn(&app, &till, &jana, "R-1", 1000).await;
        // A partner writes rewards it fulfils, and no other.
        let own = app.ok("POST", "/v1/rewards", &till, voucher(&store, 100)).await;
        assert_eq!(own["partner_id"], store.as_str());
        let own = own["id"].as_str().unwrap().to_string();
        app.refused(
            "POST",
            "/v1/rewards",
            Some(&till),
            Some(voucher(&hotel, 100)),
            403,
            "forbidden",
        )
        .await;
        let theirs = reward(&app, voucher(&hotel, 100)).await;
        app.refused(
            "GET",
            &format!("/v1/rewards/{theirs}"),
            Some(&till),
            None,
            404,
            "not_found",
        )
        .await;
        app.refused(
            "PUT",
            &format!("/v1/rewards/{theirs}"),
            Some(&till),
            Some(voucher(&store, 1)),
            404,
            "not_found",
        )
        .await;
        let listed = app.ok("GET", "/v1/rewards", &till, Value::Null).await;
        let ids: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![own.as_str()]);
        // Members' catalogue and redemptions are the operator's.
        app.refused(
            "GET",
            &format!("/v1/members/{jana}/rewards"),
            Some(&till),
            None,
            403,
            "forbidden",
        )
        .await;
        app.refused(
            "POST",
            &format!("/v1/members/{jana}/redemptions"),
            Some(&till),
            Some(json!({"reward_id": own, "request_id": "x"})),
            403,
            "forbidden",
        )
        .await;
        let (_, mine) = redeem(&app, &jana, &own, "tap-1").await;
        let (_, hotels) = redeem(&app, &jana, &theirs, "tap-2").await;
        // Points she set aside for vouchers are the operator's to see: to a partner they
        // would tell of vouchers she holds with the others.
        let as_operator = app.ok("GET", &format!("/v1/members/{jana}"), ADMIN, Value::Null).await;
        assert_eq!(as_operator["balance"]["reserved"], 200);
        for path in [format!("/v1/members/{jana}"), format!("/v1/members/{jana}/balance")] {
            let seen = app.ok("GET", &path, &till, Value::Null).await;
            let balance = seen.get("balance").unwrap_or(&seen);
            assert!(balance.get("available").is_some(), "{seen}");
            assert_eq!(balance.get("reserved"), None, "{path}: {seen}");
        }
        // Each partner sees the vouchers it fulfils, not the other's.
        let page = app
            .ok("GET", "/v1/redemptions?status=issued", &hotel_till, Value::Null)
            .await;
        let ids: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![hotels["id"].as_str().unwrap()]);
        let page = app
            .ok("GET", &format!("/v1/members/{jana}/redemptions"), &till, Value::Null)
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        let hotel_code = hotels["code"].as_str().unwrap();
        app.refused(
            "GET",
            &format!("/v1/vouchers/{hotel_code}"),
            Some(&till),
            None,
            404,
            "not_found",
        )
        .await;
        let hid = hotels["id"].as_str().unwrap();
        app.refused(
            "GET",
            &format!("/v1/redemptions/{hid}"),
            Some(&till),
            None,
            404,
            "not_found",
        )
        .await;
        app.refused(
            "POST",
            &format!("/v1/redemptions/{hid}/cancel"),
            Some(&till),
            None,
            404,
            "not_found",
        )
        .await;
        // The hotel calls its own off: allowed.
        let c = app
            .ok(
                "POST",
                &format!("/v1/redemptions/{hid}/cancel"),
                &hotel_till,
                Value::Null,
            )
            .await;
        assert_eq!(c["status"], "cancelled");
        // A lost code: the operator issues a new one, the old one stops working.
        let mid = mine["id"].as_str().unwrap();
        let old = mine["code"].as_str().unwrap().to_string();
        let fresh = app
            .ok("POST", &format!("/v1/redemptions/{mid}/code"), ADMIN, Value::Null)
            .await;
        let new_code = fresh["code"].as_str().unwrap().to_string();
        assert_ne!(new_code, old);
        app.refused(
            "POST",
            &format!("/v1/vouchers/{old}/redeem"),
            Some(&till),
            Some(json!({})),
            404,
            "not_found",
        )
        .await;
        app.ok("POST", &format!("/v1/vouchers/{new_code}/redeem"), &till, json!({}))
            .await;
        app.entries().await;
    }
}

#[tokio::test]
async fn rewards_that_cannot_be_are_refused_and_write_nothing() {
    for app in apps().await {
        let (store, _) = app.partner("Spree Mode", "EUR", 0).await;
        let bad = [
            (
                json!({"kind": "voucher", "name": {"de": "Nur Deutsch"}, "cost": 10, "partner_id": store}),
                "invalid_field",
            ),
            (
                json!({"kind": "voucher", "name": {"en": "Zero"}, "cost": 0, "partner_id": store}),
                "invalid_field",
            ),
            (
                json!({"kind": "voucher", "name": {"en": "No partner"}, "cost": 10}),
                "invalid_field",
            ),
            (
                json!({"kind": "voucher", "name": {"en": "Ghost"}, "cost": 10, "partner_id": "ptn_nobody"}),
                "unknown_partner",
            ),
            (
                json!({"kind": "experience", "name": {"en": "No date"}, "cost": 10, "partner_id": store}),
                "invalid_field",
            ),
            (
                json!({"kind": "donation", "name": {"en": "No charity"}, "cost": 10}),
                "invalid_field",
            ),
            (
                json!({"kind": "voucher", "name": {"en": "Bad CEL"}, "cost": 10, "partner_id": store,
                    "eligibility": "member.tier =="}),
                "invalid_rule",
            ),
            (
                json!({"kind": "voucher", "name": {"en": "Basket"}, "cost": 10, "partner_id": store,
                    "eligibility": "basket.total > 10.0"}),
                "invalid_rule",
            ),
            (
                json!({"kind": "voucher", "name": {"en": "Early"}, "cost": 10, "partner_id": store,
                    "early_access": {"days": 3}}),
                "invalid_field",
            ),
            (
                json!({"kind": "voucher", "name": {"en": "Window"}, "cost": 10, "partner_id": store,
                    "available_from": "2026-12-01T00:00:00Z", "available_until": "2026-11-01T00:00:00Z"}),
                "invalid_field",
            ),
            (
                json!({"kind": "voucher", "name": {"en": "Lang", "english": "no"}, "cost": 10, "partner_id": store}),
                "invalid_field",
            ),
            (
                json!({"kind": "voucher", "name": {"en": "\u{0007}bell"}, "cost": 10, "partner_id": store}),
                "invalid_field",
            ),
        ];
        for (body, code) in bad {
            app.refused("POST", "/v1/rewards", Some(ADMIN), Some(body), 422, code)
                .await;
        }
        let listed = app.ok("GET", "/v1/rewards", ADMIN, Value::Null).await;
        assert_eq!(listed, json!([]), "{}", app.backend);
        let jana = app.member("+420601123456").await;
        app.refused(
            "POST",
            &format!("/v1/members/{jana}/redemptions"),
            Some(ADMIN),
            Some(json!({"reward_id": "rwd_nothing", "request_id": "x"})),
            404,
            "not_found",
        )
        .await;
        for code in ["", "x", "ABCD-EFGH-JKMN-PQRS-TT", "%00", "ABCD-EFGH-JKMN-PQRS-U"] {
            let (status, v) = app
                .call("GET", &format!("/v1/vouchers/{code}"), Some(ADMIN), None)
                .await;
            assert!(matches!(status, 404 | 422), "{code}: {status} {v}");
        }
        app.entries().await;
    }
}
