//! The demo's rewards catalogue (docs/REWARDS.md): a dozen rewards across the three
//! partners with English, German and Czech texts, an experience with limited places
//! (on sale for the last six weeks, so some are left), an
//! early-access launch for Gold members, a reward for Tally Plus members, two charities;
//! and members redeeming them over the demo's months, most vouchers used at the tills,
//! some cancelled, some left to expire.

use super::{DemoPartner, Member, Rng};
use crate::demo_api::Api;
use anyhow::Context;
use axum::http::{Method, StatusCode};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// What happens to an issued voucher, and on which day.
enum Fate {
    Use { partner: usize, code: String },
    Cancel { id: String },
}

#[derive(Default)]
pub(super) struct Catalogue {
    /// (reward id, cost, fulfilling partner).
    rewards: Vec<(String, i64, Option<usize>)>,
    due: Vec<(u32, Fate)>,
    pub redeemed: u64,
    pub used: u64,
    pub cancelled: u64,
    /// Jana's voucher left for the walk-through: (code, what it is).
    pub jana: Option<(String, String)>,
}

fn texts(en: &str, de: &str, cs: &str) -> Value {
    json!({"en": en, "de": de, "cs": cs})
}

/// Adds the catalogue; `end` is the demo's last day.
pub(super) async fn add(api: &Api, admin: &str, partners: &[DemoPartner], end: Timestamp) -> anyhow::Result<Catalogue> {
    let (hotel, store, drugstore) = (&partners[0].id, &partners[1].id, &partners[2].id);
    let days = |n: i64| (end + SignedDuration::from_hours(24 * n)).to_string();
    let bodies = [
        json!({"kind": "voucher", "partner_id": hotel, "cost": 2000,
               "name": texts("USD 20 off your stay", "20 USD Rabatt auf Ihren Aufenthalt", "Sleva 20 USD na pobyt"),
               "description": texts("Taken off the bill at checkout.", "Wird beim Check-out abgezogen.", "Odečte se z účtu při odjezdu.")}),
        json!({"kind": "experience", "partner_id": hotel, "cost": 3500, "stock": 40, "starts_at": days(12),
               "available_from": days(-45),
               "name": texts("Sunset rooftop concert", "Konzert auf der Dachterrasse bei Sonnenuntergang", "Koncert na střešní terase při západu slunce"),
               "description": texts("Jazz quartet and a glass of wine, 40 places.", "Jazzquartett und ein Glas Wein, 40 Plätze.", "Jazzové kvarteto a sklenka vína, 40 míst.")}),
        json!({"kind": "product", "partner_id": hotel, "cost": 3000,
               "eligibility": "member.tier in [\"gold\", \"platinum\"]",
               "eligibility_note": texts("for Gold and Platinum members", "für Gold- und Platin-Mitglieder", "pro členy Gold a Platinum"),
               "name": texts("Ocean-view room upgrade", "Upgrade auf ein Zimmer mit Meerblick", "Pokoj s výhledem na oceán")}),
        json!({"kind": "merchandise", "partner_id": hotel, "cost": 800, "stock": 500, "limit": {"count": 1, "per": "year"},
               "name": texts("Del Mar beach towel", "Strandtuch Del Mar", "Plážová osuška Del Mar")}),
        json!({"kind": "voucher", "partner_id": store, "cost": 1000, "limit": {"count": 2, "per": "month"},
               "name": texts("EUR 10 off", "10 EUR Rabatt", "Sleva 10 EUR")}),
        json!({"kind": "early_access", "partner_id": store, "cost": 200, "available_from": days(10),
               "early_access": {"days": 14, "condition": "member.tier in [\"gold\", \"platinum\"]"},
               "name": texts("Winter collection: shop it first", "Winterkollektion: zuerst einkaufen", "Zimní kolekce: nakupujte jako první"),
               "description": texts("Opens to Gold members two weeks early.", "Für Gold-Mitglieder zwei Wochen früher.", "Pro členy Gold o dva týdny dříve.")}),
        json!({"kind": "product", "partner_id": store, "cost": 1500, "stock": 25, "available_from": days(-60),
               "name": texts("Silk scarf", "Seidenschal", "Hedvábný šátek")}),
        json!({"kind": "voucher", "partner_id": store, "cost": 400, "voucher_days": 14, "forfeit_on_expiry": true,
               "name": texts("Free alterations", "Kostenlose Änderungen", "Úpravy oděvu zdarma"),
               "description": texts("Use within 14 days or the points are forfeit.", "Innerhalb von 14 Tagen einlösen, sonst verfallen die Punkte.", "Uplatněte do 14 dnů, jinak body propadnou.")}),
        json!({"kind": "voucher", "partner_id": drugstore, "cost": 400,
               "name": texts("CZK 100 off", "100 CZK Rabatt", "Sleva 100 Kč")}),
        json!({"kind": "product", "partner_id": drugstore, "cost": 900, "stock": 400,
               "name": texts("Cosmetics gift set", "Kosmetik-Geschenkset", "Dárková sada kosmetiky")}),
        json!({"kind": "product", "partner_id": drugstore, "cost": 600, "eligibility": "member.plan == \"plus\"",
               "eligibility_note": texts("for Tally Plus members", "für Tally-Plus-Mitglieder", "pro členy Tally Plus"),
               "name": texts("Spring fragrance sample box", "Frühlingsduft-Probierbox", "Jarní vzorky parfémů")}),
        json!({"kind": "donation", "charity": "red_cross", "cost": 250,
               "name": texts("Red Cross: a warm meal", "Rotes Kreuz: eine warme Mahlzeit", "Červený kříž: teplé jídlo")}),
        json!({"kind": "donation", "charity": "zoo_praha", "cost": 500,
               "name": texts("Prague Zoo: feed the penguins", "Zoo Prag: Pinguine füttern", "Zoo Praha: nakrmte tučňáky")}),
    ];
    let mut c = Catalogue::default();
    for body in bodies {
        let partner = partners.iter().position(|p| body["partner_id"] == p.id.as_str());
        let cost = body["cost"].as_i64().unwrap_or(0);
        let r = api.expect(Method::POST, "/v1/rewards", admin, body).await?;
        c.rewards
            .push((r["id"].as_str().context("reward id")?.to_string(), cost, partner));
    }
    Ok(c)
}

