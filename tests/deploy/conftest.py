"""Fixtures of the deployment tests: the binary under test, what it says it is, root checks.

These tests install a Debian package on this machine, build a container image
with buildah and read the Kubernetes manifests; scripts/test.sh runs them in its
`package` phase on the dist binary ($KAFKA_PROXY_BIN; target/release/kafka-proxy
when it is unset).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from kafka_e2e.paths import PROXY_BINARY, REPO_ROOT


@dataclass(frozen=True)
class BuildInfo:
    """What `kafka-proxy --version` says: "kafka-proxy 0.1.0 (commit abcdef012345, profile release)"."""

    line: str
    version: str
    commit: str
    profile: str


def build_info(binary: Path) -> BuildInfo:
    r = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10, check=True)
    line = r.stdout.strip()
    m = re.fullmatch(r"kafka-proxy (\S+) \(commit (\S+), profile (\S+)\)", line)
    if not m:
        raise AssertionError(f"unexpected --version output: {line!r}")
    return BuildInfo(line, *m.groups())


@pytest.fixture(scope="session")
def proxy_binary() -> Path:
    if not PROXY_BINARY.is_file():
        pytest.fail(f"{PROXY_BINARY} is missing: run `cargo build --release` first (scripts/test.sh does)")
    return PROXY_BINARY


@pytest.fixture(scope="session")
def built(proxy_binary: Path) -> BuildInfo:
    return build_info(proxy_binary)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO_ROOT


@pytest.fixture
def root():
    """Installing packages and building images here needs root (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: installs a Debian package / builds an image")
