//! The page shell every face shares (header, navigation, sign-out, main), the answers
//! pages give (HTML with strict security headers, problems, redirects) and the small
//! formatting helpers of amounts, points and times.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

/// The navigation of one face.
pub struct Nav<'a> {
    /// The face's name, shown beside the brand ("Console", "Back office", …).
    pub face: &'a str,
    pub items: Vec<(&'a str, String)>,
    /// The path of the page shown, marked `aria-current`.
    pub current: &'a str,
    /// Who is signed in, with their sign-out form.
    pub who: Option<(String, &'a str, String)>,
    /// Extra markup at the end of the header (the member portal's language switch).
    pub extra: Option<Markup>,
}

/// A whole page: `title` is both the `<title>` and the one `<h1>`.
pub fn page(lang: &str, title: &str, nav: &Nav<'_>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tally" }
                link rel="stylesheet" href="/assets/tally.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.bar {
                        span.brand { "Tally" } " "
                        span.face { (nav.face) }
                        @if let Some((name, action, csrf)) = &nav.who {
                            form.signout method="post" action=(action) {
                                input type="hidden" name="csrf" value=(csrf);
                                span.who { (name) } " "
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    @if !nav.items.is_empty() {
                        nav aria-label=(nav.face) {
                            ul {
                                @for (href, label) in &nav.items {
                                    li {
                                        @if *href == nav.current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(extra) = &nav.extra { (extra) }
                }
                main #main {
                    h1 { (title) }
                    (main)
                }
            }
        }
    }
}

/// A page answer: HTML, never cached, framed by nobody, scripts only our own.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut res = (status, markup.into_string()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    res
}

pub fn ok(markup: Markup) -> Response {
    respond(StatusCode::OK, markup)
}

/// Headers every web answer carries.
/// Headers every web answer carries (a header the page set itself is kept).
pub fn secure_headers(h: &mut axum::http::HeaderMap) {
    let set = [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in set {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
}

/// A page that says what went wrong, with a way back.
pub fn problem(status: StatusCode, title: &str, message: &str) -> Response {
    let nav = Nav {
        face: "",
        items: vec![],
        current: "",
        who: None,
        extra: None,
    };
    respond(
        status,
        page(
            "en",
            title,
            &nav,
            html! {
                p.notice.error role="alert" { (message) }
                p { a href="/" { "Back to the start" } }
            },
        ),
    )
}

/// The store failed (not the request): logged, and a page that says to try again.
pub fn store_failed(e: tally_store::StoreError) -> Response {
    tracing::error!(error = %e, "a page could not read the store");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "Tally could not answer just now. Try again in a moment.",
    )
}

/// A `303 See Other` to `to`, with extra headers (cookies) if any.
pub fn see_other(to: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    let h = res.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
    );
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    secure_headers(h);
    res
}

/// A message box: `error` boxes are announced at once, others politely.
pub fn notice(kind: &str, message: &str) -> Markup {
    html! {
        @if kind == "error" {
            p.notice.error role="alert" { (message) }
        } @else {
            p.notice.ok role="status" { (message) }
        }
    }
}

pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// 1234567 → "1,234,567" (and negatives).
pub fn points(n: i64) -> String {
    super::values::grouped(n, ',')
}

/// An API money object `{"amount": 1230, "currency": "EUR"}` (minor units) as
/// "EUR 12.30".
pub fn money(v: &Value) -> String {
    match (v["amount"].as_i64(), v["currency"].as_str()) {
        (Some(minor), Some(code)) => in_currency(minor, code),
        _ => "—".into(),
    }
}

/// Minor units of a currency as "EUR 12.30".
pub fn in_currency(minor: i64, code: &str) -> String {
    match tally_domain::money::Currency::parse(code) {
        Ok(c) => format!("{code} {}", tally_domain::money::in_units(minor, c)),
        Err(_) => format!("{code} {minor}"),
    }
}

/// An RFC 3339 time as "2026-11-28 14:03" (UTC).
pub fn when(v: &Value) -> String {
    v.as_str()
        .map(|s| s.get(..16).unwrap_or(s).replace('T', " "))
        .unwrap_or_else(|| "—".into())
}

/// The text of a JSON field, or "" when absent.
pub fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_default()
}

/// Rows of a JSON array (absent = none).
pub fn rows(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The list of a paged API answer (`{"items": [...]}`) or a bare array.
pub fn data(v: &Value) -> &[Value] {
    if v.is_array() { rows(v) } else { rows(&v["items"]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_grouped_by_thousands() {
        assert_eq!(points(0), "0");
        assert_eq!(points(999), "999");
        assert_eq!(points(1000), "1,000");
        assert_eq!(points(-1234567), "−1,234,567");
    }
}
