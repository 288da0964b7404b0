"""Refused clients get Kafka's error codes and messages, then the connection closes.

The proxy offers PLAIN, SCRAM-SHA-256 and OAUTHBEARER (so SCRAM-SHA-512 is an unknown
mechanism here). Raw wire checks pin each code, message and the close; the client
libraries show what users see (librdkafka's error_cb, kafka-python's log, since neither
exposes the code directly).
"""

from __future__ import annotations

import json
import time

import pytest

from kafka_e2e.clients import CLIENT_LIBS
from kafka_e2e.ports import HOST
from kafka_e2e.sasl import (
    ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM, SaslWire, ScramClient,
    TokenIssuer, metadata_v1_body, oauth_initial_response, plain_token, scram_login,
)
from kafka_e2e.sasl_clients import Login, auth_failure_seen_by_client, sasl_client_lib
from kafka_e2e.sasl_fixtures import PASSWORDS, downstream_sasl, start_proxy
from kafka_e2e.sasl_proxy import lines_with, proxy_config, reserve_layout

ENABLED = ["PLAIN", "SCRAM-SHA-256", "OAUTHBEARER"]


def invalid_credentials(mechanism: str) -> str:
    """Kafka's message for bad credentials: the same whether or not the user exists."""
    return ("Authentication failed during authentication due to invalid credentials "
            f"with SASL mechanism {mechanism}")


@pytest.fixture(scope="module")
def refusing_proxy(request, tmp_path_factory, memory_tansu, sasl_runtime, issuer):
    workdir = tmp_path_factory.mktemp(f"refusals-{sasl_runtime}")
    layout = reserve_layout()
    # This module fails logins on purpose, one after another from 127.0.0.1, on one
    # proxy: the failed-login throttle (tested in test_hostile.py) would hold each
    # refusal longer than the last. Its delays are cut to 1 ms here.
    no_throttle = {"login_failure_base_delay_ms": 1, "login_failure_max_delay_ms": 1}
    text = proxy_config([memory_tansu.bootstrap], layout, downstream_sasl(workdir, issuer, ENABLED),
                        limits=no_throttle)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-refusals")
    yield proxy
    proxy.stop()


def wire(proxy) -> SaslWire:
    return SaslWire(HOST, proxy.layout.bootstrap_port(0), timeout=5.0)


def assert_closed(w: SaslWire, after: str) -> None:
    closed, extra = w.closed_by_peer(timeout=3.0)
    assert closed, f"connection still open 3 s after {after}"
    assert extra == b"", f"unexpected bytes after {after}: {extra[:80]!r}"


def refusal_reasons(proxy, mark: int) -> list[str]:
    lines = lines_with(proxy.log_since(mark), "refusing client", "reason=")
    return [ln.split("reason=", 1)[1] for ln in lines]


# ------------------------------------------------------------------- wire


def test_plain_wrong_password_and_unknown_user(refusing_proxy):
    results = {}
    for case, (user, password) in {"wrong password": ("alice", "not-" + PASSWORDS["alice"]),
                                   "unknown user": ("mallory", "whatever-1")}.items():
        with wire(refusing_proxy) as w:
            assert w.sasl_handshake("PLAIN").error_code == 0
            r = w.sasl_authenticate(plain_token(user, password))
            results[case] = (r.error_code, r.error_message)
            assert_closed(w, f"PLAIN {case}")
    assert results["wrong password"] == (SASL_AUTHENTICATION_FAILED, invalid_credentials("PLAIN"))
    assert results["unknown user"] == results["wrong password"]


