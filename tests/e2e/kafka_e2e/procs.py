"""Child processes that are always cleaned up by PID, with their output in a log file.

Every process started here is registered in `LIVE` so a pytest hook (or an
atexit handler) can kill what a failing test left behind. Waits are bounded.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LIVE: dict[int, "ManagedProcess"] = {}

# util-linux setpriv (Essential in Debian) makes the kernel SIGKILL a child when the
# thread that started it dies, even by SIGKILL: nothing outlives a killed test run.
# It execs the program, so the PID stays the program's.
_PDEATHSIG = [p, "--pdeathsig", "KILL"] if (p := shutil.which("setpriv")) else []


class ProcessError(RuntimeError):
    """A managed process did not start, exited early or did not become ready."""


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class ProcStats:
    """CPU seconds (utime+stime) and peak RSS of a live process, read from /proc."""

    cpu_seconds: float
    vm_hwm_kib: int


def proc_stats(pid: int) -> ProcStats:
    """utime+stime from /proc/<pid>/stat and VmHWM from /proc/<pid>/status."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # Field 2 (comm) may contain spaces; everything after the last ')' is fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return ProcStats(cpu, hwm)


class ManagedProcess:
    """One child process: argv, a log file capturing stdout+stderr, stop by PID."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env=None, cwd=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> "ManagedProcess":
        if self.running():
            raise ProcessError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {' '.join(self.argv)}\n".encode())
        log.flush()
        try:
            self.proc = subprocess.Popen(
                _PDEATHSIG + self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
            )
        finally:
            log.close()
        LIVE[self.proc.pid] = self
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait_ready(self, host: str, port: int, timeout: float = 15.0) -> None:
        """Wait until host:port accepts connections; fail at once if the process exits."""

        def ready():
            if not self.running():
                raise ProcessError(
                    f"{self.name} exited with code {self.returncode()} before listening on "
                    f"{host}:{port}\n--- {self.name} log ---\n{self.log_tail()}"
                )
            return port_accepts(host, port)

        try:
            wait_until(ready, timeout, what=f"{self.name} to listen on {host}:{port}")
        except TimeoutError as e:
            raise ProcessError(f"{e}\n--- {self.name} log ---\n{self.log_tail()}") from None

    def signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.proc.pid, sig)

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL by PID and reap."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=timeout)
        LIVE.pop(self.proc.pid, None)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        LIVE.pop(self.proc.pid, None)
        return self.proc.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, max_chars: int = 6000) -> str:
        text = self.log_text()
        return text if len(text) <= max_chars else "...\n" + text[-max_chars:]

    def stats(self) -> ProcStats:
        if not self.running():
            raise ProcessError(f"{self.name} is not running")
        return proc_stats(self.proc.pid)


def kill_all_live() -> list[str]:
    """SIGKILL every registered process that is still alive; names of those killed."""
    killed = []
    for pid, mp in list(LIVE.items()):
        if mp.running():
            killed.append(f"{mp.name} (pid {pid})")
            try:
                mp.kill()
            except Exception:
                pass
        LIVE.pop(pid, None)
    return killed


atexit.register(kill_all_live)
