//! What `/healthz` reports besides "the database answers a read": a recent fault of the
//! database (out of space, unreachable), so a load balancer or an operator sees it while
//! it lasts. A fault counts as current for [`FAULT_SHOWN_FOR`] after an answer last
//! reported it; every failed request renews it, so a full disk under traffic stays
//! reported. A busy database (`503 overloaded`) is not a fault here.

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
