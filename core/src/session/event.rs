//! What a session tells its runtime: the events it emits, where to connect,
//! and why it ended.
//!
//! A runtime carries out [`Event::Connect`] and [`Event::Closed`] itself and
//! hands every [`Event::Proxy`] to
//! [`Proxy::handle_session_event`](crate::proxy::Proxy::handle_session_event)
//! unopened: routing by SNI name, learning brokers and ending the proxy's own
//! probes are the core's business, not the runtime's.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::Side;
use crate::api::ApiKey;
use crate::frame::FrameError;
use crate::header::HeaderError;
use crate::rewrite::{Observed, RewriteError};
use crate::sasl::ClientError;
use crate::sasl::server::FailureReason;
use crate::tls::TlsError;

/// Where to open the upstream connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTarget {
    /// Host name or address the cluster (or configuration) gave.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Connect here instead of resolving `host` (a `resolve` override).
    pub addr_override: Option<IpAddr>,
}

/// What a runtime connects to: an address, or a name it must resolve first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// Connect to this address (a `resolve` override, or an IP literal).
    Addr(SocketAddr),
    /// Resolve `host` (every address it has, in order) and connect to `port`.
    Name {
        /// The host name.
        host: &'a str,
        /// The TCP port.
        port: u16,
    },
}

impl ConnectTarget {
    /// Where to connect, in one call: the override, else the host if it is
    /// an IP literal, else the name to resolve.
    pub fn endpoint(&self) -> Endpoint<'_> {
        match self.addr_override.or_else(|| self.host.parse().ok()) {
            Some(ip) => Endpoint::Addr(SocketAddr::new(ip, self.port)),
            None => Endpoint::Name { host: &self.host, port: self.port },
        }
    }
}

impl std::fmt::Display for ConnectTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr_override {
            Some(ip) => write!(f, "{}:{} (resolved to {ip} by configuration)", self.host, self.port),
            None => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// Something the runtime must act on, drained with
/// [`Session::poll_event`](super::Session::poll_event).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Open the upstream connection, then call
    /// [`Session::handle_connected`](super::Session::handle_connected) or
    /// [`Session::handle_connect_failed`](super::Session::handle_connect_failed).
    Connect(ConnectTarget),
    /// Half-close the connection to `side` (shut down its write direction)
    /// and keep reading it: the session lingers until that side closes too
    /// (reported as end of stream) or the linger time ends.
    ShutdownWrite(Side),
    /// For the proxy: pass it to
    /// [`Proxy::handle_session_event`](crate::proxy::Proxy::handle_session_event)
    /// with this session, then carry out the proxy's actions.
    Proxy(ProxyEvent),
    /// The session is over: close both sockets and drop the session. Every
    /// byte it queued before closing has been offered to `write_to` first.
    Closed(CloseReason),
}

/// A session's message to the [`Proxy`](crate::proxy::Proxy), opaque to
/// the runtime that carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyEvent(pub(crate) ProxyEventKind);

/// What a session tells the proxy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ProxyEventKind {
    /// The client named this server in its ClientHello (`None`: no SNI, or
    /// no TLS): the proxy answers with a route.
    Route(Option<String>),
    /// The cluster named brokers in a response.
    Observed(Observed),
    /// A probe session ended (learned the cluster or not).
    ProbeEnded,
}

/// A protocol violation by one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A header could not be read.
    Header(HeaderError),
    /// A response whose correlation id matches no outstanding request.
    UnexpectedResponse {
        /// The response's correlation id.
        correlation_id: i32,
    },
    /// A request at a version the proxy did not advertise.
    VersionNotAdvertised {
        /// The API.
        api: ApiKey,
        /// The version used.
        version: i16,
        /// The highest version the proxy advertises.
        max: i16,
    },
    /// A request for an API the proxy removed from ApiVersions.
    ApiNotAdvertised(ApiKey),
    /// A request for an API key Kafka does not define, or at a negative
    /// version (Kafka closes the connection on these).
    UnknownApi {
        /// The API key sent.
        api: ApiKey,
        /// The version sent.
        version: i16,
    },
    /// A response arrived out of request order.
    OutOfOrder {
        /// The correlation id it carried.
        got: i32,
        /// The correlation id of the oldest outstanding request.
        expected: i32,
    },
    /// A Kafka response where a raw SASL token was due, or the reverse.
    SaslFraming,
    /// A SaslHandshake v0 exchange with a mechanism whose raw tokens the
    /// proxy cannot follow.
    UntrackableSasl(String),
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::Header(e) => write!(f, "{e}"),
            ProtocolError::UnexpectedResponse { correlation_id } => {
                write!(f, "response with correlation id {correlation_id} matches no outstanding request")
            }
            ProtocolError::VersionNotAdvertised { api, version, max } => {
                write!(f, "{api} v{version} requested, but the proxy advertised at most v{max}")
            }
            ProtocolError::ApiNotAdvertised(api) => {
                write!(f, "{api} requested, but the proxy does not offer it")
            }
            ProtocolError::UnknownApi { api, version } => {
                write!(f, "request for unknown {api} v{version}")
            }
            ProtocolError::OutOfOrder { got, expected } => {
                write!(f, "response with correlation id {got} arrived before the one for request {expected}")
            }
            ProtocolError::SaslFraming => f.write_str("raw SASL token and Kafka response out of step"),
            ProtocolError::UntrackableSasl(what) => {
                write!(f, "SaslHandshake v0 pass-through with {what} is not supported (use SaslHandshake v1)")
            }
        }
    }
}

