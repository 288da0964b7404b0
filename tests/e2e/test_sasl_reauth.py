"""KIP-368 re-authentication on long-lived connections.

- Downstream: the proxy gives clients `SessionLifetimeMs` 3000; librdkafka and kafka-python
  re-authenticate mid-stream, and traffic goes on over several lifetimes.
- Upstream: tansu 0.6.0 cannot be given a short lifetime (it always answers 60000 ms) and
  cannot re-authenticate at all (both pinned below as facts). So the broker that requires
  re-authentication here is a second kafka-proxy terminating SCRAM with a 3000 ms lifetime
  (its server side is the one the client libraries re-authenticate against above), in front
  of tansu; the proxy under test logs in to it and must re-authenticate before each
  lifetime ends, or the front proxy drops the connection.
"""

from __future__ import annotations

import time

import pytest

from kafka_e2e.clients import CLIENT_LIBS
from kafka_e2e.ports import HOST
from kafka_e2e.sasl import UNSUPPORTED_SASL_MECHANISM, SaslWire, scram_login
from kafka_e2e.sasl_clients import Login, sasl_client_lib, streams_in_parallel
from kafka_e2e.sasl_fixtures import BROKER_USERS, PASSWORDS, downstream_sasl, start_proxy
from kafka_e2e.sasl_proxy import by_session, lines_with, proxy_config, reserve_layout

LIFETIME_MS = 3000
STREAM_S = 10.0  # > 3 lifetimes
DEBUG_LOG = {"RUST_LOG": "info,kafka_proxy_core=debug"}  # re-authentications are logged at debug


@pytest.fixture(scope="module")
def short_session_proxy(request, tmp_path_factory, memory_tansu, sasl_runtime, issuer):
    workdir = tmp_path_factory.mktemp(f"reauth-{sasl_runtime}")
    layout = reserve_layout()
    downstream = downstream_sasl(workdir, issuer, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    downstream["session_lifetime_ms"] = LIFETIME_MS
    text = proxy_config([memory_tansu.bootstrap], layout, downstream)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-reauth", env=DEBUG_LOG)
    yield proxy
    proxy.stop()


def test_lifetime_on_the_wire(short_session_proxy):
    with SaslWire(HOST, short_session_proxy.layout.bootstrap_port(0)) as w:
        r, _ = scram_login(w, "SCRAM-SHA-256", "alice", PASSWORDS["alice"])
        assert (r.error_code, r.session_lifetime_ms) == (0, LIFETIME_MS), r


def test_expired_session_is_closed(short_session_proxy):
    """Without re-authentication, the first request after the lifetime closes the connection."""
    with SaslWire(HOST, short_session_proxy.layout.bootstrap_port(0)) as w:
        r, _ = scram_login(w, "SCRAM-SHA-256", "alice", PASSWORDS["alice"])
        assert r.error_code == 0
        assert w.metadata(1).brokers
        time.sleep(LIFETIME_MS / 1000 + 0.3)
        w.send_only(3, 1, (-1).to_bytes(4, "big", signed=True), flexible_header=False)
        closed, got = w.closed_by_peer(3)
        assert closed and got == b"", (closed, got)


def assert_streamed(results) -> None:
    for name, r in results.items():
        assert not r.failed and r.acked == r.sent, \
            f"{name}: {r.acked}/{r.sent} acknowledged; failures {r.failed[:3]}"
        assert r.consumed == r.acked, f"{name}: consumed {r.consumed}/{r.acked}; missing {r.missing}"


def test_clients_reauthenticate_mid_stream(short_session_proxy, memory_tansu, unique):
    """librdkafka (SCRAM-SHA-512) and kafka-python (SCRAM-SHA-256) stream at the same time."""
    jobs = {}
    for lib_name, mechanism in (("confluent", "SCRAM-SHA-512"), ("kafka-python", "SCRAM-SHA-256")):
        topic = f"reauth-{lib_name}-{unique}"
        memory_tansu.create_topic(topic)
        lib = sasl_client_lib(lib_name, Login(mechanism, "alice", PASSWORDS["alice"]))
        jobs[lib_name] = (lib, short_session_proxy.bootstrap, topic)
    mark = short_session_proxy.mark()
    results = streams_in_parallel(jobs, STREAM_S)
    log = short_session_proxy.log_since(mark)
    assert_streamed(results)
    first = by_session(log, "client authenticated", "lifetime_ms")
    assert first and set(first.values()) == {str(LIFETIME_MS)}, first
    mechanisms = {by_session(log, "client authenticated", "mechanism").get(s) for s in first}
    assert mechanisms == {"SCRAM-SHA-512", "SCRAM-SHA-256"}, mechanisms
    reauths = by_session_counts(log, "client re-authenticated")
    # Each library's producer and consumer broker connections live through the whole
    # stream and re-authenticate about every 2.6-2.9 s: at least twice in 10 s.
    session_mechanisms = by_session(log, "client authenticated", "mechanism")
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        sessions = [s for s, m in session_mechanisms.items() if m == mechanism]
        long_lived = [s for s in sessions if reauths.get(s, 0) >= 2]
        assert len(long_lived) >= 2, \
            f"{mechanism}: re-authentications per session {reauths}, sessions {sessions}"
    assert not lines_with(log, "refusing client"), lines_with(log, "refusing client")
    assert "session expired" not in log


@pytest.fixture(scope="module")
def oauth_only_proxy(request, tmp_path_factory, memory_tansu, sasl_runtime, issuer):
    """OAUTHBEARER without a configured session lifetime: the token's exp sets it."""
    workdir = tmp_path_factory.mktemp(f"oauth-reauth-{sasl_runtime}")
    jwks = workdir / "jwks.json"
    jwks.write_text(issuer.jwks_json())
    layout = reserve_layout()
    downstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
                  "oauthbearer": issuer.oauth_settings(jwks_file=jwks)}
    text = proxy_config([memory_tansu.bootstrap], layout, downstream)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-oauth-reauth",
                        env=DEBUG_LOG)
    yield proxy
    proxy.stop()


