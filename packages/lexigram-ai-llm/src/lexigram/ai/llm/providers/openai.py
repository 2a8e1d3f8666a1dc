"""The OpenAI Chat Completions wire family, and the hosts that speak it.

Codec: pure translation between ``ChatRequest``/``Completion``/``StreamChunk`` and the
``/chat/completions`` JSON and SSE shapes. Profiles: OpenAI, Azure OpenAI, OpenRouter, Groq,
DeepSeek, Together, Fireworks, Mistral, xAI, Cloudflare Workers AI and any OpenAI-compatible
server (vLLM, llama.cpp, LM Studio).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from lexigram.ai.llm import pricing as _pricing
from lexigram.ai.llm._framing import SSEEvent
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    LLMContentFilterError,
    LLMError,
    LLMModelNotFoundError,
    LLMQuotaExceededError,
    TokenLimitError,
    error_for_status,
)
from lexigram.ai.llm.providers._codec_common import (
    COMPATIBLE_SERVER_ERROR_TYPES,
    SHAPE_ERRORS,
    apply_extra_body,
    check_documents,
    error_document,
    error_payload,
    invalid_request,
    mid_stream_error,
    parse_answer,
    parse_event,
    prompt_cache_fields,
    replayable_thinking,
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
    FunctionCall,
    ImageDataPart,
    ImageURLPart,
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

__all__ = ["CODEC", "PROFILES", "OpenAICodec", "OpenAIWireCodec"]

_FAMILY = "openai"  # the ``origin`` of the thinking blocks this codec decodes

_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
    "eos": FinishReason.STOP,
    "model_length": FinishReason.LENGTH,
    "error": FinishReason.ERROR,
}

# The provider's error ``code``/``type`` decides the class; the status only when it says
# nothing more specific.
_ERROR_CODES: dict[str, type[LLMError]] = {
    "context_length_exceeded": TokenLimitError,
    "string_above_max_length": TokenLimitError,
    "content_filter": LLMContentFilterError,
    "content_policy_violation": LLMContentFilterError,
    "insufficient_quota": LLMQuotaExceededError,
    "billing_hard_limit_reached": LLMQuotaExceededError,
    "model_not_found": LLMModelNotFoundError,
    "DeploymentNotFound": LLMModelNotFoundError,
    **COMPATIBLE_SERVER_ERROR_TYPES,
}


# Looked up once per answer and once per streamed chunk: plain strings, no enum access.
_FINISH_VALUES: dict[str, str] = {raw: normal.value for raw, normal in _FINISH.items()}


def finish_reason(raw: str | None) -> str | None:
    """Normalised finish reason (unknown values pass through)."""
    if raw is None:
        return None
    return _FINISH_VALUES.get(raw, raw)


class StreamUsageFallback:
    """One client's knowledge of whether its host accepts ``stream_options``.

    Streams ask for usage with ``stream_options``; some OpenAI-compatible hosts reject the
    field (400/422). Until one stream has opened with it, a rejected stream is tried once more
    without it (``retry_context``); if that one opens, this client stops asking. Each client
    has its own (``HTTPLLMClient`` makes it with ``codec.stream_fallback()``), and the
    contexts it hands out are new values: nothing shared is mutated.
    """

    __slots__ = ("_accepts", "_applies", "_without")

    def __init__(self, applies: Callable[[CallContext], bool] | None = None) -> None:
        self._accepts: bool | None = None  # None: not known yet
        self._applies = applies
        self._without: dict[str, CallContext] = {}

    def context(self, ctx: CallContext) -> CallContext:
        """The context for a new stream: without usage once the host is known to refuse it."""
        return self._stripped(ctx) if self._accepts is False else ctx

    def retry_context(self, status: int, ctx: CallContext) -> CallContext | None:
        """After a rejected stream: the context to try once more, or ``None``."""
        if (
            self._accepts is None
            and status in (400, 422)
            and ctx.options.get("stream_usage", True)
            and (self._applies is None or self._applies(ctx))
        ):
            return self._stripped(ctx)
        return None

    def opened(self, ctx: CallContext) -> None:
        """A stream opened with ``ctx``: remember what the host accepts."""
        if self._accepts is not None or (self._applies is not None and not self._applies(ctx)):
            return
        if ctx.options.get("stream_usage", True):
            self._accepts = True
        elif self._without.get(ctx.model) is ctx:
            self._accepts = False  # the retry without ``stream_options`` worked

    def _stripped(self, ctx: CallContext) -> CallContext:
        stripped = self._without.get(ctx.model)
        if stripped is None:
            stripped = replace(ctx, options={**ctx.options, "stream_usage": False})
            self._without[ctx.model] = stripped
        return stripped


class OpenAICodec:
    """Chat Completions: encode, decode, stream decode, error mapping."""

    name = "openai"
    framing = Framing.SSE

    def stream_fallback(self) -> StreamUsageFallback:
        """Per-client state of the retry without ``stream_options`` (see the class)."""
        return StreamUsageFallback()

    # -- encode ----------------------------------------------------------------------------

    def encode(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HTTPRequest:
        """The ``POST /chat/completions`` request."""
        options = ctx.options
        check_documents(request, ctx, _document_problem)
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [_encode_message(m, options) for m in request.messages],
        }
        if request.temperature is not None and not options.get("omit_temperature"):
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body[options.get("max_tokens_field", "max_tokens")] = request.max_tokens
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body[options.get("seed_field", "seed")] = request.seed
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                        **({"strict": True} if t.strict else {}),
                    },
                }
                for t in request.tools
            ]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice, options)
        fmt = request.response_format
        if fmt is not None and fmt.type == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": fmt.name,
                    "schema": dict(fmt.schema or {}),
                    "strict": fmt.strict,
                },
            }
        elif fmt is not None and fmt.type == "json_object":
            body["response_format"] = {"type": "json_object"}
        thinking = request.thinking
        if thinking is not None:
            style = options.get("reasoning_style", "effort")
            if style == "openrouter":
                if thinking.suppress:
                    body["reasoning"] = {"enabled": False}
                elif thinking.effort:
                    body["reasoning"] = {"effort": thinking.effort}
                else:
                    body["reasoning"] = {"max_tokens": thinking.budget_tokens}
            elif style == "effort" and thinking.effort and not thinking.suppress:
                body["reasoning_effort"] = thinking.effort
        if stream:
            body["stream"] = True
            if options.get("stream_usage", True):
                body["stream_options"] = {"include_usage": True}
        if request.prompt_cache:
            body.update(prompt_cache_fields(request, ctx))
        apply_extra_body(body, request.extra)
        path = options.get("chat_path", "/chat/completions")
        if "{" in path or "}" in path:  # (without either, ``format`` gives it back as is)
            path = path.format(model=request.model)
        url = ctx.base_url + path
        query = options.get("query")
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        headers = request_headers(request.extra, accept="text/event-stream" if stream else None)
        return HTTPRequest("POST", url, headers, orjson.dumps(body))

    # -- decode ----------------------------------------------------------------------------

    def decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        """A ``chat.completion`` object to a ``Completion``."""
        try:
            return self._decode(body, headers, ctx)
        except SHAPE_ERRORS as exc:
            raise _malformed("The provider's answer", body, ctx) from exc

    def _decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        data = parse_answer(body, ctx, what="a chat completion")
        if "error" in data and not data.get("choices"):
            raise _error_from_payload(data["error"], 200, headers, ctx)
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise invalid_request(
                "The provider's answer has no choices; it is not a chat completion", ctx, data=body
            ) from exc
        content = message.get("content") or ""
        if isinstance(content, list):  # some hosts send parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        if not reasoning and "<think>" in content:
            content, reasoning = split_think_tags(content)
        raw_tools = message.get("tool_calls")
        tool_calls = (
            tuple(
                ToolCall(
                    id=tc.get("id") or f"call_{i}",
                    function=FunctionCall(
                        tc["function"]["name"], tc["function"].get("arguments") or "{}"
                    ),
                )
                for i, tc in enumerate(raw_tools)
            )
            if raw_tools
            else ()
        )
        usage = _usage(data.get("usage"))
        raw_finish = choice.get("finish_reason")
        if message.get("refusal") and not content:
            raise LLMContentFilterError(
                "The model refused to answer",
                provider=ctx.provider,
                model=ctx.model,
                provider_message=message["refusal"],
            )
        details = message.get("reasoning_details")
        if details and isinstance(details, list):
            blocks = tuple(_detail_block(d) for d in details if isinstance(d, Mapping))
        else:
            blocks = (ThinkingBlock(reasoning, origin=_FAMILY),) if reasoning else ()
        thinking = thinking_result(blocks, usage) if blocks else None
        return raw_completion(  # Completion(content, model, provider, ...): every field
            content,
            data.get("model") or ctx.model,
            ctx.provider,
            finish_reason(raw_finish),
            raw_finish,
            tool_calls,
            usage,
            thinking,
            None,
            data.get("id"),
            None,
            False,
            (),
        )

    def stream_decoder(self, ctx: CallContext) -> OpenAIStreamDecoder:
        """A decoder for one ``chat.completion.chunk`` SSE stream."""
        return OpenAIStreamDecoder(ctx)

    # -- errors ----------------------------------------------------------------------------

    def map_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        """``{"error": {"message", "type", "code", "param"}}`` plus the status."""
        payload = error_payload(error_document(body), body, allow_string=True)
        return _error_from_payload(payload, status, headers, ctx)


def _malformed(what: str, data: bytes, ctx: CallContext) -> LLMError:
    return stream_error(
        f"{what} has an unexpected shape; it is not an OpenAI chat completion",
        ctx,
        data=data,
        code="stream_malformed",
    )


def _error_from_payload(
    payload: Any, status: int, headers: Mapping[str, str], ctx: CallContext
) -> LLMError:
    if not isinstance(payload, Mapping):
        payload = {
            "message": payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        }
    message = payload.get("message")
    if message is not None and not isinstance(message, str):
        message = orjson.dumps(message).decode()
    code = payload.get("code")
    if not isinstance(code, str) or code.isdigit():
        # llama.cpp and some proxies put the HTTP status in ``code`` (``"code": 400``): the
        # status is ``status``; the error's code is then its ``type``.
        code = None
    kind_name = payload.get("type")
    kind = _ERROR_CODES.get(code) if code is not None else None
    if kind is None and kind_name is not None:
        kind = _ERROR_CODES.get(str(kind_name))
    inner = payload.get("innererror")
    if kind is None and isinstance(inner, Mapping):
        kind = _ERROR_CODES.get(str(inner.get("code")))
    if status == 200:
        status = (
            int(payload.get("status") or 500) if str(payload.get("status", "")).isdigit() else 500
        )
    return error_for_status(
        status,
        kind=kind,
        provider=ctx.provider,
        model=ctx.model,
        headers=headers,
        provider_message=message,
        code=str(code or kind_name or "") or None,
        details={"type": kind_name, "param": payload.get("param")},
    )


def _usage(data: Mapping[str, Any] | None) -> Usage:
    if not data:
        return Usage()
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    prompt = int(data.get("prompt_tokens") or 0)
    completion = int(data.get("completion_tokens") or 0)
    return raw_usage(  # Usage(prompt, completion, total, cached, reasoning, cache creation)
        prompt,
        completion,
        int(data.get("total_tokens") or prompt + completion),
        int(prompt_details.get("cached_tokens") or data.get("prompt_cache_hit_tokens") or 0),
        int(completion_details.get("reasoning_tokens") or 0),
        0,
    )


def _tool_choice(choice: Any, options: Mapping[str, Any]) -> Any:
    if isinstance(choice, str):
        if choice == "required" and options.get("tool_choice_required") == "any":
            return "any"
        if choice in ("auto", "none", "required", "any"):
            return choice
        return {"type": "function", "function": {"name": choice}}
    return dict(choice)


def _encode_content(message: ChatMessage) -> Any:
    content = message.content
    if content is None or isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ImageURLPart):
            spec: dict[str, Any] = {"url": part.url}
            if part.detail:
                spec["detail"] = part.detail
            parts.append({"type": "image_url", "image_url": spec})
        elif isinstance(part, ImageDataPart):
            parts.append({"type": "image_url", "image_url": {"url": part.data_url}})
        elif isinstance(part, DocumentPart):  # inline bytes: checked by _document_problem
            parts.append(
                {
                    "type": "file",
                    "file": {
                        "filename": part.name or _document_filename(part.media_type),
                        "file_data": f"data:{part.media_type};base64,{part.base64}",
                    },
                }
            )
    return parts


def _document_problem(part: DocumentPart) -> str | None:
    """Why Chat Completions cannot take ``part``, or ``None``: its ``file`` parts carry a
    document's bytes (``file_data``); there is no way to give one by URL."""
    if part.data is not None:
        return None
    if part.url:
        return (
            "Chat Completions takes documents inline, not by URL: download the document and "
            "send its bytes (DocumentPart(data=...))"
        )
    return "a document part needs data or a url"


