//! The SQLite backend: one writer thread with group commit, and a pool of readers.
//!
//! Every write is a job sent to the writer thread. The writer takes all jobs waiting
//! (up to [`MAX_GROUP`]), runs them in one `BEGIN IMMEDIATE` transaction, each inside its
//! own savepoint so one refused request does not undo the others, then commits once:
//! one fsync for the whole group (`synchronous=FULL`). Only after the commit does any
//! caller get its answer, so a 2xx always means durable. Reads run on separate
//! connections, which WAL lets proceed while the writer writes.

mod ops;
mod rules;

use crate::StoreError;
use crate::migrations;
use crate::model::*;
use jiff::Timestamp;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tally_domain::earning::FxRates;
use tally_domain::identity::Identity;
use tally_domain::plan::MemberState;
use tokio::sync::oneshot;

/// The most jobs one group transaction takes.
const MAX_GROUP: usize = 4096;
/// Members the expiry run settles per writer job, so the POS path is never held up long.
const SETTLE_CHUNK: u32 = 200;

/// A write waiting for the writer thread. `run` may be called twice: once in a group,
/// and again alone if the group had to be rolled back.
trait WriteJob: Send {
    /// Runs the job; true when it failed on the database itself (it may have written
    /// part of its rows, so the group must be rolled back). A job refused for any other
    /// reason has written nothing: every job checks before it writes.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the job's transaction has committed, or failed to.
    fn reply(self: Box<Self>, committed: Result<(), StoreError>);
}

struct TypedJob<T, F> {
    work: F,
    result: Option<Result<T, StoreError>>,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send, F: Fn(&Connection) -> Result<T, StoreError> + Send> WriteJob for TypedJob<T, F> {
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.work)(conn);
        let failed = matches!(result, Err(StoreError::Database(_)));
        self.result = Some(result);
        failed
    }

    fn reply(self: Box<Self>, committed: Result<(), StoreError>) {
        let result = self
            .result
            .unwrap_or_else(|| Err(StoreError::Database("the job did not run".into())));
        let _ = self.answer.send(committed.and(result));
    }
}

type Job = Box<dyn WriteJob>;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Vec<Job>>>,
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

/// WAL pages past which the checkpointer also resets the log (briefly holding writers).
const WAL_RESET_PAGES: i64 = 8192;

/// Copies committed pages from the WAL into the database file while the writer goes on
/// (PASSIVE checkpoints never block it). When the WAL has grown past
/// [`WAL_RESET_PAGES`], a RESTART checkpoint lets the next commit write the log from its
/// start again; by then almost everything is copied, so the writer waits only briefly.
/// Ends when the store is dropped.
fn run_checkpointer(conn: Connection, alive: std::sync::Weak<()>) {
    let checkpoint = |mode: &str| -> rusqlite::Result<(i64, i64)> {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })
    };
    while alive.upgrade().is_some() {
        std::thread::sleep(std::time::Duration::from_millis(10));
        match checkpoint("PASSIVE") {
            Ok((log, _)) if log > WAL_RESET_PAGES => {
                if let Err(e) = checkpoint("RESTART") {
                    tracing::warn!(error = %e, "SQLite WAL restart checkpoint failed");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "SQLite checkpoint failed; the checkpointer stops");
                return;
            }
        }
    }
}

