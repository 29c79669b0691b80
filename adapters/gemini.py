"""Google Gemini (generateContent): OpenAI chat requests -> Gemini bodies; Gemini answers,
stream events and errors -> OpenAI shapes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from adapters.errors import error_type
from adapters.gemini_schema import SchemaError, clean_schema
from adapters.request import ChatRequest, RequestError

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
# Google's documented stand-in for a thought signature when history did not come from Gemini.
SKIP_SIGNATURE = "skip_thought_signature_validator"
PASSTHROUGH = False
USAGE_MARKER = b'"usageMetadata"'

_FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(?:;[\w=.-]+)*;base64,(.*)$", re.DOTALL)
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "stop",
    "MALFORMED_FUNCTION_CALL": "stop",
    "OTHER": "stop",
}
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
THINKING_KEYS = ("thinkingLevel", "thinkingBudget", "includeThoughts")
GENERATION_FIELDS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def chat_url(base_url: str | None, upstream_id: str, stream: bool) -> str:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{base_url or DEFAULT_BASE_URL}/models/{upstream_id}:{action}"


def request_headers(api_key: str | None, extra: Mapping[str, str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **extra}
    if api_key:
        headers["x-goog-api-key"] = api_key
    return headers


def quota_family(upstream_id: str) -> str:
    """Gemini counts quota per model, so a 429 cools only that model on the key."""
    return upstream_id


def is_gemini_3(upstream_id: str) -> bool:
    return upstream_id.removeprefix("models/").startswith("gemini-3")


# -- request -------------------------------------------------------------------------------


def build_chat_body(request: ChatRequest) -> dict[str, Any]:
    """The Gemini request body for an OpenAI chat request; RequestError names what cannot be
    translated."""
    body = request.body
    system, contents = convert_messages(
        body["messages"], request.images, request.signatures, is_gemini_3(request.upstream_id)
    )
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    declarations = convert_tools(body.get("tools"))
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
    tool_config = convert_tool_choice(body.get("tool_choice"))
    if tool_config:
        out["toolConfig"] = tool_config
    generation = generation_config(body, request.upstream_id, request.settings)
    if generation:
        out["generationConfig"] = generation
    for param in request.drop_params:
        out.pop(param, None)
    return out


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                texts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                texts.append(part)
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestError(f"{where}[{index}]: a {kind!r} part is not allowed here", where)
        return "\n".join(t for t in texts if t)
    raise RequestError(f"{where} must be a string or a list of parts", where)


def _user_parts(
    content: Any, where: str, images: Mapping[str, tuple[str, str]]
) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise RequestError(f"{where} must be a string or a list of parts", where)
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        spot = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "input_text"):
            if part.get("text"):
                parts.append({"text": str(part["text"])})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise RequestError(f"{spot}.image_url.url must be a string", spot)
            parts.append({"inlineData": _inline_image(url, spot, images)})
        else:
            raise RequestError(f"{spot}: content parts of type {kind!r} are not supported", spot)
    return parts


def _inline_image(url: str, where: str, images: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    match = _DATA_URL.match(url)
    if match:
        return {"mimeType": match[1] or "image/png", "data": match[2]}
    if url in images:
        mime, data = images[url]
        return {"mimeType": mime, "data": data}
    raise RequestError(f"{where}: image URL must be a data: URL or an http(s) URL", where)


def image_urls(messages: Any) -> list[str]:
    """The http(s) image URLs a request carries, which the proxy fetches and inlines."""
    urls = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else image
                if isinstance(url, str) and url.startswith(("http://", "https://")):
                    urls.append(url)
    return urls


def _call_parts(
    calls: Any, where: str, signatures: Mapping[str, str], needs_signature: bool
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    if not isinstance(calls, list):
        raise RequestError(f"{where} must be a list", where)
    parts = []
    names = {}
    for index, call in enumerate(calls):
        spot = f"{where}[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(f"{spot}.function.name is required", spot)
        arguments = function.get("arguments") or "{}"
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError as exc:
            raise RequestError(
                f"{spot}.function.arguments is not valid JSON ({exc.msg} at {exc.pos})", spot
            ) from None
        if not isinstance(args, dict):
            raise RequestError(f"{spot}.function.arguments must be a JSON object", spot)
        part: dict[str, Any] = {"functionCall": {"name": function["name"], "args": args}}
        call_id = call.get("id")
        signature = signatures.get(call_id) if isinstance(call_id, str) else None
        if signature is None and needs_signature and not parts:
            signature = SKIP_SIGNATURE
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
        if isinstance(call_id, str):
            names[call_id] = function["name"]
    return parts, names


def _tool_response(content: Any, where: str) -> dict[str, Any]:
    text = _text_of(content, where)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"content": text}


def convert_messages(
    messages: list[dict[str, Any]],
    images: Mapping[str, tuple[str, str]],
    signatures: Mapping[str, str],
    gemini_3: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents): system and developer messages become the system
    instruction; tool results of one assistant turn go back together, one per call, in call
    order; consecutive turns of one role merge; empty text never goes out."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    pending: list[str] = []  # ids of the last assistant turn's calls still without a result
    results: dict[str, dict[str, Any]] = {}

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    def flush_results() -> None:
        if not pending:
            return
        parts = []
        for call_id in pending:
            response = results.pop(call_id, None)
            if response is None:
                response = {"error": "the client sent no result for this call"}
            parts.append({"functionResponse": {"name": call_names[call_id], "response": response}})
        pending.clear()
        add("user", parts)

    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in call_names:
                raise RequestError(
                    f"{where}.tool_call_id {call_id!r} does not match a tool call of an "
                    "earlier assistant message",
                    f"{where}.tool_call_id",
                )
            if call_id not in pending:
                pending.append(call_id)
            results[call_id] = _tool_response(message.get("content"), f"{where}.content")
            continue
        flush_results()
        if role in ("system", "developer"):
            text = _text_of(message.get("content"), f"{where}.content")
            if text:
                system.append({"text": text})
        elif role == "user":
            add("user", _user_parts(message.get("content"), f"{where}.content", images))
        elif role == "assistant":
            parts: list[dict[str, Any]] = []
            text = _text_of(message.get("content"), f"{where}.content")
            if text:
                parts.append({"text": text})
            if message.get("tool_calls"):
                calls, names = _call_parts(
                    message["tool_calls"], f"{where}.tool_calls", signatures, gemini_3
                )
                parts.extend(calls)
                call_names.update(names)
                pending.extend(names)
            add("model", parts)
        else:
            raise RequestError(
                f"{where}.role {role!r} is not one of system, developer, user, assistant, tool",
                f"{where}.role",
            )
    flush_results()
    return system, contents


def convert_tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise RequestError("'tools' must be a list", "tools")
    declarations = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type", "function") != "function"
            or not isinstance(function, dict)
        ):
            raise RequestError(f"{where}: only tools of type 'function' are supported", where)
        name = function.get("name")
        if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
            raise RequestError(
                f"{where}.function.name {name!r}: Gemini needs a letter or '_' first, then up to "
                "63 letters, digits, '_', '.', ':' or '-'",
                f"{where}.function.name",
            )
        declaration: dict[str, Any] = {"name": name}
        if isinstance(function.get("description"), str):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if isinstance(parameters, dict) and parameters.get("properties"):
            try:
                declaration["parameters"] = clean_schema(parameters)
            except SchemaError as exc:
                raise RequestError(f"{where}.function.parameters: {exc}", where) from None
        declarations.append(declaration)
    return declarations


def convert_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    modes = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"functionCallingConfig": {"mode": modes[choice]}}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        config = {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
        return {"functionCallingConfig": config}
    raise RequestError(
        "'tool_choice' must be none, auto, required or {type: function, function: {name}}",
        "tool_choice",
    )


def thinking_config(upstream_id: str, effort: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """thinkingLevel for Gemini 3, thinkingBudget for 2.5 (never both), from the variant's
    settings first, else `reasoning_effort`."""
    level = settings.get("thinkingLevel")
    budget = settings.get("thinkingBudget")
    if level is None and budget is None and isinstance(effort, str):
        if effort not in THINKING_BUDGETS:
            raise RequestError(
                "'reasoning_effort' must be one of " + ", ".join(THINKING_BUDGETS),
                "reasoning_effort",
            )
        level, budget = effort, THINKING_BUDGETS[effort]
    if level is None and budget is None:
        return {}
    config: dict[str, Any] = {}
    if is_gemini_3(upstream_id):
        if level is None:
            level = _level_for_budget(int(budget))
        config["thinkingLevel"] = "minimal" if level == "none" else level
    else:
        if budget is None:
            budget = THINKING_BUDGETS.get(str(level), -1)
        config["thinkingBudget"] = budget
    include = settings.get("includeThoughts")
    config["includeThoughts"] = (
        include if isinstance(include, bool) else config.get("thinkingBudget") != 0
    )
    return config


def _level_for_budget(budget: int) -> str:
    if budget < 0:
        return "high"
    for level in ("minimal", "low", "medium"):
        if budget <= THINKING_BUDGETS[level]:
            return level
    return "high"


def generation_config(
    body: Mapping[str, Any], upstream_id: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for field, name in GENERATION_FIELDS.items():
        if body.get(field) is not None:
            config[name] = body[field]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list):
        config["stopSequences"] = [s for s in stop if isinstance(s, str)]
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind in ("json_object", "json_schema"):
            config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if kind == "json_schema" and isinstance(schema, dict):
            try:
                config["responseSchema"] = clean_schema(schema)
            except SchemaError as exc:
                raise RequestError(
                    f"response_format.json_schema.schema: {exc}", "response_format"
                ) from None
    for key, value in settings.items():
        if key not in THINKING_KEYS:
            config[key] = value
    thinking = thinking_config(upstream_id, body.get("reasoning_effort"), settings)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


# -- response ------------------------------------------------------------------------------


def _usage(metadata: Any) -> dict[str, Any] | None:
    if not isinstance(metadata, dict):
        return None
    prompt = metadata.get("promptTokenCount", 0)
    thoughts = metadata.get("thoughtsTokenCount", 0)
    completion = metadata.get("candidatesTokenCount", 0) + thoughts
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": metadata.get("totalTokenCount", prompt + completion),
    }
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    if metadata.get("cachedContentTokenCount"):
        usage["prompt_tokens_details"] = {"cached_tokens": metadata["cachedContentTokenCount"]}
    return usage


class _CallIds:
    """Tool call ids `call_<prefix><n>`; the proxy passes a prefix unique to the request."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"call_{self.prefix}{self.count}"


