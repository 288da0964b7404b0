//! Response rewriting: broker addresses out, proxy addresses in.
//!
//! A rewriter decodes only the prefix of a response body that holds broker
//! addresses, re-encodes that prefix with the addresses clients must use, and
//! keeps the rest of the body as a zero-copy [`Bytes`] slice. Responses whose
//! addresses need no change come back as [`Body::Unchanged`] and are forwarded
//! byte for byte.
//!
//! "Body" here means the response after its header (correlation id and, for
//! flexible versions, the header's tagged fields); the session owns headers.
//!
//! Entry points: [`needs_rewrite`] and [`rewrite_response`] for the address
//! carriers (Metadata, FindCoordinator, DescribeCluster, and KIP-951
//! `NodeEndpoints` in Produce/Fetch); [`rewrite_api_versions`] for the
//! ApiVersions intersection, [`ApiVersionsView`] to read a broker's ranges and
//! [`unsupported_version_body`] for the proxy's own KIP-511 reply.
//!
//! Every rewriter validates the whole body (walking, not decoding, what it
//! does not change) before it allocates, so a malformed or truncated body is
//! refused with [`RewriteError::Malformed`] and costs no allocation.

use std::borrow::Cow;

use bytes::Bytes;

use crate::api::{self, ApiKey};

pub(crate) mod api_versions;
mod describe_cluster;
mod endpoint;
pub(crate) mod fetch_stream;
mod find_coordinator;
mod metadata;
mod node_endpoints;
pub(crate) mod reader;
mod same_size_tail;
#[cfg(test)]
mod tests;

pub(crate) use api_versions::{
    ApiVersionsPolicy, ApiVersionsView, answer_api_versions, rewrite_api_versions, unsupported_version_body,
};
pub(crate) use fetch_stream::{FETCH_STREAM_VERSIONS, FetchStream};
pub(crate) use node_endpoints::{FETCH_NODE_ENDPOINTS_FROM, PRODUCE_NODE_ENDPOINTS_FROM};

/// Where clients must connect to reach an upstream broker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub struct Advertised<'a> {
    /// Host name or address clients connect to.
    pub host: Cow<'a, str>,
    /// Port clients connect to.
    pub port: i32,
}

/// Maps upstream broker addresses to the addresses the proxy advertises.
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub trait AddressMap {
    /// The address clients should use for broker `node_id`, which the cluster
    /// advertised as `host:port`. `None` means this broker cannot be exposed
    /// through the proxy (for example a node id beyond `max_broker_id`); the
    /// rewriter then leaves it out rather than leak its real address.
    fn advertised(&self, node_id: i32, host: &str, port: i32) -> Option<Advertised<'_>>;
}

/// A broker address seen in a response, as the cluster advertised it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub struct Broker {
    /// The broker's node id.
    pub node_id: i32,
    /// The host the cluster advertised.
    pub host: String,
    /// The port the cluster advertised.
    pub port: i32,
}

/// What a response told about the cluster's brokers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub enum Observed {
    /// Nothing (the response held no broker address).
    #[default]
    Nothing,
    /// Some brokers (FindCoordinator, KIP-951 `NodeEndpoints`): add, never remove.
    Some(Vec<Broker>),
    /// The complete, current broker list (Metadata, DescribeCluster).
    All(Vec<Broker>),
}

/// A response body after rewriting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub enum Body {
    /// Forward the original bytes untouched.
    Unchanged,
    /// Forward `front`, then `new`, then `back`: `front` and `back` are
    /// zero-copy slices of the original body, `new` the re-encoded part.
    /// Metadata keeps an empty `front` (brokers come first); KIP-951
    /// `NodeEndpoints` keep an empty `back` (tagged fields come last).
    Spliced {
        /// Untouched bytes before the re-encoded part.
        front: Bytes,
        /// The re-encoded part.
        new: Bytes,
        /// Untouched bytes after the re-encoded part.
        back: Bytes,
    },
}

