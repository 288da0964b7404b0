//! The broker's side of a session: responses in, matched to their requests,
//! rewritten where they carry broker addresses, out to the client; and the
//! proxy's own SASL login (with KIP-368 re-authentication).

use std::time::Instant;

use bytes::Bytes;

use super::auth::DownAuth;
use super::{BrokerOwes, CloseReason, ProtocolError, Session, Side, response_frame};
use crate::api::{self, ApiKey};
use crate::correlation::{Expected, Mismatch};
use crate::frame;
use crate::header;
use crate::rewrite::{self, ApiVersionsView, Body, Observed, rewrite_api_versions};

impl Session {
    /// A complete frame from the broker.
    pub(super) fn on_broker_frame(&mut self, now: Instant, frame: Bytes) -> Result<(), CloseReason> {
        let violation = |error| CloseReason::Protocol { side: Side::Upstream, error };
        let body = frame::body(&frame);
        self.stats.response_frame(frame.len());
        self.broker_clock = now;
        let Some(owes) = self.broker_owes.pop_front() else {
            let correlation_id = header::peek_response(&body).unwrap_or(-1);
            return Err(violation(ProtocolError::UnexpectedResponse { correlation_id }));
        };
        match owes {
            BrokerOwes::Login => self.on_login_response(now, &body),
            BrokerOwes::ClientRaw => {
                self.responses.take_raw().map_err(|_| violation(ProtocolError::SaslFraming))?;
                if let DownAuth::PassThrough(raw) = &mut self.down_auth {
                    raw.on_broker_token(&body);
                }
                self.send_client(&[frame]);
                self.release_answers();
                Ok(())
            }
            BrokerOwes::Client => {
                let correlation_id =
                    header::peek_response(&body).map_err(|e| violation(ProtocolError::Header(e)))?;
                let request = self.responses.take(correlation_id).map_err(|m| {
                    violation(match m {
                        Mismatch::NothingOwed => ProtocolError::UnexpectedResponse { correlation_id },
                        Mismatch::OutOfOrder { got, expected } => ProtocolError::OutOfOrder { got, expected },
                        Mismatch::ExpectedRaw | Mismatch::ExpectedKafka { .. } => ProtocolError::SaslFraming,
                    })
                })?;
                self.stats.latency(
                    request.api_key,
                    request.version,
                    now.saturating_duration_since(request.arrived),
                );
                let frame = self.throttle_response(now, &request, frame);
                let body = frame::body(&frame);
                self.forward_response(request, frame, body)?;
                self.release_answers();
                self.after_response(now);
                Ok(())
            }
        }
    }

    /// Sends the proxy's own answers that are now due.
    pub(super) fn release_answers(&mut self) {
        let due: Vec<Bytes> = self.responses.release().collect();
        for answer in due {
            self.send_client(&[answer]);
        }
    }

    /// Forwards the broker's response to `request`, rewritten where needed.
    fn forward_response(&mut self, request: Expected, frame: Bytes, body: Bytes) -> Result<(), CloseReason> {
        let violation = |error| CloseReason::Protocol { side: Side::Upstream, error };
        if request.api_key == ApiKey::API_VERSIONS {
            // Always header v0 (KIP-511).
            self.config.cluster.learn_api_versions(request.version, body.slice(4.min(body.len())..));
            let rest = body.get(4..).unwrap_or_default();
            if let Ok(view) = ApiVersionsView::parse(request.version, rest)
                && let Some(range) = view.get(ApiKey::SASL_AUTHENTICATE)
            {
                self.broker_authenticate_versions = Some((range.min, range.max));
            }
            let rewritten = rewrite_api_versions(request.version, rest, &self.config.api_versions)
                .map_err(CloseReason::Rewrite)?;
            self.send_client(&[response_frame(request.correlation_id, &[], &rewritten)]);
            return Ok(());
        }
        let tagged =
            api::decoded(request.api_key).is_some_and(|d| api::response_header_has_tags(d, request.version));
        if request.api_key == ApiKey::SASL_HANDSHAKE
            && let DownAuth::PassThrough(raw) = &mut self.down_auth
        {
            let start = header::response_header_len(&body, tagged)
                .map_err(|e| violation(ProtocolError::Header(e)))?;
            raw.on_handshake_response(request.version, body.get(start..).unwrap_or_default())
                .map_err(|e| violation(ProtocolError::UntrackableSasl(e.0)))?;
        }
        if !rewrite::needs_rewrite(request.api_key, request.version) {
            self.send_client(&[frame]);
            return Ok(());
        }
        let header_len =
            header::response_header_len(&body, tagged).map_err(|e| violation(ProtocolError::Header(e)))?;
        let payload = body.slice(header_len.min(body.len())..);
        let result =
            rewrite::rewrite_response(request.api_key, request.version, &payload, &*self.config.address_map)
                .map_err(CloseReason::Rewrite)?;
        if result.observed != Observed::Nothing {
            self.observed(result.observed);
        }
        match result.body {
            Body::Unchanged => self.send_client(&[frame]),
            Body::Spliced { front, new, back } => {
                let len = header_len + front.len() + new.len() + back.len();
                let size = Bytes::copy_from_slice(&frame::size_prefix(len));
                let header = body.slice(..header_len.min(body.len()));
                self.send_client(&[size, header, front, new, back]);
            }
        }
        Ok(())
    }
}
