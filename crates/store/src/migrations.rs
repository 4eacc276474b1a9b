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
    Migration {
        version: 6,
        name: "member-first cap keys",
        sql: include_str!("../migrations/sqlite/0006_member_first_cap_keys.sql"),
    },
    Migration {
        version: 7,
        name: "tiers",
        sql: include_str!("../migrations/sqlite/0007_tiers.sql"),
    },
    Migration {
        version: 8,
        name: "memberships",
        sql: include_str!("../migrations/sqlite/0008_memberships.sql"),
    },
    Migration {
        version: 9,
        name: "wallets",
        sql: include_str!("../migrations/sqlite/0009_wallets.sql"),
    },
    Migration {
        version: 10,
        name: "rewards",
        sql: include_str!("../migrations/sqlite/0010_rewards.sql"),
    },
    Migration {
        version: 11,
        name: "transfers",
        sql: include_str!("../migrations/sqlite/0011_transfers.sql"),
    },
    Migration {
        version: 12,
        name: "exchange",
        sql: include_str!("../migrations/sqlite/0012_exchange.sql"),
    },
    Migration {
        version: 13,
        name: "referral links",
        sql: include_str!("../migrations/sqlite/0013_referral_links.sql"),
    },
    Migration {
        version: 14,
        name: "referrals",
        sql: include_str!("../migrations/sqlite/0014_referrals.sql"),
    },
    Migration {
        version: 15,
        name: "challenges",
        sql: include_str!("../migrations/sqlite/0015_challenges.sql"),
    },
    Migration {
        version: 16,
        name: "funding",
        sql: include_str!("../migrations/sqlite/0016_funding.sql"),
    },
    Migration {
        version: 17,
        name: "settlement",
        sql: include_str!("../migrations/sqlite/0017_settlement.sql"),
    },
    Migration {
        version: 18,
        name: "web",
        sql: include_str!("../migrations/sqlite/0018_web.sql"),
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
    Migration {
        version: 5,
        name: "member-first cap keys",
        sql: include_str!("../migrations/postgres/0005_member_first_cap_keys.sql"),
    },
    Migration {
        version: 6,
        name: "tiers",
        sql: include_str!("../migrations/postgres/0006_tiers.sql"),
    },
    Migration {
        version: 7,
        name: "memberships",
        sql: include_str!("../migrations/postgres/0007_memberships.sql"),
    },
    Migration {
        version: 8,
        name: "wallets",
        sql: include_str!("../migrations/postgres/0008_wallets.sql"),
    },
    Migration {
        version: 9,
        name: "rewards",
        sql: include_str!("../migrations/postgres/0009_rewards.sql"),
    },
    Migration {
        version: 10,
        name: "transfers",
        sql: include_str!("../migrations/postgres/0010_transfers.sql"),
    },
    Migration {
        version: 11,
        name: "exchange",
        sql: include_str!("../migrations/postgres/0011_exchange.sql"),
    },
    Migration {
        version: 12,
        name: "referral links",
        sql: include_str!("../migrations/postgres/0012_referral_links.sql"),
    },
    Migration {
        version: 13,
        name: "referrals",
        sql: include_str!("../migrations/postgres/0013_referrals.sql"),
    },
    Migration {
        version: 14,
        name: "challenges",
        sql: include_str!("../migrations/postgres/0014_challenges.sql"),
    },
    Migration {
        version: 15,
        name: "funding",
        sql: include_str!("../migrations/postgres/0015_funding.sql"),
    },
    Migration {
        version: 16,
        name: "settlement",
        sql: include_str!("../migrations/postgres/0016_settlement.sql"),
    },
    Migration {
        version: 17,
        name: "web",
        sql: include_str!("../migrations/postgres/0017_web.sql"),
    },
];

pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tally_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

#[cfg(test)]
mod tests {
    //! Migrations that move data: each applied to a database in the state the one
    //! before it left, with rows in the old form, on both backends.
    use super::*;

    const OLD_CAP: &str = "rul_01x:cap:day:2026-11-28:mem_01a";
    const NEW_CAP: &str = "mem_01a:day:2026-11-28:rul_01x";
    const OLD_CAMPAIGN: &str = "rul_01y:cap:campaign:all:mem_01b";
    const NEW_CAMPAIGN: &str = "mem_01b:campaign:all:rul_01y";
    const BUDGET: &str = "rul_01x:budget";

