//! Partners in the console: the list and the form adding one (`/console/partners`), and
//! one partner's page (`/console/partners/{id}`) with its locations, its tills' API keys
//! (made, shown once, revoked) and its staff accounts.

use super::users::{PARTNER_ROLES, add_user, user_form, users_table};
use super::{api, failed, list, not_found, or_dash, page, plausible_id, whole, writable};
use crate::web::Web;
use crate::web::form::FormData;
use crate::web::layout::{self, text};
use crate::web::session::Staff;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use tally_domain::ids::{Id, PartnerId};

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/console/partners", get(partners).post(create_partner))
        .route("/console/partners/{id}", get(partner))
        .route("/console/partners/{id}/locations", post(create_location))
        .route("/console/partners/{id}/api-keys", post(create_api_key))
        .route("/console/partners/{id}/api-keys/{key_id}/revoke", post(revoke_api_key))
        .route("/console/partners/{id}/users", post(create_user))
}

const SECTION: &str = "/console/partners";

async fn partners(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.operator()?;
    let (status, markup) = render_list(&web, &staff, None, None).await?;
    Ok(layout::respond(status, markup))
}

async fn render_list(
    web: &Web,
    staff: &Staff,
    message: Option<Markup>,
    typed: Option<&FormData>,
) -> Result<(StatusCode, Markup), Response> {
    let partners = api(web, staff)
        .get("/v1/partners")
        .await
        .map_err(|f| failed(staff, SECTION, &f))?;
    let value = |name: &str| typed.and_then(|f| f.get(name)).unwrap_or("").to_string();
    let main = html! {
        @if let Some(m) = message { (m) }
        @if !list(&partners).is_empty() {
            div.scroll {
                table {
                    caption { "Partners of the coalition" }
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Industry" }
                        th scope="col" { "Country" }
                        th scope="col" { "Currency" }
                        th scope="col" { "Time zone" }
                        th.num scope="col" { "Points per unit" }
                        th.num scope="col" { "Pending days" }
                    } }
                    tbody {
                        @for p in list(&partners) {
                            tr {
                                th scope="row" { a href={ "/console/partners/" (text(&p["id"])) } { (text(&p["name"])) } }
                                td { (text(&p["industry"])) }
                                td { (text(&p["country"])) }
                                td { (text(&p["currency"])) }
                                td { (text(&p["timezone"])) }
                                td.num { (text(&p["earn_rate"])) }
                                td.num { (or_dash(&p["pending_days"])) }
                            }
                        }
                    }
                }
            }
        }
        @if list(&partners).is_empty() { p { "No partners yet." } }
        section {
            h2 { "Add a partner" }
            (writable(staff, "Adding a partner", html! {
                form.stack method="post" action="/console/partners" {
                    (layout::csrf(&staff.csrf))
                    label for="p-name" { "Name" }
                    input #p-name type="text" name="name" maxlength="100" required value=(value("name"));
                    label for="p-industry" { "Industry" }
                    input #p-industry type="text" name="industry" maxlength="50" required value=(value("industry"))
                        aria-describedby="p-industry-hint";
                    span.hint #p-industry-hint { "Such as fashion, drugstore, hotel." }
                    label for="p-country" { "Country (two letters)" }
                    input #p-country type="text" name="country" maxlength="2" required value=(value("country"))
                        autocomplete="off" aria-describedby="p-country-hint";
                    span.hint #p-country-hint { "ISO 3166 code, such as DE or CZ." }
                    label for="p-currency" { "Currency (three letters)" }
                    input #p-currency type="text" name="currency" maxlength="3" required value=(value("currency"))
                        autocomplete="off" aria-describedby="p-currency-hint";
                    span.hint #p-currency-hint { "The currency of its tills and its statements, such as EUR." }
                    label for="p-timezone" { "Time zone" }
                    input #p-timezone type="text" name="timezone" required value=(value("timezone"))
                        aria-describedby="p-timezone-hint";
                    span.hint #p-timezone-hint { "Such as Europe/Berlin or America/Los_Angeles." }
                    label for="p-earn-rate" { "Points per unit of programme currency (optional)" }
                    input #p-earn-rate type="text" inputmode="decimal" name="earn_rate" value=(value("earn_rate"))
                        aria-describedby="p-earn-rate-hint";
                    span.hint #p-earn-rate-hint { "0 to 1000; 1 when left empty." }
                    label for="p-pending" { "Days points stay pending (optional)" }
                    input #p-pending type="number" min="0" max="365" name="pending_days" value=(value("pending_days"));
                    button type="submit" { "Add the partner" }
                }
            }))
        }
    };
    Ok((StatusCode::OK, page(staff, SECTION, "Partners", main)))
}