fn run_writer(conn: Connection, rx: mpsc::Receiver<Vec<Job>>) {
    while let Ok(mut jobs) = rx.recv() {
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(more) => jobs.extend(more),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let size = jobs.len();
        let grouped = conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)
            .and_then(|_| {
                let mut failed = false;
                for job in jobs.iter_mut() {
                    if job.run(&conn) {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    return Err(StoreError::Database("a job failed on the database".into()));
                }
                let worked = started.elapsed();
                conn.execute_batch("COMMIT")?;
                tracing::debug!(
                    size,
                    work_us = worked.as_micros() as u64,
                    total_us = started.elapsed().as_micros() as u64,
                    "SQLite group"
                );
                Ok(())
            });
        match grouped {
            Ok(()) => jobs.into_iter().for_each(|job| job.reply(Ok(()))),
            Err(e) => {
                tracing::warn!(error = %e, size, "SQLite group rolled back; running its jobs one by one");
                let _ = conn.execute_batch("ROLLBACK");
                for mut job in jobs {
                    let alone = conn
                        .execute_batch("BEGIN IMMEDIATE")
                        .map_err(StoreError::from)
                        .and_then(|_| {
                            if job.run(&conn) {
                                let _ = conn.execute_batch("ROLLBACK");
                                return Ok(());
                            }
                            conn.execute_batch("COMMIT").map_err(StoreError::from)
                        });
                    if alone.is_err() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    job.reply(alone);
                }
            }
        }
    }
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
        .map_err(|e| StoreError::Database(e.to_string()))??;
        // The writer never checkpoints; a thread of its own does, off the POS path.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let checkpointer = open_connection(&path)?;
        let alive = Arc::new(());
        let token = Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name("tally-sqlite-checkpoint".into())
            .spawn(move || run_checkpointer(checkpointer, token))
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tally-sqlite-writer".into())
            .spawn(move || run_writer(conn, rx))
            .map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(tx),
                readers: Mutex::new(Vec::new()),
                _alive: alive,
            }),
        })
    }

    fn job<T: Send + 'static>(
        work: impl Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> (Job, oneshot::Receiver<Result<T, StoreError>>) {
        let (answer, rx) = oneshot::channel();
        (
            Box::new(TypedJob {
                work,
                result: None,
                answer,
            }),
            rx,
        )
    }

    fn send(&self, jobs: Vec<Job>) -> Result<(), StoreError> {
        self.inner
            .writer
            .lock()
            .map_err(|_| StoreError::Database("writer lock poisoned".into()))?
            .send(jobs)
            .map_err(|_| StoreError::Database("the SQLite writer has stopped".into()))
    }

    /// Runs `f` in the writer's next group transaction and answers after the commit.
    async fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (job, rx) = Self::job(f);
        self.send(vec![job])?;
        rx.await
            .map_err(|_| StoreError::Database("the SQLite writer dropped a job".into()))?
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
        .map_err(|e| StoreError::Database(e.to_string()))?
    }

    pub async fn program(&self) -> Result<ProgramRow, StoreError> {
        self.read(ops::program).await
    }

    pub async fn update_program(&self, update: ProgramUpdate) -> Result<ProgramRow, StoreError> {
        self.write(move |c| ops::update_program(c, &update)).await
    }

    pub async fn admin_key_hash(&self) -> Result<Option<String>, StoreError> {
        self.read(|c| Ok(c.query_row("SELECT admin_key_hash FROM program WHERE id = 1", [], |r| r.get(0))?))
            .await
    }

    pub async fn set_admin_key_hash(&self, hash: String) -> Result<(), StoreError> {
        self.write(move |c| {
            Ok(
                c.execute("UPDATE program SET admin_key_hash = ?1 WHERE id = 1", [&hash])
                    .map(|_| ())?,
            )
        })
        .await
    }

    pub async fn fx_rates(&self) -> Result<FxRates, StoreError> {
        crate::common::fx_rates_from_rows(self.read(ops::fx_rates).await?)
    }

    pub async fn put_fx_rates(&self, rates: FxRates, now: Timestamp) -> Result<(), StoreError> {
        self.write(move |c| {
            for (code, rate) in rates.iter() {
                ops::put_fx_rate(c, code, &rate.to_string(), now)?;
            }
            Ok(())
        })
        .await
    }

    pub async fn create_partner(&self, partner: PartnerRow) -> Result<PartnerRow, StoreError> {
        self.write(move |c| ops::create_partner(c, &partner).map(|_| partner.clone()))
            .await
    }

    pub async fn partners(&self) -> Result<Vec<PartnerRow>, StoreError> {
        self.read(ops::partners).await
    }

    pub async fn partner(&self, id: String) -> Result<Option<PartnerRow>, StoreError> {
        self.read(move |c| ops::partner(c, &id)).await
    }

    pub async fn create_location(&self, location: LocationRow) -> Result<LocationRow, StoreError> {
        self.write(move |c| ops::create_location(c, &location).map(|_| location.clone()))
            .await
    }

    pub async fn locations(&self, partner_id: String) -> Result<Vec<LocationRow>, StoreError> {
        self.read(move |c| ops::locations(c, &partner_id)).await
    }

    pub async fn create_api_key(&self, key: ApiKeyRow) -> Result<(), StoreError> {
        self.write(move |c| ops::create_api_key(c, &key)).await
    }

    pub async fn api_key_partner(&self, hash: String) -> Result<Option<String>, StoreError> {
        self.read(move |c| ops::api_key_partner(c, &hash)).await
    }

    pub async fn create_member(&self, member: NewMember) -> Result<MemberRow, StoreError> {
        self.write(move |c| {
            ops::create_member(c, &member)?;
            ops::member(c, &member.id)?.ok_or(StoreError::NotFound("member"))
        })
        .await
    }

    pub async fn member(&self, id: String) -> Result<Option<MemberRow>, StoreError> {
        self.read(move |c| ops::member(c, &id)).await
    }

    pub async fn lookup_member(&self, identity: Identity) -> Result<Option<MemberRow>, StoreError> {
        self.read(move |c| match ops::member_id_by_identity(c, &identity)? {
            Some(id) => ops::member(c, &id),
            None => Ok(None),
        })
        .await
    }

    pub async fn activity(&self, query: ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
        self.read(move |c| ops::activity(c, &query)).await
    }

    pub async fn post_purchase(&self, cmd: PurchaseCmd) -> Result<Posted, StoreError> {
        self.write(move |c| ops::post_purchase(c, &cmd)).await
    }

    pub async fn post_purchases(&self, cmds: Vec<PurchaseCmd>) -> Vec<Result<Posted, StoreError>> {
        let (jobs, receivers): (Vec<Job>, Vec<_>) = cmds
            .into_iter()
            .map(|cmd| Self::job(move |c| ops::post_purchase(c, &cmd)))
            .unzip();
        if let Err(e) = self.send(jobs) {
            let msg = e.to_string();
            return receivers
                .iter()
                .map(|_| Err(StoreError::Database(msg.clone())))
                .collect();
        }
        let mut out = Vec::with_capacity(receivers.len());
        for rx in receivers {
            out.push(
                rx.await
                    .unwrap_or_else(|_| Err(StoreError::Database("the SQLite writer dropped a job".into()))),
            );
        }
        out
    }

    pub async fn member_state(&self, member: MemberRef) -> Result<MemberState, StoreError> {
        self.read(move |c| {
            let id = ops::resolve_member(c, &member)?;
            Ok(ops::load_state(c, &id, true)?.0)
        })
        .await
    }

    pub async fn post_return(&self, cmd: ReturnCmd) -> Result<Posted, StoreError> {
        self.write(move |c| ops::post_return(c, &cmd)).await
    }

    pub async fn save_rule(
        &self,
        id: String,
        partner_id: Option<String>,
        spec_json: String,
        now: Timestamp,
    ) -> Result<RuleRow, StoreError> {
        self.write(move |c| {
            rules::save_rule(c, &id, partner_id.as_deref(), &spec_json, now)?;
            rules::rule(c, &id)?.ok_or(StoreError::NotFound("rule"))
        })
        .await
    }

    pub async fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        self.read(rules::rules).await
    }

    pub async fn rule(&self, id: String) -> Result<Option<RuleRow>, StoreError> {
        self.read(move |c| rules::rule(c, &id)).await
    }

    pub async fn rule_versions(&self, id: String) -> Result<Vec<(i64, String, Timestamp)>, StoreError> {
        self.read(move |c| rules::rule_versions(c, &id)).await
    }

    pub async fn set_member_profile(&self, id: String, profile: MemberProfile) -> Result<MemberRow, StoreError> {
        self.write(move |c| {
            rules::set_profile(c, &id, &profile)?;
            ops::member(c, &id)?.ok_or(StoreError::NotFound("member"))
        })
        .await
    }

    pub async fn member_facts(
        &self,
        member: MemberRef,
        partner_id: Option<String>,
    ) -> Result<Option<tally_domain::rules::MemberFacts>, StoreError> {
        self.read(move |c| rules::member_facts(c, &member, partner_id.as_deref()))
            .await
    }

    pub async fn rule_counters(&self, keys: Vec<String>) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        self.read(move |c| rules::counters(c, &keys)).await
    }

    pub async fn event_types(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(rules::event_types).await
    }

    pub async fn create_event_type(
        &self,
        name: String,
        description: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |c| rules::create_event_type(c, &name, &description, now))
            .await
    }

    pub async fn post_event(&self, cmd: EventCmd) -> Result<Posted, StoreError> {
        self.write(move |c| rules::post_event(c, &cmd)).await
    }

    pub async fn events(
        &self,
        member_id: String,
        partner_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        self.read(move |c| rules::events(c, &member_id, partner_id.as_deref(), limit))
            .await
    }

    pub async fn transaction(&self, id: String) -> Result<Option<TransactionRow>, StoreError> {
        self.read(move |c| ops::transaction(c, &id)).await
    }

    pub async fn settle_member(&self, member_id: String, now: Timestamp) -> Result<(), StoreError> {
        self.write(move |c| ops::settle_member(c, &member_id, now).map(|_| ()))
            .await
    }

    pub async fn settle_due(&self, now: Timestamp, limit: u32) -> Result<SettleReport, StoreError> {
        let mut report = SettleReport::default();
        while report.members_settled < u64::from(limit) {
            let chunk = SETTLE_CHUNK.min(limit - report.members_settled as u32);
            let part = self
                .write(move |c| {
                    let mut part = SettleReport::default();
                    for id in ops::due_members(c, now, chunk)? {
                        let (matured, expired) = ops::settle_member(c, &id, now)?;
                        part.members_settled += 1;
                        part.points_matured += matured;
                        part.points_expired += expired;
                    }
                    Ok(part)
                })
                .await?;
            report.members_settled += part.members_settled;
            report.points_matured += part.points_matured;
            report.points_expired += part.points_expired;
            if part.members_settled < u64::from(chunk) {
                break;
            }
        }
        Ok(report)
    }

    pub async fn verify_ledger(&self) -> Result<Verification, StoreError> {
        // One read transaction so entries and balances are one consistent snapshot.
        self.read(|c| {
            c.execute_batch("BEGIN")?;
            let v = ops::verify(c);
            c.execute_batch("COMMIT")?;
            v
        })
        .await
    }

    pub async fn idempotent_response(
        &self,
        principal: String,
        key: String,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.read(move |c| ops::idempotent_response(c, &principal, &key)).await
    }

    pub async fn save_idempotent_response(
        &self,
        principal: String,
        key: String,
        response: StoredResponse,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(move |c| ops::save_idempotent_response(c, &principal, &key, &response, now))
            .await
    }

    pub async fn counts(&self) -> Result<Counts, StoreError> {
        self.read(ops::counts).await
    }
}
