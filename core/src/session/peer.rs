//! One side of a session: its socket buffers and, when it speaks TLS, its
//! TLS engine. Above this module everything is plaintext Kafka frames.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::tls::{TlsDriver, TlsError, TlsIo, TlsStatus};

/// What a TLS step changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Progress {
    /// The handshake completed during this step.
    pub secured: bool,
    /// The peer sent close_notify.
    pub peer_closed: bool,
}

/// A side's buffers and transport.
pub(super) struct Peer {
    /// Bytes read from the socket: ciphertext under TLS, frames otherwise.
    pub rx: BytesMut,
    /// The TLS engine and its buffers, when this side speaks TLS (boxed:
    /// most sides do not, and an idle plaintext session should be small).
    tls: Option<Box<TlsSide>>,
    /// Chunks to write to the socket, front first.
    tx: VecDeque<Bytes>,
    /// Bytes in `tx`.
    tx_len: usize,
    /// The socket is connected and usable.
    pub open: bool,
    /// No TLS, or the TLS handshake has completed.
    secured: bool,
    /// A TLS write decrypted input on the side: frames may be waiting.
    pub fresh_plaintext: bool,
    /// Bytes of a frame from this side still to come, forwarded as they
    /// arrive (cut-through); 0 between frames.
    pub cut_through: usize,
    /// Bytes from this side's socket the runtime spliced into its pipe and
    /// has not yet written to the other side.
    pub piped: usize,
    /// How much room the next read gets at least (`frame::next_read_step`).
    pub read_step: usize,
}

/// What only a TLS side has.
struct TlsSide {
    driver: Box<dyn TlsDriver + Send>,
    /// Decrypted bytes, framed from here.
    plain: BytesMut,
    /// TLS output before it joins `tx` (reused, so records need no allocation each).
    out: BytesMut,
    /// Plaintext frames waiting for the TLS handshake to complete.
    waiting: VecDeque<Bytes>,
    waiting_len: usize,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("rx", &self.rx.len())
            .field("tls", &self.tls.is_some())
            .field("tx_len", &self.tx_len)
            .field("open", &self.open)
            .field("secured", &self.secured)
            .finish()
    }
}

impl Peer {
    /// A side without TLS.
    pub(super) fn plain(open: bool) -> Peer {
        Peer {
            rx: BytesMut::new(),
            tls: None,
            tx: VecDeque::new(),
            tx_len: 0,
            open,
            secured: true,
            fresh_plaintext: false,
            cut_through: 0,
            piped: 0,
            read_step: crate::frame::FIRST_READ,
        }
    }

    /// Switches this side to TLS (before any byte flowed).
    pub(super) fn use_tls(&mut self, driver: Box<dyn TlsDriver + Send>) {
        self.tls = Some(Box::new(TlsSide {
            driver,
            plain: BytesMut::new(),
            out: BytesMut::new(),
            waiting: VecDeque::new(),
            waiting_len: 0,
        }));
        self.secured = false;
    }

    /// Holds frames back while a forward proxy's handshake runs on the raw
    /// socket (bytes sent with [`Peer::send`] still go out as they are).
    pub(super) fn await_tunnel(&mut self) {
        self.secured = false;
    }

    /// The forward proxy's tunnel is open: without TLS, frames may flow.
    pub(super) fn tunnel_open(&mut self) {
        if self.tls.is_none() {
            self.secured = true;
        }
    }

    /// True when this side speaks TLS.
    pub(super) fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// True when application data can flow (no TLS, or handshake complete).
    pub(super) fn is_secured(&self) -> bool {
        self.secured
    }

