//! Replay protection: the nonces of signed requests, remembered while their timestamps are
//! inside the skew window.
//!
//! Each entry is a keyed 64-bit fingerprint of (access key id, nonce), filed under the second its
//! window closes, so expired entries leave in the order they expire and no request scans the set.
//! Past the capacity, the earliest second is forgotten early and requests whose window closes in
//! it or before are refused from then on: under a flood the accepted window narrows (at 20,000
//! requests a second it still holds the last 50 seconds); replays never get through.
//!
//! A request removes at most a few entries, however many a second holds: removing a busy
//! second's tens of thousands at once held every request behind the lock for milliseconds, once a
//! second. The scheduler's purge removes the rest when the server is idle.
//!
//! The fingerprints are keyed with a random per-process key, so no one can aim two nonces at one
//! fingerprint; by chance a fresh request is taken for a replay with odds of n / 2^64 (n entries).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;

/// Bound on remembered nonces (about 40 MB at most).
const CAPACITY: usize = 1_000_000;
/// Entries a request removes at most: more than the one it adds, so the set keeps up.
const REMOVALS_PER_REQUEST: usize = 8;

/// What the cache says about a request's nonce.
#[derive(Debug, PartialEq, Eq)]
pub enum Nonce {
    /// Not seen in its window: recorded now.
    Fresh,
    /// Seen before, and its window is still open.
    Replayed,
    /// Its timestamp is older than what the cache still remembers, so a replay could not be told
    /// apart: refused (only happens past the capacity).
    TooOld,
}

pub struct NonceCache {
    fingerprints: RandomState,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Fingerprint → when its window closes (unix seconds).
    seen: HashMap<u64, i64, BuildHasherDefault<Passthrough>>,
    /// The fingerprints whose windows close in each second.
    by_second: BTreeMap<i64, Vec<u64>>,
    /// Windows closing at or before this second were forgotten early.
    floor: i64,
}

/// The keys are already keyed hashes: use them as they are.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for NonceCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl Inner {
    /// Removes up to `budget` entries whose windows have closed by `now`, earliest first.
    fn expire(&mut self, now: i64, budget: usize) {
        for _ in 0..budget {
            if self.earliest().is_none_or(|second| second > now) {
                break;
            }
            self.forget_one();
        }
    }

    /// The earliest second that still has entries.
    fn earliest(&self) -> Option<i64> {
        self.by_second.first_key_value().map(|(second, _)| *second)
    }

    /// Removes one entry of the earliest second, and the second once it is empty.
    fn forget_one(&mut self) {
        let Some(mut first) = self.by_second.first_entry() else { return };
        let second = *first.key();
        let fp = first.get_mut().pop();
        if first.get().is_empty() {
            first.remove();
        }
        // Only the entry filed under this second (a fingerprint is filed once at a time).
        if let Some(fp) = fp
            && self.seen.get(&fp) == Some(&second)
        {
            self.seen.remove(&fp);
        }
    }
}

impl NonceCache {
    pub fn with_capacity(capacity: usize) -> Self {
        NonceCache { fingerprints: RandomState::new(), capacity: capacity.max(1), inner: Mutex::default() }
    }

    /// Checks a nonce whose window closes at `expires` and records it if it is fresh.
    pub fn check_and_insert(&self, access_key_id: &str, nonce: &str, expires: i64, now: i64) -> Nonce {
        let fp = self.fingerprints.hash_one((access_key_id, nonce));
        let Ok(mut s) = self.inner.lock() else { return Nonce::TooOld };
        s.expire(now, REMOVALS_PER_REQUEST);
        if expires <= s.floor {
            return Nonce::TooOld;
        }
        if s.seen.get(&fp).is_some_and(|exp| *exp > now) {
            return Nonce::Replayed;
        }
        s.seen.insert(fp, expires);
        s.by_second.entry(expires).or_default().push(fp);
        // Forgetting any of a second's entries early forgets the second: its requests are refused
        // from now on, even those whose entries are still here.
        while s.seen.len() > self.capacity {
            let Some(second) = s.earliest() else { break };
            s.floor = s.floor.max(second);
            s.forget_one();
        }
        Nonce::Fresh
    }

