"""POST /v1/chat/completions: validate, resolve, try targets and accounts, relay the answer."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from adapters import sse
from proxy.errors import ProxyError, bad_request
from proxy.routing import Target, UnknownModel
from proxy.state import LOG_FIELDS, REQUEST_ID, STATE, Switchyard
from proxy.upstream import ADAPTERS, Answer, Failure, UpstreamFailed, call_chat

TAIL_BYTES = 4096


async def read_json_body(request: web.Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx naming what is wrong with it."""
    too_large = ProxyError(
        413,
        f"request body is larger than server.maxBodyBytes ({limit} bytes)",
        code="request_too_large",
    )
    if (request.content_length or 0) > limit:
        raise too_large
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if not raw:
        raise bad_request("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request(f"request body must be a JSON object, got {type(body).__name__}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a non-empty string", "model")
    return body


def check_messages(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' is required and must be a non-empty list", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"'messages[{index}]' must be an object", f"messages[{index}]")


def resolve(app: Switchyard, model: str) -> tuple[Target, ...]:
    try:
        return app.router.resolve(model)
    except UnknownModel as exc:
        raise ProxyError(
            404, exc.message, code="model_not_found", param="model", details=[]
        ) from None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    app = request.app[STATE]
    body = await read_json_body(request, app.config.server.maxBodyBytes)
    check_messages(body)
    targets = resolve(app, body["model"])
    run = ChatRun(app, request, body, targets)
    try:
        return await run.respond()
    finally:
        request[LOG_FIELDS].update(run.log_fields())


class ChatRun:
    """One chat request's way through its targets and accounts to the client."""

    def __init__(
        self,
        app: Switchyard,
        request: web.Request,
        body: dict[str, Any],
        targets: tuple[Target, ...],
    ) -> None:
        self.app = app
        self.request = request
        self.body = body
        self.targets = targets
        self.stream = body.get("stream") is True
        self.failures: list[Failure] = []
        self.attempts = 0
        self.fallback = 0
        self.answer: Answer | None = None
        self.response: web.StreamResponse | None = None
        self.outcome = "ok"
        self.usage: tuple[int | None, int | None] = (None, None)

    async def find_answer(self) -> Answer:
        """Each target in order, each of its accounts in turn, until one answers."""
        for index, target in enumerate(self.targets):
            ring = self.app.pools[target.provider]
            accounts = ring.order()
            if not accounts:
                self.failures.append(
                    Failure(target.name, "-", 503, "no_account", "provider has no API key set")
                )
                continue
            for account in accounts:
                self.attempts += 1
                try:
                    answer = await call_chat(
                        self.app.session, target, account, self.body, self.stream
                    )
                except UpstreamFailed as exc:
                    failure = exc.failure
                    self.failures.append(failure)
                    self.app.log.info("upstream_failed", **failure.detail())
                    if not failure.fall_over:
                        raise self.relayed(failure) from None
                    if not failure.next_account:
                        break
                    continue
                self.fallback = index
                self.answer = answer
                return answer
        raise self.exhausted()

    def relayed(self, failure: Failure) -> ProxyError:
        """An upstream's own client error (a bad request), passed on as the client's error."""
        error = failure.error or {}
        return ProxyError(
            failure.status,
            failure.message,
            code=error.get("code"),
            param=error.get("param"),
            provider=failure.target.partition("/")[0],
            error_type=error.get("type"),
        )

    def exhausted(self) -> ProxyError:
        """No target answered: 429 with the earliest reset if any was rate limited, else the
        last failure's status; every attempt listed in `details`."""
        failures = self.failures
        details = [f.detail() for f in failures]
        limited = [f for f in failures if f.status == 429]
        last = failures[-1]
        if limited:
            hints = [f.retry_after for f in limited if f.retry_after is not None]
            status, code = 429, "rate_limited"
            retry_after = min(hints) if hints else None
        else:
            status = last.status if last.status >= 500 else 502
            code = "no_account" if last.reason == "no_account" else "upstream_failed"
            retry_after = None
        summary = "; ".join(f"{f.target}: {f.status} {f.message}" for f in failures[-3:])
        return ProxyError(
            status,
            f"no upstream could answer ({len(failures)} attempts): {summary}",
            code=code,
            provider=last.target.partition("/")[0],
            retry_after=retry_after,
            details=details,
        )

    def headers(self) -> dict[str, str]:
        headers = {
            "x-request-id": self.request[REQUEST_ID],
            "x-switchyard-cache": "miss",
        }
        if self.answer is not None:
            headers["x-switchyard-provider"] = self.answer.target.provider
            headers["x-switchyard-model"] = self.answer.target.name
            if self.fallback:
                headers["x-switchyard-fallback"] = str(self.fallback)
        return headers

    async def respond(self) -> web.StreamResponse:
        if not self.stream:
            answer = await self.find_answer()
            self.usage = ADAPTERS[answer.target.provider_config.type].usage_tokens(
                answer.completion
            )
            return web.Response(
                body=answer.raw, content_type="application/json", headers=self.headers()
            )
        task = asyncio.ensure_future(self.find_answer())
        try:
            interval = self.app.config.server.keepaliveInterval
            while not (await asyncio.wait((task,), timeout=interval))[0]:
                await self.start_stream()
                await self.response.write(sse.KEEPALIVE)  # type: ignore[union-attr]
            answer = task.result()
        except ProxyError as err:
            if self.response is None:
                raise
            await self.end_with_error(err.body(self.request[REQUEST_ID]))
            return self.response
        finally:
            if not task.done():
                task.cancel()
        await self.start_stream()
        await self.relay(answer)
        return self.response  # type: ignore[return-value]

    async def start_stream(self) -> None:
        if self.response is not None:
            return
        headers = self.headers()
        headers["Cache-Control"] = "no-cache"
        headers["Content-Type"] = "text/event-stream"
        self.response = web.StreamResponse(status=200, headers=headers)
        await self.response.prepare(self.request)

    async def relay(self, answer: Answer) -> None:
        response = self.response
        assert response is not None
        adapter = ADAPTERS[answer.target.provider_config.type]
        if not answer.is_stream:
            self.usage = adapter.usage_tokens(answer.completion)
            include_usage = bool((self.body.get("stream_options") or {}).get("include_usage"))
            chunks = adapter.completion_to_chunks(answer.completion, include_usage)
            await response.write(b"".join(map(sse.encode, chunks)) + sse.DONE)
            await response.write_eof()
            return
        upstream = answer.response
        assert upstream is not None
        tail = answer.first_chunk[-TAIL_BYTES:]
        problem = None
        try:
            await response.write(answer.first_chunk)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
                tail = (tail + chunk)[-TAIL_BYTES:]
        except (TimeoutError, aiohttp.ServerTimeoutError):
            timeout = answer.target.provider_config.timeout
            problem = f"upstream sent nothing for {timeout:g}s in the middle of the stream"
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            problem = f"upstream connection broke in the middle of the stream: {exc}"
        finally:
            upstream.close()
        if problem is None and not sse.ends_with_done(tail):
            problem = "upstream ended the stream before it finished ([DONE] never came)"
        for event in sse.last_json_events(tail):
            prompt, completion = adapter.usage_tokens(event)
            if prompt is not None or completion is not None:
                self.usage = (prompt, completion)
        if problem is not None:
            error = ProxyError(
                502, problem, code="stream_interrupted", provider=answer.target.provider
            )
            await self.end_with_error(error.body(self.request[REQUEST_ID]))
            return
        await response.write_eof()

    async def end_with_error(self, body: dict[str, Any]) -> None:
        """After the stream began, a failure is a final error event, never a fake finish."""
        self.outcome = "error"
        response = self.response
        assert response is not None
        await response.write(self.app.scrubber.scrub_bytes(sse.encode(body)))
        await response.write_eof()

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "model": self.body.get("model"),
            "stream": self.stream,
            "attempts": self.attempts,
            "cache": "miss",
            "outcome": self.outcome,
        }
        if self.answer is not None:
            fields["provider"] = self.answer.target.provider
            fields["target"] = self.answer.target.name
            fields["account"] = self.answer.account.label
            fields["fallback"] = self.fallback
        if self.usage[0] is not None:
            fields["prompt_tokens"] = self.usage[0]
        if self.usage[1] is not None:
            fields["completion_tokens"] = self.usage[1]
        return fields
