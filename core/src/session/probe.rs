//! The proxy's own look at the cluster: a session without a client that
//! sends one Metadata request through the configured upstream security,
//! reports the brokers it learns, and closes.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::BytesMut;

use super::auth::{DownAuth, UpAuth};
use super::{ANONYMOUS, Peer, Phase, Session, SessionConfig};
use crate::frame;
use crate::route::Route;

impl Session {
    /// A session without a client that asks the cluster (through `route`,
    /// with the configured upstream TLS and login) for its brokers, reports
    /// them as [`Event::Observed`], and closes.
    pub(crate) fn new_probe(
        id: u64,
        now: Instant,
        wall: SystemTime,
        config: Arc<SessionConfig>,
        route: Route,
    ) -> Session {
        let mut session = Session::build(id, now, wall, config, None, None, true);
        session.down = Peer::plain(false);
        session.down_auth = DownAuth::Off;
        if let UpAuth::AwaitPrincipal = session.up_auth {
            session.set_principal(now, ANONYMOUS.to_owned());
        }
        session.phase = Phase::Routing { asked: false };
        session.events.clear();
        session.handle_route(now, route);
        let client_id = session.config.client_id.clone();
        let client_id = client_id.as_bytes();
        let client_id = client_id.get(..client_id.len().min(32_767)).unwrap_or_default();
        // ApiVersions v0 (the cluster view keeps the answer, for proxies
        // that answer their clients' ApiVersions themselves; v0 is what every
        // broker answers), then Metadata v4 without topics: the broker list only.
        let mut api_versions = BytesMut::with_capacity(24 + client_id.len());
        api_versions.extend_from_slice(&crate::api::ApiKey::API_VERSIONS.0.to_be_bytes());
        api_versions.extend_from_slice(&0i16.to_be_bytes());
        api_versions.extend_from_slice(&0i32.to_be_bytes());
        crate::wire::put_string(&mut api_versions, false, client_id);
        let mut metadata = BytesMut::with_capacity(32 + client_id.len());
        metadata.extend_from_slice(&crate::api::ApiKey::METADATA.0.to_be_bytes());
        metadata.extend_from_slice(&4i16.to_be_bytes());
        metadata.extend_from_slice(&1i32.to_be_bytes());
        crate::wire::put_string(&mut metadata, false, client_id);
        metadata.extend_from_slice(&0i32.to_be_bytes());
        metadata.extend_from_slice(&[0]);
        for request in [api_versions, metadata] {
            let mut frame = BytesMut::with_capacity(frame::SIZE_LEN + request.len());
            frame.extend_from_slice(&frame::size_prefix(request.len()));
            frame.extend_from_slice(&request);
            if let Err(reason) = session.on_client_frame(now, frame.freeze()) {
                session.close(now, reason);
            }
        }
        session.maybe_connect(now);
        session
    }

    /// True for a probe session ([`ProxyAction::Spawn`](crate::proxy::ProxyAction::Spawn)).
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}
