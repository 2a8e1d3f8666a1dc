"""AWS Bedrock's Converse API (``Converse`` and ``ConverseStream``) and its profile.

Codec: pure translation between ``ChatRequest``/``Completion``/``StreamChunk`` and the shapes of
botocore's ``bedrock-runtime`` service model (``POST /model/{modelId}/converse`` and
``/converse-stream``). Streams come in AWS's binary event-stream framing, cut into messages by
botocore's own decoder (``EventStreamBuffer``, which checks both CRCs).

Authentication: a Bedrock API key (``ClientConfig.api_key`` or ``AWS_BEARER_TOKEN_BEDROCK``)
as a bearer token when one is set, otherwise SigV4 signatures by botocore with credentials from
the standard AWS chain (environment, shared files, SSO, container and instance roles),
resolved on first use.

This module needs botocore (``pip install 'lexigram-ai-llm[bedrock]'``); it is imported only
when a Bedrock client is built, and a missing botocore is reported as ``MissingExtraError``.

Context length: Bedrock reports an over-long prompt as a plain ``ValidationException`` whose
only distinction is its message text ("Input is too long for requested model", "prompt is too
long: N tokens > M maximum"). Errors are mapped by type, never by message, so it is an
``InvalidRequestError`` carrying Bedrock's message; ``TokenLimitError`` comes from the
client's pre-flight (``ClientConfig.context_window``), and a stop for a full context window
(``model_context_window_exceeded``) is finish reason ``length``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlsplit

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.eventstream import EventStreamBuffer, ParserError
from botocore.exceptions import BotoCoreError
from botocore.session import Session
from yarl import URL

from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    LLMAuthenticationError,
    LLMError,
    LLMModelNotFoundError,
    LLMQuotaExceededError,
    LLMRateLimitError,
    LLMTimeoutError,
    ProviderError,
    StreamError,
    error_for_status,
)
from lexigram.ai.llm.providers._codec_common import (
    SHAPE_ERRORS,
    apply_extra_body,
    error_document,
    error_message,
    invalid_request,
    json_path,
    parse_answer_object,
    replayable_thinking,
    request_headers,
    stream_error,
    thinking_result,
    truncated_stream_error,
)
from lexigram.ai.llm.providers.base import (
    CallContext,
    Framing,
    HTTPRequest,
    ProviderProfile,
    RequestSigner,
)
from lexigram.ai.llm.types import (
    CachePointPart,
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
    ThinkingConfig,
    ToolCall,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    from lexigram.ai.llm.config import ClientConfig

__all__ = [
    "CODEC",
    "PROFILES",
    "BedrockCodec",
    "BedrockSigner",
    "BedrockStreamDecoder",
    "EventStreamFramer",
    "EventStreamMessage",
]

SIGNING_NAME = "bedrock"  # the service model's ``signingName``
_FAMILY = "bedrock"  # the ``origin`` of the thinking blocks this codec decodes

_STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "tool_use": FinishReason.TOOL_CALLS,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "guardrail_intervened": FinishReason.CONTENT_FILTER,
    "content_filtered": FinishReason.CONTENT_FILTER,
    "malformed_model_output": FinishReason.ERROR,
    "malformed_tool_use": FinishReason.ERROR,
}

# Error type (``x-amzn-ErrorType`` / ``__type``) -> class. The first group are the
# operations' declared errors; the second AWS's common authentication errors.
_ERROR_TYPES: dict[str, type[LLMError]] = {
    "ValidationException": InvalidRequestError,
    "ConflictException": InvalidRequestError,
    "ThrottlingException": LLMRateLimitError,
    "ServiceQuotaExceededException": LLMQuotaExceededError,
    "AccessDeniedException": LLMAuthenticationError,
    "ResourceNotFoundException": LLMModelNotFoundError,
    "ModelNotReadyException": ProviderError,
    "ModelTimeoutException": LLMTimeoutError,
    "ModelErrorException": ProviderError,
    "ModelStreamErrorException": StreamError,
    "InternalServerException": ProviderError,
    "ServiceUnavailableException": ProviderError,
    "UnrecognizedClientException": LLMAuthenticationError,
    "InvalidSignatureException": LLMAuthenticationError,
    "IncompleteSignatureException": LLMAuthenticationError,
    "MissingAuthenticationTokenException": LLMAuthenticationError,
    "ExpiredTokenException": LLMAuthenticationError,
}

# The status each declared error has in the service model, for errors met mid-stream.
_ERROR_STATUS = {
    "ValidationException": 400,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelNotReadyException": 429,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ModelStreamErrorException": 424,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
# Document names may hold letters, digits, single spaces, hyphens, parentheses and brackets.
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")

# Request keyword arguments with a meaning of their own here; the rest go into the body.
_RESERVED_EXTRA = frozenset({"body", "headers", "additionalModelRequestFields"})

# Room for the answer beside the thinking budget when the caller set no ``max_tokens``:
# Anthropic models count thinking inside ``max_tokens`` and need it larger than the budget.
_ANSWER_ROOM = 4096


def finish_reason(raw: str | None) -> str | None:
    """Normalised finish reason (unknown values pass through)."""
    if raw is None:
        return None
    normal = _STOP_REASONS.get(raw)
    return normal.value if normal is not None else raw


# -- event-stream framing ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    """One decoded event-stream message: its headers and its (JSON) payload."""

    headers: Mapping[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        """``event``, ``exception`` or ``error``."""
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str | None:
        value = self.headers.get(":event-type")
        return None if value is None else str(value)


class EventStreamFramer:
    """Bytes in, whole event-stream messages out, by botocore's decoder (CRCs checked)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()

    def feed(self, data: bytes) -> list[EventStreamMessage]:
        """Every message completed by ``data``."""
        self._buffer.add_data(data)
        try:
            # (botocore's stubs type ``headers`` as int; it is the decoded header dict)
            return [
                EventStreamMessage(cast(Mapping[str, Any], m.headers), m.payload)
                for m in self._buffer
            ]
        except (ParserError, KeyError, ValueError) as exc:
            raise StreamError(
                f"Bedrock sent a corrupt event-stream frame ({type(exc).__name__})",
                retryable=True,
                code="stream_malformed",
            ) from exc

    def finish(self) -> list[EventStreamMessage]:
        """Nothing: a frame cut short never completes, and the decoder reports the stream as
        truncated because its terminal event never came."""
        return []


