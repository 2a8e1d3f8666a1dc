"""The Gemini ``generateContent`` wire family: the Generative Language API and Vertex AI.

Codec: pure translation between ``ChatRequest``/``Completion``/``StreamChunk`` and the
``contents``/``parts`` JSON of ``:generateContent`` and the SSE stream of
``:streamGenerateContent?alt=sse`` (one ``GenerateContentResponse`` per event, decoded as it
arrives). Profiles: ``gemini`` (API key in the ``x-goog-api-key`` header, never in the URL) and
``vertex`` (same codec, the Vertex URL, an OAuth bearer token from google-auth; see
``_google_auth``).

What the translation does, beyond renaming fields:

- System messages, in order, become the parts of ``systemInstruction``; roles are ``user`` and
  ``model``; tool results are ``functionResponse`` parts in a ``user`` turn, matched to their
  call by function name (taken from the tool message's ``name``, else from the assistant
  message that made the call). A result that is a JSON object is sent as the response; any
  other result as ``{"output": ...}``.
- Thinking: ``ThinkingConfig`` becomes ``thinkingConfig`` (``thinkingLevel`` when ``level`` is
  set, else ``thinkingBudget``; ``suppress`` is a budget of 0; ``includeThoughts``). Thought
  parts become thinking text. Thought signatures are kept for replay: a signature on a thought
  part closes that run of thought text into one ``ThinkingBlock``; a signature on a
  ``functionCall`` part stays on its ``ToolCall``; a signature on a plain text part becomes a
  ``ThinkingBlock`` with no text, and is sent back on the assistant's text part. The same fold
  runs for streamed and non-streamed answers, so both give identical blocks. Thinking blocks
  another wire family made (``ThinkingBlock.origin``) go back without their signatures, and
  that family's redacted blocks not at all; ``ToolCall.signature`` is Gemini's alone (no
  other codec sends it).
- Structured output: ``responseMimeType: application/json`` with ``responseJsonSchema`` (or
  ``responseSchema`` with the ``schema_style: "openapi"`` quirk, which also switches function
  declarations from ``parametersJsonSchema`` to ``parameters``).
- Finish reasons: ``STOP`` (``tool_calls`` when the answer calls functions), ``MAX_TOKENS`` →
  ``length``, ``SAFETY``/``RECITATION``/``PROHIBITED_CONTENT``/``BLOCKLIST``/``SPII``/image
  safety → ``content_filter``, ``MALFORMED_FUNCTION_CALL`` → ``error``. A prompt blocked before
  any candidate (``promptFeedback.blockReason``) is an ``LLMContentFilterError``.
- Usage: ``completion_tokens`` = candidates + thoughts tokens, ``reasoning_tokens`` =
  ``thoughtsTokenCount``, ``cached_tokens`` = ``cachedContentTokenCount``.
- Errors map by the ``google.rpc.Status`` name and, first, the ``ErrorInfo`` reason
  (``API_KEY_INVALID`` is an authentication error although Google answers 400;
  ``BILLING_DISABLED`` is a quota error). ``RetryInfo.retryDelay`` gives ``retry_after``.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping
from typing import Any

import orjson

from lexigram.ai.llm._framing import SSEEvent
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    LLMAuthenticationError,
    LLMContentFilterError,
    LLMError,
    LLMModelNotFoundError,
    LLMQuotaExceededError,
    LLMRateLimitError,
    LLMTimeoutError,
    ProviderError,
    error_for_status,
)
from lexigram.ai.llm.providers._codec_common import (
    EXTRA_BODY_AND_HEADERS,
    SHAPE_ERRORS,
    apply_extra_body,
    check_documents,
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
from lexigram.ai.llm.providers._google_auth import vertex_signer_factory
from lexigram.ai.llm.providers.base import CallContext, Framing, HTTPRequest, ProviderProfile
from lexigram.ai.llm.types import (
    ChatMessage,
    ChatRequest,
    Completion,
    ContentPart,
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
)

__all__ = ["CODEC", "PROFILES", "GeminiCodec", "GeminiStreamDecoder"]

VERTEX_GLOBAL_BASE = "https://aiplatform.googleapis.com"
_FAMILY = "gemini"  # the ``origin`` of the thinking blocks this codec decodes
DEFAULT_VERTEX_LOCATION = "us-central1"

_FINISH: dict[str, str | None] = {
    "STOP": FinishReason.STOP.value,
    "MAX_TOKENS": FinishReason.LENGTH.value,
    "SAFETY": FinishReason.CONTENT_FILTER.value,
    "RECITATION": FinishReason.CONTENT_FILTER.value,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER.value,
    "BLOCKLIST": FinishReason.CONTENT_FILTER.value,
    "SPII": FinishReason.CONTENT_FILTER.value,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER.value,
    "IMAGE_PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER.value,
    "IMAGE_RECITATION": FinishReason.CONTENT_FILTER.value,
    "MALFORMED_FUNCTION_CALL": FinishReason.ERROR.value,
    "UNEXPECTED_TOOL_CALL": FinishReason.ERROR.value,
    "FINISH_REASON_UNSPECIFIED": None,
}

# google.rpc.Status names (https://ai.google.dev/gemini-api/docs/troubleshooting).
_STATUSES: dict[str, type[LLMError]] = {
    "INVALID_ARGUMENT": InvalidRequestError,
    "FAILED_PRECONDITION": InvalidRequestError,
    "OUT_OF_RANGE": InvalidRequestError,
    "UNAUTHENTICATED": LLMAuthenticationError,
    "PERMISSION_DENIED": LLMAuthenticationError,
    "NOT_FOUND": LLMModelNotFoundError,
    "RESOURCE_EXHAUSTED": LLMRateLimitError,
    "INTERNAL": ProviderError,
    "UNKNOWN": ProviderError,
    "UNAVAILABLE": ProviderError,
    "ABORTED": ProviderError,
    "DEADLINE_EXCEEDED": LLMTimeoutError,
}

# google.rpc.ErrorInfo reasons that say more than the status.
_REASONS: dict[str, type[LLMError]] = {
    "API_KEY_INVALID": LLMAuthenticationError,
    "API_KEY_EXPIRED": LLMAuthenticationError,
    "API_KEY_SERVICE_BLOCKED": LLMAuthenticationError,
    "ACCESS_TOKEN_EXPIRED": LLMAuthenticationError,
    "ACCESS_TOKEN_TYPE_UNSUPPORTED": LLMAuthenticationError,
    "CREDENTIALS_MISSING": LLMAuthenticationError,
    "SERVICE_DISABLED": LLMAuthenticationError,
    "BILLING_DISABLED": LLMQuotaExceededError,
    "RATE_LIMIT_EXCEEDED": LLMRateLimitError,
}

# Request keyword arguments that belong in ``generationConfig``.
_GENERATION_EXTRAS = {
    "top_k": "topK",
    "candidate_count": "candidateCount",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "response_logprobs": "responseLogprobs",
    "logprobs": "logprobs",
    "response_modalities": "responseModalities",
    "media_resolution": "mediaResolution",
}
_BODY_EXTRAS = {
    "safety_settings": "safetySettings",
    "cached_content": "cachedContent",
    "labels": "labels",
}
# Request keyword arguments not copied into the body as they are.
_RESERVED_EXTRA = EXTRA_BODY_AND_HEADERS | frozenset(_GENERATION_EXTRAS)


def finish_reason(raw: str | None, *, called_tools: bool = False) -> str | None:
    """Normalised finish reason (unknown values pass through)."""
    if raw is None:
        return None
    if raw == "STOP" and called_tools:
        return FinishReason.TOOL_CALLS.value
    return _FINISH.get(raw, raw)


class GeminiCodec:
    """``generateContent``: encode, decode, stream decode, error mapping."""

    name = "gemini"
    framing = Framing.SSE

    # -- encode ----------------------------------------------------------------------------

    def encode(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HTTPRequest:
        """The ``POST …:generateContent`` (or ``:streamGenerateContent?alt=sse``) request."""
        options = ctx.options
        openapi = options.get("schema_style") == "openapi"
        check_documents(request, ctx, _document_problem)
        system, contents = _encode_messages(request.messages, ctx)
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": system}
        if request.tools:
            schema_key = "parameters" if openapi else "parametersJsonSchema"
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {
                            "name": t.name,
                            "description": t.description,
                            schema_key: dict(t.parameters),
                        }
                        for t in request.tools
                    ]
                }
            ]
        if request.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _tool_choice(request.tool_choice)}
        config: dict[str, Any] = {}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.top_p is not None:
            config["topP"] = request.top_p
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if request.seed is not None:
            config["seed"] = request.seed
        fmt = request.response_format
        if fmt is not None and fmt.type in ("json_schema", "json_object"):
            config["responseMimeType"] = "application/json"
            if fmt.type == "json_schema" and fmt.schema is not None:
                config["responseSchema" if openapi else "responseJsonSchema"] = dict(fmt.schema)
        thinking = request.thinking
        if thinking is not None:
            spec: dict[str, Any] = {}
            if thinking.level and not thinking.suppress:
                spec["thinkingLevel"] = thinking.level.upper()
            else:
                spec["thinkingBudget"] = 0 if thinking.suppress else thinking.budget_tokens
            if thinking.include_thoughts and not thinking.suppress:
                spec["includeThoughts"] = True
            config["thinkingConfig"] = spec
        for key, field in _GENERATION_EXTRAS.items():
            if key in request.extra:
                config[field] = request.extra[key]
        if config:
            body["generationConfig"] = config
        apply_extra_body(body, request.extra, reserved=_RESERVED_EXTRA, renames=_BODY_EXTRAS)
        headers = request_headers(request.extra, accept="text/event-stream" if stream else None)
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return HTTPRequest(
            "POST", _model_url(request.model, ctx) + ":" + method, headers, orjson.dumps(body)
        )

    # -- decode ----------------------------------------------------------------------------

    def decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        """A ``GenerateContentResponse`` to a ``Completion``."""
        data = parse_answer(body, ctx, what="a GenerateContentResponse")
        try:
            return self._decode_data(data, body, headers, ctx)
        except SHAPE_ERRORS as exc:
            raise _not_a_response(body, ctx) from exc

    def _decode_data(
        self, data: Any, body: bytes, headers: Mapping[str, str], ctx: CallContext
    ) -> Completion:
        if isinstance(data, list) and data:
            data = data[0]
        if not isinstance(data, Mapping):
            raise _not_a_response(body, ctx)
        error = data.get("error")
        if isinstance(error, Mapping):
            raise _error_from_status(error, int(error.get("code") or 500), headers, ctx)
        candidate = _first_candidate(data, ctx)
        fold = _PartFold()
        text: list[str] = []
        blocks: list[ThinkingBlock] = []
        calls: list[ToolCall] = []
        parts = ((candidate or {}).get("content") or {}).get("parts") or ()
        for part in parts:
            if isinstance(part, Mapping):
                _collect(fold.add(part), text, blocks, calls)
        _collect(fold.close(), text, blocks, calls)
        usage = _usage(data.get("usageMetadata"))
        raw_finish = (candidate or {}).get("finishReason")
        return Completion(
            content="".join(text),
            model=data.get("modelVersion") or ctx.model,
            provider=ctx.provider,
            finish_reason=finish_reason(raw_finish, called_tools=bool(calls)),
            raw_finish_reason=raw_finish,
            tool_calls=tuple(calls),
            usage=usage,
            thinking=thinking_result(blocks, usage),
            id=data.get("responseId"),
        )

    def stream_decoder(self, ctx: CallContext) -> GeminiStreamDecoder:
        """A decoder for one ``streamGenerateContent?alt=sse`` stream."""
        return GeminiStreamDecoder(ctx)

    # -- errors ----------------------------------------------------------------------------

    def map_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        """``{"error": {"code", "message", "status", "details"}}`` plus the HTTP status."""
        payload = error_payload(error_document(body, unwrap_list=True), body)
        return _error_from_status(payload, status, headers, ctx)


# -- urls ----------------------------------------------------------------------------------


def _model_url(model: str, ctx: CallContext) -> str:
    options = ctx.options
    if not options.get("vertex"):
        version = options.get("api_version", "v1beta")
        name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        return f"{ctx.base_url}/{version}/{name}"
    project = options.get("project") or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise ConfigurationError(
            "Vertex AI needs a Google Cloud project: set ClientConfig(extra={'project': ...}) "
            "or the GOOGLE_CLOUD_PROJECT environment variable"
        )
    location = (
        options.get("location")
        or os.environ.get("GOOGLE_CLOUD_LOCATION")
        or DEFAULT_VERTEX_LOCATION
    )
    base = ctx.base_url
    if base == VERTEX_GLOBAL_BASE and location != "global":
        base = f"https://{location}-aiplatform.googleapis.com"
    version = options.get("api_version", "v1")
    if model.startswith("projects/"):
        return f"{base}/{version}/{model}"
    name = model if model.startswith("publishers/") else f"publishers/google/models/{model}"
    return f"{base}/{version}/projects/{project}/locations/{location}/{name}"


# -- errors --------------------------------------------------------------------------------


def _error_from_status(
    payload: Mapping[str, Any], status: int, headers: Mapping[str, str], ctx: CallContext
) -> LLMError:
    status_name = payload.get("status")
    message = payload.get("message")
    reason: str | None = None
    retry_delay: float | None = None
    details = payload.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, Mapping):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("google.rpc.ErrorInfo") and reason is None:
            reason = detail.get("reason")
        elif kind.endswith("google.rpc.RetryInfo"):
            retry_delay = _duration(detail.get("retryDelay"))
    error_class = _REASONS.get(str(reason)) if reason else None
    if (
        error_class is None
        and status_name == "FAILED_PRECONDITION"
        and ctx.options.get("failed_precondition_is_billing")
    ):
        # The Gemini API's documented FAILED_PRECONDITION: the free tier is unavailable
        # here and billing must be enabled.
        error_class = LLMQuotaExceededError
    if error_class is None and status_name:
        error_class = _STATUSES.get(str(status_name))
    error = error_for_status(
        status,
        kind=error_class,
        provider=ctx.provider,
        model=ctx.model,
        headers=headers,
        provider_message=None if message is None else str(message),
        code=str(reason or status_name or "") or None,
        details={"status": status_name, "reason": reason},
    )
    if error.retryable and error.retry_after is None and retry_delay is not None:
        error.retry_after = retry_delay
    return error


def _not_a_response(body: bytes, ctx: CallContext) -> LLMError:
    return invalid_request(
        "The provider's answer does not have the shape of a GenerateContentResponse",
        ctx,
        data=body,
        code="malformed_response",
    )


def _duration(value: Any) -> float | None:
    """A protobuf ``Duration`` in JSON (``"24s"``, ``"1.5s"``)."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None


