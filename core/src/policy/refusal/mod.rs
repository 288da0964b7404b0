//! What Kafka answers a principal that may not use an API: that API's own
//! response, with the authorization error in every entity the request named.
//!
//! A forbidden request never reaches the broker; the proxy parses it (only
//! as far as the entities it names: topics, partitions, groups, resources,
//! users) and writes the response a broker writes for an unauthorized
//! principal, at the request's version. The error codes are Kafka's choice
//! per API: `TOPIC_AUTHORIZATION_FAILED` for topics, `GROUP_AUTHORIZATION_FAILED`
//! for groups, `CLUSTER_AUTHORIZATION_FAILED` for cluster operations and
//! `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` for transactional producers.
//!
//! [`SPECS`] lists each API the proxy can answer this way with the versions
//! it answers (the ones the `kafka-protocol` oracle checks); a policy that
//! forbids one of them clamps it to those versions in ApiVersions, so every
//! version a client may use can be answered. Any other forbidden API is
//! refused by closing the connection.

mod admin;
mod data;
mod groups;
mod out;
mod security;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::api::{ApiKey, ErrorCode};
use crate::rewrite::reader::{Fault, Read, Reader};

use out::Out;

/// One API the proxy can refuse with its own response.
#[derive(Clone, Copy)]
pub(crate) struct Spec {
    /// The API.
    pub key: ApiKey,
    /// The lowest version answered.
    pub min: i16,
    /// The highest version answered.
    pub max: i16,
    /// The first flexible (KIP-482) version: request header v2, response
    /// header v1, compact encodings.
    pub flexible_from: i16,
    /// Reads the request body and writes the refusal.
    encode: fn(&mut Exchange<'_>) -> Read<Answer>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} v{}-{}", self.key, self.min, self.max)
    }
}

impl Spec {
    /// True when `version` uses flexible encodings (and tagged headers).
    pub(crate) fn flexible(&self, version: i16) -> bool {
        version >= self.flexible_from
    }
}

/// Every API refused with its own response, in key order.
pub(crate) const SPECS: &[Spec] = &[
    Spec { key: ApiKey::PRODUCE, min: 3, max: 13, flexible_from: 9, encode: data::produce },
    Spec { key: ApiKey::FETCH, min: 4, max: 18, flexible_from: 12, encode: data::fetch },
    Spec { key: ApiKey::OFFSET_COMMIT, min: 2, max: 9, flexible_from: 8, encode: groups::offset_commit },
    Spec { key: ApiKey::CREATE_TOPICS, min: 2, max: 7, flexible_from: 5, encode: admin::create_topics },
    Spec { key: ApiKey::DELETE_TOPICS, min: 1, max: 6, flexible_from: 4, encode: admin::delete_topics },
    Spec { key: ApiKey::DELETE_RECORDS, min: 0, max: 2, flexible_from: 2, encode: admin::delete_records },
    Spec { key: ApiKey::INIT_PRODUCER_ID, min: 0, max: 5, flexible_from: 2, encode: data::init_producer_id },
    Spec { key: ApiKey::CREATE_ACLS, min: 1, max: 3, flexible_from: 2, encode: security::create_acls },
    Spec { key: ApiKey::DELETE_ACLS, min: 1, max: 3, flexible_from: 2, encode: security::delete_acls },
    Spec { key: ApiKey::ALTER_CONFIGS, min: 0, max: 2, flexible_from: 2, encode: admin::alter_configs },
    Spec {
        key: ApiKey::CREATE_PARTITIONS,
        min: 0,
        max: 3,
        flexible_from: 2,
        encode: admin::create_partitions,
    },
    Spec { key: ApiKey::DELETE_GROUPS, min: 0, max: 2, flexible_from: 2, encode: groups::delete_groups },
    Spec {
        key: ApiKey::INCREMENTAL_ALTER_CONFIGS,
        min: 0,
        max: 1,
        flexible_from: 1,
        encode: admin::incremental_alter_configs,
    },
    Spec {
        key: ApiKey::ALTER_PARTITION_REASSIGNMENTS,
        min: 0,
        max: 1,
        flexible_from: 0,
        encode: admin::alter_partition_reassignments,
    },
    Spec {
        key: ApiKey::OFFSET_DELETE,
        min: 0,
        max: 0,
        flexible_from: i16::MAX,
        encode: groups::offset_delete,
    },
    Spec {
        key: ApiKey::ALTER_USER_SCRAM_CREDENTIALS,
        min: 0,
        max: 0,
        flexible_from: 0,
        encode: security::alter_user_scram_credentials,
    },
];

