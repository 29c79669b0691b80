"""Chat completions through the proxy, driven with the openai SDK against a fake upstream."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import openai
import pytest

from tests.conftest import CLIENT_FIXTURES, load_fixture, openai_provider
from tests.fakes.openai_upstream import FakeOpenAI, Script

HELLO = [{"role": "user", "content": "hi"}]


def one_provider(fake, **extra):
    models = extra.pop("models", {"m": {"id": "real-m"}})
    return {"providers": {"up": openai_provider(fake.url, models=models, **extra)}}


def client_for(proxy, **kwargs):
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0, **kwargs)


def test_non_stream_round_trip_with_headers(fake, start_proxy):
    proxy = start_proxy(one_provider(fake))
    raw = client_for(proxy).chat.completions.with_raw_response.create(model="up/m", messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from real-m: hi"
    assert completion.usage.prompt_tokens == 1
    assert raw.headers["x-switchyard-provider"] == "up"
    assert raw.headers["x-switchyard-model"] == "up/m"
    assert raw.headers["x-switchyard-cache"] == "miss"
    assert raw.headers["x-request-id"].startswith("req_")
    assert "x-switchyard-fallback" not in raw.headers
    assert fake.seen[0].body["model"] == "real-m"


def test_stream_round_trip(fake, start_proxy):
    proxy = start_proxy(one_provider(fake))
    stream = client_for(proxy).chat.completions.create(
        model="m", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from real-m: hi"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 5
    assert fake.seen[0].body["stream"] is True


async def test_async_client_stream_and_non_stream(fake, start_proxy):
    proxy = start_proxy(one_provider(fake))
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0)
    completion = await client.chat.completions.create(model="up/m", messages=HELLO)
    assert completion.choices[0].message.content == "Hello from real-m: hi"
    stream = await client.chat.completions.create(model="up/m", messages=HELLO, stream=True)
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts) == "Hello from real-m: hi"
    await client.close()


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(fake, start_proxy, stream):
    proxy = start_proxy(one_provider(fake))
    client = client_for(proxy)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read",
                "description": "Read a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
    ]
    fake.queue("real-m", Script(tool_call=("read", {"path": "notes.txt"})))
    messages = [{"role": "user", "content": "what is in notes.txt?"}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="up/m", messages=messages, tools=tools, stream=True
            )
        )
        calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
        call_id, name, arguments = calls[0].id, calls[0].function.name, calls[0].function.arguments
    else:
        answer = client.chat.completions.create(model="up/m", messages=messages, tools=tools)
        call = answer.choices[0].message.tool_calls[0]
        finish = answer.choices[0].finish_reason
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
    assert finish == "tool_calls"
    assert (name, json.loads(arguments)) == ("read", {"path": "notes.txt"})
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "pelican"},
    ]
    final = client.chat.completions.create(model="up/m", messages=messages, tools=tools)
    assert final.choices[0].message.content == "The tool said: pelican"
    assert fake.seen[-1].body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call_id,
        "content": "pelican",
    }


@pytest.mark.parametrize("name", CLIENT_FIXTURES)
def test_client_fixtures_reach_upstream_unchanged(fake, start_proxy, name):
    proxy = start_proxy(one_provider(fake))
    fixture = load_fixture(name)
    body = dict(fixture["body"], model="up/m")
    headers = {
        k: v
        for k, v in fixture["headers"].items()
        if k.lower() in ("x-session-affinity", "x-session-id")
    }
    raw = client_for(proxy).chat.completions.with_raw_response.create(
        **{k: v for k, v in body.items()}, extra_headers=headers
    )
    list(raw.parse())  # drain the stream
    received = fake.seen[-1].body
    assert received.pop("model") == "real-m"
    expected = dict(fixture["body"])
    expected.pop("model")
    assert received == expected


def test_variants_merged_and_drop_params_removed(fake, start_proxy):
    config = one_provider(
        fake,
        dropParams=["reasoning", "store"],
        models={
            "m": {
                "id": "real-m",
                "variants": {
                    "think": {"chat_template_kwargs": {"thinking": True}, "temperature": 0.6}
                },
            }
        },
    )
    proxy = start_proxy(config)
    client_for(proxy).chat.completions.create(
        model="up/m:think",
        messages=HELLO,
        temperature=1.0,
        store=True,
        extra_body={"reasoning": {"effort": "high"}, "top_k": 20},
    )
    body = fake.seen[-1].body
    assert body["chat_template_kwargs"] == {"thinking": True}
    assert body["temperature"] == 0.6
    assert body["top_k"] == 20
    assert "reasoning" not in body and "store" not in body


def test_upstream_gets_provider_key_and_headers(start_proxy, loop_thread):
    fake = FakeOpenAI(keys={"nvapi-good-key-000000001"})
    fake.url = loop_thread.serve(fake.app)
    proxy = start_proxy(
        one_provider(fake, apiKeys=["nvapi-good-key-000000001"], headers={"X-Title": "sy"})
    )
    client_for(proxy).chat.completions.create(model="up/m", messages=HELLO)
    assert fake.seen[-1].headers["Authorization"] == "Bearer nvapi-good-key-000000001"
    assert fake.seen[-1].headers["X-Title"] == "sy"


@pytest.mark.parametrize("include_usage", [True, False])
def test_non_streaming_provider_replayed_as_sse(fake, start_proxy, include_usage):
    proxy = start_proxy(one_provider(fake, supports={"streaming": False}))
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(
        client_for(proxy).chat.completions.create(
            model="up/m", messages=HELLO, stream=True, **kwargs
        )
    )
    assert "stream" not in fake.seen[-1].body and "stream_options" not in fake.seen[-1].body
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from real-m: hi"
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage_chunks = [c for c in chunks if not c.choices]
    assert bool(usage_chunks) is include_usage
    if include_usage:
        assert usage_chunks[0].usage.total_tokens == 6


def test_model_level_streaming_override(fake, start_proxy):
    config = one_provider(
        fake, models={"m": {"id": "real-m", "supports": {"streaming": False}}, "s": {}}
    )
    proxy = start_proxy(config)
    client = client_for(proxy)
    list(client.chat.completions.create(model="up/m", messages=HELLO, stream=True))
    list(client.chat.completions.create(model="up/s", messages=HELLO, stream=True))
    assert "stream" not in fake.seen[0].body
    assert fake.seen[1].body["stream"] is True


def chain(fake, second, **first_extra):
    """Alias `build`: a/m then b/m; no retries, so the first failure falls over."""
    return {
        "retry": {"maxRetries": 0},
        "providers": {
            "a": openai_provider(fake.url, models={"m": {"id": "a-model"}}, **first_extra),
            "b": openai_provider(second.url, models={"m": {"id": "b-model"}}),
        },
        "aliases": {"build": {"model": "a/m", "fallbacks": ["b/m"]}},
    }


@pytest.fixture
def second(loop_thread):
    upstream = FakeOpenAI()
    upstream.url = loop_thread.serve(upstream.app)
    return upstream


@pytest.mark.parametrize(
    ("script", "extra"),
    [
        (Script(status=429, headers={"Retry-After": "3"}), {}),
        (Script(status=500), {}),
        (Script(status=503), {}),
        (Script(invalid_json=True), {}),
        (Script(delay=2.0), {"timeout": 0.3}),
    ],
    ids=["429", "500", "503", "invalid-json", "timeout"],
)
@pytest.mark.parametrize("stream", [False, True])
def test_fallback_to_next_target(fake, second, start_proxy, script, extra, stream):
    proxy = start_proxy(chain(fake, second, **extra))
    fake.queue("a-model", script)
    raw = client_for(proxy).chat.completions.with_raw_response.create(
        model="build", messages=HELLO, stream=stream
    )
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        text = raw.parse().choices[0].message.content
    assert text == "Hello from b-model: hi"
    assert raw.headers["x-switchyard-fallback"] == "1"
    assert raw.headers["x-switchyard-provider"] == "b"


def test_fallback_on_connection_refused(second, start_proxy):
    config = {
        "providers": {
            "a": openai_provider("http://127.0.0.1:9", models={"m": {}}),
            "b": openai_provider(second.url, models={"m": {"id": "b-model"}}),
        },
        "aliases": {"build": {"model": "a/m", "fallbacks": ["b/m"]}},
    }
    proxy = start_proxy(config)
    answer = client_for(proxy).chat.completions.create(model="build", messages=HELLO)
    assert answer.choices[0].message.content == "Hello from b-model: hi"


def test_upstream_client_error_is_relayed_not_fallen_over(fake, second, start_proxy):
    proxy = start_proxy(chain(fake, second))
    error = {
        "error": {
            "message": "tools[0] is invalid",
            "type": "invalid_request_error",
            "param": "tools",
            "code": "bad_tool",
        }
    }
    fake.queue("a-model", Script(status=400, error=error))
    with pytest.raises(openai.BadRequestError) as exc:
        client_for(proxy).chat.completions.create(model="build", messages=HELLO)
    body = exc.value.body
    assert body["message"] == "tools[0] is invalid"
    assert (body["param"], body["code"], body["provider"]) == ("tools", "bad_tool", "a")
    assert second.seen == []


def test_next_key_on_429(start_proxy, loop_thread):
    fake = FakeOpenAI(keys={"key-one-0000000000", "key-two-0000000000"})
    fake.url = loop_thread.serve(fake.app)
    fake.fail_key("key-one-0000000000", Script(status=429, headers={"Retry-After": "30"}))
    proxy = start_proxy(one_provider(fake, apiKeys=["key-one-0000000000", "key-two-0000000000"]))
    client = client_for(proxy)
    for _ in range(4):
        assert (
            client.chat.completions.create(model="up/m", messages=HELLO).choices[0].message.content
        )
    used = [s.headers["Authorization"] for s in fake.seen]
    assert used.count("Bearer key-two-0000000000") == 4
    assert used.count("Bearer key-one-0000000000") == 1  # then cooling for its Retry-After


def test_everything_rate_limited_gives_429_with_earliest_reset(fake, second, start_proxy):
    proxy = start_proxy(chain(fake, second))
    fake.queue("a-model", Script(status=429, headers={"Retry-After": "40"}))
    second.queue("b-model", Script(status=429, headers={"retry-after-ms": "12500"}))
    with pytest.raises(openai.RateLimitError) as exc:
        client_for(proxy).chat.completions.create(model="build", messages=HELLO)
    assert exc.value.response.headers["Retry-After"] == "13"
    body = exc.value.body
    assert body["retry_after"] == 13
    assert body["code"] == "rate_limited"
    assert body["request_id"] == exc.value.response.headers["x-request-id"]
    assert [(d["target"], d["status"]) for d in body["details"]] == [
        ("a/m", 429),  # the upstream's answer
        ("a/m", 429),  # then its pool: every account cooling
        ("b/m", 429),
        ("b/m", 429),
    ]
    assert body["details"][1]["reason"] == "cooling"


def test_all_targets_down_gives_5xx_naming_them(fake, second, start_proxy):
    proxy = start_proxy(chain(fake, second))
    fake.queue("a-model", Script(status=500))
    second.queue("b-model", Script(status=503))
    with pytest.raises(openai.InternalServerError) as exc:
        client_for(proxy).chat.completions.create(model="build", messages=HELLO)
    assert exc.value.status_code == 503
    assert exc.value.response.headers["Retry-After"]
    assert "a/m: 500" in exc.value.body["message"] and "b/m: 503" in exc.value.body["message"]


def test_mid_stream_reset_is_an_error_not_a_finish(fake, start_proxy):
    proxy = start_proxy(one_provider(fake))
    fake.queue("real-m", Script(reset_after_chunks=2))
    seen = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in client_for(proxy).chat.completions.create(
            model="up/m", messages=HELLO, stream=True
        ):
            seen.append(chunk)
    assert "broke in the middle of the stream" in exc.value.message
    assert seen and all(c.choices[0].finish_reason is None for c in seen)


def test_stream_without_done_is_an_error(fake, start_proxy):
    proxy = start_proxy(one_provider(fake))
    fake.queue("real-m", Script(omit_done=True))
    with pytest.raises(openai.APIError, match=r"\[DONE\] never came"):
        list(client_for(proxy).chat.completions.create(model="up/m", messages=HELLO, stream=True))


def test_mid_stream_stall_beyond_timeout_is_an_error(fake, start_proxy):
    proxy = start_proxy(one_provider(fake, timeout=0.3))
    fake.queue("real-m", Script(stall_after_chunks=(2, 3.0)))
    with pytest.raises(openai.APIError, match=r"sent nothing for 0\.3s"):
        list(client_for(proxy).chat.completions.create(model="up/m", messages=HELLO, stream=True))


async def read_sse(proxy, body, lines_wanted=None):
    """Raw SSE lines from the proxy, as a client without an SDK sees them."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy.base_url + "/chat/completions", json=body) as response,
    ):
        assert response.status == 200
        return [line.decode().rstrip("\n") async for line in response.content if line.strip()]


