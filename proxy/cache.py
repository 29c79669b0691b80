"""The response cache: an exact tier (whole request) and a semantic tier (same context, a
question that embeds alike and passes the lexical guard), both persisted under cache.dir."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from cachetools import TTLCache

from proxy.cachekeys import Keys, cacheable, request_keys
from proxy.config import CacheConfig
from proxy.embedder import Embedder
from proxy.guard import allows, normalise
from proxy.semantic import Entry, ScopeIndex
from proxy.store import write_atomic

VERSION = 1


@dataclass
class Plan:
    """What the cache may do for one request."""

    keys: Keys
    lookup_exact: bool
    lookup_semantic: bool
    store_exact: bool
    store_semantic: bool

    @property
    def lookup(self) -> bool:
        return self.lookup_exact or self.lookup_semantic

    @property
    def store(self) -> bool:
        return self.store_exact or self.store_semantic


@dataclass
class Hit:
    entry: Entry
    tier: str  # "hit" or "semantic-hit"
    similarity: float | None = None


class ResponseCache:
    def __init__(
        self,
        config: CacheConfig,
        embedder: Embedder | None,
        log: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.log = log
        self.clock = clock
        self.dir = Path(config.dir)
        self.exact: TTLCache[str, Entry] = TTLCache(config.maxSize, config.ttl, timer=clock)
        self.scopes: dict[str, ScopeIndex] = {}
        self.order: deque[tuple[str, Entry]] = deque()  # semantic entries, oldest first
        self.by_key: dict[str, Entry] = {}  # semantic entries by the exact key they answered
        self.semantic_count = 0
        self.dim: int | None = None
        self.stats: Counter[str] = Counter()
        self._dirty_scopes: set[str] = set()
        self._exact_dirty = False
        self._stats_dirty = False
        self._flush: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Task[bool]] = set()
        self._writing: asyncio.Task[None] | None = None

    # -- deciding ------------------------------------------------------------------------

    def plan(
        self, headers: Mapping[str, str], body: dict[str, Any], chain: tuple[str, ...]
    ) -> Plan | None:
        """None when the request bypasses the cache entirely."""
        mode = headers.get("x-switchyard-cache", "").strip().lower()
        if mode == "off":
            return None
        control = {d.strip().lower() for d in headers.get("Cache-Control", "").split(",")}
        exact = mode in ("", "exact", "on")
        semantic = (
            self.config.semantic and self.embedder is not None and mode in ("", "semantic", "on")
        )
        if mode != "semantic":  # the header opts in whatever the temperature
            temperature = body.get("temperature")
            if (
                isinstance(temperature, int | float)
                and temperature > self.config.semanticMaxTemperature
            ):
                semantic = False
        if (body.get("n") or 1) != 1:
            semantic = False
        keys = request_keys(body, chain)
        semantic = semantic and keys.scope is not None
        lookup = "no-cache" not in control
        store = "no-store" not in control
        return Plan(
            keys, exact and lookup, semantic and lookup, exact and store, semantic and store
        )

    # -- looking up ----------------------------------------------------------------------

    async def lookup(self, plan: Plan) -> Hit | None:
        self._stats_dirty = True
        self._schedule_write()
        if plan.lookup_exact:
            entry = self.exact.get(plan.keys.exact)
            if entry is not None and entry.expires > self.clock():
                self.stats["exact_hits"] += 1
                return Hit(entry, "hit")
            self.stats["exact_misses"] += 1
        if plan.lookup_semantic and plan.keys.scope in self.scopes:
            hit = await self._semantic_lookup(plan)
            self.stats["semantic_hits" if hit else "semantic_misses"] += 1
            return hit
        if plan.lookup_semantic:
            self.stats["semantic_misses"] += 1
        return None

    async def _semantic_lookup(self, plan: Plan) -> Hit | None:
        assert plan.keys.scope is not None and plan.keys.text is not None and self.embedder
        index = self.scopes[plan.keys.scope]
        question = normalise(plan.keys.text)
        query = await self.embedder.embed(question)
        now = self.clock()
        for score, entry in index.search(query, self.config.similarityThreshold):
            if entry.expires <= now:
                self._drop(plan.keys.scope, index, entry)
                continue
            if allows(question, entry.text):
                return Hit(entry, "semantic-hit", score)
        return None

    # -- storing -------------------------------------------------------------------------

    def store_soon(
        self, plan: Plan, completion: dict[str, Any], provider: str, target: str
    ) -> None:
        """Store once the current response is on its way: a plain callback when the embedder
        runs in-process (microseconds), a task when it is a remote call."""
        loop = asyncio.get_running_loop()
        if self.embedder is None or hasattr(self.embedder, "embed_now"):
            loop.call_soon(self._store, plan, completion, provider, target, None)
        else:
            task = loop.create_task(self.store(plan, completion, provider, target))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def store(
        self, plan: Plan, completion: dict[str, Any], provider: str, target: str
    ) -> bool:
        vector = None
        if self._needs_vector(plan) and self.embedder is not None and cacheable(completion):
            assert plan.keys.text is not None
            vector = await self.embedder.embed(normalise(plan.keys.text))
        return self._store(plan, completion, provider, target, vector)

    def _needs_vector(self, plan: Plan) -> bool:
        return plan.store_semantic and plan.keys.exact not in self.by_key

    def _store(
        self,
        plan: Plan,
        completion: dict[str, Any],
        provider: str,
        target: str,
        vector: np.ndarray | None,
    ) -> bool:
        if not plan.store or not cacheable(completion):
            return False
        expires = self.clock() + self.config.ttl
        if plan.store_exact:
            self.exact[plan.keys.exact] = Entry(completion, expires, provider, target)
            self._exact_dirty = True
        if plan.store_semantic and self.embedder is not None:
            assert plan.keys.scope is not None and plan.keys.text is not None
            known = self.by_key.get(plan.keys.exact)
            if known is not None:  # the same request again: refresh, don't add a twin row
                known.completion, known.expires = completion, expires
                self._dirty_scopes.add(plan.keys.scope)
            else:
                question = normalise(plan.keys.text)
                if vector is None:
                    vector = self.embedder.embed_now(question)  # type: ignore[attr-defined]
                entry = Entry(completion, expires, provider, target, question, key=plan.keys.exact)
                self._add(plan.keys.scope, vector, entry)
        self.stats["stored"] += 1
        self._schedule_write()
        return True

    def _add(self, scope: str, vector: np.ndarray, entry: Entry) -> None:
        if self.dim is None:
            self.dim = len(vector)
        index = self.scopes.get(scope)
        if index is None:
            index = self.scopes[scope] = ScopeIndex(self.dim)
        index.add(vector, entry)
        if entry.key:
            self.by_key[entry.key] = entry
        self.order.append((scope, entry))
        self.semantic_count += 1
        self._dirty_scopes.add(scope)
        while self.semantic_count > self.config.maxSize and self.order:
            old_scope, old = self.order.popleft()
            if old_scope in self.scopes:
                self._drop(old_scope, self.scopes[old_scope], old)

    def _drop(self, scope: str, index: ScopeIndex, entry: Entry) -> None:
        before = index.live
        index.remove(entry)
        if self.by_key.get(entry.key) is entry:
            del self.by_key[entry.key]
        if index.live < before:
            self.semantic_count -= 1
            self._dirty_scopes.add(scope)
        if not index.live:
            del self.scopes[scope]

    # -- persistence ---------------------------------------------------------------------

    def _schedule_write(self) -> None:
        if self._flush is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush = loop.call_later(1.0, self._start_write)

    def _start_write(self) -> None:
        self._flush = None
        self._writing = asyncio.ensure_future(self.save())

    async def save(self) -> None:
        """Write what changed: exact.json, and per changed scope <scope>.npy + <scope>.json."""
        files: dict[Path, bytes | None] = {}
        now = self.clock()
        if self._exact_dirty:
            self._exact_dirty = False
            entries = [
                {**entry.to_json(), "key": key}
                for key, entry in list(self.exact.items())
                if entry.expires > now
            ]
            files[self.dir / "exact.json"] = orjson.dumps({"version": VERSION, "entries": entries})
        for scope in self._dirty_scopes:
            index = self.scopes.get(scope)
            base = self.dir / "semantic" / scope
            if index is None:
                files[base.with_suffix(".npy")] = None
                files[base.with_suffix(".json")] = None
                continue
            matrix = index.matrix_bytes()
            meta = [entry.to_json() for entry in index.entries if entry is not None]
            files[base.with_suffix(".npy")] = matrix
            files[base.with_suffix(".json")] = orjson.dumps({"version": VERSION, "entries": meta})
        self._dirty_scopes.clear()
        self._stats_dirty = False
        files[self.dir / "stats.json"] = orjson.dumps(dict(self.stats))
        try:
            await asyncio.to_thread(_write_files, files)
        except OSError as exc:  # a full or read-only disk must not take the proxy down
            self.log.error("cache_write_failed", dir=str(self.dir), error=str(exc))

    def load(self) -> None:
        """Read back what an earlier run saved, skipping expired and unreadable entries."""
        now = self.clock()
        try:
            saved = orjson.loads((self.dir / "exact.json").read_bytes())
            for item in saved.get("entries", []):
                entry = Entry.from_json(item)
                if entry.expires > now:
                    self.exact[item["key"]] = entry
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            pass
        with contextlib.suppress(OSError, orjson.JSONDecodeError, TypeError, ValueError):
            self.stats.update(orjson.loads((self.dir / "stats.json").read_bytes()))
        loaded = []
        for meta_path in sorted((self.dir / "semantic").glob("*.json")):
            try:
                meta = orjson.loads(meta_path.read_bytes())
                matrix = np.load(meta_path.with_suffix(".npy"), allow_pickle=False)
                entries = [Entry.from_json(item) for item in meta["entries"]]
            except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
                continue
            if matrix.ndim != 2 or len(matrix) != len(entries):
                continue
            self.dim = self.dim or matrix.shape[1]
            if matrix.shape[1] != self.dim:
                continue  # saved by another embedder
            for vector, entry in zip(matrix, entries, strict=True):
                if entry.expires > now:
                    loaded.append((entry.expires - self.config.ttl, meta_path.stem, vector, entry))
        for _, scope, vector, entry in sorted(loaded, key=lambda item: item[0]):
            self._add(scope, vector, entry)
        self._dirty_scopes.clear()

    async def close(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._writing is not None:
            await self._writing
        if self._exact_dirty or self._dirty_scopes or self._stats_dirty:
            await self.save()

    def counts(self) -> dict[str, int]:
        return {"exact": len(self.exact), "semantic": self.semantic_count}


def _write_files(files: dict[Path, bytes | None]) -> None:
    for path, data in files.items():
        if data is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, data)


def disk_usage(directory: Path) -> int:
    return (
        sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        if directory.exists()
        else 0
    )


def read_stats(directory: Path) -> dict[str, Any]:
    """What `switchyard cache stats` prints, from the files a server wrote."""
    exact = 0
    semantic = 0
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        exact = len(orjson.loads((directory / "exact.json").read_bytes()).get("entries", []))
    for meta in (directory / "semantic").glob("*.json"):
        try:
            semantic += len(orjson.loads(meta.read_bytes()).get("entries", []))
        except (OSError, orjson.JSONDecodeError):
            continue
    try:
        stats = orjson.loads((directory / "stats.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        stats = {}

    def rate(hits: str, misses: str) -> float | None:
        total = stats.get(hits, 0) + stats.get(misses, 0)
        return round(stats.get(hits, 0) / total, 4) if total else None

    return {
        "dir": str(directory),
        "entries": {"exact": exact, "semantic": semantic},
        "hits": {"exact": stats.get("exact_hits", 0), "semantic": stats.get("semantic_hits", 0)},
        "hit_rate": {
            "exact": rate("exact_hits", "exact_misses"),
            "semantic": rate("semantic_hits", "semantic_misses"),
        },
        "stored": stats.get("stored", 0),
        "disk_bytes": disk_usage(directory),
    }


def clear(directory: Path) -> None:
    for name in ("exact.json", "stats.json"):
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / "semantic", ignore_errors=True)
