//! A cross-partner challenge in the demo coalition (docs/REWARDS.md): "Three worlds",
//! purchases of EUR 10 or more at a hotel, a fashion store and a drugstore within the
//! last 60 days of the history (and 30 days on), every member taking part from her
//! first step. Completing it leaves the badge "Globetrotter" and a rule on
//! `challenge_completed` gives 500 points. Members end at every stage.

use super::Member;
use crate::demo_api::Api;
use axum::http::Method;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

/// Adds the challenge and its rule; it opens 60 days before `end` (the demo's today).
pub(super) async fn add(api: &Api, admin: &str, end: Timestamp) -> anyhow::Result<()> {
    let end = end.round(jiff::Unit::Second)?;
    api.expect(
        Method::POST,
        "/v1/earning-rules",
        admin,
        json!({"name": "500 points for the Three worlds challenge", "applies_to": "event",
               "event_type": "challenge_completed", "condition": "event.attributes.challenge == \"three_worlds\"",
               "effect": {"kind": "fixed", "points": 500}}),
    )
    .await?;
    api.expect(
        Method::POST,
        "/v1/challenges",
        admin,
        json!({"code": "three_worlds",
               "name": {"en": "Three worlds", "de": "Drei Welten", "cs": "Tři světy"},
               "description": {"en": "Stay, dress and care: spend EUR 10 or more at a hotel, a fashion store and a drugstore of the coalition.",
                               "de": "Übernachten, anziehen, pflegen: je 10 EUR oder mehr in einem Hotel, einem Modegeschäft und einer Drogerie.",
                               "cs": "Ubytování, móda, péče: utraťte 10 EUR nebo více v hotelu, obchodě s módou a drogerii."},
               "starts_at": (end - SignedDuration::from_hours(24 * 60)).to_string(),
               "ends_at": (end + SignedDuration::from_hours(24 * 30)).to_string(),
               "counts": "purchases", "condition": "basket.total_program >= 10.0",
               "measure": "industries", "target": 3, "enrolment": "automatic",
               "badge": {"code": "globetrotter", "name": {"en": "Globetrotter", "de": "Weltenbummler", "cs": "Světoběžník"}}}),
    )
    .await?;
    Ok(())
}

/// The closing summary: how many members stand where (GET /v1/members/{id}/challenges).
pub(super) async fn summary(api: &Api, admin: &str, people: &[Member]) -> anyhow::Result<String> {
    let mut at = [0u64; 4];
    for m in people {
        let v = api
            .expect(
                Method::GET,
                &format!("/v1/members/{}/challenges", m.id),
                admin,
                serde_json::Value::Null,
            )
            .await?;
        let progress = v
            .as_array()
            .and_then(|all| all.iter().find(|c| c["code"] == "three_worlds"))
            .and_then(|c| c["progress"].as_u64())
            .unwrap_or(0);
        at[progress.min(3) as usize] += 1;
    }
    let jana = people.first().map_or("", |m| m.id.as_str());
    Ok(format!(
        "Challenge Three worlds (a hotel, a fashion store and a drugstore in 60 days): {} completed (badge Globetrotter, \
         500 points each), {} at 2 of 3, {} at 1 of 3, {} not started (GET /v1/members/{jana}/challenges?lang=cs)",
        at[3], at[2], at[1], at[0]
    ))
}
