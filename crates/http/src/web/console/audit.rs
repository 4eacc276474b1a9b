//! The audit log in the console (`/console/audit`): the latest changes made through the
//! web faces and every sign-in, with who made them and how they were answered.

use super::{api, name_of, page, partner_names};
use crate::web::Web;
use crate::web::layout;
use crate::web::session::Staff;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use maud::html;
use std::collections::HashMap;

pub fn routes() -> Router<Web> {
    Router::new().route("/console/audit", get(audit))
}

/// Lines shown, newest first.
const LINES: u32 = 200;

async fn audit(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.operator()?;
    let store = &web.app.store;
    let api = api(&web, &staff);
    let (entries, users, partners) = tokio::join!(store.audit(None, LINES), store.users(None), api.get("/v1/partners"));
    let entries = entries.map_err(layout::store_failed)?;
    // Every staff account (operator's and partners'), for the emails of who acted.
    let emails: HashMap<String, String> = users
        .map_err(layout::store_failed)?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect();
    let names = partner_names(&partners);
    let main = html! {
        p { "The latest " (LINES) " changes made through the web faces and sign-ins, newest first. Changes made with an API key are not in it." }
        @if entries.is_empty() {
            p { "Nothing yet." }
        } @else {
            div.scroll {
                table {
                    caption { "Audit log" }
                    thead { tr {
                        th scope="col" { "When (UTC)" } th scope="col" { "Who" }
                        th scope="col" { "Action" } th scope="col" { "Answer" }
                    } }
                    tbody {
                        @for e in &entries {
                            @let r = &e.row;
                            tr {
                                td { (r.at.strftime("%Y-%m-%d %H:%M:%S")) }
                                td {
                                    @if let Some(u) = &r.user_id {
                                        (emails.get(u).map(String::as_str).unwrap_or(u.as_str()))
                                        @if let Some(p) = &r.partner_id { " (" (name_of(&names, p.as_str())) ")" }
                                    } @else if let Some(m) = &r.member_id {
                                        "Member " a href={ "/console/members/" (m) } { (m) }
                                    } @else {
                                        "Someone not signed in"
                                    }
                                }
                                td {
                                    (r.action)
                                    @if !r.target.is_empty() && !r.action.ends_with(r.target.as_str()) { " · " (r.target) }
                                }
                                td { (r.status) " " (answer(r.status)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::ok(page(&staff, "/console/audit", "Audit log", main)))
}

/// An HTTP status in a word.
fn answer(status: u16) -> &'static str {
    match status {
        200..=399 => "done",
        401 | 403 => "refused: not allowed",
        400..=499 => "refused",
        _ => "failed",
    }
}
