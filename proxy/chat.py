"""POST /v1/chat/completions: validate, resolve, try targets and accounts, relay the answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp
from aiohttp import web

from adapters import sse
from proxy.accounts import Account
from proxy.errors import ProxyError
from proxy.fallback import FallbackChain
from proxy.intake import check_messages, read_json_body, resolve
from proxy.routing import Target
from proxy.state import LOG_FIELDS, REQUEST_ID, STATE, Switchyard
from proxy.upstream import ADAPTERS, Answer, call_chat

TAIL_BYTES = 4096


async def chat_completions(request: web.Request) -> web.StreamResponse:
    app = request.app[STATE]
    body = await read_json_body(request, app.config.server.maxBodyBytes)
    check_messages(body)
    targets = resolve(app, body["model"])
    run = ChatRun(app, request, body, targets)
    try:
        return await run.respond()
    except ConnectionResetError:
        run.outcome = "client_closed"
        assert run.response is not None
        return run.response
    except asyncio.CancelledError:
        run.outcome = "client_closed"
        raise
    finally:
        request[LOG_FIELDS].update(run.log_fields())
        run.record_metrics()


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
        session = request.headers.get("x-session-affinity") or request.headers.get("x-session-id")
        self.chain = FallbackChain(app, targets, session)
        self.started = time.perf_counter()
        self.first_byte: float | None = None
        self.response: web.StreamResponse | None = None
        self.outcome = "ok"
        self.usage: tuple[int | None, int | None] = (None, None)

    async def find_answer(self) -> Answer:
        def call(target: Target, account: Account) -> Awaitable[Answer]:
            return call_chat(self.app.session, target, account, self.body, self.stream)

        return await self.chain.run(call)

    def headers(self) -> dict[str, str]:
        headers = {
            "x-request-id": self.request[REQUEST_ID],
            "x-switchyard-cache": "miss",
        }
        answer = self.chain.answer
        if answer is not None:
            headers["x-switchyard-provider"] = answer.target.provider
            headers["x-switchyard-model"] = answer.target.name
            if self.chain.fallback:
                headers["x-switchyard-fallback"] = str(self.chain.fallback)
            headers.update(self.app.pools[answer.target.provider].rate_headers())
        return headers

    async def respond(self) -> web.StreamResponse:
        if not self.stream:
            answer = await self.find_answer()
            self.usage = ADAPTERS[answer.target.provider_config.type].usage_tokens(
                answer.completion
            )
            self.first_byte = time.perf_counter()
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
        self.first_byte = time.perf_counter()
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
        for event in sse.last_json_events(tail, adapter.USAGE_MARKER):
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

    def record_metrics(self) -> None:
        answer = self.chain.answer
        if answer is None:
            return
        now = time.perf_counter()
        first = None if self.first_byte is None else self.first_byte - self.started
        self.app.metrics.answered(
            answer.target.provider,
            answer.target.name,
            self.outcome,
            now - self.started,
            first,
            self.usage,
        )

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "model": self.body.get("model"),
            "stream": self.stream,
            "attempts": self.chain.attempts,
            "cache": "miss",
            "outcome": self.outcome,
        }
        answer = self.chain.answer
        if answer is not None:
            fields["provider"] = answer.target.provider
            fields["target"] = answer.target.name
            fields["account"] = answer.account.label
            fields["fallback"] = self.chain.fallback
        if self.usage[0] is not None:
            fields["prompt_tokens"] = self.usage[0]
        if self.usage[1] is not None:
            fields["completion_tokens"] = self.usage[1]
        return fields
