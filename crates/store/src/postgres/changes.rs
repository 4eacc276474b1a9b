//! The change feed: several servers on one PostgreSQL database learn of each other's
//! changes to what they cache. Triggers (migration 4) announce a change on the channel
//! `tally_changes` as `<schema>.<table>` when its transaction commits; a server acts
//! only on its own schema's.

use super::PgStore;
use crate::StoreError;
use crate::changes::Change;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::mpsc;

pub const CHANNEL: &str = "tally_changes";

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

impl PgStore {
    /// Listens on the change channel; the receiver gets every change committed in this
    /// store's schema by any server (this one included), and [`Change::Resync`] once
    /// listening again after the connection was lost (changes in between may have been
    /// missed). A connection that hangs without failing is not noticed here: the
    /// server's periodic refresh covers it.
    pub async fn follow_changes(&self) -> Result<mpsc::Receiver<Change>, StoreError> {
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&self.pool)
            .await?;
        let mut listener = listen(&self.pool).await?;
        let pool = self.pool.clone();
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let change = match listener.try_recv().await {
                    Ok(Some(n)) => match Change::from_payload(n.payload(), &schema) {
                        Some(change) => change,
                        None => continue, // another schema's
                    },
                    // Lost, and listening again before returning: reload everything.
                    Ok(None) => Change::Resync,
                    Err(e) => {
                        // Listen afresh, however long it takes, then reload everything.
                        tracing::warn!(error = %e, "the change feed lost PostgreSQL; listening again");
                        let mut wait = Duration::from_millis(100);
                        listener = loop {
                            tokio::time::sleep(wait).await;
                            if tx.is_closed() {
                                return;
                            }
                            match listen(&pool).await {
                                Ok(l) => break l,
                                Err(e) => tracing::warn!(error = %e, "the change feed cannot reach PostgreSQL yet"),
                            }
                            wait = (wait * 2).min(Duration::from_secs(5));
                        };
                        Change::Resync
                    }
                };
                if tx.send(change).await.is_err() {
                    return; // nobody follows any more
                }
            }
        });
        Ok(rx)
    }
}