# -- the codec ---------------------------------------------------------------------------------


class BedrockCodec:
    """Converse: encode, decode, event-stream decode, error mapping."""

    name = "bedrock"
    framing = Framing.AWS_EVENTSTREAM

    def framer(self) -> EventStreamFramer:
        """A fresh event-stream framer for one streamed response."""
        return EventStreamFramer()

    # -- encode ----------------------------------------------------------------------------

    def encode(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HTTPRequest:
        """``POST {base}/model/{modelId}/converse`` (or ``/converse-stream``)."""
        system, messages = _encode_messages(request.messages, ctx)
        body: dict[str, Any] = {"messages": messages}
        if system:
            body["system"] = system
        thinking_fields = _thinking_fields(request.thinking, ctx)
        inference: dict[str, Any] = {}
        if request.max_tokens is not None:
            inference["maxTokens"] = request.max_tokens
        elif thinking_fields:
            inference["maxTokens"] = thinking_fields["thinking"]["budget_tokens"] + _ANSWER_ROOM
        if not thinking_fields:
            # Anthropic models reject a temperature other than 1 and a low topP while thinking.
            if request.temperature is not None:
                inference["temperature"] = request.temperature
            if request.top_p is not None:
                inference["topP"] = request.top_p
        if request.stop:
            inference["stopSequences"] = list(request.stop)
        if inference:
            body["inferenceConfig"] = inference
        tool_config = _tool_config(request, messages, ctx)
        if tool_config is not None:
            body["toolConfig"] = tool_config
        _place_cache_points(body, request)
        additional: dict[str, Any] = dict(thinking_fields)
        extra_fields = request.extra.get("additionalModelRequestFields")
        if isinstance(extra_fields, Mapping):
            additional.update(extra_fields)
        if additional:
            body["additionalModelRequestFields"] = additional
        fmt = request.response_format
        if fmt is not None and fmt.type in ("json_schema", "json_object"):
            schema = fmt.schema if fmt.type == "json_schema" and fmt.schema else {"type": "object"}
            body["outputConfig"] = {
                "textFormat": {
                    "type": "json_schema",
                    "structure": {
                        "jsonSchema": {"schema": orjson.dumps(schema).decode(), "name": fmt.name}
                    },
                }
            }
        apply_extra_body(body, request.extra, reserved=_RESERVED_EXTRA)
        operation = "converse-stream" if stream else "converse"
        url = f"{ctx.base_url}/model/{quote(request.model, safe='')}/{operation}"
        return HTTPRequest("POST", url, request_headers(request.extra), orjson.dumps(body))

    # -- decode ----------------------------------------------------------------------------

    def decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        """A ``ConverseResponse`` to a ``Completion``."""
        try:
            return self._decode(body, headers, ctx)
        except SHAPE_ERRORS as exc:
            raise _malformed("Bedrock's answer", body, ctx) from exc

    def _decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        data = parse_answer_object(body, ctx, what="a Converse response", who="Bedrock")
        message = json_path(data, "output", "message")
        if not isinstance(message, Mapping):
            raise invalid_request(
                "Bedrock's answer has no output message; it is not a Converse response",
                ctx,
                data=body,
            )
        texts: list[str] = []
        blocks: list[ThinkingBlock] = []
        calls: list[ToolCall] = []
        for block in message.get("content") or ():
            if not isinstance(block, Mapping):
                continue
            if "text" in block:
                texts.append(block["text"] or "")
            elif "toolUse" in block:
                use = block["toolUse"] or {}
                calls.append(
                    ToolCall(
                        id=use.get("toolUseId") or f"call_{len(calls)}",
                        function=FunctionCall(
                            use.get("name") or "", orjson.dumps(use.get("input") or {}).decode()
                        ),
                    )
                )
            elif "reasoningContent" in block:
                reasoning = block["reasoningContent"] or {}
                if "redactedContent" in reasoning:
                    hidden = _blob_text(reasoning["redactedContent"])
                    blocks.append(ThinkingBlock(redacted=True, data=hidden, origin=_FAMILY))
                else:
                    text_block = reasoning.get("reasoningText") or {}
                    blocks.append(
                        ThinkingBlock(
                            text_block.get("text") or "",
                            text_block.get("signature"),
                            origin=_FAMILY,
                        )
                    )
        raw_finish = data.get("stopReason")
        usage = _usage(data.get("usage"))
        return Completion(
            content="".join(texts),
            model=ctx.model,
            provider=ctx.provider,
            finish_reason=finish_reason(raw_finish),
            raw_finish_reason=raw_finish,
            tool_calls=tuple(calls),
            usage=usage,
            thinking=thinking_result(blocks, usage),
            request_id=_request_id(headers),
        )

    def stream_decoder(self, ctx: CallContext) -> BedrockStreamDecoder:
        """A decoder for one ``ConverseStream`` event stream."""
        return BedrockStreamDecoder(ctx)

    # -- errors ----------------------------------------------------------------------------

    def map_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        """By the error type in ``x-amzn-ErrorType`` (or the body's ``__type``), as botocore's
        rest-json parser reads it; the status only when the type is unknown."""
        data = error_document(body)
        error_type = _error_type(headers, data)
        message = error_message(data.get("message") or data.get("Message"), body)
        return _typed_error(error_type, status, message, headers, ctx)


def _typed_error(
    error_type: str | None,
    status: int,
    message: str | None,
    headers: Mapping[str, str],
    ctx: CallContext,
) -> LLMError:
    kind = _ERROR_TYPES.get(error_type or "")
    error = error_for_status(
        status,
        kind=kind,
        provider=ctx.provider,
        model=ctx.model,
        headers=headers,
        provider_message=message,
        code=error_type,
        request_id=_request_id(headers),
    )
    if kind is StreamError:
        # "An error occurred while streaming the response. Retry your request."
        error.retryable = True
    return error


def _error_type(headers: Mapping[str, str], data: Mapping[str, Any]) -> str | None:
    raw = headers.get("x-amzn-ErrorType") or headers.get("x-amzn-errortype")
    if not raw:
        raw = data.get("__type") or data.get("code") or data.get("Code")
    if not isinstance(raw, str) or not raw:
        return None
    # "ValidationException:http://internal.amazon.com/coral/..." or "aws.protocol#Name".
    return raw.split(":", 1)[0].rsplit("#", 1)[-1]


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-amzn-RequestId") or headers.get("x-amzn-requestid") or None


def _malformed(what: str, data: bytes, ctx: CallContext) -> StreamError:
    return stream_error(
        f"{what} has an unexpected shape; it is not a Bedrock chat response",
        ctx,
        data=data,
        code="stream_malformed",
    )


def _blob_text(value: Any) -> str:
    """A blob as base64 text (it arrives base64-encoded in JSON)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _usage(data: Any) -> Usage:
    """``inputTokens`` excludes cache reads and writes, which Bedrock reports beside it; here
    they are part of the prompt, as ``Usage`` counts them."""
    if not isinstance(data, Mapping):
        return Usage()
    read = int(data.get("cacheReadInputTokens") or 0)
    write = int(data.get("cacheWriteInputTokens") or 0)
    return Usage.of(
        int(data.get("inputTokens") or 0) + read + write,
        int(data.get("outputTokens") or 0),
        cached_tokens=read,
        cache_creation_tokens=write,
    )


# -- request pieces ----------------------------------------------------------------------------


def _uses_anthropic_thinking(ctx: CallContext) -> bool:
    style = ctx.options.get("thinking_style")
    if style is not None:
        return str(style) == "anthropic"
    # Foundation models, cross-region profiles ("us.anthropic...") and ARNs that name them.
    return "anthropic." in ctx.model


def _thinking_fields(thinking: ThinkingConfig | None, ctx: CallContext) -> dict[str, Any]:
    """``additionalModelRequestFields`` that turn extended thinking on (never when
    suppressed: then nothing is sent and the model does not think)."""
    if thinking is None or thinking.suppress or not _uses_anthropic_thinking(ctx):
        return {}
    return {"thinking": {"type": "enabled", "budget_tokens": thinking.budget_tokens}}


def _image_block(part: ImageDataPart | ImageURLPart, ctx: CallContext) -> dict[str, Any]:
    if isinstance(part, ImageDataPart):
        media_type, data = part.media_type, part.base64
    elif part.url.startswith("s3://"):
        extension = part.url.rsplit(".", 1)[-1].lower()
        s3_format = "jpeg" if extension == "jpg" else extension
        if s3_format not in _IMAGE_FORMATS.values():
            raise invalid_request(f"Bedrock cannot tell the image format of {part.url}", ctx)
        return {"image": {"format": s3_format, "source": {"s3Location": {"uri": part.url}}}}
    elif part.url.startswith("data:") and ";base64," in part.url:
        head, data = part.url[5:].split(";base64,", 1)
        media_type = head
    else:
        raise invalid_request(
            "Bedrock takes images inline or from S3: pass the bytes (ImageDataPart), a base64 "
            "data: URL or an s3:// URI, not a web link",
            ctx,
        )
    image_format = _IMAGE_FORMATS.get(media_type)
    if image_format is None:
        raise invalid_request(
            f"Bedrock takes png, jpeg, gif and webp images, not {media_type}", ctx
        )
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _document_block(part: DocumentPart, ctx: CallContext) -> dict[str, Any]:
    document_format = _DOCUMENT_FORMATS.get(part.media_type)
    if document_format is None:
        raise invalid_request(
            f"Bedrock takes pdf, csv, doc, docx, xls, xlsx, html, txt and md documents, not "
            f"{part.media_type}",
            ctx,
        )
    stem = (part.name or "document").rsplit(".", 1)[0]
    name = " ".join(_NAME_UNSAFE.sub("-", stem).split()) or "document"
    if part.data is not None:
        source: dict[str, Any] = {"bytes": part.base64}
    elif part.url and part.url.startswith("s3://"):
        source = {"s3Location": {"uri": part.url}}
    else:
        raise invalid_request("Bedrock takes documents inline (bytes) or from an s3:// URI", ctx)
    return {"document": {"format": document_format, "name": name, "source": source}}


def _content_blocks(message: ChatMessage, ctx: CallContext) -> list[dict[str, Any]]:
    content = message.content
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"text": part.text})
        elif isinstance(part, ImageDataPart | ImageURLPart):
            blocks.append(_image_block(part, ctx))
        elif isinstance(part, DocumentPart):
            blocks.append(_document_block(part, ctx))
        elif isinstance(part, CachePointPart) and blocks:
            blocks.append(_CACHE_POINT)
    return blocks


# Converse takes at most four cache checkpoints per request.
MAX_CACHE_POINTS = 4
_CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}


def _place_cache_points(body: dict[str, Any], request: ChatRequest) -> None:
    """With ``prompt_cache="auto"``, a ``cachePoint`` after the tools, the system blocks and
    the conversation; then only the last four cache points are kept."""
    tools = body.get("toolConfig", {}).get("tools")
    lists: list[list[dict[str, Any]]] = [tools] if tools else []
    lists += [body["system"]] if body.get("system") else []
    lists += [turn["content"] for turn in body["messages"]]
    if request.prompt_cache == "auto":
        ends = lists[: len(lists) - len(body["messages"])]
        ends += [body["messages"][-1]["content"]] if body["messages"] else []
        for blocks in ends:
            if blocks and blocks[-1] is not _CACHE_POINT:
                blocks.append(_CACHE_POINT)
    points = [(blocks, i) for blocks in lists for i, b in enumerate(blocks) if b is _CACHE_POINT]
    for blocks, index in reversed(points[:-MAX_CACHE_POINTS]):
        del blocks[index]


def _assistant_blocks(message: ChatMessage, ctx: CallContext) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for thought in replayable_thinking(message.thinking, _FAMILY):
        # Only signed (or redacted) reasoning can be replayed; unsigned text from another
        # model would be rejected, and is not needed. Another family's signatures are gone.
        if thought.redacted and thought.data:
            blocks.append({"reasoningContent": {"redactedContent": thought.data}})
        elif thought.signature:
            blocks.append(
                {
                    "reasoningContent": {
                        "reasoningText": {"text": thought.content, "signature": thought.signature}
                    }
                }
            )
    blocks.extend(_content_blocks(message, ctx))
    for call in message.tool_calls:
        try:
            arguments = call.parsed_arguments()
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise invalid_request(
                f"Tool call {call.id} has arguments that are not a JSON object; Bedrock needs "
                "an object",
                ctx,
            ) from exc
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": arguments}})
    return blocks


def _encode_messages(
    messages: Sequence[ChatMessage], ctx: CallContext
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """System blocks, and the conversation with tool results folded into user turns and
    consecutive turns of one role merged (Converse wants user and assistant to alternate)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            if message.text:
                system.append({"text": message.text})
            if isinstance(message.content, tuple) and system:
                system.extend(
                    _CACHE_POINT for p in message.content if isinstance(p, CachePointPart)
                )
            continue
        if message.role is Role.TOOL:
            if not message.tool_call_id:
                raise invalid_request(
                    "A tool result needs the tool_call_id of the call it answers", ctx
                )
            role = "user"
            result: dict[str, Any] = {
                "toolUseId": message.tool_call_id,
                "content": [{"text": message.text}],
            }
            if message.is_error:
                result["status"] = "error"
            blocks = [{"toolResult": result}]
        elif message.role is Role.ASSISTANT:
            role, blocks = "assistant", _assistant_blocks(message, ctx)
        else:
            role, blocks = "user", _content_blocks(message, ctx)
        if not blocks:
            continue  # Converse rejects a message with no content blocks
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tool_config(
    request: ChatRequest, messages: list[dict[str, Any]], ctx: CallContext
) -> dict[str, Any] | None:
    if not request.tools:
        return None
    choice = request.tool_choice
    history_has_tools = any(
        "toolUse" in block or "toolResult" in block
        for turn in messages
        for block in turn["content"]
    )
    if choice == "none" and not history_has_tools:
        # Converse has no "none": offering no tools is the same request. (With tool blocks
        # in the history the tools must be declared, so "none" cannot be honoured there.)
        return None
    specs = []
    for tool in request.tools:
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": dict(tool.parameters)}}
        if tool.description:
            spec["description"] = tool.description
        if tool.strict:
            spec["strict"] = True
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if isinstance(choice, Mapping):  # OpenAI's {"type": "function", "function": {...}}
        choice = (choice.get("function") or {}).get("name") or choice.get("name")
    if choice in ("required", "any"):
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, str) and choice != "none":
        if choice not in {t.name for t in request.tools}:
            raise invalid_request(
                f"tool_choice names {choice!r}, which is not among the tools", ctx
            )
        config["toolChoice"] = {"tool": {"name": choice}}
    return config


