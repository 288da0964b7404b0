//! Who the client is and how the proxy logs in for it: the TLS principal,
//! the SASL exchange with the client (terminated or passed through) and the
//! proxy's own SASL login at the broker, with KIP-368 re-authentication on
//! both sides.

use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::passthrough::RawTokens;
use super::{ANONYMOUS, AuthOutcome, BrokerOwes, CloseReason, Event, ProtocolError, Session, Side};
use crate::api::ErrorCode;
use crate::config::{DownstreamSasl, UpstreamLogin};
use crate::header;
use crate::sasl::messages::SaslAuthenticateResponse;
use crate::sasl::server::{FailureReason, ServerStep};
use crate::sasl::{AuthFailure, ClientError, ClientStep, ExternalFailure, SaslClient, SaslServer, Verdict};

/// Where a SASL reply goes, for the replies the proxy must write itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct AuthenticateRequest {
    pub(super) correlation_id: i32,
    pub(super) version: i16,
}

/// The proxy's SASL login towards the broker.
#[derive(Debug)]
pub(super) enum UpAuth {
    /// None: no SASL upstream, or the client's own exchange passes through.
    Off,
    /// Auth swap: the identity depends on the client's principal, not known yet.
    AwaitPrincipal,
    /// The identity is known; the exchange starts once the transport is up.
    /// (Boxed, as in the variants below: most sessions log in to no broker,
    /// and an idle session should be small.)
    Ready(Box<SaslClient>),
    /// An exchange (first or KIP-368 re-authentication) is under way: hold
    /// client requests.
    Exchanging(Box<SaslClient>),
    /// Authenticated.
    Done(Box<SaslClient>),
}

/// What the proxy does with SASL from the client.
#[derive(Debug)]
pub(super) enum DownAuth {
    /// None.
    Off,
    /// The client's exchange is forwarded; raw v0 tokens are followed.
    PassThrough(RawTokens),
    /// The proxy authenticates the client.
    Terminate(Box<SaslServer>),
}

impl Session {
    /// A side finished its TLS handshake.
    pub(super) fn on_secured(&mut self, now: Instant, side: Side) {
        if self.peer(side).has_tls() {
            self.stats.side_mut(side).tls_handshakes += 1;
        }
        match side {
            Side::Downstream => {
                if let Some(tls) = &self.config.security.downstream_tls
                    && matches!(self.down_auth, DownAuth::Off)
                {
                    match tls.principal.principal(self.down.peer_certificates()) {
                        Ok(principal) => {
                            info!(session = self.id, %principal, "client authenticated by TLS");
                            // `client_auth: requested` without a certificate is no
                            // authentication (the client is $anonymous): not counted.
                            if self.down.peer_certificates().is_some_and(|chain| !chain.is_empty()) {
                                self.auth_outcome(Side::Downstream, MTLS, None);
                            }
                            self.set_principal(now, principal);
                        }
                        Err(e) => {
                            self.auth_outcome(Side::Downstream, MTLS, Some("no_principal"));
                            let principal = e.to_string();
                            self.close(
                                now,
                                CloseReason::Unauthorized {
                                    principal,
                                    why: "certificate maps to no principal",
                                },
                            );
                        }
                    }
                }
            }
            Side::Upstream => {
                debug!(session = self.id, tls = self.up.has_tls(), "upstream ready");
                self.start_login(now);
                self.release_held();
            }
        }
        self.check_established();
    }

    /// The client's identity is known (certificate, SASL, or none).
    pub(super) fn set_principal(&mut self, now: Instant, principal: String) {
        if let Err(limit) = self.admit_principal(now, &principal) {
            let reason = Self::principal_limit_reason(&principal, limit);
            self.principal = Some(principal);
            return self.close(now, reason);
        }
        self.principal = Some(principal);
        self.resolve_policy();
        if let UpAuth::AwaitPrincipal = self.up_auth {
            let UpstreamLogin::Swap(map) = &self.config.security.upstream_login else { return };
            let who = self.principal.as_deref().unwrap_or(ANONYMOUS);
            match map.get(who) {
                Some(identity) => {
                    debug!(
                        session = self.id,
                        principal = who,
                        upstream_user = identity.username(),
                        "auth swap"
                    );
                    self.up_auth = UpAuth::Ready(Box::new(SaslClient::new(identity.clone())));
                    self.start_login(now);
                }
                None => {
                    let principal = who.to_owned();
                    self.close(
                        now,
                        CloseReason::Unauthorized { principal, why: "no upstream identity (auth_swap)" },
                    )
                }
            }
        }
        self.check_established();
    }

