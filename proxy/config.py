"""The config file: pydantic models, ${VAR} substitution, loading and readable errors."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PROVIDER_TYPES = ("openai", "gemini")

Seconds = Annotated[float, Field(ge=0)]
Milliseconds = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]

# Units named in error messages, by field name.
UNITS = {
    "timeout": "a number of seconds",
    "maxWait": "a number of seconds",
    "ttl": "a number of seconds",
    "keepaliveInterval": "a number of seconds",
    "stateWriteDelay": "a number of seconds",
    "baseDelay": "a number of milliseconds",
    "maxDelay": "a number of milliseconds",
}


class ConfigError(Exception):
    """A config problem, already phrased for the user (field path and what was expected)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _expand_path(value: str) -> str:
    return os.path.expanduser(value)


def _non_empty(values: list[str]) -> list[str]:
    return [v for v in values if v]


Keys = Annotated[list[str], AfterValidator(_non_empty)]
PathStr = Annotated[str, AfterValidator(_expand_path)]


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 4141
    apiKeys: Keys = []
    maxBodyBytes: PositiveInt = 20 * 1024 * 1024
    keepaliveInterval: Annotated[float, Field(gt=0)] = 5.0
    stateDir: PathStr | None = None
    stateWriteDelay: Seconds = 1.0


class RateLimit(Strict):
    rpm: PositiveInt | None = None
    rpd: PositiveInt | None = None
    maxWait: Seconds = 5.0
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'expected an IANA time zone such as "UTC" or "America/Los_Angeles", got {value!r}'
            ) from None
        return value


class Supports(Strict):
    streaming: bool = True


class ModelLimit(Strict):
    context: PositiveInt | None = None
    output: PositiveInt | None = None


class ModelConfig(Strict):
    id: str | None = None
    name: str | None = None
    limit: ModelLimit | None = None
    variants: dict[str, dict[str, Any]] = {}
    supports: Supports | None = None
    family: str | None = None


class ProviderConfig(Strict):
    type: Literal[PROVIDER_TYPES]  # type: ignore[valid-type]
    baseURL: str | None = None
    apiKeys: Keys | None = None
    headers: dict[str, str] = {}
    timeout: Seconds = 120.0
    rateLimit: RateLimit = RateLimit()
    supports: Supports = Supports()
    dropParams: list[str] = []
    models: dict[str, ModelConfig] = {}

    @model_validator(mode="after")
    def _needs_url(self) -> ProviderConfig:
        if self.type == "openai" and not self.baseURL:
            raise ValueError('baseURL is required for a provider of type "openai"')
        return self

    @field_validator("baseURL")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/")


class AliasConfig(Strict):
    model: str
    fallbacks: list[str] = []
    description: str | None = None


class RetryConfig(Strict):
    maxRetries: Annotated[int, Field(ge=0)] = 3
    baseDelay: Milliseconds = 1000
    maxDelay: Milliseconds = 60000
    backoffMultiplier: Annotated[float, Field(ge=1)] = 2


class CacheConfig(Strict):
    enabled: bool = True
    ttl: Seconds = 3600
    maxSize: PositiveInt = 1000
    semantic: bool = True
    similarityThreshold: Annotated[float, Field(gt=0, le=1)] = 0.95
    semanticMaxTemperature: Annotated[float, Field(ge=0)] = 0.3
    dir: PathStr | None = None  # default: $XDG_CACHE_HOME/switchyard, else ~/.cache/switchyard
    embedder: str | None = None  # "wordllama" (default when installed), "ngram", or provider/model


class LoggingConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class Config(Strict):
    server: ServerConfig = ServerConfig()
    providers: dict[str, ProviderConfig] = {}
    aliases: dict[str, AliasConfig] = {}
    retry: RetryConfig = RetryConfig()
    cache: CacheConfig = CacheConfig()
    logging: LoggingConfig = LoggingConfig()

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, value: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise ValueError(
                    f"provider name {name!r} may hold only letters, digits, '.', '_' and '-'"
                )
        return value


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(value: Any, env: dict[str, str]) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of a JSON tree."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: env.get(m[1]) or (m[2] or ""), value)
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    return value


_EXPECTED = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-after", "function-plain", "literal[")):
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    field = next((p for p in reversed(error["loc"]) if isinstance(p, str)), "")
    got = json.dumps(error.get("input"), default=str)
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"expected {error['ctx']['expected']}, got {got}"
    if kind in _EXPECTED:
        expected = UNITS.get(field, _EXPECTED[kind])
        return f"expected {expected}, got {got}"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    return f"{error['msg']}, got {got}"


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: the JSON path of the bad field, then what was expected."""
    return "\n".join(f"{_path(e['loc'])}: {_describe(e)}" for e in exc.errors())


def parse(raw: Any, env: dict[str, str] | None = None) -> Config:
    """Validate a decoded JSON document (after substitution) into a Config."""
    try:
        config = Config.model_validate(substitute(raw, dict(os.environ) if env is None else env))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    check_references(config)
    return config


def load(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read, substitute and validate a config file; ConfigError names what is wrong."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level")
    return parse(raw, env)


def check_references(config: Config) -> None:
    """Every alias target must name a configured provider and model."""
    from proxy.routing import Router, UnknownModel

    router = Router(config)
    problems = []
    for alias, entry in config.aliases.items():
        if alias in config.providers:
            problems.append(f"aliases.{alias}: alias name is also a provider name")
        for where, name in [("model", entry.model)] + [
            (f"fallbacks[{i}]", n) for i, n in enumerate(entry.fallbacks)
        ]:
            try:
                router.resolve_target(name)
            except UnknownModel as exc:
                problems.append(f"aliases.{alias}.{where}: {exc.message}")
    if problems:
        raise ConfigError("\n".join(problems))


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _xdg_dir(variable: str, fallback: str, env: dict[str, str] | None) -> Path:
    """$variable/switchyard, else fallback/switchyard (the XDG base directory rules)."""
    env = dict(os.environ) if env is None else env
    return Path(env.get(variable) or os.path.expanduser(fallback)) / "switchyard"


def default_config_path(env: dict[str, str] | None = None) -> Path:
    return _xdg_dir("XDG_CONFIG_HOME", "~/.config", env) / "config.json"


def cache_dir(config: Config, env: dict[str, str] | None = None) -> Path:
    if config.cache.dir:
        return Path(config.cache.dir)
    return _xdg_dir("XDG_CACHE_HOME", "~/.cache", env)


def state_dir(config: Config, env: dict[str, str] | None = None) -> Path:
    if config.server.stateDir:
        return Path(config.server.stateDir)
    return _xdg_dir("XDG_STATE_HOME", "~/.local/state", env)
