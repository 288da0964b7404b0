//! Byte-rate quotas the way Kafka measures and enforces them.
//!
//! The rate is the sum of what was recorded in the last `samples` windows
//! divided by the span they cover; while fewer than `samples - 1` whole
//! windows have passed, the span is padded with empty ones (so a new client
//! is not judged on its first milliseconds, and may burst up to about
//! `samples - 1` windows' worth). A window with no event for `samples`
//! windows is reset. When the rate after recording exceeds the quota, the
//! client is throttled for the time that brings the rate back to it if
//! nothing more arrives: `(rate - quota) / quota × span`, at most the whole
//! span (KIP-219: the response goes out at once carrying this
//! `throttle_time_ms`, and the connection is not read meanwhile).

use std::time::Duration;

use super::QuotaWindow;

/// One window's total.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// When the window started (ms on the quota clock).
    start: u64,
    /// When its last value was recorded.
    last_event: u64,
    /// The total recorded in it.
    value: f64,
}

impl Sample {
    fn new(now: u64) -> Sample {
        Sample { start: now, last_event: now, value: 0.0 }
    }
}

/// A rate over sampled windows (Kafka's `Rate` over a `WindowedSum`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Rate {
    /// At most `samples + 1` windows, reused round-robin.
    samples: Vec<Sample>,
    current: usize,
}

impl Rate {
    /// Adds `value` at `now` (milliseconds on the quota clock).
    pub(crate) fn record(&mut self, w: &QuotaWindow, value: f64, now: u64) {
        let size = window_ms(w);
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
            self.current = 0;
        }
        let complete = self.samples.get(self.current).is_some_and(|s| now.saturating_sub(s.start) >= size);
        if complete {
            // One window more than `samples` is kept (the oldest may still
            // overlap the measured span).
            let keep = w.samples.max(1) as usize + 1;
            self.current = (self.current + 1) % keep;
            match self.samples.get_mut(self.current) {
                Some(sample) => *sample = Sample::new(now),
                None => {
                    self.samples.push(Sample::new(now));
                    self.current = self.samples.len() - 1;
                }
            }
        }
        if let Some(sample) = self.samples.get_mut(self.current) {
            sample.value += value;
            sample.last_event = now;
        }
    }

    /// Resets windows that saw no event for the whole span.
    fn purge(&mut self, w: &QuotaWindow, now: u64) {
        let expire_age = window_ms(w).saturating_mul(u64::from(w.samples.max(1)));
        for sample in &mut self.samples {
            if now.saturating_sub(sample.last_event) >= expire_age {
                *sample = Sample::new(now);
            }
        }
    }

    /// The span the rate is measured over at `now`, in ms (never 0).
    pub(crate) fn span(&mut self, w: &QuotaWindow, now: u64) -> u64 {
        self.purge(w, now);
        let size = window_ms(w);
        let oldest = self.samples.iter().map(|s| s.start).min().unwrap_or(now);
        let mut elapsed = now.saturating_sub(oldest);
        let full = elapsed / size;
        let min_full = u64::from(w.samples.max(1) - 1);
        if full < min_full {
            elapsed += (min_full - full) * size;
        }
        elapsed.max(1)
    }

    /// The rate at `now`, per second.
    pub(crate) fn measure(&mut self, w: &QuotaWindow, now: u64) -> f64 {
        let span = self.span(w, now);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total * 1000.0 / span as f64
    }

    /// Records `value` at `now` and returns how long the client must wait
    /// for the rate to come back to `quota` (per second): zero when it is
    /// within it.
    pub(crate) fn record_and_throttle(
        &mut self,
        w: &QuotaWindow,
        value: u64,
        quota: u64,
        now: u64,
    ) -> Duration {
        self.record(w, value as f64, now);
        let rate = self.measure(w, now);
        let quota = quota.max(1) as f64;
        if rate <= quota {
            return Duration::ZERO;
        }
        let span = self.span(w, now) as f64;
        let ms = ((rate - quota) / quota * span).round();
        let max = w.max_throttle();
        if ms >= max.as_millis() as f64 { max } else { Duration::from_millis(ms as u64) }
    }

    /// True when nothing was recorded within the span before `now` (the
    /// rate has forgotten everything).
    pub(crate) fn is_idle(&self, w: &QuotaWindow, now: u64) -> bool {
        let expire_age = window_ms(w).saturating_mul(u64::from(w.samples.max(1)));
        self.samples.iter().all(|s| s.value == 0.0 || now.saturating_sub(s.last_event) >= expire_age)
    }
}

