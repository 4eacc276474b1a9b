//! Shared wallets through the real HTTP server, on SQLite and PostgreSQL: a household
//! that earns and spends together (rights, the wallet that paid named in the answer,
//! returns to the wallet that paid), racing spends on one wallet from several members,
//! expiry of a wallet's lots, leaving and closing with a split, a business with
//! contacts, the statement per member from the ledger, and what a partner may see.
mod common;

use common::{ADMIN, App, apps};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

fn now(app: &App) -> Timestamp {
    Timestamp::from_microsecond(app.clock.load(Ordering::SeqCst)).unwrap()
}

async fn sale(app: &App, till: &str, member: &str, receipt: &str, euros: i64, redeem: i64) -> (u16, Value) {
    app.call(
        "POST",
        "/v1/transactions",
        Some(till),
        Some(
            json!({"external_id": receipt, "member": {"id": member}, "occurred_at": now(app).to_string(),
               "total": {"amount": euros * 100, "currency": "EUR"}, "redeem_points": redeem}),
        ),
    )
    .await
}

async fn household(app: &App, owner: &str) -> String {
    let w = app
        .ok(
            "POST",
            "/v1/wallets",
            ADMIN,
            json!({"kind": "household", "name": "The Nováks", "owner_id": owner}),
        )
        .await;
    assert_eq!(w["members"][0]["role"], "owner", "{w}");
    assert_eq!(w["members"][0]["default"], true, "the owner earns into it: {w}");
    w["id"].as_str().unwrap().to_string()
}

async fn invite(app: &App, wallet: &str) -> String {
    let i = app
        .ok("POST", &format!("/v1/wallets/{wallet}/invites"), ADMIN, json!({}))
        .await;
    i["code"].as_str().unwrap().to_string()
}

async fn join(app: &App, wallet: &str, member: &str, code: &str, earn_into: bool, spend: bool) -> Value {
    app.ok(
        "POST",
        &format!("/v1/wallets/{wallet}/members"),
        ADMIN,
        json!({"member_id": member, "code": code, "earn_into": earn_into, "spend": spend}),
    )
    .await
}

async fn wallet(app: &App, id: &str) -> Value {
    app.ok("GET", &format!("/v1/wallets/{id}"), ADMIN, Value::Null).await
}

