//! `tally demo`: a demo coalition with months of history, made through the real API.
//!
//! The API runs in-process with a simulated clock that walks from `days` ago to today,
//! so every point in the demo was earned, spent, returned, matured or expired by the
//! same code path a till uses, and the ledger verifies at the end.

use crate::demo_api::Api;
use crate::server;
use anyhow::{Context, bail};
use axum::http::{Method, StatusCode};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tally_domain::ids::{Id, PartnerId};
use tally_store::{ApiKeyRow, Store, keys};

mod challenges;
mod exchange;
mod referrals;
mod rewards;
mod settlement;
mod staff;
mod transfers;

/// Demo partner keys: fixed so the README's walk-through works on any demo database.
/// They exist only in databases `tally demo` filled.
pub const DEMO_KEYS: [(&str, &str); 3] = [
    ("hotel", "tk_demo_sandiego_hotel"),
    ("apparel", "tk_demo_berlin_apparel"),
    ("drugstore", "tk_demo_prague_drugstore"),
];
/// The operator key of a demo database when `TALLY_ADMIN_KEY` is not set.
pub const DEMO_ADMIN_KEY: &str = "tk_demo_operator";

/// A small deterministic generator (xorshift64*): the same demo every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct DemoPartner {
    kind: &'static str,
    key: &'static str,
    id: String,
    locations: Vec<String>,
    currency: &'static str,
    /// Typical basket, in minor units: (least, most).
    basket: (u64, u64),
    /// Minor units per programme-currency cent, roughly, to size redemptions.
    rate: f64,
    categories: &'static [&'static str],
}

struct Member {
    id: String,
    home: usize,
    /// Days between purchases, on average.
    every: u64,
    available: i64,
    /// The day the member stops buying, if they do (their tier goes down a level at
    /// each review after, their points expire).
    stops_on: Option<u32>,
}

