"""The Kubernetes manifests in deploy/kubernetes/ against the proxy's own configuration.

Every Deployment that runs the kafka-proxy image is read together with the
ConfigMap it mounts at /etc/kafka-proxy, the Secrets it mounts and the
environment it sets; the configuration is then checked by the binary itself
(`kafka-proxy check`, with that environment and stand-in files at the mounted
paths), and what `check` says the proxy listens on is compared with the
container ports, the Service ports, the probes, the Prometheus annotations, the
stop sequence (preStop, drain timeout, grace period), the image's Containerfile
(entrypoint, user, stop signal) and the binary's version. Nothing can drift.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

CONFIG_DIR = "/etc/kafka-proxy"
CONFIG_FILE = f"{CONFIG_DIR}/config.yaml"


def manifests(repo: Path) -> list[Path]:
    return sorted((repo / "deploy/kubernetes").glob("*.yaml"))


def load_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@dataclass
class ProxyPod:
    """One kafka-proxy container of a Deployment's pod template, with what it depends on."""

    file: Path
    docs: list[dict]
    deployment: dict
    container: dict

    @property
    def pod(self) -> dict:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def labels(self) -> dict:
        return self.deployment["spec"]["template"]["metadata"]["labels"]

    def volume(self, name: str) -> dict:
        return next(v for v in self.pod["volumes"] if v["name"] == name)

    def mounts(self) -> dict[str, dict]:
        """mountPath -> volume."""
        return {m["mountPath"]: self.volume(m["name"]) for m in self.container.get("volumeMounts", [])}

    def kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def config_text(self) -> str:
        volume = self.mounts().get(CONFIG_DIR)
        assert volume and "configMap" in volume, f"{self.file.name}: no ConfigMap mounted at {CONFIG_DIR}"
        name = volume["configMap"]["name"]
        cms = [c for c in self.kind("ConfigMap") if c["metadata"]["name"] == name]
        assert cms, f"{self.file.name}: ConfigMap {name} is not in the file"
        return cms[0]["data"]["config.yaml"]

    def env(self) -> dict[str, str]:
        out = {}
        for e in self.container.get("env", []):
            if "value" in e:
                out[e["name"]] = str(e["value"])
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                out[e["name"]] = f"from-secret-{ref['name']}-{ref['key']}"
        return out

    def selected_by(self, selector: dict) -> bool:
        return all(self.labels.get(k) == v for k, v in selector.items())


def proxy_pods(repo: Path) -> list[ProxyPod]:
    pods = []
    for path in manifests(repo):
        docs = load_all(path)
        for d in docs:
            if d["kind"] != "Deployment":
                continue
            spec = d["spec"]["template"]["spec"]
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                if re.search(r"(^|/)kafka-proxy:", c["image"]):
                    pods.append(ProxyPod(path, docs, d, c))
    return pods


@dataclass
class Checked:
    """The configuration as the binary read it."""

    bootstrap_ports: list[int]
    broker_ports: range | None  # port_offset: base+20 ..= base+20+max_broker_id
    sni_port: int | None
    hostname: str | None
    admin_host: str
    admin_port: int
    drain_timeout_ms: int

    @property
    def kafka_ports(self) -> set[int]:
        ports = set(self.bootstrap_ports)
        if self.broker_ports is not None:
            ports |= set(self.broker_ports)
        if self.sni_port is not None:
            ports.add(self.sni_port)
        return ports



def _stand_in_files(pod: ProxyPod, text: str, pki: Path, root: Path) -> str:
    """Points every path under a mounted Secret at a stand-in file (a generated
    certificate, key or CA) under `root`; every file path must be under a mount."""
    mounts = {p: v for p, v in pod.mounts().items() if p != CONFIG_DIR}
    for path in sorted(set(re.findall(r"(/[\w./-]+\.(?:pem|crt|key))", text))):
        mount = next((m for m in mounts if path.startswith(m + "/")), None)
        assert mount, f"{pod.file.name}: {path} is not under any volume mounted in {pod.container['name']}"
        assert "secret" in mounts[mount], f"{pod.file.name}: {path}: key material must come from a Secret"
        local = root / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        name = Path(path).name
        source = "server_key.pem" if "key" in name else "ca.pem" if "ca" in name else "server.pem"
        local.write_bytes((pki / source).read_bytes())
        text = text.replace(path, str(local))
    return text