# -- the stream decoder ------------------------------------------------------------------------


class BedrockStreamDecoder:
    """Decodes ``ConverseStream`` events until ``metadata`` (after ``messageStop``).

    Tool calls are numbered in order of appearance, whatever their content-block index;
    reasoning blocks close with a ``thinking_block`` chunk carrying the signature, so the stream
    folds into the same blocks as the non-streamed answer.
    """

    __slots__ = ("_ctx", "_done", "_reasoning", "_stopped", "_tools")

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._done = False
        self._stopped = False
        self._tools: dict[int, int] = {}  # content-block index -> tool-call index
        # content-block index -> [text pieces, signature, redacted data]
        self._reasoning: dict[int, list[Any]] = {}

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: EventStreamMessage) -> list[StreamChunk]:
        try:
            return self._feed(event)
        except SHAPE_ERRORS as exc:
            raise _malformed("A stream event", event.payload, self._ctx) from exc

    def _feed(self, event: EventStreamMessage) -> list[StreamChunk]:
        if self._done:
            return []
        if event.message_type != "event":
            raise self._stream_exception(event)
        try:
            payload = orjson.loads(event.payload) if event.payload else {}
        except orjson.JSONDecodeError as exc:
            raise stream_error(
                "Bedrock sent an event whose payload is not valid JSON",
                self._ctx,
                data=event.payload,
                code="stream_malformed",
            ) from exc
        if not isinstance(payload, dict):
            raise stream_error(
                "Bedrock sent an event whose payload is not a JSON object",
                self._ctx,
                code="stream_malformed",
            )
        kind = event.event_type
        index = payload.get("contentBlockIndex")
        index = index if isinstance(index, int) else 0
        if kind == "contentBlockDelta":
            return self._delta(index, payload.get("delta") or {})
        if kind == "contentBlockStart":
            use = json_path(payload, "start", "toolUse")
            if not isinstance(use, Mapping):
                return []
            position = self._tools[index] = len(self._tools)
            return [
                StreamChunk(
                    tool_calls=(ToolCallDelta(position, use.get("toolUseId"), use.get("name")),)
                )
            ]
        if kind == "contentBlockStop":
            reasoning = self._reasoning.pop(index, None)
            if reasoning is None:
                return []
            pieces, signature, data = reasoning
            block = (
                ThinkingBlock(redacted=True, data=data, origin=_FAMILY)
                if data is not None
                else ThinkingBlock("".join(pieces), signature, origin=_FAMILY)
            )
            return [StreamChunk(thinking_block=block)]
        if kind == "messageStop":
            self._stopped = True
            raw = payload.get("stopReason")
            return [StreamChunk(finish_reason=finish_reason(raw), raw_finish_reason=raw)]
        if kind == "metadata":
            self._done = True
            return [StreamChunk(usage=_usage(payload.get("usage")))]
        return []  # messageStart and events this client does not use

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[StreamChunk]:
        if "text" in delta:
            text = delta["text"] or ""
            return [StreamChunk(delta=text)] if text else []
        if "toolUse" in delta:
            position = self._tools.get(index)
            if position is None:
                raise stream_error(
                    "Bedrock sent tool input for a block that was never started",
                    self._ctx,
                    code="stream_malformed",
                )
            fragment = json_path(delta, "toolUse", "input") or ""
            return [StreamChunk(tool_calls=(ToolCallDelta(position, arguments=fragment),))]
        if "reasoningContent" in delta:
            reasoning = delta["reasoningContent"] or {}
            slot = self._reasoning.setdefault(index, [[], None, None])
            if reasoning.get("signature"):
                slot[1] = reasoning["signature"]
            if "redactedContent" in reasoning:
                slot[2] = _blob_text(reasoning["redactedContent"])
            text = reasoning.get("text") or ""
            if text:
                slot[0].append(text)
                return [StreamChunk(thinking_delta=text)]
        return []

    def _stream_exception(self, event: EventStreamMessage) -> LLMError:
        headers = event.headers
        if event.message_type == "error":
            error_type = str(headers.get(":error-code") or "") or None
            message = headers.get(":error-message")
        else:
            raw_type = str(headers.get(":exception-type") or "")
            # Event names are lowerCamel (``throttlingException``); types are UpperCamel.
            error_type = raw_type[:1].upper() + raw_type[1:] if raw_type else None
            message = error_document(event.payload).get("message")
        status = _ERROR_STATUS.get(error_type or "", 500)
        # Typed like the same error before the stream: a throttled stream is a rate limit,
        # retried by the client when no chunk has reached the caller yet.
        return _typed_error(
            error_type, status, None if message is None else str(message), {}, self._ctx
        )

    def finish(self) -> list[StreamChunk]:
        if self._done:
            return []
        raise truncated_stream_error(
            "The Bedrock stream ended before its metadata event; the answer is incomplete"
            if self._stopped
            else "The Bedrock stream ended before messageStop; the answer is incomplete",
            self._ctx,
        )


