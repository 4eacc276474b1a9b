//! A partner's back office (`/partner`), for its managers: its own sales and returns,
//! the customers seen at its tills, its earning rules and rewards, the vouchers it
//! fulfils, and its settlement statements. Everything is read as the partner (its API
//! scope) or by the partner's own id from the session, never from the request.

use super::Web;
use super::api::Api;
use super::layout::{self, Nav};
use super::session::Staff;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;
use tally_domain::settlement::Period;

/// The customers page covers this many days of sales.
const CUSTOMER_DAYS: i64 = 90;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/partner", get(overview))
        .route("/partner/customers", get(customers))
        .route("/partner/offers", get(offers))
        .route("/partner/vouchers", get(vouchers))
        .route("/partner/statements", get(statements))
        .route("/partner/statements/{period}", get(statement))
        .route("/partner/statements/{period}/csv", get(statement_csv))
}

fn nav<'a>(staff: &'a Staff, current: &'a str, name: &'a str) -> Nav<'a> {
    Nav {
        face: name,
        items: vec![
            ("/partner", "Sales".to_string()),
            ("/partner/customers", "Customers".to_string()),
            ("/partner/offers", "Rules and rewards".to_string()),
            ("/partner/vouchers", "Vouchers".to_string()),
            ("/partner/statements", "Statements".to_string()),
            ("/till", "Till".to_string()),
        ],
        current,
        who: Some((staff.user.name.clone(), "/logout", staff.csrf.clone())),
        extra: None,
    }
}

/// The page of a partner manager: the partner's name for the header, and the page.
async fn render(web: &Web, staff: &Staff, path: &str, title: &str, main: Markup) -> Result<Response, Response> {
    let partner = staff.manager()?;
    let name = web
        .app
        .partner(partner)
        .await
        .map(|p| p.name)
        .unwrap_or_else(|_| partner.to_string());
    let face = format!("Back office · {name}");
    Ok(layout::ok(layout::page("en", title, &nav(staff, path, &face), main)))
}

