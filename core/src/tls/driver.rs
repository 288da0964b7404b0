//! The TLS record engine of a session, behind one small trait.
//!
//! [`TlsDriver`] is the only surface the rest of the core sees; [`RustlsSession`]
//! implements it over rustls 0.23's unbuffered connections. When rustls 0.24
//! replaces that API, this module is the one to change.
//!
//! The session owns three `BytesMut` buffers and lends them as [`TlsIo`]:
//! ciphertext read from the socket (complete records are consumed from the
//! front), decrypted application data (appended), and TLS records to send
//! (appended). The driver keeps no hidden byte buffers of its own, except a
//! reused scratch buffer that packs several small plaintext slices into one
//! record.
//!
//! Rules of rustls' unbuffered API that live here and nowhere else: call
//! `process_tls_records` until it blocks, read traffic record by record, drop
//! `discard` bytes from the front before the next call, grow the output on
//! `InsufficientSize` and retry (bounded), and never hand rustls an empty slice
//! while it still points into the input buffer.

use std::fmt;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use rustls::client::{ClientConfig, UnbufferedClientConnection};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{ServerConfig, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError, UnbufferedStatus,
    WriteTraffic,
};
use rustls::{AlertDescription, CertificateError, CipherSuite, CommonState, ProtocolVersion};

/// The largest plaintext a TLS record carries (RFC 8446 §5.1).
pub(crate) const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

/// Upper bound on one append to the outgoing buffer (a handshake flight or an
/// encrypted write); rustls never asks for more unless something is wrong.
const MAX_APPEND: usize = 64 * 1024 * 1024;

/// Plaintext encrypted per rustls call (64 full records): a 100 MiB frame is
/// encrypted in steps instead of one giant output window.
const ENCRYPT_BATCH: usize = 64 * MAX_RECORD_PLAINTEXT;

/// How many times one encode/encrypt may ask for a larger buffer.
const MAX_GROW_ATTEMPTS: usize = 4;

/// Bytes of a peer's first flight remembered for a "not TLS" error.
const FIRST_BYTES: usize = 8;

/// Which end of the TLS connection this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the ClientHello (the proxy towards a broker).
    Client,
    /// We answered a ClientHello (the proxy towards a Kafka client).
    Server,
}

/// The buffers a session lends to its TLS driver for one call.
#[derive(Debug)]
pub struct TlsIo<'a> {
    /// Ciphertext received from the peer. Complete records are consumed from the
    /// front; a partial record stays for the next call.
    pub incoming: &'a mut BytesMut,
    /// Decrypted application data is appended here.
    pub plaintext: &'a mut BytesMut,
    /// TLS records to send to the peer are appended here, in order.
    pub outgoing: &'a mut BytesMut,
}

/// Where a TLS session stands after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsStatus {
    /// The handshake finished in both directions: application data flows.
    pub handshake_complete: bool,
    /// The peer sent close_notify: no more application data will arrive.
    pub peer_closed: bool,
    /// We closed (close_notify queued, or closed before the handshake ended):
    /// nothing more may be written.
    pub closed: bool,
}

/// What the handshake agreed on, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// TLS 1.2 or TLS 1.3.
    pub version: ProtocolVersion,
    /// The cipher suite.
    pub cipher_suite: CipherSuite,
}

/// The first bytes a peer sent, kept to explain a "not TLS" error.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FirstBytes {
    bytes: [u8; FIRST_BYTES],
    len: u8,
}

impl FirstBytes {
    fn capture(input: &[u8]) -> FirstBytes {
        let mut bytes = [0u8; FIRST_BYTES];
        let len = input.len().min(FIRST_BYTES);
        for (dst, src) in bytes.iter_mut().zip(input.iter()) {
            *dst = *src;
        }
        FirstBytes { bytes, len: len as u8 }
    }

    /// The captured bytes (at most eight).
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// True when the bytes look like the start of a plaintext Kafka request: a
    /// big-endian `int32` size below 16 MiB-ish followed by a plausible api key.
    pub fn looks_like_kafka(&self) -> bool {
        match self.as_slice() {
            [0, _, _, _, 0, api_key, ..] => *api_key < 128,
            _ => false,
        }
    }
}

