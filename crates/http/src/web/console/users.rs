//! Staff accounts made from the console: the operator's own staff (`/console/users`) and,
//! through [`add_user`] and [`user_form`], a partner's managers and cashiers on the
//! partner's page. Accounts are not an API resource, so these pages write them to the
//! store themselves, after the same role check a change through the API gets, and write
//! the audit line themselves. An admin disables an account here too: it can no longer
//! sign in and its sessions end at once.

use super::{page, writable};
use crate::web::Web;
use crate::web::form::FormData;
use crate::web::layout;
use crate::web::session::{Role, Staff};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use tally_domain::ids::PartnerId;
use tally_store::StoreError;
use tally_store::keys;
use tally_store::web::{AuditRow, NewUser, UserRow};

pub fn routes() -> Router<Web> {
    Router::new()
        .route("/console/users", get(show).post(create))
        .route("/console/users/{id}/disable", post(disable))
}

/// The roles an operator may give on a partner's page, and on the operator's own.
pub const PARTNER_ROLES: [Role; 2] = [Role::PartnerManager, Role::PartnerCashier];
pub const OPERATOR_ROLES: [Role; 2] = [Role::OperatorAdmin, Role::OperatorAnalyst];

async fn show(State(web): State<Web>, staff: Staff) -> Result<Response, Response> {
    staff.operator()?;
    Ok(layout::ok(render(&web, &staff, None, None).await?))
}

async fn render(
    web: &Web,
    staff: &Staff,
    message: Option<Markup>,
    typed: Option<&FormData>,
) -> Result<Markup, Response> {
    let users: Vec<UserRow> = web
        .app
        .store
        .users(None)
        .await
        .map_err(layout::store_failed)?
        .into_iter()
        .filter(|u| u.partner_id.is_none())
        .collect();
    let main = html! {
        @if let Some(m) = message { (m) }
        p { "The programme's own staff: admins change the programme, analysts only look. "
            "A partner's staff are listed on the partner's page." }
        (users_table("Operator staff", &users, staff))
        section {
            h2 { "Add an operator user" }
            (writable(staff, "Adding a user", user_form("/console/users", &staff.csrf, &OPERATOR_ROLES, "op", typed)))
        }
    };
    Ok(page(staff, "/console/users", "Operator staff", main))
}

async fn create(State(web): State<Web>, staff: Staff, form: FormData) -> Result<Response, Response> {
    staff.operator()?;
    match add_user(&web, &staff, &form, None, &OPERATOR_ROLES).await {
        Ok(()) => Ok(layout::see_other("/console/users", vec![])),
        Err((status, message)) => Ok(layout::respond(
            status,
            render(&web, &staff, Some(layout::notice("error", &message)), Some(&form)).await?,
        )),
    }
}

