//! The system calls kafka-proxy makes by hand, and the only crate of the
//! workspace with `unsafe` code. For the runtimes: reading into
//! uninitialised spare capacity (so no read pays for zeroing its buffer
//! first) and `splice(2)` through a pipe (so a frame being cut through moves
//! socket to socket without being copied into user space). For the binary:
//! [`malloc::tune`] (glibc's allocator parameters) and [`signals`] (SIGINT,
//! SIGTERM and SIGHUP taken by one thread with `sigwait(2)`). Linux only.
//!
//! The I/O calls go through `rustix`'s safe wrappers (`read`, `pipe2`,
//! `fcntl(F_SETPIPE_SZ / F_GETPIPE_SZ)`, `splice`). Two `unsafe` operations
//! remain there, each in one place:
//!
//! - [`read_into`] tells the `BytesMut` how many of its spare bytes `read(2)`
//!   initialised (`set_len`): rustix hands back the initialised slice, but
//!   `BytesMut` has no safe way to take that length over.
//! - The runtimes pass sockets as raw descriptors (`as_raw_fd()`, taken
//!   before their session is borrowed mutably), and rustix takes
//!   `AsFd`; `borrow_raw` turns the one into the other for the length of a
//!   call. An `AsFd`-taking API would remove it once every caller holds a
//!   borrowed socket at the call.
//!
//! `malloc` and `signals` call libc directly (`mallopt`, `sigemptyset`,
//! `pthread_sigmask`, `sigwait`), each call with its SAFETY comment.
#![allow(unsafe_code)]

pub mod malloc;
pub mod signals;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use bytes::BytesMut;
use rustix::pipe::{PipeFlags, SpliceFlags};

/// The capacity asked of every new pipe; the kernel may grant less.
const WANTED_PIPE_CAPACITY: usize = 1 << 20;
/// Linux's default pipe capacity, assumed when the kernel does not say.
const DEFAULT_PIPE_CAPACITY: usize = 64 * 1024;

/// Reads from `socket` into the spare capacity of `buf`, appending.
///
/// Returns 0 at end of stream, and also when `buf` has no spare capacity
/// (then nothing is read).
pub fn read_into(socket: &impl AsRawFd, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    if spare.is_empty() {
        return Ok(0);
    }
    let (filled, _) = rustix::io::read(borrow_raw(socket.as_raw_fd()), spare)?;
    let n = filled.len();
    // SAFETY: rustix's `read` initialised `filled`, the first `n` bytes of
    // `buf`'s spare capacity, so the first `len + n` bytes are initialised.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// A kernel pipe for `splice(2)`: bytes move socket → pipe → socket as page
/// references, never through user space.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe, not yet spliced out.
    pub filled: usize,
    /// The pipe's capacity.
    pub capacity: usize,
}

impl Pipe {
    /// A non-blocking pipe, enlarged to 1 MiB when the system allows.
    pub fn new() -> io::Result<Pipe> {
        let (read, write) = rustix::pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // Enlarging fails past /proc/sys/fs/pipe-max-size for unprivileged
        // users: then the pipe keeps the size it has.
        let capacity = rustix::pipe::fcntl_setpipe_size(&write, WANTED_PIPE_CAPACITY)
            .or_else(|_| rustix::pipe::fcntl_getpipe_size(&write))
            .ok()
            .filter(|size| *size > 0)
            .unwrap_or(DEFAULT_PIPE_CAPACITY);
        Ok(Pipe { read, write, filled: 0, capacity })
    }

    /// Moves up to `len` bytes from `socket` into the pipe (0: end of stream).
    ///
    /// A full pipe, like a socket with nothing to read, is
    /// [`io::ErrorKind::WouldBlock`].
    pub fn fill_from(&mut self, socket: RawFd, len: usize) -> io::Result<usize> {
        let room = self.capacity.saturating_sub(self.filled).min(len);
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = splice(borrow_raw(socket), self.write.as_fd(), room)?;
        self.filled += n;
        Ok(n)
    }

    /// Moves what the pipe holds into `socket`, as far as it takes it.
    pub fn drain_into(&mut self, socket: RawFd) -> io::Result<usize> {
        let n = splice(self.read.as_fd(), borrow_raw(socket), self.filled)?;
        self.filled -= n.min(self.filled);
        Ok(n)
    }
}

/// `fd`, borrowed for one system call.
fn borrow_raw<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: every caller passes the descriptor of a socket the runtime
    // holds open across the call the borrow is made for, and the borrow does
    // not outlive that call. A descriptor closed by mistake makes the call
    // fail with EBADF; nothing here closes or keeps it.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    // No offsets: they are not allowed for sockets and pipes. NONBLOCK makes
    // the pipe end non-blocking; the socket end follows the socket's mode.
    Ok(rustix::pipe::splice(from, None, to, None, len, SpliceFlags::MOVE | SpliceFlags::NONBLOCK)?)
}

#[cfg(test)]
mod tests;
