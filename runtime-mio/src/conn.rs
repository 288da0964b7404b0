//! One connection on the loop: its sockets, remembered readiness and
//! session, and the one step that moves its bytes.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use kafka_proxy_core::proxy::Proxy;
use kafka_proxy_core::sasl::AuthRequest;
use kafka_proxy_core::session::{ConnectTarget, Event, ReadOutcome, Session, Side, WriteOutcome};
use kafka_proxy_runtime::splice::{SpliceIn, Splicer};
use kafka_proxy_runtime::{Watch, net};
use mio::net::TcpStream;
use tracing::debug;

/// Reads or writes on one connection before the loop serves the others.
pub(crate) const BUDGET: usize = 32;

/// Index of `side` in the per-side arrays: [client, broker].
pub(crate) fn side_index(side: Side) -> usize {
    match side {
        Side::Downstream => 0,
        Side::Upstream => 1,
    }
}

/// One client connection (none for a probe), its upstream connection and
/// their session.
pub(crate) struct Conn {
    pub(crate) session: Session,
    pub(crate) client: Option<TcpStream>,
    pub(crate) broker: Option<TcpStream>,
    /// The broker socket is connecting (waiting for its writable edge).
    pub(crate) connecting: bool,
    /// Addresses still to try for the upstream connection.
    pub(crate) candidates: Vec<SocketAddr>,
    /// Remembered edge readiness, per side.
    pub(crate) readable: [bool; 2],
    pub(crate) writable: [bool; 2],
    /// The peer closed (or the socket failed): what it sent before is still
    /// to be read, and after it the end of stream, which brings no new edge.
    pub(crate) read_closed: [bool; 2],
    /// The socket is registered for writable edges too (only while a write
    /// is blocked: otherwise every ACK from the peer would wake the loop).
    pub(crate) write_interest: [bool; 2],
    pub(crate) splicer: Splicer,
    /// The deadline registered in the timer set.
    pub(crate) timer: Option<Instant>,
    pub(crate) span: tracing::Span,
    /// Metrics fold and log fields.
    pub(crate) watch: Watch,
}

/// What one step of a connection did.
pub(crate) struct Step {
    /// Bytes or events moved: go round again.
    pub(crate) progress: bool,
    /// The session is over: reap the connection.
    pub(crate) closed: bool,
    /// Open the upstream connection.
    pub(crate) connect: Option<ConnectTarget>,
    /// A side's socket is full: ask for writable edges.
    pub(crate) blocked: [bool; 2],
    /// The proxy took a session event: carry out its actions.
    pub(crate) proxy_changed: bool,
    /// Ask the external authenticator.
    pub(crate) authenticate: Option<AuthRequest>,
}

impl Conn {
    pub(crate) fn new(
        session: Session,
        client: Option<TcpStream>,
        span: tracing::Span,
        watch: Watch,
    ) -> Conn {
        Conn {
            session,
            client,
            broker: None,
            connecting: false,
            candidates: Vec::new(),
            readable: [false; 2],
            writable: [false; 2],
            read_closed: [false; 2],
            write_interest: [false; 2],
            splicer: Splicer::new(),
            timer: None,
            span,
            watch,
        }
    }

    /// When the connection must be served again even without I/O: the
    /// session's timer or the next metrics fold.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match (self.session.poll_timeout(), self.watch.deadline(&self.session)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `side`'s socket, when connected.
    fn socket(&self, side: Side) -> Option<&TcpStream> {
        match side {
            Side::Downstream => self.client.as_ref(),
            Side::Upstream => self.broker.as_ref().filter(|_| !self.connecting),
        }
    }
}

/// The core's rule, once: drain the session's events, flush both sides,
/// read both sides.
pub(crate) fn step(conn: &mut Conn, proxy: &mut Proxy) -> Step {
    let now = Instant::now();
    let mut step = Step {
        progress: false,
        closed: false,
        connect: None,
        blocked: [false; 2],
        proxy_changed: false,
        authenticate: None,
    };
    while let Some(event) = conn.session.poll_event() {
        step.progress = true;
        match event {
            Event::Connect(target) => step.connect = Some(target),
            Event::Authenticate(request) => step.authenticate = Some(request),
            Event::Proxy(event) => {
                proxy.handle_session_event(now, &mut conn.session, event);
                step.proxy_changed = true;
            }
            Event::ShutdownWrite(side) => {
                if let Some(socket) = conn.socket(side)
                    && let Err(error) = net::shutdown_write(socket)
                {
                    conn.session.handle_io_error(now, side, &error);
                }
            }
            Event::Closed(reason) => {
                // The session logged failures itself (rate-limited).
                debug!(%reason, "connection closed");
                conn.watch.closed(&mut conn.session, &reason);
                step.closed = true;
            }
        }
    }
    if step.closed {
        return step;
    }
    conn.watch.after_step(&mut conn.session);
    if step.connect.is_some() {
        return step;
    }
    for side in [Side::Upstream, Side::Downstream] {
        let (moved, full) = flush(conn, side);
        step.progress |= moved;
        step.blocked[side_index(side)] = full && !conn.write_interest[side_index(side)];
    }
    for side in [Side::Downstream, Side::Upstream] {
        if conn.readable[side_index(side)] {
            step.progress |= read(conn, side);
        }
    }
    step.progress |= conn.session.has_events();
    step
}

