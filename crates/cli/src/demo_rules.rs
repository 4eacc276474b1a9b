//! The demo's earning rules: the examples of docs/RULES.md, live on the demo coalition
//! (partners in the order hotel, apparel, drugstore).

use crate::demo_api::Api;
use axum::http::Method;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

/// Engagement events the demo members send: (type, partner index or none for the programme).
pub const EVENT_KINDS: [(&str, Option<usize>); 3] = [
    ("survey_answered", None),
    ("review", Some(2)),
    ("referral_shared", None),
];

/// Saves the demo rules. `prague_key` writes the drugstore's own rules; `end` is the last
/// day of the demo history (the Berlin autumn sale runs the 30 days either side of it).
pub async fn add_rules(
    api: &Api,
    admin: &str,
    partners: &[&str],
    prague_key: &str,
    end: Timestamp,
) -> anyhow::Result<()> {
    let (hotel, _apparel, _drugstore) = (partners[0], partners[1], partners[2]);
    let sale_from = (end - SignedDuration::from_hours(24 * 30)).to_string();
    let sale_until = (end + SignedDuration::from_hours(24 * 30)).to_string();
    let operator_rules = [
        json!({"name": "No points on tobacco, gift cards and deposits",
               "lines": "line.category in [\"tobacco\", \"gift_card\", \"deposit\"]", "effect": {"kind": "exclude"}}),
        json!({"name": "500 bonus points on your first stay", "partner_id": hotel,
               "condition": "member.first_visit", "effect": {"kind": "fixed", "points": 500}}),
        json!({"name": "Triple points for Gold members in the Berlin autumn sale",
               "condition": "member.tier == \"gold\" && partner.industry == \"apparel\"",
               "valid_from": sale_from, "valid_until": sale_until,
               "effect": {"kind": "multiplier", "factor": "3"},
               "caps": [{"period": "month", "points": 2000}], "budget": 1_000_000,
               // Co-funded: the operator pays half, the selling store the rest.
               "funding": {"operator_percent": 50}}),
        json!({"name": "100 points for answering a survey", "applies_to": "event", "event_type": "survey_answered",
               "effect": {"kind": "fixed", "points": 100}}),
        json!({"name": "200 points for a product review", "applies_to": "event", "event_type": "review",
               "effect": {"kind": "fixed", "points": 200}}),
        json!({"name": "30 points for sharing your referral link", "applies_to": "event", "event_type": "referral_shared",
               "effect": {"kind": "fixed", "points": 30}}),
    ];
    for rule in operator_rules {
        api.expect(Method::POST, "/v1/earning-rules", admin, rule).await?;
    }
    let drugstore_rules = [
        json!({"name": "Double points on cosmetics on Saturdays", "condition": "local.weekday == \"saturday\"",
               "lines": "line.category == \"cosmetics\"", "effect": {"kind": "multiplier", "factor": "2"}}),
        json!({"name": "50 points per DRUGSTORE-123, at most 3 per basket", "lines": "line.sku == \"DRUGSTORE-123\"",
               "effect": {"kind": "per_unit", "points": 50, "max_units": 3}}),
    ];
    for rule in drugstore_rules {
        api.expect(Method::POST, "/v1/earning-rules", prague_key, rule).await?;
    }
    Ok(())
}