async fn create_partner(State(web): State<Web>, staff: Staff, form: FormData) -> Result<Response, Response> {
    staff.operator()?;
    let pending_days = match whole("Pending days", form.get("pending_days"), 0..=365) {
        Ok(d) => d,
        Err(m) => return list_refused(&web, &staff, &form, StatusCode::UNPROCESSABLE_ENTITY, &m).await,
    };
    let mut body = Map::new();
    body.insert("name".into(), json!(form.text("name")));
    body.insert("industry".into(), json!(form.text("industry")));
    body.insert("country".into(), json!(form.text("country").to_uppercase()));
    body.insert("currency".into(), json!(form.text("currency").to_uppercase()));
    body.insert("timezone".into(), json!(form.text("timezone")));
    if let Some(rate) = form.get("earn_rate") {
        body.insert("earn_rate".into(), json!(rate));
    }
    if let Some(d) = pending_days {
        body.insert("pending_days".into(), json!(d));
    }
    match api(&web, &staff).post("/v1/partners", &Value::Object(body)).await {
        Ok(p) => {
            let id = text(&p["id"]);
            let to = if plausible_id(id) {
                format!("/console/partners/{id}")
            } else {
                SECTION.to_string()
            };
            Ok(layout::see_other(&to, vec![]))
        }
        Err(f) => list_refused(&web, &staff, &form, f.page_status(), &f.message).await,
    }
}

/// The list again, with the form as typed and why it was refused.
async fn list_refused(
    web: &Web,
    staff: &Staff,
    form: &FormData,
    status: StatusCode,
    message: &str,
) -> Result<Response, Response> {
    let (_, markup) = render_list(web, staff, Some(layout::notice("error", message)), Some(form)).await?;
    Ok(layout::respond(status, markup))
}

/// The partner's id from the address, if it could be one.
fn partner_id(id: &str) -> Option<PartnerId> {
    PartnerId::parse(id).filter(|_| plausible_id(id))
}

/// Which of the page's forms a message and typed values belong to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Location,
    User,
    Keys,
}

async fn partner(State(web): State<Web>, staff: Staff, Path(id): Path<String>) -> Result<Response, Response> {
    staff.operator()?;
    let Some(id) = partner_id(&id) else {
        return Err(not_found(&staff, SECTION, "partner"));
    };
    render_partner(&web, &staff, &id, None).await
}

