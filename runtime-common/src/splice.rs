//! The runtime's half of the session's splice contract
//! (`kafka_proxy_core::session` documents the other half): one kernel pipe
//! per direction, made on first use, and the calls that keep the session's
//! count of spliced bytes equal to what the pipes hold.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use kafka_proxy_core::session::{Session, Side};
use kafka_proxy_sys::Pipe;
use tracing::debug;

/// What [`Splicer::splice_in`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpliceIn {
    /// The session has no splice window for that side now: read normally.
    NotNow,
    /// This many bytes went from the socket into the pipe (and on, as far
    /// as the other socket took them).
    Moved(usize),
    /// The socket reported end of stream (the session was told).
    Eof,
    /// No pipe could be made: read normally (copying) instead.
    Unavailable,
}

/// A connection's splice pipes, by source side.
#[derive(Debug, Default)]
pub struct Splicer {
    pipes: [Option<Pipe>; 2],
    /// Pipes could not be made once: never try again on this connection.
    broken: bool,
}

fn index(side: Side) -> usize {
    match side {
        Side::Downstream => 0,
        Side::Upstream => 1,
    }
}

impl Splicer {
    /// No pipe yet.
    pub fn new() -> Splicer {
        Splicer::default()
    }

    /// Moves as much of the session's splice window from `side`'s socket
    /// `from` into that side's pipe as the kernel gives, then on into the
    /// other side's socket `to` (when connected) as far as it takes.
    /// `Err(WouldBlock)`: `from` had nothing (wait for readiness).
    pub fn splice_in(
        &mut self,
        session: &mut Session,
        now: Instant,
        side: Side,
        from: &impl AsRawFd,
        to: Option<&impl AsRawFd>,
    ) -> io::Result<SpliceIn> {
        let Some(window) = session.splice_window(side) else { return Ok(SpliceIn::NotNow) };
        if self.broken {
            return Ok(SpliceIn::Unavailable);
        }
        let slot = &mut self.pipes[index(side)];
        let pipe = match slot {
            Some(pipe) => pipe,
            None => match Pipe::new() {
                Ok(pipe) => slot.insert(pipe),
                Err(error) => {
                    debug!(%error, "no pipe for splicing; copying instead");
                    self.broken = true;
                    return Ok(SpliceIn::Unavailable);
                }
            },
        };
        match pipe.fill_from(from.as_raw_fd(), window)? {
            0 => {
                session.handle_eof(now, side);
                Ok(SpliceIn::Eof)
            }
            n => {
                session.handle_spliced(now, side, n);
                if let Some(to) = to {
                    match self.splice_out(session, now, side.peer(), to) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => session.handle_io_error(now, side.peer(), &e),
                    }
                }
                Ok(SpliceIn::Moved(n))
            }
        }
    }

    /// Moves the bytes waiting in the other side's pipe into `to`'s socket
    /// `dest`: how many moved. `Err(WouldBlock)`: the socket is full and
    /// bytes still wait (ask for writability).
    pub fn splice_out(
        &mut self,
        session: &mut Session,
        now: Instant,
        to: Side,
        dest: &impl AsRawFd,
    ) -> io::Result<usize> {
        if session.pending_splice(to) == 0 {
            return Ok(0);
        }
        let Some(pipe) = self.pipes[index(to.peer())].as_mut() else { return Ok(0) };
        let n = pipe.drain_into(dest.as_raw_fd())?;
        session.handle_unspliced(now, to, n);
        if session.pending_splice(to) > 0 {
            // A short splice: the socket's send buffer is full.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}
