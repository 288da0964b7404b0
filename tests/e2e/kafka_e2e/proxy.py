"""The kafka-proxy release binary as a child process, with a generated YAML config.

CLI contract: `kafka-proxy --config FILE --runtime tokio|mio` serves;
`kafka-proxy check --config FILE` validates and exits.
Port layout (broker_mapping.mode port_offset): bootstrap slot k at base+k,
broker N at base+20+N.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .paths import PROXY_BINARY
from .ports import HOST
from .procs import ManagedProcess

RUNTIMES = ("tokio", "mio")


@dataclass(frozen=True)
class PortLayout:
    """The proxy's port_offset mapping."""

    base: int
    hostname: str = HOST
    max_broker_id: int = 400

    def bootstrap_port(self, slot: int = 0) -> int:
        return self.base + slot

    def broker_port(self, node_id: int) -> int:
        return self.base + 20 + node_id

    @property
    def bootstrap(self) -> str:
        return f"{self.hostname}:{self.bootstrap_port(0)}"


def render_config(upstream: list[str], layout: PortLayout) -> str:
    """The PLAINTEXT-to-PLAINTEXT config of CONFIG.md "Base keys" for a loopback test."""
    servers = ", ".join(f'"{s}"' for s in upstream)
    return (
        f"bind_address: {HOST}\n"
        f"upstream:\n"
        f"  bootstrap_servers: [{servers}]\n"
        f"  security_protocol: PLAINTEXT\n"
        f"downstream:\n"
        f"  security_protocol: PLAINTEXT\n"
        f"broker_mapping:\n"
        f"  mode: port_offset\n"
        f"  port_offset:\n"
        f"    hostname: {layout.hostname}\n"
        f"    base: {layout.base}\n"
        f"    max_broker_id: {layout.max_broker_id}\n"
    )


def run_check(config_path: Path, binary: Path = PROXY_BINARY, timeout: float = 30.0):
    """`kafka-proxy check --config FILE`; the CompletedProcess (text output)."""
    return subprocess.run(
        [str(binary), "check", "--config", str(config_path)],
        capture_output=True, text=True, timeout=timeout,
    )


class KafkaProxy:
    """The release binary on one runtime; restart keeps config and ports."""

    def __init__(self, config_path: Path, layout: PortLayout, runtime: str, workdir: Path,
                 binary: Path = PROXY_BINARY):
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}")
        self.layout = layout
        self.runtime = runtime
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        self.process = ManagedProcess(
            f"kafka-proxy[{runtime}]",
            [binary, "--config", config_path, "--runtime", runtime],
            Path(workdir) / f"proxy-{runtime}.log",
            env=env,
        )

    @property
    def bootstrap(self) -> str:
        return self.layout.bootstrap

    def start(self, timeout: float = 15.0) -> "KafkaProxy":
        self.process.start()
        self.process.wait_ready(HOST, self.layout.bootstrap_port(0), timeout)
        return self

    def stop(self) -> int | None:
        return self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def restart(self, timeout: float = 15.0) -> None:
        self.process.stop()
        self.start(timeout)

    def log_text(self) -> str:
        return self.process.log_text()


class StandInProxy(KafkaProxy):
    """kafka_e2e.relay in the proxy's place (harness self-test only, `--proxy-stand-in`).

    It forwards bootstrap slot 0 and broker 111's port to tansu verbatim; the
    broker must advertise the proxy-side broker port itself. It does not
    re-encode anything, so tests of the proxy's own features skip under it.
    """

    def __init__(self, upstream: str, layout: PortLayout, runtime: str, workdir: Path, node_id: int):
        self.layout = layout
        self.runtime = runtime
        pkg_parent = Path(__file__).resolve().parents[1]
        maps = [
            f"{HOST}:{layout.bootstrap_port(0)}={upstream}",
            f"{HOST}:{layout.broker_port(node_id)}={upstream}",
        ]
        argv = [sys.executable, "-m", "kafka_e2e.relay"]
        for m in maps:
            argv += ["--map", m]
        self.process = ManagedProcess(
            f"stand-in-relay[{runtime}]", argv, Path(workdir) / f"proxy-{runtime}.log", cwd=pkg_parent
        )
