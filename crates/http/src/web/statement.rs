//! A partner's monthly statement as a page shows it (the console's and the partner's
//! back office alike), and its CSV download as the API writes it.

use super::api::RawAnswer;
use super::layout::{self, int, points, text};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;

/// Who pays whom, in words.
pub fn payer(p: &str) -> &'static str {
    match p {
        "partner" => "the partner pays the operator",
        "operator" => "the operator pays the partner",
        _ => "nobody: the net is zero",
    }
}

/// A field's text, or a dash when absent (a line's price and amount, none for
/// operator-funded points).
fn or_dash(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "—".into(),
    }
}

/// A partner's statement as the operator reads it: the sides, the fees and the net, then
/// the priced lines.
pub fn view(s: &Value) -> Markup {
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
                                    td.num { (or_dash(&l["price"])) }
                                    td.num { (or_dash(&l["amount"])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The API's CSV of a statement as a download named for the month and partner.
pub fn csv_download(raw: RawAnswer, period: &impl std::fmt::Display, partner: &str) -> Response {
    let disposition =
        raw.headers.get(header::CONTENT_DISPOSITION).cloned().or_else(|| {
            HeaderValue::from_str(&format!("attachment; filename=\"statement-{period}-{partner}.csv\"")).ok()
        });
    let mut res = raw.body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Some(d) = disposition {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let html = view(&s).into_string();
        assert!(html.contains("EUR 2.40"));
        assert!(html.contains("&lt;earn&gt;"));
    }
}
