//! Kafka framing: `int32 size` followed by `size` bytes, in both directions.
//!
//! Frames are assembled in the connection's receive buffer and split off
//! whole with [`BytesMut::split_to`], so a body is never copied. The size is
//! checked against the configured maximum as soon as its four bytes are
//! there, before anything is allocated for the body.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the size prefix.
pub(crate) const SIZE_LEN: usize = 4;

/// Frames up to this size get their whole buffer reserved when the size is
/// seen (one allocation, no regrowth); larger ones grow as bytes arrive, so a
/// peer that announces a huge frame and then trickles cannot make the proxy
/// allocate more than it actually sent (and most large frames are cut
/// through by the session without ever being held whole).
pub(crate) const EAGER_RESERVE: usize = 64 * 1024;

/// The largest read step: the smallest buffer growth step while a frame
/// is incomplete, once traffic has shown that reads fill what they get.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// The first read step of a side (and the smallest): small requests and
/// responses fit, and a buffer this size comes from the allocator's fast
/// per-thread cache. Reads that fill their buffer double the step up to
/// [`READ_CHUNK`] (see [`next_read_step`]). Fresh connections, before their
/// buffers are released as idle, then cost less of the heap: 2,500 of them
/// left ~4.5 MB less RSS than with 64 KiB first reads, at no cost in
/// instructions (bench/idle_connections.py, callgrind).
pub(crate) const FIRST_READ: usize = 1024;

/// The read step after a read of `n` bytes into `spare` bytes of room with
/// step `step`: doubled (up to [`READ_CHUNK`]) when the read filled the
/// room, so a busy side soon reads in large steps; halved (down to
/// [`FIRST_READ`]) when a read brought less than an eighth of the step, so
/// a side back to small requests stops asking for large buffers.
pub(crate) fn next_read_step(step: usize, n: usize, spare: usize) -> usize {
    if n >= spare {
        (step * 2).min(READ_CHUNK)
    } else if n < step / 8 {
        (step / 2).max(FIRST_READ)
    } else {
        step
    }
}

/// Why a byte stream is not valid Kafka framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The size prefix is negative.
    NegativeSize(i32),
    /// The size prefix exceeds the configured maximum.
    TooLarge {
        /// The announced body size.
        size: u32,
        /// The configured maximum.
        max: u32,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::NegativeSize(size) => write!(f, "negative frame size {size}"),
            FrameError::TooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds the limit of {max} bytes")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits complete frames off the front of a receive buffer.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub struct FrameDecoder {
    max_frame: u32,
}

#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
impl FrameDecoder {
    /// A decoder refusing bodies larger than `max_frame` bytes.
    pub fn new(max_frame: u32) -> FrameDecoder {
        FrameDecoder { max_frame }
    }

    /// The body size announced at the front of `buf`, once its prefix is there.
    fn announced(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.first_chunk::<SIZE_LEN>() else {
            return Ok(None);
        };
        let size = i32::from_be_bytes(*prefix);
        let size = u32::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
        if size > self.max_frame {
            return Err(FrameError::TooLarge { size, max: self.max_frame });
        }
        Ok(Some(size as usize))
    }

    /// Takes the next complete frame, size prefix included, off the front of
    /// `buf`; `Ok(None)` while it is incomplete.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.announced(buf)? {
            Some(size) if buf.len() >= SIZE_LEN + size => Ok(Some(buf.split_to(SIZE_LEN + size).freeze())),
            _ => Ok(None),
        }
    }

    /// Makes room in `buf` for the next read of at least `step` bytes: the
    /// rest of the current frame when it is small, otherwise a growth step
    /// proportional to what has already arrived (at least [`READ_CHUNK`]).
    /// Fails early on a hostile size prefix.
    pub(crate) fn reserve(&self, buf: &mut BytesMut, step: usize) -> Result<(), FrameError> {
        let wanted = match self.announced(buf)? {
            Some(size) => {
                let missing = (SIZE_LEN + size).saturating_sub(buf.len());
                if SIZE_LEN + size <= EAGER_RESERVE {
                    missing.max(step)
                } else {
                    // A frame known to be large is read in large steps,
                    // whatever the side's step.
                    missing.min(buf.len().max(READ_CHUNK))
                }
            }
            None => step,
        };
        if buf.capacity() - buf.len() < wanted {
            buf.reserve(wanted);
        }
        Ok(())
    }
}

/// The body of a frame: everything after the size prefix.
pub(crate) fn body(frame: &Bytes) -> Bytes {
    let mut body = frame.clone();
    body.advance(SIZE_LEN.min(body.len()));
    body
}

