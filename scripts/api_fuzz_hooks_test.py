"""Self-test of scripts/api_fuzz_hooks.py: the envelope check must pass good
responses and fail each kind of bad one. scripts/api-fuzz.sh runs it (with
the venv's python) before fuzzing, so a check that can no longer fail is
caught. Exit 0 when every case behaves, 1 otherwise."""

import importlib.util
import os
import sys

import requests
from schemathesis.core.transport import Response

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("api_fuzz_hooks", os.path.join(HERE, "api_fuzz_hooks.py"))
hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hooks)

JSON_ERROR = {"content-type": "application/json", "cache-control": "no-store"}


def response(status, body=b"", headers=None, method="GET", request_id=True):
    request = requests.Request(method, "http://127.0.0.1/x").prepare()
    all_headers = {"x-request-id": ["r-1"]} if request_id else {}
    for name, value in (headers or {}).items():
        all_headers[name.lower()] = [value]
    return Response(status, all_headers, body, request, 0.0, True)


def envelope(code, extra=""):
    return f'{{"error":"{code}","message":"A sentence."{extra}}}'.encode()


CHALLENGE = {**JSON_ERROR, "www-authenticate": 'Bearer realm="tessera"'}
GOOD = {
    "200 JSON": response(200, b'{"status":"ok"}', {"content-type": "application/json"}),
    "204 empty": response(204),
    "404 envelope": response(404, envelope("not_found"), JSON_ERROR),
    "422 with fields": response(422, envelope("validation_failed", ',"fields":{"limit":"bad"}'), JSON_ERROR),
    "401 with challenge": response(401, envelope("missing_token"), CHALLENGE),
    "429 with Retry-After": response(429, envelope("rate_limited"), {**JSON_ERROR, "retry-after": "3"}),
    "HEAD 404 without body": response(404, b"", JSON_ERROR, method="HEAD"),
}
BAD = {
    "error as text/plain": response(404, b"not found", {"content-type": "text/plain", "cache-control": "no-store"}),
    "empty error body": response(400, b"", JSON_ERROR),
    "extra envelope key": response(400, envelope("invalid_request", ',"detail":1'), JSON_ERROR),
    "unknown code": response(400, envelope("oops"), JSON_ERROR),
    "code of another status": response(400, envelope("not_found"), JSON_ERROR),
    "fields outside 422": response(400, envelope("invalid_request", ',"fields":{"a":"b"}'), JSON_ERROR),
    "error without no-store": response(404, envelope("not_found"), {"content-type": "application/json"}),
    "401 without challenge": response(401, envelope("invalid_token"), JSON_ERROR),
    "503 without Retry-After": response(503, envelope("unavailable"), JSON_ERROR),
    "405 without Allow": response(405, envelope("method_not_allowed"), JSON_ERROR),
    "204 with a body": response(204, b"{}"),
    "redirect": response(302, b"", {"location": "/"}),
    "no x-request-id": response(200, b"{}", {"content-type": "application/json"}, request_id=False),
}


def passes(resp):
    try:
        hooks.tessera_envelope(None, resp, None)
    except AssertionError:
        return False
    return True


wrong = [f"good case failed: {name}" for name, resp in GOOD.items() if not passes(resp)]
wrong += [f"bad case passed: {name}" for name, resp in BAD.items() if passes(resp)]
for line in wrong:
    print(f"[api-fuzz] hooks self-test: {line}", file=sys.stderr)
print(f"[api-fuzz] hooks self-test: {len(GOOD) + len(BAD) - len(wrong)} of {len(GOOD) + len(BAD)} cases behave", file=sys.stderr)
sys.exit(1 if wrong else 0)
