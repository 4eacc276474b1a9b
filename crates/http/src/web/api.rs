//! The web faces act through the API itself: a page's change is an API request made
//! in-process on behalf of the signed-in person, so it passes the very validation,
//! scoping (a partner's staff act as that partner) and decisions a till's request does.
//! Every change is written to the audit log with who made it.

use super::Web;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use serde_json::Value;
use tally_domain::ids::{MemberId, PartnerId};
use tally_store::web::AuditRow;
use tower::ServiceExt;

use crate::state::Principal;

/// The largest answer a page reads (a month's statement is the largest).
const ANSWER_LIMIT: usize = 32 * 1024 * 1024;

/// Who acts, for the audit log and the read-only check.
#[derive(Debug, Clone)]
pub enum Actor {
    Staff {
        user_id: String,
        partner_id: Option<PartnerId>,
        read_only: bool,
    },
    Member(MemberId),
}

/// A refused or failed API call, as the API said it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl Failure {
    /// The status a page answers with when the API refused its request: the API's own
    /// 4xx, or its 5xx when it failed; never a success.
    pub fn page_status(&self) -> StatusCode {
        if self.status.is_client_error() || self.status.is_server_error() {
            self.status
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }

    fn from_answer(status: StatusCode, body: &[u8]) -> Failure {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        Failure {
            status,
            code: v["error"]["code"].as_str().unwrap_or("error").to_string(),
            message: v["error"]["message"]
                .as_str()
                .unwrap_or("the request was refused")
                .to_string(),
        }
    }
}

pub struct Api<'a> {
    web: &'a Web,
    who: Principal,
    actor: Actor,
}

