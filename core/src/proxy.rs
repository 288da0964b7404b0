//! The process-wide state: configuration, learned topology, listeners.
//!
//! [`Proxy`] decides what an accepted connection is (which bootstrap server
//! or broker it reaches) and turns what sessions observe about the cluster
//! into listener changes (`port_offset`) or SNI routes (`sni`). It never
//! touches a socket: it emits [`ProxyAction`]s that the runtime carries out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};

use crate::cluster::ClusterView;
use crate::config::{DownstreamSasl, HostPort, Mapping, ProxyConfig};
use crate::policy::state::PolicyState;
use crate::policy::{ConnectionLimit, refusal};
use crate::rewrite::{AddressMap, ApiVersionsPolicy, Broker, Observed};
use crate::route::port_offset::PortOffsetMap;
use crate::route::sni::{SniRoute, SniRoutes};
use crate::route::{ListenerId, Route};
use crate::sasl::throttle::{LoginThrottle, ThrottleStats};
use crate::session::{ProxyEvent, ProxyEventKind, Session, SessionConfig, WarnLimiter};

/// How long a closing session may flush what it already queued.
const LINGER: Duration = Duration::from_secs(5);

/// First and longest wait between failed probes of the cluster.
const PROBE_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Whether the proxy still has to learn the cluster on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// Learned (or probing is impossible with this configuration).
    Done,
    /// A probe session is out.
    Running,
    /// The next probe starts at this time.
    Due(Instant),
}

/// Something for the runtime to carry out, drained with [`Proxy::poll_action`].
#[derive(Debug)]
pub enum ProxyAction {
    /// Bind and accept on `addr`; pass `id` to [`Proxy::accept`].
    Listen {
        /// What the listener serves.
        id: ListenerId,
        /// Where to bind.
        addr: SocketAddr,
    },
    /// Stop accepting on `id` (connections already accepted continue).
    Unlisten {
        /// The listener.
        id: ListenerId,
    },
    /// Drive this session like an accepted one, but without a client socket:
    /// the proxy's own look at the cluster (a Metadata probe).
    Spawn(Box<Session>),
}

/// Why an accepted connection cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptError {
    /// The listener is not (or no longer) known.
    UnknownListener(ListenerId),
    /// A connection limit is reached: close the connection at once. The
    /// proxy has counted and logged it (at a bounded rate).
    ConnectionLimit(ConnectionLimit),
}

impl AcceptError {
    /// True when the proxy logged the refusal itself (rate-limited), so the
    /// runtime need not.
    pub fn logged_by_proxy(&self) -> bool {
        matches!(self, AcceptError::ConnectionLimit(_))
    }
}

impl std::fmt::Display for AcceptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AcceptError::UnknownListener(id) => write!(f, "no route for listener {id}"),
            AcceptError::ConnectionLimit(limit) => write!(f, "connection limit reached: {limit}"),
        }
    }
}

impl std::error::Error for AcceptError {}

/// The process-wide proxy state.
#[derive(Debug)]
pub struct Proxy {
    config: Arc<ProxyConfig>,
    session_config: Arc<SessionConfig>,
    /// Policy rules, connection counts and quota windows, kept across reloads.
    policy: Arc<PolicyState>,
    /// Bounds the log lines about connections refused at accept.
    refusals: WarnLimiter,
    /// Brokers learned from the cluster: node id → advertised address.
    brokers: BTreeMap<i32, HostPort>,
    /// Listeners asked for and not yet removed.
    listeners: BTreeSet<ListenerId>,
    /// Node ids already reported as not exposable, so the log says it once.
    refused: BTreeSet<i32>,
    /// SNI mode: the routes learned so far.
    sni: Option<SniRoutes>,
    probe: Probe,
    /// Wall-clock time at `anchor_instant`, for sessions the proxy starts itself.
    anchor_wall: SystemTime,
    anchor_instant: Instant,
    /// Draining: listeners are closed and no new connection is taken.
    draining: bool,
    /// Listeners closed by the drain, whose backlogs may still be accepted.
    drained_listeners: BTreeSet<ListenerId>,
    probe_backoff: Duration,
    actions: VecDeque<ProxyAction>,
    next_session: u64,
    /// Configurations taken by [`Proxy::reload`].
    reloads: u64,
    /// Connections accepted on a listener the proxy no longer knows.
    refused_accepts: u64,
    /// Connections closed at accept by `limits.max_connections` and by
    /// `limits.max_connections_per_ip`.
    over_limits: (u64, u64),
    /// What sessions learned of the cluster (ApiVersions), kept across reloads.
    cluster: Arc<ClusterView>,
    /// Failed-login throttling, kept across reloads.
    throttle: Arc<LoginThrottle>,
}

