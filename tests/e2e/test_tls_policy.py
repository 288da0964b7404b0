"""TLS policy per side, on both runtimes: versions, IANA-named cipher suites, encrypted
private keys, `client_auth: requested`, CRLs reloaded by SIGHUP.

- A TLS 1.3-only listener (two suites, encrypted PKCS#8 key with `key_password: ${VAR}`)
  refuses a TLS 1.2 client and serves both client libraries.
- A TLS 1.2 listener with one suite refuses clients that offer only another one
  (librdkafka's `ssl.cipher.suites`, kafka-python's `ssl_ciphers`, Python's ssl).
- `client_auth: requested`: clients with a certificate get its principal, clients without
  one are `$anonymous`; a CRL revokes a certificate, and a SIGHUP picks up the new CRL.
- Towards brokers: an encrypted client key (`key_password_file`) and a TLS 1.2 policy,
  against a second kafka-proxy that requires client certificates.
"""

from __future__ import annotations

import re
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest

from kafka_e2e.admin import Admin
from kafka_e2e.clients import CLIENT_LIBS, ClientError
from kafka_e2e.ports import HOST, pick_port
from kafka_e2e.sasl_clients import produce_consume, sasl_client_lib
from kafka_e2e.sasl_fixtures import start_proxy
from kafka_e2e.sasl_proxy import proxy_config, reserve_layout
from kafka_e2e.tls import ClientTls, Identity, OwnCa

KEY_PASSWORD = "e2e-key-Pa55"


def encrypt_key(plain: Path, out: Path, password: str) -> Path:
    """`plain` (PKCS#8 PEM) as encrypted PKCS#8 (PBES2, AES-256-CBC), what keytool/openssl write."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(plain.read_bytes(), password=None)
    out.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(password.encode())))
    return out


def probe(port: int, ca: Path, identity: Identity | None = None, max_version=None, ciphers: str | None = None,
          timeout: float = 5.0) -> tuple[str, str | None, str | None]:
    """A TLS handshake and one ApiVersions round trip: ("ok", version, cipher) or (error, None, None)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if identity:
        ctx.load_cert_chain(str(identity.cert), str(identity.key))
    if max_version:
        ctx.maximum_version = max_version
    if ciphers:
        ctx.set_ciphers(ciphers)
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x01\x00\x04e2e!")
                if len(s.recv(4)) < 4:
                    return "closed", None, None
                return "ok", s.version(), s.cipher()[0]
    except (ssl.SSLError, OSError) as e:
        return f"{type(e).__name__}: {e}", None, None


def tls_lib(name: str, ca: Path, identity: Identity | None = None, **extra):
    """Client library `name` over TLS (host name verified), with `extra` settings."""
    return sasl_client_lib(name, None, ClientTls(ca, identity), **extra)


def downstream_tls(certs, **tls) -> dict:
    return {"security_protocol": "SSL",
            "tls": {"cert": str(certs.server.cert), "key": str(certs.server.key), **tls}}


# ------------------------------------------------------------------ versions and suites


@pytest.fixture(scope="module")
def tls13_proxy(request, tmp_path_factory, memory_tansu, sasl_runtime, certs):
    workdir = tmp_path_factory.mktemp(f"tls13-{sasl_runtime}")
    key = encrypt_key(certs.server.key, workdir / "server_key.p8.pem", KEY_PASSWORD)
    downstream = downstream_tls(certs, key=str(key), key_password="@KEY_PASSWORD@", min_version="1.3",
                                cipher_suites=["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"],
                                curves=["x25519", "P-256"])
    layout = reserve_layout()
    # The password comes from the environment (`${VAR}` in the file).
    text = proxy_config([memory_tansu.bootstrap], layout, downstream).replace("@KEY_PASSWORD@",
                                                                              "${E2E_KEY_PASSWORD}")
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-tls13",
                        env={"E2E_KEY_PASSWORD": KEY_PASSWORD})
    yield proxy
    proxy.stop()


