//! ApiVersions v0–4: what clients may use through the proxy.
//!
//! The broker's ranges are intersected with what the proxy parses
//! ([`api::DECODED`]), APIs the proxy cannot make safe ([`api::HIDDEN`]) are
//! removed, and APIs the proxy serves itself can be pinned to its own range.
//! The body is always re-encoded canonically, the way Kafka writes it: the
//! known top-level tagged fields appear only when they differ from their
//! defaults (older librdkafka mis-parses default-valued ones), unknown tags are
//! kept byte for byte.
//!
//! KIP-511: a broker answering a request version it does not support sends
//! `UNSUPPORTED_VERSION` with a v0 body, whatever version was asked; such a
//! body is parsed and re-encoded as v0.

use bytes::{BufMut, Bytes, BytesMut};

use crate::api::{self, ApiKey, ErrorCode};
use crate::wire;

use super::RewriteError;
use super::endpoint::ArrayOut;
use super::reader::{Fault, Read, Reader};

const API: ApiKey = ApiKey::API_VERSIONS;

/// The first flexible ApiVersions version.
const FLEXIBLE_FROM: i16 = 3;

/// The highest ApiVersions version the proxy parses.
fn max_version() -> i16 {
    api::decoded(API).map_or(0, |d| d.max_version)
}

/// How the proxy shapes the ApiVersions response it forwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub struct ApiVersionsPolicy {
    /// APIs the proxy answers itself, with the exact `(min, max)` range it
    /// serves. They replace the broker's entry, or are inserted (in key order)
    /// when the broker does not list them and the reply is not an error. A
    /// pin wins over [`api::HIDDEN`] and the [`api::DECODED`] clamp; the first
    /// pin of a key wins.
    pub local: Vec<(ApiKey, i16, i16)>,
    /// APIs advertised only within `(min, max)` (intersected with the
    /// broker's range, dropped when nothing is left): the versions the
    /// proxy can answer itself when its policy refuses them.
    pub clamps: Vec<(ApiKey, i16, i16)>,
}

#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
impl ApiVersionsPolicy {
    /// The broker's ranges, clamped and filtered, with no local API.
    pub(crate) fn passthrough() -> Self {
        ApiVersionsPolicy::default()
    }

    /// A policy pinning the given local APIs (sorted by key, first pin of a key kept).
    pub(crate) fn with_local(local: impl IntoIterator<Item = (ApiKey, i16, i16)>) -> Self {
        let mut local: Vec<_> = local.into_iter().collect();
        local.sort_by_key(|&(key, _, _)| key);
        local.dedup_by_key(|&mut (key, _, _)| key);
        ApiVersionsPolicy { local, clamps: Vec::new() }
    }

    /// This policy, with `key` advertised only within `min..=max`.
    pub(crate) fn clamped(mut self, clamps: impl IntoIterator<Item = (ApiKey, i16, i16)>) -> Self {
        self.clamps.extend(clamps);
        self
    }

    /// The policy for a proxy that terminates SASL: SaslHandshake 0–1 and
    /// SaslAuthenticate 0–2, whatever the broker supports.
    pub fn terminating_sasl() -> Self {
        let max = |key| api::decoded(key).map_or(0, |d| d.max_version);
        ApiVersionsPolicy::with_local([
            (ApiKey::SASL_HANDSHAKE, 0, max(ApiKey::SASL_HANDSHAKE)),
            (ApiKey::SASL_AUTHENTICATE, 0, max(ApiKey::SASL_AUTHENTICATE)),
        ])
    }

    /// The pinned range of `key`, if any.
    fn pin(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.local.iter().find(|(k, _, _)| *k == key).map(|&(_, min, max)| (min, max))
    }

    /// `min..=max` narrowed by the clamp of `key`, if any.
    fn clamp(&self, key: ApiKey, min: i16, max: i16) -> (i16, i16) {
        match self.clamps.iter().find(|(k, _, _)| *k == key) {
            Some(&(_, lo, hi)) => (min.max(lo), max.min(hi)),
            None => (min, max),
        }
    }
}