    /// Clears the handshake deadline once every configured handshake is done.
    pub(super) fn check_established(&mut self) {
        let down_done = self.down.is_secured()
            && match &self.down_auth {
                DownAuth::Terminate(server) => server.is_authenticated(),
                _ => true,
            };
        // Before the client earned its upstream connection there is no
        // upstream handshake yet: its deadline starts with the connection.
        let up_done = matches!(self.phase, super::Phase::Earning { .. })
            || (self.up.open
                && self.up.is_secured()
                && matches!(self.up_auth, UpAuth::Off | UpAuth::Done(_)));
        if down_done && up_done {
            self.handshake_deadline = None;
        }
    }

    /// Acts on what the SASL server decided.
    pub(super) fn on_server_step(
        &mut self,
        now: Instant,
        step: ServerStep,
        reply_to: Option<AuthenticateRequest>,
    ) {
        let hold = self.settle_throttle(now, &step);
        match step {
            ServerStep::Reply(frame) => self.answer(frame),
            ServerStep::Verify(mut request) => {
                // The client's SaslAuthenticate waits for the runtime's answer.
                request.client = self.peer;
                self.verifying = reply_to;
                debug!(session = self.id, user = %request.user, request = request.id, "asking the external authenticator");
                self.events.push_back(Event::Authenticate(request));
            }
            ServerStep::Authenticated { reply, authentication } => {
                let principal = authentication.principal.name().to_owned();
                let mechanism = authentication.mechanism.name();
                if !authentication.reauthentication && !self.has_upstream_identity(&principal) {
                    self.auth_outcome(Side::Downstream, mechanism, Some("no_upstream_identity"));
                    // Auth swap without a mapping: Kafka's authentication failure,
                    // with the same message as bad credentials.
                    let message = format!(
                        "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                        authentication.mechanism.name()
                    );
                    let reason =
                        CloseReason::Unauthorized { principal, why: "no upstream identity (auth_swap)" };
                    return self.refuse_authentication(now, reply_to, &message, reason);
                }
                if !authentication.reauthentication
                    && let Err(limit) = self.admit_principal(now, &principal)
                {
                    // The principal holds its max_connections: SaslAuthenticate
                    // fails with a message the client shows.
                    let message = format!(
                        "Authentication refused: principal {principal} already holds {limit} connection(s), its limit (max_connections)"
                    );
                    let reason = Self::principal_limit_reason(&principal, limit);
                    self.auth_outcome(Side::Downstream, mechanism, Some("max_connections"));
                    return self.refuse_authentication(now, reply_to, &message, reason);
                }
                self.answer(reply);
                self.auth_outcome(Side::Downstream, mechanism, None);
                if authentication.reauthentication {
                    debug!(session = self.id, %principal, "client re-authenticated");
                } else {
                    info!(
                        session = self.id,
                        %principal,
                        mechanism = authentication.mechanism.name(),
                        lifetime_ms = authentication.lifetime.map(|l| l.as_millis() as u64),
                        "client authenticated"
                    );
                    self.set_principal(now, principal);
                }
            }
            ServerStep::Failed { reply, reason, close_after } => {
                let (mechanism, why) = server_failure(&reason);
                self.auth_outcome(Side::Downstream, mechanism, Some(why));
                self.refuse_after(now, hold, reply, CloseReason::Refused(reason), close_after)
            }
        }
    }

    /// The runtime's answer to [`Event::Authenticate`]: the external
    /// authenticator's verdict on request `id` (stale ids are ignored). The
    /// client gets its SaslAuthenticate response, and what it sent since is
    /// processed.
    pub fn handle_verdict(&mut self, now: Instant, id: u64, verdict: Verdict) {
        let wall = self.wall(now);
        let DownAuth::Terminate(server) = &mut self.down_auth else { return };
        let Some(step) = server.on_verdict(id, verdict, now, wall) else {
            debug!(session = self.id, request = id, "verdict for no pending login; ignored");
            return;
        };
        let reply_to = self.verifying.take();
        self.on_server_step(now, step, reply_to);
        self.process(now, Side::Downstream);
    }

    /// A verdict is overdue: the login fails.
    pub(super) fn verdict_timed_out(&mut self, now: Instant) {
        let DownAuth::Terminate(server) = &mut self.down_auth else { return };
        if let Some(step) = server.on_verdict_timeout(now) {
            let reply_to = self.verifying.take();
            self.on_server_step(now, step, reply_to);
        }
    }

