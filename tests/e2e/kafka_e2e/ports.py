"""Loopback port selection.

Ports are drawn at random from a range below Linux's default ephemeral range
(32768-60999), so that outgoing client connections cannot take a port between
our check and the server's bind. Every check is a real bind attempt.
"""

from __future__ import annotations

import random
import socket

HOST = "127.0.0.1"
LOW, HIGH = 12000, 32000


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a listening socket can be bound to host:port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(avoid: set[int] | None = None, attempts: int = 200) -> int:
    """One free port from the test range, not in `avoid`."""
    avoid = avoid or set()
    for _ in range(attempts):
        port = random.randint(LOW, HIGH)
        if port not in avoid and port_is_free(port):
            return port
    raise RuntimeError(f"no free loopback port found in {attempts} attempts")


def pick_proxy_base(
    max_broker_id: int = 400, avoid: set[int] | None = None, attempts: int = 50
) -> int:
    """A port_offset base B such that B..B+20+max_broker_id are all bindable.

    The proxy binds the bootstrap slot B and B+20+N for every broker N; checking
    the whole span keeps any broker id up to max_broker_id usable.
    """
    avoid = avoid or set()
    span = 20 + max_broker_id + 1
    for _ in range(attempts):
        base = random.randint(LOW, HIGH - span)
        ports = range(base, base + span)
        if any(p in avoid for p in ports):
            continue
        if all(port_is_free(p) for p in ports):
            return base
    raise RuntimeError(f"no free span of {span} loopback ports found in {attempts} attempts")
