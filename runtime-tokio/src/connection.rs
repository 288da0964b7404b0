//! One client connection (none for a probe), its upstream connection and
//! their session, driven by one task.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use kafka_proxy_core::config::SocketOptions;
use kafka_proxy_core::sasl::Verdict;
use kafka_proxy_core::session::{ConnectTarget, Endpoint, Event, ReadOutcome, Session, Side, WriteOutcome};
use kafka_proxy_runtime::splice::{SpliceIn, Splicer};
use kafka_proxy_runtime::{Watch, net};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tracing::{Instrument, debug};

use crate::shared::{Mode, Shared, maybe};

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// A session and its sockets.
pub(crate) struct Connection {
    session: Session,
    client: Option<TcpStream>,
    broker: Option<TcpStream>,
    connecting: Option<Connecting>,
    /// The external authenticator's answer to the session's pending login.
    verdict: Option<tokio::sync::oneshot::Receiver<(u64, Verdict)>>,
    splicer: Splicer,
    watch: Watch,
}

/// Opens the upstream connection.
async fn connect(target: ConnectTarget, options: SocketOptions) -> io::Result<TcpStream> {
    let stream = match target.endpoint() {
        Endpoint::Addr(addr) => TcpStream::connect(addr).await?,
        Endpoint::Name { host, port } => TcpStream::connect((host, port)).await?,
    };
    if let Err(error) = net::configure(&stream, &options) {
        debug!(%error, "cannot set socket options on the broker socket");
    }
    Ok(stream)
}

/// Starts the task that drives `session` (the shape of
/// [`SpawnConnection`](crate::shared::SpawnConnection)).
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    session: Session,
    client: Option<TcpStream>,
    span: tracing::Span,
    watch: Watch,
) {
    // Boxed: the task's future then holds a pointer, not the connection
    // twice (once captured by the spawned block, once moved into `run`).
    let connection = Box::new(Connection {
        session,
        client,
        broker: None,
        connecting: None,
        verdict: None,
        splicer: Splicer::new(),
        watch,
    });
    let shared = shared.clone();
    shared.connection_started();
    tokio::spawn(
        async move {
            connection.run(&shared).await;
            shared.connection_ended();
        }
        .instrument(span),
    );
}

impl Connection {
    fn socket(&self, side: Side) -> Option<&TcpStream> {
        match side {
            Side::Downstream => self.client.as_ref(),
            Side::Upstream => self.broker.as_ref(),
        }
    }

