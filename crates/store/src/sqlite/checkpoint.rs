//! Keeping the SQLite WAL small without holding up sales.
//!
//! The writer never checkpoints (`wal_autocheckpoint = 0`). A thread of its own copies
//! committed pages from the WAL into the database file with PASSIVE checkpoints, which
//! never block the writer, every [`CHECKPOINT_EVERY`]: a page that several sales change
//! within that time is copied (and the database file synced) once, not once per group
//! commit, which is most of what a sale costs in bytes written.
//!
//! A PASSIVE checkpoint never lets the log start over while the writer keeps appending,
//! so under sustained load the WAL would grow without end. When it has grown past
//! [`RESET_BYTES`], the checkpointer copies what is left, then asks the writer to wait
//! between two groups ([`Pause`]) for the moment a RESTART checkpoint needs: the next
//! commit writes the log from its start, and `journal_size_limit` cuts the file back.
//! The writer waits for a sync of the database file and the last few pages, not for the
//! whole copy.

use rusqlite::Connection;
use std::sync::{Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often committed pages are copied into the database file. Longer coalesces more
/// (fewer bytes per sale) but makes each copy a larger burst for the disk, which the
/// WAL's fsyncs queue behind (a longer tail); docs/PERFORMANCE.md has the measurements.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// WAL size past which the log is started over.
pub const RESET_BYTES: i64 = 16 << 20;
/// What the WAL file is cut back to when the log starts over.
pub const WAL_FILE_LIMIT: i64 = 32 << 20;
/// The longest the writer waits for a reset, and the reset for readers still on the
/// log; past it, sales go on and the reset is tried again after [`RESET_RETRY`].
const LONGEST_PAUSE: Duration = Duration::from_millis(200);
/// How long after a reset that could not finish the next is tried.
const RESET_RETRY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct PauseState {
    /// The checkpointer wants the writer to wait.
    wanted: bool,
    /// The writer is waiting (between groups) or idle (waiting for work).
    still: bool,
}

/// Where the checkpointer and the writer meet: the writer calls [`Pause::between_groups`]
/// before each group and [`Pause::idle`] while it waits for work.
#[derive(Default)]
pub struct Pause {
    state: Mutex<PauseState>,
    changed: Condvar,
}

impl Pause {
    /// The writer is about to wait for work: a reset may run meanwhile.
    pub fn idle(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.still = true;
            self.changed.notify_all();
        }
    }

    /// The writer is about to start a group: waits while a reset runs (at most
    /// [`LONGEST_PAUSE`]).
    pub fn between_groups(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.wanted {
            s.still = true;
            self.changed.notify_all();
            let deadline = Instant::now() + LONGEST_PAUSE;
            while s.wanted {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.changed.wait_timeout(s, left) {
                    Ok((guard, _)) => s = guard,
                    Err(_) => return,
                }
            }
        }
        s.still = false;
    }

    /// Runs `f` while the writer is still (between groups or idle); runs it anyway if
    /// the writer has not come to a stop within [`LONGEST_PAUSE`] (SQLite's own locks
    /// keep it correct, and `f` then waits for the writer's group to commit).
    fn hold<T>(&self, f: impl FnOnce() -> T) -> T {
        if let Ok(mut s) = self.state.lock() {
            s.wanted = true;
            let deadline = Instant::now() + LONGEST_PAUSE;
            while !s.still {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.changed.wait_timeout(s, left) {
                    Ok((guard, _)) => s = guard,
                    Err(_) => return f(),
                }
            }
        }
        let out = f();
        if let Ok(mut s) = self.state.lock() {
            s.wanted = false;
            self.changed.notify_all();
        }
        out
    }
}

