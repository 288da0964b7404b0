//! SASL pass-through: the client's own exchange goes to the broker
//! untouched. With SaslHandshake v1 every token travels in a Kafka request,
//! so nothing needs tracking; with v0, raw size-prefixed tokens without
//! Kafka headers follow a successful handshake, and the proxy must know when
//! they end. It counts the rounds each mechanism takes.

use crate::sasl::Mechanism;
use crate::sasl::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

/// Where a pass-through exchange stands.
#[derive(Debug, Default)]
pub(super) struct RawTokens {
    /// A SaslHandshake v0 was forwarded: the mechanism it asked for.
    handshake_v0: Option<Option<Mechanism>>,
    /// Raw rounds still to come (client token, broker token).
    rounds_left: u8,
    /// The mechanism of the raw exchange under way.
    mechanism: Option<Mechanism>,
}

/// Why a pass-through exchange cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UntrackableMechanism(pub String);

impl RawTokens {
    /// True while the client's frames are raw tokens.
    pub(super) fn active(&self) -> bool {
        self.rounds_left > 0
    }

    /// A client SaslHandshake request (`body` after the header) is forwarded.
    pub(super) fn on_handshake_request(&mut self, version: i16, body: &[u8]) {
        self.handshake_v0 = (version == 0).then(|| {
            SaslHandshakeRequest::decode(body, version).ok().and_then(|r| Mechanism::from_name(r.mechanism))
        });
    }

    /// The broker answered the client's SaslHandshake (`body` after the
    /// header). After a successful v0 handshake, raw tokens follow.
    pub(super) fn on_handshake_response(
        &mut self,
        version: i16,
        body: &[u8],
    ) -> Result<(), UntrackableMechanism> {
        let Some(mechanism) = self.handshake_v0.take() else { return Ok(()) };
        let accepted = SaslHandshakeResponse::decode(body, version).is_ok_and(|r| r.error_code.0 == 0);
        if !accepted {
            return Ok(());
        }
        let rounds = match mechanism {
            Some(Mechanism::Plain) | Some(Mechanism::OAuthBearer) => 1,
            Some(Mechanism::Scram(_)) => 2,
            None => return Err(UntrackableMechanism("a mechanism the proxy does not know".into())),
        };
        self.mechanism = mechanism;
        self.rounds_left = rounds;
        Ok(())
    }

    /// The broker answered a raw token with `token`.
    pub(super) fn on_broker_token(&mut self, token: &[u8]) {
        self.rounds_left = self.rounds_left.saturating_sub(1);
        // OAUTHBEARER failure (RFC 7628): a JSON challenge, then the client's
        // 0x01, then the broker's final reply.
        if self.rounds_left == 0 && self.mechanism == Some(Mechanism::OAuthBearer) && !token.is_empty() {
            self.rounds_left = 1;
            self.mechanism = None;
        }
        if self.rounds_left == 0 {
            self.mechanism = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    fn handshake(mechanism: &str) -> Vec<u8> {
        let mut v = Vec::new();
        wire::put_string(&mut v, false, mechanism.as_bytes());
        v
    }

    fn response(error: i16) -> Vec<u8> {
        let mut v = error.to_be_bytes().to_vec();
        v.extend_from_slice(&0i32.to_be_bytes());
        v
    }

    #[test]
    fn scram_v0_takes_two_raw_rounds() {
        let mut t = RawTokens::default();
        t.on_handshake_request(0, &handshake("SCRAM-SHA-256"));
        assert!(!t.active());
        t.on_handshake_response(0, &response(0)).expect("known");
        assert!(t.active());
        t.on_broker_token(b"r=...,s=...,i=4096");
        assert!(t.active());
        t.on_broker_token(b"v=...");
        assert!(!t.active());
    }

    #[test]
    fn v1_and_refused_handshakes_start_nothing() {
        let mut t = RawTokens::default();
        t.on_handshake_request(1, &handshake("PLAIN"));
        t.on_handshake_response(1, &response(0)).expect("v1");
        assert!(!t.active());
        t.on_handshake_request(0, &handshake("PLAIN"));
        t.on_handshake_response(0, &response(33)).expect("refused");
        assert!(!t.active());
    }

    #[test]
    fn oauthbearer_failure_adds_a_round() {
        let mut t = RawTokens::default();
        t.on_handshake_request(0, &handshake("OAUTHBEARER"));
        t.on_handshake_response(0, &response(0)).expect("known");
        t.on_broker_token(br#"{"status":"invalid_token"}"#);
        assert!(t.active(), "the client's 0x01 and the final reply follow");
        t.on_broker_token(b"");
        assert!(!t.active());
    }

    #[test]
    fn unknown_v0_mechanism_cannot_be_followed() {
        let mut t = RawTokens::default();
        t.on_handshake_request(0, &handshake("GSSAPI"));
        assert!(t.on_handshake_response(0, &response(0)).is_err());
    }
}
