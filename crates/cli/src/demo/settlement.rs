//! Settlement in the demo coalition (docs/SETTLEMENT.md): the programme's prices from the
//! first day (a point costs a partner EUR 0.012 and pays back EUR 0.0075), the Berlin
//! store's own agreement from the last 100 days on (the worked example's EUR 0.008 a
//! point and EUR 0.0095 back, with a EUR 25.00 monthly fee and 1% of what its
//! redemptions are paid back), every month closed on the simulated day after it ends at
//! that month's CZK and USD rates (sales of the month's last hours the tills send after
//! the close settle in the next month as late items), and one sale the Berlin till
//! sends a day late.

use super::DemoPartner;
use crate::demo_api::Api;
use axum::http::Method;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tally_domain::settlement::{Period, SignedMoney};

pub(super) struct Settlement {
    /// The month the simulated clock was in yesterday.
    month: Period,
    pub(super) closed: Vec<Period>,
    late_sent: bool,
}

fn day(at: Timestamp) -> String {
    tally_domain::settlement::day_of(at).to_string()
}

/// Sets the prices: the programme's from `start`, the Berlin store's own from 100 days
/// before `end`.
pub(super) async fn open(
    api: &Api,
    admin: &str,
    partners: &[DemoPartner],
    start: Timestamp,
    end: Timestamp,
) -> anyhow::Result<Settlement> {
    api.expect(
        Method::PUT,
        "/v1/settlement/prices",
        admin,
        json!({"effective_from": day(start), "issue_price": "0.012", "reimbursement_rate": "0.0075"}),
    )
    .await?;
    api.expect(
        Method::PUT,
        "/v1/settlement/prices",
        admin,
        json!({"partner_id": partners[1].id, "effective_from": day(end - SignedDuration::from_hours(24 * 100)),
               "issue_price": "0.008", "reimbursement_rate": "0.0095", "monthly_fee": "25",
               "redemption_fee_percent": "1"}),
    )
    .await?;
    Ok(Settlement {
        month: Period::of(start),
        closed: Vec::new(),
        late_sent: false,
    })
}

impl Settlement {
    /// On the first day of a month, closes the month before at its rates (they drift a
    /// little from month to month; the live rates the tills earn at stay as they are).
    /// In the last month closed, the Berlin till sends one sale two days late.
    pub(super) async fn day(
        &mut self,
        api: &Api,
        admin: &str,
        partners: &[DemoPartner],
        member: &str,
        now: Timestamp,
        last_month: Period,
    ) -> anyhow::Result<()> {
        let today = Period::of(now);
        if today == self.month {
            return Ok(());
        }
        let ended = self.month;
        self.month = today;
        let n = self.closed.len() as i64;
        let czk = format!("{:.2}", 25.2 + ((n * 7) % 9 - 4) as f64 * 0.1);
        let usd = format!("{:.3}", 1.08 + ((n * 5) % 7 - 3) as f64 * 0.01);
        api.expect(
            Method::POST,
            &format!("/v1/settlements/{ended}/close"),
            admin,
            json!({"fx_rates": {"CZK": czk, "USD": usd}}),
        )
        .await?;
        self.closed.push(ended);
        if ended == last_month && !self.late_sent {
            // A till that was offline over the month's end: the sale is dated in the
            // closed month and settles in this one.
            let occurred = ended.end() - SignedDuration::from_hours(5);
            api.expect(
                Method::POST,
                "/v1/transactions",
                partners[1].key,
                json!({"external_id": "DEMO-LATE-1", "member": {"id": member}, "occurred_at": occurred.to_string(),
                       "location_id": partners[1].locations[0],
                       "total": {"amount": 8900, "currency": "EUR"}}),
            )
            .await?;
            self.late_sent = true;
        }
        Ok(())
    }

    /// A line for the demo's closing summary: the last closed month per partner, and
    /// its reconciliation.
    pub(super) async fn summary(&self, api: &Api, admin: &str, partners: &[DemoPartner]) -> anyhow::Result<String> {
        let Some(last) = self.closed.last() else {
            return Ok("Settlement: no month closed yet".into());
        };
        let netting = api
            .expect(Method::GET, &format!("/v1/settlements/{last}"), admin, Value::Null)
            .await?;
        let mut out = format!(
            "Settlement: {} months closed, {} to {} (GET /v1/settlements); {} is open.\n  {last}:",
            self.closed.len(),
            self.closed[0],
            last,
            last.next()
        );
        for p in partners {
            let s = api
                .expect(
                    Method::GET,
                    &format!("/v1/settlements/{last}/partners/{}", p.id),
                    admin,
                    Value::Null,
                )
                .await?;
            let net = money(&s["net"])?;
            let who = if net.amount >= 0 {
                "owes the operator"
            } else {
                "is owed"
            };
            out.push_str(&format!(
                "\n    {:<9} {who} {} {} ({} points funded, {} redeemed there, {} funded by the operator; GET /v1/settlements/{last}/partners/{}?format=csv)",
                p.kind,
                net.currency,
                net.to_decimal().abs(),
                s["issued"]["points"],
                s["redeemed"]["points"],
                s["operator_funded"]["points"],
                p.id
            ));
        }
        let margin = money(&netting["margin"])?;
        let r = &netting["reconciliation"];
        let f = &r["flows"];
        out.push_str(&format!(
            "\n    operator margin {} {}, {} points expired\n    points reconciled: {} held before + {} funded by partners + {} by the operator + {} exchanged in + {} absorbed on returns − {} redeemed − {} donated − {} exchanged out − {} expired − {} in transit − {} elsewhere = {} held after (difference {})",
            margin.currency,
            margin.to_decimal(),
            netting["breakage_points"],
            r["opening_outstanding"],
            f["issued_by_partners"],
            f["issued_by_operator"],
            f["exchanged_in"],
            f["unrecovered"],
            f["redeemed"],
            f["donated"],
            f["exchanged_out"],
            f["expired"],
            f["in_transit"],
            f["other"],
            r["closing_outstanding"],
            r["difference"]
        ));
        Ok(out)
    }
}

/// An amount of an answer (`{"amount": …, "currency": …}`).
fn money(v: &Value) -> anyhow::Result<SignedMoney> {
    Ok(serde_json::from_value(v.clone())?)
}
