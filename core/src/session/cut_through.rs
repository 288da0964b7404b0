//! Cut-through: a large frame that needs no rewriting is forwarded as its
//! bytes arrive instead of being assembled whole, so a megabyte Produce
//! request or Fetch response costs a read-sized buffer, not its own size,
//! and leaves without waiting for its last byte.
//!
//! Only the frame's first bytes are looked at (the request header, Produce's
//! `Acks`; the response's correlation id). Frames the proxy must see whole
//! (SASL, ApiVersions, responses carrying broker addresses) take the
//! ordinary path. While a response is cut through, the proxy's own answers
//! wait (they must not land inside it); while a request is, so does the
//! proxy's own re-authentication.

use std::time::Instant;

use super::auth::DownAuth;
use super::policy::Policed;
use super::{BrokerOwes, CloseReason, Session, Side};
use crate::api::ApiKey;
use crate::frame::SIZE_LEN;
use crate::header;
use crate::rewrite;

/// Frames at least this large are cut through once this much of them is
/// buffered (always enough for the headers looked at).
pub(super) const CUT_THROUGH_MIN: usize = 64 * 1024;

/// Room reserved per read while cutting through.
pub(super) const READ_SIZE: usize = 256 * 1024;

/// The total length (size prefix included) of the incomplete frame at the
/// front of `buf`, when it qualifies for cut-through.
fn candidate(buf: &[u8]) -> Option<usize> {
    let size = buf.first_chunk::<SIZE_LEN>().map(|p| i32::from_be_bytes(*p))?;
    let total = SIZE_LEN + usize::try_from(size).ok()?;
    (total >= CUT_THROUGH_MIN && buf.len() >= CUT_THROUGH_MIN && buf.len() < total).then_some(total)
}

impl Session {
    /// Starts cutting a client request through to the broker, when it is a
    /// large one the proxy only forwards. `Ok(false)`: take the ordinary path.
    pub(super) fn start_request_cut_through(&mut self, now: Instant) -> Result<bool, CloseReason> {
        let buf = self.down.buffered();
        let Some(total) = candidate(buf) else { return Ok(false) };
        let Ok(h) = header::peek_request(buf.get(SIZE_LEN..).unwrap_or_default()) else { return Ok(false) };
        if matches!(h.api_key, ApiKey::SASL_HANDSHAKE | ApiKey::SASL_AUTHENTICATE | ApiKey::API_VERSIONS) {
            return Ok(false);
        }
        match &self.down_auth {
            DownAuth::Terminate(server)
                if server.expects_raw_token() || !server.is_authenticated() || server.is_expired(now) =>
            {
                return Ok(false);
            }
            DownAuth::PassThrough(raw) if raw.active() => return Ok(false),
            _ => {}
        }
        if self.version_gate(&h)?.is_some() {
            return Ok(false);
        }
        if !self.held.is_empty() || !self.gate_admits(h.api_key) {
            // A large request has earned the upstream connection; the rest of
            // it is read once that connection can carry it.
            self.large_request_waits = true;
            self.earned_by_large_request(now);
            return Ok(false);
        }
        self.large_request_waits = false;
        let expects_response = match h.api_key {
            ApiKey::PRODUCE => {
                let body = self.down.buffered().get(SIZE_LEN..).unwrap_or_default();
                match header::produce_acks(body, h.api_version) {
                    Ok(acks) => acks != 0,
                    Err(_) => return Ok(false),
                }
            }
            _ => true,
        };
        match self.police_request(now, &h, None, total, expects_response)? {
            Policed::Pass => {}
            // Forbidden: it is answered once whole.
            Policed::NeedsWhole | Policed::Answered => return Ok(false),
        }
        self.stats.request_frame(total);
        self.stats.request(h.api_key, h.api_version);
        if expects_response {
            let body = self.down.buffered().get(SIZE_LEN..).unwrap_or_default();
            let expected = self.expected(now, &h, body);
            self.responses.expect(expected);
            self.broker_owes.push_back(BrokerOwes::Client);
        }
        self.cut_request_expects = expects_response;
        let head = self.down.start_cut_through(total);
        self.send_broker(&[head]);
        Ok(true)
    }

