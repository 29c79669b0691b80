"""Table-driven tests for adapters.gemini: each rule with its input and expected output."""

from __future__ import annotations

import json

import pytest

from adapters import gemini
from adapters.request import ChatRequest, RequestError

READ_TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read a file",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    },
}


def build(body, model="gemini-2.5-flash", settings=None, images=None, signatures=None, drop=()):
    request = ChatRequest(body, model, settings or {}, drop, False, images or {}, signatures or {})
    return gemini.build_chat_body(request)


def call(call_id, name="read", arguments='{"path": "a"}'):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


@pytest.mark.parametrize(
    ("messages", "system", "contents"),
    [
        pytest.param(
            [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "use tools"}]},
                {"role": "user", "content": "hi"},
            ],
            [{"text": "be brief"}, {"text": "use tools"}],
            [{"role": "user", "parts": [{"text": "hi"}]}],
            id="system and developer -> systemInstruction",
        ),
        pytest.param(
            [
                {"role": "user", "content": "a"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "b"}, {"type": "text", "text": ""}],
                },
                {"role": "assistant", "content": "c"},
                {"role": "assistant", "content": ""},
            ],
            [],
            [
                {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
                {"role": "model", "parts": [{"text": "c"}]},
            ],
            id="same-role turns merged; empty text never sent",
        ),
        pytest.param(
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [call("c1"), call("c2", "ls", "{}")],
                },
                {"role": "tool", "tool_call_id": "c2", "content": "dir"},
                {"role": "tool", "tool_call_id": "c1", "content": '{"text": "body"}'},
                {"role": "user", "content": "thanks"},
            ],
            [],
            [
                {"role": "user", "parts": [{"text": "go"}]},
                {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "read", "args": {"path": "a"}}},
                        {"functionCall": {"name": "ls", "args": {}}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "read", "response": {"text": "body"}}},
                        {"functionResponse": {"name": "ls", "response": {"content": "dir"}}},
                        {"text": "thanks"},
                    ],
                },
            ],
            id="tool results together, in call order, names from the calls",
        ),
        pytest.param(
            [
                {"role": "user", "content": "go"},
                {"role": "assistant", "tool_calls": [call("c1"), call("c2")]},
                {"role": "tool", "tool_call_id": "c1", "content": "x"},
            ],
            [],
            [
                {"role": "user", "parts": [{"text": "go"}]},
                {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "read", "args": {"path": "a"}}},
                        {"functionCall": {"name": "read", "args": {"path": "a"}}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "read", "response": {"content": "x"}}},
                        {
                            "functionResponse": {
                                "name": "read",
                                "response": {"error": "the client sent no result for this call"},
                            }
                        },
                    ],
                },
            ],
            id="a missing result still gets one response per call",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
                    ],
                }
            ],
            [],
            [
                {
                    "role": "user",
                    "parts": [
                        {"text": "see"},
                        {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}},
                    ],
                }
            ],
            id="data URL image -> inlineData",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}],
                }
            ],
            [],
            [
                {
                    "role": "user",
                    "parts": [{"inlineData": {"mimeType": "image/png", "data": "UE5H"}}],
                }
            ],
            id="fetched http image -> inlineData",
        ),
    ],
)
def test_messages(messages, system, contents):
    body = build({"messages": messages}, images={"https://x/cat.png": ("image/png", "UE5H")})
    assert body.get("systemInstruction", {"parts": []})["parts"] == system
    assert body["contents"] == contents


@pytest.mark.parametrize(
    ("model", "signatures", "expected"),
    [
        ("gemini-3-flash-preview", {"c1": "sig-real"}, ["sig-real", None]),
        ("gemini-3-flash-preview", {}, [gemini.SKIP_SIGNATURE, None]),
        ("gemini-3-flash-preview", {"c2": "sig-2"}, [gemini.SKIP_SIGNATURE, "sig-2"]),
        ("gemini-2.5-flash", {}, [None, None]),
    ],
)
def test_thought_signatures_on_replayed_calls(model, signatures, expected):
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [call("c1"), call("c2")]},
        {"role": "tool", "tool_call_id": "c1", "content": "x"},
        {"role": "tool", "tool_call_id": "c2", "content": "y"},
    ]
    parts = build({"messages": messages}, model=model, signatures=signatures)["contents"][1][
        "parts"
    ]
    assert [p.get("thoughtSignature") for p in parts] == expected


