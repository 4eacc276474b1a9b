//! The SQLite backend: one writer thread with group commit (`writer.rs`), and a pool of
//! read connections, which WAL lets proceed while the writer writes.
//!
//! Each module holds the statements of one area as functions over a connection, and
//! the [`SqliteStore`] methods that run them: on a reader, or as a job of the writer.
//! Commands (`purchases.rs`, `returns.rs`, `events.rs`) read facts, call the decision in
//! `tally_domain::decide`, and write what it says; they share the member, ledger and
//! rule statements of `members.rs`, `ledger.rs` and `rules.rs`.

mod challenges;
mod checkpoint;
mod consents;
mod events;
mod exchange;
mod idempotency;
mod ledger;
mod members;
mod memberships;
mod partners;
mod program;
mod purchases;
mod referrals;
mod returns;
mod rewards;
mod rules;
mod settlement;
mod tiers;
mod transfers;
mod wallets;
mod web;
mod writer;

use crate::StoreError;
use crate::migrations;
use jiff::Timestamp;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: writer::Queue,
    readers: Mutex<Vec<Connection>>,
    /// The checkpointer runs while this lives.
    _alive: Arc<()>,
}

fn open_connection(path: &PathBuf) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(migrations::CREATE_TABLE)?;
    for m in migrations::SQLITE {
        let done: i64 = conn.query_row(
            "SELECT COUNT(*) FROM tally_migrations WHERE version = ?1",
            [m.version],
            |r| r.get(0),
        )?;
        if done > 0 {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql)?;
        tx.execute(
            "INSERT INTO tally_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, Timestamp::now().as_microsecond()],
        )?;
        tx.commit()?;
        tracing::info!(version = m.version, name = m.name, "applied SQLite migration");
    }
    Ok(())
}

impl SqliteStore {
    pub async fn open(path: &str) -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(path);
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let mut conn = open_connection(&p)?;
            migrate(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|_| StoreError::stopped("opening SQLite failed"))??;
        // The writer never checkpoints; a thread of its own does, off the POS path
        // (checkpoint.rs).
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {};",
            checkpoint::WAL_FILE_LIMIT
        ))?;
        let checkpointer = open_connection(&path)?;
        let alive = Arc::new(());
        let token = Arc::downgrade(&alive);
        let pause = Arc::new(checkpoint::Pause::default());
        let writer_pause = pause.clone();
        std::thread::Builder::new()
            .name("tally-sqlite-checkpoint".into())
            .spawn(move || checkpoint::run(checkpointer, pause, token, checkpoint::RESET_BYTES))
            .map_err(|_| StoreError::stopped("the SQLite checkpointer could not start"))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: writer::start(conn, writer_pause)?,
                readers: Mutex::new(Vec::new()),
                _alive: alive,
            }),
        })
    }

    /// Caps the database file at its current size plus `extra_pages` pages (`None`:
    /// lifts the cap). Past the cap SQLite answers "database or disk is full", as on a
    /// full disk: tests use it to check how a full disk is answered.
    pub(crate) async fn cap_growth(&self, extra_pages: Option<i64>) -> Result<(), StoreError> {
        self.write(move |c| {
            let max = match extra_pages {
                Some(extra) => c.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))? + extra,
                None => 0xFFFF_FFFE,
            };
            c.query_row(&format!("PRAGMA max_page_count = {max}"), [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
        .await
    }

    /// Runs `f` in the writer's next group transaction and answers after the commit.
    async fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (job, rx) = writer::job(f);
        self.inner.writer.send(vec![job])?;
        rx.await
            .map_err(|_| StoreError::stopped("the SQLite writer dropped a job"))?
    }

    /// [`Self::write`], waiting for room in the queue rather than refusing.
    async fn write_waiting<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (job, rx) = writer::job(f);
        self.inner.writer.send_waiting(vec![job]).await?;
        rx.await
            .map_err(|_| StoreError::stopped("the SQLite writer dropped a job"))?
    }

    /// Runs `f` on a read connection from the pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut r| r.pop());
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&inner.path)?,
            };
            let result = f(&conn);
            if let Ok(mut r) = inner.readers.lock()
                && r.len() < 16
            {
                r.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::stopped("a SQLite reader failed"))?
    }
}