impl fmt::Debug for FirstBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FirstBytes({self})")
    }
}

impl fmt::Display for FirstBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Why a TLS session failed. Every error is final for its session: later calls
/// return it again.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsError {
    /// The peer's first bytes are not a TLS record, e.g. a plaintext Kafka
    /// client on a TLS listener, or a broker port without TLS.
    NotTls {
        /// Our role; the message differs for a client and a server.
        role: Role,
        /// What the peer sent first.
        first_bytes: FirstBytes,
    },
    /// The peer aborted with a fatal alert (e.g. `BadCertificate`, `UnknownCA`).
    AlertReceived {
        /// The alert.
        alert: AlertDescription,
    },
    /// The peer's certificate was refused.
    PeerCertificate {
        /// Why webpki (or the configured verifier) refused it.
        reason: CertificateError,
    },
    /// Client authentication is required and the client sent no certificate.
    NoPeerCertificate,
    /// Any other TLS protocol failure (no common version or cipher suite, bad
    /// record MAC, malformed message, ...), as rustls reports it.
    Protocol {
        /// rustls' error, whose text names the problem.
        error: rustls::Error,
    },
    /// Application data was written before the handshake allowed it.
    HandshakeIncomplete,
    /// Application data was written after we closed the session.
    Closed,
    /// rustls asked for an output buffer beyond the sane bound.
    OutputTooLarge {
        /// The size rustls asked for.
        required: usize,
    },
    /// The key's record limit is reached (TLS 1.2 cannot rekey): the session must end.
    EncryptExhausted,
    /// rustls entered a state this driver does not use (early data, or a
    /// variant added by a later rustls).
    UnexpectedState {
        /// The state's name.
        state: &'static str,
    },
    /// rustls kept returning without progress; the bound was hit.
    Stalled,
}

