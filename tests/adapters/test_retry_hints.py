"""Table-driven tests for reading reset hints from rate-limit answers."""

from __future__ import annotations

import pytest

from adapters.retry_hints import parse_duration, retry_after_seconds

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"Retry-After": "Tue, 14 Nov 2023 22:14:00 GMT"}, 40.0),
        ({"Retry-After": "Tue, 14 Nov 2023 22:00:00 GMT"}, 0.0),
        ({"x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-requests": "1s"}, 1.0),
        ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
        ({"Retry-After": "soon"}, None),
        ({"content-type": "application/json"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers, expected):
    result = retry_after_seconds(headers, NOW)
    assert result == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("34s", 34.0),
        ("0.479417207s", 0.479417207),
        ("108h48m20.79s", 108 * 3600 + 48 * 60 + 20.79),
        ("1h2m3s", 3723.0),
        ("250ms", 0.25),
        ("12", 12.0),
        ("", None),
        ("5 minutes", None),
        ("1x", None),
    ],
)
def test_parse_duration(text, expected):
    result = parse_duration(text)
    assert result == (pytest.approx(expected) if expected is not None else None)