/// Fills an empty database with the demo coalition; a database with partners is left alone.
pub async fn fill(store: &Store, members: u32, days: u32) -> anyhow::Result<()> {
    if !store.partners().await?.is_empty() {
        println!("The database already has partners: serving it as it is.");
        return Ok(());
    }
    let admin_key = std::env::var("TALLY_ADMIN_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .unwrap_or_else(|| DEMO_ADMIN_KEY.to_string());
    if std::env::var("TALLY_ADMIN_KEY").is_err() && store.admin_key_hash().await?.is_none() {
        store.set_admin_key_hash(&keys::hash_key(&admin_key)).await?;
    }
    let start = Timestamp::now() - SignedDuration::from_hours(24 * i64::from(days));
    let clock_us = Arc::new(AtomicI64::new(start.as_microsecond()));
    let c = clock_us.clone();
    let clock: tally_http::Clock =
        Arc::new(move || Timestamp::from_microsecond(c.load(Ordering::Relaxed)).unwrap_or_else(|_| Timestamp::now()));
    let state = server::state(store.clone(), clock).await?;
    let api = Api::new(tally_http::router(state));
    let admin = admin_key.as_str();

    println!("Filling the demo coalition: {members} members, {days} days of history…");
    api.expect(
        Method::PUT,
        "/v1/fx-rates",
        admin,
        json!({"rates": {"USD": "1.08", "CZK": "25.2", "GBP": "0.85"}}),
    )
    .await?;
    // The tier ladder (docs/PROGRAMMES.md), scaled to the demo's half year of sales:
    // members climb it as they buy, and engagement events count too.
    api.expect(
        Method::PUT,
        "/v1/tiers",
        admin,
        json!({"basis": "qualifying_points", "period": "calendar_year", "grace_days": 30, "events_qualify": true, "levels": [
            {"code": "silver", "name": "Silver", "threshold": 500, "multiplier": "1", "perks": ["Birthday bonus"]},
            {"code": "gold", "name": "Gold", "threshold": 2500, "multiplier": "1.25", "perks": ["Late checkout at the hotel"]},
            {"code": "platinum", "name": "Platinum", "threshold": 10000, "multiplier": "1.5", "perks": ["Suite upgrade when free"]}
        ]}),
    )
    .await?;
    // Two paid plans (docs/PROGRAMMES.md): members buy them below, most renew, some lapse
    // or cancel.
    for plan in [
        json!({"code": "plus", "name": "Tally Plus", "price": {"amount": 499, "currency": "EUR"}, "interval": "month",
               "benefits": {"earn_multiplier": "1.25", "bonus_points": 200, "early_access": true, "free_reward": false},
               "trial_days": 14}),
        json!({"code": "business", "name": "Tally Business", "price": {"amount": 9900, "currency": "EUR"}, "interval": "year",
               "benefits": {"earn_multiplier": "1.5", "bonus_points": 2000, "early_access": true, "free_reward": true},
               "trial_days": 0}),
    ] {
        api.expect(Method::POST, "/v1/membership-plans", admin, plan).await?;
    }
    let specs = [
        (
            "Harborview Hotel San Diego",
            "hotel",
            "US",
            "USD",
            "America/Los_Angeles",
            "1",
            14,
            vec![("Harborview Hotel", "San Diego")],
            (12_000, 90_000),
            1.08,
            &["room", "spa", "restaurant"][..],
        ),
        (
            "Spree Mode",
            "apparel",
            "DE",
            "EUR",
            "Europe/Berlin",
            "1",
            0,
            vec![("Spree Mode Mitte", "Berlin"), ("Spree Mode Kreuzberg", "Berlin")],
            (1_500, 25_000),
            1.0,
            &["apparel", "shoes", "accessories"][..],
        ),
        (
            "Lékárna U Anděla",
            "drugstore",
            "CZ",
            "CZK",
            "Europe/Prague",
            "1",
            0,
            vec![("Lékárna Vinohrady", "Prague"), ("Lékárna Smíchov", "Prague")],
            (8_000, 250_000),
            25.2,
            &["cosmetics", "pharmacy", "baby", "tobacco"][..],
        ),
    ];
    let mut partners = Vec::new();
    for (i, (name, industry, country, currency, tz, earn, pending, locs, basket, rate, categories)) in
        specs.into_iter().enumerate()
    {
        let p = api
            .expect(Method::POST, "/v1/partners", admin, json!({"name": name, "industry": industry, "country": country, "currency": currency, "timezone": tz, "earn_rate": earn, "pending_days": pending}))
            .await?;
        let id = p["id"].as_str().context("partner id")?.to_string();
        let mut locations = Vec::new();
        for (lname, city) in locs {
            let l = api
                .expect(
                    Method::POST,
                    &format!("/v1/partners/{id}/locations"),
                    admin,
                    json!({"name": lname, "city": city, "country": country, "timezone": tz}),
                )
                .await?;
            locations.push(l["id"].as_str().context("location id")?.to_string());
        }
        let (kind, key) = DEMO_KEYS[i];
        store
            .create_api_key(ApiKeyRow {
                id: keys::new_id("key"),
                partner_id: PartnerId::from_stored(id.clone()),
                key_hash: keys::hash_key(key),
                created_at: start,
            })
            .await?;
        partners.push(DemoPartner {
            kind,
            key,
            id,
            locations,
            currency,
            basket,
            rate,
            categories,
        });
    }

    // A key the hotel no longer uses, revoked: listed with its revocation time.
    let old_key = api
        .expect(
            Method::POST,
            &format!("/v1/partners/{}/api-keys", partners[0].id),
            admin,
            Value::Null,
        )
        .await?;
    let old_key_id = old_key["id"].as_str().context("key id")?;
    api.expect(
        Method::DELETE,
        &format!("/v1/partners/{}/api-keys/{old_key_id}", partners[0].id),
        admin,
        Value::Null,
    )
    .await?;

    let ids: Vec<&str> = partners.iter().map(|p| p.id.as_str()).collect();
    let end = start + SignedDuration::from_hours(24 * i64::from(days));
    crate::demo_rules::add_rules(&api, admin, &ids, DEMO_KEYS[2].1, end).await?;

    let mut rng = Rng(0x7a11_7a11_5eed_0001);
    let mut people = Vec::new();
    // Plus memberships: (id, keeps paying, cancels after two months).
    let mut subscriptions: Vec<(String, bool, bool)> = Vec::new();
    // Business memberships, paid for a year at a time.
    let mut yearly: Vec<String> = Vec::new();
    let mut referral_codes: Vec<String> = Vec::new();
    for i in 0..members {
        let home = match rng.below(100) {
            0..=24 => 0,
            25..=59 => 1,
            _ => 2,
        };
        let body = match (i, home) {
            (0, _) => {
                json!({"name": "Jana Nováková", "email": "jana@example.cz", "phone": "+420601123456", "card": "6006000000000001", "country": "CZ"})
            }
            (_, 0) => {
                json!({"name": format!("Guest {i}"), "email": format!("guest{i}@example.com"), "phone": format!("+1619{}{:06}", 2 + rng.below(7), i), "country": "US"})
            }
            (_, 1) => {
                json!({"name": format!("Kunde {i}"), "email": format!("kunde{i}@example.de"), "phone": format!("+49151{:08}", 10_000_000 + u64::from(i)), "country": "DE"})
            }
            _ => {
                json!({"name": format!("Zákazník {i}"), "email": format!("zakaznik{i}@example.cz"), "phone": format!("+420{}{:06}", 601 + rng.below(8), i), "country": "CZ"})
            }
        };
        let home = if i == 0 { 2 } else { home };
        let mut body = body;
        // Referral chains: one member in seven came through the share link of the member
        // who joined seven before.
        if i % 7 == 3 && i >= 7 {
            body["referral_code"] = json!(referral_codes[i as usize - 7]);
        }
        let m = api
            .expect(Method::POST, "/v1/members", partners[home].key, body)
            .await?;
        referral_codes.push(m["referral_code"].as_str().unwrap_or_default().to_string());
        let member_id = m["id"].as_str().context("member id")?.to_string();
        if i == 0 {
            // Jana shares her personal data with the Berlin store; the other partners
            // see her as "Jana N." with her balance and tier.
            api.expect(
                Method::PUT,
                &format!("/v1/members/{member_id}/consents/{}", partners[1].id),
                admin,
                Value::Null,
            )
            .await?;
        }
        if i % 10 == 0 {
            // A welcome offer: Gold by hand for a year; the computed level applies after.
            // Jana is Gold by hand until a year after today, so the README's walk-through
            // (the Gold members' autumn sale in Berlin) holds whatever her history.
            let (until, reason) = match i {
                0 => (
                    end + SignedDuration::from_hours(24 * 365),
                    "A loyal customer: Gold by hand",
                ),
                _ => (
                    start + SignedDuration::from_hours(24 * 365),
                    "Welcome offer: Gold for the first year",
                ),
            };
            api.expect(
                Method::PUT,
                &format!("/v1/members/{member_id}/tier"),
                admin,
                json!({"code": "gold", "until": until.to_string(), "reason": reason}),
            )
            .await?;
        }
        if i % 12 == 1 || i % 40 == 5 {
            let plan = if i % 12 == 1 { "plus" } else { "business" };
            let m = api
                .expect(
                    Method::POST,
                    &format!("/v1/members/{member_id}/memberships"),
                    admin,
                    json!({"plan": plan}),
                )
                .await?;
            let id = m["id"].as_str().context("membership id")?.to_string();
            if plan == "business" {
                pay_membership(&api, admin, &id, "DEMO-PAY-0", 9900).await?;
                yearly.push(id);
            } else {
                // Two in three pay when their trial ends and every month after; one in
                // six of those cancels on day 43, after its first paid month; the rest
                // lapse after the trial.
                let pays = i % 36 != 1;
                let cancels = pays && i % 72 == 13;
                subscriptions.push((id, pays, cancels));
            }
        }
        people.push(Member {
            id: member_id,
            home,
            every: 4 + rng.below(25),
            available: 0,
            stops_on: (i % 8 == 3).then(|| (days / 3).max(1) + rng.below(u64::from(days / 4).max(1)) as u32),
        });
    }

    let ids: Vec<String> = people.iter().map(|m| m.id.clone()).collect();
    let (wallets, pooling) = add_wallets(&api, admin, &ids).await?;
    let mut catalogue = rewards::add(&api, admin, &partners, end).await?;
    let mut gifts = transfers::open(&api, admin).await?;
    referrals::open(&api, admin).await?;
    challenges::add(&api, admin, end).await?;
    let mut exchange = exchange::add(&api, admin).await?;
    let mut settling = settlement::open(&api, admin, &partners, start, end).await?;
    let last_month = tally_domain::settlement::Period::of(end).prev();

    let mut receipt_no = 0u64;
    let mut subscriptions_paid = 0u64;
    let mut returns_due: Vec<(u32, usize, String, i64, &str)> = Vec::new();
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for day in 0..days {
        let day_start = start + SignedDuration::from_hours(24 * i64::from(day));
        clock_us.store(
            (day_start + SignedDuration::from_hours(23)).as_microsecond(),
            Ordering::Relaxed,
        );
        settling
            .day(
                &api,
                admin,
                &partners,
                &people[0].id,
                day_start + SignedDuration::from_hours(23),
                last_month,
            )
            .await?;
        let mut batches: Vec<Vec<Value>> = vec![Vec::new(); partners.len()];
        let mut who: Vec<Vec<usize>> = vec![Vec::new(); partners.len()];
        for (mi, m) in people.iter().enumerate() {
            if m.stops_on.is_some_and(|d| day >= d) || !rng.below(m.every * 100).lt(&100) {
                continue;
            }
            let pi = if rng.chance(12) {
                rng.below(partners.len() as u64) as usize
            } else {
                m.home
            };
            let p = &partners[pi];
            let amount = p.basket.0 + rng.below(p.basket.1 - p.basket.0);
            let occurred = day_start + SignedDuration::from_mins(8 * 60 + rng.below(13 * 60) as i64);
            let mut redeem = 0;
            // Jana (the first member) never pays with points here: the README's walk-through
            // has her pay 300 points, whatever the rest of the demo drew.
            if mi != 0 && m.available >= 300 && rng.chance(10) {
                let bill_cents = (amount as f64 / p.rate) as i64;
                redeem = (m.available / 2).min(bill_cents / 2);
            }
            let lines_n = 1 + rng.below(3);
            let unit = amount / lines_n;
            let lines: Vec<Value> = (0..lines_n)
                .map(|l| json!({"sku": format!("{}-{}", p.kind.to_uppercase(), 100 + rng.below(40)), "category": p.categories[rng.below(p.categories.len() as u64) as usize], "quantity": 1, "unit_price": {"amount": if l + 1 == lines_n { amount - unit * (lines_n - 1) } else { unit }, "currency": p.currency}}))
                .collect();
            receipt_no += 1;
            batches[pi].push(json!({
                "external_id": format!("DEMO-{receipt_no:07}"),
                "member": {"id": m.id},
                "location_id": p.locations[rng.below(p.locations.len() as u64) as usize],
                "occurred_at": occurred.to_string(),
                "total": {"amount": amount, "currency": p.currency},
                "lines": lines,
                "redeem_points": redeem,
            }));
            who[pi].push(mi);
        }
        for (pi, batch) in batches.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let (status, answer) = api
                .call(
                    Method::POST,
                    "/v1/transactions/batch",
                    partners[pi].key,
                    Some(json!({"transactions": batch})),
                )
                .await?;
            if status != StatusCode::OK {
                bail!("demo batch answered {status}: {answer}");
            }
            for (slot, result) in answer["results"].as_array().context("results")?.iter().enumerate() {
                let mi = who[pi][slot];
                if result["status"] == 201 {
                    let t = &result["transaction"];
                    // Who earns into and spends a shared wallet pays from it: what it holds.
                    let holder = match pooling.contains(&mi) && t["wallet"].is_object() {
                        true => &t["wallet"],
                        false => t,
                    };
                    people[mi].available = holder["balance"]["available"].as_i64().unwrap_or(0);
                    *counts.entry("purchases").or_default() += 1;
                    if t["points_redeemed"].as_i64().unwrap_or(0) > 0 {
                        *counts.entry("redemptions").or_default() += 1;
                    }
                    if rng.chance(3) {
                        let total = t["total"]["amount"].as_i64().unwrap_or(0);
                        let part = if rng.chance(50) { total } else { total / 2 };
                        returns_due.push((
                            day + 1 + rng.below(5) as u32,
                            pi,
                            t["id"].as_str().unwrap_or_default().to_string(),
                            part,
                            partners[pi].currency,
                        ));
                    }
                }
            }
        }
        let (due_today, later): (Vec<_>, Vec<_>) = returns_due.into_iter().partition(|r| r.0 <= day);
        returns_due = later;
        for (_, pi, txn, amount, currency) in due_today {
            receipt_no += 1;
            let body = json!({"external_id": format!("DEMO-RET-{receipt_no:07}"), "amount": {"amount": amount, "currency": currency}});
            let (status, _) = api
                .call(
                    Method::POST,
                    &format!("/v1/transactions/{txn}/returns"),
                    partners[pi].key,
                    Some(body),
                )
                .await?;
            if status == StatusCode::CREATED {
                *counts.entry("returns").or_default() += 1;
            }
        }
        for (mi, m) in people.iter().enumerate() {
            if rng.below(400) == 0 {
                let (kind, partner) = crate::demo_rules::EVENT_KINDS[rng.below(3) as usize];
                let key = partner.map_or(admin, |i| partners[i].key);
                let body = json!({"id": format!("DEMO-EV-{day}-{mi}"), "member": {"id": m.id}, "type": kind,
                                  "occurred_at": (day_start + SignedDuration::from_hours(12)).to_string()});
                let (status, _) = api.call(Method::POST, "/v1/events", key, Some(body)).await?;
                if status == StatusCode::CREATED {
                    *counts.entry("events").or_default() += 1;
                }
            }
        }
        // Business renews a few days before each year runs out.
        if day > 0 && day % 360 == 0 {
            for (n, id) in yearly.iter().enumerate() {
                pay_membership(&api, admin, id, &format!("DEMO-PAY-Y{day}-{n}"), 9900).await?;
                subscriptions_paid += 1;
            }
        }
        // Monthly Plus payments: on the day the trial ends, then every 30 days.
        if day >= 13 && (day - 13) % 30 == 0 {
            for (n, (id, pays, cancels)) in subscriptions.iter().enumerate() {
                if !pays || (*cancels && day > 60) {
                    continue;
                }
                if *cancels && day + 30 > 60 && day <= 60 {
                    api.call(Method::POST, &format!("/v1/memberships/{id}/cancel"), admin, None)
                        .await?;
                    continue;
                }
                pay_membership(&api, admin, id, &format!("DEMO-PAY-{day}-{n}"), 499).await?;
                subscriptions_paid += 1;
            }
        }
        catalogue
            .day(&api, admin, &partners, &mut people, &mut rng, day)
            .await?;
        gifts.day(&api, admin, &people, day).await?;
        exchange.day(&api, admin, &mut people, day).await?;
        if day + 1 == days {
            catalogue.jana(&api, admin, &people[0].id).await?;
        }
        api.call(Method::POST, "/v1/expiry-runs", admin, None).await?;
        if (day + 1) % 30 == 0 || day + 1 == days {
            println!(
                "  day {:>3}/{days}: {} purchases, {} paid partly with points, {} returns, {} engagement events, {} membership payments, {} rewards redeemed",
                day + 1,
                counts.get("purchases").unwrap_or(&0),
                counts.get("redemptions").unwrap_or(&0),
                counts.get("returns").unwrap_or(&0),
                counts.get("events").unwrap_or(&0),
                subscriptions_paid,
                catalogue.redeemed
            );
        }
    }
    let (_, verify) = api.call(Method::GET, "/v1/ledger/verify", admin, None).await?;
    if verify["balanced"] != true {
        bail!("the demo ledger does not verify: {verify}");
    }
    println!("Demo ready: ledger balanced ({} entries).", verify["entries_checked"]);
    println!(
        "Operator key: {}",
        if std::env::var("TALLY_ADMIN_KEY").is_ok() {
            "(your TALLY_ADMIN_KEY)"
        } else {
            DEMO_ADMIN_KEY
        }
    );
    let (_, books) = api.call(Method::GET, "/v1/ledger/balances", admin, None).await?;
    let balance = |account: String| -> i64 {
        books["accounts"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["account"] == account.as_str()))
            .and_then(|x| x["balance"].as_i64())
            .unwrap_or(0)
    };
    for p in &partners {
        println!(
            "Partner {:<9} id {}  key {}  locations {}",
            p.kind,
            p.id,
            p.key,
            p.locations.join(", ")
        );
        println!(
            "  points earned there: {} funded by the partner, {} by the operator (GET /v1/ledger/balances)",
            -balance(format!("partner:{}:issued", p.id)),
            -balance(format!("program:funded:{}", p.id))
        );
    }
    for w in &wallets {
        println!("{w}");
    }
    println!(
        "Rewards: 13 in the catalogue (GET /v1/rewards); {} redeemed, {} vouchers used at the tills, {} cancelled, the rest issued or expired (GET /v1/redemptions)",
        catalogue.redeemed, catalogue.used, catalogue.cancelled
    );
    println!("{}", gifts.summary());
    // The members whose share link the member seven after them joined through.
    let referrers: Vec<usize> = (0..people.len())
        .filter(|i| i % 7 == 3 && i + 7 < people.len())
        .collect();
    println!("{}", referrals::summary(&api, admin, &people, &referrers).await?);
    println!("{}", challenges::summary(&api, admin, &people).await?);
    println!("{}", exchange.summary());
    println!("{}", settling.summary(&api, admin, &partners).await?);
    let staff_partners: Vec<(&'static str, String)> = partners.iter().map(|p| (p.kind, p.id.clone())).collect();
    let logins = staff::create(store, &staff_partners).await?;
    println!("{}", staff::summary(&logins));
    println!("Demo member Jana Nováková: phone +420601123456, card 6006000000000001");
    println!("  she shares her personal data with Spree Mode; the hotel and the drugstore see her as \"Jana N.\"");
    println!(
        "  what she can redeem and why not: GET /v1/members/{}/rewards?lang=cs",
        people[0].id
    );
    if let Some((code, what)) = &catalogue.jana {
        println!("  her voucher {code}: {what}; the drugstore's till uses it with POST /v1/vouchers/{code}/redeem");
    }
    if let Some(code) = referral_codes.first() {
        println!(
            "  her share link: /r/{code} (to {}?referral_code={code}); one member in seven joined through a link",
            transfers::SIGNUP_URL
        );
    }
    println!(
        "The hotel has one revoked key: GET /v1/partners/{}/api-keys",
        partners[0].id
    );
    Ok(())
}

