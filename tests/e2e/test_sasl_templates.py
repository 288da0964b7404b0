"""config-templates 01-04, run as shipped: the file is copied unchanged next to the certificates
it names, and only its environment variables point it at local peers.

All four log in upstream with SASL_SSL PLAIN (an API key), as towards Confluent Cloud. The
local stand-in for that cluster is a kafka-proxy terminating SASL_SSL PLAIN for that one API
key (a certificate from --generate-certs, trusted by the template's proxy through
SSL_CERT_FILE, i.e. as a system root) in front of tansu; tansu itself cannot terminate TLS or
PLAIN. The PLAIN server side used there is the one the downstream tests check with both client
libraries. Templates 02 and 04 use `sni` mapping: their broker names resolve to 127.0.0.1
through /etc/hosts lines added for the test.
"""

from __future__ import annotations

import shutil
import uuid

import pytest

from kafka_e2e.clients import CLIENT_LIBS
from kafka_e2e.paths import PROXY_BINARY, REPO_ROOT
from kafka_e2e.ports import HOST
from kafka_e2e.proxy import PortLayout
from kafka_e2e.sasl_clients import Login, produce_consume, sasl_client_lib
from kafka_e2e.sasl_fixtures import require_real_proxy, start_proxy
from kafka_e2e.tls import ClientTls, HostsEntries, generate_certs
from kafka_e2e.sasl_proxy import assert_authenticated, by_session, proxy_config, reserve_layout, reserve_port
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.wire import Broker

TEMPLATES = REPO_ROOT / "config-templates"
API_KEY, API_SECRET = "TPLKEY42", "tpl-api-secret-7"
ALICE_PASSWORD, APP1_PASSWORD = "alice-tpl-pw", "app1-tpl-pw"


@pytest.fixture(scope="module")
def tpl_certs(request, tmp_path_factory):
    """Certificates for a unique domain (so the /etc/hosts names are this run's own)."""
    require_real_proxy(request)
    domain = f"k{uuid.uuid4().hex[:10]}.test"
    return generate_certs(PROXY_BINARY, tmp_path_factory.mktemp("tpl-certs"), domain)


@pytest.fixture(scope="module")
def cloud(request, tmp_path_factory, memory_tansu, tpl_certs):
    """The managed cluster stand-in: SASL_SSL with PLAIN for API_KEY only, port_offset on 127.0.0.1."""
    workdir = tmp_path_factory.mktemp("cloud")
    layout = reserve_layout()
    downstream = {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                  "credentials": {"users": {API_KEY: API_SECRET}},
                  "tls": {"cert": str(tpl_certs.server.cert), "key": str(tpl_certs.server.key)}}
    proxy = start_proxy(request, workdir, proxy_config([memory_tansu.bootstrap], layout, downstream),
                        layout, "tokio", name="cloud")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def hosts():
    if not HostsEntries.writable():
        pytest.skip("/etc/hosts is not writable: the sni templates need loopback names")
    entries = HostsEntries()
    yield entries
    entries.remove()


# template -> (client mechanism, user, password, mutual TLS, sni mapping)
CASES = {
    "01-client-plaintext-noauth_upstream-saslssl-plain.yaml":
        (None, "$anonymous", None, False, False),
    "02-client-saslssl-scram_upstream-saslssl-plain.yaml":
        ("SCRAM-SHA-512", "alice", ALICE_PASSWORD, False, True),
    "03-client-saslplaintext-plain_upstream-saslssl-plain.yaml":
        ("PLAIN", "app1", APP1_PASSWORD, False, False),
    "04-client-mtls-with-sasl-scram256-server-saslssl-plain.yaml":
        ("SCRAM-SHA-256", "alice", ALICE_PASSWORD, True, True),
}


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
@pytest.mark.parametrize("template", list(CASES), ids=[t[:2] for t in CASES])
def test_template(request, tmp_path, template, lib_name, sasl_runtime, cloud, memory_tansu, tpl_certs, hosts,
                  unique):
    mechanism, user, password, mtls, sni = CASES[template]
    workdir = tmp_path / "deploy"
    tpl_certs.copy_to(workdir)  # server.pem, server_key.pem, ca.pem next to the template
    shutil.copy(TEMPLATES / template, workdir / template)
    env = {
        "KAFKA_API_KEY": API_KEY, "KAFKA_API_SECRET": API_SECRET,
        "ALICE_PASSWORD": ALICE_PASSWORD, "APP1_PASSWORD": APP1_PASSWORD,
        "PROXY_BIND_ADDRESS": HOST,
        "KAFKA_BOOTSTRAP_SERVER": cloud.layout.bootstrap,
        "SSL_CERT_FILE": str(tpl_certs.ca),  # the cloud's CA as the system trust store
    }
    if sni:
        port = reserve_port()
        env.update(PROXY_PORT=str(port), PROXY_DOMAIN=tpl_certs.suffix)
        layout = PortLayout(port)
        bootstrap = f"{tpl_certs.suffix}:{port}"
        hosts.add([tpl_certs.suffix, f"b{TANSU_NODE_ID}.{tpl_certs.suffix}"])
    else:
        layout = reserve_layout()
        # tansu's node id is 111; template 01 exposes ids up to 64 unless told otherwise.
        env.update(PROXY_HOSTNAME=HOST, PROXY_BASE_PORT=str(layout.base), PROXY_MAX_BROKER_ID="400")
        bootstrap = layout.bootstrap
    proxy = start_proxy(request, workdir, (workdir / template).read_text(), layout, sasl_runtime,
                        name=f"template-{template[:2]}", env=env, config_name=template)
    try:
        login = Login(mechanism, user, password) if mechanism else None
        tls = None
        if template.startswith(("02", "04")):
            tls = ClientTls(tpl_certs.ca, tpl_certs.client(1) if mtls else None)
        lib = sasl_client_lib(lib_name, login, tls)
        topic = f"tpl-{template[:2]}-{unique}"
        memory_tansu.create_topic(topic)
        cloud_mark = cloud.mark()
        assert produce_consume(lib, bootstrap, topic, n=30).consumed == 30
        log = proxy.log_text()
        if mechanism:
            assert_authenticated(log, user, mechanism, at_least=2)
        logins = by_session(log, "logged in at the broker", "user")
        assert len(logins) >= 2 and set(logins.values()) == {API_KEY}, logins
        assert_authenticated(cloud.log_since(cloud_mark), API_KEY, "PLAIN", at_least=2)
        # Clients are told the broker's proxy address: its sni name on the one port, or its port.
        expected = (Broker(TANSU_NODE_ID, f"b{TANSU_NODE_ID}.{tpl_certs.suffix}", layout.base) if sni
                    else Broker(TANSU_NODE_ID, HOST, layout.broker_port(TANSU_NODE_ID)))
        assert lib.metadata(bootstrap) == [expected]
    finally:
        proxy.stop()
