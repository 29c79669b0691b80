"""Account pools end to end: rotation under rate limits, cooldowns, stickiness, persistence."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import openai
import pytest

from tests import rawhttp as http
from tests.conftest import ROOT, openai_provider, run_cli
from tests.fakes.openai_upstream import FakeOpenAI, Script

KEYS = [f"nvapi-test-key-{n}-000000000000" for n in range(5)]
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def keyed(loop_thread):
    """A fake upstream that knows the five test keys."""
    fake = FakeOpenAI(keys=set(KEYS))
    fake.url = loop_thread.serve(fake.app)
    return fake


def pool_config(fake, keys, **provider):
    return {
        "providers": {"nim": openai_provider(fake.url, apiKeys=keys, models={"m": {}}, **provider)}
    }


def used_keys(fake):
    return [s.headers["Authorization"].removeprefix("Bearer ") for s in fake.seen]


async def test_burst_of_300_over_three_rate_limited_keys_sees_no_429(keyed, start_proxy):
    for key in KEYS[:3]:
        keyed.limit_key(key, requests=20, window=1.0)  # 20 per second per key upstream
    # 18/s each: a margin of two under the upstream's 20, for jitter between pacing and arrival
    config = pool_config(keyed, KEYS[:3], rateLimit={"rpm": 1080, "maxWait": 15})
    proxy = start_proxy(config)
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key="x", max_retries=0, timeout=60)

    async def one(n: int) -> str:
        answer = await client.chat.completions.create(
            model="nim/m", messages=[{"role": "user", "content": f"request {n}"}]
        )
        return answer.choices[0].message.content

    started = time.monotonic()
    answers = await asyncio.gather(*(one(n) for n in range(300)), return_exceptions=True)
    elapsed = time.monotonic() - started
    errors = [a for a in answers if isinstance(a, BaseException)]
    assert errors == []
    assert answers == [f"Hello from m: request {n}" for n in range(300)]
    assert keyed.rate_limited == 0, "pacing kept every key under its upstream limit"
    counts = {key: used_keys(keyed).count(key) for key in KEYS[:3]}
    assert all(90 <= c <= 110 for c in counts.values()), counts
    assert elapsed >= 300 / 54 - 1.5, "three keys at 18/s cannot go faster"
    await client.close()


def test_all_keys_cooling_gives_one_429_with_earliest_reset(keyed, start_proxy):
    keyed.fail_key(KEYS[0], Script(status=429, headers={"Retry-After": "45"}))
    keyed.fail_key(KEYS[1], Script(status=429, headers={"Retry-After": "30"}))
    proxy = start_proxy(pool_config(keyed, KEYS[:2]))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="nim/m", messages=HELLO)
    assert exc.value.response.headers["Retry-After"] == "30"
    assert len(keyed.seen) == 2
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="nim/m", messages=HELLO)
    assert int(exc.value.response.headers["Retry-After"]) in (29, 30)
    assert exc.value.body["details"][0]["reason"] == "cooling"
    assert len(keyed.seen) == 2, "cooling keys are not asked again"
    events = [e for e in proxy.log_events() if e["event"] == "account_cooldown"]
    assert [(e["account"], e["seconds"]) for e in events] == [
        ("nvapi-…0000", 45),
        ("nvapi-…0000", 30),
    ]


def test_session_stickiness_and_spread(keyed, start_proxy):
    proxy = start_proxy(pool_config(keyed, KEYS[:3]))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)

    def turn(session: str) -> str:
        client.chat.completions.create(
            model="nim/m", messages=HELLO, extra_headers={"x-session-affinity": session}
        )
        return used_keys(keyed)[-1]

    first = turn("ses_one")
    for _ in range(19):
        turn(f"ses_other_{random.random()}")
        assert turn("ses_one") == first
    keyed.seen.clear()
    sessions = [f"ses_new_{n}" for n in range(6)]
    placed = {s: turn(s) for s in sessions}
    assert sorted(used_keys(keyed).count(k) for k in KEYS[:3]) == [2, 2, 2]
    assert all(turn(s) == placed[s] for s in sessions)


def test_401_refresh_retry_then_disable(keyed, start_proxy):
    keyed.fail_key(KEYS[0], Script(status=401))
    proxy = start_proxy(pool_config(keyed, KEYS[:2]))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
    for _ in range(3):
        assert client.chat.completions.create(model="nim/m", messages=HELLO).choices
    assert used_keys(keyed).count(KEYS[0]) == 2, "retried once, then disabled"
    assert used_keys(keyed).count(KEYS[1]) == 3
    _, _, body = http.get(proxy.url + "/health")
    assert json.loads(body)["providers"]["nim"] == {
        "accounts": 2,
        "usable": 1,
        "cooling": 0,
        "disabled": 1,
    }


def test_403_suspended_disables_the_account(keyed, start_proxy):
    message = "This service has been disabled in this account for violation of Terms of Service."
    keyed.fail_key(
        KEYS[0],
        Script(
            status=403,
            error={"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED"}},
        ),
    )
    proxy = start_proxy(pool_config(keyed, KEYS[:2]))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="nim/m", messages=HELLO)
    assert used_keys(keyed).count(KEYS[0]) == 1
    disabled = [e for e in proxy.log_events() if e["event"] == "account_disabled"]
    assert disabled[0]["reason"].startswith("suspended: This service has been disabled")


def test_5xx_retried_with_backoff_then_fallback(keyed, start_proxy, loop_thread):
    second = FakeOpenAI()
    second.url = loop_thread.serve(second.app)
    config = {
        "providers": {
            "nim": openai_provider(keyed.url, apiKeys=KEYS[:1], models={"m": {}}),
            "zen": openai_provider(second.url, models={"m": {}}),
        },
        "aliases": {"build": {"model": "nim/m", "fallbacks": ["zen/m"]}},
        "retry": {"maxRetries": 2, "baseDelay": 100, "backoffMultiplier": 2, "maxDelay": 1000},
    }
    proxy = start_proxy(config)
    keyed.queue("m", Script(status=502), Script(status=503))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model="build", messages=HELLO)
    assert 0.3 <= time.monotonic() - started < 2, "waited 100 ms then 200 ms"
    assert "x-switchyard-fallback" not in raw.headers, "the third try of nim succeeded"
    keyed.queue("m", Script(status=500), Script(status=500), Script(status=500))
    raw = client.chat.completions.with_raw_response.create(model="build", messages=HELLO)
    assert raw.headers["x-switchyard-fallback"] == "1"
    assert len(keyed.seen) == 6


def test_rate_limit_headers_on_completions(keyed, start_proxy):
    proxy = start_proxy(pool_config(keyed, KEYS[:3], rateLimit={"rpm": 40}))
    raw = openai.OpenAI(
        base_url=proxy.base_url, api_key="x"
    ).chat.completions.with_raw_response.create(model="nim/m", messages=HELLO)
    assert raw.headers["X-RateLimit-Limit"] == "120"
    assert raw.headers["X-RateLimit-Remaining"] == "119"
    assert raw.headers["X-RateLimit-Reset"] == "60"


def test_cooldowns_survive_a_restart(keyed, start_proxy, loop_thread, tmp_path):
    keyed.fail_key(KEYS[0], Script(status=429, headers={"Retry-After": "600"}))
    config = {**pool_config(keyed, KEYS[:2]), "server": {"stateDir": str(tmp_path / "st")}}
    proxy = start_proxy(config)
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
    client.chat.completions.create(model="nim/m", messages=HELLO)
    loop_thread.run(loop_thread.runners.pop().cleanup())  # a clean stop writes the state
    state = json.loads((tmp_path / "st" / "state.json").read_text())
    assert KEYS[0] not in json.dumps(state), "the state file holds no key"
    assert stat.S_IMODE(os.stat(tmp_path / "st" / "state.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "st").st_mode) == 0o700

    del keyed.by_key[KEYS[0]]
    keyed.seen.clear()
    restarted = start_proxy(config)
    client = openai.OpenAI(base_url=restarted.base_url, api_key="x", max_retries=0)
    for _ in range(4):
        client.chat.completions.create(model="nim/m", messages=HELLO)
    assert used_keys(keyed) == [KEYS[1]] * 4, "the cooling key stays out after the restart"

    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = run_cli("accounts", "--config", str(path), "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["accounts"]
    assert rows[0]["account"] == "nvapi-…0000" and rows[0]["state"] == "cooling (*)"
    assert rows[1]["state"] == "ready"
    table = run_cli("accounts", "--config", str(path)).stdout
    assert "cooling (*)" in table and "cooldown until" in table and KEYS[0] not in table


async def test_200_in_flight_across_5_accounts_with_random_429s(keyed, start_proxy):
    keyed.random_429 = (0.1, 0.05)
    proxy = start_proxy(pool_config(keyed, KEYS, rateLimit={"maxWait": 10}))
    client = openai.AsyncOpenAI(base_url=proxy.base_url, api_key="x", max_retries=0, timeout=60)

    async def one(n: int) -> str:
        answer = await client.chat.completions.create(
            model="nim/m", messages=[{"role": "user", "content": f"job-{n}"}]
        )
        return answer.choices[0].message.content

    answers = await asyncio.gather(*(one(n) for n in range(200)), return_exceptions=True)
    assert answers == [f"Hello from m: job-{n}" for n in range(200)]
    answered = [s.body["messages"][0]["content"] for s in keyed.seen]
    assert keyed.rate_limited > 5, "the run did meet 429s"
    assert len(answered) == 200 + keyed.rate_limited
    # every job reached the upstream once successfully (429s are refusals, not answers)
    assert sorted(set(answered)) == sorted(f"job-{n}" for n in range(200))
    await client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_state_file_is_whole_after_sigkill_under_load(keyed, tmp_path):
    keyed.random_429 = (0.3, 0.02)  # constant cooldown changes to write
    state_dir = tmp_path / "state"
    config = {
        "server": {"stateDir": str(state_dir), "stateWriteDelay": 0},
        **pool_config(keyed, KEYS, rateLimit={"rpd": 100000}),
        "retry": {"maxRetries": 0},
        "cache": {"enabled": False},  # every request must reach an account
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    state_file = state_dir / "state.json"
    rng = random.Random(3)
    versions = set()
    totals: list[int] = []
    for _ in range(8):
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "serve",
                "--config",
                str(config_path),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                http.get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                time.sleep(0.05)
        stop = threading.Event()

        def load(port: int = port, stop: threading.Event = stop) -> None:
            body = json.dumps({"model": "nim/m", "messages": HELLO}).encode()
            while not stop.is_set():
                try:
                    http.post(f"http://127.0.0.1:{port}/v1/chat/completions", body)
                except OSError:
                    time.sleep(0.01)

        workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(0.5 + rng.random() * 0.7)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        stop.set()
        for worker in workers:
            worker.join(10)
        document = json.loads(state_file.read_text())  # whole and valid, never torn
        assert document["version"] == 1
        assert len(document["accounts"]["nim"]) == 5
        versions.add(document["saved_at"])
        totals.append(sum(a["requests_today"] for a in document["accounts"]["nim"].values()))
    assert len(versions) == 8, "each run wrote new state before it was killed"
    assert totals == sorted(totals) and totals[0] > 0, "each start loaded the last run's counters"
    assert not list(state_dir.glob("*.tmp")) or all(
        p.stat().st_mode & 0o077 == 0 for p in state_dir.glob("*.tmp")
    )
