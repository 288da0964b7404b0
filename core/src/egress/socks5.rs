//! The client side of SOCKS5 (RFC 1928) with username/password
//! authentication (RFC 1929). Host names go to the proxy as names
//! (address type 3), so it resolves them; IP literals as addresses.

use std::net::IpAddr;

use bytes::{BufMut, Bytes, BytesMut};

use super::{ProxyCredentials, TunnelError, TunnelStep};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xff;
const CONNECT: u8 = 1;
const ATYP_V4: u8 = 1;
const ATYP_NAME: u8 = 3;
const ATYP_V6: u8 = 4;

/// RFC 1928's name for a reply code.
pub(super) fn reply_name(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The method selection is out; waiting for the chosen method.
    Greeting,
    /// Username/password are out; waiting for the status.
    Authenticating,
    /// CONNECT is out; waiting for the reply.
    Connecting,
    /// Open (or failed): nothing more to do.
    Done,
}

/// One SOCKS5 handshake.
pub struct Socks5Client {
    state: State,
    credentials: Option<ProxyCredentials>,
    /// The CONNECT request, sent once authentication is settled.
    connect: Bytes,
}

impl std::fmt::Debug for Socks5Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks5Client").field("state", &self.state).finish_non_exhaustive()
    }
}

impl Socks5Client {
    /// The handshake for `host:port` and its method selection message.
    pub(super) fn start(
        credentials: Option<&ProxyCredentials>,
        host: &str,
        port: u16,
    ) -> Result<(Socks5Client, Bytes), TunnelError> {
        let connect = connect_request(host, port)?;
        if let Some(c) = credentials
            && (c.username.is_empty() || c.username.len() > 255 || c.password.expose().len() > 255)
        {
            return Err(TunnelError::CredentialsTooLong);
        }
        let greeting: &[u8] =
            if credentials.is_some() { &[VERSION, 2, NO_AUTH, USER_PASS] } else { &[VERSION, 1, NO_AUTH] };
        let client = Socks5Client { state: State::Greeting, credentials: credentials.cloned(), connect };
        Ok((client, Bytes::copy_from_slice(greeting)))
    }

    pub(super) fn on_bytes(&mut self, rx: &mut BytesMut) -> Result<TunnelStep, TunnelError> {
        let result = self.step(rx);
        if !matches!(result, Ok(TunnelStep::NeedMore | TunnelStep::Send(_))) {
            self.state = State::Done;
        }
        result
    }

    fn step(&mut self, rx: &mut BytesMut) -> Result<TunnelStep, TunnelError> {
        match self.state {
            State::Greeting => {
                let Some(&[version, method]) = rx.get(..2) else { return Ok(TunnelStep::NeedMore) };
                let _ = rx.split_to(2);
                if version != VERSION {
                    return Err(TunnelError::BadReply("not a SOCKS5 server (version byte)"));
                }
                match (method, &self.credentials) {
                    (NO_AUTH, _) => {
                        self.state = State::Connecting;
                        Ok(TunnelStep::Send(self.connect.clone()))
                    }
                    (USER_PASS, Some(c)) => {
                        self.state = State::Authenticating;
                        Ok(TunnelStep::Send(user_pass_request(c)))
                    }
                    (USER_PASS, None) => Err(TunnelError::CredentialsRequired),
                    (NO_ACCEPTABLE, _) => Err(TunnelError::NoAcceptableMethod),
                    _ => Err(TunnelError::BadReply("a method that was not offered")),
                }
            }
            State::Authenticating => {
                let Some(&[version, status]) = rx.get(..2) else { return Ok(TunnelStep::NeedMore) };
                let _ = rx.split_to(2);
                if version != 1 {
                    return Err(TunnelError::BadReply("username/password reply version"));
                }
                if status != 0 {
                    return Err(TunnelError::AuthenticationFailed(status));
                }
                self.state = State::Connecting;
                Ok(TunnelStep::Send(self.connect.clone()))
            }
            State::Connecting => {
                let Some(&[version, reply, _reserved, atyp]) = rx.get(..4) else {
                    return Ok(TunnelStep::NeedMore);
                };
                if version != VERSION {
                    return Err(TunnelError::BadReply("reply version"));
                }
                if reply != 0 {
                    return Err(TunnelError::Socks5Refused(reply));
                }
                let addr_len = match atyp {
                    ATYP_V4 => 4,
                    ATYP_V6 => 16,
                    ATYP_NAME => match rx.get(4) {
                        Some(&n) => 1 + usize::from(n),
                        None => return Ok(TunnelStep::NeedMore),
                    },
                    _ => return Err(TunnelError::BadReply("bound address type")),
                };
                let total = 4 + addr_len + 2;
                if rx.len() < total {
                    return Ok(TunnelStep::NeedMore);
                }
                let _ = rx.split_to(total);
                Ok(TunnelStep::Open)
            }
            State::Done => Err(TunnelError::BadReply("bytes after the handshake ended")),
        }
    }
}