async fn overview(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    let partner = staff.manager()?.clone();
    let rows = web
        .app
        .store
        .partner_transactions(&partner, None, 100)
        .await
        .map_err(layout::store_failed)?;
    let main = html! {
        p { "Your latest sales and returns at your tills (newest first)." }
        div.scroll {
            table {
                caption { "Sales and returns" }
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Kind" } th scope="col" { "Transaction" }
                    th scope="col" { "Member" } th.num scope="col" { "Amount" }
                    th.num scope="col" { "Earned" } th.num scope="col" { "Paid with points" }
                } }
                tbody {
                    @for t in &rows {
                        tr {
                            td { (t.occurred_at.strftime("%Y-%m-%d %H:%M")) }
                            td { (t.kind.as_str()) }
                            td { code { (t.id) } }
                            td { code { (t.member_id) } }
                            @if t.kind == tally_store::web::TxnKind::Return {
                                // What a return undid, as a change to the sale.
                                td.num { "−" (t.amount.display()) }
                                td.num { (layout::points(-t.points_earned)) }
                                td.num { (layout::points(-t.points_redeemed)) }
                            } @else {
                                td.num { (t.amount.display()) }
                                td.num { (layout::points(t.points_earned)) }
                                td.num { (layout::points(t.points_redeemed)) }
                            }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() { p { "No sales yet." } }
    };
    render(&web, &staff, "/partner", "Sales and returns", main).await
}

async fn customers(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    let partner = staff.manager()?.clone();
    let rows = web
        .app
        .store
        .partner_customers(
            &partner,
            web.app
                .now()
                .checked_sub(jiff::SignedDuration::from_hours(24 * CUSTOMER_DAYS))
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            200,
        )
        .await
        .map_err(layout::store_failed)?;
    let main = html! {
        p { "Members seen at your tills in the last " (CUSTOMER_DAYS) " days, most recent first, with their visits and points in that time. Their personal data stays with the programme unless they share it with you." }
        div.scroll {
            table {
                caption { "Customers" }
                thead { tr { th scope="col" { "Member" } th.num scope="col" { "Visits" } th scope="col" { "Last visit" } th.num scope="col" { "Points earned here" } } }
                tbody {
                    @for c in &rows {
                        tr {
                            td { code { (c.member_id) } }
                            td.num { (c.visits) }
                            td { (c.last_visit.strftime("%Y-%m-%d")) }
                            td.num { (layout::points(c.points_earned)) }
                        }
                    }
                }
            }
        }
    };
    render(&web, &staff, "/partner/customers", "Customers", main).await
}

/// A name from a localised map (`{"en": …}`): English, else any.
fn name_of(v: &Value) -> String {
    v["en"]
        .as_str()
        .or_else(|| v.as_object().and_then(|m| m.values().find_map(Value::as_str)))
        .unwrap_or("—")
        .to_string()
}

async fn offers(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.manager()?;
    let api = Api::staff(&web, &staff);
    let (rules, rewards) = tokio::join!(api.get("/v1/earning-rules"), api.get("/v1/rewards"));
    let (rules, rewards) = match (rules, rewards) {
        (Ok(r), Ok(w)) => (r, w),
        (Err(e), _) | (_, Err(e)) => return Err(layout::problem(e.status, "Not available", &e.message)),
    };
    let main = html! {
        section {
            h2 { "Earning rules at your tills" }
            table {
                caption { "Rules" }
                thead { tr { th scope="col" { "Rule" } th scope="col" { "Name" } th.num scope="col" { "Version" } th scope="col" { "Definition" } } }
                tbody {
                    @for r in layout::data(&rules) {
                        tr {
                            td { code { (layout::text(&r["id"])) } }
                            td { (layout::text(&r["name"])) }
                            td.num { (layout::int(&r["version"])) }
                            td { details { summary { "Show" } pre { (serde_json::to_string_pretty(&definition(r)).unwrap_or_default()) } } }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Rewards you fulfil" }
            table {
                caption { "Rewards" }
                thead { tr { th scope="col" { "Reward" } th.num scope="col" { "Cost (points)" } th.num scope="col" { "Stock left" } th scope="col" { "Active" } } }
                tbody {
                    @for r in layout::data(&rewards) {
                        tr {
                            td { (name_of(&r["name"])) }
                            td.num { (layout::points(layout::int(&r["cost"]))) }
                            td.num { @if r["stock_left"].is_null() { "unlimited" } @else { (layout::points(layout::int(&r["stock_left"]))) } }
                            td { @if r["active"].as_bool() == Some(true) { "yes" } @else { "no" } }
                        }
                    }
                }
            }
        }
    };
    render(&web, &staff, "/partner/offers", "Rules and rewards", main).await
}

/// A rule as the API shows it, without its bookkeeping (id, version, times).
fn definition(rule: &Value) -> Value {
    let mut d = rule.clone();
    if let Some(m) = d.as_object_mut() {
        for key in ["id", "version", "created_at", "updated_at"] {
            m.remove(key);
        }
    }
    d
}

async fn vouchers(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.manager()?;
    let api = Api::staff(&web, &staff);
    let open = api
        .get("/v1/redemptions?status=issued&limit=200")
        .await
        .map_err(|e| layout::problem(e.status, "Not available", &e.message))?;
    let main = html! {
        p { "Vouchers members hold for your rewards, waiting to be used at your till." }
        table {
            caption { "Vouchers to fulfil" }
            thead { tr { th scope="col" { "Reward" } th scope="col" { "Member" } th.num scope="col" { "Points" } th scope="col" { "Code ends" } th scope="col" { "Valid until" } } }
            tbody {
                @for v in layout::rows(&open["items"]) {
                    tr {
                        td { (layout::text(&v["reward_name"])) }
                        td { code { (layout::text(&v["member_id"])) } }
                        td.num { (layout::points(layout::int(&v["points"]))) }
                        td { (layout::text(&v["code_hint"])) }
                        td { (layout::when(&v["expires_at"])) }
                    }
                }
            }
        }
    };
    render(&web, &staff, "/partner/vouchers", "Vouchers", main).await
}

async fn statements(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.manager()?;
    let periods = web.app.store.settlement_periods().await.map_err(layout::store_failed)?;
    let main = html! {
        p { "Your monthly statement for each closed month: points issued at your tills, points members spent with you, fees, and the net." }
        ul {
            @for p in periods.iter().rev() {
                li { a href={"/partner/statements/" (p.period)} { "Statement " (p.period) } }
            }
        }
        @if periods.is_empty() { p { "No month is closed yet." } }
    };
    render(&web, &staff, "/partner/statements", "Statements", main).await
}

/// The month of a path, or a 404 page.
fn period(p: &str) -> Result<Period, Response> {
    Period::parse(p).map_err(|_| layout::problem(StatusCode::NOT_FOUND, "No such month", "Months are written 2026-10."))
}

async fn statement(State(web): State<Web>, staff: Staff, Path(p): Path<String>) -> Result<Response, Response> {
    let partner = staff.manager()?.clone();
    let p = period(&p)?;
    let api = Api::staff(&web, &staff);
    let s = api
        .get(&format!("/v1/settlements/{p}/partners/{partner}"))
        .await
        .map_err(|e| layout::problem(e.status, "No statement", &e.message))?;
    let main = html! {
        p { a href={"/partner/statements/" (p) "/csv"} download { "Download as CSV" } }
        (super::statement::view(&s))
    };
    render(&web, &staff, "/partner/statements", &format!("Statement {p}"), main).await
}

async fn statement_csv(State(web): State<Web>, staff: Staff, Path(p): Path<String>) -> Result<Response, Response> {
    let partner = staff.manager()?.clone();
    let p = period(&p)?;
    let api = Api::staff(&web, &staff);
    let raw = api
        .get_raw(&format!("/v1/settlements/{p}/partners/{partner}?format=csv"))
        .await
        .map_err(|e| layout::problem(e.status, "No statement", &e.message))?;
    Ok(super::statement::csv_download(raw, &p, partner.as_str()))
}
