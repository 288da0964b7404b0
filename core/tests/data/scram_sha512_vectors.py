#!/usr/bin/env python3
"""Independent SCRAM-SHA-512 known-answer vectors (RFC 5802 with SHA-512).

Uses only Python's hashlib/hmac, so it shares no code with the Rust
implementation. The outputs are embedded in core/src/sasl/scram/tests.rs;
rerun with `python3 core/tests/data/scram_sha512_vectors.py` to check them.
"""
import base64
import hashlib
import hmac

USER = "user"
PASSWORD = b"pencil"
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
ITERATIONS = 4096


def h(data):
    return hashlib.sha512(data).digest()


def mac(key, data):
    return hmac.new(key, data, hashlib.sha512).digest()


salted = hashlib.pbkdf2_hmac("sha512", PASSWORD, SALT, ITERATIONS)
client_key = mac(salted, b"Client Key")
stored_key = h(client_key)
server_key = mac(salted, b"Server Key")

client_first_bare = f"n={USER},r={CLIENT_NONCE}"
nonce = CLIENT_NONCE + SERVER_NONCE
server_first = f"r={nonce},s={base64.b64encode(SALT).decode()},i={ITERATIONS}"
without_proof = f"c=biws,r={nonce}"
auth = f"{client_first_bare},{server_first},{without_proof}".encode()
proof = bytes(a ^ b for a, b in zip(client_key, mac(stored_key, auth)))
signature = mac(server_key, auth)

print("stored_key  ", base64.b64encode(stored_key).decode())
print("server_key  ", base64.b64encode(server_key).decode())
print("client_final", f"{without_proof},p={base64.b64encode(proof).decode()}")
print("server_final", f"v={base64.b64encode(signature).decode()}")
