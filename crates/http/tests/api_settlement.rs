//! Settlement through the real HTTP server on SQLite and PostgreSQL: the worked example
//! of docs/SETTLEMENT.md (Berlin issues 10,000 points in November at EUR 0.008, members
//! redeem 4,000 there at EUR 0.0095, a programme-wide campaign gives 1,000 the store
//! does not pay for: the store owes EUR 42.00), Prague's statement in CZK at the rate
//! the month closed at, closing (stored, hashed, never changed; a sale dated in it that
//! arrives later settles in December as a late item), and who may see what.
mod common;

use common::{ADMIN, App, apps};
use serde_json::{Value, json};

/// A sale of `total` (minor units, currency) at the partner of `till`, dated `at`,
/// paying `redeem` points.
async fn sale(app: &App, till: &str, member: &str, receipt: &str, at: &str, total: (i64, &str), redeem: i64) -> Value {
    let (minor, currency) = total;
    app.ok(
        "POST",
        "/v1/transactions",
        till,
        json!({"external_id": receipt, "member": {"id": member}, "occurred_at": at,
               "total": {"amount": minor, "currency": currency}, "redeem_points": redeem}),
    )
    .await
}

/// The text and headers of a GET.
async fn get_text(app: &App, path: &str, key: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let res = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.text().await.unwrap(), headers)
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn the_worked_example_holds_and_a_closed_month_never_changes() {
    for app in apps().await {
        let b = app.backend;
        let (berlin, berlin_till) = app.partner("Berlin Apparel", "EUR", 0).await;
        let (prague, prague_till) = app.partner("Prague Drugstore", "CZK", 0).await;
        let anna = app.member("+420602000001").await;
        app.ok(
            "PUT",
            "/v1/settlement/prices",
            ADMIN,
            json!({"effective_from": "2026-11-01", "issue_price": "0.008", "reimbursement_rate": "0.0095"}),
        )
        .await;
        // 6,000 points funded by the store, then 4,000 of them spent there.
        let first = sale(
            &app,
            &berlin_till,
            &anna,
            "B-1",
            "2026-11-03T10:00:00Z",
            (600_000, "EUR"),
            0,
        )
        .await;
        assert_eq!(first["points_earned"], 6_000, "{b}: {first}");
        let spend = sale(
            &app,
            &berlin_till,
            &anna,
            "B-2",
            "2026-11-10T10:00:00Z",
            (5_000, "EUR"),
            4_000,
        )
        .await;
        assert_eq!(spend["points_redeemed"], 4_000, "{b}: {spend}");
        let so_far = 6_000 + spend["points_earned"].as_i64().unwrap();
        // A programme-wide campaign: 1,000 points the operator funds.
        app.ok(
            "POST",
            "/v1/earning-rules",
            ADMIN,
            json!({"name": "November campaign", "effect": {"kind": "fixed", "points": 1000}}),
        )
        .await;
        // The last sale brings the store's own points to exactly 10,000.
        let last = sale(
            &app,
            &berlin_till,
            &anna,
            "B-3",
            "2026-11-18T10:00:00Z",
            ((10_000 - so_far) * 100, "EUR"),
            0,
        )
        .await;
        assert_eq!(
            last["points_earned"].as_i64().unwrap(),
            10_000 - so_far + 1_000,
            "{b}: {last}"
        );
        // Prague: 5,040 points (CZK 5,040 at 25.2 = EUR 200 → 200 points, a campaign of 1,000).
        let cz = sale(
            &app,
            &prague_till,
            &anna,
            "P-1",
            "2026-11-19T10:00:00Z",
            (504_000, "CZK"),
            0,
        )
        .await;
        let cz_points = cz["points_earned"].as_i64().unwrap() - 1_000;

        // November while open: today's rates.
        let open = app
            .ok(
                "GET",
                &format!("/v1/settlements/2026-11/partners/{berlin}"),
                ADMIN,
                Value::Null,
            )
            .await;
        assert_eq!(open["status"], "open", "{b}: {open}");
        assert_eq!(
            (open["issued"]["points"].as_i64(), open["issued"]["amount"].as_i64()),
            (Some(10_000), Some(8_000)),
            "{b}: {open}"
        );
        assert_eq!(
            (open["redeemed"]["points"].as_i64(), open["redeemed"]["amount"].as_i64()),
            (Some(4_000), Some(3_800)),
            "{b}"
        );
        assert_eq!(open["operator_funded"]["points"], 1_000, "{b}");
        assert_eq!(open["net"], json!({"amount": 4_200, "currency": "EUR"}), "{b}");
        assert_eq!(open["payer"], "partner", "{b}");

        // Closing: not before the month ends, then at the month's stated CZK rate.
        app.refused(
            "POST",
            "/v1/settlements/2026-11/close",
            Some(ADMIN),
            Some(json!({})),
            409,
            "period_not_ended",
        )
        .await;
        app.advance(12); // 2 December
        app.refused(
            "POST",
            "/v1/settlements/2026-11/close",
            Some(&berlin_till),
            Some(json!({})),
            403,
            "forbidden",
        )
        .await;
        let netting = app
            .ok(
                "POST",
                "/v1/settlements/2026-11/close",
                ADMIN,
                json!({"fx_rates": {"CZK": "25.3"}}),
            )
            .await;
        assert_eq!(netting["status"], "closed", "{b}: {netting}");
        assert_eq!(netting["reconciliation"]["difference"], 0, "{b}: {netting}");
        let flows = &netting["reconciliation"]["flows"];
        assert_eq!(
            flows["issued_by_partners"].as_i64(),
            Some(10_000 + cz_points),
            "{b}: {netting}"
        );
        assert_eq!(flows["issued_by_operator"], 2_000, "{b}: {netting}");
        assert_eq!(flows["redeemed"], 4_000, "{b}: {netting}");
        // What members hold after November: all they earned less what they spent.
        assert_eq!(
            netting["reconciliation"]["closing_outstanding"].as_i64(),
            Some(10_000 + cz_points + 2_000 - 4_000),
            "{b}: {netting}"
        );
        app.refused(
            "POST",
            "/v1/settlements/2026-11/close",
            Some(ADMIN),
            Some(json!({})),
            409,
            "period_closed",
        )
        .await;
        app.refused(
            "POST",
            "/v1/settlements/2026-12/close",
            Some(ADMIN),
            Some(json!({})),
            409,
            "period_not_ended",
        )
        .await;

        let path = format!("/v1/settlements/2026-11/partners/{berlin}");
        let (status, body, headers) = get_text(&app, &path, ADMIN).await;
        assert_eq!(status, 200, "{b}: {body}");
        let closed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(closed["status"], "closed", "{b}");
        assert_eq!(closed["net"], json!({"amount": 4_200, "currency": "EUR"}), "{b}");
        // The ETag is the SHA-256 of the body, and the netting view names it too.
        let hash = sha256(&body);
        assert_eq!(headers["etag"].to_str().unwrap(), format!("\"{hash}\""), "{b}");
        let line = netting["partners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["partner_id"] == berlin.as_str())
            .unwrap();
        assert_eq!(line["content_hash"], hash.as_str(), "{b}");
        // Lines trace to the ledger: per day and code, with entry counts.
        let lines = closed["lines"].as_array().unwrap();
        let redeem = lines.iter().find(|l| l["code"] == "redeem").unwrap();
        assert_eq!(
            (
                redeem["day"].as_str(),
                redeem["points"].as_i64(),
                redeem["entries"].as_i64()
            ),
            (Some("2026-11-10"), Some(4_000), Some(1)),
            "{b}"
        );
        assert_eq!(redeem["amount"], "38", "{b}: {redeem}");

        // Another partner's closed statement is not found, as an open one is not.
        app.refused("GET", &path, Some(&prague_till), None, 404, "partner_not_found")
            .await;

        // Prague in CZK at 25.3: 40.32 EUR of points … exactly points × 0.008 × 25.3.
        let cz_statement = app
            .ok(
                "GET",
                &format!("/v1/settlements/2026-11/partners/{prague}"),
                &prague_till,
                Value::Null,
            )
            .await;
        assert_eq!(cz_statement["currency"], "CZK", "{b}");
        assert_eq!(cz_statement["fx_rate"], "25.3", "{b}");
        let expected = (rust_decimal::Decimal::from(cz_points)
            * rust_decimal::Decimal::new(8, 3)
            * rust_decimal::Decimal::new(253, 1)
            * rust_decimal::Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(
            cz_statement["issued"]["amount"].as_i64().unwrap(),
            i64::try_from(expected).unwrap(),
            "{b}: {cz_statement}"
        );
        assert_eq!(cz_statement["operator_funded"]["points"], 1_000, "{b}");

        // CSV: the same lines, then the totals.
        let (status, csv, headers) = get_text(&app, &format!("{path}?format=csv"), ADMIN).await;
        assert_eq!(status, 200, "{b}: {csv}");
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"), "{b}");
        assert!(
            csv.starts_with("period,partner_id,currency,fx_rate,day,side,code,entries,points,price,amount,late\n"),
            "{b}: {csv}"
        );
        assert!(csv.contains(",total,net,,0,0,,42.00,\n"), "{b}: {csv}");
        assert_eq!(csv.lines().count(), 1 + lines.len() + 6, "{b}: {csv}");

        // A sale dated in November arriving after the close settles in December, late.
        sale(
            &app,
            &berlin_till,
            &anna,
            "B-4",
            "2026-11-30T18:00:00Z",
            (50_000, "EUR"),
            0,
        )
        .await;
        let (_, again, _) = get_text(&app, &path, ADMIN).await;
        assert_eq!(again, body, "{b}: a closed statement changed");
        let december = app
            .ok(
                "GET",
                &format!("/v1/settlements/2026-12/partners/{berlin}"),
                ADMIN,
                Value::Null,
            )
            .await;
        // Its own points and the campaign's, each a late line.
        assert_eq!(december["late_entries"], 2, "{b}: {december}");
        let late = &december["lines"][0];
        assert_eq!(
            (late["day"].as_str(), late["late"].as_bool(), late["points"].as_i64()),
            (Some("2026-11-30"), Some(true), Some(500)),
            "{b}: {december}"
        );
        let dec_netting = app.ok("GET", "/v1/settlements/2026-12", ADMIN, Value::Null).await;
        assert_eq!(dec_netting["reconciliation"]["difference"], 0, "{b}: {dec_netting}");
        assert_eq!(
            dec_netting["reconciliation"]["opening_outstanding"], netting["reconciliation"]["closing_outstanding"],
            "{b}"
        );

        // Prices cannot reach into a closed month; the month before the first closed one
        // was settled in it.
        app.refused(
            "PUT",
            "/v1/settlement/prices",
            Some(ADMIN),
            Some(json!({"effective_from": "2026-11-15", "issue_price": "0.009", "reimbursement_rate": "0.0095"})),
            409,
            "period_closed",
        )
        .await;
        app.refused(
            "GET",
            "/v1/settlements/2026-10",
            Some(ADMIN),
            None,
            409,
            "before_first_period",
        )
        .await;
        let periods = app.ok("GET", "/v1/settlements", ADMIN, Value::Null).await;
        assert_eq!(periods["closed"][0]["period"], "2026-11", "{b}");
        assert_eq!(periods["closed"][0]["fx_rates"]["CZK"], "25.3", "{b}");
        assert_eq!(periods["next_to_close"], "2026-12", "{b}");

        // The liability at the end of 30 November: what members hold, split by who
        // funded it.
        let liability = app
            .ok("GET", "/v1/ledger/liability?at=2026-11-30", ADMIN, Value::Null)
            .await;
        // The late sale is dated 30 November: its 1,500 points count.
        let held = 10_000 + cz_points + 2_000 - 4_000 + 1_500;
        assert_eq!(liability["outstanding_points"].as_i64(), Some(held), "{b}: {liability}");
        let shares: i64 = liability["by_funder"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["outstanding"].as_i64().unwrap())
            .sum();
        assert_eq!(shares, held, "{b}: {liability}");
    }
}

#[tokio::test]
async fn a_partner_sees_only_its_own_statements_and_bad_input_is_refused() {
    for app in apps().await {
        let (berlin, berlin_till) = app.partner("Berlin Apparel", "EUR", 0).await;
        let (prague, _) = app.partner("Prague Drugstore", "CZK", 0).await;
        let anna = app.member("+420602000001").await;
        app.earn(&berlin_till, &anna, "B-1", 100).await;
        app.ok(
            "GET",
            &format!("/v1/settlements/2026-11/partners/{berlin}"),
            &berlin_till,
            Value::Null,
        )
        .await;
        let other = format!("/v1/settlements/2026-11/partners/{prague}");
        app.refused("GET", &other, Some(&berlin_till), None, 404, "partner_not_found")
            .await;
        for path in [
            "/v1/settlements/2026-11",
            "/v1/settlements",
            "/v1/ledger/liability",
            "/v1/ledger/breakage",
        ] {
            app.refused("GET", path, Some(&berlin_till), None, 403, "forbidden")
                .await;
        }
        app.refused(
            "PUT",
            "/v1/settlement/prices",
            Some(&berlin_till),
            Some(json!({"effective_from": "2026-12-01", "issue_price": "0.001", "reimbursement_rate": "0.5"})),
            403,
            "forbidden",
        )
        .await;
        // A partner sees the programme's prices and its own, not another's.
        app.ok(
            "PUT",
            "/v1/settlement/prices",
            ADMIN,
            json!({"partner_id": prague, "effective_from": "2026-12-01", "issue_price": "0.007", "reimbursement_rate": "0.009"}),
        )
        .await;
        let seen = app.ok("GET", "/v1/settlement/prices", &berlin_till, Value::Null).await;
        assert_eq!(seen["versions"].as_array().unwrap().len(), 0, "{}: {seen}", app.backend);
        let all = app.ok("GET", "/v1/settlement/prices", ADMIN, Value::Null).await;
        assert_eq!(all["versions"][0]["issue_price"], "0.007", "{}: {all}", app.backend);
        for bad in [
            json!({"effective_from": "2026-12-01", "issue_price": "-1", "reimbursement_rate": "0.01"}),
            json!({"effective_from": "2026-12-01", "issue_price": "1000.5", "reimbursement_rate": "0.01"}),
            json!({"effective_from": "2026-12-01", "issue_price": "0.0000001", "reimbursement_rate": "0.01"}),
            json!({"effective_from": "2026-12-01", "issue_price": "1e3", "reimbursement_rate": "0.01"}),
            json!({"effective_from": "2026-12-01", "issue_price": "0999", "reimbursement_rate": "0.01"}),
            json!({"effective_from": "2026-12-01", "issue_price": "1000.", "reimbursement_rate": "0.01"}),
            json!({"effective_from": "2026-13-01", "issue_price": "0.01", "reimbursement_rate": "0.01"}),
            json!({"effective_from": "1999-12-01", "issue_price": "0.01", "reimbursement_rate": "0.01"}),
            json!({"effective_from": "2026-12-01", "issue_price": "0.01", "reimbursement_rate": "0.01", "redemption_fee_percent": "101"}),
        ] {
            app.refused(
                "PUT",
                "/v1/settlement/prices",
                Some(ADMIN),
                Some(bad),
                422,
                "invalid_field",
            )
            .await;
        }
        app.refused(
            "PUT",
            "/v1/settlement/prices",
            Some(ADMIN),
            Some(json!({"partner_id": "ptn_nobody", "effective_from": "2026-12-01", "issue_price": "0.01", "reimbursement_rate": "0.01"})),
            404,
            "partner_not_found",
        )
        .await;
        for bad in ["2026-13", "26-11", "2026-11-01", "2027-01"] {
            app.refused(
                "GET",
                &format!("/v1/settlements/{bad}"),
                Some(ADMIN),
                None,
                422,
                "invalid_field",
            )
            .await;
        }
        app.refused(
            "GET",
            &format!("/v1/settlements/2026-11/partners/{berlin}?format=xml"),
            Some(ADMIN),
            None,
            422,
            "invalid_query",
        )
        .await;
        app.refused(
            "GET",
            "/v1/ledger/liability?at=2026-02-30",
            Some(ADMIN),
            None,
            422,
            "invalid_query",
        )
        .await;
        app.refused(
            "POST",
            "/v1/settlements/2026-10/close",
            Some(ADMIN),
            Some(json!({"fx_rates": {"CZK": "-3"}})),
            422,
            "invalid_field",
        )
        .await;
        // Nothing of it was written: no period closed.
        let periods = app.ok("GET", "/v1/settlements", ADMIN, Value::Null).await;
        assert_eq!(periods["closed"], json!([]), "{}", app.backend);
    }
}