/// The versions of one API a broker supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApiRange {
    /// The API.
    pub key: ApiKey,
    /// The lowest supported version.
    pub min: i16,
    /// The highest supported version.
    pub max: i16,
}

impl ApiRange {
    /// The highest version in both this range and `min..=max`, if they overlap.
    #[cfg(test)]
    pub(crate) fn highest_common(&self, min: i16, max: i16) -> Option<i16> {
        let top = self.max.min(max);
        (top >= self.min.max(min)).then_some(top)
    }
}

/// One `ApiKeys[]` entry with its encoded tagged fields (empty before v3).
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    range: ApiRange,
    tags: &'a [u8],
}

// Inlined into its loops: outlined (as codegen decided in one build) it cost
// ~7,700 more instructions per ApiVersions response (callgrind).
#[inline]
fn read_entry<'a>(r: &mut Reader<'a>, flexible: bool) -> Read<Entry<'a>> {
    let key = ApiKey(r.i16("api_key")?);
    let min = r.i16("min_version")?;
    let max = r.i16("max_version")?;
    let tags = r.raw_tagged_fields_if(flexible, "api key tagged fields")?;
    Ok(Entry { range: ApiRange { key, min, max }, tags })
}

/// A validated ApiVersions response body, read without allocating: the
/// broker's ranges, for the upstream SASL client to pick versions with.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub struct ApiVersionsView<'a> {
    body: &'a [u8],
    /// The version the body is encoded in (0 for a KIP-511 error reply).
    encoding: i16,
    error_code: i16,
    count: usize,
    /// The encoded entries of `ApiKeys[]`, without the count.
    entries: &'a [u8],
    throttle_time_ms: i32,
    /// Offsets of the top-level tagged-field buffer (empty before v3).
    tags_at: usize,
    tags_end: usize,
}

#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
impl<'a> ApiVersionsView<'a> {
    /// Parses a response body to a request of `version` (0–4).
    pub fn parse(version: i16, body: &'a [u8]) -> Result<Self, RewriteError> {
        if !(0..=max_version()).contains(&version) {
            return Err(RewriteError::UnsupportedVersion { api: API, version });
        }
        let error_code = Reader::new(body).i16("error_code").map_err(|f| f.into_error(API, version))?;
        if error_code == ErrorCode::UNSUPPORTED_VERSION.0 && version != 0 {
            // KIP-511: v0 whatever was asked. A broker that encoded its error
            // reply at the asked version instead is understood too: prefer
            // the reading that accounts for every byte, v0 first.
            let v0 = Self::parse_encoded(0, body);
            if v0.as_ref().is_ok_and(|v| v.is_exact()) {
                return v0.map_err(|f| f.into_error(API, 0));
            }
            return match (v0, Self::parse_encoded(version, body)) {
                (_, Ok(asked)) if asked.is_exact() => Ok(asked),
                (Ok(v0), _) => Ok(v0),
                (Err(_), Ok(asked)) => Ok(asked),
                (Err(fault), Err(_)) => Err(fault.into_error(API, 0)),
            };
        }
        Self::parse_encoded(version, body).map_err(|f| f.into_error(API, version))
    }

    /// True when the parse accounted for every byte of the body.
    fn is_exact(&self) -> bool {
        self.tags_end == self.body.len()
    }

    fn parse_encoded(encoding: i16, body: &'a [u8]) -> Read<Self> {
        let flexible = encoding >= FLEXIBLE_FROM;
        let mut r = Reader::new(body);
        let error_code = r.i16("error_code")?;
        let count = r.array_len(flexible, "api_keys")?;
        let entries_at = r.offset();
        for _ in 0..count {
            read_entry(&mut r, flexible)?;
        }
        let entries = r.since(entries_at);
        let throttle_time_ms = if encoding >= 1 { r.i32("throttle_time_ms")? } else { 0 };
        let tags_at = r.offset();
        r.skip_tagged_fields_if(flexible, "tagged fields")?;
        Ok(ApiVersionsView {
            body,
            encoding,
            error_code,
            count,
            entries,
            throttle_time_ms,
            tags_at,
            tags_end: r.offset(),
        })
    }

