//! The client's side of a session: requests in, through the SASL gate, on
//! to the broker (or answered by the proxy).

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::auth::{AuthenticateRequest, DownAuth, UpAuth};
use super::policy::Policed;
use super::{BrokerOwes, CloseReason, Deferred, Held, Phase, ProtocolError, Session, Side, response_frame};
use crate::api::{self, ApiKey};
use crate::correlation::Expected;
use crate::deadline;
use crate::frame;
use crate::header::{self, RequestHeader};
use crate::rewrite::{answer_api_versions, unsupported_version_body};
use crate::sasl::RequestRef;
use crate::sasl::server::Admission;
use crate::sasl::throttle::Admit;

impl Session {
    /// A complete frame from the client.
    pub(super) fn on_client_frame(&mut self, now: Instant, frame: Bytes) -> Result<(), CloseReason> {
        let violation = |error| CloseReason::Protocol { side: Side::Downstream, error };
        let body = frame.get(frame::SIZE_LEN..).unwrap_or_default();
        let wall = self.wall(now);
        if self.throttled(now, &frame) {
            return Ok(());
        }
        self.stats.request_frame(frame.len());
        // After SaslHandshake v0, frames are raw tokens without Kafka headers.
        match &mut self.down_auth {
            DownAuth::Terminate(server) if server.expects_raw_token() => {
                let step = server.on_raw_token(body, now, wall);
                self.on_server_step(now, step, None);
                return Ok(());
            }
            DownAuth::PassThrough(raw) if raw.active() => {
                self.responses.expect_raw();
                self.forward_to_broker(frame, Some(BrokerOwes::ClientRaw), ApiKey::SASL_AUTHENTICATE);
                return Ok(());
            }
            _ => {}
        }
        let h = header::peek_request(body).map_err(|e| violation(ProtocolError::Header(e)))?;
        self.stats.request(h.api_key, h.api_version);
        if self.client_id.is_none() {
            self.client_id = header::client_id(body).map(printable);
        }
        if let Some(reply) = self.version_gate(&h)? {
            self.answer(reply);
            return Ok(());
        }
        // Every request header holds a well-formed client id (a classic
        // nullable string in every header version): garbage is refused here,
        // not forwarded.
        header::request_header_len(body, false).map_err(|e| violation(ProtocolError::Header(e)))?;
        if let Some(reply) = self.local_api_versions(&h) {
            self.answer(reply);
            return Ok(());
        }
        if let DownAuth::Terminate(server) = &mut self.down_auth {
            match server.admit(h.api_key, now) {
                Admission::Pass => {}
                Admission::Sasl => {
                    let start = request_body_start(body, &h).map_err(violation)?;
                    let request = RequestRef {
                        api_key: h.api_key,
                        version: h.api_version,
                        correlation_id: h.correlation_id,
                        body: body.get(start..).unwrap_or_default(),
                    };
                    let step = server.on_request(request, now, wall);
                    let reply_to = (h.api_key == ApiKey::SASL_AUTHENTICATE).then_some(AuthenticateRequest {
                        correlation_id: h.correlation_id,
                        version: h.api_version,
                    });
                    self.on_server_step(now, step, reply_to);
                    return Ok(());
                }
                Admission::Refuse { reason, close_after } => {
                    debug!(session = self.id, api = %h.api_key, "request refused by the SASL gate");
                    self.refuse(now, None, CloseReason::Refused(reason), close_after);
                    return Ok(());
                }
            }
        }
        if h.api_key == ApiKey::SASL_HANDSHAKE
            && let DownAuth::PassThrough(raw) = &mut self.down_auth
        {
            let start = request_body_start(body, &h).map_err(violation)?;
            raw.on_handshake_request(h.api_version, body.get(start..).unwrap_or_default());
        }
        let expects_response = h.api_key != ApiKey::PRODUCE
            || header::produce_acks(body, h.api_version).map_err(|e| violation(ProtocolError::Header(e)))?
                != 0;
        if self.police_request(now, &h, Some(body), frame.len(), expects_response)? == Policed::Answered {
            return Ok(());
        }
        if expects_response {
            self.responses.expect(self.expected(now, &h, body));
        }
        self.forward_to_broker(frame, expects_response.then_some(BrokerOwes::Client), h.api_key);
        Ok(())
    }

    /// The place in the response queue of a request forwarded to the broker:
    /// what it is, when it arrived and how long the broker may take.
    pub(super) fn expected(&self, now: Instant, h: &RequestHeader, body: &[u8]) -> Expected {
        let limit = self.config.limits.request_timeout;
        Expected {
            correlation_id: h.correlation_id,
            api_key: h.api_key,
            version: h.api_version,
            arrived: now,
            wait: deadline::wait_for(limit, h.api_key, h.api_version, body),
        }
    }

