//! Kafka wire primitives: one set of nom parsers and encoders for every codec.
//!
//! Kafka's "flexible" versions (KIP-482) change how strings, bytes and arrays
//! carry their lengths (unsigned varint `N+1` instead of `int16`/`int32`) and add
//! tagged-field buffers. Every primitive here takes that `flexible` flag, so a
//! codec is written once and serves all versions of its message.
//!
//! Parsers work on complete frames (`nom::*::complete`) and return borrowed
//! slices; nothing allocates. Every length read from the input is checked
//! against the bytes that remain before it is used.

use bytes::BufMut;
use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take;
use nom::error::{Error, ErrorKind};
use nom::number::complete::{be_i8, be_i16, be_i32, be_i64};

/// Result of a wire parser over a byte slice.
pub(crate) type PResult<'a, T> = IResult<&'a [u8], T>;

fn fail<T>(input: &[u8], kind: ErrorKind) -> PResult<'_, T> {
    Err(nom::Err::Error(Error::new(input, kind)))
}

/// `INT8`.
pub(crate) fn i8(input: &[u8]) -> PResult<'_, i8> {
    be_i8(input)
}

/// `INT16`, big-endian.
pub(crate) fn i16(input: &[u8]) -> PResult<'_, i16> {
    be_i16(input)
}

/// `INT32`, big-endian.
pub(crate) fn i32(input: &[u8]) -> PResult<'_, i32> {
    be_i32(input)
}

/// `INT64`, big-endian.
pub(crate) fn i64(input: &[u8]) -> PResult<'_, i64> {
    be_i64(input)
}

/// `UNSIGNED_VARINT`: little-endian base-128, at most 5 bytes for 32 bits.
pub(crate) fn uvarint(input: &[u8]) -> PResult<'_, u32> {
    let mut value: u32 = 0;
    for (i, &byte) in input.iter().enumerate().take(5) {
        let bits = u32::from(byte & 0x7f);
        if i == 4 && bits > 0x0f {
            return fail(input, ErrorKind::TooLarge);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((input.get(i + 1..).unwrap_or_default(), value));
        }
    }
    if input.len() >= 5 { fail(input, ErrorKind::TooLarge) } else { fail(input, ErrorKind::Eof) }
}

/// `UNSIGNED_VARLONG`: little-endian base-128, at most 10 bytes for 64 bits.
#[cfg(test)]
pub(crate) fn uvarlong(input: &[u8]) -> PResult<'_, u64> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 0x01 {
            return fail(input, ErrorKind::TooLarge);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((input.get(i + 1..).unwrap_or_default(), value));
        }
    }
    if input.len() >= 10 { fail(input, ErrorKind::TooLarge) } else { fail(input, ErrorKind::Eof) }
}

/// `VARINT`: zig-zag encoded signed 32-bit value.
#[cfg(test)]
pub(crate) fn varint(input: &[u8]) -> PResult<'_, i32> {
    let (rest, raw) = uvarint(input)?;
    Ok((rest, ((raw >> 1) as i32) ^ -((raw & 1) as i32)))
}

/// A length prefix: `INT16` (strings) or `INT32` (bytes, arrays) in classic
/// versions, `UNSIGNED_VARINT` holding `N+1` in flexible ones. `None` is null.
fn length(input: &[u8], flexible: bool, classic_i16: bool) -> PResult<'_, Option<usize>> {
    if flexible {
        let (rest, n) = uvarint(input)?;
        match n {
            0 => Ok((rest, None)),
            n => Ok((rest, Some((n - 1) as usize))),
        }
    } else if classic_i16 {
        let (rest, n) = be_i16(input)?;
        match n {
            -1 => Ok((rest, None)),
            n if n < -1 => fail(input, ErrorKind::LengthValue),
            n => Ok((rest, Some(n as usize))),
        }
    } else {
        let (rest, n) = be_i32(input)?;
        match n {
            -1 => Ok((rest, None)),
            n if n < -1 => fail(input, ErrorKind::LengthValue),
            n => Ok((rest, Some(n as usize))),
        }
    }
}