/// The proxy's own numbers, for metrics and readiness ([`Proxy::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Listeners the proxy asked for and still wants (bootstrap, brokers, SNI).
    pub listeners: usize,
    /// Brokers learned from the cluster.
    pub brokers: usize,
    /// True once [`Proxy::drain`] was called.
    pub draining: bool,
    /// True when the proxy learns the cluster by itself (a probe); false when
    /// only clients' Metadata can teach it (SASL passed through, no identity).
    pub probes_cluster: bool,
    /// Configurations taken by [`Proxy::reload`].
    pub reloads: u64,
    /// Connections accepted on a listener the proxy no longer knows.
    pub refused_accepts: u64,
    /// Client connections open now (counted from accept to session end).
    pub connections: usize,
    /// Connections closed at accept by `limits.max_connections`.
    pub over_max_connections: u64,
    /// Connections closed at accept by `limits.max_connections_per_ip`.
    pub over_max_connections_per_ip: u64,
    /// The login throttle's counters (shared by every session).
    pub login_throttle: ThrottleStats,
}

impl Proxy {
    /// A proxy for `config`, created at `now` (`wall` is the wall-clock time
    /// then); its first actions open the bootstrap listeners (`port_offset`)
    /// or the SNI listener (`sni`), and start a probe of the cluster.
    pub fn new(config: ProxyConfig, now: Instant, wall: SystemTime) -> Proxy {
        let address_map: Arc<dyn AddressMap + Send + Sync> = match &config.mapping {
            Mapping::PortOffset(p) => Arc::new(PortOffsetMap::new(p.clone())),
            Mapping::Sni(sni) => sni.names.clone(),
        };
        let policy = Arc::new(PolicyState::new(config.policy.clone(), now));
        let cluster = Arc::new(ClusterView::default());
        let throttle = Arc::new(LoginThrottle::new(config.limits.login_throttle));
        let session_config = session_config(&config, address_map, &cluster, &throttle, &policy);
        let sni = match &config.mapping {
            Mapping::Sni(sni) => Some(SniRoutes::new(sni.names.clone())),
            Mapping::PortOffset(_) => None,
        };
        let mut proxy = Proxy {
            sni,
            probe: Probe::Running,
            anchor_wall: wall,
            anchor_instant: now,
            draining: false,
            drained_listeners: BTreeSet::new(),
            probe_backoff: PROBE_BACKOFF.0,
            config: Arc::new(config),
            session_config,
            policy,
            refusals: WarnLimiter::default(),
            brokers: BTreeMap::new(),
            listeners: BTreeSet::new(),
            refused: BTreeSet::new(),
            actions: VecDeque::new(),
            next_session: 1,
            reloads: 0,
            refused_accepts: 0,
            over_limits: (0, 0),
            cluster,
            throttle,
        };
        match &proxy.config.mapping {
            Mapping::PortOffset(_) => {
                for slot in 0..proxy.config.bootstrap.len() {
                    if let Ok(slot) = u16::try_from(slot) {
                        proxy.listen(ListenerId::Bootstrap(slot));
                    }
                }
            }
            Mapping::Sni(_) => proxy.listen(ListenerId::Sni),
        }
        // A restarted proxy must reopen broker ports (and SNI routes) clients
        // already know, before any client asks bootstrap for Metadata again.
        if proxy.can_probe() {
            proxy.start_probe(now);
        } else {
            proxy.probe = Probe::Done;
            info!("brokers are learned from client traffic (no identity to ask the cluster with)");
        }
        proxy
    }

