//! Peeks at the TLS ClientHello's server name (SNI) before any TLS state exists.
//!
//! rustls' unbuffered server does not expose the SNI, and the route and the
//! certificate must be chosen before the server connection is built anyway. So
//! the session buffers the client's first bytes and calls [`peek_sni`] after
//! each read until it answers something other than [`SniPeek::NeedMore`]; then
//! it builds the server connection and feeds it the same bytes.
//!
//! Works on whatever is buffered so far, including a ClientHello split across
//! several TLS records, and refuses a ClientHello larger than
//! [`MAX_CLIENT_HELLO`]. What counts as a server name follows rustls: an IP
//! literal is ignored (no SNI), an invalid name refuses the hello.

use std::fmt;

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take;
use nom::multi::length_data;
use nom::number::complete::{be_u8, be_u16};
use rustls::pki_types::ServerName;

/// The largest ClientHello accepted, in bytes of handshake body.
pub const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// Largest TLS plaintext record (RFC 8446 §5.1).
const MAX_RECORD: usize = 16 * 1024;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;

/// What the buffered bytes say about the client's server name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SniPeek {
    /// The ClientHello is not complete yet: read more and ask again.
    NeedMore,
    /// A complete ClientHello without a usable server name (none, or an IP literal).
    NoSni,
    /// The server name, lower-cased, without a trailing dot; a valid DNS name.
    Sni(String),
    /// The bytes are not a ClientHello this proxy accepts.
    NotClientHello(NotClientHello),
}

/// Why the buffered bytes are not an acceptable ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotClientHello {
    /// The record is not a handshake record (e.g. plaintext Kafka, HTTP).
    NotHandshakeRecord {
        /// The first byte seen where a content type was expected.
        content_type: u8,
    },
    /// The record's legacy version is not 3.x.
    BadRecordVersion {
        /// The major version byte.
        major: u8,
    },
    /// A record header announcing an empty or over-long fragment.
    BadRecordLength {
        /// The announced length.
        len: usize,
    },
    /// The first handshake message is not a ClientHello.
    NotClientHelloMessage {
        /// Its handshake type.
        handshake_type: u8,
    },
    /// The ClientHello is larger than [`MAX_CLIENT_HELLO`].
    TooLarge {
        /// Its announced length.
        len: usize,
    },
    /// A record of another type interrupted the ClientHello's records.
    Interleaved {
        /// The interrupting content type.
        content_type: u8,
    },
    /// A length or field inside the ClientHello is inconsistent.
    Malformed {
        /// The field being read.
        field: &'static str,
    },
    /// The server name is not a valid DNS name.
    InvalidServerName,
    /// More than one server_name extension or host name.
    DuplicateServerName,
}

impl fmt::Display for NotClientHello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotClientHello::NotHandshakeRecord { content_type } => {
                write!(f, "not a TLS handshake record (first byte {content_type:#04x})")
            }
            NotClientHello::BadRecordVersion { major } => {
                write!(f, "TLS record version {major}.x is not 3.x")
            }
            NotClientHello::BadRecordLength { len } => write!(f, "TLS record length {len} out of range"),
            NotClientHello::NotClientHelloMessage { handshake_type } => {
                write!(f, "first handshake message has type {handshake_type}, not ClientHello")
            }
            NotClientHello::TooLarge { len } => {
                write!(f, "ClientHello of {len} bytes exceeds the {MAX_CLIENT_HELLO}-byte limit")
            }
            NotClientHello::Interleaved { content_type } => {
                write!(f, "record of type {content_type} inside the ClientHello")
            }
            NotClientHello::Malformed { field } => write!(f, "malformed ClientHello ({field})"),
            NotClientHello::InvalidServerName => {
                f.write_str("ClientHello server name is not a valid DNS name")
            }
            NotClientHello::DuplicateServerName => f.write_str("ClientHello has more than one server name"),
        }
    }
}

impl std::error::Error for NotClientHello {}

/// Reads the SNI from the client's first bytes (everything buffered so far).
pub fn peek_sni(buffered: &[u8]) -> SniPeek {
    let message = match gather_hello(buffered) {
        Ok(message) => message,
        Err(Gap::NeedMore) => return SniPeek::NeedMore,
        Err(Gap::Not(why)) => return SniPeek::NotClientHello(why),
    };
    let body = message.as_slice().get(4..).unwrap_or(&[]);
    match server_name_of(body) {
        Ok(None) => SniPeek::NoSni,
        Ok(Some(raw)) => classify_name(raw),
        Err(why) => SniPeek::NotClientHello(why),
    }
}

