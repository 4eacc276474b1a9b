//! Settlement in the console: the months, closed and open, with the form closing the next
//! one (`/console/settlements`); a month's netting view, partner by partner
//! (`/console/settlements/{period}`); and a partner's statement as a table or as the
//! API's CSV (`/console/settlements/{period}/partners/{id}[.csv]`).

use super::{api, failed, list, name_of, not_found, page, partner_names, plausible_id, writable};
use crate::web::Web;
use crate::web::form::FormData;
use crate::web::layout::{self, int, points, text};
use crate::web::session::Staff;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::html;
use serde_json::json;
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
        Err(f) => render_periods(&web, &staff, f.page_status(), Some(&f.message)).await,
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
                                    td { (crate::web::statement::payer(text(&line["payer"]))) }
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
        return Ok(crate::web::statement::csv_download(raw, &p, &id));
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
        (crate::web::statement::view(&s))
    };
    Ok(layout::ok(page(
        &staff,
        SECTION,
        &format!("Statement of {name}, {p}"),
        main,
    )))
}
