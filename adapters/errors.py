"""OpenAI's error shape, and the error type OpenAI uses for each HTTP status."""

from __future__ import annotations

import re
from typing import Any

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(
    status: int,
    message: str,
    code: str | None = None,
    param: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """`{"error": {"message", "type", "code", "param", ...extra}}`, extra fields kept when set."""
    error: dict[str, Any] = {
        "message": message,
        "type": error_type(status),
        "code": code,
        "param": param,
    }
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


_ACCOUNT_DISABLED = re.compile(
    r"suspend|disabled|deactivated|banned|terms of service|violation"
    r"|account.{0,20}(?:closed|blocked)",
    re.IGNORECASE,
)


def disabled_reason(status: int, message: str) -> str | None:
    """A 403 saying the account itself is disabled or suspended -> the reason to record."""
    if status != 403 or not _ACCOUNT_DISABLED.search(message):
        return None
    return "suspended: " + " ".join(message.split())[:160]