def _document_filename(media_type: str) -> str:
    """A file name for a document given none; the API reads the type from its extension."""
    import mimetypes  # only for documents without a name

    return "document" + (mimetypes.guess_extension(media_type) or ".pdf")


def _encode_message(message: ChatMessage, options: Mapping[str, Any]) -> dict[str, Any]:
    role = message.role
    # ``Role`` is a StrEnum: orjson writes it as its string (``.value`` is a slow descriptor).
    content = message.content
    out: dict[str, Any] = {
        "role": role,
        "content": content if type(content) is str else _encode_content(message),
    }
    if role is Role.ASSISTANT and message.tool_calls:
        out["tool_calls"] = [
            {
                "id": tc.id,
                "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments},
            }
            for tc in message.tool_calls
        ]
        # The content goes as the caller gave it (``""`` stays ``""``: the API takes an empty
        # string beside tool calls); only an empty list of parts is sent as null, as before.
        if out["content"] == []:
            out["content"] = None
    elif role is Role.TOOL:
        out["tool_call_id"] = message.tool_call_id
    if role is Role.ASSISTANT and message.thinking:
        # Another family's signatures and encrypted entries are not this host's to check.
        thinking = replayable_thinking(message.thinking, _FAMILY)
        replay = options.get("reasoning_replay")
        if replay == "reasoning_content":
            # DeepSeek (thinking mode) and Kimi want the reasoning of a tool-calling turn back.
            reasoning = "".join(b.content for b in thinking if not b.redacted)
            if reasoning:
                out["reasoning_content"] = reasoning
        elif replay == "reasoning_details":
            details = [
                orjson.Fragment(b.data)
                for b in thinking
                if b.data and b.data.startswith(_DETAIL_PREFIX)
            ]
            if details:
                out["reasoning_details"] = details
    if message.name and role in (Role.USER, Role.ASSISTANT):
        out["name"] = message.name
    return out


