//! A cursor over a response body that remembers where it is.
//!
//! The rewriters (and the policy's request parsers) read with the
//! [`crate::wire`] primitives; this cursor runs
//! them, advances past what they consumed and, when one fails, reports the body
//! offset of the field that did not decode together with its name. That is the
//! context [`RewriteError::Malformed`] carries.

use crate::api::ApiKey;
use crate::wire::{self, PResult, TaggedFields};

use super::RewriteError;

/// Where a body stopped decoding, and what was being read there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    /// Offset into the body of the field that did not decode.
    pub offset: usize,
    /// The field (or structure) being read.
    pub what: &'static str,
}

impl Fault {
    /// The [`RewriteError`] for this fault in a response of `api` at `version`.
    pub(crate) fn into_error(self, api: ApiKey, version: i16) -> RewriteError {
        RewriteError::Malformed { api, version, offset: self.offset, what: self.what }
    }
}

/// Result of one read.
pub(crate) type Read<T> = Result<T, Fault>;

/// A position in a body; every read either advances it or reports a [`Fault`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    body: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `body`.
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Reader { body, rest: body }
    }

    /// Offset of the next byte to read, from the start of the body.
    pub(crate) fn offset(&self) -> usize {
        self.body.len() - self.rest.len()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The bytes between `from` (an earlier [`offset`](Self::offset)) and here.
    pub(crate) fn since(&self, from: usize) -> &'a [u8] {
        self.body.get(from..self.offset()).unwrap_or_default()
    }

    /// A fault at the current position.
    pub(crate) fn fault(&self, what: &'static str) -> Fault {
        Fault { offset: self.offset(), what }
    }

    /// Runs a wire parser; on failure the fault points at the field's start.
    #[inline]
    fn run<T>(&mut self, what: &'static str, parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>) -> Read<T> {
        match parser(self.rest) {
            Ok((rest, value)) => {
                self.rest = rest;
                Ok(value)
            }
            Err(_) => Err(self.fault(what)),
        }
    }

    /// Skips `n` bytes of fixed-size fields.
    #[inline]
    pub(crate) fn skip(&mut self, n: usize, what: &'static str) -> Read<()> {
        match self.rest.get(n..) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err(self.fault(what)),
        }
    }

    /// Skips an array of `INT32` (node id lists): its count, then 4 bytes each.
    pub(crate) fn skip_i32_array(&mut self, flexible: bool, what: &'static str) -> Read<()> {
        let start = *self;
        let n = self.array_len(flexible, what)?;
        match n.checked_mul(4) {
            Some(bytes) => self.skip(bytes, what).map_err(|_| start.fault(what)),
            None => Err(start.fault(what)),
        }
    }

    /// `INT8`.
    pub(crate) fn i8(&mut self, what: &'static str) -> Read<i8> {
        self.run(what, wire::i8)
    }

    /// `INT16`.
    pub(crate) fn i16(&mut self, what: &'static str) -> Read<i16> {
        self.run(what, wire::i16)
    }

    /// `INT32`.
    pub(crate) fn i32(&mut self, what: &'static str) -> Read<i32> {
        self.run(what, wire::i32)
    }

    /// `INT64`.
    pub(crate) fn i64(&mut self, what: &'static str) -> Read<i64> {
        self.run(what, wire::i64)
    }

    /// `UNSIGNED_VARINT`.
    pub(crate) fn uvarint(&mut self, what: &'static str) -> Read<u32> {
        self.run(what, wire::uvarint)
    }

    /// A (compact) non-null string, as raw bytes.
    pub(crate) fn string(&mut self, flexible: bool, what: &'static str) -> Read<&'a [u8]> {
        self.run(what, |i| wire::string(i, flexible))
    }

    /// A (compact) nullable string, as raw bytes.
    pub(crate) fn nullable_string(&mut self, flexible: bool, what: &'static str) -> Read<Option<&'a [u8]>> {
        self.run(what, |i| wire::nullable_string(i, flexible))
    }

    /// (Compact) nullable bytes, also used for `RECORDS`.
    pub(crate) fn nullable_bytes(&mut self, flexible: bool, what: &'static str) -> Read<Option<&'a [u8]>> {
        self.run(what, |i| wire::nullable_bytes(i, flexible))
    }

    /// A (compact) non-null array's element count, refused if larger than the input left.
    pub(crate) fn array_len(&mut self, flexible: bool, what: &'static str) -> Read<usize> {
        self.run(what, |i| wire::array_len(i, flexible))
    }

    /// A (compact) nullable array's element count.
    pub(crate) fn nullable_array_len(&mut self, flexible: bool, what: &'static str) -> Read<Option<usize>> {
        self.run(what, |i| wire::nullable_array_len(i, flexible))
    }

    /// A tagged-field buffer (flexible versions only).
    pub(crate) fn tagged_fields(&mut self, what: &'static str) -> Read<TaggedFields<'a>> {
        self.run(what, wire::tagged_fields)
    }

    /// A tagged-field buffer when `flexible`, returned as its raw encoding
    /// (count included) so it can be copied byte for byte; empty otherwise.
    pub(crate) fn raw_tagged_fields_if(&mut self, flexible: bool, what: &'static str) -> Read<&'a [u8]> {
        if !flexible {
            return Ok(&[]);
        }
        let start = self.offset();
        self.tagged_fields(what)?;
        Ok(self.since(start))
    }

    /// Skips a tagged-field buffer when `flexible`.
    pub(crate) fn skip_tagged_fields_if(&mut self, flexible: bool, what: &'static str) -> Read<()> {
        if flexible {
            self.tagged_fields(what)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_point_at_the_field_start() {
        let body = [0u8, 1, 0, 0, 0];
        let mut r = Reader::new(&body);
        assert_eq!(r.i16("a"), Ok(1));
        assert_eq!(r.i32("b"), Err(Fault { offset: 2, what: "b" }));
        assert_eq!(r.offset(), 2, "a failed read does not advance");
        assert_eq!(r.skip(3, "c"), Ok(()));
        assert_eq!(r.rest(), &[] as &[u8]);
    }

    #[test]
    fn int32_arrays_are_skipped_by_count() {
        let body = [0u8, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 9];
        let mut r = Reader::new(&body);
        assert_eq!(r.skip_i32_array(false, "ids"), Ok(()));
        assert_eq!(r.rest(), &[9]);
        let short = [0u8, 0, 0, 2, 0, 0, 0, 1, 0, 0];
        let mut r = Reader::new(&short);
        assert_eq!(r.skip_i32_array(false, "ids"), Err(Fault { offset: 0, what: "ids" }));
    }

    #[test]
    fn raw_tagged_fields_include_the_count() {
        let body = [1u8, 0, 1, 7, 5];
        let mut r = Reader::new(&body);
        assert_eq!(r.raw_tagged_fields_if(true, "tags"), Ok(&body[..4]));
        assert_eq!(r.raw_tagged_fields_if(false, "tags"), Ok(&[][..]));
        assert_eq!(r.rest(), &[5]);
    }
}
