"""The aiohttp application: routes, request framing (ids, auth, errors, logs), startup."""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import IO, Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from proxy import __version__
from proxy.accounts import all_secrets
from proxy.cache import ResponseCache
from proxy.chat import chat_completions
from proxy.config import Config, cache_dir, state_dir
from proxy.embedder import Embedder, RemoteEmbedder, local_embedder
from proxy.embeddings import embed_text, embeddings
from proxy.errors import ProxyError
from proxy.logs import make_logger
from proxy.masking import Scrubber
from proxy.pool import build_pools
from proxy.routing import Router
from proxy.signatures import SignatureStore
from proxy.state import LOG_FIELDS, REQUEST_ID, STATE, Switchyard
from proxy.store import StateStore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def error_response(app: Switchyard, err: ProxyError, request_id: str) -> web.Response:
    response = err.response(request_id)
    response.body = app.scrubber.scrub_bytes(response.body)  # type: ignore[arg-type]
    return response


def _authorized(app: Switchyard, request: web.Request) -> bool:
    keys = app.config.server.apiKeys
    if not keys:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        token = request.headers.get("x-api-key", "")
    given = token.strip().encode()
    return any(hmac.compare_digest(given, key.encode()) for key in keys)


@web.middleware
async def frame(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, auth, errors in OpenAI's shape, and one log line per request."""
    app = request.app[STATE]
    given_id = request.headers.get("X-Request-ID", "")
    request_id = given_id if _REQUEST_ID.match(given_id) else "req_" + secrets.token_hex(12)
    request[REQUEST_ID] = request_id
    fields: dict[str, Any] = {}
    request[LOG_FIELDS] = fields
    started = time.perf_counter()
    try:
        if request.path.startswith("/v1/") and not _authorized(app, request):
            raise ProxyError(
                401,
                "missing or wrong API key: send Authorization: Bearer <one of server.apiKeys>",
                code="invalid_api_key",
            )
        response = await handler(request)
    except asyncio.CancelledError:
        _log_request(app, request, 499, started, fields)
        raise
    except ProxyError as err:
        response = error_response(app, err, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"{exc.reason}: {request.method} {request.path}"
        response = error_response(app, ProxyError(exc.status, message), request_id)
    except Exception:
        app.log.exception("internal_error", request_id=request_id, path=request.path)
        err = ProxyError(500, "internal error in switchyard; see its log", code="internal_error")
        response = error_response(app, err, request_id)
    if not response.prepared:
        response.headers["x-request-id"] = request_id
    _log_request(app, request, response.status, started, fields)
    return response


def _log_request(
    app: Switchyard, request: web.Request, status: int, started: float, fields: dict[str, Any]
) -> None:
    """The request's one log line (info for the API, debug for probes) and its counter."""
    resource = request.match_info.route.resource
    endpoint = resource.canonical if resource is not None else "other"
    app.metrics.request(request.method, endpoint, status)
    level = app.log.info if request.path.startswith("/v1/") else app.log.debug
    level(
        "request",
        request_id=request[REQUEST_ID],
        method=request.method,
        path=request.path,
        status=status,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        **fields,
    )


async def health(request: web.Request) -> web.Response:
    app = request.app[STATE]
    providers = {name: ring.counts() for name, ring in app.pools.items()}
    usable = sum(1 for counts in providers.values() if counts["usable"])
    if providers and usable == len(providers):
        status = "healthy"
    else:
        status = "degraded" if usable else "unhealthy"
    body = {
        "status": status,
        "version": __version__,
        "uptime": round(time.monotonic() - app.started, 3),
        "providers": providers,
    }
    return web.Response(
        status=200 if usable else 503, body=orjson.dumps(body), content_type="application/json"
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[STATE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def models_body(router: Router) -> bytes:
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": owner, **extra}
        for name, owner, extra in router.listing()
    ]
    return orjson.dumps({"object": "list", "data": data})


def build_cache(config: Config, state: Switchyard) -> ResponseCache:
    """The response cache with its embedder: local unless cache.embedder names provider/model."""
    settings = config.cache.model_copy(update={"dir": str(cache_dir(config))})
    embedder: Embedder | None = None
    if settings.semantic:
        spec = settings.embedder
        if spec and "/" in spec:

            async def fetch(model: str, text: str) -> list[float]:
                return await embed_text(state, model, text)

            embedder = RemoteEmbedder(spec, fetch)
        else:
            embedder = local_embedder(spec)
    cache = ResponseCache(settings, embedder, state.log)
    cache.load()
    state.log.info(
        "cache_loaded",
        dir=settings.dir,
        embedder=embedder.name if embedder else None,
        **cache.counts(),
    )
    return cache


def create_app(config: Config, log_stream: IO[bytes] | None = None) -> web.Application:
    secrets_list = all_secrets(config)
    router = Router(config)
    log = make_logger(config.logging.level, config.logging.format, secrets_list, log_stream)
    directory = state_dir(config)
    store = StateStore(directory / "state.json", config.server.stateWriteDelay, log)
    signatures = SignatureStore(directory / "signatures.json", config.server.stateWriteDelay, log)
    pools = build_pools(config, store.load(), store.changed, log.info)
    store.snapshot = lambda: {name: pool.snapshot() for name, pool in pools.items()}
    state = Switchyard(
        config=config,
        router=router,
        pools=pools,
        log=log,
        scrubber=Scrubber(secrets_list),
        store=store,
        signatures=signatures,
    )
    if config.cache.enabled:
        state.cache = build_cache(config, state)
    app = web.Application(middlewares=[frame], client_max_size=config.server.maxBodyBytes)
    app[STATE] = state
    listing = models_body(router)

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=listing, content_type="application/json")

    async def open_session(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        state.session = aiohttp.ClientSession(connector=connector, trust_env=False)

    async def close_session(app: web.Application) -> None:
        await state.session.close()
        await store.close()
        await signatures.close()
        if state.cache is not None:
            await state.cache.close()

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    return app
