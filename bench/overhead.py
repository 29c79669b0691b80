"""Proxy overhead: direct upstream vs a bare aiohttp passthrough (the floor) vs switchyard.

Not a test. Starts a canned fake upstream, the bare passthrough and `switchyard serve` as separate
processes, each pinned to one core, then sends the OpenCode agent-turn fixture (31 KB, 10 tool
schemas) non-streaming and streaming at concurrency 1 and 32, and prints p50/p99 latency and
requests/s for each, from one run. Judge by the ratios within a run: this machine is noisy.

    .venv/bin/python bench/overhead.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "clients" / "opencode-1.18.33-agent-turn.json"
UPSTREAM_MODEL = "fake-model"

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": UPSTREAM_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7000, "completion_tokens": 9, "total_tokens": 7009},
    }
).encode()


def _sse_events() -> list[bytes]:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": UPSTREAM_MODEL,
    }
    deltas = [{"role": "assistant", "content": ""}] + [
        {"content": w} for w in ("Hello! ", "How can ", "I help ", "you today?")
    ]
    events = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append(
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 7000, "completion_tokens": 9, "total_tokens": 7009},
        }
    )
    return [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


SSE_EVENTS = _sse_events()


def run_upstream(port: int) -> None:
    """The fake upstream: reads the body, answers a canned completion or SSE stream."""
    import uvloop
    from aiohttp import web

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if b'"stream":true' in body or b'"stream": true' in body:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for event in SSE_EVENTS:
                await response.write(event)
            await response.write_eof()
            return response
        return web.Response(body=COMPLETION, content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop()
    )


def run_floor(port: int, upstream_port: int) -> None:
    """The floor: a bare aiohttp passthrough (read, set model, forward, relay), ~30 lines."""
    from aiohttp import web

    url = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
    state = {}

    async def start(app: web.Application) -> None:
        state["session"] = aiohttp.ClientSession()

    async def chat(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        body["model"] = UPSTREAM_MODEL
        headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-key"}
        async with state["session"].post(url, data=json.dumps(body), headers=headers) as upstream:
            if body.get("stream"):
                response = web.StreamResponse(
                    status=upstream.status, headers={"Content-Type": "text/event-stream"}
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
            return web.Response(
                status=upstream.status, body=await upstream.read(), content_type="application/json"
            )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(start)
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(args: list[str], core: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    os.sched_setaffinity(process.pid, {core})
    return process


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url) as response:
                    await response.read()
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


async def load(
    url: str, payload: bytes, stream: bool, concurrency: int, total: int
) -> tuple[list[float], float]:
    """Send `total` requests with `concurrency` in flight; per-request latencies and requests/s."""
    latencies: list[float] = []
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency)
    # The proxy's cache stays on (keys computed, answers stored) but never answers: every request
    # must reach the upstream for the comparison to mean anything.
    headers = {"Content-Type": "application/json", "Cache-Control": "no-cache"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(url, data=payload, headers=headers) as response:
                    body = await response.read()
                    if response.status != 200 or (
                        stream and not body.endswith(b"data: [DONE]\n\n")
                    ):
                        raise RuntimeError(f"{url}: HTTP {response.status} {body[:200]!r}")
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, len(latencies) / elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a process has used so far (0 for the load generator's peers)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    targets: dict[str, str], pids: dict[str, int | None], args: argparse.Namespace
) -> list[tuple]:
    body = json.loads(FIXTURE.read_text())["body"]
    rows = []
    for stream in (False, True):
        payload = json.dumps({**body, "model": "bench", "stream": stream}).encode()
        for concurrency in (1, 32):
            total = args.requests if concurrency == 1 else args.requests * 2
            results: dict[str, tuple[list[float], list[float]]] = {
                name: ([], []) for name in targets
            }
            cpu = dict.fromkeys(targets, 0.0)
            for url in targets.values():  # warm up connections and caches
                await load(url, payload, stream, concurrency, min(200, total))
            for _ in range(args.rounds):
                for name, url in targets.items():  # interleaved, so drift hits all alike
                    before = cpu_seconds(pids[name])
                    latencies, rps = await load(url, payload, stream, concurrency, total)
                    cpu[name] += cpu_seconds(pids[name]) - before
                    results[name][0].extend(latencies)
                    results[name][1].append(rps)
            for name, (latencies, rps) in results.items():
                rows.append(
                    (
                        "stream" if stream else "non-stream",
                        concurrency,
                        name,
                        percentile(latencies, 0.5) * 1000,
                        percentile(latencies, 0.99) * 1000,
                        statistics.median(rps),
                        cpu[name] / len(latencies) * 1e6,
                    )
                )
    return rows


def report(rows: list[tuple]) -> None:
    print(f"machine: {os.cpu_count()} cores; upstream + load on one core, proxies on the other")
    head = ("mode", "conc", "server", "p50 ms", "p99 ms", "added p50", "req/s", "CPU us/req")
    print("{:10} {:>4} {:8} {:>8} {:>8} {:>10} {:>8} {:>10}".format(*head))
    direct = {(r[0], r[1]): r for r in rows if r[2] == "direct"}
    for mode, concurrency, name, p50, p99, rps, cpu in rows:
        added = p50 - direct[(mode, concurrency)][3]
        added_text = "" if name == "direct" else f"+{added:.3f}"
        cpu_text = "" if name == "direct" else f"{cpu:.0f}"
        cells = f"{mode:10} {concurrency:>4} {name:8} {p50:8.3f} {p99:8.3f}"
        print(f"{cells} {added_text:>10} {rps:8.0f} {cpu_text:>10}")
    print()
    print("ratios (proxy / floor): added p50 latency, requests/s")
    by_key = {(r[0], r[1], r[2]): r for r in rows}
    for mode, concurrency in direct:
        base = direct[(mode, concurrency)][3]
        floor, proxy = by_key[(mode, concurrency, "floor")], by_key[(mode, concurrency, "proxy")]
        added_ratio = (proxy[3] - base) / max(floor[3] - base, 1e-9)
        throughput = proxy[5] / floor[5]
        print(
            f"  {mode:10} c={concurrency:<3} added p50 x{added_ratio:.2f}   req/s x{throughput:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=2000,
        help="requests per measurement at c=1 (twice that at c=32)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", type=int, default=1, help="API keys in the proxy's pool")
    parser.add_argument("--rpm", type=int, help="rateLimit.rpm per key (pacing on when set)")
    parser.add_argument("--rpd", type=int, help="rateLimit.rpd per key (daily counters)")
    parser.add_argument(
        "--baseline-root", help="another checkout of switchyard to run beside this one as 'before'"
    )
    parser.add_argument("--role", choices=["upstream", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "upstream":
        return run_upstream(args.port)
    if args.role == "floor":
        return run_floor(args.port, args.upstream_port)

    cores = sorted(os.sched_getaffinity(0))
    upstream_core, proxy_core = cores[0], cores[-1]
    names = ["upstream", "floor", "proxy"] + (["before"] if args.baseline_root else [])
    ports = {name: free_port() for name in names}
    me = [sys.executable, __file__]
    config = {
        "providers": {
            "up": {
                "type": "openai",
                "baseURL": f"http://127.0.0.1:{ports['upstream']}/v1",
                "apiKeys": [f"bench-key-{n:012d}" for n in range(args.keys)],
                "models": {"m": {"id": UPSTREAM_MODEL}},
                "rateLimit": {
                    k: v for k, v in (("rpm", args.rpm), ("rpd", args.rpd)) if v is not None
                },
            }
        },
        "aliases": {"bench": {"model": "up/m"}},
    }
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config))
        env = {**os.environ, "XDG_STATE_HOME": tmp, "XDG_CACHE_HOME": tmp}

        def serve(port: int, root: Path) -> list[str]:
            script = "import sys; sys.path.insert(0, sys.argv.pop(1)); import runpy; "
            script += "runpy.run_module('proxy', run_name='__main__')"
            config_arg = ["--config", str(config_path), "--port", str(port)]
            return [sys.executable, "-c", script, str(root), "serve", *config_arg]

        upstream_args = ["--role", "upstream", "--port", str(ports["upstream"])]
        floor_args = ["--role", "floor", "--port", str(ports["floor"])]
        floor_args += ["--upstream-port", str(ports["upstream"])]
        processes = {
            "direct": spawn([*me, *upstream_args], upstream_core),
            "floor": spawn([*me, *floor_args], proxy_core),
            "proxy": spawn(serve(ports["proxy"], ROOT), proxy_core, env),
        }
        if args.baseline_root:
            root = Path(args.baseline_root).resolve()
            processes["before"] = spawn(serve(ports["before"], root), proxy_core, env)
        pids: dict[str, int | None] = {name: p.pid for name, p in processes.items()}
        pids["direct"] = None
        os.sched_setaffinity(0, {upstream_core})
        try:
            ports["direct"] = ports.pop("upstream")
            targets = {
                name: f"http://127.0.0.1:{ports[name]}/v1/chat/completions"
                for name in ("direct", "floor", "proxy", "before")
                if name in ports
            }

            async def run() -> list[tuple]:
                for name in targets:
                    if name in ("proxy", "before"):
                        await wait_ready(f"http://127.0.0.1:{ports[name]}/health")
                        continue
                    for _ in range(200):
                        try:
                            ping = json.dumps({"model": "x", "messages": []}).encode()
                            await load(targets[name], ping, False, 1, 1)
                            break
                        except (aiohttp.ClientConnectionError, RuntimeError):
                            await asyncio.sleep(0.05)
                return await measure(targets, pids, args)

            try:
                import uvloop

                rows = uvloop.run(run())
            except ImportError:
                rows = asyncio.run(run())
            report(rows)
        finally:
            for process in processes.values():
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    main()
