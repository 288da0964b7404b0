//! `kafka-proxy-admin`: the admin HTTP endpoint (`admin.bind`).
//!
//! * `GET /metrics`: every metric, Prometheus text format 0.0.4.
//! * `GET /health`: liveness, 200 while the process serves HTTP at all.
//! * `GET /ready`: readiness, 200 when listeners are bound, the cluster was
//!   learned and no drain began; 503 with a one-line reason otherwise.
//!
//! The metrics and health paths can be moved ([`Paths`], `admin.metrics_path`
//! and `admin.health_path`: the Go proxy's `--http-metrics-path` and
//! `--http-health-path`); `/livez`, `/ready` and `/readyz` stay.
//!
//! It runs on a thread of its own with a current-thread tokio runtime and
//! hyper's HTTP/1 server, whichever runtime moves the Kafka bytes: scrapes
//! never compete with the data path for its threads, and the mio runtime
//! stays free of tokio.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use kafka_proxy_metrics::Telemetry;
use tracing::{debug, info, warn};

/// Admin connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;

/// Pending scrape connections the listener queues.
const ADMIN_BACKLOG: i32 = 128;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the metrics and the liveness answer are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The Prometheus scrape path (default `/metrics`).
    pub metrics: String,
    /// The liveness path (default `/health`; `/livez` answers too).
    pub health: String,
}

impl Default for Paths {
    fn default() -> Self {
        Paths { metrics: "/metrics".to_owned(), health: "/health".to_owned() }
    }
}

/// The running endpoint.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
}

impl AdminServer {
    /// Where it listens (the port chosen by the system when `admin.bind` said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `addr` now (an error names the cause, so the process can refuse to
/// start) and serves on a new thread until the process exits. With
/// `reuse_port`, a new process can bind the same address during a restart,
/// like the Kafka listeners.
pub fn start(
    addr: SocketAddr,
    reuse_port: bool,
    telemetry: Arc<Telemetry>,
    paths: Paths,
) -> io::Result<AdminServer> {
    let listener = kafka_proxy_runtime::net::bind_with_backlog(addr, reuse_port, ADMIN_BACKLOG)?;
    let local = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    info!(addr = %local, metrics = %paths.metrics, health = %paths.health, "admin endpoint listening (and /ready)");
    let paths = Arc::new(paths);
    std::thread::Builder::new().name("kafka-proxy-admin".into()).spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => serve(listener, telemetry, paths).await,
                Err(error) => warn!(%error, "admin endpoint: cannot watch the listener"),
            }
        })
    })?;
    Ok(AdminServer { addr: local })
}

async fn serve(listener: tokio::net::TcpListener, telemetry: Arc<Telemetry>, paths: Arc<Paths>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "admin endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (telemetry, paths) = (telemetry.clone(), paths.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (telemetry, paths) = (telemetry.clone(), paths.clone());
                async move { Ok::<_, std::convert::Infallible>(respond(&request, &telemetry, &paths)) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                debug!(%peer, %error, "admin connection ended");
            }
            drop(permit);
        });
    }
}

/// The answer to one request.
fn respond(request: &Request<Incoming>, telemetry: &Telemetry, paths: &Paths) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_owned());
    }
    let path = request.uri().path();
    if path == paths.metrics {
        let mut response = Response::new(Full::new(Bytes::from(telemetry.encode())));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(kafka_proxy_metrics::CONTENT_TYPE));
        return response;
    }
    if path == paths.health {
        return text(StatusCode::OK, "ok\n".to_owned());
    }
    match path {
        "/livez" => text(StatusCode::OK, "ok\n".to_owned()),
        "/ready" | "/readyz" => match telemetry.status().readiness() {
            Ok(()) => text(StatusCode::OK, "ready\n".to_owned()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            format!("not found: try {}, {} or /ready\n", paths.metrics, paths.health),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_metrics_health_and_readiness() {
        let telemetry = Telemetry::new("0.0.0-test", "test");
        let server =
            start("127.0.0.1:0".parse().unwrap(), false, telemetry.clone(), Paths::default()).unwrap();
        let addr = server.local_addr();
        assert!(get(addr, "/health").starts_with("HTTP/1.1 200 OK"));
        let ready = get(addr, "/ready");
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(ready.ends_with("not ready: listeners are not bound yet\n"), "{ready}");
        telemetry.status().set_listening();
        telemetry.status().set_draining();
        assert!(get(addr, "/ready").ends_with("not ready: draining: this instance is shutting down\n"));
        let metrics = get(addr, "/metrics");
        assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
        assert!(metrics.contains("content-type: text/plain; version=0.0.4"), "{metrics}");
        assert!(
            metrics.contains("kafka_proxy_build_info{runtime=\"test\",version=\"0.0.0-test\"} 1"),
            "{metrics}"
        );
        assert!(metrics.contains("kafka_proxy_ready 0"), "{metrics}");
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn moved_paths_replace_metrics_and_health() {
        let telemetry = Telemetry::new("0.0.0-test", "test");
        let paths = Paths { metrics: "/prom".to_owned(), health: "/healthz".to_owned() };
        let addr = start("127.0.0.1:0".parse().unwrap(), false, telemetry, paths).unwrap().local_addr();
        assert!(get(addr, "/prom").contains("kafka_proxy_build_info"));
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200 OK"));
        assert!(get(addr, "/livez").starts_with("HTTP/1.1 200 OK"));
        assert!(get(addr, "/ready").starts_with("HTTP/1.1 503"));
        let gone = get(addr, "/metrics");
        assert!(
            gone.starts_with("HTTP/1.1 404") && gone.ends_with("try /prom, /healthz or /ready\n"),
            "{gone}"
        );
        assert!(get(addr, "/health").starts_with("HTTP/1.1 404"));
    }
}
