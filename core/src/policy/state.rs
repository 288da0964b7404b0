//! What the policy shares across every session of a proxy and keeps across
//! reloads: the rules in force, connection counts (process-wide, per client
//! address, per principal), each principal's quota windows, which refusals
//! were logged lately. (What the policy does is counted by the sessions'
//! and the proxy's stats, for metrics.)
//!
//! No I/O and no clock: every instant is passed in. Sessions reach it
//! through an `Arc` in their configuration; with no policy configured they
//! touch it once per connection (counting it) and read one atomic per
//! request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::api::ApiKey;

use super::quota::Rate;
use super::{PolicyConfig, QuotaWindow, Resolved};

/// How often one principal's refusals of one API are logged.
pub(crate) const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Entries kept in the refusal log before old ones are dropped.
const REFUSAL_LOG_MAX: usize = 4096;

/// Principals with no connection and no recent traffic are forgotten once
/// the table holds more than this.
const PRINCIPALS_SWEEP_FROM: usize = 1024;

/// The shared policy state, owned by the proxy.
#[derive(Debug)]
pub(crate) struct PolicyState {
    /// Zero of the quota clock (milliseconds since then).
    epoch: Instant,
    rules: RwLock<Arc<PolicyConfig>>,
    /// Bumped on every change of `rules`; sessions compare it per request.
    generation: AtomicU64,
    principals: Mutex<Principals>,
    connections: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    refusals: Mutex<HashMap<(String, ApiKey), Instant>>,
}

#[derive(Debug, Default)]
struct Principals {
    by_name: HashMap<String, Arc<PrincipalState>>,
    sweep_at: usize,
}

/// One principal's connections and quota windows, shared by its sessions.
#[derive(Debug, Default)]
pub(crate) struct PrincipalState {
    connections: AtomicU32,
    produce: Mutex<Rate>,
    fetch: Mutex<Rate>,
}

/// Which byte rate a quota measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Produce request bytes (`producer_byte_rate`).
    Produce,
    /// Fetch response bytes (`consumer_byte_rate`).
    Fetch,
}

impl PrincipalState {
    /// Records `bytes` moved in `direction` at `now` against `quota` bytes/s:
    /// the throttle time Kafka would answer with (zero within the quota).
    pub(crate) fn throttle(
        &self,
        state: &PolicyState,
        direction: Direction,
        bytes: usize,
        quota: u64,
        window: &QuotaWindow,
        now: Instant,
    ) -> Duration {
        let rate = match direction {
            Direction::Produce => &self.produce,
            Direction::Fetch => &self.fetch,
        };
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        lock(rate).record_and_throttle(window, bytes, quota, state.clock(now))
    }

    /// True when nothing counts against this principal any more.
    fn forgettable(&self, window: &QuotaWindow, now: u64) -> bool {
        self.connections.load(Ordering::Relaxed) == 0
            && lock(&self.produce).is_idle(window, now)
            && lock(&self.fetch).is_idle(window, now)
    }
}

/// A connection counted against `limits.max_connections` and
/// `limits.max_connections_per_ip` until it is dropped (with its session).
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    state: Arc<PolicyState>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.state.connections.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = lock(&self.state.per_ip);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// A connection counted against its principal's `max_connections` until
/// dropped; also the session's handle on the principal's quota windows.
#[derive(Debug)]
pub(crate) struct PrincipalPermit {
    pub(crate) principal: Arc<PrincipalState>,
}

impl Drop for PrincipalPermit {
    fn drop(&mut self) {
        self.principal.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a new connection is refused before it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionLimit {
    /// `limits.max_connections` connections are open.
    Process {
        /// The limit.
        limit: usize,
    },
    /// `limits.max_connections_per_ip` connections are open from this address.
    PerIp {
        /// The client's address.
        ip: IpAddr,
        /// The limit.
        limit: usize,
    },
}

impl std::fmt::Display for ConnectionLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionLimit::Process { limit } => {
                write!(f, "{limit} connections open (limits.max_connections)")
            }
            ConnectionLimit::PerIp { ip, limit } => {
                write!(f, "{limit} connections open from {ip} (limits.max_connections_per_ip)")
            }
        }
    }
}

impl PolicyState {
    /// The state of a proxy created at `now` with `rules`.
    pub(crate) fn new(rules: PolicyConfig, now: Instant) -> PolicyState {
        PolicyState {
            epoch: now,
            rules: RwLock::new(Arc::new(rules)),
            generation: AtomicU64::new(0),
            principals: Mutex::new(Principals { by_name: HashMap::new(), sweep_at: PRINCIPALS_SWEEP_FROM }),
            connections: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refusals: Mutex::new(HashMap::new()),
        }
    }

