"""OAUTHBEARER validated against a JWKS endpoint over HTTPS (KIP-768), on both runtimes.

The identity provider is `kafka_e2e.idp` (real TLS, a CA from `kafka-proxy --generate-certs`,
`jwks_ca_certs` trusting it). The proxy fetches the key set at start, on a schedule
(`jwks_refresh_ms`) and when a token names an unknown `kid` (at most every
`jwks_min_refresh_interval_ms`), and keeps serving the last good set when the endpoint fails.

- every JWS algorithm the proxy verifies, with librdkafka and kafka-python;
- audience lists and a configured principal claim;
- key rotation with clients connected: tokens signed by a new key are accepted within one
  refresh, without a restart; tokens signed by a removed key are refused after it;
- the endpoint failing: the last good key set keeps serving;
- refusals counted by reason in `kafka_proxy_authentication_failures_total` (admin endpoint).
"""

from __future__ import annotations

import time

import pytest

from kafka_e2e.admin import Admin
from kafka_e2e.clients import CLIENT_LIBS
from kafka_e2e.idp import ALGORITHMS, IdentityProvider
from kafka_e2e.ports import HOST, pick_port
from kafka_e2e.sasl import SaslWire, oauth_initial_response
from kafka_e2e.sasl_clients import Login, produce_consume, sasl_client_lib, streams_in_parallel
from kafka_e2e.sasl_fixtures import start_proxy
from kafka_e2e.sasl_proxy import by_session, lines_with, proxy_config, reserve_layout

REFRESH_MS = 1500
MIN_REFRESH_MS = 300
LIFETIME_MS = 2000  # clients re-authenticate several times during the rotation stream
DEBUG_LOG = {"RUST_LOG": "info,kafka_proxy_core=debug"}


@pytest.fixture(scope="module")
def idp(certs):
    provider = IdentityProvider(certs.server.cert, certs.server.key)
    for alg in ALGORITHMS:
        provider.add_key(f"k-{alg}", alg)
    provider.sign_with("k-RS256")
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def jwks_proxy(request, tmp_path_factory, memory_tansu, sasl_runtime, idp, certs):
    workdir = tmp_path_factory.mktemp(f"jwks-{sasl_runtime}")
    layout = reserve_layout()
    downstream = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "OAUTHBEARER",
        "session_lifetime_ms": LIFETIME_MS,
        "oauthbearer": {
            "jwks_url": idp.jwks_url,
            "jwks_ca_certs": str(certs.ca),
            "jwks_refresh_ms": REFRESH_MS,
            "jwks_min_refresh_interval_ms": MIN_REFRESH_MS,
            "issuer": idp.ISSUER,
            "audience": ["another-service", idp.AUDIENCE],
            "required_scopes": [idp.SCOPE],
            "clock_skew_seconds": 5,
        },
    }
    span = set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))
    admin = Admin(pick_port(avoid=span | {idp.port}))
    # Refusals are part of these tests (all from 127.0.0.1): the failed-login throttle
    # (tested in test_hostile.py) would hold the clients' next logins for seconds.
    no_throttle = {"login_failure_base_delay_ms": 1, "login_failure_max_delay_ms": 1}
    text = proxy_config([memory_tansu.bootstrap], layout, downstream, admin={"bind": f"{HOST}:{admin.port}"},
                        limits=no_throttle)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-jwks", env=DEBUG_LOG)
    proxy.admin = admin
    yield proxy
    proxy.stop()


def oauth_failures(proxy) -> dict[str, float]:
    """`kafka_proxy_authentication_failures_total` of OAUTHBEARER clients, by reason."""
    scrape = proxy.admin.scrape()
    name = "kafka_proxy_authentication_failures_total"
    return {ls["reason"]: scrape.value(name, **ls) for ls in scrape.series(name)
            if ls.get("side") == "client" and ls.get("mechanism") == "OAUTHBEARER"}


def failures_grow(proxy, before: dict[str, float], reasons: dict[str, int], seconds: float = 5.0) -> dict:
    """Polls until each reason's count grew by at least its number; returns the last counts."""
    deadline = time.monotonic() + seconds
    while True:
        now = oauth_failures(proxy)
        if all(now.get(r, 0) - before.get(r, 0) >= n for r, n in reasons.items()):
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"failures by reason {now}, before {before}, expected growth {reasons}")
        time.sleep(0.1)