/// A table of staff accounts (never their password hashes), with a button to disable
/// each other enabled account for an admin.
pub fn users_table(caption: &str, users: &[UserRow], staff: &Staff) -> Markup {
    let may_disable = |u: &UserRow| !staff.read_only() && u.disabled_at.is_none() && u.id != staff.user.id;
    html! {
        @if users.is_empty() {
            p { "No accounts yet." }
        } @else {
            div.scroll {
                table {
                    caption { (caption) }
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Email" }
                        th scope="col" { "Role" }
                        th scope="col" { "Since" }
                        th scope="col" { "Status" }
                    } }
                    tbody {
                        @for u in users {
                            tr {
                                th scope="row" { (u.name) }
                                td { (u.email) }
                                td { (Role::parse(&u.role).map(Role::label).unwrap_or(u.role.as_str())) }
                                td { (u.created_at.strftime("%Y-%m-%d")) }
                                td {
                                    @if let Some(at) = u.disabled_at {
                                        "disabled " (at.strftime("%Y-%m-%d"))
                                    } @else if may_disable(u) {
                                        form method="post" action={ "/console/users/" (u.id) "/disable" } {
                                            (layout::csrf(&staff.csrf))
                                            button.secondary type="submit" { "Disable " span.visually-hidden { (u.email) } }
                                        }
                                    } @else {
                                        "active"
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

/// The form adding a staff account with one of `roles`, posted to `action`; `prefix`
/// keeps its field ids apart from the page's other forms. The password is never filled
/// back in.
pub fn user_form(action: &str, csrf: &str, roles: &[Role], prefix: &str, typed: Option<&FormData>) -> Markup {
    let value = |name: &str| typed.and_then(|f| f.get(name)).unwrap_or("").to_string();
    let chosen = value("role");
    html! {
        form.stack method="post" action=(action) {
            (layout::csrf(csrf))
            label for={ (prefix) "-email" } { "Email" }
            input id={ (prefix) "-email" } type="email" name="email" autocomplete="off" required value=(value("email"));
            label for={ (prefix) "-name" } { "Name" }
            input id={ (prefix) "-name" } type="text" name="name" maxlength="100" required value=(value("name"));
            label for={ (prefix) "-role" } { "Role" }
            select id={ (prefix) "-role" } name="role" {
                @for r in roles {
                    option value=(r.as_str()) selected[chosen == r.as_str()] { (r.label()) }
                }
            }
            label for={ (prefix) "-password" } { "Password (at least " (crate::web::login::MIN_PASSWORD) " characters)" }
            input id={ (prefix) "-password" } type="password" name="password" autocomplete="new-password"
                minlength=(crate::web::login::MIN_PASSWORD) required;
            p.hint { "Give the password to the person in person; they sign in at /login with their email." }
            button type="submit" { "Add the user" }
        }
    }
}

/// `POST /console/users/{id}/disable`: an admin disables another account; its sessions
/// end at once and it can no longer sign in.
async fn disable(State(web): State<Web>, staff: Staff, Path(id): Path<String>) -> Result<Response, Response> {
    staff.operator()?;
    if staff.read_only() {
        return Err(crate::web::session::forbidden(
            "An analyst's account can look but not change anything.",
        ));
    }
    let refuse = |status, m: &str| layout::problem(status, "Not disabled", m);
    if id == staff.user.id {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "You cannot disable your own account.",
        ));
    }
    let Some(user) = web.app.store.user(&id).await.map_err(layout::store_failed)? else {
        return Err(refuse(StatusCode::NOT_FOUND, "There is no such account."));
    };
    let now = web.app.now();
    web.app
        .store
        .disable_user(&id, now)
        .await
        .map_err(layout::store_failed)?;
    let line = AuditRow {
        at: now,
        user_id: Some(staff.user.id.clone()),
        member_id: None,
        partner_id: None,
        action: format!("disable user {}", user.email),
        target: format!("/console/users/{id}"),
        status: 200,
    };
    if let Err(e) = web.app.store.append_audit(line).await {
        tracing::error!(error = %e, "the audit log could not be written");
    }
    let back = match &user.partner_id {
        Some(p) => format!("/console/partners/{p}"),
        None => "/console/users".to_string(),
    };
    Ok(layout::see_other(&back, vec![]))
}

/// Reads, checks and saves a new staff account with one of `roles` (for `partner`, or
/// the operator's own), and writes the audit line. `Err` carries the status and the
/// message to show; nothing is written then.
pub async fn add_user(
    web: &Web,
    staff: &Staff,
    form: &FormData,
    partner: Option<PartnerId>,
    roles: &[Role],
) -> Result<(), (StatusCode, String)> {
    let refuse = |status: StatusCode, m: &str| Err((status, m.to_string()));
    if staff.read_only() {
        return refuse(
            StatusCode::FORBIDDEN,
            "An analyst's account can look but not change anything.",
        );
    }
    let email = form.text("email").to_lowercase();
    let plausible_email = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if !plausible_email {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter an email address such as jana@example.com.",
        );
    }
    let name = form.text("name");
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the person's name (at most 100 characters).",
        );
    }
    let Some(role) = form.get("role").and_then(Role::parse).filter(|r| roles.contains(r)) else {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "Choose one of the roles offered.");
    };
    let password = form.raw("password").to_string();
    let hashed = tokio::task::spawn_blocking(move || crate::web::login::hash_password(&password))
        .await
        .map_err(|_| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The password could not be hashed.".to_string(),
            )
        })?;
    let password_hash = match hashed {
        Ok(h) => h,
        Err(why) => return Err((StatusCode::UNPROCESSABLE_ENTITY, format!("Password: {why}."))),
    };
    let now = web.app.now();
    let user = NewUser {
        id: keys::new_id("usr"),
        email: email.clone(),
        name,
        role: role.as_str().to_string(),
        partner_id: partner.clone(),
        password_hash,
        now,
    };
    let saved = web.app.store.create_user(user).await;
    let (status, answer) = match saved {
        Ok(_) => (StatusCode::SEE_OTHER, Ok(())),
        Err(StoreError::Conflict { message, .. }) => (StatusCode::CONFLICT, Err(message)),
        Err(StoreError::Domain(e)) => (StatusCode::UNPROCESSABLE_ENTITY, Err(e.to_string())),
        Err(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, Err("There is no such partner.".to_string())),
        Err(e) => {
            tracing::error!(error = %e, "a staff account could not be saved");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Err("Tally could not save the account just now. Try again in a moment.".to_string()),
            )
        }
    };
    let target = match &partner {
        Some(p) => format!("/console/partners/{p}/users"),
        None => "/console/users".to_string(),
    };
    let line = AuditRow {
        at: now,
        user_id: Some(staff.user.id.clone()),
        member_id: None,
        partner_id: staff.user.partner_id.clone(),
        action: format!("create user {email} as {}", role.as_str()),
        target,
        status: if answer.is_ok() { 201 } else { status.as_u16() },
    };
    if let Err(e) = web.app.store.append_audit(line).await {
        tracing::error!(error = %e, "the audit log could not be written");
    }
    answer.map_err(|m| (status, m))
}