impl TlsError {
    fn from_rustls(error: rustls::Error) -> TlsError {
        match error {
            rustls::Error::AlertReceived(alert) => TlsError::AlertReceived { alert },
            rustls::Error::InvalidCertificate(reason) => TlsError::PeerCertificate { reason },
            rustls::Error::NoCertificatesPresented => TlsError::NoPeerCertificate,
            error => TlsError::Protocol { error },
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NotTls { role: Role::Server, first_bytes } => {
                write!(f, "the client did not start a TLS handshake (first bytes {first_bytes})")?;
                if first_bytes.looks_like_kafka() {
                    f.write_str("; it looks like a plaintext Kafka client on a TLS listener")?;
                }
                Ok(())
            }
            TlsError::NotTls { role: Role::Client, first_bytes } => write!(
                f,
                "the server did not answer with TLS (first bytes {first_bytes}); is TLS enabled on that port?"
            ),
            TlsError::AlertReceived { alert } => {
                write!(f, "the peer aborted the TLS session: alert {alert:?}")
            }
            TlsError::PeerCertificate { reason } => write!(f, "the peer's certificate was refused: {reason}"),
            TlsError::NoPeerCertificate => {
                f.write_str("the client presented no certificate, and one is required")
            }
            TlsError::Protocol { error } => write!(f, "TLS protocol error: {error}"),
            TlsError::HandshakeIncomplete => {
                f.write_str("application data written before the TLS handshake ended")
            }
            TlsError::Closed => f.write_str("application data written after the TLS session was closed"),
            TlsError::OutputTooLarge { required } => {
                write!(f, "TLS output of {required} bytes exceeds the bound of {MAX_APPEND}")
            }
            TlsError::EncryptExhausted => f.write_str("TLS record limit of the current keys reached"),
            TlsError::UnexpectedState { state } => write!(f, "unexpected TLS state {state}"),
            TlsError::Stalled => f.write_str("TLS processing made no progress"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The TLS engine of one session: one owner, driven with the session's buffers.
///
/// After every call, send what was appended to `outgoing` and hand what was
/// appended to `plaintext` to the protocol above.
pub trait TlsDriver {
    /// Processes the ciphertext in `io.incoming` (possibly none) until rustls
    /// blocks: handshake records are answered into `io.outgoing`, application
    /// data is appended to `io.plaintext`. A client's first call, with no input,
    /// produces its ClientHello.
    fn process(&mut self, io: &mut TlsIo<'_>) -> Result<TlsStatus, TlsError>;

    /// Encrypts the concatenation of `plaintext` into `io.outgoing`. Small slices
    /// (a frame header and its body) share records. Fails with
    /// [`TlsError::HandshakeIncomplete`] before the handshake allows writing.
    /// May process pending input first, appending to `io.plaintext`.
    fn write(&mut self, io: &mut TlsIo<'_>, plaintext: &[&[u8]]) -> Result<TlsStatus, TlsError>;

    /// Queues close_notify into `io.outgoing` (nothing is sent if the handshake
    /// has not finished). Afterwards nothing may be written.
    fn close(&mut self, io: &mut TlsIo<'_>) -> Result<TlsStatus, TlsError>;

    /// The current status, without doing anything.
    fn status(&self) -> TlsStatus;

    /// Our role in the handshake.
    fn role(&self) -> Role;

    /// The peer's certificate chain, end-entity first, once it was received
    /// and verified (for a server: only when the client sent one).
    fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]>;

    /// The protocol version and cipher suite, once agreed.
    fn negotiated(&self) -> Option<Negotiated>;
}

/// rustls' two unbuffered connection types, seen through one interface.
trait Unbuffered {
    type Data;
    fn process_records<'c, 'i>(&'c mut self, incoming: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data>;
    fn common(&self) -> &CommonState;
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = rustls::client::ClientConnectionData;
    fn process_records<'c, 'i>(&'c mut self, incoming: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
    fn common(&self) -> &CommonState {
        self
    }
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = rustls::server::ServerConnectionData;
    fn process_records<'c, 'i>(&'c mut self, incoming: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
    fn common(&self) -> &CommonState {
        self
    }
}

enum Conn {
    Client(Box<UnbufferedClientConnection>),
    Server(Box<UnbufferedServerConnection>),
}

/// What one drive of the state machine should do once writing is allowed.
#[derive(Clone, Copy)]
enum Request<'p> {
    /// Only process input.
    Nothing,
    /// Encrypt these slices.
    Write(&'p [&'p [u8]]),
    /// Queue close_notify.
    Close,
}

/// How a drive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// rustls waits for more input; writing is not yet possible.
    Blocked,
    /// rustls waits for more input; writing is possible (and a request was served).
    Writable,
    /// Both sides closed.
    Closed,
}

/// The per-session flags the driver keeps besides rustls' own state.
#[derive(Debug, Default)]
struct Flags {
    peer_closed: bool,
    closed: bool,
    /// The peer's first bytes were checked to be a TLS record.
    saw_tls: bool,
    /// Cached once seen: the handshake finished both ways.
    handshake_complete: bool,
}

/// [`TlsDriver`] over rustls 0.23's `UnbufferedClientConnection` /
/// `UnbufferedServerConnection`.
pub struct RustlsSession {
    conn: Conn,
    flags: Flags,
    failed: Option<TlsError>,
    /// Packs small plaintext slices into full records; capacity kept, at most
    /// one record.
    scratch: Vec<u8>,
}

impl fmt::Debug for RustlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustlsSession")
            .field("role", &self.role())
            .field("status", &self.status())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl RustlsSession {
    /// A client session towards `server_name` (checked against the server's
    /// certificate unless the config trusts all).
    pub fn client(config: Arc<ClientConfig>, server_name: ServerName<'static>) -> Result<Self, TlsError> {
        let conn = UnbufferedClientConnection::new(config, server_name).map_err(TlsError::from_rustls)?;
        Ok(Self::with(Conn::Client(Box::new(conn))))
    }

    /// A server session. Build it after choosing the config (for example from
    /// the ClientHello's SNI), then feed it the bytes buffered so far.
    pub fn server(config: Arc<ServerConfig>) -> Result<Self, TlsError> {
        let conn = UnbufferedServerConnection::new(config).map_err(TlsError::from_rustls)?;
        Ok(Self::with(Conn::Server(Box::new(conn))))
    }

    fn with(conn: Conn) -> Self {
        RustlsSession { conn, flags: Flags::default(), failed: None, scratch: Vec::new() }
    }

    fn common(&self) -> &CommonState {
        match &self.conn {
            Conn::Client(c) => c.common(),
            Conn::Server(s) => s.common(),
        }
    }

    fn run(&mut self, io: &mut TlsIo<'_>, request: Request<'_>) -> Result<Stop, TlsError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let role = self.role();
        if let Err(error) = check_first_bytes(&mut self.flags, role, io.incoming) {
            self.failed = Some(error.clone());
            return Err(error);
        }
        let result = match &mut self.conn {
            Conn::Client(c) => drive(c.as_mut(), io, &mut self.flags, &mut self.scratch, request),
            Conn::Server(s) => drive(s.as_mut(), io, &mut self.flags, &mut self.scratch, request),
        };
        if let Err(error) = &result {
            // rustls queues a fatal alert for most errors: send it, so the peer
            // learns why (e.g. `bad_certificate`).
            match &mut self.conn {
                Conn::Client(c) => flush_alerts(c.as_mut(), io),
                Conn::Server(s) => flush_alerts(s.as_mut(), io),
            }
            self.failed = Some(error.clone());
        }
        result
    }
}

impl TlsDriver for RustlsSession {
    fn process(&mut self, io: &mut TlsIo<'_>) -> Result<TlsStatus, TlsError> {
        self.run(io, Request::Nothing)?;
        Ok(self.status())
    }

    fn write(&mut self, io: &mut TlsIo<'_>, plaintext: &[&[u8]]) -> Result<TlsStatus, TlsError> {
        if self.flags.closed {
            return Err(TlsError::Closed);
        }
        if plaintext.iter().all(|s| s.is_empty()) {
            return Ok(self.status());
        }
        if !self.flags.handshake_complete {
            // TLS 1.3 lets a server write before the client's Finished (and
            // certificate) arrived; Kafka never needs that, so refuse it.
            self.run(io, Request::Nothing)?;
            if !self.status().handshake_complete {
                return Err(TlsError::HandshakeIncomplete);
            }
            self.flags.handshake_complete = true;
        }
        match self.run(io, Request::Write(plaintext))? {
            Stop::Writable => Ok(self.status()),
            Stop::Closed => Err(TlsError::Closed),
            Stop::Blocked => Err(TlsError::HandshakeIncomplete),
        }
    }

    fn close(&mut self, io: &mut TlsIo<'_>) -> Result<TlsStatus, TlsError> {
        if !self.flags.closed {
            match self.run(io, Request::Close)? {
                Stop::Writable | Stop::Closed => {}
                // No traffic keys yet: nothing to send, the socket just closes.
                Stop::Blocked => self.flags.closed = true,
            }
        }
        Ok(self.status())
    }

    fn status(&self) -> TlsStatus {
        TlsStatus {
            handshake_complete: !self.common().is_handshaking(),
            peer_closed: self.flags.peer_closed,
            closed: self.flags.closed,
        }
    }

    fn role(&self) -> Role {
        match self.conn {
            Conn::Client(_) => Role::Client,
            Conn::Server(_) => Role::Server,
        }
    }

    fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.common().peer_certificates()
    }

    fn negotiated(&self) -> Option<Negotiated> {
        let common = self.common();
        Some(Negotiated {
            version: common.protocol_version()?,
            cipher_suite: common.negotiated_cipher_suite()?.suite(),
        })
    }
}

/// Refuses a peer whose first bytes are not a TLS handshake or alert record
/// header. rustls would also refuse them, with a less helpful message.
fn check_first_bytes(flags: &mut Flags, role: Role, incoming: &[u8]) -> Result<(), TlsError> {
    if flags.saw_tls || incoming.is_empty() {
        return Ok(());
    }
    // Content type 22 (handshake) or 21 (alert), then legacy version 3.x.
    let plausible = matches!(incoming.first(), Some(22 | 21))
        && incoming.get(1).is_none_or(|major| *major == 3)
        && incoming.get(2).is_none_or(|minor| *minor <= 4);
    if !plausible {
        return Err(TlsError::NotTls { role, first_bytes: FirstBytes::capture(incoming) });
    }
    if incoming.len() >= 3 {
        flags.saw_tls = true;
    }
    Ok(())
}

/// Runs rustls until it blocks, serving `request` once writing is allowed.
fn drive<C: Unbuffered>(
    conn: &mut C,
    io: &mut TlsIo<'_>,
    flags: &mut Flags,
    scratch: &mut Vec<u8>,
    mut request: Request<'_>,
) -> Result<Stop, TlsError> {
    let TlsIo { incoming, plaintext, outgoing } = io;
    // Every turn consumes a record, emits output or changes state; this bound
    // is far above what a well-behaved turn sequence needs.
    let max_turns = 64 + incoming.len() / 2;
    for _ in 0..max_turns {
        let UnbufferedStatus { mut discard, state } = conn.process_records(&mut incoming[..]);
        let step = match state {
            Err(error) => Err(TlsError::from_rustls(error)),
            Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                let mut result = Ok(None);
                while let Some(record) = traffic.next_record() {
                    match record {
                        Ok(record) => {
                            discard += record.discard;
                            plaintext.extend_from_slice(record.payload);
                        }
                        Err(error) => {
                            result = Err(TlsError::from_rustls(error));
                            break;
                        }
                    }
                }
                result
            }
            Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                encode_into(&mut encode, outgoing).map(|()| None)
            }
            Ok(ConnectionState::TransmitTlsData(transmit)) => {
                // The encoded records are already queued in `outgoing`, in order.
                transmit.done();
                Ok(None)
            }
            Ok(ConnectionState::BlockedHandshake) => Ok(Some(Stop::Blocked)),
            Ok(ConnectionState::WriteTraffic(mut traffic)) => match request {
                Request::Nothing => Ok(Some(Stop::Writable)),
                Request::Write(slices) => {
                    request = Request::Nothing;
                    encrypt_slices(&mut traffic, slices, outgoing, scratch).map(|()| Some(Stop::Writable))
                }
                Request::Close => {
                    request = Request::Nothing;
                    flags.closed = true;
                    append_grown(outgoing, 64, |out| traffic.queue_close_notify(out).map_err(grow_or_fail))
                        .map(|()| Some(Stop::Writable))
                }
            },
            Ok(ConnectionState::PeerClosed) => {
                flags.peer_closed = true;
                Ok(None)
            }
            Ok(ConnectionState::Closed) => {
                flags.peer_closed = true;
                flags.closed = true;
                Ok(Some(Stop::Closed))
            }
            Ok(ConnectionState::ReadEarlyData(_)) => {
                Err(TlsError::UnexpectedState { state: "ReadEarlyData" })
            }
            Ok(_) => Err(TlsError::UnexpectedState { state: "unknown" }),
        };
        incoming.advance(discard.min(incoming.len()));
        if let Some(stop) = step? {
            return Ok(stop);
        }
    }
    Err(TlsError::Stalled)
}

/// After an error, encodes the fatal alert rustls queued (if any) so it can be
/// sent before the socket closes. Errors here are ignored: the session is over.
///
/// Only calls rustls while it has queued records: `process_tls_records` hands
/// those out before touching the input, so the offending bytes are never
/// parsed twice (rustls asserts a fatal alert is sent once).
fn flush_alerts<C: Unbuffered>(conn: &mut C, io: &mut TlsIo<'_>) {
    for _ in 0..8 {
        if !conn.common().wants_write() {
            return;
        }
        // The real input buffer, never an empty slice: rustls may still refer
        // to bytes it has not discarded.
        let UnbufferedStatus { discard, state } = conn.process_records(&mut io.incoming[..]);
        let encoded = match state {
            Ok(ConnectionState::EncodeTlsData(mut encode)) => encode_into(&mut encode, io.outgoing).is_ok(),
            _ => false,
        };
        io.incoming.advance(discard.min(io.incoming.len()));
        if !encoded {
            return;
        }
    }
}

/// Outcome of one attempt to write into a slice.
enum Attempt {
    /// The slice must hold at least this many bytes.
    Grow(usize),
    /// A real failure.
    Fail(TlsError),
}

fn grow_or_fail(error: EncryptError) -> Attempt {
    match error {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Attempt::Grow(required_size)
        }
        EncryptError::EncryptExhausted => Attempt::Fail(TlsError::EncryptExhausted),
    }
}

/// Appends what `write` produces to `out`: offers `guess` zeroed bytes, grows
/// to the size rustls asks for (at most a few times, and never past
/// [`MAX_APPEND`]), then trims to what was written. Within the buffer's
/// capacity this does not allocate.
fn append_grown(
    out: &mut BytesMut,
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Attempt>,
) -> Result<(), TlsError> {
    let start = out.len();
    let mut size = guess;
    for _ in 0..MAX_GROW_ATTEMPTS {
        if size > MAX_APPEND {
            out.truncate(start);
            return Err(TlsError::OutputTooLarge { required: size });
        }
        out.resize(start + size, 0);
        let attempt = match out.get_mut(start..) {
            Some(window) => write(window),
            None => Err(Attempt::Fail(TlsError::Stalled)),
        };
        match attempt {
            Ok(written) => {
                out.truncate(start + written.min(size));
                return Ok(());
            }
            Err(Attempt::Grow(required)) if required > size => size = required,
            Err(Attempt::Grow(_)) => break,
            Err(Attempt::Fail(error)) => {
                out.truncate(start);
                return Err(error);
            }
        }
    }
    out.truncate(start);
    Err(TlsError::Stalled)
}

fn encode_into<D>(encode: &mut EncodeTlsData<'_, D>, out: &mut BytesMut) -> Result<(), TlsError> {
    // Ask with an empty window first: rustls answers with the exact size and
    // keeps the record, so nothing is zeroed twice.
    append_grown(out, 0, |window| {
        encode.encode(window).map_err(|error| match error {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Attempt::Grow(required_size)
            }
            EncodeError::AlreadyEncoded => {
                Attempt::Fail(TlsError::UnexpectedState { state: "AlreadyEncoded" })
            }
        })
    })
}

