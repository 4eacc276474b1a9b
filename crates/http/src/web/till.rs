//! The till (`/till`), for a partner's cashiers: pick the location, name the member
//! (phone, card, email or her QR token), build a basket, see the quote, complete the
//! sale and print its receipt; return a sale; redeem a voucher. Every step is the
//! partner's own API call, so the till can do exactly what the partner's key can.

use super::Web;
use super::api::{Api, Failure};
use super::form::FormData;
use super::layout::{self, Nav};
use super::session::{Staff, path_segment, url_escape};
use super::values::minor_units;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::HashMap;
use tally_domain::ids::PartnerId;
use tally_domain::money::Currency;

/// Basket rows the form offers (more lines: several sales, or the API).
const ROWS: usize = 5;
/// Lines a posted basket may have (a form made by hand may send more rows than shown).
const MAX_LINES: usize = 100;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/till", get(till))
        .route("/till/quote", post(quote))
        .route("/till/sale", post(sale))
        .route("/till/returns", get(returns).post(make_return))
        .route("/till/vouchers", get(vouchers).post(check_voucher))
        .route("/till/vouchers/redeem", post(redeem_voucher))
}

fn nav<'a>(staff: &'a Staff, current: &'a str) -> Nav<'a> {
    let mut items = vec![
        ("/till", "Sale".to_string()),
        ("/till/returns", "Return".to_string()),
        ("/till/vouchers", "Voucher".to_string()),
    ];
    if staff.manager().is_ok() {
        items.push(("/partner", "Back office".to_string()));
    }
    Nav {
        face: "Till",
        items,
        current,
        who: Some((staff.user.name.clone(), "/logout", staff.csrf.clone())),
        extra: None,
    }
}

/// What the till knows of its partner: currency and locations.
struct Shop {
    currency: Currency,
    locations: Vec<(String, String)>,
}