def test_scram_wrong_password_and_unknown_user(refusing_proxy):
    """Both run the whole exchange (an unknown user gets a stable fake salt) and fail at the proof."""
    results, firsts = {}, {}
    for case, (user, password) in {"wrong password": ("alice", "not-" + PASSWORDS["alice"]),
                                   "unknown user": ("mallory", "whatever-1"),
                                   "unknown user again": ("mallory", "whatever-2")}.items():
        with wire(refusing_proxy) as w:
            assert w.sasl_handshake("SCRAM-SHA-256").error_code == 0
            scram = ScramClient("SCRAM-SHA-256", user, password)
            first = w.sasl_authenticate(scram.first())
            assert first.error_code == 0, f"{case}: client-first refused: {first}"
            attrs = dict(kv.split("=", 1) for kv in first.auth_bytes.decode().split(","))
            firsts[case] = (attrs["s"], attrs["i"])
            final = w.sasl_authenticate(scram.final(first.auth_bytes))
            results[case] = (final.error_code, final.error_message, final.auth_bytes)
            assert_closed(w, f"SCRAM {case}")
    expected = (SASL_AUTHENTICATION_FAILED, invalid_credentials("SCRAM-SHA-256"), b"")
    assert results["wrong password"] == expected
    assert results["unknown user"] == results["wrong password"]
    # The fake salt is stable per user name and the iteration count is the usual one.
    assert firsts["unknown user"] == firsts["unknown user again"]
    assert firsts["unknown user"][1] == firsts["wrong password"][1]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "GSSAPI", "scram-sha-256"])
def test_unknown_mechanism(refusing_proxy, mechanism):
    """33 with the enabled mechanisms, then the close (names are case-sensitive, as in Kafka)."""
    mark = refusing_proxy.mark()
    with wire(refusing_proxy) as w:
        hs = w.sasl_handshake(mechanism)
        assert (hs.error_code, hs.mechanisms) == (UNSUPPORTED_SASL_MECHANISM, ENABLED)
        assert_closed(w, f"SaslHandshake {mechanism}")
    time.sleep(0.2)
    assert any(mechanism in r for r in refusal_reasons(refusing_proxy, mark)), refusing_proxy.log_since(mark)


@pytest.mark.parametrize("token_kind", ["expired", "foreign signature", "wrong audience"])
def test_invalid_token(refusing_proxy, issuer, token_kind):
    """RFC 7628 / KIP-255: an invalid token gets the JSON challenge (error 0), the client answers
    0x01, and only then comes 58 (with the challenge as message); then the close."""
    now = time.time()
    token = {
        "expired": lambda: issuer.token("carol", lifetime_s=600, now=now - 3600),
        "foreign signature": lambda: TokenIssuer().token("carol"),
        "wrong audience": lambda: issuer.token("carol", audience="someone-else"),
    }[token_kind]()
    with wire(refusing_proxy) as w:
        assert w.sasl_handshake("OAUTHBEARER").error_code == 0
        challenge = w.sasl_authenticate(oauth_initial_response(token))
        assert challenge.error_code == 0, challenge
        assert json.loads(challenge.auth_bytes) == {"status": "invalid_token"}
        final = w.sasl_authenticate(b"\x01")
        assert final.error_code == SASL_AUTHENTICATION_FAILED
        assert json.loads(final.error_message) == {"status": "invalid_token"}
        assert_closed(w, f"OAUTHBEARER {token_kind}")


def test_valid_token_passes_on_the_wire(refusing_proxy, issuer):
    """The control for test_invalid_token: the same flow with a good token authenticates,
    with KIP-368 SessionLifetimeMs bounded by the token's exp."""
    with wire(refusing_proxy) as w:
        assert w.sasl_handshake("OAUTHBEARER").error_code == 0
        r = w.sasl_authenticate(oauth_initial_response(issuer.token("carol", lifetime_s=120)))
        assert (r.error_code, r.auth_bytes) == (0, b"")
        assert 100_000 <= r.session_lifetime_ms <= 120_000, r
        assert w.metadata(1).brokers, "an authenticated connection is served"


