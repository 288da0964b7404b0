//! Sockets: binding listeners and the TCP options of every connection, the
//! same for both runtimes.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::os::fd::AsFd;

use kafka_proxy_core::config::SocketOptions;
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

/// Pending connections a listener queues before the kernel refuses more.
const BACKLOG: i32 = 1024;

/// Binds a non-blocking listener on `addr`. With `reuse_port`, another
/// process (a newer `kafka-proxy` during a restart) may bind the same
/// address at the same time, and the kernel spreads new connections over both.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    bind_with_backlog(addr, reuse_port, BACKLOG)
}

/// [`bind`] with a queue of `backlog` pending connections (the admin
/// endpoint's listener queues fewer than the Kafka listeners).
pub fn bind_with_backlog(addr: SocketAddr, reuse_port: bool, backlog: i32) -> io::Result<TcpListener> {
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Applies the TCP options to an accepted or connected socket: no Nagle
/// delay (frames leave as soon as they are complete), keepalive, and buffer
/// sizes when configured.
pub fn configure(socket: &impl AsFd, options: &SocketOptions) -> io::Result<()> {
    let socket = SockRef::from(socket);
    socket.set_tcp_nodelay(true)?;
    match options.keepalive {
        Some(idle) => {
            let interval = (idle / 3).max(std::time::Duration::from_secs(1));
            let keepalive = TcpKeepalive::new().with_time(idle).with_interval(interval).with_retries(3);
            socket.set_tcp_keepalive(&keepalive)?;
        }
        None => socket.set_keepalive(false)?,
    }
    if let Some(bytes) = options.send_buffer_bytes {
        socket.set_send_buffer_size(bytes)?;
    }
    if let Some(bytes) = options.receive_buffer_bytes {
        socket.set_recv_buffer_size(bytes)?;
    }
    Ok(())
}

/// Half-closes a connection: the peer reads end of stream, and may still
/// send (the session lingers, reading, until it closes too).
pub fn shutdown_write(socket: &impl AsFd) -> io::Result<()> {
    match SockRef::from(socket).shutdown(Shutdown::Write) {
        // Already closed by the peer: nothing left to tell it.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    #[test]
    fn reuse_port_lets_two_listeners_share_an_address() {
        let first = bind("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind(addr, true).expect("a second process can bind during a restart");
        assert_eq!(second.local_addr().unwrap(), addr);
        let without = bind(addr, false);
        assert_eq!(without.unwrap_err().kind(), io::ErrorKind::AddrInUse, "only when asked");
    }

    #[test]
    fn options_and_half_close() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let options = SocketOptions {
            keepalive: Some(Duration::from_secs(30)),
            send_buffer_bytes: Some(64 * 1024),
            ..SocketOptions::default()
        };
        configure(&client, &options).unwrap();
        let sock = SockRef::from(&client);
        assert!(sock.tcp_nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
        assert!(sock.send_buffer_size().unwrap() >= 64 * 1024);
        configure(&client, &SocketOptions { keepalive: None, ..options }).unwrap();
        assert!(!sock.keepalive().unwrap());
        // The accepted side half-closes: the client reads end of stream.
        let mut accepted = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        };
        accepted.set_nonblocking(false).unwrap();
        shutdown_write(&accepted).unwrap();
        let mut client = client;
        let mut buf = [0u8; 8];
        assert_eq!(client.read(&mut buf).unwrap(), 0);
        // It may still send; the half-closed side reads it.
        std::io::Write::write_all(&mut client, b"late").unwrap();
        assert_eq!(accepted.read(&mut buf).unwrap(), 4);
    }
}
