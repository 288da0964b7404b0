"""What the hostile-input suite measures and sends: the proxy's open file descriptors,
the connections it holds to the broker (counted from the kernel's socket table, so
from the broker's side), raw sockets that misbehave on purpose, and SASL PLAIN
logins spoken by hand.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import time
from pathlib import Path

from .ports import HOST
from .wire import _string


def open_fds(pid: int) -> int:
    """File descriptors the process holds now."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _tcp_table() -> list[tuple[int, int, int]]:
    """(local port, remote port, state) of every IPv4 TCP socket (/proc/net/tcp)."""
    rows = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, remote, state = parts[1], parts[2], int(parts[3], 16)
            rows.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state))
    return rows


TCP_ESTABLISHED = 0x01
TCP_CLOSE_WAIT = 0x08


def broker_connections(broker_port: int) -> int:
    """Established connections to the broker's port, as the broker's side of them."""
    return sum(1 for local, _, state in _tcp_table() if local == broker_port and state == TCP_ESTABLISHED)


def close_wait_from(port: int) -> int:
    """Sockets on `port` whose peer has closed and which the owner has not closed yet."""
    return sum(1 for local, _, state in _tcp_table() if local == port and state == TCP_CLOSE_WAIT)


def settle(predicate, timeout: float, interval: float = 0.05):
    """Poll `predicate` until true or `timeout`; returns (value, seconds waited)."""
    t0 = time.monotonic()
    while True:
        value = predicate()
        if value or time.monotonic() - t0 >= timeout:
            return value, time.monotonic() - t0
        time.sleep(interval)


def connect(port: int, source: str | None = None, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect((HOST, port))
    return s


def closed_by_peer(s: socket.socket, timeout: float) -> float | None:
    """Seconds until the peer closed the connection (EOF or reset), None if it did not."""
    t0 = time.monotonic()
    s.settimeout(0.05)
    while time.monotonic() - t0 < timeout:
        try:
            if s.recv(65536) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return time.monotonic() - t0
    return None


def request_frame(api_key: int, version: int, correlation: int, body: bytes = b"",
                  client_id: str = "hostile") -> bytes:
    """A request with header v1 (classic)."""
    frame = struct.pack(">hhi", api_key, version, correlation) + _string(client_id) + body
    return struct.pack(">i", len(frame)) + frame


def read_frame(s: socket.socket) -> bytes:
    """One response frame's body (after the size), or raises ConnectionError."""
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    return recv_exact(s, size)


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by peer")
        buf += chunk
    return bytes(buf)


def plain_login(s: socket.socket, user: str, password: str) -> int:
    """SaslHandshake v1 (PLAIN) then SaslAuthenticate v1; the authenticate error code."""
    s.sendall(request_frame(17, 1, 1, _string("PLAIN")))
    handshake = read_frame(s)
    if struct.unpack(">h", handshake[4:6])[0] != 0:
        raise ConnectionError(f"handshake refused: {handshake!r}")
    token = f"\0{user}\0{password}".encode()
    s.sendall(request_frame(36, 1, 2, struct.pack(">i", len(token)) + token))
    reply = read_frame(s)
    return struct.unpack(">h", reply[4:6])[0]


def tls_context(ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    return ctx
