"""The command line, run as a user runs it: `python -m proxy ...` in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests import rawhttp as http
from tests.conftest import ROOT, run_cli


@pytest.fixture
def clean_env(tmp_path):
    """No config file, no keys: what a new user has."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_help_lists_only_built_commands():
    out = run_cli("--help").stdout
    for command in ("serve", "check-config", "models", "accounts"):
        assert command in out
    for absent in ("login", "import", "service", "doctor"):
        assert absent not in out


def test_check_config_prints_resolved_aliases(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "providers": {
                    "nim": {
                        "type": "openai",
                        "baseURL": "http://127.0.0.1:1/v1",
                        "apiKeys": ["${K}"],
                        "models": {"q": {"id": "qwen/q"}},
                    },
                    "zen": {
                        "type": "openai",
                        "baseURL": "http://127.0.0.1:2/v1",
                        "models": {"big-pickle": {}},
                    },
                },
                "aliases": {"build": {"model": "nim/q", "fallbacks": ["zen/big-pickle"]}},
            }
        )
    )
    result = run_cli("check-config", "--config", str(path), env={**os.environ, "K": "nvapi-x"})
    assert result.returncode == 0, result.stderr
    assert "build: nim/q -> zen/big-pickle" in result.stdout
    assert "nim/q -> qwen/q" in result.stdout
    unset = run_cli(
        "check-config", "--config", str(path), env={k: v for k, v in os.environ.items() if k != "K"}
    )
    assert "0 key(s) (every apiKeys entry was empty: set its environment variable)" in unset.stdout


def test_bad_config_exits_1_naming_the_field(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "providers": {
                    "nvidia-nim": {"type": "openai", "baseURL": "http://x", "timeout": "fast"}
                }
            }
        )
    )
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 1
    assert 'providers.nvidia-nim.timeout: expected a number of seconds, got "fast"' in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("serve", "--config", str(path))
    assert result.returncode == 1 and "providers.nvidia-nim.timeout" in result.stderr


def test_models_command_lists_limits(clean_env):
    result = run_cli("models", env={**clean_env, "NVIDIA_API_KEY": "nvapi-test-000000000000"})
    assert result.returncode == 0
    assert any(
        line.startswith("nvidia-nim/qwen-3.5-397b") and "context=262144" in line
        for line in result.stdout.splitlines()
    )


def test_serve_refuses_public_host_without_api_keys(clean_env):
    result = run_cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), env=clean_env)
    assert result.returncode == 1
    assert "needs server.apiKeys" in result.stderr


def test_serve_embedded_default_starts_offline_and_serves(clean_env):
    port = free_port()
    env = {**clean_env, "NVIDIA_API_KEY": "nvapi-Serve0000000000000000a1b2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                status, _, body = http.get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not start")
        assert status == 200
        assert set(json.loads(body)["providers"]) == {"nvidia-nim", "opencode-zen"}
        _, _, models = http.get(f"http://127.0.0.1:{port}/v1/models")
        ids = [m["id"] for m in json.loads(models)["data"]]
        assert "opencode-zen/big-pickle" in ids and "nvidia-nim/qwen-3.5-397b" in ids
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    built = next(e for e in lines if e["event"] == "config_loaded")
    assert built["source"] == "embedded default"
    assert built["providers"]["nvidia-nim"]["accounts"] == 1
    assert built["providers"]["opencode-zen"]["models"] >= 1
    assert "Serve0000000000000000" not in stderr.decode()