#[tokio::test]
async fn a_household_earns_and_spends_together() {
    for app in apps().await {
        let (drogerie, till) = app.partner("Drogerie", "EUR", 0).await;
        let (anna, ben, cyril) = (
            app.member("+420601000001").await,
            app.member("+420601000002").await,
            app.member("+420601000003").await,
        );
        let home = household(&app, &anna).await;
        let code = invite(&app, &home).await;
        // A mistyped code is refused before any lookup; a right one works once.
        let (status, _) = app
            .call(
                "POST",
                &format!("/v1/wallets/{home}/members"),
                Some(ADMIN),
                Some(json!({"member_id": ben, "code": "0000-0000-0000-000!", "earn_into": true, "spend": false})),
            )
            .await;
        assert_eq!(status, 422);
        let w = join(&app, &home, &ben, &code.to_lowercase(), true, false).await;
        assert_eq!(w["members"].as_array().unwrap().len(), 2, "{w}");
        app.refused(
            "POST",
            &format!("/v1/wallets/{home}/members"),
            Some(ADMIN),
            Some(json!({"member_id": cyril, "code": code, "earn_into": true, "spend": true})),
            422,
            "invalid_field",
        )
        .await;

        // Ben earns into the household; his own balance stays empty.
        let (status, r) = sale(&app, &till, &ben, "B-1", 100, 0).await;
        assert_eq!(status, 201, "{r}");
        let earned = r["points_earned"].as_i64().unwrap();
        assert!(earned > 0);
        assert_eq!(r["wallet"]["id"], home.as_str());
        assert_eq!(r["wallet"]["points_earned"], earned);
        assert_eq!(r["balance"]["available"], 0, "{r}");
        assert_eq!(app.balance(&ben).await, (0, 0));
        assert_eq!(wallet(&app, &home).await["balance"]["available"], earned);

        // Ben may not spend the household's points: refused, nothing written.
        let entries = app.entries().await;
        let (status, r) = sale(&app, &till, &ben, "B-2", 100, 10).await;
        assert_eq!(
            (status, r["error"]["code"].as_str()),
            (422, Some("not_allowed_to_spend")),
            "{r}"
        );
        assert_eq!(app.entries().await, entries);

        // Anna pays with them; the answer says which wallet paid.
        let (status, paid) = sale(&app, &till, &anna, "A-1", 50, 40).await;
        assert_eq!(status, 201, "{paid}");
        assert_eq!(paid["wallet"]["points_redeemed"], 40);
        let after = earned - 40 + paid["points_earned"].as_i64().unwrap();
        assert_eq!(paid["wallet"]["balance"]["available"], after);
        assert_eq!(wallet(&app, &home).await["balance"]["available"], after);

        // A till naming a wallet the member is not in is refused.
        let (status, r) = app
            .call(
                "POST",
                "/v1/transactions",
                Some(&till),
                Some(
                    json!({"external_id": "C-1", "member": {"id": cyril}, "total": {"amount": 1000, "currency": "EUR"},
                            "wallet_id": home}),
                ),
            )
            .await;
        assert_eq!(
            (status, r["error"]["code"].as_str()),
            (422, Some("not_in_wallet")),
            "{r}"
        );

        // Returning Anna's sale refunds the wallet that paid and takes back what it earned.
        let txn = paid["id"].as_str().unwrap();
        let ret = app
            .ok(
                "POST",
                &format!("/v1/transactions/{txn}/returns"),
                &till,
                json!({"external_id": "A-1-R", "amount": {"amount": 5000, "currency": "EUR"}}),
            )
            .await;
        assert_eq!(ret["wallet"]["id"], home.as_str(), "{ret}");
        assert_eq!(ret["points_refunded"], 40);
        assert_eq!(wallet(&app, &home).await["balance"]["available"], earned);

        // The statement per member comes from the ledger.
        let st = app
            .ok("GET", &format!("/v1/wallets/{home}/statement"), ADMIN, Value::Null)
            .await;
        let line = |member: &str, code: &str| {
            st["lines"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["member_id"] == member && l["code"] == code)
                .map(|l| l["points"].as_i64().unwrap())
        };
        assert_eq!(line(&ben, "earn"), Some(earned), "{st}");
        assert_eq!(line(&anna, "redeem"), Some(-40), "{st}");
        assert_eq!(line(&anna, "return_refund"), Some(40), "{st}");

        // A member belongs to one household at most; the owner closes instead of leaving.
        let other = household(&app, &cyril).await;
        let code = invite(&app, &other).await;
        app.refused(
            "POST",
            &format!("/v1/wallets/{other}/members"),
            Some(ADMIN),
            Some(json!({"member_id": ben, "code": code, "earn_into": true, "spend": true})),
            409,
            "household_taken",
        )
        .await;
        app.refused(
            "DELETE",
            &format!("/v1/wallets/{home}/members/{anna}"),
            Some(ADMIN),
            None,
            409,
            "owner_cannot_leave",
        )
        .await;

        // A partner sees Ben's rights at its till, never the wallet itself.
        let mine = app
            .ok("GET", &format!("/v1/members/{ben}/wallets"), &till, Value::Null)
            .await;
        assert_eq!(mine[0]["id"], home.as_str());
        assert_eq!(
            (mine[0]["earn_into"].as_bool(), mine[0]["spend"].as_bool()),
            (Some(true), Some(false))
        );
        assert!(mine[0]["available"].is_null(), "no balance without spend: {mine}");
        // The family's name and Ben's role are his personal data: the drugstore sees
        // them once he shares his data with it, the operator always.
        assert!(
            mine[0]["name"].is_null() && mine[0]["role"].is_null(),
            "{}: no consent, no name: {mine}",
            app.backend
        );
        // A consent to another partner changes nothing for this one.
        let (other, _) = app.partner("Lékárna", "EUR", 0).await;
        app.ok(
            "PUT",
            &format!("/v1/members/{ben}/consents/{other}"),
            ADMIN,
            Value::Null,
        )
        .await;
        let mine = app
            .ok("GET", &format!("/v1/members/{ben}/wallets"), &till, Value::Null)
            .await;
        assert!(mine[0]["name"].is_null(), "{}: {mine}", app.backend);
        let path = format!("/v1/members/{ben}/consents/{drogerie}");
        app.ok("PUT", &path, ADMIN, Value::Null).await;
        let mine = app
            .ok("GET", &format!("/v1/members/{ben}/wallets"), &till, Value::Null)
            .await;
        assert_eq!(
            (mine[0]["role"].as_str(), mine[0]["name"].is_string()),
            (Some("member"), true)
        );
        let all = app
            .ok("GET", &format!("/v1/members/{anna}/wallets"), ADMIN, Value::Null)
            .await;
        assert_eq!(all[0]["role"], "owner", "{all}");
        // Withdrawn, the name is hidden again.
        app.ok("DELETE", &path, ADMIN, Value::Null).await;
        let mine = app
            .ok("GET", &format!("/v1/members/{ben}/wallets"), &till, Value::Null)
            .await;
        assert!(mine[0]["role"].is_null(), "{}: {mine}", app.backend);
        for path in [format!("/v1/wallets/{home}"), format!("/v1/wallets/{home}/statement")] {
            app.refused("GET", &path, Some(&till), None, 403, "forbidden").await;
        }
        app.entries().await;
    }
}