/// Writes what waits for `side` (spliced bytes first, then the session's
/// queue) until done or the socket is full: (bytes moved, the socket is full).
fn flush(conn: &mut Conn, side: Side) -> (bool, bool) {
    let i = side_index(side);
    if !conn.writable[i] || !conn.session.wants_write(side) {
        return (false, false);
    }
    let now = Instant::now();
    let Some(stream) = socket(&conn.client, &conn.broker, conn.connecting, side) else {
        return (false, false);
    };
    let mut progress = false;
    if conn.session.pending_splice(side) > 0 {
        match conn.splicer.splice_out(&mut conn.session, now, side, stream) {
            Ok(n) => progress |= n > 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.writable[i] = false;
                return (true, true);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return (true, false),
            Err(e) => {
                conn.session.handle_io_error(now, side, &e);
                return (true, false);
            }
        }
    }
    let mut stream = stream;
    for _ in 0..BUDGET {
        let mut short = false;
        let written = conn.session.write_to(now, side, |iov| {
            let offered: usize = iov.iter().map(|s| s.len()).sum();
            let n = stream.write_vectored(iov)?;
            short = n < offered;
            Ok::<_, io::Error>(n)
        });
        match written {
            // A short write means the send buffer is full: the next write
            // would only say WouldBlock.
            Ok(WriteOutcome::Written(n)) if n > 0 && short => {
                conn.writable[i] = false;
                return (true, true);
            }
            Ok(WriteOutcome::Written(n)) if n > 0 => progress = true,
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.writable[i] = false;
                return (progress, true);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                conn.session.handle_io_error(now, side, &e);
                return (true, false);
            }
        }
    }
    (progress, false)
}

/// `side`'s socket, when connected (from the fields, so the rest of the
/// connection stays free to borrow).
fn socket<'a>(
    client: &'a Option<TcpStream>,
    broker: &'a Option<TcpStream>,
    connecting: bool,
    side: Side,
) -> Option<&'a TcpStream> {
    match side {
        Side::Downstream => client.as_ref(),
        Side::Upstream => broker.as_ref().filter(|_| !connecting),
    }
}

/// Reads once from `side` into the session, or splices past it: whether
/// anything moved.
fn read(conn: &mut Conn, side: Side) -> bool {
    let i = side_index(side);
    let now = Instant::now();
    let Some(stream) = socket(&conn.client, &conn.broker, conn.connecting, side) else { return false };
    let other = socket(&conn.client, &conn.broker, conn.connecting, side.peer());
    match conn.splicer.splice_in(&mut conn.session, now, side, stream, other) {
        Ok(SpliceIn::Moved(_)) => return true,
        Ok(SpliceIn::Eof) => {
            conn.readable[i] = false;
            return true;
        }
        Ok(SpliceIn::NotNow | SpliceIn::Unavailable) => {}
        Err(e) => return read_failed(conn, side, &e),
    }
    if !conn.session.wants_read(side) {
        return false;
    }
    let read_closed = conn.read_closed[i];
    let mut short = false;
    let outcome = conn.session.read_from(now, side, |buf| {
        let spare = buf.capacity() - buf.len();
        let n = kafka_proxy_runtime::read_into(stream, buf)?;
        short = n < spare;
        Ok::<_, io::Error>(n)
    });
    match outcome {
        // A short read drained the socket: the next read would only say
        // WouldBlock, and new data brings a new edge. Not so when the peer
        // has closed: its end of stream waits behind the bytes just read
        // and brings no new edge, so read on until it shows.
        Ok(ReadOutcome::Read(_)) if short && !read_closed => {
            conn.readable[i] = false;
            true
        }
        Ok(ReadOutcome::Read(_)) => true,
        Ok(ReadOutcome::Eof) => {
            conn.readable[i] = false;
            true
        }
        Ok(ReadOutcome::Paused) => false,
        Err(e) => read_failed(conn, side, &e),
    }
}

/// A read or splice from `side` failed: whether the connection moved (an
/// error it must see) or must wait for the next readable edge.
fn read_failed(conn: &mut Conn, side: Side, error: &io::Error) -> bool {
    match error.kind() {
        io::ErrorKind::WouldBlock => {
            conn.readable[side_index(side)] = false;
            false
        }
        io::ErrorKind::Interrupted => true,
        _ => {
            conn.session.handle_io_error(Instant::now(), side, error);
            true
        }
    }
}
