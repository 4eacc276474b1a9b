//! The demo's client: calls the real router in-process, as a till or the operator would
//! over HTTP, so the demo coalition is made through the API.

use anyhow::bail;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

pub(crate) struct Api {
    router: Router,
}

impl Api {
    pub(crate) fn new(router: Router) -> Api {
        Api { router }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"));
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let res = self.router.clone().oneshot(req.body(body)?).await?;
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    pub(crate) async fn expect(&self, method: Method, path: &str, key: &str, body: Value) -> anyhow::Result<Value> {
        let (status, v) = self.call(method, path, key, Some(body)).await?;
        if !status.is_success() {
            bail!("{path} answered {status}: {v}");
        }
        Ok(v)
    }
}
