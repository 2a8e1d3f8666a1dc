"""The Ollama native chat API (``POST /api/chat``) and its profile.

Codec: pure translation between ``ChatRequest``/``Completion``/``StreamChunk`` and Ollama's JSON
and newline-delimited JSON stream (``docs/api.md`` of ollama/ollama). Ollama streams one JSON
object per line and marks the last with ``"done": true``; a stream that ends without it, or in
the middle of a line, is an incomplete answer and raises ``StreamError``.

No key is needed for a local server; ``OLLAMA_API_KEY`` (sent as a bearer token) is used when
set, for ollama.com's hosted API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from lexigram.ai.llm.exceptions import (
    LLMError,
    LLMModelNotFoundError,
    StreamError,
    error_for_status,
)
from lexigram.ai.llm.providers._codec_common import (
    SHAPE_ERRORS,
    apply_extra_body,
    check_documents,
    error_document,
    error_message,
    invalid_request,
    parse_answer_object,
    request_headers,
    stream_error,
    thinking_result,
    truncated_stream_error,
)
from lexigram.ai.llm.providers._thinktags import ThinkTagSplitter, split_think_tags
from lexigram.ai.llm.providers.base import CallContext, Framing, HTTPRequest, ProviderProfile
from lexigram.ai.llm.types import (
    ChatMessage,
    ChatRequest,
    Completion,
    DocumentPart,
    FinishReason,
    ImageDataPart,
    ImageURLPart,
    Role,
    StreamChunk,
    TextPart,
    ThinkingBlock,
    ThinkingConfig,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = ["CODEC", "PROFILES", "OllamaCodec", "OllamaStreamDecoder"]
_FAMILY = "ollama"  # the ``origin`` of the thinking blocks this codec decodes

# ``done_reason`` values (llm/server.go); ``load``/``unload`` answer an empty message list.
_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "load": FinishReason.STOP,
    "unload": FinishReason.STOP,
}

# Ollama's ``think`` takes a boolean or one of these levels.
_THINK_LEVELS = frozenset({"low", "medium", "high", "max"})
_EFFORT_TO_LEVEL = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}

# Request keyword arguments with a meaning of their own here; the rest go into the body.
_RESERVED_EXTRA = frozenset({"body", "headers", "options", "keep_alive"})


def finish_reason(raw: str | None, *, tool_calls: bool = False) -> str | None:
    """Normalised finish reason. Ollama says ``stop`` after tool calls; we say ``tool_calls``."""
    if raw is None:
        return FinishReason.TOOL_CALLS.value if tool_calls else None
    normal = _FINISH.get(raw)
    if normal is FinishReason.STOP and tool_calls:
        return FinishReason.TOOL_CALLS.value
    return normal.value if normal is not None else raw


class OllamaCodec:
    """``/api/chat``: encode, decode, NDJSON stream decode, error mapping."""

    name = "ollama"
    framing = Framing.NDJSON

    # -- encode ----------------------------------------------------------------------------

    def encode(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HTTPRequest:
        """The ``POST /api/chat`` request (``stream`` is always explicit: Ollama streams by
        default)."""
        check_documents(request, ctx, _document_problem)
        config = ctx.options
        body: dict[str, Any] = {
            "model": request.model,
            "messages": _encode_messages(request.messages, ctx),
            "stream": stream,
        }
        options: dict[str, Any] = {}
        if config.get("num_ctx") is not None:
            options["num_ctx"] = config["num_ctx"]
        configured = config.get("options")
        if isinstance(configured, Mapping):
            options.update(configured)
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.top_p is not None:
            options["top_p"] = request.top_p
        if request.stop:
            options["stop"] = list(request.stop)
        if request.seed is not None:
            options["seed"] = request.seed
        per_call = request.extra.get("options")
        if isinstance(per_call, Mapping):
            options.update(per_call)
        if options:
            body["options"] = options
        tools_wanted = request.tool_choice != "none"
        if request.tool_choice not in (None, "auto", "none"):
            raise invalid_request(
                f"Ollama cannot force a tool call (tool_choice={request.tool_choice!r}); use "
                "'auto' or 'none'",
                ctx,
            )
        if request.tools and tools_wanted:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                    },
                }
                for t in request.tools
            ]
        fmt = request.response_format
        if fmt is not None and fmt.type == "json_schema":
            body["format"] = dict(fmt.schema or {"type": "object"})
        elif fmt is not None and fmt.type == "json_object":
            body["format"] = "json"
        if request.thinking is not None:
            body["think"] = _think_value(request.thinking)
        keep_alive = request.extra.get("keep_alive", config.get("keep_alive"))
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        apply_extra_body(body, request.extra, reserved=_RESERVED_EXTRA)
        headers = request_headers(request.extra, accept="application/x-ndjson" if stream else None)
        return HTTPRequest("POST", ctx.base_url + "/api/chat", headers, orjson.dumps(body))

    # -- decode ----------------------------------------------------------------------------

    def decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        """One ``ChatResponse`` object (``"stream": false``) to a ``Completion``."""
        try:
            return self._decode(body, ctx)
        except SHAPE_ERRORS as exc:
            raise _malformed("Ollama's answer", body, ctx) from exc

    def _decode(self, body: bytes, ctx: CallContext) -> Completion:
        data = parse_answer_object(body, ctx, what="a chat response", who="Ollama")
        if "error" in data:
            raise _error_in_body(data, ctx)
        message = data.get("message") or {}
        content = message.get("content") or ""
        reasoning = message.get("thinking") or ""
        if not reasoning and "<think>" in content:
            content, reasoning = split_think_tags(content)
        tool_calls = tuple(
            _tool_call(raw, i, ctx) for i, raw in enumerate(message.get("tool_calls") or ())
        )
        raw_finish = data.get("done_reason")
        usage = _usage(data)
        return Completion(
            content=content,
            model=data.get("model") or ctx.model,
            provider=ctx.provider,
            finish_reason=finish_reason(raw_finish, tool_calls=bool(tool_calls)),
            raw_finish_reason=raw_finish,
            tool_calls=tool_calls,
            usage=usage,
            thinking=thinking_result(
                (ThinkingBlock(reasoning, origin=_FAMILY),) if reasoning else (), usage
            ),
        )

    def stream_decoder(self, ctx: CallContext) -> OllamaStreamDecoder:
        """A decoder for one NDJSON stream."""
        return OllamaStreamDecoder(ctx)

    # -- errors ----------------------------------------------------------------------------

    def map_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        """``{"error": "..."}``; the status decides the class (Ollama has no error codes)."""
        message = _error_text(body)
        if status == 404 and message is not None:
            # Ollama's JSON 404 on /api/chat means the model is not on this server; a plain
            # "404 page not found" means the URL is wrong, and the status mapping says so.
            return LLMModelNotFoundError(
                f"The model {ctx.model!r} is not available on the Ollama server at "
                f"{ctx.base_url}; pull it with `ollama pull {ctx.model}`",
                provider=ctx.provider,
                model=ctx.model,
                status=status,
                retryable=False,
                provider_message=message,
            )
        return error_for_status(
            status,
            provider=ctx.provider,
            model=ctx.model,
            headers=headers,
            provider_message=error_message(message, body),
        )


def _malformed(what: str, data: bytes, ctx: CallContext) -> StreamError:
    return stream_error(
        f"{what} has an unexpected shape; it is not an Ollama chat response",
        ctx,
        data=data,
        code="stream_malformed",
    )


def _think_value(thinking: ThinkingConfig) -> bool | str:
    if thinking.suppress:
        return False
    if thinking.level is not None and thinking.level in _THINK_LEVELS:
        return thinking.level
    if thinking.effort is not None:
        return _EFFORT_TO_LEVEL[thinking.effort]
    return True


def _error_text(body: bytes) -> str | None:
    error = error_document(body).get("error")
    return error if isinstance(error, str) else None


def _error_in_body(data: Mapping[str, Any], ctx: CallContext) -> LLMError:
    """An ``{"error": ...}`` object where an answer was expected (status 200)."""
    return error_for_status(
        500,
        provider=ctx.provider,
        model=ctx.model,
        provider_message=str(data.get("error")),
    )


def _usage(data: Mapping[str, Any]) -> Usage:
    # Ollama omits a count that is zero (``omitempty``): a fully cached prompt has none.
    return Usage.of(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0))


def _tool_call(raw: Mapping[str, Any], index: int, ctx: CallContext) -> ToolCall:
    function = raw.get("function") or {}
    name = function.get("name")
    if not name:
        raise stream_error("Ollama sent a tool call without a function name", ctx)
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        text = arguments or "{}"
    else:
        text = orjson.dumps(arguments if arguments is not None else {}).decode()
    return ToolCall.create(raw.get("id") or f"call_{index}", name, text)


def _image_base64(part: ImageDataPart | ImageURLPart, ctx: CallContext) -> str:
    if isinstance(part, ImageDataPart):
        return part.base64
    url = part.url
    if url.startswith("data:") and ";base64," in url:
        return url.split(";base64,", 1)[1]
    raise invalid_request(
        "Ollama takes images inline only: pass the bytes (ImageDataPart) or a base64 data: URL, "
        "not a link",
        ctx,
    )


def _encode_content(message: ChatMessage, ctx: CallContext) -> tuple[str, list[str]]:
    """The message text and its images (base64), as Ollama keeps them apart."""
    content = message.content
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ImageDataPart | ImageURLPart):
            images.append(_image_base64(part, ctx))
    return "".join(texts), images


def _document_problem(part: DocumentPart) -> str:
    """Ollama's chat API has no document parts at all."""
    return "Ollama's chat API takes no documents; extract the text and send it as a message"