    /// Milliseconds on the quota clock at `now`.
    fn clock(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The rules' generation: a session re-resolves its policy when it changed.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the rules (a reload): counts and windows carry over, new
    /// limits apply to every session at its next request.
    pub(crate) fn set_rules(&self, rules: PolicyConfig) {
        let mut current = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        if **current != rules {
            *current = Arc::new(rules);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The rules in force.
    #[cfg(test)]
    pub(crate) fn rules(&self) -> Arc<PolicyConfig> {
        self.rules.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// What applies to `principal` now, and the generation it was resolved at.
    pub(crate) fn resolve(&self, principal: Option<&str>) -> (u64, Resolved, QuotaWindow) {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        (self.generation(), rules.resolve(principal), rules.quota_window)
    }

    /// Counts a new connection from `ip`, unless a limit is reached.
    pub(crate) fn admit_connection(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: Option<usize>,
        max_per_ip: Option<usize>,
    ) -> Result<ConnectionPermit, ConnectionLimit> {
        let total = self.connections.fetch_add(1, Ordering::Relaxed);
        if let Some(limit) = max_total
            && total >= limit
        {
            self.connections.fetch_sub(1, Ordering::Relaxed);
            return Err(ConnectionLimit::Process { limit });
        }
        let mut per_ip = lock(&self.per_ip);
        let count = per_ip.entry(ip).or_insert(0);
        if let Some(limit) = max_per_ip
            && *count as usize >= limit
        {
            if *count == 0 {
                per_ip.remove(&ip);
            }
            drop(per_ip);
            self.connections.fetch_sub(1, Ordering::Relaxed);
            return Err(ConnectionLimit::PerIp { ip, limit });
        }
        *count = count.saturating_add(1);
        Ok(ConnectionPermit { state: self.clone(), ip })
    }

    /// Counts a connection of `principal`, unless it already holds `limit`;
    /// `Err` carries the limit.
    pub(crate) fn admit_principal(
        &self,
        principal: &str,
        limit: Option<u32>,
        window: &QuotaWindow,
        now: Instant,
    ) -> Result<PrincipalPermit, u32> {
        let entry = self.principal(principal, window, now);
        let admitted = entry.connections.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match limit {
            Some(limit) if n >= limit => None,
            _ => Some(n.saturating_add(1)),
        });
        match admitted {
            Ok(_) => Ok(PrincipalPermit { principal: entry }),
            Err(_) => Err(limit.unwrap_or(0)),
        }
    }

    /// The shared state of `principal`, created on first use. The table is
    /// swept of principals nothing counts against when it grows.
    fn principal(&self, name: &str, window: &QuotaWindow, now: Instant) -> Arc<PrincipalState> {
        let mut principals = lock(&self.principals);
        if let Some(entry) = principals.by_name.get(name) {
            return entry.clone();
        }
        if principals.by_name.len() >= principals.sweep_at {
            let now = self.clock(now);
            principals.by_name.retain(|_, p| !p.forgettable(window, now));
            principals.sweep_at = (principals.by_name.len() * 2).max(PRINCIPALS_SWEEP_FROM);
        }
        let entry = Arc::new(PrincipalState::default());
        principals.by_name.insert(name.to_owned(), entry.clone());
        entry
    }

    /// Notes a refusal of `api` to `principal`; true when it should be
    /// logged (once per principal and API per minute).
    pub(crate) fn note_refusal(&self, principal: &str, api: ApiKey, now: Instant) -> bool {
        let mut log = lock(&self.refusals);
        let key = (principal.to_owned(), api);
        match log.get(&key) {
            Some(last) if now.saturating_duration_since(*last) < REFUSAL_LOG_INTERVAL => false,
            _ => {
                if log.len() >= REFUSAL_LOG_MAX {
                    log.retain(|_, last| now.saturating_duration_since(*last) < REFUSAL_LOG_INTERVAL);
                    if log.len() >= REFUSAL_LOG_MAX {
                        log.clear();
                    }
                }
                log.insert(key, now);
                true
            }
        }
    }

    /// Connections open now (counted at accept).
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Connections `principal` holds now.
    #[cfg(test)]
    pub(crate) fn principal_connections(&self, principal: &str) -> u32 {
        lock(&self.principals).by_name.get(principal).map_or(0, |p| p.connections.load(Ordering::Relaxed))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PrincipalLimits, PrincipalPolicy};

    fn state() -> Arc<PolicyState> {
        Arc::new(PolicyState::new(PolicyConfig::default(), Instant::now()))
    }

    #[test]
    fn connections_are_counted_until_their_permits_drop() {
        let state = state();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = state.admit_connection(a, Some(3), Some(2)).expect("first");
        let second = state.admit_connection(a, Some(3), Some(2)).expect("second");
        assert_eq!(
            state.admit_connection(a, Some(3), Some(2)).unwrap_err(),
            ConnectionLimit::PerIp { ip: a, limit: 2 }
        );
        let third = state.admit_connection(b, Some(3), Some(2)).expect("another address");
        assert_eq!(
            state.admit_connection(b, Some(3), Some(2)).unwrap_err(),
            ConnectionLimit::Process { limit: 3 }
        );
        assert_eq!(state.connections(), 3);
        drop(first);
        let again = state.admit_connection(a, Some(3), Some(2)).expect("a slot is free again");
        drop((second, third, again));
        assert_eq!(state.connections(), 0);
        assert!(lock(&state.per_ip).is_empty(), "addresses without connections are forgotten");
        // Without limits every connection is still counted (a reload may add one).
        let unlimited: Vec<_> = (0..5).map(|_| state.admit_connection(a, None, None).expect("ok")).collect();
        assert_eq!(state.connections(), 5);
        drop(unlimited);
    }

    #[test]
    fn principals_are_limited_and_counted() {
        let state = state();
        let now = Instant::now();
        let w = QuotaWindow::default();
        let one = state.admit_principal("alice", Some(2), &w, now).expect("1");
        let two = state.admit_principal("alice", Some(2), &w, now).expect("2");
        assert_eq!(state.admit_principal("alice", Some(2), &w, now).unwrap_err(), 2);
        assert!(state.admit_principal("bob", Some(2), &w, now).is_ok(), "per principal");
        assert_eq!(state.principal_connections("alice"), 2);
        drop(one);
        assert_eq!(state.principal_connections("alice"), 1);
        assert!(Arc::ptr_eq(
            &two.principal,
            &state.admit_principal("alice", None, &w, now).unwrap().principal
        ));
    }

    #[test]
    fn quota_windows_are_shared_by_a_principals_connections() {
        let state = state();
        let now = Instant::now();
        let w = QuotaWindow::default();
        let a = state.admit_principal("alice", None, &w, now).unwrap();
        let b = state.admit_principal("alice", None, &w, now).unwrap();
        assert!(a.principal.throttle(&state, Direction::Produce, 10_000, 1_000, &w, now).is_zero());
        let t = b.principal.throttle(&state, Direction::Produce, 1_000, 1_000, &w, now);
        assert_eq!(t, Duration::from_secs(1), "the second connection sees the first one's bytes");
        assert!(b.principal.throttle(&state, Direction::Fetch, 1_000, 1_000, &w, now).is_zero());
    }

    #[test]
    fn refusals_are_logged_once_per_principal_and_api_per_minute() {
        let state = state();
        let t0 = Instant::now();
        assert!(state.note_refusal("alice", ApiKey::DELETE_TOPICS, t0));
        assert!(!state.note_refusal("alice", ApiKey::DELETE_TOPICS, t0 + Duration::from_secs(59)));
        assert!(state.note_refusal("bob", ApiKey::DELETE_TOPICS, t0));
        assert!(state.note_refusal("alice", ApiKey::PRODUCE, t0));
        assert!(state.note_refusal("alice", ApiKey::DELETE_TOPICS, t0 + Duration::from_secs(60)));
        for i in 0..REFUSAL_LOG_MAX + 10 {
            state.note_refusal(&format!("p{i}"), ApiKey::PRODUCE, t0);
        }
        assert!(lock(&state.refusals).len() <= REFUSAL_LOG_MAX, "bounded");
    }

    #[test]
    fn reloads_bump_the_generation_only_on_change() {
        let state = state();
        let g = state.generation();
        state.set_rules(PolicyConfig::default());
        assert_eq!(state.generation(), g);
        let mut rules = PolicyConfig::default();
        rules.principals.insert(
            "alice".into(),
            PrincipalPolicy {
                limits: PrincipalLimits { max_connections: Some(1), ..Default::default() },
                ..Default::default()
            },
        );
        state.set_rules(rules.clone());
        assert_eq!(state.generation(), g + 1);
        let (generation, resolved, _) = state.resolve(Some("alice"));
        assert_eq!((generation, resolved.limits.max_connections), (g + 1, Some(1)));
        assert_eq!(*state.rules(), rules);
    }

    #[test]
    fn idle_principals_are_swept_when_the_table_grows() {
        let state = state();
        let t0 = Instant::now();
        let w = QuotaWindow::default();
        let kept = state.admit_principal("kept", None, &w, t0).unwrap();
        for i in 0..PRINCIPALS_SWEEP_FROM {
            drop(state.admit_principal(&format!("p{i}"), None, &w, t0).unwrap());
        }
        drop(state.admit_principal("late", None, &w, t0 + Duration::from_secs(60)).unwrap());
        let principals = lock(&state.principals);
        assert!(principals.by_name.len() < 10, "{}", principals.by_name.len());
        assert!(principals.by_name.contains_key("kept"), "a principal with a connection stays");
        drop(kept);
    }
}