async fn shop(web: &Web, api: &Api<'_>, partner: &PartnerId) -> Result<Shop, Response> {
    let row = web.app.partner(partner).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            layout::problem(
                StatusCode::NOT_FOUND,
                "No partner",
                "This account's partner no longer exists.",
            )
        } else {
            layout::problem(
                e.status,
                "Try again",
                "Tally could not read this till's partner just now.",
            )
        }
    })?;
    let locations = api
        .get(&format!("/v1/partners/{partner}/locations"))
        .await
        .map(|v| {
            layout::data(&v)
                .iter()
                .map(|l| (layout::text(&l["id"]).to_string(), layout::text(&l["name"]).to_string()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Shop {
        currency: row.currency,
        locations,
    })
}

/// The sale form's values, as typed (kept when the page is shown again).
#[derive(Default)]
struct SaleForm {
    location: String,
    member_kind: String,
    member: String,
    skus: Vec<String>,
    categories: Vec<String>,
    quantities: Vec<String>,
    prices: Vec<String>,
    redeem: String,
    external_id: String,
}

impl SaleForm {
    fn read(f: &FormData) -> SaleForm {
        let col = |name: &str| f.all(name).iter().map(|s| s.to_string()).collect::<Vec<_>>();
        SaleForm {
            location: f.text("location"),
            member_kind: f.text("member_kind"),
            member: f.text("member"),
            skus: col("sku"),
            categories: col("category"),
            quantities: col("qty"),
            prices: col("price"),
            redeem: f.text("redeem"),
            external_id: f.text("external_id"),
        }
    }

    fn cell(col: &[String], i: usize) -> &str {
        col.get(i).map(String::as_str).unwrap_or_default()
    }

    /// The API's body for this sale, or what is wrong with the form.
    fn body(&self, currency: Currency) -> Result<Value, String> {
        let member = member_selector(&self.member_kind, &self.member)?;
        let mut lines = Vec::new();
        let mut total = 0i64;
        if self.skus.len() > MAX_LINES {
            return Err(format!("a sale has at most {MAX_LINES} lines"));
        }
        for i in 0..ROWS.max(self.skus.len()) {
            let sku = Self::cell(&self.skus, i);
            let price = Self::cell(&self.prices, i);
            if sku.is_empty() && price.is_empty() {
                continue;
            }
            if sku.is_empty() {
                return Err(format!("line {}: give the item's code (SKU)", i + 1));
            }
            let qty = match Self::cell(&self.quantities, i) {
                "" => 1,
                q => q
                    .parse::<i64>()
                    .ok()
                    .filter(|q| (1..=1_000_000).contains(q))
                    .ok_or_else(|| format!("line {}: the quantity is a whole number from 1", i + 1))?,
            };
            let unit = minor_units(price, currency.code()).ok().ok_or_else(|| {
                format!(
                    "line {}: the price is an amount such as 12.50 with at most {} decimals",
                    i + 1,
                    currency.exponent()
                )
            })?;
            let amount = unit
                .checked_mul(qty)
                .and_then(|a| total.checked_add(a))
                .ok_or_else(|| "the basket is too large".to_string())?;
            total = amount;
            let category = Self::cell(&self.categories, i);
            lines.push(json!({
                "sku": sku,
                "category": if category.is_empty() { Value::Null } else { json!(category) },
                "quantity": qty,
                "unit_price": {"amount": unit, "currency": currency.code()},
            }));
        }
        if lines.is_empty() {
            return Err("add at least one item to the basket".into());
        }
        let redeem = match self.redeem.as_str() {
            "" => 0,
            r => r
                .parse::<i64>()
                .ok()
                .filter(|r| *r >= 0)
                .ok_or("points to pay with: a whole number, 0 or more")?,
        };
        Ok(json!({
            "external_id": if self.external_id.is_empty() { new_receipt_id() } else { self.external_id.clone() },
            "member": member,
            "location_id": if self.location.is_empty() { Value::Null } else { json!(self.location) },
            "total": {"amount": total, "currency": currency.code()},
            "lines": lines,
            "redeem_points": redeem,
        }))
    }
}

/// How the cashier named the member; a QR token is recognised whatever was picked.
fn member_selector(kind: &str, value: &str) -> Result<Value, String> {
    if value.is_empty() {
        return Err("name the member: phone, card, email or scan her QR code".into());
    }
    if value.starts_with("tq1.") {
        return Ok(json!({ "token": value }));
    }
    Ok(match kind {
        "card" => json!({ "card": value }),
        "email" => json!({ "email": value }),
        "token" => json!({ "token": value }),
        _ => json!({ "phone": value }),
    })
}

/// A fresh receipt id for a new sale form: submitting the same form twice (a double
/// click, a reload) sends the same id, and the API never earns a receipt twice.
fn new_receipt_id() -> String {
    format!("till-{}", hex::encode(tally_store::keys::random_bytes::<8>()))
}

async fn till(
    State(web): State<Web>,
    staff: Staff,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let partner = staff.partner()?.clone();
    let api = Api::staff(&web, &staff);
    let shop = shop(&web, &api, &partner).await?;
    let form = SaleForm {
        location: q.get("location").cloned().unwrap_or_default(),
        member_kind: "phone".into(),
        external_id: new_receipt_id(),
        ..SaleForm::default()
    };
    Ok(layout::ok(sale_page(&staff, &shop, &form, None, None)))
}

fn sale_page(staff: &Staff, shop: &Shop, form: &SaleForm, quote: Option<Markup>, error: Option<&str>) -> Markup {
    let cell = SaleForm::cell;
    layout::page(
        "en",
        "New sale",
        &nav(staff, "/till"),
        html! {
            @if let Some(e) = error { (layout::notice("error", e)) }
            form #sale method="post" action="/till/sale" {
                (layout::csrf(&staff.csrf))
                input type="hidden" name="external_id" value=(form.external_id);
                section {
                    h2 { "Where and who" }
                    div.grid2 {
                        div {
                            label for="location" { "Location" }
                            select #location name="location" {
                                option value="" { "(none)" }
                                @for (id, name) in &shop.locations {
                                    option value=(id) selected[*id == form.location] { (name) }
                                }
                            }
                        }
                        div {
                            label for="member_kind" { "Member is named by" }
                            select #member_kind name="member_kind" {
                                @for (v, l) in [("phone", "Phone"), ("card", "Card number"), ("token", "QR token (scan)"), ("email", "Email")] {
                                    option value=(v) selected[form.member_kind == v] { (l) }
                                }
                            }
                        }
                        div {
                            label for="member" { "Member" }
                            input #member name="member" value=(form.member) autocomplete="off" required
                                placeholder="+49 30 1234567, 4000 1234 or a scanned token";
                        }
                    }
                }
                section {
                    h2 { "Basket (" (shop.currency.code()) ")" }
                    div.scroll {
                        table.basket {
                            caption { "Items; empty rows are ignored" }
                            thead { tr { th scope="col" { "Item code" } th scope="col" { "Category" } th scope="col" { "Quantity" } th scope="col" { "Unit price" } } }
                            tbody {
                                @for i in 0..ROWS {
                                    tr {
                                        td { input name="sku" value=(cell(&form.skus, i)) aria-label={"Item code, line " (i + 1)}; }
                                        td { input name="category" value=(cell(&form.categories, i)) aria-label={"Category, line " (i + 1)}; }
                                        td { input name="qty" inputmode="numeric" value=(cell(&form.quantities, i)) aria-label={"Quantity, line " (i + 1)} placeholder="1"; }
                                        td { input name="price" inputmode="decimal" value=(cell(&form.prices, i)) aria-label={"Unit price, line " (i + 1)} placeholder="0.00"; }
                                    }
                                }
                            }
                        }
                    }
                    label for="redeem" { "Points to pay with" }
                    input #redeem name="redeem" inputmode="numeric" value=(form.redeem) placeholder="0";
                }
                div #quote aria-live="polite" { @if let Some(q) = quote { (q) } }
                p {
                    button.secondary type="submit" formaction="/till/quote" { "Quote" } " "
                    button type="submit" { "Complete sale" }
                }
            }
            script src="/assets/till.js" {}
        },
    )
}

