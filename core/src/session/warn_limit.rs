//! Bounds how many connection failures are logged per second.
//!
//! A misconfigured client reconnecting in a loop (a wrong certificate, a bad
//! password) fails dozens of times a second; one warning per failure would
//! drown everything else. Past the budget, failures are counted and the
//! count is reported with the next warning that gets through.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// Warnings let through per second.
pub(super) const PER_SECOND: u32 = 20;

/// A per-second budget of warnings, shared by every session of a proxy.
#[derive(Debug, Default)]
pub(crate) struct WarnLimiter {
    base: OnceLock<Instant>,
    second: AtomicU64,
    used: AtomicU32,
    suppressed: AtomicU64,
}

impl WarnLimiter {
    /// `Some(n)` when a warning at `now` may be logged, `n` being how many
    /// were suppressed since the last one that was; `None` when it is over
    /// the budget (and counted).
    pub(crate) fn allow(&self, now: Instant) -> Option<u64> {
        let base = *self.base.get_or_init(|| now);
        let second = now.saturating_duration_since(base).as_secs();
        if self.second.swap(second, Ordering::Relaxed) != second {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < PER_SECOND {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_cut_and_counted() {
        let limiter = WarnLimiter::default();
        let t0 = Instant::now();
        let allowed = (0..100).filter(|_| limiter.allow(t0).is_some()).count();
        assert_eq!(allowed, PER_SECOND as usize);
        assert_eq!(limiter.allow(t0 + Duration::from_secs(1)), Some(80), "the next second reports the rest");
        assert_eq!(limiter.allow(t0 + Duration::from_secs(1)), Some(0));
    }
}
