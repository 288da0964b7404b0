"""Which TCP peers does this process hold connections to? (Linux /proc.)

A proxy that forwarded the broker's own address in some response would still
"work" on loopback, because the test process can reach tansu directly. This
check catches that: while the clients are connected, none of this process's
sockets may point at the broker's port.
"""

from __future__ import annotations

import os
import re

_SOCKET = re.compile(r"socket:\[(\d+)\]")


def _own_socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            m = _SOCKET.match(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    return inodes


def own_tcp_peer_ports() -> set[int]:
    """Remote ports of the established IPv4/IPv6 TCP connections this process owns."""
    mine = _own_socket_inodes()
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    state, inode = cols[3], cols[9]
                    if inode in mine and state == "01":  # ESTABLISHED
                        ports.add(int(cols[2].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            continue
    return ports
