//! Failed-login throttling, shared by every session of a proxy.
//!
//! Kafka delays only the close after a failed authentication, so one client
//! address can try thousands of passwords a second over parallel
//! connections. The throttle keeps a penalty per client address and per
//! claimed user name: each failure raises it one level (a first failure
//! costs nothing beyond Kafka's own delay, a typo is not an attack; from the
//! second the delay doubles from `base_delay`, capped at `max_delay`), and
//! one level is forgiven per `decay` without failures. A penalised address has its authentication
//! tokens evaluated one after another, `penalty` apart, however many
//! connections it opens; a failure response waits for the larger of the
//! address's and the user's penalty. The user name is the one the client
//! claimed, whether or not it exists, so timing tells nothing about which
//! users exist.
//!
//! Memory is bounded: at most [`MAX_TRACKED`] addresses and as many names
//! are remembered; the least recently failed are forgotten first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most addresses (and, separately, user names) remembered at once.
pub const MAX_TRACKED: usize = 16_384;

/// Longest user name kept as a key (longer claims are cut; they still count).
const MAX_NAME: usize = 256;

/// Concurrent evaluations an address without penalty may have before the
/// next ones are serialised (a client application opening a few
/// connections at once is not held back).
const FREE_BURST: u32 = 4;

/// The throttle's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// The penalty after two failures (and the spacing of a penalised
    /// address's attempts); it doubles with each further failure.
    pub base_delay: Duration,
    /// The largest penalty.
    pub max_delay: Duration,
    /// One penalty level is forgiven per this much time without a failure.
    pub decay: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            decay: Duration::from_secs(30),
        }
    }
}

impl ThrottleSettings {
    /// The penalty at `level` failures (zero for none or one).
    fn penalty(&self, level: u32) -> Duration {
        if level <= 1 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(level.saturating_sub(2).min(31)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleStats {
    /// Failed logins recorded.
    pub failures: u64,
    /// Authentication tokens whose evaluation was postponed.
    pub delayed: u64,
    /// Addresses and names currently remembered.
    pub tracked: usize,
}

/// One address's or name's record.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Failures not yet forgiven, as of `last_failure`.
    level: u32,
    last_failure: Instant,
    /// The earliest time the next token from this address is evaluated.
    next_slot: Instant,
    /// Tokens of this address being evaluated or waiting.
    in_flight: u32,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry { level: 0, last_failure: now, next_slot: now, in_flight: 0 }
    }

    /// The level at `now`, after forgiveness.
    fn level(&self, now: Instant, decay: Duration) -> u32 {
        if decay.is_zero() {
            return 0;
        }
        let quiet = now.saturating_duration_since(self.last_failure);
        let forgiven = u32::try_from(quiet.as_nanos() / decay.as_nanos().max(1)).unwrap_or(u32::MAX);
        self.level.saturating_sub(forgiven)
    }

    /// Records a failure at `now`: the new level.
    fn fail(&mut self, now: Instant, decay: Duration) -> u32 {
        self.level = self.level(now, decay).saturating_add(1);
        self.last_failure = now;
        self.level
    }

    /// True when the entry holds nothing worth remembering at `now`.
    fn forgotten(&self, now: Instant, decay: Duration) -> bool {
        self.in_flight == 0 && self.level(now, decay) == 0 && self.next_slot <= now
    }
}

/// Entries by key, bounded: the stalest is evicted when full.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
}

impl<K: std::hash::Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Table { entries: HashMap::new() }
    }

    fn entry(&mut self, key: &K, now: Instant, decay: Duration) -> &mut Entry {
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_TRACKED {
            self.evict(now, decay);
        }
        self.entries.entry(key.clone()).or_insert_with(|| Entry::new(now))
    }

    /// Drops forgotten entries, or (if none) the one that failed longest ago.
    fn evict(&mut self, now: Instant, decay: Duration) {
        self.entries.retain(|_, e| !e.forgotten(now, decay));
        if self.entries.len() >= MAX_TRACKED
            && let Some(stalest) =
                self.entries.iter().min_by_key(|(_, e)| e.last_failure).map(|(k, _)| k.clone())
        {
            self.entries.remove(&stalest);
        }
    }
}

