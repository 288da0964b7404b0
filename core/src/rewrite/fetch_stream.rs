//! Fetch v16–18 responses streamed through instead of buffered.
//!
//! A Fetch response is mostly record data, often megabytes, and its KIP-951
//! `NodeEndpoints` (top-level tag 0) come after all of it. Rather than hold the
//! whole frame to rewrite that field, [`FetchStream`] walks the body as it
//! arrives and tells how much of it can be forwarded at once; it stops at the
//! top-level tagged-field section (the "tail"), the only part held back.
//! [`rewrite_tail_same_size`] then rewrites the tail to exactly its original
//! length, so the frame size the client already received stays right.
//!
//! Sans-IO and allocation-free per chunk: the walker is a state machine over a
//! few counters. Before the tail it never needs more than a partial varint (at
//! most 4 bytes) held back; the tail itself is bounded by [`MAX_TAIL_LEN`].

use std::ops::RangeInclusive;

use bytes::{BufMut, BytesMut};

use crate::api::ApiKey;
use crate::wire;

use super::endpoint::{ArrayOut, Endpoint, advertise};
use super::node_endpoints::FETCH_NODE_ENDPOINTS_FROM;
use super::reader::{Fault, Read};
use super::{AddressMap, Body, Observed, Rewrite, RewriteError};

/// The Fetch versions whose layout [`FetchStream`] knows.
pub const FETCH_STREAM_VERSIONS: RangeInclusive<i16> = FETCH_NODE_ENDPOINTS_FROM..=18;

/// The longest top-level tagged-field section the walker accepts, since the
/// session holds it whole. `NodeEndpoints` for a thousand brokers with long
/// host and rack names fit in a fraction of it.
pub const MAX_TAIL_LEN: usize = 1 << 20;

const API: ApiKey = ApiKey::FETCH;

/// The tag of `NodeEndpoints` in Produce and Fetch responses.
const NODE_ENDPOINTS_TAG: u32 = 0;

/// Bytes of `PartitionIndex`, `ErrorCode`, `HighWatermark`, `LastStableOffset`, `LogStartOffset`.
const PARTITION_HEADER_LEN: usize = 4 + 2 + 8 + 8 + 8;

/// Which nested tagged-field section is being walked (what follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Aborted,
    Partition,
    Topic,
}

impl Section {
    fn what(self) -> &'static str {
        match self {
            Section::Aborted => "aborted transaction tagged fields",
            Section::Partition => "partition tagged fields",
            Section::Topic => "topic tagged fields",
        }
    }
}

/// What the walker reads next (after any opaque bytes it still has to pass).
/// The `*Start` states read nothing: they pick the next element of an array,
/// or leave it when none is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    TopicCount,
    TopicStart,
    PartitionCount,
    PartitionStart,
    AbortedCount,
    AbortedStart,
    RecordsLen,
    TagCount(Section),
    TagStart(Section),
    TagKey(Section),
    TagSize(Section),
    /// The top-level tagged fields: nothing more is forwarded.
    Tail,
}

/// The outcome of one step of the walk.
enum Step {
    /// This many bytes were consumed (0 for a state change alone).
    Took(usize),
    /// The next item is not complete yet.
    Wait,
    /// The tail is reached.
    Tail,
}

/// An incremental walker over a Fetch v16–18 response body (after the response
/// header) that forwards everything before the top-level tagged fields as soon
/// as it arrives.
///
/// Drive it with every body byte not consumed yet: [`advance`](Self::advance)
/// says how many of them, from the front, can be forwarded now. Once
/// [`at_tail`](Self::at_tail), wait for [`tail_len`](Self::tail_len) bytes and
/// hand them to [`rewrite_tail`](Self::rewrite_tail).
///
/// The walker knows the body's length (from the frame size), so it refuses a
/// count, length or size that overruns the body before forwarding a byte of
/// it, and never reads past the body into the next frame. It accepts exactly
/// the bodies the whole-buffer rewriter accepts.
#[derive(Debug, Clone)]
pub struct FetchStream {
    version: i16,
    body_len: usize,
    /// Body bytes consumed (forwardable) so far.
    offset: usize,
    /// Opaque bytes (fixed-size fields, records, tagged-field data) still to
    /// pass before `next` is read.
    skip: usize,
    next: Next,
    topics_left: usize,
    partitions_left: usize,
    aborted_left: usize,
    tags_left: usize,
    last_tag: Option<u32>,
    /// Set once the body was found malformed; every later call repeats it.
    failed: Option<Fault>,
}