/// Checkpoints until `alive` can no longer be upgraded (the store is dropped), starting
/// the log over whenever it has grown past `reset_bytes` ([`RESET_BYTES`] in the store).
pub fn run(conn: Connection, pause: std::sync::Arc<Pause>, alive: Weak<()>, reset_bytes: i64) {
    // A RESTART checkpoint holds the writer out while it waits for readers still on the
    // old log: it waits at most as long as the writer is willing to (a long read, such
    // as verifying the ledger, makes it give up and try again later instead).
    if let Err(e) = conn.busy_timeout(LONGEST_PAUSE) {
        tracing::warn!(error = %e, "SQLite checkpointer could not set its busy timeout");
    }
    let checkpoint = |mode: &str| -> rusqlite::Result<(bool, i64)> {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get::<_, i64>(0)? != 0, r.get(1)?))
        })
    };
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap_or(4096);
    let reset_pages = reset_bytes / page_size.max(512);
    let mut next_reset = Instant::now();
    while alive.upgrade().is_some() {
        std::thread::sleep(CHECKPOINT_EVERY);
        match checkpoint("PASSIVE") {
            Ok((_, log)) if log > reset_pages && Instant::now() >= next_reset => {
                // Copy what arrived during the first pass, so the reset has little left.
                let _ = checkpoint("PASSIVE");
                let started = Instant::now();
                let reset = pause.hold(|| checkpoint("RESTART"));
                let held_us = started.elapsed().as_micros() as u64;
                match reset {
                    Ok((false, _)) => tracing::debug!(held_us, "SQLite WAL started over"),
                    Ok((true, _)) => {
                        tracing::info!(held_us, "SQLite WAL could not start over (a reader was still on it)");
                        next_reset = Instant::now() + RESET_RETRY;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, held_us, "SQLite WAL restart checkpoint failed");
                        next_reset = Instant::now() + RESET_RETRY;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A throw-away database in WAL mode, removed with its `-wal` and `-shm` files when
    /// dropped.
    struct TempWal(std::path::PathBuf);

    impl TempWal {
        fn new() -> TempWal {
            TempWal(std::env::temp_dir().join(format!("tally-checkpoint-{}.db", crate::keys::new_id("t"))))
        }

        fn open(&self) -> Connection {
            let c = Connection::open(&self.0).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                .unwrap();
            c
        }

        /// A checkpointer on its own connection, resetting past `reset_bytes`; it stops
        /// once the returned `Arc<()>` is dropped.
        fn checkpointer(&self, reset_bytes: i64) -> (Arc<Pause>, Arc<()>, std::thread::JoinHandle<()>) {
            let (pause, alive) = (Arc::new(Pause::default()), Arc::new(()));
            let (p, token, conn) = (pause.clone(), Arc::downgrade(&alive), self.open());
            let handle = std::thread::spawn(move || run(conn, p, token, reset_bytes));
            (pause, alive, handle)
        }
    }

    impl Drop for TempWal {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    /// A writer that never stops (a group after a group, as under sustained load) still
    /// sees its WAL started over and cut back: the file stays bounded while many times
    /// its size is written through it.
    #[test]
    fn the_wal_stays_bounded_under_a_writer_that_never_stops() {
        let db = TempWal::new();
        let writer = db.open();
        writer
            .execute_batch(
                "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 262144;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v BLOB NOT NULL);
                 CREATE INDEX t_k ON t (k);",
            )
            .unwrap();
        let (pause, alive, checkpointer) = db.checkpointer(256 << 10);
        let wal = std::path::PathBuf::from(format!("{}-wal", db.0.display()));
        let (mut largest, mut written, mut x) = (0u64, 0u64, 1u64);
        // Past 48 MiB of rows, a WAL never started over would hold more than that.
        let deadline = Instant::now() + Duration::from_secs(60);
        while written < 48 << 20 && Instant::now() < deadline {
            pause.between_groups();
            let tx = writer.unchecked_transaction().unwrap();
            for _ in 0..20 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                tx.execute("INSERT INTO t (k, v) VALUES (?1, zeroblob(300))", [(x >> 33) as i64])
                    .unwrap();
                written += 300;
            }
            tx.commit().unwrap();
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        drop(alive);
        checkpointer.join().unwrap();
        assert!(
            written >= 48 << 20,
            "the writer wrote too little to tell: {written} bytes"
        );
        // Between two checks the log grows by what the writer appends in
        // CHECKPOINT_EVERY; without the resets it would hold everything written.
        assert!(largest < 24 << 20, "the WAL grew to {largest} bytes");
    }

    /// A reader that stays on the old log (a long report) keeps the WAL from starting
    /// over, but never holds the writer more than a moment: the reset gives up and is
    /// tried again later.
    #[test]
    fn a_long_reader_never_stalls_the_writer() {
        let db = TempWal::new();
        let writer = db.open();
        writer
            .execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (v BLOB NOT NULL);")
            .unwrap();
        writer.execute("INSERT INTO t (v) VALUES (zeroblob(100))", []).unwrap();
        let reader = db.open();
        reader.execute_batch("BEGIN; SELECT COUNT(*) FROM t;").unwrap();
        let (pause, alive, checkpointer) = db.checkpointer(64 << 10);
        let mut slowest = Duration::ZERO;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let started = Instant::now();
            pause.between_groups();
            let tx = writer.unchecked_transaction().unwrap();
            for _ in 0..20 {
                tx.execute("INSERT INTO t (v) VALUES (zeroblob(300))", []).unwrap();
            }
            tx.commit().unwrap();
            slowest = slowest.max(started.elapsed());
        }
        reader.execute_batch("COMMIT").unwrap();
        drop(alive);
        checkpointer.join().unwrap();
        assert!(slowest < Duration::from_secs(2), "the writer was held {slowest:?}");
    }

    /// The writer waits between groups while a reset runs, and not after it.
    #[test]
    fn the_writer_waits_between_groups_only_while_a_reset_runs() {
        let pause = Arc::new(Pause::default());
        pause.between_groups(); // nothing wanted: returns at once
        let p = pause.clone();
        let (started, release) = (
            Arc::new(std::sync::Barrier::new(2)),
            Arc::new(std::sync::Barrier::new(2)),
        );
        let (s, r) = (started.clone(), release.clone());
        let reset = std::thread::spawn(move || {
            p.hold(|| {
                s.wait();
                r.wait();
                std::thread::sleep(Duration::from_millis(30));
            })
        });
        // The reset starts at once: the writer has said it is idle between groups.
        pause.idle();
        started.wait();
        release.wait();
        let waited = Instant::now();
        pause.between_groups();
        assert!(
            waited.elapsed() >= Duration::from_millis(20),
            "the writer did not wait for the reset"
        );
        reset.join().unwrap();
        let again = Instant::now();
        pause.between_groups();
        assert!(again.elapsed() < Duration::from_millis(20));
    }
}