/// Why a session ended, for the log.
#[derive(Debug, Clone, PartialEq)]
pub enum CloseReason {
    /// A side closed its connection.
    PeerClosed(Side),
    /// Reading or writing a side failed.
    Io {
        /// The side.
        side: Side,
        /// The error, as the operating system described it.
        error: String,
    },
    /// The upstream connection could not be opened.
    ConnectFailed {
        /// Where it was going.
        target: ConnectTarget,
        /// Why it failed.
        error: String,
    },
    /// The upstream connection took longer than `connect_timeout`.
    ConnectTimeout {
        /// Where it was going.
        target: ConnectTarget,
    },
    /// TLS or SASL did not complete within `handshake_timeout`.
    HandshakeTimeout,
    /// A request from the client began to arrive and was not complete
    /// within `request_read_timeout` (a client trickling its bytes).
    RequestReadTimeout {
        /// The configured limit.
        limit: std::time::Duration,
    },
    /// A side sent bytes that are not valid Kafka framing.
    Frame {
        /// The side.
        side: Side,
        /// What was wrong.
        error: FrameError,
    },
    /// A side broke the Kafka protocol.
    Protocol {
        /// The side.
        side: Side,
        /// What it did.
        error: ProtocolError,
    },
    /// TLS failed on a side.
    Tls {
        /// The side.
        side: Side,
        /// What failed.
        error: TlsError,
    },
    /// The client was refused: authentication failed, a request before
    /// authentication, an expired session, no upstream identity for its principal.
    Refused(FailureReason),
    /// The client's certificate could not be mapped to a principal, or its
    /// principal has no upstream identity (auth swap).
    Unauthorized {
        /// The principal, or the certificate problem.
        principal: String,
        /// Why.
        why: &'static str,
    },
    /// The client sent a request its policy forbids, which cannot be
    /// answered with the API's own authorization error.
    Forbidden {
        /// Who the client is.
        principal: String,
        /// The forbidden API.
        api: ApiKey,
        /// Why the connection closes rather than answering.
        why: super::ForbiddenClose,
    },
    /// The client's principal already holds its `max_connections`.
    PrincipalConnectionLimit {
        /// Who the client is.
        principal: String,
        /// The limit.
        limit: u32,
    },
    /// The proxy's own login at the broker failed.
    UpstreamLogin(ClientError),
    /// A broker response could not be rewritten (its addresses would leak).
    Rewrite(RewriteError),
    /// The SNI name routes nowhere.
    NoRoute(String),
    /// A probe session learned what it asked for.
    ProbeComplete,
    /// Nothing moved for `idle_timeout`.
    IdleTimeout,
    /// The broker did not answer a request within its deadline
    /// (`limits.request_timeout`, or longer when the request asks for it).
    RequestTimeout {
        /// The broker (its address as the cluster or configuration gave it).
        broker: String,
        /// The request's API.
        api: ApiKey,
        /// The request's version.
        version: i16,
        /// The request's correlation id.
        correlation_id: i32,
        /// How long the broker had been silent.
        waited: Duration,
    },
    /// The proxy is draining: the connection closed at a request boundary.
    Drained,
    /// The runtime is shutting down.
    Shutdown,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::PeerClosed(side) => write!(f, "{side} closed the connection"),
            CloseReason::Io { side, error } => write!(f, "{side} connection failed: {error}"),
            CloseReason::ConnectFailed { target, error } => {
                write!(f, "cannot connect to broker {target}: {error}")
            }
            CloseReason::ConnectTimeout { target } => {
                write!(f, "connecting to broker {target} timed out")
            }
            CloseReason::HandshakeTimeout => f.write_str("TLS/SASL handshake timed out"),
            CloseReason::RequestReadTimeout { limit } => {
                write!(f, "client did not send a whole request within {} ms", limit.as_millis())
            }
            CloseReason::Frame { side, error } => write!(f, "{side} sent invalid framing: {error}"),
            CloseReason::Protocol { side, error } => write!(f, "{side} protocol violation: {error}"),
            CloseReason::Tls { side, error } => write!(f, "TLS with the {side} failed: {error}"),
            CloseReason::Refused(reason) => match reason.error_code() {
                Some(code) => write!(f, "client refused: {reason} (error code {})", code.0),
                None => write!(f, "client refused: {reason}"),
            },
            CloseReason::Unauthorized { principal, why } => write!(f, "client {principal} refused: {why}"),
            CloseReason::Forbidden { principal, api, why } => {
                write!(f, "client {principal} sent {api}, which the policy forbids: {why}")
            }
            CloseReason::PrincipalConnectionLimit { principal, limit } => write!(
                f,
                "client {principal} refused: the principal already holds {limit} connection(s) (policy max_connections)"
            ),
            CloseReason::UpstreamLogin(e) => write!(f, "login at the broker failed: {e}"),
            CloseReason::Rewrite(e) => write!(f, "cannot rewrite broker response: {e}"),
            CloseReason::NoRoute(name) => write!(f, "no route for SNI name {name}"),
            CloseReason::ProbeComplete => f.write_str("cluster probe complete"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::RequestTimeout { broker, api, version, correlation_id, waited } => write!(
                f,
                "broker {broker} did not answer {api} v{version} (correlation id {correlation_id}) within {} ms",
                waited.as_millis()
            ),
            CloseReason::Drained => f.write_str("drained"),
            CloseReason::Shutdown => f.write_str("proxy shutting down"),
        }
    }
}