#[tokio::test]
async fn racing_spends_on_one_wallet_never_overdraw() {
    for app in apps().await {
        let (_, till) = app.partner("Kavárna", "EUR", 0).await;
        let owner = app.member("+420602000001").await;
        let home = household(&app, &owner).await;
        // Three members who may spend the wallet and earn for themselves.
        let mut spenders = Vec::new();
        for i in 2..=4 {
            let m = app.member(&format!("+42060200000{i}")).await;
            let code = invite(&app, &home).await;
            join(&app, &home, &m, &code, false, true).await;
            spenders.push(m);
        }
        // The owner fills the wallet.
        let (status, r) = sale(&app, &till, &owner, "FILL", 1000, 0).await;
        assert_eq!(status, 201, "{r}");
        let pool = r["wallet"]["balance"]["available"].as_i64().unwrap();
        let each = pool / 10;
        let calls = (0..24).map(|i| {
            let (app, till, who, home) = (&app, &till, spenders[i % spenders.len()].clone(), &home);
            async move {
                app.call(
                    "POST",
                    "/v1/transactions",
                    Some(till),
                    Some(
                        json!({"external_id": format!("R-{i}"), "member": {"id": who}, "wallet_id": home,
                                "total": {"amount": 100_000, "currency": "EUR"}, "redeem_points": each}),
                    ),
                )
                .await
            }
        });
        let mut paid = 0;
        for (status, v) in futures::future::join_all(calls).await {
            match status {
                201 => paid += 1,
                422 => assert_eq!(v["error"]["code"], "insufficient_points", "{v}"),
                other => panic!("{}: {other} {v}", app.backend),
            }
        }
        let w = wallet(&app, &home).await;
        let left = w["balance"]["available"].as_i64().unwrap();
        assert!(left >= 0);
        assert_eq!(
            paid,
            pool / each,
            "{}: exactly what the pool covers was paid",
            app.backend
        );
        // The spenders do not earn into the wallet: it lost exactly what was paid.
        assert_eq!(left, pool - paid * each);
        app.entries().await;
    }
}

