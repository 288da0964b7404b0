"""The container image: built with buildah from packaging/container/, then inspected.

Containers cannot run on this machine (setrlimit is refused in the sandbox), so
the image is checked from the outside: its configuration (entrypoint, user,
stop signal, ports, labels) from `buildah inspect`, and its files from the OCI
archive `buildah push` writes. The unpacked root file system is then used with
chroot(8) as the image's user: the binary runs there with nothing but the
image's own libraries, and checks the image's configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import uuid
from pathlib import Path

import pytest

from commands import run

ENTRYPOINT = ["/usr/bin/kafka-proxy", "--config", "/etc/kafka-proxy/config.yaml"]
USER = "65532:65532"


def buildah() -> str:
    tool = os.environ.get("BUILDAH") or shutil.which("buildah")
    if not tool:
        pytest.fail("buildah not found: run scripts/install-test-deps.sh and source its env.sh")
    return tool



@pytest.fixture(scope="module")
def image(proxy_binary: Path, repo: Path):
    """packaging/container/build.sh on the binary under test; the image is removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root: buildah's storage")
    tag = f"localhost/kafka-proxy-test:{uuid.uuid4().hex[:8]}"
    r = run(repo / "packaging/container/build.sh", "--binary", proxy_binary, "--tag", tag,
            env={**os.environ, "BUILDAH": buildah()})
    image_id = r.stdout.strip().splitlines()[-1]
    try:
        yield tag, image_id
    finally:
        run(buildah(), "rmi", "--force", tag, check=False)


@pytest.fixture(scope="module")
def rootfs(image, tmp_path_factory) -> Path:
    """The image's layers, unpacked in order from `buildah push ... oci-archive:`."""
    tag, _ = image
    work = tmp_path_factory.mktemp("image")
    archive = work / "image.tar"
    run(buildah(), "push", "--quiet", tag, f"oci-archive:{archive}")
    blobs = work / "oci"
    with tarfile.open(archive) as t:
        t.extractall(blobs, filter="tar")

    def blob(digest: str) -> Path:
        algo, hexd = digest.split(":")
        return blobs / "blobs" / algo / hexd

    index = json.loads((blobs / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    root = work / "rootfs"
    root.mkdir()
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"])) as t:
            names = t.getnames()
            assert not any(Path(n).name.startswith(".wh.") for n in names), "whiteouts in a scratch image"
            t.extractall(root, filter="fully_trusted", numeric_owner=True)
    return root


def test_image_configuration(image, built):
    tag, _ = image
    info = json.loads(run(buildah(), "inspect", "--type", "image", tag).stdout)
    config = info["OCIv1"]["config"]
    assert config["Entrypoint"] == ENTRYPOINT
    assert not config.get("Cmd"), config.get("Cmd")
    assert config["User"] == USER, "the proxy must not run as root"
    assert config["StopSignal"] == "SIGTERM", "SIGTERM drains"
    assert {"9080/tcp", "19092/tcp"} <= set(config["ExposedPorts"]), config["ExposedPorts"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == built.version
    assert labels["org.opencontainers.image.revision"] == built.commit
    assert config["WorkingDir"] == "/etc/kafka-proxy"


def test_image_files(rootfs: Path, proxy_binary: Path, repo: Path):
    binary = rootfs / "usr/bin/kafka-proxy"
    assert hashlib.sha256(binary.read_bytes()).digest() == hashlib.sha256(proxy_binary.read_bytes()).digest()
    assert binary.stat().st_mode & 0o777 == 0o755
    config = rootfs / "etc/kafka-proxy/config.yaml"
    assert config.read_text() == (repo / "packaging/container/config.yaml").read_text()
    assert config.stat().st_mode & 0o777 == 0o644
    passwd = (rootfs / "etc/passwd").read_text()
    assert "kafka-proxy:x:65532:65532:" in passwd, passwd
    assert (rootfs / "etc/ssl/certs/ca-certificates.crt").is_file(), "no CA bundle for upstream TLS"
    # Small: no shell, no package manager, no coreutils.
    for absent in ("bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/apt", "usr/bin/dpkg", "usr/bin/ls"):
        assert not (rootfs / absent).exists(), f"/{absent} is in the image"
    files = [p for p in rootfs.rglob("*") if p.is_file()]
    assert len(files) < 20, sorted(str(p.relative_to(rootfs)) for p in files)


def test_binary_runs_from_the_image_files_alone(rootfs: Path, built):
    """chroot into the unpacked image as its user: the binary loads with the image's own
    libraries and accepts the image's configuration."""
    chroot = shutil.which("chroot")
    if chroot is None or os.geteuid() != 0:
        pytest.skip("needs root and chroot(8)")
    as_user = [chroot, f"--userspec={USER}", rootfs]
    r = run(*as_user, "/usr/bin/kafka-proxy", "--version", env={})
    assert r.stdout.strip() == built.line
    r = run(*as_user, *ENTRYPOINT[:1], "check", *ENTRYPOINT[1:], env={})
    assert "/etc/kafka-proxy/config.yaml: OK" in r.stdout, r.stdout + r.stderr
    assert "listener 0.0.0.0:19092 -> bootstrap kafka:9092" in r.stdout, r.stdout
