"""Plain HTTP calls for tests that need exact bytes and statuses (stdlib only, no SDK)."""

from __future__ import annotations

import urllib.error
import urllib.request


def _send(request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def post(
    url: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return _send(urllib.request.Request(url, data=body, headers=all_headers, method="POST"))


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return _send(urllib.request.Request(url, headers=headers or {}, method="GET"))
