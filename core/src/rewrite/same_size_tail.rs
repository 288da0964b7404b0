//! Rewriting a complete top-level tagged-field section (KIP-951
//! `NodeEndpoints`, tag 0) of a Produce v10+ or Fetch v16+ response to
//! exactly its original length, for a frame whose size the client already
//! has. Apart from the [`super::fetch_stream`] walker because it is layout
//! arithmetic over a section already held whole, not streaming.

use bytes::{BufMut, BytesMut};

use crate::api::ApiKey;
use crate::wire;

use super::endpoint::{ArrayOut, Endpoint, advertise};
use super::node_endpoints::NODE_ENDPOINTS_TAG;
use super::reader::Read;
use super::{AddressMap, Body, Observed, Rewrite, RewriteError};

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
pub(crate) fn rewrite_tail_same_size(
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
pub(super) mod tests;
