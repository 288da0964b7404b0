"""config-templates/05 (one-way TLS) and 06 (mTLS) run as shipped, with local values.

Each template is copied next to the certificates `kafka-proxy --generate-certs`
wrote (server.pem, server_key.pem, ca.pem: the names the templates use) and run
with its environment variables pointing at local peers:

- the cluster: tansu built with sqlite (SASL SCRAM; the prebuilt tansu has no SASL
  and no tansu offers PLAIN) behind stunnel, advertising `localhost:<stunnel port>`,
  so `upstream.security_protocol: SASL_SSL` is real TLS plus a real SASL login;
  BROKER_SASL_MECHANISM=SCRAM-SHA-256 replaces the template's default PLAIN;
- the template verifies brokers with the system trust roots: SSL_CERT_FILE points
  the proxy's root store at the generated CA;
- clients reach the single SNI port through names under PROXY_SNI_DOMAIN that this
  test puts in /etc/hosts.

05: the client shows no certificate, its principal is $anonymous, auth_swap logs in
upstream as the API key. 06: the client shows client1's certificate (CN=client1).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kafka_e2e.paths import REPO_ROOT, tansu_sqlite_binary
from kafka_e2e.ports import HOST, pick_port
from kafka_e2e.scenarios import roundtrip
from kafka_e2e.tansu import SCRAM_USERS, TANSU_NODE_ID
from kafka_e2e.tls import ClientTls, tls_client_lib
from kafka_e2e.tls_scenarios import LOCALHOST, fast_groups
from kafka_e2e.wire import Broker

TEMPLATES = {
    "05": ("05-client-ssl-onewaytls_upstream-saslssl-plain.yaml", None, "$anonymous"),
    "06": ("06-client-ssl-mtls_upstream-saslssl-plain.yaml", 1, "client1"),
}
MECHANISM = "SCRAM-SHA-256"


def _scram_tansu_behind_stunnel(world, pki):
    """tansu-sqlite requiring SCRAM, advertising stunnel's localhost:S; (tansu, stunnel)."""
    binary = tansu_sqlite_binary()
    if binary is None:
        pytest.skip("tansu with sqlite not installed (scripts/install-test-deps.sh --with-sasl-broker)")
    tansu_port = pick_port()
    stunnel_port = pick_port(avoid={tansu_port})
    tansu = world.tansu(port=tansu_port, advertised_host=LOCALHOST, advertised_port=stunnel_port,
                        binary=binary, storage="sqlite://tansu.db", name="tansu-sqlite").start()
    user, password, tansu_mechanism = SCRAM_USERS[MECHANISM]
    tansu.create_user(user, password, tansu_mechanism)
    tansu.stop()
    tansu.authentication = True
    tansu.start()
    stunnel = world.stunnel(stunnel_port, tansu.bootstrap, pki.server).start()
    return tansu, stunnel


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_runs_against_local_peers(template, lib, tls_world, pki, hosts, unique):
    file_name, client_n, principal = TEMPLATES[template]
    tansu, stunnel = _scram_tansu_behind_stunnel(tls_world, pki)
    config = Path(shutil.copy(REPO_ROOT / "config-templates" / file_name, pki.dir / file_name))

    sni_port = pick_port(avoid={tansu.port, stunnel.port})
    bootstrap_name = f"kafka.{pki.suffix}"
    broker_name = f"b{TANSU_NODE_ID}.{pki.suffix}"
    hosts.add([bootstrap_name, broker_name])
    user, password, _ = SCRAM_USERS[MECHANISM]
    env = {
        "KAFKA_API_KEY": user,
        "KAFKA_API_SECRET": password,
        "BROKER_BOOTSTRAP": f"{LOCALHOST}:{stunnel.port}",
        "BROKER_SASL_MECHANISM": MECHANISM,
        "PROXY_BIND_ADDRESS": HOST,
        "PROXY_SNI_PORT": str(sni_port),
        "PROXY_SNI_DOMAIN": pki.suffix,
        "SSL_CERT_FILE": str(pki.ca),
    }
    # The copy itself runs, so its relative file names resolve next to the certificates.
    proxy = tls_world.proxy(config, sni_port, f"{bootstrap_name}:{sni_port}", env=env).start()

    identity = pki.client(client_n) if client_n else None
    client = fast_groups(tls_client_lib(lib.name, ClientTls(pki.ca, identity)))
    assert client.metadata(proxy.bootstrap) == [Broker(TANSU_NODE_ID, broker_name, sni_port)]
    r = roundtrip(client, proxy.bootstrap, f"tpl{template}-{unique}", f"g-{unique}", n=60, partitions=2)
    assert r.consumed == 60 and r.committed_total == 60
    assert not (r.peer_ports & {tansu.port, stunnel.port}), r.peer_ports

    log = proxy.log_text()
    principals = set(re.findall(r"client authenticated by TLS session=\d+ principal=(\S+)", log))
    assert principals == {principal}, principals
    logins = set(re.findall(r'logged in at the broker session=\d+ user="([^"]+)"', log))
    assert logins == {user}, log[-3000:]
    assert "WARN" not in log, [ln for ln in log.splitlines() if "WARN" in ln][:5]
