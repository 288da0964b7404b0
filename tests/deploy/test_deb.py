"""The Debian package: built with cargo-deb, installed with dpkg on this machine, checked, removed.

`[package.metadata.deb]` in cli/Cargo.toml says what goes in; the unit is
packaging/debian/kafka-proxy.service. The package is built from the binary
under test (--no-build, with the cargo profile it was built with), installed
with `dpkg -i`, its configuration checked by the installed binary, its unit
verified by `systemd-analyze verify`, then removed (the edited conffile stays)
and purged (nothing stays).
"""

from __future__ import annotations

import configparser
import os
import shutil
from pathlib import Path

import pytest

from commands import run
from kafka_e2e.paths import DEPS

PACKAGE = "kafka-proxy"
CONFIG = Path("/etc/kafka-proxy/config.yaml")
BINARY = Path("/usr/bin/kafka-proxy")
UNIT_DIRS = (Path("/lib/systemd/system"), Path("/usr/lib/systemd/system"))
# core::config::Limits::default().drain_timeout: the stop timeout must leave the drain room.
DEFAULT_DRAIN_TIMEOUT_S = 30



def installed_version() -> str | None:
    r = run("dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE, check=False)
    return r.stdout.split()[-1] if r.returncode == 0 and "installed" in r.stdout else None


def cargo_deb() -> str:
    """$CARGO_DEB (the deps env file), the deps cache, or PATH."""
    cached = DEPS / "cargo-deb" / "bin" / "cargo-deb"
    tool = os.environ.get("CARGO_DEB") or (str(cached) if cached.is_file() else shutil.which("cargo-deb"))
    if not tool:
        pytest.fail("cargo-deb not found: run scripts/install-test-deps.sh and source its env.sh")
    return tool


@pytest.fixture(scope="module")
def deb(tmp_path_factory, proxy_binary: Path, repo: Path, built) -> Path:
    """The .deb built by cargo-deb from the binary under test."""
    target = repo / "target"
    if proxy_binary.parent.parent.resolve() != target.resolve():
        pytest.fail(f"cargo-deb packages target/<profile>/kafka-proxy; {proxy_binary} is not there")
    out = tmp_path_factory.mktemp("deb")
    run(cargo_deb(), "deb", "-p", PACKAGE, "--no-build", "--locked", "--fast",
        "--profile", proxy_binary.parent.name, "--output", out, cwd=repo, timeout=300)
    debs = sorted(out.glob("*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


def test_package_contents_and_metadata(deb: Path):
    listing = run("dpkg-deb", "--contents", deb).stdout
    for path in ("./usr/bin/kafka-proxy", "./etc/kafka-proxy/config.yaml",
                 "./usr/share/kafka-proxy/config-templates/00-local-plaintext.yaml",
                 "./usr/share/doc/kafka-proxy/operations.md"):
        assert path in listing, f"{path} missing from the package:\n{listing}"
    assert "kafka-proxy.service" in listing, listing
    info = run("dpkg-deb", "--info", deb).stdout
    assert "Package: kafka-proxy" in info and "Section: net" in info, info
    depends = next(line for line in info.splitlines() if line.strip().startswith("Depends:"))
    assert "libc6" in depends, depends
    assert str(CONFIG) in run("dpkg-deb", "--info", deb, "conffiles").stdout


@pytest.fixture
def installed(root, deb: Path):
    """`dpkg -i` the package; purge it in teardown whatever happened."""
    if installed_version() is not None:
        pytest.fail(f"{PACKAGE} is already installed on this machine: not touching it")
    try:
        run("dpkg", "-i", deb, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        yield deb
    finally:
        run("dpkg", "--purge", PACKAGE, check=False)


def _unit_path() -> Path:
    found = [d / "kafka-proxy.service" for d in UNIT_DIRS if (d / "kafka-proxy.service").is_file()]
    assert found, f"kafka-proxy.service not installed in {UNIT_DIRS}"
    return found[0]


def _unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    unit.optionxform = str  # keys are case-sensitive
    # Repeated keys (SystemCallFilter=) accumulate in systemd; keep the last for checks.
    unit.read_string(path.read_text())
    return unit


def test_dpkg_install_check_verify_remove_purge(installed, built, repo: Path):
    assert installed_version() is not None
    # The installed binary is the one under test.
    assert run(BINARY, "--version").stdout.strip() == built.line
    # Its configuration (template 00) checks with the installed binary.
    r = run(BINARY, "check", "--config", CONFIG)
    assert f"{CONFIG}: OK" in r.stdout, r.stdout
    assert CONFIG.read_text() == (repo / "config-templates/00-local-plaintext.yaml").read_text()
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", PACKAGE).stdout
    assert str(CONFIG) in conffiles, conffiles

    unit_path = _unit_path()
    assert unit_path.read_text() == (repo / "packaging/debian/kafka-proxy.service").read_text()
    if shutil.which("systemd-analyze"):
        r = run("systemd-analyze", "verify", unit_path, check=False)
        assert r.returncode == 0, f"systemd-analyze verify failed:\n{r.stdout}{r.stderr}"

    # A conffile the administrator edited survives removal; purge removes it.
    CONFIG.write_text(CONFIG.read_text() + "# edited on this host\n")
    run("dpkg", "--remove", PACKAGE)
    assert not BINARY.exists() and not unit_path.exists()
    assert CONFIG.read_text().endswith("# edited on this host\n")
    run("dpkg", "--purge", PACKAGE)
    assert not CONFIG.exists() and installed_version() is None


def test_unit_is_hardened_and_drains(repo: Path):
    """The unit's promises, read from the file the package installs."""
    s = _unit(repo / "packaging/debian/kafka-proxy.service")["Service"]
    assert s["ExecStart"].split()[:3] == ["/usr/bin/kafka-proxy", "--config", str(CONFIG)]
    assert s["ExecReload"] == "/bin/kill -HUP $MAINPID", "reload is SIGHUP"
    assert s["KillSignal"] == "SIGTERM" and s["KillMode"] == "mixed", "one SIGTERM, to the proxy only"
    assert int(s["TimeoutStopSec"]) > DEFAULT_DRAIN_TIMEOUT_S, "systemd must not SIGKILL a drain"
    assert s["DynamicUser"] == "yes" and s["NoNewPrivileges"] == "yes"
    assert s["ProtectSystem"] == "strict" and s["ProtectHome"] == "yes"
    assert s["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert s["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    # 6 descriptors per connection (2 sockets, up to 2 splice pipes): room for 40k connections.
    assert int(s["LimitNOFILE"]) >= 6 * 40_000