def check_config(pod: ProxyPod, binary: Path, pki: Path, work: Path) -> Checked:
    text = _stand_in_files(pod, pod.config_text(), pki, work / "mounts")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **pod.env()}
    path = work / "config.yaml"
    path.write_text(text)
    r = subprocess.run([str(binary), "check", "--config", str(path)], capture_output=True, text=True,
                       env=env, timeout=30)
    if r.returncode != 0:
        pytest.fail(f"{pod.file.name}: kafka-proxy check refused the ConfigMap:\n{r.stderr}")
    out = r.stdout
    bootstrap = [int(p) for p in re.findall(r"listener \S+:(\d+) -> bootstrap", out)]
    brokers = re.search(r"ports (\d+)\.\.=(\d+)\), learned at run time", out)
    sni = re.search(r"mapping: sni, one TLS listener \S+:(\d+)", out)
    hostname = re.search(r"mapping: port_offset, advertised host (\S+)", out)
    admin = re.search(r"^admin: http://\[?([^\]/]+?)\]?:(\d+)/", out, re.M)
    assert admin, f"{pod.file.name}: the proxy serves no admin endpoint:\n{out}"
    drain = re.search(r"^timeouts: .*drain (\d+(?:\.\d+)?)(ms|s)\b", out, re.M)
    assert drain, f"{pod.file.name}: check printed no drain timeout:\n{out}"
    drain_ms = int(float(drain[1]) * (1 if drain[2] == "ms" else 1000))
    return Checked(bootstrap,
                   range(int(brokers[1]), int(brokers[2]) + 1) if brokers else None,
                   int(sni[1]) if sni else None, hostname[1] if hostname else None,
                   admin[1], int(admin[2]), drain_ms)


