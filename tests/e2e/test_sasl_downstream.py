"""The proxy authenticates clients itself (downstream SASL), in front of the prebuilt tansu
(PLAINTEXT): PLAIN, SCRAM-SHA-256 (pre-computed with `kafka-proxy scram-credentials`, in a
credentials file), SCRAM-SHA-512 (hashed at load), OAUTHBEARER (RS256 via a JWKS file;
ES256 via a PEM public key), over SASL_PLAINTEXT and SASL_SSL, with librdkafka and
kafka-python, on each runtime. Produce and consume work, and the principal is logged.
"""

from __future__ import annotations

import pytest

from kafka_e2e.clients import CLIENT_LIBS
from kafka_e2e.sasl_clients import Login, produce_consume, sasl_client_lib
from kafka_e2e.tls import ClientTls
from kafka_e2e.sasl_fixtures import PASSWORDS, downstream_sasl, start_proxy
from kafka_e2e.sasl_proxy import assert_authenticated, proxy_config, reserve_layout


@pytest.fixture(scope="module")
def sasl_proxy(request, tmp_path_factory, memory_tansu, sasl_runtime, issuer):
    """One proxy per runtime offering PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER (JWKS)."""
    workdir = tmp_path_factory.mktemp(f"sasl-{sasl_runtime}")
    layout = reserve_layout()
    text = proxy_config([memory_tansu.bootstrap], layout, downstream_sasl(workdir, issuer))
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime)
    yield proxy
    proxy.stop()


def _topic(tansu, name: str) -> str:
    tansu.create_topic(name)
    return name


CASES = {
    # id: (mechanism, user, how the user is known)
    "PLAIN": ("PLAIN", "alice"),
    "SCRAM-SHA-256-precomputed": ("SCRAM-SHA-256", "bob"),
    "SCRAM-SHA-512": ("SCRAM-SHA-512", "alice"),
    "OAUTHBEARER-RS256-jwks": ("OAUTHBEARER", "carol"),
}


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
@pytest.mark.parametrize("case", list(CASES))
def test_mechanism_produce_consume(sasl_proxy, memory_tansu, issuer, lib_name, case, unique):
    mechanism, user = CASES[case]
    if mechanism == "OAUTHBEARER":
        login = Login(mechanism, user, token=lambda: issuer.token(user, key="rsa"))
    else:
        login = Login(mechanism, user, PASSWORDS[user])
    lib = sasl_client_lib(lib_name, login)
    topic = _topic(memory_tansu, f"dn-{case.lower()}-{unique}")
    mark = sasl_proxy.mark()
    r = produce_consume(lib, sasl_proxy.bootstrap, topic, n=40)
    assert r.consumed == 40
    log = sasl_proxy.log_since(mark)
    # Bootstrap and broker connections both authenticate.
    assert_authenticated(log, user, mechanism, at_least=2)
    assert "refusing client" not in log


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_oauthbearer_pem_public_key(request, tmp_path, memory_tansu, sasl_runtime, issuer, lib_name, unique):
    """OAUTHBEARER only, keys given as one PEM public key (EC P-256), ES256 tokens."""
    pem = tmp_path / "idp-public.pem"
    pem.write_bytes(issuer.public_pem("ec"))
    layout = reserve_layout()
    downstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
                  "oauthbearer": issuer.oauth_settings(public_key_path=pem)}
    proxy = start_proxy(request, tmp_path, proxy_config([memory_tansu.bootstrap], layout, downstream),
                        layout, sasl_runtime, name="proxy-pem")
    try:
        login = Login("OAUTHBEARER", "dave", token=lambda: issuer.token("dave", key="ec"))
        topic = _topic(memory_tansu, f"dn-pem-{unique}")
        r = produce_consume(sasl_client_lib(lib_name, login), proxy.bootstrap, topic, n=30)
        assert r.consumed == 30
        assert_authenticated(proxy.log_text(), "dave", "OAUTHBEARER", at_least=2)
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def sasl_ssl_proxy(request, tmp_path_factory, memory_tansu, sasl_runtime, issuer, certs):
    """SASL_SSL (certificate from --generate-certs: its SANs include 127.0.0.1), same mechanisms."""
    workdir = tmp_path_factory.mktemp(f"sasl-ssl-{sasl_runtime}")
    layout = reserve_layout()
    downstream = downstream_sasl(workdir, issuer)
    downstream["security_protocol"] = "SASL_SSL"
    downstream["tls"] = {"cert": str(certs.server.cert), "key": str(certs.server.key)}
    text = proxy_config([memory_tansu.bootstrap], layout, downstream)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-sasl-ssl")
    yield proxy
    proxy.stop()


SSL_CASES = {"confluent": ["SCRAM-SHA-512", "OAUTHBEARER"], "kafka-python": ["SCRAM-SHA-512", "PLAIN"]}


@pytest.mark.parametrize("lib_name,mechanism",
                         [(lib, m) for lib, ms in SSL_CASES.items() for m in ms])
def test_sasl_ssl_produce_consume(sasl_ssl_proxy, memory_tansu, issuer, certs, lib_name, mechanism, unique):
    """TLS verified by the client (CA from --generate-certs, host name checked), then SASL."""
    if mechanism == "OAUTHBEARER":
        login = Login(mechanism, "carol", token=lambda: issuer.token("carol"))
    else:
        login = Login(mechanism, "alice", PASSWORDS["alice"])
    lib = sasl_client_lib(lib_name, login, tls=ClientTls(certs.ca))
    topic = _topic(memory_tansu, f"dn-ssl-{unique}")
    mark = sasl_ssl_proxy.mark()
    r = produce_consume(lib, sasl_ssl_proxy.bootstrap, topic, n=40)
    assert r.consumed == 40
    assert_authenticated(sasl_ssl_proxy.log_since(mark), login.username, mechanism, at_least=2)
