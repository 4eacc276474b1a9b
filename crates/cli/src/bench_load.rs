//! What `tally bench` measures around a run: load from an external generator (wrk), the
//! bytes the database wrote (this process's I/O counters for SQLite, `pg_stat_wal` and
//! `pg_stat_bgwriter` for PostgreSQL), how large the SQLite WAL grew, and the
//! database's own baseline (the SQLite loop, or pgbench's TPC-B) for a ratio.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tally_store::{Store, WriteVolume};

/// Bytes this process has caused to be written to storage so far (Linux
/// `/proc/self/io`, `write_bytes`): for SQLite, every byte the server wrote (WAL frames,
/// checkpoint copies), since the database lives in this process.
pub fn process_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Samples the size of a SQLite database's `-wal` file while a run goes on.
pub struct WalWatch {
    stop: Arc<AtomicBool>,
    largest: Arc<AtomicU64>,
    wal: PathBuf,
}

impl WalWatch {
    pub fn start(database: &Path) -> WalWatch {
        let wal = PathBuf::from(format!("{}-wal", database.display()));
        let (stop, largest) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (s, l, w) = (stop.clone(), largest.clone(), wal.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(m) = std::fs::metadata(&w) {
                    l.fetch_max(m.len(), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        WalWatch { stop, largest, wal }
    }

    /// The largest size seen and the size now, in bytes.
    pub fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let now = std::fs::metadata(&self.wal).map(|m| m.len()).unwrap_or(0);
        (self.largest.load(Ordering::Relaxed).max(now), now)
    }
}

/// Write counters before a run, to be compared after it.
pub struct WriteProbe {
    process: Option<u64>,
    server: Option<WriteVolume>,
    wal: Option<WalWatch>,
}

impl WriteProbe {
    pub async fn start(store: &Store, sqlite_path: Option<&Path>) -> WriteProbe {
        WriteProbe {
            process: process_write_bytes(),
            server: store.write_volume().await.ok().flatten(),
            wal: sqlite_path.map(WalWatch::start),
        }
    }

    /// What was written since `start`, per posted receipt too.
    pub async fn finish(self, store: &Store, receipts: u64) -> Value {
        let per = |bytes: u64| (bytes as f64 / receipts.max(1) as f64).round();
        let mut out = json!({});
        if let (Some(before), Some(after)) = (self.process, process_write_bytes()) {
            let bytes = after.saturating_sub(before);
            out["process_write_bytes"] = json!(bytes);
            out["process_bytes_per_receipt"] = json!(per(bytes));
        }
        if let (Some(before), Ok(Some(after))) = (self.server, store.write_volume().await) {
            let wal = after.wal_bytes.saturating_sub(before.wal_bytes);
            let data = after.data_bytes.saturating_sub(before.data_bytes);
            out["pg_wal_bytes"] = json!(wal);
            out["pg_wal_bytes_per_receipt"] = json!(per(wal));
            out["pg_data_bytes_written"] = json!(data);
            out["pg_data_bytes_per_receipt"] = json!(per(data));
        }
        if let Some(watch) = self.wal {
            let (largest, now) = watch.finish();
            out["wal_largest_bytes"] = json!(largest);
            out["wal_bytes_at_end"] = json!(now);
        }
        out
    }
}

/// The most members a wrk script names: wrk's LuaJIT refuses a function with more than
/// about 65,000 constants, and the script holds the member ids as one table.
pub const WRK_MEMBERS_MAX: usize = 50_000;

/// How the external load looks: what wrk sends.
pub struct WrkLoad<'a> {
    pub base: &'a str,
    pub key: &'a str,
    pub members: &'a [String],
    pub lines: usize,
    pub redeem_percent: u64,
    pub clients: u64,
    pub seconds: u64,
    /// Makes this run's receipt ids unique.
    pub tag: &'a str,
}

/// The counts and latencies wrk reported for one run.
#[derive(Debug, Default)]
pub struct WrkResult {
    pub seconds: f64,
    pub created: u64,
    pub refused_no_points: u64,
    pub other: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub socket_errors: u64,
}

/// Runs wrk against the server for `load.seconds` and reads its report.
pub fn run_wrk(load: &WrkLoad) -> anyhow::Result<WrkResult> {
    let script = std::env::temp_dir().join(format!("tally-bench-{}.lua", load.tag));
    std::fs::write(&script, wrk_script(load)).context("writing the wrk script")?;
    let threads = load.clients.clamp(1, 2);
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &load.clients.to_string(),
            "-d",
            &format!("{}s", load.seconds),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(&script)
        .arg(load.base)
        .output();
    let _ = std::fs::remove_file(&script);
    let out = out.context("running wrk (install it: apt install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("reading wrk's report:\n{text}"))
}

fn parse_wrk(text: &str) -> anyhow::Result<WrkResult> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("TALLY "))
        .context("no TALLY line")?;
    let mut r = WrkResult::default();
    for pair in line.split_whitespace() {
        let (k, v) = pair.split_once('=').context("key=value")?;
        let f: f64 = v.parse().with_context(|| format!("{k}={v}"))?;
        match k {
            "seconds" => r.seconds = f,
            "created" => r.created = f as u64,
            "no_points" => r.refused_no_points = f as u64,
            "other" => r.other = f as u64,
            "p50" => r.p50_ms = f,
            "p90" => r.p90_ms = f,
            "p99" => r.p99_ms = f,
            "max" => r.max_ms = f,
            "socket_errors" => r.socket_errors = f as u64,
            _ => {}
        }
    }
    Ok(r)
}

