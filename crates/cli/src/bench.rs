//! `tally bench`: starts the server on a fresh database, loads members, and fires POS
//! transactions over HTTP from concurrent clients, each with a unique receipt. Prints
//! transactions per second and latency percentiles. The client runs in the same process
//! on the same cores, so the figures include its cost.

use crate::bench_load;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tally_store::{Store, keys};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    pub backend: String,
    /// PostgreSQL server to use (a fresh schema is made in it).
    #[arg(
        long,
        env = "TALLY_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub pg_url: String,
    /// Members to load before the run.
    #[arg(long, default_value_t = 10_000)]
    pub members: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    pub clients: u64,
    /// POS transactions to send (receipts, with --batch).
    #[arg(long, default_value_t = 50_000)]
    pub requests: u64,
    /// Receipts per request to `/v1/transactions/batch`; 0 sends single transactions.
    #[arg(long, default_value_t = 0)]
    pub batch: u64,
    /// Percent of transactions that also pay with points.
    #[arg(long, default_value_t = 10)]
    pub redeem_percent: u64,
    /// Active earning rules for the bench partner (a realistic mix, see bench_rules.rs).
    #[arg(long, default_value_t = 0)]
    pub rules: usize,
    /// Lines per basket.
    #[arg(long, default_value_t = 1)]
    pub lines: usize,
    /// Give every capped bench rule a campaign budget (counters every sale shares).
    #[arg(long)]
    pub budgets: bool,
    /// Set a tier ladder first (Silver, Gold at 1.5×, Platinum at 2×, low thresholds so
    /// members climb it during the run): every sale then counts toward tiers.
    #[arg(long)]
    pub tiers: bool,
    /// Save an open challenge every member takes part in automatically and every sale
    /// counts toward (a count to 10,000, so none completes) before the run: what
    /// challenges cost at the till at their worst.
    #[arg(long)]
    pub challenge: bool,
    /// Measure the database alone instead: a loop of 2 inserts + 2 updates per commit on
    /// SQLite in the store's WAL mode (`synchronous=FULL`), for 10 seconds.
    #[arg(long)]
    pub baseline: bool,
    /// Who sends the load: `internal` (clients in this process, `--requests` receipts)
    /// or `wrk` (the external load generator, for `--seconds`, on its own process).
    #[arg(long, default_value = "internal")]
    pub load: String,
    /// Measured runs, one after another on the same server and data.
    #[arg(long, default_value_t = 1)]
    pub runs: u64,
    /// Length of each run with `--load wrk`.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// After the runs, measure the database's own baseline and print the ratio: the SQLite
    /// loop (one connection: SQLite has one writer), or pgbench's TPC-B with as many
    /// clients as `--clients` on the same PostgreSQL.
    #[arg(long)]
    pub compare: bool,
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn send(&self, method: reqwest::Method, path: &str, key: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let res = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    async fn post(&self, path: &str, key: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::POST, path, key, body).await
    }

    /// A set-up call that must succeed.
    async fn expect(&self, method: reqwest::Method, path: &str, key: &str, body: &Value) -> anyhow::Result<Value> {
        let (status, v) = self.send(method, path, key, body).await?;
        if !(200..300).contains(&status) {
            bail!("{path} answered {status}: {v}");
        }
        Ok(v)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let tag = hex_tag();
    if args.baseline {
        let rate = sqlite_baseline().await?;
        println!(
            "{}",
            json!({"baseline": "sqlite 2 inserts + 2 updates per commit, WAL, synchronous=FULL", "commits_per_second": rate.round()})
        );
        return Ok(());
    }
    let (store, place) = match args.backend.as_str() {
        "sqlite" => {
            let path = std::env::temp_dir().join(format!("tally-bench-{tag}.db"));
            (
                Store::connect(&format!("sqlite://{}", path.display())).await?,
                path.display().to_string(),
            )
        }
        "postgres" => {
            let schema = format!("bench_{tag}");
            (
                Store::connect_postgres_schema(&args.pg_url, &schema)
                    .await
                    .context("connecting to PostgreSQL")?,
                format!("schema {schema}"),
            )
        }
        other => bail!("--backend must be sqlite or postgres, not {other}"),
    };
    let admin = keys::generate_key();
    let state = tally_http::AppState::new(store.clone(), tally_http::system_clock(), keys::hash_key(&admin)).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(tally_http::serve(listener, state, std::future::pending()));
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.clients as usize * 2)
            .build()?,
        base,
    });

    eprintln!("bench: {} on {place}; loading {} members…", args.backend, args.members);
    use reqwest::Method;
    client
        .expect(
            Method::PUT,
            "/v1/fx-rates",
            &admin,
            &json!({"rates": {"USD": "1.08", "CZK": "25.2"}}),
        )
        .await?;
    let partner = client
        .expect(
            Method::POST,
            "/v1/partners",
            &admin,
            &json!({"name": "Bench Drugstore", "industry": "drugstore", "country": "CZ", "currency": "CZK", "timezone": "Europe/Prague"}),
        )
        .await?;
    let partner_id = partner["id"].as_str().context("partner id")?.to_string();
    let key = client
        .expect(
            Method::POST,
            &format!("/v1/partners/{partner_id}/api-keys"),
            &admin,
            &json!({}),
        )
        .await?;
    let key = Arc::new(key["key"].as_str().context("api key")?.to_string());
    if args.tiers {
        let ladder = json!({"basis": "qualifying_points", "period": "calendar_year", "grace_days": 30, "levels": [
            {"code": "silver", "name": "Silver", "threshold": 100, "multiplier": "1"},
            {"code": "gold", "name": "Gold", "threshold": 1000, "multiplier": "1.5"},
            {"code": "platinum", "name": "Platinum", "threshold": 10000, "multiplier": "2"}
        ]});
        client.expect(Method::PUT, "/v1/tiers", &admin, &ladder).await?;
    }
    if args.challenge {
        let now = jiff::Timestamp::now();
        let challenge = json!({"code": "bench", "name": {"en": "Every sale"},
            "starts_at": (now - jiff::SignedDuration::from_hours(24)).to_string(),
            "ends_at": (now + jiff::SignedDuration::from_hours(24 * 30)).to_string(),
            "counts": "purchases", "measure": "count", "target": 10000, "enrolment": "automatic",
            "badge": {"code": "bench", "name": {"en": "Bench"}}});
        client
            .expect(Method::POST, "/v1/challenges", &admin, &challenge)
            .await?;
    }
    let mut budgets = 0;
    for spec in crate::bench_rules::rule_specs(args.rules, Some(&partner_id), args.budgets) {
        budgets += usize::from(spec.get("budget").is_some());
        client.expect(Method::POST, "/v1/earning-rules", &admin, &spec).await?;
    }
    let next = Arc::new(AtomicU64::new(0));
    let mut loaders = Vec::new();
    for _ in 0..args.clients {
        let (client, admin, next, total) = (client.clone(), admin.clone(), next.clone(), args.members);
        loaders.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(ids);
                }
                let (status, m) = client
                    .post(
                        "/v1/members",
                        &admin,
                        &json!({"email": format!("bench{i}@example.com"), "country": "CZ"}),
                    )
                    .await?;
                if status != 201 {
                    bail!("creating a member answered {status}: {m}");
                }
                ids.push(m["id"].as_str().unwrap_or_default().to_string());
            }
        }));
    }
    let mut members = Vec::new();
    for l in loaders {
        members.extend(l.await??);
    }
    let members = Arc::new(members);
    let sqlite_path = (args.backend == "sqlite").then(|| std::path::PathBuf::from(&place));
    let mut runs = Vec::new();
    for run in 0..args.runs {
        let probe = bench_load::WriteProbe::start(&store, sqlite_path.as_deref()).await;
        let mut report = match args.load.as_str() {
            "internal" => internal_run(&args, run, &client, &key, &members).await?,
            "wrk" => {
                if members.len() > bench_load::WRK_MEMBERS_MAX {
                    bail!(
                        "--load wrk takes at most {} members (the script holds their ids)",
                        bench_load::WRK_MEMBERS_MAX
                    );
                }
                let (members, base, key) = (members.clone(), client.base.clone(), key.clone());
                let (lines, redeem_percent, clients, seconds) =
                    (args.lines, args.redeem_percent, args.clients, args.seconds);
                let tag = format!("{tag}{run}");
                let r = tokio::task::spawn_blocking(move || {
                    bench_load::run_wrk(&bench_load::WrkLoad {
                        base: &base,
                        key: &key,
                        members: &members,
                        lines,
                        redeem_percent,
                        clients,
                        seconds,
                        tag: &tag,
                    })
                })
                .await??;
                // Correct answers only: a sale posted, or refused for lack of points.
                let answered = r.created + r.refused_no_points;
                json!({
                    "seconds": r.seconds,
                    "receipts_per_second": (answered as f64 / r.seconds.max(0.001)).round(),
                    "latency_ms": {"p50": r.p50_ms, "p90": r.p90_ms, "p99": r.p99_ms, "max": r.max_ms},
                    "posted": r.created,
                    "refused_insufficient_points": r.refused_no_points,
                    "errors": r.other + r.socket_errors,
                })
            }
            other => bail!("--load must be internal or wrk, not {other}"),
        };
        let posted = report["posted"].as_u64().unwrap_or(0);
        report["written"] = probe.finish(&store, posted).await;
        eprintln!("bench: run {} of {}: {report}", run + 1, args.runs);
        runs.push(report);
    }
    let (_, verify) = client
        .http
        .get(format!("{}/v1/ledger/verify", client.base))
        .bearer_auth(&admin)
        .send()
        .await?
        .json::<Value>()
        .await
        .map(|v| (0, v))?;
    let baseline = match args.compare {
        false => Value::Null,
        true => baseline_in_run(&args).await?,
    };
    let rates: Vec<f64> = runs.iter().filter_map(|r| r["receipts_per_second"].as_f64()).collect();
    let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    let p99s: Vec<f64> = runs.iter().filter_map(|r| r["latency_ms"]["p99"].as_f64()).collect();
    let mut summary = json!({
        "receipts_per_second_mean": mean.round(),
        "receipts_per_second_each": rates,
        "p99_ms_each": p99s,
        "p99_ms_worst": p99s.iter().cloned().fold(0.0, f64::max),
    });
    if let Some(base) = baseline["per_second"].as_f64() {
        summary["ratio_to_baseline"] = json!((mean / base * 100.0).round() / 100.0);
    }
    let report = json!({
        "backend": args.backend,
        "load": args.load,
        "clients": args.clients,
        "batch": args.batch,
        "rules": args.rules,
        "rules_with_budget": budgets,
        "tiers": args.tiers,
        "challenge": args.challenge,
        "lines": args.lines,
        "members": args.members,
        "runs": runs,
        "summary": summary,
        "baseline": baseline,
        "ledger_balanced": verify["balanced"],
        "entries": verify["entries_checked"],
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if std::env::var_os("TALLY_BENCH_KEEP").is_some() {
        eprintln!("bench: kept {place}");
    } else if args.backend == "sqlite" {
        remove_sqlite_files(&place);
    }
    Ok(())
}

/// One run with the clients in this process: `--requests` receipts (or batches).
async fn internal_run(
    args: &BenchArgs,
    run: u64,
    client: &Arc<Client>,
    key: &Arc<String>,
    members: &Arc<Vec<String>>,
) -> anyhow::Result<Value> {
    let per_request = args.batch.max(1);
    let requests = args.requests.div_ceil(per_request);
    eprintln!(
        "bench: {} POS receipts in {requests} requests from {} clients…",
        args.requests, args.clients
    );
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.clients {
        let (client, key, sent, members) = (client.clone(), key.clone(), sent.clone(), members.clone());
        let (batch, redeem_percent, total, lines) = (args.batch, args.redeem_percent, args.requests, args.lines);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut outcome = Outcome::default();
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (w + 1) ^ (run << 32);
            let mut next_rand = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            loop {
                let first = sent.fetch_add(per_request, Ordering::Relaxed);
                if first >= total {
                    return anyhow::Ok((latencies, outcome));
                }
                let n = per_request.min(total - first);
                let receipts: Vec<Value> = (first..first + n)
                    .map(|i| {
                        let member = &members[(next_rand() % members.len() as u64) as usize];
                        let redeem = if next_rand() % 100 < redeem_percent {
                            1 + next_rand() % 5
                        } else {
                            0
                        };
                        let basket = crate::bench_rules::basket_lines(lines.max(1), next_rand());
                        let total: u64 = basket
                            .iter()
                            .map(|l| {
                                l["quantity"].as_u64().unwrap_or(1) * l["unit_price"]["amount"].as_u64().unwrap_or(0)
                            })
                            .sum();
                        json!({"external_id": format!("B-{run}-{i:09}"), "member": {"id": member},
                               "total": {"amount": total, "currency": "CZK"},
                               "lines": basket, "redeem_points": redeem})
                    })
                    .collect();
                let t = Instant::now();
                let result = if batch == 0 {
                    client.post("/v1/transactions", &key, &receipts[0]).await
                } else {
                    client
                        .post("/v1/transactions/batch", &key, &json!({"transactions": receipts}))
                        .await
                };
                latencies.push(t.elapsed());
                outcome.count(result, batch > 0);
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut outcome = Outcome::default();
    for w in workers {
        let (l, o) = w.await??;
        latencies.extend(l);
        outcome.posted += o.posted;
        outcome.refused_no_points += o.refused_no_points;
        outcome.errors += o.errors;
        outcome.first_error = outcome.first_error.or(o.first_error);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Ok(json!({
        "seconds": (elapsed * 100.0).round() / 100.0,
        "receipts_per_second": ((outcome.posted + outcome.refused_no_points) as f64 / elapsed).round(),
        "requests_per_second": (latencies.len() as f64 / elapsed).round(),
        "latency_ms": {"p50": percentile(&latencies, 0.50), "p90": percentile(&latencies, 0.90), "p99": percentile(&latencies, 0.99), "max": percentile(&latencies, 1.0)},
        "posted": outcome.posted,
        "refused_insufficient_points": outcome.refused_no_points,
        "errors": outcome.errors,
        "first_error": outcome.first_error,
    }))
}

/// SQLite's commit loop (`tally_store::baseline`) for 10 s on a database of its own,
/// removed after: commits per second.
async fn sqlite_baseline() -> anyhow::Result<f64> {
    let path = std::env::temp_dir()
        .join(format!("tally-baseline-{}.db", hex_tag()))
        .display()
        .to_string();
    let p = path.clone();
    let rate = tokio::task::spawn_blocking(move || tally_store::baseline::sqlite_commits_per_second(&p, 10.0)).await?;
    remove_sqlite_files(&path);
    Ok(rate?)
}

/// Removes a SQLite database and its `-wal` and `-shm` files.
fn remove_sqlite_files(path: &str) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}

/// The database's own speed at the run's concurrency, measured right after the runs:
/// SQLite's commit loop (`tally_store::baseline`), or pgbench's TPC-B on the same
/// PostgreSQL server.
async fn baseline_in_run(args: &BenchArgs) -> anyhow::Result<Value> {
    match args.backend.as_str() {
        "sqlite" => {
            let rate = sqlite_baseline().await?;
            Ok(
                json!({"what": "SQLite, 2 inserts + 2 updates per commit, WAL, synchronous=FULL", "per_second": rate.round()}),
            )
        }
        _ => {
            let (url, clients, seconds) = (args.pg_url.clone(), args.clients, args.seconds.max(10));
            let tps = tokio::task::spawn_blocking(move || bench_load::pgbench_tps(&url, clients, seconds)).await??;
            Ok(
                json!({"what": format!("pgbench TPC-B -M prepared, {clients} clients, {seconds} s, scale 32"), "per_second": tps.round()}),
            )
        }
    }
}

/// What the server answered, per receipt.
#[derive(Default)]
struct Outcome {
    posted: u64,
    /// A redemption refused for lack of points is a correct answer, not a failure.
    refused_no_points: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Outcome {
    fn count(&mut self, result: anyhow::Result<(u16, Value)>, batch: bool) {
        let answers: Vec<(u64, Value)> = match result {
            Ok((200, v)) if batch => v["results"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .map(|x| (x["status"].as_u64().unwrap_or(0), x.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            Ok((status, v)) => vec![(u64::from(status), v)],
            Err(e) => vec![(0, Value::String(e.to_string()))],
        };
        for (status, v) in answers {
            match status {
                201 => self.posted += 1,
                422 if v["error"]["code"] == "insufficient_points" => self.refused_no_points += 1,
                _ => {
                    self.errors += 1;
                    self.first_error.get_or_insert_with(|| format!("{status}: {v}"));
                }
            }
        }
    }
}

fn hex_tag() -> String {
    keys::random_bytes::<4>().iter().map(|b| format!("{b:02x}")).collect()
}
