//! Exchange with other programmes in the demo (docs/REWARDS.md): an airline, SkyMiles,
//! that members exchange points with both ways (100 points = 40 miles), and a hotel
//! chain that only sends its points in. Now and then a member with points to spare
//! turns some into miles; the operator's back end confirms most orders the next day and
//! fails one in ten (a mistyped membership number), whose points come back. SkyMiles
//! sends miles in for some members. Jana (the first member) takes no part, so the
//! walk-throughs of her points hold.

use super::{Member, Rng};
use crate::demo_api::Api;
use anyhow::Context;
use axum::http::{Method, StatusCode};
use serde_json::json;

#[derive(Default)]
pub(super) struct Exchange {
    /// Its own random numbers, so the exchange leaves the rest of the demo's draws alone.
    rng: Option<Rng>,
    pub airline: String,
    pub hotels: String,
    /// Orders placed and waiting for tomorrow's answer.
    waiting: Vec<String>,
    pub placed: u64,
    pub confirmed: u64,
    pub failed: u64,
    pub credits: u64,
}

/// Adds the two exchange partners.
pub(super) async fn add(api: &Api, admin: &str) -> anyhow::Result<Exchange> {
    let airline = api
        .expect(
            Method::POST,
            "/v1/exchange-partners",
            admin,
            json!({"name": "SkyMiles", "unit_name": "miles", "direction": "both",
                   "rate": {"points": 100, "units": 40}, "min_points": 1000, "step_points": 100,
                   "daily_limit_points": 10000}),
        )
        .await?;
    let hotels = api
        .expect(
            Method::POST,
            "/v1/exchange-partners",
            admin,
            json!({"name": "Grand Harbor Hotels", "unit_name": "hotel points", "direction": "in",
                   "rate": {"points": 1, "units": 2}, "min_points": 100, "step_points": 100,
                   "daily_limit_points": 5000}),
        )
        .await?;
    Ok(Exchange {
        rng: Some(Rng(0x7a11_7a11_5eed_e8c1)),
        airline: airline["id"].as_str().context("exchange partner id")?.to_string(),
        hotels: hotels["id"].as_str().context("exchange partner id")?.to_string(),
        ..Exchange::default()
    })
}

impl Exchange {
    /// One demo day: yesterday's orders answered, a few new orders and credits.
    pub(super) async fn day(&mut self, api: &Api, admin: &str, people: &mut [Member], day: u32) -> anyhow::Result<()> {
        let Some(rng) = self.rng.as_mut() else {
            return Ok(());
        };
        for id in std::mem::take(&mut self.waiting) {
            let (path, body) = match rng.below(10) {
                0 => ("fail", Some(json!({"reason": "unknown membership number"}))),
                _ => ("confirm", None),
            };
            let (status, _) = api
                .call(Method::POST, &format!("/v1/exchange-orders/{id}/{path}"), admin, body)
                .await?;
            if status == StatusCode::OK {
                match path {
                    "fail" => self.failed += 1,
                    _ => self.confirmed += 1,
                }
            }
        }
        for (mi, m) in people.iter_mut().enumerate().skip(1) {
            if m.available >= 3_000 && rng.below(1_500) == 0 {
                let points = 1_000 + 100 * rng.below(11) as i64;
                let body = json!({"request_id": format!("DEMO-XOR-{day}-{mi}"), "exchange_partner_id": self.airline,
                                  "points": points, "external_member_number": format!("SK-{:08}", 40_000_000 + mi)});
                let (status, v) = api
                    .call(
                        Method::POST,
                        &format!("/v1/members/{}/exchange-orders", m.id),
                        admin,
                        Some(body),
                    )
                    .await?;
                if status == StatusCode::CREATED {
                    self.placed += 1;
                    m.available = v["balance"]["available"].as_i64().unwrap_or(m.available);
                    self.waiting.push(v["id"].as_str().unwrap_or_default().to_string());
                }
            } else if rng.below(4_000) == 0 {
                let (partner, units) = match rng.below(2) {
                    0 => (&self.airline, 200 * (1 + rng.below(5) as i64)),
                    _ => (&self.hotels, 1_000 * (1 + rng.below(4) as i64)),
                };
                let body = json!({"reference": format!("DEMO-IN-{day}-{mi}"), "member": {"id": m.id}, "units": units});
                let (status, v) = api
                    .call(
                        Method::POST,
                        &format!("/v1/exchange-partners/{partner}/credits"),
                        admin,
                        Some(body),
                    )
                    .await?;
                if status == StatusCode::CREATED {
                    self.credits += 1;
                    m.available = v["balance"]["available"].as_i64().unwrap_or(m.available);
                }
            }
        }
        Ok(())
    }

    /// The closing summary's lines.
    pub(super) fn summary(&self) -> String {
        format!(
            "Exchange: SkyMiles {} (100 points = 40 miles, both ways), Grand Harbor Hotels {} (in only); {} orders out ({} confirmed, {} failed and refunded, the rest pending: GET /v1/exchange-orders?status=pending), {} credits in; GET /v1/exchange-partners/{{id}}/volume",
            self.airline, self.hotels, self.placed, self.confirmed, self.failed, self.credits
        )
    }
}
