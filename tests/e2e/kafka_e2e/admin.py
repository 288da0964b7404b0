"""The proxy's admin endpoint as an operator's tools see it.

`/metrics` is read with Prometheus' own text parser (the `prometheus-client`
package), so a format error fails the test the way it would fail a scrape.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from .ports import HOST


@dataclass
class Scrape:
    """One /metrics scrape: every sample, by name and labels."""

    samples: list[tuple[str, dict[str, str], float]]
    types: dict[str, str]
    text: str

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
        return sum(v for n, ls, v in self.samples if n == name and all(ls.get(k) == w for k, w in labels.items()))

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets of the samples called `name`."""
        return [ls for n, ls, _ in self.samples if n == name]


class Admin:
    """HTTP to the admin endpoint on `port`."""

    def __init__(self, port: int, host: str = HOST):
        self.host = host
        self.port = port

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str, str]:
        """(status, content type, body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read().decode()
        finally:
            conn.close()

    def scrape(self) -> Scrape:
        status, content_type, body = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}: {body[:500]}"
        assert content_type.startswith("text/plain; version=0.0.4"), content_type
        samples, types = [], {}
        exposed = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if not line.startswith("#")}
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                # The parser names every counter sample `<family>_total`; keep the name as
                # exposed (the Go proxy's `proxy_requests_bytes` has no `_total`).
                exact = family.name in exposed and f"{family.name}_total" not in exposed
                name = family.name if family.type == "counter" and exact else s.name
                types[name] = family.type
                samples.append((name, dict(s.labels), s.value))
            types[family.name] = family.type
        return Scrape(samples, types, body)

    def wait_value(self, name: str, minimum: float, timeout: float = 5.0, **labels: str) -> Scrape:
        """Scrapes until `name` with `labels` reaches `minimum` (sessions fold their counts at
        coarse intervals and when they end); the last scrape, or AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            scrape = self.scrape()
            if scrape.value(name, **labels) >= minimum:
                return scrape
            if time.monotonic() > deadline:
                samples = [(ls, v) for n, ls, v in scrape.samples if n == name]
                raise AssertionError(f"{name}{labels} stayed below {minimum}: {samples}")
            time.sleep(0.1)

    def ready(self) -> tuple[int, str]:
        status, _, body = self.get("/ready")
        return status, body


def admin_config(port: int, **limits: int) -> str:
    """YAML to append to a proxy configuration: `admin.bind` on `port` and `limits`."""
    text = f"admin:\n  bind: {HOST}:{port}\n"
    if limits:
        text += "limits:\n" + "".join(f"  {k}: {v}\n" for k, v in limits.items())
    return text
