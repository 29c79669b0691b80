"""The HTTP surface: bad input, auth, request ids, /health, /v1/models, unknown models."""

from __future__ import annotations

import json

import openai
import pytest

from tests import rawhttp as http
from tests.conftest import openai_provider

HELLO = [{"role": "user", "content": "hi"}]


def config_for(fake, **server):
    return {
        "server": server,
        "providers": {
            "up": openai_provider(
                fake.url,
                models={
                    "m": {
                        "id": "real-m",
                        "limit": {"context": 1000, "output": 100},
                        "variants": {"hot": {"temperature": 1.5}},
                    }
                },
            ),
        },
        "aliases": {"fast": {"model": "up/m"}},
    }


@pytest.mark.parametrize(
    ("body", "status", "fragment", "param"),
    [
        (b"{not json", 400, "request body is not valid JSON", None),
        (b"", 400, "request body is empty", None),
        (b"[1, 2]", 400, "request body must be a JSON object, got list", None),
        (b'{"messages": []}', 400, "'model' is required", "model"),
        (
            b'{"model": 5, "messages": []}',
            400,
            "'model' is required and must be a non-empty string",
            "model",
        ),
        (b'{"model": "up/m"}', 400, "'messages' is required", "messages"),
        (b'{"model": "up/m", "messages": "hi"}', 400, "'messages' is required", "messages"),
        (
            b'{"model": "up/m", "messages": [{"role": "user", "content": "a"}, "b"]}',
            400,
            "'messages[1]' must be an object",
            "messages[1]",
        ),
        (
            b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "a"}]}',
            404,
            "model 'gpt-4o' not found",
            "model",
        ),
    ],
)
def test_bad_input_gets_4xx_and_server_keeps_serving(
    fake, start_proxy, body, status, fragment, param
):
    proxy = start_proxy(config_for(fake))
    got_status, headers, answer = http.post(proxy.base_url + "/chat/completions", body)
    assert got_status == status
    error = json.loads(answer)["error"]
    assert fragment in error["message"]
    assert error["param"] == param
    assert error["request_id"] == headers["x-request-id"]
    assert fake.seen == []
    ok = openai.OpenAI(base_url=proxy.base_url, api_key="x").chat.completions.create(
        model="up/m", messages=HELLO
    )
    assert ok.choices[0].message.content


def test_unknown_model_names_close_matches(fake, start_proxy):
    proxy = start_proxy(config_for(fake))
    with pytest.raises(openai.NotFoundError) as exc:
        openai.OpenAI(base_url=proxy.base_url, api_key="x").chat.completions.create(
            model="up/n", messages=HELLO
        )
    assert exc.value.body["code"] == "model_not_found"
    assert "did you mean up/m" in exc.value.body["message"]


def test_body_over_limit_is_413(fake, start_proxy):
    proxy = start_proxy(config_for(fake, maxBodyBytes=2000))
    body = json.dumps(
        {"model": "up/m", "messages": [{"role": "user", "content": "x" * 5000}]}
    ).encode()
    status, _, answer = http.post(proxy.base_url + "/chat/completions", body)
    assert status == 413
    assert "server.maxBodyBytes (2000 bytes)" in json.loads(answer)["error"]["message"]
    assert fake.seen == []


def test_api_keys_required_when_configured(fake, start_proxy):
    proxy = start_proxy(config_for(fake, apiKeys=["sy-secret-key-1234", "${UNSET:-}"]))
    for key in (None, "wrong-key"):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        status, _, answer = http.post(proxy.base_url + "/chat/completions", b"{}", headers)
        assert status == 401
        assert json.loads(answer)["error"]["code"] == "invalid_api_key"
    client = openai.OpenAI(base_url=proxy.base_url, api_key="sy-secret-key-1234")
    assert client.chat.completions.create(model="up/m", messages=HELLO).choices
    assert next(m.id for m in client.models.list()) == "fast"
    status, _, _ = http.get(proxy.url + "/health")
    assert status == 200, "health needs no key"


def test_request_id_is_echoed(fake, start_proxy):
    proxy = start_proxy(config_for(fake))
    body = json.dumps({"model": "up/m", "messages": HELLO}).encode()
    _, headers, _ = http.post(
        proxy.base_url + "/chat/completions", body, {"X-Request-ID": "trace-42"}
    )
    assert headers["x-request-id"] == "trace-42"
    _, headers, _ = http.get(proxy.url + "/health", {"X-Request-ID": "bad id with spaces"})
    assert headers["x-request-id"].startswith("req_")


def test_models_lists_aliases_models_variants_and_limits(fake, start_proxy):
    proxy = start_proxy(config_for(fake))
    status, _, answer = http.get(proxy.base_url + "/models")
    assert status == 200
    data = {m["id"]: m for m in json.loads(answer)["data"]}
    assert list(data) == ["fast", "up/m", "up/m:hot"]
    assert data["fast"]["owned_by"] == "switchyard"
    assert data["up/m"]["limit"] == {"context": 1000, "output": 100}
    assert data["up/m"]["variants"] == ["hot"]
    assert data["up/m:hot"]["object"] == "model"


def test_health_reports_providers(fake, start_proxy):
    proxy = start_proxy(
        {
            "providers": {
                "up": openai_provider(fake.url, apiKeys=["k1-aaaaaaaaaaaa", "k2-bbbbbbbbbbbb"]),
                "nokey": openai_provider(fake.url, apiKeys=["${NOT_SET}"]),
            }
        }
    )
    status, _, answer = http.get(proxy.url + "/health")
    health = json.loads(answer)
    assert status == 200
    assert health["status"] == "degraded"
    assert health["providers"]["up"] == {"accounts": 2, "usable": 2, "cooling": 0, "disabled": 0}
    assert health["providers"]["nokey"]["usable"] == 0
    assert health["version"] and health["uptime"] >= 0


def test_health_unhealthy_without_any_usable_account(start_proxy):
    proxy = start_proxy(
        {"providers": {"nokey": openai_provider("http://127.0.0.1:9", apiKeys=["${NOT_SET}"])}}
    )
    status, _, answer = http.get(proxy.url + "/health")
    assert status == 503
    assert json.loads(answer)["status"] == "unhealthy"


def test_provider_without_keys_is_skipped_for_the_next(fake, start_proxy):
    proxy = start_proxy(
        {
            "providers": {
                "nokey": openai_provider(fake.url, apiKeys=["${NOT_SET}"], models={"m": {}}),
                "up": openai_provider(fake.url, models={"m": {"id": "real-m"}}),
            },
            "aliases": {"a": {"model": "nokey/m", "fallbacks": ["up/m"]}},
        }
    )
    answer = openai.OpenAI(base_url=proxy.base_url, api_key="x").chat.completions.create(
        model="a", messages=HELLO
    )
    assert answer.choices[0].message.content == "Hello from real-m: hi"


def test_unknown_route_is_openai_shaped_404(fake, start_proxy):
    proxy = start_proxy(config_for(fake))
    status, _, answer = http.get(proxy.base_url + "/nothing-here")
    assert status == 404
    assert json.loads(answer)["error"]["type"] == "not_found_error"


async def test_chunked_body_over_limit_is_413(fake, start_proxy):
    import aiohttp

    proxy = start_proxy(config_for(fake, maxBodyBytes=2000))

    async def body():
        yield b'{"model": "up/m", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}]}'

    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy.base_url + "/chat/completions", data=body()) as response,
    ):
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "request_too_large"
    assert fake.seen == []