    /// True for a successful response encoded at the version asked (not a
    /// KIP-511 downgrade reply).
    pub(crate) fn is_success_at(&self, version: i16) -> bool {
        self.error_code == ErrorCode::NONE.0 && self.encoding == version
    }

    /// The response's error code.
    #[cfg(test)]
    pub(crate) fn error_code(&self) -> ErrorCode {
        ErrorCode(self.error_code)
    }

    /// The version the body is encoded in: the request's, or 0 for a KIP-511
    /// `UNSUPPORTED_VERSION` reply.
    #[cfg(test)]
    pub(crate) fn encoding_version(&self) -> i16 {
        self.encoding
    }

    /// Number of APIs listed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The listed ranges, in the broker's order.
    pub(crate) fn iter(&self) -> ApiRanges<'a> {
        ApiRanges { entries: self.entries() }
    }

    /// The range of `key`, if the broker lists it.
    pub(crate) fn get(&self, key: ApiKey) -> Option<ApiRange> {
        self.iter().find(|r| r.key == key)
    }

    fn entries(&self) -> Entries<'a> {
        Entries {
            r: Reader::new(self.entries),
            remaining: self.count,
            flexible: self.encoding >= FLEXIBLE_FROM,
        }
    }
}

/// Iterator over validated entries.
#[derive(Debug, Clone)]
struct Entries<'a> {
    r: Reader<'a>,
    remaining: usize,
    flexible: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        read_entry(&mut self.r, self.flexible).ok()
    }
}

/// Iterator over the ranges of an [`ApiVersionsView`].
#[derive(Debug, Clone)]
pub(crate) struct ApiRanges<'a> {
    entries: Entries<'a>,
}

impl Iterator for ApiRanges<'_> {
    type Item = ApiRange;

    fn next(&mut self) -> Option<ApiRange> {
        self.entries.next().map(|e| e.range)
    }
}

/// Rewrites an ApiVersions response body to a request of `version` (0–4):
/// clamps, hides and pins per `policy`, and re-encodes canonically (as v0 for
/// a KIP-511 `UNSUPPORTED_VERSION` reply).
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub fn rewrite_api_versions(
    version: i16,
    body: &[u8],
    policy: &ApiVersionsPolicy,
) -> Result<Bytes, RewriteError> {
    let view = ApiVersionsView::parse(version, body)?;
    encode(&view, view.encoding, policy)
}

/// The proxy's own answer to an ApiVersions request of `version`, from a
/// broker's successful response body to a request of `learned_version`
/// (kept by the [`crate::cluster::ClusterView`]): the same ranges, clamped
/// and pinned per `policy`, encoded at `version`.
pub(crate) fn answer_api_versions(
    learned_version: i16,
    learned: &[u8],
    version: i16,
    policy: &ApiVersionsPolicy,
) -> Result<Bytes, RewriteError> {
    let view = ApiVersionsView::parse(learned_version, learned)?;
    if !(0..=max_version()).contains(&version) || view.error_code != 0 {
        return Err(RewriteError::UnsupportedVersion { api: API, version });
    }
    encode(&view, version, policy)
}

