"""The Anthropic Messages wire family (``POST /v1/messages``).

Codec: pure translation between ``ChatRequest``/``Completion``/``StreamChunk`` and the Messages
JSON and SSE shapes (``message_start``, ``content_block_start``/``delta``/``stop``,
``message_delta``, ``message_stop``, ``ping``, ``error``). Profile: ``anthropic``.

What the translation does, beyond renaming fields:

- Every system message, in order, goes into the top-level ``system`` array.
- Tool results (role ``tool``) become ``tool_result`` blocks at the start of the following user
  turn, as the API requires; consecutive messages of one role are merged into one turn.
- Assistant messages send their ``thinking`` / ``redacted_thinking`` blocks first, exactly as
  received (text and signature unchanged), then text, then ``tool_use`` blocks. Blocks that
  another wire family made (``ThinkingBlock.origin``: a Gemini thought after a router fell
  back) are not sent: their signatures would be rejected as invalid.
- Extended thinking comes from ``ThinkingConfig``: ``{"type": "enabled", "budget_tokens": N}``
  (at least 1024, below ``max_tokens``; ``include_thoughts=False`` asks for ``display:
  "omitted"``), or ``{"type": "disabled"}`` when ``suppress`` is set. With thinking on,
  ``temperature`` is not sent and ``top_p`` only when it lies in [0.95, 1], as the API
  demands. ``max_tokens`` is required by the API: when none is given it defaults to
  ``default_max_tokens`` (4096), plus the thinking budget when thinking is on.
- Structured output (``response_format`` of type ``json_schema`` or ``json_object``) uses
  forced tool use: the codec adds a tool named ``structured_output_<format name>`` whose
  ``input_schema`` is the schema, with ``tool_choice {"type": "tool", "name": ...}``; decoding
  returns that tool's input as the completion's JSON ``content`` with finish reason ``stop``,
  not as a tool call. Forced tool use is not allowed together with extended thinking, so with
  thinking on the tool is offered with ``tool_choice {"type": "auto"}`` instead. A streamed
  structured answer arrives as one content delta when the tool block closes, so that stream
  and non-stream give the same JSON text. When the tool was forced and the answer ends
  without it (a server that ignores ``tool_choice`` answers prose), the result is an
  ``ExtractionParseError`` (code ``structured_output_missing``, the prose in ``raw_output``),
  never prose passed off as the structured answer; an answer cut short (``max_tokens``) or
  refused keeps its finish reason.
- Usage: ``prompt_tokens`` = ``input_tokens`` + cache creation + cache read (the API's total
  input), ``cached_tokens`` = cache read, ``cache_creation_tokens`` = cache creation,
  ``reasoning_tokens`` = ``output_tokens_details.thinking_tokens`` when the API reports it.
- Errors map by the error ``type`` (``invalid_request_error``, ``authentication_error``,
  ``permission_error``, ``billing_error``, ``not_found_error``, ``request_too_large``,
  ``rate_limit_error``, ``api_error``, ``overloaded_error``, ``timeout_error``) and the status;
  an ``error`` event inside a stream becomes a ``StreamError`` that is retryable when the error
  type is (``overloaded_error``, ``api_error``...). A ``refusal`` stop reason is finish reason
  ``content_filter``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from lexigram.ai.llm._framing import SSEEvent
from lexigram.ai.llm.exceptions import (
    ExtractionParseError,
    InvalidRequestError,
    LLMAuthenticationError,
    LLMError,
    LLMModelNotFoundError,
    LLMQuotaExceededError,
    LLMRateLimitError,
    LLMTimeoutError,
    ProviderError,
    TokenLimitError,
    error_for_status,
)
from lexigram.ai.llm.providers._codec_common import (
    COMPATIBLE_SERVER_ERROR_TYPES,
    SHAPE_ERRORS,
    apply_extra_body,
    check_documents,
    document_text,
    error_document,
    error_payload,
    invalid_request,
    mid_stream_error,
    parse_answer,
    parse_event,
    replayable_thinking,
    request_headers,
    stream_error,
    thinking_result,
    truncated_stream_error,
)
from lexigram.ai.llm.providers.base import CallContext, Framing, HTTPRequest, ProviderProfile
from lexigram.ai.llm.types import (
    CachePointPart,
    ChatMessage,
    ChatRequest,
    Completion,
    ContentPart,
    DocumentPart,
    FinishReason,
    FunctionCall,
    ImageDataPart,
    ImageURLPart,
    ResponseFormat,
    Role,
    StreamChunk,
    TextPart,
    ThinkingBlock,
    ToolCall,
    ToolCallDelta,
    Usage,
    raw_chunk,
    raw_completion,
    raw_usage,
)

__all__ = ["CODEC", "PROFILES", "STRUCTURED_TOOL_PREFIX", "AnthropicCodec"]

API_VERSION = "2023-06-01"
_FAMILY = "anthropic"  # the ``origin`` of the thinking blocks this codec decodes
DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
#: Tools whose name starts with this carry a structured-output answer, not a tool call.
STRUCTURED_TOOL_PREFIX = "structured_output_"

_FINISH: dict[str, str] = {
    "end_turn": FinishReason.STOP.value,
    "stop_sequence": FinishReason.STOP.value,
    "max_tokens": FinishReason.LENGTH.value,
    "model_context_window_exceeded": FinishReason.LENGTH.value,
    "tool_use": FinishReason.TOOL_CALLS.value,
    "refusal": FinishReason.CONTENT_FILTER.value,
}

# The error ``type`` decides the class (https://docs.anthropic.com/en/api/errors).
_ERROR_TYPES: dict[str, type[LLMError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": LLMAuthenticationError,
    "permission_error": LLMAuthenticationError,
    "billing_error": LLMQuotaExceededError,
    "not_found_error": LLMModelNotFoundError,
    "request_too_large": TokenLimitError,
    "rate_limit_error": LLMRateLimitError,
    "api_error": ProviderError,
    "overloaded_error": ProviderError,
    "timeout_error": LLMTimeoutError,
    **COMPATIBLE_SERVER_ERROR_TYPES,
}

_TOOL_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
#: ``ctx.options`` key naming the structured-output tool a request forces (see
#: ``call_context``); decoders use it to tell an answer that ignored the tool.
_FORCED_TOOL = "_forced_structured_tool"
#: Stop reasons of an answer that ended normally (``None``: a server that sends none).
_NORMAL_END = frozenset({"end_turn", "stop_sequence", "tool_use", None})


def finish_reason(raw: str | None) -> str | None:
    """Normalised finish reason (unknown values such as ``pause_turn`` pass through)."""
    if raw is None:
        return None
    return _FINISH.get(raw, raw)


def structured_tool_name(fmt: ResponseFormat) -> str:
    """The name of the tool that carries a structured answer for ``fmt``."""
    name = _TOOL_NAME_UNSAFE.sub("_", fmt.name or "response")
    return (STRUCTURED_TOOL_PREFIX + name)[:64]


class AnthropicCodec:
    """Messages API: encode, decode, stream decode, error mapping."""

    name = "anthropic"
    framing = Framing.SSE

    # -- encode ----------------------------------------------------------------------------

    def call_context(self, request: ChatRequest, ctx: CallContext) -> CallContext:
        """``ctx`` for one request: when the request forces a structured-output tool, its name
        rides in the options so that the decoders can refuse an answer that ignored it."""
        fmt = request.response_format
        if fmt is None or fmt.type not in ("json_schema", "json_object"):
            return ctx
        thinking = request.thinking
        if thinking is not None and not thinking.suppress:
            return ctx  # the tool is only offered (``auto``): prose is a valid answer
        return replace(ctx, options={**ctx.options, _FORCED_TOOL: structured_tool_name(fmt)})

    def encode(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HTTPRequest:
        """The ``POST /v1/messages`` request."""
        options = ctx.options
        check_documents(request, ctx, _document_problem)
        system, messages = _encode_messages(request.messages)
        body: dict[str, Any] = {"model": request.model}
        thinking = request.thinking
        thinking_on = thinking is not None and not thinking.suppress
        default_max = int(options.get("default_max_tokens", DEFAULT_MAX_TOKENS))
        max_tokens = request.max_tokens
        if thinking is not None and thinking_on:
            budget = max(MIN_THINKING_BUDGET, thinking.budget_tokens)
            if max_tokens is None:
                max_tokens = budget + default_max
            elif max_tokens <= budget:
                budget = max_tokens - 1
                if budget < MIN_THINKING_BUDGET:
                    raise invalid_request(
                        f"Extended thinking needs max_tokens above {MIN_THINKING_BUDGET} "
                        f"(got {max_tokens}); raise max_tokens or turn thinking off",
                        ctx,
                    )
            config: dict[str, Any] = {"type": "enabled", "budget_tokens": budget}
            if not thinking.include_thoughts:
                config["display"] = "omitted"
            body["thinking"] = config
        elif thinking is not None:  # suppressed: say so, as some models think by default
            body["thinking"] = {"type": "disabled"}
        body["max_tokens"] = max_tokens if max_tokens is not None else default_max
        if system:
            body["system"] = system
        body["messages"] = messages
        if thinking_on:
            # The API rejects temperature changes with thinking and top_p outside [0.95, 1].
            if request.top_p is not None and 0.95 <= request.top_p <= 1.0:
                body["top_p"] = request.top_p
        else:
            if request.temperature is not None:
                body["temperature"] = request.temperature
            if request.top_p is not None:
                body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        tools: list[dict[str, Any]] = [
            {
                "name": t.name,
                "description": t.description,
                "input_schema": dict(t.parameters),
                **({"strict": True} if t.strict else {}),
            }
            for t in request.tools
        ]
        tool_choice = _tool_choice(request.tool_choice) if request.tool_choice is not None else None
        fmt = request.response_format
        if fmt is not None and fmt.type in ("json_schema", "json_object"):
            name = structured_tool_name(fmt)
            schema = (
                dict(fmt.schema or {})
                if fmt.type == "json_schema"
                else {"type": "object", "additionalProperties": True}
            )
            tools.append(
                {
                    "name": name,
                    "description": "Give the answer by calling this tool; its input is the "
                    "answer as JSON matching the schema.",
                    "input_schema": schema,
                }
            )
            tool_choice = {"type": "auto"} if thinking_on else {"type": "tool", "name": name}
        if tools:
            body["tools"] = tools
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
        _place_cache_markers(body, request)
        if stream:
            body["stream"] = True
        apply_extra_body(body, request.extra)
        headers = request_headers(request.extra, accept="text/event-stream" if stream else None)
        url = ctx.base_url + options.get("messages_path", "/v1/messages")
        return HTTPRequest("POST", url, headers, orjson.dumps(body))

    # -- decode ----------------------------------------------------------------------------

    def decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        """A ``message`` object to a ``Completion``."""
        data = parse_answer(body, ctx, what="a message")
        try:
            return self._decode_data(data, body, headers, ctx)
        except SHAPE_ERRORS as exc:
            raise _not_a_message(body, ctx) from exc

    def _decode_data(
        self, data: Any, body: bytes, headers: Mapping[str, str], ctx: CallContext
    ) -> Completion:
        if type(data) is not dict and not isinstance(data, Mapping):  # (orjson: a dict)
            raise _not_a_message(body, ctx)
        if data.get("type") == "error":
            error = data.get("error")
            payload = error if isinstance(error, Mapping) else {}
            raise _error_from_payload(payload, 500, headers, ctx)
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise _not_a_message(body, ctx)
        text: list[str] = []
        thinking: list[ThinkingBlock] = []
        tool_calls: list[ToolCall] = []
        structured: str | None = None
        for block in blocks:
            if type(block) is not dict and not isinstance(block, Mapping):
                continue
            kind = block.get("type")
            if kind == "text":
                text.append(block.get("text") or "")
            elif kind == "thinking":
                thinking.append(
                    ThinkingBlock(
                        block.get("thinking") or "", block.get("signature"), origin=_FAMILY
                    )
                )
            elif kind == "redacted_thinking":
                thinking.append(
                    ThinkingBlock(redacted=True, data=block.get("data"), origin=_FAMILY)
                )
            elif kind == "tool_use":
                name = str(block.get("name") or "")
                arguments = orjson.dumps(block.get("input") or {}).decode()
                if name.startswith(STRUCTURED_TOOL_PREFIX):
                    structured = arguments
                else:
                    tool_calls.append(
                        ToolCall(
                            id=str(block.get("id") or ""), function=FunctionCall(name, arguments)
                        )
                    )
        raw_finish = data.get("stop_reason")
        finish = finish_reason(raw_finish)
        content = "".join(text)
        if structured is not None:
            content = structured
            if not tool_calls and raw_finish == "tool_use":
                # The forced tool call is the answer; a cut-short one (max_tokens) stays
                # ``length``, as the stream decoder reports it.
                finish = FinishReason.STOP.value
        usage = _usage(data.get("usage"))
        forced = ctx.options.get(_FORCED_TOOL)
        if forced and structured is None and not tool_calls and raw_finish in _NORMAL_END:
            raise _structured_missing(forced, content, usage, raw_finish, ctx)
        return raw_completion(  # Completion(content, model, provider, ...): every field
            content,
            data.get("model") or ctx.model,
            ctx.provider,
            finish,
            raw_finish,
            tuple(tool_calls),
            usage,
            thinking_result(thinking, usage),
            None,
            data.get("id"),
            None,
            False,
            (),
        )

    def stream_decoder(self, ctx: CallContext) -> AnthropicStreamDecoder:
        """A decoder for one Messages SSE stream."""
        return AnthropicStreamDecoder(ctx)

    # -- errors ----------------------------------------------------------------------------

    def map_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        """``{"type": "error", "error": {"type", "message"}, "request_id"}`` plus the status."""
        # A proxy's HTML page (413 comes from Cloudflare) has no payload: the status decides.
        data = error_document(body)
        error = _error_from_payload(error_payload(data, body), status, headers, ctx)
        if data.get("request_id"):
            error.request_id = str(data["request_id"])
        return error


def _error_from_payload(
    payload: Mapping[str, Any], status: int, headers: Mapping[str, str], ctx: CallContext
) -> LLMError:
    kind_name = payload.get("type")
    kind = _ERROR_TYPES.get(str(kind_name)) if kind_name is not None else None
    message = payload.get("message")
    return error_for_status(
        status,
        kind=kind,
        provider=ctx.provider,
        model=ctx.model,
        headers=headers,
        provider_message=None if message is None else str(message),
        code=str(kind_name) if kind_name else None,
        details={"type": kind_name},
    )


def _structured_missing(
    tool: str, prose: str, usage: Usage | None, raw_finish: str | None, ctx: CallContext
) -> ExtractionParseError:
    """The answer to a request that forced ``tool`` ended without calling it."""
    return ExtractionParseError(
        f"The model answered without calling the forced structured-output tool {tool!r} "
        "(the server ignored tool_choice); there is no structured answer",
        raw_output=prose,
        usage=usage,
        provider=ctx.provider,
        model=ctx.model,
        code="structured_output_missing",
        details={"tool": tool, "stop_reason": raw_finish},
    )


def _not_a_message(body: bytes, ctx: CallContext) -> LLMError:
    return invalid_request(
        "The provider's answer does not have the shape of a Messages response",
        ctx,
        data=body,
        code="malformed_response",
    )


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    return int(value) if isinstance(value, int | float) else 0


def _usage(data: Mapping[str, Any] | None) -> Usage:
    if not data:
        return Usage()
    created = _int(data.get("cache_creation_input_tokens"))
    read = _int(data.get("cache_read_input_tokens"))
    prompt = _int(data.get("input_tokens")) + created + read
    completion = _int(data.get("output_tokens"))
    details = data.get("output_tokens_details")
    reasoning = (
        _int(details.get("thinking_tokens"))
        if details is not None and isinstance(details, Mapping)
        else 0
    )
    # Usage.of(prompt, completion, cached_tokens=read, ...): the total is their sum.
    return raw_usage(prompt, completion, prompt + completion, read, reasoning, created)


def _tool_choice(choice: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str):
        if choice == "auto":
            return {"type": "auto"}
        if choice == "none":
            return {"type": "none"}
        if choice in ("required", "any"):
            return {"type": "any"}
        return {"type": "tool", "name": choice}
    spec = dict(choice)
    function = spec.get("function")
    if spec.get("type") == "function" and isinstance(function, Mapping):  # OpenAI's shape
        return {"type": "tool", "name": function["name"]}
    return spec


# -- messages ------------------------------------------------------------------------------


def _encode_part(part: ContentPart) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, CachePointPart):  # placed by ``_place_cache_markers``
        return {"type": "cache_point", "ttl": part.ttl}
    if isinstance(part, ImageDataPart):
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": part.media_type, "data": part.base64},
        }
    if isinstance(part, ImageURLPart):
        if part.url.startswith("data:"):
            header, _, data = part.url.partition(",")
            media_type = header[5:].split(";", 1)[0] or "image/png"
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    # DocumentPart, already checked by ``_document_problem``
    document: dict[str, Any]
    if part.data is not None and part.media_type == "application/pdf":
        document = {
            "type": "document",
            "source": {"type": "base64", "media_type": part.media_type, "data": part.base64},
        }
    elif part.data is not None:
        text = document_text(part) or ""
        document = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
        }
    else:
        document = {"type": "document", "source": {"type": "url", "url": part.url}}
    if part.name:
        document["title"] = part.name
    return document


def _document_problem(part: DocumentPart) -> str | None:
    """Why the Messages API cannot take ``part``, or ``None``: PDFs go as base64 or by URL,
    text (``text/*``, UTF-8) as a plain-text source; nothing else is a document there."""
    pdf = part.media_type == "application/pdf"
    if part.data is not None:
        if pdf:
            return None
        if part.media_type.startswith("text/"):
            if document_text(part) is None:
                return f"the {part.media_type} document is not UTF-8 text"
            return None
        return (
            f"Anthropic takes PDF and plain-text documents, not {part.media_type} (send images "
            "as image parts, convert other files to PDF or text)"
        )
    if part.url:
        if pdf:
            return None
        return (
            f"Anthropic fetches only PDF documents by URL, not {part.media_type}; send the "
            "document's bytes instead"
        )
    return "a document part needs data or a url"


def _encode_content(content: str | tuple[ContentPart, ...] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = [_encode_part(p) for p in content]
    return [b for b in blocks if b is not None]


def _encode_assistant(message: ChatMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    # First, and exactly as the API sent them; another family's signatures are not sent.
    for block in replayable_thinking(message.thinking, _FAMILY):
        if block.redacted and block.data:
            blocks.append({"type": "redacted_thinking", "data": block.data})
        elif block.signature and not block.redacted:
            blocks.append(
                {"type": "thinking", "thinking": block.content, "signature": block.signature}
            )
        # Unsigned reasoning (from another provider, or edited) cannot be verified by the
        # API, which rejects it; it is left out.
    blocks.extend(_encode_content(message.content))
    for call in message.tool_calls:
        try:
            arguments: Any = call.parsed_arguments()
        except ValueError:
            arguments = {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _encode_tool_result(message: ChatMessage) -> dict[str, Any]:
    content: Any
    if message.content is None or isinstance(message.content, str):
        content = message.content or ""
    else:
        content = _encode_content(message.content)
    block = {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": content}
    if message.is_error:
        block["is_error"] = True
    return block


def _encode_messages(
    messages: tuple[ChatMessage, ...],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``system`` blocks and the alternating ``messages`` turns."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.role
        if role is Role.SYSTEM:
            if message.text:
                system.append({"type": "text", "text": message.text})
            if isinstance(message.content, tuple):
                system.extend(
                    {"type": "cache_point", "ttl": p.ttl}
                    for p in message.content
                    if isinstance(p, CachePointPart)
                )
            continue
        if role is Role.TOOL:
            turn_role, blocks = "user", [_encode_tool_result(message)]
        elif role is Role.ASSISTANT:
            turn_role, blocks = "assistant", _encode_assistant(message)
        else:
            turn_role, blocks = "user", _encode_content(message.content)
        if not blocks:
            continue
        last = turns[-1] if turns else None
        if last is not None and last["role"] == turn_role:
            if role is Role.TOOL:
                # Tool results lead the user turn, before any text the user added.
                existing = last["content"]
                results = [b for b in existing if b.get("type") == "tool_result"]
                others = [b for b in existing if b.get("type") != "tool_result"]
                last["content"] = [*results, *blocks, *others]
            else:
                last["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    return system, turns


# The API takes at most four ``cache_control`` breakpoints per request.
MAX_CACHE_MARKERS = 4
_UNCACHEABLE = ("thinking", "redacted_thinking")


def _place_cache_markers(body: dict[str, Any], request: ChatRequest) -> None:
    """``cache_control`` on the block before each cache point and, with ``prompt_cache="auto"``,
    on the last tool, system block and conversation block; only the last four are kept."""
    auto = request.prompt_cache == "auto"
    if not auto:
        for message in request.messages:
            if type(message.content) is tuple:
                break
        else:  # cache points come from content parts only: nothing to place
            return
    marked: dict[int, tuple[dict[str, Any], str | None]] = {}

    def mark(block: dict[str, Any] | None, ttl: str | None) -> None:
        if block is not None:
            marked.pop(id(block), None)  # re-marked: moves to its later place
            marked[id(block)] = (block, ttl or request.prompt_cache_ttl)

    if auto and body.get("tools"):
        mark(body["tools"][-1], None)
    previous: dict[str, Any] | None = None
    lists = [body["system"]] if isinstance(body.get("system"), list) else []
    lists += [turn["content"] for turn in body["messages"]]
    for blocks in lists:
        if any(b.get("type") == "cache_point" for b in blocks):
            kept: list[dict[str, Any]] = []
            for block in blocks:
                if block.get("type") == "cache_point":
                    mark(kept[-1] if kept else previous, block.get("ttl"))
                else:
                    kept.append(block)
            blocks[:] = kept
        if blocks and blocks is lists[0] and lists[0] is body.get("system") and auto:
            mark(blocks[-1], None)
        cacheable = [b for b in blocks if b.get("type") not in _UNCACHEABLE]
        previous = cacheable[-1] if cacheable else previous
    if body.get("system") == []:
        del body["system"]
    if auto and body["messages"]:
        last = [b for b in body["messages"][-1]["content"] if b.get("type") not in _UNCACHEABLE]
        mark(last[-1] if last else None, None)
    for block, ttl in list(marked.values())[-MAX_CACHE_MARKERS:]:
        block["cache_control"] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}


# -- streaming -----------------------------------------------------------------------------


class AnthropicStreamDecoder:
    """Decodes the Messages event stream until ``message_stop``.

    Thinking text goes out as ``thinking_delta`` chunks; when a thinking block closes, a chunk
    carries the whole ``ThinkingBlock`` with its signature (``redacted_thinking`` blocks too),
    so the fold keeps the blocks exactly as ``decode`` does.
    """

    __slots__ = (
        "_blocks",
        "_ctx",
        "_done",
        "_id",
        "_model",
        "_prose",
        "_structured",
        "_tool_index",
        "_usage",
    )

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._done = False
        # content block index -> [kind, text or JSON fragments, signature | data | tool index]
        self._blocks: dict[int, list[Any]] = {}
        self._tool_index = 0
        self._structured = False
        self._usage: dict[str, Any] = {}
        self._model: str | None = None
        self._id: str | None = None
        # The prose of an answer that should have called the forced tool (for the error).
        self._prose: list[str] | None = [] if ctx.options.get(_FORCED_TOOL) else None

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        data = event.data
        if not data:
            return []
        payload = parse_event(data, self._ctx, noun="stream event")
        try:
            return self._dispatch(payload, event)
        except SHAPE_ERRORS as exc:
            raise stream_error(
                "The provider sent a stream event of an unexpected shape",
                self._ctx,
                data=data,
                retryable=False,
                code="malformed_event",
            ) from exc

    def _dispatch(self, payload: dict[str, Any], event: SSEEvent) -> list[StreamChunk]:
        kind = payload.get("type") or event.event
        if kind == "content_block_delta":
            return self._delta(payload)
        if kind == "content_block_start":
            return self._start(payload)
        if kind == "content_block_stop":
            return self._stop(payload)
        if kind == "message_start":
            message = payload.get("message") or {}
            self._model = message.get("model")
            self._id = message.get("id")
            self._usage.update(message.get("usage") or {})
            return []
        if kind == "message_delta":
            return self._message_delta(payload)
        if kind == "message_stop":
            self._done = True
            return []
        if kind == "error":
            self._raise_error(payload)
        return []  # ping, and event types added after this codec was written

    def _start(self, payload: Mapping[str, Any]) -> list[StreamChunk]:
        index = int(payload.get("index", 0))
        block = payload.get("content_block") or {}
        kind = block.get("type")
        if kind == "thinking":
            self._blocks[index] = [
                "thinking",
                [block.get("thinking") or ""],
                block.get("signature"),
            ]
            text = block.get("thinking") or ""
            return [StreamChunk(thinking_delta=text)] if text else []
        if kind == "redacted_thinking":
            self._blocks[index] = ["redacted_thinking", [], block.get("data")]
            return []
        if kind == "text":
            self._blocks[index] = ["text", [], None]
            text = block.get("text") or ""
            if self._prose is not None:
                self._prose.append(text)
            return [raw_chunk(text, "", (), None, None, None, None, None, None)] if text else []
        if kind == "tool_use":
            name = str(block.get("name") or "")
            if name.startswith(STRUCTURED_TOOL_PREFIX):
                self._blocks[index] = ["structured", [], None]
                return []
            tool_index = self._tool_index
            self._tool_index += 1
            self._blocks[index] = ["tool_use", [], tool_index]
            return [
                StreamChunk(tool_calls=(ToolCallDelta(tool_index, id=block.get("id"), name=name),))
            ]
        return []

    def _delta(self, payload: Mapping[str, Any]) -> list[StreamChunk]:
        index = int(payload.get("index", 0))
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        state = self._blocks.get(index)
        if kind == "text_delta":
            text = delta.get("text") or ""
            if self._prose is not None:
                self._prose.append(text)
            return [raw_chunk(text, "", (), None, None, None, None, None, None)] if text else []
        if kind == "thinking_delta":
            text = delta.get("thinking") or ""
            if state is not None:
                state[1].append(text)
            return [StreamChunk(thinking_delta=text)] if text else []
        if kind == "signature_delta":
            if state is not None:
                state[2] = (state[2] or "") + (delta.get("signature") or "")
            return []
        if kind == "input_json_delta":
            fragment = delta.get("partial_json") or ""
            if state is None or not fragment:
                return []
            if state[0] == "structured":
                state[1].append(fragment)
                return []
            return [StreamChunk(tool_calls=(ToolCallDelta(state[2], arguments=fragment),))]
        return []  # citations_delta and later additions carry nothing we fold

    def _stop(self, payload: Mapping[str, Any]) -> list[StreamChunk]:
        state = self._blocks.pop(int(payload.get("index", 0)), None)
        if state is None:
            return []
        kind = state[0]
        if kind == "thinking":
            block = ThinkingBlock("".join(state[1]), state[2], origin=_FAMILY)
            return [StreamChunk(thinking_block=block)]
        if kind == "redacted_thinking":
            block = ThinkingBlock(redacted=True, data=state[2], origin=_FAMILY)
            return [StreamChunk(thinking_block=block)]
        if kind == "structured":
            text = "".join(state[1]) or "{}"
            try:
                # The same compact JSON text ``decode`` gives for this answer.
                text = orjson.dumps(orjson.loads(text)).decode()
            except orjson.JSONDecodeError as exc:
                raise stream_error(
                    "The structured answer in the stream is not valid JSON",
                    self._ctx,
                    retryable=False,
                ) from exc
            self._structured = True
            return [StreamChunk(delta=text)]
        return []

    def _message_delta(self, payload: Mapping[str, Any]) -> list[StreamChunk]:
        delta = payload.get("delta") or {}
        usage = payload.get("usage") or {}
        self._usage.update({k: v for k, v in usage.items() if v is not None})
        raw_finish = delta.get("stop_reason")
        finish = finish_reason(raw_finish)
        if self._structured and self._tool_index == 0 and raw_finish == "tool_use":
            finish = FinishReason.STOP.value
        if (
            self._prose is not None
            and not self._structured
            and self._tool_index == 0
            and raw_finish in _NORMAL_END
        ):
            raise _structured_missing(
                self._ctx.options[_FORCED_TOOL],
                "".join(self._prose),
                _usage(self._usage),
                raw_finish,
                self._ctx,
            )
        return [
            StreamChunk(
                finish_reason=finish,
                raw_finish_reason=raw_finish,
                usage=_usage(self._usage),
                model=self._model,
                id=self._id,
            )
        ]

    def _raise_error(self, payload: Mapping[str, Any]) -> None:
        error = payload.get("error")
        body = error if isinstance(error, Mapping) else {}
        # The inner error's details are ``{"type": ...}``: the stream error keeps them.
        raise mid_stream_error(_error_from_payload(body, 500, {}, self._ctx), self._ctx)

    def finish(self) -> list[StreamChunk]:
        if self._done:
            return []
        raise truncated_stream_error(
            "The stream ended before the provider's terminal event (message_stop); the answer "
            "is incomplete",
            self._ctx,
        )


CODEC = AnthropicCodec()

PROFILES: dict[str, ProviderProfile] = {
    "anthropic": ProviderProfile(
        name="anthropic",
        codec="anthropic",
        base_url="https://api.anthropic.com",
        api_key_env=("ANTHROPIC_API_KEY",),
        base_url_env=("ANTHROPIC_BASE_URL",),
        auth="header",
        auth_header="x-api-key",
        default_model="claude-sonnet-5",
        default_headers={"anthropic-version": API_VERSION},
        quirks={"default_max_tokens": DEFAULT_MAX_TOKENS},
        capabilities=frozenset(
            {"stream", "tools", "thinking", "json_schema", "json_object", "vision", "documents"}
        ),
        extra="anthropic",
        description="Anthropic Messages API (Claude)",
    ),
}
