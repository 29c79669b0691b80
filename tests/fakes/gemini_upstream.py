"""A fake Gemini API (generateContent / streamGenerateContent?alt=sse) that enforces the
constraints the real one does: schema keywords, role order, one response per call, thought
signatures on replayed Gemini 3 calls, API keys, and 429s with RetryInfo."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SCHEMA_KEYS = frozenset(
    {
        "type", "format", "description", "nullable", "enum", "properties", "required", "items",
        "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern",
        "anyOf", "propertyOrdering", "minProperties", "maxProperties",
    }
)  # fmt: skip
SCHEMA_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
SKIP = "skip_thought_signature_validator"


@dataclass
class Reply:
    """What the fake answers next for a model (default: text, or a call when tools are on)."""

    text: str | None = None
    call: tuple[str, dict[str, Any]] | None = None
    thought: str | None = None
    finish: str = "STOP"
    status: int = 200
    error: dict[str, Any] | None = None
    blocked: str | None = None
    empty_candidate: bool = False
    extra_events: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0


class GeminiError(Exception):
    def __init__(self, status: int, message: str, state: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.status, self.message, self.state = status, message, state


class FakeGemini:
    def __init__(self, keys: set[str] | None = None) -> None:
        self.keys = keys
        self.seen: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.replies: dict[str, deque[Reply]] = defaultdict(deque)
        self.signatures: set[str] = set()  # signatures this fake handed out
        self._counter = itertools.count(1)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/v1beta/models/{action}", self.handle)

    def queue(self, model: str, *replies: Reply) -> None:
        self.replies[model].extend(replies)

    # -- validation ----------------------------------------------------------------------

    def _check_schema(self, schema: Any, where: str) -> None:
        if not isinstance(schema, dict):
            raise GeminiError(400, f"Invalid value at '{where}'")
        for key in schema:
            if key not in SCHEMA_KEYS:
                raise GeminiError(
                    400,
                    f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.",
                )
        kind = schema.get("type")
        if kind is not None and kind not in SCHEMA_TYPES:
            raise GeminiError(400, f"Invalid value at '{where}.type' ({kind!r})")
        if "enum" in schema and not all(isinstance(v, str) for v in schema["enum"]):
            raise GeminiError(400, f"Invalid value at '{where}.enum': only strings")
        if kind == "object":
            properties = schema.get("properties")
            if not properties:
                raise GeminiError(400, f"{where}.properties: should be non-empty for OBJECT type")
            for name, sub in properties.items():
                self._check_schema(sub, f"{where}.properties[{name}]")
            for name in schema.get("required", []):
                if name not in properties:
                    raise GeminiError(400, f"{where}.required[{name}]: property is not defined")
        if kind == "array":
            if "items" not in schema:
                raise GeminiError(400, f"{where}.items: missing field")
            self._check_schema(schema["items"], f"{where}.items")
        for index, member in enumerate(schema.get("anyOf", [])):
            self._check_schema(member, f"{where}.anyOf[{index}]")

    def _check(self, model: str, body: dict[str, Any]) -> None:
        allowed = {
            "contents",
            "systemInstruction",
            "tools",
            "toolConfig",
            "generationConfig",
            "safetySettings",
        }
        for key in body:
            if key not in allowed:
                raise GeminiError(
                    400, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
                )
        for t, tool in enumerate(body.get("tools", [])):
            for d, declaration in enumerate(tool.get("functionDeclarations", [])):
                if "parameters" in declaration:
                    self._check_schema(
                        declaration["parameters"],
                        f"tools[{t}].function_declarations[{d}].parameters",
                    )
        thinking = body.get("generationConfig", {}).get("thinkingConfig", {})
        if "thinkingLevel" in thinking and "thinkingBudget" in thinking:
            raise GeminiError(
                400, "You can only set only one of thinking budget and thinking level."
            )
        contents = body.get("contents")
        if not contents:
            raise GeminiError(400, "* GenerateContentRequest.contents: contents is not specified")
        previous = None
        for index, content in enumerate(contents):
            role = content.get("role")
            if role not in ("user", "model"):
                raise GeminiError(400, f"Please use a valid role: user, model. (contents[{index}])")
            if role == previous:
                raise GeminiError(
                    400, "Please ensure that multiturn requests alternate between user and model."
                )
            previous = role
            parts = content.get("parts") or []
            if not parts:
                raise GeminiError(400, f"contents[{index}].parts: must not be empty")
            for part in parts:
                if "text" in part and part["text"] == "":
                    raise GeminiError(
                        400, "Unable to submit request because it has an empty text parameter."
                    )
            calls = [p for p in parts if "functionCall" in p]
            if calls and model.startswith("gemini-3"):
                first = calls[0]
                signature = first.get("thoughtSignature")
                if signature is None:
                    raise GeminiError(
                        400,
                        f"Function call is missing a thought_signature in functionCall parts. "
                        f"This is required for tools to work correctly. contents[{index}].parts[0]",
                    )
                if signature not in self.signatures and signature != SKIP:
                    raise GeminiError(400, "Thought signature is not valid.")
            if calls:
                following = contents[index + 1] if index + 1 < len(contents) else None
                responses = [
                    p for p in (following or {}).get("parts", []) if "functionResponse" in p
                ]
                if len(responses) != len(calls):
                    raise GeminiError(
                        400,
                        "Please ensure that the number of function response parts is equal to the "
                        "number of function call parts of the function call turn.",
                    )
                for call, response in zip(calls, responses, strict=True):
                    if call["functionCall"]["name"] != response["functionResponse"]["name"]:
                        raise GeminiError(400, "function response name does not match the call")

    # -- answers -------------------------------------------------------------------------

    def _reply(self, model: str, body: dict[str, Any]) -> Reply:
        queued = self.replies.get(model)
        if queued:
            return queued.popleft()
        last = body["contents"][-1]["parts"]
        if any("functionResponse" in p for p in last):
            response = next(p for p in last if "functionResponse" in p)["functionResponse"]
            return Reply(text=f"The tool said: {json.dumps(response['response'])}")
        declarations = [d for t in body.get("tools", []) for d in t.get("functionDeclarations", [])]
        mode = body.get("toolConfig", {}).get("functionCallingConfig", {}).get("mode", "AUTO")
        if declarations and mode != "NONE":
            return Reply(call=(declarations[0]["name"], {}))
        text = " ".join(p.get("text", "") for p in last if "text" in p)
        return Reply(text=f"Hello from {model}: {text}")

    def _parts(self, model: str, reply: Reply) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if reply.thought:
            parts.append({"text": reply.thought, "thought": True})
        if reply.text:
            parts.append({"text": reply.text})
        if reply.call:
            part: dict[str, Any] = {"functionCall": {"name": reply.call[0], "args": reply.call[1]}}
            if model.startswith("gemini-3"):
                signature = f"sig-{next(self._counter)}"
                self.signatures.add(signature)
                part["thoughtSignature"] = signature
            parts.append(part)
        return parts

    def _response(
        self, model: str, reply: Reply, parts: list[dict[str, Any]], final: bool
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"modelVersion": model, "responseId": f"resp-{next(self._counter)}"}
        if reply.blocked:
            out["promptFeedback"] = {"blockReason": reply.blocked}
        elif reply.empty_candidate:
            out["candidates"] = [{"finishReason": reply.finish, "index": 0}]
        else:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if final:
                candidate["finishReason"] = reply.finish
            out["candidates"] = [candidate]
        out["usageMetadata"] = {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 3 if reply.thought else 0,
            "totalTokenCount": 18 if reply.thought else 15,
        }
        return out

    async def handle(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["action"].partition(":")
        self.paths.append(request.path_qs)
        try:
            body = await request.json()
        except ValueError:
            return self._error(GeminiError(400, "Invalid JSON payload received."))
        self.seen.append(body)
        key = request.headers.get("x-goog-api-key")
        if self.keys is not None and key not in self.keys:
            return web.json_response(
                {
                    "error": {
                        "code": 400,
                        "message": "API key not valid. Please pass a valid API key.",
                        "status": "INVALID_ARGUMENT",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID",
                                "domain": "googleapis.com",
                            }
                        ],
                    }
                },
                status=400,
            )
        try:
            self._check(model, body)
        except GeminiError as exc:
            return self._error(exc)
        reply = self._reply(model, body)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return web.json_response(
                reply.error or {"error": {"code": reply.status}}, status=reply.status
            )
        parts = self._parts(model, reply)
        if action == "generateContent":
            return web.json_response(self._response(model, reply, parts, final=True))
        if action != "streamGenerateContent" or request.query.get("alt") != "sse":
            return self._error(GeminiError(404, f"unknown action {action}", "NOT_FOUND"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        events = [self._response(model, reply, [p], final=False) for p in parts[:-1]]
        events.append(self._response(model, reply, parts[-1:], final=True))
        events += reply.extra_events
        for event in events:
            await response.write(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
        await response.write_eof()
        return response

    def _error(self, exc: GeminiError) -> web.Response:
        body = {"error": {"code": exc.status, "message": exc.message, "status": exc.state}}
        return web.json_response(body, status=exc.status)


def rate_limited(delay: str = "34s") -> Reply:
    """Google's RESOURCE_EXHAUSTED answer with QuotaFailure and RetryInfo."""
    return Reply(
        status=429,
        error={
            "error": {
                "code": 429,
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {
                                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            }
                        ],
                    },
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
                ],
            }
        },
    )
