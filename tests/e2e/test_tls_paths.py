"""TLS on either side of the proxy: SSL->PLAINTEXT, PLAINTEXT->SSL, SSL->SSL.

Clients: librdkafka (confluent-kafka) and kafka-python, verifying the proxy's
certificate (from `kafka-proxy --generate-certs`) and its name. Upstream TLS is
stunnel in front of tansu; tansu advertises stunnel's address (localhost:S), so
every broker connection the proxy makes, bootstrap or learned from Metadata, is
TLS. Each test creates a topic, produces keyed records, consumes them in a group,
commits, and checks that clients only ever saw and used proxy addresses.
"""

from __future__ import annotations

import pytest

from kafka_e2e.scenarios import roundtrip
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.tls import ClientTls, DownstreamTls, TlsProxyConfig, UpstreamTls, tls_client_lib
from kafka_e2e.tls_scenarios import LOCALHOST, fast_groups, span_of, tls_upstream
from kafka_e2e.wire import Broker

PATHS = {
    "ssl-plaintext": (True, False),
    "plaintext-ssl": (False, True),
    "ssl-ssl": (True, True),
}


@pytest.mark.parametrize("path", PATHS)
def test_roundtrip_over_tls_path(path, lib, tls_world, pki, proxy_span, unique):
    down_tls, up_tls = PATHS[path]
    layout = proxy_span
    tansu, stunnel = tls_upstream(tls_world, pki, avoid=span_of(layout), use_tls=up_tls)
    upstream = [f"{LOCALHOST}:{stunnel.port}"] if up_tls else [tansu.bootstrap]
    config = TlsProxyConfig(
        upstream=upstream,
        mapping=layout,
        downstream_tls=DownstreamTls(pki.server) if down_tls else None,
        upstream_tls=UpstreamTls(ca=pki.ca) if up_tls else None,
    )
    proxy = tls_world.proxy(config.render(), layout.bootstrap_port(0),
                            f"{LOCALHOST}:{layout.bootstrap_port(0)}", layout=layout).start()
    client = fast_groups(tls_client_lib(lib.name, ClientTls(pki.ca)) if down_tls else lib)

    brokers = client.metadata(proxy.bootstrap)
    assert brokers == [Broker(TANSU_NODE_ID, LOCALHOST, layout.broker_port(TANSU_NODE_ID))]

    r = roundtrip(client, proxy.bootstrap, f"tls-{path}-{unique}", f"g-{unique}", n=120)
    assert r.consumed == 120 and r.committed_total == 120
    hidden = {tansu.port} | ({stunnel.port} if stunnel else set())
    assert not (r.peer_ports & hidden), f"a client reached the broker side directly: {r.peer_ports}"
    assert layout.broker_port(TANSU_NODE_ID) in r.peer_ports

    log = proxy.log_text()
    if down_tls:
        assert "client authenticated by TLS" in log and "principal=$anonymous" in log, log[-3000:]
    if up_tls:
        # Every broker connection went through stunnel: it saw the proxy's TLS sessions.
        assert "accepted connection" in stunnel.process.log_text(), stunnel.process.log_tail()
    assert proxy.process.running(), "the proxy exited"
