//! Egress through a forward proxy: every upstream connection (bootstrap,
//! brokers, the probe) can go through a SOCKS5 (RFC 1928, RFC 1929
//! username/password) or HTTP CONNECT (RFC 9110 §9.3.6) proxy.
//!
//! The runtime connects to the forward proxy (what
//! [`ConnectTarget::endpoint`](crate::session::ConnectTarget::endpoint)
//! says); the session then runs the client side of the proxy's handshake
//! here, on the raw upstream socket, before upstream TLS and SASL start.
//! Both handshakes are sans-IO: bytes the proxy sent in, bytes to send out.

mod http_connect;
mod socks5;

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::sasl::SecretString;

/// A forward proxy the upstream connections go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardProxy {
    /// The protocol it speaks.
    pub kind: ForwardProxyKind,
    /// Its host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Username and password, if it asks for them.
    pub credentials: Option<ProxyCredentials>,
}

/// The protocol of a forward proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardProxyKind {
    /// SOCKS5 (`socks5://`); host names are sent to the proxy, which resolves them.
    Socks5,
    /// HTTP CONNECT (`http://`).
    HttpConnect,
}

impl ForwardProxyKind {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            ForwardProxyKind::Socks5 => "socks5",
            ForwardProxyKind::HttpConnect => "http",
        }
    }
}

/// Credentials for a forward proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: SecretString,
}

impl fmt::Display for ForwardProxy {
    /// `socks5://user@host:port`: never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.kind.scheme())?;
        if let Some(c) = &self.credentials {
            write!(f, "{}@", c.username)?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a forward proxy did not open the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelError {
    /// The target host name does not fit the protocol (SOCKS5: 255 bytes).
    NameTooLong,
    /// The user name or password does not fit RFC 1929 (255 bytes each).
    CredentialsTooLong,
    /// The SOCKS5 proxy accepts none of the offered authentication methods.
    NoAcceptableMethod,
    /// The SOCKS5 proxy asks for a username and password, and none is configured.
    CredentialsRequired,
    /// The SOCKS5 proxy refused the username and password (RFC 1929 status).
    AuthenticationFailed(u8),
    /// The SOCKS5 proxy refused to connect (RFC 1928 reply code).
    Socks5Refused(u8),
    /// The HTTP proxy wants credentials (407), or refused the configured ones.
    ProxyAuthenticationRequired,
    /// The HTTP proxy answered CONNECT with another status.
    HttpStatus {
        /// The status code.
        code: u16,
        /// The reason phrase (printable ASCII, at most 64 characters).
        reason: String,
    },
    /// The reply header is larger than any proxy sends.
    ReplyTooLarge,
    /// The reply does not follow the protocol.
    BadReply(&'static str),
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::NameTooLong => {
                f.write_str("the broker's host name is longer than SOCKS5 allows (255 bytes)")
            }
            TunnelError::CredentialsTooLong => {
                f.write_str("the forward proxy user name or password is longer than 255 bytes")
            }
            TunnelError::NoAcceptableMethod => {
                f.write_str("the SOCKS5 proxy accepts none of the offered authentication methods")
            }
            TunnelError::CredentialsRequired => {
                f.write_str("the SOCKS5 proxy asks for a username and password; configure them in the URL")
            }
            TunnelError::AuthenticationFailed(status) => {
                write!(f, "the SOCKS5 proxy refused the username and password (status {status})")
            }
            TunnelError::Socks5Refused(code) => {
                write!(
                    f,
                    "the SOCKS5 proxy refused the connection: {} (reply {code})",
                    socks5::reply_name(*code)
                )
            }
            TunnelError::ProxyAuthenticationRequired => f.write_str(
                "the HTTP proxy requires authentication (407): configure or check the URL's credentials",
            ),
            TunnelError::HttpStatus { code, reason } => {
                write!(f, "the HTTP proxy refused CONNECT: {code} {reason}")
            }
            TunnelError::ReplyTooLarge => f.write_str("the forward proxy's reply header is too large"),
            TunnelError::BadReply(what) => write!(f, "malformed reply from the forward proxy: {what}"),
        }
    }
}

impl std::error::Error for TunnelError {}

/// What the handshake needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelStep {
    /// Wait for more bytes from the proxy.
    NeedMore,
    /// Send these bytes to the proxy, then wait.
    Send(Bytes),
    /// The tunnel is open: what is left in the receive buffer is the broker's.
    Open,
}

/// The client side of a forward proxy's handshake.
#[derive(Debug)]
pub enum Tunnel {
    /// SOCKS5.
    Socks5(socks5::Socks5Client),
    /// HTTP CONNECT.
    Http(http_connect::HttpConnectClient),
}

impl Tunnel {
    /// Starts a tunnel through `proxy` to `host:port`: the handshake and the
    /// first bytes to send.
    pub fn start(proxy: &ForwardProxy, host: &str, port: u16) -> Result<(Tunnel, Bytes), TunnelError> {
        match proxy.kind {
            ForwardProxyKind::Socks5 => {
                let (client, first) = socks5::Socks5Client::start(proxy.credentials.as_ref(), host, port)?;
                Ok((Tunnel::Socks5(client), first))
            }
            ForwardProxyKind::HttpConnect => {
                let (client, first) =
                    http_connect::HttpConnectClient::start(proxy.credentials.as_ref(), host, port);
                Ok((Tunnel::Http(client), first))
            }
        }
    }

    /// Takes what the proxy sent from the front of `rx` (leaving the broker's
    /// bytes that may follow the reply) and says what comes next.
    pub fn on_bytes(&mut self, rx: &mut BytesMut) -> Result<TunnelStep, TunnelError> {
        match self {
            Tunnel::Socks5(c) => c.on_bytes(rx),
            Tunnel::Http(c) => c.on_bytes(rx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_never_shows_the_password() {
        let p = ForwardProxy {
            kind: ForwardProxyKind::Socks5,
            host: "127.0.0.1".into(),
            port: 1080,
            credentials: Some(ProxyCredentials {
                username: "u".into(),
                password: SecretString::new("pw".into()),
            }),
        };
        assert_eq!(p.to_string(), "socks5://u@127.0.0.1:1080");
        assert!(!format!("{p:?}").contains("pw"));
        let h = ForwardProxy {
            kind: ForwardProxyKind::HttpConnect,
            host: "::1".into(),
            port: 3128,
            credentials: None,
        };
        assert_eq!(h.to_string(), "http://[::1]:3128");
    }
}