#[tokio::test]
async fn a_wallets_points_expire_and_a_closing_wallet_splits_every_point() {
    for app in apps().await {
        let (_, till) = app.partner("Hotel", "EUR", 0).await;
        let (owner, kid) = (app.member("+420603000001").await, app.member("+420603000002").await);
        let home = household(&app, &owner).await;
        let code = invite(&app, &home).await;
        join(&app, &home, &kid, &code, true, true).await;
        let (_, first) = sale(&app, &till, &kid, "K-1", 100, 0).await;
        let old = first["points_earned"].as_i64().unwrap();
        // A member of no wallet whose points expire in the same run.
        let solo = app.member("+420603000009").await;
        let (_, r) = sale(&app, &till, &solo, "S-1", 20, 0).await;
        let solo_points = r["points_earned"].as_i64().unwrap();
        // 25 months on, the first lot has expired in the wallet, as it would for a member.
        app.advance(365);
        let (_, second) = sale(&app, &till, &owner, "O-1", 30, 0).await;
        let new = second["points_earned"].as_i64().unwrap();
        app.advance(400);
        // Reading the wallet settles it: what a till is told may be spent is what may be
        // spent now, the expired lot gone before any run.
        let mine = app
            .ok("GET", &format!("/v1/members/{owner}/wallets"), &till, Value::Null)
            .await;
        assert_eq!(mine[0]["available"], new, "{}: {mine}", app.backend);
        let run = app.ok("POST", "/v1/expiry-runs", ADMIN, json!({})).await;
        assert_eq!(run["points_expired"].as_i64().unwrap(), solo_points, "{run}");
        assert_eq!(app.balance(&solo).await, (0, 0));
        assert_eq!(wallet(&app, &home).await["balance"]["available"], new);
        let st = app
            .ok("GET", &format!("/v1/wallets/{home}/statement"), ADMIN, Value::Null)
            .await;
        assert!(
            st["lines"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["code"] == "expire" && l["points"] == -old),
            "{st}"
        );

        // The kid leaves: what they pooled stays.
        app.ok(
            "DELETE",
            &format!("/v1/wallets/{home}/members/{kid}"),
            ADMIN,
            Value::Null,
        )
        .await;
        assert_eq!(wallet(&app, &home).await["balance"]["available"], new);
        let (_, r) = sale(&app, &till, &kid, "K-2", 10, 0).await;
        assert!(r.get("wallet").is_none(), "the kid now earns for themself: {r}");

        // Closing needs every point given out, to current members, each named once.
        app.refused(
            "POST",
            &format!("/v1/wallets/{home}/close"),
            Some(ADMIN),
            Some(json!({"split": [{"member_id": owner, "points": new - 1}]})),
            409,
            "wallet_not_empty",
        )
        .await;
        app.refused(
            "POST",
            &format!("/v1/wallets/{home}/close"),
            Some(ADMIN),
            Some(json!({"split": [{"member_id": kid, "points": new}]})),
            422,
            "invalid_field",
        )
        .await;
        let before = app.balance(&owner).await.0;
        let closed = app
            .ok(
                "POST",
                &format!("/v1/wallets/{home}/close"),
                ADMIN,
                json!({"split": [{"member_id": owner, "points": new}]}),
            )
            .await;
        assert_eq!(closed["status"], "closed");
        assert_eq!(closed["balance"]["available"], 0);
        assert_eq!(app.balance(&owner).await.0, before + new);
        // Closed: the owner's sales are their own again, nothing moves in the wallet,
        // and returning a sale it earned takes back from the buyer's own points.
        let (_, r) = sale(&app, &till, &owner, "O-2", 10, 0).await;
        assert!(r.get("wallet").is_none(), "{r}");
        let o1 = second["id"].as_str().unwrap();
        let ret = app
            .ok(
                "POST",
                &format!("/v1/transactions/{o1}/returns"),
                &till,
                json!({"external_id": "O-1-R", "amount": {"amount": 3000, "currency": "EUR"}}),
            )
            .await;
        assert!(ret.get("wallet").is_none(), "{ret}");
        assert_eq!(ret["points_reversed"], new, "{ret}");
        assert_eq!(wallet(&app, &home).await["balance"]["available"], 0);
        let (status, v) = app
            .call("GET", "/v1/wallets/wal_01jd5k3v9q8w7e6r5t4y3u2i1o", Some(ADMIN), None)
            .await;
        assert_eq!((status, v["error"]["code"].as_str()), (404, Some("wallet_not_found")));
        app.refused(
            "POST",
            &format!("/v1/wallets/{home}/invites"),
            Some(ADMIN),
            Some(json!({})),
            409,
            "wallet_closed",
        )
        .await;
        app.entries().await;
    }
}

