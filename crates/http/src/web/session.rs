//! Who is signed in to the web faces: session cookies (random tokens, stored only as
//! SHA-256 hashes), the staff and member extractors, roles, and the CSRF guard every
//! form passes through.

use super::Web;
use super::layout;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tally_domain::ids::{MemberId, PartnerId};
use tally_store::keys::{hash_key, random_bytes};
use tally_store::web::UserRow;

use crate::state::Principal;

// `__Host-` cookies are Secure, for the whole site and this host only: a neighbour
// domain cannot plant one that shadows ours.
pub const STAFF_COOKIE: &str = "__Host-tally_staff";
pub const MEMBER_COOKIE: &str = "__Host-tally_me";
/// A random value given to a browser before it signs in, so the sign-in forms carry a
/// CSRF token too.
pub const PRE_COOKIE: &str = "__Host-tally_pre";

/// Staff sessions last a working day; members stay signed in on their phone for a month.
pub const STAFF_SESSION: jiff::SignedDuration = jiff::SignedDuration::from_hours(10);
pub const MEMBER_SESSION: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 30);

/// The largest form body the web faces read.
pub const FORM_LIMIT: usize = 64 * 1024;

/// The value of cookie `name` in the request, if sent exactly once (two are a sign of a
/// planted cookie: neither is trusted).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some(first).filter(|v| !v.is_empty() && v.len() <= 128)
}

/// `Set-Cookie` for a session-like cookie: HTTP-only, `Secure`, `SameSite=Lax`.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Lax"
    ))
    .expect("cookie names and hex values are valid header text")
}

pub fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", 0)
}

pub fn new_token() -> String {
    hex::encode(random_bytes::<32>())
}

/// A path to return to after signing in: only a path of this site, in plain URL
/// characters (no spaces, tabs or backslashes, which browsers may read as another host).
pub fn local_path(next: Option<&str>) -> Option<String> {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && n.len() <= 512
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_.~%?=&#-".contains(&b))
    })
    .map(str::to_string)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    OperatorAdmin,
    OperatorAnalyst,
    PartnerManager,
    PartnerCashier,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "operator_admin" => Role::OperatorAdmin,
            "operator_analyst" => Role::OperatorAnalyst,
            "partner_manager" => Role::PartnerManager,
            "partner_cashier" => Role::PartnerCashier,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::OperatorAdmin => "operator_admin",
            Role::OperatorAnalyst => "operator_analyst",
            Role::PartnerManager => "partner_manager",
            Role::PartnerCashier => "partner_cashier",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::OperatorAdmin => "Operator admin",
            Role::OperatorAnalyst => "Operator analyst (read-only)",
            Role::PartnerManager => "Partner manager",
            Role::PartnerCashier => "Partner cashier",
        }
    }

    /// Where this role lands after signing in.
    pub fn home(self) -> &'static str {
        match self {
            Role::OperatorAdmin | Role::OperatorAnalyst => "/console",
            Role::PartnerManager => "/partner",
            Role::PartnerCashier => "/till",
        }
    }
}

/// A signed-in member of staff.
pub struct Staff {
    pub user: UserRow,
    pub role: Role,
    /// The CSRF token this session's forms carry.
    pub csrf: String,
    pub token_hash: String,
}

impl Staff {
    /// Who the API sees: the operator, or the staff member's partner.
    pub fn principal(&self) -> Principal {
        match &self.user.partner_id {
            Some(p) => Principal::Partner(p.clone()),
            None => Principal::Operator,
        }
    }

    pub fn read_only(&self) -> bool {
        self.role == Role::OperatorAnalyst
    }

    /// Operator staff only (admin or analyst).
    pub fn operator(&self) -> Result<(), Response> {
        match self.role {
            Role::OperatorAdmin | Role::OperatorAnalyst => Ok(()),
            _ => Err(forbidden("This page is for the programme operator's staff.")),
        }
    }

    /// The partner of a partner manager (the back office is theirs alone).
    pub fn manager(&self) -> Result<&PartnerId, Response> {
        match (self.role, &self.user.partner_id) {
            (Role::PartnerManager, Some(p)) => Ok(p),
            _ => Err(forbidden("This page is for a partner's managers.")),
        }
    }

    /// The partner of a partner's staff (manager or cashier): the till.
    pub fn partner(&self) -> Result<&PartnerId, Response> {
        match (self.role, &self.user.partner_id) {
            (Role::PartnerManager | Role::PartnerCashier, Some(p)) => Ok(p),
            _ => Err(forbidden("The till is for a partner's staff.")),
        }
    }
}