/// `NULLABLE_STRING` / `COMPACT_NULLABLE_STRING`, as raw bytes.
pub(crate) fn nullable_string(input: &[u8], flexible: bool) -> PResult<'_, Option<&[u8]>> {
    let (rest, len) = length(input, flexible, true)?;
    match len {
        None => Ok((rest, None)),
        Some(n) => {
            let (rest, s) = take(n).parse(rest)?;
            Ok((rest, Some(s)))
        }
    }
}

/// `STRING` / `COMPACT_STRING` (null refused), as raw bytes.
pub(crate) fn string(input: &[u8], flexible: bool) -> PResult<'_, &[u8]> {
    match nullable_string(input, flexible)? {
        (rest, Some(s)) => Ok((rest, s)),
        (_, None) => fail(input, ErrorKind::Verify),
    }
}

/// `NULLABLE_BYTES` / `COMPACT_NULLABLE_BYTES` (and `RECORDS`, which is encoded the same way).
pub(crate) fn nullable_bytes(input: &[u8], flexible: bool) -> PResult<'_, Option<&[u8]>> {
    let (rest, len) = length(input, flexible, false)?;
    match len {
        None => Ok((rest, None)),
        Some(n) => {
            let (rest, s) = take(n).parse(rest)?;
            Ok((rest, Some(s)))
        }
    }
}

/// `BYTES` / `COMPACT_BYTES` (null refused).
pub(crate) fn bytes(input: &[u8], flexible: bool) -> PResult<'_, &[u8]> {
    match nullable_bytes(input, flexible)? {
        (rest, Some(s)) => Ok((rest, s)),
        (_, None) => fail(input, ErrorKind::Verify),
    }
}

/// The element count of a (nullable, compact) array.
///
/// Every element of every Kafka array takes at least one byte, so a count
/// larger than the remaining input is refused here: a hostile count can never
/// drive a long loop or a large allocation.
pub(crate) fn nullable_array_len(input: &[u8], flexible: bool) -> PResult<'_, Option<usize>> {
    let (rest, len) = length(input, flexible, false)?;
    match len {
        Some(n) if n > rest.len() => fail(input, ErrorKind::TooLarge),
        other => Ok((rest, other)),
    }
}

/// The element count of a non-null array.
pub(crate) fn array_len(input: &[u8], flexible: bool) -> PResult<'_, usize> {
    match nullable_array_len(input, flexible)? {
        (rest, Some(n)) => Ok((rest, n)),
        (_, None) => fail(input, ErrorKind::Verify),
    }
}

/// One tagged field: its tag and its raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaggedField<'a> {
    /// The field's tag.
    pub tag: u32,
    /// The field's encoded value, without the size prefix.
    pub data: &'a [u8],
}

/// A validated tagged-field buffer, iterable without allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaggedFields<'a> {
    count: u32,
    body: &'a [u8],
}

impl<'a> TaggedFields<'a> {
    /// The number of fields.
    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    /// The fields in ascending tag order.
    pub(crate) fn iter(&self) -> TaggedFieldIter<'a> {
        TaggedFieldIter { remaining: self.count, body: self.body }
    }

    /// The value of `tag`, if present.
    #[cfg(test)]
    pub(crate) fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.iter().find(|f| f.tag == tag).map(|f| f.data)
    }
}

/// Iterator over a [`TaggedFields`] buffer that was validated when parsed.
#[derive(Debug, Clone)]
pub(crate) struct TaggedFieldIter<'a> {
    remaining: u32,
    body: &'a [u8],
}

impl<'a> Iterator for TaggedFieldIter<'a> {
    type Item = TaggedField<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (rest, tag) = uvarint(self.body).ok()?;
        let (rest, size) = uvarint(rest).ok()?;
        let (rest, data) = take::<_, _, Error<&[u8]>>(size as usize).parse(rest).ok()?;
        self.body = rest;
        Some(TaggedField { tag, data })
    }
}

/// A tagged-field buffer: a count, then `tag`, `size`, `data` per field with
/// strictly ascending tags (Kafka's reader refuses anything else).
pub(crate) fn tagged_fields(input: &[u8]) -> PResult<'_, TaggedFields<'_>> {
    let (mut rest, count) = uvarint(input)?;
    if count as usize > rest.len() {
        return fail(input, ErrorKind::TooLarge);
    }
    let body = rest;
    let mut previous: Option<u32> = None;
    for _ in 0..count {
        let (r, tag) = uvarint(rest)?;
        if previous.is_some_and(|p| tag <= p) {
            return fail(rest, ErrorKind::Verify);
        }
        previous = Some(tag);
        let (r, size) = uvarint(r)?;
        let (r, _) = take(size as usize).parse(r)?;
        rest = r;
    }
    let consumed = body.len() - rest.len();
    Ok((rest, TaggedFields { count, body: body.get(..consumed).unwrap_or_default() }))
}

