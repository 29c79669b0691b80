"""Errors the proxy answers with, in OpenAI's shape plus switchyard's extra fields."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from adapters.errors import error_body


@dataclass
class ProxyError(Exception):
    """An answer the client gets instead of a completion."""

    status: int
    message: str
    code: str | None = None
    param: str | None = None
    provider: str | None = None
    retry_after: float | None = None
    details: list[dict[str, Any]] = field(default_factory=list)
    error_type: str | None = None

    def body(self, request_id: str) -> dict[str, Any]:
        body = error_body(
            self.status,
            self.message,
            self.code,
            self.param,
            provider=self.provider,
            retry_after=None if self.retry_after is None else math.ceil(self.retry_after),
            request_id=request_id,
            details=self.details or None,
        )
        if self.error_type:
            body["error"]["type"] = self.error_type
        return body

    def response(self, request_id: str, headers: dict[str, str] | None = None) -> web.Response:
        out = dict(headers or {})
        out["x-request-id"] = request_id
        if self.status in (429, 503):
            out["Retry-After"] = str(math.ceil(self.retry_after or 1))
        return web.Response(
            status=self.status,
            body=orjson.dumps(self.body(request_id)),
            content_type="application/json",
            headers=out,
        )


def bad_request(message: str, param: str | None = None) -> ProxyError:
    return ProxyError(400, message, code="invalid_request", param=param)