def test_request_before_authentication(refusing_proxy):
    """Only ApiVersions and SaslHandshake come first. Another request is refused like Kafka's
    IllegalSaslStateException: a request whose response has an error code gets 34, others
    (Metadata) get no response; the connection closes either way."""
    mark = refusing_proxy.mark()
    with wire(refusing_proxy) as w:
        assert w.api_versions(0).error_code == 0, "ApiVersions is allowed before authentication"
        w.send_only(3, 1, metadata_v1_body(), flexible_header=False)
        assert_closed(w, "Metadata before authentication")
    with wire(refusing_proxy) as w:
        r = w.sasl_authenticate(plain_token("alice", PASSWORDS["alice"]))
        assert r.error_code == ILLEGAL_SASL_STATE, r
        assert r.error_message == "Unexpected Kafka request of type SaslAuthenticate during SASL handshake."
        assert_closed(w, "SaslAuthenticate before SaslHandshake")
    with wire(refusing_proxy) as w:
        # Between handshake and authentication: still not authenticated.
        assert w.sasl_handshake("PLAIN").error_code == 0
        w.send_only(3, 1, metadata_v1_body(), flexible_header=False)
        assert_closed(w, "Metadata after SaslHandshake, before SaslAuthenticate")
    time.sleep(0.2)
    reasons = refusal_reasons(refusing_proxy, mark)
    assert len(reasons) == 3, reasons
    # Each refusal is ILLEGAL_SASL_STATE, whether or not the request could carry the code.
    assert all("error code 34" in r for r in reasons), reasons
    assert sum("Metadata" in r for r in reasons) == 2, reasons


def test_handshake_v0_raw_token_refused(refusing_proxy):
    """After SaslHandshake v0 the tokens are raw frames with no room for an error: a bad PLAIN
    token just closes the connection; a good one gets the empty token back."""
    with wire(refusing_proxy) as w:
        assert w.sasl_handshake("PLAIN", version=0).error_code == 0
        w.sock.sendall(len(plain_token("alice", "nope")).to_bytes(4, "big") + plain_token("alice", "nope"))
        assert_closed(w, "a bad raw PLAIN token")
    with wire(refusing_proxy) as w:
        assert w.sasl_handshake("PLAIN", version=0).error_code == 0
        assert w.raw_token(plain_token("alice", PASSWORDS["alice"])) == b""
        assert w.metadata(1).brokers


def test_scram_login_control(refusing_proxy):
    """The control for the SCRAM refusals: right password, server signature checks out."""
    with wire(refusing_proxy) as w:
        r, scram = scram_login(w, "SCRAM-SHA-256", "alice", PASSWORDS["alice"])
        assert r.error_code == 0 and scram.server_final_ok(r.auth_bytes), r
        assert w.metadata(1).brokers


# ------------------------------------------------------------------- what clients see


CLIENT_CASES = {
    "wrong-password": (lambda iss: Login("SCRAM-SHA-256", "alice", "not-" + PASSWORDS["alice"]),
                       "Error 58", invalid_credentials("SCRAM-SHA-256")),
    "unknown-user": (lambda iss: Login("PLAIN", "mallory", "whatever-1"),
                     "Error 58", invalid_credentials("PLAIN")),
    "unknown-mechanism": (lambda iss: Login("SCRAM-SHA-512", "alice", PASSWORDS["alice"]),
                          "Error 33", "PLAIN,SCRAM-SHA-256,OAUTHBEARER"),
    "expired-token": (lambda iss: Login("OAUTHBEARER", "carol", believed_lifetime_s=600,
                                        token=lambda: iss.token("carol", now=time.time() - 3600)),
                      "Error 58", '{"status":"invalid_token"}'),
}


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
@pytest.mark.parametrize("case", list(CLIENT_CASES))
def test_client_sees_refusal(refusing_proxy, issuer, lib_name, case):
    make_login, kp_code, text = CLIENT_CASES[case]
    lib = sasl_client_lib(lib_name, make_login(issuer))
    errors = auth_failure_seen_by_client(lib, refusing_proxy.bootstrap)
    if lib_name == "confluent":
        # librdkafka names no code; it prints the mechanisms list (33) or the broker's message (58).
        assert any(text in e for e in errors), errors
    else:
        if case == "unknown-mechanism":
            # kafka-python drops the list from its error; it checks it is the broker's answer (33).
            assert any("[Error 33] UnsupportedSaslMechanismError" in e for e in errors), errors
        else:
            wanted = f"[{kp_code}] SaslAuthenticationFailedError"
            assert any(wanted in e and text in e for e in errors), errors
