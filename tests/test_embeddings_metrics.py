"""POST /v1/embeddings through the proxy, and the Prometheus counters at GET /metrics."""

from __future__ import annotations

import json

import openai
import pytest

from tests import rawhttp as http
from tests.conftest import openai_provider
from tests.fakes.openai_upstream import FakeOpenAI, Script

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def second(loop_thread):
    upstream = FakeOpenAI()
    upstream.url = loop_thread.serve(upstream.app)
    return upstream


def config(fake, second):
    return {
        "retry": {"maxRetries": 0},
        "providers": {
            "a": openai_provider(fake.url, models={"e": {"id": "nv-embed"}, "m": {}}),
            "b": openai_provider(second.url, models={"e": {"id": "other-embed"}}),
        },
        "aliases": {"embed": {"model": "a/e", "fallbacks": ["b/e"]}},
    }


def test_embeddings_pass_through_with_upstream_id(fake, second, start_proxy):
    proxy = start_proxy(config(fake, second))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
    result = client.embeddings.create(model="a/e", input=["one", "three"], encoding_format="float")
    assert [d.embedding[0] for d in result.data] == [3.0, 5.0]
    assert fake.seen[-1].body == {
        "model": "nv-embed",
        "input": ["one", "three"],
        "encoding_format": "float",
    }


def test_embeddings_fall_back(fake, second, start_proxy):
    proxy = start_proxy(config(fake, second))
    fake.queue("nv-embed", Script(status=503))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
    raw = client.embeddings.with_raw_response.create(
        model="embed", input="hello", encoding_format="float"
    )
    assert raw.headers["x-switchyard-fallback"] == "1"
    assert raw.parse().model == "other-embed"


@pytest.mark.parametrize(
    "body", [{"model": "a/e"}, {"model": "a/e", "input": []}, {"model": "a/e", "input": 5}]
)
def test_embeddings_need_input(fake, second, start_proxy, body):
    proxy = start_proxy(config(fake, second))
    status, _, answer = http.post(proxy.base_url + "/embeddings", json.dumps(body).encode())
    assert status == 400
    assert json.loads(answer)["error"]["param"] == "input"


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(
            part.split("=", 1) for part in line[len(name) + 1 : line.index("}")].split(",")
        )
        if all(found.get(k) == f'"{v}"' for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_requests_outcomes_and_tokens(fake, second, start_proxy):
    proxy = start_proxy(
        {
            "providers": {
                "a": openai_provider(fake.url, models={"m": {}}),
                "b": openai_provider(second.url, models={"m": {}}),
            },
            "aliases": {"build": {"model": "a/m", "fallbacks": ["b/m"]}},
        }
    )
    fake.queue("m", Script(status=429, headers={"Retry-After": "0"}))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
    client.chat.completions.create(model="build", messages=HELLO)
    list(
        client.chat.completions.create(
            model="a/m", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    http.post(proxy.base_url + "/chat/completions", b"nope")
    status, headers, body = http.get(proxy.url + "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert metric(text, "http_requests_total", endpoint="/v1/chat/completions", status="200") == 2
    assert metric(text, "http_requests_total", endpoint="/v1/chat/completions", status="400") == 1
    assert metric(text, "model_requests_total", model="a/m", outcome="rate_limited") == 1
    assert metric(text, "model_requests_total", model="b/m", outcome="ok") == 1
    assert metric(text, "model_requests_total", model="a/m", outcome="ok") == 1
    assert metric(text, "model_tokens_used_total", model="a/m", type="completion") == 5
    assert metric(text, "model_latency_seconds_count", model="b/m") == 1
    assert metric(text, "model_time_to_first_token_seconds_count", model="a/m") == 1
