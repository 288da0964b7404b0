"""OAUTHBEARER towards brokers, on both runtimes: the proxy obtains tokens with the
client-credentials grant from an HTTPS token endpoint (`kafka_e2e.idp`), refreshes them at
80% of their lifetime and re-authenticates (KIP-368) with the new token.

The broker side that validates OAUTHBEARER is a second kafka-proxy terminating it with the
same identity provider's JWKS (`jwks_url`), in front of tansu (which cannot complete
OAUTHBEARER): it caps each session at the token's expiry, so the proxy under test must
re-authenticate with a fresh token before every expiry or lose its connections.
"""

from __future__ import annotations

import pytest

from kafka_e2e.admin import Admin
from kafka_e2e.clients import CLIENT_LIBS
from kafka_e2e.idp import IdentityProvider
from kafka_e2e.ports import HOST, pick_port
from kafka_e2e.sasl_clients import Login, produce_consume, sasl_client_lib, streams_in_parallel
from kafka_e2e.sasl_fixtures import start_proxy
from kafka_e2e.sasl_proxy import by_session, lines_with, proxy_config, reserve_layout

# Tokens live 9 s and are refreshed after 7.2 s, so a login never gets less than ~1.8 s of
# session; its re-authentication starts after the broker's 1 s minimum and ~0.75 s before
# the end (a margin in time that a busy 2-core host needs).
TOKEN_LIFETIME_S = 9
STREAM_S = 14.0  # > 1.5 token lifetimes: a connection that lasts it re-authenticated with a newer token
DEBUG_LOG = {"RUST_LOG": "info,kafka_proxy_core=debug"}
CLIENTS = {"svc-kafka": "svc-kafka-secret", "svc-a": "svc-a-secret", "svc-b": "svc-b-secret"}


@pytest.fixture(scope="module")
def idp(certs):
    provider = IdentityProvider(certs.server.cert, certs.server.key)
    provider.add_key("up-1", "RS256")
    provider.clients.update(CLIENTS)
    provider.token_lifetime_s = TOKEN_LIFETIME_S
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def oauth_front(request, tmp_path_factory, memory_tansu, sasl_runtime, idp, certs):
    """The broker that validates OAUTHBEARER (the token's exp caps each session)."""
    workdir = tmp_path_factory.mktemp(f"oauth-front-{sasl_runtime}")
    layout = reserve_layout()
    downstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
                  "oauthbearer": {"jwks_url": idp.jwks_url, "jwks_ca_certs": str(certs.ca),
                                  "issuer": idp.ISSUER, "audience": idp.AUDIENCE,
                                  "required_scopes": [idp.SCOPE], "clock_skew_seconds": 1}}
    text = proxy_config([memory_tansu.bootstrap], layout, downstream)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="oauth-front", env=DEBUG_LOG)
    yield proxy
    proxy.stop()


def with_admin(layout, idp, *avoid: int) -> tuple[Admin, dict]:
    """An admin endpoint for a proxy on `layout`, and its `admin` section."""
    span = set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))
    admin = Admin(pick_port(avoid=span | {idp.port, *avoid}))
    return admin, {"bind": f"{HOST}:{admin.port}"}


def upstream_oauth(idp, certs, **credentials) -> dict:
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
            "oauthbearer": {"token_endpoint_url": idp.token_url, "scope": "kafka", "ca_certs": str(certs.ca),
                            **credentials}}


def assert_streamed(results) -> None:
    for name, r in results.items():
        assert not r.failed and r.acked == r.sent, f"{name}: {r.acked}/{r.sent}; failures {r.failed[:3]}"
        assert r.consumed == r.acked, f"{name}: consumed {r.consumed}/{r.acked}; missing {r.missing}"


def session_lifespans(log: str) -> dict[str, float]:
    """session id -> seconds from its login at the broker to its close (log timestamps)."""
    from datetime import datetime

    def at(line: str) -> float:
        return datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()

    start = {ln.split("session=", 1)[1].split()[0]: at(ln) for ln in lines_with(log, "logged in at the broker")}
    spans = {}
    for ln in lines_with(log, "closing session="):
        s = ln.split("closing session=", 1)[1].split()[0]
        if s in start:
            spans[s] = at(ln) - start[s]
    return spans


