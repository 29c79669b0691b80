"""One upstream call: send the adapter's request, classify failures, hold the live answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import aiohttp
import orjson

from adapters import gemini as gemini_adapter
from adapters import openai as openai_adapter
from adapters.request import ChatRequest, RequestError
from adapters.retry_hints import reset_hint_seconds
from proxy.accounts import Account
from proxy.errors import ProxyError
from proxy.routing import Target

ADAPTERS: dict[str, ModuleType] = {"openai": openai_adapter, "gemini": gemini_adapter}

# Statuses after which the next target in the chain is tried.
FALL_OVER_STATUSES = frozenset({401, 403, 404, 408, 409, 425, 429})

_REASONS = {401: "unauthorized", 403: "forbidden", 404: "model_unavailable", 429: "rate_limited"}


@dataclass
class Failure:
    """Why one attempt (target + account) did not produce an answer."""

    target: str
    account: str
    status: int
    reason: str
    message: str
    retry_after: float | None = None
    error: dict[str, Any] | None = None

    @property
    def fall_over(self) -> bool:
        return self.status in FALL_OVER_STATUSES or self.status >= 500

    def detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target,
            "account": self.account,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
        }
        if self.retry_after is not None:
            out["retry_after"] = round(self.retry_after, 3)
        return out


class UpstreamFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class Answer:
    """A successful upstream answer: a live stream (first chunk read) or a whole completion."""

    target: Target
    account: Account
    response: aiohttp.ClientResponse | None = None
    first_chunk: bytes = b""
    raw: bytes | None = None
    completion: Any = None
    signatures: dict[str, str] = field(default_factory=dict)

    @property
    def is_stream(self) -> bool:
        return self.response is not None


@dataclass
class ChatExtras:
    """What the proxy adds to a chat request for adapters that translate: fetched images,
    known thought signatures, and the id prefix and timestamp of the answer it builds."""

    id_prefix: str
    created: int
    images: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    signatures: Mapping[str, str] = field(default_factory=dict)


async def call_chat(
    session: aiohttp.ClientSession,
    target: Target,
    account: Account,
    body: dict[str, Any],
    stream: bool,
    extras: ChatExtras,
) -> Answer:
    """Send one chat request; return the answer (in OpenAI's shape) or raise UpstreamFailed."""
    provider = target.provider_config
    adapter = ADAPTERS[provider.type]
    upstream_stream = stream and target.streaming
    request = ChatRequest(
        body,
        target.upstream_id,
        target.settings,
        provider.dropParams,
        upstream_stream,
        extras.images,
        extras.signatures,
    )
    try:
        payload = adapter.build_chat_body(request)
    except RequestError as exc:
        raise ProxyError(
            400, exc.message, code="invalid_request", param=exc.param, provider=target.provider
        ) from None
    url = adapter.chat_url(provider.baseURL, target.upstream_id, upstream_stream)
    answer = await send(session, target, account, url, payload, upstream_stream, adapter.is_answer)
    if not adapter.PASSTHROUGH and answer.completion is not None:
        completion, signatures = adapter.completion_from_response(
            answer.completion, target.upstream_id, extras.id_prefix, extras.created
        )
        answer.completion = completion
        answer.raw = orjson.dumps(completion)
        answer.signatures = signatures
    return answer


async def call_embeddings(
    session: aiohttp.ClientSession, target: Target, account: Account, body: dict[str, Any]
) -> Answer:
    """Send one embeddings request; return the answer or raise UpstreamFailed."""
    adapter = ADAPTERS[target.provider_config.type]
    if not hasattr(adapter, "build_embeddings_body"):
        message = f"providers of type {target.provider_config.type!r} do not serve embeddings"
        raise UpstreamFailed(Failure(target.name, account.label, 404, "unsupported", message))
    payload = adapter.build_embeddings_body(body, target.upstream_id)
    url = adapter.embeddings_url(target.provider_config.baseURL)
    return await send(session, target, account, url, payload, False, adapter.is_embedding_list)


async def send(
    session: aiohttp.ClientSession,
    target: Target,
    account: Account,
    url: str,
    payload: dict[str, Any],
    stream: bool,
    is_answer: Callable[[Any], bool],
) -> Answer:
    """POST a JSON payload upstream. A stream comes back live with its first chunk read;
    anything else comes back whole, checked with `is_answer`."""
    provider = target.provider_config
    adapter = ADAPTERS[provider.type]
    headers = adapter.request_headers(account.key, provider.headers)
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=provider.timeout, sock_read=provider.timeout
    )

    def fail(status: int, reason: str, message: str, **extra: Any) -> UpstreamFailed:
        return UpstreamFailed(Failure(target.name, account.label, status, reason, message, **extra))

    response = None
    try:
        response = await session.post(
            url, data=orjson.dumps(payload), headers=headers, timeout=timeout
        )
        if response.status >= 400:
            raw = await response.read()
            raise _http_failure(adapter, target, account, response, raw)
        if stream and response.content_type == "text/event-stream":
            first = await response.content.readany()
            if not first:
                raise fail(502, "bad_response", "upstream closed the stream before any event")
            answer = Answer(target, account, response=response, first_chunk=first)
            response = None
            return answer
        raw = await response.read()
    except UpstreamFailed:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise fail(
            504, "timeout", f"no answer from upstream within {provider.timeout:g}s"
        ) from None
    except aiohttp.ClientPayloadError as exc:
        raise fail(502, "bad_response", f"upstream answer broke off: {exc}") from None
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise fail(502, "unreachable", f"cannot reach upstream: {exc}") from None
    finally:
        if response is not None:
            response.release()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise fail(502, "bad_response", "upstream answered with invalid JSON") from None
    error = adapter.completion_error(parsed)
    if error is not None:
        raise fail(502, "upstream_error", str(error.get("message", "upstream error")), error=error)
    if not is_answer(parsed):
        raise fail(502, "bad_response", "upstream answer does not have the expected shape")
    return Answer(target, account, raw=raw, completion=parsed)


def _http_failure(
    adapter: ModuleType,
    target: Target,
    account: Account,
    response: aiohttp.ClientResponse,
    raw: bytes,
) -> UpstreamFailed:
    text = raw.decode("utf-8", "replace")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        payload = None
    status = adapter.effective_status(response.status, payload)
    error = adapter.read_error(status, payload, text)
    retry_after = None
    if status in (429, 503):
        retry_after = reset_hint_seconds(response.headers, payload, text, time.time())
    reason = _REASONS.get(status, "upstream_error")
    return UpstreamFailed(
        Failure(
            target.name,
            account.label,
            status,
            reason,
            str(error["message"]),
            retry_after=retry_after,
            error=error,
        )
    )
