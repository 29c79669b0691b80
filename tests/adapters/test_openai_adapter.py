"""Table-driven tests for adapters.openai: every rule with its input and expected output."""

from __future__ import annotations

import pytest

from adapters import openai as adapter
from adapters.request import ChatRequest

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "upstream_id", "settings", "drop", "upstream_stream", "expected"),
    [
        pytest.param(
            {"model": "alias", "messages": MESSAGES, "foo": {"bar": 1}, "max_tokens": 9},
            "qwen/qwen3.5-397b-a17b",
            {},
            [],
            True,
            {
                "model": "qwen/qwen3.5-397b-a17b",
                "messages": MESSAGES,
                "foo": {"bar": 1},
                "max_tokens": 9,
            },
            id="unknown fields pass through untouched; model replaced",
        ),
        pytest.param(
            {"model": "a", "messages": MESSAGES, "reasoning": {"effort": "low"}, "top_k": 3},
            "m",
            {},
            ["reasoning", "not-present"],
            True,
            {"model": "m", "messages": MESSAGES, "top_k": 3},
            id="dropParams removed; absent ones ignored",
        ),
        pytest.param(
            {
                "model": "a",
                "messages": MESSAGES,
                "chat_template_kwargs": {"a": 1},
                "temperature": 1,
            },
            "m",
            {"chat_template_kwargs": {"thinking": True}, "temperature": 0.2},
            [],
            True,
            {
                "model": "m",
                "messages": MESSAGES,
                "chat_template_kwargs": {"a": 1, "thinking": True},
                "temperature": 0.2,
            },
            id="variant settings merge, nested objects key by key",
        ),
        pytest.param(
            {"model": "a", "messages": MESSAGES, "reasoning_effort": "low"},
            "m",
            {"reasoning_effort": "high"},
            ["reasoning_effort"],
            True,
            {"model": "m", "messages": MESSAGES},
            id="dropParams win over variant settings",
        ),
        pytest.param(
            {
                "model": "a",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            "m",
            {},
            [],
            False,
            {"model": "m", "messages": MESSAGES},
            id="non-streaming upstream: stream fields removed",
        ),
        pytest.param(
            {
                "model": "a",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            "m",
            {},
            [],
            True,
            {
                "model": "m",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            id="streaming upstream: stream fields kept",
        ),
    ],
)
def test_build_chat_body(body, upstream_id, settings, drop, upstream_stream, expected):
    original = {k: v for k, v in body.items()}
    request = ChatRequest(body, upstream_id, settings, drop, upstream_stream)
    assert adapter.build_chat_body(request) == expected
    assert body == original, "the client's body is not modified in place"


@pytest.mark.parametrize(
    ("status", "payload", "text", "expected"),
    [
        pytest.param(
            400,
            {
                "error": {
                    "message": "bad tool",
                    "type": "invalid_request_error",
                    "code": "x",
                    "param": "tools",
                }
            },
            "",
            {"message": "bad tool", "type": "invalid_request_error", "code": "x", "param": "tools"},
            id="OpenAI error shape kept",
        ),
        pytest.param(
            429,
            {"status": 429, "title": "Too Many Requests", "detail": "Rate limit exceeded"},
            "",
            {
                "message": "Rate limit exceeded",
                "type": "rate_limit_error",
                "code": None,
                "param": None,
            },
            id="NIM problem+json detail",
        ),
        pytest.param(
            500,
            {"error": "model crashed"},
            "",
            {"message": "model crashed", "type": "api_error", "code": None, "param": None},
            id="error as a string (Ollama)",
        ),
        pytest.param(
            502,
            None,
            "<html>Bad Gateway</html>",
            {
                "message": "<html>Bad Gateway</html>",
                "type": "api_error",
                "code": None,
                "param": None,
            },
            id="not JSON: the text",
        ),
        pytest.param(
            503,
            None,
            "",
            {
                "message": "upstream answered HTTP 503",
                "type": "api_error",
                "code": None,
                "param": None,
            },
            id="empty body",
        ),
        pytest.param(
            401,
            {"error": {"message": "bad key", "code": 401}},
            "",
            {"message": "bad key", "type": "authentication_error", "code": 401, "param": None},
            id="missing type from status",
        ),
    ],
)
def test_read_error(status, payload, text, expected):
    assert adapter.read_error(status, payload, text) == expected


BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 5, "model": "m"}


def _chunk(delta, finish=None, index=0):
    return {
        **BASE,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


@pytest.mark.parametrize(
    ("message", "finish", "include_usage", "expected"),
    [
        pytest.param(
            {"role": "assistant", "content": "Hello"},
            "stop",
            False,
            [
                _chunk({"role": "assistant", "content": ""}),
                _chunk({"content": "Hello"}),
                _chunk({}, "stop"),
            ],
            id="text",
        ),
        pytest.param(
            {"role": "assistant", "content": "Hello"},
            "stop",
            True,
            [
                _chunk({"role": "assistant", "content": ""}),
                _chunk({"content": "Hello"}),
                _chunk({}, "stop"),
                {**BASE, "choices": [], "usage": USAGE},
            ],
            id="usage chunk when include_usage",
        ),
        pytest.param(
            {"role": "assistant", "content": "42", "reasoning_content": "think"},
            "length",
            False,
            [
                _chunk({"role": "assistant", "content": ""}),
                _chunk({"reasoning_content": "think"}),
                _chunk({"content": "42"}),
                _chunk({}, "length"),
            ],
            id="reasoning then content; finish reason kept",
        ),
        pytest.param(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "read", "arguments": "{}"},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "ls", "arguments": '{"a":1}'},
                    },
                ],
            },
            "tool_calls",
            False,
            [
                _chunk({"role": "assistant", "content": ""}),
                _chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "read", "arguments": "{}"},
                            },
                            {
                                "index": 1,
                                "id": "call_2",
                                "type": "function",
                                "function": {"name": "ls", "arguments": '{"a":1}'},
                            },
                        ]
                    }
                ),
                _chunk({}, "tool_calls"),
            ],
            id="tool calls as complete deltas with index",
        ),
        pytest.param(
            {"role": "assistant", "content": ""},
            None,
            False,
            [_chunk({"role": "assistant", "content": ""}), _chunk({}, "stop")],
            id="empty answer, missing finish reason",
        ),
    ],
)
def test_completion_to_chunks(message, finish, include_usage, expected):
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 5,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": USAGE,
    }
    assert adapter.completion_to_chunks(completion, include_usage) == expected