impl Catalogue {
    /// One demo day: a few members redeem, and vouchers due are used or cancelled.
    pub(super) async fn day(
        &mut self,
        api: &Api,
        admin: &str,
        partners: &[DemoPartner],
        people: &mut [Member],
        rng: &mut Rng,
        day: u32,
    ) -> anyhow::Result<()> {
        for (mi, m) in people.iter_mut().enumerate() {
            // Jana (the first member) keeps her points for the README's walk-through and
            // redeems on the last day only.
            if mi == 0 || m.available < 250 || rng.below(700) != 0 {
                continue;
            }
            let affordable: Vec<&(String, i64, Option<usize>)> =
                self.rewards.iter().filter(|r| r.1 <= m.available).collect();
            let Some((reward, _, partner)) = affordable.get(rng.below(affordable.len() as u64) as usize) else {
                continue;
            };
            let body = json!({"reward_id": reward, "request_id": format!("DEMO-RDM-{day}-{mi}")});
            let (status, v) = api
                .call(
                    Method::POST,
                    &format!("/v1/members/{}/redemptions", m.id),
                    admin,
                    Some(body),
                )
                .await?;
            // A member of a shared wallet may hold less of her own than the demo thinks;
            // a reward sold out, limited or not for her is refused: both are fine here.
            if status != StatusCode::CREATED {
                continue;
            }
            self.redeemed += 1;
            m.available = v["balance"]["available"].as_i64().unwrap_or(0);
            let (Some(code), Some(partner)) = (v["code"].as_str(), partner) else {
                continue;
            };
            let fate = match rng.below(100) {
                0..=74 => Fate::Use {
                    partner: *partner,
                    code: code.to_string(),
                },
                75..=84 => Fate::Cancel {
                    id: v["id"].as_str().unwrap_or_default().to_string(),
                },
                _ => continue, // left to expire
            };
            self.due.push((day + 1 + rng.below(9) as u32, fate));
        }
        let (today, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.due).into_iter().partition(|d| d.0 <= day);
        self.due = later;
        for (_, fate) in today {
            match fate {
                Fate::Use { partner, code } => {
                    let (status, _) = api
                        .call(
                            Method::POST,
                            &format!("/v1/vouchers/{code}/redeem"),
                            partners[partner].key,
                            Some(json!({"location_id": partners[partner].locations[0]})),
                        )
                        .await?;
                    self.used += u64::from(status == StatusCode::OK);
                }
                Fate::Cancel { id } => {
                    let (status, _) = api
                        .call(Method::POST, &format!("/v1/redemptions/{id}/cancel"), admin, None)
                        .await?;
                    self.cancelled += u64::from(status == StatusCode::OK);
                }
            }
        }
        Ok(())
    }

    /// Jana redeems "CZK 100 off" at the drugstore on the last day and keeps the voucher
    /// for the walk-through (when she has the points).
    pub(super) async fn jana(&mut self, api: &Api, admin: &str, jana: &str) -> anyhow::Result<()> {
        let Some((reward, _, _)) = self.rewards.get(8) else {
            return Ok(());
        };
        let body = json!({"reward_id": reward, "request_id": "DEMO-RDM-JANA"});
        let (status, v) = api
            .call(
                Method::POST,
                &format!("/v1/members/{jana}/redemptions"),
                admin,
                Some(body),
            )
            .await?;
        if status == StatusCode::CREATED
            && let Some(code) = v["code"].as_str()
        {
            self.redeemed += 1;
            self.jana = Some((code.to_string(), "CZK 100 off at the Prague drugstore".into()));
        }
        Ok(())
    }
}
