//! Drives `kafka-proxy-core` with a multi-threaded tokio runtime.
//!
//! One task per listener accepts connections; one task per client connection
//! owns its [`Session`] and both sockets. After every input the task drains
//! the session's events, writes what it queued (one vectored write per
//! side) and re-arms its timer: the core's rule. There is no protocol logic
//! here.

#![deny(unsafe_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use kafka_proxy_core::proxy::{Proxy, ProxyAction};
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::session::{ConnectTarget, Event, ReadOutcome, Session, Side, WriteOutcome};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, error, info, info_span, warn};

/// How long connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the runtime could not start.
#[derive(Debug)]
pub enum StartError {
    /// The tokio runtime could not be built.
    Runtime(io::Error),
    /// A listener the configuration needs could not be bound.
    Bind {
        /// The listener.
        id: ListenerId,
        /// Its address.
        addr: SocketAddr,
        /// The operating system's error.
        error: io::Error,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Runtime(e) => write!(f, "cannot start the tokio runtime: {e}"),
            StartError::Bind { id, addr, error } => write!(f, "cannot listen on {addr} for {id}: {error}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Runtime options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads (`None`: one per core).
    pub worker_threads: Option<usize>,
}

/// Runs the proxy until `shutdown` completes, then closes every connection
/// (bounded by a grace period) and returns. Configurations received on
/// `reloads` are applied with [`Proxy::reload`].
pub fn run(
    proxy: Proxy,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reloads: tokio::sync::mpsc::UnboundedReceiver<kafka_proxy_core::config::ProxyConfig>,
) -> Result<(), StartError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("kafka-proxy");
    if let Some(n) = options.worker_threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.build().map_err(StartError::Runtime)?;
    runtime.block_on(serve(proxy, shutdown, reloads))
}

/// State shared by every task.
struct Shared {
    proxy: Mutex<Proxy>,
    listeners: Mutex<HashMap<ListenerId, JoinHandle<()>>>,
    shutdown: watch::Receiver<bool>,
    connections: AtomicUsize,
    /// Wakes the proxy timer task when its deadline may have changed.
    timer: tokio::sync::Notify,
}

impl Shared {
    fn proxy(&self) -> std::sync::MutexGuard<'_, Proxy> {
        self.proxy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drains the proxy's listener changes and carries them out.
    async fn apply_actions(self: &Arc<Self>) {
        loop {
            let action = self.proxy().poll_action();
            let Some(action) = action else { return };
            match action {
                ProxyAction::Listen { id, addr } => match TcpListener::bind(addr).await {
                    Ok(listener) => {
                        info!(listener = %id, %addr, "listening");
                        self.spawn_accept(id, listener);
                    }
                    Err(error) => {
                        error!(listener = %id, %addr, %error, "cannot listen");
                        self.proxy().handle_listen_failed(id, &error);
                    }
                },
                ProxyAction::Unlisten { id } => {
                    let task = self.listeners.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                    if let Some(task) = task {
                        task.abort();
                        info!(listener = %id, "stopped listening");
                    }
                }
                ProxyAction::Probe => self.spawn_probe(),
            }
        }
    }

    /// Starts the proxy's own Metadata probe of the cluster.
    fn spawn_probe(self: &Arc<Self>) {
        let session = self.proxy().probe(Instant::now(), SystemTime::now());
        let Some(session) = session else { return };
        let span = info_span!("probe", id = session.id());
        let shared = self.clone();
        tokio::spawn(
            async move {
                Connection { session, pipes: [None, None], client: None, broker: None, connecting: None }
                    .run(&shared)
                    .await;
                shared.proxy().handle_probe_closed(Instant::now());
                shared.timer.notify_one();
                shared.apply_actions().await;
            }
            .instrument(span),
        );
    }

    /// Fires the proxy's own deadlines (probe retries).
    async fn timer_loop(self: Arc<Self>) {
        loop {
            let due = self.proxy().poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                () = maybe(due.map(tokio::time::sleep_until)) => {
                    self.proxy().handle_timeout(Instant::now());
                    self.apply_actions().await;
                }
                () = self.timer.notified() => {}
            }
        }
    }

    fn spawn_accept(self: &Arc<Self>, id: ListenerId, listener: TcpListener) {
        let shared = self.clone();
        let task = tokio::spawn(async move { shared.accept_loop(id, listener).await });
        let old = self.listeners.lock().unwrap_or_else(PoisonError::into_inner).insert(id, task);
        if let Some(old) = old {
            old.abort();
        }
    }

    async fn accept_loop(self: Arc<Self>, id: ListenerId, listener: TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(listener = %id, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let session = self.proxy().accept(Instant::now(), SystemTime::now(), id, peer);
            match session {
                Ok(session) => {
                    let span = info_span!("conn", id = session.id(), %peer, listener = %id);
                    let shared = self.clone();
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(
                        async move {
                            Connection::new(session, stream).run(&shared).await;
                            shared.connections.fetch_sub(1, Ordering::Relaxed);
                        }
                        .instrument(span),
                    );
                }
                Err(error) => warn!(listener = %id, %peer, %error, "connection refused"),
            }
            self.apply_actions().await;
        }
    }
}