@pytest.mark.parametrize(
    ("messages", "message", "param"),
    [
        (
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "tool_calls": [call("c1", arguments="{oops")]},
            ],
            "messages[1].tool_calls[0].function.arguments is not valid JSON",
            "messages[1].tool_calls[0]",
        ),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "tool_calls": [call("c1", arguments="[1]")]},
            ],
            "must be a JSON object",
            "messages[1].tool_calls[0]",
        ),
        (
            [{"role": "tool", "tool_call_id": "nope", "content": "x"}],
            "tool_call_id 'nope' does not match",
            "messages[0].tool_call_id",
        ),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
            "content parts of type 'input_audio' are not supported",
            "messages[0].content[0]",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}],
            "must be a data: URL or an http(s) URL",
            "messages[0].content[0]",
        ),
        ([{"role": "wizard", "content": "x"}], "role 'wizard' is not one of", "messages[0].role"),
    ],
)
def test_request_errors(messages, message, param):
    with pytest.raises(RequestError) as exc:
        build({"messages": messages})
    assert message in exc.value.message
    assert exc.value.param == param


def test_tools_and_choice():
    body = build(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [
                READ_TOOL,
                {
                    "type": "function",
                    "function": {
                        "name": "noargs",
                        "parameters": {"type": "object", "properties": {}},
                    },
                },
            ],
            "tool_choice": "required",
        }
    )
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "read",
                    "description": "Read a file",
                    "parameters": {
                        "type": "object",
                        "properties": {"path": {"type": "string"}},
                        "required": ["path"],
                    },
                },
                {"name": "noargs"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", {"functionCallingConfig": {"mode": "NONE"}}),
        ("auto", {"functionCallingConfig": {"mode": "AUTO"}}),
        ("required", {"functionCallingConfig": {"mode": "ANY"}}),
        (
            {"type": "function", "function": {"name": "read"}},
            {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["read"]}},
        ),
        (None, None),
    ],
)
def test_tool_choice(choice, expected):
    assert gemini.convert_tool_choice(choice) == expected


def test_bad_tool_name():
    tool = {"type": "function", "function": {"name": "9 lives", "parameters": {}}}
    with pytest.raises(RequestError, match="Gemini needs a letter"):
        build({"messages": [{"role": "user", "content": "x"}], "tools": [tool]})


@pytest.mark.parametrize(
    ("fields", "model", "settings", "expected"),
    [
        (
            {
                "max_tokens": 100,
                "temperature": 0.2,
                "top_p": 0.9,
                "top_k": 40,
                "stop": "END",
                "n": 2,
                "seed": 7,
                "presence_penalty": 0.1,
                "frequency_penalty": 0.3,
            },
            "gemini-2.5-flash",
            {},
            {
                "maxOutputTokens": 100,
                "temperature": 0.2,
                "topP": 0.9,
                "topK": 40,
                "stopSequences": ["END"],
                "candidateCount": 2,
                "seed": 7,
                "presencePenalty": 0.1,
                "frequencyPenalty": 0.3,
            },
        ),
        (
            {"max_completion_tokens": 50, "max_tokens": 9, "stop": ["a", "b"]},
            "gemini-2.5-flash",
            {},
            {"maxOutputTokens": 50, "stopSequences": ["a", "b"]},
        ),
        (
            {"response_format": {"type": "json_object"}},
            "gemini-2.5-flash",
            {},
            {"responseMimeType": "application/json"},
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "x",
                        "schema": {
                            "type": "object",
                            "properties": {"a": {"type": "integer"}},
                            "additionalProperties": False,
                        },
                    },
                }
            },
            "gemini-2.5-flash",
            {},
            {
                "responseMimeType": "application/json",
                "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
            },
        ),
        (
            {"reasoning_effort": "high"},
            "gemini-3-flash-preview",
            {},
            {"thinkingConfig": {"thinkingLevel": "high", "includeThoughts": True}},
        ),
        (
            {"reasoning_effort": "low"},
            "gemini-2.5-flash",
            {},
            {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}},
        ),
        (
            {"reasoning_effort": "none"},
            "gemini-2.5-flash",
            {},
            {"thinkingConfig": {"thinkingBudget": 0, "includeThoughts": False}},
        ),
        (
            {"reasoning_effort": "none"},
            "gemini-3-pro-preview",
            {},
            {"thinkingConfig": {"thinkingLevel": "minimal", "includeThoughts": True}},
        ),
        (
            {"reasoning_effort": "low"},
            "gemini-3-flash-preview",
            {"thinkingLevel": "minimal"},
            {"thinkingConfig": {"thinkingLevel": "minimal", "includeThoughts": True}},
        ),
        (
            {},
            "gemini-3-flash-preview",
            {"thinkingBudget": 8000},
            {"thinkingConfig": {"thinkingLevel": "medium", "includeThoughts": True}},
        ),
        (
            {},
            "gemini-2.5-pro",
            {"thinkingLevel": "high"},
            {"thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": True}},
        ),
        (
            {},
            "gemini-2.5-pro",
            {"thinkingBudget": -1, "includeThoughts": False, "temperature": 1.0},
            {
                "temperature": 1.0,
                "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": False},
            },
        ),
        ({}, "gemini-2.5-flash", {}, None),
    ],
)
def test_generation_config(fields, model, settings, expected):
    body = build(
        {"messages": [{"role": "user", "content": "x"}], **fields}, model=model, settings=settings
    )
    assert body.get("generationConfig") == expected