/// The refusal description of `key`, if the proxy can answer it.
pub(crate) fn spec(key: ApiKey) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.key == key)
}

/// The largest refusal the proxy builds. Kafka's own answers to a request
/// are a few bytes per entity it names, so this takes a request naming tens
/// of thousands of topics or partitions; a hostile one naming millions is
/// refused by closing the connection, never by allocating without bound.
pub const MAX_REFUSAL_BYTES: usize = 4 * 1024 * 1024;

/// The fault that stands for "the answer grew beyond [`MAX_REFUSAL_BYTES`]".
const TOO_LARGE: &str = "(answer beyond the size limit)";

/// What the proxy sends back for a forbidden request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This response body (everything after the response header).
    Respond(Bytes),
    /// No response: Produce with `acks=0`. Kafka closes such a connection
    /// when the request fails, so the producer notices.
    Silent,
}

/// What an encoder decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The response is written.
    Written,
    /// No response is due.
    Silent,
}

/// Why a forbidden request could not be answered with its own response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalError {
    /// The proxy has no response encoder for this API.
    NoAnswer(ApiKey),
    /// The version is outside what the proxy answers.
    Version {
        /// The API.
        api: ApiKey,
        /// The version asked.
        version: i16,
    },
    /// The answer would exceed [`MAX_REFUSAL_BYTES`] bytes (a request naming
    /// millions of entities): the proxy does not build it.
    TooLarge {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
    },
    /// The request does not decode as `api` at `version`.
    Malformed {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// Where in the request body (after the header) decoding failed.
        offset: usize,
        /// The field that could not be read.
        what: &'static str,
    },
}

impl std::fmt::Display for RefusalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefusalError::NoAnswer(api) => {
                write!(f, "the proxy has no authorization-error response for {api}")
            }
            RefusalError::Version { api, version } => {
                write!(f, "the proxy answers no authorization error for {api} v{version}")
            }
            RefusalError::TooLarge { api, version } => {
                write!(
                    f,
                    "the authorization-error response to this {api} v{version} would exceed {MAX_REFUSAL_BYTES} bytes"
                )
            }
            RefusalError::Malformed { api, version, offset, what } => {
                write!(f, "malformed {api} v{version} request at body offset {offset}: {what}")
            }
        }
    }
}

impl std::error::Error for RefusalError {}

/// The forbidden request of `key` at `version` (its body after the request
/// header), answered as Kafka answers an unauthorized principal.
pub(crate) fn refuse(key: ApiKey, version: i16, body: &[u8]) -> Result<Refusal, RefusalError> {
    let spec = spec(key).ok_or(RefusalError::NoAnswer(key))?;
    if !(spec.min..=spec.max).contains(&version) {
        return Err(RefusalError::Version { api: key, version });
    }
    let flexible = spec.flexible(version);
    // Produce bodies are mostly records: the answer is far smaller than the request.
    let capacity = (64 + body.len() / 4).min(64 * 1024);
    let mut exchange =
        Exchange { r: Reader::new(body), out: Out::with_capacity(flexible, capacity), version };
    let failed = |f: Fault| {
        if f.what == TOO_LARGE {
            RefusalError::TooLarge { api: key, version }
        } else {
            RefusalError::Malformed { api: key, version, offset: f.offset, what: f.what }
        }
    };
    match (spec.encode)(&mut exchange).map_err(failed)? {
        Answer::Written => Ok(Refusal::Respond(exchange.out.finish())),
        Answer::Silent => Ok(Refusal::Silent),
    }
}

/// A request being read and its refusal being written, at one version.
struct Exchange<'a> {
    /// The request body.
    r: Reader<'a>,
    /// The response body.
    out: Out,
    version: i16,
}

