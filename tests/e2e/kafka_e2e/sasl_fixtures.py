"""Fixtures of the SASL end-to-end tests (test_sasl_*.py; a pytest plugin listed in conftest.py).

Brokers and proxies that many tests share live for one test module (one per runtime
for proxies), which keeps the suite within its time budget: a proxy starts in
milliseconds, but tansu with sqlite must start twice (users are created while
authentication is off). Every process is stopped by PID in teardown; the logs of
the processes a failing test used are attached to its report.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .paths import PROXY_BINARY, tansu_sqlite_binary
from .procs import ManagedProcess
from .proxy import RUNTIMES, PortLayout
from .sasl import TokenIssuer
from .tls import GeneratedPki, generate_certs
from .sasl_proxy import SaslProxy, reserve_port
from .tansu import TansuBroker

# SCRAM users of the sqlite tansu: name -> (password, tansu's mechanism name).
# svc-a and svc-b are both SCRAM-SHA-256 because one proxy logs in with one mechanism.
BROKER_USERS = {
    "svc-a": ("svc-a-secret", "scram256"),
    "svc-b": ("svc-b-secret", "scram256"),
    "svc-c": ("svc-c-secret", "scram512"),
}

_SASL_PROCS = pytest.StashKey[list]()
# Processes of module-scoped fixtures, by test module name: attached to every failing test there.
_MODULE_PROCS: dict[str, list[ManagedProcess]] = {}


def track(request, proc: ManagedProcess) -> None:
    """Attach `proc`'s log to the report of a failing test (module fixtures: every test of the module)."""
    if request.scope == "module":
        _MODULE_PROCS.setdefault(request.module.__name__, []).append(proc)
    else:
        request.node.stash.setdefault(_SASL_PROCS, []).append(proc)


@pytest.fixture(autouse=True)
def _sasl_module_logs(request):
    """In test_sasl_* modules, a failing test's report shows the module's shared processes' logs."""
    procs = _MODULE_PROCS.get(request.module.__name__) if request.module else None
    if procs:
        request.node.stash.setdefault(_SASL_PROCS, []).extend(procs)
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        seen = set()
        for proc in item.stash.get(_SASL_PROCS, []):
            if id(proc) not in seen:
                seen.add(id(proc))
                report.sections.append((f"log of {proc.name} ({proc.log_path})", proc.log_tail(12000)))
    return report

def require_real_proxy(request) -> None:
    """SASL is the proxy's own behaviour: skip under --proxy-stand-in; fail without the release
    binary (as conftest.require_proxy_binary does)."""
    if request.config.getoption("--proxy-stand-in", default=False):
        pytest.skip("checks the proxy's own SASL behaviour; the --proxy-stand-in relay has none")
    if not PROXY_BINARY.is_file():
        pytest.fail(f"{PROXY_BINARY} is missing: run `cargo build --release` first (scripts/test.sh does)")


def start_proxy(request, workdir: Path, config_text: str, layout: PortLayout, runtime: str,
                **kwargs) -> SaslProxy:
    """A started SaslProxy whose log is attached to failing tests (stop it yourself)."""
    require_real_proxy(request)
    proxy = SaslProxy(workdir, config_text, layout, runtime, **kwargs)
    track(request, proxy.process)
    proxy.start()
    return proxy


@pytest.fixture(scope="module", params=RUNTIMES)
def sasl_runtime(request) -> str:
    """The proxy runtime for a module's shared proxies (tests run once per runtime)."""
    return request.param


@pytest.fixture(scope="module")
def memory_tansu(request, tmp_path_factory):
    """The prebuilt tansu (PLAINTEXT, memory storage) for downstream-only SASL, own port advertised."""
    broker = TansuBroker(reserve_port(), tmp_path_factory.mktemp("tansu"))
    track(request, broker.process)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def scram_tansu(request, tmp_path_factory):
    """tansu built with sqlite, requiring SASL SCRAM; BROKER_USERS exist; own port advertised."""
    binary = tansu_sqlite_binary()
    if binary is None:
        pytest.skip("tansu with sqlite not installed (scripts/install-test-deps.sh --with-sasl-broker)")
    broker = start_scram_tansu(request, binary, reserve_port(), tmp_path_factory.mktemp("tansu-sqlite"))
    yield broker
    broker.stop()


def start_scram_tansu(request, binary: Path, port: int, workdir: Path, advertised_port: int | None = None,
                      name: str = "tansu-sqlite") -> TansuBroker:
    """A started sqlite tansu with --authentication and BROKER_USERS.

    It logs successful logins (tansu_auth at debug: `Success { auth_id: "USER" }`), so a
    test can see which identity the broker authenticated.
    """
    broker = TansuBroker(port, workdir, advertised_port=advertised_port, binary=binary,
                         storage="sqlite://tansu.db", name=name)
    broker.process.env = {**os.environ, "RUST_LOG": "tansu_auth=debug"}
    track(request, broker.process)
    # Users are created while authentication is off; the broker must answer on its own
    # port for that, so it advertises that port until the restart.
    broker.advertised_port = port
    broker.start()
    for user, (password, mechanism) in BROKER_USERS.items():
        broker.create_user(user, password, mechanism)
    broker.stop()
    broker.advertised_port = advertised_port or port
    broker.authentication = True
    broker.start()
    return broker


def broker_logins(log: str) -> list[str]:
    """The users a start_scram_tansu broker authenticated, in order."""
    import re

    return re.findall(r'Success \{ auth_id: "([^"]*)" \}', log)


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture(scope="module")
def certs(request, tmp_path_factory) -> GeneratedPki:
    """`kafka-proxy --generate-certs --sni-suffix test`: a CA, a server certificate (*.test,
    localhost, 127.0.0.1) and two client certificates."""
    require_real_proxy(request)
    return generate_certs(PROXY_BINARY, tmp_path_factory.mktemp("certs"), "test")


def scram_credentials_entry(user: str, password: str, mechanism: str, iterations: int) -> str:
    """`kafka-proxy scram-credentials` output: a YAML credentials entry for `user`."""
    r = subprocess.run(
        [str(PROXY_BINARY), "scram-credentials", "--mechanism", mechanism, "--iterations", str(iterations),
         "--user", user],
        input=password + "\n", capture_output=True, text=True, timeout=30, env=dict(os.environ),
    )
    if r.returncode != 0:
        raise RuntimeError(f"scram-credentials failed: {r.stderr}")
    return r.stdout


# Passwords of the users the proxy itself knows (downstream_sasl).
PASSWORDS = {"alice": "alice-Pa55-word", "bob": "bob-Pa55-word"}
ALL_MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


def downstream_sasl(workdir: Path, issuer: TokenIssuer, mechanisms: list[str] | None = None) -> dict:
    """`downstream` for SASL_PLAINTEXT: alice inline (a password: PLAIN, and SCRAM hashed at load),
    bob pre-computed SCRAM-SHA-256 by `kafka-proxy scram-credentials` in a credentials file,
    OAUTHBEARER tokens from `issuer` checked against a JWKS file."""
    creds = workdir / "credentials.yaml"
    entry = scram_credentials_entry("bob", PASSWORDS["bob"], "SCRAM-SHA-256", 8192)
    creds.write_text("users:\n" + "".join(f"  {ln}\n" for ln in entry.splitlines()))
    jwks = workdir / "jwks.json"
    jwks.write_text(issuer.jwks_json())
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanisms": mechanisms or ALL_MECHANISMS,
        "credentials": {"users": {"alice": PASSWORDS["alice"]}, "file": str(creds)},
        "oauthbearer": issuer.oauth_settings(jwks_file=jwks),
    }
