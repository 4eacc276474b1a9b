//! Prometheus metrics kept in memory: requests by route and status, and a latency
//! histogram per route. Written by a middleware, read by `GET /metrics`.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    rule_failures: std::sync::atomic::AtomicU64,
    key_lookups: std::sync::atomic::AtomicU64,
}

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// An earning rule failed at run time (and gave nothing).
    pub fn rule_failed(&self) {
        self.rule_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn rule_failures(&self) -> u64 {
        self.rule_failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A bearer key was looked up in the database (it was in neither cache).
    pub fn key_looked_up(&self) {
        self.key_lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn key_lookups(&self) -> u64 {
        self.key_lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(format!("{method} {route}")).or_default();
            h.count += 1;
            h.sum += seconds;
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.counts[i] += 1;
                }
            }
        }
    }

    /// The Prometheus text exposition, plus the gauges the caller adds.
    /// The metrics as Prometheus text: the request counters and latencies when
    /// `requests` (they tell the business's volume), then `extra`.
    pub fn render(&self, requests: bool, extra: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        if requests {
            self.render_requests(&mut out);
        }
        for (name, help, value) in extra {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }

    fn render_requests(&self, out: &mut String) {
        out.push_str("# HELP tally_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE tally_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "tally_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP tally_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE tally_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "tally_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "tally_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "tally_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "tally_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
    }
}

pub async fn track(State(metrics): State<std::sync::Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    metrics.record(&method, &route, res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}
