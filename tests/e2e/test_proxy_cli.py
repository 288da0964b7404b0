"""The binary's CLI contract: `kafka-proxy check --config FILE` validates; `--version` traces the build."""

from __future__ import annotations

import re
import subprocess

from kafka_e2e.paths import REPO_ROOT
from kafka_e2e.proxy import PortLayout, render_config, run_check


def test_check_accepts_the_e2e_config(tmp_path, real_proxy, proxy_binary):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(render_config(["127.0.0.1:9092"], PortLayout(20000)))
    r = run_check(cfg, proxy_binary)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"


def test_check_rejects_a_bad_value_and_names_it(tmp_path, real_proxy, proxy_binary):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(render_config(["127.0.0.1:9092"], PortLayout(20000)).replace(
        "security_protocol: PLAINTEXT\ndownstream", "security_protocol: PLAINTEXTT\ndownstream"))
    r = run_check(cfg, proxy_binary)
    assert r.returncode != 0, f"accepted a bad config:\n{r.stdout}{r.stderr}"
    assert "PLAINTEXTT" in r.stdout + r.stderr or "security_protocol" in r.stdout + r.stderr


def test_version_names_commit_and_profile(real_proxy, proxy_binary):
    """`--version`: crate version, the git commit built from, and the cargo profile."""
    r = subprocess.run([str(proxy_binary), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"kafka-proxy (\d+\.\d+\.\d+) \(commit ([0-9a-f]{12}|unknown), profile (\w+)\)\n", r.stdout)
    assert m, repr(r.stdout)
    assert m.group(3) == proxy_binary.parent.name, f"built as {m.group(3)}, found in {proxy_binary.parent}"
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    if head.returncode == 0:
        assert m.group(2) == head.stdout.strip(), "the binary is older than the checkout: rebuild it"
