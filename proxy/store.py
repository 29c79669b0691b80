"""State files (account cooldowns and counters; thought signatures): written atomically and
debounced, read back at start."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

STATE_VERSION = 1


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a reader (or a crash) only ever sees a whole file:
    write a private temp file, fsync it, rename it over, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_state(path: Path, section: str = "accounts") -> dict[str, Any]:
    """One section of a state file ({} when there is no usable file): for state.json the
    saved accounts by provider and account id."""
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    found = raw.get(section) if isinstance(raw, dict) else None
    return found if isinstance(found, dict) else {}


class StateStore:
    """Collects changes and writes the whole state at most once per `delay` seconds."""

    def __init__(self, path: Path, delay: float, log: Any, section: str = "accounts") -> None:
        self.path = path
        self.section = section
        self.delay = delay
        self.log = log
        self.snapshot: Callable[[], dict[str, Any]] = dict
        self._scheduled: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._dirty = False

    def load(self) -> dict[str, Any]:
        if self.path.exists():
            self.path.parent.chmod(0o700)
        return read_state(self.path, self.section)

    def changed(self) -> None:
        self._dirty = True
        if self._scheduled is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no server running (a CLI command): nothing to schedule
        self._scheduled = loop.call_later(self.delay, self._start_flush)

    def _start_flush(self) -> None:
        self._scheduled = None
        self._task = asyncio.ensure_future(self.flush())

    async def flush(self) -> None:
        async with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            document = {
                "version": STATE_VERSION,
                "saved_at": time.time(),
                self.section: self.snapshot(),
            }
            data = orjson.dumps(document, option=orjson.OPT_INDENT_2)
            try:
                await asyncio.to_thread(write_atomic, self.path, data)
            except OSError as exc:
                self._dirty = True
                self.log.error("state_write_failed", path=str(self.path), error=str(exc))

    async def close(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._task is not None:
            await self._task
        await self.flush()