def _first_candidate(data: Mapping[str, Any], ctx: CallContext) -> Mapping[str, Any] | None:
    """The first candidate; a prompt blocked before any candidate is a content-filter error."""
    candidates = data.get("candidates")
    if candidates and isinstance(candidates[0], Mapping):
        candidate: Mapping[str, Any] = candidates[0]
        return candidate
    feedback = data.get("promptFeedback")
    if isinstance(feedback, Mapping) and feedback.get("blockReason"):
        reason = str(feedback["blockReason"])
        raise LLMContentFilterError(
            "The provider's safety filters blocked the prompt",
            provider=ctx.provider,
            model=ctx.model,
            retryable=False,
            code=reason,
            provider_message=feedback.get("blockReasonMessage") or reason,
            details={"block_reason": reason, "safety_ratings": feedback.get("safetyRatings")},
        )
    return None


def _usage(data: Mapping[str, Any] | None) -> Usage:
    if not data:
        return Usage()
    prompt = int(data.get("promptTokenCount") or 0)
    thoughts = int(data.get("thoughtsTokenCount") or 0)
    completion = int(data.get("candidatesTokenCount") or 0) + thoughts
    total = data.get("totalTokenCount")
    return Usage.of(
        prompt,
        completion,
        total_tokens=int(total) if total is not None else None,
        cached_tokens=int(data.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _tool_choice(choice: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str):
        if choice == "auto":
            return {"mode": "AUTO"}
        if choice == "none":
            return {"mode": "NONE"}
        if choice in ("required", "any"):
            return {"mode": "ANY"}
        return {"mode": "ANY", "allowedFunctionNames": [choice]}
    function = choice.get("function")
    if isinstance(function, Mapping):  # OpenAI's {"type": "function", "function": {...}}
        return {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
    return dict(choice)


# -- the part fold, shared by decode and the stream decoder --------------------------------


class _PartFold:
    """Response parts, in order, to text, thinking and tool calls.

    Emits ``("text", str)``, ``("thinking", str)``, ``("block", ThinkingBlock)`` and
    ``("call", ToolCall)``. A run of thought text ends at a signature on a thought part (the
    block keeps it), at the first non-thought part, or at ``close()``.
    """

    __slots__ = ("_calls", "_run")

    def __init__(self) -> None:
        self._run: list[str] = []
        self._calls = 0

    def add(self, part: Mapping[str, Any]) -> list[tuple[str, Any]]:
        events: list[tuple[str, Any]] = []
        signature = part.get("thoughtSignature")
        if part.get("thought"):
            text = part.get("text") or ""
            if text:
                self._run.append(text)
                events.append(("thinking", text))
            if signature:
                events.append(
                    ("block", ThinkingBlock("".join(self._run), signature, origin=_FAMILY))
                )
                self._run = []
            return events
        events.extend(self.close())
        call = part.get("functionCall")
        if isinstance(call, Mapping):
            index = self._calls
            self._calls += 1
            events.append(
                (
                    "call",
                    ToolCall(
                        id=str(call.get("id") or f"call_{index}"),
                        function=FunctionCall(
                            str(call.get("name") or ""),
                            orjson.dumps(call.get("args") or {}).decode(),
                        ),
                        signature=signature,
                    ),
                )
            )
            return events
        text = part.get("text")
        if text:
            events.append(("text", text))
        if signature:
            events.append(("block", ThinkingBlock("", signature, origin=_FAMILY)))
        return events

    def close(self) -> list[tuple[str, Any]]:
        if not self._run:
            return []
        block = ThinkingBlock("".join(self._run), origin=_FAMILY)
        self._run = []
        return [("block", block)]


def _collect(
    events: list[tuple[str, Any]],
    text: list[str],
    blocks: list[ThinkingBlock],
    calls: list[ToolCall],
) -> None:
    for kind, value in events:
        if kind == "text":
            text.append(value)
        elif kind == "block":
            blocks.append(value)
        elif kind == "call":
            calls.append(value)


class GeminiStreamDecoder:
    """Decodes ``data: {GenerateContentResponse}`` events.

    The stream has no terminal event: it is complete when a candidate reported its
    ``finishReason`` and the body then ended; a body that ends before is truncated.
    """

    __slots__ = ("_called_tools", "_ctx", "_finished", "_fold", "_id", "_model", "_tools", "_usage")

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._fold = _PartFold()
        self._finished = False
        self._called_tools = False
        self._tools = 0
        self._usage: Mapping[str, Any] | None = None
        self._model: str | None = None
        self._id: str | None = None

    @property
    def done(self) -> bool:
        # Read to the end of the body: usage may follow the chunk that carries finishReason.
        return False

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        data = event.data
        if not data or data == b"[DONE]":
            return []
        payload = parse_event(data, self._ctx, noun="stream chunk")
        try:
            return self._dispatch(payload)
        except SHAPE_ERRORS as exc:
            raise stream_error(
                "The provider sent a stream chunk of an unexpected shape",
                self._ctx,
                data=data,
                retryable=False,
                code="malformed_event",
            ) from exc

    def _dispatch(self, payload: dict[str, Any]) -> list[StreamChunk]:
        error = payload.get("error")
        if isinstance(error, Mapping):
            inner = _error_from_status(error, int(error.get("code") or 500), {}, self._ctx)
            raise mid_stream_error(inner, self._ctx)
        self._model = payload.get("modelVersion") or self._model
        self._id = payload.get("responseId") or self._id
        if payload.get("usageMetadata"):
            self._usage = payload["usageMetadata"]
        candidate = _first_candidate(payload, self._ctx)
        chunks: list[StreamChunk] = []
        if candidate is not None:
            for part in (candidate.get("content") or {}).get("parts") or ():
                if isinstance(part, Mapping):
                    chunks.extend(self._chunks(self._fold.add(part)))
            raw_finish = candidate.get("finishReason")
            if raw_finish:
                chunks.extend(self._chunks(self._fold.close()))
                self._finished = True
                chunks.append(
                    StreamChunk(
                        finish_reason=finish_reason(raw_finish, called_tools=self._called_tools),
                        raw_finish_reason=raw_finish,
                        usage=_usage(self._usage),
                        model=self._model,
                        id=self._id,
                    )
                )
                return chunks
        if self._finished and payload.get("usageMetadata"):
            chunks.append(StreamChunk(usage=_usage(self._usage)))  # usage after the finish
        return chunks

    def _chunks(self, events: list[tuple[str, Any]]) -> list[StreamChunk]:
        chunks = []
        for kind, value in events:
            if kind == "text":
                chunks.append(StreamChunk(delta=value))
            elif kind == "thinking":
                chunks.append(StreamChunk(thinking_delta=value))
            elif kind == "block":
                chunks.append(StreamChunk(thinking_block=value))
            elif kind == "call":
                self._called_tools = True
                index = self._tools
                self._tools += 1
                chunks.append(
                    StreamChunk(
                        tool_calls=(
                            ToolCallDelta(
                                index, value.id, value.name, value.arguments, value.signature
                            ),
                        )
                    )
                )
        return chunks

    def finish(self) -> list[StreamChunk]:
        if self._finished:
            return []
        raise truncated_stream_error(
            "The stream ended before the provider reported a finish reason; the answer is "
            "incomplete",
            self._ctx,
        )


# -- messages ------------------------------------------------------------------------------


def _mime_type(url: str, default: str) -> str:
    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return guessed or default


def _encode_part(part: ContentPart) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"text": part.text} if part.text else None
    if isinstance(part, ImageDataPart):
        return {"inlineData": {"mimeType": part.media_type, "data": part.base64}}
    if isinstance(part, ImageURLPart):
        if part.url.startswith("data:"):
            header, _, data = part.url.partition(",")
            mime = header[5:].split(";", 1)[0] or "image/png"
            return {"inlineData": {"mimeType": mime, "data": data}}
        return {"fileData": {"mimeType": _mime_type(part.url, "image/jpeg"), "fileUri": part.url}}
    if not isinstance(part, DocumentPart):  # a cache point: Gemini has no inline markers
        return None
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type, "data": part.base64}}
    return {"fileData": {"mimeType": part.media_type, "fileUri": part.url}}


