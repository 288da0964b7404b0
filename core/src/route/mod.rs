//! Routing: which upstream a connection goes to, and which address clients
//! are told for each broker.

pub(crate) mod external;
pub(crate) mod port_offset;
pub(crate) mod sni;
pub(crate) mod static_map;

use std::net::IpAddr;

use crate::config::HostPort;

/// A listening socket the proxy wants, named by what it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListenerId {
    /// Bootstrap slot `n` (port `base + n`), forwarding to bootstrap server `n`.
    Bootstrap(u16),
    /// The listener of broker `node_id`.
    Broker(i32),
    /// The one TLS listener of `sni` mode; the route comes from the ClientHello.
    Sni,
    /// Entry `n` of the `static` mapping, forwarding to that entry's broker.
    Static(u16),
}

impl std::fmt::Display for ListenerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenerId::Bootstrap(slot) => write!(f, "bootstrap[{slot}]"),
            ListenerId::Broker(id) => write!(f, "broker {id}"),
            ListenerId::Sni => f.write_str("sni"),
            ListenerId::Static(n) => write!(f, "static[{n}]"),
        }
    }
}

/// Where an accepted connection is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// What the client reaches: a bootstrap slot or a broker.
    pub listener: ListenerId,
    /// The upstream address, as configured or as the cluster advertised it.
    pub upstream: HostPort,
    /// A `resolve` override for the upstream host, if one matches.
    pub addr_override: Option<IpAddr>,
}
