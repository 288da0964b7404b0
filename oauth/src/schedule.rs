//! When a fetcher fetches: the schedule, refresh requests (rate-limited) and
//! retries after failures (a doubling pause, bounded). Plain data with time
//! passed in, so the rules are tested without threads or clocks; the
//! fetcher thread sleeps on a [`Wakeup`] until the next due time.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kafka_proxy_core::sasl::oauthbearer::Store;
use tracing::debug;

/// The longest a fetcher sleeps before it checks that its store is still in use.
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(30);

/// When to fetch next.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    /// The next scheduled fetch.
    next: Instant,
    /// The last attempt, for the rate limit on requests.
    last_attempt: Option<Instant>,
    /// A refresh was requested and waits for the rate limit.
    requested: bool,
    /// Shortest pause between two requested fetches.
    min_interval: Duration,
    /// The pause after the next failure.
    backoff: Duration,
    first_backoff: Duration,
    max_backoff: Duration,
}

impl Schedule {
    /// Due at once; requests at most every `min_interval`; failures retried
    /// after `first_backoff`, doubling up to `max_backoff`.
    pub(crate) fn new(
        now: Instant,
        min_interval: Duration,
        first_backoff: Duration,
        max_backoff: Duration,
    ) -> Self {
        Schedule {
            next: now,
            last_attempt: None,
            requested: false,
            min_interval,
            backoff: first_backoff,
            first_backoff,
            max_backoff,
        }
    }

    /// A reader asked for a refresh.
    pub(crate) fn request(&mut self) {
        self.requested = true;
    }

    /// When the next fetch is due.
    pub(crate) fn due(&self) -> Instant {
        let requested = if self.requested {
            Some(self.last_attempt.map_or(self.next, |last| last + self.min_interval))
        } else {
            None
        };
        requested.map_or(self.next, |r| r.min(self.next))
    }

    /// True when a fetch is due at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        now >= self.due()
    }

    /// A fetch succeeded at `now`; the next one is due after `valid_for`.
    pub(crate) fn succeeded(&mut self, now: Instant, valid_for: Duration) {
        self.last_attempt = Some(now);
        self.requested = false;
        self.backoff = self.first_backoff;
        self.next = now + valid_for;
    }

    /// A fetch failed at `now`: retried after the current backoff, which doubles.
    pub(crate) fn failed(&mut self, now: Instant) -> Duration {
        let pause = self.backoff;
        self.last_attempt = Some(now);
        self.requested = false;
        self.next = now + pause;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        pause
    }
}

/// A fetcher's sleep, cut short by a refresh request.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    woken: Mutex<bool>,
    signal: Condvar,
}

impl Wakeup {
    /// A wake-up shared by the store's waker and the fetcher.
    pub(crate) fn new() -> Arc<Wakeup> {
        Arc::new(Wakeup::default())
    }

    /// Wakes the sleeper (or makes its next sleep return at once).
    pub(crate) fn wake(&self) {
        *self.woken.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.signal.notify_one();
    }

    /// Sleeps until `deadline` (at most [`MAX_SLEEP`]) or a wake-up.
    pub(crate) fn sleep_until(&self, deadline: Instant) {
        let now = Instant::now();
        let timeout = deadline.saturating_duration_since(now).min(MAX_SLEEP);
        let woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut woken, _) = self
            .signal
            .wait_timeout_while(woken, timeout, |woken| !*woken)
            .unwrap_or_else(PoisonError::into_inner);
        *woken = false;
    }
}

/// How a fetcher fetches into its store once, rescheduling on the outcome.
pub(crate) type Fetch<E, T> = fn(&Store<E, T>, &ureq::Agent, &mut Schedule);

/// Fetches once now, then keeps `store` fresh on a thread named `thread`:
/// it sleeps until `schedule` is due or a reader asks for a refresh, and
/// ends once no configuration uses the store any more.
pub(crate) fn keep_fresh<E, T>(
    store: &Arc<Store<E, T>>,
    agent: ureq::Agent,
    mut schedule: Schedule,
    thread: &'static str,
    fetch: Fetch<E, T>,
) -> std::io::Result<()>
where
    E: Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    let wakeup = Wakeup::new();
    let waker = wakeup.clone();
    store.set_waker(Arc::new(move || waker.wake()));
    fetch(store, &agent, &mut schedule);
    let weak = Arc::downgrade(store);
    let run = move || {
        loop {
            wakeup.sleep_until(schedule.due());
            let Some(store) = weak.upgrade() else {
                debug!(thread, "store no longer in use: refresh thread ends");
                return;
            };
            if store.take_refresh_request() {
                schedule.request();
            }
            if schedule.is_due(Instant::now()) {
                fetch(&store, &agent, &mut schedule);
            }
        }
    };
    std::thread::Builder::new().name(thread.to_owned()).spawn(run).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn scheduled_then_requested_within_the_rate_limit() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, S, 8 * S);
        assert!(s.is_due(t0), "the first fetch is due at once");
        s.succeeded(t0, 3600 * S);
        assert!(!s.is_due(t0 + S));
        s.request();
        assert_eq!(s.due(), t0 + 10 * S, "a request waits for the rate limit");
        assert!(s.is_due(t0 + 10 * S));
        s.succeeded(t0 + 10 * S, 3600 * S);
        assert_eq!(s.due(), t0 + 3610 * S);
        s.request();
        assert_eq!(s.due(), t0 + 20 * S);
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, S, 4 * S);
        assert_eq!(s.failed(t0), S);
        assert_eq!(s.due(), t0 + S);
        assert_eq!(s.failed(t0 + S), 2 * S);
        assert_eq!(s.failed(t0 + 3 * S), 4 * S);
        assert_eq!(s.failed(t0 + 7 * S), 4 * S, "bounded");
        s.succeeded(t0 + 11 * S, 60 * S);
        assert_eq!(s.failed(t0 + 71 * S), S);
    }

    #[test]
    fn a_wakeup_cuts_the_sleep_short() {
        let wakeup = Wakeup::new();
        wakeup.wake();
        let start = Instant::now();
        wakeup.sleep_until(start + 20 * S);
        assert!(start.elapsed() < 10 * S, "returned at once after the wake-up");
    }
}
