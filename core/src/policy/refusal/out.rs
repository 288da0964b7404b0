//! The response body being written, in one version's encodings.

use bytes::{BufMut, Bytes, BytesMut};

use crate::api::ErrorCode;
use crate::wire;

/// A response body under construction: classic or flexible (compact
/// strings and arrays, tagged-field buffers).
#[derive(Debug)]
pub(super) struct Out {
    buf: BytesMut,
    flexible: bool,
}

impl Out {
    pub(super) fn with_capacity(flexible: bool, capacity: usize) -> Out {
        Out { buf: BytesMut::with_capacity(capacity), flexible }
    }

    pub(super) fn flexible(&self) -> bool {
        self.flexible
    }

    /// Bytes written so far.
    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    pub(super) fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    pub(super) fn bool(&mut self, v: bool) {
        self.buf.put_u8(u8::from(v));
    }

    pub(super) fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    pub(super) fn error(&mut self, e: ErrorCode) {
        self.buf.put_i16(e.0);
    }

    pub(super) fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub(super) fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    /// Raw bytes (a topic id).
    pub(super) fn raw(&mut self, v: &[u8]) {
        self.buf.put_slice(v);
    }

    pub(super) fn string(&mut self, v: &[u8]) {
        wire::put_string(&mut self.buf, self.flexible, v);
    }

    pub(super) fn nullable_string(&mut self, v: Option<&[u8]>) {
        wire::put_nullable_string(&mut self.buf, self.flexible, v);
    }

    /// Empty (not null) bytes: an empty record set.
    pub(super) fn empty_bytes(&mut self) {
        wire::put_bytes(&mut self.buf, self.flexible, &[]);
    }

    pub(super) fn array_len(&mut self, n: usize) {
        wire::put_array_len(&mut self.buf, self.flexible, Some(n));
    }

    /// An empty tagged-field buffer (flexible versions only).
    pub(super) fn tags(&mut self) {
        wire::put_empty_tagged_fields_if(&mut self.buf, self.flexible);
    }

    /// A tagged-field buffer holding one `INT16` field (flexible versions only).
    pub(super) fn tags_with_i16(&mut self, tag: u32, v: i16) {
        if self.flexible {
            wire::put_uvarint(&mut self.buf, 1);
            wire::put_uvarint(&mut self.buf, tag);
            wire::put_uvarint(&mut self.buf, 2);
            self.buf.put_i16(v);
        }
    }
}
