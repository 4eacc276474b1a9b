//! Rate limits of the sign-in forms, in memory: a fixed window per key (an account, an
//! address, a network peer). A server restart forgets them, which only gives a guesser a
//! fresh window of a few tries.

use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::Mutex;

/// Failed passwords allowed per account, and sign-in attempts per peer, per window.
pub const ACCOUNT_FAILURES: u32 = 5;
pub const PEER_ATTEMPTS: u32 = 30;
/// Codes sent to one address, and code checks per peer, per window.
pub const CODES_PER_DESTINATION: u32 = 3;
pub const CODE_CHECKS_PER_PEER: u32 = 20;
pub const WINDOW: SignedDuration = SignedDuration::from_mins(15);

/// Keys kept before old windows are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub struct Limiter {
    hits: Mutex<HashMap<String, (Timestamp, u32)>>,
}

impl Limiter {
    /// Whether `key` has had fewer than `max` hits in the current window.
    pub fn allows(&self, key: &str, max: u32, now: Timestamp) -> bool {
        let hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        match hits.get(key) {
            Some((start, n)) if now.duration_since(*start) < WINDOW => *n < max,
            _ => true,
        }
    }

    /// Counts one hit of `key`.
    pub fn hit(&self, key: &str, now: Timestamp) {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() >= SWEEP_AT {
            hits.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = hits.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets `key` (an account after a good password).
    pub fn clear(&self, key: &str) {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_after_max_hits_until_its_window_ends() {
        let l = Limiter::default();
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        for _ in 0..3 {
            assert!(l.allows("a", 3, t0));
            l.hit("a", t0);
        }
        assert!(!l.allows("a", 3, t0));
        assert!(l.allows("b", 3, t0));
        let later = t0.checked_add(WINDOW).unwrap();
        assert!(l.allows("a", 3, later));
        l.hit("a", later);
        assert!(l.allows("a", 3, later));
        l.clear("a");
        assert!(l.allows("a", 1, later));
    }
}