impl FetchStream {
    /// A walker for a Fetch response body of `body_len` bytes at `version`.
    ///
    /// Refuses versions outside [`FETCH_STREAM_VERSIONS`] with
    /// [`RewriteError::UnsupportedVersion`]: the session buffers those as before.
    pub fn new(version: i16, body_len: usize) -> Result<Self, RewriteError> {
        if !FETCH_STREAM_VERSIONS.contains(&version) {
            return Err(RewriteError::UnsupportedVersion { api: API, version });
        }
        // ThrottleTimeMs, ErrorCode, SessionId, then the topics.
        let mut stream = FetchStream {
            version,
            body_len,
            offset: 0,
            skip: 0,
            next: Next::TopicCount,
            topics_left: 0,
            partitions_left: 0,
            aborted_left: 0,
            tags_left: 0,
            last_tag: None,
            failed: None,
        };
        if let Err(fault) =
            stream.pass(4 + 2 + 4, "throttle_time_ms, error_code, session_id", Next::TopicCount)
        {
            return Err(fault.into_error(API, version));
        }
        Ok(stream)
    }

    /// The version being walked.
    pub fn version(&self) -> i16 {
        self.version
    }

    /// Body bytes consumed so far: the offset of the next byte to forward, and
    /// once [`at_tail`](Self::at_tail) the offset of the tail.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// True once everything before the top-level tagged fields is consumed.
    pub fn at_tail(&self) -> bool {
        self.next == Next::Tail && self.failed.is_none()
    }

    /// The length of the top-level tagged-field section, once reached.
    pub fn tail_len(&self) -> Option<usize> {
        self.at_tail().then(|| self.remaining())
    }

    /// Body bytes not consumed yet.
    pub fn remaining(&self) -> usize {
        self.body_len.saturating_sub(self.offset)
    }

