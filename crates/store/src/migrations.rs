//! Migrations embedded in the binary, one folder per backend; applied at start, in order,
//! each in its own transaction, recorded in `tally_migrations`. Never edit a landed one.

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "core",
        sql: include_str!("../migrations/sqlite/0001_core.sql"),
    },
    Migration {
        version: 2,
        name: "rules",
        sql: include_str!("../migrations/sqlite/0002_rules.sql"),
    },
    Migration {
        version: 3,
        name: "no secrets at rest",
        sql: include_str!("../migrations/sqlite/0003_no_secrets_at_rest.sql"),
    },
    Migration {
        version: 4,
        name: "keys and consents",
        sql: include_str!("../migrations/sqlite/0004_keys_and_consents.sql"),
    },
    Migration {
        version: 5,
        name: "clustered counters",
        sql: include_str!("../migrations/sqlite/0005_clustered_counters.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "core",
        sql: include_str!("../migrations/postgres/0001_core.sql"),
    },
    Migration {
        version: 2,
        name: "rules",
        sql: include_str!("../migrations/postgres/0002_rules.sql"),
    },
    Migration {
        version: 3,
        name: "no secrets at rest",
        sql: include_str!("../migrations/postgres/0003_no_secrets_at_rest.sql"),
    },
    Migration {
        version: 4,
        name: "keys and consents",
        sql: include_str!("../migrations/postgres/0004_keys_and_consents.sql"),
    },
];

pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tally_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";
