"""A fake OpenAI-compatible upstream (NIM / Zen / Ollama style) with scripted faults."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Script:
    """What the fake does with one request. Defaults: a normal answer."""

    status: int = 200
    error: dict[str, Any] | None = None  # body for an error status
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    first_byte_delay: float = 0.0  # after headers, before the first SSE event
    chunk_interval: float = 0.0
    content: str | None = None
    tool_call: tuple[str, dict[str, Any]] | None = None
    reset_after_chunks: int | None = None  # drop the connection mid-stream
    stall_after_chunks: tuple[int, float] | None = None  # go quiet mid-stream
    omit_done: bool = False
    invalid_json: bool = False
    finish_reason: str | None = None
    content_pieces: int = 3
    ignore_stream: bool = False  # answer JSON even when asked to stream


@dataclass
class Seen:
    """One request as the fake received it."""

    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


class FakeOpenAI:
    """Behaves like an OpenAI-compatible chat server; faults are queued per model or per key."""

    def __init__(self, keys: set[str] | None = None, seed: int = 7) -> None:
        self.keys = keys  # None: no auth required
        self.windows: dict[str, tuple[int, float]] = {}  # key -> (requests, window seconds)
        self._window_counts: dict[tuple[str, int], int] = defaultdict(int)
        self.random_429: tuple[float, float] | None = None  # (probability, reset seconds)
        self._random = random.Random(seed)
        self.rate_limited = 0  # 429s sent
        self.seen: list[Seen] = []
        self.by_model: dict[str, deque[Script]] = defaultdict(deque)
        self.by_key: dict[str, Script] = {}
        self.aborted = 0  # streams whose client went away before the end
        self.completed_streams = 0
        self._ids = itertools.count(1)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_post("/v1/embeddings", self.embeddings)
        self.app.router.add_get("/v1/models", self.models)

    def queue(self, model: str, *scripts: Script) -> None:
        """The next requests for `model` follow these scripts, in order."""
        self.by_model[model].extend(scripts)

    def limit_key(self, key: str, requests: int, window: float) -> None:
        """Like NIM's free tier: `requests` per fixed window per key, then 429 with the reset."""
        self.windows[key] = (requests, window)

    def _over_limit(self, key: str) -> web.Response | None:
        reset = None
        if key in self.windows:
            limit, window = self.windows[key]
            now = time.monotonic()
            slot = int(now // window)
            self._window_counts[(key, slot)] += 1
            if self._window_counts[(key, slot)] > limit:
                reset = (slot + 1) * window - now
        if reset is None and self.random_429 and self._random.random() < self.random_429[0]:
            reset = self.random_429[1]
        if reset is None:
            return None
        self.rate_limited += 1
        body = {
            "error": {
                "message": "Rate limit exceeded",
                "type": "rate_limit_error",
                "code": "rate_limit_exceeded",
            }
        }
        return web.json_response(
            body, status=429, headers={"retry-after-ms": str(int(reset * 1000))}
        )

    def fail_key(self, key: str, script: Script) -> None:
        """Every request made with `key` follows `script` (e.g. a 429)."""
        self.by_key[key] = script

    def bodies(self, model: str | None = None) -> list[Any]:
        return [s.body for s in self.seen if model is None or s.body.get("model") == model]

    async def embeddings(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw)
        self.seen.append(Seen(request.path, dict(request.headers), body, raw))
        queued = self.by_model.get(body.get("model", ""))
        script = queued.popleft() if queued else Script()
        if script.status >= 400:
            return web.json_response({"error": {"message": "scripted"}}, status=script.status)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 0.5, -0.25]}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(str(text).split()) for text in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    def _error(self, status: int, message: str, kind: str, code: str | None = None) -> web.Response:
        body = {"error": {"message": message, "type": kind, "code": code, "param": None}}
        return web.json_response(body, status=status)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.seen.append(Seen(request.path, dict(request.headers), body, raw))
        if not isinstance(body, dict):
            return self._error(400, "We could not parse the JSON body", "invalid_request_error")
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.keys is not None and key not in self.keys:
            return self._error(
                401,
                f"Incorrect API key provided: {key}",
                "invalid_request_error",
                "invalid_api_key",
            )
        if not isinstance(body.get("messages"), list) or not isinstance(body.get("model"), str):
            return self._error(400, "'messages' and 'model' are required", "invalid_request_error")
        limited = self._over_limit(key)
        if limited is not None:
            return limited
        model = body["model"]
        script = self.by_key.get(key)
        if script is None:
            queued = self.by_model.get(model)
            script = queued.popleft() if queued else Script()
        if script.delay:
            await asyncio.sleep(script.delay)
        if script.status >= 400:
            error = script.error or {
                "error": {"message": f"scripted {script.status}", "type": "server_error"}
            }
            return web.json_response(error, status=script.status, headers=script.headers)
        if script.invalid_json:
            return web.Response(
                body=b'{"id": "chatcmpl-x", "choices": [', content_type="application/json"
            )
        completion = self._completion(body, script)
        if body.get("stream") is True and not script.ignore_stream:
            return await self._stream(request, body, completion, script)
        return web.json_response(completion, headers=script.headers)

    def _completion(self, body: dict[str, Any], script: Script) -> dict[str, Any]:
        messages = body["messages"]
        last = messages[-1] if messages else {}
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        wants_tool = body.get("tools") and body.get("tool_choice") != "none"
        if script.tool_call or (wants_tool and last.get("role") == "user" and not script.content):
            name, args = script.tool_call or (body["tools"][0]["function"]["name"], {})
            message["tool_calls"] = [
                {
                    "id": f"call_{next(self._ids)}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
            ]
            finish = "tool_calls"
        elif script.content is not None:
            message["content"] = script.content
        elif last.get("role") == "tool":
            message["content"] = f"The tool said: {last.get('content')}"
        else:
            message["content"] = f"Hello from {body['model']}: {_text(last)}"
        prompt_tokens = sum(len(_text(m).split()) for m in messages)
        completion_tokens = len((message["content"] or "").split()) + 1
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": script.finish_reason or finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], completion: dict[str, Any], script: Script
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                **script.headers,
            }
        )
        await response.prepare(request)
        events = _chunks(
            completion, script, bool((body.get("stream_options") or {}).get("include_usage"))
        )
        try:
            if script.first_byte_delay:
                await asyncio.sleep(script.first_byte_delay)
            for number, event in enumerate(events):
                if script.reset_after_chunks is not None and number == script.reset_after_chunks:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                if script.stall_after_chunks and number == script.stall_after_chunks[0]:
                    await asyncio.sleep(script.stall_after_chunks[1])
                if number and script.chunk_interval:
                    await asyncio.sleep(script.chunk_interval)
                await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            if not script.omit_done:
                await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.aborted += 1
            raise
        self.completed_streams += 1
        return response


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _chunks(
    completion: dict[str, Any], script: Script, include_usage: bool
) -> list[dict[str, Any]]:
    base = {k: completion[k] for k in ("id", "created", "model")} | {
        "object": "chat.completion.chunk"
    }
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if include_usage:
            out["usage"] = None
        return out

    events = [chunk({"role": "assistant", "content": ""})]
    text = message.get("content") or ""
    if text:
        size = max(1, -(-len(text) // script.content_pieces))
        events += [chunk({"content": text[i : i + size]}) for i in range(0, len(text), size)]
    for index, call in enumerate(message.get("tool_calls") or []):
        events.append(chunk({"tool_calls": [{"index": index, **call}]}))
    events.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        events.append({**base, "choices": [], "usage": completion["usage"]})
    return events