/// Encodes a size prefix for a body of `len` bytes.
pub(crate) fn size_prefix(len: usize) -> [u8; SIZE_LEN] {
    i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = size_prefix(body.len()).to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn splits_whole_frames_only() {
        let d = FrameDecoder::new(1024);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frame(b"hello"));
        buf.extend_from_slice(&frame(b"wor")[..5]);
        assert_eq!(d.decode(&mut buf).expect("valid").as_deref(), Some(&frame(b"hello")[..]));
        assert_eq!(d.decode(&mut buf).expect("valid"), None);
        buf.extend_from_slice(&frame(b"wor")[5..]);
        assert_eq!(d.decode(&mut buf).expect("valid").as_deref(), Some(&frame(b"wor")[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn zero_length_frame() {
        let d = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert_eq!(d.decode(&mut buf).expect("valid").as_deref(), Some(&[0u8, 0, 0, 0][..]));
    }

    #[test]
    fn hostile_sizes_refused_before_allocation() {
        let d = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&[0x7fu8, 0xff, 0xff, 0xff][..]);
        let cap = buf.capacity();
        assert_eq!(d.decode(&mut buf), Err(FrameError::TooLarge { size: 0x7fff_ffff, max: 1024 }));
        assert_eq!(
            d.reserve(&mut buf, READ_CHUNK),
            Err(FrameError::TooLarge { size: 0x7fff_ffff, max: 1024 })
        );
        assert_eq!(buf.capacity(), cap, "nothing reserved for a refused frame");
        let mut neg = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xfe][..]);
        assert_eq!(d.decode(&mut neg), Err(FrameError::NegativeSize(-2)));
    }

    #[test]
    fn large_frames_grow_with_what_arrived() {
        let d = FrameDecoder::new(64 * 1024 * 1024);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&size_prefix(32 * 1024 * 1024));
        d.reserve(&mut buf, READ_CHUNK).expect("valid");
        assert!(buf.capacity() < 2 * READ_CHUNK + SIZE_LEN, "a 32 MiB announcement reserves one step");
        let small = FrameDecoder::new(1024 * 1024);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&size_prefix(40 * 1024));
        small.reserve(&mut buf, READ_CHUNK).expect("valid");
        assert!(buf.capacity() >= 40 * 1024 + SIZE_LEN, "small frames reserve once");
    }

    #[test]
    fn read_step_grows_with_full_reads_and_shrinks_with_small_ones() {
        let mut step = FIRST_READ;
        let mut steps = Vec::new();
        for _ in 0..8 {
            step = next_read_step(step, step, step);
            steps.push(step);
        }
        assert_eq!(steps, [2048, 4096, 8192, 16384, 32768, 65536, 65536, 65536], "doubles to READ_CHUNK");
        assert_eq!(next_read_step(READ_CHUNK, 20_000, READ_CHUNK), READ_CHUNK, "a fair read keeps it");
        assert_eq!(next_read_step(READ_CHUNK, 100, READ_CHUNK), READ_CHUNK / 2, "a tiny read halves it");
        assert_eq!(next_read_step(FIRST_READ, 10, FIRST_READ), FIRST_READ, "never below FIRST_READ");
    }

    #[test]
    fn the_first_read_is_small_and_a_known_frame_gets_its_room() {
        let d = FrameDecoder::new(1024 * 1024);
        let mut buf = BytesMut::new();
        d.reserve(&mut buf, FIRST_READ).expect("valid");
        assert!(buf.capacity() >= FIRST_READ && buf.capacity() < READ_CHUNK, "a small first buffer");
        buf.extend_from_slice(&size_prefix(16 * 1024));
        d.reserve(&mut buf, FIRST_READ).expect("valid");
        assert!(buf.capacity() >= 16 * 1024 + SIZE_LEN, "the announced frame fits whole");
    }

    proptest! {
        #[test]
        fn identical_frames_under_any_read_split(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in proptest::collection::vec(1usize..64, 1..200),
        ) {
            let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
            let d = FrameDecoder::new(1024);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut pos = 0;
            let mut cut = cuts.iter().cycle();
            while pos < stream.len() {
                d.reserve(&mut buf, READ_CHUNK).expect("valid sizes");
                let n = (*cut.next().expect("cycle")).min(stream.len() - pos);
                buf.extend_from_slice(&stream[pos..pos + n]);
                pos += n;
                while let Some(f) = d.decode(&mut buf).expect("valid sizes") {
                    out.push(body(&f).to_vec());
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out, bodies);
        }
    }
}