/// The Lua script: each request is one sale with a unique receipt id (numbered in order
/// per connection thread, fixed width, as tills number their receipts), a random member
/// and a basket like `bench_rules::basket_lines`; `done` prints one parseable line.
fn wrk_script(load: &WrkLoad) -> String {
    let members: Vec<String> = load.members.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        r#"local members = {{{members}}}
local key = "{key}"
local tag = "{tag}"
local lines_n = {lines}
local redeem_percent = {redeem}
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
counter = 0
created = 0
no_points = 0
other = 0
function init(args)
  math.randomseed(tid * 7919 + os.time())
end
function request()
  counter = counter + 1
  local m = members[math.random(#members)]
  local seed = math.random(0, 1000000)
  local parts = {{}}
  local total = 0
  for j = 0, lines_n - 1 do
    local k = (seed + j) % 40
    local q = 1 + k % 3
    local price = 5000 + k * 1000
    total = total + q * price
    parts[#parts + 1] = string.format('{{"sku":"SKU-%d","category":"cat%d","quantity":%d,"unit_price":{{"amount":%d,"currency":"CZK"}}}}', k, k % 10, q, price)
  end
  local redeem = 0
  if math.random(100) <= redeem_percent then redeem = math.random(5) end
  local body = string.format('{{"external_id":"W-%s-%d-%09d","member":{{"id":"%s"}},"total":{{"amount":%d,"currency":"CZK"}},"lines":[%s],"redeem_points":%d}}',
    tag, tid, counter, m, total, table.concat(parts, ","), redeem)
  return wrk.format("POST", "/v1/transactions", {{["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}}, body)
end
function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 422 and string.find(body, "insufficient_points", 1, true) then
    no_points = no_points + 1
  else
    other = other + 1
  end
end
function done(summary, latency, requests)
  local c, n, o = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    n = n + t:get("no_points")
    o = o + t:get("other")
  end
  local e = summary.errors
  io.write(string.format("TALLY seconds=%.3f created=%d no_points=%d other=%d p50=%.3f p90=%.3f p99=%.3f max=%.3f socket_errors=%d\n",
    summary.duration / 1e6, c, n, o,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout))
end
"#,
        members = members.join(","),
        key = load.key,
        tag = load.tag,
        lines = load.lines.max(1),
        redeem = load.redeem_percent,
    )
}

/// pgbench's TPC-B (`-M prepared`) at `clients` for `seconds` on a database of its own
/// (created at scale 32 if missing) on the server of `pg_url`: transactions per second.
pub fn pgbench_tps(pg_url: &str, clients: u64, seconds: u64) -> anyhow::Result<f64> {
    let db = "tally_pgbench_baseline";
    let url = url_with_database(pg_url, db)?;
    let exists = Command::new("psql")
        .args([
            pg_url,
            "-tAc",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"),
        ])
        .output()
        .context("running psql")?;
    if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
        let created = Command::new("psql")
            .args([pg_url, "-c", &format!("CREATE DATABASE {db}")])
            .output()?;
        if !created.status.success() {
            bail!("creating {db}: {}", String::from_utf8_lossy(&created.stderr));
        }
        let init = Command::new("pgbench").args(["-i", "-q", "-s", "32", &url]).output()?;
        if !init.status.success() {
            // Not left half made: the next run makes it again.
            let _ = Command::new("psql")
                .args([pg_url, "-c", &format!("DROP DATABASE {db}")])
                .output();
            bail!("pgbench -i: {}", String::from_utf8_lossy(&init.stderr));
        }
    }
    let out = Command::new("pgbench")
        .args([
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            &url,
        ])
        .output()
        .context("running pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| {
            format!(
                "reading pgbench's report: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// `url` with its database name replaced.
fn url_with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").context("a postgres:// URL")? + 3;
    let base = match head[scheme_end..].find('/') {
        Some(slash) => &head[..scheme_end + slash],
        None => head,
    };
    Ok(match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_line_the_script_prints() {
        let r = parse_wrk("Running 5s test\nTALLY seconds=5.002 created=900 no_points=12 other=1 p50=4.100 p90=8.000 p99=19.500 max=40.000 socket_errors=0\n").unwrap();
        assert_eq!((r.created, r.refused_no_points, r.other), (900, 12, 1));
        assert_eq!((r.p50_ms, r.p99_ms, r.max_ms), (4.1, 19.5, 40.0));
        assert!(parse_wrk("no such line").is_err());
    }

    #[test]
    fn the_baseline_gets_a_database_of_its_own() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/test", "b").unwrap(),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            url_with_database("postgres://u@h/test?sslmode=disable", "b").unwrap(),
            "postgres://u@h/b?sslmode=disable"
        );
        assert_eq!(url_with_database("postgres://u@h", "b").unwrap(), "postgres://u@h/b");
    }
}
