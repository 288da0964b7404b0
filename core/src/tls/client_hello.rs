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
pub(crate) const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// Largest TLS plaintext record (RFC 8446 §5.1).
const MAX_RECORD: usize = 16 * 1024;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;

/// What the buffered bytes say about the client's server name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
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
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
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
    OtherHandshakeMessage {
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
            NotClientHello::OtherHandshakeMessage { handshake_type } => {
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
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
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
                        return Err(Gap::Not(NotClientHello::OtherHandshakeMessage {
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
            return Err(Gap::Not(NotClientHello::OtherHandshakeMessage { handshake_type: kind }));
        }
        if need.is_none()
            && let Some(header) = data.get(..4)
        {
            let (kind, len) = handshake_header(header);
            if kind != HANDSHAKE_CLIENT_HELLO {
                return Err(Gap::Not(NotClientHello::OtherHandshakeMessage { handshake_type: kind }));
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
mod tests;