def _split_parts(
    parts: Any, ids: _CallIds, signatures: dict[str, str]
) -> tuple[str, str, list[dict[str, Any]]]:
    """(text, reasoning, tool calls) of a candidate's parts; signatures recorded by call id."""
    texts, thoughts, calls = [], [], []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        if "functionCall" in part:
            call = part["functionCall"]
            call_id = ids.next()
            if part.get("thoughtSignature"):
                signatures[call_id] = part["thoughtSignature"]
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": call.get("name", ""),
                        "arguments": json.dumps(call.get("args") or {}, ensure_ascii=False),
                    },
                }
            )
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    return "".join(texts), "".join(thoughts), calls


def finish_reason(reason: Any, has_calls: bool) -> str | None:
    if reason is None:
        return None
    if has_calls and reason in ("STOP", "OTHER", "FINISH_REASON_UNSPECIFIED"):
        return "tool_calls"
    return FINISH_REASONS.get(reason, "stop")


def completion_from_response(
    payload: dict[str, Any], model: str, id_prefix: str, created: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """(OpenAI chat completion, thought signatures by tool call id) for a Gemini answer."""
    ids = _CallIds(id_prefix)
    signatures: dict[str, str] = {}
    choices = []
    for position, candidate in enumerate(payload.get("candidates") or []):
        content = candidate.get("content") or {}
        text, reasoning, calls = _split_parts(content.get("parts"), ids, signatures)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reasoning:
            message["reasoning_content"] = reasoning
        if calls:
            message["tool_calls"] = calls
        reason = finish_reason(candidate.get("finishReason") or "STOP", bool(calls))
        choices.append(
            {
                "index": candidate.get("index", position),
                "message": message,
                "logprobs": None,
                "finish_reason": reason,
            }
        )
    if not choices:
        blocked = (payload.get("promptFeedback") or {}).get("blockReason")
        message = {"role": "assistant", "content": ""}
        reason = "content_filter" if blocked else "stop"
        choices.append({"index": 0, "message": message, "logprobs": None, "finish_reason": reason})
    completion: dict[str, Any] = {
        "id": "chatcmpl-" + str(payload.get("responseId") or id_prefix),
        "object": "chat.completion",
        "created": created,
        "model": payload.get("modelVersion") or model,
        "choices": choices,
    }
    usage = _usage(payload.get("usageMetadata"))
    if usage:
        completion["usage"] = usage
    return completion, signatures


class StreamTranslator:
    """Gemini SSE events (each a GenerateContentResponse with the new parts) -> OpenAI chunks."""

    def __init__(self, model: str, id_prefix: str, created: int, include_usage: bool) -> None:
        self.base = {
            "id": "chatcmpl-" + id_prefix,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self.include_usage = include_usage
        self.ids = _CallIds(id_prefix)
        self.signatures: dict[str, str] = {}
        self.usage: dict[str, Any] | None = None
        self.started = False
        self.finished = False
        self.calls = 0

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self.base, "choices": [choice]}

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if event.get("responseId") and not self.started:
            self.base["id"] = "chatcmpl-" + str(event["responseId"])
        if event.get("modelVersion"):
            self.base["model"] = event["modelVersion"]
        chunks = []
        if not self.started:
            self.started = True
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        usage = _usage(event.get("usageMetadata"))
        if usage:
            self.usage = usage
        candidates = event.get("candidates") or []
        if not candidates and (event.get("promptFeedback") or {}).get("blockReason"):
            self.finished = True
            chunks.append(self._chunk({}, "content_filter"))
        for candidate in candidates[:1]:
            text, reasoning, calls = _split_parts(
                (candidate.get("content") or {}).get("parts"), self.ids, self.signatures
            )
            if reasoning:
                chunks.append(self._chunk({"reasoning_content": reasoning}))
            if text:
                chunks.append(self._chunk({"content": text}))
            for call in calls:
                chunks.append(self._chunk({"tool_calls": [{"index": self.calls, **call}]}))
                self.calls += 1
            reason = finish_reason(candidate.get("finishReason"), self.calls > 0)
            if reason is not None and not self.finished:
                self.finished = True
                chunks.append(self._chunk({}, reason))
        return chunks

    def finish(self) -> list[dict[str, Any]]:
        """The usage chunk, when asked for; call once the upstream stream ended well."""
        if self.include_usage and self.usage is not None:
            return [{**self.base, "choices": [], "usage": self.usage}]
        return []


# -- errors --------------------------------------------------------------------------------


def _error_reason(payload: Any) -> str | None:
    error = payload.get("error") if isinstance(payload, dict) else None
    for detail in (error or {}).get("details") or [] if isinstance(error, dict) else []:
        if isinstance(detail, dict) and detail.get("reason"):
            return str(detail["reason"])
    return None


def effective_status(status: int, payload: Any) -> int:
    """An invalid key is a 400 to Google and an unauthorized account to the pool."""
    if status == 400 and _error_reason(payload) == "API_KEY_INVALID":
        return 401
    return status


def read_error(status: int, payload: Any, text: str) -> dict[str, Any]:
    if isinstance(payload, list) and payload:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        message = error.get("message") or text.strip()[:500]
        return {
            "message": str(message),
            "type": error_type(status),
            "code": error.get("status") or error.get("code"),
            "param": None,
        }
    return {
        "message": text.strip()[:500] or f"upstream answered HTTP {status}",
        "type": error_type(status),
        "code": None,
        "param": None,
    }


def completion_error(payload: Any) -> dict[str, Any] | None:
    if (
        isinstance(payload, dict)
        and "candidates" not in payload
        and isinstance(payload.get("error"), dict)
    ):
        return read_error(500, payload, "")
    return None


def is_answer(payload: Any) -> bool:
    return isinstance(payload, dict) and ("candidates" in payload or "promptFeedback" in payload)