    /// Walks `available`, the body bytes not consumed yet (starting where the
    /// last call stopped), and returns how many of them, from the front, can
    /// be forwarded now; they are consumed. Bytes after the body are never
    /// looked at. Returns 0 when the next item is incomplete (call again with
    /// more bytes) or the tail is reached (see [`at_tail`](Self::at_tail)).
    ///
    /// Work is linear in the bytes consumed; an error is final.
    pub fn advance(&mut self, available: &[u8]) -> Result<usize, RewriteError> {
        if let Some(fault) = self.failed {
            return Err(fault.into_error(API, self.version));
        }
        let input = available.get(..self.remaining()).unwrap_or(available);
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            if self.skip > 0 {
                let n = self.skip.min(rest.len());
                if n == 0 {
                    break;
                }
                self.skip -= n;
                self.offset += n;
                used += n;
                continue;
            }
            match self.step(rest) {
                Ok(Step::Took(n)) => {
                    self.offset += n;
                    used += n;
                }
                Ok(Step::Wait | Step::Tail) => break,
                Err(fault) => {
                    self.failed = Some(fault);
                    return Err(fault.into_error(API, self.version));
                }
            }
        }
        Ok(used)
    }

    /// Rewrites the tail once it is complete: `available` starts at the tail
    /// (the bytes [`advance`](Self::advance) left unconsumed). Returns `None`
    /// until the walker is [at the tail](Self::at_tail) and `available` holds
    /// [`tail_len`](Self::tail_len) bytes; bytes beyond those are ignored.
    /// The rewritten tail has exactly the original length.
    pub fn rewrite_tail(
        &self,
        available: &[u8],
        map: &dyn AddressMap,
    ) -> Result<Option<Rewrite>, RewriteError> {
        let Some(len) = self.tail_len() else { return Ok(None) };
        let Some(tail) = available.get(..len) else { return Ok(None) };
        rewrite_tail_same_size(API, self.version, self.offset, tail, map).map(Some)
    }

    /// Opaque bytes to pass, then `then`; refused if the body is shorter.
    fn pass(&mut self, n: usize, what: &'static str, then: Next) -> Read<()> {
        if n > self.remaining() {
            return Err(self.fault(what));
        }
        self.skip = n;
        self.next = then;
        Ok(())
    }

    fn fault(&self, what: &'static str) -> Fault {
        Fault { offset: self.offset, what }
    }

    /// An unsigned varint at the front of `rest`: its value and length, or
    /// `None` when it is cut short by the end of what arrived (not of the body).
    fn uvarint(&self, rest: &[u8], what: &'static str) -> Read<Option<(u32, usize)>> {
        match wire::uvarint(rest) {
            Ok((after, value)) => Ok(Some((value, rest.len() - after.len()))),
            Err(_) => {
                let partial = rest.len() < 5 && rest.iter().all(|b| b & 0x80 != 0);
                if partial && rest.len() < self.remaining() { Ok(None) } else { Err(self.fault(what)) }
            }
        }
    }

    /// A compact (nullable) array count: `None` for null; refused when the
    /// elements (one byte each at least) cannot fit in what is left of the body.
    fn count(&self, rest: &[u8], nullable: bool, what: &'static str) -> Read<Option<(Option<usize>, usize)>> {
        let Some((raw, len)) = self.uvarint(rest, what)? else { return Ok(None) };
        let count = match raw.checked_sub(1) {
            None if nullable => None,
            None => return Err(self.fault(what)),
            Some(n) if n as usize > self.remaining() - len => return Err(self.fault(what)),
            Some(n) => Some(n as usize),
        };
        Ok(Some((count, len)))
    }

    /// One step: read the next item from `rest`, or change state.
    fn step(&mut self, rest: &[u8]) -> Read<Step> {
        match self.next {
            Next::TopicCount => {
                let Some((n, len)) = self.count(rest, false, "responses")? else { return Ok(Step::Wait) };
                self.topics_left = n.unwrap_or(0);
                self.next = Next::TopicStart;
                Ok(Step::Took(len))
            }
            Next::TopicStart => {
                if self.topics_left == 0 {
                    self.enter_tail()?;
                    return Ok(Step::Tail);
                }
                self.topics_left -= 1;
                self.pass(16, "topic_id", Next::PartitionCount)?;
                Ok(Step::Took(0))
            }
            Next::PartitionCount => {
                let Some((n, len)) = self.count(rest, false, "partitions")? else { return Ok(Step::Wait) };
                self.partitions_left = n.unwrap_or(0);
                self.next = Next::PartitionStart;
                Ok(Step::Took(len))
            }
            Next::PartitionStart => {
                if self.partitions_left == 0 {
                    self.next = Next::TagCount(Section::Topic);
                    return Ok(Step::Took(0));
                }
                self.partitions_left -= 1;
                self.pass(PARTITION_HEADER_LEN, "partition header", Next::AbortedCount)?;
                Ok(Step::Took(0))
            }
            Next::AbortedCount => {
                let Some((n, len)) = self.count(rest, true, "aborted_transactions")? else {
                    return Ok(Step::Wait);
                };
                self.aborted_left = n.unwrap_or(0);
                self.next = Next::AbortedStart;
                Ok(Step::Took(len))
            }
            Next::AbortedStart => {
                if self.aborted_left == 0 {
                    self.pass(4, "preferred_read_replica", Next::RecordsLen)?;
                } else {
                    self.aborted_left -= 1;
                    // ProducerId, FirstOffset.
                    self.pass(16, "aborted transaction", Next::TagCount(Section::Aborted))?;
                }
                Ok(Step::Took(0))
            }
            Next::RecordsLen => {
                let Some((raw, len)) = self.uvarint(rest, "records")? else { return Ok(Step::Wait) };
                let size = raw.saturating_sub(1) as usize;
                if size > self.remaining() - len {
                    return Err(self.fault("records"));
                }
                self.skip = size;
                self.next = Next::TagCount(Section::Partition);
                Ok(Step::Took(len))
            }
            Next::TagCount(section) => {
                let Some((count, len)) = self.uvarint(rest, section.what())? else { return Ok(Step::Wait) };
                if count as usize > self.remaining() - len {
                    return Err(self.fault(section.what()));
                }
                self.tags_left = count as usize;
                self.last_tag = None;
                self.next = Next::TagStart(section);
                Ok(Step::Took(len))
            }
            Next::TagStart(section) => {
                self.next = if self.tags_left > 0 {
                    self.tags_left -= 1;
                    Next::TagKey(section)
                } else {
                    match section {
                        Section::Aborted => Next::AbortedStart,
                        Section::Partition => Next::PartitionStart,
                        Section::Topic => Next::TopicStart,
                    }
                };
                Ok(Step::Took(0))
            }
            Next::TagKey(section) => {
                let Some((tag, len)) = self.uvarint(rest, section.what())? else { return Ok(Step::Wait) };
                // Kafka writes tags in ascending order; the whole-buffer parser refuses others.
                if self.last_tag.is_some_and(|last| tag <= last) {
                    return Err(self.fault(section.what()));
                }
                self.last_tag = Some(tag);
                self.next = Next::TagSize(section);
                Ok(Step::Took(len))
            }
            Next::TagSize(section) => {
                let Some((size, len)) = self.uvarint(rest, section.what())? else { return Ok(Step::Wait) };
                if size as usize > self.remaining() - len {
                    return Err(self.fault(section.what()));
                }
                self.skip = size as usize;
                self.next = Next::TagStart(section);
                Ok(Step::Took(len))
            }
            Next::Tail => Ok(Step::Tail),
        }
    }

    /// Stops at the top-level tagged fields, whose length is now known.
    fn enter_tail(&mut self) -> Read<()> {
        let len = self.remaining();
        if len == 0 || len > MAX_TAIL_LEN {
            return Err(self.fault("tagged fields"));
        }
        self.next = Next::Tail;
        Ok(())
    }
}

