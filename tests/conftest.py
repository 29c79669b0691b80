"""Fixtures: a fake upstream and the proxy, both served on 127.0.0.1 from a background loop."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from proxy.config import parse
from proxy.server import create_app
from tests.fakes.openai_upstream import FakeOpenAI

# Copies of ../shared/fixtures/clients: real bodies from OpenCode 1.18.33 and OpenClaw 2026.9.6.
FIXTURES = Path(__file__).resolve().parent / "data" / "clients"
CLIENT_FIXTURES = sorted(path.name for path in FIXTURES.glob("*.json"))
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def private_xdg_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test (nor the servers it starts) reads or writes the user's config, state or cache."""
    base = tmp_path_factory.mktemp("xdg")
    saved = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")}
    for key in saved:
        os.environ[key] = str(base / key.lower())
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class LoopThread:
    """An event loop in a thread, so sync clients (the openai SDK) can talk to our servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: list[web.AppRunner] = []

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def serve(self, app: web.Application) -> str:
        async def start() -> str:
            runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.runners.append(runner)
            host, port = runner.addresses[0][:2]
            return f"http://{host}:{port}"

        return self.run(start())

    def close(self) -> None:
        async def stop() -> None:
            for runner in reversed(self.runners):
                await runner.cleanup()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Proxy:
    """A running proxy: its base URL and everything it logged."""

    def __init__(self, url: str, log: io.BytesIO) -> None:
        self.state_file: Path | None = None
        self.url = url
        self.base_url = url + "/v1"
        self._log = log

    @property
    def log_text(self) -> str:
        return self._log.getvalue().decode()

    def log_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_text.splitlines() if line.strip()]


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def fake(loop_thread: LoopThread) -> FakeOpenAI:
    upstream = FakeOpenAI()
    upstream.url = loop_thread.serve(upstream.app)  # type: ignore[attr-defined]
    return upstream


@pytest.fixture
def start_proxy(loop_thread: LoopThread, tmp_path: Path) -> Callable[..., Proxy]:
    """Starts a proxy from a raw config; state goes to a temp dir and retries are quick
    unless the config says otherwise."""

    def start(raw_config: dict[str, Any], env: dict[str, str] | None = None) -> Proxy:
        raw = dict(raw_config)
        raw["server"] = {"stateDir": str(tmp_path / "state"), **raw.get("server", {})}
        raw["retry"] = {"baseDelay": 1, "maxDelay": 20, **raw.get("retry", {})}
        raw["cache"] = {"enabled": False, "dir": str(tmp_path / "cache"), **raw.get("cache", {})}
        config = parse(raw, env or {})
        log = io.BytesIO()
        proxy = Proxy(loop_thread.serve(create_app(config, log_stream=log)), log)
        proxy.state_file = Path(config.server.stateDir or "") / "state.json"
        return proxy

    return start


def openai_provider(base_url: str, **extra: Any) -> dict[str, Any]:
    """An `openai`-type provider entry pointing at a fake."""
    return {"type": "openai", "baseURL": base_url + "/v1", **extra}


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m proxy ARGS` from the project root, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())
