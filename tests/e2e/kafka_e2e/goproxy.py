"""Issue 13's peers and runners: `kafka-proxy server [Go flags]`, forward proxies
(dante, microsocks, tinyproxy), OpenLDAP's slapd, and a TCP relay as a port forward.

Every daemon is a plain child process on loopback ports, stopped by PID
(`ManagedProcess`); its configuration lives in the test's temp directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .paths import PROXY_BINARY
from .ports import HOST
from .procs import ManagedProcess


def _binary(env: str, name: str) -> str:
    path = os.environ.get(env) or shutil.which(name) or f"/usr/sbin/{name}"
    if not Path(path).is_file():
        raise RuntimeError(f"{name} is not installed: run scripts/install-test-deps.sh")
    return path


class GoFlagsProxy:
    """`kafka-proxy server FLAGS --runtime R`, ready when `ready_port` accepts."""

    def __init__(self, args: list[str], runtime: str, workdir: Path, ready_port: int, name: str = "go-flags"):
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.ready_port = ready_port
        self.process = ManagedProcess(
            f"kafka-proxy server[{name},{runtime}]",
            [PROXY_BINARY, "server", *args, "--runtime", runtime],
            Path(workdir) / f"{name}-{runtime}.log",
            env=env,
            cwd=workdir,
        )

    def start(self, timeout: float = 15.0) -> "GoFlagsProxy":
        self.process.start()
        self.process.wait_ready(HOST, self.ready_port, timeout)
        return self

    def stop(self) -> None:
        self.process.stop()

    def log_text(self) -> str:
        return self.process.log_text()


def server(args: list[str], cwd: Path | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """`kafka-proxy server ARGS` run to completion (--print-config, refusals)."""
    return subprocess.run([str(PROXY_BINARY), "server", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


class _Daemon:
    """A server on `self.port` run as `self.process`: started, ready when it listens, stopped by PID."""

    port: int
    process: ManagedProcess

    def start(self):
        self.process.start()
        self.process.wait_ready(HOST, self.port, 10)
        return self

    def stop(self) -> None:
        self.process.stop()


class Relay(_Daemon):
    """kafka_e2e.relay: a port forward (a stand-in for NAT or a load balancer)."""

    def __init__(self, listen_port: int, upstream: str, workdir: Path):
        self.port = listen_port
        pkg_parent = Path(__file__).resolve().parents[1]
        self.process = ManagedProcess(
            f"relay:{listen_port}", [sys.executable, "-m", "kafka_e2e.relay", "--map", f"{HOST}:{listen_port}={upstream}"],
            Path(workdir) / f"relay-{listen_port}.log", cwd=pkg_parent,
        )



class Danted(_Daemon):
    """dante-server (SOCKS5, no authentication), connects to loopback only."""

    def __init__(self, port: int, workdir: Path):
        self.port = port
        conf = Path(workdir) / f"danted-{port}.conf"
        conf.write_text(
            "logoutput: stderr\n"
            f"internal: {HOST} port = {port}\n"
            f"external: {HOST}\n"
            "clientmethod: none\nsocksmethod: none\n"
            "user.privileged: root\nuser.unprivileged: nobody\n"
            "client pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}\n"
            "socks pass {\n  from: 127.0.0.0/8 to: 127.0.0.0/8\n  command: connect\n  log: connect\n}\n"
        )
        self.process = ManagedProcess(f"danted:{port}", [_binary("DANTED", "danted"), "-f", conf, "-N", "1"],
                                      Path(workdir) / f"danted-{port}.log")



class Microsocks(_Daemon):
    """microsocks (SOCKS5 with RFC 1929 username/password)."""

    def __init__(self, port: int, user: str, password: str, workdir: Path):
        self.port = port
        self.process = ManagedProcess(
            f"microsocks:{port}",
            [_binary("MICROSOCKS", "microsocks"), "-i", HOST, "-p", str(port), "-u", user, "-P", password],
            Path(workdir) / f"microsocks-{port}.log",
        )



class Tinyproxy(_Daemon):
    """tinyproxy (HTTP CONNECT), allowing CONNECT to `connect_ports` only (others: 403)."""

    def __init__(self, port: int, connect_ports: list[int], workdir: Path):
        self.port = port
        conf = Path(workdir) / f"tinyproxy-{port}.conf"
        allowed = "".join(f"ConnectPort {p}\n" for p in connect_ports)
        conf.write_text(
            "User nobody\nGroup nogroup\n"
            f"Port {port}\nListen {HOST}\nTimeout 30\nLogLevel Info\nMaxClients 50\n"
            f"Allow {HOST}\n{allowed}"
        )
        self.process = ManagedProcess(f"tinyproxy:{port}", [_binary("TINYPROXY", "tinyproxy"), "-d", "-c", conf],
                                      Path(workdir) / f"tinyproxy-{port}.log")



LDAP_SUFFIX = "dc=example,dc=com"
LDAP_USERS = {"alice": "alice-ldap-secret", "bob": "bob-ldap-secret"}
LDAP_SERVICE = ("cn=reader,dc=example,dc=com", "reader-secret")


class Slapd(_Daemon):
    """OpenLDAP slapd with a throwaway mdb database made by slapadd from an LDIF:
    people under ou=people (LDAP_USERS), a service account for search-then-bind,
    ldap:// on `port` and, given a certificate, ldaps:// on `tls_port` and StartTLS."""

    def __init__(self, port: int, workdir: Path, tls_port: int | None = None,
                 cert: Path | None = None, key: Path | None = None):
        self.port, self.tls_port = port, tls_port
        d = Path(workdir) / f"slapd-{port}"
        (d / "db").mkdir(parents=True, exist_ok=True)
        tls = "" if cert is None else f"TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n"
        conf = d / "slapd.conf"
        conf.write_text(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n"
            "include /etc/ldap/schema/inetorgperson.schema\n"
            f"pidfile {d}/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n{tls}"
            f"database mdb\nsuffix \"{LDAP_SUFFIX}\"\nrootdn \"cn=admin,{LDAP_SUFFIX}\"\nrootpw admin-secret\n"
            f"directory {d}/db\n"
        )
        people = "".join(
            f"dn: uid={u},ou=people,{LDAP_SUFFIX}\nobjectClass: inetOrgPerson\nuid: {u}\ncn: {u}\nsn: {u}\n"
            f"userPassword: {p}\n\n" for u, p in LDAP_USERS.items()
        )
        ldif = d / "data.ldif"
        ldif.write_text(
            f"dn: {LDAP_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: example\ndc: example\n\n"
            f"dn: ou=people,{LDAP_SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
            f"dn: {LDAP_SERVICE[0]}\nobjectClass: inetOrgPerson\ncn: reader\nsn: reader\n"
            f"userPassword: {LDAP_SERVICE[1]}\n\n" + people
        )
        r = subprocess.run([_binary("SLAPADD", "slapadd"), "-f", str(conf), "-l", str(ldif)],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"slapadd failed: {r.stderr}")
        urls = f"ldap://{HOST}:{port}/" + ("" if tls_port is None else f" ldaps://{HOST}:{tls_port}/")
        self.process = ManagedProcess(f"slapd:{port}", [_binary("SLAPD", "slapd"), "-f", conf, "-h", urls, "-d", "0"],
                                      d / "slapd.log")

