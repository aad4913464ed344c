"""Schemathesis hooks for scripts/api-fuzz.sh: tessera's own response rules.

Loaded with SCHEMATHESIS_HOOKS=scripts/api_fuzz_hooks.py. The built-in
checks compare each response with the OpenAPI document; the check below adds
what SPEC.md §4 says of EVERY response, whatever the document says:

* every error (any status >= 400, on anything but HEAD) is exactly the
  envelope {"error": <code>, "message": <sentence>} served as
  application/json; only 422 `validation_failed` adds "fields", an object of
  strings; the code is one of SPEC's table and belongs to the status;
* errors carry `Cache-Control: no-store`; 401 `missing_token` and
  `invalid_token` and 403 carry `WWW-Authenticate: Bearer realm="tessera"…`;
  429 and 503 carry `Retry-After`; 405 carries `Allow`;
* 204 has no body and no Content-Type;
* no response is a redirect or a 1xx/3xx (the API has none);
* every response has an `x-request-id` header.

It also supplies the bearer token of the private routes (see `FuzzerLogin`).
"""

import json
import os

import requests
import schemathesis

# SPEC.md §4 (and README "Errors"): each error code and its one status.
CODES = {
    "invalid_request": 400,
    "missing_token": 401,
    "invalid_token": 401,
    "invalid_credentials": 401,
    "invalid_grant": 401,
    "mfa_required": 401,
    "invalid_otp": 401,
    "insufficient_scope": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "username_taken": 409,
    "conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_failed": 422,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
}


def _header(response, name):
    """The first value of a header (keys are lower-case lists), or None."""
    values = response.headers.get(name.lower())
    return values[0] if values else None


def _is_json(content_type):
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def _check_envelope(response):
    status = response.status_code
    content_type = _header(response, "content-type")
    assert _is_json(content_type), (
        f"{status} error served as {content_type!r}, not application/json"
    )
    try:
        body = json.loads(response.content)
    except ValueError as err:
        raise AssertionError(f"{status} error body is not JSON: {err}") from None
    assert isinstance(body, dict), f"{status} error body is not an object: {body!r}"
    allowed = {"error", "message", "fields"}
    if body.get("error") == "mfa_required":
        # The login of a TOTP account adds what the second step needs.
        allowed |= {"mfa_token", "methods"}
    extra = set(body) - allowed
    assert not extra, f"{status} error envelope has unexpected keys {sorted(extra)}"
    code, message = body.get("error"), body.get("message")
    assert isinstance(code, str), f"{status} envelope 'error' is not a string: {code!r}"
    assert isinstance(message, str) and message, (
        f"{status} envelope 'message' is not a non-empty string: {message!r}"
    )
    assert code in CODES, f"{status} envelope has unknown error code {code!r}"
    assert CODES[code] == status, (
        f"error code {code!r} belongs to {CODES[code]}, answered with {status}"
    )
    if "fields" in body:
        fields = body["fields"]
        assert code == "validation_failed", f"'fields' on a {code!r} error"
        assert isinstance(fields, dict) and fields, f"'fields' is not a non-empty object: {fields!r}"
        for name, problem in fields.items():
            assert isinstance(problem, str), f"fields.{name} is not a string: {problem!r}"
    return code


def _check_error_headers(response, code):
    status = response.status_code
    assert _header(response, "cache-control") == "no-store", (
        f"{status} error without Cache-Control: no-store"
    )
    if code in ("missing_token", "invalid_token", "insufficient_scope"):
        challenge = _header(response, "www-authenticate") or ""
        assert challenge.startswith('Bearer realm="tessera"'), (
            f"{code} without a Bearer WWW-Authenticate challenge: {challenge!r}"
        )
    if status in (429, 503):
        assert _header(response, "retry-after"), f"{status} without Retry-After"
    if status == 405:
        assert _header(response, "allow"), "405 without Allow"


@schemathesis.check
def tessera_envelope(ctx, response, case):
    """Every error is SPEC's JSON envelope; 204 is empty; x-request-id is set."""
    status = response.status_code
    method = (response.request.method or "").upper()
    assert _header(response, "x-request-id"), f"{status} response without x-request-id"
    assert not (100 <= status < 200 or 300 <= status < 400), f"unexpected status {status}"
    if status == 204:
        assert not response.content, f"204 with a body: {response.content[:80]!r}"
        assert _header(response, "content-type") is None, "204 with a Content-Type"
    if status >= 400:
        if method == "HEAD":
            # A HEAD answer has no body by definition; its headers still count.
            content_type = _header(response, "content-type")
            assert _is_json(content_type), f"HEAD {status} typed {content_type!r}"
            _check_error_headers(response, None)
            return
        code = _check_envelope(response)
        _check_error_headers(response, code)


# How often (seconds) the auth provider logs in again. Every login is a new
# session, so the fuzzer's own `DELETE /api/sessions` never leaves the
# stateful phase without a session to list and revoke.
LOGIN_REFRESH_SECONDS = 2


@schemathesis.auth(refresh_interval=LOGIN_REFRESH_SECONDS, retry_on=[]).apply_to(
    path_regex="^/api/"
)
class FuzzerLogin:
    """Bearer token for the private routes.

    With TESSERA_FUZZ_TOKEN set, that token is used as is (the deleted-account
    pass). Otherwise the fuzzer's account (TESSERA_FUZZ_BASE_URL,
    TESSERA_FUZZ_USERNAME, TESSERA_FUZZ_PASSWORD) logs in. `retry_on=[]`: a
    401 is never retried with a fresh token, so a guard that wrongly refuses a
    valid token shows up as a failure instead of being papered over.
    """

    def get(self, case, ctx):
        static = os.environ.get("TESSERA_FUZZ_TOKEN")
        if static:
            return static
        response = requests.post(
            os.environ["TESSERA_FUZZ_BASE_URL"].rstrip("/") + "/auth/token",
            json={
                "username": os.environ["TESSERA_FUZZ_USERNAME"],
                "password": os.environ["TESSERA_FUZZ_PASSWORD"],
            },
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(f"fuzzer login answered {response.status_code}: {response.text[:200]}")
        return response.json()["access_token"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
