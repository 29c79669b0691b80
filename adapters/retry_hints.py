"""Reset hints in upstream rate-limit answers (headers, Google error details, message text)
-> seconds until the limit resets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float | None:
    """Go-style durations as sent in x-ratelimit-reset-* and Google bodies: "1h2m3.5s", "20ms"."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from retry-after-ms, Retry-After (seconds or HTTP date), or
    x-ratelimit-reset-requests; None when no header gives a hint. `now` is epoch seconds."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    if "retry-after" in lowered:
        value = lowered["retry-after"].strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError, IndexError):
                pass
    if "x-ratelimit-reset-requests" in lowered:
        seconds = parse_duration(lowered["x-ratelimit-reset-requests"])
        if seconds is not None:
            return max(0.0, seconds)
    return None


_TEXT_HINT = re.compile(
    r"(?:reset(?:s)?\s+(?:after|in)|retry\s+(?:after|in)|try\s+again\s+in)\s+"
    r"((?:\d+(?:\.\d+)?(?:ms|h|m|s))+|\d+(?:\.\d+)?\s*(?:seconds?|secs?)\b)",
    re.IGNORECASE,
)


def _text_seconds(text: str) -> float | None:
    match = _TEXT_HINT.search(text)
    if not match:
        return None
    value = match[1].strip().lower()
    number = re.match(r"^(\d+(?:\.\d+)?)\s*(?:seconds?|secs?)$", value)
    return float(number[1]) if number else parse_duration(value)


def _timestamp_seconds(value: Any, now: float) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.timestamp() - now


def _error_details(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, list) and payload:  # some Google endpoints wrap the error in a list
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def body_hint_seconds(payload: Any, text: str, now: float) -> float | None:
    """Seconds to wait from an error body: Google's RetryInfo.retryDelay, then
    ErrorInfo.metadata.quotaResetDelay, then quotaResetTimeStamp, then phrases such as
    "reset after 45s", "Resets in 1h2m3s" or "Please retry in 34.5s" in the text."""
    details = _error_details(payload)
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = detail.get("retryDelay")
            seconds = parse_duration(delay) if isinstance(delay, str) else None
            if seconds is not None:
                return max(0.0, seconds)
    for key in ("quotaResetDelay", "quotaResetTimeStamp"):
        for detail in details:
            metadata = detail.get("metadata")
            if not isinstance(metadata, dict) or key not in metadata:
                continue
            if key == "quotaResetDelay" and isinstance(metadata[key], str):
                seconds = parse_duration(metadata[key])
            else:
                seconds = _timestamp_seconds(metadata[key], now)
            if seconds is not None:
                return max(0.0, seconds)
    seconds = _text_seconds(text)
    return None if seconds is None else max(0.0, seconds)


def reset_hint_seconds(
    headers: Mapping[str, str], payload: Any, text: str, now: float
) -> float | None:
    """The first hint found, headers before body, in the order upstreams are known to send."""
    seconds = retry_after_seconds(headers, now)
    return seconds if seconds is not None else body_hint_seconds(payload, text, now)
