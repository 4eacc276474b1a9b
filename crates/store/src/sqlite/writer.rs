//! The SQLite writer: one thread, a bounded queue, group commit, and no job committed
//! after it failed.
//!
//! The writer takes every job waiting (up to [`MAX_GROUP`]) and runs them in one
//! `BEGIN IMMEDIATE` transaction, then commits once: one fsync for the whole group
//! (`synchronous=FULL`). Only after the commit does any caller get its answer, so a 2xx
//! always means durable.
//!
//! A job that fails at any point, before or after it wrote, never has its rows
//! committed: the writer compares SQLite's change counter before and after each job. A
//! job refused before it wrote (every decision is made before the first write, so
//! this is the normal case) leaves the group untouched; one that failed after writing
//! fails the group, and every job runs again alone in a transaction of its own, the
//! failed one rolled back. The same happens when the group cannot commit, or SQLite
//! abandoned the transaction (a full disk). A savepoint per job would give the same
//! guarantee but cost 8–10% of sales per second on this machine (each savepoint copies
//! the pages a sale touches into its journal); see docs/PERFORMANCE.md.

use super::checkpoint::Pause;
use crate::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use std::sync::{Arc, mpsc};
use tokio::sync::oneshot;

/// The most jobs one group transaction takes.
const MAX_GROUP: usize = 4096;
/// Requests (a job, or a batch's jobs) waiting for the writer before new ones are
/// refused with `Overloaded`.
pub const QUEUE_CAPACITY: usize = 8192;

/// A write waiting for the writer thread. `run` may be called twice: once in a group,
/// and again alone if the group could not commit.
pub trait WriteJob: Send {
    /// Runs the job inside a savepoint; false when it failed (the writer then rolls the
    /// savepoint back, undoing whatever the job wrote).
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
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn reply(self: Box<Self>, committed: Result<(), StoreError>) {
        let result = self
            .result
            .unwrap_or_else(|| Err(StoreError::stopped("the job did not run")));
        let _ = self.answer.send(committed.and(result));
    }
}

pub type Job = Box<dyn WriteJob>;

/// A job for `work`, and where its answer arrives.
pub fn job<T: Send + 'static>(
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

/// The writer's end of the queue.
pub struct Queue(mpsc::SyncSender<Vec<Job>>);

