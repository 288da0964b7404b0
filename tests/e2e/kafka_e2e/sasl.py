"""SASL on the wire for the end-to-end suite: probes, a SCRAM client, JWT issuing.

- `SaslWire`: SaslHandshake v0/v1, SaslAuthenticate v0-v2 and raw (v0) tokens on one
  connection, to see the exact Kafka error codes and messages a client library hides,
  and whether the peer closed the connection afterwards.
- `ScramClient`: RFC 5802 / 7677 client side (SCRAM-SHA-256/512), independent of the
  proxy's Rust code, so a wrong proof can be sent on purpose.
- `TokenIssuer`: RSA and EC keys made in the test, JWTs signed with them (PyJWT), the
  public keys as a JWKS document and as PEM (OAUTHBEARER).

Client library settings are in `sasl_clients`, proxy configs and log reading in `sasl_proxy`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from .wire import KafkaWire, Reader, WireError, _string, _uvarint

# Kafka error codes the SASL tests check (clients/.../protocol/Errors.java).
NONE = 0
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36


# --------------------------------------------------------------------- wire


@dataclass
class HandshakeResult:
    error_code: int
    mechanisms: list[str]


@dataclass
class AuthenticateResult:
    error_code: int
    error_message: str | None
    auth_bytes: bytes
    session_lifetime_ms: int | None  # v1+


def _i64(r: Reader) -> int:
    return struct.unpack(">q", r.take(8))[0]


def _bytes(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


class SaslWire(KafkaWire):
    """A KafkaWire that also speaks the SASL requests, and can tell a closed connection."""

    def sasl_handshake(self, mechanism: str, version: int = 1) -> HandshakeResult:
        r = Reader(self.request(SASL_HANDSHAKE, version, _string(mechanism), flexible_header=False))
        error = r.i16()
        mechanisms = [r.string() for _ in range(r.array_len())]
        return HandshakeResult(error, mechanisms)

    def sasl_authenticate(self, auth_bytes: bytes, version: int = 1) -> AuthenticateResult:
        if version >= 2:
            body = _uvarint(len(auth_bytes) + 1) + auth_bytes + b"\x00"
            r = Reader(self.request(SASL_AUTHENTICATE, version, body, flexible_header=True))
            r.tagged_fields()  # response header v1
            error = r.i16()
            message = r.compact_string()
            data = r.take(r.uvarint() - 1)
            lifetime = _i64(r)
            r.tagged_fields()
            return AuthenticateResult(error, message, data, lifetime)
        r = Reader(self.request(SASL_AUTHENTICATE, version, _bytes(auth_bytes), flexible_header=False))
        error = r.i16()
        message = r.string()
        data = r.take(r.i32())
        lifetime = _i64(r) if version >= 1 else None
        return AuthenticateResult(error, message, data, lifetime)

    def raw_token(self, token: bytes) -> bytes:
        """After SaslHandshake v0: one size-prefixed token out, one size-prefixed token back."""
        self.sock.sendall(_bytes(token))
        (size,) = struct.unpack(">i", self._recv_exact(4))
        if size < 0 or size > 1 << 20:
            raise WireError(f"implausible raw token size {size}")
        return self._recv_exact(size)

    def closed_by_peer(self, timeout: float = 3.0) -> tuple[bool, bytes]:
        """Wait up to `timeout` for the peer to close; (closed, bytes received meanwhile)."""
        deadline = time.monotonic() + timeout
        got = bytearray()
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return True, bytes(got)
            if not chunk:
                return True, bytes(got)
            got += chunk
        return False, bytes(got)


def metadata_v1_body() -> bytes:
    return struct.pack(">i", -1)


# --------------------------------------------------------------------- mechanisms


def plain_token(user: str, password: str, authzid: str = "") -> bytes:
    return f"{authzid}\x00{user}\x00{password}".encode()


def oauth_initial_response(token: str) -> bytes:
    """RFC 7628 client initial response, as Kafka clients send it."""
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()


_SCRAM_HASH = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}


def _scram_escape(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


class ScramClient:
    """The client side of one SCRAM exchange (RFC 5802), no channel binding."""

    def __init__(self, mechanism: str, user: str, password: str):
        self.hash = _SCRAM_HASH[mechanism]
        self.mechanism = mechanism
        self.user = user
        self.password = password
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.client_first_bare = f"n={_scram_escape(user)},r={self.nonce}"
        self.server_signature: bytes | None = None
        self.proof_b64: str | None = None
        self.client_final: bytes | None = None

    def _hmac(self, key: bytes, msg: bytes) -> bytes:
        return hmac.new(key, msg, self.hash).digest()

    def first(self) -> bytes:
        return f"n,,{self.client_first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        if not nonce.startswith(self.nonce):
            raise ValueError("server nonce does not extend the client nonce")
        salted = hashlib.pbkdf2_hmac(self.hash().name, self.password.encode(), salt, iterations)
        client_key = self._hmac(salted, b"Client Key")
        stored_key = self.hash(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.client_first_bare},{server_first.decode()},{without_proof}".encode()
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        self.proof_b64 = base64.b64encode(proof).decode()
        self.client_final = f"{without_proof},p={self.proof_b64}".encode()
        return self.client_final

    def server_final_ok(self, server_final: bytes) -> bool:
        expected = b"v=" + base64.b64encode(self.server_signature or b"")
        return hmac.compare_digest(server_final, expected)


def scram_login(w: SaslWire, mechanism: str, user: str, password: str,
                version: int = 1) -> tuple[AuthenticateResult, ScramClient]:
    """Handshake + SCRAM over SaslAuthenticate `version`; the last response and the client.

    Stops at the first response with an error code.
    """
    hs = w.sasl_handshake(mechanism)
    if hs.error_code:
        raise WireError(f"SaslHandshake {mechanism}: error {hs.error_code}, enabled {hs.mechanisms}")
    scram = ScramClient(mechanism, user, password)
    first = w.sasl_authenticate(scram.first(), version)
    if first.error_code:
        return first, scram
    last = w.sasl_authenticate(scram.final(first.auth_bytes), version)
    return last, scram


# --------------------------------------------------------------------- OAUTHBEARER


class TokenIssuer:
    """An identity provider made for one test: an RSA and an EC P-256 signing key."""

    ISSUER = "https://idp.e2e.test"
    AUDIENCE = "kafka-proxy"
    SCOPE = "kafka"

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        self.keys = {
            "rsa": (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", "rsa-1"),
            "ec": (ec.generate_private_key(ec.SECP256R1()), "ES256", "ec-1"),
        }
        self.issued: list[str] = []

    def token(self, sub: str, lifetime_s: float = 600, key: str = "rsa", scope: str | None = None,
              issuer: str | None = None, audience: str | None = None, now: float | None = None) -> str:
        import jwt

        private, alg, kid = self.keys[key]
        now = time.time() if now is None else now
        claims = {
            "sub": sub,
            "iat": int(now),
            "exp": int(now + lifetime_s),
            "iss": issuer or self.ISSUER,
            "aud": audience or self.AUDIENCE,
            "scope": self.SCOPE if scope is None else scope,
        }
        token = jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})
        self.issued.append(token)
        return token

    def jwks_json(self) -> str:
        from jwt.algorithms import ECAlgorithm, RSAAlgorithm

        keys = []
        for private, alg, kid in self.keys.values():
            to_jwk = RSAAlgorithm.to_jwk if alg.startswith("RS") else ECAlgorithm.to_jwk
            jwk = json.loads(to_jwk(private.public_key()))
            jwk.update(kid=kid, alg=alg, use="sig")
            keys.append(jwk)
        return json.dumps({"keys": keys}, indent=2)

    def public_pem(self, key: str) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.keys[key][0].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def private_pem(self, key: str) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.keys[key][0].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def oauth_settings(self, jwks_file: Path | None = None, public_key_path: Path | None = None) -> dict:
        """`downstream.oauthbearer` for tokens from this issuer."""
        keys = {"jwks_file": str(jwks_file)} if jwks_file else {"public_key_path": str(public_key_path)}
        return {**keys, "issuer": self.ISSUER, "audience": self.AUDIENCE, "required_scopes": [self.SCOPE],
                "clock_skew_seconds": 5}
