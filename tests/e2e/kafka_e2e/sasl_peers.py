"""Peers around the SASL tests: generated certificates, a TLS endpoint (stunnel) in
front of a broker, and loopback names in /etc/hosts for `sni` mapping.

Own small versions (the TLS tests have theirs), so neither suite depends on the other.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from .ports import HOST
from .procs import ManagedProcess

HOSTS_FILE = Path("/etc/hosts")


@dataclass(frozen=True)
class GeneratedCerts:
    """What `kafka-proxy --generate-certs --sni-suffix SUFFIX --out-dir DIR` wrote."""

    dir: Path
    suffix: str

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "server_key.pem"

    def client(self, n: int = 1) -> tuple[Path, Path]:
        return self.dir / f"client{n}.pem", self.dir / f"client{n}_key.pem"

    def copy_to(self, target: Path) -> None:
        """Copy every file next to a configuration that names them relatively."""
        target.mkdir(parents=True, exist_ok=True)
        for f in self.dir.iterdir():
            shutil.copy2(f, target / f.name)


def generate_certs(binary: Path, out_dir: Path, suffix: str) -> GeneratedCerts:
    r = subprocess.run([str(binary), "--generate-certs", "--sni-suffix", suffix, "--out-dir", str(out_dir)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"--generate-certs failed ({r.returncode}): {r.stderr}")
    return GeneratedCerts(Path(out_dir), suffix)


def stunnel_binary() -> Path | None:
    p = os.environ.get("STUNNEL") or shutil.which("stunnel4") or shutil.which("stunnel")
    return Path(p) if p else None


class Stunnel:
    """stunnel terminating TLS on HOST:`port` (certificate `cert`/`key`) towards `target`."""

    def __init__(self, binary: Path, port: int, target: str, cert: Path, key: Path, workdir: Path):
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / f"stunnel-{port}.conf"
        conf.write_text(
            "foreground = yes\n"
            "pid =\n"
            "syslog = no\n"
            "debug = notice\n"
            "[kafka]\n"
            f"accept = {HOST}:{port}\n"
            f"connect = {target}\n"
            f"cert = {cert}\n"
            f"key = {key}\n"
        )
        self.process = ManagedProcess(f"stunnel:{port}", [binary, conf], workdir / f"stunnel-{port}.log")

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> "Stunnel":
        self.process.start()
        self.process.wait_ready(HOST, self.port, timeout)
        return self

    def stop(self) -> None:
        self.process.stop()


class HostsEntries:
    """Loopback names in /etc/hosts for the life of a test.

    Each line carries a marker unique to this object; `remove()` deletes exactly those
    lines. The file is rewritten in place (it may be a bind mount) under an exclusive
    flock, the same lock the TLS tests take, so parallel runs do not lose lines.
    """

    def __init__(self, path: Path = HOSTS_FILE):
        self.path = path
        self.marker = f"# kafka-proxy-e2e-sasl {uuid.uuid4().hex}"

    @staticmethod
    def writable(path: Path = HOSTS_FILE) -> bool:
        return os.access(path, os.W_OK)

    def _edit(self, change) -> None:
        with open(self.path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                text = f.read()
                new = change(text)
                if new != text:
                    f.seek(0)
                    f.write(new)
                    f.truncate()
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def add(self, names: list[str], address: str = HOST) -> None:
        def append(text: str) -> str:
            sep = "" if not text or text.endswith("\n") else "\n"
            return f"{text}{sep}{address} {' '.join(names)} {self.marker}\n"

        self._edit(append)

    def remove(self) -> None:
        self._edit(lambda text: "".join(
            ln for ln in text.splitlines(keepends=True) if not ln.rstrip().endswith(self.marker)))

    def __enter__(self) -> "HostsEntries":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
