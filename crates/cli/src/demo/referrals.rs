//! Referral rewards in the demo coalition (docs/REWARDS.md). One member in seven joined
//! through the share link of the member who joined seven before her (a chain of
//! referrals). The operator's policy converts a referral on the new member's first
//! purchase of at least EUR 20 within 60 days, at most five a month per referrer, and
//! two rules reward both sides on `referral_converted`: 300 points for the referrer, 500
//! for the new member. A third rule reads the rules context: 25 points on every
//! purchase in a referred member's first 30 days. Some qualifying purchases are later
//! returned in full, and their referrals reverse.

use super::Member;
use crate::demo_api::Api;
use axum::http::Method;
use serde_json::json;

/// The demo's referral policy.
pub(super) const POLICY: &str = r#"{"min_purchase": {"amount": 2000, "currency": "EUR"}, "window_days": 60,
    "max_per_month": 5}"#;

/// Sets the policy and the three rules.
pub(super) async fn open(api: &Api, admin: &str) -> anyhow::Result<()> {
    let policy: serde_json::Value = serde_json::from_str(POLICY)?;
    api.expect(Method::PATCH, "/v1/program", admin, json!({"referrals": policy}))
        .await?;
    for (name, side, points) in [
        ("300 points for bringing a friend", "referrer", 300),
        ("500 welcome points for joining through a friend", "referred", 500),
    ] {
        api.expect(
            Method::POST,
            "/v1/earning-rules",
            admin,
            json!({"name": name, "applies_to": "event", "event_type": "referral_converted",
                   "condition": format!("event.attributes.side == \"{side}\""),
                   "effect": {"kind": "fixed", "points": points}}),
        )
        .await?;
    }
    api.expect(
        Method::POST,
        "/v1/earning-rules",
        admin,
        json!({"name": "25 extra points on every purchase in your first month with a friend's code",
               "condition": "member.referred_by != \"\" && member.referral_age_days < 30",
               "effect": {"kind": "fixed", "points": 25}}),
    )
    .await?;
    Ok(())
}

/// The closing summary: every referrer's referrals added up (GET /v1/members/{id}/referrals).
pub(super) async fn summary(api: &Api, admin: &str, people: &[Member], referrers: &[usize]) -> anyhow::Result<String> {
    let (mut invited, mut converted, mut reversed, mut declined, mut points) = (0, 0, 0, 0, 0);
    for &i in referrers {
        let v = api
            .expect(
                Method::GET,
                &format!("/v1/members/{}/referrals", people[i].id),
                admin,
                serde_json::Value::Null,
            )
            .await?;
        let n = |k: &str| v[k].as_i64().unwrap_or(0);
        invited += n("invited");
        converted += n("converted");
        reversed += n("reversed");
        declined += n("declined");
        points += n("points_earned");
    }
    let first = referrers.first().map_or("", |&i| people[i].id.as_str());
    Ok(format!(
        "Referrals: {invited} members joined through a friend's link; {converted} converted on a first purchase of EUR 20 or more \
         (300 points to the friend, 500 to the new member), {reversed} reversed when that purchase was returned, \
         {declined} declined, {} still pending; referrers kept {points} points (GET /v1/members/{first}/referrals)",
        invited - converted - reversed - declined
    ))
}
