//! Digests of credentials that must stay refused until a deadline: logged-out tokens and
//! refresh tokens, and revocations heard from other replicas.
//!
//! A logout is remembered for as long as the credential could still be presented (up to a
//! session's maximum age, hours), so at a steady rate of logouts these sets hold hours of them
//! and their size per entry decides how far a long-running replica's memory climbs. A general
//! cache entry (moka's, which the identity cache uses) takes about 300 bytes with its
//! bookkeeping; an entry here is the digest and its deadline in a plain hash table, about 40
//! bytes plus the table's spare room.
//!
//! Expired entries are swept as a shard grows or at least every [`SWEEP_EVERY`] when written
//! to. When a shard is full, the entries nearest their deadline go first: their memory
//! matters least. The common case, nothing remembered, is one atomic read and takes no lock:
//! every request asks.
//!
//! A digest forgotten early is a revocation lost: a logged-out JWT would pass local validation
//! again. So the set says until when something it forgot would still have been refused
//! ([`Tombstones::forgot_any`]); until then, the validator does not trust its own memory of
//! revocations and asks Salesforce, which the logout revoked the token at (as it does while
//! revocations cannot be heard from the other replicas).

use super::Digest;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shards, so two serving threads rarely wait for each other. A power of two.
const SHARDS: usize = 8;
/// A shard written to is swept of expired entries at least this often.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Below this many entries a shard is not swept for its size alone.
const SWEEP_MIN_LEN: usize = 64;

/// Digests each refused until its own deadline. Sized by `capacity` (entries); see the module
/// documentation for what happens beyond it.
pub struct Tombstones {
    shards: Box<[Mutex<Shard>]>,
    /// Entries in all shards (expired ones not yet swept included).
    len: AtomicUsize,
    capacity_per_shard: usize,
    /// The latest deadline among the entries forgotten before it (ms since the epoch; 0:
    /// none), so that a lost refusal is known for as long as it mattered.
    forgotten_until_ms: AtomicU64,
    /// Which set this is (`/metrics`' `set` label), for the warning a first forgetting logs.
    name: &'static str,
    /// Deadlines are kept as milliseconds since this instant: monotonic, and 8 bytes.
    epoch: Instant,
}

struct Shard {
    /// Keyed per process (`RandomState`): the digests are unkeyed SHA-256 of what callers
    /// send, so a fixed hash would let a caller choose colliding entries.
    deadlines: HashMap<Digest, u64, RandomState>,
    /// The next sweep when the shard reaches this many entries...
    sweep_at_len: usize,
    /// ...or is written to after this time (ms since the epoch).
    sweep_at_ms: u64,
}

/// What a set holds, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TombstoneFigures {
    pub entries: usize,
    /// The tables' allocated room, spare slots included.
    pub bytes: usize,
    /// How much longer an entry dropped to make room would still have been refused (zero
    /// when none would): meanwhile the set's absence of a digest proves nothing.
    pub forgotten_in_force: Duration,
}