/// The quote's breakdown: what the member would earn, pay with points, and why.
fn quote_view(r: &Value) -> Markup {
    html! {
        section.quote {
            h2 { "Quote" }
            p {
                "Earns " strong { (layout::points(layout::int(&r["points_earned"]))) " points" }
                @if layout::int(&r["points_redeemed"]) > 0 {
                    "; pays " strong { (layout::points(layout::int(&r["points_redeemed"]))) " points" }
                    " worth " (layout::money(&r["redeemed_value_local"]))
                }
                ". Balance after: " (layout::points(layout::int(&r["balance"]["available"]))) " available"
                @if layout::int(&r["balance"]["pending"]) > 0 { ", " (layout::points(layout::int(&r["balance"]["pending"]))) " pending" }
                "."
            }
            (breakdown(&r["breakdown"]))
        }
    }
}

fn breakdown(items: &Value) -> Markup {
    html! {
        @if !layout::rows(items).is_empty() {
            table {
                caption { "Why these points" }
                thead { tr { th scope="col" { "Rule" } th scope="col" { "Reason" } th.num scope="col" { "Points" } } }
                tbody {
                    @for b in layout::rows(items) {
                        tr { td { (layout::text(&b["rule"])) } td { (layout::text(&b["reason"])) } td.num { (layout::points(layout::int(&b["points"]))) } }
                    }
                }
            }
        }
    }
}

/// The shop and the sale form of a POST, or the page that says why not.
async fn posted_sale(web: &Web, staff: &Staff, f: &FormData) -> Result<(Shop, SaleForm), Response> {
    let partner = staff.partner()?.clone();
    let api = Api::staff(web, staff);
    Ok((shop(web, &api, &partner).await?, SaleForm::read(f)))
}

fn refused(status: StatusCode, staff: &Staff, shop: &Shop, form: &SaleForm, message: &str) -> Response {
    layout::respond(status, sale_page(staff, shop, form, None, Some(message)))
}

async fn quote(State(web): State<Web>, headers: HeaderMap, staff: Staff, f: FormData) -> Result<Response, Response> {
    let (shop, form) = posted_sale(&web, &staff, &f).await?;
    let partial = headers.contains_key("x-partial");
    let answer = match form.body(shop.currency) {
        Err(message) => Err(Failure {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_field".into(),
            message,
        }),
        Ok(body) => Api::staff(&web, &staff).ask("/v1/transactions/quote", &body).await,
    };
    Ok(match (answer, partial) {
        (Ok(r), true) => layout::ok(quote_view(&r)),
        (Err(e), true) => layout::respond(e.status, layout::notice("error", &e.message)),
        (Ok(r), false) => layout::ok(sale_page(&staff, &shop, &form, Some(quote_view(&r)), None)),
        (Err(e), false) => refused(e.status, &staff, &shop, &form, &e.message),
    })
}