def test_bad_reasoning_effort():
    with pytest.raises(RequestError, match="'reasoning_effort' must be one of"):
        build({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"})


USAGE = {
    "promptTokenCount": 10,
    "candidatesTokenCount": 5,
    "thoughtsTokenCount": 3,
    "cachedContentTokenCount": 4,
    "totalTokenCount": 18,
}


@pytest.mark.parametrize(
    ("response", "message", "finish"),
    [
        (
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": "Hel"}, {"text": "lo"}]},
                        "finishReason": "STOP",
                    }
                ]
            },
            {"role": "assistant", "content": "Hello"},
            "stop",
        ),
        (
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": "plan", "thought": True}, {"text": "42"}]},
                        "finishReason": "MAX_TOKENS",
                    }
                ]
            },
            {"role": "assistant", "content": "42", "reasoning_content": "plan"},
            "length",
        ),
        (
            {
                "candidates": [
                    {
                        "content": {
                            "parts": [
                                {
                                    "functionCall": {"name": "read", "args": {"path": "a"}},
                                    "thoughtSignature": "sig-1",
                                }
                            ]
                        },
                        "finishReason": "STOP",
                    }
                ]
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_p1",
                        "type": "function",
                        "function": {"name": "read", "arguments": '{"path": "a"}'},
                    }
                ],
            },
            "tool_calls",
        ),
        (
            {"candidates": [{"content": {"parts": [{"text": "no"}]}, "finishReason": "SAFETY"}]},
            {"role": "assistant", "content": "no"},
            "content_filter",
        ),
        (
            {"candidates": [{"finishReason": "RECITATION"}]},
            {"role": "assistant", "content": ""},
            "content_filter",
        ),
        (
            {"candidates": [{"content": {}, "finishReason": "STOP"}]},
            {"role": "assistant", "content": ""},
            "stop",
        ),
        (
            {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}},
            {"role": "assistant", "content": ""},
            "content_filter",
        ),
        (
            {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "BLOCKLIST"}]},
            {"role": "assistant", "content": "x"},
            "content_filter",
        ),
        (
            {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "SPII"}]},
            {"role": "assistant", "content": "x"},
            "content_filter",
        ),
    ],
)
def test_completion_from_response(response, message, finish):
    completion, _ = gemini.completion_from_response(
        {
            **response,
            "usageMetadata": USAGE,
            "responseId": "r1",
            "modelVersion": "gemini-3-flash-preview",
        },
        "m",
        "p",
        99,
    )
    assert completion["choices"][0]["message"] == message
    assert completion["choices"][0]["finish_reason"] == finish
    assert (completion["id"], completion["model"], completion["created"]) == (
        "chatcmpl-r1",
        "gemini-3-flash-preview",
        99,
    )
    assert completion["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 8,
        "total_tokens": 18,
        "completion_tokens_details": {"reasoning_tokens": 3},
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_signatures_recorded_by_call_id():
    response = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"functionCall": {"name": "a", "args": {}}, "thoughtSignature": "sig-a"},
                        {"functionCall": {"name": "b", "args": {}}},
                    ]
                },
                "finishReason": "STOP",
            }
        ]
    }
    completion, signatures = gemini.completion_from_response(response, "m", "x", 1)
    ids = [c["id"] for c in completion["choices"][0]["message"]["tool_calls"]]
    assert ids == ["call_x1", "call_x2"]
    assert signatures == {"call_x1": "sig-a"}