impl Queue {
    /// Queues jobs for the writer, waiting for room (up to about 5 s) when it is full:
    /// for bookkeeping that must not be lost to a burst of sales.
    pub async fn send_waiting(&self, mut jobs: Vec<Job>) -> Result<(), StoreError> {
        for _ in 0..500 {
            match self.0.try_send(jobs) {
                Ok(()) => return Ok(()),
                Err(mpsc::TrySendError::Full(back)) => jobs = back,
                Err(mpsc::TrySendError::Disconnected(_)) => {
                    return Err(StoreError::stopped("the SQLite writer has stopped"));
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err(StoreError::Overloaded)
    }

    /// Queues jobs for the writer; `Overloaded` (and nothing queued) when it is full.
    pub fn send(&self, jobs: Vec<Job>) -> Result<(), StoreError> {
        self.0.try_send(jobs).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => StoreError::Overloaded,
            mpsc::TrySendError::Disconnected(_) => StoreError::stopped("the SQLite writer has stopped"),
        })
    }
}

/// Starts the writer thread on `conn`; it ends when every [`Queue`] is dropped. It stops
/// between groups when the checkpointer asks through `pause`.
pub fn start(conn: Connection, pause: Arc<Pause>) -> Result<Queue, StoreError> {
    start_with_capacity(conn, QUEUE_CAPACITY, pause)
}

fn start_with_capacity(conn: Connection, capacity: usize, pause: Arc<Pause>) -> Result<Queue, StoreError> {
    let (tx, rx) = mpsc::sync_channel(capacity);
    std::thread::Builder::new()
        .name("tally-sqlite-writer".into())
        .spawn(move || run(conn, rx, &pause))
        .map_err(|_| StoreError::stopped("the SQLite writer thread could not start"))?;
    Ok(Queue(tx))
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Vec<Job>>, pause: &Pause) {
    loop {
        let mut jobs = match rx.try_recv() {
            Ok(jobs) => jobs,
            Err(mpsc::TryRecvError::Disconnected) => return,
            Err(mpsc::TryRecvError::Empty) => {
                pause.idle();
                match rx.recv() {
                    Ok(jobs) => jobs,
                    Err(_) => return,
                }
            }
        };
        pause.between_groups();
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(more) => jobs.extend(more),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let size = jobs.len();
        match run_group(&mut conn, &mut jobs) {
            Ok(()) => {
                tracing::debug!(size, total_us = started.elapsed().as_micros() as u64, "SQLite group");
                jobs.into_iter().for_each(|job| job.reply(Ok(())));
            }
            Err(e) => {
                tracing::warn!(error = %e, size, "SQLite group could not commit; running its jobs one by one");
                for mut job in jobs {
                    let alone = run_alone(&mut conn, &mut job);
                    job.reply(alone);
                }
            }
        }
    }
}

/// Runs `jobs` in one transaction and commits. A job that failed having written
/// nothing leaves the group as it was; one that failed after it wrote (the change
/// counter moved) fails the group, which then runs job by job, so its rows are never
/// committed with the others.
fn run_group(conn: &mut Connection, jobs: &mut [Job]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in jobs.iter_mut() {
        let before = tx.total_changes();
        if !job.run(&tx) && tx.total_changes() != before {
            return Err(StoreError::stopped("a job failed after it wrote"));
        }
        if tx.is_autocommit() {
            // SQLite ended the transaction itself (a full disk, an I/O error).
            return Err(StoreError::stopped("SQLite abandoned the group transaction"));
        }
    }
    tx.commit()?;
    Ok(())
}

/// Runs one job in a transaction of its own: committed if it succeeded, rolled back
/// (whatever it wrote) if it failed; the job answers with its own result either way.
fn run_alone(conn: &mut Connection, job: &mut Job) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if job.run(&tx) {
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_domain::DomainError;

    fn temp_db() -> (std::path::PathBuf, Connection) {
        let path = std::env::temp_dir().join(format!("tally-writer-{}.db", crate::keys::new_id("t")));
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        (path, conn)
    }

    fn rows(path: &std::path::Path) -> Vec<i64> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn insert(x: i64, refuse_after: bool) -> (Job, oneshot::Receiver<Result<(), StoreError>>) {
        job(move |c| {
            c.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
            if refuse_after {
                return Err(DomainError::Stale.into());
            }
            Ok(())
        })
    }

    #[tokio::test]
    async fn a_job_refused_after_it_wrote_is_rolled_back_alone() {
        let (path, conn) = temp_db();
        let queue = start(conn, Arc::default()).unwrap();
        let (a, ra) = insert(1, false);
        let (b, rb) = insert(2, true);
        let (c, rc) = insert(3, false);
        // One send: the three jobs run in one group transaction.
        queue.send(vec![a, b, c]).unwrap();
        assert!(ra.await.unwrap().is_ok());
        assert!(matches!(rb.await.unwrap(), Err(StoreError::Domain(DomainError::Stale))));
        assert!(rc.await.unwrap().is_ok());
        assert_eq!(rows(&path), vec![1, 3]);
        drop(queue);
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_queues_nothing() {
        let (path, conn) = temp_db();
        let queue = start_with_capacity(conn, 1, Arc::default()).unwrap();
        // Hold the writer busy until released.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = std::sync::Mutex::new(wait);
        let (busy, busy_done) = job(move |_| {
            let _ = wait.lock().unwrap().recv();
            Ok(())
        });
        queue.send(vec![busy]).unwrap();
        // The writer may not have taken the busy job yet: fill until refused.
        let mut answers = Vec::new();
        let mut refused = None;
        for x in 0..10 {
            let (j, r) = insert(x, false);
            match queue.send(vec![j]) {
                Ok(()) => answers.push(r),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        assert!(matches!(refused, Some(StoreError::Overloaded)), "{refused:?}");
        assert!(answers.len() <= 2, "at most the queue's capacity and the taken job");
        release.send(()).unwrap();
        assert!(busy_done.await.unwrap().is_ok());
        let queued = answers.len();
        for r in answers {
            assert!(r.await.unwrap().is_ok());
        }
        assert_eq!(rows(&path).len(), queued, "only what was queued was written");
        drop(queue);
        let _ = std::fs::remove_file(&path);
    }
}