    /// Refuses APIs and versions the proxy did not advertise; answers an
    /// ApiVersions request newer than it parses with Kafka's downgrade reply.
    pub(super) fn version_gate(&self, h: &RequestHeader) -> Result<Option<Bytes>, CloseReason> {
        let violation = |error| CloseReason::Protocol { side: Side::Downstream, error };
        if h.api_key.name().is_none() || h.api_version < 0 {
            return Err(violation(ProtocolError::UnknownApi { api: h.api_key, version: h.api_version }));
        }
        if api::HIDDEN.contains(&h.api_key) {
            return Err(violation(ProtocolError::ApiNotAdvertised(h.api_key)));
        }
        match api::decoded(h.api_key) {
            Some(d) if h.api_version > d.max_version => {
                if h.api_key == ApiKey::API_VERSIONS {
                    // KIP-511: UNSUPPORTED_VERSION with a v0 body; the client
                    // retries with a version from it.
                    return Ok(Some(response_frame(h.correlation_id, &[], &unsupported_version_body())));
                }
                Err(violation(ProtocolError::VersionNotAdvertised {
                    api: h.api_key,
                    version: h.api_version,
                    max: d.max_version,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Where the proxy authenticates clients and has no upstream connection
    /// yet: answers ApiVersions itself from the broker's answer it learned
    /// (clamped as a forwarded one would be), so an unauthenticated client
    /// costs the broker nothing. `None`: forward it.
    fn local_api_versions(&mut self, h: &RequestHeader) -> Option<Bytes> {
        if h.api_key != ApiKey::API_VERSIONS
            || !matches!(self.down_auth, DownAuth::Terminate(_))
            || !matches!(self.phase, Phase::Earning { .. })
        {
            return None;
        }
        let learned = self.config.cluster.api_versions()?;
        let body =
            answer_api_versions(learned.version, &learned.body, h.api_version, &self.config.api_versions)
                .ok()?;
        if let Ok(view) = crate::rewrite::ApiVersionsView::parse(learned.version, &learned.body)
            && let Some(range) = view.get(ApiKey::SASL_AUTHENTICATE)
        {
            self.broker_authenticate_versions = Some((range.min, range.max));
        }
        debug!(session = self.id, version = h.api_version, "ApiVersions answered by the proxy");
        Some(response_frame(h.correlation_id, &[], &body))
    }

    /// The login throttle: true when `frame`, a SASL token from a client the
    /// proxy authenticates, must wait for its slot (it is held, and nothing
    /// after it is read until then).
    fn throttled(&mut self, now: Instant, frame: &Bytes) -> bool {
        let DownAuth::Terminate(server) = &self.down_auth else { return false };
        let Some(addr) = self.peer.map(|p| p.ip()) else { return false };
        if self.throttle_owed {
            // Admitted already (resumed after its wait).
            return false;
        }
        let token = server.expects_raw_token()
            || header::peek_request(frame.get(frame::SIZE_LEN..).unwrap_or_default())
                .is_ok_and(|h| h.api_key == ApiKey::SASL_AUTHENTICATE);
        if !token {
            return false;
        }
        self.throttle_owed = true;
        match self.config.throttle.admit(addr, now) {
            Admit::Now => false,
            Admit::At(at) => {
                debug!(
                    session = self.id,
                    wait_ms = at.saturating_duration_since(now).as_millis() as u64,
                    "login throttled"
                );
                self.deferred = Some(Box::new(Deferred { frame: frame.clone(), at }));
                true
            }
        }
    }

    /// Sends a client request to the broker, or holds it while the upstream
    /// connection cannot carry it yet (connecting, TLS, the proxy's own login).
    pub(super) fn forward_to_broker(&mut self, frame: Bytes, owes: Option<BrokerOwes>, api_key: ApiKey) {
        if self.held.is_empty() && self.gate_admits(api_key) {
            if let Some(owes) = owes {
                self.broker_owes.push_back(owes);
            }
            self.send_broker(&[frame]);
        } else {
            self.held_len += frame.len();
            self.held.push_back(Held { frame, owes, api_key });
        }
    }

    /// True when the upstream connection carries client requests now
    /// (connected, TLS done, the proxy's own login done).
    pub(super) fn upstream_ready(&self) -> bool {
        self.up.open && self.up.is_secured() && matches!(self.up_auth, UpAuth::Off | UpAuth::Done(_))
    }

    /// True when a client request for `api_key` may go to the broker now.
    pub(super) fn gate_admits(&self, api_key: ApiKey) -> bool {
        if !self.up.open || !self.up.is_secured() {
            return false;
        }
        match self.up_auth {
            UpAuth::Off | UpAuth::Done(_) => true,
            // Brokers answer ApiVersions before authentication.
            UpAuth::AwaitPrincipal => api_key == ApiKey::API_VERSIONS,
            UpAuth::Ready(_) | UpAuth::Exchanging(_) => false,
        }
    }

    /// Sends held requests, in order, as far as the gate now admits them.
    pub(super) fn release_held(&mut self) {
        while let Some(next) = self.held.front() {
            if !self.gate_admits(next.api_key) {
                return;
            }
            let Some(held) = self.held.pop_front() else { return };
            self.held_len -= held.frame.len();
            if let Some(owes) = held.owes {
                self.broker_owes.push_back(owes);
            }
            self.send_broker(&[held.frame]);
        }
    }
}

/// Most characters of a client id kept for logs.
const MAX_CLIENT_ID_CHARS: usize = 128;

/// A client id fit for a log line: lossy UTF-8, bounded, control characters
/// replaced (a client must not be able to forge log lines).
fn printable(raw: &[u8]) -> Box<str> {
    let text = String::from_utf8_lossy(raw.get(..raw.len().min(4 * MAX_CLIENT_ID_CHARS)).unwrap_or_default());
    text.chars().take(MAX_CLIENT_ID_CHARS).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Where the body of a request starts (after its full header).
fn request_body_start(body: &[u8], h: &RequestHeader) -> Result<usize, ProtocolError> {
    let flexible = api::decoded(h.api_key).is_some_and(|d| api::is_flexible(d, h.api_version));
    header::request_header_len(body, flexible).map_err(ProtocolError::Header)
}