/// Encodes `view` at `encoding` (tagged fields only when both the view and
/// the encoding are flexible).
fn encode(
    view: &ApiVersionsView<'_>,
    encoding: i16,
    policy: &ApiVersionsPolicy,
) -> Result<Bytes, RewriteError> {
    let flexible = encoding >= FLEXIBLE_FROM;
    let fault = |f: Fault| f.into_error(API, view.encoding);

    // Validate and canonicalise the tagged fields before building anything.
    let (tag_count, tags) = if flexible && view.encoding >= FLEXIBLE_FROM {
        canonical_tags(view).map_err(fault)?
    } else {
        (0, BytesMut::new())
    };

    let mut pins = policy.local.clone();
    pins.sort_by_key(|&(key, _, _)| key);
    pins.dedup_by_key(|&mut (key, _, _)| key);
    // Local APIs the broker does not list are added to a successful reply
    // only: an error reply keeps its (usually empty or minimal) list.
    pins.retain(|&(key, _, _)| view.error_code == 0 && view.get(key).is_none());
    let mut missing = pins.into_iter().peekable();

    let mut keys = ArrayOut::with_capacity(view.entries.len() + 8 * policy.local.len());
    let put = |keys: &mut ArrayOut, key: ApiKey, min: i16, max: i16, entry_tags: &[u8]| {
        keys.push(|out| {
            out.put_i16(key.0);
            out.put_i16(min);
            out.put_i16(max);
            if flexible {
                out.put_slice(if entry_tags.is_empty() { &[0] } else { entry_tags });
            }
        });
    };
    for Entry { range: ApiRange { key, min, max }, tags: entry_tags } in view.entries() {
        while let Some((k, lo, hi)) = missing.next_if(|&(k, _, _)| k < key) {
            put(&mut keys, k, lo, hi, &[]);
        }
        if let Some((lo, hi)) = policy.pin(key) {
            put(&mut keys, key, lo, hi, entry_tags);
        } else if api::HIDDEN.contains(&key) {
            continue;
        } else if key.name().is_some() {
            let max = api::decoded(key).map_or(max, |decoded| max.min(decoded.max_version));
            let (min, max) = policy.clamp(key, min, max);
            if min <= max {
                put(&mut keys, key, min, max, entry_tags);
            }
        }
        // An API key Kafka has not published (yet) is not offered: the
        // proxy refuses requests for it rather than forward bytes it cannot
        // vouch for.
    }
    for (k, lo, hi) in missing {
        put(&mut keys, k, lo, hi, &[]);
    }

    let mut out = BytesMut::with_capacity(2 + keys.encoded_len(flexible) + 4 + 5 + tags.len());
    out.put_i16(view.error_code);
    keys.put_into(&mut out, flexible);
    if encoding >= 1 {
        out.put_i32(view.throttle_time_ms);
    }
    if flexible {
        wire::put_uvarint(&mut out, tag_count);
        out.put_slice(&tags);
    }
    Ok(out.freeze())
}

/// Tags of the ApiVersions response body that Kafka writes only when not default.
const SUPPORTED_FEATURES: u32 = 0;
const FINALIZED_FEATURES_EPOCH: u32 = 1;
const FINALIZED_FEATURES: u32 = 2;
const ZK_MIGRATION_READY: u32 = 3;

/// The top-level tagged fields without the default-valued known ones: their
/// count and their encoding (without the count).
fn canonical_tags(view: &ApiVersionsView<'_>) -> Read<(u32, BytesMut)> {
    let mut r = Reader::new(view.body.get(..view.tags_end).unwrap_or_default());
    r.skip(view.tags_at, "tagged fields")?;
    let count = r.uvarint("tagged field count")?;
    let mut out = BytesMut::with_capacity(view.tags_end - view.tags_at);
    let mut kept = 0u32;
    for _ in 0..count {
        let field_at = r.offset();
        let tag = r.uvarint("tag")?;
        let size = r.uvarint("tagged field size")? as usize;
        let data_at = r.offset();
        r.skip(size, "tagged field data")?;
        let mut data = Reader::new(view.body.get(..data_at + size).unwrap_or_default());
        data.skip(data_at, "tagged field data")?;
        let default = match tag {
            SUPPORTED_FEATURES => skip_features(&mut data, "supported_features")?,
            FINALIZED_FEATURES => skip_features(&mut data, "finalized_features")?,
            FINALIZED_FEATURES_EPOCH => data.i64("finalized_features_epoch")? == -1,
            ZK_MIGRATION_READY => data.i8("zk_migration_ready")? == 0,
            _ => {
                data.skip(size, "tagged field data")?;
                false
            }
        };
        if !data.rest().is_empty() {
            return Err(data.fault("tagged field size"));
        }
        if !default {
            out.put_slice(r.since(field_at));
            kept += 1;
        }
    }
    Ok((kept, out))
}

