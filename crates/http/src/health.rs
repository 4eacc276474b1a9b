//! What `/healthz` reports besides "the database answers a read": a recent fault of the
//! database (out of space, unreachable), so a load balancer or an operator sees it while
//! it lasts. A fault counts as current for [`FAULT_SHOWN_FOR`] after it was last seen;
//! every failed request renews it, so a full disk under traffic stays reported.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use tally_store::Fault;

pub const FAULT_SHOWN_FOR: Duration = Duration::from_secs(10);

static LAST_FAULT: Mutex<Option<(Fault, Instant)>> = Mutex::new(None);

/// Notes a database fault an answer reported.
pub fn record(fault: Fault) {
    if let Ok(mut last) = LAST_FAULT.lock() {
        *last = Some((fault, Instant::now()));
    }
}

/// The fault seen within the last [`FAULT_SHOWN_FOR`], if any.
pub fn recent() -> Option<Fault> {
    let last = LAST_FAULT.lock().ok()?;
    last.filter(|(_, at)| at.elapsed() < FAULT_SHOWN_FOR).map(|(f, _)| f)
}
