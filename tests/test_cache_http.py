"""The cache as a client sees it: headers, replay as JSON or SSE, controls, restart, commands."""

from __future__ import annotations

import json

import openai
import pytest

from tests import rawhttp as http
from tests.conftest import openai_provider, run_cli
from tests.fakes.gemini_upstream import FakeGemini, Reply
from tests.fakes.openai_upstream import Script

QUESTION = [{"role": "user", "content": "How do I reverse a string in Python?"}]
PARAPHRASE = [{"role": "user", "content": "how can I reverse a string in python"}]


def cached_config(fake, tmp_path, **cache):
    return {
        "providers": {"up": openai_provider(fake.url, models={"m": {"id": "real-m"}})},
        "cache": {"enabled": True, "dir": str(tmp_path / "cache"), **cache},
    }


def client(proxy):
    return openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)


def text_of(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_miss_then_exact_hit_then_semantic_hit(fake, start_proxy, tmp_path):
    proxy = start_proxy(cached_config(fake, tmp_path))
    sdk = client(proxy)
    first = sdk.chat.completions.with_raw_response.create(model="up/m", messages=QUESTION)
    assert first.headers["x-switchyard-cache"] == "miss"
    again = sdk.chat.completions.with_raw_response.create(model="up/m", messages=QUESTION)
    assert again.headers["x-switchyard-cache"] == "hit"
    assert (
        again.headers["x-switchyard-provider"] == "up"
        and again.headers["x-switchyard-model"] == "up/m"
    )
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert again.parse().id != first.parse().id, "a fresh id"
    assert again.parse().usage.total_tokens == first.parse().usage.total_tokens, "usage kept"
    similar = sdk.chat.completions.with_raw_response.create(model="up/m", messages=PARAPHRASE)
    assert similar.headers["x-switchyard-cache"] == "semantic-hit"
    assert float(similar.headers["x-switchyard-similarity"]) >= 0.95
    assert len(fake.seen) == 1
    events = [e for e in proxy.log_events() if e["event"] == "request"]
    assert [e["cache"] for e in events] == ["miss", "hit", "semantic-hit"]


def test_streamed_answer_is_stored_and_replayed_both_ways(fake, start_proxy, tmp_path):
    proxy = start_proxy(cached_config(fake, tmp_path))
    sdk = client(proxy)
    first = list(
        sdk.chat.completions.create(
            model="up/m", messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed = text_of(first)
    plain = sdk.chat.completions.with_raw_response.create(model="up/m", messages=QUESTION)
    assert plain.headers["x-switchyard-cache"] == "hit"
    assert plain.parse().choices[0].message.content == streamed
    raw = sdk.chat.completions.with_raw_response.create(
        model="up/m", messages=PARAPHRASE, stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers["x-switchyard-cache"] == "semantic-hit"
    chunks = list(raw.parse())
    assert text_of(chunks) == streamed
    assert chunks[-1].usage == first[-1].usage
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert len(fake.seen) == 1


def test_tool_calls_and_broken_streams_are_not_stored(fake, start_proxy, tmp_path):
    proxy = start_proxy(cached_config(fake, tmp_path))
    sdk = client(proxy)
    tools = [
        {
            "type": "function",
            "function": {"name": "read", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    for _ in range(2):
        sdk.chat.completions.create(model="up/m", messages=QUESTION, tools=tools)
    for _ in range(2):
        list(sdk.chat.completions.create(model="up/m", messages=QUESTION, tools=tools, stream=True))
    fake.queue("real-m", Script(reset_after_chunks=2))
    with pytest.raises(openai.APIError):
        list(sdk.chat.completions.create(model="up/m", messages=PARAPHRASE, stream=True))
    fake.queue("real-m", Script(finish_reason="length"))
    sdk.chat.completions.create(model="up/m", messages=[{"role": "user", "content": "long story"}])
    sdk.chat.completions.create(model="up/m", messages=[{"role": "user", "content": "long story"}])
    assert len(fake.seen) == 7


def test_request_headers_control_the_cache(fake, start_proxy, tmp_path):
    proxy = start_proxy(cached_config(fake, tmp_path))
    sdk = client(proxy)
    sdk.chat.completions.create(
        model="up/m", messages=QUESTION, extra_headers={"Cache-Control": "no-store"}
    )
    sdk.chat.completions.create(model="up/m", messages=QUESTION)
    assert len(fake.seen) == 2
    raw = sdk.chat.completions.with_raw_response.create(
        model="up/m", messages=QUESTION, extra_headers={"Cache-Control": "no-cache"}
    )
    assert raw.headers["x-switchyard-cache"] == "miss" and len(fake.seen) == 3
    raw = sdk.chat.completions.with_raw_response.create(
        model="up/m", messages=PARAPHRASE, extra_headers={"x-switchyard-cache": "exact"}
    )
    assert raw.headers["x-switchyard-cache"] == "miss" and len(fake.seen) == 4
    raw = sdk.chat.completions.with_raw_response.create(
        model="up/m", messages=QUESTION, temperature=1.0
    )
    assert raw.headers["x-switchyard-cache"] == "miss", "temperature is part of the exact key"
    raw = sdk.chat.completions.with_raw_response.create(
        model="up/m", messages=PARAPHRASE, temperature=1.0
    )
    assert raw.headers["x-switchyard-cache"] == "miss", (
        "no semantic lookup above semanticMaxTemperature"
    )


def test_cache_survives_restart_and_commands_report_it(fake, start_proxy, loop_thread, tmp_path):
    config = cached_config(fake, tmp_path)
    proxy = start_proxy(config)
    client(proxy).chat.completions.create(model="up/m", messages=QUESTION)
    client(proxy).chat.completions.create(model="up/m", messages=QUESTION)
    loop_thread.run(loop_thread.runners.pop().cleanup())
    restarted = start_proxy(config)
    raw = client(restarted).chat.completions.with_raw_response.create(
        model="up/m", messages=PARAPHRASE
    )
    assert raw.headers["x-switchyard-cache"] == "semantic-hit"
    assert len(fake.seen) == 1
    loop_thread.run(loop_thread.runners.pop().cleanup())

    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))

    def run(*args):
        result = run_cli("cache", *args, "--config", str(path))
        assert result.returncode == 0, result.stderr
        return result.stdout

    stats = json.loads(run("stats", "--json"))
    assert stats["entries"] == {"exact": 1, "semantic": 1}
    assert stats["hits"] == {"exact": 1, "semantic": 1}
    assert stats["hit_rate"]["exact"] == pytest.approx(1 / 3, abs=0.01)
    assert stats["disk_bytes"] > 0
    assert "hit rate:" in run("stats")
    run("clear")
    assert json.loads(run("stats", "--json"))["entries"] == {"exact": 0, "semantic": 0}


def test_metrics_count_cache_tiers(fake, start_proxy, tmp_path):
    proxy = start_proxy(cached_config(fake, tmp_path))
    sdk = client(proxy)
    for messages in (QUESTION, QUESTION, PARAPHRASE):
        sdk.chat.completions.create(model="up/m", messages=messages)
    _, _, body = http.get(proxy.url + "/metrics")
    text = body.decode()
    assert 'cache_requests_total{result="hit",tier="exact"} 1.0' in text
    assert 'cache_requests_total{result="miss",tier="exact"} 2.0' in text
    assert 'cache_requests_total{result="hit",tier="semantic"} 1.0' in text
    assert 'cache_requests_total{result="miss",tier="semantic"} 1.0' in text


def test_translated_gemini_stream_is_cached(start_proxy, loop_thread, tmp_path):
    google = FakeGemini()
    google.url = loop_thread.serve(google.app)
    proxy = start_proxy(
        {
            "providers": {
                "google": {
                    "type": "gemini",
                    "baseURL": google.url + "/v1beta",
                    "models": {"flash": {"id": "gemini-2.5-flash"}},
                }
            },
            "cache": {"enabled": True, "dir": str(tmp_path / "cache")},
        }
    )
    google.queue("gemini-2.5-flash", Reply(text="Use slicing: s[::-1]"))
    sdk = client(proxy)
    assert (
        text_of(sdk.chat.completions.create(model="google/flash", messages=QUESTION, stream=True))
        == "Use slicing: s[::-1]"
    )
    again = sdk.chat.completions.with_raw_response.create(model="google/flash", messages=QUESTION)
    assert again.headers["x-switchyard-cache"] == "hit"
    assert again.parse().choices[0].message.content == "Use slicing: s[::-1]"
    assert len(google.seen) == 1