async fn sale(State(web): State<Web>, staff: Staff, f: FormData) -> Result<Response, Response> {
    let (shop, form) = posted_sale(&web, &staff, &f).await?;
    let body = match form.body(shop.currency) {
        Ok(b) => b,
        Err(m) => return Ok(refused(StatusCode::UNPROCESSABLE_ENTITY, &staff, &shop, &form, &m)),
    };
    let r = match Api::staff(&web, &staff).post("/v1/transactions", &body).await {
        Ok(r) => r,
        Err(e) => return Ok(refused(e.status, &staff, &shop, &form, &e.message)),
    };
    let location = shop
        .locations
        .iter()
        .find(|(id, _)| *id == layout::text(&r["location_id"]))
        .map(|(_, n)| n.clone());
    Ok(layout::respond(
        StatusCode::CREATED,
        layout::page(
            "en",
            "Receipt",
            &nav(&staff, "/till"),
            html! {
                (layout::notice("ok", "Sale complete."))
                div.receipt {
                    p { strong { "Receipt " (layout::text(&r["external_id"])) } br;
                        (layout::when(&r["occurred_at"]))
                        @if let Some(l) = &location { br; (l) } }
                    table {
                        caption { "Sale" }
                        tbody {
                            tr { th scope="row" { "Total" } td.num { (layout::money(&r["total"])) } }
                            tr { th scope="row" { "Points earned" } td.num { (layout::points(layout::int(&r["points_earned"]))) } }
                            tr { th scope="row" { "Points paid" } td.num { (layout::points(layout::int(&r["points_redeemed"]))) } }
                            tr { th scope="row" { "Paid with points" } td.num { (layout::money(&r["redeemed_value_local"])) } }
                            tr { th scope="row" { "Balance" } td.num { (layout::points(layout::int(&r["balance"]["available"]))) } }
                            tr { th scope="row" { "Pending" } td.num { (layout::points(layout::int(&r["balance"]["pending"]))) } }
                        }
                    }
                    (breakdown(&r["breakdown"]))
                    p.hint { "Transaction " span #transaction-id { (layout::text(&r["id"])) } }
                }
                p.noprint { a.button href={"/till?location=" (url_escape(&form.location))} { "Next sale" } " " "Print this page for a paper receipt." }
            },
        ),
    ))
}

async fn returns(State(_web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.partner()?;
    Ok(layout::ok(return_page(&staff, "", "", None, None)))
}

fn return_page(staff: &Staff, transaction: &str, amount: &str, result: Option<Markup>, error: Option<&str>) -> Markup {
    layout::page(
        "en",
        "Return a sale",
        &nav(staff, "/till/returns"),
        html! {
            @if let Some(e) = error { (layout::notice("error", e)) }
            @if let Some(r) = result { (r) }
            form.stack method="post" action="/till/returns" {
                (layout::csrf(&staff.csrf))
                input type="hidden" name="external_id" value=(new_receipt_id());
                label for="transaction" { "Transaction (from the receipt)" }
                input #transaction name="transaction" value=(transaction) required placeholder="txn_…";
                label for="amount" { "Amount returned" }
                input #amount name="amount" inputmode="decimal" value=(amount) required placeholder="0.00";
                button type="submit" { "Return" }
            }
        },
    )
}

async fn make_return(State(web): State<Web>, staff: Staff, f: FormData) -> Result<Response, Response> {
    let partner = staff.partner()?.clone();
    let api = Api::staff(&web, &staff);
    let shop = shop(&web, &api, &partner).await?;
    let transaction = f.text("transaction");
    let amount = f.text("amount");
    let fail = |status, m: &str| {
        Ok(layout::respond(
            status,
            return_page(&staff, &transaction, &amount, None, Some(m)),
        ))
    };
    if <tally_domain::ids::TransactionId as tally_domain::ids::Id>::parse(&transaction).is_none() {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "That is not a transaction id (it starts with txn_).",
        );
    }
    let Some(minor) = minor_units(&amount, shop.currency.code()).ok().filter(|m| *m > 0) else {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The amount is more than zero, such as 12.50.",
        );
    };
    let body = json!({
        "external_id": f.get("external_id").map(str::to_string).unwrap_or_else(new_receipt_id),
        "amount": {"amount": minor, "currency": shop.currency.code()},
    });
    match api
        .post(&format!("/v1/transactions/{transaction}/returns"), &body)
        .await
    {
        Err(e) => fail(e.status, &e.message),
        Ok(r) => Ok(layout::respond(
            StatusCode::CREATED,
            return_page(
                &staff,
                "",
                "",
                Some(html! {
                    (layout::notice("ok", "Return recorded."))
                    table {
                        caption { "Return" }
                        tbody {
                            tr { th scope="row" { "Amount" } td.num { (layout::money(&r["amount"])) } }
                            tr { th scope="row" { "Points taken back" } td.num { (layout::points(layout::int(&r["points_reversed"]))) } }
                            tr { th scope="row" { "Points given back" } td.num { (layout::points(layout::int(&r["points_refunded"]))) } }
                            tr { th scope="row" { "Not recovered (already spent)" } td.num { (layout::points(layout::int(&r["points_unrecovered"]))) } }
                        }
                    }
                }),
                None,
            ),
        )),
    }
}

