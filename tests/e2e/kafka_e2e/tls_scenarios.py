"""Building blocks the TLS tests share: a TLS (or plain) broker endpoint, group timing, probes."""

from __future__ import annotations

import socket
import ssl
import time

from .ports import pick_port
from .proxy import PortLayout
from .tls import GeneratedPki, Identity

# The name clients and the proxy use for loopback where a certificate must match
# (the generated server certificate covers it, and librdkafka sends SNI for names only).
LOCALHOST = "localhost"

# tansu delays a new group's first join by a time that grows with the session
# timeout (~6 s at 10 s, ~3.5 s at 6 s); 6 s keeps heartbeats comfortable on 2 cores.
GROUP_SESSION_TIMEOUT_MS = 6000


def fast_groups(lib):
    """`lib` whose consumers use GROUP_SESSION_TIMEOUT_MS (the suite's default is 10 s)."""
    key = "session.timeout.ms" if lib.name == "confluent" else "session_timeout_ms"
    make = lib.consumer

    def consumer(bootstrap, topic, group, **overrides):
        return make(bootstrap, topic, group, **{key: GROUP_SESSION_TIMEOUT_MS, **overrides})

    lib.consumer = consumer
    return lib


def span_of(layout: PortLayout) -> set[int]:
    """Every port a port_offset proxy may bind."""
    return set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))


def tls_upstream(world, pki: GeneratedPki, avoid: set[int], use_tls: bool,
                 identity: Identity | None = None, advertised_host: str = LOCALHOST, **tansu_kw):
    """tansu, and with `use_tls` stunnel in front of it; returns (tansu, stunnel or None).

    With TLS, tansu advertises stunnel's port under `advertised_host`, so Metadata
    sends every broker connection through TLS; stunnel shows `identity` (the
    generated server certificate unless told). Without, tansu advertises itself.
    """
    tansu_port = pick_port(avoid=avoid)
    if not use_tls:
        tansu = world.tansu(port=tansu_port, **tansu_kw).start()
        return tansu, None
    stunnel_port = pick_port(avoid=avoid | {tansu_port})
    tansu = world.tansu(port=tansu_port, advertised_host=advertised_host, advertised_port=stunnel_port,
                        **tansu_kw).start()
    stunnel = world.stunnel(stunnel_port, tansu.bootstrap, identity or pki.server).start()
    return tansu, stunnel


def tls_handshake_outcome(host: str, port: int, server_name: str, ca, identity: Identity | None,
                          timeout: float = 5.0) -> str:
    """Connect with TLS, send one ApiVersions v0 request; "ok" or the error seen.

    With TLS 1.3 a refused client certificate surfaces on the first read, so the
    probe reads one response before calling the session good.
    """
    ctx = ssl.create_default_context(cafile=str(ca))
    if identity:
        ctx.load_cert_chain(str(identity.cert), str(identity.key))
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name) as s:
                s.sendall(b"\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x01\x00\x04e2e!")
                head = s.recv(4)
                if len(head) < 4:
                    return f"closed after {time.monotonic() - t0:.1f}s"
                return "ok"
    except (ssl.SSLError, OSError) as e:
        return f"{type(e).__name__}: {e} (after {time.monotonic() - t0:.1f}s)"
