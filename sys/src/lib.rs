//! The system calls kafka-proxy's runtimes make by hand: reading into
//! uninitialised spare capacity (so no read pays for zeroing its buffer
//! first) and `splice(2)` through a pipe (so a frame being cut through moves
//! socket to socket without being copied into user space). Linux only.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

use bytes::BytesMut;

/// Reads from `socket` into the spare capacity of `buf`, appending.
pub fn read_into(socket: &impl AsRawFd, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    if spare.is_empty() {
        return Ok(0);
    }
    // SAFETY: `spare` is valid, writable memory of `spare.len()` bytes owned
    // by `buf`; read(2) writes at most that many bytes into it.
    let n = unsafe { libc::read(socket.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n.unsigned_abs();
    // SAFETY: read(2) initialised the first `n <= spare.len()` spare bytes.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// A kernel pipe for `splice(2)`: bytes move socket → pipe → socket as page
/// references, never through user space.
#[derive(Debug)]
pub struct Pipe {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
    /// Bytes in the pipe, not yet spliced out.
    pub filled: usize,
    /// The pipe's capacity.
    pub capacity: usize,
}

impl Pipe {
    /// A non-blocking pipe, enlarged to 1 MiB when the system allows.
    pub fn new() -> io::Result<Pipe> {
        use std::os::fd::FromRawFd;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and ours alone.
        let (read, write) =
            unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor we own; failure leaves the default size.
        let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
        // SAFETY: as above; F_GETPIPE_SZ only reads.
        let size =
            if size > 0 { size } else { unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) } };
        let capacity = usize::try_from(size).ok().filter(|s| *s > 0).unwrap_or(64 * 1024);
        Ok(Pipe { read, write, filled: 0, capacity })
    }

    /// Moves up to `len` bytes from `socket` into the pipe (0: end of stream).
    pub fn fill_from(&mut self, socket: std::os::fd::RawFd, len: usize) -> io::Result<usize> {
        let room = self.capacity.saturating_sub(self.filled).min(len);
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = splice(socket, self.write.as_raw_fd(), room)?;
        self.filled += n;
        Ok(n)
    }

    /// Moves what the pipe holds into `socket`, as far as it takes it.
    pub fn drain_into(&mut self, socket: std::os::fd::RawFd) -> io::Result<usize> {
        let n = splice(self.read.as_raw_fd(), socket, self.filled)?;
        self.filled -= n.min(self.filled);
        Ok(n)
    }
}

fn splice(from: std::os::fd::RawFd, to: std::os::fd::RawFd, len: usize) -> io::Result<usize> {
    if len == 0 {
        return Ok(0);
    }
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: both descriptors are open for the duration of the call; null
    // offsets are required for sockets and pipes.
    let n = unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, flags) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n.unsigned_abs()) }
}
