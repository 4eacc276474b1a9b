//! Rate limits of the sign-in forms, in memory: a fixed window per key (an account, an
//! account from one peer, an address, a network peer). An attempt is counted before it
//! is checked, under one lock, so concurrent guesses cannot slip past the count. A
//! server restart forgets the counts, which only gives a guesser a fresh window.

use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::Mutex;

/// Password attempts per account from one peer, per account from all peers, and per
/// peer, in a window. A correct password clears its account's counts.
pub const ACCOUNT_PEER_ATTEMPTS: u32 = 5;
pub const ACCOUNT_ATTEMPTS: u32 = 20;
pub const PEER_ATTEMPTS: u32 = 30;
/// Codes sent to one address, and code requests and checks per peer, per window.
pub const CODES_PER_DESTINATION: u32 = 3;
pub const CODE_CHECKS_PER_PEER: u32 = 20;
/// Code checks for one address from all peers, per window: 10, a code's 5 tries twice.
pub const CODE_CHECKS_PER_DESTINATION: u32 = 10;
pub const WINDOW: SignedDuration = SignedDuration::from_mins(15);

/// Keys kept before old windows are swept; past twice as many, new keys are refused
/// (which refuses the attempt) until the window passes, so the map stays bounded.
const SWEEP_AT: usize = 10_000;
const MAX_KEYS: usize = 2 * SWEEP_AT;

#[derive(Default)]
pub struct Limiter {
    hits: Mutex<HashMap<String, (Timestamp, u32)>>,
}

impl Limiter {
    /// Counts one attempt against every `(key, max)` if each has had fewer than its
    /// `max` in its window; otherwise counts nothing and answers false.
    pub fn take(&self, limits: &[(&str, u32)], now: Timestamp) -> bool {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() >= SWEEP_AT {
            hits.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let used = |hits: &HashMap<String, (Timestamp, u32)>, key: &str| match hits.get(key) {
            Some((start, n)) if now.duration_since(*start) < WINDOW => *n,
            _ => 0,
        };
        if limits.iter().any(|(key, max)| used(&hits, key) >= *max) {
            return false;
        }
        let new_keys = limits.iter().filter(|(key, _)| !hits.contains_key(*key)).count();
        if hits.len() + new_keys > MAX_KEYS {
            return false;
        }
        for (key, _) in limits {
            let entry = hits.entry((*key).to_string()).or_insert((now, 0));
            if now.duration_since(entry.0) >= WINDOW {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
        true
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
    fn keys_are_refused_after_max_attempts_until_their_window_ends() {
        let l = Limiter::default();
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        for _ in 0..3 {
            assert!(l.take(&[("a", 3), ("p", 10)], t0));
        }
        assert!(!l.take(&[("a", 3), ("p", 10)], t0));
        // A refused attempt counts against none of its keys: "p" has 3, not 4.
        assert!(l.take(&[("b", 3), ("p", 5)], t0));
        assert!(l.take(&[("c", 3), ("p", 5)], t0));
        assert!(!l.take(&[("d", 3), ("p", 5)], t0));
        assert!(l.take(&[("d", 3)], t0), "the refused attempt did not count for d");
        let later = t0.checked_add(WINDOW).unwrap();
        assert!(l.take(&[("a", 3)], later));
        l.clear("a");
        assert!(l.take(&[("a", 1)], later));
        assert!(!l.take(&[("a", 1)], later));
    }
}