    async fn run(mut self: Box<Self>, shared: &Arc<Shared>) {
        let mut mode = shared.subscribe();
        self.follow(*mode.borrow_and_update());
        loop {
            // The rule: drain events, flush, re-arm.
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Connect(target) => {
                        debug!(%target, "connecting upstream");
                        let options = shared.proxy().config().socket.clone();
                        self.connecting = Some(Box::pin(connect(target, options)));
                    }
                    Event::Proxy(event) => {
                        let mut proxy = shared.proxy();
                        proxy.handle_session_event(Instant::now(), &mut self.session, event);
                        shared.apply(&mut proxy);
                    }
                    Event::Authenticate(request) => {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        let id = request.id;
                        let done = Box::new(move |verdict| {
                            let _ = tx.send((id, verdict));
                        });
                        kafka_proxy_runtime::auth::authenticate(shared.authenticator(), request, done);
                        self.verdict = Some(rx);
                    }
                    Event::ShutdownWrite(side) => {
                        if let Some(socket) = self.socket(side)
                            && let Err(error) = net::shutdown_write(socket)
                        {
                            self.session.handle_io_error(Instant::now(), side, &error);
                        }
                    }
                    Event::Closed(reason) => {
                        // The session logged failures itself (rate-limited).
                        debug!(%reason, "connection closed");
                        self.watch.closed(&mut self.session, &reason);
                        return;
                    }
                }
            }
            self.flush(Side::Upstream);
            self.flush(Side::Downstream);
            if self.session.has_events() {
                // Flushing can finish a closing session; go round again.
                continue;
            }
            self.watch.after_step(&mut self.session);
            let deadline = match (self.session.poll_timeout(), self.watch.deadline(&self.session)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(tokio::time::Instant::from_std);
            let read_client = self.client.is_some() && self.wants_read(Side::Downstream);
            let read_broker = self.broker.is_some() && self.wants_read(Side::Upstream);
            let write_client = self.client.is_some() && self.session.wants_write(Side::Downstream);
            let write_broker = self.broker.is_some() && self.session.wants_write(Side::Upstream);
            let broker = self.broker.as_ref();
            let client = self.client.as_ref();
            tokio::select! {
                r = maybe(client.map(TcpStream::readable)), if read_client => match r {
                    Ok(()) => self.read(Side::Downstream),
                    Err(e) => self.session.handle_io_error(Instant::now(), Side::Downstream, &e),
                },
                r = maybe(broker.map(TcpStream::readable)), if read_broker => match r {
                    Ok(()) => self.read(Side::Upstream),
                    Err(e) => self.session.handle_io_error(Instant::now(), Side::Upstream, &e),
                },
                r = maybe(client.map(TcpStream::writable)), if write_client => if let Err(e) = r {
                    self.session.handle_io_error(Instant::now(), Side::Downstream, &e);
                },
                r = maybe(broker.map(TcpStream::writable)), if write_broker => if let Err(e) = r {
                    self.session.handle_io_error(Instant::now(), Side::Upstream, &e);
                },
                r = maybe(self.connecting.as_mut()), if self.connecting.is_some() => {
                    self.connecting = None;
                    match r {
                        Ok(stream) => {
                            self.broker = Some(stream);
                            self.session.handle_connected(Instant::now());
                        }
                        Err(e) => self.session.handle_connect_failed(Instant::now(), &e),
                    }
                },
                r = maybe(self.verdict.as_mut()), if self.verdict.is_some() => {
                    self.verdict = None;
                    // A dropped completion leaves the session to its own deadline.
                    if let Ok((id, verdict)) = r {
                        self.session.handle_verdict(Instant::now(), id, verdict);
                    }
                },
                () = maybe(deadline.map(tokio::time::sleep_until)) => {
                    self.session.handle_timeout(Instant::now());
                },
                r = mode.changed() => if r.is_ok() {
                    let mode = *mode.borrow_and_update();
                    if mode == Mode::Stopping && shared.drain_expired() {
                        shared.cuts().cut(&self.session);
                    }
                    self.follow(mode);
                },
            }
        }
    }

    /// Passes a drain or stop on to the session.
    fn follow(&mut self, mode: Mode) {
        match mode {
            Mode::Serving => {}
            Mode::Draining => self.session.drain(Instant::now()),
            Mode::Stopping => self.session.shutdown(Instant::now()),
        }
    }

    /// True when `side` should be read: the session wants bytes, or can
    /// take them spliced.
    fn wants_read(&self, side: Side) -> bool {
        self.session.wants_read(side) || self.session.splice_window(side).is_some()
    }

    /// One read from `side`, processed by the session (or spliced past it).
    fn read(&mut self, side: Side) {
        let now = Instant::now();
        let Connection { session, client, broker, splicer, .. } = self;
        let (from, to) = match side {
            Side::Downstream => (client.as_ref(), broker.as_ref()),
            Side::Upstream => (broker.as_ref(), client.as_ref()),
        };
        let Some(from) = from else { return };
        if session.splice_window(side).is_some() {
            match from.try_io(Interest::READABLE, || splicer.splice_in(session, now, side, from, to)) {
                Ok(SpliceIn::Moved(_) | SpliceIn::Eof) => return,
                Ok(SpliceIn::NotNow | SpliceIn::Unavailable) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return session.handle_io_error(now, side, &e),
            }
        }
        match session.read_from(now, side, |buf| read_drained(from, buf)) {
            Ok(ReadOutcome::Read(_) | ReadOutcome::Eof | ReadOutcome::Paused) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => session.handle_io_error(now, side, &e),
        }
    }

    /// Writes what waits for `side` (spliced bytes first) until done or the
    /// socket is full.
    fn flush(&mut self, side: Side) {
        let now = Instant::now();
        let Connection { session, client, broker, splicer, .. } = self;
        let stream = match side {
            Side::Downstream => client.as_ref(),
            Side::Upstream => broker.as_ref(),
        };
        let Some(stream) = stream else { return };
        if session.pending_splice(side) > 0 {
            match stream.try_io(Interest::WRITABLE, || splicer.splice_out(session, now, side, stream)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return session.handle_io_error(now, side, &e),
            }
        }
        loop {
            let mut full = false;
            let written = session.write_to(now, side, |iov| {
                let (n, short) = write_until_full(stream, iov)?;
                full = short;
                Ok::<_, io::Error>(n)
            });
            match written {
                Ok(WriteOutcome::Written(n)) if n > 0 && !full => continue,
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return session.handle_io_error(now, side, &e),
            }
        }
    }
}

/// Reads into `buf`. A short read drained the socket, so tokio is told the
/// socket is no longer readable right away (through `try_io`, whose readiness
/// snapshot precedes the read, so no newer event is lost) instead of finding
/// out with one more read that returns `WouldBlock`. tokio keeps a peer's
/// close in the readiness it clears, so an end of stream that came with the
/// last bytes is still seen.
fn read_drained(stream: &TcpStream, buf: &mut bytes::BytesMut) -> io::Result<usize> {
    let mut got = 0;
    let result = stream.try_io(Interest::READABLE, || {
        let spare = buf.capacity() - buf.len();
        got = kafka_proxy_runtime::read_into(stream, buf)?;
        if got > 0 && got < spare { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(got) }
    });
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        other => other,
    }
}

/// Writes `iov`; a short write means the send buffer is full, and tokio is
/// told so at once (see [`read_drained`]). Returns (written, short).
fn write_until_full(stream: &TcpStream, iov: &[std::io::IoSlice<'_>]) -> io::Result<(usize, bool)> {
    let offered: usize = iov.iter().map(|s| s.len()).sum();
    let mut wrote = 0;
    let result = stream.try_io(Interest::WRITABLE, || {
        wrote = stream.try_write_vectored(iov)?;
        if wrote > 0 && wrote < offered { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(wrote) }
    });
    match result {
        Ok(n) => Ok((n, false)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && wrote > 0 => Ok((wrote, true)),
        Err(e) => Err(e),
    }
}
