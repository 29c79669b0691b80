"""Gemini providers end to end: the openai SDK through the proxy to a fake Gemini API that
enforces Gemini's constraints."""

from __future__ import annotations

import base64
import json

import openai
import pytest
from aiohttp import web

from tests import rawhttp as http
from tests.conftest import CLIENT_FIXTURES, load_fixture
from tests.fakes.gemini_upstream import SKIP, FakeGemini, Reply, rate_limited

KEYS = ["AIza-test-key-one-000000000000000001", "AIza-test-key-two-000000000000000002"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a file",
            "parameters": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {"filePath": {"type": "string", "description": "path"}},
                "required": ["filePath"],
                "additionalProperties": False,
            },
        },
    }
]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def google(loop_thread):
    fake = FakeGemini(keys=set(KEYS))
    fake.url = loop_thread.serve(fake.app)
    return fake


def gemini_config(fake, keys=KEYS, **extra):
    return {
        "providers": {
            "google": {
                "type": "gemini",
                "baseURL": fake.url + "/v1beta",
                "apiKeys": keys,
                "models": {
                    "gemini-3-flash": {
                        "id": "gemini-3-flash-preview",
                        "limit": {"context": 1048576, "output": 65536},
                        "variants": {
                            "minimal": {"thinkingLevel": "minimal"},
                            "high": {"thinkingLevel": "high"},
                        },
                    },
                    "gemini-2.5-flash": {},
                },
                **extra,
            }
        }
    }


def client(proxy):
    return openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_agent_loop_on_gemini_3_with_thought_signatures(google, start_proxy, stream):
    proxy = start_proxy(gemini_config(google))
    sdk = client(proxy)
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is in notes.txt?"},
    ]
    google.queue(
        "gemini-3-flash-preview",
        Reply(call=("read", {"filePath": "notes.txt"}), thought="I should read it"),
    )
    if stream:
        chunks = list(
            sdk.chat.completions.create(
                model="google/gemini-3-flash:high", messages=messages, tools=TOOLS, stream=True
            )
        )
        calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        finish = [
            c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
        ]
        reasoning = "".join(
            getattr(c.choices[0].delta, "reasoning_content", None) or ""
            for c in chunks
            if c.choices
        )
        assert google.paths[-1].endswith(":streamGenerateContent?alt=sse")
    else:
        answer = sdk.chat.completions.create(
            model="google/gemini-3-flash:high", messages=messages, tools=TOOLS
        )
        calls = answer.choices[0].message.tool_calls
        finish = [answer.choices[0].finish_reason]
        reasoning = answer.choices[0].message.model_extra.get("reasoning_content")
    assert finish == ["tool_calls"]
    assert reasoning == "I should read it"
    call = calls[0]
    assert call.id.startswith("call_") and call.function.name == "read"
    assert json.loads(call.function.arguments) == {"filePath": "notes.txt"}
    sent = google.seen[-1]
    assert sent["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "high",
        "includeThoughts": True,
    }
    assert "additionalProperties" not in json.dumps(sent["tools"])
    # OpenCode echoes only id, type and function: the signature must come from the proxy.
    messages += [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "read", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "SECRET-WORD: pelican"},
    ]
    final = sdk.chat.completions.create(
        model="google/gemini-3-flash:high", messages=messages, tools=TOOLS, stream=stream
    )
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in final if c.choices)
    else:
        text = final.choices[0].message.content
    assert "pelican" in text
    replayed = google.seen[-1]["contents"][1]["parts"][0]
    assert replayed["thoughtSignature"].startswith("sig-"), (
        "the real signature, not the placeholder"
    )
    assert google.seen[-1]["contents"][2]["parts"][0]["functionResponse"]["name"] == "read"


def test_signatures_survive_a_restart(google, start_proxy, loop_thread):
    proxy = start_proxy(gemini_config(google))
    google.queue("gemini-3-flash-preview", Reply(call=("read", {"filePath": "a"})))
    answer = client(proxy).chat.completions.create(
        model="google/gemini-3-flash", messages=[{"role": "user", "content": "go"}], tools=TOOLS
    )
    call_id = answer.choices[0].message.tool_calls[0].id
    loop_thread.run(loop_thread.runners.pop().cleanup())
    restarted = start_proxy(gemini_config(google))
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "read", "arguments": '{"filePath": "a"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "done"},
    ]
    client(restarted).chat.completions.create(
        model="google/gemini-3-flash", messages=messages, tools=TOOLS
    )
    assert google.seen[-1]["contents"][1]["parts"][0]["thoughtSignature"].startswith("sig-")


@pytest.mark.parametrize("name", CLIENT_FIXTURES)
def test_client_fixtures_are_accepted_by_gemini(google, start_proxy, name):
    proxy = start_proxy(gemini_config(google))
    body = dict(load_fixture(name)["body"], model="google/gemini-3-flash")
    chunks = list(client(proxy).chat.completions.create(**body))
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    if name.endswith("tool-result-turn.json"):
        assert google.seen[-1]["contents"][1]["parts"][0]["thoughtSignature"] == SKIP