    /// The peer's certificate chain, once verified.
    pub(super) fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.tls.as_ref().and_then(|t| t.driver.peer_certificates())
    }

    /// The bytes Kafka frames are assembled from, read-only.
    pub(super) fn buffered(&self) -> &[u8] {
        match &self.tls {
            Some(tls) => &tls.plain,
            None => &self.rx,
        }
    }

    /// The buffer Kafka frames are assembled in.
    pub(super) fn frames(&mut self) -> &mut BytesMut {
        frame_buf(&mut self.rx, &mut self.tls)
    }

    /// Starts cutting through a frame of `total` bytes (size prefix
    /// included) whose beginning is buffered: takes what is there.
    pub(super) fn start_cut_through(&mut self, total: usize) -> Bytes {
        let buf = frame_buf(&mut self.rx, &mut self.tls);
        let head = buf.split().freeze();
        self.cut_through = total.saturating_sub(head.len());
        head
    }

    /// Takes `n` bytes (at most what remains of the frame) of the frame being
    /// cut through, which the caller has seen buffered.
    pub(super) fn take_cut_through_exact(&mut self, n: usize) -> Bytes {
        let buf = frame_buf(&mut self.rx, &mut self.tls);
        let n = n.min(self.cut_through).min(buf.len());
        self.cut_through -= n;
        buf.split_to(n).freeze()
    }

    /// True when part of a frame from this side has arrived and the rest has
    /// not: bytes buffered (ciphertext or plaintext) or a frame being cut through.
    pub(super) fn mid_frame(&self) -> bool {
        !self.rx.is_empty()
            || self.tls.as_ref().is_some_and(|t| !t.plain.is_empty())
            || self.cut_through > 0
            || self.piped > 0
    }

    /// The buffered bytes of the frame being cut through.
    pub(super) fn cut_through_buffered(&self) -> &[u8] {
        let buf = self.buffered();
        buf.get(..buf.len().min(self.cut_through)).unwrap_or_default()
    }

    /// Takes the first `n` buffered bytes (the head of a frame whose rest
    /// `rest` bytes will be cut through).
    pub(super) fn start_cut_through_after(&mut self, n: usize, rest: usize) -> Bytes {
        let buf = frame_buf(&mut self.rx, &mut self.tls);
        let head = buf.split_to(n.min(buf.len())).freeze();
        self.cut_through = rest;
        head
    }

    /// The next piece of the frame being cut through, if any arrived.
    pub(super) fn take_cut_through(&mut self) -> Option<Bytes> {
        let buf = frame_buf(&mut self.rx, &mut self.tls);
        let n = buf.len().min(self.cut_through);
        if n == 0 {
            return None;
        }
        self.cut_through -= n;
        Some(buf.split_to(n).freeze())
    }

    /// Runs TLS over what was received (or, for a client, starts the
    /// handshake when nothing was): decrypted data lands in the frame buffer,
    /// TLS records to send join the transmit queue.
    pub(super) fn process_tls(&mut self) -> Result<Progress, TlsError> {
        let Some(tls) = self.tls.as_deref_mut() else { return Ok(Progress::default()) };
        let was_secured = self.secured;
        let mut io = TlsIo { incoming: &mut self.rx, plaintext: &mut tls.plain, outgoing: &mut tls.out };
        let result = tls.driver.process(&mut io);
        self.flush_tls_out();
        let status = result?;
        self.after_status(status, was_secured)
    }

    fn after_status(&mut self, status: TlsStatus, was_secured: bool) -> Result<Progress, TlsError> {
        let mut progress = Progress { peer_closed: status.peer_closed, secured: false };
        if status.handshake_complete && !was_secured {
            self.secured = true;
            progress.secured = true;
            let waiting = match self.tls.as_deref_mut() {
                Some(tls) => {
                    tls.waiting_len = 0;
                    std::mem::take(&mut tls.waiting)
                }
                None => VecDeque::new(),
            };
            for frame in waiting {
                self.send(&[frame])?;
            }
        }
        Ok(progress)
    }

    fn flush_tls_out(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut()
            && !tls.out.is_empty()
        {
            let records = tls.out.split().freeze();
            self.tx_len += records.len();
            self.tx.push_back(records);
        }
    }

    /// Queues one frame, given as consecutive chunks, for the socket:
    /// as is, or encrypted (after the handshake; held until then).
    pub(super) fn send(&mut self, chunks: &[Bytes]) -> Result<(), TlsError> {
        let Some(tls) = self.tls.as_deref_mut() else {
            for chunk in chunks {
                if !chunk.is_empty() {
                    self.tx_len += chunk.len();
                    self.tx.push_back(chunk.clone());
                }
            }
            return Ok(());
        };
        if !self.secured {
            for chunk in chunks {
                tls.waiting_len += chunk.len();
                tls.waiting.push_back(chunk.clone());
            }
            return Ok(());
        }
        let mut slices: [&[u8]; 8] = [&[]; 8];
        let mut result = Ok(TlsStatus::default());
        let plain_before = tls.plain.len();
        for group in chunks.chunks(slices.len()) {
            for (slot, chunk) in slices.iter_mut().zip(group) {
                *slot = chunk;
            }
            let mut io = TlsIo { incoming: &mut self.rx, plaintext: &mut tls.plain, outgoing: &mut tls.out };
            result = tls.driver.write(&mut io, slices.get(..group.len()).unwrap_or_default());
            if result.is_err() {
                break;
            }
        }
        if tls.plain.len() > plain_before {
            self.fresh_plaintext = true;
        }
        self.flush_tls_out();
        result.map(|_| ())
    }

    /// Queues close_notify (TLS only; nothing before the handshake ends).
    pub(super) fn close_notify(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut() {
            let mut io = TlsIo { incoming: &mut self.rx, plaintext: &mut tls.plain, outgoing: &mut tls.out };
            let _ = tls.driver.close(&mut io);
            self.flush_tls_out();
        }
    }

    /// Bytes queued towards this side (including frames held for TLS).
    pub(super) fn queued(&self) -> usize {
        self.tx_len + self.tls.as_ref().map_or(0, |t| t.waiting_len)
    }

    /// True when bytes wait for the socket.
    pub(super) fn has_tx(&self) -> bool {
        !self.tx.is_empty()
    }

    /// The queued chunks, front first.
    pub(super) fn tx_chunks(&self) -> impl Iterator<Item = &Bytes> {
        self.tx.iter()
    }

    /// `n` bytes were written to the socket.
    pub(super) fn consume(&mut self, mut n: usize) {
        self.tx_len = self.tx_len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.tx.front_mut() else { break };
            if n >= front.len() {
                n -= front.len();
                self.tx.pop_front();
            } else {
                let _ = front.split_to(n);
                n = 0;
            }
        }
    }

    /// Nothing more will be written to this side.
    pub(super) fn drained(&self) -> bool {
        !self.open || self.tx.is_empty()
    }

    /// Forgets everything queued; the socket is unusable.
    pub(super) fn shut(&mut self) {
        self.open = false;
        self.piped = 0;
        self.tx.clear();
        self.tx_len = 0;
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.waiting.clear();
            tls.waiting_len = 0;
        }
    }

    /// Gives back the memory of buffers that hold nothing, so an idle side
    /// holds no buffer (the next read reserves again, sized by the frame it
    /// brings). The session calls it once it has been quiet a while.
    pub(super) fn release_empty(&mut self) {
        release(&mut self.rx);
        super::release_queue(&mut self.tx);
        if let Some(tls) = self.tls.as_deref_mut() {
            release(&mut tls.plain);
            release(&mut tls.out);
            super::release_queue(&mut tls.waiting);
        }
    }

    /// True when an empty buffer of this side still holds an allocation
    /// (what [`Peer::release_empty`] gives back).
    pub(super) fn holds_spare_memory(&self) -> bool {
        spare(&self.rx)
            || super::spare(&self.tx)
            || self
                .tls
                .as_deref()
                .is_some_and(|t| spare(&t.plain) || spare(&t.out) || super::spare(&t.waiting))
    }

    /// Memory held by this side's buffers.
    pub(super) fn footprint(&self) -> usize {
        let tls = self.tls.as_ref().map_or(0, |t| t.plain.capacity() + t.out.capacity() + t.waiting_len);
        self.rx.capacity() + tls + self.tx_len
    }
}

/// The frame buffer, from the fields (so the others stay free to borrow):
/// the decrypted bytes under TLS, otherwise the bytes read.
fn frame_buf<'a>(rx: &'a mut BytesMut, tls: &'a mut Option<Box<TlsSide>>) -> &'a mut BytesMut {
    match tls {
        Some(tls) => &mut tls.plain,
        None => rx,
    }
}

/// An empty buffer that still holds an allocation.
fn spare(buf: &BytesMut) -> bool {
    buf.is_empty() && buf.capacity() > 0
}

/// Drops an empty buffer's allocation (its next use reserves again).
fn release(buf: &mut BytesMut) {
    if spare(buf) {
        *buf = BytesMut::new();
    }
}