async def test_keepalive_comments_while_first_byte_is_slow(fake, start_proxy):
    proxy = start_proxy({**one_provider(fake), "server": {"keepaliveInterval": 0.1}})
    fake.queue("real-m", Script(first_byte_delay=0.6))
    lines = await read_sse(proxy, {"model": "up/m", "messages": HELLO, "stream": True})
    keepalives = [line for line in lines if line == ": keepalive"]
    assert len(keepalives) >= 3
    assert lines.index(": keepalive") < min(
        i for i, line in enumerate(lines) if line.startswith("data:")
    )
    assert lines[-1] == "data: [DONE]"


async def test_keepalive_for_non_streaming_provider_then_fall_over(fake, second, start_proxy):
    config = chain(fake, second, supports={"streaming": False})
    proxy = start_proxy({**config, "server": {"keepaliveInterval": 0.1}})
    fake.queue("a-model", Script(delay=0.5, status=503))
    lines = await read_sse(proxy, {"model": "build", "messages": HELLO, "stream": True})
    assert lines[0] == ": keepalive"
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in data)
        == "Hello from b-model: hi"
    )
    assert lines[-1] == "data: [DONE]"


async def test_failure_after_keepalive_is_an_error_event(fake, start_proxy):
    config = {
        **one_provider(fake),
        "server": {"keepaliveInterval": 0.1},
        "retry": {"maxRetries": 0},
    }
    proxy = start_proxy(config)
    fake.queue("real-m", Script(delay=0.4, status=500))
    lines = await read_sse(proxy, {"model": "up/m", "messages": HELLO, "stream": True})
    assert lines[0] == ": keepalive"
    error = json.loads(lines[-1][6:])["error"]
    assert error["code"] == "upstream_failed"
    assert "data: [DONE]" not in lines


async def test_client_disconnect_cancels_upstream(fake, start_proxy):
    proxy = start_proxy(one_provider(fake))
    fake.queue("real-m", Script(content="x" * 400, content_pieces=100, chunk_interval=0.05))
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            proxy.base_url + "/chat/completions",
            json={"model": "up/m", "messages": HELLO, "stream": True},
        )
        await response.content.readline()
        response.close()
    for _ in range(50):
        if fake.aborted:
            break
        await asyncio.sleep(0.05)
    assert fake.aborted == 1
    assert fake.completed_streams == 0


def test_upstream_that_ignores_stream_is_replayed_as_sse(fake, start_proxy):
    proxy = start_proxy(one_provider(fake))
    fake.queue("real-m", Script(ignore_stream=True))
    chunks = list(
        client_for(proxy).chat.completions.create(model="up/m", messages=HELLO, stream=True)
    )
    assert fake.seen[-1].body["stream"] is True
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from real-m: hi"
    )