/// `VER CMD RSV ATYP DST.ADDR DST.PORT`.
fn connect_request(host: &str, port: u16) -> Result<Bytes, TunnelError> {
    let mut out = BytesMut::with_capacity(7 + host.len());
    out.put_slice(&[VERSION, CONNECT, 0]);
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match unbracketed.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            out.put_u8(ATYP_V4);
            out.put_slice(&v4.octets());
        }
        Ok(IpAddr::V6(v6)) => {
            out.put_u8(ATYP_V6);
            out.put_slice(&v6.octets());
        }
        Err(_) => {
            let len = u8::try_from(host.len()).map_err(|_| TunnelError::NameTooLong)?;
            if len == 0 {
                return Err(TunnelError::NameTooLong);
            }
            out.put_u8(ATYP_NAME);
            out.put_u8(len);
            out.put_slice(host.as_bytes());
        }
    }
    out.put_u16(port);
    Ok(out.freeze())
}

/// RFC 1929: `VER ULEN UNAME PLEN PASSWD` (lengths checked at start).
fn user_pass_request(c: &ProxyCredentials) -> Bytes {
    let (user, pass) = (c.username.as_bytes(), c.password.expose().as_bytes());
    let mut out = BytesMut::with_capacity(3 + user.len() + pass.len());
    out.put_u8(1);
    out.put_u8(u8::try_from(user.len()).unwrap_or(u8::MAX));
    out.put_slice(user);
    out.put_u8(u8::try_from(pass.len()).unwrap_or(u8::MAX));
    out.put_slice(pass);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::SecretString;

    fn creds() -> ProxyCredentials {
        ProxyCredentials { username: "alice".into(), password: SecretString::new("s3cret".into()) }
    }

    fn feed(c: &mut Socks5Client, bytes: &[u8]) -> Result<TunnelStep, TunnelError> {
        c.on_bytes(&mut BytesMut::from(bytes))
    }

    #[test]
    fn no_auth_by_name_then_open_with_the_broker_bytes_left() {
        let (mut c, first) = Socks5Client::start(None, "kafka-1.internal", 9092).unwrap();
        assert_eq!(&first[..], &[5, 1, 0]);
        let Ok(TunnelStep::Send(req)) = feed(&mut c, &[5, 0]) else { panic!() };
        let mut want = vec![5, 1, 0, 3, 16];
        want.extend_from_slice(b"kafka-1.internal");
        want.extend_from_slice(&9092u16.to_be_bytes());
        assert_eq!(&req[..], &want[..]);
        // Reply with a bound IPv4 address, followed by the first broker bytes.
        let mut rx = BytesMut::from(&[5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90, 0xAB][..]);
        assert_eq!(c.on_bytes(&mut rx), Ok(TunnelStep::Open));
        assert_eq!(&rx[..], &[0xAB], "what follows the reply is the broker's");
    }

    #[test]
    fn username_password_then_ip_literals() {
        let creds = creds();
        let (mut c, first) = Socks5Client::start(Some(&creds), "10.1.2.3", 9093).unwrap();
        assert_eq!(&first[..], &[5, 2, 0, 2]);
        let Ok(TunnelStep::Send(auth)) = feed(&mut c, &[5, 2]) else { panic!() };
        assert_eq!(&auth[..], b"\x01\x05alice\x06s3cret");
        let Ok(TunnelStep::Send(req)) = feed(&mut c, &[1, 0]) else { panic!() };
        assert_eq!(&req[..], &[5, 1, 0, 1, 10, 1, 2, 3, 0x23, 0x85]);
        assert_eq!(
            feed(&mut c, &[5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]),
            Ok(TunnelStep::Open)
        );
        let (_, _) = Socks5Client::start(None, "[::1]", 1).unwrap();
        let (mut v6, _) = Socks5Client::start(None, "::1", 1).unwrap();
        let Ok(TunnelStep::Send(req)) = feed(&mut v6, &[5, 0]) else { panic!() };
        assert_eq!(req[3], ATYP_V6);
    }

    #[test]
    fn replies_split_anywhere() {
        let (mut c, _) = Socks5Client::start(None, "b", 1).unwrap();
        let mut rx = BytesMut::new();
        rx.extend_from_slice(&[5]);
        assert_eq!(c.on_bytes(&mut rx), Ok(TunnelStep::NeedMore));
        rx.extend_from_slice(&[0]);
        assert!(matches!(c.on_bytes(&mut rx), Ok(TunnelStep::Send(_))));
        let reply = [5u8, 0, 0, 3, 4, b'h', b'o', b's', b't', 0, 80];
        for (i, b) in reply.iter().enumerate() {
            rx.extend_from_slice(&[*b]);
            let step = c.on_bytes(&mut rx);
            if i + 1 < reply.len() {
                assert_eq!(step, Ok(TunnelStep::NeedMore), "after {} bytes", i + 1);
            } else {
                assert_eq!(step, Ok(TunnelStep::Open));
            }
        }
        assert!(rx.is_empty());
    }

    #[test]
    fn refusals_are_named() {
        let (mut c, _) = Socks5Client::start(None, "b", 1).unwrap();
        assert_eq!(feed(&mut c, &[5, 0xff]), Err(TunnelError::NoAcceptableMethod));
        let (mut c, _) = Socks5Client::start(None, "b", 1).unwrap();
        assert_eq!(feed(&mut c, &[5, 2]), Err(TunnelError::CredentialsRequired));
        let (mut c, _) = Socks5Client::start(Some(&creds()), "b", 1).unwrap();
        let _ = feed(&mut c, &[5, 2]);
        assert_eq!(feed(&mut c, &[1, 1]), Err(TunnelError::AuthenticationFailed(1)));
        let (mut c, _) = Socks5Client::start(None, "b", 1).unwrap();
        let _ = feed(&mut c, &[5, 0]);
        let refused = feed(&mut c, &[5, 5, 0, 1]);
        assert_eq!(refused, Err(TunnelError::Socks5Refused(5)));
        assert!(refused.unwrap_err().to_string().contains("connection refused (reply 5)"));
        let (mut c, _) = Socks5Client::start(None, "b", 1).unwrap();
        assert_eq!(feed(&mut c, &[4, 0]), Err(TunnelError::BadReply("not a SOCKS5 server (version byte)")));
        assert_eq!(feed(&mut c, &[5, 0]), Err(TunnelError::BadReply("bytes after the handshake ended")));
        assert_eq!(Socks5Client::start(None, &"x".repeat(256), 1).err(), Some(TunnelError::NameTooLong));
        let long = ProxyCredentials { username: "u".repeat(256), password: SecretString::new("p".into()) };
        assert_eq!(Socks5Client::start(Some(&long), "b", 1).err(), Some(TunnelError::CredentialsTooLong));
    }
}