fn classify_name(raw: &[u8]) -> SniPeek {
    let Ok(text) = std::str::from_utf8(raw) else {
        return SniPeek::NotClientHello(NotClientHello::InvalidServerName);
    };
    let text = text.strip_suffix('.').unwrap_or(text);
    match ServerName::try_from(text) {
        Ok(ServerName::DnsName(name)) => SniPeek::Sni(name.as_ref().to_ascii_lowercase()),
        Ok(ServerName::IpAddress(_)) => SniPeek::NoSni,
        Ok(_) | Err(_) => SniPeek::NotClientHello(NotClientHello::InvalidServerName),
    }
}

enum Gap {
    NeedMore,
    Not(NotClientHello),
}

/// The handshake message (4-byte header included), borrowed when one record
/// holds it all, else reassembled.
enum Message<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Message<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Message::Borrowed(slice) => slice,
            Message::Owned(vec) => vec,
        }
    }
}

/// Walks the records and returns the whole first handshake message once it is
/// buffered, after checking it is a ClientHello of acceptable size.
fn gather_hello(buffered: &[u8]) -> Result<Message<'_>, Gap> {
    let mut rest = buffered;
    let mut first: Option<&[u8]> = None;
    let mut joined: Option<Vec<u8>> = None;
    let mut have = 0usize;
    // The whole message length (header included), once the header is known.
    let mut need: Option<usize> = None;
    loop {
        let payload = match next_record(rest, first.is_none()) {
            Ok((payload, after)) => {
                rest = after;
                payload
            }
            Err(Gap::NeedMore) => {
                // Fail early on a partial first record that is obviously wrong:
                // not a ClientHello, or announcing more than the limit.
                if first.is_none() {
                    if let Some(kind) = rest.get(5)
                        && *kind != HANDSHAKE_CLIENT_HELLO
                    {
                        return Err(Gap::Not(NotClientHello::NotClientHelloMessage {
                            handshake_type: *kind,
                        }));
                    }
                    if let Some(header) = rest.get(5..9)
                        && let (_, len) = handshake_header(header)
                        && len > MAX_CLIENT_HELLO
                    {
                        return Err(Gap::Not(NotClientHello::TooLarge { len }));
                    }
                }
                return Err(Gap::NeedMore);
            }
            Err(other) => return Err(other),
        };
        // Keep only what the message needs (all of it while the header is unknown).
        let wanted = match need {
            Some(total) => payload.get(..total.saturating_sub(have).min(payload.len())).unwrap_or(payload),
            None => payload,
        };
        match (&mut joined, first) {
            (None, None) => first = Some(wanted),
            (None, Some(earlier)) => {
                let mut vec = Vec::with_capacity(need.unwrap_or(earlier.len() + wanted.len()));
                vec.extend_from_slice(earlier);
                vec.extend_from_slice(wanted);
                joined = Some(vec);
            }
            (Some(vec), _) => vec.extend_from_slice(wanted),
        }
        have = have.saturating_add(wanted.len());
        let data: &[u8] = match (&joined, first) {
            (Some(vec), _) => vec,
            (None, Some(slice)) => slice,
            (None, None) => &[],
        };
        // The type is known from the first byte: decide it now, as a partial
        // first record would, so the answer never depends on where reads split.
        if let Some(&kind) = data.first()
            && kind != HANDSHAKE_CLIENT_HELLO
        {
            return Err(Gap::Not(NotClientHello::NotClientHelloMessage { handshake_type: kind }));
        }
        if need.is_none()
            && let Some(header) = data.get(..4)
        {
            let (kind, len) = handshake_header(header);
            if kind != HANDSHAKE_CLIENT_HELLO {
                return Err(Gap::Not(NotClientHello::NotClientHelloMessage { handshake_type: kind }));
            }
            if len > MAX_CLIENT_HELLO {
                return Err(Gap::Not(NotClientHello::TooLarge { len }));
            }
            need = Some(len + 4);
        }
        if let Some(total) = need
            && have >= total
        {
            return Ok(match (joined, first) {
                (Some(mut vec), _) => {
                    vec.truncate(total);
                    Message::Owned(vec)
                }
                (None, Some(slice)) => Message::Borrowed(slice.get(..total).unwrap_or(slice)),
                (None, None) => Message::Borrowed(&[]),
            });
        }
    }
}