def _detail_block(detail: Mapping[str, Any]) -> ThinkingBlock:
    """One OpenRouter ``reasoning_details`` entry as a block; ``data`` keeps the entry (compact
    JSON) to send back unchanged."""
    text = detail.get("text") or detail.get("summary") or ""
    return ThinkingBlock(
        content=text if isinstance(text, str) else "",
        signature=detail.get("signature") or None,
        # ``type`` first (a block is told apart as an entry by its prefix), then the other
        # fields in sorted order, so a streamed entry is kept exactly as the whole one.
        data=orjson.dumps({"type": detail.get("type"), **dict(sorted(detail.items()))}).decode(),
        origin=_FAMILY,
    )


#: How a block kept from a ``reasoning_details`` entry begins (``_detail_block`` writes it).
_DETAIL_PREFIX = '{"type":"reasoning.'


def _merge_details(merged: dict[Any, dict[str, Any]], fragments: list[Any]) -> None:
    """Streamed ``reasoning_details`` fragments folded by ``index``: text and summary pieces
    joined, the other fields (signature, encrypted data, format, id) kept as they come."""
    for position, fragment in enumerate(fragments):
        if not isinstance(fragment, Mapping):
            continue
        key = fragment.get("index", position)
        slot = merged.get(key)
        if slot is None or slot.get("type") != fragment.get("type"):
            # A new entry (one of another type at the same index gets a key of its own).
            merged[key if slot is None else (key, len(merged))] = dict(fragment)
            continue
        for name, value in fragment.items():
            if name in ("text", "summary") and isinstance(value, str):
                slot[name] = (slot.get(name) or "") + value
            elif value is not None:
                slot[name] = value


