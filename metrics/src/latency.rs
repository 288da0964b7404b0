//! The request latency histogram, fed with bucket counts the sessions
//! already made (`prometheus`'s own histogram only takes one observation at
//! a time), exported as a standard Prometheus histogram.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use kafka_proxy_core::session::{LATENCY_BOUNDS_MICROS, LatencyHistogram};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType};

/// Buckets per API: the bounds of [`LATENCY_BOUNDS_MICROS`] and `+Inf`.
const BUCKETS: usize = LATENCY_BOUNDS_MICROS.len() + 1;

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    buckets: [u64; BUCKETS],
    sum_micros: u64,
}

/// `kafka_proxy_request_duration_seconds{api}`.
#[derive(Debug, Clone)]
pub struct LatencyFamily {
    desc: Desc,
    by_api: Arc<Mutex<BTreeMap<&'static str, Totals>>>,
}

impl LatencyFamily {
    pub(crate) fn new(name: &str, help: &str) -> prometheus::Result<LatencyFamily> {
        let desc = Desc::new(name.to_owned(), help.to_owned(), vec!["api".to_owned()], Default::default())?;
        Ok(LatencyFamily { desc, by_api: Arc::default() })
    }

    /// Adds a session's counts for `api`.
    pub fn add(&self, api: &'static str, counts: &LatencyHistogram) {
        if counts.count() == 0 {
            return;
        }
        let mut by_api = self.by_api.lock().unwrap_or_else(PoisonError::into_inner);
        let totals = by_api.entry(api).or_default();
        for (total, n) in totals.buckets.iter_mut().zip(counts.buckets) {
            *total = total.saturating_add(u64::from(n));
        }
        totals.sum_micros = totals.sum_micros.saturating_add(counts.sum_micros);
    }
}

impl Collector for LatencyFamily {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let by_api = self.by_api.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut metrics = Vec::with_capacity(by_api.len());
        for (api, totals) in by_api {
            let mut cumulative = 0u64;
            let mut buckets = Vec::with_capacity(LATENCY_BOUNDS_MICROS.len());
            for (bound, n) in LATENCY_BOUNDS_MICROS.iter().zip(totals.buckets) {
                cumulative += n;
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(*bound as f64 / 1e6);
                bucket.set_cumulative_count(cumulative);
                buckets.push(bucket);
            }
            let mut histogram = Histogram::default();
            histogram.set_bucket(buckets);
            histogram.set_sample_count(totals.buckets.iter().sum());
            histogram.set_sample_sum(totals.sum_micros as f64 / 1e6);
            let mut label = LabelPair::default();
            label.set_name("api".to_owned());
            label.set_value(api.to_owned());
            let mut metric = Metric::from_label(vec![label]);
            metric.set_histogram(histogram);
            metrics.push(metric);
        }
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(MetricType::HISTOGRAM);
        family.set_metric(metrics);
        vec![family]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_counts_become_a_cumulative_histogram() {
        let family = LatencyFamily::new("lat_seconds", "help").unwrap();
        let mut h = LatencyHistogram::default();
        h.observe(Duration::from_micros(400));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        family.add("Fetch", &h);
        family.add("Fetch", &h);
        let registry = prometheus::Registry::new();
        registry.register(Box::new(family)).unwrap();
        let mut text = String::new();
        prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut text).unwrap();
        for line in [
            "# TYPE lat_seconds histogram",
            "lat_seconds_bucket{api=\"Fetch\",le=\"0.0005\"} 2",
            "lat_seconds_bucket{api=\"Fetch\",le=\"0.005\"} 4",
            "lat_seconds_bucket{api=\"Fetch\",le=\"30\"} 4",
            "lat_seconds_bucket{api=\"Fetch\",le=\"+Inf\"} 6",
            "lat_seconds_count{api=\"Fetch\"} 6",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
        }
    }
}