async fn serve(
    proxy: Proxy,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut reloads: tokio::sync::mpsc::UnboundedReceiver<kafka_proxy_core::config::ProxyConfig>,
) -> Result<(), StartError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        proxy: Mutex::new(proxy),
        listeners: Mutex::new(HashMap::new()),
        shutdown: stop_rx,
        connections: AtomicUsize::new(0),
        timer: tokio::sync::Notify::new(),
    });
    // The initial listeners must all bind, or the proxy cannot serve.
    loop {
        let action = shared.proxy().poll_action();
        match action {
            Some(ProxyAction::Listen { id, addr }) => {
                let listener =
                    TcpListener::bind(addr).await.map_err(|error| StartError::Bind { id, addr, error })?;
                info!(listener = %id, %addr, "listening");
                shared.spawn_accept(id, listener);
            }
            Some(ProxyAction::Unlisten { .. }) => {}
            Some(ProxyAction::Probe) => shared.spawn_probe(),
            None => break,
        }
    }
    let timer = tokio::spawn(shared.clone().timer_loop());
    let reloader = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(config) = reloads.recv().await {
                shared.proxy().reload(config);
            }
        })
    };
    shutdown.await;
    info!("shutting down");
    timer.abort();
    reloader.abort();
    for (_, task) in shared.listeners.lock().unwrap_or_else(PoisonError::into_inner).drain() {
        task.abort();
    }
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while shared.connections.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// One client connection (none for a probe), its upstream connection and
/// their session.
struct Connection {
    session: Session,
    /// Pipes for splicing frames straight through, by source side [client,
    /// broker] (made on first use).
    pipes: [Option<kafka_proxy_sys::Pipe>; 2],
    client: Option<TcpStream>,
    broker: Option<TcpStream>,
    connecting: Option<Connecting>,
}

