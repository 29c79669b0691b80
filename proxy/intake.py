"""Reading what clients send: the JSON body, its required fields, the model it names."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from proxy.errors import ProxyError, bad_request
from proxy.routing import Target, UnknownModel
from proxy.state import Switchyard


async def read_json_body(request: web.Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx naming what is wrong with it."""
    too_large = ProxyError(
        413,
        f"request body is larger than server.maxBodyBytes ({limit} bytes)",
        code="request_too_large",
    )
    if (request.content_length or 0) > limit:
        raise too_large
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if not raw:
        raise bad_request("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request(f"request body must be a JSON object, got {type(body).__name__}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a non-empty string", "model")
    return body


def check_messages(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' is required and must be a non-empty list", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"'messages[{index}]' must be an object", f"messages[{index}]")


def resolve(app: Switchyard, model: str) -> tuple[Target, ...]:
    try:
        return app.router.resolve(model)
    except UnknownModel as exc:
        raise ProxyError(
            404, exc.message, code="model_not_found", param="model", details=[]
        ) from None