/// Rewrites a complete top-level tagged-field section (count, then fields) of
/// a Produce (v10+) or Fetch (v16+) response body to one of exactly the same
/// length. `tail_at` is the section's offset in the body, for error offsets.
///
/// Without `NodeEndpoints` (tag 0), or with an empty one, the section comes
/// back as [`Body::Unchanged`]. Otherwise it comes back as
/// [`Body::Spliced`] with empty `front` and `back` and the new section in
/// `new`, and [`Observed::Some`] with every endpoint as the cluster advertised
/// it:
///
/// * the endpoints are rewritten with `map`, refused ones left out; every
///   other field is kept byte for byte;
/// * a shorter section is padded with one unknown tagged field whose tag is
///   greater than every tag present, with zeroed data (clients skip unknown
///   tags by their size);
/// * one byte short (a field needs two), or when the pad cannot fit, varints
///   of the section are written in a longer, non-minimal form (which every
///   decoder reads: each byte adds its 7 bits);
/// * if the rewritten endpoints do not fit (longer hosts), `NodeEndpoints` is
///   dropped, so no broker address leaks, and the section padded; clients
///   then learn the leader from a Metadata refresh. So is an endpoint list
///   that is empty once refused endpoints are left out (Kafka omits an empty one).
pub fn rewrite_tail_same_size(
    api: ApiKey,
    version: i16,
    tail_at: usize,
    tail: &[u8],
    map: &dyn AddressMap,
) -> Result<Rewrite, RewriteError> {
    let malformed =
        |offset: usize, what| RewriteError::Malformed { api, version, offset: tail_at + offset, what };
    let parsed = wire::tagged_fields(tail).map_err(|_| malformed(0, "tagged fields"))?;
    let (after, fields) = parsed;
    if !after.is_empty() {
        return Err(malformed(tail.len() - after.len(), "bytes after the tagged fields"));
    }
    // Tags ascend, so tag 0 can only be the first, and the last is the largest.
    let Some(first) = fields.iter().next() else { return Ok(Rewrite::UNCHANGED) };
    if first.tag != NODE_ENDPOINTS_TAG {
        return Ok(Rewrite::UNCHANGED);
    }
    let max_tag = fields.iter().last().map_or(NODE_ENDPOINTS_TAG, |f| f.tag);
    let parts = TailParts::split(tail).ok_or_else(|| malformed(0, "tagged fields"))?;
    let data = first.data;

    let listed = read_endpoints(data, drop).map_err(|f| malformed(parts.data_at + f.offset, f.what))?;
    if listed == 0 {
        return Ok(Rewrite::UNCHANGED);
    }
    let mut seen = Vec::with_capacity(listed);
    let mut kept = ArrayOut::with_capacity(data.len() + 32 * listed);
    read_endpoints(data, |endpoint| {
        seen.push(endpoint.observed());
        if let Some(to) = advertise(map, api, endpoint.node_id, endpoint.host, endpoint.port) {
            kept.push(|out| endpoint.put_advertised(out, true, &to));
        }
    })
    .map_err(|f| malformed(parts.data_at + f.offset, f.what))?;

    let others_count = fields.len().saturating_sub(1);
    let endpoints_len = (kept.count() > 0).then(|| kept.encoded_len(true));
    let shape = Shape { others_count, others_len: parts.others.len(), pad_tag: max_tag.checked_add(1) };
    let layout = shape
        .plan(tail.len(), endpoints_len)
        .ok_or_else(|| malformed(0, "tagged fields that cannot be rewritten to their original size"))?;
    let new = layout.write(&kept, parts.others);
    if new.len() != tail.len() {
        return Err(malformed(0, "tagged fields that cannot be rewritten to their original size"));
    }
    if layout.endpoints.is_none() && kept.count() > 0 {
        tracing::debug!(
            %api,
            "rewritten NodeEndpoints longer than the broker's; left out (clients refresh Metadata instead)"
        );
    }
    Ok(Rewrite {
        body: Body::Spliced { front: bytes::Bytes::new(), new: new.freeze(), back: bytes::Bytes::new() },
        observed: Observed::Some(seen),
    })
}