/// Splits one complete handshake record off `input`: its payload and what follows.
fn next_record(input: &[u8], first: bool) -> Result<(&[u8], &[u8]), Gap> {
    let Some(&content_type) = input.first() else {
        return Err(Gap::NeedMore);
    };
    if content_type != CONTENT_HANDSHAKE {
        return Err(Gap::Not(if first {
            NotClientHello::NotHandshakeRecord { content_type }
        } else {
            NotClientHello::Interleaved { content_type }
        }));
    }
    if let Some(&major) = input.get(1)
        && major != 3
    {
        return Err(Gap::Not(NotClientHello::BadRecordVersion { major }));
    }
    let Some(header) = input.get(..5) else {
        return Err(Gap::NeedMore);
    };
    let len = usize::from(u16::from_be_bytes([
        header.get(3).copied().unwrap_or(0),
        header.get(4).copied().unwrap_or(0),
    ]));
    if len == 0 || len > MAX_RECORD {
        return Err(Gap::Not(NotClientHello::BadRecordLength { len }));
    }
    match (input.get(5..5 + len), input.get(5 + len..)) {
        (Some(payload), Some(after)) => Ok((payload, after)),
        _ => Err(Gap::NeedMore),
    }
}

fn handshake_header(header: &[u8]) -> (u8, usize) {
    match header {
        [kind, a, b, c, ..] => (*kind, (usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c)),
        _ => (0, 0),
    }
}

type Parsed<'a, T> = IResult<&'a [u8], T, nom::error::Error<&'a [u8]>>;

fn malformed(field: &'static str) -> impl Fn(nom::Err<nom::error::Error<&[u8]>>) -> NotClientHello {
    move |_| NotClientHello::Malformed { field }
}

/// The raw host name of the server_name extension of a ClientHello body, if any.
fn server_name_of(body: &[u8]) -> Result<Option<&[u8]>, NotClientHello> {
    let (rest, _legacy_version) =
        be_u16::<_, nom::error::Error<&[u8]>>(body).map_err(malformed("version"))?;
    let (rest, _random) =
        take::<_, _, nom::error::Error<&[u8]>>(32usize)(rest).map_err(malformed("random"))?;
    let (rest, session_id) = u8_vec(rest).map_err(malformed("session id"))?;
    if session_id.len() > 32 {
        return Err(NotClientHello::Malformed { field: "session id" });
    }
    let (rest, suites) = u16_vec(rest).map_err(malformed("cipher suites"))?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(NotClientHello::Malformed { field: "cipher suites" });
    }
    let (rest, compression) = u8_vec(rest).map_err(malformed("compression methods"))?;
    if compression.is_empty() {
        return Err(NotClientHello::Malformed { field: "compression methods" });
    }
    if rest.is_empty() {
        // A TLS 1.2 ClientHello may omit the extensions block entirely.
        return Ok(None);
    }
    let (rest, mut extensions) = u16_vec(rest).map_err(malformed("extensions"))?;
    if !rest.is_empty() {
        return Err(NotClientHello::Malformed { field: "trailing bytes" });
    }
    let mut found = None;
    while !extensions.is_empty() {
        let (after, (kind, data)) = (be_u16, u16_vec).parse(extensions).map_err(malformed("extension"))?;
        extensions = after;
        if kind == EXT_SERVER_NAME {
            if found.is_some() {
                return Err(NotClientHello::DuplicateServerName);
            }
            found = Some(host_name_of(data)?);
        }
    }
    Ok(found.flatten())
}

