//! The database alone, for comparison with the POS path: a minimal SQLite loop of two
//! inserts and two updates per commit, in the same WAL mode and `synchronous=FULL` as
//! the store. `tally bench --baseline` runs it.

use rusqlite::{Connection, params};
use std::time::{Duration, Instant};

/// Commits per second of the loop on a fresh database at `path`, run for `seconds`.
pub fn sqlite_commits_per_second(path: &str, seconds: f64) -> Result<f64, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE postings (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, amount INTEGER NOT NULL);",
    )?;
    for id in 0..10_000 {
        conn.execute("INSERT INTO accounts (id, balance) VALUES (?1, 0)", [id])?;
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut commits = 0u64;
    while Instant::now() < deadline {
        let (a, b) = ((commits * 7919) % 10_000, (commits * 104_729 + 1) % 10_000);
        conn.execute_batch("BEGIN")?;
        conn.prepare_cached("INSERT INTO postings (account, amount) VALUES (?1, ?2)")?
            .execute(params![a, -10])?;
        conn.prepare_cached("INSERT INTO postings (account, amount) VALUES (?1, ?2)")?
            .execute(params![b, 10])?;
        conn.prepare_cached("UPDATE accounts SET balance = balance - 10 WHERE id = ?1")?
            .execute([a])?;
        conn.prepare_cached("UPDATE accounts SET balance = balance + 10 WHERE id = ?1")?
            .execute([b])?;
        conn.execute_batch("COMMIT")?;
        commits += 1;
    }
    Ok(commits as f64 / started.elapsed().as_secs_f64())
}
