"""TLS for the end-to-end suite: certificates, stunnel, /etc/hosts names, client and proxy settings.

- Certificates come from `kafka-proxy --generate-certs` (so that tool is tested too);
  `OwnCa` (Python `cryptography`) makes what it cannot: a second, untrusted CA and
  server certificates for names of our choosing (a wrong name).
- `Stunnel` is the TLS endpoint in front of tansu (tansu 0.6.0 ignores --cert/--key).
- `HostsEntries` adds loopback names to /etc/hosts and removes exactly its own lines.
- `render_tls_config` writes a proxy configuration (JSON, which is YAML) for any mix of
  TLS/PLAINTEXT on both sides, port_offset or sni mapping.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from .clients import client_lib
from .ports import HOST
from .procs import ManagedProcess
from .proxy import PortLayout
from .tansu import TansuBroker

HOSTS_FILE = Path("/etc/hosts")


# ------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class Identity:
    """A certificate chain and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class GeneratedPki:
    """What `kafka-proxy --generate-certs --sni-suffix SUFFIX --out-dir DIR` wrote."""

    dir: Path
    suffix: str

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def server(self) -> Identity:
        return Identity(self.dir / "server.pem", self.dir / "server_key.pem")

    def client(self, n: int) -> Identity:
        """client1 or client2 (subject CN=client<n>)."""
        return Identity(self.dir / f"client{n}.pem", self.dir / f"client{n}_key.pem")

    def files(self) -> list[Path]:
        return [self.ca, self.server.cert, self.server.key,
                *(p for n in (1, 2) for p in (self.client(n).cert, self.client(n).key))]

    def copy_to(self, target: Path) -> None:
        """Copies every file next to a configuration that names them relatively."""
        target.mkdir(parents=True, exist_ok=True)
        for f in self.files():
            shutil.copy2(f, target / f.name)


def generate_certs(binary: Path, out_dir: Path, suffix: str, timeout: float = 30.0) -> GeneratedPki:
    """Runs the proxy's certificate generator and checks that it wrote every file."""
    r = subprocess.run(
        [str(binary), "--generate-certs", "--sni-suffix", suffix, "--out-dir", str(out_dir)],
        capture_output=True, text=True, timeout=timeout,
    )
    if r.returncode != 0:
        raise RuntimeError(f"--generate-certs failed ({r.returncode}): {r.stderr}")
    pki = GeneratedPki(Path(out_dir), suffix)
    missing = [p.name for p in pki.files() if not p.is_file()]
    if missing:
        raise RuntimeError(f"--generate-certs did not write {missing}; stdout: {r.stdout}")
    return pki


class OwnCa:
    """A CA made here with `cryptography`: for certificates the proxy's generator cannot make."""

    def __init__(self, name: str, out_dir: Path):
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"e2e CA {name}")])
        now = dt.datetime.now(dt.timezone.utc)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, _sha256())
        )
        self.ca_pem = self.dir / f"{name}-ca.pem"
        self.ca_pem.write_bytes(self._pem(self._cert))
        self.serials: dict[str, int] = {}  # subject CN -> serial of its latest certificate

    @staticmethod
    def _pem(cert) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return cert.public_bytes(serialization.Encoding.PEM)

    def _issue(self, file_stem: str, subject_cn: str, sans: list[str], server: bool) -> Identity:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        self.serials[subject_cn] = x509.random_serial_number()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(self.serials[subject_cn])
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                           critical=False)
        )
        if sans:
            entries = []
            for san in sans:
                try:
                    entries.append(x509.IPAddress(ipaddress.ip_address(san)))
                except ValueError:
                    entries.append(x509.DNSName(san))
            builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
        cert = builder.sign(self._key, _sha256())
        identity = Identity(self.dir / f"{file_stem}.pem", self.dir / f"{file_stem}_key.pem")
        identity.cert.write_bytes(self._pem(cert))
        identity.key.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        os.chmod(identity.key, 0o600)
        return identity

    def server_identity(self, file_stem: str, sans: list[str]) -> Identity:
        """A server certificate valid for exactly `sans` (DNS names or IP addresses)."""
        return self._issue(file_stem, sans[0] if sans else file_stem, sans, server=True)

    def client_identity(self, file_stem: str, common_name: str) -> Identity:
        return self._issue(file_stem, common_name, [], server=False)

    def write_crl(self, path: Path, revoked: list[str], number: int) -> Path:
        """A CRL (PEM) numbered `number` revoking the certificates issued to the CNs `revoked`."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        now = dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self._cert.subject)
                   .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=1))
                   .add_extension(x509.CRLNumber(number), critical=False))
        for cn in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(self.serials[cn])
                .revocation_date(now - dt.timedelta(minutes=1)).build())
        path.write_bytes(builder.sign(self._key, _sha256()).public_bytes(serialization.Encoding.PEM))
        return path


def _sha256():
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


# ---------------------------------------------------------------------- stunnel


def stunnel_binary() -> Path:
    """Debian's stunnel4 ($STUNNEL from the deps env file, else PATH)."""
    p = os.environ.get("STUNNEL") or shutil.which("stunnel4") or shutil.which("stunnel")
    if not p:
        raise RuntimeError("stunnel not found: run scripts/install-test-deps.sh and source its env.sh")
    return Path(p)