/// One window in ms (at least 1).
fn window_ms(w: &QuotaWindow) -> u64 {
    u64::try_from(w.size.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KAFKA: QuotaWindow = QuotaWindow { samples: 11, size: Duration::from_secs(1) };

    #[test]
    fn a_new_client_is_measured_over_the_padded_span() {
        let mut rate = Rate::default();
        // 10 000 bytes at once against 1 000 B/s: the span is padded to ten
        // windows, so the rate is exactly the quota.
        assert_eq!(rate.record_and_throttle(&KAFKA, 10_000, 1_000, 0), Duration::ZERO);
        // 1 000 more: 1 100 B/s over 10 s, 10 % over: one second to wait.
        assert_eq!(rate.record_and_throttle(&KAFKA, 1_000, 1_000, 0), Duration::from_millis(1_000));
        assert_eq!(rate.span(&KAFKA, 0), 10_000);
        assert!((rate.measure(&KAFKA, 0) - 1_100.0).abs() < 1e-9);
    }

    #[test]
    fn throttles_are_capped_at_the_whole_span() {
        let mut rate = Rate::default();
        let throttle = rate.record_and_throttle(&KAFKA, 1 << 40, 1_000, 5);
        assert_eq!(throttle, KAFKA.max_throttle());
        assert_eq!(throttle, Duration::from_secs(11));
    }

    #[test]
    fn old_windows_are_forgotten() {
        let w = QuotaWindow { samples: 2, size: Duration::from_secs(1) };
        let mut rate = Rate::default();
        rate.record(&w, 5_000.0, 0);
        assert!(!rate.is_idle(&w, 1_999));
        assert!(rate.is_idle(&w, 2_000));
        // Two windows later the old value is purged: only the new one counts.
        assert_eq!(rate.record_and_throttle(&w, 100, 1_000, 2_000), Duration::ZERO);
        assert!((rate.measure(&w, 2_000) - 100.0).abs() < 1e-9, "{}", rate.measure(&w, 2_000));
    }

    #[test]
    fn windows_are_reused_round_robin() {
        let w = QuotaWindow { samples: 3, size: Duration::from_millis(100) };
        let mut rate = Rate::default();
        for t in 0..1_000u64 {
            rate.record(&w, 1.0, t * 10);
        }
        assert!(rate.samples.len() <= 4, "at most samples + 1 windows: {}", rate.samples.len());
        // 1 per 10 ms is 100 per second.
        let measured = rate.measure(&w, 9_990);
        assert!((90.0..=110.0).contains(&measured), "{measured}");
    }

    /// A producer that sends `request` bytes whenever it is not throttled,
    /// and waits out each throttle (as a KIP-219 client does): the time it
    /// takes to move `total` bytes, in ms.
    fn time_to_move(w: &QuotaWindow, quota: u64, request: u64, total: u64, gap_ms: u64) -> u64 {
        let mut rate = Rate::default();
        let (mut now, mut moved) = (0u64, 0u64);
        while moved < total {
            let throttle = rate.record_and_throttle(w, request, quota, now);
            moved += request;
            now += gap_ms + throttle.as_millis() as u64;
        }
        now
    }

    #[test]
    fn a_steady_producer_converges_to_the_quota() {
        // 1 MB/s, 16 KiB requests every millisecond if unthrottled: a long
        // transfer averages the quota.
        let ms = time_to_move(&KAFKA, 1_000_000, 16_384, 120_000_000, 1);
        let rate = 120_000_000.0 / (ms as f64 / 1000.0);
        assert!((900_000.0..=1_100_000.0).contains(&rate), "{rate} B/s over {ms} ms");
    }

    #[test]
    fn ten_megabytes_at_one_megabyte_per_second_with_short_windows() {
        // The shape of the end-to-end quota test: with two one-second
        // windows the burst allowance is one window, so 10 MB take ~9 s.
        let w = QuotaWindow { samples: 2, size: Duration::from_secs(1) };
        let ms = time_to_move(&w, 1_000_000, 16_384, 10_000_000, 1);
        assert!((8_000..=12_000).contains(&ms), "{ms} ms");
        // With Kafka's default eleven windows, ten windows' worth is a burst.
        let ms = time_to_move(&KAFKA, 1_000_000, 16_384, 10_000_000, 1);
        assert!(ms < 2_000, "{ms} ms");
    }
}