# -- authentication ----------------------------------------------------------------------------


def _wire_url(url: str) -> str:
    """The URL in one normal form (yarl's: escapes of characters that need none decoded,
    ``%3A`` in a model id becomes ``:``), which is what the request then carries.

    A SigV4 signature covers the path, so it must be computed over what is sent: the
    transport sends a path as it is given (it escapes only characters that may not appear
    in one), so signing and sending this same string agree."""
    return str(URL(url))


def _bearer_token(config: ClientConfig, profile: ProviderProfile) -> str | None:
    if config.api_key is not None:
        return config.api_key.get_secret_value() or None
    for name in profile.api_key_env:
        value = os.environ.get(name)
        if value:
            return value
    return None


_REGION_HOST = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class BedrockSigner:
    """Finishes each request: a bearer token when a Bedrock API key is set, else a SigV4
    signature with credentials from the standard AWS chain (resolved once, on first use, off
    the event loop; refreshed by botocore when they expire)."""

    __slots__ = ("_config", "_credentials", "_lock", "_region", "_session", "_token")

    def __init__(self, config: ClientConfig, profile: ProviderProfile) -> None:
        self._config = config
        self._token = _bearer_token(config, profile)
        self._credentials: Credentials | None = None
        self._region: str | None = None
        self._session: Session | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        mode = "bearer token" if self._token else "SigV4"
        return f"BedrockSigner({mode}, region={self._region!r})"

    async def __call__(self, request: HTTPRequest, ctx: CallContext) -> HTTPRequest:
        url = _wire_url(request.url)
        if self._token:
            headers = {**request.headers, "Authorization": f"Bearer {self._token}"}
            return HTTPRequest(request.method, url, headers, request.body)
        if self._credentials is not None and self._region is not None:
            credentials, region = self._credentials, self._region
        else:
            credentials, region = await asyncio.to_thread(self._resolve, ctx)
        try:
            if isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed():
                frozen = await asyncio.to_thread(credentials.get_frozen_credentials)
            else:
                frozen = credentials.get_frozen_credentials()
        except BotoCoreError as exc:  # an expired SSO session, an unreachable role endpoint
            raise LLMAuthenticationError(
                f"Could not refresh the AWS credentials for Bedrock ({type(exc).__name__})",
                provider=ctx.provider,
                model=ctx.model,
                code="credentials_refresh_failed",
                provider_message=str(exc)[:300],
            ) from exc
        return self.sign(request, url, frozen, region)

    @staticmethod
    def sign(
        request: HTTPRequest, url: str, credentials: ReadOnlyCredentials, region: str
    ) -> HTTPRequest:
        """``request`` signed with SigV4 for Bedrock in ``region``."""
        aws = AWSRequest(method=request.method, url=url, headers=request.headers, data=request.body)
        SigV4Auth(credentials, SIGNING_NAME, region).add_auth(aws)
        return HTTPRequest(request.method, url, dict(aws.headers.items()), request.body)

    def _resolve(self, ctx: CallContext) -> tuple[Credentials, str]:
        """Credentials and region, found once (this may read files or ask a metadata
        endpoint, so it runs in a worker thread)."""
        with self._lock:
            if self._credentials is not None and self._region is not None:
                return self._credentials, self._region
            session = self._session = self._session or Session()
            try:
                region = self._find_region(session, ctx)
                credentials = session.get_credentials()
            except BotoCoreError as exc:  # e.g. ProfileNotFound for an AWS_PROFILE not on file
                raise ConfigurationError(
                    f"The AWS configuration for Bedrock is unusable ({type(exc).__name__}: "
                    f"{exc}); check AWS_PROFILE, AWS_CONFIG_FILE and the credential sources"
                ) from exc
            if credentials is None:
                raise ConfigurationError(
                    "No AWS credentials for Bedrock: set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or another source of the standard AWS "
                    "credential chain; or a Bedrock API key in AWS_BEARER_TOKEN_BEDROCK or "
                    "ClientConfig(api_key=...)"
                )
            self._credentials, self._region = credentials, region
            return credentials, region

    @staticmethod
    def _find_region(session: Session, ctx: CallContext) -> str:
        region = ctx.options.get("region")
        if not region:
            host = urlsplit(ctx.base_url).hostname or ""
            match = _REGION_HOST.match(host)
            region = match.group(1) if match else None
        region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or session.get_config_variable("region")
        )
        if not region:
            raise ConfigurationError(
                "No AWS region for Bedrock: set ClientConfig(extra={'region': ...}), AWS_REGION "
                "or AWS_DEFAULT_REGION"
            )
        return str(region)


def sigv4_signer(config: ClientConfig, profile: ProviderProfile) -> RequestSigner:
    """The profile's ``signer_factory``."""
    return BedrockSigner(config, profile)


CODEC = BedrockCodec()

PROFILES: dict[str, ProviderProfile] = {
    "bedrock": ProviderProfile(
        name="bedrock",
        codec="bedrock",
        base_url="https://bedrock-runtime.{region}.amazonaws.com",
        base_url_env=("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL"),
        placeholder_env={"region": ("AWS_REGION", "AWS_DEFAULT_REGION")},
        api_key_env=("AWS_BEARER_TOKEN_BEDROCK",),
        auth="custom",
        requires_key=False,
        default_model="anthropic.claude-3-5-haiku-20241022-v1:0",
        capabilities=frozenset(
            {"stream", "tools", "thinking", "json_schema", "json_object", "vision", "documents"}
        ),
        extra="bedrock",
        signer_factory=sigv4_signer,
        description="AWS Bedrock Converse (SigV4 from the AWS credential chain, or an API key)",
    ),
}
