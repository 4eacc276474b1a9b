//! Settlement in the console: the months, closed and open, with the form closing the next
//! one (`/console/settlements`); a month's netting view, partner by partner
//! (`/console/settlements/{period}`); and a partner's statement as a table or as the
//! API's CSV (`/console/settlements/{period}/partners/{id}[.csv]`).

use super::{api, failed, form_status, list, name_of, not_found, page, partner_names, plausible_id, writable};
use crate::web::Web;
use crate::web::form::FormData;
use crate::web::layout::{self, int, points, text};
use crate::web::session::Staff;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};
use tally_domain::settlement::Period;

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/console/settlements", get(periods))
        .route("/console/settlements/close", post(close_period))
        .route("/console/settlements/{period}", get(netting))
        // `{id}` or `{id}.csv`: the router takes no suffix after a parameter, so the
        // handler tells them apart.
        .route("/console/settlements/{period}/partners/{id}", get(statement))
}

const SECTION: &str = "/console/settlements";
/// Months offered for the first close, and open months listed, at most.
const MONTHS_BACK: usize = 12;

async fn periods(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.operator()?;
    render_periods(&web, &staff, StatusCode::OK, None).await
}

async fn render_periods(
    web: &Web,
    staff: &Staff,
    status: StatusCode,
    message: Option<&str>,
) -> Result<Response, Response> {
    let answer = api(web, staff)
        .get("/v1/settlements")
        .await
        .map_err(|f| failed(staff, SECTION, &f))?;
    let current = Period::of(web.app.now());
    let closed = list(&answer["closed"]);
    let next = answer["next_to_close"].as_str().and_then(|p| Period::parse(p).ok());
    // Months that may close now: the next one once a month is closed; before the first
    // close, any month that has ended (the first close takes earlier entries too).
    let closable: Vec<Period> = match next {
        Some(p) if p < current => vec![p],
        Some(_) => vec![],
        None => {
            let mut months = vec![current.prev()];
            while months.len() < MONTHS_BACK {
                let earlier = months[months.len() - 1].prev();
                months.push(earlier);
            }
            months
        }
    };
    // Open months to look at, newest first: down to the next to close (before the first
    // close, a year back).
    let mut open = vec![current];
    while open.len() < MONTHS_BACK {
        let last = open[open.len() - 1];
        if next.is_some_and(|n| last <= n) {
            break;
        }
        open.push(last.prev());
    }
    let main = html! {
        @if let Some(m) = message { (layout::notice("error", m)) }
        p {
            "Each month, every partner owes the operator for the points it funded and is paid back for "
            "the points spent at its tills, in its own currency. A closed month's statements are stored "
            "and never change; entries that arrive later settle in the next open month."
        }
        section {
            h2 { "Close a month" }
            @if closable.is_empty() {
                p { "The next month to close, " (next.map(|p| p.to_string()).unwrap_or_default()) ", has not ended yet." }
            } @else {
                (writable(staff, "Closing a month", html! {
                    form.stack method="post" action="/console/settlements/close" {
                        (layout::csrf(&staff.csrf))
                        label for="close-period" { "Month to close" }
                        select #close-period name="period" {
                            @for p in &closable { option value=(p) { (p) } }
                        }
                        label for="close-confirm" {
                            input #close-confirm type="checkbox" name="confirm" value="yes" required;
                            " I understand that a closed month's statements never change"
                        }
                        button type="submit" { "Close the month" }
                    }
                    @if next.is_none() {
                        p.hint { "No month is closed yet: the first month closed also settles every entry dated before it." }
                    }
                }))
            }
        }
        section {
            h2 { "Open months" }
            ul {
                @for p in &open {
                    li { a href={ "/console/settlements/" (p) } { (p) } " (open: its figures change as entries arrive)" }
                }
            }
        }
        section {
            h2 { "Closed months" }
            @if closed.is_empty() {
                p { "No month is closed yet." }
            } @else {
                div.scroll {
                    table {
                        caption { "Closed months, newest first" }
                        thead { tr {
                            th scope="col" { "Month" } th scope="col" { "Closed" }
                            th scope="col" { "Exchange rates" } th scope="col" { "Content hash (SHA-256)" }
                        } }
                        tbody {
                            @for c in closed.iter().rev() {
                                tr {
                                    th scope="row" { a href={ "/console/settlements/" (text(&c["period"])) } { (text(&c["period"])) } }
                                    td { (layout::when(&c["closed_at"])) }
                                    td {
                                        @match c["fx_rates"].as_object() {
                                            Some(rates) if !rates.is_empty() => {
                                                @for (code, rate) in rates { (code) " " (layout::text(rate)) br; }
                                            },
                                            _ => { "—" },
                                        }
                                    }
                                    td { code.token { (text(&c["content_hash"])) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::respond(status, page(staff, SECTION, "Settlement", main)))
}

async fn close_period(State(web): State<Web>, staff: Staff, form: FormData) -> Result<Response, Response> {
    staff.operator()?;
    let Some(p) = form.get("period").and_then(|p| Period::parse(p).ok()) else {
        return render_periods(
            &web,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Choose the month to close."),
        )
        .await;
    };
    if form.get("confirm").is_none() {
        return render_periods(
            &web,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Tick the box to confirm: a closed month cannot be opened again."),
        )
        .await;
    }
    match api(&web, &staff)
        .post(&format!("/v1/settlements/{p}/close"), &json!({}))
        .await
    {
        Ok(_) => Ok(layout::see_other(&format!("/console/settlements/{p}"), vec![])),
        Err(f) => render_periods(&web, &staff, form_status(&f), Some(&f.message)).await,
    }
}

fn period_of(staff: &Staff, p: &str) -> Result<Period, Response> {
    Period::parse(p).map_err(|_| not_found(staff, SECTION, "month"))
}

async fn netting(State(web): State<Web>, staff: Staff, Path(p): Path<String>) -> Result<Response, Response> {
    staff.operator()?;
    let p = period_of(&staff, &p)?;
    let api = api(&web, &staff);
    let path = format!("/v1/settlements/{p}");
    let (netting, partners) = tokio::join!(api.get(&path), api.get("/v1/partners"));
    let n = netting.map_err(|f| failed(&staff, SECTION, &f))?;
    let names = partner_names(&partners);
    let r = &n["reconciliation"];
    let f = &r["flows"];
    let closed = text(&n["status"]) == "closed";
    let main = html! {
        @if closed {
            p { "This month is closed: these figures are stored and never change." }
        } @else {
            p { "This month is open: its figures change as entries arrive, and other currencies convert at today's rates." }
        }
        section {
            h2 { "Money" }
            table {
                caption { "The month in " (text(&n["program_currency"])) }
                tbody {
                    tr { th scope="row" { "Billed to partners for points they funded" } td.num { (layout::money(&n["billed_issuance"])) } }
                    tr { th scope="row" { "Paid back to partners for redemptions" } td.num { (layout::money(&n["reimbursed"])) } }
                    tr { th scope="row" { "Fees" } td.num { (layout::money(&n["fees"])) } }
                    tr { th scope="row" { "The operator's margin" } td.num { strong { (layout::money(&n["margin"])) } } }
                    tr { th scope="row" { "Points that expired (breakage)" } td.num { (points(int(&n["breakage_points"]))) } }
                    tr { th scope="row" { "Their value" } td.num { (layout::money(&n["breakage_value"])) } }
                }
            }
        }
        section {
            h2 { "Partners" }
            @if list(&n["partners"]).is_empty() {
                p { "No partner had points this month." }
            } @else {
                div.scroll {
                    table {
                        caption { "What each partner owes or is owed" }
                        thead { tr {
                            th scope="col" { "Partner" } th.num scope="col" { "Net, its currency" }
                            th.num scope="col" { "Net, programme currency" } th scope="col" { "Who pays" }
                            th scope="col" { "Statement" }
                        } }
                        tbody {
                            @for line in list(&n["partners"]) {
                                @let id = text(&line["partner_id"]);
                                tr {
                                    th scope="row" { (name_of(&names, id)) }
                                    td.num { (layout::money(&line["net"])) }
                                    td.num { (layout::money(&line["net_program"])) }
                                    td { (payer(text(&line["payer"]))) }
                                    td {
                                        @if plausible_id(id) {
                                            a href={ "/console/settlements/" (p) "/partners/" (id) } { "Statement of " (name_of(&names, id)) }
                                            " · "
                                            a href={ "/console/settlements/" (p) "/partners/" (id) ".csv" } download { "CSV of " (name_of(&names, id)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Points reconciled" }
            p.hint { "What members held before, what came in and went out, and what they held after, measured from their balances." }
            table {
                caption { "The month's points" }
                tbody {
                    tr { th scope="row" { "Held at the start" } td.num { (points(int(&r["opening_outstanding"]))) } }
                    tr { th scope="row" { "Funded by partners" } td.num { (points(int(&f["issued_by_partners"]))) } }
                    tr { th scope="row" { "Funded by the operator" } td.num { (points(int(&f["issued_by_operator"]))) } }
                    tr { th scope="row" { "In from other programmes" } td.num { (points(int(&f["exchanged_in"]))) } }
                    tr { th scope="row" { "Taken back by returns after being spent (absorbed)" } td.num { (points(int(&f["unrecovered"]))) } }
                    tr { th scope="row" { "Spent at partners" } td.num { (points(int(&f["redeemed"]))) } }
                    tr { th scope="row" { "Given to charities" } td.num { (points(int(&f["donated"]))) } }
                    tr { th scope="row" { "Out to other programmes" } td.num { (points(int(&f["exchanged_out"]))) } }
                    tr { th scope="row" { "Expired" } td.num { (points(int(&f["expired"]))) } }
                    tr { th scope="row" { "Between members" } td.num { (points(int(&f["in_transit"]))) } }
                    tr { th scope="row" { "Elsewhere" } td.num { (points(int(&f["other"]))) } }
                    tr { th scope="row" { "Held at the end" } td.num { (points(int(&r["closing_outstanding"]))) } }
                    tr {
                        th scope="row" { "Difference" }
                        td.num {
                            @if int(&r["difference"]) == 0 { "0: the books reconcile" }
                            @else { strong.neg { (points(int(&r["difference"]))) " — the books do not reconcile" } }
                        }
                    }
                }
            }
        }
        p { a href=(SECTION) { "All months" } }
    };
    Ok(layout::ok(page(&staff, SECTION, &format!("Settlement of {p}"), main)))
}

fn payer(p: &str) -> &'static str {
    match p {
        "partner" => "the partner pays the operator",
        "operator" => "the operator pays the partner",
        _ => "nobody: the net is zero",
    }
}

async fn statement(
    State(web): State<Web>,
    staff: Staff,
    Path((p, id)): Path<(String, String)>,
) -> Result<Response, Response> {
    staff.operator()?;
    let p = period_of(&staff, &p)?;
    let csv = id.ends_with(".csv");
    let id = if csv {
        id.trim_end_matches(".csv").to_string()
    } else {
        id
    };
    if !plausible_id(&id) {
        return Err(not_found(&staff, SECTION, "partner"));
    }
    let api = api(&web, &staff);
    if csv {
        let raw = api
            .get_raw(&format!("/v1/settlements/{p}/partners/{id}?format=csv"))
            .await
            .map_err(|f| failed(&staff, SECTION, &f))?;
        let disposition = raw
            .headers
            .get(header::CONTENT_DISPOSITION)
            .cloned()
            .or_else(|| HeaderValue::from_str(&format!("attachment; filename=\"statement-{p}-{id}.csv\"")).ok());
        let mut res = raw.body.into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Some(d) = disposition {
            h.insert(header::CONTENT_DISPOSITION, d);
        }
        return Ok(res);
    }
    let statement_path = format!("/v1/settlements/{p}/partners/{id}");
    let partner_path = format!("/v1/partners/{id}");
    let (s, partner) = tokio::join!(api.get(&statement_path), api.get(&partner_path));
    let s = s.map_err(|f| failed(&staff, SECTION, &f))?;
    let name = partner
        .as_ref()
        .ok()
        .map(|v| text(&v["name"]).to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.clone());
    let main = html! {
        p {
            a href={ "/console/settlements/" (p) "/partners/" (id) ".csv" } download { "Download the statement as CSV" }
            " · " a href={ "/console/settlements/" (p) } { "The month's netting view" }
        }
        (statement_view(&s))
    };
    Ok(layout::ok(page(
        &staff,
        SECTION,
        &format!("Statement of {name}, {p}"),
        main,
    )))
}

/// A partner's statement as the operator reads it: the sides, the fees and the net, then
/// the priced lines.
fn statement_view(s: &Value) -> Markup {
    let currency = text(&s["currency"]);
    let side = |key: &str, label: &str| {
        html! {
            tr {
                th scope="row" { (label) }
                td.num { (int(&s[key]["entries"])) }
                td.num { (points(int(&s[key]["points"]))) }
                td.num { (layout::in_currency(int(&s[key]["amount"]), currency)) }
            }
        }
    };
    html! {
        section {
            h2 { "Summary" }
            p {
                @if text(&s["status"]) == "closed" { "Closed " (layout::when(&s["closed_at"])) } @else { "Open" }
                "; " (text(&s["fx_rate"])) " " (currency) " per " (text(&s["program_currency"]))
                @if int(&s["late_entries"]) > 0 { "; " (int(&s["late_entries"])) " late entries from earlier months" }
                "."
            }
            div.scroll {
                table {
                    caption { "Points and amounts by side" }
                    thead { tr {
                        th scope="col" { "Side" } th.num scope="col" { "Entries" }
                        th.num scope="col" { "Points" } th.num scope="col" { "Amount" }
                    } }
                    tbody {
                        (side("issued", "Funded by the partner (billed at the issue price)"))
                        (side("redeemed", "Spent at the partner (paid back at the reimbursement rate)"))
                        (side("operator_funded", "Funded by the operator at its tills (not billed)"))
                    }
                }
            }
            table {
                caption { "Net" }
                tbody {
                    tr { th scope="row" { "Monthly fee" } td.num { (layout::money(&s["monthly_fee"])) } }
                    tr { th scope="row" { "Redemption fee" } td.num { (layout::money(&s["redemption_fee"])) } }
                    tr { th scope="row" { "Net" } td.num { strong { (layout::money(&s["net"])) } } }
                    tr { th scope="row" { "Who pays" } td { (payer(text(&s["payer"]))) } }
                }
            }
        }
        section {
            h2 { "Lines" }
            @if layout::rows(&s["lines"]).is_empty() {
                p { "No entries this month." }
            } @else {
                div.scroll {
                    table {
                        caption { "One line per day, side and entry code" }
                        thead { tr {
                            th scope="col" { "Day" } th scope="col" { "Side" } th scope="col" { "Entry" }
                            th.num scope="col" { "Entries" } th.num scope="col" { "Points" }
                            th.num scope="col" { "Price a point" } th.num scope="col" { "Amount (" (currency) ")" }
                        } }
                        tbody {
                            @for l in layout::rows(&s["lines"]) {
                                tr {
                                    td { (text(&l["day"])) @if l["late"].as_bool() == Some(true) { " (late)" } }
                                    td { (text(&l["side"]).replace('_', " ")) }
                                    td { (text(&l["code"]).replace('_', " ")) }
                                    td.num { (int(&l["entries"])) }
                                    td.num { (points(int(&l["points"]))) }
                                    td.num { (super::or_dash(&l["price"])) }
                                    td.num { (super::or_dash(&l["amount"])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payers_read_as_words() {
        assert_eq!(payer("partner"), "the partner pays the operator");
        assert_eq!(payer("nobody"), "nobody: the net is zero");
    }

    #[test]
    fn a_statement_shows_its_lines_escaped() {
        let s = json!({
            "status": "open", "currency": "EUR", "program_currency": "EUR", "fx_rate": "1",
            "issued": {"entries": 2, "points": 300, "amount": 240},
            "lines": [{"day": "2026-11-03", "side": "issued", "code": "<earn>", "entries": 2, "points": 300, "price": "0.008", "amount": "2.4", "late": false}],
        });
        let html = statement_view(&s).into_string();
        assert!(html.contains("EUR 2.40"));
        assert!(html.contains("&lt;earn&gt;"));
    }
}
