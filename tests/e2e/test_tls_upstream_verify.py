"""The proxy verifies the broker's certificate: a wrong name is refused, loudly; trust-all accepts it.

stunnel in front of tansu shows a certificate for `wrong-name.invalid` from a CA
the proxy trusts (`upstream.tls.ca_certs`); the proxy dials `localhost`. With
verification the proxy must refuse the broker, log the certificate error, and
close the client's connection promptly (clients see errors, not a hang). With
`trust_server_certs: true` the same broker works, and the proxy warns at start.
"""

from __future__ import annotations

import re
import time

import pytest

from kafka_e2e.clients import ClientError, client_lib
from kafka_e2e.ports import HOST
from kafka_e2e.scenarios import roundtrip
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.tls import TlsProxyConfig, UpstreamTls
from kafka_e2e.tls_scenarios import LOCALHOST, fast_groups, span_of, tls_upstream
from kafka_e2e.wire import Broker, KafkaWire, WireError

WRONG_NAME = "wrong-name.invalid"


def _wrong_name_world(world, pki, own_ca, layout, upstream_tls: UpstreamTls):
    identity = own_ca.server_identity("wrong-name", [WRONG_NAME])
    tansu, stunnel = tls_upstream(world, pki, avoid=span_of(layout), use_tls=True, identity=identity)
    config = TlsProxyConfig(upstream=[f"{LOCALHOST}:{stunnel.port}"], mapping=layout, upstream_tls=upstream_tls)
    proxy = world.proxy(config.render(), layout.bootstrap_port(0), f"{LOCALHOST}:{layout.bootstrap_port(0)}",
                        layout=layout).start()
    return tansu, stunnel, proxy


def test_broker_certificate_for_another_name_is_refused(tls_world, pki, own_ca, proxy_span):
    layout = proxy_span
    _, stunnel, proxy = _wrong_name_world(tls_world, pki, own_ca, layout, UpstreamTls(ca=own_ca.ca_pem))

    # A raw request: the proxy closes the client's connection once the broker's TLS fails.
    t0 = time.monotonic()
    with pytest.raises(WireError, match="closed by peer"):
        with KafkaWire(HOST, layout.bootstrap_port(0), timeout=10.0) as w:
            w.api_versions(0)
    assert time.monotonic() - t0 < 5, f"closing took {time.monotonic() - t0:.1f}s"

    for name in ("confluent", "kafka-python"):
        t0 = time.monotonic()
        with pytest.raises(ClientError):
            client_lib(name).metadata(proxy.bootstrap, timeout=3.0)
        assert time.monotonic() - t0 < 15, f"{name} took {time.monotonic() - t0:.1f}s to fail"

    log = proxy.log_text()
    failures = [ln for ln in log.splitlines() if "TLS with the broker failed" in ln]
    assert failures, log[-3000:]
    assert all(re.search(r"NotValidForName|not valid for name", ln) for ln in failures), failures[:3]
    assert "trust_server_certs" not in log
    assert "broker learned" not in log, "the proxy used a broker it could not verify"
    assert proxy.process.running(), "the proxy exited"


def test_broker_certificate_for_another_name_is_accepted_with_trust_all(lib, tls_world, pki, own_ca,
                                                                         proxy_span, unique):
    layout = proxy_span
    tansu, stunnel, proxy = _wrong_name_world(tls_world, pki, own_ca, layout, UpstreamTls(trust_all=True))
    warnings = [ln for ln in proxy.log_text().splitlines() if " WARN " in ln]
    assert any("upstream.tls.trust_server_certs" in ln and "NOT verified" in ln for ln in warnings), warnings

    client = fast_groups(lib)
    assert client.metadata(proxy.bootstrap) == [Broker(TANSU_NODE_ID, LOCALHOST, layout.broker_port(TANSU_NODE_ID))]
    r = roundtrip(client, proxy.bootstrap, f"trust-all-{unique}", f"g-{unique}", n=60, partitions=2)
    assert r.consumed == 60 and r.committed_total == 60
    assert not (r.peer_ports & {tansu.port, stunnel.port}), r.peer_ports
    assert "TLS with the broker failed" not in proxy.log_text()