def _encode_arguments(call: ToolCall, ctx: CallContext) -> dict[str, Any]:
    try:
        return call.parsed_arguments()
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise invalid_request(
            f"Tool call {call.id} has arguments that are not a JSON object; Ollama needs an object",
            ctx,
        ) from exc


def _encode_messages(messages: Sequence[ChatMessage], ctx: CallContext) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}  # tool call id -> function name, for tool results
    for message in messages:
        text, images = _encode_content(message, ctx)
        item: dict[str, Any] = {"role": message.role, "content": text}
        if images:
            item["images"] = images
        if message.role is Role.ASSISTANT:
            if message.thinking:
                item["thinking"] = "".join(block.content for block in message.thinking)
            if message.tool_calls:
                calls = []
                for index, call in enumerate(message.tool_calls):
                    tool_names[call.id] = call.name
                    calls.append(
                        {
                            "id": call.id,
                            "function": {
                                "index": index,
                                "name": call.name,
                                "arguments": _encode_arguments(call, ctx),
                            },
                        }
                    )
                item["tool_calls"] = calls
        elif message.role is Role.TOOL:
            name = message.name or tool_names.get(message.tool_call_id or "")
            if name:
                item["tool_name"] = name
            if message.tool_call_id:
                item["tool_call_id"] = message.tool_call_id
        out.append(item)
    return out