#: The keys of a delta that carries text and nothing else.
_PLAIN_DELTA = frozenset({"role", "content"})


class OpenAIStreamDecoder:
    """Decodes ``data: {chunk}`` events until ``data: [DONE]``."""

    __slots__ = ("_ctx", "_details", "_done", "_splitter", "_usage_in_body")

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._done = False
        # Looks for a leading ``<think>`` block; dropped (``None``) once the answer has begun
        # or the host separates reasoning itself.
        self._splitter: ThinkTagSplitter | None = ThinkTagSplitter()
        self._usage_in_body = ctx.options.get("usage_field")
        self._details: dict[Any, dict[str, Any]] | None = None

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        try:
            return self._feed(event)
        except SHAPE_ERRORS as exc:
            raise _malformed("A stream chunk", event.data, self._ctx) from exc

    def _feed(self, event: SSEEvent) -> list[StreamChunk]:
        data = event.data
        if data == b"[DONE]":
            self._done = True
            return self._flush()
        if not data:
            return []
        payload = parse_event(data, self._ctx, noun="stream chunk")
        choices = payload.get("choices")
        if choices and self._splitter is None and not self._usage_in_body:
            # Nearly every chunk: one text delta and nothing else (no finish, usage, tool
            # call or reasoning); any other shape takes the full path below.
            choice = choices[0]
            delta = choice.get("delta")
            if (
                type(delta) is dict
                and choice.get("finish_reason") is None
                and payload.get("usage") is None
                and _PLAIN_DELTA.issuperset(delta)
            ):
                text = delta.get("content")
                if type(text) is str:
                    if not text:
                        return []
                    model, chunk_id = payload.get("model"), payload.get("id")
                    return [raw_chunk(text, "", (), None, None, None, None, model, chunk_id)]
        error = payload.get("error")
        if error and not choices:
            if isinstance(error, str):
                error = {"message": error}
            inner = _error_from_payload(error, 200, {}, self._ctx)
            raise mid_stream_error(inner, self._ctx, carry_details=False)
        usage_data = payload.get("usage")
        if usage_data is None and self._usage_in_body:
            usage_data = (payload.get(self._usage_in_body) or {}).get("usage")
        if not choices:
            if usage_data:
                return [StreamChunk(usage=_usage(usage_data), model=payload.get("model"))]
            return []
        choice = choices[0]
        delta = choice.get("delta") or {}
        details = delta.get("reasoning_details")
        if details and isinstance(details, list):
            if self._details is None:
                self._details = {}
            _merge_details(self._details, details)
        text = delta.get("content") or ""
        thinking = delta.get("reasoning_content") or delta.get("reasoning") or ""
        splitter = self._splitter
        if splitter is not None and text:
            if thinking:
                # The host separates reasoning itself: no tags to look for, and what the
                # splitter held back goes out now rather than being dropped.
                self._splitter = None
                held_text, held_thinking = splitter.flush()
                text, thinking = held_text + text, held_thinking + thinking
                splitter = None
            else:
                text, inline = splitter.feed(text)
                thinking = inline
                if splitter.passthrough:
                    self._splitter = None
        tool_deltas: tuple[ToolCallDelta, ...] = ()
        raw_tools = delta.get("tool_calls")
        if raw_tools:
            tool_deltas = tuple(
                ToolCallDelta(
                    index=int(tc.get("index", i)),
                    id=tc.get("id"),
                    name=(tc.get("function") or {}).get("name"),
                    arguments=(tc.get("function") or {}).get("arguments") or "",
                )
                for i, tc in enumerate(raw_tools)
            )
        raw_finish = choice.get("finish_reason")
        if not (text or thinking or tool_deltas or raw_finish or usage_data):
            return []
        if raw_finish is not None and splitter is not None:
            # Text held back while looking for a tag boundary goes out before the finish.
            held_text, held_thinking = splitter.flush()
            text += held_text
            thinking += held_thinking
        return [
            StreamChunk(
                delta=text,
                thinking_delta=thinking,
                tool_calls=tool_deltas,
                finish_reason=finish_reason(raw_finish),
                raw_finish_reason=raw_finish,
                usage=_usage(usage_data) if usage_data else None,
                model=payload.get("model"),
                id=payload.get("id"),
            )
        ]

    def _flush(self) -> list[StreamChunk]:
        chunks = []
        if self._splitter is not None:
            text, thinking = self._splitter.flush()
            if text or thinking:
                chunks.append(StreamChunk(delta=text, thinking_delta=thinking))
        if self._details:
            chunks.extend(
                StreamChunk(thinking_block=_detail_block(d)) for d in self._details.values()
            )
        return chunks

    def finish(self) -> list[StreamChunk]:
        if self._done:
            return []
        raise truncated_stream_error(
            "The stream ended before the provider's terminal event ([DONE]); the answer is "
            "incomplete",
            self._ctx,
        )