impl CloseReason {
    /// A short stable name of the kind of ending, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            CloseReason::PeerClosed(Side::Downstream) => "client_closed",
            CloseReason::PeerClosed(Side::Upstream) => "broker_closed",
            CloseReason::Io { side: Side::Downstream, .. } => "client_io_error",
            CloseReason::Io { side: Side::Upstream, .. } => "broker_io_error",
            CloseReason::ConnectFailed { .. } => "connect_failed",
            CloseReason::ConnectTimeout { .. } => "connect_timeout",
            CloseReason::HandshakeTimeout => "handshake_timeout",
            CloseReason::RequestReadTimeout { .. } => "request_read_timeout",
            CloseReason::Frame { .. } => "invalid_framing",
            CloseReason::Protocol { side: Side::Downstream, .. } => "client_protocol_error",
            CloseReason::Protocol { side: Side::Upstream, .. } => "broker_protocol_error",
            CloseReason::Tls { side: Side::Downstream, .. } => "client_tls_error",
            CloseReason::Tls { side: Side::Upstream, .. } => "broker_tls_error",
            CloseReason::Refused(_) => "refused",
            CloseReason::Unauthorized { .. } => "unauthorized",
            CloseReason::Forbidden { .. } => "forbidden",
            CloseReason::PrincipalConnectionLimit { .. } => "principal_connection_limit",
            CloseReason::UpstreamLogin(_) => "upstream_login_failed",
            CloseReason::Rewrite(_) => "rewrite_failed",
            CloseReason::NoRoute(_) => "no_route",
            CloseReason::ProbeComplete => "probe_complete",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::RequestTimeout { .. } => "request_timeout",
            CloseReason::Drained => "drained",
            CloseReason::Shutdown => "shutdown",
        }
    }

    /// True for endings that are part of normal operation (a peer hanging up,
    /// idleness, draining, shutdown), false for failures worth a warning.
    pub fn is_normal(&self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosed(_)
                | CloseReason::IdleTimeout
                | CloseReason::Drained
                | CloseReason::Shutdown
                | CloseReason::ProbeComplete
        )
    }
}

/// What [`Session::read_from`](super::Session::read_from) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were read and processed.
    Read(usize),
    /// The peer closed its end.
    Eof,
    /// The session does not want bytes from this side now (back-pressure,
    /// not connected, closing); the read closure was not called. Try again
    /// after writes progress.
    Paused,
}

/// What [`Session::write_to`](super::Session::write_to) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// This many bytes were written.
    Written(usize),
    /// Nothing is waiting for this side (or spliced bytes must go first);
    /// the write closure was not called.
    Idle,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, addr_override: Option<IpAddr>) -> ConnectTarget {
        ConnectTarget { host: host.into(), port: 9092, addr_override }
    }

    #[test]
    fn endpoint_prefers_the_override_then_ip_literals() {
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(target("broker.internal", Some(ip)).endpoint(), Endpoint::Addr(SocketAddr::new(ip, 9092)));
        assert_eq!(target("127.0.0.1", None).endpoint(), Endpoint::Addr("127.0.0.1:9092".parse().unwrap()));
        assert_eq!(target("::1", None).endpoint(), Endpoint::Addr("[::1]:9092".parse().unwrap()));
        assert_eq!(
            target("broker.internal", None).endpoint(),
            Endpoint::Name { host: "broker.internal", port: 9092 }
        );
    }
}
