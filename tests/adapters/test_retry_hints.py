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


GOOGLE_429 = {
    "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. "
        "Please retry in 34.069201s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                        "quotaValue": "10",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34s"},
        ],
    }
}

ANTIGRAVITY_429 = {
    "error": {
        "code": 429,
        "message": "You have exhausted your capacity on this model. Your quota will reset after 108h48m29s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "QUOTA_EXHAUSTED",
                "domain": "cloudcode-pa.googleapis.com",
                "metadata": {
                    "model": "claude-sonnet-4-6",
                    "quotaResetDelay": "108h48m20.79s",
                    "quotaResetTimeStamp": "2026-06-04T15:24:12Z",
                },
            }
        ],
    }
}

ANTIGRAVITY_TIMESTAMP_ONLY = {
    "error": {
        "code": 429,
        "status": "RESOURCE_EXHAUSTED",
        "message": "Quota exhausted",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "metadata": {"quotaResetTimeStamp": "2023-11-14T22:15:00Z"},
            }
        ],
    }
}

OPENAI_429 = {
    "error": {
        "message": "Rate limit reached for requests. Limit: 3, Used: 3. Please try again in 20s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}

NIM_429 = {"status": 429, "title": "Too Many Requests", "detail": "Too Many Requests"}


@pytest.mark.parametrize(
    ("headers", "payload", "text", "expected"),
    [
        pytest.param({}, GOOGLE_429, "", 34.0, id="Google RetryInfo before the message's 34.07s"),
        pytest.param({}, ANTIGRAVITY_429, "", 108 * 3600 + 48 * 60 + 20.79, id="quotaResetDelay"),
        pytest.param({}, ANTIGRAVITY_TIMESTAMP_ONLY, "", 100.0, id="quotaResetTimeStamp"),
        pytest.param({}, [GOOGLE_429], "", 34.0, id="Google error wrapped in a list"),
        pytest.param({}, OPENAI_429, "", None, id="OpenAI body: hint only in text"),
        pytest.param({}, OPENAI_429, "Please try again in 20s.", 20.0, id="OpenAI text"),
        pytest.param({"Retry-After": "5"}, GOOGLE_429, "", 5.0, id="headers first"),
        pytest.param(
            {"x-ratelimit-reset-requests": "1m30s"}, OPENAI_429, "", 90.0, id="x-ratelimit"
        ),
        pytest.param(
            {}, NIM_429, '{"status":429,"title":"Too Many Requests"}', None, id="NIM: no hint"
        ),
        pytest.param({}, None, "rate limited, reset after 45s", 45.0, id="reset after 45s"),
        pytest.param({}, None, "Quota exceeded. Resets in 1h2m3s.", 3723.0, id="Resets in 1h2m3s"),
        pytest.param({}, None, "please retry after 12 seconds", 12.0, id="retry after N seconds"),
        pytest.param({}, None, "Too many requests", None, id="nothing"),
    ],
)
def test_reset_hint_seconds(headers, payload, text, expected):
    from adapters.retry_hints import reset_hint_seconds

    result = reset_hint_seconds(headers, payload, text, NOW)
    assert result == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (
            403,
            "This service has been disabled in this account for violation of Terms of Service.",
            "suspended: This service has been disabled in this account for violation of Terms of Service.",
        ),
        (403, "Your account has been suspended", "suspended: Your account has been suspended"),
        (403, "Permission denied on resource project foo", None),
        (401, "account disabled", None),
        (429, "suspended", None),
    ],
)
def test_disabled_reason(status, message, expected):
    from adapters.errors import disabled_reason

    assert disabled_reason(status, message) == expected