def test_429_with_retry_info_cools_that_key_for_that_model(google, start_proxy):
    proxy = start_proxy(gemini_config(google))
    google.queue("gemini-3-flash-preview", rate_limited("34s"))
    sdk = client(proxy)
    sdk.chat.completions.create(
        model="google/gemini-3-flash", messages=[{"role": "user", "content": "a"}]
    )
    events = [e for e in proxy.log_events() if e["event"] == "account_cooldown"]
    assert [(e["family"], e["seconds"]) for e in events] == [("gemini-3-flash-preview", 34)]
    cooled = events[0]["account"]
    # the other model is still served by the cooled key's pool; the cooled model by the other key
    sdk.chat.completions.create(
        model="google/gemini-2.5-flash", messages=[{"role": "user", "content": "b"}]
    )
    google.queue("gemini-3-flash-preview", rate_limited("50s"))
    with pytest.raises(openai.RateLimitError) as exc:
        sdk.chat.completions.create(
            model="google/gemini-3-flash", messages=[{"role": "user", "content": "c"}]
        )
    assert exc.value.response.headers["Retry-After"] in ("33", "34")
    assert (
        cooled != [e for e in proxy.log_events() if e["event"] == "account_cooldown"][-1]["account"]
    )


def test_invalid_key_is_unauthorized_and_disabled(google, start_proxy):
    proxy = start_proxy(
        gemini_config(google, keys=["AIza-wrong-key-0000000000000000000000", KEYS[0]])
    )
    sdk = client(proxy)
    for _ in range(3):
        assert sdk.chat.completions.create(
            model="google/gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
        ).choices
    disabled = [e for e in proxy.log_events() if e["event"] == "account_disabled"]
    assert [e["reason"] for e in disabled] == ["unauthorized"]
    assert "AIza-wrong-key-0000000000000000000000" not in proxy.log_text


def test_gemini_error_shape_becomes_openai_error(google, start_proxy):
    proxy = start_proxy(gemini_config(google))
    google.queue(
        "gemini-2.5-flash",
        Reply(
            status=400,
            error={
                "error": {
                    "code": 400,
                    "message": "Request contains an invalid argument.",
                    "status": "INVALID_ARGUMENT",
                }
            },
        ),
    )
    with pytest.raises(openai.BadRequestError) as exc:
        client(proxy).chat.completions.create(
            model="google/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}]
        )
    assert exc.value.body["message"] == "Request contains an invalid argument."
    assert exc.value.body["code"] == "INVALID_ARGUMENT"
    assert exc.value.body["provider"] == "google"


def test_bad_tool_arguments_are_a_clear_400(google, start_proxy):
    proxy = start_proxy(gemini_config(google))
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "read", "arguments": "{not json"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "x"},
    ]
    with pytest.raises(openai.BadRequestError) as exc:
        client(proxy).chat.completions.create(model="google/gemini-2.5-flash", messages=messages)
    assert (
        "messages[1].tool_calls[0].function.arguments is not valid JSON"
        in exc.value.body["message"]
    )
    assert google.seen == []


def test_blocked_prompt_and_usage_with_include_usage(google, start_proxy):
    proxy = start_proxy(gemini_config(google))
    google.queue("gemini-2.5-flash", Reply(blocked="PROHIBITED_CONTENT"))
    answer = client(proxy).chat.completions.create(
        model="google/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}]
    )
    assert answer.choices[0].finish_reason == "content_filter"
    assert answer.usage.total_tokens == 15
    google.queue("gemini-2.5-flash", Reply(text="ok", thought="hmm"))
    chunks = list(
        client(proxy).chat.completions.create(
            model="google/gemini-2.5-flash",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert (
        chunks[-1].choices == []
        and chunks[-1].usage.completion_tokens_details.reasoning_tokens == 3
    )


def test_stream_ending_without_finish_reason_is_an_error(google, start_proxy):
    proxy = start_proxy(gemini_config(google))
    google.queue("gemini-2.5-flash", Reply(text="partial", finish=None))
    with pytest.raises(openai.APIError, match="no finish reason came"):
        list(
            client(proxy).chat.completions.create(
                model="google/gemini-2.5-flash",
                messages=[{"role": "user", "content": "x"}],
                stream=True,
            )
        )


def test_images_inlined_from_data_and_http_urls(google, start_proxy, loop_thread):
    images = web.Application()

    async def cat(request):
        return web.Response(body=PNG, content_type="image/png")

    images.router.add_get("/cat.png", cat)
    images_url = loop_thread.serve(images)
    proxy = start_proxy(gemini_config(google))
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": images_url + "/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/AA=="}},
    ]
    client(proxy).chat.completions.create(
        model="google/gemini-2.5-flash", messages=[{"role": "user", "content": content}]
    )
    parts = google.seen[-1]["contents"][0]["parts"]
    assert parts[1] == {
        "inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}
    }
    assert parts[2] == {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/AA=="}}
    content[1]["image_url"]["url"] = images_url + "/missing.png"
    with pytest.raises(openai.BadRequestError, match="could not be fetched: HTTP 404"):
        client(proxy).chat.completions.create(
            model="google/gemini-2.5-flash", messages=[{"role": "user", "content": content}]
        )


def test_models_list_gemini_with_variants(google, start_proxy):
    proxy = start_proxy(gemini_config(google))
    _, _, body = http.get(proxy.base_url + "/models")
    data = {m["id"]: m for m in json.loads(body)["data"]}
    assert data["google/gemini-3-flash"]["variants"] == ["minimal", "high"]
    assert data["google/gemini-3-flash"]["limit"] == {"context": 1048576, "output": 65536}
    assert "google/gemini-3-flash:high" in data and "google/gemini-2.5-flash" in data
