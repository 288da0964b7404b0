//! The client side of HTTP CONNECT (RFC 9110 §9.3.6), with
//! `Proxy-Authorization: Basic` when credentials are configured.

use base64::Engine as _;
use bytes::{Bytes, BytesMut};

use super::{ProxyCredentials, TunnelError, TunnelStep};

/// The longest reply header accepted (proxies send a few hundred bytes).
const MAX_REPLY_HEADER: usize = 16 * 1024;

/// One CONNECT exchange.
#[derive(Debug)]
pub struct HttpConnectClient {
    done: bool,
    /// How much of the receive buffer was searched for the header's end.
    scanned: usize,
}

impl HttpConnectClient {
    /// The exchange for `host:port` and its request.
    pub(super) fn start(
        credentials: Option<&ProxyCredentials>,
        host: &str,
        port: u16,
    ) -> (HttpConnectClient, Bytes) {
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(c) = credentials {
            let pair = format!("{}:{}", c.username, c.password.expose());
            let token = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
            request.push_str("Proxy-Authorization: Basic ");
            request.push_str(&token);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        (HttpConnectClient { done: false, scanned: 0 }, Bytes::from(request.into_bytes()))
    }

    pub(super) fn on_bytes(&mut self, rx: &mut BytesMut) -> Result<TunnelStep, TunnelError> {
        if self.done {
            return Err(TunnelError::BadReply("bytes after the handshake ended"));
        }
        let from = self.scanned.saturating_sub(3);
        let found = rx.get(from..).and_then(|tail| tail.windows(4).position(|w| w == b"\r\n\r\n"));
        self.scanned = rx.len();
        let Some(end) = found.map(|at| from + at) else {
            if rx.len() > MAX_REPLY_HEADER {
                self.done = true;
                return Err(TunnelError::ReplyTooLarge);
            }
            return Ok(TunnelStep::NeedMore);
        };
        self.done = true;
        if end > MAX_REPLY_HEADER {
            return Err(TunnelError::ReplyTooLarge);
        }
        let header = rx.split_to(end + 4);
        let header: &[u8] = header.as_ref();
        let status_line = header.split(|b| *b == b'\r').next().unwrap_or_default();
        let (code, reason) = parse_status_line(status_line)?;
        match code {
            200..=299 => Ok(TunnelStep::Open),
            407 => Err(TunnelError::ProxyAuthenticationRequired),
            _ => Err(TunnelError::HttpStatus { code, reason }),
        }
    }
}

/// `HTTP/1.x SP 3DIGIT [SP reason]` → (code, printable reason, at most 64 characters).
fn parse_status_line(line: &[u8]) -> Result<(u16, String), TunnelError> {
    let rest = line.strip_prefix(b"HTTP/1.").ok_or(TunnelError::BadReply("not an HTTP/1.x status line"))?;
    let rest = rest.get(1..).filter(|_| rest.first().is_some_and(u8::is_ascii_digit));
    let rest = rest
        .and_then(|r| r.strip_prefix(b" "))
        .ok_or(TunnelError::BadReply("not an HTTP/1.x status line"))?;
    let digits = rest.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
    let digits = digits.ok_or(TunnelError::BadReply("status code"))?;
    let code = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let reason: String = rest
        .get(3..)
        .unwrap_or_default()
        .iter()
        .skip_while(|b| **b == b' ')
        .take(64)
        .map(|b| if b.is_ascii_graphic() || *b == b' ' { char::from(*b) } else { '?' })
        .collect();
    Ok((code, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::SecretString;

    fn reply(c: &mut HttpConnectClient, text: &[u8]) -> (Result<TunnelStep, TunnelError>, BytesMut) {
        let mut rx = BytesMut::from(text);
        let step = c.on_bytes(&mut rx);
        (step, rx)
    }

    #[test]
    fn request_with_and_without_credentials() {
        let (_, req) = HttpConnectClient::start(None, "kafka-1.internal", 9092);
        assert_eq!(
            &req[..],
            b"CONNECT kafka-1.internal:9092 HTTP/1.1\r\nHost: kafka-1.internal:9092\r\n\r\n"
        );
        let creds = ProxyCredentials {
            username: "Aladdin".into(),
            password: SecretString::new("open sesame".into()),
        };
        let (_, req) = HttpConnectClient::start(Some(&creds), "::1", 9092);
        assert_eq!(
            &req[..],
            &b"CONNECT [::1]:9092 HTTP/1.1\r\nHost: [::1]:9092\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"[..]
        );
    }

    #[test]
    fn established_leaves_the_broker_bytes() {
        let (mut c, _) = HttpConnectClient::start(None, "b", 1);
        let mut rx = BytesMut::from(&b"HTTP/1.1 200 Conn"[..]);
        assert_eq!(c.on_bytes(&mut rx), Ok(TunnelStep::NeedMore));
        rx.extend_from_slice(b"ection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n\x00\x01");
        assert_eq!(c.on_bytes(&mut rx), Ok(TunnelStep::Open));
        assert_eq!(&rx[..], &[0, 1]);
        let (mut c, _) = HttpConnectClient::start(None, "b", 1);
        assert_eq!(reply(&mut c, b"HTTP/1.0 200\r\n\r\n").0, Ok(TunnelStep::Open), "no reason phrase");
    }

    #[test]
    fn refusals_are_named() {
        let (mut c, _) = HttpConnectClient::start(None, "b", 1);
        let (step, _) = reply(&mut c, b"HTTP/1.1 403 Access violation\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(step, Err(TunnelError::HttpStatus { code: 403, reason: "Access violation".into() }));
        assert_eq!(step.unwrap_err().to_string(), "the HTTP proxy refused CONNECT: 403 Access violation");
        let (mut c, _) = HttpConnectClient::start(None, "b", 1);
        assert_eq!(
            reply(&mut c, b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").0,
            Err(TunnelError::ProxyAuthenticationRequired)
        );
        let (mut c, _) = HttpConnectClient::start(None, "b", 1);
        assert_eq!(
            reply(&mut c, b"SSH-2.0-OpenSSH\r\n\r\n").0,
            Err(TunnelError::BadReply("not an HTTP/1.x status line"))
        );
        let (mut c, _) = HttpConnectClient::start(None, "b", 1);
        assert_eq!(reply(&mut c, b"HTTP/1.1 2x0 OK\r\n\r\n").0, Err(TunnelError::BadReply("status code")));
        let (mut c, _) = HttpConnectClient::start(None, "b", 1);
        let (step, _) = reply(&mut c, b"HTTP/1.1 502 \x1b[31mBad\x00\r\n\r\n");
        assert_eq!(step, Err(TunnelError::HttpStatus { code: 502, reason: "?[31mBad?".into() }));
        let (mut c, _) = HttpConnectClient::start(None, "b", 1);
        let (step, _) = reply(&mut c, &vec![b'a'; MAX_REPLY_HEADER + 1]);
        assert_eq!(step, Err(TunnelError::ReplyTooLarge));
    }
}