#[derive(Debug)]
struct State {
    settings: ThrottleSettings,
    addresses: Table<IpAddr>,
    names: Table<String>,
}

/// When an authentication token may be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Now.
    Now,
    /// Not before this time (the slot is reserved for this token).
    At(Instant),
}

/// The shared throttle (one per proxy, kept across reloads).
#[derive(Debug)]
pub struct LoginThrottle {
    state: Mutex<State>,
    failures: AtomicU64,
    delayed: AtomicU64,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(ThrottleSettings::default())
    }
}

impl LoginThrottle {
    /// A throttle with `settings`.
    pub fn new(settings: ThrottleSettings) -> LoginThrottle {
        LoginThrottle {
            state: Mutex::new(State { settings, addresses: Table::new(), names: Table::new() }),
            failures: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
        }
    }

    /// Takes new settings and credentials (a reload): penalties are
    /// forgotten, since failures against the old credentials say nothing
    /// about the new ones (a user just added must be able to log in), while
    /// the counters for metrics go on. Only the operator can reload, so an
    /// attacker cannot use this to wipe their penalty.
    pub fn reload(&self, settings: ThrottleSettings) {
        let mut state = self.lock();
        state.settings = settings;
        state.addresses.entries.retain(|_, e| e.in_flight > 0);
        state.names.entries.clear();
        for entry in state.addresses.entries.values_mut() {
            entry.level = 0;
        }
    }