#[cfg(any(test, fuzzing))]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
impl Body {
    /// Length of the rewritten body, given the original body's length.
    pub fn len(&self, original: usize) -> usize {
        match self {
            Body::Unchanged => original,
            Body::Spliced { front, new, back } => front.len() + new.len() + back.len(),
        }
    }
}

/// The result of rewriting one response body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub struct Rewrite {
    /// The bytes to forward.
    pub body: Body,
    /// The brokers the response named.
    pub observed: Observed,
}

impl Rewrite {
    /// A response with nothing to rewrite.
    pub(crate) const UNCHANGED: Rewrite = Rewrite { body: Body::Unchanged, observed: Observed::Nothing };
}

/// Why a response body could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteError {
    /// The version is newer than this proxy parses (ApiVersions should have
    /// prevented it from being used).
    UnsupportedVersion {
        /// The API of the response.
        api: ApiKey,
        /// Its version.
        version: i16,
    },
    /// The body does not decode as `api` at `version`.
    Malformed {
        /// The API of the response.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// Where in the body (after the response header) decoding failed.
        offset: usize,
        /// The field that could not be read.
        what: &'static str,
    },
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RewriteError::UnsupportedVersion { api, version } => {
                write!(f, "{api} v{version} is newer than this proxy can rewrite")
            }
            RewriteError::Malformed { api, version, offset, what } => {
                write!(f, "malformed {api} v{version} response at body offset {offset}: {what}")
            }
        }
    }
}

impl std::error::Error for RewriteError {}

/// True when a response of `api` at `version` may hold broker addresses and
/// must go through [`rewrite_response`]: Metadata, FindCoordinator and
/// DescribeCluster at every version, Produce from v10 and Fetch from v16
/// (KIP-951 `NodeEndpoints`), and the [`api::HIDDEN`] APIs (which
/// [`rewrite_response`] refuses, so their addresses are never forwarded).
/// Versions above what the proxy parses are included, so that they reach
/// [`rewrite_response`] and are refused there. ApiVersions is rewritten
/// separately, by [`rewrite_api_versions`].
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub fn needs_rewrite(api: ApiKey, version: i16) -> bool {
    match api {
        ApiKey::METADATA | ApiKey::FIND_COORDINATOR | ApiKey::DESCRIBE_CLUSTER => true,
        ApiKey::PRODUCE => version >= PRODUCE_NODE_ENDPOINTS_FROM,
        ApiKey::FETCH => version >= FETCH_NODE_ENDPOINTS_FROM,
        other => api::HIDDEN.contains(&other),
    }
}

/// Rewrites the broker addresses in a response body of `api` at `version`.
///
/// Returns [`RewriteError::UnsupportedVersion`] for a version outside what
/// [`api::DECODED`] says the proxy parses (and for the [`api::HIDDEN`] APIs),
/// [`RewriteError::Malformed`] for a body that does not decode. Responses
/// without addresses come back as [`Rewrite::UNCHANGED`]; for APIs for which
/// [`needs_rewrite`] is false that is all this returns.
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub fn rewrite_response(
    api: ApiKey,
    version: i16,
    body: &Bytes,
    map: &dyn AddressMap,
) -> Result<Rewrite, RewriteError> {
    if !needs_rewrite(api, version) {
        return Ok(Rewrite::UNCHANGED);
    }
    let parsed = api::decoded(api).is_some_and(|d| (0..=d.max_version).contains(&version));
    if !parsed {
        return Err(RewriteError::UnsupportedVersion { api, version });
    }
    match api {
        ApiKey::METADATA => metadata::rewrite(version, body, map),
        ApiKey::FIND_COORDINATOR => find_coordinator::rewrite(version, body, map),
        ApiKey::DESCRIBE_CLUSTER => describe_cluster::rewrite(version, body, map),
        ApiKey::PRODUCE => node_endpoints::rewrite(node_endpoints::Carrier::Produce, version, body, map),
        ApiKey::FETCH => node_endpoints::rewrite(node_endpoints::Carrier::Fetch, version, body, map),
        _ => Err(RewriteError::UnsupportedVersion { api, version }),
    }
}