def _document_problem(part: DocumentPart) -> str | None:
    """Why Gemini cannot take ``part``, or ``None``: bytes go inline (``inlineData``), a URL
    as ``fileData`` (a Files API or ``gs://`` URI), with the part's media type either way."""
    if part.data is not None or part.url:
        return None
    return "a document part needs data or a url"


def _encode_content(content: str | tuple[ContentPart, ...] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = [_encode_part(p) for p in content]
    return [p for p in parts if p is not None]


def _encode_model_turn(message: ChatMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    loose_signatures: list[str] = []
    for block in replayable_thinking(message.thinking, _FAMILY):
        if block.redacted:
            continue  # another provider's encrypted reasoning means nothing here
        if block.content:
            part: dict[str, Any] = {"text": block.content, "thought": True}
            if block.signature:
                part["thoughtSignature"] = block.signature
            parts.append(part)
        elif block.signature:
            loose_signatures.append(block.signature)
    text_parts = _encode_content(message.content)
    if loose_signatures and text_parts:
        # A signature Gemini put on the answer's text goes back on that text.
        text_parts[-1]["thoughtSignature"] = loose_signatures.pop(0)
    parts.extend(text_parts)
    parts.extend({"text": "", "thoughtSignature": s} for s in loose_signatures)
    for call in message.tool_calls:
        try:
            args: Any = call.parsed_arguments()
        except ValueError:
            args = {}
        part = {"functionCall": {"name": call.name, "args": args}}
        if call.signature:
            part["thoughtSignature"] = call.signature
        parts.append(part)
    return parts


def _function_response(message: ChatMessage, name: str) -> dict[str, Any]:
    text = message.text
    response: Any
    try:
        value = orjson.loads(text) if text.strip() else text
    except orjson.JSONDecodeError:
        value = text
    if message.is_error:
        # Gemini reads a function's failure from the "error" key of its response.
        response = {"error": value}
    else:
        response = value if isinstance(value, dict) else {"output": value}
    return {"functionResponse": {"name": name, "response": response}}


def _encode_messages(
    messages: tuple[ChatMessage, ...], ctx: CallContext
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``systemInstruction`` parts and the ``contents`` turns."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    previous: Role | None = None
    for message in messages:
        role = message.role
        if role is Role.SYSTEM:
            if message.text:
                system.append({"text": message.text})
            continue
        if role is Role.TOOL:
            name = message.name or call_names.get(message.tool_call_id or "")
            if not name:
                raise invalid_request(
                    "Gemini matches tool results to calls by function name: give the tool "
                    "message a 'name', or keep the assistant message with its tool_calls in "
                    "the history",
                    ctx,
                )
            turn_role, parts = "user", [_function_response(message, name)]
        elif role is Role.ASSISTANT:
            for call in message.tool_calls:
                call_names[call.id] = call.name
            turn_role, parts = "model", _encode_model_turn(message)
        else:
            turn_role, parts = "user", _encode_content(message.content)
        if not parts:
            continue
        # Merge same-role turns, but keep function responses in a turn of their own.
        if (
            contents
            and contents[-1]["role"] == turn_role
            and (previous is Role.TOOL) == (role is Role.TOOL)
        ):
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": turn_role, "parts": parts})
        previous = role
    return system, contents


CODEC = GeminiCodec()

_CAPABILITIES = frozenset(
    {"stream", "tools", "thinking", "json_schema", "json_object", "vision", "documents"}
)

PROFILES: dict[str, ProviderProfile] = {
    p.name: p
    for p in (
        ProviderProfile(
            name="gemini",
            codec="gemini",
            base_url="https://generativelanguage.googleapis.com",
            api_key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            auth="header",
            auth_header="x-goog-api-key",
            default_model="gemini-2.5-flash",
            quirks={"api_version": "v1beta", "failed_precondition_is_billing": True},
            capabilities=_CAPABILITIES,
            extra="gemini",
            description="Google Gemini API (Generative Language API, API key)",
        ),
        ProviderProfile(
            name="vertex",
            codec="gemini",
            base_url=VERTEX_GLOBAL_BASE,
            auth="custom",
            requires_key=False,
            default_model="gemini-2.5-flash",
            quirks={"vertex": True, "api_version": "v1"},
            capabilities=_CAPABILITIES,
            extra="vertex",
            signer_factory=vertex_signer_factory,
            description="Gemini on Google Cloud Vertex AI (project and location from extra or "
            "GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION; OAuth from Application Default "
            "Credentials, extra 'credentials_file', or extra 'access_token')",
        ),
    )
}