def login(proxy, token: str) -> bool:
    """One OAUTHBEARER login on the wire: True when the proxy accepted the token."""
    with SaslWire(HOST, proxy.layout.bootstrap_port(0)) as w:
        assert w.sasl_handshake("OAUTHBEARER").error_code == 0
        first = w.sasl_authenticate(oauth_initial_response(token))
        if first.error_code == 0 and not first.auth_bytes:
            return True
        assert first.auth_bytes == b'{"status":"invalid_token"}', first
        last = w.sasl_authenticate(b"\x01")
        assert last.error_code == 58, last
        return False


def accepted_within(proxy, token_of, seconds: float) -> float | None:
    """Seconds until a login with `token_of()` is accepted (a client retrying), or None."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if login(proxy, token_of()):
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def test_keys_come_from_the_endpoint_at_start(jwks_proxy, idp):
    assert idp.jwks_requests >= 1
    log = jwks_proxy.log_text()
    installed = lines_with(log, "JWKS key set installed", "keys=")
    assert installed, log[-2000:]
    # Every algorithm's key (and, on the second runtime, the key the rotation test added).
    assert int(installed[0].split("keys=", 1)[1].split()[0]) >= len(ALGORITHMS), installed[0]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_algorithm_on_the_wire(jwks_proxy, idp, alg):
    assert login(jwks_proxy, idp.token("carol", kid=f"k-{alg}")), alg


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_client_libraries_with_several_algorithms(jwks_proxy, memory_tansu, idp, lib_name, unique):
    for alg in ("PS384", "ES512", "EdDSA"):
        topic = f"jwks-{alg.lower()}-{lib_name}-{unique}"
        memory_tansu.create_topic(topic)
        login_ = Login("OAUTHBEARER", "carol", token=lambda alg=alg: idp.token("carol", kid=f"k-{alg}"))
        result = produce_consume(sasl_client_lib(lib_name, login_), jwks_proxy.bootstrap, topic, n=10)
        assert result.consumed == result.produced == 10, (alg, result)


def test_audience_lists_and_claims(jwks_proxy, idp):
    before = oauth_failures(jwks_proxy)
    assert login(jwks_proxy, idp.token("carol", audience=["x", "another-service"]))
    assert not login(jwks_proxy, idp.token("carol", audience=["x", "y"]))
    assert not login(jwks_proxy, idp.token("carol", extra={"scope": "other"}))
    assert not login(jwks_proxy, idp.token("carol", lifetime_s=-60))
    failures_grow(jwks_proxy, before, {"invalid_audience": 1, "insufficient_scope": 1, "token_expired": 1})


def test_rotation_with_clients_connected(jwks_proxy, memory_tansu, idp, unique):
    """A new key is taken within one refresh (no restart); a removed key is refused after it;
    both client libraries stream through the rotation, re-authenticating every ~2 s."""
    all_kids = [f"k-{alg}" for alg in ALGORITHMS]
    idp.publish(*all_kids)
    idp.sign_with("k-ES256")
    new = idp.add_key(f"rotated-{unique}", "ES384", publish=False)
    jobs = {}
    for lib_name in CLIENT_LIBS:
        topic = f"rotation-{lib_name}-{unique}"
        memory_tansu.create_topic(topic)
        # Each token is signed by the key the provider signs with at the time.
        lib = sasl_client_lib(lib_name, Login("OAUTHBEARER", "carol", expiry_margin_s=1.0,
                                              token=lambda: idp.token("carol", lifetime_s=4)))
        jobs[lib_name] = (lib, jwks_proxy.bootstrap, topic)
    import threading

    outcome: dict = {}

    def rotate():
        time.sleep(2.0)
        # 1. The provider publishes a new key; a token signed with it is accepted within
        # one refresh; then the provider signs every new token with it.
        before = idp.jwks_requests
        idp.publish(*all_kids, new.kid)
        outcome["new_accepted_after_s"] = accepted_within(jwks_proxy, lambda: idp.token("dave", kid=new.kid),
                                                          REFRESH_MS / 1000 + 2.0)
        outcome["fetched"] = idp.jwks_requests - before
        idp.sign_with(new.kid)
        time.sleep(1.5)
        # 2. The old key is withdrawn: after the next refresh its tokens are refused.
        idp.publish(new.kid)
        mark = idp.jwks_requests
        outcome["refreshed"] = idp.wait_jwks_requests(mark, REFRESH_MS / 1000 + 2.0)
        time.sleep(0.3)
        outcome["failures_before"] = oauth_failures(jwks_proxy)
        outcome["old_refused"] = not login(jwks_proxy, idp.token("dave", kid="k-ES256"))
        outcome["new_still_accepted"] = login(jwks_proxy, idp.token("dave", kid=new.kid))

    rotator = threading.Thread(target=rotate)
    mark = jwks_proxy.mark()
    rotator.start()
    results = streams_in_parallel(jobs, 9.0)
    rotator.join(timeout=30)
    log = jwks_proxy.log_since(mark)
    assert outcome.get("new_accepted_after_s") is not None, (outcome, log[-3000:])
    assert outcome["new_accepted_after_s"] <= REFRESH_MS / 1000 + 1.0, outcome
    assert outcome["refreshed"] and outcome["old_refused"] and outcome["new_still_accepted"], outcome
    # The removed key's token was refused as signed by a key the proxy does not know.
    failures_grow(jwks_proxy, outcome["failures_before"], {"unknown_key": 1})
    for name, r in results.items():
        assert not r.failed and r.acked == r.sent, f"{name}: {r.acked}/{r.sent}; {r.failed[:3]}"
        assert r.consumed == r.acked, f"{name}: consumed {r.consumed}/{r.acked}"
    reauths = len(lines_with(log, "client re-authenticated"))
    assert reauths >= 4, f"clients re-authenticated {reauths} times during the rotation"
    assert by_session(log, "client authenticated", "principal"), log[-2000:]
    assert lines_with(log, "JWKS key set installed"), "the rotation was picked up by refreshes"
    # Restore the common key set for the other tests.
    idp.publish(*all_kids, new.kid)
    idp.sign_with("k-RS256")


def test_failing_endpoint_keeps_the_last_good_keys(jwks_proxy, idp):
    # The proxy holds the full key set (a refresh after the last change), then the endpoint fails.
    assert idp.wait_jwks_requests(idp.jwks_requests, REFRESH_MS / 1000 + 2.0)
    assert accepted_within(jwks_proxy, lambda: idp.token("erin", kid="k-ES256"), 2.0) is not None
    idp.failing = True
    try:
        mark = idp.jwks_requests
        assert idp.wait_jwks_requests(mark, REFRESH_MS / 1000 + 2.0), "a refresh was attempted"
        time.sleep(0.2)
        assert login(jwks_proxy, idp.token("erin", kid="k-ES256"))
        assert lines_with(jwks_proxy.log_text(), "JWKS refresh failed, the last good key set keeps serving")
    finally:
        idp.failing = False


def test_configured_claim_names(request, tmp_path, memory_tansu, sasl_runtime, idp, certs, unique):
    """`sub_claim_name` and `scope_claim_name` (Kafka's sasl.oauthbearer.*.claim.name)."""
    layout = reserve_layout()
    downstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
                  "oauthbearer": {"jwks_url": idp.jwks_url, "jwks_ca_certs": str(certs.ca),
                                  "audience": idp.AUDIENCE, "required_scopes": ["kafka"],
                                  "sub_claim_name": "client_id", "scope_claim_name": "scp"}}
    text = proxy_config([memory_tansu.bootstrap], layout, downstream)
    proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-claims")
    try:
        claims = {"client_id": "svc-7", "scp": ["kafka", "other"]}
        assert login(proxy, idp.token("ignored-sub", kid="k-ES256", extra=claims))
        principals = set(by_session(proxy.log_text(), "client authenticated", "principal").values())
        assert principals == {"svc-7"}, principals
        assert not login(proxy, idp.token("x", kid="k-ES256", extra={"scp": ["kafka"]})), "no client_id claim"
        assert not login(proxy, idp.token("x", kid="k-ES256", extra={"client_id": "svc-7", "scp": "other"}))
        topic = f"claims-{unique}"
        memory_tansu.create_topic(topic)
        lib = sasl_client_lib("confluent", Login("OAUTHBEARER", "svc-7",
                                                 token=lambda: idp.token("x", kid="k-ES256", extra=claims)))
        assert produce_consume(lib, proxy.bootstrap, topic, n=5).consumed == 5
    finally:
        proxy.stop()