@pytest.fixture(scope="module")
def pki(proxy_binary: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    subprocess.run([str(proxy_binary), "--generate-certs", "--sni-suffix", "kafka.example.com",
                    "--out-dir", str(out)], check=True, capture_output=True, timeout=30)
    return out


def containerfile(repo: Path) -> dict[str, str]:
    """The final stage's USER, STOPSIGNAL and ENTRYPOINT of packaging/container/Containerfile."""
    out = {}
    for line in (repo / "packaging/container/Containerfile").read_text().splitlines():
        m = re.match(r"(USER|STOPSIGNAL|ENTRYPOINT)\s+(.*)", line)
        if m:
            out[m[1]] = m[2].strip()
    return out


def test_every_manifest_runs_the_proxy(repo: Path):
    files = manifests(repo)
    assert {f.name for f in files} >= {"sidecar.yaml", "gateway-port-offset.yaml", "gateway-sni.yaml"}
    with_proxy = {p.file.name for p in proxy_pods(repo)}
    assert with_proxy == {f.name for f in files}, f"manifests without a kafka-proxy Deployment: {files}"


@pytest.mark.parametrize("name", ["sidecar.yaml", "gateway-port-offset.yaml", "gateway-sni.yaml"])
def test_manifest_agrees_with_the_proxy(name, repo: Path, proxy_binary: Path, built, pki: Path, tmp_path):
    pods = [p for p in proxy_pods(repo) if p.file.name == name]
    assert len(pods) == 1, f"{name}: expected one kafka-proxy container, found {len(pods)}"
    pod = pods[0]
    c = pod.container
    checked = check_config(pod, proxy_binary, pki, tmp_path)

    # The image: the binary's version; the Containerfile's entrypoint, user and stop signal.
    image = containerfile(repo)
    assert c["image"].rsplit(":", 1)[1] == built.version, f"{c['image']} is not version {built.version}"
    assert c.get("args") == ["--config", CONFIG_FILE]
    assert f'"--config", "{CONFIG_FILE}"' in image["ENTRYPOINT"]
    uid = int(image["USER"].split(":")[0])
    security = {**pod.pod.get("securityContext", {}), **c.get("securityContext", {})}
    assert security.get("runAsUser") == uid and security.get("runAsNonRoot") is True
    assert security.get("readOnlyRootFilesystem") is True
    assert security.get("allowPrivilegeEscalation") is False
    assert security.get("capabilities", {}).get("drop") == ["ALL"]

    # Ports: every declared Kafka port is one the proxy listens on; the admin port is declared.
    declared = {p["containerPort"] for p in c.get("ports", [])}
    admin = checked.admin_port
    assert admin in declared, f"admin port {admin} not declared: {sorted(declared)}"
    assert declared - {admin} <= checked.kafka_ports, (
        f"declared ports the proxy does not listen on: {sorted(declared - {admin} - checked.kafka_ports)}")
    assert checked.admin_host in ("0.0.0.0", "::"), "probes and scrapes come from outside the pod"

    # Probes and scraping: the admin endpoint's paths.
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": admin}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": admin}
    if "startupProbe" in c:
        assert c["startupProbe"]["httpGet"] == {"path": "/ready", "port": admin}
    notes = pod.deployment["spec"]["template"]["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert notes["prometheus.io/port"] == str(admin)
    assert notes["prometheus.io/path"] == "/metrics"

    # Stopping: the kubelet sleeps (no shell in the image), sends SIGTERM, the proxy drains;
    # the grace period covers both.
    assert image["STOPSIGNAL"] == "SIGTERM"
    pre_stop = c.get("lifecycle", {}).get("preStop", {})
    assert "exec" not in pre_stop, "the image has no shell: preStop must be `sleep`"
    sleep = pre_stop.get("sleep", {}).get("seconds", 0)
    grace = pod.pod["terminationGracePeriodSeconds"]
    assert grace > sleep + checked.drain_timeout_ms / 1000, (
        f"terminationGracePeriodSeconds {grace} <= preStop {sleep} s + drain {checked.drain_timeout_ms} ms")

    resources = c["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]

    # Exposure: the Services in front of it forward exactly the proxy's ports.
    services = [s for s in pod.kind("Service") if pod.selected_by(s["spec"]["selector"])]
    for svc in services:
        targets = {p["targetPort"] for p in svc["spec"]["ports"]}
        assert targets <= declared, f"{svc['metadata']['name']} targets undeclared ports {targets - declared}"
        assert set(checked.bootstrap_ports) <= targets or checked.sni_port in targets
        if checked.broker_ports is not None:
            missing = set(checked.broker_ports) - targets
            assert not missing, (f"{svc['metadata']['name']}: clients are sent to broker ports "
                                 f"{sorted(missing)} that it does not forward")
        for p in svc["spec"]["ports"]:
            assert p["port"] == p["targetPort"], (
                "the advertised port is the proxy's own port: the Service must keep it")
    replicas = pod.deployment["spec"].get("replicas", 1)
    if services:
        # A shared gateway: replicas, a disruption budget, no capacity lost while rolling.
        assert replicas >= 2
        pdbs = [b for b in pod.kind("PodDisruptionBudget") if pod.selected_by(b["spec"]["selector"]["matchLabels"])]
        assert len(pdbs) == 1, f"{name}: one PodDisruptionBudget must select the gateway"
        assert pdbs[0]["spec"].get("maxUnavailable", replicas) < replicas
        assert pod.deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert checked.hostname != "127.0.0.1" or checked.sni_port is not None
    else:
        # A sidecar: the application in the same pod reaches the proxy's bootstrap port.
        apps = [a for a in pod.pod["containers"] if a is not c]
        want = f"{checked.hostname}:{checked.bootstrap_ports[0]}"
        assert any(e.get("value") == want for a in apps for e in a.get("env", [])), (
            f"no application container is pointed at the proxy's bootstrap {want}")
        assert c in pod.pod.get("initContainers", []) and c.get("restartPolicy") == "Always", (
            "a native sidecar: starts before the application and stops after it")