#[tokio::test]
async fn a_business_collects_from_its_contacts() {
    for app in apps().await {
        let (_, till) = app.partner("Tankstelle", "EUR", 0).await;
        let (eva, filip) = (app.member("+420604000001").await, app.member("+420604000002").await);
        for bad in [
            json!({"kind": "business", "name": "Acme travel"}),
            json!({"kind": "business", "name": "Acme", "company_name": "Acme s.r.o.", "owner_id": eva}),
            json!({"kind": "business", "name": "Acme", "company_name": "Acme s.r.o.", "vat_id": "cz 123"}),
            json!({"kind": "household", "name": "No owner"}),
        ] {
            app.refused("POST", "/v1/wallets", Some(ADMIN), Some(bad), 422, "invalid_field")
                .await;
        }
        let acme = app
            .ok(
                "POST",
                "/v1/wallets",
                ADMIN,
                json!({"kind": "business", "name": "Acme travel", "company_name": "Acme s.r.o.", "vat_id": "CZ12345678"}),
            )
            .await;
        let acme = acme["id"].as_str().unwrap().to_string();
        let globex = app
            .ok(
                "POST",
                "/v1/wallets",
                ADMIN,
                json!({"kind": "business", "name": "Globex", "company_name": "Globex a.s."}),
            )
            .await;
        let globex = globex["id"].as_str().unwrap().to_string();
        app.refused(
            "POST",
            &format!("/v1/wallets/{globex}/invites"),
            Some(ADMIN),
            Some(json!({})),
            409,
            "not_a_household",
        )
        .await;
        // Eva is a contact of both; sales go to her default unless the till names one.
        for (w, default) in [(&acme, true), (&globex, false)] {
            app.ok(
                "POST",
                &format!("/v1/wallets/{w}/members"),
                ADMIN,
                json!({"member_id": eva, "earn_into": true, "spend": true, "default": default}),
            )
            .await;
        }
        app.ok(
            "POST",
            &format!("/v1/wallets/{acme}/members"),
            ADMIN,
            json!({"member_id": filip, "earn_into": true, "spend": false}),
        )
        .await;
        let (_, r) = sale(&app, &till, &eva, "E-1", 100, 0).await;
        assert_eq!(r["wallet"]["id"], acme.as_str(), "{r}");
        let (status, r) = app
            .call(
                "POST",
                "/v1/transactions",
                Some(&till),
                Some(json!({"external_id": "E-2", "member": {"id": eva}, "wallet_id": globex,
                            "total": {"amount": 5000, "currency": "EUR"}})),
            )
            .await;
        assert_eq!(
            (status, r["wallet"]["id"].as_str()),
            (201, Some(globex.as_str())),
            "{r}"
        );
        let (_, r) = sale(&app, &till, &filip, "F-1", 100, 0).await;
        assert_eq!(r["wallet"]["id"], acme.as_str(), "{r}");
        // Per contact, from the ledger.
        let st = app
            .ok("GET", &format!("/v1/wallets/{acme}/statement"), ADMIN, Value::Null)
            .await;
        let members: Vec<&str> = st["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["code"] == "earn")
            .filter_map(|l| l["member_id"].as_str())
            .collect();
        assert!(
            members.contains(&eva.as_str()) && members.contains(&filip.as_str()),
            "{st}"
        );
        // Rights change: Filip may spend now.
        let w = app
            .ok(
                "PATCH",
                &format!("/v1/wallets/{acme}/members/{filip}"),
                ADMIN,
                json!({"earn_into": true, "spend": true}),
            )
            .await;
        assert!(
            w["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["member_id"] == filip.as_str() && m["spend"] == true)
        );
        let (status, r) = sale(&app, &till, &filip, "F-2", 100, 10).await;
        assert_eq!(
            (status, r["wallet"]["points_redeemed"].as_i64()),
            (201, Some(10)),
            "{r}"
        );
        app.entries().await;
    }
}

#[tokio::test]
async fn a_return_racing_the_close_never_lands_in_a_closed_wallet() {
    for app in apps().await {
        let (_, till) = app.partner("Papírnictví", "EUR", 0).await;
        let mut closed_first = 0;
        for round in 0..6 {
            let owner = app.member(&format!("+42060500{round}001")).await;
            let kid = app.member(&format!("+42060500{round}002")).await;
            let home = household(&app, &owner).await;
            let code = invite(&app, &home).await;
            // The kid pays with the wallet's points and earns for himself: returning his
            // sale refunds the wallet, or him once it has closed (as read under the
            // wallet's lock: a refund never lands in a wallet that closed meanwhile).
            join(&app, &home, &kid, &code, false, true).await;
            let (status, filled) = sale(&app, &till, &owner, &format!("F-{round}"), 100, 0).await;
            assert_eq!(status, 201, "{filled}");
            let (status, bought) = app
                .call(
                    "POST",
                    "/v1/transactions",
                    Some(&till),
                    Some(
                        json!({"external_id": format!("B-{round}"), "member": {"id": kid}, "wallet_id": home,
                                "total": {"amount": 10_000, "currency": "EUR"}, "redeem_points": 50}),
                    ),
                )
                .await;
            assert_eq!(status, 201, "{bought}");
            assert_eq!(bought["wallet"]["points_redeemed"], 50, "{bought}");
            // He leaves: closing no longer waits on his row, the return still does.
            let path = format!("/v1/wallets/{home}/members/{kid}");
            app.ok("DELETE", &path, ADMIN, Value::Null).await;
            let txn = bought["id"].as_str().unwrap().to_string();
            let held = wallet(&app, &home).await["balance"]["available"].as_i64().unwrap();
            let (close_path, return_path) = (
                format!("/v1/wallets/{home}/close"),
                format!("/v1/transactions/{txn}/returns"),
            );
            let close = app.call(
                "POST",
                &close_path,
                Some(ADMIN),
                Some(json!({"split": [{"member_id": owner, "points": held}]})),
            );
            let give_back = app.call(
                "POST",
                &return_path,
                Some(&till),
                Some(json!({"external_id": format!("RET-{round}"), "amount": {"amount": 10_000, "currency": "EUR"}})),
            );
            // Each goes first in turn: both orders are checked.
            let ((closed, c), (returned, r)) = match round % 2 {
                0 => futures::future::join(close, give_back).await,
                _ => {
                    let (r, c) = futures::future::join(give_back, close).await;
                    (c, r)
                }
            };
            assert_eq!(returned, 201, "{}: {r}", app.backend);
            match closed {
                200 => {}
                409 => assert_eq!(c["error"]["code"], "wallet_not_empty", "{}: {c}", app.backend),
                other => panic!("{}: {other} {c}", app.backend),
            }
            let w = wallet(&app, &home).await;
            let kid_has = app.balance(&kid).await.0;
            match w["status"].as_str() {
                // The close first: the wallet holds nothing, the refund went to the kid
                // (what he earned on the sale was taken back from him either way).
                Some("closed") => {
                    assert_eq!(
                        (w["balance"]["available"].as_i64(), w["balance"]["pending"].as_i64()),
                        (Some(0), Some(0)),
                        "{}: {w}",
                        app.backend
                    );
                    assert_eq!(kid_has, 50, "{}: the refund is the kid's", app.backend);
                    closed_first += 1;
                }
                // The return first: the wallet got its 50 back and the split no longer
                // matched it.
                _ => {
                    assert_eq!(
                        w["balance"]["available"].as_i64(),
                        Some(held + 50),
                        "{}: {w}",
                        app.backend
                    );
                    assert_eq!(kid_has, 0, "{}", app.backend);
                }
            }
        }
        eprintln!("{}: the close came first in {closed_first} of 6 rounds", app.backend);
        app.entries().await;
    }
}