class Stunnel:
    """stunnel terminating TLS on HOST:accept_port and relaying plaintext to `connect` (host:port)."""

    def __init__(self, accept_port: int, connect: str, identity: Identity, workdir: Path,
                 name: str = "stunnel"):
        self.port = accept_port
        self.connect = connect
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = self.workdir / f"{name}.conf"
        self.conf.write_text(
            "foreground = yes\n"
            "pid =\n"
            "debug = notice\n"
            "syslog = no\n"
            "socket = l:TCP_NODELAY=1\n"
            "socket = r:TCP_NODELAY=1\n"
            "[kafka]\n"
            f"accept = {HOST}:{accept_port}\n"
            f"connect = {connect}\n"
            f"cert = {identity.cert}\n"
            f"key = {identity.key}\n"
        )
        self.process = ManagedProcess(name, [stunnel_binary(), self.conf], self.workdir / f"{name}.log",
                                      cwd=self.workdir)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> "Stunnel":
        self.process.start()
        self.process.wait_ready(HOST, self.port, timeout)
        return self

    def stop(self) -> None:
        self.process.stop()


class AdvertisingTansu(TansuBroker):
    """tansu advertising `advertised_host:advertised_port` (e.g. stunnel's, under a host name)."""

    def __init__(self, port: int, workdir: Path, advertised_host: str, advertised_port: int, **kw):
        self.advertised_host = advertised_host
        super().__init__(port, workdir, advertised_port=advertised_port, **kw)

    def _argv(self) -> list[str]:
        argv = super()._argv()
        i = argv.index("--advertised-listener-url")
        argv[i + 1] = f"tcp://{self.advertised_host}:{self.advertised_port}"
        return argv


# ------------------------------------------------------------------- /etc/hosts


