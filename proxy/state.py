"""What a running server holds: config, router, account pools, HTTP session, logger."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from proxy.cache import ResponseCache
from proxy.config import Config
from proxy.masking import Scrubber
from proxy.metrics import Metrics
from proxy.pool import Pool
from proxy.routing import Router
from proxy.signatures import SignatureStore
from proxy.store import StateStore


@dataclass
class Switchyard:
    config: Config
    router: Router
    pools: dict[str, Pool]
    log: Any
    scrubber: Scrubber
    store: StateStore
    signatures: SignatureStore
    cache: ResponseCache | None = None
    metrics: Metrics = field(default_factory=Metrics)
    session: aiohttp.ClientSession = None  # type: ignore[assignment]  # set on startup
    started: float = field(default_factory=time.monotonic)


STATE = web.AppKey("switchyard", Switchyard)
REQUEST_ID = web.RequestKey("request_id", str)
LOG_FIELDS = web.RequestKey("log_fields", dict)