def test_tls12_client_refused_by_a_tls13_listener(tls13_proxy, certs):
    port = tls13_proxy.layout.bootstrap_port(0)
    outcome, _, _ = probe(port, certs.ca, max_version=ssl.TLSVersion.TLSv1_2)
    assert outcome != "ok", "a TLS 1.2 client got through"
    outcome, version, cipher = probe(port, certs.ca)
    assert (outcome, version, cipher) == ("ok", "TLSv1.3", "TLS_AES_256_GCM_SHA384"), (outcome, version, cipher)


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_clients_over_the_tls13_listener_with_an_encrypted_key(tls13_proxy, memory_tansu, certs, lib_name,
                                                               unique):
    topic = f"tls13-{lib_name}-{unique}"
    memory_tansu.create_topic(topic)
    result = produce_consume(tls_lib(lib_name, certs.ca), tls13_proxy.bootstrap, topic, n=20)
    assert result.consumed == result.produced == 20, result


@pytest.fixture(scope="module")
def tls12_proxy(request, tmp_path_factory, memory_tansu, sasl_runtime, certs):
    workdir = tmp_path_factory.mktemp(f"tls12-{sasl_runtime}")
    downstream = downstream_tls(certs, max_version="1.2",
                                cipher_suites=["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"])
    layout = reserve_layout()
    text = proxy_config([memory_tansu.bootstrap], layout, downstream)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-tls12")
    yield proxy
    proxy.stop()


def test_a_suite_outside_the_list_is_refused(tls12_proxy, certs):
    port = tls12_proxy.layout.bootstrap_port(0)
    outcome, _, _ = probe(port, certs.ca, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    assert outcome != "ok", "a client without the listed suite got through"
    assert probe(port, certs.ca) == ("ok", "TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_client_libraries_and_the_suite_list(tls12_proxy, memory_tansu, certs, lib_name, unique):
    option = "ssl.cipher.suites" if lib_name == "confluent" else "ssl_ciphers"
    refused = tls_lib(lib_name, certs.ca, **{option: "ECDHE-ECDSA-AES128-GCM-SHA256"})
    with pytest.raises(ClientError):
        refused.metadata(tls12_proxy.bootstrap, timeout=4.0)
    topic = f"tls12-{lib_name}-{unique}"
    memory_tansu.create_topic(topic)
    allowed = tls_lib(lib_name, certs.ca, **{option: "ECDHE-ECDSA-AES256-GCM-SHA384"})
    result = produce_consume(allowed, tls12_proxy.bootstrap, topic, n=10)
    assert result.consumed == result.produced == 10, result


# ------------------------------------------------------------------ requested certificates, CRLs


@pytest.fixture(scope="module")
def crl_world(tmp_path_factory):
    ca = OwnCa("crl", tmp_path_factory.mktemp("crl-ca"))
    return ca, ca.client_identity("alice-cert", "alice-cert"), ca.client_identity("bob-cert", "bob-cert")


def principals(log: str) -> list[str]:
    return re.findall(r"client authenticated by TLS session=\d+ principal=(\S+)", log)


def test_requested_certificates_principals_and_a_crl_reloaded_by_sighup(
        request, tmp_path, memory_tansu, sasl_runtime, certs, crl_world, unique):
    ca, alice, bob = crl_world
    crl = ca.write_crl(tmp_path / "clients.crl.pem", revoked=[], number=1)
    downstream = downstream_tls(certs, client_auth="requested", ca_certs=str(ca.ca_pem), crl_files=[str(crl)])
    layout = reserve_layout()
    admin = Admin(pick_port(avoid=set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))))
    text = proxy_config([memory_tansu.bootstrap], layout, downstream, admin={"bind": f"{HOST}:{admin.port}"})
    proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-requested")
    try:
        port = layout.bootstrap_port(0)
        topic = f"requested-{unique}"
        memory_tansu.create_topic(topic)
        # With and without a certificate, both libraries; principals from the certificate or $anonymous.
        for lib_name in CLIENT_LIBS:
            for identity in (alice, None):
                mark = proxy.mark()
                result = produce_consume(tls_lib(lib_name, certs.ca, identity), proxy.bootstrap, topic, n=5)
                assert result.consumed == result.produced == 5, (lib_name, identity, result)
                seen = set(principals(proxy.log_since(mark)))
                assert seen == {"alice-cert" if identity else "$anonymous"}, (lib_name, identity, seen)
        assert probe(port, certs.ca, bob)[0] == "ok"

        # Bob's certificate is revoked: the new CRL applies after SIGHUP.
        ca.write_crl(crl, revoked=["bob-cert"], number=2)
        mark = proxy.mark()
        proxy.process.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "configuration reloaded" not in proxy.log_since(mark):
            assert time.monotonic() < deadline, proxy.log_text()[-2000:]
            time.sleep(0.1)
        outcome = probe(port, certs.ca, bob)[0]
        assert outcome != "ok", "a revoked certificate was accepted (not downgraded to $anonymous either)"
        for lib_name in CLIENT_LIBS:
            with pytest.raises(ClientError):
                tls_lib(lib_name, certs.ca, bob).metadata(proxy.bootstrap, timeout=4.0)
        assert probe(port, certs.ca, alice)[0] == "ok"
        assert probe(port, certs.ca, None)[0] == "ok"
        refusals = [ln for ln in proxy.log_since(mark).splitlines() if "TLS with the client failed" in ln]
        assert any("revoked" in ln.lower() for ln in refusals), refusals
        # In the metrics: certificate logins under MTLS (clients without one are not counted
        # as authenticated), refusals of the revoked certificate as client TLS errors.
        accepted = len([ln for ln in proxy.log_text().splitlines()
                        if "client authenticated by TLS" in ln and "$anonymous" not in ln])
        scrape = admin.wait_value("kafka_proxy_authentications_total", accepted, side="client", mechanism="MTLS")
        assert scrape.value("kafka_proxy_authentications_total", side="client", mechanism="MTLS") == accepted
        admin.wait_value("kafka_proxy_connections_closed_total", len(refusals), reason="client_tls_error")
    finally:
        proxy.stop()