impl Tombstones {
    /// `name`: the set's name in `/metrics` and in the log.
    pub fn new(capacity: u64, name: &'static str) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(SHARDS);
        let hasher = RandomState::new();
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        deadlines: HashMap::with_hasher(hasher.clone()),
                        sweep_at_len: SWEEP_MIN_LEN,
                        sweep_at_ms: 0,
                    })
                })
                .collect(),
            len: AtomicUsize::new(0),
            capacity_per_shard: capacity.div_ceil(SHARDS),
            forgotten_until_ms: AtomicU64::new(0),
            name,
            epoch: Instant::now(),
        }
    }

    /// Refuses `digest` for `keep` from now; a deadline already later stays (a memory is only
    /// ever extended). A `keep` of zero adds nothing.
    pub fn insert(&self, digest: Digest, keep: Duration) {
        if keep.is_zero() {
            return;
        }
        let now = self.now_ms();
        let deadline = now.saturating_add(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX));
        let mut shard = self.shard(&digest);
        if shard.deadlines.len() >= shard.sweep_at_len || now >= shard.sweep_at_ms {
            self.sweep(&mut shard, now);
        }
        if shard.deadlines.len() >= self.capacity_per_shard
            && !shard.deadlines.contains_key(&digest)
        {
            self.make_room(&mut shard, now);
        }
        match shard.deadlines.entry(digest) {
            Entry::Occupied(mut held) => {
                let held = held.get_mut();
                *held = (*held).max(deadline);
            }
            Entry::Vacant(slot) => {
                slot.insert(deadline);
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether `digest` is refused now.
    pub fn contains(&self, digest: &Digest) -> bool {
        if self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let now = self.now_ms();
        self.shard(digest)
            .deadlines
            .get(digest)
            .is_some_and(|&deadline| deadline > now)
    }

    /// Whether a digest this set forgot to make room would still be refused now: while so,
    /// "not in the set" does not mean "not revoked". One atomic read, and a clock read once
    /// something was forgotten.
    pub fn forgot_any(&self) -> bool {
        !self.forgotten_in_force().is_zero()
    }

    /// How much longer [`Self::forgot_any`] says so. The clock is read only once something
    /// was forgotten.
    pub fn forgotten_in_force(&self) -> Duration {
        match self.forgotten_until_ms.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            until => Duration::from_millis(until.saturating_sub(self.now_ms())),
        }
    }

    /// Every digest still refused, with how long it remains so (to write them elsewhere).
    pub fn in_force(&self) -> Vec<(Digest, Duration)> {
        let now = self.now_ms();
        let mut live = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            live.extend(
                shard
                    .deadlines
                    .iter()
                    .filter(|(_, &deadline)| deadline > now)
                    .map(|(digest, &deadline)| (*digest, Duration::from_millis(deadline - now))),
            );
        }
        live
    }

    pub fn figures(&self) -> TombstoneFigures {
        let mut figures = TombstoneFigures {
            forgotten_in_force: self.forgotten_in_force(),
            ..TombstoneFigures::default()
        };
        for shard in self.shards.iter() {
            let shard = lock(shard);
            figures.entries += shard.deadlines.len();
            // The table has a power of two of slots, at most 7/8 of them usable; each slot
            // holds the pair and one control byte.
            let slots = (shard.deadlines.capacity() * 8)
                .div_ceil(7)
                .next_power_of_two();
            if shard.deadlines.capacity() > 0 {
                figures.bytes += slots * (std::mem::size_of::<(Digest, u64)>() + 1);
            }
        }
        figures
    }

    fn shard(&self, digest: &Digest) -> MutexGuard<'_, Shard> {
        // A digest's bytes are uniform; which shard an entry lands in decides only which lock
        // it shares, never how far a lookup searches.
        lock(&self.shards[usize::from(digest[0]) & (SHARDS - 1)])
    }

    /// Drops the shard's expired entries, and gives back room the table no longer needs.
    fn sweep(&self, shard: &mut Shard, now: u64) {
        let before = shard.deadlines.len();
        shard.deadlines.retain(|_, deadline| *deadline > now);
        let after = shard.deadlines.len();
        self.len.fetch_sub(before - after, Ordering::Relaxed);
        if shard.deadlines.capacity() > 4 * after.max(SWEEP_MIN_LEN) {
            shard.deadlines.shrink_to(2 * after);
        }
        shard.sweep_at_len = (2 * after).max(SWEEP_MIN_LEN);
        shard.sweep_at_ms = now + SWEEP_EVERY.as_millis() as u64;
    }

    /// A full shard forgets the eighth of its entries nearest their deadline.
    fn make_room(&self, shard: &mut Shard, now: u64) {
        self.sweep(shard, now);
        let len = shard.deadlines.len();
        if len < self.capacity_per_shard {
            return;
        }
        let mut deadlines: Vec<u64> = shard.deadlines.values().copied().collect();
        let nth = (len / 8).max(1) - 1;
        let (_, &mut cutoff, _) = deadlines.select_nth_unstable(nth);
        shard.deadlines.retain(|_, deadline| *deadline > cutoff);
        let removed = len - shard.deadlines.len();
        self.len.fetch_sub(removed, Ordering::Relaxed);
        // Every entry removed had a deadline of at most `cutoff`, and the sweep above left
        // none already past: until `cutoff`, one of them could still be presented.
        let before = self.forgotten_until_ms.fetch_max(cutoff, Ordering::Relaxed);
        metrics::counter!("sfgate_tombstones_forgotten_early_total").increment(removed as u64);
        // Once per stretch of forgetting, not once per entry: a flood would flood the log.
        if before <= now {
            tracing::warn!(
                set = self.name,
                capacity = self.capacity_per_shard * SHARDS,
                in_force_for_s = cutoff.saturating_sub(now) / 1000,
                "a full set of remembered logouts dropped some that are still in force; until \
                 they would have ended, a credential it does not hold may still be logged out \
                 (for access tokens, JWTs are checked at Salesforce rather than locally \
                 meanwhile; see sfgate_logouts_forgotten_in_force_seconds and docs/sessions.md)"
            );
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl std::fmt::Debug for Tombstones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tombstones")
            .field("entries", &self.len.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A poisoned shard still holds valid deadlines: every write to it is a single map operation.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
