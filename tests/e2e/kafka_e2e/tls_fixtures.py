"""Fixtures of the TLS end-to-end tests (a pytest plugin, listed in conftest.py).

Every process is stopped by PID in teardown and its log is attached to a failing
test's report; /etc/hosts lines added by a test are removed in teardown whatever
happened.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from .ports import HOST, pick_port, pick_proxy_base
from .procs import ManagedProcess
from .proxy import KafkaProxy, PortLayout
from .tansu import TansuBroker
from .tls import (
    AdvertisingTansu, GeneratedPki, HostsEntries, OwnCa, Stunnel, generate_certs,
)

_TLS_PROCS = pytest.StashKey[list]()


def track(request, proc: ManagedProcess) -> None:
    """Attach `proc`'s log to the report if the test fails."""
    request.node.stash.setdefault(_TLS_PROCS, []).append(proc)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for proc in item.stash.get(_TLS_PROCS, []):
            report.sections.append((f"log of {proc.name} ({proc.log_path})", proc.log_tail(12000)))
    return report


class TlsProxy(KafkaProxy):
    """The release binary with a TLS-capable config: ready when `listen_port` accepts."""

    def __init__(self, config_path: Path, runtime: str, workdir: Path, binary: Path, listen_port: int,
                 bootstrap: str, layout: PortLayout | None = None, env: dict | None = None):
        super().__init__(config_path, layout or PortLayout(listen_port), runtime, workdir, binary=binary)
        self.listen_port = listen_port
        self._bootstrap = bootstrap
        if env:
            self.process.env.update(env)

    @property
    def bootstrap(self) -> str:
        return self._bootstrap

    def start(self, timeout: float = 15.0) -> "TlsProxy":
        self.process.start()
        self.process.wait_ready(HOST, self.listen_port, timeout)
        return self


@dataclass
class TlsWorld:
    """Starts and tracks the processes of one test; stops them all in teardown."""

    request: object
    workdir: Path
    binary: Path
    runtime: str

    def __post_init__(self):
        self._stops = []

    def _own(self, thing):
        track(self.request, thing.process)
        self._stops.append(thing.stop)
        return thing

    def tansu(self, port: int | None = None, advertised_host: str | None = None,
              advertised_port: int | None = None, **kw) -> TansuBroker:
        port = port or pick_port()
        workdir = self.workdir / f"tansu-{port}"
        if advertised_host is None:
            broker = TansuBroker(port, workdir, advertised_port=advertised_port, **kw)
        else:
            broker = AdvertisingTansu(port, workdir, advertised_host, advertised_port or port, **kw)
        self._own(broker)
        return broker

    def stunnel(self, port: int, connect: str, identity) -> Stunnel:
        s = Stunnel(port, connect, identity, self.workdir / f"stunnel-{port}", name=f"stunnel-{port}")
        return self._own(s)

    def proxy(self, config: str | Path, listen_port: int, bootstrap: str, layout: PortLayout | None = None,
              env: dict | None = None, name: str = "proxy") -> TlsProxy:
        """The proxy (not started) on this test's runtime; `config` is the text, or a file to use as is."""
        if isinstance(config, Path):
            path = config
        else:
            path = self.workdir / f"{name}.yaml"
            path.write_text(config)
        p = TlsProxy(path, self.runtime, self.workdir / name, self.binary, listen_port, bootstrap,
                     layout=layout, env=env)
        return self._own(p)

    def stop_all(self) -> None:
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception:
                pass


@pytest.fixture
def tls_world(request, tmp_path: Path, proxy_binary: Path, runtime: str, real_proxy):
    """Process factory for one TLS test on one runtime (skips under --proxy-stand-in)."""
    world = TlsWorld(request, tmp_path, proxy_binary, runtime)
    yield world
    world.stop_all()


@pytest.fixture
def pki(tmp_path: Path, proxy_binary: Path) -> GeneratedPki:
    """A CA, server and client certificates from `kafka-proxy --generate-certs`.

    The suffix is unique per test, so the names a test puts in /etc/hosts are its own.
    """
    suffix = f"t{uuid.uuid4().hex[:8]}.kproxy-e2e.test"
    return generate_certs(proxy_binary, tmp_path / "pki", suffix)


@pytest.fixture
def own_ca(tmp_path: Path) -> OwnCa:
    """A second CA that nothing trusts unless a test says so."""
    return OwnCa("other", tmp_path / "own-ca")


@pytest.fixture
def hosts():
    """Loopback names in /etc/hosts, removed in teardown (only the lines this test added)."""
    if not os.access("/etc/hosts", os.W_OK):
        pytest.skip("/etc/hosts is not writable: SNI tests need loopback names")
    entries = HostsEntries()
    try:
        yield entries
    finally:
        entries.remove()


@pytest.fixture
def proxy_span() -> PortLayout:
    """A port_offset layout whose whole span is free (bootstrap B, broker 111 at B+131)."""
    return PortLayout(pick_proxy_base(), hostname="localhost")
