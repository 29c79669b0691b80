"""One JSON log line per request, and no secret in any log line or error answer."""

from __future__ import annotations

import json

import openai
import pytest

from proxy.masking import Scrubber, mask
from tests import rawhttp as http
from tests.conftest import openai_provider
from tests.fakes.openai_upstream import FakeOpenAI

PROVIDER_KEY = "nvapi-FAKE-test-key-notreal-a1b2"
SERVER_KEY = "sy-local-9f8e7d6c5b4a39281706"
HELLO = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("nvapi-FAKE-test-key-notreal-a1b2", "nvapi-…a1b2"),
        ("sk-abcdefghijklmnopqrstuvwxyz", "sk-…wxyz"),
        ("AIzaSyA1234567890abcdefghijklmnopqrs", "…pqrs"),
        ("ya29.a0AfH6SMBxyz123456", "ya29.…3456"),
        ("short", "…"),
    ],
)
def test_mask(secret, expected):
    assert mask(secret) == expected


def test_scrubber_masks_known_and_key_shaped_tokens():
    scrubber = Scrubber(["my-configured-secret-123"])
    text = (
        "key my-configured-secret-123, header Authorization: Bearer abcdefghijklmnop1234, "
        "other nvapi-QQQQQQQQQQQQQQQQQQQQQQQQ9999 and AIzaSyA1234567890abcdefghijklmnopqrs"
    )
    out = scrubber.scrub(text)
    for secret in (
        "my-configured-secret-123",
        "abcdefghijklmnop1234",
        "QQQQQQQQQQQQ",
        "AIzaSyA1234567890",
    ):
        assert secret not in out
    assert "Bearer …1234" in out and "nvapi-…9999" in out


def test_no_secret_in_logs_or_errors(start_proxy, loop_thread):
    fake = FakeOpenAI(keys={"a-different-key-0000000000"})  # rejects ours, echoing it back
    fake.url = loop_thread.serve(fake.app)
    proxy = start_proxy(
        {
            "server": {"apiKeys": [SERVER_KEY]},
            "providers": {
                "nim": openai_provider(fake.url, apiKeys=[PROVIDER_KEY], models={"m": {}})
            },
            "logging": {"level": "debug"},
        }
    )
    client = openai.OpenAI(base_url=proxy.base_url, api_key=SERVER_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="nim/m", messages=HELLO)
    assert fake.seen[0].headers["Authorization"] == f"Bearer {PROVIDER_KEY}"
    assert "Incorrect API key provided: nvapi-…a1b2" in exc.value.body["message"]
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="nim/m", messages=HELLO, stream=True)
    status, _, body = http.post(
        proxy.base_url + "/chat/completions",
        b"{}",
        {"Authorization": "Bearer sy-wrong-key-00000000"},
    )
    assert status == 401
    http.get(proxy.url + "/health", {"Authorization": f"Bearer {SERVER_KEY}"})
    logs = proxy.log_text
    events = proxy.log_events()
    assert [
        e["status"] for e in events if e["event"] == "request" and e["path"].startswith("/v1/")
    ] == [503, 503, 401]  # the only upstream key refused twice: disabled, so 503
    assert any(e["event"] == "upstream_failed" and e["account"] == "nvapi-…a1b2" for e in events)
    for secret in (PROVIDER_KEY, SERVER_KEY, "FAKE-test-key", "sy-wrong-key-00000000"):
        assert secret not in logs
        assert secret not in body.decode()


def test_one_line_per_request_with_its_fields(fake, start_proxy):
    proxy = start_proxy({"providers": {"up": openai_provider(fake.url, models={"m": {}})}})
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x")
    client.chat.completions.create(
        model="up/m", messages=HELLO, extra_headers={"X-Request-ID": "r-1"}
    )
    requests = [e for e in proxy.log_events() if e["event"] == "request"]
    assert len(requests) == 1
    line = requests[0]
    assert line["request_id"] == "r-1"
    assert (line["model"], line["provider"], line["status"], line["attempts"]) == (
        "up/m",
        "up",
        200,
        1,
    )
    assert line["latency_ms"] >= 0 and line["prompt_tokens"] == 1
    assert json.loads(proxy.log_text.splitlines()[0])  # every line is JSON
