//! The member's home (`/me`): her points (what she can spend, what is pending and when
//! it becomes hers, what expires soon), her tier and the way to the next, her
//! membership plan and her recent history with the reason of every point; and the
//! whole history, page by page (`/me/history`).

use super::{PageLang, amount, page, progress, read};
use crate::web::Web;
use crate::web::i18n::{Key, Lang};
use crate::web::layout::{self, int, rows, text};
use crate::web::session::Member;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;
use std::collections::HashMap;

/// History lines on the home page.
const RECENT: u32 = 20;
/// History lines on each page of the whole history.
const HISTORY_PAGE: u32 = 50;

pub async fn show(State(web): State<Web>, member: Member, PageLang(lang): PageLang) -> Result<Response, Response> {
    let id = &member.id;
    let (balance_path, tier_path, memberships_path, activity_path) = (
        format!("/v1/members/{id}/balance"),
        format!("/v1/members/{id}/tier"),
        format!("/v1/members/{id}/memberships"),
        format!("/v1/members/{id}/activity?limit={RECENT}"),
    );
    let (balance, tier, memberships, activity, lots) = tokio::join!(
        read(&web, &member, lang, "/me", &balance_path),
        read(&web, &member, lang, "/me", &tier_path),
        read(&web, &member, lang, "/me", &memberships_path),
        read(&web, &member, lang, "/me", &activity_path),
        web.app.store.open_lots(id),
    );
    let (balance, tier, memberships, activity) = (balance?, tier?, memberships?, activity?);
    let lots = lots.map_err(layout::store_failed)?;
    let schedule = Schedule::of(&lots, web.app.now());
    let main = html! {
        (points(&web, lang, &balance, &schedule))
        (tier_section(&web, lang, &tier))
        (membership(&web, lang, &memberships))
        section {
            h2 #recent { (lang.t(Key::RecentHistory)) }
            (history_table(lang, rows(&activity["items"]), "recent"))
            @if let Some(cursor) = activity["next_cursor"].as_str() {
                p { a href={ "/me/history?before=" (cursor) } { (lang.t(Key::MoreHistory)) } }
            }
        }
    };
    Ok(layout::ok(
        page(&web, &member, lang, "/me", lang.t(Key::HomeTitle), main).await,
    ))
}

/// How far ahead the portal warns of points expiring.
const EXPIRY_WARNING: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 90);

/// Her points by day: pending points by the day they become hers, and available points
/// by the day they expire within [`EXPIRY_WARNING`], each soonest first.
struct Schedule {
    pending: Vec<(jiff::civil::Date, i64)>,
    expiring: Vec<(jiff::civil::Date, i64)>,
}

impl Schedule {
    fn of(lots: &[tally_store::web::OpenLot], now: jiff::Timestamp) -> Schedule {
        use std::collections::BTreeMap;
        let day = |t: jiff::Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
        let horizon = now.saturating_add(EXPIRY_WARNING).unwrap_or(now);
        let mut pending = BTreeMap::new();
        let mut expiring = BTreeMap::new();
        // A lot past its expiry that the expiry run has not reached yet is gone already.
        for lot in lots.iter().filter(|l| l.expires_at > now) {
            match lot.matures_at {
                Some(m) if m > now => *pending.entry(day(m)).or_insert(0i64) += lot.points,
                _ if lot.expires_at <= horizon => *expiring.entry(day(lot.expires_at)).or_insert(0i64) += lot.points,
                _ => {}
            }
        }
        Schedule {
            pending: pending.into_iter().collect(),
            expiring: expiring.into_iter().collect(),
        }
    }
}