async fn vouchers(State(_web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.partner()?;
    Ok(layout::ok(voucher_page(&staff, "", None, None)))
}

fn voucher_page(staff: &Staff, code: &str, found: Option<Markup>, error: Option<&str>) -> Markup {
    layout::page(
        "en",
        "Redeem a voucher",
        &nav(staff, "/till/vouchers"),
        html! {
            @if let Some(e) = error { (layout::notice("error", e)) }
            @if let Some(f) = found { (f) }
            form.stack method="post" action="/till/vouchers" {
                (layout::csrf(&staff.csrf))
                label for="code" { "Voucher code (scan or type)" }
                input #code name="code" value=(code) required autocomplete="off";
                button type="submit" { "Check" }
            }
        },
    )
}

fn voucher_view(v: &Value) -> Markup {
    html! {
        table {
            caption { "Voucher" }
            tbody {
                tr { th scope="row" { "Reward" } td { (layout::text(&v["reward_name"])) } }
                tr { th scope="row" { "Status" } td { (layout::text(&v["status"])) } }
                tr { th scope="row" { "Points" } td.num { (layout::points(layout::int(&v["points"]))) } }
                tr { th scope="row" { "Valid until" } td { (layout::when(&v["expires_at"])) } }
            }
        }
    }
}

/// The voucher code a form carries, or the voucher page asking for one.
fn typed_code(staff: &Staff, f: &FormData) -> Result<String, Response> {
    let code = f.text("code");
    if code.is_empty() || code.len() > 64 {
        return Err(layout::respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            voucher_page(staff, &code, None, Some("Type or scan the voucher's code.")),
        ));
    }
    Ok(code)
}

async fn check_voucher(State(web): State<Web>, staff: Staff, f: FormData) -> Result<Response, Response> {
    staff.partner()?;
    let code = typed_code(&staff, &f)?;
    let api = Api::staff(&web, &staff);
    Ok(match api.get(&format!("/v1/vouchers/{}", path_segment(&code))).await {
        Err(e) => layout::respond(e.status, voucher_page(&staff, &code, None, Some(&e.message))),
        Ok(v) => {
            let usable = layout::text(&v["status"]) == "issued";
            let found = html! {
                (voucher_view(&v))
                @if usable {
                    form method="post" action="/till/vouchers/redeem" {
                        (layout::csrf(&staff.csrf))
                        input type="hidden" name="code" value=(code);
                        button type="submit" { "Redeem this voucher" }
                    }
                } @else {
                    (layout::notice("error", "This voucher cannot be redeemed."))
                }
            };
            layout::ok(voucher_page(&staff, "", Some(found), None))
        }
    })
}

async fn redeem_voucher(State(web): State<Web>, staff: Staff, f: FormData) -> Result<Response, Response> {
    staff.partner()?;
    let code = typed_code(&staff, &f)?;
    let api = Api::staff(&web, &staff);
    Ok(
        match api
            .post(&format!("/v1/vouchers/{}/redeem", path_segment(&code)), &json!({}))
            .await
        {
            Err(e) => layout::respond(e.status, voucher_page(&staff, &code, None, Some(&e.message))),
            Ok(v) => layout::ok(voucher_page(
                &staff,
                "",
                Some(html! { (layout::notice("ok", "Voucher redeemed.")) (voucher_view(&v)) }),
                None,
            )),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scanned_token_is_a_token_whatever_was_picked() {
        assert_eq!(
            member_selector("phone", "tq1.mem_x.1.ab").unwrap(),
            json!({"token": "tq1.mem_x.1.ab"})
        );
        assert_eq!(member_selector("card", "4000").unwrap(), json!({"card": "4000"}));
        assert!(member_selector("phone", "").is_err());
    }
}