    fn keys(json: &str) -> Vec<String> {
        serde_json::from_str(json).expect("counter_keys is a JSON array of strings")
    }

    #[test]
    fn sqlite_cap_keys_move_to_member_first_and_keep_their_counts() {
        let version = 6;
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        for m in SQLITE.iter().filter(|m| m.version < version) {
            conn.execute_batch(m.sql).unwrap();
        }
        conn.execute_batch(&format!(
            "INSERT INTO rule_counters (key, used) VALUES ('{OLD_CAP}', 70), ('{OLD_CAMPAIGN}', 300), ('{BUDGET}', 9000);
             INSERT INTO rule_awards (transaction_id, rule_id, rule_version, points, counter_keys)
             VALUES ('txn_1', 'rul_01x', 1, 70, '[\"{OLD_CAP}\",\"{BUDGET}\"]'),
                    ('txn_2', 'rul_01z', 1, 5, '[\"{BUDGET}\"]');"
        ))
        .unwrap();
        let tx = conn.transaction().unwrap();
        let m = SQLITE.iter().find(|m| m.version == version).unwrap();
        tx.execute_batch(m.sql).unwrap();
        tx.commit().unwrap();

        let mut counters: Vec<(String, i64)> = conn
            .prepare("SELECT key, used FROM rule_counters ORDER BY key")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        counters.sort();
        assert_eq!(
            counters,
            vec![
                (NEW_CAP.to_string(), 70),
                (NEW_CAMPAIGN.to_string(), 300),
                (BUDGET.to_string(), 9000)
            ]
        );
        let saved = |t: &str| -> String {
            conn.query_row(
                "SELECT counter_keys FROM rule_awards WHERE transaction_id = ?1",
                [t],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(keys(&saved("txn_1")), vec![NEW_CAP, BUDGET]);
        assert_eq!(keys(&saved("txn_2")), vec![BUDGET]);
    }

    #[tokio::test]
    async fn postgres_cap_keys_move_to_member_first_and_keep_their_counts() {
        use sqlx::{Connection, Row};
        let version = 5;
        let url = crate::testing::pg_url();
        let mut conn = match sqlx::PgConnection::connect(&url).await {
            Ok(c) => c,
            Err(e) if std::env::var("TALLY_REQUIRE_PG").is_ok_and(|v| v == "1") => {
                panic!("TALLY_REQUIRE_PG=1 but PostgreSQL at {url} failed: {e}")
            }
            Err(e) => {
                eprintln!("PostgreSQL not reachable ({e}): this PostgreSQL test did not run");
                return;
            }
        };
        let schema = format!("t_mig_{}", std::process::id());
        sqlx::raw_sql(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        for m in POSTGRES.iter().filter(|m| m.version < version) {
            sqlx::raw_sql(m.sql).execute(&mut conn).await.unwrap();
        }
        sqlx::raw_sql(&format!(
            "INSERT INTO rule_counters (key, used) VALUES ('{OLD_CAP}', 70), ('{OLD_CAMPAIGN}', 300), ('{BUDGET}', 9000);
             INSERT INTO rule_awards (transaction_id, rule_id, rule_version, points, counter_keys)
             VALUES ('txn_1', 'rul_01x', 1, 70, '[\"{OLD_CAP}\",\"{BUDGET}\"]'),
                    ('txn_2', 'rul_01z', 1, 5, '[\"{BUDGET}\"]');"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        let m = POSTGRES.iter().find(|m| m.version == version).unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::raw_sql(m.sql).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();

        let counters: Vec<(String, i64)> =
            sqlx::query_as("SELECT key, used FROM rule_counters ORDER BY key COLLATE \"C\"")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let mut awards = Vec::new();
        for t in ["txn_1", "txn_2"] {
            let row = sqlx::query("SELECT counter_keys FROM rule_awards WHERE transaction_id = $1")
                .bind(t)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            awards.push(keys(&row.get::<String, _>(0)));
        }
        sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            counters,
            vec![
                (NEW_CAP.to_string(), 70),
                (NEW_CAMPAIGN.to_string(), 300),
                (BUDGET.to_string(), 9000)
            ]
        );
        assert_eq!(awards, vec![vec![NEW_CAP, BUDGET], vec![BUDGET]]);
    }
}
