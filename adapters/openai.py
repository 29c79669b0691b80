"""OpenAI-compatible upstreams: request building, error reading, answers replayed as SSE chunks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.errors import error_type
from adapters.request import ChatRequest

STREAM_ONLY_FIELDS = ("stream", "stream_options")
# Upstream answers are already OpenAI's shape: bytes pass through untouched.
PASSTHROUGH = True
# Bytes every usage-carrying stream event contains; other events need no parsing for usage.
USAGE_MARKER = b'"usage"'
# A stream that finished with "stop" contains this; others need no parsing for the cache.
STOP_MARKER = re.compile(rb'"finish_reason"\s*:\s*"stop"')


def chat_url(base_url: str | None, upstream_id: str, stream: bool) -> str:
    return f"{base_url}/chat/completions"


def embeddings_url(base_url: str) -> str:
    return base_url + "/embeddings"


def request_headers(api_key: str | None, extra: Mapping[str, str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    headers.update(extra)
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def merge_settings(body: dict[str, Any], settings: Mapping[str, Any]) -> None:
    """Merge a variant's settings into a body in place; nested objects merge key by key."""
    for key, value in settings.items():
        current = body.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            merged = dict(current)
            merge_settings(merged, value)
            body[key] = merged
        else:
            body[key] = value


def quota_family(upstream_id: str) -> str:
    """OpenAI-compatible free tiers (NIM, Zen) count requests per key across models."""
    return "*"


def effective_status(status: int, payload: Any) -> int:
    return status


def build_chat_body(request: ChatRequest) -> dict[str, Any]:
    """The client's body with the upstream model id, the variant's settings merged in and
    `dropParams` removed; every other field is passed on untouched."""
    out = dict(request.body)
    out["model"] = request.upstream_id
    if request.settings:
        merge_settings(out, request.settings)
    for param in request.drop_params:
        out.pop(param, None)
    if not request.stream:
        for param in STREAM_ONLY_FIELDS:
            out.pop(param, None)
    return out


def build_embeddings_body(body: Mapping[str, Any], upstream_id: str) -> dict[str, Any]:
    """The client's embeddings body with the upstream model id; everything else untouched."""
    return {**body, "model": upstream_id}


def read_error(status: int, payload: Any, text: str) -> dict[str, Any]:
    """An upstream error answer (OpenAI shape, NIM's problem+json, or plain text) as
    OpenAI's error object: message, type, code, param."""
    message = None
    code = None
    param = None
    kind = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            code = error.get("code")
            param = error.get("param")
            kind = error.get("type")
        elif isinstance(error, str):
            message = error
        message = message or payload.get("detail") or payload.get("message") or payload.get("title")
    if not isinstance(message, str) or not message:
        message = text.strip()[:500] or f"upstream answered HTTP {status}"
    return {
        "message": message,
        "type": kind if isinstance(kind, str) else error_type(status),
        "code": code if isinstance(code, str | int) else None,
        "param": param if isinstance(param, str) else None,
    }


def completion_to_chunks(
    completion: Mapping[str, Any], include_usage: bool
) -> list[dict[str, Any]]:
    """A non-streaming chat completion as the chunks a streaming answer would have carried:
    role, reasoning, content, tool calls, finish, then usage when asked for."""
    base = {
        "id": completion.get("id", ""),
        "object": "chat.completion.chunk",
        "created": completion.get("created", 0),
        "model": completion.get("model", ""),
    }
    if completion.get("system_fingerprint"):
        base["system_fingerprint"] = completion["system_fingerprint"]
    chunks: list[dict[str, Any]] = []

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunks.append({**base, "choices": [choice]})

    for position, choice in enumerate(completion.get("choices") or []):
        index = choice.get("index", position)
        message = choice.get("message") or {}
        chunk(index, {"role": message.get("role", "assistant"), "content": ""})
        for field in ("reasoning_content", "reasoning"):
            if message.get(field):
                chunk(index, {field: message[field]})
        if message.get("content"):
            chunk(index, {"content": message["content"]})
        if message.get("refusal"):
            chunk(index, {"refusal": message["refusal"]})
        calls = message.get("tool_calls") or []
        if calls:
            chunk(
                index,
                {
                    "tool_calls": [
                        {
                            "index": n,
                            "id": call.get("id"),
                            "type": call.get("type", "function"),
                            "function": call.get("function", {}),
                        }
                        for n, call in enumerate(calls)
                    ]
                },
            )
        chunk(index, {}, choice.get("finish_reason") or "stop")
    if include_usage and completion.get("usage") is not None:
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks


def completion_error(payload: Any) -> dict[str, Any] | None:
    """The error object when a 200 answer carries an error instead of a completion."""
    if isinstance(payload, dict) and "choices" not in payload and payload.get("error"):
        error = payload["error"]
        return error if isinstance(error, dict) else {"message": str(error)}
    return None


def is_answer(payload: Any) -> bool:
    """A chat completion: an object with a `choices` list."""
    return isinstance(payload, dict) and isinstance(payload.get("choices"), list)


def is_embedding_list(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("data"), list)


def usage_tokens(payload: Any) -> tuple[int | None, int | None]:
    """(prompt_tokens, completion_tokens) from a completion or a usage chunk."""
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return None, None
    return usage.get("prompt_tokens"), usage.get("completion_tokens")


def completion_from_chunks(chunks: list[Any]) -> dict[str, Any] | None:
    """The chat completion a stream of chunks adds up to (content, reasoning, tool calls,
    finish reason, usage); None when the chunks are not a chat completion stream."""
    base: dict[str, Any] | None = None
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for chunk in chunks:
        if not isinstance(chunk, dict) or not isinstance(chunk.get("choices"), list):
            return None
        if base is None:
            base = {k: chunk.get(k) for k in ("id", "created", "model")}
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            index = choice.get("index", 0)
            state = choices.setdefault(
                index, {"content": [], "reasoning": [], "calls": {}, "finish": None}
            )
            delta = choice.get("delta") or {}
            if delta.get("content"):
                state["content"].append(delta["content"])
            for field in ("reasoning_content", "reasoning"):
                if isinstance(delta.get(field), str):
                    state["reasoning"].append(delta[field])
            for call in delta.get("tool_calls") or []:
                slot = state["calls"].setdefault(
                    call.get("index", 0),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                state["finish"] = choice["finish_reason"]
    if base is None:
        return None
    out = []
    for index in sorted(choices):
        state = choices[index]
        message: dict[str, Any] = {"role": "assistant", "content": "".join(state["content"])}
        if state["reasoning"]:
            message["reasoning_content"] = "".join(state["reasoning"])
        if state["calls"]:
            message["tool_calls"] = [state["calls"][n] for n in sorted(state["calls"])]
        out.append(
            {"index": index, "message": message, "logprobs": None, "finish_reason": state["finish"]}
        )
    completion = {**base, "object": "chat.completion", "choices": out}
    if usage is not None:
        completion["usage"] = usage
    return completion
