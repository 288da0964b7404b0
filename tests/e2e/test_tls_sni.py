"""`broker_mapping.mode: sni`: one TLS port, the broker chosen by the ClientHello's server name.

tansu (one broker, node 111) advertises `kafka-0.up-<tag>.kproxy-e2e.test:T`, a name
`sni.upstream` matches with one capture group; `sni.downstream` turns it into
`kafka-0-b111.<suffix>` on the proxy's single port P. Clients bootstrap from
`bootstrap.<suffix>:P` (a name the proxy has not learned, so it goes to the
configured bootstrap server, given as 127.0.0.1:T), then reach broker 111 by its
template name on the same port. All names resolve to 127.0.0.1 through lines this
test adds to /etc/hosts (removed in teardown). librdkafka sends no SNI for an IP
address, so every client-facing address here is a name.

The proxy's debug log shows, per session, the SNI name and the upstream it was
routed to: both routes must be taken, each to its own upstream address.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict

from kafka_e2e.ports import pick_port
from kafka_e2e.scenarios import roundtrip
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.tls import ClientTls, DownstreamTls, SniLayout, TlsProxyConfig, tls_client_lib
from kafka_e2e.tls_scenarios import fast_groups
from kafka_e2e.wire import Broker


def _sessions(log: str) -> dict[str, dict[str, str]]:
    """session id -> {"sni": name, "upstream": host:port} from the proxy's debug lines."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for line in log.splitlines():
        if m := re.search(r'ClientHello session=(\d+) sni=Some\("([^"]+)"\)', line):
            out[m.group(1)]["sni"] = m.group(2)
        elif m := re.search(r"routed session=(\d+) .*upstream=(\S+)", line):
            out[m.group(1)]["upstream"] = m.group(2)
    return out


def test_sni_routes_bootstrap_and_broker_names(lib, tls_world, pki, hosts, unique):
    tag = uuid.uuid4().hex[:8]
    upstream_domain = f"up-{tag}.kproxy-e2e.test"
    upstream_host = f"kafka-0.{upstream_domain}"
    bootstrap_name = f"bootstrap.{pki.suffix}"
    broker_name = f"kafka-0-b{TANSU_NODE_ID}.{pki.suffix}"
    hosts.add([bootstrap_name, broker_name, upstream_host])

    sni_port = pick_port()
    tansu_port = pick_port(avoid={sni_port})
    tansu = tls_world.tansu(port=tansu_port, advertised_host=upstream_host, advertised_port=tansu_port).start()
    config = TlsProxyConfig(
        upstream=[tansu.bootstrap],  # 127.0.0.1:T: a different upstream string than the learned one
        mapping=SniLayout(sni_port, upstream=rf"(kafka-[0-9]+)\.{re.escape(upstream_domain)}",
                          downstream=f"<$1>-b<$id>.{pki.suffix}"),
        downstream_tls=DownstreamTls(pki.server),
    )
    proxy = tls_world.proxy(config.render(), sni_port, f"{bootstrap_name}:{sni_port}",
                            env={"RUST_LOG": "info,kafka_proxy_core=debug"}).start()
    client = fast_groups(tls_client_lib(lib.name, ClientTls(pki.ca)))

    assert client.metadata(proxy.bootstrap) == [Broker(TANSU_NODE_ID, broker_name, sni_port)]
    r = roundtrip(client, proxy.bootstrap, f"sni-{unique}", f"g-{unique}", n=80, partitions=2)
    assert r.consumed == 80 and r.committed_total == 80
    assert tansu.port not in r.peer_ports, f"a client reached tansu directly: {r.peer_ports}"
    assert sni_port in r.peer_ports

    log = proxy.log_text()
    assert f"broker learned node_id={TANSU_NODE_ID} upstream={upstream_host}:{tansu_port}" in log, log[-3000:]
    routes = defaultdict(set)
    # Client sessions only: the proxy's own startup probe of the cluster sends no ClientHello.
    for s in _sessions(log).values():
        if "sni" in s:
            routes[s["sni"]].add(s.get("upstream"))
    assert routes[bootstrap_name] == {tansu.bootstrap}, dict(routes)
    assert routes[broker_name] == {f"{upstream_host}:{tansu_port}"}, dict(routes)
    assert set(routes) == {bootstrap_name, broker_name}, dict(routes)