    /// Counters for metrics.
    pub fn stats(&self) -> ThrottleStats {
        let state = self.lock();
        ThrottleStats {
            failures: self.failures.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
            tracked: state.addresses.entries.len() + state.names.entries.len(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An authentication token from `addr` arrived at `now`: when it may be
    /// evaluated. Every call must be followed by one [`LoginThrottle::finish`].
    pub(crate) fn admit(&self, addr: IpAddr, now: Instant) -> Admit {
        let mut state = self.lock();
        let settings = state.settings;
        let entry = state.addresses.entry(&addr, now, settings.decay);
        let level = entry.level(now, settings.decay);
        entry.in_flight = entry.in_flight.saturating_add(1);
        if level == 0 && entry.in_flight <= FREE_BURST && entry.next_slot <= now {
            return Admit::Now;
        }
        let slot = entry.next_slot.max(now);
        entry.next_slot = slot + settings.penalty(level).max(settings.base_delay);
        if slot <= now {
            return Admit::Now;
        }
        self.delayed.fetch_add(1, Ordering::Relaxed);
        Admit::At(slot)
    }

    /// The token admitted for `addr` was evaluated at `now`: `failed` with
    /// the user name the client claimed (if any), or not. Returns how long
    /// the failure response must wait (zero after a success).
    pub(crate) fn finish(&self, addr: IpAddr, user: Option<&str>, failed: bool, now: Instant) -> Duration {
        let mut state = self.lock();
        let settings = state.settings;
        let entry = state.addresses.entry(&addr, now, settings.decay);
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if !failed {
            return Duration::ZERO;
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        let addr_delay = settings.penalty(entry.fail(now, settings.decay));
        entry.next_slot = entry.next_slot.max(now + addr_delay);
        let user_delay = match user {
            Some(name) => {
                let cut =
                    name.char_indices().nth(MAX_NAME).map_or(name, |(i, _)| name.get(..i).unwrap_or(name));
                let entry = state.names.entry(&cut.to_owned(), now, settings.decay);
                settings.penalty(entry.fail(now, settings.decay))
            }
            None => Duration::ZERO,
        };
        addr_delay.max(user_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn penalties_double_and_cap() {
        let s = ThrottleSettings {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            decay: Duration::from_secs(30),
        };
        assert_eq!(s.penalty(0), Duration::ZERO);
        assert_eq!(s.penalty(1), Duration::ZERO, "a typo costs nothing");
        assert_eq!(s.penalty(2), Duration::from_millis(100));
        assert_eq!(s.penalty(4), Duration::from_millis(400));
        assert_eq!(s.penalty(6), Duration::from_secs(1));
        assert_eq!(s.penalty(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn failures_serialise_an_address_and_decay() {
        let t0 = Instant::now();
        let throttle = LoginThrottle::default();
        assert_eq!(throttle.admit(ip(1), t0), Admit::Now);
        assert_eq!(throttle.finish(ip(1), Some("alice"), true, t0), Duration::ZERO, "a typo");
        assert_eq!(throttle.admit(ip(1), t0), Admit::Now);
        assert_eq!(throttle.finish(ip(1), Some("alice"), true, t0), Duration::from_millis(100));
        // Penalised: the next tokens from the address are spaced.
        let Admit::At(a) = throttle.admit(ip(1), t0) else { panic!("not delayed") };
        let Admit::At(b) = throttle.admit(ip(1), t0) else { panic!("not delayed") };
        assert!(a >= t0 + Duration::from_millis(100) && b >= a + Duration::from_millis(100), "{a:?} {b:?}");
        // Another address is not held back.
        assert_eq!(throttle.admit(ip(2), t0), Admit::Now);
        throttle.finish(ip(2), None, false, t0);
        // The same user from another address: the failure waits the user's penalty.
        assert_eq!(throttle.admit(ip(3), t0), Admit::Now);
        assert_eq!(throttle.finish(ip(3), Some("alice"), true, t0), Duration::from_millis(200));
        // A user nobody failed for: only the address counts (and it is fresh).
        assert_eq!(throttle.admit(ip(4), t0), Admit::Now);
        assert_eq!(throttle.finish(ip(4), Some("mallory"), true, t0), Duration::ZERO);
        // A long quiet time forgives everything.
        let later = t0 + Duration::from_secs(3600);
        throttle.finish(ip(1), None, false, later);
        throttle.finish(ip(1), None, false, later);
        assert_eq!(throttle.admit(ip(1), later), Admit::Now);
        assert_eq!(throttle.stats().failures, 4);
        assert_eq!(throttle.stats().delayed, 2);
        // A reload forgets the penalties (the credentials may have changed).
        for expected in [Duration::ZERO, Duration::from_millis(100)] {
            assert_eq!(throttle.admit(ip(3), later), Admit::Now);
            assert_eq!(throttle.finish(ip(3), Some("alice"), true, later), expected);
        }
        throttle.reload(ThrottleSettings::default());
        assert_eq!(throttle.admit(ip(3), later), Admit::Now);
        assert_eq!(throttle.finish(ip(3), Some("alice"), true, later), Duration::ZERO);
    }

    #[test]
    fn a_parallel_flood_is_held_under_twenty_per_second() {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let t0 = Instant::now();
        let throttle = LoginThrottle::default();
        // 200 connections from one address send a wrong password at once,
        // each sending the next as soon as its failure response arrives.
        // Events: (time, connection, true = token arrives / false = evaluated).
        let mut events: BinaryHeap<Reverse<(Instant, usize, bool)>> =
            (0..200).map(|i| Reverse((t0, i, true))).collect();
        let horizon = t0 + Duration::from_secs(10);
        let mut evaluated = 0;
        while let Some(Reverse((at, i, arrival))) = events.pop() {
            if at >= horizon {
                break;
            }
            if arrival {
                let eval = match throttle.admit(ip(9), at) {
                    Admit::Now => at,
                    Admit::At(slot) => slot,
                };
                events.push(Reverse((eval, i, false)));
            } else {
                evaluated += 1;
                let delay = throttle.finish(ip(9), Some("alice"), true, at);
                events.push(Reverse((at + delay, i, true)));
            }
        }
        let per_second = f64::from(evaluated) / 10.0;
        assert!(per_second < 20.0, "{per_second} attempts/s");
        assert!(evaluated > 10, "the flood is slowed, not stopped: {evaluated}");
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let throttle = LoginThrottle::default();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let addr = IpAddr::from(i.to_be_bytes());
            throttle.admit(addr, t0);
            throttle.finish(addr, Some(&format!("user{i}")), true, t0);
        }
        assert!(throttle.stats().tracked <= 2 * MAX_TRACKED);
    }
}
