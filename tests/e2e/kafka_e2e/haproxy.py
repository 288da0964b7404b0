"""HAProxy (Debian's haproxy 2.6) in TCP mode in front of N proxy replicas.

Each replica listens on its own loopback address (127.0.0.2, .3, ...) on the
same ports; HAProxy binds those ports on 127.0.0.1 and forwards every
connection to the same port of one replica (`server NAME ADDR` without a port),
balancing round robin, health-checking a port every replica always listens on,
and re-dispatching a connection whose replica refuses it. Its admin socket
answers `show stat`: per replica, whether it is UP and how many connections it
was given.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from .ports import HOST
from .procs import ManagedProcess, ProcessError, wait_until

# Health checks: fast enough that a stopped replica is out within a second.
CHECK_INTERVAL_MS = 300


def haproxy_binary() -> Path:
    p = os.environ.get("HAPROXY") or shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").is_file() else None)
    if not p:
        raise RuntimeError("haproxy not found: run scripts/install-test-deps.sh and source its env.sh")
    return Path(p)


@dataclass(frozen=True)
class ServerStat:
    name: str
    status: str  # UP, DOWN, MAINT, ...
    sessions_total: int
    sessions_now: int


class HaProxy:
    """HAProxy forwarding `ports` (a list of (first, last) ranges) on 127.0.0.1 to `replicas`.

    `check_port` is a port every replica listens on while it serves (the bootstrap
    port, or the SNI port).
    """

    BACKEND = "replicas"

    def __init__(self, workdir: Path, ports: list[tuple[int, int]], replicas: list[str], check_port: int):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ports = ports
        self.replicas = replicas
        self.socket_path = self.workdir / "haproxy.sock"
        self.conf = self.workdir / "haproxy.cfg"
        binds = "\n".join(f"    bind {HOST}:{a}" + (f"-{b}" if b != a else "") for a, b in ports)
        servers = "\n".join(f"    server r{i + 1} {addr} check port {check_port}"
                            for i, addr in enumerate(replicas))
        self.conf.write_text(
            "global\n"
            f"    stats socket {self.socket_path} mode 600 level admin\n"
            "    maxconn 2000\n"
            "defaults\n"
            "    mode tcp\n"
            "    timeout connect 2s\n"
            "    timeout client 5m\n"
            "    timeout server 5m\n"
            # A refused connection (a replica just stopped or killed) is retried on another.
            "    retries 3\n"
            "    option redispatch 1\n"
            f"    default-server inter {CHECK_INTERVAL_MS}ms fall 1 rise 1\n"
            "frontend kafka\n"
            f"{binds}\n"
            f"    default_backend {self.BACKEND}\n"
            f"backend {self.BACKEND}\n"
            "    balance roundrobin\n"
            f"{servers}\n"
        )
        self.process = ManagedProcess("haproxy", [haproxy_binary(), "-db", "-f", self.conf],
                                      self.workdir / "haproxy.log", cwd=self.workdir)

    def start(self, timeout: float = 10.0) -> "HaProxy":
        self.process.start()
        self.process.wait_ready(HOST, self.ports[0][0], timeout)
        return self

    def stop(self) -> None:
        self.process.stop()

    def _command(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.socket_path))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, ServerStat]:
        """`show stat` for the backend's servers, by name (r1, r2, ...)."""
        text = self._command("show stat").lstrip("# ")
        out = {}
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("pxname") == self.BACKEND and row.get("svname", "").startswith("r"):
                out[row["svname"]] = ServerStat(row["svname"], row["status"], int(row["stot"] or 0),
                                                int(row["scur"] or 0))
        return out

    def wait_status(self, server: str, status: str, timeout: float = 15.0) -> None:
        def reached():
            if not self.process.running():
                raise ProcessError(f"haproxy exited:\n{self.process.log_tail()}")
            try:
                current = self.servers().get(server)
            except OSError:  # the admin socket appears a moment after the ports
                return False
            return current is not None and current.status.startswith(status)

        wait_until(reached, timeout, interval=0.05, what=f"haproxy to see {server} {status}")
