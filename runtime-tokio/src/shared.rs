//! What every task shares: the proxy, the listeners, the serving mode.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use kafka_proxy_core::proxy::Proxy;
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::session::Session;
use kafka_proxy_runtime::actions::{self, Host};
use kafka_proxy_runtime::{DrainCuts, RunError, Telemetry, Watch, connection_refused, net, observe_proxy};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tracing::{debug, info_span, warn};

/// What connections do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Serving.
    Serving,
    /// Finishing what was forwarded, then closing at a request boundary.
    Draining,
    /// Closing now (flushing only what is queued).
    Stopping,
}

/// An accept task and the signal that retires it.
struct AcceptTask {
    retire: Arc<Notify>,
}

/// Starts the task that drives one session (with its client socket, if any).
pub(crate) type SpawnConnection = fn(&Arc<Shared>, Session, Option<TcpStream>, tracing::Span, Watch);

/// State shared by every task.
pub(crate) struct Shared {
    /// How sessions get their task (the connection module, handed in so the
    /// two modules do not depend on each other).
    spawn: SpawnConnection,
    proxy: Mutex<Proxy>,
    listeners: Mutex<HashMap<ListenerId, AcceptTask>>,
    mode: watch::Sender<Mode>,
    connections: AtomicUsize,
    /// Wakes the proxy timer task when its deadline may have changed.
    timer: Notify,
    /// Metrics and readiness, when exported.
    telemetry: Option<Arc<Telemetry>>,
    /// The drain deadline passed: connections closed now were cut.
    drain_expired: AtomicBool,
    /// What the drain deadline cut.
    cuts: DrainCuts,
}

/// Carries out proxy actions for the tokio runtime.
struct TokioHost<'a> {
    shared: &'a Arc<Shared>,
}

impl Host for TokioHost<'_> {
    fn listen(&mut self, id: ListenerId, addr: SocketAddr, listener: std::net::TcpListener) {
        match TcpListener::from_std(listener) {
            Ok(listener) => self.shared.spawn_accept(id, listener),
            Err(error) => warn!(listener = %id, %addr, %error, "cannot watch the listener"),
        }
    }

    fn unlisten(&mut self, id: ListenerId) {
        let task = self.shared.listeners.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        if let Some(task) = task {
            task.retire.notify_one();
        }
    }

    fn spawn(&mut self, session: Session) {
        let span = info_span!("probe", id = session.id());
        let watch = Watch::new(None, None, span.clone());
        (self.shared.spawn)(self.shared, session, None, span, watch);
    }
}

impl Shared {
    /// Shares `proxy` and binds its first listeners.
    pub(crate) fn start(
        proxy: Proxy,
        spawn: SpawnConnection,
        telemetry: Option<Arc<Telemetry>>,
    ) -> Result<Arc<Shared>, RunError> {
        let (mode, _) = watch::channel(Mode::Serving);
        let shared = Arc::new(Shared {
            spawn,
            proxy: Mutex::new(proxy),
            listeners: Mutex::new(HashMap::new()),
            mode,
            connections: AtomicUsize::new(0),
            timer: Notify::new(),
            telemetry,
            drain_expired: AtomicBool::new(false),
            cuts: DrainCuts::default(),
        });
        {
            let mut proxy = shared.proxy();
            let reuse_port = proxy.config().socket.reuse_port;
            actions::apply_initial(&mut proxy, &mut TokioHost { shared: &shared }, reuse_port)?;
            if let Some(telemetry) = &shared.telemetry {
                telemetry.status().set_listening();
            }
            observe_proxy(shared.telemetry.as_deref(), &proxy);
        }
        Ok(shared)
    }

    /// Metrics and readiness, when exported.
    pub(crate) fn telemetry(&self) -> Option<&Telemetry> {
        self.telemetry.as_deref()
    }

    /// What the drain deadline cut.
    pub(crate) fn cuts(&self) -> &DrainCuts {
        &self.cuts
    }

    /// True once the drain deadline passed.
    pub(crate) fn drain_expired(&self) -> bool {
        self.drain_expired.load(Ordering::Relaxed)
    }

    /// The drain deadline passed: close what is left, reporting it as cut.
    pub(crate) fn expire_drain(self: &Arc<Self>) {
        self.drain_expired.store(true, Ordering::Relaxed);
        self.stop();
    }