/// Walks a `SupportedFeatures` / `FinalizedFeatures` array (entries: Name,
/// two INT16, tagged fields); returns true when it is empty (the default).
/// A null array is treated as empty.
fn skip_features(r: &mut Reader<'_>, what: &'static str) -> Read<bool> {
    let count = r.nullable_array_len(true, what)?.unwrap_or(0);
    for _ in 0..count {
        r.string(true, "feature name")?;
        r.skip(4, "feature versions")?;
        r.skip_tagged_fields_if(true, "feature tagged fields")?;
    }
    Ok(count == 0)
}

/// The body the proxy sends itself for an ApiVersions request newer than it
/// parses: `UNSUPPORTED_VERSION` with a v0 body listing only ApiVersions
/// 0..=max, which is what Kafka does (KIP-511), so the client retries lower.
pub(crate) fn unsupported_version_body() -> Bytes {
    let mut out = BytesMut::with_capacity(12);
    out.put_i16(ErrorCode::UNSUPPORTED_VERSION.0);
    out.put_i32(1);
    out.put_i16(API.0);
    out.put_i16(0);
    out.put_i16(max_version());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let p = ApiVersionsPolicy::with_local([(ApiKey(36), 0, 2), (ApiKey(17), 0, 1), (ApiKey(36), 1, 1)]);
        assert_eq!(p.local, vec![(ApiKey(17), 0, 1), (ApiKey(36), 0, 2)]);
        assert_eq!(ApiVersionsPolicy::terminating_sasl(), p);
        assert!(ApiVersionsPolicy::passthrough().local.is_empty());
    }

    #[test]
    fn clamps_narrow_the_brokers_range_or_drop_it() {
        // v0: ErrorCode 0, ApiKeys [{0, 0, 11}, {20, 0, 6}, {33, 0, 2}].
        let body = [0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 11, 0, 20, 0, 0, 0, 6, 0, 33, 0, 0, 0, 2];
        let policy = ApiVersionsPolicy::passthrough().clamped([
            (ApiKey(0), 3, 13),
            (ApiKey(20), 1, 6),
            (ApiKey(33), 5, 9),
        ]);
        let out = rewrite_api_versions(0, &body, &policy).expect("rewrite");
        let view = ApiVersionsView::parse(0, &out).expect("parse");
        let ranges: Vec<_> = view.iter().map(|r| (r.key.0, r.min, r.max)).collect();
        assert_eq!(ranges, vec![(0, 3, 11), (20, 1, 6)], "AlterConfigs 0-2 and 5-9 do not meet");
    }

    #[test]
    fn highest_common_version() {
        let r = ApiRange { key: ApiKey::SASL_AUTHENTICATE, min: 1, max: 3 };
        assert_eq!(r.highest_common(0, 2), Some(2));
        assert_eq!(r.highest_common(0, 0), None);
        assert_eq!(r.highest_common(3, 9), Some(3));
        assert_eq!(r.highest_common(4, 9), None);
    }

    #[test]
    fn pins_are_inserted_in_key_order() {
        // v0: ErrorCode 0, ApiKeys [{0, 0, 9}, {18, 0, 3}, {40, 0, 1}].
        let body = [0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 9, 0, 18, 0, 0, 0, 3, 0, 40, 0, 0, 0, 1];
        let out = rewrite_api_versions(0, &body, &ApiVersionsPolicy::terminating_sasl()).expect("rewrite");
        let view = ApiVersionsView::parse(0, &out).expect("parse");
        let ranges: Vec<_> = view.iter().map(|r| (r.key.0, r.min, r.max)).collect();
        assert_eq!(ranges, vec![(0, 0, 9), (17, 0, 1), (18, 0, 3), (36, 0, 2), (40, 0, 1)]);
    }
}