TOKEN_LIFETIME_S = 4
TOKEN_STREAM_S = 9.0  # > 2 token lifetimes


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_short_lived_tokens_are_refreshed_mid_stream(oauth_only_proxy, memory_tansu, issuer, lib_name,
                                                     unique):
    """KIP-368 with KIP-255: SessionLifetimeMs is the token's remaining life; the library
    fetches a new token (its callback) and re-authenticates with it before the old one expires.

    One library at a time: librdkafka refreshes only when the application polls, and a
    token it presents after its exp (still inside the proxy's clock skew) gets a 1 ms
    session, i.e. a reconnect; two client threads in one process make such late polls likely.
    """
    topic = f"oauth-reauth-{lib_name}-{unique}"
    memory_tansu.create_topic(topic)
    login = Login("OAUTHBEARER", "carol", expiry_margin_s=1.0,
                  token=lambda: issuer.token("carol", lifetime_s=TOKEN_LIFETIME_S))
    issued_before = len(issuer.issued)
    mark = oauth_only_proxy.mark()
    results = streams_in_parallel({lib_name: (sasl_client_lib(lib_name, login), oauth_only_proxy.bootstrap,
                                              topic)}, TOKEN_STREAM_S)
    log = oauth_only_proxy.log_since(mark)
    assert_streamed(results)
    lifetimes = [int(v) for v in by_session(log, "client authenticated", "lifetime_ms").values()]
    assert lifetimes and all(0 < ms <= TOKEN_LIFETIME_S * 1000 for ms in lifetimes), lifetimes
    reauths = by_session_counts(log, "client re-authenticated")
    # The producer's and the consumer's broker connections outlive two tokens each.
    assert len([s for s, n in reauths.items() if n >= 2]) >= 2, f"re-authentications per session: {reauths}"
    assert len(issuer.issued) - issued_before >= 3, "the client fetched fresh tokens"
    assert not lines_with(log, "refusing client"), lines_with(log, "refusing client")