class HostsEntries:
    """Loopback names in /etc/hosts for the life of a test.

    Each added line carries a marker unique to this object; `remove()` deletes exactly
    those lines and leaves every other line as it was. The file is rewritten in place
    (it may be a bind mount, which a rename would not replace) under an exclusive lock.
    """

    MARK = "# kafka-proxy-e2e"

    def __init__(self, path: Path = HOSTS_FILE):
        self.path = Path(path)
        self.marker = f"{self.MARK} pid={os.getpid()} {uuid.uuid4().hex}"
        self.names: list[str] = []

    @staticmethod
    def writable(path: Path = HOSTS_FILE) -> bool:
        return os.access(path, os.W_OK)

    def _edit(self, change) -> None:
        with open(self.path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                text = f.read()
                new = change(text)
                if new != text:
                    f.seek(0)
                    f.write(new)
                    f.truncate()
                    f.flush()
                    os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def add(self, names: list[str], address: str = HOST) -> None:
        if not os.access(self.path, os.W_OK):
            raise PermissionError(f"{self.path} is not writable: the SNI tests need loopback names in it")

        def append(text: str) -> str:
            text = _drop_orphans(text, self.MARK)
            sep = "" if text.endswith("\n") or not text else "\n"
            return f"{text}{sep}{address} {' '.join(names)} {self.marker}\n"

        self._edit(append)
        self.names += names

    def remove(self) -> None:
        def drop(text: str) -> str:
            return "".join(ln for ln in text.splitlines(keepends=True) if not ln.rstrip().endswith(self.marker))

        self._edit(drop)
        self.names = []

    def __enter__(self) -> "HostsEntries":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _drop_orphans(text: str, mark: str) -> str:
    """Drops lines a killed test run left behind (marked with a PID that no longer runs)."""
    keep = []
    for line in text.splitlines(keepends=True):
        m = re.search(re.escape(mark) + r" pid=(\d+) [0-9a-f]+\s*$", line)
        if m and not _alive(int(m.group(1))):
            continue
        keep.append(line)
    return "".join(keep)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------- client settings


@dataclass(frozen=True)
class ClientTls:
    """How a client reaches a TLS listener: the CA it trusts and optionally its own certificate."""

    ca: Path
    identity: Identity | None = None


def client_tls_settings(name: str, tls: ClientTls) -> dict:
    """Settings for the client library `name` (clients.CLIENT_LIBS) that trust `tls.ca`, verify
    host names and present `tls.identity`, if any (`security.protocol` is the caller's)."""
    if name == "confluent":
        conf = {"ssl.ca.location": str(tls.ca), "ssl.endpoint.identification.algorithm": "https"}
        if tls.identity:
            conf["ssl.certificate.location"] = str(tls.identity.cert)
            conf["ssl.key.location"] = str(tls.identity.key)
    else:
        conf = dict(ssl_cafile=str(tls.ca), ssl_check_hostname=True)
        if tls.identity:
            conf.update(ssl_certfile=str(tls.identity.cert), ssl_keyfile=str(tls.identity.key))
    return conf


def tls_client_lib(name: str, tls: ClientTls):
    """The client library `name` (clients.CLIENT_LIBS) speaking SSL with host name verification."""
    lib = client_lib(name)
    protocol = {"security.protocol": "SSL"} if name == "confluent" else {"security_protocol": "SSL"}
    lib.extra = {**protocol, **client_tls_settings(name, tls)}
    return lib


# ----------------------------------------------------------------- proxy config


@dataclass(frozen=True)
class DownstreamTls:
    """`downstream.tls`: the proxy's certificate, and client certificates when `client_ca` is set."""

    server: Identity
    client_ca: Path | None = None
    principal_mapping_rules: list[str] | None = None


@dataclass(frozen=True)
class UpstreamTls:
    """`upstream.tls`: trust `ca` (None: system roots), or everything with `trust_all`."""

    ca: Path | None = None
    trust_all: bool = False
    client: Identity | None = None


@dataclass(frozen=True)
class SniLayout:
    """`broker_mapping.mode: sni`: one TLS port; `upstream` regex, `downstream` template."""

    port: int
    upstream: str
    downstream: str


@dataclass(frozen=True)
class TlsProxyConfig:
    """A proxy configuration for loopback tests: PLAINTEXT or SSL on each side (no SASL)."""

    upstream: list[str]
    mapping: PortLayout | SniLayout
    downstream_tls: DownstreamTls | None = None
    upstream_tls: UpstreamTls | None = None

    def render(self) -> str:
        """The configuration as JSON (a subset of YAML, so the proxy reads it as is)."""
        up: dict = {"bootstrap_servers": self.upstream,
                    "security_protocol": "SSL" if self.upstream_tls else "PLAINTEXT"}
        if self.upstream_tls:
            t = self.upstream_tls
            tls: dict = {"trust_server_certs": t.trust_all}
            if t.ca:
                tls["ca_certs"] = str(t.ca)
            if t.client:
                tls["client_cert"] = str(t.client.cert)
                tls["client_key"] = str(t.client.key)
            up["tls"] = tls
        down: dict = {"security_protocol": "SSL" if self.downstream_tls else "PLAINTEXT"}
        if self.downstream_tls:
            d = self.downstream_tls
            tls = {"cert": str(d.server.cert), "key": str(d.server.key), "mtls_enabled": d.client_ca is not None}
            if d.client_ca:
                tls["ca_certs"] = str(d.client_ca)
            if d.principal_mapping_rules is not None:
                tls["principal_mapping_rules"] = d.principal_mapping_rules
            down["tls"] = tls
        if isinstance(self.mapping, SniLayout):
            m = self.mapping
            mapping = {"mode": "sni", "sni": {"bind_port": m.port, "upstream": m.upstream,
                                               "downstream": m.downstream}}
        else:
            m = self.mapping
            mapping = {"mode": "port_offset", "port_offset": {
                "hostname": m.hostname, "base": m.base, "max_broker_id": m.max_broker_id}}
        doc = {"bind_address": HOST, "upstream": up, "downstream": down, "broker_mapping": mapping}
        return json.dumps(doc, indent=2) + "\n"
