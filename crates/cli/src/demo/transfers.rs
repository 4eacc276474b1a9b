//! Members of the demo coalition sending each other points (docs/REWARDS.md): the
//! operator opens transfers with limits against farming, and now and then a member sends
//! a friend some points with a note. Some are refused by the policy (a member too new,
//! one who never bought anything, one of a household sending to her own), as they would
//! be in a real programme. Jana (the first member) neither sends nor receives here, so the
//! walk-throughs of her points hold.

use super::{Member, Rng};
use crate::demo_api::Api;
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;

/// The demo's transfer policy.
pub(super) const POLICY: &str = r#"{"enabled": true, "min_points": 50, "max_per_day": 2000, "max_per_month": 5000,
    "min_membership_days": 30, "min_purchases": 1}"#;

/// Where the demo's share links lead (`/r/{code}`).
pub(super) const SIGNUP_URL: &str = "https://join.tally.example/signup";

const NOTES: [&str; 5] = [
    "for the concert tickets",
    "Alles Gute zum Geburtstag!",
    "díky za oběd",
    "toward the scarf you wanted",
    "Happy holidays",
];

#[derive(Default)]
pub(super) struct Transfers {
    /// Its own random numbers, so transfers leave the rest of the demo's draws alone.
    rng: Option<Rng>,
    pub sent: u64,
    pub points: i64,
    /// Refusals by code.
    pub refused: BTreeMap<String, u64>,
}

/// Opens transfers with the demo's policy, and sets the sign-up page share links lead to.
pub(super) async fn open(api: &Api, admin: &str) -> anyhow::Result<Transfers> {
    let policy: serde_json::Value = serde_json::from_str(POLICY)?;
    api.expect(
        Method::PATCH,
        "/v1/program",
        admin,
        json!({"transfers": policy, "referral_signup_url": SIGNUP_URL}),
    )
    .await?;
    Ok(Transfers {
        rng: Some(Rng(0x7a11_7a11_5eed_7f01)),
        ..Transfers::default()
    })
}

impl Transfers {
    /// One demo day: about one member in 5,000 sends points to another. On day 40 a
    /// child of the Dvořák household tries to send her parent points: `same_household`.
    pub(super) async fn day(&mut self, api: &Api, admin: &str, people: &[Member], day: u32) -> anyhow::Result<()> {
        let Some(rng) = self.rng.as_mut() else {
            return Ok(());
        };
        let mut sends = Vec::new();
        if day == 40 && people.len() > 14 {
            sends.push((4, 2, 100, NOTES[4]));
        }
        for mi in 1..people.len() {
            if rng.below(5_000) != 0 {
                continue;
            }
            let to = 1 + rng.below(people.len() as u64 - 1) as usize;
            let points = 50 + 10 * rng.below(60) as i64;
            if to != mi {
                sends.push((mi, to, points, NOTES[rng.below(NOTES.len() as u64) as usize]));
            }
        }
        for (mi, to, points, note) in sends {
            let m = &people[mi];
            let body = json!({"request_id": format!("DEMO-TRF-{day}-{mi}"), "to": {"id": people[to].id},
                              "points": points, "note": note});
            let (status, v) = api
                .call(
                    Method::POST,
                    &format!("/v1/members/{}/transfers", m.id),
                    admin,
                    Some(body),
                )
                .await?;
            if status == StatusCode::CREATED {
                self.sent += 1;
                self.points += points;
            } else {
                let code = v["error"]["code"].as_str().unwrap_or("unknown").to_string();
                *self.refused.entry(code).or_default() += 1;
            }
        }
        Ok(())
    }

    /// The closing summary's line.
    pub(super) fn summary(&self) -> String {
        let refused: Vec<String> = self.refused.iter().map(|(c, n)| format!("{n} {c}")).collect();
        format!(
            "Transfers: {} sent between members ({} points); refused: {} (GET /v1/members/{{id}}/transfers)",
            self.sent,
            self.points,
            if refused.is_empty() {
                "none".into()
            } else {
                refused.join(", ")
            }
        )
    }
}
