//! The purchase writers: tasks that take waiting purchases from a bounded queue in
//! groups and post each group in one transaction, so one commit (one WAL flush) serves
//! many sales.
//!
//! A group reads the facts of its sales, decides each, and writes them with one
//! statement per round (`sales.rs`): a refusal leaves nothing behind, and the group
//! goes on. A database error rolls the group back and its purchases are
//! posted one by one instead, which is safe because a purchase is idempotent by its
//! receipt; one that PostgreSQL cancelled to break a deadlock or a serialization
//! conflict (SQLSTATE 40P01, 40001) is tried again.

use super::budgets::{Budgets, Taken};
use super::purchases::replay_existing;
use super::sales::{BEGIN_BY_KEY, SaleOutcome, post_sales};
use crate::StoreError;
use crate::model::{Posted, PurchaseCmd};
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Writer tasks (`TALLY_PG_WRITERS` overrides), and the most each group takes. One
/// writer makes the largest groups: a group's round trips hardly grow with its size,
/// and while one commits the next fills up. With one writer sales are also decided in
/// the order they arrived; with more, two groups may hold sales of one member. Measured with wrk on the 2-core
/// machine (docs/PERFORMANCE.md): one writer did 2,460 sales/s at 8 clients and 4,470
/// at 32, two did 1,965 and 3,950, four 1,880 and 4,150.
const WRITERS: usize = 1;
const MAX_GROUP: usize = 64;
/// Purchases waiting for a writer before new ones are refused with `Overloaded`.
pub const QUEUE_CAPACITY: usize = 8192;
/// Tries of one purchase alone that PostgreSQL cancelled as a deadlock victim.
const TRANSIENT_RETRIES: u32 = 5;

type Reply = oneshot::Sender<Result<Posted, StoreError>>;

/// The writers' end of the queue.
#[derive(Clone)]
pub struct Queue(mpsc::Sender<(PurchaseCmd, Reply)>);

impl Queue {
    /// Queues a purchase; `Overloaded` (and nothing queued) when the queue is full.
    /// The answer arrives after the purchase's transaction commits.
    pub fn post(
        &self,
        cmd: PurchaseCmd,
    ) -> Result<impl Future<Output = Result<Posted, StoreError>> + use<>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.0.try_send((cmd, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => StoreError::stopped("the purchase writers have stopped"),
        })?;
        Ok(async move {
            answer
                .await
                .map_err(|_| StoreError::stopped("a purchase writer dropped a purchase"))?
        })
    }
}

/// Starts the writer tasks; they end when every [`Queue`] clone is gone.
pub fn start(pool: PgPool, budgets: Arc<Budgets>) -> Queue {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let rx = Arc::new(Mutex::new(rx));
    let writers = std::env::var("TALLY_PG_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WRITERS)
        .clamp(1, 16);
    for _ in 0..writers {
        tokio::spawn(run(pool.clone(), budgets.clone(), rx.clone()));
    }
    Queue(tx)
}

async fn run(pool: PgPool, budgets: Arc<Budgets>, queue: Arc<Mutex<mpsc::Receiver<(PurchaseCmd, Reply)>>>) {
    loop {
        let mut group = Vec::new();
        {
            let mut rx = queue.lock().await;
            match rx.recv().await {
                Some(job) => group.push(job),
                None => return,
            }
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
        }
        // In the order the sales arrived: two sales of one member in a group are decided
        // in that order. A group locks its members in one statement, in id order
        // (`sales.rs`); a deadlock between groups (several writers) is retried alone.
        post_group(&pool, &budgets, group).await;
    }
}

async fn post_group(pool: &PgPool, budgets: &Budgets, group: Vec<(PurchaseCmd, Reply)>) {
    let cmds: Vec<&PurchaseCmd> = group.iter().map(|(cmd, _)| cmd).collect();
    let mut taken: Vec<Taken> = cmds.iter().map(|_| Taken::new()).collect();
    let grouped = async {
        let mut tx = pool.begin_with(BEGIN_BY_KEY).await?;
        let outcomes = post_sales(&mut tx, &cmds, budgets, &mut taken).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(outcomes)
    }
    .await;
    match grouped {
        Ok(outcomes) => {
            // Budget points drawn by sales that did not post go back at once.
            for (outcome, taken) in outcomes.iter().zip(&taken) {
                if !matches!(outcome, SaleOutcome::Posted(p) if !p.replayed) {
                    budgets.give_back(taken).await;
                }
            }
            for ((cmd, reply), outcome) in group.into_iter().zip(outcomes) {
                let answer = match outcome {
                    SaleOutcome::Posted(posted) => Ok(posted),
                    SaleOutcome::Refused(refused) => Err(refused),
                    SaleOutcome::Replay => replay_existing(pool, &cmd).await,
                };
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            for t in &taken {
                budgets.give_back(t).await;
            }
            tracing::debug!(error = %e, size = group.len(), "PostgreSQL group failed; posting one by one");
            for (cmd, reply) in group {
                let _ = reply.send(post_alone(pool, budgets, &cmd).await);
            }
        }
    }
}

/// One purchase in its own transaction; tried again if PostgreSQL cancelled it to break
/// a deadlock or a serialization conflict (it wrote nothing).
async fn post_alone(pool: &PgPool, budgets: &Budgets, cmd: &PurchaseCmd) -> Result<Posted, StoreError> {
    let mut attempt = 0;
    loop {
        let mut taken = Taken::new();
        let posted = post_once(pool, budgets, cmd, &mut taken).await;
        budgets.settle(&posted, &taken).await;
        match posted {
            Err(e) if e.is_transient() && attempt < TRANSIENT_RETRIES => attempt += 1,
            other => return other,
        }
    }
}

async fn post_once(
    pool: &PgPool,
    budgets: &Budgets,
    cmd: &PurchaseCmd,
    taken: &mut Taken,
) -> Result<Posted, StoreError> {
    let mut tx = pool.begin_with(BEGIN_BY_KEY).await?;
    let outcome = post_sales(&mut tx, &[cmd], budgets, std::slice::from_mut(taken)).await;
    match outcome?.pop() {
        Some(SaleOutcome::Posted(posted)) => {
            tx.commit().await?;
            Ok(posted)
        }
        Some(SaleOutcome::Refused(refused)) => Err(refused),
        Some(SaleOutcome::Replay) | None => {
            tx.rollback().await?;
            replay_existing(pool, cmd).await
        }
    }
}