/// What she holds: available, pending with the days it becomes available, set aside
/// for vouchers, what expires in the next 90 days, and how expiry works.
fn points(web: &Web, lang: Lang, balance: &Value, schedule: &Schedule) -> Markup {
    let pending = int(&balance["pending"]);
    let reserved = int(&balance["reserved"]);
    let date = |d: &jiff::civil::Date| lang.date(&Value::String(format!("{d}T00:00:00Z")));
    html! {
        section {
            h2 { (lang.t(Key::PointsHeading)) }
            div.cards {
                div.card {
                    span.figure { (lang.points(int(&balance["available"]))) }
                    span.label { (lang.t(Key::AvailableLabel)) }
                }
                div.card {
                    span.figure { (lang.points(pending)) }
                    span.label { (lang.t(Key::PendingLabel)) }
                }
                @if reserved > 0 {
                    div.card {
                        span.figure { (lang.points(reserved)) }
                        span.label { (lang.t(Key::ReservedLabel)) }
                    }
                }
                div.card {
                    span.figure { (lang.points(int(&balance["lifetime_earned"]))) }
                    span.label { (lang.t(Key::LifetimeLabel)) }
                }
            }
            @if !schedule.pending.is_empty() {
                h3 { (lang.t(Key::PendingWhen)) }
                ul {
                    @for (day, points) in &schedule.pending {
                        li { (lang.fill(Key::PendingOn, &[
                            ("points", &lang.count_points(*points)),
                            ("date", &date(day)),
                        ])) }
                    }
                }
            } @else if pending > 0 {
                p { (lang.t(Key::PendingExplain)) }
            }
            @if !schedule.expiring.is_empty() {
                h3 { (lang.t(Key::ExpiringSoon)) }
                ul {
                    @for (day, points) in &schedule.expiring {
                        li { (lang.fill(Key::ExpiresOn, &[
                            ("points", &lang.count_points(*points)),
                            ("date", &date(day)),
                        ])) }
                    }
                }
            }
            p.hint { (lang.fill(Key::ExpiryRule, &[("months", &web.app.program().expiry_months.to_string())])) }
            p { a href="/me/rewards" { (lang.t(Key::SpendPoints)) } }
        }
    }
}

/// Her tier, its perks, and what is missing for the next (nothing when the programme
/// has no tiers).
fn tier_section(web: &Web, lang: Lang, tier: &Value) -> Markup {
    if tier["enabled"].as_bool() != Some(true) {
        return html! {};
    }
    let level = &tier["level"];
    let next = &tier["next"];
    // Qualifying is counted in points, or in spend (minor units of the currency).
    let measure = |n: i64| match text(&tier["basis"]) {
        "qualifying_spend" => amount(web, n),
        _ => lang.count_points(n),
    };
    html! {
        section {
            h2 { (lang.t(Key::TierHeading)) }
            @if level.is_object() {
                p { (lang.fill(Key::TierNow, &[("tier", text(&level["name"]))])) }
                @let perks = rows(&level["perks"]);
                @if !perks.is_empty() {
                    h3 { (lang.t(Key::TierPerks)) }
                    ul { @for perk in perks { li { (text(perk)) } } }
                }
            } @else {
                p { (lang.t(Key::TierNone)) }
            }
            @if next.is_object() {
                @let name = text(&next["name"]);
                p { (lang.fill(Key::TierMissing, &[
                    ("missing", &measure(int(&next["missing"]))),
                    ("tier", name),
                    ("date", &lang.date(&tier["period_end"])),
                ])) }
                (progress(int(&tier["qualifying"]), int(&next["threshold"]), &lang.fill(Key::TierProgress, &[("tier", name)])))
            } @else if level.is_object() {
                p { (lang.t(Key::TierTop)) }
            }
            @if tier["manual_until"].is_string() {
                p.hint { (lang.fill(Key::TierManualUntil, &[("date", &lang.date(&tier["manual_until"]))])) }
            } @else if tier["review"].is_object() {
                p.hint { (lang.fill(Key::TierReview, &[("date", &lang.date(&tier["review"]["at"]))])) }
            }
        }
    }
}

/// Her membership plan in force, if any (nothing when the programme sells none and
/// she never had one).
fn membership(web: &Web, lang: Lang, memberships: &Value) -> Markup {
    let program = web.app.program();
    let all = rows(memberships);
    if program.plans.is_empty() && all.is_empty() {
        return html! {};
    }
    let current = all
        .iter()
        .rev()
        .find(|m| matches!(text(&m["status"]), "trialing" | "active" | "past_due"));
    html! {
        section {
            h2 { (lang.t(Key::MembershipHeading)) }
            @if let Some(m) = current {
                @let code = text(&m["plan"]);
                @let name = program.plans.iter().find(|p| p.code == code).map_or(code, |p| p.name.as_str());
                p { (lang.fill(Key::MembershipPlan, &[("plan", name)])) }
                @match text(&m["status"]) {
                    "trialing" => {
                        p { (lang.fill(Key::MembershipTrial, &[("date", &lang.date(&m["trial_until"]))])) }
                    },
                    "past_due" => {
                        p { (lang.t(Key::MembershipPastDue)) }
                    },
                    _ => {
                        @if m["renewal_at"].is_string() {
                            p { (lang.fill(Key::MembershipRenews, &[("date", &lang.date(&m["renewal_at"]))])) }
                        }
                    },
                }
            } @else {
                p { (lang.t(Key::MembershipNone)) }
            }
        }
    }
}