def test_stream_translation():
    translator = gemini.StreamTranslator("gemini-3-flash-preview", "s", 5, include_usage=True)
    events = [
        {
            "responseId": "r9",
            "candidates": [{"content": {"parts": [{"text": "think", "thought": True}]}}],
        },
        {"candidates": [{"content": {"parts": [{"text": "Hi "}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "parts": [
                            {
                                "functionCall": {"name": "read", "args": {"p": 1}},
                                "thoughtSignature": "s1",
                            },
                            {"functionCall": {"name": "ls", "args": {}}},
                        ]
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": USAGE,
        },
    ]
    chunks = [c for e in events for c in translator.feed(e)] + translator.finish()
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "think"},
        {"content": "Hi "},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_s1",
                    "type": "function",
                    "function": {"name": "read", "arguments": '{"p": 1}'},
                }
            ]
        },
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_s2",
                    "type": "function",
                    "function": {"name": "ls", "arguments": "{}"},
                }
            ]
        },
        {},
        None,
    ]
    assert chunks[5]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[6]["usage"]["completion_tokens"] == 8 and chunks[6]["choices"] == []
    assert {c["id"] for c in chunks} == {"chatcmpl-r9"}
    assert translator.finished and translator.signatures == {"call_s1": "s1"}


def test_stream_without_usage_and_blocked():
    translator = gemini.StreamTranslator("m", "s", 5, include_usage=False)
    chunks = translator.feed({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": USAGE})
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "content_filter"]
    assert translator.finish() == []


@pytest.mark.parametrize(
    ("status", "payload", "expected_status", "expected"),
    [
        (
            429,
            {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
            429,
            {
                "message": "quota",
                "type": "rate_limit_error",
                "code": "RESOURCE_EXHAUSTED",
                "param": None,
            },
        ),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid.",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                        }
                    ],
                }
            },
            401,
            {
                "message": "API key not valid.",
                "type": "invalid_request_error",
                "code": "INVALID_ARGUMENT",
                "param": None,
            },
        ),
        (
            403,
            [{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}],
            403,
            {
                "message": "denied",
                "type": "permission_error",
                "code": "PERMISSION_DENIED",
                "param": None,
            },
        ),
        (
            503,
            None,
            503,
            {
                "message": "upstream answered HTTP 503",
                "type": "api_error",
                "code": None,
                "param": None,
            },
        ),
    ],
)
def test_errors(status, payload, expected_status, expected):
    assert gemini.effective_status(status, payload) == expected_status
    assert gemini.read_error(status, payload, "") == expected


def test_urls_and_headers():
    assert (
        gemini.chat_url(None, "gemini-2.5-flash", False)
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert (
        gemini.chat_url("http://127.0.0.1:9/v1beta", "g", True)
        == "http://127.0.0.1:9/v1beta/models/g:streamGenerateContent?alt=sse"
    )
    assert gemini.request_headers("AIza-test", {}) == {
        "Content-Type": "application/json",
        "x-goog-api-key": "AIza-test",
    }
    assert gemini.quota_family("gemini-3-flash-preview") == "gemini-3-flash-preview"


def test_image_urls():
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://a/x.png"}},
                {"type": "image_url", "image_url": "data:image/png;base64,AA"},
            ],
        }
    ]
    assert gemini.image_urls(messages) == ["https://a/x.png"]
    assert json.dumps(gemini.image_urls([])) == "[]"
