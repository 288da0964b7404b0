"""The binary's CLI contract: `kafka-proxy check --config FILE` validates."""

from __future__ import annotations

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
