//! The process-wide state: configuration, learned topology, listeners.
//!
//! [`Proxy`] decides what an accepted connection is (which bootstrap server
//! or broker it reaches) and turns what sessions observe about the cluster
//! into listener changes. It never touches a socket: it emits
//! [`ProxyAction`]s that the runtime carries out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::config::{HostPort, Mapping, ProxyConfig};
use crate::rewrite::ApiVersionsPolicy;
use crate::rewrite::{Broker, Observed};
use crate::route::port_offset::PortOffsetMap;
use crate::route::{ListenerId, Route};
use crate::session::{Session, SessionConfig};

/// How long a closing session may flush what it already queued.
const LINGER: Duration = Duration::from_secs(5);

/// A listener change for the runtime, drained with [`Proxy::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// Why an accepted connection cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptError {
    /// The listener is not (or no longer) known.
    UnknownListener(ListenerId),
}

impl std::fmt::Display for AcceptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AcceptError::UnknownListener(id) => write!(f, "no route for listener {id}"),
        }
    }
}

impl std::error::Error for AcceptError {}

/// The process-wide proxy state.
#[derive(Debug)]
pub struct Proxy {
    config: Arc<ProxyConfig>,
    session_config: Arc<SessionConfig>,
    /// Brokers learned from the cluster: node id → advertised address.
    brokers: BTreeMap<i32, HostPort>,
    /// Listeners asked for and not yet removed.
    listeners: BTreeSet<ListenerId>,
    /// Node ids already reported as not exposable, so the log says it once.
    refused: BTreeSet<i32>,
    actions: VecDeque<ProxyAction>,
    next_session: u64,
}

impl Proxy {
    /// A proxy for `config`; its first actions open the bootstrap listeners.
    pub fn new(config: ProxyConfig) -> Proxy {
        let Mapping::PortOffset(port_offset) = &config.mapping;
        let session_config = Arc::new(SessionConfig {
            limits: config.limits.clone(),
            address_map: Arc::new(PortOffsetMap::new(port_offset.clone())),
            api_versions: ApiVersionsPolicy::passthrough(),
            linger: LINGER,
        });
        let mut proxy = Proxy {
            config: Arc::new(config),
            session_config,
            brokers: BTreeMap::new(),
            listeners: BTreeSet::new(),
            refused: BTreeSet::new(),
            actions: VecDeque::new(),
            next_session: 1,
        };
        for slot in 0..proxy.config.bootstrap.len() {
            if let Ok(slot) = u16::try_from(slot) {
                proxy.listen(ListenerId::Bootstrap(slot));
            }
        }
        proxy
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
        let Mapping::PortOffset(p) = &self.config.mapping;
        let port = match id {
            ListenerId::Bootstrap(slot) => p.bootstrap_port(slot)?,
            ListenerId::Broker(node_id) => p.broker_port(node_id)?,
        };
        Some(SocketAddr::new(self.config.bind_ip, port))
    }

    /// A client connected to listener `id` from `peer`: the session that
    /// serves it. Its first event asks the runtime to connect upstream.
    pub fn accept(&mut self, now: Instant, id: ListenerId, peer: SocketAddr) -> Result<Session, AcceptError> {
        let upstream = match id {
            ListenerId::Bootstrap(slot) => self.config.bootstrap.get(usize::from(slot)),
            ListenerId::Broker(node_id) => self.brokers.get(&node_id),
        }
        .filter(|_| self.listeners.contains(&id))
        .cloned()
        .ok_or(AcceptError::UnknownListener(id))?;
        let addr_override = self.resolve(&upstream.host);
        let session_id = self.next_session;
        self.next_session += 1;
        tracing::debug!(session = session_id, %peer, listener = %id, %upstream, "accepted");
        let route = Route { listener: id, upstream, addr_override };
        Ok(Session::new(session_id, now, self.session_config.clone(), route))
    }

    /// The runtime could not bind listener `id`; it is forgotten so a later
    /// topology change can ask again.
    pub fn handle_listen_failed(&mut self, id: ListenerId, error: &dyn std::fmt::Display) {
        warn!(listener = %id, addr = ?self.listener_addr(id), %error, "cannot listen");
        self.listeners.remove(&id);
    }

    /// A session saw brokers in a response: learn them and open or close
    /// their listeners.
    pub fn handle_observed(&mut self, _now: Instant, observed: Observed) {
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
        let id = ListenerId::Broker(broker.node_id);
        let Ok(port) = u16::try_from(broker.port) else {
            warn!(node_id = broker.node_id, port = broker.port, "broker advertised an invalid port; ignored");
            return;
        };
        if self.listener_addr(id).is_none() {
            if self.refused.insert(broker.node_id) {
                let Mapping::PortOffset(p) = &self.config.mapping;
                warn!(
                    node_id = broker.node_id,
                    max_broker_id = p.max_broker_id,
                    "broker id outside 0..=max_broker_id (or beyond port 65535): not exposed through the proxy"
                );
            }
            return;
        }
        let addr = HostPort { host: broker.host, port };
        match self.brokers.insert(broker.node_id, addr.clone()) {
            Some(old) if old == addr => {}
            Some(old) => info!(node_id = broker.node_id, from = %old, to = %addr, "broker moved"),
            None => info!(node_id = broker.node_id, upstream = %addr, "broker learned"),
        }
        self.listen(id);
    }

    fn listen(&mut self, id: ListenerId) {
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