    pub(crate) fn proxy(&self) -> MutexGuard<'_, Proxy> {
        self.proxy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Mode> {
        self.mode.subscribe()
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Carries out what the proxy asks (with its lock held: `proxy`).
    pub(crate) fn apply(self: &Arc<Self>, proxy: &mut Proxy) {
        let reuse_port = proxy.config().socket.reuse_port;
        actions::apply(proxy, &mut TokioHost { shared: self }, reuse_port);
        observe_proxy(self.telemetry.as_deref(), proxy);
        self.timer.notify_one();
    }

    /// Starts draining: listeners close (their backlogs are accepted and
    /// drained), every connection drains.
    pub(crate) fn drain(self: &Arc<Self>) {
        {
            let mut proxy = self.proxy();
            proxy.drain();
            self.apply(&mut proxy);
        }
        self.mode.send_replace(Mode::Draining);
    }

    /// Closes every connection now.
    pub(crate) fn stop(self: &Arc<Self>) {
        {
            let mut proxy = self.proxy();
            proxy.drain();
            self.apply(&mut proxy);
        }
        self.mode.send_replace(Mode::Stopping);
    }

    /// Fires the proxy's own deadlines (probe retries).
    pub(crate) async fn timer_loop(self: Arc<Self>) {
        loop {
            let due = self.proxy().poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                () = maybe(due.map(tokio::time::sleep_until)) => {
                    let mut proxy = self.proxy();
                    proxy.handle_timeout(Instant::now());
                    self.apply(&mut proxy);
                }
                () = self.timer.notified() => {}
            }
        }
    }

    fn spawn_accept(self: &Arc<Self>, id: ListenerId, listener: TcpListener) {
        let retire = Arc::new(Notify::new());
        let task = AcceptTask { retire: retire.clone() };
        if let Some(old) = self.listeners.lock().unwrap_or_else(PoisonError::into_inner).insert(id, task) {
            old.retire.notify_one();
        }
        let shared = self.clone();
        tokio::spawn(async move { shared.accept_loop(id, listener, retire).await });
    }

    async fn accept_loop(self: Arc<Self>, id: ListenerId, listener: TcpListener, retire: Arc<Notify>) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = retire.notified() => return self.retire(id, listener),
            };
            match accepted {
                Ok((stream, peer)) => self.serve_client(id, stream, peer),
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(listener = %id, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// A listener closes: the clients already in its backlog are accepted
    /// (and sent away cleanly by their draining sessions) rather than reset.
    fn retire(self: &Arc<Self>, id: ListenerId, listener: TcpListener) {
        let Ok(listener) = listener.into_std() else { return };
        for _ in 0..1024 {
            let Ok((stream, peer)) = listener.accept() else { return };
            let stream = stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream));
            match stream {
                Ok(stream) => self.serve_client(id, stream, peer),
                Err(error) => debug!(%error, "cannot serve a connection from a closing listener"),
            }
        }
    }

    fn serve_client(self: &Arc<Self>, id: ListenerId, stream: TcpStream, peer: SocketAddr) {
        let session = {
            let mut proxy = self.proxy();
            match proxy.accept(Instant::now(), SystemTime::now(), id, peer) {
                Ok(session) => {
                    if let Err(error) = net::configure(&stream, &proxy.config().socket) {
                        debug!(%error, "cannot set socket options on the client socket");
                    }
                    session
                }
                Err(error) => {
                    // Dropping `stream` closes it at once.
                    connection_refused(self.telemetry.as_deref(), &proxy, id, peer, &error);
                    return;
                }
            }
        };
        let span =
            info_span!("conn", id = session.id(), %peer, listener = %id, client_id = tracing::field::Empty);
        let watch = Watch::new(self.telemetry.as_ref(), Some(id), span.clone());
        (self.spawn)(self, session, Some(stream), span, watch);
    }

    /// Counts a connection task in (until `connection_ended`).
    pub(crate) fn connection_started(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection task out.
    pub(crate) fn connection_ended(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Awaits `future` if there is one, otherwise never completes.
pub(crate) async fn maybe<F: Future>(future: Option<F>) -> F::Output {
    match future {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}
