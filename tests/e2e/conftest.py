"""Fixtures: tansu on free loopback ports, the proxy on each runtime, client libraries.

Every process is stopped by PID in the fixture's teardown (and killed at the
end of the session if anything survived). On a failing test the logs of every
process the test started are attached to the report.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from kafka_e2e.clients import CLIENT_LIBS, client_lib
from kafka_e2e.paths import PROXY_BINARY, tansu_sqlite_binary
from kafka_e2e.ports import pick_port, pick_proxy_base
from kafka_e2e.procs import ManagedProcess, kill_all_live
from kafka_e2e.proxy import RUNTIMES, KafkaProxy, PortLayout, StandInProxy, render_config
from kafka_e2e.tansu import SCRAM_USERS, TANSU_NODE_ID, TansuBroker

# Fixtures of the TLS tests (test_tls_*.py) and of the SASL tests (test_sasl_*.py).
pytest_plugins = ["kafka_e2e.tls_fixtures", "kafka_e2e.sasl_fixtures"]


def pytest_addoption(parser):
    parser.addoption(
        "--proxy-stand-in", action="store_true",
        help="harness self-test: run the proxy scenarios with a plain TCP relay in the proxy's place",
    )


# ---------------------------------------------------------------------------
# THE ONE PLACE that checks the binary under test exists (scripts/test.sh builds
# target/dist/kafka-proxy and points KAFKA_PROXY_BIN at it; by hand, target/release).
# ---------------------------------------------------------------------------
def require_proxy_binary() -> None:
    if not PROXY_BINARY.is_file():
        pytest.fail(f"{PROXY_BINARY} is missing: run `cargo build --release` first, or set KAFKA_PROXY_BIN")


@pytest.fixture
def proxy_binary() -> Path:
    """The release binary, for tests that run it themselves (fails when it is missing)."""
    require_proxy_binary()
    return PROXY_BINARY


@pytest.fixture
def stand_in(request) -> bool:
    return bool(request.config.getoption("--proxy-stand-in"))


def _track(request, proc: ManagedProcess) -> None:
    request.node.stash.setdefault(_PROCS, []).append(proc)


_PROCS = pytest.StashKey[list]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for proc in item.stash.get(_PROCS, []):
            report.sections.append((f"log of {proc.name} ({proc.log_path})", proc.log_tail(12000)))
    return report


def pytest_sessionfinish(session, exitstatus):
    left = kill_all_live()
    if left:
        print(f"\nkilled leftover processes: {', '.join(left)}")


@pytest.fixture
def unique():
    """A short unique suffix for topic and group names."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def layout() -> PortLayout:
    return PortLayout(pick_proxy_base())


def _tansu(request, workdir: Path, avoid: set[int], advertised_port: int | None):
    broker = TansuBroker(pick_port(avoid=avoid), workdir, advertised_port=advertised_port)
    _track(request, broker.process)
    broker.start()
    return broker


@pytest.fixture
def direct_tansu(request, tmp_path: Path):
    """tansu 0.6.0, memory storage, node id 111, advertising its own port (no proxy)."""
    broker = _tansu(request, tmp_path / "tansu", set(), None)
    yield broker
    broker.stop()


@pytest.fixture
def tansu(request, tmp_path: Path, layout: PortLayout, stand_in: bool):
    """tansu for the proxy scenarios, on a free port outside the proxy's span.

    Under --proxy-stand-in it advertises the proxy-side broker port, since the
    relay rewrites nothing.
    """
    span = set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))
    advertised = layout.broker_port(TANSU_NODE_ID) if stand_in else None
    broker = _tansu(request, tmp_path / "tansu", span, advertised)
    yield broker
    broker.stop()


@pytest.fixture
def sasl_tansu(request, tmp_path: Path):
    """tansu 0.6.0 built with sqlite, requiring SASL (SCRAM_USERS exist), own port advertised.

    Users are created while authentication is off, then the broker restarts with
    --authentication on the same sqlite file.
    """
    binary = tansu_sqlite_binary()
    if binary is None:
        pytest.skip("tansu with sqlite not installed (scripts/install-test-deps.sh --with-sasl-broker)")
    broker = TansuBroker(pick_port(), tmp_path / "tansu-sqlite", binary=binary,
                         storage="sqlite://tansu.db", name="tansu-sqlite")
    _track(request, broker.process)
    broker.start()
    for user, password, mechanism in SCRAM_USERS.values():
        broker.create_user(user, password, mechanism)
    broker.stop()
    broker.authentication = True
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(params=RUNTIMES)
def runtime(request) -> str:
    return request.param


@pytest.fixture
def proxy_config(tmp_path: Path, tansu: TansuBroker, layout: PortLayout) -> Path:
    path = tmp_path / "proxy.yaml"
    path.write_text(render_config([tansu.bootstrap], layout))
    return path


@pytest.fixture
def proxy(request, tmp_path: Path, tansu: TansuBroker, layout: PortLayout, runtime: str,
          proxy_config: Path, stand_in: bool):
    """The proxy (runtime from the `runtime` parameter) in front of `tansu`."""
    if stand_in:
        p = StandInProxy(tansu.bootstrap, layout, runtime, tmp_path, TANSU_NODE_ID)
    else:
        require_proxy_binary()
        p = KafkaProxy(proxy_config, layout, runtime, tmp_path)
    _track(request, p.process)
    p.start()
    yield p
    p.stop()


@pytest.fixture
def real_proxy(stand_in: bool):
    """Marks a test that checks the proxy's own behaviour: it cannot run under the stand-in."""
    if stand_in:
        pytest.skip("checks the proxy's own behaviour; the --proxy-stand-in relay has none")


@pytest.fixture(params=CLIENT_LIBS)
def lib(request):
    return client_lib(request.param)