impl<'a> Exchange<'a> {
    fn flexible(&self) -> bool {
        self.out.flexible()
    }

    /// A request string (compact when flexible).
    fn string(&mut self, what: &'static str) -> Read<&'a [u8]> {
        let flexible = self.flexible();
        self.r.string(flexible, what)
    }

    /// A request nullable string (compact when flexible).
    fn nullable_string(&mut self, what: &'static str) -> Read<Option<&'a [u8]>> {
        let flexible = self.flexible();
        self.r.nullable_string(flexible, what)
    }

    /// A request array's element count (compact when flexible).
    fn array_len(&mut self, what: &'static str) -> Read<usize> {
        let flexible = self.flexible();
        self.r.array_len(flexible, what)
    }

    /// A request nullable array's element count.
    fn nullable_array_len(&mut self, what: &'static str) -> Read<Option<usize>> {
        let flexible = self.flexible();
        self.r.nullable_array_len(flexible, what)
    }

    /// A 16-byte topic id.
    fn uuid(&mut self, what: &'static str) -> Read<&'a [u8]> {
        let at = self.r.offset();
        self.r.skip(16, what)?;
        Ok(self.r.since(at))
    }

    /// Skips an `INT32` array (broker ids, replicas).
    fn skip_i32s(&mut self, what: &'static str) -> Read<()> {
        let flexible = self.flexible();
        self.r.skip_i32_array(flexible, what)
    }

    /// Skips a nullable `INT32` array.
    fn skip_nullable_i32s(&mut self, what: &'static str) -> Read<()> {
        if let Some(n) = self.nullable_array_len(what)? {
            self.r.skip(n.saturating_mul(4), what)?;
        }
        Ok(())
    }

    /// Skips the request's tagged fields (flexible versions).
    fn skip_tags(&mut self, what: &'static str) -> Read<()> {
        let flexible = self.flexible();
        self.r.skip_tagged_fields_if(flexible, what)
    }

    /// The common response shape: `throttle_time_ms` (0), one result per
    /// element of the request array `what` (written by `each`), then the
    /// response's tagged fields.
    fn results(&mut self, what: &'static str, each: impl FnMut(&mut Self) -> Read<()>) -> Read<Answer> {
        self.out.i32(0); // throttle_time_ms
        self.each(what, each)?;
        self.out.tags();
        Ok(Answer::Written)
    }

    /// A request array of topics `what` (by name, or by id when `by_id`),
    /// each with an array `partitions` whose elements `each` reads and
    /// answers: the response mirrors it (name or id, partition results,
    /// tagged fields).
    fn topics(
        &mut self,
        what: &'static str,
        by_id: bool,
        partitions: &'static str,
        mut each: impl FnMut(&mut Self) -> Read<()>,
    ) -> Read<()> {
        self.each(what, |x| {
            if by_id {
                let id = x.uuid("topic_id")?;
                x.out.raw(id);
            } else {
                let name = x.string("topic name")?;
                x.out.string(name);
            }
            x.each(partitions, &mut each)?;
            x.skip_tags("topic tagged fields")?;
            x.out.tags();
            Ok(())
        })
    }

    /// Copies a request array's count into the response and runs `each` for
    /// every element (the response has one entry per request entry).
    fn each(&mut self, what: &'static str, mut each: impl FnMut(&mut Self) -> Read<()>) -> Read<()> {
        let n = self.array_len(what)?;
        self.out.array_len(n);
        for _ in 0..n {
            each(self)?;
            if self.out.len() > MAX_REFUSAL_BYTES {
                return Err(self.r.fault(TOO_LARGE));
            }
        }
        Ok(())
    }
}

/// Kafka's own text for each authorization error (`Errors.*.message()`),
/// sent where a response has an error message.
fn message(error: ErrorCode) -> &'static [u8] {
    match error {
        ErrorCode::TOPIC_AUTHORIZATION_FAILED => b"Topic authorization failed.",
        ErrorCode::GROUP_AUTHORIZATION_FAILED => b"Group authorization failed.",
        ErrorCode::CLUSTER_AUTHORIZATION_FAILED => b"Cluster authorization failed.",
        ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED => b"Transactional Id authorization failed.",
        _ => b"This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details.",
    }
}
