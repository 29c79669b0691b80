"""POST /v1/chat/completions: validate, resolve, try targets and accounts, relay the answer."""

from __future__ import annotations

import asyncio
import secrets
import time
from types import ModuleType
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from adapters import openai as openai_format
from adapters import sse
from proxy.accounts import Account
from proxy.cache import Hit, Plan
from proxy.errors import ProxyError
from proxy.fallback import FallbackChain
from proxy.images import fetch_images
from proxy.intake import check_messages, read_json_body, resolve
from proxy.routing import Target
from proxy.state import LOG_FIELDS, REQUEST_ID, STATE, Switchyard
from proxy.upstream import ADAPTERS, Answer, ChatExtras, call_chat

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
        if run.response is None:
            raise
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
        self.extras = ChatExtras(secrets.token_hex(8), int(time.time()))
        self.images_fetched = False
        self.plan: Plan | None = None
        self.cache_status = "miss"
        self.hit: Hit | None = None
        self.captured: list[Any] | None = None  # stream chunks kept for the cache

    async def find_answer(self) -> Answer:
        async def call(target: Target, account: Account) -> Answer:
            adapter = ADAPTERS[target.provider_config.type]
            if not adapter.PASSTHROUGH:
                await self.prepare_translation(adapter, target)
            return await call_chat(
                self.app.session, target, account, self.body, self.stream, self.extras
            )

        answer = await self.chain.run(call)
        self.app.signatures.remember(answer.signatures)
        return answer

    async def prepare_translation(self, adapter: ModuleType, target: Target) -> None:
        """Inline the request's image URLs (once) and offer the known thought signatures."""
        self.extras.signatures = self.app.signatures.known
        if self.images_fetched:
            return
        self.images_fetched = True
        urls = adapter.image_urls(self.body["messages"])
        if urls:
            timeout = target.provider_config.timeout
            self.extras.images = await fetch_images(self.app.session, urls, timeout)

    def served_by(self) -> tuple[str, str] | None:
        """(provider, target name) of the answer: the cache entry's, or the upstream's."""
        if self.hit is not None:
            return self.hit.entry.provider, self.hit.entry.target
        answer = self.chain.answer
        return None if answer is None else (answer.target.provider, answer.target.name)

    def headers(self) -> dict[str, str]:
        headers = {
            "x-request-id": self.request[REQUEST_ID],
            "x-switchyard-cache": self.cache_status,
        }
        served = self.served_by()
        if served is not None:
            headers["x-switchyard-provider"], headers["x-switchyard-model"] = served
        answer = self.chain.answer
        if self.hit is not None:
            if self.hit.similarity is not None:
                headers["x-switchyard-similarity"] = f"{self.hit.similarity:.4f}"
        elif answer is not None:
            if self.chain.fallback:
                headers["x-switchyard-fallback"] = str(self.chain.fallback)
            headers.update(self.app.pools[answer.target.provider].rate_headers())
        return headers

    async def respond(self) -> web.StreamResponse:
        cache = self.app.cache
        if cache is not None:
            chain = tuple(target.name for target in self.targets)
            self.plan = cache.plan(self.request.headers, self.body, chain)
            if self.plan is not None and self.plan.lookup:
                hit = await cache.lookup(self.plan)
                self.app.metrics.cache_lookup(self.plan, hit)
                if hit is not None:
                    return await self.replay(hit)
            if self.plan is not None and self.plan.store and self.stream:
                self.captured = []
        if not self.stream:
            answer = await self.find_answer()
            self.usage = openai_format.usage_tokens(answer.completion)
            self.first_byte = time.perf_counter()
            self.remember(answer.completion)
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
        try:
            await self.start_stream()
        except BaseException:  # the client left before the first byte: free the upstream
            if answer.response is not None:
                answer.response.close()
            raise
        await self.relay(answer)
        return self.response  # type: ignore[return-value]

    async def replay(self, hit: Hit) -> web.StreamResponse:
        """A cached answer, with a fresh id and time, in the form the client asked for."""
        self.hit = hit
        self.cache_status = hit.tier
        completion = dict(hit.entry.completion)
        completion["id"] = "chatcmpl-" + secrets.token_hex(12)
        completion["created"] = int(time.time())
        self.usage = openai_format.usage_tokens(completion)
        self.first_byte = time.perf_counter()
        if not self.stream:
            body = orjson.dumps(completion)
            return web.Response(body=body, content_type="application/json", headers=self.headers())
        await self.start_stream()
        assert self.response is not None
        chunks = openai_format.completion_to_chunks(completion, self.include_usage)
        await self.response.write(b"".join(map(sse.encode, chunks)) + sse.DONE)
        await self.response.write_eof()
        return self.response

    def remember(self, completion: Any) -> None:
        """Offer a finished answer to the cache (it keeps only what it may), after the client
        has it."""
        answer = self.chain.answer
        if self.plan is None or not self.plan.store or answer is None or completion is None:
            return
        cache = self.app.cache
        assert cache is not None
        cache.store_soon(self.plan, completion, answer.target.provider, answer.target.name)

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
        self.first_byte = time.perf_counter()
        if not answer.is_stream:
            self.usage = openai_format.usage_tokens(answer.completion)
            chunks = openai_format.completion_to_chunks(answer.completion, self.include_usage)
            await response.write(b"".join(map(sse.encode, chunks)) + sse.DONE)
            await response.write_eof()
            self.remember(answer.completion)
            return
        adapter = ADAPTERS[answer.target.provider_config.type]
        upstream = answer.response
        assert upstream is not None
        try:
            if adapter.PASSTHROUGH:
                problem = await self.pass_through(answer, upstream)
            else:
                problem = await self.translate(answer, upstream, adapter)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            timeout = answer.target.provider_config.timeout
            problem = f"upstream sent nothing for {timeout:g}s in the middle of the stream"
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            problem = f"upstream connection broke in the middle of the stream: {exc}"
        finally:
            upstream.close()
        if problem is not None:
            error = ProxyError(
                502, problem, code="stream_interrupted", provider=answer.target.provider
            )
            await self.end_with_error(error.body(self.request[REQUEST_ID]))
            return
        await response.write_eof()
        if self.captured:
            self.remember(openai_format.completion_from_chunks(self.captured))

    @property
    def include_usage(self) -> bool:
        return bool((self.body.get("stream_options") or {}).get("include_usage"))

    async def pass_through(self, answer: Answer, upstream: aiohttp.ClientResponse) -> str | None:
        """Relays an OpenAI-format stream byte for byte; the problem, if it ended badly."""
        response = self.response
        assert response is not None
        tail = answer.first_chunk[-TAIL_BYTES:]
        captured = [answer.first_chunk] if self.captured is not None else None
        await response.write(answer.first_chunk)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
            tail = (tail + chunk)[-TAIL_BYTES:]
            if captured is not None:
                captured.append(chunk)
        if captured is not None:
            data = b"".join(captured)
            # Parse only what the cache could keep: a tool call or another finish is never kept.
            keep = b'"tool_calls"' not in data and openai_format.STOP_MARKER.search(data)
            self.captured = sse.json_events(data) if keep else None
        for event in sse.last_json_events(tail, openai_format.USAGE_MARKER):
            prompt, completion = openai_format.usage_tokens(event)
            if prompt is not None or completion is not None:
                self.usage = (prompt, completion)
        if not sse.ends_with_done(tail):
            return "upstream ended the stream before it finished ([DONE] never came)"
        return None

    async def translate(
        self, answer: Answer, upstream: aiohttp.ClientResponse, adapter: ModuleType
    ) -> str | None:
        """Translates each upstream event into OpenAI chunks as it arrives."""
        response = self.response
        assert response is not None
        translator = adapter.StreamTranslator(
            answer.target.upstream_id,
            self.extras.id_prefix,
            self.extras.created,
            self.include_usage,
        )
        buffer = sse.EventBuffer()

        async def emit(events: list[bytes]) -> str | None:
            chunks = []
            for data in events:
                if data == b"[DONE]":
                    continue
                try:
                    event = orjson.loads(data)
                except orjson.JSONDecodeError:
                    return "upstream sent a stream event that is not JSON"
                error = adapter.completion_error(event)
                if error is not None:
                    return f"upstream failed in the middle of the stream: {error['message']}"
                chunks.extend(translator.feed(event))
            if self.captured is not None:
                self.captured.extend(chunks)
            if chunks:
                await response.write(b"".join(map(sse.encode, chunks)))
            return None

        try:
            problem = await emit(buffer.feed(answer.first_chunk))
            if problem is None:
                async for chunk in upstream.content.iter_any():
                    problem = await emit(buffer.feed(chunk))
                    if problem is not None:
                        break
            if problem is None:
                problem = await emit(buffer.close())
        finally:
            self.app.signatures.remember(translator.signatures)
        if translator.usage:
            self.usage = openai_format.usage_tokens({"usage": translator.usage})
        if problem is None and not translator.finished:
            problem = "upstream ended the stream before it finished (no finish reason came)"
        if problem is not None:
            return problem
        finish = translator.finish()
        if self.captured is not None:
            self.captured.extend(finish)
        await response.write(b"".join(map(sse.encode, finish)) + sse.DONE)
        return None

    async def end_with_error(self, body: dict[str, Any]) -> None:
        """After the stream began, a failure is a final error event, never a fake finish."""
        self.outcome = "error"
        response = self.response
        assert response is not None
        await response.write(self.app.scrubber.scrub_bytes(sse.encode(body)))
        await response.write_eof()

    def record_metrics(self) -> None:
        answer = self.chain.answer
        if answer is None or self.hit is not None:
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
            "cache": self.cache_status,
            "outcome": self.outcome,
        }
        served = self.served_by()
        if served is not None:
            fields["provider"], fields["target"] = served
        answer = self.chain.answer
        if self.hit is not None:
            if self.hit.similarity is not None:
                fields["similarity"] = round(self.hit.similarity, 4)
        elif answer is not None:
            fields["account"] = answer.account.label
            fields["fallback"] = self.chain.fallback
        if self.usage[0] is not None:
            fields["prompt_tokens"] = self.usage[0]
        if self.usage[1] is not None:
            fields["completion_tokens"] = self.usage[1]
        return fields
