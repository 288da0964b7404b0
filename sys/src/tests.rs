//! Against real descriptors: socket pairs, loopback TCP and kernel pipes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::thread;

use bytes::BytesMut;

use super::{Pipe, read_into};

/// A connected loopback TCP pair: (the accepted end, the connecting end).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let connecting = TcpStream::connect(listener.local_addr().expect("local addr")).expect("connect");
    let (accepted, _) = listener.accept().expect("accept");
    (accepted, connecting)
}

/// Bytes that differ from one offset to the next, so a reordering shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn read_into_appends_after_what_the_buffer_holds() {
    let (mut peer, socket) = UnixStream::pair().expect("socketpair");
    peer.write_all(b"hello").expect("write");
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"ab");

    assert_eq!(read_into(&socket, &mut buf).expect("read"), 5);
    assert_eq!(&buf[..], b"abhello");

    peer.write_all(b" world").expect("write");
    assert_eq!(read_into(&socket, &mut buf).expect("read"), 6);
    assert_eq!(&buf[..], b"abhello world");
}

#[test]
fn read_into_reads_no_more_than_the_spare_capacity() {
    let (mut peer, socket) = UnixStream::pair().expect("socketpair");
    let data = pattern(4096);
    peer.write_all(&data).expect("write");
    let mut buf = BytesMut::with_capacity(100);
    let spare = buf.capacity();

    assert_eq!(read_into(&socket, &mut buf).expect("read"), spare);
    assert_eq!(&buf[..], &data[..spare]);
    assert_eq!(read_into(&socket, &mut buf).expect("no room"), 0, "a full buffer reads nothing");

    buf.reserve(data.len());
    let mut total = spare;
    while total < data.len() {
        total += read_into(&socket, &mut buf).expect("read the rest");
    }
    assert_eq!(&buf[..], &data[..]);
}

#[test]
fn read_into_returns_zero_at_end_of_stream() {
    let (peer, socket) = UnixStream::pair().expect("socketpair");
    drop(peer);
    let mut buf = BytesMut::with_capacity(16);
    assert_eq!(read_into(&socket, &mut buf).expect("read at eof"), 0);
    assert!(buf.is_empty());
}

#[test]
fn read_into_would_block_on_an_empty_non_blocking_socket() {
    let (_peer, socket) = UnixStream::pair().expect("socketpair");
    socket.set_nonblocking(true).expect("non-blocking");
    let mut buf = BytesMut::with_capacity(16);
    let error = read_into(&socket, &mut buf).expect_err("nothing to read");
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    assert!(buf.is_empty());
}

#[test]
fn new_pipe_is_empty_and_reports_the_kernel_capacity() {
    let pipe = Pipe::new().expect("pipe");
    assert_eq!(pipe.filled, 0);
    assert_eq!(pipe.capacity, rustix::pipe::fcntl_getpipe_size(&pipe.write).expect("F_GETPIPE_SZ"));
    assert!(pipe.capacity >= 4096, "{}", pipe.capacity);
}

#[test]
fn splice_moves_bytes_socket_to_pipe_to_socket() {
    let (source, mut writer) = tcp_pair();
    let (destination, mut reader) = tcp_pair();
    let data = pattern(3 << 20);
    let expected = data.clone();
    let writing = thread::spawn(move || {
        writer.write_all(&data).expect("write source");
        writer.shutdown(Shutdown::Write).expect("shutdown");
    });
    let reading = thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).expect("read destination");
        got
    });

    let mut pipe = Pipe::new().expect("pipe");
    let mut moved = 0;
    loop {
        // Blocking sockets: the splice in waits for bytes, the one out for room.
        let n = pipe.fill_from(source.as_raw_fd(), usize::MAX).expect("fill");
        if n == 0 {
            break;
        }
        assert!(pipe.filled <= pipe.capacity);
        while pipe.filled > 0 {
            moved += pipe.drain_into(destination.as_raw_fd()).expect("drain");
        }
    }
    destination.shutdown(Shutdown::Write).expect("shutdown destination");

    writing.join().expect("writer");
    assert_eq!(moved, expected.len());
    assert!(reading.join().expect("reader") == expected, "the destination got other bytes");
}

#[test]
fn fill_from_takes_no_more_than_asked() {
    let (source, mut peer) = tcp_pair();
    peer.write_all(b"0123456789").expect("write");
    let mut pipe = Pipe::new().expect("pipe");
    assert_eq!(pipe.fill_from(source.as_raw_fd(), 4).expect("fill"), 4);
    assert_eq!(pipe.filled, 4);

    let (mut out, destination) = UnixStream::pair().expect("socketpair");
    assert_eq!(pipe.drain_into(destination.as_raw_fd()).expect("drain"), 4);
    assert_eq!(pipe.filled, 0);
    let mut got = [0u8; 4];
    out.read_exact(&mut got).expect("read");
    assert_eq!(&got, b"0123");
}

#[test]
fn fill_from_returns_zero_at_end_of_stream() {
    let (source, peer) = tcp_pair();
    drop(peer);
    let mut pipe = Pipe::new().expect("pipe");
    assert_eq!(pipe.fill_from(source.as_raw_fd(), 1024).expect("fill at eof"), 0);
    assert_eq!(pipe.filled, 0);
}

#[test]
fn fill_from_would_block_on_an_empty_non_blocking_socket() {
    let (source, _peer) = tcp_pair();
    source.set_nonblocking(true).expect("non-blocking");
    let mut pipe = Pipe::new().expect("pipe");
    let error = pipe.fill_from(source.as_raw_fd(), 1024).expect_err("nothing to splice");
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(pipe.filled, 0);
}

#[test]
fn fill_from_would_block_when_the_pipe_is_full() {
    let (source, mut peer) = tcp_pair();
    peer.write_all(b"more").expect("write");
    let mut pipe = Pipe::new().expect("pipe");
    pipe.filled = pipe.capacity;
    let error = pipe.fill_from(source.as_raw_fd(), 1024).expect_err("no room");
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(pipe.filled, pipe.capacity);
}

#[test]
fn drain_into_would_block_when_the_socket_is_full() {
    let (source, mut peer) = UnixStream::pair().expect("socketpair");
    let (_unread, destination) = UnixStream::pair().expect("socketpair");
    destination.set_nonblocking(true).expect("non-blocking");
    source.set_nonblocking(true).expect("non-blocking");
    peer.set_nonblocking(true).expect("non-blocking");
    let mut pipe = Pipe::new().expect("pipe");
    let chunk = pattern(64 * 1024);
    // The destination's peer never reads: its buffer fills long before
    // 4096 chunks went through.
    for _ in 0..4096 {
        match peer.write(&chunk) {
            Ok(_) => {}
            Err(error) => assert_eq!(error.kind(), io::ErrorKind::WouldBlock),
        }
        match pipe.fill_from(source.as_raw_fd(), usize::MAX) {
            Ok(n) => assert!(n > 0),
            Err(error) => assert_eq!(error.kind(), io::ErrorKind::WouldBlock),
        }
        if let Err(error) = pipe.drain_into(destination.as_raw_fd()) {
            assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
            assert!(pipe.filled > 0, "the bytes stay in the pipe");
            return;
        }
    }
    panic!("the destination never filled up");
}

#[test]
fn drain_into_an_empty_pipe_moves_nothing() {
    let (_peer, destination) = UnixStream::pair().expect("socketpair");
    let mut pipe = Pipe::new().expect("pipe");
    assert_eq!(pipe.drain_into(destination.as_raw_fd()).expect("drain"), 0);
}
