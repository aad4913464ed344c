#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/ (run from anywhere; needs openssl).

The bearer_token seeds include a real access token signed by the test
fixture key tests/fixtures/rsa2048-pkcs1.pem that expires in 2100, so the
fuzzer starts from a token that verifies and mutates it from there.
"""
import base64
import hashlib
import json
import pathlib
import subprocess

FUZZ = pathlib.Path(__file__).resolve().parent
KEY = FUZZ.parent / "tests" / "fixtures" / "rsa2048-pkcs1.pem"
SEEDS = FUZZ / "seeds"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def kid() -> str:
    """RFC 7638 thumbprint, as src/auth/keys.rs computes it."""
    out = subprocess.run(
        ["openssl", "rsa", "-in", str(KEY), "-noout", "-modulus"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    n = bytes.fromhex(out.split("=", 1)[1]).lstrip(b"\0")
    members = '{"e":"AQAB","kty":"RSA","n":"%s"}' % b64url(n)
    return b64url(hashlib.sha256(members.encode()).digest())


def sign(header: dict, claims: dict) -> str:
    signing_input = b64url(compact(header)) + "." + b64url(compact(claims))
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(KEY)],
        input=signing_input.encode(), check=True, capture_output=True,
    ).stdout
    return signing_input + "." + b64url(signature)


def write(target: str, name: str, data: bytes) -> None:
    path = SEEDS / target
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_bytes(data)


def main() -> None:
    header = {"alg": "RS256", "typ": "at+jwt", "kid": kid()}
    claims = {
        "iss": "tessera",
        "aud": "tessera-api",
        "sub": "00000000-0000-4000-8000-00000000f022",
        "username": "fuzz",
        "roles": ["admin"],
        "sid": "00000000-0000-4000-8000-00000000f5e5",
        "iat": 1767225600,
        "nbf": 1767225600,
        "exp": 4102444800,
        "jti": "00000000-0000-4000-8000-00000000071a",
    }
    token = sign(header, claims)
    write("bearer_token", "valid-token", token.encode())
    write("bearer_token", "valid-header", b"Bearer " + token.encode())
    write("bearer_token", "lower-case-scheme", b"bearer " + token.encode())
    expired = sign(header, {**claims, "exp": 1767229200})
    write("bearer_token", "expired-header", b"Bearer " + expired.encode())
    none_alg = b64url(compact({"alg": "none", "typ": "at+jwt"})) + "." + b64url(compact(claims)) + "."
    write("bearer_token", "alg-none-header", b"Bearer " + none_alg.encode())
    write("bearer_token", "basic-header", b"Basic dXNlcjpwYXNz")
    # One byte over the guard's limit (Bearer + 8 KiB), so libFuzzer's
    # -max_len grows past it.
    write("bearer_token", "oversized-header", b"Bearer " + b"A" * (8 * 1024 + 1))

    for name, value in [
        ("plain", "alice"), ("mixed-case", "Alice_1.x-y"), ("longest", "a" * 32),
        ("too-short", "ab"), ("non-ascii", "al\u00efce"), ("nul", "al\0ce"),
    ]:
        write("username", name, value.encode())

    # The password target's known password is 72 bytes long (see
    # fuzz_targets/password.rs); these seeds sit at bcrypt's truncation edge.
    known = "correct horse battery staple / " * 3
    known = known[:72]
    for name, value in [
        ("known", known), ("known-plus-one", known + "x"), ("known-minus-one", known[:71]),
        ("short", "hunter2"), ("euro", "\u20ac" * 24), ("nul", "pass\0word"),
    ]:
        write("password", name, value.encode())

    for name, value in [
        ("body", b'{"refresh_token":"mF_9B5f-4_1JqM-mF_9B5f-4_1JqM-mF_9B5f-4_1JqM_"}'),
        ("escaped", b'{"refresh_token":"\\u0000\\ud83d\\ude00"}'),
        ("wrong-type", b'{"refresh_token":42}'),
        ("raw", b"mF_9B5f-4_1JqM-mF_9B5f-4_1JqM-mF_9B5f-4_1JqM_"),
    ]:
        write("refresh_token", name, value)


if __name__ == "__main__":
    main()