/// Reads the `NodeEndpoints` array that must fill `data` exactly, handing
/// each endpoint to `each`; returns how many there were.
fn read_endpoints<'a>(data: &'a [u8], each: impl FnMut(Endpoint<'a>)) -> Read<usize> {
    super::node_endpoints::read_endpoints(data, 0, data.len(), each)
}

/// A validated tagged-field section whose first field is tag 0, cut up.
struct TailParts<'a> {
    /// Offset of tag 0's data in the section.
    data_at: usize,
    /// The fields after tag 0, encoded as they came.
    others: &'a [u8],
}

impl<'a> TailParts<'a> {
    fn split(tail: &'a [u8]) -> Option<Self> {
        let (rest, _count) = wire::uvarint(tail).ok()?;
        let (rest, _tag) = wire::uvarint(rest).ok()?;
        let (rest, size) = wire::uvarint(rest).ok()?;
        let data_at = tail.len() - rest.len();
        let others = rest.get(size as usize..)?;
        Some(TailParts { data_at, others })
    }
}

/// What the rewritten section is made of, apart from `NodeEndpoints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// Fields other than tag 0.
    others_count: usize,
    /// Their encoded length.
    others_len: usize,
    /// The pad field's tag (above every tag present), if there is one.
    pad_tag: Option<u32>,
}

/// An unsigned varint and the width it is written in (at least its minimal one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Varint {
    value: u32,
    width: usize,
}

impl Varint {
    fn minimal(value: u32) -> Self {
        Varint { value, width: wire::uvarint_len(value) }
    }

    /// Widens by up to `extra` bytes (5 at most in all); returns what is left.
    fn widen(&mut self, extra: usize) -> usize {
        let add = extra.min(5 - self.width);
        self.width += add;
        extra - add
    }
}

/// How the rewritten section is written: every varint with its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    count: Varint,
    /// Tag 0's tag and size varints, when `NodeEndpoints` is kept.
    endpoints: Option<(Varint, Varint)>,
    /// The pad field: tag, size, and that many zero bytes.
    pad: Option<(Varint, Varint)>,
}

impl Shape {
    /// A layout of exactly `target` bytes, keeping `NodeEndpoints` (encoded in
    /// `endpoints_len` bytes) when given and it fits. In order of preference:
    /// exact fit, pad field, non-minimal varints; then the same without
    /// `NodeEndpoints`.
    fn plan(&self, target: usize, endpoints_len: Option<usize>) -> Option<Layout> {
        let others = u32::try_from(self.others_count).ok()?;
        if let Some(len) = endpoints_len {
            let size = u32::try_from(len).ok()?;
            let fixed = self.others_len + len;
            let tag_and_size = (Varint::minimal(NODE_ENDPOINTS_TAG), Varint::minimal(size));
            let exact =
                Layout { count: Varint::minimal(others + 1), endpoints: Some(tag_and_size), pad: None };
            let kept = [
                (exact.len(fixed) == target).then_some(exact),
                self.padded(target, fixed, others + 2, Some(tag_and_size)),
                widened(target, fixed, exact),
            ];
            if let Some(layout) = kept.into_iter().flatten().next() {
                return Some(layout);
            }
        }
        let bare = Layout { count: Varint::minimal(others), endpoints: None, pad: None };
        self.padded(target, self.others_len, others + 1, None)
            .or_else(|| widened(target, self.others_len, bare))
    }

    /// A layout with a pad field making up `target` exactly, if there is room.
    fn padded(
        &self,
        target: usize,
        fixed: usize,
        count: u32,
        endpoints: Option<(Varint, Varint)>,
    ) -> Option<Layout> {
        let tag = Varint::minimal(self.pad_tag?);
        let empty_pad =
            Layout { count: Varint::minimal(count), endpoints, pad: Some((tag, Varint::minimal(0))) };
        // Room for the pad's size varint and data together.
        let room = target.checked_sub(empty_pad.len(fixed))? + 1;
        // The size varint is as wide as the largest size that could fit; the
        // data takes the rest (its size may then be written non-minimally).
        let width = wire::uvarint_len(u32::try_from(room - 1).ok()?);
        let size = u32::try_from(room - width).ok()?;
        Some(Layout { pad: Some((tag, Varint { value: size, width })), ..empty_pad })
    }
}

/// `layout` with varints widened to make up `target`, if they can.
fn widened(target: usize, fixed: usize, mut layout: Layout) -> Option<Layout> {
    let mut extra = target.checked_sub(layout.len(fixed))?;
    if let Some((tag, size)) = &mut layout.endpoints {
        extra = size.widen(extra);
        extra = tag.widen(extra);
    }
    extra = layout.count.widen(extra);
    (extra == 0).then_some(layout)
}

