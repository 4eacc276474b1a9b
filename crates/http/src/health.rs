//! What `/healthz` reports besides "the database answers a read": a full disk, which a
//! read cannot see, so a load balancer or an operator sees it while it lasts. It counts
//! as current for [`FAULT_SHOWN_FOR`] after an answer (or a receipt of a batch) last
//! reported it; every failed write renews it, so a full disk under traffic stays
//! reported. An unreachable database `/healthz` finds by its own read; a busy one
//! (`503 overloaded`) is not a fault.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use tally_store::Fault;

pub const FAULT_SHOWN_FOR: Duration = Duration::from_secs(10);

/// The last fault answers reported, and when.
#[derive(Default)]
pub struct Health {
    last: Mutex<Option<(Fault, Instant)>>,
}

impl Health {
    pub fn record(&self, fault: Fault) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some((fault, Instant::now()));
        }
    }

    /// The fault reported within the last [`FAULT_SHOWN_FOR`], if any.
    pub fn recent(&self) -> Option<Fault> {
        let last = self.last.lock().ok()?;
        last.filter(|(_, at)| at.elapsed() < FAULT_SHOWN_FOR).map(|(f, _)| f)
    }
}