/// The partner's page; `problem` is a refused form: which, the message, the status and
/// what was typed.
async fn render_partner(
    web: &Web,
    staff: &Staff,
    id: &PartnerId,
    problem: Option<(Part, &str, StatusCode, &FormData)>,
) -> Result<Response, Response> {
    let api = api(web, staff);
    // The partner first: an unknown id is the API's 404, before anything else is read.
    let p = api
        .get(&format!("/v1/partners/{id}"))
        .await
        .map_err(|f| failed(staff, SECTION, &f))?;
    let locations_path = format!("/v1/partners/{id}/locations");
    let keys_path = format!("/v1/partners/{id}/api-keys");
    let (locations, keys, users) = tokio::join!(
        api.get(&locations_path),
        api.get(&keys_path),
        web.app.store.users(Some(id)),
    );
    let locations = locations.map_err(|f| failed(staff, SECTION, &f))?;
    let keys = keys.map_err(|f| failed(staff, SECTION, &f))?;
    let users = users.map_err(layout::store_failed)?;
    let note = |part: Part| match problem {
        Some((which, message, _, _)) if which == part => Some(layout::notice("error", message)),
        _ => None,
    };
    let typed = |part: Part, field: &str| match problem {
        Some((which, _, _, f)) if which == part => f.get(field).unwrap_or("").to_string(),
        _ => String::new(),
    };
    let location_refused = problem.is_some_and(|(which, ..)| which == Part::Location);
    let typed_form = match problem {
        Some((Part::User, _, _, f)) => Some(f),
        _ => None,
    };
    let name = text(&p["name"]);
    let main = html! {
        table {
            caption { "The partner" }
            tbody {
                tr { th scope="row" { "Id" } td { code { (id) } } }
                tr { th scope="row" { "Industry" } td { (text(&p["industry"])) } }
                tr { th scope="row" { "Country" } td { (text(&p["country"])) } }
                tr { th scope="row" { "Currency" } td { (text(&p["currency"])) } }
                tr { th scope="row" { "Time zone" } td { (text(&p["timezone"])) } }
                tr { th scope="row" { "Points per unit of programme currency" } td { (text(&p["earn_rate"])) } }
                tr { th scope="row" { "Days points stay pending" } td { (or_dash(&p["pending_days"])) } }
                tr { th scope="row" { "In the coalition since" } td { (layout::when(&p["created_at"])) } }
            }
        }
        section #locations {
            h2 { "Locations" }
            @if let Some(n) = note(Part::Location) { (n) }
            @if list(&locations).is_empty() {
                p { "No locations yet." }
            } @else {
                div.scroll {
                    table {
                        caption { "Locations of " (name) }
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "City" } th scope="col" { "Country" }
                            th scope="col" { "Time zone" } th scope="col" { "Id" }
                        } }
                        tbody {
                            @for l in list(&locations) {
                                tr {
                                    th scope="row" { (text(&l["name"])) }
                                    td { (text(&l["city"])) }
                                    td { (text(&l["country"])) }
                                    td { (text(&l["timezone"])) }
                                    td { code { (text(&l["id"])) } }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Add a location" }
            (writable(staff, "Adding a location", html! {
                form.stack method="post" action={ "/console/partners/" (id) "/locations" } {
                    (layout::csrf(&staff.csrf))
                    label for="loc-name" { "Name" }
                    input #loc-name type="text" name="name" maxlength="100" required value=(typed(Part::Location, "name"));
                    label for="loc-city" { "City" }
                    input #loc-city type="text" name="city" maxlength="100" required value=(typed(Part::Location, "city"));
                    label for="loc-country" { "Country (two letters)" }
                    input #loc-country type="text" name="country" maxlength="2" required
                        value=(if location_refused { typed(Part::Location, "country") } else { text(&p["country"]).to_string() });
                    label for="loc-timezone" { "Time zone" }
                    input #loc-timezone type="text" name="timezone" required
                        value=(if location_refused { typed(Part::Location, "timezone") } else { text(&p["timezone"]).to_string() });
                    button type="submit" { "Add the location" }
                }
            }))
        }
        section #keys {
            h2 { "API keys of its tills" }
            @if let Some(n) = note(Part::Keys) { (n) }
            p.hint { "A key is shown once, when it is made; Tally keeps only its hash. A revoked key is refused from the next request on." }
            @if list(&keys).is_empty() {
                p { "No keys yet." }
            } @else {
                div.scroll {
                    table {
                        caption { "API keys of " (name) }
                        thead { tr {
                            th scope="col" { "Key" } th scope="col" { "Made" } th scope="col" { "Revoked" }
                            @if !staff.read_only() { th scope="col" { "Action" } }
                        } }
                        tbody {
                            @for k in list(&keys) {
                                @let key_id = text(&k["id"]);
                                tr {
                                    th scope="row" { code { (key_id) } }
                                    td { (layout::when(&k["created_at"])) }
                                    td { @if k["revoked_at"].is_string() { (layout::when(&k["revoked_at"])) } @else { "—" } }
                                    @if !staff.read_only() {
                                        td {
                                            @if !k["revoked_at"].is_string() && plausible_id(key_id) {
                                                form method="post" action={ "/console/partners/" (id) "/api-keys/" (key_id) "/revoke" } {
                                                    (layout::csrf(&staff.csrf))
                                                    button.secondary type="submit" { "Revoke key " (key_id) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (writable(staff, "Making a key", html! {
                form method="post" action={ "/console/partners/" (id) "/api-keys" } {
                    (layout::csrf(&staff.csrf))
                    // Sent twice (a double click, a reload), the form makes one key.
                    input type="hidden" name="once" value=(hex::encode(tally_store::keys::random_bytes::<12>()));
                    button type="submit" { "Make a new API key for " (name) }
                }
            }))
        }
        section #staff {
            h2 { "Staff" }
            @if let Some(n) = note(Part::User) { (n) }
            p.hint { "Managers use the back office and the till; cashiers the till only." }
            (users_table(&format!("Staff of {name}"), &users, staff))
            h3 { "Add a member of staff" }
            (writable(staff, "Adding a member of staff", user_form(&format!("/console/partners/{id}/users"), &staff.csrf, &PARTNER_ROLES, "usr", typed_form)))
        }
    };
    let status = problem.map(|(_, _, s, _)| s).unwrap_or(StatusCode::OK);
    Ok(layout::respond(status, page(staff, SECTION, name, main)))
}

async fn create_location(
    State(web): State<Web>,
    staff: Staff,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, Response> {
    staff.operator()?;
    let Some(id) = partner_id(&id) else {
        return Err(not_found(&staff, SECTION, "partner"));
    };
    let body = json!({
        "name": form.text("name"),
        "city": form.text("city"),
        "country": form.text("country").to_uppercase(),
        "timezone": form.text("timezone"),
    });
    match api(&web, &staff)
        .post(&format!("/v1/partners/{id}/locations"), &body)
        .await
    {
        Ok(_) => Ok(layout::see_other(&format!("/console/partners/{id}#locations"), vec![])),
        Err(f) => {
            render_partner(
                &web,
                &staff,
                &id,
                Some((Part::Location, f.message.as_str(), f.page_status(), &form)),
            )
            .await
        }
    }
}

/// Makes a key and shows it, this once, on a page of its own.
async fn create_api_key(
    State(web): State<Web>,
    staff: Staff,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, Response> {
    staff.operator()?;
    let Some(id) = partner_id(&id) else {
        return Err(not_found(&staff, SECTION, "partner"));
    };
    let once = super::once_key(&staff, form.get("once"));
    let made = match api(&web, &staff)
        .send_once(
            axum::http::Method::POST,
            &format!("/v1/partners/{id}/api-keys"),
            &json!({}),
            once.as_deref(),
        )
        .await
    {
        Ok(k) => k,
        Err(f) => {
            return render_partner(
                &web,
                &staff,
                &id,
                Some((Part::Keys, f.message.as_str(), f.page_status(), &form)),
            )
            .await;
        }
    };
    let main = html! {
        (layout::notice("ok", "The key is made. Copy it now: it is shown only this once."))
        p { "Key " code { (text(&made["id"])) } ":" }
        p.token { (text(&made["key"])) }
        p { "Enter it in the till's configuration as its bearer token. If it is lost, make a new one and revoke this one." }
        p { a href={ "/console/partners/" (id) "#keys" } { "Back to the partner" } }
    };
    Ok(layout::ok(page(&staff, SECTION, "New API key", main)))
}

async fn revoke_api_key(
    State(web): State<Web>,
    staff: Staff,
    Path((id, key_id)): Path<(String, String)>,
    form: FormData,
) -> Result<Response, Response> {
    staff.operator()?;
    let (Some(id), true) = (partner_id(&id), plausible_id(&key_id)) else {
        return Err(not_found(&staff, SECTION, "API key"));
    };
    let path = format!("/v1/partners/{id}/api-keys/{key_id}");
    match api(&web, &staff).send(Method::DELETE, &path, &json!({})).await {
        Ok(_) => Ok(layout::see_other(&format!("/console/partners/{id}#keys"), vec![])),
        Err(f) => {
            render_partner(
                &web,
                &staff,
                &id,
                Some((Part::Keys, f.message.as_str(), f.page_status(), &form)),
            )
            .await
        }
    }
}

async fn create_user(
    State(web): State<Web>,
    staff: Staff,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, Response> {
    staff.operator()?;
    let Some(id) = partner_id(&id) else {
        return Err(not_found(&staff, SECTION, "partner"));
    };
    // The partner must exist (the API says so, or 404s) before an account is made for it.
    api(&web, &staff)
        .get(&format!("/v1/partners/{id}"))
        .await
        .map_err(|f| failed(&staff, SECTION, &f))?;
    match add_user(&web, &staff, &form, Some(id.clone()), &PARTNER_ROLES).await {
        Ok(()) => Ok(layout::see_other(&format!("/console/partners/{id}#staff"), vec![])),
        Err((status, message)) => {
            render_partner(&web, &staff, &id, Some((Part::User, message.as_str(), status, &form))).await
        }
    }
}
