//! Fresh databases for tests: every storage test runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL tests use `TALLY_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and a schema of their own, dropped when the test's [`TestDb`] is dropped. Where no
//! server answers, [`TestDb::postgres`] returns `None` and the test passes without
//! running, unless `TALLY_REQUIRE_PG=1` (as in CI), where it fails. The `scripts/test`
//! command says plainly which halves ran.

use crate::Store;

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store on a database made for one test; dropping it removes the database.
pub struct TestDb {
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Schema { url: String, schema: String },
}

fn tag() -> String {
    crate::keys::random_bytes::<6>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn pg_url() -> String {
    std::env::var("TALLY_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

fn pg_required() -> bool {
    std::env::var("TALLY_REQUIRE_PG").is_ok_and(|v| v == "1")
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let path = std::env::temp_dir().join(format!("tally-test-{}.db", tag()));
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("open a SQLite test database");
        TestDb {
            store,
            cleanup: Cleanup::File(path),
        }
    }

    /// A store in a fresh PostgreSQL schema, or `None` when no server answers (and it
    /// is not required).
    pub async fn postgres() -> Option<TestDb> {
        let url = pg_url();
        let schema = format!("t_{}", tag());
        match Store::connect_postgres_schema(&url, &schema).await {
            Ok(store) => Some(TestDb {
                store,
                cleanup: Cleanup::Schema { url, schema },
            }),
            Err(e) if pg_required() => panic!("TALLY_REQUIRE_PG=1 but PostgreSQL at {url} failed: {e}"),
            Err(e) => {
                eprintln!("PostgreSQL not reachable ({e}): this PostgreSQL test did not run");
                None
            }
        }
    }

    /// SQLite only (`false` on PostgreSQL): caps the database at its current size plus
    /// `extra_pages` pages, or lifts the cap with `None`. Writes past the cap fail as on
    /// a full disk.
    pub async fn cap_sqlite_growth(&self, extra_pages: Option<i64>) -> bool {
        match &self.store {
            Store::Sqlite(s) => {
                s.cap_growth(extra_pages).await.expect("cap the SQLite database");
                true
            }
            Store::Postgres(_) => false,
        }
    }

    /// The PostgreSQL schema this test database lives in.
    pub fn schema(&self) -> Option<&str> {
        match &self.cleanup {
            Cleanup::Schema { schema, .. } => Some(schema),
            Cleanup::File(_) => None,
        }
    }

    /// Both backends: SQLite always, PostgreSQL when reachable.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        dbs.extend(TestDb::postgres().await);
        dbs
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Schema { url, schema } => {
                let (url, schema) = (url.clone(), schema.clone());
                // Drop cannot await: a short-lived thread with its own runtime does it.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        use sqlx::Connection;
                        let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                        sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&mut conn)
                            .await
                            .ok()
                    })
                })
                .join();
            }
        }
    }
}