class OpenAIWireCodec:
    """The ``openai`` family's codec: Chat Completions, or the Responses API where a profile
    or the config's ``extra`` says so with ``wire``. ``"auto"`` (the ``openai`` profile) sends
    a call to ``/responses`` when the model table marks its model ``"wire": "responses"``
    (``o3-pro``, ``gpt-5-codex``...); ``"responses"`` sends every call there."""

    name = "openai"
    framing = Framing.SSE

    def __init__(self) -> None:
        self.chat = OpenAICodec()
        self._last_auto: tuple[Any, Any, int, Any] = (None, None, -1, None)

    def stream_fallback(self) -> StreamUsageFallback:
        """Per-client state of the retry without ``stream_options`` (Chat Completions only)."""
        return StreamUsageFallback(applies=lambda ctx: self.codec_for(ctx) is self.chat)

    def codec_for(self, ctx: CallContext) -> Any:
        """The codec that speaks for ``ctx.model`` (the same one for encode and decode)."""
        wire = ctx.options.get("wire")
        if wire is None or wire == "chat":
            return self.chat
        if wire == "auto":
            table = _pricing.model_table()
            # The last answer, while the context, the table and its entries are the same
            # (encode and decode of a call ask for the same context).
            last = self._last_auto
            if last[0] is ctx and last[1] is table and last[2] == table._version:
                return last[3]
            version = table._version
            info = table.lookup(ctx.model, ctx.provider)
            if info is None or info.wire != "responses":
                self._last_auto = (ctx, table, version, self.chat)
                return self.chat
        elif wire != "responses":
            raise ConfigurationError(
                f"unknown wire {wire!r} for provider {ctx.provider!r}: use 'chat', "
                "'responses' or 'auto'"
            )
        from lexigram.ai.llm.providers.responses import CODEC as RESPONSES

        return RESPONSES

    def encode(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HTTPRequest:
        """The request on the model's wire."""
        encoded: HTTPRequest = self.codec_for(ctx).encode(request, ctx, stream=stream)
        return encoded

    def decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        """The answer, read by the wire it was asked on."""
        decoded: Completion = self.codec_for(ctx).decode(body, headers, ctx)
        return decoded

    def stream_decoder(self, ctx: CallContext) -> Any:
        """A stream decoder for the model's wire (both wires are SSE)."""
        return self.codec_for(ctx).stream_decoder(ctx)

    def map_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        """Both wires answer errors the same way."""
        return self.chat.map_error(status, headers, body, ctx)


CODEC = OpenAIWireCodec()

_CHAT = frozenset({"stream", "tools", "json_object", "json_schema", "vision"})

PROFILES: dict[str, ProviderProfile] = {
    p.name: p
    for p in (
        ProviderProfile(
            name="openai",
            codec="openai",
            base_url="https://api.openai.com/v1",
            api_key_env=("OPENAI_API_KEY",),
            base_url_env=("OPENAI_BASE_URL",),
            default_model="gpt-4o-mini",
            # ``wire: auto``: models that exist only on the Responses API go there.
            quirks={
                "max_tokens_field": "max_completion_tokens",
                "wire": "auto",
                "prompt_cache_key": True,
            },
            capabilities=_CHAT | {"thinking", "documents"},
            extra="openai",
            description="OpenAI Chat Completions",
        ),
        ProviderProfile(
            name="azure-openai",
            codec="openai",
            base_url=None,
            api_key_env=("AZURE_OPENAI_API_KEY",),
            base_url_env=("AZURE_OPENAI_ENDPOINT",),
            auth="header",
            auth_header="api-key",
            quirks={
                "chat_path": "/openai/deployments/{model}/chat/completions",
                "query": {"api-version": "2024-10-21"},
                "max_tokens_field": "max_completion_tokens",
            },
            capabilities=_CHAT | {"thinking"},
            extra="openai",
            description="Azure OpenAI (the model is the deployment name)",
        ),
        ProviderProfile(
            name="openrouter",
            codec="openai",
            base_url="https://openrouter.ai/api/v1",
            api_key_env=("OPENROUTER_API_KEY",),
            default_model="openai/gpt-4o-mini",
            default_headers={"HTTP-Referer": "https://github.com/lexigram", "X-Title": "lexigram"},
            # ``reasoning_details`` go back on the assistant turn (tool loops keep reasoning).
            quirks={"reasoning_style": "openrouter", "reasoning_replay": "reasoning_details"},
            capabilities=_CHAT | {"thinking"},
            description="OpenRouter (many models behind one key)",
        ),
        ProviderProfile(
            name="groq",
            codec="openai",
            base_url="https://api.groq.com/openai/v1",
            api_key_env=("GROQ_API_KEY",),
            default_model="llama-3.3-70b-versatile",
            quirks={"usage_field": "x_groq"},
            capabilities=_CHAT | {"thinking"},
            description="Groq",
        ),
        ProviderProfile(
            name="deepseek",
            codec="openai",
            base_url="https://api.deepseek.com/v1",
            api_key_env=("DEEPSEEK_API_KEY",),
            default_model="deepseek-chat",
            # Thinking mode with tool calls: the turn's reasoning_content must come back.
            quirks={"reasoning_style": "none", "reasoning_replay": "reasoning_content"},
            capabilities=frozenset({"stream", "tools", "json_object", "thinking"}),
            description="DeepSeek (reasoning_content)",
        ),
        ProviderProfile(
            name="together",
            codec="openai",
            base_url="https://api.together.xyz/v1",
            api_key_env=("TOGETHER_API_KEY", "TOGETHERAI_API_KEY"),
            default_model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
            capabilities=_CHAT,
            description="Together AI",
        ),
        ProviderProfile(
            name="fireworks",
            codec="openai",
            base_url="https://api.fireworks.ai/inference/v1",
            api_key_env=("FIREWORKS_API_KEY",),
            default_model="accounts/fireworks/models/llama-v3p1-8b-instruct",
            capabilities=_CHAT,
            description="Fireworks AI",
        ),
        ProviderProfile(
            name="mistral",
            codec="openai",
            base_url="https://api.mistral.ai/v1",
            api_key_env=("MISTRAL_API_KEY",),
            default_model="mistral-small-latest",
            # Mistral: ``random_seed`` not ``seed``, ``"any"`` not ``"required"``, usage always
            # on the last chunk (no ``stream_options``).
            quirks={
                "seed_field": "random_seed",
                "tool_choice_required": "any",
                "stream_usage": False,
                "reasoning_style": "none",
            },
            capabilities=_CHAT,
            description="Mistral AI",
        ),
        ProviderProfile(
            name="xai",
            codec="openai",
            base_url="https://api.x.ai/v1",
            api_key_env=("XAI_API_KEY",),
            default_model="grok-3-mini",
            capabilities=_CHAT | {"thinking"},
            description="xAI Grok",
        ),
        ProviderProfile(
            name="cloudflare",
            codec="openai",
            base_url="https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/v1",
            api_key_env=("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY"),
            default_model="@cf/meta/llama-3.1-8b-instruct",
            quirks={"reasoning_style": "none"},
            capabilities=frozenset({"stream", "tools", "json_schema"}),
            description="Cloudflare Workers AI (account id from extra or CLOUDFLARE_ACCOUNT_ID)",
        ),
        ProviderProfile(
            name="openai_compatible",
            codec="openai",
            base_url=None,
            api_key_env=("OPENAI_COMPATIBLE_API_KEY",),
            requires_key=False,
            quirks={"reasoning_style": "none"},
            capabilities=_CHAT | {"thinking"},
            description="Any OpenAI-compatible server (vLLM, llama.cpp, LM Studio); set api_base",
        ),
    )
}
