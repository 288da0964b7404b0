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

use crate::api::ApiKey;
use crate::wire;

use super::node_endpoints::FETCH_NODE_ENDPOINTS_FROM;
use super::reader::{Fault, Read};
use super::same_size_tail::rewrite_tail_same_size;
use super::{AddressMap, Rewrite, RewriteError};

/// The Fetch versions whose layout [`FetchStream`] knows.
pub(crate) const FETCH_STREAM_VERSIONS: RangeInclusive<i16> = FETCH_NODE_ENDPOINTS_FROM..=18;

/// The longest top-level tagged-field section the walker accepts, since the
/// session holds it whole. `NodeEndpoints` for a thousand brokers with long
/// host and rack names fit in a fraction of it.
pub(crate) const MAX_TAIL_LEN: usize = 1 << 20;

const API: ApiKey = ApiKey::FETCH;

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
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
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

#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
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

    /// Body bytes consumed so far: the offset of the next byte to forward, and
    /// once [`at_tail`](Self::at_tail) the offset of the tail.
    #[cfg(test)]
    pub(crate) fn offset(&self) -> usize {
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
    pub(crate) fn remaining(&self) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::same_size_tail::tests::{Renamed, tail_with};

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
