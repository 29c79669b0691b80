"""Config loading: substitution, defaults, paths, and errors that name the bad field."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from proxy.config import ConfigError, load, parse, substitute
from proxy.defaults import embedded_config


def provider(**extra):
    return {"type": "openai", "baseURL": "http://127.0.0.1:9/v1", **extra}


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A}", {}, ""),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-fallback}", {"A": ""}, "fallback"),
        ("${A:-fallback}", {"A": "set"}, "set"),
        ("pre-${A}-${B:-b}", {"A": "a"}, "pre-a-b"),
        ("$A and {A}", {"A": "x"}, "$A and {A}"),
        (["${A}", {"k": "${A}"}, 3, None], {"A": "v"}, ["v", {"k": "v"}, 3, None]),
    ],
)
def test_substitute(value, env, expected):
    assert substitute(value, env) == expected


def test_empty_keys_are_skipped_and_missing_key_list_means_no_auth():
    config = parse(
        {
            "server": {"apiKeys": ["${SWITCHYARD_API_KEY:-}"]},
            "providers": {
                "nim": provider(apiKeys=["${K1}", "${K2:-}", "${K3}"]),
                "ollama": provider(),
            },
        },
        {"K1": "nvapi-one", "K3": "nvapi-three"},
    )
    assert config.server.apiKeys == []
    assert config.providers["nim"].apiKeys == ["nvapi-one", "nvapi-three"]
    assert config.providers["ollama"].apiKeys is None


def test_defaults_and_home_expansion():
    config = parse({"cache": {"dir": "~/c"}, "server": {"stateDir": "~/s"}}, {})
    home = os.path.expanduser("~")
    assert config.cache.dir == f"{home}/c"
    assert config.server.stateDir == f"{home}/s"
    assert config.server.port == 4141 and config.server.host == "127.0.0.1"
    assert config.server.maxBodyBytes == 20 * 1024 * 1024
    from proxy.config import cache_dir

    assert cache_dir(parse({}, {}), {}) == Path(f"{home}/.cache/switchyard")
    assert cache_dir(parse({}, {}), {"XDG_CACHE_HOME": "/x"}) == Path("/x/switchyard")


def test_base_url_trailing_slash_dropped():
    config = parse({"providers": {"p": provider(baseURL="http://127.0.0.1:1/v1/")}}, {})
    assert config.providers["p"].baseURL == "http://127.0.0.1:1/v1"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"providers": {"nvidia-nim": provider(timeout="fast")}},
            'providers.nvidia-nim.timeout: expected a number of seconds, got "fast"',
        ),
        ({"providers": {"p": provider(tmeout=3)}}, "providers.p.tmeout: unknown key"),
        (
            {"providers": {"p": {"type": "openai"}}},
            'providers.p: baseURL is required for a provider of type "openai"',
        ),
        (
            {"providers": {"p": provider(type="gemeni")}},
            "providers.p.type: expected 'openai' or 'gemini', got \"gemeni\"",
        ),
        (
            {"providers": {"p": provider(baseURL="localhost:11434")}},
            "providers.p.baseURL: expected an http(s) URL",
        ),
        (
            {"providers": {"p": provider(apiKeys="nvapi-x")}},
            'providers.p.apiKeys: expected a list, got "nvapi-x"',
        ),
        (
            {"providers": {"p": provider(apiKeys=["a", 3])}},
            "providers.p.apiKeys[1]: expected a string, got 3",
        ),
        ({"server": {"port": "http"}}, 'server.port: expected an integer, got "http"'),
        ({"server": {"port": 70000}}, "server.port: "),
        (
            {"retry": {"baseDelay": "1s"}},
            'retry.baseDelay: expected a number of milliseconds, got "1s"',
        ),
        ({"cache": {"enabled": "maybe"}}, 'cache.enabled: expected true or false, got "maybe"'),
        ({"aliases": {"build": {}}}, "aliases.build.model: required key is missing"),
        (
            {"aliases": {"build": {"model": "nope/x"}}},
            "aliases.build.model: model 'nope/x' not found",
        ),
        (
            {
                "providers": {"p": provider(models={"m": {}})},
                "aliases": {"b": {"model": "p/m", "fallbacks": ["p/n"]}},
            },
            "aliases.b.fallbacks[0]: model 'p/n' not found; did you mean p/m?",
        ),
        ({"providers": {"bad name": provider()}}, "providers: provider name 'bad name'"),
        (
            {"logging": {"level": "loud"}},
            "logging.level: expected 'debug', 'info', 'warning' or 'error'",
        ),
    ],
)
def test_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError) as exc:
        parse(raw, {})
    assert message in str(exc.value)
    assert "Traceback" not in str(exc.value)


def test_load_reports_bad_json_with_position(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"server": {"port": 1,}}')
    with pytest.raises(ConfigError, match=r"not valid JSON at line 1 column 23"):
        load(path, {})


def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "nope.json", {})


def test_load_substitutes_from_env(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"providers": {"p": provider(apiKeys=["${MY_KEY}"])}}))
    assert load(path, {"MY_KEY": "k-123"}).providers["p"].apiKeys == ["k-123"]


def test_example_config_is_valid():
    example = os.path.join(os.path.dirname(__file__), "..", "config.example.json")
    config = load(example, {"NVIDIA_API_KEY": "nvapi-test"})
    assert config.providers["nvidia-nim"].apiKeys == ["nvapi-test"]
    assert "build" in config.aliases


@pytest.mark.parametrize(
    ("env", "providers", "zen_keys"),
    [
        ({}, ["opencode-zen"], ["public"]),
        ({"OPENCODE_API_KEY": "zen-key"}, ["opencode-zen"], ["zen-key"]),
        (
            {"NVIDIA_API_KEY": "nvapi-a", "NVIDIA_API_KEY_2": "nvapi-b"},
            ["nvidia-nim", "opencode-zen"],
            ["public"],
        ),
    ],
)
def test_embedded_default(env, providers, zen_keys):
    config = parse(embedded_config(env), env)
    assert sorted(config.providers) == providers
    assert config.providers["opencode-zen"].apiKeys == zen_keys
    assert "big-pickle" in config.providers["opencode-zen"].models
    if "NVIDIA_API_KEY" in env:
        assert config.providers["nvidia-nim"].apiKeys == ["nvapi-a", "nvapi-b"]
    if "GEMINI_API_KEY" in env:
        assert config.providers["google"].type == "gemini"
        assert config.providers["google"].models["gemini-3-flash"].variants["high"] == {
            "thinkingLevel": "high"
        }


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, expected):
    from proxy.config import is_loopback

    assert is_loopback(host) is expected