def test_completion_to_chunks_several_choices():
    completion = {
        "id": "chatcmpl-1",
        "created": 5,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"},
            {"index": 1, "message": {"role": "assistant", "content": "b"}, "finish_reason": "stop"},
        ],
    }
    chunks = adapter.completion_to_chunks(completion, include_usage=True)
    assert [c["choices"][0]["index"] for c in chunks] == [0, 0, 0, 1, 1, 1]
    assert chunks[4]["choices"][0]["delta"] == {"content": "b"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"error": {"message": "overloaded"}}, {"message": "overloaded"}),
        ({"error": "overloaded"}, {"message": "overloaded"}),
        ({"choices": [], "error": None}, None),
        ({"choices": [{"index": 0}]}, None),
        ([1, 2], None),
    ],
)
def test_completion_error(payload, expected):
    assert adapter.completion_error(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"usage": {"prompt_tokens": 7, "completion_tokens": 2}}, (7, 2)),
        ({"usage": None}, (None, None)),
        ({"choices": []}, (None, None)),
        ("text", (None, None)),
    ],
)
def test_usage_tokens(payload, expected):
    assert adapter.usage_tokens(payload) == expected


@pytest.mark.parametrize(
    ("key", "extra", "expected"),
    [
        (
            "nvapi-abc",
            {},
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": "Bearer nvapi-abc",
            },
        ),
        (
            None,
            {"X-Title": "t"},
            {"Content-Type": "application/json", "Accept": "application/json", "X-Title": "t"},
        ),
    ],
)
def test_request_headers(key, extra, expected):
    assert adapter.request_headers(key, extra) == expected


def test_urls():
    assert adapter.chat_url("http://h/v1", "m", True) == "http://h/v1/chat/completions"
    assert adapter.embeddings_url("http://h/v1") == "http://h/v1/embeddings"