/// Three households and one business (docs/PROGRAMMES.md): members who earn into a
/// shared wallet, some who may spend it and some who may not. Returns a line per wallet
/// for the closing summary, and the members who earn into and spend a wallet (their
/// sales use it by default).
async fn add_wallets(api: &Api, admin: &str, members: &[String]) -> anyhow::Result<(Vec<String>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut pooling = Vec::new();
    // (name, owner, [(member, earn_into, spend)]): the second member of the first
    // household is a child who collects but may not spend.
    // A member joining: (index, earn_into, spend).
    type Joiner = (usize, bool, bool);
    let households: [(&str, usize, [Joiner; 2]); 3] = [
        ("The Dvořáks", 2, [(3, true, true), (4, true, false)]),
        ("Familie Becker", 6, [(7, true, true), (11, false, true)]),
        ("Flat 4B", 9, [(13, true, true), (14, true, true)]),
    ];
    for (name, owner, joiners) in households {
        if members.len() <= 14 {
            break;
        }
        let w = api
            .expect(
                Method::POST,
                "/v1/wallets",
                admin,
                json!({"kind": "household", "name": name, "owner_id": members[owner]}),
            )
            .await?;
        let id = w["id"].as_str().context("wallet id")?.to_string();
        pooling.push(owner);
        for (m, earn_into, spend) in joiners {
            if earn_into && spend {
                pooling.push(m);
            }
            let invite = api
                .expect(Method::POST, &format!("/v1/wallets/{id}/invites"), admin, json!({}))
                .await?;
            api.expect(
                Method::POST,
                &format!("/v1/wallets/{id}/members"),
                admin,
                json!({"member_id": members[m], "code": invite["code"], "earn_into": earn_into, "spend": spend}),
            )
            .await?;
        }
        out.push(format!("Household {name}: GET /v1/wallets/{id} (and /statement)"));
    }
    if members.len() > 16 {
        let w = api
            .expect(
                Method::POST,
                "/v1/wallets",
                admin,
                json!({"kind": "business", "name": "Bohemia Logistics travel", "company_name": "Bohemia Logistics s.r.o.",
                       "vat_id": "CZ27182818"}),
            )
            .await?;
        let id = w["id"].as_str().context("wallet id")?.to_string();
        pooling.push(5);
        for (m, spend) in [(5, true), (8, false), (16, false)] {
            api.expect(
                Method::POST,
                &format!("/v1/wallets/{id}/members"),
                admin,
                json!({"member_id": members[m], "earn_into": true, "spend": spend}),
            )
            .await?;
        }
        out.push(format!("Business Bohemia Logistics (3 contacts): GET /v1/wallets/{id}"));
    }
    Ok((out, pooling))
}

/// Records a membership payment as the card processor would.
async fn pay_membership(api: &Api, admin: &str, id: &str, external_id: &str, amount: i64) -> anyhow::Result<()> {
    api.expect(
        Method::POST,
        &format!("/v1/memberships/{id}/payments"),
        admin,
        json!({"external_id": external_id, "amount": {"amount": amount, "currency": "EUR"}}),
    )
    .await?;
    Ok(())
}