def by_session_counts(log: str, message: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ln in lines_with(log, message, "session="):
        s = ln.split("session=", 1)[1].split()[0]
        counts[s] = counts.get(s, 0) + 1
    return counts


# ------------------------------------------------------------------- upstream


@pytest.fixture(scope="module")
def reauth_front(request, tmp_path_factory, memory_tansu, sasl_runtime, issuer):
    """The broker side that demands re-authentication: a kafka-proxy terminating SCRAM-SHA-256
    for user `svc-a` with a 3000 ms session lifetime, in front of tansu."""
    workdir = tmp_path_factory.mktemp(f"front-{sasl_runtime}")
    layout = reserve_layout()
    downstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                  "credentials": {"users": {"svc-a": BROKER_USERS["svc-a"][0]}},
                  "session_lifetime_ms": LIFETIME_MS}
    text = proxy_config([memory_tansu.bootstrap], layout, downstream)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="front-broker", env=DEBUG_LOG)
    yield proxy
    proxy.stop()


def test_proxy_reauthenticates_upstream(request, tmp_path, reauth_front, memory_tansu, sasl_runtime, unique):
    """Both client libraries stream through the proxy under test at once (PLAINTEXT clients;
    the proxy's own login upstream is what re-authenticates)."""
    layout = reserve_layout()
    upstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_username": "svc-a", "sasl_password": BROKER_USERS["svc-a"][0]}
    text = proxy_config([reauth_front.bootstrap], layout, {"security_protocol": "PLAINTEXT"}, upstream)
    proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-upstream-reauth",
                        env=DEBUG_LOG)
    try:
        jobs = {}
        for lib_name in CLIENT_LIBS:
            topic = f"up-reauth-{lib_name}-{unique}"
            memory_tansu.create_topic(topic)
            jobs[lib_name] = (sasl_client_lib(lib_name, None), proxy.bootstrap, topic)
        front_mark = reauth_front.mark()
        results = streams_in_parallel(jobs, STREAM_S)
        log, front_log = proxy.log_text(), reauth_front.log_since(front_mark)
        assert_streamed(results)
        logins = by_session(log, "logged in at the broker", "lifetime_ms")
        assert logins and set(logins.values()) == {str(LIFETIME_MS)}, logins
        reauths = by_session_counts(log, "re-authenticated with the broker")
        # Four long-lived broker connections (a producer and a consumer per library).
        assert len([s for s, n in reauths.items() if n >= 2]) >= 4, f"upstream re-authentications: {reauths}"
        assert len(lines_with(front_log, "client re-authenticated")) >= 8, front_log[-3000:]
        assert not lines_with(front_log, "refusing client"), lines_with(front_log, "refusing client")
        failed_logins = lines_with(log, "login at the broker failed")
        assert not failed_logins, failed_logins
    finally:
        proxy.stop()


def test_tansu_session_lifetime_facts(scram_tansu):
    """Why the upstream test above uses a second proxy as the broker: tansu 0.6.0 always
    answers SessionLifetimeMs 60000 (SaslAuthenticateService::default() in tansu-broker's
    service/auth.rs; no flag changes it) and answers a re-authentication SaslHandshake on an
    authenticated connection with 33, after which the connection is no longer authenticated."""
    with SaslWire(HOST, scram_tansu.port) as w:
        r, _ = scram_login(w, "SCRAM-SHA-256", "svc-a", BROKER_USERS["svc-a"][0])
        assert (r.error_code, r.session_lifetime_ms) == (0, 60000), r
        assert w.metadata(1).brokers
        assert w.sasl_handshake("SCRAM-SHA-256").error_code == UNSUPPORTED_SASL_MECHANISM
        w.send_only(3, 1, (-1).to_bytes(4, "big", signed=True), flexible_header=False)
        closed, _ = w.closed_by_peer(3)
        assert closed
