//! The splice contract: how a runtime that can move bytes socket to socket
//! in the kernel (`splice(2)` through a pipe) forwards the body of a large
//! frame being cut through without the session touching it, while the
//! session keeps the order of everything else.
//!
//! 1. [`Session::splice_window`] says how many bytes from a side may go into
//!    that side's pipe now; the runtime moves at most that many and reports
//!    them with [`Session::handle_spliced`] (or end of stream with
//!    [`Session::handle_eof`]).
//! 2. Bytes in a pipe go to the other side before anything the session
//!    queued: [`Session::pending_splice`] says how many wait for a side,
//!    [`Session::handle_unspliced`] reports those written, and until they
//!    are all out [`Session::write_to`] offers nothing for that side and
//!    [`Session::wants_read`] takes nothing more from the source.

use std::time::Instant;

use super::{Session, Side};

/// Below this, moving bytes through a pipe costs more than copying them.
pub(super) const SPLICE_MIN: usize = 16 * 1024;

impl Session {
    /// How many bytes from `side`'s socket may go straight to the other
    /// side's socket, bypassing the session (`splice(2)` in a runtime that
    /// can): the rest of a frame being cut through, when neither side speaks
    /// TLS, the frame needs no walking, nothing of it is buffered and nothing
    /// is queued ahead of it on the other side. `None` otherwise.
    pub fn splice_window(&self, side: Side) -> Option<usize> {
        let (from, to) = match side {
            Side::Downstream => (&self.down, &self.up),
            Side::Upstream => (&self.up, &self.down),
        };
        let walked = side == Side::Upstream && self.fetch.is_some();
        let plaintext = !from.has_tls() && !to.has_tls();
        let eligible = from.cut_through >= SPLICE_MIN
            && !walked
            && plaintext
            && from.buffered().is_empty()
            && from.piped == 0
            && to.open
            && !to.has_tx()
            && self.running();
        eligible.then_some(from.cut_through)
    }

    /// `n` bytes of the frame being cut through from `side` went straight to
    /// the other side's socket (see [`Session::splice_window`]).
    pub fn handle_spliced(&mut self, now: Instant, side: Side, n: usize) {
        let peer = self.peer_mut(side);
        peer.cut_through = peer.cut_through.saturating_sub(n);
        peer.piped += n;
        self.stats.side_mut(side).spliced_in += n as u64;
        if n > 0 {
            self.last_activity = now;
        }
        if self.peer(side).cut_through == 0 {
            self.end_cut_through(now, side);
        }
    }

    /// Bytes in the pipe of the other side that must be written to `to`
    /// before anything else (see [`Session::handle_unspliced`]).
    pub fn pending_splice(&self, to: Side) -> usize {
        if self.peer(to).open { self.peer(to.peer()).piped } else { 0 }
    }

    /// `n` bytes moved from the other side's pipe into `to`'s socket.
    pub fn handle_unspliced(&mut self, now: Instant, to: Side, n: usize) {
        let from = self.peer_mut(to.peer());
        from.piped = from.piped.saturating_sub(n);
        self.stats.side_mut(to).spliced_out += n as u64;
        if n > 0 {
            self.last_activity = now;
            if to == Side::Downstream {
                self.broker_clock = now;
            }
        }
        self.finish_if_flushed();
    }
}