# ------------------------------------------------------------------ towards brokers


def test_encrypted_client_key_and_tls12_towards_brokers(request, tmp_path, memory_tansu, sasl_runtime, certs,
                                                          unique):
    """The broker side requires client certificates: a second kafka-proxy (mTLS, CN principal)."""
    front_layout = reserve_layout()
    front_downstream = downstream_tls(certs, client_auth="required", ca_certs=str(certs.ca))
    front = start_proxy(request, tmp_path, proxy_config([memory_tansu.bootstrap], front_layout, front_downstream),
                        front_layout, sasl_runtime, name="front-mtls")
    try:
        key = encrypt_key(certs.client(1).key, tmp_path / "client1_key.p8.pem", KEY_PASSWORD)
        password_file = tmp_path / "client-key.pass"
        password_file.write_text(KEY_PASSWORD + "\n")
        upstream = {"security_protocol": "SSL",
                    "tls": {"ca_certs": str(certs.ca), "client_cert": str(certs.client(1).cert),
                            "client_key": str(key), "key_password_file": str(password_file),
                            "max_version": "1.2", "cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]}}
        layout = reserve_layout()
        text = proxy_config([front.bootstrap], layout, {"security_protocol": "PLAINTEXT"}, upstream)
        proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-client-key")
        try:
            for lib_name in CLIENT_LIBS:
                topic = f"client-key-{lib_name}-{unique}"
                memory_tansu.create_topic(topic)
                result = produce_consume(sasl_client_lib(lib_name, None), proxy.bootstrap, topic, n=10)
                assert result.consumed == result.produced == 10, (lib_name, result)
            assert set(principals(front.log_text())) == {"client1"}, front.log_text()[-2000:]
        finally:
            proxy.stop()
    finally:
        front.stop()