/// The host_name entry of a server_name extension (RFC 6066 §3).
fn host_name_of(data: &[u8]) -> Result<Option<&[u8]>, NotClientHello> {
    let (rest, mut list) = u16_vec(data).map_err(malformed("server name list"))?;
    if !rest.is_empty() || list.is_empty() {
        return Err(NotClientHello::Malformed { field: "server name list" });
    }
    let mut host = None;
    while !list.is_empty() {
        let (after, kind) =
            be_u8::<_, nom::error::Error<&[u8]>>(list).map_err(malformed("server name type"))?;
        if kind != NAME_TYPE_HOST_NAME {
            // Other name types have no defined encoding: nothing after them can be read.
            break;
        }
        let (after, name) = u16_vec(after).map_err(malformed("host name"))?;
        if host.is_some() {
            return Err(NotClientHello::DuplicateServerName);
        }
        if name.is_empty() {
            return Err(NotClientHello::InvalidServerName);
        }
        host = Some(name);
        list = after;
    }
    Ok(host)
}

fn u8_vec(input: &[u8]) -> Parsed<'_, &[u8]> {
    length_data(be_u8).parse(input)
}

fn u16_vec(input: &[u8]) -> Parsed<'_, &[u8]> {
    length_data(be_u16).parse(input)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::tls::config::{ClientAuth, TlsVersions};
    use crate::tls::driver::{RustlsSession, TlsDriver};
    use crate::tls::test_util::*;

    /// The first flight of a rustls client (its ClientHello, one record).
    fn hello_from(config: Arc<rustls::ClientConfig>, server: ServerName<'static>) -> Vec<u8> {
        let mut client = End::new(RustlsSession::client(config, server).unwrap());
        client.process().unwrap();
        client.outgoing.to_vec()
    }

    fn hello_with_sni(host: &str) -> Vec<u8> {
        hello_from(client_cfg(CA, None, TlsVersions::Tls12And13), name(host))
    }

    fn hello_without_sni() -> Vec<u8> {
        let mut config = (*client_cfg(CA, None, TlsVersions::Tls12And13)).clone();
        config.enable_sni = false;
        hello_from(Arc::new(config), name("broker-1.proxy.test"))
    }

    /// Re-frames a single-record handshake flight into records of `size` bytes.
    fn refragment(flight: &[u8], size: usize) -> Vec<u8> {
        let payload = &flight[5..];
        let mut out = Vec::new();
        for chunk in payload.chunks(size) {
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn real_client_hellos() {
        assert_eq!(
            peek_sni(&hello_with_sni("Broker-1.Proxy.Test")),
            SniPeek::Sni("broker-1.proxy.test".into())
        );
        assert_eq!(peek_sni(&hello_without_sni()), SniPeek::NoSni);
        // rustls sends no SNI for an IP address.
        let by_ip = hello_from(
            client_cfg(CA, None, TlsVersions::Tls12Only),
            ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        );
        assert_eq!(peek_sni(&by_ip), SniPeek::NoSni);
    }

    #[test]
    fn split_across_records_and_reads() {
        let hello = hello_with_sni("broker-7.proxy.test");
        for size in [1, 2, 3, 4, 5, 17, 100, 511] {
            let framed = refragment(&hello, size);
            assert_eq!(peek_sni(&framed), SniPeek::Sni("broker-7.proxy.test".into()), "records of {size}");
            // Every proper prefix asks for more.
            for cut in 0..framed.len() {
                assert_eq!(peek_sni(&framed[..cut]), SniPeek::NeedMore, "records of {size}, cut at {cut}");
            }
        }
        // The re-framed hello is still a ClientHello rustls accepts: the server
        // built after the peek completes the handshake from the same bytes.
        let mut pair = Pair::new(
            client_cfg(CA, None, TlsVersions::Tls12And13),
            "broker-7.proxy.test",
            server_cfg(ClientAuth::None, TlsVersions::Tls12And13),
        );
        pair.client.process().unwrap();
        let flight = pair.client.outgoing.split();
        let framed = refragment(&flight, 64);
        for chunk in framed.chunks(10) {
            pair.server.incoming.extend_from_slice(chunk);
            pair.server.process().unwrap();
        }
        assert_eq!(peek_sni(&framed), SniPeek::Sni("broker-7.proxy.test".into()));
        pair.handshake();
        assert!(pair.server.tls.status().handshake_complete);
    }

    #[test]
    fn trailing_records_are_ignored() {
        let mut bytes = hello_with_sni("a.proxy.test");
        bytes.extend_from_slice(&[20, 3, 3, 0, 1, 1]); // a ChangeCipherSpec after the hello
        assert_eq!(peek_sni(&bytes), SniPeek::Sni("a.proxy.test".into()));
    }

    #[test]
    fn truncations_never_claim_a_name_they_do_not_have() {
        let hello = hello_with_sni("broker-1.proxy.test");
        for cut in 0..hello.len() {
            assert_eq!(peek_sni(&hello[..cut]), SniPeek::NeedMore, "cut at {cut}");
        }
        // Shrinking the announced lengths instead of the bytes: never a panic,
        // never a wrong name.
        for cut in 1..hello.len() - 9 {
            let mut shrunk = hello.clone();
            let record_len = (hello.len() - 5 - cut) as u16;
            shrunk[3..5].copy_from_slice(&record_len.to_be_bytes());
            let hs_len = (hello.len() - 9 - cut) as u32;
            shrunk[6..9].copy_from_slice(&hs_len.to_be_bytes()[1..]);
            shrunk.truncate(hello.len() - cut);
            match peek_sni(&shrunk) {
                SniPeek::Sni(name) => assert_eq!(name, "broker-1.proxy.test"),
                SniPeek::NeedMore => panic!("complete message reported incomplete (cut {cut})"),
                SniPeek::NoSni | SniPeek::NotClientHello(_) => {}
            }
        }
    }

    #[test]
    fn not_client_hellos() {
        use NotClientHello::*;
        assert_eq!(
            peek_sni(&[0, 0, 0, 0x1f, 0, 18]),
            SniPeek::NotClientHello(NotHandshakeRecord { content_type: 0 })
        );
        assert_eq!(
            peek_sni(b"GET / HTTP/1.1\r\n"),
            SniPeek::NotClientHello(NotHandshakeRecord { content_type: b'G' })
        );
        assert_eq!(peek_sni(&[22, 2]), SniPeek::NotClientHello(BadRecordVersion { major: 2 }));
        assert_eq!(peek_sni(&[22, 3, 1, 0, 0]), SniPeek::NotClientHello(BadRecordLength { len: 0 }));
        assert_eq!(
            peek_sni(&[22, 3, 1, 0x48, 0x01]),
            SniPeek::NotClientHello(BadRecordLength { len: 0x4801 })
        );
        // A ServerHello, detected from the first byte of the body.
        assert_eq!(
            peek_sni(&[22, 3, 3, 0, 80, 2]),
            SniPeek::NotClientHello(NotClientHelloMessage { handshake_type: 2 })
        );
        // Announcing more than 16 KiB is refused before it is buffered.
        assert_eq!(
            peek_sni(&[22, 3, 1, 0x40, 0x00, 1, 0, 0x40, 0x01]),
            SniPeek::NotClientHello(TooLarge { len: 0x4001 })
        );
        // A record of another type in the middle of a split ClientHello.
        let hello = refragment(&hello_with_sni("a.proxy.test"), 10);
        let mut interleaved = hello[..15].to_vec();
        interleaved.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
        assert_eq!(peek_sni(&interleaved), SniPeek::NotClientHello(Interleaved { content_type: 21 }));
    }

    /// A minimal TLS 1.2 ClientHello around the given extensions block.
    fn synthetic(extensions: Option<&[u8]>) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0xc0, 0x2f]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        if let Some(ext) = extensions {
            body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            body.extend_from_slice(ext);
        }
        let mut msg = vec![1];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        let mut record = vec![22, 3, 1];
        record.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        record.extend_from_slice(&msg);
        record
    }

    fn server_name_ext(entries: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (kind, name) in entries {
            list.push(*kind);
            list.extend_from_slice(&(name.len() as u16).to_be_bytes());
            list.extend_from_slice(name);
        }
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
        ext.extend_from_slice(&list);
        ext
    }

    #[test]
    fn synthetic_hellos() {
        use NotClientHello::*;
        assert_eq!(peek_sni(&synthetic(None)), SniPeek::NoSni, "no extensions block at all");
        assert_eq!(peek_sni(&synthetic(Some(&[]))), SniPeek::NoSni);
        let sni = server_name_ext(&[(0, b"kafka.example.com.")]);
        assert_eq!(peek_sni(&synthetic(Some(&sni))), SniPeek::Sni("kafka.example.com".into()));
        let ip = server_name_ext(&[(0, b"10.0.0.1")]);
        assert_eq!(
            peek_sni(&synthetic(Some(&ip))),
            SniPeek::NoSni,
            "an IP literal is ignored, as rustls does"
        );
        let bad = server_name_ext(&[(0, b"under_score..example")]);
        assert_eq!(peek_sni(&synthetic(Some(&bad))), SniPeek::NotClientHello(InvalidServerName));
        let two = server_name_ext(&[(0, b"a.example"), (0, b"b.example")]);
        assert_eq!(peek_sni(&synthetic(Some(&two))), SniPeek::NotClientHello(DuplicateServerName));
        let mut twice = sni.clone();
        twice.extend_from_slice(&sni);
        assert_eq!(peek_sni(&synthetic(Some(&twice))), SniPeek::NotClientHello(DuplicateServerName));
        let unknown_type_first = server_name_ext(&[(7, b"x"), (0, b"a.example")]);
        assert_eq!(peek_sni(&synthetic(Some(&unknown_type_first))), SniPeek::NoSni);
        // Another extension before server_name is skipped.
        let mut both = vec![0, 23, 0, 0]; // extended_master_secret, empty
        both.extend_from_slice(&sni);
        assert_eq!(peek_sni(&synthetic(Some(&both))), SniPeek::Sni("kafka.example.com".into()));
        // An extension whose length overruns the block.
        assert_eq!(
            peek_sni(&synthetic(Some(&[0, 0, 0, 9, 0]))),
            SniPeek::NotClientHello(Malformed { field: "extension" })
        );
    }

    /// Found by the `client_hello` fuzz target: a 3-byte first record whose
    /// first byte is not ClientHello must be refused whatever follows.
    #[test]
    fn decided_prefix_is_final() {
        let input = [0x16, 0x03, 0x00, 0x00, 0x03, 0x3b, 0x16, 0xff, 0x03, 0x00, 0x2f, 0x0a, 0x0a];
        let expected =
            SniPeek::NotClientHello(NotClientHello::NotClientHelloMessage { handshake_type: 0x3b });
        assert_eq!(peek_sni(&input[..6]), expected);
        assert_eq!(peek_sni(&input), expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Once a prefix is decided, more bytes never change the answer.
        #[test]
        fn answers_do_not_depend_on_read_splits(
            records in proptest::collection::vec(
                (prop_oneof![Just(22u8), any::<u8>()], 0u16..40, proptest::collection::vec(any::<u8>(), 0..40)),
                1..5,
            ),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = Vec::new();
            for (kind, len, payload) in &records {
                bytes.extend_from_slice(&[*kind, 3, 1]);
                bytes.extend_from_slice(&len.to_be_bytes());
                bytes.extend_from_slice(payload);
            }
            let whole = peek_sni(&bytes);
            let early = peek_sni(&bytes[..cut.index(bytes.len() + 1)]);
            if early != SniPeek::NeedMore {
                prop_assert_eq!(early, whole);
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let SniPeek::Sni(name) = peek_sni(&bytes) {
                prop_assert!(ServerName::try_from(name.as_str()).is_ok());
            }
        }

        #[test]
        fn random_handshake_records_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..400),
            claimed in 0u32..600,
        ) {
            let mut msg = vec![1];
            msg.extend_from_slice(&claimed.to_be_bytes()[1..]);
            msg.extend_from_slice(&body);
            let mut record = vec![22, 3, 1];
            record.extend_from_slice(&(msg.len() as u16).to_be_bytes());
            record.extend_from_slice(&msg);
            if let SniPeek::Sni(name) = peek_sni(&record) {
                prop_assert!(matches!(ServerName::try_from(name.as_str()), Ok(ServerName::DnsName(_))));
            }
        }

        #[test]
        fn mutated_real_hello(index in 0usize..400, value in any::<u8>(), split in 1usize..300) {
            let mut hello = hello_with_sni("broker-3.proxy.test");
            let at = index % hello.len();
            hello[at] = value;
            let whole = peek_sni(&hello);
            if let SniPeek::Sni(name) = &whole {
                prop_assert!(ServerName::try_from(name.as_str()).is_ok());
            }
            if hello[0] == 22 && hello[1] == 3 {
                let reframed = refragment(&hello, split);
                let again = peek_sni(&reframed);
                if let (SniPeek::Sni(a), SniPeek::Sni(b)) = (&whole, &again) {
                    prop_assert_eq!(a, b);
                }
            }
        }
    }
}
