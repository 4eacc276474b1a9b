//! The change feed: several servers on one PostgreSQL database learn of each other's
//! changes to what they cache. Triggers (migration 4) announce a change on the channel
//! `tally_changes`, with the table's name, when its transaction commits.

use super::PgStore;
use crate::StoreError;
use crate::changes::Change;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::mpsc;

pub const CHANNEL: &str = "tally_changes";

impl PgStore {
    /// Listens on the change channel; the receiver gets every change committed by any
    /// server (this one included), and [`Change::Resync`] when the connection was lost
    /// and made again (changes in between may have been missed).
    pub async fn follow_changes(&self) -> Result<mpsc::Receiver<Change>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let change = match listener.try_recv().await {
                    Ok(Some(n)) => Change::from_table(n.payload()),
                    // Lost and made again before returning: reload everything.
                    Ok(None) => Change::Resync,
                    Err(e) => {
                        tracing::warn!(error = %e, "the change feed cannot reach PostgreSQL; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
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