/// Encrypts one contiguous plaintext into `out`.
fn encrypt_one<D>(
    traffic: &mut WriteTraffic<'_, D>,
    data: &[u8],
    out: &mut BytesMut,
) -> Result<(), TlsError> {
    // Per record at most 5 (header) + 8 (TLS 1.2 explicit nonce) + 16 (tag)
    // + 1 (TLS 1.3 content type); a pending key update makes rustls ask for more.
    let records = data.len().div_ceil(MAX_RECORD_PLAINTEXT).max(1);
    let guess = data.len().saturating_add(records.saturating_mul(32));
    append_grown(out, guess, |window| traffic.encrypt(data, window).map_err(grow_or_fail))
}

/// Encrypts the concatenation of `slices`, producing full records: large runs
/// are encrypted in place, small pieces are packed through `scratch`.
fn encrypt_slices<D>(
    traffic: &mut WriteTraffic<'_, D>,
    slices: &[&[u8]],
    out: &mut BytesMut,
    scratch: &mut Vec<u8>,
) -> Result<(), TlsError> {
    scratch.clear();
    let last = slices.len().saturating_sub(1);
    for (index, slice) in slices.iter().enumerate() {
        let mut rest: &[u8] = slice;
        while !rest.is_empty() {
            if scratch.is_empty() && (index == last || rest.len() >= MAX_RECORD_PLAINTEXT) {
                // Nothing packed: encrypt straight from the caller's slice, whole
                // records only unless this is the final piece, at most
                // `ENCRYPT_BATCH` at a time so the output window stays small.
                let whole =
                    if index == last { rest.len() } else { rest.len() - rest.len() % MAX_RECORD_PLAINTEXT };
                let take = whole.min(ENCRYPT_BATCH);
                let (now, later) = rest.split_at(take);
                encrypt_one(traffic, now, out)?;
                rest = later;
            } else {
                let take = (MAX_RECORD_PLAINTEXT - scratch.len()).min(rest.len());
                let (now, later) = rest.split_at(take);
                scratch.extend_from_slice(now);
                rest = later;
                if scratch.len() == MAX_RECORD_PLAINTEXT {
                    encrypt_one(traffic, scratch, out)?;
                    scratch.clear();
                }
            }
        }
    }
    if !scratch.is_empty() {
        encrypt_one(traffic, scratch, out)?;
        scratch.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