/// Parses a tagged-field buffer when `flexible`, nothing otherwise.
pub(crate) fn tagged_fields_if(input: &[u8], flexible: bool) -> PResult<'_, Option<TaggedFields<'_>>> {
    if flexible {
        let (rest, fields) = tagged_fields(input)?;
        Ok((rest, Some(fields)))
    } else {
        Ok((input, None))
    }
}

/// Bytes an unsigned varint takes on the wire.
pub(crate) fn uvarint_len(value: u32) -> usize {
    match value {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

/// Writes an `UNSIGNED_VARINT`.
pub(crate) fn put_uvarint(buf: &mut impl BufMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes a `VARINT` (zig-zag).
#[cfg(test)]
pub(crate) fn put_varint(buf: &mut impl BufMut, value: i32) {
    put_uvarint(buf, ((value << 1) ^ (value >> 31)) as u32);
}

fn put_length(buf: &mut impl BufMut, flexible: bool, classic_i16: bool, len: Option<usize>) {
    match (flexible, len) {
        (true, None) => put_uvarint(buf, 0),
        (true, Some(n)) => put_uvarint(buf, u32::try_from(n).unwrap_or(u32::MAX - 1) + 1),
        (false, None) if classic_i16 => buf.put_i16(-1),
        (false, None) => buf.put_i32(-1),
        (false, Some(n)) if classic_i16 => buf.put_i16(i16::try_from(n).unwrap_or(i16::MAX)),
        (false, Some(n)) => buf.put_i32(i32::try_from(n).unwrap_or(i32::MAX)),
    }
}

/// Writes a (compact) nullable string.
///
/// Strings come from parsed input, so a classic string never exceeds
/// `i16::MAX` bytes here; longer ones are a caller bug and are truncated by the
/// length prefix rather than panicking.
pub(crate) fn put_nullable_string(buf: &mut impl BufMut, flexible: bool, value: Option<&[u8]>) {
    put_length(buf, flexible, true, value.map(<[u8]>::len));
    if let Some(v) = value {
        buf.put_slice(v);
    }
}

/// Writes a (compact) string.
pub(crate) fn put_string(buf: &mut impl BufMut, flexible: bool, value: &[u8]) {
    put_nullable_string(buf, flexible, Some(value));
}

/// Writes (compact) nullable bytes.
pub(crate) fn put_nullable_bytes(buf: &mut impl BufMut, flexible: bool, value: Option<&[u8]>) {
    put_length(buf, flexible, false, value.map(<[u8]>::len));
    if let Some(v) = value {
        buf.put_slice(v);
    }
}

/// Writes (compact) bytes.
pub(crate) fn put_bytes(buf: &mut impl BufMut, flexible: bool, value: &[u8]) {
    put_nullable_bytes(buf, flexible, Some(value));
}

/// Writes a (compact) nullable array's element count.
pub(crate) fn put_array_len(buf: &mut impl BufMut, flexible: bool, len: Option<usize>) {
    put_length(buf, flexible, false, len);
}

/// Encoded size of a (compact) nullable string or bytes of `len` bytes.
pub(crate) fn string_size(flexible: bool, classic_i16: bool, len: Option<usize>) -> usize {
    let prefix = match (flexible, len) {
        (true, None) => 1,
        (true, Some(n)) => uvarint_len(u32::try_from(n).unwrap_or(u32::MAX - 1) + 1),
        (false, _) if classic_i16 => 2,
        (false, _) => 4,
    };
    prefix + len.unwrap_or(0)
}

/// Writes a tagged-field buffer from fields already in ascending tag order.
#[cfg(test)]
pub(crate) fn put_tagged_fields<'a>(
    buf: &mut impl BufMut,
    fields: impl ExactSizeIterator<Item = TaggedField<'a>>,
) {
    put_uvarint(buf, u32::try_from(fields.len()).unwrap_or(u32::MAX));
    for f in fields {
        put_uvarint(buf, f.tag);
        put_uvarint(buf, u32::try_from(f.data.len()).unwrap_or(u32::MAX));
        buf.put_slice(f.data);
    }
}

/// Writes an empty tagged-field buffer when `flexible`.
pub(crate) fn put_empty_tagged_fields_if(buf: &mut impl BufMut, flexible: bool) {
    if flexible {
        buf.put_u8(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uvarint_known_encodings() {
        let cases: &[(u32, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (value, encoded) in cases {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, *value);
            assert_eq!(&buf[..], *encoded, "encode {value}");
            assert_eq!(uvarint(encoded).map(|(r, v)| (r.len(), v)), Ok((0, *value)));
            assert_eq!(uvarint_len(*value), encoded.len());
        }
    }

    #[test]
    fn uvarint_refuses_overlong_and_truncated() {
        assert!(uvarint(&[0xff, 0xff, 0xff, 0xff, 0x1f]).is_err());
        assert!(uvarint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).is_err());
        assert!(uvarint(&[0x80]).is_err());
        assert!(uvarint(&[]).is_err());
    }

    #[test]
    fn classic_and_compact_strings() {
        assert_eq!(nullable_string(&[0xff, 0xff], false).map(|x| x.1), Ok(None));
        assert_eq!(nullable_string(&[0, 2, b'h', b'i'], false).map(|x| x.1), Ok(Some(&b"hi"[..])));
        assert_eq!(nullable_string(&[0], true).map(|x| x.1), Ok(None));
        assert_eq!(nullable_string(&[3, b'h', b'i'], true).map(|x| x.1), Ok(Some(&b"hi"[..])));
        assert!(string(&[0], true).is_err(), "null refused where a string is required");
        assert!(nullable_string(&[0, 5, b'h'], false).is_err(), "truncated");
        assert!(nullable_string(&[0xff, 0xfe], false).is_err(), "negative length");
    }

    #[test]
    fn hostile_array_count_is_refused_before_use() {
        assert!(array_len(&[0x7f, 0xff, 0xff, 0xff, 0], false).is_err());
        assert!(array_len(&[0xff, 0xff, 0xff, 0xff, 0x0f], true).is_err());
        assert_eq!(array_len(&[0, 0, 0, 1, 9], false).map(|x| x.1), Ok(1));
    }

    #[test]
    fn tagged_fields_must_ascend() {
        assert!(tagged_fields(&[2, 1, 0, 0, 0]).is_err());
        let (rest, fields) = tagged_fields(&[2, 0, 1, 7, 3, 0, 9]).expect("valid");
        assert_eq!(rest, &[9]);
        let all: Vec<_> = fields.iter().collect();
        assert_eq!(all, vec![TaggedField { tag: 0, data: &[7] }, TaggedField { tag: 3, data: &[] }]);
        assert_eq!(fields.get(0), Some(&[7u8][..]));
    }

    proptest! {
        #[test]
        fn uvarint_round_trip(v in any::<u32>()) {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, v);
            prop_assert_eq!(buf.len(), uvarint_len(v));
            prop_assert_eq!(uvarint(&buf).map(|(r, x)| (r.len(), x)), Ok((0, v)));
        }

        #[test]
        fn varint_round_trip(v in any::<i32>()) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            prop_assert_eq!(varint(&buf).map(|(r, x)| (r.len(), x)), Ok((0, v)));
        }

        #[test]
        fn strings_round_trip(s in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)), flexible in any::<bool>()) {
            let mut buf = Vec::new();
            put_nullable_string(&mut buf, flexible, s.as_deref());
            prop_assert_eq!(buf.len(), string_size(flexible, true, s.as_ref().map(Vec::len)));
            let (rest, parsed) = nullable_string(&buf, flexible).expect("round trip");
            prop_assert!(rest.is_empty());
            prop_assert_eq!(parsed, s.as_deref());
        }

        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64), flexible in any::<bool>()) {
            let _ = uvarint(&data);
            let _ = uvarlong(&data);
            let _ = nullable_string(&data, flexible);
            let _ = nullable_bytes(&data, flexible);
            let _ = nullable_array_len(&data, flexible);
            if let Ok((_, f)) = tagged_fields(&data) {
                prop_assert_eq!(f.iter().count(), f.len());
            }
        }
    }
}