class OllamaStreamDecoder:
    """Decodes one JSON object per line until the one with ``"done": true``."""

    __slots__ = ("_ctx", "_done", "_splitter", "_tool_count")

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._done = False
        self._splitter: ThinkTagSplitter | None = ThinkTagSplitter()
        self._tool_count = 0

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: bytes) -> list[StreamChunk]:
        if self._done:
            return []  # nothing may follow the terminal object
        try:
            return self._feed(event)
        except SHAPE_ERRORS as exc:
            if isinstance(exc, orjson.JSONDecodeError):
                raise stream_error(
                    "Ollama sent a stream line that is not valid JSON (a cut or corrupt stream)",
                    self._ctx,
                    data=event,
                    retryable=True,
                    code="stream_malformed",
                ) from exc
            raise _malformed("A stream line", event, self._ctx) from exc

    def _feed(self, event: bytes) -> list[StreamChunk]:
        payload = orjson.loads(event)
        if not isinstance(payload, dict):
            raise stream_error(
                "Ollama sent a stream line that is not a JSON object",
                self._ctx,
                code="stream_malformed",
            )
        if "error" in payload:
            raise StreamError(
                "Ollama reported an error mid-stream",
                provider=self._ctx.provider,
                model=self._ctx.model,
                retryable=True,
                provider_message=str(payload["error"]),
            )
        message = payload.get("message") or {}
        text = message.get("content") or ""
        thinking = message.get("thinking") or ""
        splitter = self._splitter
        if thinking:
            # Ollama separates the reasoning itself; no tags to look for.
            self._splitter = None
            if splitter is not None:
                held_text, held_thinking = splitter.flush()
                text, thinking = held_text + text, held_thinking + thinking
            splitter = None
        elif splitter is not None and text:
            text, thinking = splitter.feed(text)
        tool_deltas = []
        for raw in message.get("tool_calls") or ():
            call = _tool_call(raw, self._tool_count, self._ctx)
            tool_deltas.append(ToolCallDelta(self._tool_count, call.id, call.name, call.arguments))
            self._tool_count += 1
        done = bool(payload.get("done"))
        if done:
            self._done = True
            if splitter is not None:
                held_text, held_thinking = splitter.flush()
                text += held_text
                thinking += held_thinking
            raw_finish = payload.get("done_reason")
            return [
                StreamChunk(
                    delta=text,
                    thinking_delta=thinking,
                    tool_calls=tuple(tool_deltas),
                    finish_reason=finish_reason(raw_finish, tool_calls=self._tool_count > 0),
                    raw_finish_reason=raw_finish,
                    usage=_usage(payload),
                    model=payload.get("model"),
                )
            ]
        if not (text or thinking or tool_deltas):
            return []
        return [StreamChunk(delta=text, thinking_delta=thinking, tool_calls=tuple(tool_deltas))]

    def finish(self) -> list[StreamChunk]:
        if self._done:
            return []
        raise truncated_stream_error(
            'The Ollama stream ended before its last object ("done": true); the answer is '
            "incomplete",
            self._ctx,
        )


CODEC = OllamaCodec()

PROFILES: dict[str, ProviderProfile] = {
    "ollama": ProviderProfile(
        name="ollama",
        codec="ollama",
        base_url="http://localhost:11434",
        base_url_env=("OLLAMA_HOST",),
        api_key_env=("OLLAMA_API_KEY",),
        requires_key=False,
        default_model="llama3.2",
        unreachable_hint="is Ollama running (`ollama serve`)? Set OLLAMA_HOST or api_base",
        capabilities=frozenset(
            {"stream", "tools", "thinking", "json_object", "json_schema", "vision"}
        ),
        description="Ollama native chat API (local server, or ollama.com with OLLAMA_API_KEY)",
    ),
}
