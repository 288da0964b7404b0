//! The one system call the loop makes by hand: reading into uninitialised
//! spare capacity, so no read pays for zeroing its buffer first.
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
