"""The OpenAI Responses wire family (``POST {base}/responses``), and the hosts that speak it.

Codec: pure translation between ``ChatRequest``/``Completion``/``StreamChunk`` and the
Responses API's JSON and SSE shapes (the official ``openai`` SDK's ``types/responses`` are the
reference). Profiles: ``openai_responses`` and ``azure-openai-responses``; the ``openai``
provider also routes the models that exist only here (the model table's ``"wire":
"responses"``, see ``providers.openai``) through this codec.

- Leading system messages become ``instructions``; a system message later in the history
  becomes a ``developer`` message item. Tool results are ``function_call_output`` items;
  assistant tool calls are ``function_call`` items.
- Reasoning items come back as ``ThinkingBlock`` values: the summary text as ``content``,
  ``encrypted_content`` as ``signature``, and the whole item (compact JSON) as ``data``.
  An assistant message's blocks are sent back as those exact bytes, before its text and tool
  calls, so a tool loop replays reasoning unchanged; blocks from another wire (``origin``)
  are not reasoning items and stay out. ``store`` is ``false`` unless the call
  (``store=True``) or the config's ``extra`` says otherwise, and reasoning models are then
  asked for ``include: ["reasoning.encrypted_content"]`` so the reasoning survives without
  server-side state. ``previous_response_id=...`` as a call keyword goes into the body as is
  (with it, send only the new messages, and ``store=True`` on the earlier call).
- Finish reasons: ``completed`` is ``stop`` (``tool_calls`` when the output holds function
  calls); ``incomplete`` is ``length`` for ``max_output_tokens`` and ``content_filter`` for
  ``content_filter``. A refusal with no text is an ``LLMContentFilterError``.
- The Responses API has no stop sequences and no seed: a request with either is an
  ``InvalidRequestError`` rather than silently different output.
- Stream events: text, refusal, reasoning summary / reasoning text, function-call items and
  argument deltas, ``output_item.done`` (a finished reasoning item becomes a ``thinking_block``
  chunk), ``response.completed`` / ``response.incomplete`` (terminal), and ``error`` /
  ``response.failed`` as typed errors. Every other documented event (hosted tools, audio,
  annotations, MCP...) and any unknown one is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from lexigram.ai.llm._framing import SSEEvent
from lexigram.ai.llm.exceptions import LLMContentFilterError, LLMError
from lexigram.ai.llm.providers._codec_common import (
    EXTRA_BODY_AND_HEADERS,
    SHAPE_ERRORS,
    apply_extra_body,
    error_document,
    error_payload,
    invalid_request,
    mid_stream_error,
    parse_answer_object,
    parse_event,
    prompt_cache_fields,
    replayable_thinking,
    request_headers,
    stream_error,
    thinking_result,
    truncated_stream_error,
)
from lexigram.ai.llm.providers.base import CallContext, Framing, HTTPRequest, ProviderProfile
from lexigram.ai.llm.providers.openai import _error_from_payload
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
)

__all__ = ["CODEC", "PROFILES", "ResponsesCodec", "ResponsesStreamDecoder"]

#: Model-name prefixes of reasoning models: they take no ``temperature``/``top_p`` and can
#: return encrypted reasoning. Overridable per profile or client (``reasoning_models``).
REASONING_MODELS = ("o1", "o3", "o4", "gpt-5", "codex")

_FAMILY = "responses"  # the ``origin`` of the thinking blocks this codec decodes

#: What a Responses call keeps for itself from ``request.extra``.
_RESERVED_EXTRA = EXTRA_BODY_AND_HEADERS | {"store", "include"}

_ENCRYPTED_REASONING = "reasoning.encrypted_content"

#: ``incomplete_details.reason`` -> normalised finish reason.
_INCOMPLETE = {
    "max_output_tokens": FinishReason.LENGTH.value,
    "content_filter": FinishReason.CONTENT_FILTER.value,
}

#: The status a failed response's error ``code`` stands for (the answer itself was a 200).
_FAILED_STATUS = {
    "server_error": 500,
    "rate_limit_exceeded": 429,
    "vector_store_timeout": 504,
}


class ResponsesCodec:
    """The Responses API: encode, decode, stream decode, error mapping."""

    name = "responses"
    framing = Framing.SSE

    # -- encode ----------------------------------------------------------------------------

    def encode(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HTTPRequest:
        """The ``POST /responses`` request."""
        options = ctx.options
        extra = request.extra
        if request.stop:
            raise invalid_request(
                "The Responses API has no stop sequences; drop stop_sequences or use a Chat "
                "Completions provider",
                ctx,
            )
        if request.seed is not None:
            raise invalid_request(
                "The Responses API has no seed parameter; drop seed or use a Chat Completions "
                "provider",
                ctx,
            )
        instructions, items = _encode_input(request.messages, ctx)
        body: dict[str, Any] = {"model": request.model, "input": items}
        if instructions:
            body["instructions"] = instructions
        thinking = request.thinking
        thinking_on = thinking is not None and not thinking.suppress
        # A call that asks for reasoning is taken to go to a reasoning model, whatever its
        # name (an Azure deployment's name says nothing about the model behind it).
        reasoning_model = thinking_on or request.model.startswith(
            tuple(options.get("reasoning_models", REASONING_MODELS))
        )
        if not reasoning_model:
            if request.temperature is not None and not options.get("omit_temperature"):
                body["temperature"] = request.temperature
            if request.top_p is not None:
                body["top_p"] = request.top_p
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.parameters),
                    # The API's default is strict: say it, or ordinary schemas are rejected.
                    "strict": t.strict,
                }
                for t in request.tools
            ]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        fmt = request.response_format
        if fmt is not None and fmt.type == "json_schema":
            body["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": fmt.name,
                    "schema": dict(fmt.schema or {}),
                    "strict": fmt.strict,
                }
            }
        elif fmt is not None and fmt.type == "json_object":
            body["text"] = {"format": {"type": "json_object"}}
        if thinking is not None and thinking_on:
            reasoning: dict[str, Any] = {}
            if thinking.effort:
                reasoning["effort"] = thinking.effort
            if thinking.include_thoughts:
                reasoning["summary"] = options.get("reasoning_summary", "auto")
            if reasoning:
                body["reasoning"] = reasoning
        store = bool(extra.get("store", options.get("store", False)))
        body["store"] = store
        include = list(extra.get("include") or options.get("include") or ())
        if not store and reasoning_model and _ENCRYPTED_REASONING not in include:
            include.append(_ENCRYPTED_REASONING)
        if include:
            body["include"] = include
        if stream:
            body["stream"] = True
        if request.prompt_cache:
            body.update(prompt_cache_fields(request, ctx))
        apply_extra_body(body, extra, reserved=_RESERVED_EXTRA)
        url = ctx.base_url + options.get("responses_path", "/responses")
        query = options.get("responses_query")
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        headers = request_headers(extra, accept="text/event-stream" if stream else None)
        return HTTPRequest("POST", url, headers, orjson.dumps(body))

    # -- decode ----------------------------------------------------------------------------

    def decode(self, body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
        """A ``response`` object to a ``Completion``."""
        try:
            return _decode_response(body, headers, ctx)
        except SHAPE_ERRORS as exc:
            raise _malformed("The provider's answer", body, ctx) from exc

    def stream_decoder(self, ctx: CallContext) -> ResponsesStreamDecoder:
        """A decoder for one Responses SSE stream."""
        return ResponsesStreamDecoder(ctx)

    # -- errors ----------------------------------------------------------------------------

    def map_error(
        self, status: int, headers: Mapping[str, str], body: bytes, ctx: CallContext
    ) -> LLMError:
        """``{"error": {"message", "type", "code", "param"}}`` plus the status (as Chat
        Completions)."""
        payload = error_payload(error_document(body), body, allow_string=True)
        return _error_from_payload(payload, status, headers, ctx)


# -- encoding helpers ----------------------------------------------------------------------


def _encode_input(
    messages: Sequence[ChatMessage], ctx: CallContext
) -> tuple[str | None, list[Any]]:
    """``instructions`` (the leading system messages) and the ``input`` items."""
    instructions: list[str] = []
    items: list[Any] = []
    for message in messages:
        role = message.role
        if role is Role.SYSTEM:
            if not items:
                instructions.append(message.text)
            else:
                items.append({"role": "developer", "content": message.text})
        elif role is Role.USER:
            items.append({"role": "user", "content": _encode_content(message)})
        elif role is Role.ASSISTANT:
            for block in replayable_thinking(message.thinking, _FAMILY):
                item = _reasoning_item(block)
                if item is not None:
                    items.append(item)
            if message.text:
                items.append({"role": "assistant", "content": message.text})
            for tc in message.tool_calls:
                items.append(
                    {
                        "type": "function_call",
                        "call_id": tc.id,
                        "name": tc.name,
                        "arguments": tc.arguments,
                    }
                )
        else:  # tool result
            if not message.tool_call_id:
                raise invalid_request(
                    "A tool message needs the tool_call_id of the call it answers", ctx
                )
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": message.text,
                }
            )
    return ("\n\n".join(instructions) if instructions else None), items


def _reasoning_item(block: ThinkingBlock) -> Any:
    """The reasoning item a block came from, as the exact JSON it was kept as; ``None`` for a
    block from another wire (plain thinking text cannot be sent back as a reasoning item)."""
    data = block.data
    if not data or not data.startswith('{"'):
        return None
    try:
        item = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(item, dict) or item.get("type") != "reasoning":
        return None
    return orjson.Fragment(data)


def _encode_content(message: ChatMessage) -> Any:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"type": "input_text", "text": part.text})
        elif isinstance(part, ImageURLPart):
            parts.append(
                {"type": "input_image", "image_url": part.url, "detail": part.detail or "auto"}
            )
        elif isinstance(part, ImageDataPart):
            parts.append({"type": "input_image", "image_url": part.data_url, "detail": "auto"})
        elif isinstance(part, DocumentPart):
            if part.data is not None:
                parts.append(
                    {
                        "type": "input_file",
                        "filename": part.name or "document.pdf",
                        "file_data": f"data:{part.media_type};base64,{part.base64}",
                    }
                )
            elif part.url:
                parts.append({"type": "input_file", "file_url": part.url})
    return parts


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return choice
        if choice == "any":
            return "required"
        return {"type": "function", "name": choice}
    spec = dict(choice)
    function = spec.get("function")
    if spec.get("type") == "function" and isinstance(function, Mapping):
        return {"type": "function", "name": function.get("name")}  # Chat Completions shape
    return spec


# -- decoding helpers ----------------------------------------------------------------------


def _decode_response(body: bytes, headers: Mapping[str, str], ctx: CallContext) -> Completion:
    data = parse_answer_object(body, ctx, what="a response", who="The provider")
    status = data.get("status")
    if status == "failed" or (data.get("error") and not data.get("output")):
        raise _failed_error(data.get("error"), headers, ctx)
    if status in ("queued", "in_progress"):
        raise invalid_request(
            f"The response is still {status} (background mode); this client waits for "
            "finished answers: call without background=True",
            ctx,
            data=body,
        )
    output = data.get("output")
    if not isinstance(output, list):
        raise invalid_request(
            "The provider's answer has no output; it is not a Responses API response",
            ctx,
            data=body,
        )
    text: list[str] = []
    refusal: list[str] = []
    tool_calls: list[ToolCall] = []
    blocks: list[ThinkingBlock] = []
    for item in output:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                part_kind = part.get("type")
                if part_kind == "output_text":
                    text.append(part.get("text") or "")
                elif part_kind == "refusal":
                    refusal.append(part.get("refusal") or "")
        elif kind == "function_call":
            tool_calls.append(_tool_call(item, len(tool_calls)))
        elif kind == "reasoning":
            blocks.append(_reasoning_block(item))
        # Hosted-tool items (web_search_call, file_search_call, ...) carry nothing we map.
    content = "".join(text)
    if refusal and not content:
        raise LLMContentFilterError(
            "The model refused to answer",
            provider=ctx.provider,
            model=ctx.model,
            provider_message="".join(refusal),
        )
    usage = _usage(data.get("usage"))
    finish, raw_finish = _finish(status, data.get("incomplete_details"), bool(tool_calls))
    return Completion(
        content=content,
        model=data.get("model") or ctx.model,
        provider=ctx.provider,
        finish_reason=finish,
        raw_finish_reason=raw_finish,
        tool_calls=tuple(tool_calls),
        usage=usage,
        thinking=thinking_result(blocks, usage),
        id=data.get("id"),
    )


def _tool_call(item: Mapping[str, Any], index: int) -> ToolCall:
    return ToolCall(
        id=item.get("call_id") or item.get("id") or f"call_{index}",
        function=FunctionCall(item["name"], item.get("arguments") or "{}"),
    )


def _reasoning_block(item: Mapping[str, Any]) -> ThinkingBlock:
    """A reasoning item as a block: summary (or reasoning text) as content, the encrypted
    content as signature, and the whole item as ``data`` to send back unchanged."""
    texts = [
        part.get("text") or ""
        for part in item.get("summary") or ()
        if part.get("type") == "summary_text"
    ]
    if not texts:
        texts = [
            part.get("text") or ""
            for part in item.get("content") or ()
            if part.get("type") == "reasoning_text"
        ]
    return ThinkingBlock(
        content="\n\n".join(texts),
        signature=item.get("encrypted_content"),
        data=orjson.dumps(item).decode(),
        origin=_FAMILY,
    )


def _usage(data: Mapping[str, Any] | None) -> Usage:
    if not data:
        return Usage()
    prompt = int(data.get("input_tokens") or 0)
    completion = int(data.get("output_tokens") or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(data.get("total_tokens") or prompt + completion),
        cached_tokens=int((data.get("input_tokens_details") or {}).get("cached_tokens") or 0),
        reasoning_tokens=int(
            (data.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
        ),
    )


def _finish(
    status: Any, incomplete: Mapping[str, Any] | None, tool_calls: bool
) -> tuple[str | None, str | None]:
    """(normalised, raw) finish reason of a finished response."""
    if status == "incomplete":
        reason = (incomplete or {}).get("reason")
        raw = str(reason) if reason else "incomplete"
        return _INCOMPLETE.get(raw, raw), raw
    if status == "completed" or status is None:
        if tool_calls:
            return FinishReason.TOOL_CALLS.value, "completed"
        return FinishReason.STOP.value, "completed" if status else None
    return FinishReason.ERROR.value, str(status)  # cancelled


def _failed_error(error: Any, headers: Mapping[str, str], ctx: CallContext) -> LLMError:
    """The typed error of a response that failed (``status: failed``, ``response.failed``,
    an ``error`` event): its ``code`` decides the class, as for an HTTP error."""
    if not isinstance(error, Mapping):
        error = {"message": error if isinstance(error, str) else "the response failed"}
    code = error.get("code")
    status = _FAILED_STATUS.get(str(code))
    if status is None:
        status = 400 if str(code).startswith("invalid_") else 500
    return _error_from_payload(error, status, headers, ctx)


def _malformed(what: str, data: bytes, ctx: CallContext) -> LLMError:
    return stream_error(
        f"{what} has an unexpected shape; it is not an OpenAI Responses API object",
        ctx,
        data=data,
        code="stream_malformed",
    )


# -- streaming -----------------------------------------------------------------------------


class ResponsesStreamDecoder:
    """Decodes Responses SSE events until ``response.completed`` / ``response.incomplete``.

    Function-call items get tool indices in the order they appear (``output_index`` is the
    item's place among all output items, reasoning and messages included).
    """

    __slots__ = ("_ctx", "_done", "_id", "_model", "_refusal", "_text_items", "_tools")

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._done = False
        self._id: str | None = None
        self._model: str | None = None
        # output_index -> [tool index, arguments streamed so far?]
        self._tools: dict[int, list[Any]] = {}
        self._text_items: set[Any] = set()  # item ids whose text came as deltas
        self._refusal: list[str] = []

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
        if not data or data == b"[DONE]":
            return []
        payload = parse_event(data, self._ctx, noun="stream event")
        kind = payload.get("type") or event.event
        if kind == "response.output_text.delta":
            delta = payload.get("delta") or ""
            self._text_items.add(payload.get("item_id"))
            return [StreamChunk(delta=delta)] if delta else []
        if kind == "response.function_call_arguments.delta":
            delta = payload.get("delta") or ""
            slot = self._tool_slot(payload.get("output_index"))
            slot[1] = True
            return [StreamChunk(tool_calls=(ToolCallDelta(slot[0], arguments=delta),))]
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            delta = payload.get("delta") or ""
            return [StreamChunk(thinking_delta=delta)] if delta else []
        if kind == "response.reasoning_summary_part.added":
            # Parts of one summary are joined with a blank line, as ``decode`` joins them.
            if int(payload.get("summary_index") or 0) > 0:
                return [StreamChunk(thinking_delta="\n\n")]
            return []
        if kind == "response.output_item.added":
            return self._item_added(payload)
        if kind == "response.output_item.done":
            return self._item_done(payload)
        if kind == "response.function_call_arguments.done":
            slot = self._tool_slot(payload.get("output_index"))
            arguments = payload.get("arguments") or ""
            if slot[1] or not arguments:
                return []
            slot[1] = True
            return [StreamChunk(tool_calls=(ToolCallDelta(slot[0], arguments=arguments),))]
        if kind == "response.refusal.delta":
            self._refusal.append(payload.get("delta") or "")
            return []
        if kind in ("response.created", "response.in_progress", "response.queued"):
            response = payload.get("response") or {}
            self._id = response.get("id") or self._id
            self._model = response.get("model") or self._model
            return []
        if kind in ("response.completed", "response.incomplete"):
            return self._terminal(payload.get("response") or {})
        if kind == "response.failed":
            response = payload.get("response") or {}
            inner = _failed_error(response.get("error"), {}, self._ctx)
            raise mid_stream_error(inner, self._ctx)
        if kind == "error":
            error = payload.get("error")
            if not isinstance(error, Mapping):  # the documented shape: fields on the event
                error = {key: payload.get(key) for key in ("code", "message", "param")}
            inner = _failed_error(error, {}, self._ctx)
            raise mid_stream_error(inner, self._ctx)
        # Everything else (content parts, annotations, hosted tools, audio, MCP, events
        # added after this was written) carries nothing a StreamChunk holds.
        return []

    def _tool_slot(self, output_index: Any) -> list[Any]:
        index = int(output_index or 0)
        slot = self._tools.get(index)
        if slot is None:
            slot = self._tools[index] = [len(self._tools), False]
        return slot

    def _item_added(self, payload: Mapping[str, Any]) -> list[StreamChunk]:
        item = payload.get("item") or {}
        if item.get("type") != "function_call":
            return []
        slot = self._tool_slot(payload.get("output_index"))
        arguments = item.get("arguments") or ""
        if arguments:
            slot[1] = True
        return [
            StreamChunk(
                tool_calls=(
                    ToolCallDelta(
                        slot[0],
                        id=item.get("call_id") or item.get("id"),
                        name=item.get("name"),
                        arguments=arguments,
                    ),
                )
            )
        ]

    def _item_done(self, payload: Mapping[str, Any]) -> list[StreamChunk]:
        item = payload.get("item") or {}
        kind = item.get("type")
        if kind == "reasoning":
            return [StreamChunk(thinking_block=_reasoning_block(item))]
        if kind == "function_call":
            output_index = int(payload.get("output_index") or 0)
            known = output_index in self._tools
            slot = self._tool_slot(output_index)
            if known and slot[1]:
                return []
            slot[1] = True
            return [
                StreamChunk(
                    tool_calls=(
                        ToolCallDelta(
                            slot[0],
                            id=None if known else item.get("call_id") or item.get("id"),
                            name=None if known else item.get("name"),
                            arguments=item.get("arguments") or "",
                        ),
                    )
                )
            ]
        if kind == "message" and item.get("id") not in self._text_items:
            # A host that sent the message whole, without text deltas.
            text = "".join(
                part.get("text") or ""
                for part in item.get("content") or ()
                if part.get("type") == "output_text"
            )
            refusal = [
                part.get("refusal") or ""
                for part in item.get("content") or ()
                if part.get("type") == "refusal"
            ]
            if refusal and not self._refusal:
                self._refusal.extend(refusal)
            return [StreamChunk(delta=text)] if text else []
        return []

    def _terminal(self, response: Mapping[str, Any]) -> list[StreamChunk]:
        self._done = True
        usage = _usage(response.get("usage"))
        if self._refusal and not self._text_items:
            raise LLMContentFilterError(
                "The model refused to answer",
                provider=self._ctx.provider,
                model=self._ctx.model,
                provider_message="".join(self._refusal),
            )
        finish, raw_finish = _finish(
            response.get("status"), response.get("incomplete_details"), bool(self._tools)
        )
        return [
            StreamChunk(
                finish_reason=finish,
                raw_finish_reason=raw_finish,
                usage=usage,
                model=response.get("model") or self._model,
                id=response.get("id") or self._id,
            )
        ]

    def finish(self) -> list[StreamChunk]:
        if self._done:
            return []
        raise truncated_stream_error(
            "The stream ended before the provider's terminal event (response.completed); the "
            "answer is incomplete",
            self._ctx,
        )


CODEC = ResponsesCodec()

_CAPABILITIES = frozenset(
    {"stream", "tools", "json_object", "json_schema", "vision", "documents", "thinking"}
)

PROFILES: dict[str, ProviderProfile] = {
    p.name: p
    for p in (
        ProviderProfile(
            name="openai_responses",
            codec="responses",
            base_url="https://api.openai.com/v1",
            api_key_env=("OPENAI_API_KEY",),
            base_url_env=("OPENAI_BASE_URL",),
            default_model="gpt-5-mini",
            quirks={"prompt_cache_key": True},
            capabilities=_CAPABILITIES,
            extra="openai",
            description="OpenAI Responses API (/v1/responses)",
        ),
        ProviderProfile(
            name="azure-openai-responses",
            codec="responses",
            base_url=None,
            api_key_env=("AZURE_OPENAI_API_KEY",),
            base_url_env=("AZURE_OPENAI_ENDPOINT",),
            auth="header",
            auth_header="api-key",
            # The v1 API: {endpoint}/openai/v1/responses, no api-version; the model is the
            # deployment name, in the body.
            quirks={"responses_path": "/openai/v1/responses"},
            capabilities=_CAPABILITIES,
            extra="openai",
            description="Azure OpenAI Responses API (the model is the deployment name)",
        ),
    )
}
