"""The `switchyard` command line: serve, check-config, models, accounts, cache."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys

from proxy import __version__
from proxy.config import (
    Config,
    ConfigError,
    cache_dir,
    default_config_path,
    is_loopback,
    load,
    parse,
    state_dir,
)
from proxy.defaults import embedded_config
from proxy.routing import Router


def load_config(path: str | None) -> tuple[Config, str]:
    """The config named by --config, else the default file, else the embedded default."""
    if path:
        return load(path), path
    default = default_config_path()
    if default.exists():
        return load(default), str(default)
    env = dict(os.environ)
    return parse(embedded_config(env), env), "embedded default"


def describe(config: Config) -> list[str]:
    """Human-readable lines: each provider with its accounts and models, then each alias."""
    router = Router(config)
    lines = ["providers:"]
    for name, provider in config.providers.items():
        keys = provider.apiKeys
        accounts = "no auth" if keys is None else f"{len(keys)} key(s)"
        if keys == []:
            accounts += " (every apiKeys entry was empty: set its environment variable)"
        url = provider.baseURL or "(default URL)"
        lines.append(f"  {name}  type={provider.type}  {url}  {accounts}")
        for key, model in provider.models.items():
            lines.append(f"    {name}/{key} -> {model.id or key}")
    lines.append("aliases:")
    if not config.aliases:
        lines.append("  (none)")
    for alias in config.aliases:
        chain = " -> ".join(t.name for t in router.resolve(alias))
        lines.append(f"  {alias}: {chain}")
    return lines


def cmd_check_config(args: argparse.Namespace) -> int:
    config, source = load_config(args.config)
    print(f"config: {source} (valid)")
    print("\n".join(describe(config)))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    config, _ = load_config(args.config)
    for name, owner, extra in Router(config).listing():
        limit = extra.get("limit") or {}
        limits = " ".join(f"{k}={v}" for k, v in limit.items())
        print(f"{name:50} {owner:16} {limits}".rstrip())
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    """Each account's state from the state file (the server keeps it current while it runs)."""
    from proxy.pool import build_pools
    from proxy.store import read_state

    config, _ = load_config(args.config)
    path = state_dir(config) / "state.json"
    pools = build_pools(config, read_state(path))
    rows = [row for pool in pools.values() for row in pool.describe()]
    if args.json:
        print(json.dumps({"state_file": str(path), "accounts": rows}, indent=2))
        return 0
    headers = ("provider", "account", "state", "cooldown until", "today / rpd")
    table = [
        (
            r["provider"],
            r["account"],
            r["state"],
            r["cooldown_until"] or "-",
            f"{r['requests_today']} / {r['rpd'] or '-'}",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *table, strict=False)]
    for line in (headers, *table):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """`cache stats`: entries, hit rates and disk size from cache.dir; `cache clear`: empty it."""
    from proxy.cache import clear, read_stats

    config, _ = load_config(args.config)
    directory = cache_dir(config)
    if args.action == "clear":
        clear(directory)
        print(f"cleared {directory} (a running server keeps its in-memory entries until restart)")
        return 0
    stats = read_stats(directory)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    rates = stats["hit_rate"]

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    print(f"cache dir:   {stats['dir']} ({stats['disk_bytes']} bytes on disk)")
    print(
        f"entries:     exact {stats['entries']['exact']}, semantic {stats['entries']['semantic']}"
    )
    print(f"hits:        exact {stats['hits']['exact']}, semantic {stats['hits']['semantic']}")
    print(f"hit rate:    exact {percent(rates['exact'])}, semantic {percent(rates['semantic'])}")
    print(f"stored:      {stats['stored']} answers")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    config, source = load_config(args.config)
    server = config.server.model_copy(
        update={
            "host": args.host or config.server.host,
            "port": config.server.port if args.port is None else args.port,
        }
    )
    config = config.model_copy(update={"server": server})
    if not is_loopback(server.host) and not server.apiKeys:
        print(
            f"switchyard: refusing to listen on {server.host}: a non-loopback host needs "
            "server.apiKeys (set SWITCHYARD_API_KEY in the config's server.apiKeys)",
            file=sys.stderr,
        )
        return 1
    from aiohttp import web

    from proxy.server import create_app
    from proxy.state import STATE

    app = create_app(config)
    log = app[STATE].log
    log.info(
        "config_loaded",
        source=source,
        providers={
            name: {
                "type": p.type,
                "models": len(p.models),
                "accounts": 1 if p.apiKeys is None else len(p.apiKeys),
            }
            for name, p in config.providers.items()
        },
        aliases=list(config.aliases),
    )
    for name, provider in config.providers.items():
        if provider.apiKeys == []:
            log.warning(
                "provider_without_keys", provider=name, hint="every apiKeys entry was empty"
            )
    log.info("listening", url=f"http://{server.host}:{server.port}/v1", version=__version__)
    _settle_garbage_collector()
    web.run_app(
        app,
        host=server.host,
        port=server.port,
        handler_cancellation=True,
        access_log=None,
        print=None,
        loop=_new_loop(),
    )
    return 0


def _settle_garbage_collector() -> None:
    """Move everything built at startup out of the collector's way, and collect young objects
    less often: each request parses tens of KB of JSON into thousands of containers, and
    full collections over the whole heap would otherwise show up as latency spikes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard",
        description="One local OpenAI-compatible endpoint over many LLM backends.",
    )
    parser.add_argument("--version", action="version", version=f"switchyard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = f"config file (default: {default_config_path()}, else the embedded default)"

    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", help=config_help)
    serve.add_argument("--host", help="address to listen on (default: server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port)")
    serve.set_defaults(run=cmd_serve)

    check = commands.add_parser(
        "check-config", help="validate the config, print what it resolves to"
    )
    check.add_argument("--config", help=config_help)
    check.set_defaults(run=cmd_check_config)

    models = commands.add_parser("models", help="list aliases and provider models with limits")
    models.add_argument("--config", help=config_help)
    models.set_defaults(run=cmd_models)

    accounts = commands.add_parser(
        "accounts", help="each account: state, cooldown, requests today (from the state file)"
    )
    accounts.add_argument("--config", help=config_help)
    accounts.add_argument("--json", action="store_true", help="machine-readable output")
    accounts.set_defaults(run=cmd_accounts)

    cache = commands.add_parser("cache", help="response cache: stats or clear")
    cache.add_argument("action", choices=["stats", "clear"])
    cache.add_argument("--config", help=config_help)
    cache.add_argument("--json", action="store_true", help="machine-readable stats")
    cache.set_defaults(run=cmd_cache)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"switchyard: config error:\n{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