async fn connect(target: ConnectTarget) -> io::Result<TcpStream> {
    let stream = match target.addr_override {
        Some(ip) => TcpStream::connect(SocketAddr::new(ip, target.port)).await?,
        None => TcpStream::connect((target.host.as_str(), target.port)).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Connection {
    fn new(session: Session, client: TcpStream) -> Connection {
        if let Err(error) = client.set_nodelay(true) {
            debug!(%error, "cannot set TCP_NODELAY on the client socket");
        }
        Connection { session, pipes: [None, None], client: Some(client), broker: None, connecting: None }
    }

    /// The session and the socket of `side`, borrowed apart.
    fn split(&mut self, side: Side) -> (&mut Session, Option<&TcpStream>) {
        let stream = match side {
            Side::Downstream => self.client.as_ref(),
            Side::Upstream => self.broker.as_ref(),
        };
        (&mut self.session, stream)
    }

    async fn run(mut self, shared: &Arc<Shared>) {
        let mut shutdown = shared.shutdown.clone();
        loop {
            // The rule: drain events, flush, re-arm.
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Connect(target) => {
                        debug!(%target, "connecting upstream");
                        self.connecting = Some(Box::pin(connect(target)));
                    }
                    Event::Observed(observed) => {
                        shared.proxy().handle_observed(Instant::now(), observed);
                        shared.apply_actions().await;
                    }
                    Event::Route(name) => {
                        let route = shared.proxy().route_sni(name.as_deref());
                        match route {
                            Some(route) => self.session.handle_route(Instant::now(), route),
                            None => {
                                self.session.handle_no_route(Instant::now(), name.as_deref().unwrap_or(""))
                            }
                        }
                    }
                    Event::Closed(reason) => {
                        // The session logged failures itself (rate-limited).
                        debug!(%reason, "connection closed");
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
            let deadline = self.session.poll_timeout().map(tokio::time::Instant::from_std);
            let read_client = self.client.is_some() && self.wants_read(Side::Downstream);
            let read_broker = self.broker.is_some() && self.wants_read(Side::Upstream);
            let write_client = self.client.is_some() && self.wants_write(Side::Downstream);
            let write_broker = self.broker.is_some() && self.wants_write(Side::Upstream);
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
                () = maybe(deadline.map(tokio::time::sleep_until)) => {
                    self.session.handle_timeout(Instant::now());
                },
                r = shutdown.changed() => if r.is_ok() {
                    self.session.shutdown(Instant::now());
                },
            }
        }
    }

    /// Bytes spliced from `side` and not yet written to the other side.
    fn piped(&self, side: Side) -> usize {
        self.pipes[pipe_index(side)].as_ref().map_or(0, |p| p.filled)
    }

    /// True when `side` should be read: the session wants bytes (or can take
    /// them spliced) and nothing spliced from it still waits.
    fn wants_read(&self, side: Side) -> bool {
        self.piped(side) == 0 && (self.session.wants_read(side) || self.session.splice_window(side).is_some())
    }

    /// True when `side` has bytes waiting: the session's, or spliced ones.
    fn wants_write(&self, side: Side) -> bool {
        self.session.wants_write(side) || self.piped(side.peer()) > 0
    }

    /// Splices up to `window` bytes of a cut-through frame from `side` into
    /// its pipe, then on to the other side. False: copy instead.
    fn splice_in(&mut self, side: Side, window: usize) -> bool {
        use std::os::fd::AsRawFd;
        let i = pipe_index(side);
        if self.pipes[i].is_none() {
            match kafka_proxy_sys::Pipe::new() {
                Ok(pipe) => self.pipes[i] = Some(pipe),
                Err(error) => {
                    debug!(%error, "no pipe for splicing; copying instead");
                    return false;
                }
            }
        }
        let stream = match side {
            Side::Downstream => self.client.as_ref(),
            Side::Upstream => self.broker.as_ref(),
        };
        let (Some(stream), Some(pipe)) = (stream, self.pipes[i].as_mut()) else { return false };
        let fd = stream.as_raw_fd();
        match stream.try_io(tokio::io::Interest::READABLE, || pipe.fill_from(fd, window)) {
            Ok(0) => {
                let _ = self.session.read_from(Instant::now(), side, |_| Ok::<_, io::Error>(0));
            }
            Ok(n) => {
                self.session.handle_spliced(Instant::now(), side, n);
                self.drain_pipe(side.peer());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => self.session.handle_io_error(Instant::now(), side, &e),
        }
        true
    }

    /// Writes what was spliced towards `side`; true when the pipe is empty.
    fn drain_pipe(&mut self, side: Side) -> bool {
        use std::os::fd::AsRawFd;
        let stream = match side {
            Side::Downstream => self.client.as_ref(),
            Side::Upstream => self.broker.as_ref(),
        };
        let Some(pipe) = self.pipes[pipe_index(side.peer())].as_mut().filter(|p| p.filled > 0) else {
            return true;
        };
        let Some(stream) = stream else { return true };
        let fd = stream.as_raw_fd();
        match stream.try_io(tokio::io::Interest::WRITABLE, || match pipe.drain_into(fd) {
            // Short: the socket is full; tokio learns it at once.
            Ok(_) if pipe.filled > 0 => Err(io::ErrorKind::WouldBlock.into()),
            other => other,
        }) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                self.session.handle_io_error(Instant::now(), side, &e);
                true
            }
        }
    }

    /// One read from `side`, processed by the session (or spliced past it).
    fn read(&mut self, side: Side) {
        if let Some(window) = self.session.splice_window(side)
            && self.splice_in(side, window)
        {
            return;
        }
        let (session, Some(stream)) = self.split(side) else { return };
        match session.read_from(Instant::now(), side, |buf| read_drained(stream, buf)) {
            Ok(ReadOutcome::Read(_) | ReadOutcome::Eof | ReadOutcome::Paused) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => session.handle_io_error(Instant::now(), side, &e),
        }
    }

    /// Writes what is queued for `side` until done or the socket is full;
    /// spliced bytes first.
    fn flush(&mut self, side: Side) {
        if !self.drain_pipe(side) {
            return;
        }
        let (session, Some(stream)) = self.split(side) else { return };
        loop {
            let mut full = false;
            let written = session.write_to(Instant::now(), side, |iov| {
                let (n, short) = write_until_full(stream, iov)?;
                full = short;
                Ok::<_, io::Error>(n)
            });
            match written {
                Ok(WriteOutcome::Written(n)) if n > 0 && !full => continue,
                Ok(_) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return session.handle_io_error(Instant::now(), side, &e),
            }
        }
    }
}

/// Reads into `buf`. A short read drained the socket, so tokio is told the
/// socket is no longer readable right away (through `try_io`, whose readiness
/// snapshot precedes the read, so no newer event is lost) instead of finding
/// out with one more read that returns `WouldBlock`.
fn read_drained(stream: &TcpStream, buf: &mut bytes::BytesMut) -> io::Result<usize> {
    let mut got = 0;
    let result = stream.try_io(tokio::io::Interest::READABLE, || {
        let spare = buf.capacity() - buf.len();
        got = stream.try_read_buf(buf)?;
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
    let result = stream.try_io(tokio::io::Interest::WRITABLE, || {
        wrote = stream.try_write_vectored(iov)?;
        if wrote > 0 && wrote < offered { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(wrote) }
    });
    match result {
        Ok(n) => Ok((n, false)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && wrote > 0 => Ok((wrote, true)),
        Err(e) => Err(e),
    }
}

/// The pipe of frames spliced from `side`.
fn pipe_index(side: Side) -> usize {
    match side {
        Side::Downstream => 0,
        Side::Upstream => 1,
    }
}

/// Awaits `future` if there is one, otherwise never completes.
async fn maybe<F: Future>(future: Option<F>) -> F::Output {
    match future {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}