    /// Takes a new configuration without restarting: credentials, keys,
    /// certificates, SASL and TLS settings, limits and `resolve` rules apply
    /// to connections accepted from now on (open ones keep theirs); the
    /// policy applies to every connection at its next request (connection
    /// counts and quota windows carry over). Listener
    /// and mapping settings need a restart: a change to them is reported and
    /// not applied.
    pub fn reload(&mut self, config: ProxyConfig) -> Vec<&'static str> {
        let mut ignored = Vec::new();
        if config.bind_ip != self.config.bind_ip {
            ignored.push("bind_address");
        }
        if config.bootstrap != self.config.bootstrap {
            ignored.push("upstream.bootstrap_servers");
        }
        let same_mapping = match (&config.mapping, &self.config.mapping) {
            (Mapping::PortOffset(a), Mapping::PortOffset(b)) => a == b,
            (Mapping::Sni(a), Mapping::Sni(b)) => a.bind_port == b.bind_port,
            _ => false,
        };
        if !same_mapping {
            ignored.push("broker_mapping");
        }
        let mut next = (*self.config).clone();
        next.security = config.security;
        next.limits = config.limits;
        next.resolve = config.resolve;
        next.policy = config.policy;
        next.client_id = config.client_id;
        self.reloads += 1;
        self.policy.set_rules(next.policy.clone());
        self.throttle.reload(next.limits.login_throttle);
        self.session_config = session_config(
            &next,
            self.session_config.address_map.clone(),
            &self.cluster,
            &self.throttle,
            &self.policy,
        );
        self.config = Arc::new(next);
        info!(ignored = ?ignored, "configuration reloaded");
        ignored
    }

    /// True when the proxy can ask the cluster for Metadata by itself: it
    /// needs an upstream identity unless the brokers take unauthenticated clients.
    fn can_probe(&self) -> bool {
        use crate::config::UpstreamLogin;
        match (&self.config.security.downstream_sasl, &self.config.security.upstream_login) {
            (DownstreamSasl::PassThrough, _) => false,
            (_, UpstreamLogin::Swap(map)) => map.contains_key(crate::session::ANONYMOUS),
            _ => true,
        }
    }

    /// Starts a session that asks bootstrap server 0 for the cluster's
    /// brokers and closes ([`ProxyAction::Spawn`]).
    fn start_probe(&mut self, now: Instant) {
        let Some(upstream) = self.config.bootstrap.first().cloned() else {
            self.probe = Probe::Done;
            return;
        };
        self.probe = Probe::Running;
        let route = self.route_to(ListenerId::Bootstrap(0), upstream);
        let session_id = self.next_session;
        self.next_session += 1;
        tracing::debug!(session = session_id, upstream = %route.upstream, "probing the cluster");
        let wall = self.wall(now);
        let session = Session::new_probe(session_id, now, wall, self.session_config.clone(), route);
        self.actions.push_back(ProxyAction::Spawn(Box::new(session)));
    }

    /// Wall-clock time at `now`.
    fn wall(&self, now: Instant) -> SystemTime {
        self.anchor_wall + now.saturating_duration_since(self.anchor_instant)
    }

    /// A session's message for the proxy ([`crate::session::Event::Proxy`]):
    /// answers an SNI route request, learns brokers a response named (and
    /// opens or closes their listeners), or notes the end of a probe. Drain
    /// [`Proxy::poll_action`] afterwards.
    pub fn handle_session_event(&mut self, now: Instant, session: &mut Session, event: ProxyEvent) {
        match event.0 {
            ProxyEventKind::Route(name) => match self.route_sni(name.as_deref()) {
                Some(route) => session.handle_route(now, route),
                None => session.handle_no_route(now, name.as_deref().unwrap_or("")),
            },
            ProxyEventKind::Observed(observed) => self.handle_observed(now, observed),
            ProxyEventKind::ProbeEnded => self.handle_probe_closed(now),
        }
    }

    /// The probe session ended: done when brokers were learned, otherwise
    /// tried again later (with growing pauses).
    fn handle_probe_closed(&mut self, now: Instant) {
        if !self.brokers.is_empty() {
            self.probe = Probe::Done;
            return;
        }
        info!(retry_in = ?self.probe_backoff, "could not learn the cluster's brokers yet");
        self.probe = Probe::Due(now + self.probe_backoff);
        self.probe_backoff = (self.probe_backoff * 2).min(PROBE_BACKOFF.1);
    }

    /// The earliest moment [`Proxy::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.probe {
            Probe::Due(at) => Some(at),
            Probe::Done | Probe::Running => None,
        }
    }

    /// Time has reached a deadline from `poll_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Probe::Due(at) = self.probe
            && now >= at
        {
            if self.brokers.is_empty() {
                self.start_probe(now);
            } else {
                // A client's Metadata taught the proxy in the meantime.
                self.probe = Probe::Done;
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The next listener change; call until `None` after every input.
    pub fn poll_action(&mut self) -> Option<ProxyAction> {
        self.actions.pop_front()
    }

    /// The brokers learned so far.
    pub fn brokers(&self) -> impl Iterator<Item = (i32, &HostPort)> {
        self.brokers.iter().map(|(id, addr)| (*id, addr))
    }

    /// The socket address a listener binds to.
    pub fn listener_addr(&self, id: ListenerId) -> Option<SocketAddr> {
        let port = match (&self.config.mapping, id) {
            (Mapping::PortOffset(p), ListenerId::Bootstrap(slot)) => p.bootstrap_port(slot)?,
            (Mapping::PortOffset(p), ListenerId::Broker(node_id)) => p.broker_port(node_id)?,
            (Mapping::Sni(sni), ListenerId::Sni) => sni.bind_port,
            _ => return None,
        };
        Some(SocketAddr::new(self.config.bind_ip, port))
    }

    /// A client connected to listener `id` from `peer` at `now` (`wall` is
    /// the wall-clock time at `now`, for JWT claims): the session that serves
    /// it. Its first event asks the runtime to connect upstream (or, on the
    /// SNI listener, to route it).
    pub fn accept(
        &mut self,
        now: Instant,
        wall: SystemTime,
        id: ListenerId,
        peer: SocketAddr,
    ) -> Result<Session, AcceptError> {
        let known = self.listeners.contains(&id) || self.drained_listeners.contains(&id);
        if !known {
            self.refused_accepts += 1;
            return Err(AcceptError::UnknownListener(id));
        }
        let route = match id {
            ListenerId::Sni => None,
            ListenerId::Bootstrap(slot) => {
                let upstream = self.config.bootstrap.get(usize::from(slot)).cloned();
                Some(self.route_to(id, upstream.ok_or(AcceptError::UnknownListener(id))?))
            }
            ListenerId::Broker(node_id) => {
                let upstream = self.brokers.get(&node_id).cloned();
                Some(self.route_to(id, upstream.ok_or(AcceptError::UnknownListener(id))?))
            }
        };
        let limits = &self.config.limits;
        let permit = self
            .policy
            .admit_connection(peer.ip(), limits.max_connections, limits.max_connections_per_ip)
            .map_err(|limit| {
                match limit {
                    ConnectionLimit::Process { .. } => self.over_limits.0 += 1,
                    ConnectionLimit::PerIp { .. } => self.over_limits.1 += 1,
                }
                if let Some(suppressed) = self.refusals.allow(now) {
                    warn!(%peer, listener = %id, %limit, suppressed, "connection refused and closed: limit reached");
                }
                AcceptError::ConnectionLimit(limit)
            })?;
        let session_id = self.next_session;
        self.next_session += 1;
        tracing::debug!(session = session_id, %peer, listener = %id, "accepted");
        let mut session = Session::new(session_id, now, wall, self.session_config.clone(), route, Some(peer));
        session.hold_connection(permit);
        if self.draining {
            // Accepted from a listener's backlog while it closes: the client
            // is told to go elsewhere with a clean close, never a reset.
            session.drain(now);
        }
        Ok(session)
    }

    fn route_to(&self, listener: ListenerId, upstream: HostPort) -> Route {
        let addr_override = self.resolve(&upstream.host);
        Route { listener, upstream, addr_override }
    }

    /// The route for an SNI name: a learned broker, or the first bootstrap
    /// server for names not learned yet (and none).
    fn route_sni(&self, name: Option<&str>) -> Option<Route> {
        let sni = self.sni.as_ref()?;
        match sni.route(name) {
            SniRoute::Broker { node_id, upstream } => {
                Some(self.route_to(ListenerId::Broker(node_id), upstream.clone()))
            }
            SniRoute::Bootstrap => {
                let upstream = self.config.bootstrap.first()?.clone();
                Some(self.route_to(ListenerId::Bootstrap(0), upstream))
            }
        }
    }

    /// Starts draining: every listener is closed (the runtime accepts what
    /// is already in their backlogs, then stops; such sessions drain at
    /// once), and the runtime calls [`Session::drain`] on each session it drives.
    pub fn drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        self.probe = Probe::Done;
        for id in std::mem::take(&mut self.listeners) {
            self.drained_listeners.insert(id);
            self.actions.push_back(ProxyAction::Unlisten { id });
        }
    }

    /// True once [`Proxy::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// True once the cluster's brokers have been learned (by the probe or
    /// from a client's Metadata).
    pub fn knows_cluster(&self) -> bool {
        !self.brokers.is_empty()
    }

    /// The proxy's own numbers, for metrics and readiness.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            listeners: self.listeners.len(),
            brokers: self.brokers.len(),
            draining: self.draining,
            probes_cluster: self.can_probe(),
            reloads: self.reloads,
            refused_accepts: self.refused_accepts,
            connections: self.policy.connections(),
            over_max_connections: self.over_limits.0,
            over_max_connections_per_ip: self.over_limits.1,
            login_throttle: self.throttle.stats(),
        }
    }

    /// The runtime could not bind listener `id`; it is forgotten so a later
    /// topology change can ask again.
    pub fn handle_listen_failed(&mut self, id: ListenerId, error: &dyn std::fmt::Display) {
        warn!(listener = %id, addr = ?self.listener_addr(id), %error, "cannot listen");
        self.listeners.remove(&id);
    }

    /// A session saw brokers in a response: learn them and open or close
    /// their listeners (or SNI routes).
    fn handle_observed(&mut self, _now: Instant, observed: Observed) {
        match observed {
            Observed::Nothing => {}
            Observed::Some(brokers) => {
                for broker in brokers {
                    self.learn(broker);
                }
            }
            Observed::All(brokers) => {
                let current: BTreeSet<i32> = brokers.iter().map(|b| b.node_id).collect();
                let gone: Vec<i32> =
                    self.brokers.keys().filter(|id| !current.contains(id)).copied().collect();
                for node_id in gone {
                    if let Some(addr) = self.brokers.remove(&node_id) {
                        info!(node_id, upstream = %addr, "broker left the cluster");
                    }
                    self.unlisten(ListenerId::Broker(node_id));
                }
                for broker in brokers {
                    self.learn(broker);
                }
            }
        }
    }

    fn learn(&mut self, broker: Broker) {
        let Ok(port) = u16::try_from(broker.port) else {
            warn!(node_id = broker.node_id, port = broker.port, "broker advertised an invalid port; ignored");
            return;
        };
        let addr = HostPort { host: broker.host, port };
        match &self.sni {
            None => {
                let id = ListenerId::Broker(broker.node_id);
                if self.listener_addr(id).is_none() {
                    if self.refused.insert(broker.node_id) {
                        let max_broker_id = match &self.config.mapping {
                            Mapping::PortOffset(p) => p.max_broker_id,
                            Mapping::Sni(_) => 0,
                        };
                        warn!(
                            node_id = broker.node_id,
                            max_broker_id,
                            "broker id outside 0..=max_broker_id (or beyond port 65535): not exposed through the proxy"
                        );
                    }
                    return;
                }
                self.remember(broker.node_id, addr);
                self.listen(id);
            }
            Some(_) => {
                let Some(sni) = self.sni.as_mut() else { return };
                match sni.advertise(broker.node_id, &addr) {
                    Ok(_) => self.remember(broker.node_id, addr),
                    Err(error) => {
                        if self.refused.insert(broker.node_id) {
                            warn!(node_id = broker.node_id, upstream = %addr, %error, "broker not exposed through SNI");
                        }
                    }
                }
            }
        }
    }

    fn remember(&mut self, node_id: i32, addr: HostPort) {
        match self.brokers.insert(node_id, addr.clone()) {
            Some(old) if old == addr => {}
            Some(old) => info!(node_id, from = %old, to = %addr, "broker moved"),
            None => info!(node_id, upstream = %addr, "broker learned"),
        }
    }

    fn listen(&mut self, id: ListenerId) {
        if self.draining {
            return;
        }
        if let Some(addr) = self.listener_addr(id)
            && self.listeners.insert(id)
        {
            self.actions.push_back(ProxyAction::Listen { id, addr });
        }
    }

    fn unlisten(&mut self, id: ListenerId) {
        if self.listeners.remove(&id) {
            self.actions.push_back(ProxyAction::Unlisten { id });
        }
    }

    fn resolve(&self, host: &str) -> Option<IpAddr> {
        self.config.resolve_override(host)
    }
}

/// What every session shares, from the configuration.
fn session_config(
    config: &ProxyConfig,
    address_map: Arc<dyn AddressMap + Send + Sync>,
    cluster: &Arc<ClusterView>,
    throttle: &Arc<LoginThrottle>,
    policy: &Arc<PolicyState>,
) -> Arc<SessionConfig> {
    let api_versions = match config.security.downstream_sasl {
        DownstreamSasl::Terminate(_) => ApiVersionsPolicy::terminating_sasl(),
        DownstreamSasl::Off | DownstreamSasl::PassThrough => ApiVersionsPolicy::passthrough(),
    };
    // An API the policy forbids anyone is advertised only at the versions
    // the proxy can refuse with that API's own response.
    let api_versions = api_versions.clamped(
        config
            .policy
            .any_forbidden()
            .iter()
            .filter_map(refusal::spec)
            .map(|spec| (spec.key, spec.min, spec.max)),
    );
    Arc::new(SessionConfig {
        limits: config.limits.clone(),
        address_map,
        api_versions,
        linger: LINGER,
        security: config.security.clone(),
        warnings: Default::default(),
        client_id: config.client_id.clone(),
        cluster: cluster.clone(),
        throttle: throttle.clone(),
        policy: policy.clone(),
    })
}