impl Layout {
    /// Encoded length, given the length of the fixed parts (endpoint array, other fields).
    fn len(&self, fixed: usize) -> usize {
        let pair = |p: Option<(Varint, Varint)>| p.map_or(0, |(a, b)| a.width + b.width);
        let pad_data = self.pad.map_or(0, |(_, size)| size.value as usize);
        self.count.width + pair(self.endpoints) + pair(self.pad) + pad_data + fixed
    }

    fn write(&self, endpoints: &ArrayOut, others: &[u8]) -> BytesMut {
        let endpoints_len = self.endpoints.map_or(0, |_| endpoints.encoded_len(true));
        let mut out = BytesMut::with_capacity(self.len(others.len() + endpoints_len));
        put_uvarint_wide(&mut out, self.count);
        if let Some((tag, size)) = self.endpoints {
            put_uvarint_wide(&mut out, tag);
            put_uvarint_wide(&mut out, size);
            endpoints.put_into(&mut out, true);
        }
        out.put_slice(others);
        if let Some((tag, size)) = self.pad {
            put_uvarint_wide(&mut out, tag);
            put_uvarint_wide(&mut out, size);
            out.put_bytes(0, size.value as usize);
        }
        out
    }
}

/// Writes an `UNSIGNED_VARINT` in exactly `v.width` bytes (1–5), padding the
/// minimal encoding with continuation bytes that add zero bits. Kafka's Java
/// `ByteUtils.readUnsignedVarint`, librdkafka's `rd_slice_read_uvarint`,
/// kafka-python's `VarInt32.decode` and [`wire::uvarint`] all read this form.
fn put_uvarint_wide(buf: &mut BytesMut, v: Varint) {
    let width = v.width.clamp(wire::uvarint_len(v.value), 5);
    let mut value = v.value;
    for _ in 1..width {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    use crate::rewrite::Advertised;

    #[test]
    fn walks_only_the_versions_it_knows() {
        assert!(FetchStream::new(15, 100).is_err());
        assert!(FetchStream::new(19, 100).is_err());
        assert_eq!(
            crate::api::decoded(API).map(|d| d.max_version),
            Some(*FETCH_STREAM_VERSIONS.end()),
            "a new Fetch version needs its layout checked here"
        );
        assert!(matches!(
            FetchStream::new(16, 9),
            Err(RewriteError::Malformed { offset: 0, what: "throttle_time_ms, error_code, session_id", .. })
        ));
    }

    #[test]
    fn wide_varints_read_back() {
        for value in [0u32, 1, 127, 128, 16_383, 16_384, 1 << 21, u32::MAX] {
            for width in wire::uvarint_len(value)..=5 {
                let mut buf = BytesMut::new();
                put_uvarint_wide(&mut buf, Varint { value, width });
                assert_eq!(buf.len(), width, "{value} in {width}");
                assert_eq!(wire::uvarint(&buf).map(|(r, v)| (r.len(), v)), Ok((0, value)));
            }
        }
    }

    /// The lengths a configuration (endpoints kept or not, pad or not) can
    /// take: every varint may widen to 5 bytes, and a pad's data is unbounded.
    fn reachable(shape: &Shape, endpoints: Option<usize>, pad: bool) -> Option<(usize, Option<usize>)> {
        let pad_tag = if pad { Some(shape.pad_tag?) } else { None };
        let count = (shape.others_count + usize::from(endpoints.is_some()) + usize::from(pad)) as u32;
        let mut varints = vec![count];
        if let Some(e) = endpoints {
            varints.extend([0, e as u32]);
        }
        varints.extend(pad_tag.into_iter().chain(pad.then_some(0)));
        let min: usize = varints.iter().map(|&v| wire::uvarint_len(v)).sum::<usize>()
            + shape.others_len
            + endpoints.unwrap_or(0);
        let slack: usize = varints.iter().map(|&v| 5 - wire::uvarint_len(v)).sum();
        Some((min, (!pad).then_some(min + slack)))
    }

    #[test]
    fn a_layout_is_found_whenever_one_exists() {
        let shapes = [
            Shape { others_count: 0, others_len: 0, pad_tag: Some(1) },
            Shape { others_count: 2, others_len: 9, pad_tag: Some(200) },
            Shape { others_count: 1, others_len: 3, pad_tag: Some(1 << 28) },
            Shape { others_count: 130, others_len: 300, pad_tag: Some(1 << 14) },
            Shape { others_count: 0, others_len: 0, pad_tag: None },
        ];
        for shape in shapes {
            for endpoints in [None, Some(1), Some(20), Some(130)] {
                let configs: Vec<_> = [(endpoints, false), (endpoints, true), (None, false), (None, true)]
                    .into_iter()
                    .filter_map(|(e, pad)| reachable(&shape, e, pad).map(|r| (e.is_some(), r)))
                    .collect();
                let fits =
                    |t: usize, (min, max): (usize, Option<usize>)| t >= min && max.is_none_or(|m| t <= m);
                for target in 0..700 {
                    let keepable = configs.iter().any(|&(keep, r)| keep && fits(target, r));
                    let possible = configs.iter().any(|&(_, r)| fits(target, r));
                    let layout = shape.plan(target, endpoints);
                    assert_eq!(layout.is_some(), possible, "{shape:?} {endpoints:?} {target}");
                    if let Some(layout) = layout {
                        assert_eq!(layout.endpoints.is_some(), keepable, "{shape:?} {endpoints:?} {target}");
                        let fixed = shape.others_len + layout.endpoints.map_or(0, |_| endpoints.unwrap_or(0));
                        assert_eq!(layout.len(fixed), target, "{shape:?} {endpoints:?} {target}");
                        let out = layout.write(&ArrayOut::with_capacity(0), &[]);
                        let written = out.len() + fixed - layout.endpoints.map_or(0, |_| 1);
                        assert_eq!(written, target, "{shape:?} {endpoints:?} {target}: written");
                    }
                }
            }
        }
    }

    #[test]
    fn one_byte_short_widens_instead_of_padding() {
        let shape = Shape { others_count: 0, others_len: 0, pad_tag: Some(1) };
        // count 1, tag 0, size 20, 20 bytes = 23; one more byte must widen.
        let layout = shape.plan(24, Some(20)).expect("layout");
        assert_eq!(layout.pad, None);
        assert_eq!(layout.endpoints.map(|(_, size)| size.width), Some(2));
        // Two more bytes: an empty pad field instead.
        let layout = shape.plan(25, Some(20)).expect("layout");
        assert_eq!(layout.pad, Some((Varint::minimal(1), Varint::minimal(0))));
    }

    struct Renamed(&'static str);
    impl AddressMap for Renamed {
        fn advertised(&self, _node_id: i32, _host: &str, port: i32) -> Option<Advertised<'_>> {
            Some(Advertised { host: Cow::Borrowed(self.0), port })
        }
    }

    /// A tail with tag 0 holding one endpoint (node 1, `host`, port 9092, no rack).
    fn tail_with(host: &str, extra: &[(u32, &[u8])]) -> Vec<u8> {
        let mut endpoints = BytesMut::new();
        wire::put_array_len(&mut endpoints, true, Some(1));
        endpoints.put_i32(1);
        wire::put_string(&mut endpoints, true, host.as_bytes());
        endpoints.put_i32(9092);
        wire::put_nullable_string(&mut endpoints, true, None);
        endpoints.put_u8(0);
        let mut fields = vec![wire::TaggedField { tag: 0, data: &endpoints }];
        fields.extend(extra.iter().map(|&(tag, data)| wire::TaggedField { tag, data }));
        let mut out = Vec::new();
        wire::put_tagged_fields(&mut out, fields.into_iter());
        out
    }

    fn rewritten(tail: &[u8], map: &dyn AddressMap) -> (Vec<u8>, Observed) {
        let rewrite = rewrite_tail_same_size(API, 16, 50, tail, map).expect("rewrite");
        let Body::Spliced { front, new, back } = rewrite.body else { panic!("spliced") };
        assert!(front.is_empty() && back.is_empty());
        assert_eq!(new.len(), tail.len());
        (new.to_vec(), rewrite.observed)
    }

    #[test]
    fn same_size_tails() {
        let tail = tail_with("kafka-1", &[(5, b"xy")]);
        // Same length host: only the host changes.
        let (new, _) = rewritten(&tail, &Renamed("proxy-1"));
        assert_eq!(new, tail_with("proxy-1", &[(5, b"xy")]));
        // One byte shorter: a non-minimal size varint, no pad.
        let (new, _) = rewritten(&tail, &Renamed("proxy1"));
        let fields = wire::tagged_fields(&new).expect("valid").1;
        assert_eq!(fields.len(), 2);
        assert_eq!(new.get(2..4), Some(&[0x80 | 18, 0x00][..]), "size 18 in two bytes");
        // Several bytes shorter: a pad field with tag 6, after tag 5.
        let (new, _) = rewritten(&tail, &Renamed("p"));
        let tags: Vec<_> = wire::tagged_fields(&new).expect("valid").1.iter().map(|f| f.tag).collect();
        assert_eq!(tags, vec![0, 5, 6]);
        // Longer: NodeEndpoints left out, tag 5 kept, padded.
        let (new, observed) = rewritten(&tail, &Renamed("a-much-longer-proxy-host"));
        let fields: Vec<_> = wire::tagged_fields(&new).expect("valid").1.iter().collect();
        assert_eq!(fields.first().map(|f| (f.tag, f.data)), Some((5, &b"xy"[..])));
        assert_eq!(fields.get(1).map(|f| f.tag), Some(6));
        assert!(fields.get(1).is_some_and(|f| f.data.iter().all(|&b| b == 0)));
        let Observed::Some(seen) = observed else { panic!("observed") };
        assert_eq!(seen.first().map(|b| (b.node_id, b.host.as_str(), b.port)), Some((1, "kafka-1", 9092)));
    }

    #[test]
    fn tails_without_endpoints_are_unchanged_and_bad_tails_refused() {
        let none = [1u8, 3, 1, 7];
        assert_eq!(rewrite_tail_same_size(API, 16, 0, &none, &Renamed("p")), Ok(Rewrite::UNCHANGED));
        assert_eq!(rewrite_tail_same_size(API, 16, 0, &[0], &Renamed("p")), Ok(Rewrite::UNCHANGED));
        let empty_endpoints = [1u8, 0, 1, 1];
        assert_eq!(
            rewrite_tail_same_size(API, 16, 0, &empty_endpoints, &Renamed("p")),
            Ok(Rewrite::UNCHANGED)
        );
        let bad = |tail: &[u8]| rewrite_tail_same_size(API, 16, 10, tail, &Renamed("p"));
        assert!(matches!(bad(&[]), Err(RewriteError::Malformed { offset: 10, .. })));
        assert!(matches!(bad(&[0, 9]), Err(RewriteError::Malformed { offset: 11, .. })), "trailing byte");
        assert!(matches!(bad(&[1, 0, 1, 0]), Err(RewriteError::Malformed { offset: 13, .. })), "null array");
    }

    #[test]
    fn walker_holds_back_only_partial_varints() {
        // Header, 1 topic, id, 1 partition, header, null aborted, replica,
        // 200 bytes of records (length 201 = two-byte varint), empty tags x2, tail.
        let mut body = vec![0u8; 10];
        body.push(2);
        body.extend([7u8; 16]);
        body.push(2);
        body.extend([0u8; PARTITION_HEADER_LEN]);
        body.push(0);
        body.extend([0u8; 4]);
        body.extend([0xc9, 0x01]);
        body.extend([0xabu8; 200]);
        body.extend([0, 0]);
        let tail_at = body.len();
        body.extend(tail_with("kafka-1", &[]));
        let mut stream = FetchStream::new(16, body.len()).expect("stream");
        let mut held: Vec<u8> = Vec::new();
        let mut forwarded = 0;
        for &b in &body {
            held.push(b);
            let n = stream.advance(&held).expect("valid");
            held.drain(..n);
            forwarded += n;
            if !stream.at_tail() {
                assert!(held.len() <= 1, "held {held:?} at {forwarded}");
            }
        }
        assert_eq!(forwarded, tail_at);
        assert_eq!(stream.tail_len(), Some(body.len() - tail_at));
        let rewrite = stream.rewrite_tail(&held, &Renamed("proxy-1")).expect("rewrite").expect("complete");
        assert_eq!(rewrite.body.len(held.len()), held.len());
        assert_eq!(stream.rewrite_tail(&held[1..], &Renamed("p")), Ok(None), "incomplete tail");
    }

    #[test]
    fn walker_refuses_overruns_before_forwarding_them() {
        let mut body = vec![0u8; 10];
        body.extend([0xff, 0xff, 0xff, 0x7f]);
        let mut stream = FetchStream::new(16, 100).expect("stream");
        let err = stream.advance(&body);
        assert!(matches!(err, Err(RewriteError::Malformed { offset: 10, what: "responses", .. })));
        assert!(stream.advance(&body).is_err(), "errors are final");
        assert!(!stream.at_tail());
        // A varint that cannot end before the body does.
        let mut stream = FetchStream::new(16, 12).expect("stream");
        assert!(stream.advance(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80]).is_err());
        // A six-byte varint.
        let mut stream = FetchStream::new(16, 100).expect("stream");
        assert!(stream.advance(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0]).is_err());
    }
}
