//! Every metric family the proxy exports, with its name, help and labels.
//!
//! Two groups:
//!
//! * The Go kafka-proxy's five, byte for byte (names, help, label names and
//!   value formats: `broker` is the upstream `host:port`, `api_key` and
//!   `api_version` are numbers), so its dashboards work unchanged:
//!   `proxy_opened_connections`, `proxy_connections_total`,
//!   `proxy_requests_total`, `proxy_requests_bytes`, `proxy_responses_bytes`.
//! * Our own, named by Prometheus conventions (`kafka_proxy_` prefix, base
//!   units in the name, `_total` on counters).
//!
//! Label values are bounded: APIs by Kafka's name (unnamed keys are `other`),
//! brokers by address or listener, reasons and mechanisms from fixed lists;
//! never client addresses, client ids or user names.

use kafka_proxy_core::proxy::ProxyStats;
use prometheus::core::Collector;
use prometheus::{CounterVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::latency::LatencyFamily;

/// The registry and handles to every family.
#[derive(Debug)]
pub struct Families {
    registry: Registry,
    // --- the Go kafka-proxy's families ---
    /// `proxy_opened_connections{broker}`: upstream connections open now.
    pub opened_connections: IntGaugeVec,
    /// `proxy_connections_total{broker}`: upstream connections made.
    pub connections: IntCounterVec,
    /// `proxy_requests_total{broker,api_key,api_version}`: client requests.
    pub requests: IntCounterVec,
    /// `proxy_requests_bytes{broker}`: bytes of client request frames.
    pub request_bytes: IntCounterVec,
    /// `proxy_responses_bytes{broker}`: bytes of broker response frames.
    pub response_bytes: IntCounterVec,
    // --- ours ---
    /// `kafka_proxy_build_info{version,runtime}`: always 1.
    pub build_info: IntGaugeVec,
    /// `kafka_proxy_client_connections_total{listener}`: client connections accepted.
    pub client_connections: IntCounterVec,
    /// `kafka_proxy_client_connections_active{listener}`: client connections open now.
    pub client_connections_open: IntGaugeVec,
    /// `kafka_proxy_connections_closed_total{reason}`: connection pairs ended, by why.
    pub closed: IntCounterVec,
    /// `kafka_proxy_upstream_connect_failures_total{broker,reason}`.
    pub connect_failures: IntCounterVec,
    /// `kafka_proxy_tls_handshakes_total{side,result}`.
    pub tls_handshakes: IntCounterVec,
    /// `kafka_proxy_authentications_total{side,mechanism}`: successes.
    pub authentications: IntCounterVec,
    /// `kafka_proxy_authentication_failures_total{side,mechanism,reason}`.
    pub authentication_failures: IntCounterVec,
    /// `kafka_proxy_request_timeouts_total{api}`: requests the broker did not answer in time.
    pub request_timeouts: IntCounterVec,
    /// `kafka_proxy_request_duration_seconds{api}`: request in to response out.
    pub latency: LatencyFamily,
    /// `kafka_proxy_received_bytes_total{side,path}`: bytes read from sockets.
    pub received_bytes: IntCounterVec,
    /// `kafka_proxy_sent_bytes_total{side,path}`: bytes written to sockets.
    pub sent_bytes: IntCounterVec,
    /// `kafka_proxy_listeners`: listeners open.
    pub listeners: IntGauge,
    /// `kafka_proxy_brokers`: brokers learned from the cluster.
    pub brokers: IntGauge,
    /// `kafka_proxy_draining`: 1 once a drain started.
    pub draining: IntGauge,
    /// `kafka_proxy_ready`: 1 when `/ready` answers 200.
    pub ready: IntGauge,
    /// `kafka_proxy_config_reloads_total{result}`: `applied` or `failed`.
    pub reloads: IntCounterVec,
    /// `kafka_proxy_refused_connections_total`: accepted on a listener already gone.
    pub refused_connections: IntCounter,
    /// `kafka_proxy_login_throttle_delayed_total`: logins the throttle postponed.
    pub logins_delayed: IntCounter,
    /// `kafka_proxy_login_throttle_tracked`: addresses and names with failures remembered.
    pub login_throttle_tracked: IntGauge,
    /// `kafka_proxy_policy_refusals_total{api,reason}`: requests the policy forbids.
    pub policy_refusals: IntCounterVec,
    /// `kafka_proxy_connection_limit_refusals_total{limit}`: connections refused by a limit.
    pub connection_limit_refusals: IntCounterVec,
    /// `kafka_proxy_quota_throttles_total{api}`: requests or responses throttled by a quota.
    pub quota_throttles: IntCounterVec,
    /// `kafka_proxy_quota_throttle_seconds_total{api}`: the throttle time handed out.
    pub quota_throttle_seconds: CounterVec,
    /// What the proxy's counters read last (they are totals; the families add deltas).
    seen: std::sync::Mutex<SeenTotals>,
}

/// The proxy's cumulative counters as last folded into the families.
#[derive(Debug, Default, Clone, Copy)]
struct SeenTotals {
    reloads: u64,
    refused_accepts: u64,
    logins_delayed: u64,
    over_max_connections: u64,
    over_max_connections_per_ip: u64,
}

/// Adds to `counter` what `total` grew by since `seen`, and remembers it.
fn fold_total(counter: &IntCounter, seen: &mut u64, total: u64) {
    counter.inc_by(total.saturating_sub(*seen));
    *seen = total.max(*seen);
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let family = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let family = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

fn single_gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let gauge = IntGauge::new(name, help)?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

impl Families {
    /// Every family, registered. Fails only on an invalid or duplicate name
    /// (a bug: the names are constants, and a test builds them).
    pub fn try_new() -> prometheus::Result<Families> {
        let r = Registry::new();
        let latency = LatencyFamily::new(
            "kafka_proxy_request_duration_seconds",
            "Time from a request's last byte in to its response's first byte out, by API",
        )?;
        r.register(Box::new(latency.clone()) as Box<dyn Collector>)?;
        Ok(Families {
            opened_connections: gauge(
                &r,
                "proxy_opened_connections",
                "Number of opened connections",
                &["broker"],
            )?,
            connections: counter(
                &r,
                "proxy_connections_total",
                "Total number of created connections",
                &["broker"],
            )?,
            requests: counter(
                &r,
                "proxy_requests_total",
                "Total number of requests sent",
                &["broker", "api_key", "api_version"],
            )?,
            request_bytes: counter(&r, "proxy_requests_bytes", "Size of outgoing requests", &["broker"])?,
            response_bytes: counter(&r, "proxy_responses_bytes", "Size of incoming responses", &["broker"])?,
            build_info: gauge(
                &r,
                "kafka_proxy_build_info",
                "Always 1: the version and runtime of this kafka-proxy",
                &["version", "runtime"],
            )?,
            client_connections: counter(
                &r,
                "kafka_proxy_client_connections_total",
                "Client connections accepted, by listener",
                &["listener"],
            )?,
            client_connections_open: gauge(
                &r,
                "kafka_proxy_client_connections_active",
                "Client connections open now, by listener",
                &["listener"],
            )?,
            closed: counter(
                &r,
                "kafka_proxy_connections_closed_total",
                "Client and broker connection pairs ended, by reason",
                &["reason"],
            )?,
            connect_failures: counter(
                &r,
                "kafka_proxy_upstream_connect_failures_total",
                "Connections to brokers that could not be opened (reason: error or timeout)",
                &["broker", "reason"],
            )?,
            tls_handshakes: counter(
                &r,
                "kafka_proxy_tls_handshakes_total",
                "TLS handshakes with clients and brokers (result: ok or failed)",
                &["side", "result"],
            )?,
            authentications: counter(
                &r,
                "kafka_proxy_authentications_total",
                "Successful authentications of clients (side client) and of the proxy at brokers (side broker)",
                &["side", "mechanism"],
            )?,
            authentication_failures: counter(
                &r,
                "kafka_proxy_authentication_failures_total",
                "Failed authentications, by side, mechanism and reason",
                &["side", "mechanism", "reason"],
            )?,
            request_timeouts: counter(
                &r,
                "kafka_proxy_request_timeouts_total",
                "Requests a broker did not answer within their deadline (the connection pair is closed)",
                &["api"],
            )?,
            latency,
            received_bytes: counter(
                &r,
                "kafka_proxy_received_bytes_total",
                "Bytes read from client and broker sockets, copied through the proxy or spliced past it",
                &["side", "path"],
            )?,
            sent_bytes: counter(
                &r,
                "kafka_proxy_sent_bytes_total",
                "Bytes written to client and broker sockets, copied through the proxy or spliced past it",
                &["side", "path"],
            )?,
            listeners: single_gauge(
                &r,
                "kafka_proxy_listeners",
                "Listeners open (bootstrap, broker and SNI ports)",
            )?,
            brokers: single_gauge(&r, "kafka_proxy_brokers", "Brokers learned from the cluster")?,
            draining: single_gauge(&r, "kafka_proxy_draining", "1 once the proxy is draining (SIGTERM)")?,
            ready: single_gauge(&r, "kafka_proxy_ready", "1 when /ready answers 200")?,
            reloads: counter(
                &r,
                "kafka_proxy_config_reloads_total",
                "Configuration reloads (SIGHUP), applied or failed",
                &["result"],
            )?,
            refused_connections: {
                let c = IntCounter::new(
                    "kafka_proxy_refused_connections_total",
                    "Connections accepted on a listener the proxy had already given up",
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            logins_delayed: {
                let c = IntCounter::new(
                    "kafka_proxy_login_throttle_delayed_total",
                    "Client logins whose evaluation the login throttle postponed (repeated failures from one address or name)",
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            login_throttle_tracked: single_gauge(
                &r,
                "kafka_proxy_login_throttle_tracked",
                "Client addresses and user names the login throttle remembers failures of",
            )?,
            policy_refusals: counter(
                &r,
                "kafka_proxy_policy_refusals_total",
                "Requests refused by the policy's forbidden APIs, answered with an authorization_error or closed",
                &["api", "reason"],
            )?,
            connection_limit_refusals: counter(
                &r,
                "kafka_proxy_connection_limit_refusals_total",
                "Connections refused by limits.max_connections, limits.max_connections_per_ip or a \
                 principal's max_connections",
                &["limit"],
            )?,
            quota_throttles: counter(
                &r,
                "kafka_proxy_quota_throttles_total",
                "Produce requests and Fetch responses throttled by a principal's byte-rate quota",
                &["api"],
            )?,
            quota_throttle_seconds: {
                let family = CounterVec::new(
                    Opts::new(
                        "kafka_proxy_quota_throttle_seconds_total",
                        "Throttle time handed out by byte-rate quotas (clients are not read meanwhile)",
                    ),
                    &["api"],
                )?;
                r.register(Box::new(family.clone()))?;
                family
            },
            seen: std::sync::Mutex::new(SeenTotals::default()),
            registry: r,
        })
    }

    /// Every family, registered.
    pub fn new() -> Families {
        match Families::try_new() {
            Ok(families) => families,
            // The names are constants checked by this crate's tests.
            Err(error) => unreachable!("metric families do not register: {error}"),
        }
    }

    /// The proxy's own numbers.
    pub(crate) fn observe_proxy(&self, stats: &ProxyStats) {
        self.listeners.set(i64::try_from(stats.listeners).unwrap_or(i64::MAX));
        self.brokers.set(i64::try_from(stats.brokers).unwrap_or(i64::MAX));
        self.draining.set(i64::from(stats.draining));
        self.login_throttle_tracked.set(i64::try_from(stats.login_throttle.tracked).unwrap_or(i64::MAX));
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        fold_total(&self.reloads.with_label_values(&["applied"]), &mut seen.reloads, stats.reloads);
        fold_total(&self.refused_connections, &mut seen.refused_accepts, stats.refused_accepts);
        fold_total(&self.logins_delayed, &mut seen.logins_delayed, stats.login_throttle.delayed);
        let limits = &self.connection_limit_refusals;
        fold_total(
            &limits.with_label_values(&["max_connections"]),
            &mut seen.over_max_connections,
            stats.over_max_connections,
        );
        fold_total(
            &limits.with_label_values(&["max_connections_per_ip"]),
            &mut seen.over_max_connections_per_ip,
            stats.over_max_connections_per_ip,
        );
    }

    /// Every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding our own, valid families into a String cannot fail.
        let _ = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Families {
    fn default() -> Families {
        Families::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_go_proxy_names_are_exact() {
        let f = Families::try_new().expect("every family registers");
        f.opened_connections.with_label_values(&["b:9092"]).set(2);
        f.connections.with_label_values(&["b:9092"]).inc();
        f.requests.with_label_values(&["b:9092", "0", "9"]).inc();
        f.request_bytes.with_label_values(&["b:9092"]).inc_by(100);
        f.response_bytes.with_label_values(&["b:9092"]).inc_by(50);
        let text = f.encode();
        for line in [
            "# TYPE proxy_opened_connections gauge",
            "proxy_opened_connections{broker=\"b:9092\"} 2",
            "# TYPE proxy_connections_total counter",
            "proxy_connections_total{broker=\"b:9092\"} 1",
            "proxy_requests_total{api_key=\"0\",api_version=\"9\",broker=\"b:9092\"} 1",
            "# TYPE proxy_requests_bytes counter",
            "proxy_requests_bytes{broker=\"b:9092\"} 100",
            "# HELP proxy_responses_bytes Size of incoming responses",
            "proxy_responses_bytes{broker=\"b:9092\"} 50",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
        }
    }

    #[test]
    fn proxy_totals_are_folded_as_deltas() {
        use kafka_proxy_core::sasl::throttle::ThrottleStats;
        let f = Families::try_new().expect("every family registers");
        let mut stats = ProxyStats {
            listeners: 2,
            brokers: 1,
            draining: false,
            probes_cluster: true,
            reloads: 1,
            refused_accepts: 0,
            login_throttle: ThrottleStats { failures: 4, delayed: 3, tracked: 2 },
            over_max_connections: 2,
            over_max_connections_per_ip: 1,
            ..ProxyStats::default()
        };
        f.observe_proxy(&stats);
        stats.reloads = 2;
        stats.login_throttle = ThrottleStats { failures: 9, delayed: 7, tracked: 1 };
        stats.over_max_connections_per_ip = 4;
        f.observe_proxy(&stats);
        f.observe_proxy(&stats);
        let text = f.encode();
        for line in [
            "kafka_proxy_config_reloads_total{result=\"applied\"} 2",
            "kafka_proxy_login_throttle_delayed_total 7",
            "kafka_proxy_login_throttle_tracked 1",
            "kafka_proxy_listeners 2",
            "kafka_proxy_connection_limit_refusals_total{limit=\"max_connections\"} 2",
            "kafka_proxy_connection_limit_refusals_total{limit=\"max_connections_per_ip\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
        }
    }
}
