"""SIGHUP reloads the configuration, on each runtime: a user added to the
credentials becomes able to log in, without restarting the proxy and without
disturbing a client already connected."""

from __future__ import annotations

import signal
import time

from kafka_e2e.clients import ClientError, Sasl, client_lib, retry
from kafka_e2e.proxy import KafkaProxy, render_config

USERS_BEFORE = '    users: { alice: "alice-secret" }\n'
USERS_AFTER = '    users: { alice: "alice-secret", bob: "bob-secret" }\n'


def _config(upstream: str, layout, users: str) -> str:
    base = render_config([upstream], layout)
    return base.replace(
        "downstream:\n  security_protocol: PLAINTEXT\n",
        "downstream:\n  security_protocol: SASL_PLAINTEXT\n  sasl_mechanism: PLAIN\n"
        f"  credentials:\n{users}",
    )


def _can_list_topics(sasl: Sasl, bootstrap: str) -> bool:
    admin = client_lib("confluent", sasl).admin(bootstrap)
    try:
        admin.list_topics(timeout=4)
        return True
    except Exception:  # librdkafka raises KafkaException on authentication failure
        return False


def test_sighup_adds_a_user_without_a_restart(request, tmp_path, tansu, layout, runtime, proxy_binary):
    path = tmp_path / "proxy.yaml"
    path.write_text(_config(tansu.bootstrap, layout, USERS_BEFORE))
    proxy = KafkaProxy(path, layout, runtime, tmp_path)
    request.addfinalizer(proxy.stop)
    proxy.start()
    alice, bob = Sasl("PLAIN", "alice", "alice-secret"), Sasl("PLAIN", "bob", "bob-secret")
    def alice_logs_in():
        if not _can_list_topics(alice, proxy.bootstrap):
            raise ClientError("alice cannot log in")

    retry(alice_logs_in, 20, what="alice logs in")
    assert not _can_list_topics(bob, proxy.bootstrap), "bob is not a user yet"
    # A connected client stays connected through the reload.
    producer = client_lib("confluent", alice).producer(proxy.bootstrap, "reload-topic")
    pid = proxy.process.pid
    path.write_text(_config(tansu.bootstrap, layout, USERS_AFTER))
    proxy.process.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while not _can_list_topics(bob, proxy.bootstrap):
        assert time.monotonic() < deadline, "bob could not log in after SIGHUP:\n" + proxy.log_text()[-3000:]
        time.sleep(0.5)
    assert proxy.process.pid == pid and proxy.process.proc.poll() is None, "no restart"
    assert "configuration reloaded" in proxy.log_text()
    producer.close()


def test_a_broken_configuration_is_refused_and_the_running_one_kept(request, tmp_path, tansu, layout,
                                                                  runtime, proxy_binary):
    path = tmp_path / "proxy.yaml"
    path.write_text(_config(tansu.bootstrap, layout, USERS_BEFORE))
    proxy = KafkaProxy(path, layout, runtime, tmp_path)
    request.addfinalizer(proxy.stop)
    proxy.start()
    path.write_text("this: is: not: valid\n")
    proxy.process.proc.send_signal(signal.SIGHUP)
    alice = Sasl("PLAIN", "alice", "alice-secret")
    deadline = time.monotonic() + 15
    while "reload failed" not in proxy.log_text():
        assert time.monotonic() < deadline, proxy.log_text()[-3000:]
        time.sleep(0.2)
    assert proxy.process.proc.poll() is None, "still running"
    assert _can_list_topics(alice, proxy.bootstrap), "the running configuration still serves"