/// Her history as a table: when, what and why, and the points it changed.
fn history_table(lang: Lang, items: &[Value], labelled_by: &str) -> Markup {
    if items.is_empty() {
        return html! { p { (lang.t(Key::HistoryEmpty)) } };
    }
    html! {
        div.scroll {
            table aria-labelledby=(labelled_by) {
                thead {
                    tr {
                        th scope="col" { (lang.t(Key::ColumnDate)) }
                        th scope="col" { (lang.t(Key::ColumnWhat)) }
                        th.num scope="col" { (lang.t(Key::ColumnPoints)) }
                    }
                }
                tbody {
                    @for item in items {
                        @let points = int(&item["points"]);
                        tr {
                            td { (lang.date(&item["occurred_at"])) }
                            td {
                                @if let Some(kind) = kind_label(text(&item["kind"])) {
                                    strong { (lang.t(kind)) }
                                    br;
                                }
                                (text(&item["description"]))
                            }
                            td.num.pos[points > 0].neg[points < 0] {
                                @if points > 0 { "+" }
                                (lang.points(points))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a line of history is, in her words; an unknown kind shows its description only.
fn kind_label(kind: &str) -> Option<Key> {
    Some(match kind {
        "earn" => Key::KindEarn,
        "earn_pending" => Key::KindEarnPending,
        "mature" => Key::KindMature,
        "redeem" => Key::KindRedeem,
        "expire" => Key::KindExpire,
        "return_reversal" => Key::KindReturnReversal,
        "return_refund" => Key::KindReturnRefund,
        "wallet_split" => Key::KindWalletSplit,
        "reward_reserve" => Key::KindRewardReserve,
        "reward_use" => Key::KindRewardUse,
        "reward_release" => Key::KindRewardRelease,
        "reward_forfeit" => Key::KindRewardForfeit,
        "donation" => Key::KindDonation,
        "transfer_out" => Key::KindTransferOut,
        "transfer_in" => Key::KindTransferIn,
        "exchange_out" => Key::KindExchangeOut,
        "exchange_confirm" => Key::KindExchangeConfirm,
        "exchange_refund" => Key::KindExchangeRefund,
        "exchange_in" => Key::KindExchangeIn,
        _ => return None,
    })
}

/// `GET /me/history?before=…`: her whole history, newest first, a page at a time.
pub async fn history(
    State(web): State<Web>,
    member: Member,
    PageLang(lang): PageLang,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let before = q
        .get("before")
        .filter(|c| !c.is_empty() && c.len() <= 18 && c.bytes().all(|b| b.is_ascii_digit()));
    let mut path = format!("/v1/members/{}/activity?limit={HISTORY_PAGE}", member.id);
    if let Some(c) = before {
        path.push_str("&cursor=");
        path.push_str(c);
    }
    let activity = read(&web, &member, lang, "/me/history", &path).await?;
    let title = lang.t(Key::HistoryTitle);
    let main = html! {
        h2 #history { (lang.t(Key::HistoryHeading)) }
        (history_table(lang, rows(&activity["items"]), "history"))
        @if let Some(cursor) = activity["next_cursor"].as_str() {
            p { a href={ "/me/history?before=" (cursor) } { (lang.t(Key::OlderHistory)) } }
        }
        p { a href="/me" { (lang.t(Key::BackHome)) } }
    };
    Ok(layout::ok(page(&web, &member, lang, "/me/history", title, main).await))
}

#[cfg(test)]
mod schedule_tests {
    use super::*;
    use tally_store::web::OpenLot;

    #[test]
    fn points_are_listed_by_the_day_they_mature_or_expire_soon() {
        let now: jiff::Timestamp = "2026-11-20T09:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let lots = [
            OpenLot {
                points: 10,
                matures_at: Some(at("2026-12-01T10:00:00Z")),
                expires_at: at("2028-12-01T10:00:00Z"),
            },
            OpenLot {
                points: 5,
                matures_at: Some(at("2026-12-01T20:00:00Z")),
                expires_at: at("2028-12-01T20:00:00Z"),
            },
            OpenLot {
                points: 7,
                matures_at: Some(at("2026-11-01T00:00:00Z")),
                expires_at: at("2027-01-10T00:00:00Z"),
            },
            OpenLot {
                points: 3,
                matures_at: None,
                expires_at: at("2027-01-10T05:00:00Z"),
            },
            OpenLot {
                points: 99,
                matures_at: None,
                expires_at: at("2027-06-01T00:00:00Z"),
            },
            OpenLot {
                points: 4,
                matures_at: None,
                expires_at: at("2026-11-19T00:00:00Z"),
            },
        ];
        let s = Schedule::of(&lots, now);
        assert_eq!(s.pending, vec![("2026-12-01".parse().unwrap(), 15)]);
        assert_eq!(
            s.expiring,
            vec![("2027-01-10".parse().unwrap(), 10)],
            "matured lots count as available"
        );
    }
}
