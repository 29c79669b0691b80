"""POST /v1/embeddings: passed to OpenAI-compatible providers, with the same fallbacks as chat."""

from __future__ import annotations

from aiohttp import web

from proxy.accounts import Account
from proxy.errors import bad_request
from proxy.fallback import FallbackChain
from proxy.intake import read_json_body, resolve
from proxy.routing import Target
from proxy.state import LOG_FIELDS, REQUEST_ID, STATE, Switchyard
from proxy.upstream import Answer, call_embeddings


async def embeddings(request: web.Request) -> web.Response:
    app = request.app[STATE]
    body = await read_json_body(request, app.config.server.maxBodyBytes)
    text = body.get("input")
    if not isinstance(text, str | list) or not text:
        raise bad_request("'input' is required: a string or a non-empty list", "input")
    chain = FallbackChain(app, resolve(app, body["model"]))

    async def call(target: Target, account: Account) -> Answer:
        return await call_embeddings(app.session, target, account, body)

    try:
        answer = await chain.run(call)
    finally:
        request[LOG_FIELDS].update(model=body["model"], attempts=chain.attempts)
    request[LOG_FIELDS].update(provider=answer.target.provider, target=answer.target.name)
    headers = {
        "x-request-id": request[REQUEST_ID],
        "x-switchyard-provider": answer.target.provider,
        "x-switchyard-model": answer.target.name,
    }
    if chain.fallback:
        headers["x-switchyard-fallback"] = str(chain.fallback)
    return web.Response(body=answer.raw, content_type="application/json", headers=headers)


async def embed_text(app: Switchyard, model: str, text: str) -> list[float]:
    """One embedding from an OpenAI-compatible upstream, for the semantic cache."""
    chain = FallbackChain(app, resolve(app, model))
    body = {"model": model, "input": [text], "encoding_format": "float"}

    async def call(target: Target, account: Account) -> Answer:
        return await call_embeddings(app.session, target, account, body)

    answer = await chain.run(call)
    return answer.completion["data"][0]["embedding"]
