"""The proxy side of the SASL tests: port spans, the binary as a process, configurations
(JSON, which is YAML) and log reading.

The proxy logs with tracing's text format: `... INFO conn{...}: target: message key=value ...`;
`client authenticated principal=P mechanism="M"`, `logged in at the broker user="U"`,
`refusing client reason=...`, and at debug `client re-authenticated` / `re-authenticated with
the broker`, each with `session=N`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .paths import PROXY_BINARY
from .ports import HOST, pick_port, pick_proxy_base
from .proxy import KafkaProxy, PortLayout

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Ports taken by this session's brokers and proxies (a proxy opens broker ports lazily,
# so a later span check alone would not see them).
_RESERVED: set[int] = set()
_LAYOUTS: set[PortLayout] = set()


# --------------------------------------------------------------------- ports and process


def _span(layout: PortLayout) -> range:
    return range(layout.base, layout.broker_port(layout.max_broker_id) + 1)


def reserve_layout() -> PortLayout:
    """A port_offset layout whose whole span is free and not promised to anything else here.

    The span is given back when the SaslProxy using it stops (`release_layout`).
    """
    layout = PortLayout(pick_proxy_base(avoid=_RESERVED))
    _RESERVED.update(_span(layout))
    _LAYOUTS.add(layout)
    return layout


def release_layout(layout: PortLayout) -> None:
    """Give back a span from reserve_layout (other layouts are left alone)."""
    if layout in _LAYOUTS:
        _LAYOUTS.discard(layout)
        _RESERVED.difference_update(_span(layout))


def reserve_port() -> int:
    port = pick_port(avoid=_RESERVED)
    _RESERVED.add(port)
    return port


class SaslProxy(KafkaProxy):
    """The release binary with a config written to `workdir`; env overrides; log positions.

    `ready_port` is the port that shows it listens (the bootstrap port by default).
    """

    def __init__(self, workdir: Path, config_text: str, layout: PortLayout, runtime: str,
                 env: dict | None = None, name: str = "proxy", ready_port: int | None = None,
                 config_name: str | None = None):
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / (config_name or f"{name}-{runtime}.yaml")
        config.write_text(config_text)
        super().__init__(config, layout, runtime, workdir, binary=PROXY_BINARY)
        self.config_path = config
        self.process.name = f"{name}[{runtime}]"
        self.process.log_path = workdir / f"{name}-{runtime}.log"
        self.process.env.update(env or {})
        self.ready_port = ready_port or layout.bootstrap_port(0)

    def start(self, timeout: float = 15.0) -> "SaslProxy":
        self.process.start()
        self.process.wait_ready(HOST, self.ready_port, timeout)
        return self

    def stop(self) -> int | None:
        code = super().stop()
        release_layout(self.layout)
        return code

    def mark(self) -> int:
        """A position in the log; `log_since(mark)` is what was logged after it."""
        return len(self.log_text())

    def log_since(self, mark: int) -> str:
        return self.log_text()[mark:]


# --------------------------------------------------------------------- config


def proxy_config(bootstrap: list[str], layout, downstream: dict, upstream: dict | None = None,
                 **sections) -> str:
    """A proxy configuration (port_offset on `layout`) as JSON, which is YAML too.

    `upstream` adds to PLAINTEXT towards `bootstrap`; `sections` are further top-level
    keys (auth_swap, limits, logging, ...).
    """
    doc = {
        "bind_address": HOST,
        "upstream": {"bootstrap_servers": list(bootstrap), "security_protocol": "PLAINTEXT",
                     **(upstream or {})},
        "downstream": downstream,
        "broker_mapping": {
            "mode": "port_offset",
            "port_offset": {"hostname": layout.hostname, "base": layout.base,
                            "max_broker_id": layout.max_broker_id},
        },
        **sections,
    }
    text = json.dumps(doc, indent=2)
    if "${" in text:
        raise ValueError("a value holds '${', which the proxy would expand")
    return text


def authenticated_lines(log: str, principal: str, mechanism: str) -> list[str]:
    """`client authenticated principal=P mechanism=M` lines (the proxy's info log)."""
    pattern = re.compile(rf'mechanism="?{re.escape(mechanism)}"?(\s|$)')
    lines = lines_with(log, "client authenticated", f"principal={principal} ")
    return [ln for ln in lines if pattern.search(ln)]


def assert_authenticated(log: str, principal: str, mechanism: str, at_least: int = 1) -> None:
    found = authenticated_lines(log, principal, mechanism)
    assert len(found) >= at_least, (
        f"expected >= {at_least} 'client authenticated principal={principal} mechanism={mechanism}' "
        f"lines, found {len(found)}:\n" + "\n".join(lines_with(log, "client authenticated")[-10:]))


# --------------------------------------------------------------------- logs


def log_lines(text: str) -> list[str]:
    """Log lines with terminal colour codes removed."""
    return [_ANSI.sub("", ln) for ln in text.splitlines()]


def lines_with(text: str, *needles: str) -> list[str]:
    """Log lines containing every needle."""
    return [ln for ln in log_lines(text) if all(n in ln for n in needles)]


def field_of(line: str, name: str) -> str | None:
    """The value of `name=value` in a log line (quotes removed)."""
    m = re.search(rf'(?:^|\s){re.escape(name)}=("[^"]*"|\S+)', line)
    return m.group(1).strip('"') if m else None


def by_session(log: str, message: str, name: str) -> dict[str, str]:
    """session id -> the value of `name` on the lines logging `message` (e.g. who logged in)."""
    out = {}
    for ln in lines_with(log, message, "session="):
        session, value = field_of(ln, "session"), field_of(ln, name)
        if session is not None and value is not None:
            out[session] = value
    return out
