"""A small, standards-conforming identity provider over real TLS, for the OAuth tests.

- `GET /jwks`: the published signing keys, an RFC 7517 JWK Set.
- `POST /token`: the client-credentials grant (RFC 6749 §4.4): `grant_type=client_credentials`
  (and `scope`) as a form, the client authenticated with HTTP Basic (§2.3.1, form-encoded
  id and secret) or in the form; the answer is `{"access_token", "token_type": "Bearer",
  "expires_in"}` (§5.1), or `{"error": "invalid_client"}` with 401.

Keys for every JWS algorithm the proxy verifies (RS256/384/512, PS256/384/512, ES256/384/512,
EdDSA) are made on demand with `cryptography` and signed with PyJWT. A test controls which
keys are published, which key signs issued tokens, and whether the endpoints fail; the
server counts the requests it served. It runs on a thread of the test process (HTTPS on
127.0.0.1 with the certificate `kafka-proxy --generate-certs` made) and is shut down by
`stop()`.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .ports import HOST

# JWS algorithm -> how to make its key.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def _private_key(alg: str):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if alg[:2] in ("RS", "PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
    return ec.generate_private_key(curve)


def _public_jwk(private, alg: str, kid: str) -> dict:
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

    if alg[:2] in ("RS", "PS"):
        jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    elif alg == "EdDSA":
        jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=kid, alg=alg, use="sig")
    return jwk


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: object


class IdentityProvider:
    ISSUER = "https://idp.e2e.test"
    AUDIENCE = "kafka-proxy"
    SCOPE = "kafka"

    def __init__(self, cert: Path, key: Path):
        self._cert, self._key = cert, key
        self._lock = threading.Lock()
        self.keys: dict[str, SigningKey] = {}
        self.published: list[str] = []
        self.signing_kid: str | None = None
        self.clients: dict[str, str] = {}  # client_id -> secret
        self.token_lifetime_s = 600.0
        self.failing = False
        self.jwks_requests = 0
        self.token_requests: list[str] = []  # client ids, in order
        self.issued: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    def add_key(self, kid: str, alg: str, publish: bool = True, sign: bool = False) -> SigningKey:
        key = SigningKey(kid, alg, _private_key(alg))
        with self._lock:
            self.keys[kid] = key
            if publish:
                self.published.append(kid)
            if sign or self.signing_kid is None:
                self.signing_kid = kid
        return key

    def publish(self, *kids: str) -> None:
        with self._lock:
            self.published = list(kids)

    def sign_with(self, kid: str) -> None:
        with self._lock:
            self.signing_kid = kid

    def token(self, sub: str, lifetime_s: float | None = None, kid: str | None = None,
              audience: str | list[str] | None = None, extra: dict | None = None) -> str:
        import jwt

        with self._lock:
            key = self.keys[kid or self.signing_kid]
            lifetime = self.token_lifetime_s if lifetime_s is None else lifetime_s
        now = time.time()
        claims = {"sub": sub, "iat": int(now), "exp": int(now + lifetime), "iss": self.ISSUER,
                  "aud": self.AUDIENCE if audience is None else audience, "scope": self.SCOPE,
                  **(extra or {})}
        token = jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid})
        with self._lock:
            self.issued.append(token)
        return token

    def jwks_json(self) -> str:
        with self._lock:
            keys = [_public_jwk(self.keys[k].private, self.keys[k].alg, k) for k in self.published]
        return json.dumps({"keys": keys})

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def jwks_url(self) -> str:
        return f"https://{HOST}:{self.port}/jwks"

    @property
    def token_url(self) -> str:
        return f"https://{HOST}:{self.port}/token"

    def wait_jwks_requests(self, above: int, timeout: float) -> bool:
        """Waits until more than `above` JWKS requests were served."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.jwks_requests > above:
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ server

    def start(self) -> "IdentityProvider":
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):  # quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path != "/jwks":
                    return self._send(404, {"error": "not_found"})
                with idp._lock:
                    idp.jwks_requests += 1
                    failing = idp.failing
                if failing:
                    return self._send(503, {"error": "temporarily_unavailable"})
                data = idp.jwks_json().encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/jwk-set+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                if self.path != "/token":
                    return self._send(404, {"error": "not_found"})
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                client_id, secret = idp._client_credentials(self.headers.get("Authorization"), form)
                with idp._lock:
                    idp.token_requests.append(client_id or "")
                    failing = idp.failing
                if failing:
                    return self._send(503, {"error": "temporarily_unavailable"})
                if form.get("grant_type") != ["client_credentials"]:
                    return self._send(400, {"error": "unsupported_grant_type"})
                if client_id is None or idp.clients.get(client_id) != secret:
                    return self._send(401, {"error": "invalid_client"})
                token = idp.token(client_id)
                self._send(200, {"access_token": token, "token_type": "Bearer",
                                 "expires_in": int(idp.token_lifetime_s)})

        server = ThreadingHTTPServer((HOST, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._cert, self._key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="e2e-idp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @staticmethod
    def _client_credentials(authorization: str | None, form: dict) -> tuple[str | None, str | None]:
        if authorization and authorization.startswith("Basic "):
            try:
                pair = base64.b64decode(authorization[6:]).decode()
            except ValueError:
                return None, None
            user, _, secret = pair.partition(":")
            return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(secret)
        ids, secrets = form.get("client_id"), form.get("client_secret")
        return (ids[0] if ids else None), (secrets[0] if secrets else None)