    /// Starts cutting a broker response through to the client, when it is a
    /// large one that carries no broker address. `Ok(false)`: take the
    /// ordinary path.
    pub(super) fn start_response_cut_through(&mut self, now: Instant) -> Result<bool, CloseReason> {
        let buf = self.up.buffered();
        let Some(total) = candidate(buf) else { return Ok(false) };
        if self.broker_owes.front() != Some(&BrokerOwes::Client) {
            return Ok(false);
        }
        let Ok(correlation_id) = header::peek_response(buf.get(SIZE_LEN..).unwrap_or_default()) else {
            return Ok(false);
        };
        let Some(request) = self.responses.peek().filter(|e| e.correlation_id == correlation_id) else {
            return Ok(false);
        };
        let fetch_stream =
            request.api_key == ApiKey::FETCH && rewrite::FETCH_STREAM_VERSIONS.contains(&request.version);
        if matches!(request.api_key, ApiKey::API_VERSIONS | ApiKey::SASL_HANDSHAKE)
            || (rewrite::needs_rewrite(request.api_key, request.version) && !fetch_stream)
            || self.throttle_needs_whole(&request)
        {
            return Ok(false);
        }
        let stream_header_len = if fetch_stream {
            let violation = |error| CloseReason::Protocol { side: Side::Upstream, error };
            let len = header::response_header_len(buf.get(SIZE_LEN..).unwrap_or_default(), true)
                .map_err(|e| violation(super::ProtocolError::Header(e)))?;
            Some(len)
        } else {
            None
        };
        // A Fetch response counts against the consumer quota by its size,
        // known from its head; the throttle is raised in the buffered head.
        self.throttle_response_head(now, &request, total);
        let head = match stream_header_len {
            Some(header_len) => {
                // KIP-951: the body streams through; only its final tagged
                // fields (NodeEndpoints) are held back and rewritten to the
                // same length.
                let body_len = total.saturating_sub(SIZE_LEN + header_len);
                let stream =
                    rewrite::FetchStream::new(request.version, body_len).map_err(CloseReason::Rewrite)?;
                self.fetch = Some(Box::new(stream));
                self.up.start_cut_through_after(SIZE_LEN + header_len, body_len)
            }
            None => self.up.start_cut_through(total),
        };
        self.broker_owes.pop_front();
        if self.responses.take(correlation_id).is_err() {
            return Ok(false);
        }
        self.stats.response_frame(total);
        self.stats.latency(request.api_key, request.version, now.saturating_duration_since(request.arrived));
        self.broker_clock = now;
        self.responses.set_streaming(true);
        self.send_client(&[head]);
        Ok(true)
    }

    /// Streams what arrived of a Fetch response through its walker: returns
    /// false when nothing could move.
    fn continue_fetch_stream(&mut self, now: Instant) -> Result<bool, CloseReason> {
        let Some(stream) = self.fetch.as_mut() else { return Ok(false) };
        if !stream.at_tail() {
            let n = stream.advance(self.up.cut_through_buffered()).map_err(CloseReason::Rewrite)?;
            if n == 0 && !stream.at_tail() {
                return Ok(false);
            }
            if n > 0 {
                let piece = self.up.take_cut_through_exact(n);
                self.send_client(&[piece]);
            }
            return Ok(true);
        }
        let map = self.config.address_map.clone();
        let Some(rewrite) =
            stream.rewrite_tail(self.up.cut_through_buffered(), &*map).map_err(CloseReason::Rewrite)?
        else {
            return Ok(false);
        };
        let tail_len = stream.tail_len().unwrap_or(0);
        let tail = self.up.take_cut_through_exact(tail_len);
        match rewrite.body {
            rewrite::Body::Unchanged => self.send_client(&[tail]),
            rewrite::Body::Spliced { front, new, back } => self.send_client(&[front, new, back]),
        }
        self.observed(rewrite.observed);
        self.fetch = None;
        if self.up.cut_through == 0 {
            self.end_cut_through(now, Side::Upstream);
        }
        Ok(true)
    }

    /// Forwards what arrived of the frame being cut through from `side`;
    /// false when nothing did.
    pub(super) fn continue_cut_through(&mut self, now: Instant, side: Side) -> bool {
        if side == Side::Upstream && self.fetch.is_some() {
            return match self.continue_fetch_stream(now) {
                Ok(moved) => moved,
                Err(reason) => {
                    // Part of the frame is already out: nothing may follow it.
                    self.close(now, reason);
                    false
                }
            };
        }
        let Some(piece) = self.peer_mut(side).take_cut_through() else { return false };
        match side {
            Side::Downstream => self.send_broker(&[piece]),
            Side::Upstream => self.send_client(&[piece]),
        }
        if self.peer(side).cut_through == 0 {
            self.end_cut_through(now, side);
        }
        true
    }

    /// The frame cut through from `side` has fully left.
    pub(super) fn end_cut_through(&mut self, now: Instant, side: Side) {
        match side {
            Side::Downstream => {
                if std::mem::take(&mut self.cut_request_expects) {
                    // Its deadline and latency count from its last byte.
                    self.responses.restamp_newest(now);
                }
                self.maybe_reauthenticate(now)
            }
            Side::Upstream => {
                self.broker_clock = now;
                self.responses.set_streaming(false);
                self.release_answers();
                self.after_response(now);
            }
        }
    }
}