    /// When the awaited external verdict is overdue.
    pub(super) fn verdict_deadline(&self) -> Option<Instant> {
        match &self.down_auth {
            DownAuth::Terminate(server) => server.verdict_deadline(),
            _ => None,
        }
    }

    /// True while the client's login waits for the external authenticator.
    pub(super) fn awaiting_verdict(&self) -> bool {
        matches!(&self.down_auth, DownAuth::Terminate(server) if server.is_verifying())
    }

    /// Refuses a client whose credentials were good: `SaslAuthenticate`
    /// fails with `SASL_AUTHENTICATION_FAILED` and `message` (when the
    /// exchange has a response to carry it), and the session closes after
    /// Kafka's failed-authentication delay.
    fn refuse_authentication(
        &mut self,
        now: Instant,
        reply_to: Option<AuthenticateRequest>,
        message: &str,
        reason: CloseReason,
    ) {
        let refusal = reply_to.map(|to| {
            SaslAuthenticateResponse {
                error_code: ErrorCode::SASL_AUTHENTICATION_FAILED,
                error_message: Some(message.as_bytes()),
                auth_bytes: &[],
                session_lifetime_ms: 0,
            }
            .encode_frame(to.correlation_id, to.version)
        });
        let delay = match &self.config.security.downstream_sasl {
            DownstreamSasl::Terminate(c) => c.failure_delay,
            _ => Duration::ZERO,
        };
        self.refuse(now, refusal, reason, delay);
    }

    /// Tells the login throttle how the token it admitted ended; returns how
    /// long a failure response must be held back.
    fn settle_throttle(&mut self, now: Instant, step: &ServerStep) -> Duration {
        if matches!(step, ServerStep::Verify(_)) {
            // Settled by the verdict's step.
            return Duration::ZERO;
        }
        if !std::mem::take(&mut self.throttle_owed) {
            return Duration::ZERO;
        }
        let Some(addr) = self.peer.map(|p| p.ip()) else { return Duration::ZERO };
        let failed = matches!(step, ServerStep::Failed { reason: FailureReason::Authentication { .. }, .. });
        let user = match &self.down_auth {
            DownAuth::Terminate(server) => server.claimed_user(),
            _ => None,
        };
        self.config.throttle.finish(addr, user, failed, now)
    }

    /// False only under auth swap, for a principal without an upstream identity.
    pub(super) fn has_upstream_identity(&self, principal: &str) -> bool {
        match &self.config.security.upstream_login {
            UpstreamLogin::Swap(map) => map.contains_key(principal),
            _ => true,
        }
    }

    /// Starts the proxy's login at the broker (or re-authentication) once the
    /// upstream transport is ready and the identity known.
    pub(super) fn start_login(&mut self, now: Instant) {
        if !self.up.open || !self.up.is_secured() {
            return;
        }
        if !matches!(self.up_auth, UpAuth::Ready(_)) {
            return;
        }
        let UpAuth::Ready(mut client) = std::mem::replace(&mut self.up_auth, UpAuth::Off) else { return };
        let correlation_id = self.next_correlation_id();
        match client.start(correlation_id, self.broker_authenticate_versions) {
            Ok(request) => {
                self.broker_owes.push_back(BrokerOwes::Login);
                self.up_auth = UpAuth::Exchanging(client);
                self.send_broker(&[request]);
            }
            Err(error) => {
                self.auth_outcome(
                    Side::Upstream,
                    client.config().mechanism().name(),
                    Some(client_failure(&error)),
                );
                self.close(now, CloseReason::UpstreamLogin(error))
            }
        }
    }

    /// KIP-368: re-authenticate before the broker's session ends. New client
    /// requests wait; responses to earlier ones keep flowing.
    pub(super) fn maybe_reauthenticate(&mut self, now: Instant) {
        if self.down.cut_through > 0 {
            // A client request is half-way to the broker; its end comes back here.
            return;
        }
        if let UpAuth::Done(client) = &self.up_auth
            && client.needs_reauth(now)
            && let UpAuth::Done(client) = std::mem::replace(&mut self.up_auth, UpAuth::Off)
        {
            debug!(session = self.id, "re-authenticating with the broker");
            self.up_auth = UpAuth::Ready(client);
            self.start_login(now);
        }
    }

    pub(super) fn next_correlation_id(&mut self) -> i32 {
        let id = self.next_internal_correlation_id;
        self.next_internal_correlation_id = id.wrapping_sub(1);
        id
    }