def closed_sessions_log(proxy, timeout: float = 5.0) -> str:
    """The proxy's log once every session that logged in at the broker has logged its close
    (a client library may take a moment to close its sockets after its last record)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        log = proxy.log_text()
        clients = "\n".join(ln for ln in log.splitlines() if "probe{" not in ln)
        started = set(by_session(clients, "logged in at the broker", "user"))
        closed = {ln.split("closing session=", 1)[1].split()[0] for ln in lines_with(log, "closing session=")}
        if started <= closed or time.monotonic() > deadline:
            return log
        time.sleep(0.1)


def reauth_counts(log: str, message: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ln in lines_with(log, message, "session="):
        s = ln.split("session=", 1)[1].split()[0]
        counts[s] = counts.get(s, 0) + 1
    return counts


def test_service_identity_refreshes_tokens_and_reauthenticates(request, tmp_path, oauth_front, memory_tansu,
                                                               sasl_runtime, idp, certs, unique):
    layout = reserve_layout()
    upstream = upstream_oauth(idp, certs, client_id="svc-kafka", client_secret=CLIENTS["svc-kafka"])
    admin, admin_section = with_admin(layout, idp)
    text = proxy_config([oauth_front.bootstrap], layout, {"security_protocol": "PLAINTEXT"}, upstream,
                        admin=admin_section)
    requests_before = idp.token_requests.count("svc-kafka")
    proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-oauth-up", env=DEBUG_LOG)
    try:
        jobs = {}
        for lib_name in CLIENT_LIBS:
            topic = f"oauth-up-{lib_name}-{unique}"
            memory_tansu.create_topic(topic)
            jobs[lib_name] = (sasl_client_lib(lib_name, None), proxy.bootstrap, topic)
        front_mark = oauth_front.mark()
        results = streams_in_parallel(jobs, STREAM_S)
        log = closed_sessions_log(proxy)
        front_log = oauth_front.log_since(front_mark)
        assert_streamed(results)
        # Tokens were fetched at start and refreshed at 80% of their lifetime.
        fetched = idp.token_requests.count("svc-kafka") - requests_before
        assert fetched >= 3, f"{fetched} token requests"
        assert len(lines_with(log, "OAUTHBEARER token obtained", "client_id=svc-kafka")) >= 3
        logins = by_session(log, "logged in at the broker", "user")
        assert logins and set(logins.values()) == {"svc-kafka"}, logins
        # The front caps each session at the exp of the token it was given: the producer's and
        # the consumer's connections of both libraries outlived the first token, re-authenticating
        # with newer ones.
        reauths = reauth_counts(log, "re-authenticated with the broker")
        lived = session_lifespans(log)
        outlived = [s for s, span in lived.items() if span > TOKEN_LIFETIME_S + 1 and reauths.get(s, 0) >= 1]
        assert len(outlived) >= 4, f"lifespans {lived}, re-authentications {reauths}"
        principals = by_session(front_log, "client authenticated", "principal")
        assert principals and set(principals.values()) == {"svc-kafka"}, principals
        assert len(lines_with(front_log, "client re-authenticated")) >= 4, front_log[-3000:]
        assert not lines_with(front_log, "refusing client"), lines_with(front_log, "refusing client")
        assert not lines_with(log, "login at the broker failed"), lines_with(log, "login at the broker failed")
        # Every login and re-authentication of client sessions at the broker is counted under
        # OAUTHBEARER (the proxy's own metadata probes are not client sessions).
        counted = sum(1 for message in ("logged in at the broker", "re-authenticated with the broker")
                      for ln in lines_with(log, message) if "probe{" not in ln)
        scrape = admin.wait_value("kafka_proxy_authentications_total", counted, side="broker",
                                  mechanism="OAUTHBEARER")
        assert scrape.value("kafka_proxy_authentication_failures_total", side="broker") == 0
    finally:
        proxy.stop()


SWAP_USERS = {"u1": "u1-Pa55", "u2": "u2-Pa55"}


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_auth_swap_one_token_per_upstream_identity(request, tmp_path, oauth_front, memory_tansu, sasl_runtime,
                                                   idp, certs, lib_name, unique):
    """u1 acts as OAuth client svc-a and u2 as svc-b: each identity has its own token."""
    layout = reserve_layout()
    downstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}
    auth_swap = {"enabled": True,
                 "downstream_credentials": [f"{u}={p}" for u, p in SWAP_USERS.items()],
                 "upstream_credentials": [f"svc-a={CLIENTS['svc-a']}", f"svc-b={CLIENTS['svc-b']}"],
                 "mapping": ["u1=svc-a", "u2=svc-b"]}
    text = proxy_config([oauth_front.bootstrap], layout, downstream, upstream_oauth(idp, certs),
                        auth_swap=auth_swap)
    proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-oauth-swap", env=DEBUG_LOG)
    try:
        expected = {"u1": "svc-a", "u2": "svc-b"}
        for user in ("u1", "u2"):
            lib = sasl_client_lib(lib_name, Login("PLAIN", user, SWAP_USERS[user]))
            topic = f"oauth-swap-{user}-{lib_name}-{unique}"
            memory_tansu.create_topic(topic)
            mark, front_mark = proxy.mark(), oauth_front.mark()
            assert produce_consume(lib, proxy.bootstrap, topic, n=10).consumed == 10
            log, front_log = proxy.log_since(mark), oauth_front.log_since(front_mark)
            upstream_users = by_session(log, "logged in at the broker", "user")
            assert upstream_users and set(upstream_users.values()) == {expected[user]}, upstream_users
            principals = by_session(front_log, "client authenticated", "principal")
            assert principals and set(principals.values()) == {expected[user]}, principals
        assert {"svc-a", "svc-b"} <= set(idp.token_requests)
    finally:
        proxy.stop()


def test_wrong_client_secret_is_logged_and_no_token_is_sent(request, tmp_path, oauth_front, sasl_runtime, idp,
                                                             certs):
    layout = reserve_layout()
    upstream = upstream_oauth(idp, certs, client_id="svc-kafka", client_secret="Wr0ng-s3cret-e2e")
    admin, admin_section = with_admin(layout, idp)
    text = proxy_config([oauth_front.bootstrap], layout, {"security_protocol": "PLAINTEXT"}, upstream,
                        admin=admin_section)
    proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-oauth-bad")
    try:
        lib = sasl_client_lib("confluent", None)
        with pytest.raises(Exception):
            lib.metadata(proxy.bootstrap, timeout=3.0)
        log = proxy.log_text()
        assert lines_with(log, "token request failed", "HTTP 401", "invalid_client"), log[-2000:]
        assert "Wr0ng-s3cret-e2e" not in log, "the secret never reaches the log"
        # The login at the broker failed for want of a token: counted by that reason.
        admin.wait_value("kafka_proxy_authentication_failures_total", 1, side="broker", mechanism="OAUTHBEARER",
                         reason="no_token")
    finally:
        proxy.stop()