pub fn forbidden(message: &str) -> Response {
    layout::problem(StatusCode::FORBIDDEN, "Not yours to see", message)
}

fn to_login(parts: &Parts, login: &str) -> Response {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let next: String = url_escape(path);
    Redirect::to(&format!("{login}?next={next}")).into_response()
}

/// Percent-encodes a query value (a path such as `/me/rewards` stays readable).
pub fn url_escape(s: &str) -> String {
    escape(s, b"-_.~/")
}

/// Percent-encodes one path segment: nothing in it can reach another endpoint (no `/`,
/// `.`, `?` or `#` survive).
pub fn path_segment(s: &str) -> String {
    escape(s, b"-_")
}

fn escape(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FromRequestParts<Web> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie(&parts.headers, STAFF_COOKIE) else {
            return Err(to_login(parts, "/login"));
        };
        let token_hash = hash_key(token);
        let now = web.app.now();
        let session = web
            .app
            .store
            .session(&token_hash, now)
            .await
            .map_err(layout::store_failed)?;
        let Some(user_id) = session.and_then(|s| s.user_id) else {
            return Err(to_login(parts, "/login"));
        };
        let Some(user) = web.app.store.user(&user_id).await.map_err(layout::store_failed)? else {
            return Err(to_login(parts, "/login"));
        };
        if user.disabled_at.is_some() {
            return Err(to_login(parts, "/login"));
        }
        let role = Role::parse(&user.role).ok_or_else(|| forbidden("This account has no role."))?;
        Ok(Staff {
            csrf: web.app.signer.csrf(token),
            user,
            role,
            token_hash,
        })
    }
}

/// A signed-in member (the member portal).
pub struct Member {
    pub id: MemberId,
    pub csrf: String,
    pub token_hash: String,
}

impl FromRequestParts<Web> for Member {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie(&parts.headers, MEMBER_COOKIE) else {
            return Err(to_login(parts, "/me/login"));
        };
        let token_hash = hash_key(token);
        let session = web
            .app
            .store
            .session(&token_hash, web.app.now())
            .await
            .map_err(layout::store_failed)?;
        let Some(id) = session.and_then(|s| s.member_id) else {
            return Err(to_login(parts, "/me/login"));
        };
        Ok(Member {
            id,
            csrf: web.app.signer.csrf(token),
            token_hash,
        })
    }
}

/// Every state-changing request of the web faces must carry the CSRF token of a cookie
/// the browser sent (a form field `csrf`, or the header `x-csrf-token` for the till's
/// script); otherwise it is refused before any handler runs, and nothing is written.
pub async fn csrf_guard(State(web): State<Web>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    // The token must be that of the cookie this route acts for: the pre-sign-in cookie
    // for the sign-in forms only, the member's for the portal, the staff's elsewhere.
    let path = req.uri().path();
    let name = if matches!(path, "/login" | "/me/login" | "/me/login/code") {
        PRE_COOKIE
    } else if path == "/me" || path.starts_with("/me/") {
        MEMBER_COOKIE
    } else {
        STAFF_COOKIE
    };
    let expected = cookie(req.headers(), name).map(str::to_string);
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (parts, body) = req.into_parts();
    let bytes = match read_form(body).await {
        Ok(b) => b,
        Err(res) => return *res,
    };
    let presented = header_token.or_else(|| {
        form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
    });
    let ok = match (expected, presented) {
        (Some(t), Some(p)) => web.app.signer.csrf_matches(&t, &p),
        _ => false,
    };
    if !ok {
        return layout::problem(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form has expired or did not come from this page. Reload the page and try again; nothing was changed.",
        );
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// The pre-sign-in cookie of this browser, made if it has none: (its value, and the
/// `Set-Cookie` to send when it is new).
pub fn pre_session(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, PRE_COOKIE) {
        Some(v) => (v.to_string(), None),
        None => {
            let v = new_token();
            let set = set_cookie(PRE_COOKIE, &v, 3600 * 24);
            (v, Some(set))
        }
    }
}

/// A form body, at most [`FORM_LIMIT`] bytes: too large is `413`, a body that did not
/// arrive whole is `400`.
pub async fn read_form(body: axum::body::Body) -> Result<axum::body::Bytes, Box<Response>> {
    axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|e| {
        Box::new(if crate::body::is_length_limit(&e) {
            layout::problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too much",
                "That form was larger than Tally accepts.",
            )
        } else {
            layout::problem(
                StatusCode::BAD_REQUEST,
                "Form incomplete",
                "The form did not arrive whole. Try again; nothing was changed.",
            )
        })
    })
}
