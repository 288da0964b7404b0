"""No secret reaches the proxy's log, at any level: one scenario with RUST_LOG=trace that uses
every kind of secret, then every secret (and its hex and base64 forms) is searched for in the
captured log.

Secrets used: client passwords (PLAIN, SCRAM-SHA-256 pre-computed, SCRAM-SHA-512 hashed at
load, a wrong one), the broker passwords of auth swap (SCRAM upstream), OAUTHBEARER tokens
(valid and expired) and the keys that signed them, the pre-computed SCRAM stored/server keys,
the SCRAM client proofs and final messages sent on the wire. Re-authentication (KIP-368)
sends the passwords again mid-stream.
"""

from __future__ import annotations

import base64
import re
import time

from kafka_e2e.ports import HOST
from kafka_e2e.proxy import run_check
from kafka_e2e.sasl import SaslWire, oauth_initial_response, plain_token, scram_login
from kafka_e2e.sasl_clients import (
    Login, auth_failure_seen_by_client, produce_consume, sasl_client_lib, stream,
)
from kafka_e2e.sasl_fixtures import BROKER_USERS, PASSWORDS, downstream_sasl, start_proxy
from kafka_e2e.sasl_proxy import proxy_config, reserve_layout

WRONG_PASSWORD = "Wr0ng-but-secret-pw"


def forms(secret: str) -> set[str]:
    """The secret as text, hex and base64 (with and without padding): how a log might show bytes."""
    raw = secret.encode()
    b64 = base64.b64encode(raw).decode()
    return {secret, raw.hex(), b64, b64.rstrip("=")}


def pem_body_lines(pem: bytes) -> list[str]:
    return [ln for ln in pem.decode().splitlines() if ln and not ln.startswith("-----")]


def test_no_secret_in_trace_log(request, tmp_path, memory_tansu, scram_tansu, sasl_runtime, issuer, unique):
    layout = reserve_layout()
    downstream = downstream_sasl(tmp_path, issuer)
    downstream["session_lifetime_ms"] = 2000
    auth_swap = {
        "enabled": True,
        "upstream_credentials": [f"{u}={BROKER_USERS[u][0]}" for u in ("svc-a", "svc-b")],
        "mapping": ["alice=svc-a", "bob=svc-b", "carol=svc-a"],
    }
    upstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256"}
    text = proxy_config([scram_tansu.bootstrap], layout, downstream, upstream, auth_swap=auth_swap)
    proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-trace",
                        env={"RUST_LOG": "trace"})
    secrets: dict[str, set[str]] = {}
    try:
        bootstrap = proxy.bootstrap
        # Clients of both libraries, every mechanism, through auth swap to the SCRAM broker.
        clients = [
            ("confluent", Login("PLAIN", "alice", PASSWORDS["alice"])),
            ("kafka-python", Login("SCRAM-SHA-256", "bob", PASSWORDS["bob"])),
            ("confluent", Login("SCRAM-SHA-512", "alice", PASSWORDS["alice"])),
            ("kafka-python", Login("OAUTHBEARER", "carol", token=lambda: issuer.token("carol"))),
            ("confluent", Login("OAUTHBEARER", "carol", token=lambda: issuer.token("carol", key="ec"))),
        ]
        for i, (lib_name, login) in enumerate(clients):
            lib = sasl_client_lib(lib_name, login)
            topic = f"secret-{i}-{unique}"
            lib.create_topic(bootstrap, topic, 1)
            assert produce_consume(lib, bootstrap, topic, n=10).consumed == 10
        # A stream over a few 2 s lifetimes: clients send their credentials again.
        lib = sasl_client_lib("confluent", Login("SCRAM-SHA-256", "bob", PASSWORDS["bob"]))
        lib.create_topic(bootstrap, f"secret-stream-{unique}", 1)
        r = stream(lib, bootstrap, f"secret-stream-{unique}", 4.5, rate_per_s=50)
        assert r.acked == r.sent and not r.failed
        # Refusals: a wrong password (PLAIN and SCRAM), an expired token.
        for mechanism in ("PLAIN", "SCRAM-SHA-256"):
            login = Login(mechanism, "alice", WRONG_PASSWORD)
            assert auth_failure_seen_by_client(sasl_client_lib("confluent", login), bootstrap)
        expired = issuer.token("carol", now=time.time() - 3600)
        with SaslWire(HOST, layout.bootstrap_port(0)) as w:
            assert w.sasl_handshake("OAUTHBEARER").error_code == 0
            assert w.sasl_authenticate(oauth_initial_response(expired)).error_code == 0
            w.sasl_authenticate(b"\x01")
        with SaslWire(HOST, layout.bootstrap_port(0)) as w:
            assert w.sasl_handshake("PLAIN", version=0).error_code == 0
            assert w.raw_token(plain_token("bob", PASSWORDS["bob"])) == b""
        # SCRAM on the wire, to know the proofs: a good login and a wrong one, v1 and v2 framing.
        for user, password, version in (("alice", PASSWORDS["alice"], 1), ("alice", WRONG_PASSWORD, 2),
                                         ("bob", PASSWORDS["bob"], 2)):
            with SaslWire(HOST, layout.bootstrap_port(0)) as w:
                mech = "SCRAM-SHA-256" if user == "bob" else "SCRAM-SHA-512"
                result, scram = scram_login(w, mech, user, password, version=version)
                assert result.error_code == (0 if password != WRONG_PASSWORD else 58), result
                secrets[f"SCRAM proof ({user}, v{version})"] = {scram.proof_b64}
                secrets[f"SCRAM client-final ({user}, v{version})"] = {scram.client_final.decode()}
        time.sleep(0.3)  # let the refused connections' close be logged
    finally:
        proxy.stop()

    log = proxy.log_text()
    trace_lines = [ln for ln in log.splitlines() if " TRACE " in ln]
    assert len(trace_lines) > 50, "the scenario must run with trace logging on"
    passwords = {f"password of {u}": p for u, p in PASSWORDS.items()}
    passwords["wrong password"] = WRONG_PASSWORD
    passwords.update({f"broker password of {u}": BROKER_USERS[u][0] for u in ("svc-a", "svc-b")})
    for name, password in passwords.items():
        secrets[name] = forms(password)
    for i, token in enumerate(issuer.issued + [expired]):
        header, payload, signature = token.split(".")
        secrets[f"token {i}"] = {token, signature, f"{payload}.{signature}"}
    for key in ("rsa", "ec"):
        secrets[f"{key} private key"] = set(pem_body_lines(issuer.private_pem(key)))
    creds = (tmp_path / "credentials.yaml").read_text()
    for field in ("stored_key", "server_key"):
        value = re.search(rf"{field}: (\S+)", creds).group(1)
        secrets[f"bob's {field}"] = {value, base64.b64decode(value).hex()}
    found = {name: sorted(s for s in values if s and s in log) for name, values in secrets.items()}
    leaks = {name: hits for name, hits in found.items() if hits}
    assert not leaks, f"secrets in the proxy log ({len(log)} bytes, RUST_LOG=trace): {leaks}"
    # `kafka-proxy check` prints the effective configuration: no secret there either.
    checked = run_check(proxy.config_path)
    assert checked.returncode == 0, checked.stderr
    shown = checked.stdout + checked.stderr
    assert "alice" in shown or "svc-a" in shown, "check names users, so the search below means something"
    leaks = {name: sorted(s for s in values if s and s in shown) for name, values in secrets.items()}
    assert not any(leaks.values()), f"secrets in `kafka-proxy check` output: {leaks}"