    /// The broker answered the proxy's own SASL request.
    pub(super) fn on_login_response(&mut self, now: Instant, body: &[u8]) -> Result<(), CloseReason> {
        let violation = |error| CloseReason::Protocol { side: Side::Upstream, error };
        let next = self.next_internal_correlation_id;
        let UpAuth::Exchanging(client) = &mut self.up_auth else {
            return Err(violation(ProtocolError::SaslFraming));
        };
        let Some(pending) = client.pending() else {
            return Err(violation(ProtocolError::SaslFraming));
        };
        let correlation_id = header::peek_response(body).map_err(|e| violation(ProtocolError::Header(e)))?;
        let start = header::response_header_len(body, pending.response_header_flexible())
            .map_err(|e| violation(ProtocolError::Header(e)))?;
        match client.on_response(correlation_id, body.get(start..).unwrap_or_default(), next, now) {
            ClientStep::Send(request) => {
                self.next_internal_correlation_id = next.wrapping_sub(1);
                self.broker_owes.push_back(BrokerOwes::Login);
                self.send_broker(&[request]);
            }
            ClientStep::Authenticated(auth) => {
                if let UpAuth::Exchanging(client) = std::mem::replace(&mut self.up_auth, UpAuth::Off) {
                    self.auth_outcome(Side::Upstream, client.config().mechanism().name(), None);
                    if auth.reauthentication {
                        debug!(session = self.id, "re-authenticated with the broker");
                    } else {
                        info!(
                            session = self.id,
                            user = client.config().username(),
                            lifetime_ms = auth.lifetime.map(|l| l.as_millis() as u64),
                            "logged in at the broker"
                        );
                    }
                    self.up_auth = UpAuth::Done(client);
                }
                self.release_held();
                self.check_established();
            }
            ClientStep::Failed(error) => {
                if let UpAuth::Exchanging(client) = &self.up_auth {
                    let mechanism = client.config().mechanism().name();
                    self.auth_outcome(Side::Upstream, mechanism, Some(client_failure(&error)));
                }
                self.close(now, CloseReason::UpstreamLogin(error))
            }
        }
        Ok(())
    }

    /// Counts an authentication that ended (for metrics).
    fn auth_outcome(&mut self, side: Side, mechanism: &'static str, failure: Option<&'static str>) {
        self.stats.auth.push(AuthOutcome { side, mechanism, failure });
    }
}

/// The mechanism name of client certificate authentication, in metrics.
const MTLS: &str = "MTLS";

/// The mechanism and a stable reason name of a refused client, for metrics.
fn server_failure(reason: &FailureReason) -> (&'static str, &'static str) {
    match reason {
        FailureReason::UnsupportedMechanism { .. } => ("unknown", "unsupported_mechanism"),
        FailureReason::IllegalState { .. } | FailureReason::UnexpectedRawToken => {
            ("unknown", "illegal_state")
        }
        FailureReason::Decode(_) => ("unknown", "malformed"),
        FailureReason::TokenTooLarge { .. } => ("unknown", "token_too_large"),
        FailureReason::Authentication { mechanism, failure, .. } => (
            mechanism.name(),
            match failure {
                AuthFailure::Plain(_) => "malformed",
                AuthFailure::NotConfigured => "not_configured",
                AuthFailure::Random(_) => "internal_error",
                AuthFailure::Password(_)
                | AuthFailure::Scram(_)
                | AuthFailure::External(ExternalFailure::Denied(_)) => "invalid_credentials",
                AuthFailure::OAuthBearer(e) => e.reason(),
                AuthFailure::External(ExternalFailure::Backend(_)) => "backend_error",
                AuthFailure::External(ExternalFailure::TimedOut(_)) => "backend_timeout",
            },
        ),
        FailureReason::ReauthMechanismChanged { from, .. } => (from.name(), "reauth_mechanism_changed"),
        FailureReason::ReauthPrincipalChanged { .. } => ("unknown", "reauth_principal_changed"),
        FailureReason::SessionExpired => ("unknown", "session_expired"),
        FailureReason::AlreadyFailed => ("unknown", "already_failed"),
    }
}

/// A stable reason name of a failed login at the broker, for metrics.
fn client_failure(error: &ClientError) -> &'static str {
    match error {
        ClientError::Broker { .. } => "broker_refused",
        ClientError::UnsupportedMechanism(_) => "unsupported_mechanism",
        ClientError::NoToken => "no_token",
        ClientError::Scram(_) => "scram_verification",
        ClientError::Plain(_) | ClientError::Decode(_) => "malformed",
        _ => "protocol_error",
    }
}
