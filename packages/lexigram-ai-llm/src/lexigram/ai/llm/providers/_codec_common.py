"""Pieces the wire-family codecs share, where the logic is the same in every family that uses it.

Pure functions, no I/O: reading an error body, applying a request's ``extra`` passthrough,
building the typed errors for an answer that is malformed or cut short. What a family does its
own way (its error types, which ``extra`` keys it keeps for itself, its messages) stays in its
codec and comes in here as an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any, TypeVar

import orjson

from lexigram.ai.llm.exceptions import (
    InvalidInputError,
    InvalidRequestError,
    LLMError,
    StreamError,
    TokenLimitError,
)
from lexigram.ai.llm.providers.base import CallContext
from lexigram.ai.llm.types import (
    ChatRequest,
    DocumentPart,
    ThinkingBlock,
    ThinkingResult,
    Usage,
)

__all__ = [
    "COMPATIBLE_SERVER_ERROR_TYPES",
    "EXTRA_BODY_AND_HEADERS",
    "SHAPE_ERRORS",
    "apply_extra_body",
    "check_documents",
    "document_text",
    "error_document",
    "error_message",
    "error_payload",
    "excerpt",
    "invalid_request",
    "json_path",
    "mid_stream_error",
    "not_json_error",
    "parse_answer",
    "parse_answer_object",
    "parse_event",
    "prompt_cache_fields",
    "replayable_thinking",
    "request_headers",
    "stream_error",
    "thinking_result",
    "truncated_stream_error",
]

_E = TypeVar("_E", bound=LLMError)

#: The ``extra`` keys every codec reads itself (``body`` and ``headers``), never copied into
#: the JSON body as fields.
EXTRA_BODY_AND_HEADERS = frozenset({"body", "headers"})

#: What reading well-formed JSON of an unexpected shape raises on the way through a decoder;
#: a codec catches these and answers a typed error instead.
SHAPE_ERRORS = (AttributeError, IndexError, KeyError, TypeError, ValueError)


def excerpt(data: bytes, limit: int = 200) -> str:
    """The first ``limit`` bytes of what the provider sent, as text for an error message."""
    return data[:limit].decode("utf-8", "replace")


# -- error bodies (non-2xx answers) ---------------------------------------------------------

#: Error ``type`` values that servers speaking several wires send whichever wire they speak
#: (llama.cpp's ``llama-server`` answers ``exceed_context_size_error`` on its OpenAI and its
#: Anthropic endpoints alike), so that the same failure is the same class through every codec.
COMPATIBLE_SERVER_ERROR_TYPES: Mapping[str, type[LLMError]] = {
    "exceed_context_size_error": TokenLimitError,
}


def error_document(body: bytes, *, unwrap_list: bool = False) -> Mapping[str, Any]:
    """An error body's JSON object; ``{}`` when the body is empty, not JSON (a proxy's HTML
    page) or not an object, so that the status decides. ``unwrap_list`` reads the first
    element of a JSON array (Google's streaming endpoints answer errors in one)."""
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {}
    if unwrap_list and isinstance(data, list) and data:
        data = data[0]
    return data if isinstance(data, Mapping) else {}


def error_message(value: Any, body: bytes) -> str | None:
    """``value`` when the provider's message is a string; else the first 300 bytes of the
    body (``None`` when it is empty)."""
    if isinstance(value, str):
        return value
    return excerpt(body, 300) if body else None


def error_payload(
    document: Mapping[str, Any], body: bytes, *, allow_string: bool = False
) -> Mapping[str, Any]:
    """The ``error`` object of an ``{"error": {...}}`` body; ``{"message": <body excerpt>}``
    when there is none. ``allow_string`` takes ``{"error": "text"}`` as that message."""
    payload = document.get("error")
    if allow_string and isinstance(payload, str):
        return {"message": payload}
    if not isinstance(payload, Mapping):
        return {"message": error_message(None, body)}
    return payload


# -- encode ---------------------------------------------------------------------------------


def apply_extra_body(
    body: dict[str, Any],
    extra: Mapping[str, Any],
    *,
    reserved: Container[str] = EXTRA_BODY_AND_HEADERS,
    renames: Mapping[str, str] | None = None,
) -> None:
    """Apply ``request.extra`` to a JSON ``body``: the fields of ``extra["body"]`` replace the
    codec's, and every other key not in ``reserved`` is added where the codec set nothing
    (under its wire name from ``renames``)."""
    if not extra:  # the common request: nothing to apply
        return
    passthrough = extra.get("body")
    if isinstance(passthrough, Mapping):
        body.update(passthrough)
    for key, value in extra.items():
        if key not in reserved:
            body.setdefault(renames.get(key, key) if renames else key, value)


def prompt_cache_fields(request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
    """OpenAI's ``prompt_cache_key`` (a hash of the model, system prompt and tools, so calls
    sharing a prefix reach the same cache) and ``prompt_cache_retention`` (``"24h"`` for a
    ``prompt_cache_ttl`` of ``"1h"``) for ``prompt_cache="auto"``, where the profile takes them
    (``prompt_cache_key`` option); the caller's own values in ``extra`` win."""
    if request.prompt_cache != "auto" or not ctx.options.get("prompt_cache_key"):
        return {}
    fields: dict[str, Any] = {}
    if "prompt_cache_key" not in request.extra:
        import hashlib  # cold: only with prompt_cache="auto"

        prefix: list[Any] = [request.model]
        prefix.append([m.text for m in request.messages if m.role.value == "system"])
        prefix.append([[t.name, t.description, dict(t.parameters)] for t in request.tools])
        digest = hashlib.sha256(orjson.dumps(prefix, option=orjson.OPT_SORT_KEYS)).hexdigest()
        fields["prompt_cache_key"] = f"lexigram-{digest[:32]}"
    if request.prompt_cache_ttl == "1h" and "prompt_cache_retention" not in request.extra:
        fields["prompt_cache_retention"] = "24h"
    return fields


def not_json_error(request: ChatRequest, ctx: CallContext, exc: Exception) -> InvalidInputError:
    """The refusal of a request whose body cannot be written as JSON (``exc`` from orjson),
    naming the caller's value that caused it: an extra keyword argument, a tool's
    parameters or the response schema. Cold path: each candidate is tried on its own."""
    candidates: list[tuple[str, Any]] = [
        (key, value) for key, value in request.extra.items() if key != "headers"
    ]
    candidates += [(f"tools[{i}].parameters", t.parameters) for i, t in enumerate(request.tools)]
    if request.response_format is not None:
        candidates.append(("response_format.schema", request.response_format.schema))
    candidates.append(("tool_choice", request.tool_choice))
    field = next((name for name, value in candidates if not _writes_as_json(value)), None)
    problem = f"cannot be sent as JSON ({exc})"
    error = (
        InvalidInputError.at(field, problem)
        if field is not None
        else InvalidInputError(f"The request holds a value that {problem}")
    )
    error.provider, error.model = ctx.provider, ctx.model
    return error


def _writes_as_json(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


def check_documents(
    request: ChatRequest, ctx: CallContext, problem: Callable[[DocumentPart], str | None]
) -> None:
    """Refuse, before anything is encoded, a document part the family cannot send: an
    ``InvalidRequestError`` naming the part (``messages[1].content[0]``) and ``problem``'s
    reason, rather than a document sent as something else or silently left out."""
    for message in request.messages:
        if type(message.content) is tuple:
            break
    else:  # text only (content is a string, None or a tuple of parts): no document
        return
    for i, message in enumerate(request.messages):
        content = message.content
        if content is None or isinstance(content, str):
            continue
        for j, part in enumerate(content):
            if isinstance(part, DocumentPart):
                reason = problem(part)
                if reason is not None:
                    where = f"messages[{i}].content[{j}]"
                    raise InvalidRequestError(
                        f"{where}: {reason}",
                        provider=ctx.provider,
                        model=ctx.model,
                        code="unsupported_document",
                        details={"field": where, "media_type": part.media_type},
                    )


def document_text(part: DocumentPart) -> str | None:
    """A document's bytes as text, or ``None`` when it has none or they are not UTF-8."""
    if part.data is None:
        return None
    try:
        return part.data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def request_headers(extra: Mapping[str, Any], *, accept: str | None = None) -> dict[str, str]:
    """The request's own headers: ``Accept`` when given (a stream's media type), then
    ``extra["headers"]`` over it."""
    headers: dict[str, str] = {}
    if accept:
        headers["Accept"] = accept
    if not extra:
        return headers
    extra_headers = extra.get("headers")
    if isinstance(extra_headers, Mapping):
        headers.update(extra_headers)
    return headers


def replayable_thinking(blocks: Sequence[ThinkingBlock], family: str) -> Sequence[ThinkingBlock]:
    """An assistant message's thinking ``blocks`` as the ``family`` codec may send them back.

    A signature or encrypted data is only valid for the family that made it: a block from
    another family (``origin``) loses its signature, and a redacted one, whose data nothing
    else can read, is left out. Blocks of unknown origin (built by hand, older histories) are
    sent as they are. The codec then treats an unsigned block as it treats any other."""
    if all(block.origin is None or block.origin == family for block in blocks):
        return blocks
    kept: list[ThinkingBlock] = []
    for block in blocks:
        if block.origin is None or block.origin == family:
            kept.append(block)
        elif not block.redacted:
            kept.append(ThinkingBlock(block.content, origin=block.origin))
    return kept


# -- reading answers and stream events ------------------------------------------------------


def parse_answer(body: bytes, ctx: CallContext, *, what: str, who: str = "The provider") -> Any:
    """A non-streamed answer's JSON; a retryable ``StreamError`` when it is not JSON (cut
    short, or not ``what`` at all). ``who`` names the sender in the message."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise stream_error(
            f"{who}'s answer is not valid JSON (truncated or not {what})",
            ctx,
            data=body,
            retryable=True,
        ) from exc


def parse_answer_object(body: bytes, ctx: CallContext, *, what: str, who: str) -> dict[str, Any]:
    """``parse_answer``, and a ``StreamError`` when the JSON is not an object."""
    data = parse_answer(body, ctx, what=what, who=who)
    if not isinstance(data, dict):
        raise stream_error(f"{who}'s answer is not a JSON object", ctx, data=body)
    return data


def parse_event(data: bytes, ctx: CallContext, *, noun: str) -> dict[str, Any]:
    """One SSE event's JSON object; a ``StreamError`` naming the ``noun`` ("stream chunk",
    "stream event") when it is not JSON or not an object."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise stream_error(
            f"The provider sent a {noun} that is not valid JSON", ctx, data=data, retryable=False
        ) from exc
    if type(payload) is not dict:  # orjson makes plain dicts: no ABC check per event
        raise stream_error(f"The provider sent a {noun} that is not a JSON object", ctx)
    return payload


def json_path(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...`` or ``None`` when a step is missing or not an object."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def thinking_result(blocks: Sequence[ThinkingBlock], usage: Usage) -> ThinkingResult | None:
    """The answer's reasoning from its blocks, counted by the usage's reasoning tokens when
    the provider reports them; ``None`` when there are no blocks."""
    if not blocks:
        return None
    return ThinkingResult.from_blocks(tuple(blocks), usage.reasoning_tokens or None)


# -- typed errors about one call ------------------------------------------------------------


def invalid_request(
    message: str, ctx: CallContext, *, data: bytes | None = None, code: str | None = None
) -> InvalidRequestError:
    """A request or answer that retrying will not fix, with an excerpt of ``data`` (what the
    provider sent) when given."""
    return _call_error(InvalidRequestError, message, ctx, data, retryable=False, code=code)


def stream_error(
    message: str,
    ctx: CallContext,
    *,
    data: bytes | None = None,
    retryable: bool | None = None,
    code: str | None = None,
) -> StreamError:
    """A broken stream or answer, with an excerpt of ``data`` (what the provider sent) when
    given."""
    return _call_error(StreamError, message, ctx, data, retryable=retryable, code=code)


def truncated_stream_error(message: str, ctx: CallContext) -> StreamError:
    """A stream whose body ended before the provider's terminal event (retryable)."""
    return stream_error(message, ctx, retryable=True, code="stream_truncated")


def mid_stream_error(
    inner: LLMError, ctx: CallContext, *, carry_details: bool = True
) -> StreamError:
    """An error event inside a stream, as a ``StreamError`` that keeps the typed ``inner``
    error's retryability, code and message; ``carry_details`` also keeps its details and names
    its class (the OpenAI codec's mid-stream errors have never carried them)."""
    return StreamError(
        "The provider reported an error mid-stream",
        provider=ctx.provider,
        model=ctx.model,
        retryable=inner.retryable,
        code=inner.code,
        provider_message=inner.provider_message,
        details={**inner.details, "error_class": type(inner).__name__} if carry_details else None,
    )


def _call_error(
    kind: type[_E],
    message: str,
    ctx: CallContext,
    data: bytes | None,
    *,
    retryable: bool | None,
    code: str | None,
) -> _E:
    """An error of class ``kind`` about the call in ``ctx``."""
    return kind(
        message,
        provider=ctx.provider,
        model=ctx.model,
        retryable=retryable,
        code=code,
        provider_message=None if data is None else excerpt(data),
    )