/// An answer whose body is not JSON (a statement's CSV).
pub struct RawAnswer {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl<'a> Api<'a> {
    pub fn new(web: &'a Web, who: Principal, actor: Actor) -> Api<'a> {
        Api { web, who, actor }
    }

    pub fn staff(web: &'a Web, staff: &super::session::Staff) -> Api<'a> {
        Api::new(
            web,
            staff.principal(),
            Actor::Staff {
                user_id: staff.user.id.clone(),
                partner_id: staff.user.partner_id.clone(),
                read_only: staff.read_only(),
            },
        )
    }

    /// A member acts through operator-scoped endpoints, always on her own id (the
    /// pages build the paths from her session, never from the request).
    pub fn member(web: &'a Web, member: &MemberId) -> Api<'a> {
        Api::new(web, Principal::Operator, Actor::Member(member.clone()))
    }

    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        let (_, _, body) = self.call(Method::GET, path, None).await?;
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn get_raw(&self, path: &str) -> Result<RawAnswer, Failure> {
        let (_, headers, body) = self.call(Method::GET, path, None).await?;
        Ok(RawAnswer { headers, body })
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.send(Method::POST, path, body).await
    }

    /// A question asked by POST that changes nothing (a quote, a rule tried on a
    /// basket): open to read-only accounts, and not audited.
    pub async fn ask(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        let bytes = serde_json::to_vec(body).expect("a JSON value serialises");
        let (_, _, body) = self.call(Method::POST, path, Some(bytes)).await?;
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.send(Method::PUT, path, body).await
    }

    /// A change: refused for a read-only account, audited whatever the answer.
    pub async fn send(&self, method: Method, path: &str, body: &Value) -> Result<Value, Failure> {
        self.send_once(method, path, body, None).await
    }

    /// A change sent with an `Idempotency-Key` (a POST sent again with the same key gets
    /// the first answer): for a form made once and perhaps submitted twice.
    pub async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> Result<Value, Failure> {
        if let Actor::Staff { read_only: true, .. } = self.actor {
            return Err(Failure {
                status: StatusCode::FORBIDDEN,
                code: "read_only".into(),
                message: "an analyst account can look but not change anything".into(),
            });
        }
        let bytes = serde_json::to_vec(body).expect("a JSON value serialises");
        let answer = self.call_keyed(method.clone(), path, Some(bytes), key).await;
        let status = match &answer {
            Ok((s, _, _)) => *s,
            Err(f) => f.status,
        };
        self.audit(&method, path, status).await;
        let (_, _, body) = answer?;
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn audit(&self, method: &Method, path: &str, status: StatusCode) {
        let (user_id, member_id, partner_id) = match &self.actor {
            Actor::Staff {
                user_id, partner_id, ..
            } => (Some(user_id.clone()), None, partner_id.clone()),
            Actor::Member(m) => (None, Some(m.clone()), None),
        };
        let target = audit_path(path);
        let row = AuditRow {
            at: self.web.app.now(),
            user_id,
            member_id,
            partner_id,
            action: format!("{method} {target}"),
            target,
            status: status.as_u16(),
        };
        if let Err(e) = self.web.app.store.append_audit(row).await {
            tracing::error!(error = %e, "the audit log could not be written");
        }
    }

    /// Whether a member's page may make this call: reads of her own member paths, the
    /// partner list, and a wallet or redemption whose page checks first that it is hers;
    /// redeeming, joining a challenge, and a new code for her voucher. The portal acts
    /// with the operator's scope, so this keeps a slip in a page from reaching anyone
    /// else's data or doing what the portal does not offer.
    fn member_may(member: &MemberId, method: &Method, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        let own = format!("/v1/members/{member}");
        let mine = path.strip_prefix(&own);
        let segments = |p: &str| p.split('/').filter(|s| !s.is_empty()).count();
        if *method == Method::GET {
            return mine.is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                || path == "/v1/partners"
                || path.strip_prefix("/v1/wallets/").is_some_and(|id| segments(id) == 1)
                || path
                    .strip_prefix("/v1/redemptions/")
                    .is_some_and(|id| segments(id) == 1);
        }
        *method == Method::POST
            && (mine == Some("/redemptions")
                || mine.is_some_and(|rest| {
                    rest.strip_prefix("/challenges/")
                        .and_then(|r| r.strip_suffix("/join"))
                        .is_some_and(|id| segments(id) == 1)
                })
                || path
                    .strip_prefix("/v1/redemptions/")
                    .and_then(|r| r.strip_suffix("/code"))
                    .is_some_and(|id| segments(id) == 1))
    }

    /// Sends one request through the API router, as `self.who`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Failure> {
        self.call_keyed(method, path, body, None).await
    }

    async fn call_keyed(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        key: Option<&str>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Failure> {
        if let Actor::Member(m) = &self.actor
            && !Self::member_may(m, &method, path)
        {
            return Err(Failure {
                status: StatusCode::FORBIDDEN,
                code: "forbidden".into(),
                message: "not a call the member portal makes".into(),
            });
        }
        let mut builder = Request::builder().method(method.clone()).uri(path);
        if let Some(k) = key.filter(|_| method == Method::POST) {
            builder = builder.header("idempotency-key", k);
        }
        if let Some(b) = &body {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, b.len());
        }
        let mut req = builder
            .body(Body::from(body.unwrap_or_default()))
            .map_err(|_| Failure {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_field".into(),
                message: "that address is not valid".into(),
            })?;
        req.extensions_mut().insert(self.who.clone());
        let res = match self.web.api.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|_| Failure {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal_error".into(),
                message: "the answer could not be read".into(),
            })?;
        if !status.is_success() {
            return Err(Failure::from_answer(status, &body));
        }
        Ok((status, headers, body))
    }
}

/// The path an audit line keeps: no query, and no voucher code (a secret the store keeps
/// only hashed; the log keeps `{code}` in its place).
fn audit_path(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    match path.strip_prefix("/v1/vouchers/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, tail)) => format!("/v1/vouchers/{{code}}/{tail}"),
            None => "/v1/vouchers/{code}".to_string(),
        },
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Api, MemberId, Method, audit_path};

    #[test]
    fn a_member_page_reaches_her_own_paths_only() {
        use tally_domain::ids::Id;
        let jana = MemberId::generate([1; 10]);
        let other = MemberId::generate([2; 10]);
        let (get, post, put) = (Method::GET, Method::POST, Method::PUT);
        let may = |m: &Method, p: &str| Api::member_may(&jana, m, p);
        assert!(may(&get, &format!("/v1/members/{jana}")));
        assert!(may(&get, &format!("/v1/members/{jana}/balance?x=1")));
        assert!(may(&get, "/v1/partners"));
        assert!(may(&get, "/v1/wallets/wal_1"));
        assert!(may(&get, "/v1/redemptions/red_1"));
        assert!(may(&post, &format!("/v1/members/{jana}/redemptions")));
        assert!(may(
            &post,
            &format!("/v1/members/{jana}/challenges/spring/join?lang=cs")
        ));
        assert!(may(&post, "/v1/redemptions/red_1/code"));
        assert!(!may(&get, &format!("/v1/members/{other}/balance")));
        assert!(!may(&get, &format!("/v1/members/{jana}x/balance")));
        assert!(!may(&get, "/v1/ledger/verify"));
        assert!(!may(&get, "/v1/partners/ptn_1/api-keys"));
        assert!(!may(&get, "/v1/wallets/wal_1/statement"));
        assert!(!may(&post, "/v1/redemptions/red_1/cancel"));
        assert!(!may(&post, &format!("/v1/members/{jana}/transfers")));
        assert!(!may(&put, &format!("/v1/members/{jana}/tier")));
        assert!(!may(&post, &format!("/v1/members/{other}/redemptions")));
        assert!(!may(&Method::DELETE, "/v1/wallets/wal_1/members/mem_2"));
    }

    #[test]
    fn audit_lines_keep_no_voucher_code_and_no_query() {
        assert_eq!(
            audit_path("/v1/vouchers/ABCD-1234/redeem"),
            "/v1/vouchers/{code}/redeem"
        );
        assert_eq!(audit_path("/v1/vouchers/ABCD-1234"), "/v1/vouchers/{code}");
        assert_eq!(audit_path("/v1/rewards?x=1"), "/v1/rewards");
    }
}
