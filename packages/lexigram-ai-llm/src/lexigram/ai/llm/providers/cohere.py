"""The Cohere v2 chat API (``POST /v2/chat``) and its profile.

Codec: pure translation between ``ChatRequest``/``Completion``/``StreamChunk`` and Cohere's v2
JSON and typed server-sent events (cohere-ai/cohere-python ``v2`` types; event sequences from
Cohere's API reference): ``message-start``, ``content-start``/``content-delta``/``content-end``
(text or thinking), ``tool-plan-delta``, ``tool-call-start``/``-delta``/``-end``,
``citation-start``/``-end`` and the terminal ``message-end`` with finish reason and usage.

Cohere's ``tool_plan`` (the model's stated plan before calling tools) is reasoning, not an
answer, so it becomes a thinking block like the ``thinking`` content of reasoning models, and
goes back as ``tool_plan`` when the assistant turn is replayed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from lexigram.ai.llm._framing import SSEEvent
from lexigram.ai.llm.exceptions import (
    InvalidRequestError,
    LLMAuthenticationError,
    LLMError,
    LLMTimeoutError,
    ProviderError,
    StreamError,
    error_for_status,
)
from lexigram.ai.llm.providers._codec_common import (
    SHAPE_ERRORS,
    apply_extra_body,
    check_documents,
    document_text,
    error_document,
    error_message,
    invalid_request,
    json_path,
    parse_answer_object,
    request_headers,
    stream_error,
    thinking_result,
    truncated_stream_error,
)
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
    ToolDefinition,
    Usage,
)

__all__ = ["CODEC", "PROFILES", "CohereCodec", "CohereStreamDecoder"]
_FAMILY = "cohere"  # the ``origin`` of the thinking blocks this codec decodes

_FINISH = {
    "COMPLETE": FinishReason.STOP,
    "STOP_SEQUENCE": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "TOOL_CALL": FinishReason.TOOL_CALLS,
    "ERROR": FinishReason.ERROR,
    "TIMEOUT": FinishReason.ERROR,
    "ERROR_TOXIC": FinishReason.CONTENT_FILTER,  # v1 name, still seen on older models
}

# Statuses outside the shared table that Cohere documents (errors reference, SDK errors).
_STATUS_KINDS: dict[int, type[LLMError]] = {
    498: LLMAuthenticationError,  # invalid token
    499: ProviderError,  # request cancelled upstream; retrying may help
    501: InvalidRequestError,  # the model does not implement this feature
    504: LLMTimeoutError,  # gateway timeout
}

_RESERVED_EXTRA = frozenset({"body", "headers", "documents"})

# Document media types Cohere can take as text (its ``documents`` hold text, not files).
_TEXT_DOCUMENT_TYPES = ("text/", "application/json")


def finish_reason(raw: str | None) -> str | None:
    """Normalised finish reason (unknown values pass through)."""
    if raw is None:
        return None
    normal = _FINISH.get(raw)
    return normal.value if normal is not None else raw


class CohereCodec:
    """v2 chat: encode, decode, SSE stream decode, error mapping."""

    name = "cohere"
    framing = Framing.SSE

    # -- encode ----------------------------------------------------------------------------

    def encode(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HTTPRequest:
        """The ``POST /v2/chat`` request."""
        check_documents(request, ctx, _document_problem)
        documents: list[Any] = []
        body: dict[str, Any] = {
            "model": request.model,
            "messages": _encode_messages(request.messages, documents, ctx),
        }
        extra_documents = request.extra.get("documents")
        if isinstance(extra_documents, Sequence) and not isinstance(extra_documents, str):
            documents.extend(extra_documents)
        if documents:
            body["documents"] = documents
        tools = request.tools
        choice = request.tool_choice
        if isinstance(choice, Mapping):  # OpenAI's {"type": "function", "function": {...}}
            choice = (choice.get("function") or {}).get("name") or choice.get("name")
        if isinstance(choice, str) and choice not in ("auto", "none", "required", "any"):
            # Cohere cannot name a tool; offering only that one and requiring a call is the
            # same request (as the Vercel AI SDK does it).
            tools = tuple(t for t in tools if t.name == choice)
            if not tools:
                raise invalid_request(
                    f"tool_choice names {choice!r}, which is not among the tools given", ctx
                )
            choice = "required"
        if tools:
            body["tools"] = [_encode_tool(t) for t in tools]
            if any(t.strict for t in tools):
                body["strict_tools"] = True
        if choice in ("required", "any"):
            body["tool_choice"] = "REQUIRED"
        elif choice == "none":
            body["tool_choice"] = "NONE"
        fmt = request.response_format
        if fmt is not None and fmt.type == "json_schema":
            body["response_format"] = {"type": "json_object", "json_schema": dict(fmt.schema or {})}
        elif fmt is not None and fmt.type == "json_object":
            body["response_format"] = {"type": "json_object"}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.top_p is not None:
            body["p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        thinking = request.thinking
        if thinking is not None:
            body["thinking"] = (
                {"type": "disabled"}
                if thinking.suppress
                else {"type": "enabled", "token_budget": thinking.budget_tokens}
            )
        if stream:
            body["stream"] = True
        apply_extra_body(body, request.extra, reserved=_RESERVED_EXTRA)
        headers = request_headers(request.extra, accept="text/event-stream" if stream else None)
        return HTTPRequest("POST", ctx.base_url + "/v2/chat", headers, orjson.dumps(body))

    # -- decode ----------------------------------------------------------------------------

    def decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        """A ``V2ChatResponse`` to a ``Completion``."""
        try:
            return self._decode(body, headers, ctx)
        except SHAPE_ERRORS as exc:
            raise _malformed("Cohere's answer", body, ctx) from exc

    def _decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        data = parse_answer_object(body, ctx, what="a chat response", who="Cohere")
        message = data.get("message")
        if not isinstance(message, Mapping):
            raise invalid_request(
                "Cohere's answer has no message; it is not a chat response", ctx, data=body
            )
        texts: list[str] = []
        blocks: list[ThinkingBlock] = []
        for item in message.get("content") or ():
            if not isinstance(item, Mapping):
                continue
            if item.get("type") == "thinking":
                blocks.append(ThinkingBlock(item.get("thinking") or "", origin=_FAMILY))
            elif item.get("type") == "text":
                texts.append(item.get("text") or "")
        if message.get("tool_plan"):
            blocks.append(ThinkingBlock(message["tool_plan"], origin=_FAMILY))
        tool_calls = tuple(
            ToolCall(
                id=call.get("id") or f"call_{i}",
                function=FunctionCall(
                    (call.get("function") or {}).get("name") or "",
                    (call.get("function") or {}).get("arguments") or "{}",
                ),
            )
            for i, call in enumerate(message.get("tool_calls") or ())
        )
        raw_finish = data.get("finish_reason")
        usage = _usage(data.get("usage"))
        return Completion(
            content="".join(texts),
            model=ctx.model,
            provider=ctx.provider,
            finish_reason=finish_reason(raw_finish),
            raw_finish_reason=raw_finish,
            tool_calls=tool_calls,
            usage=usage,
            thinking=thinking_result(blocks, usage),
            id=data.get("id"),
        )

    def stream_decoder(self, ctx: CallContext) -> CohereStreamDecoder:
        """A decoder for one v2 chat event stream."""
        return CohereStreamDecoder(ctx)

    # -- errors ----------------------------------------------------------------------------

    def map_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        """``{"id": ..., "message": ...}``; Cohere has no error codes, the status decides."""
        data = error_document(body)
        message = error_message(data.get("message"), body)
        request_id = data.get("id")
        return error_for_status(
            status,
            kind=_STATUS_KINDS.get(status),
            provider=ctx.provider,
            model=ctx.model,
            headers=headers,
            provider_message=message,
            request_id=request_id if isinstance(request_id, str) else None,
        )


def _malformed(what: str, data: bytes, ctx: CallContext) -> StreamError:
    return stream_error(
        f"{what} has an unexpected shape; it is not a Cohere chat response",
        ctx,
        data=data,
        code="stream_malformed",
    )


def _usage(data: Any) -> Usage:
    """``usage.tokens`` (what the model processed); ``billed_units`` when tokens are absent."""
    if not isinstance(data, Mapping):
        return Usage()
    counts = data.get("tokens") or data.get("billed_units") or {}
    return Usage.of(
        int(counts.get("input_tokens") or 0),
        int(counts.get("output_tokens") or 0),
        cached_tokens=int(data.get("cached_tokens") or 0),
    )


def _encode_tool(tool: ToolDefinition) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _document_problem(part: DocumentPart) -> str | None:
    """Why Cohere cannot take ``part``, or ``None``: its documents are UTF-8 text."""
    if part.data is None:
        return "Cohere documents are text: send the document's text as bytes, not a URL"
    if not part.media_type.startswith(_TEXT_DOCUMENT_TYPES):
        return (
            f"Cohere documents are text: send text/* or application/json bytes, not "
            f"{part.media_type} (extract the text first)"
        )
    if document_text(part) is None:
        return f"the {part.media_type} document is not UTF-8 text"
    return None


def _document(part: DocumentPart, ctx: CallContext) -> dict[str, Any]:
    """A document part as a Cohere document: text with a title."""
    data: dict[str, Any] = {"text": document_text(part) or ""}  # see _document_problem
    if part.name:
        data["title"] = part.name
    return {"data": data}


def _encode_user_content(
    message: ChatMessage, documents: list[Any], ctx: CallContext
) -> str | list[dict[str, Any]]:
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[dict[str, Any]] = []
    has_image = False
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ImageURLPart | ImageDataPart):
            has_image = True
            url = part.url if isinstance(part, ImageURLPart) else part.data_url
            spec: dict[str, Any] = {"url": url}
            if isinstance(part, ImageURLPart) and part.detail:
                spec["detail"] = part.detail
            parts.append({"type": "image_url", "image_url": spec})
        elif isinstance(part, DocumentPart):
            documents.append(_document(part, ctx))
    if has_image:
        return parts
    return "".join(p["text"] for p in parts)


def _encode_messages(
    messages: Sequence[ChatMessage], documents: list[Any], ctx: CallContext
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.role
        if role is Role.USER:
            out.append({"role": "user", "content": _encode_user_content(message, documents, ctx)})
        elif role is Role.SYSTEM:
            out.append({"role": "system", "content": message.text})
        elif role is Role.TOOL:
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id or "",
                    "content": message.text,
                }
            )
        else:
            item: dict[str, Any] = {"role": "assistant"}
            if message.tool_calls:
                plan = "".join(block.content for block in message.thinking)
                if plan:
                    item["tool_plan"] = plan
                item["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in message.tool_calls
                ]
                if message.text:
                    item["content"] = message.text
            else:
                item["content"] = message.text
            out.append(item)
    return out


class CohereStreamDecoder:
    """Decodes the typed v2 events until ``message-end``.

    Reasoning arrives as ``thinking`` content blocks and as ``tool-plan-delta`` text; each is
    closed with a ``thinking_block`` chunk so the stream folds into the same blocks as the
    non-streamed answer.
    """

    __slots__ = ("_block_kinds", "_ctx", "_done", "_id", "_plan", "_thinking")

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._done = False
        self._id: str | None = None
        self._block_kinds: dict[int, str] = {}
        self._thinking: dict[int, list[str]] = {}
        self._plan: list[str] = []

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        try:
            return self._feed(event)
        except SHAPE_ERRORS as exc:
            raise _malformed("A stream event", event.data, self._ctx) from exc

    def _feed(self, event: SSEEvent) -> list[StreamChunk]:
        data = event.data
        if not data or self._done:
            return []
        if data == b"[DONE]":
            return []  # some gateways end with it; message-end already decided
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise stream_error(
                "Cohere sent a stream event that is not valid JSON",
                self._ctx,
                data=data,
                code="stream_malformed",
            ) from exc
        if not isinstance(payload, dict):
            raise stream_error("Cohere sent a stream event that is not a JSON object", self._ctx)
        kind = payload.get("type") or event.event
        index = payload.get("index")
        index = index if isinstance(index, int) else 0
        if kind == "message-start":
            self._id = payload.get("id")
            return []
        if kind in ("content-start", "content-delta"):
            content = json_path(payload, "delta", "message", "content")
            if not isinstance(content, Mapping):
                return []
            if kind == "content-start":
                is_thinking = content.get("type") == "thinking"
                self._block_kinds[index] = "thinking" if is_thinking else "text"
            return self._content(index, content)
        if kind == "content-end":
            if self._block_kinds.get(index) == "thinking":
                text = "".join(self._thinking.pop(index, ()))
                return [StreamChunk(thinking_block=ThinkingBlock(text, origin=_FAMILY))]
            return []
        if kind == "tool-plan-delta":
            plan = json_path(payload, "delta", "message", "tool_plan") or ""
            if not plan:
                return []
            self._plan.append(plan)
            return [StreamChunk(thinking_delta=plan)]
        if kind == "tool-call-start":
            call = json_path(payload, "delta", "message", "tool_calls")
            if not isinstance(call, Mapping):
                raise stream_error(
                    "Cohere sent a tool-call-start event without its tool call", self._ctx
                )
            function = call.get("function") or {}
            chunks = self._close_plan()
            chunks.append(
                StreamChunk(
                    tool_calls=(
                        ToolCallDelta(
                            index,
                            call.get("id") or f"call_{index}",
                            function.get("name"),
                            function.get("arguments") or "",
                        ),
                    )
                )
            )
            return chunks
        if kind == "tool-call-delta":
            fragment = json_path(payload, "delta", "message", "tool_calls", "function", "arguments")
            if not fragment:
                return []
            return [StreamChunk(tool_calls=(ToolCallDelta(index, arguments=fragment),))]
        if kind == "message-end":
            return self._end(payload)
        # tool-call-end, citation-start/-end, debug: nothing the answer needs.
        return []

    def _content(self, index: int, content: Mapping[str, Any]) -> list[StreamChunk]:
        thinking = content.get("thinking") or ""
        text = content.get("text") or ""
        if thinking:
            self._thinking.setdefault(index, []).append(thinking)
        if not (thinking or text):
            return []
        return [StreamChunk(delta=text, thinking_delta=thinking)]

    def _close_plan(self) -> list[StreamChunk]:
        if not self._plan:
            return []
        text = "".join(self._plan)
        self._plan = []
        return [StreamChunk(thinking_block=ThinkingBlock(text, origin=_FAMILY))]

    def _end(self, payload: Mapping[str, Any]) -> list[StreamChunk]:
        self._done = True
        delta = payload.get("delta") or {}
        raw_finish = delta.get("finish_reason")
        error = delta.get("error")
        if error or raw_finish == "ERROR":
            raise StreamError(
                "Cohere ended the stream with an error; the answer is incomplete",
                provider=self._ctx.provider,
                model=self._ctx.model,
                retryable=True,
                code="stream_provider_error",
                provider_message=str(error) if error else None,
            )
        chunks = self._close_plan()
        chunks.append(
            StreamChunk(
                finish_reason=finish_reason(raw_finish),
                raw_finish_reason=raw_finish,
                usage=_usage(delta.get("usage")),
                id=payload.get("id") or self._id,
            )
        )
        return chunks

    def finish(self) -> list[StreamChunk]:
        if self._done:
            return []
        raise truncated_stream_error(
            "The Cohere stream ended before its message-end event; the answer is incomplete",
            self._ctx,
        )


CODEC = CohereCodec()

PROFILES: dict[str, ProviderProfile] = {
    "cohere": ProviderProfile(
        name="cohere",
        codec="cohere",
        base_url="https://api.cohere.com",
        api_key_env=("CO_API_KEY", "COHERE_API_KEY"),
        base_url_env=("CO_API_URL",),
        default_model="command-a-03-2025",
        capabilities=frozenset(
            {"stream", "tools", "thinking", "json_object", "json_schema", "vision", "documents"}
        ),
        description="Cohere v2 chat (Command models)",
    ),
}
