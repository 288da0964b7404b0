//! The responses a client is owed, in the order it asked for them.
//!
//! Kafka answers requests on a connection in the order they were sent, and
//! strict clients (the Java one) refuse anything else. Most responses come
//! from the broker, but some the proxy writes itself (an ApiVersions
//! downgrade, SASL replies, refusals): those must still reach the client in
//! request order, after every earlier broker response. So each request
//! leaves a place in one queue — "the broker will answer" or "here is the
//! answer" — and answers leave in queue order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::api::ApiKey;

/// A request forwarded to the broker whose response is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expected {
    /// The request's correlation id, which the response must carry.
    pub correlation_id: i32,
    /// The request's API.
    pub api_key: ApiKey,
    /// The request's API version.
    pub version: i16,
    /// When its last byte arrived from the client.
    pub arrived: Instant,
    /// How long the broker may take to answer it (`crate::deadline`).
    pub wait: Duration,
}

#[derive(Debug)]
enum Owed {
    Broker(Expected),
    /// A raw SASL token (after SaslHandshake v0): no header, no correlation id.
    BrokerRaw,
    Local(Bytes),
}

/// Why a broker response does not fit the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// No broker response is owed.
    NothingOwed,
    /// The response's id is not the oldest owed one.
    OutOfOrder {
        /// The id the response carried.
        got: i32,
        /// The id of the oldest owed request.
        expected: i32,
    },
    /// A Kafka response arrived where a raw SASL token was owed.
    ExpectedRaw,
    /// A raw SASL token arrived where a Kafka response was owed.
    ExpectedKafka {
        /// The id of the oldest owed request.
        expected: i32,
    },
}

/// The queue of owed responses.
#[derive(Debug, Default)]
pub(crate) struct Responses {
    queue: VecDeque<Owed>,
    broker_owed: usize,
    /// A broker response is being forwarded as its bytes arrive: nothing
    /// else may be sent to the client until it ends.
    streaming: bool,
}

impl Responses {
    /// Gives back the queue's memory when nothing is owed (an idle
    /// connection holds none; the next request allocates again).
    pub(crate) fn release_if_empty(&mut self) {
        if self.queue.is_empty() && self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
    }

    /// True when nothing is owed but the queue still holds memory.
    pub(crate) fn holds_spare_memory(&self) -> bool {
        self.queue.is_empty() && self.queue.capacity() > 0
    }

    /// Requests whose response has not been sent to the client yet.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is owed.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Responses still expected from the broker.
    #[cfg(test)]
    pub(crate) fn broker_owed(&self) -> usize {
        self.broker_owed
    }

    /// The broker will answer this request.
    pub(crate) fn expect(&mut self, expected: Expected) {
        self.broker_owed += 1;
        self.queue.push_back(Owed::Broker(expected));
    }

    /// The broker will answer this raw SASL token with a raw token.
    pub(crate) fn expect_raw(&mut self) {
        self.broker_owed += 1;
        self.queue.push_back(Owed::BrokerRaw);
    }

    /// Matches a raw SASL token from the broker to the oldest owed answer,
    /// which must be for a raw token.
    pub(crate) fn take_raw(&mut self) -> Result<(), Mismatch> {
        match self.queue.front() {
            Some(Owed::BrokerRaw) => {
                self.queue.pop_front();
                self.broker_owed -= 1;
                Ok(())
            }
            Some(Owed::Broker(e)) => Err(Mismatch::ExpectedKafka { expected: e.correlation_id }),
            Some(Owed::Local(_)) | None => Err(Mismatch::NothingOwed),
        }
    }

    /// The proxy answers this request with `frame` (size prefix included).
    /// Returns the frame when it can be sent now (nothing owed before it).
    #[must_use]
    pub(crate) fn answer(&mut self, frame: Bytes) -> Option<Bytes> {
        if self.queue.is_empty() && !self.streaming {
            Some(frame)
        } else {
            self.queue.push_back(Owed::Local(frame));
            None
        }
    }

    /// Matches a broker response carrying `correlation_id` to the oldest
    /// request the broker owes an answer for.
    pub(crate) fn take(&mut self, correlation_id: i32) -> Result<Expected, Mismatch> {
        match self.queue.front() {
            Some(Owed::Broker(e)) if e.correlation_id == correlation_id => {
                let e = *e;
                self.queue.pop_front();
                self.broker_owed -= 1;
                Ok(e)
            }
            Some(Owed::Broker(e)) => {
                Err(Mismatch::OutOfOrder { got: correlation_id, expected: e.correlation_id })
            }
            Some(Owed::BrokerRaw) => Err(Mismatch::ExpectedRaw),
            // Local answers never stay at the front: `release` sends them.
            Some(Owed::Local(_)) | None => Err(Mismatch::NothingOwed),
        }
    }

    /// Marks the start (`true`) or end of a broker response forwarded in
    /// pieces; answers wait while it lasts.
    pub(crate) fn set_streaming(&mut self, streaming: bool) {
        self.streaming = streaming;
    }

    /// True while a broker response is forwarded in pieces.
    pub(crate) fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// The newest request the broker will answer arrived completely at
    /// `now` (its first bytes were forwarded before its last ones came).
    pub(crate) fn restamp_newest(&mut self, now: Instant) {
        if let Some(Owed::Broker(e)) = self.queue.iter_mut().rev().find(|o| !matches!(o, Owed::Local(_))) {
            e.arrived = now;
        }
    }

    /// The oldest owed broker response, without taking it.
    pub(crate) fn peek(&self) -> Option<Expected> {
        match self.queue.front() {
            Some(Owed::Broker(e)) => Some(*e),
            _ => None,
        }
    }

    /// The proxy's own answers that are now at the front, in order.
    pub(crate) fn release(&mut self) -> impl Iterator<Item = Bytes> + '_ {
        let streaming = self.streaming;
        std::iter::from_fn(move || match self.queue.front() {
            _ if streaming => None,
            Some(Owed::Local(_)) => match self.queue.pop_front() {
                Some(Owed::Local(frame)) => Some(frame),
                _ => None,
            },
            Some(Owed::Broker(_) | Owed::BrokerRaw) | None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(id: i32) -> Expected {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let arrived = *T0.get_or_init(Instant::now);
        Expected { correlation_id: id, api_key: ApiKey::METADATA, version: 12, arrived, wait: Duration::ZERO }
    }

    #[test]
    fn local_answers_wait_for_earlier_broker_responses() {
        let mut r = Responses::default();
        assert_eq!(r.answer(Bytes::from_static(b"first")), Some(Bytes::from_static(b"first")));
        r.expect(expected(1));
        assert_eq!(r.answer(Bytes::from_static(b"second")), None, "held behind request 1");
        r.expect(expected(3));
        assert_eq!(r.broker_owed(), 2);
        assert_eq!(r.take(3), Err(Mismatch::OutOfOrder { got: 3, expected: 1 }));
        assert_eq!(r.take(1), Ok(expected(1)));
        assert_eq!(r.release().collect::<Vec<_>>(), vec![Bytes::from_static(b"second")]);
        assert_eq!(r.take(3), Ok(expected(3)));
        assert!(r.is_empty());
        assert_eq!(r.take(4), Err(Mismatch::NothingOwed));
    }
}