    /// Drops expired entries (the scheduler calls it, so an idle server lets go of them too).
    pub fn purge(&self, now: i64) {
        if let Ok(mut s) = self.inner.lock() {
            s.expire(now, usize::MAX);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().map(|s| s.seen.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_within_its_window() {
        let c = NonceCache::default();
        assert_eq!(c.check_and_insert("ak", "n1", 1000, 100), Nonce::Fresh);
        assert_eq!(c.check_and_insert("ak", "n1", 1000, 200), Nonce::Replayed);
        assert_eq!(c.check_and_insert("other", "n1", 1000, 200), Nonce::Fresh, "nonces are per access key");
        assert_eq!(c.check_and_insert("ak", "n1", 3000, 1001), Nonce::Fresh, "after its window a nonce may return");
        assert_eq!(c.check_and_insert("ak", "n1", 3000, 1002), Nonce::Replayed);
        c.purge(5000);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn past_capacity_the_oldest_second_is_forgotten_and_its_requests_refused() {
        let c = NonceCache::with_capacity(3);
        assert_eq!(c.check_and_insert("ak", "a", 1_000, 100), Nonce::Fresh);
        assert_eq!(c.check_and_insert("ak", "b", 1_100, 100), Nonce::Fresh);
        assert_eq!(c.check_and_insert("ak", "c", 1_200, 100), Nonce::Fresh);
        assert_eq!(c.check_and_insert("ak", "d", 1_300, 100), Nonce::Fresh);
        assert_eq!(c.len(), 3);
        // "a" was forgotten early: replaying it is refused, not accepted.
        assert_eq!(c.check_and_insert("ak", "a", 1_000, 101), Nonce::TooOld);
        // So is any new request whose window closes in or before the forgotten second.
        assert_eq!(c.check_and_insert("ak", "e", 999, 101), Nonce::TooOld);
        assert_eq!(c.check_and_insert("ak", "e", 1_001, 101), Nonce::Fresh);
        assert_eq!(c.check_and_insert("ak", "b", 1_100, 101), Nonce::Replayed);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn a_request_removes_only_a_few_expired_entries_and_the_purge_the_rest() {
        let c = NonceCache::default();
        for i in 0..5_000 {
            assert_eq!(c.check_and_insert("ak", &i.to_string(), 100, 0), Nonce::Fresh);
        }
        // All 5,000 expired at 100; the next request removes a few of them, not all.
        assert_eq!(c.check_and_insert("ak", "late", 1_000, 101), Nonce::Fresh);
        assert_eq!(c.len(), 5_001 - REMOVALS_PER_REQUEST);
        // An expired entry still in the set is no replay.
        assert_eq!(c.check_and_insert("ak", "0", 1_000, 101), Nonce::Fresh);
        c.purge(101);
        assert_eq!(c.len(), 2, "only the two requests whose windows are open");
    }

    #[test]
    fn under_a_flood_fresh_requests_pass_replays_do_not_and_the_set_stays_bounded() {
        // A million requests at 1,000 a second against room for 10,000: fresh requests stay
        // accepted (the window narrows to the last ten seconds), a replay of a recent one is
        // refused, and the set stays bounded.
        let c = NonceCache::with_capacity(10_000);
        for i in 0..1_000_000_i64 {
            let now = i / 1_000;
            assert_eq!(c.check_and_insert("ak", &i.to_string(), now + 900, now), Nonce::Fresh);
        }
        assert!(c.len() <= 10_000);
        assert_eq!(c.check_and_insert("ak", "999999", 999 + 900, 999), Nonce::Replayed);
        assert_eq!(c.check_and_insert("ak", "0", 900, 999), Nonce::TooOld);
    }
}
