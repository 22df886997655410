"""Smoke test of a running model server, through its real endpoints (standard library only).

    python model/smoke_test.py http://model-server.cv-staging.svc.cluster.local:80

Checks /healthz and /readyz answer 200, /predict classifies a known "0" and a
known "1" (8x8 images in the dataset's 0..16 scale) and refuses a bad body
with a 4xx, and /metrics counts the predictions. Prints one line per check;
exits 0 when all pass, 1 at the first failure. Every request has a timeout;
readiness is retried a bounded number of times (a rollout may still be settling).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

TIMEOUT = 5.0
READY_ATTEMPTS = 30
READY_DELAY = 2.0

# A "0" and a "1" drawn in the dataset's style (rows of 8, ink 0..16).
ZERO = [
    0, 0, 5, 13, 9, 1, 0, 0,
    0, 0, 13, 15, 10, 15, 5, 0,
    0, 3, 15, 2, 0, 11, 8, 0,
    0, 4, 12, 0, 0, 8, 8, 0,
    0, 5, 8, 0, 0, 9, 8, 0,
    0, 4, 11, 0, 1, 12, 7, 0,
    0, 2, 14, 5, 10, 12, 0, 0,
    0, 0, 6, 13, 10, 0, 0, 0,
]  # fmt: skip
ONE = [
    0, 0, 0, 12, 13, 5, 0, 0,
    0, 0, 0, 11, 16, 9, 0, 0,
    0, 0, 3, 15, 16, 6, 0, 0,
    0, 7, 15, 16, 16, 2, 0, 0,
    0, 0, 1, 16, 16, 3, 0, 0,
    0, 0, 1, 16, 16, 6, 0, 0,
    0, 0, 1, 16, 16, 6, 0, 0,
    0, 0, 0, 11, 16, 10, 0, 0,
]  # fmt: skip


class SmokeFailure(Exception):
    pass


def _request(base: str, path: str, body: Any = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    if not base.startswith(("http://", "https://")):
        raise SmokeFailure(f"not an http(s) URL: {base}")
    req = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        base.rstrip("/") + path,
        data=data,
        headers={"Content-Type": "application/json"} if data is not None else {},
        method="POST" if data is not None else "GET",
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as res:  # noqa: S310 - checked above
            return int(res.status), res.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise SmokeFailure(f"{path}: {getattr(exc, 'reason', exc)}") from None


def _answer(raw: bytes, what: str) -> dict[str, Any]:
    try:
        answer = json.loads(raw)
    except ValueError:
        raise SmokeFailure(f"{what}: the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise SmokeFailure(f"{what}: the answer is not a JSON object")
    return answer


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SmokeFailure(message)
    print(f"ok   {message}")


def run(base: str, ready_attempts: int = READY_ATTEMPTS, delay: float = READY_DELAY) -> None:
    status, _ = _request(base, "/healthz")
    _check(status == 200, f"GET /healthz -> {status}")
    for attempt in range(1, ready_attempts + 1):
        status, _ = _request(base, "/readyz")
        if status == 200 or attempt == ready_attempts:
            break
        time.sleep(delay)
    _check(status == 200, f"GET /readyz -> {status}")
    for name, pixels, want in (("zero", ZERO, 0), ("one", ONE, 1)):
        status, raw = _request(base, "/predict", {"pixels": pixels})
        digit = _answer(raw, f"POST /predict ({name})").get("digit") if status == 200 else None
        _check(
            status == 200 and digit == want, f"POST /predict ({name}) -> {status}, digit {digit}"
        )
    status, _ = _request(base, "/predict", {"pixels": [0] * 10})
    _check(400 <= status < 500, f"POST /predict (bad body) -> {status}")
    status, raw = _request(base, "/metrics")
    _check(
        status == 200 and b"model_http_requests_total" in raw,
        f"GET /metrics -> {status}, request counter present",
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python model/smoke_test.py BASE_URL", file=sys.stderr)
        return 2
    try:
        run(argv[0])
    except SmokeFailure as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
