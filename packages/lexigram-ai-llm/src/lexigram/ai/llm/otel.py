"""OpenTelemetry GenAI spans and metrics, as a middleware (the ``otel`` extra).

Follows the OpenTelemetry GenAI semantic conventions at their latest experimental version
(semconv 1.37+: ``gen_ai.provider.name``, ``gen_ai.input.messages``/``gen_ai.output.messages``,
``gen_ai.client.operation.time_to_first_chunk``). This module is new, so it has no older
version to keep emitting by default; with the default it also sets the deprecated
``gen_ai.system`` (v1.36 and before) beside ``gen_ai.provider.name`` for backends that still
key on it, and with ``OTEL_SEMCONV_STABILITY_OPT_IN`` containing ``gen_ai_latest_experimental``
it emits only the latest names.

One CLIENT span per call, named ``{gen_ai.operation.name} {gen_ai.request.model}``; a span
event ``gen_ai.client.retry`` per retry; a router's span gets one ``gen_ai.client.route``
event per route tried (and each route's client, observed too, a child span of it); cache
hits carry ``lexigram.cache.hit``; the cost from the price table is ``lexigram.cost.usd``.
Metrics: ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and, for
streams, ``gen_ai.client.operation.time_to_first_chunk``.

Message content is captured only with ``capture_content=True`` (``ClientConfig.
telemetry_capture_content``) or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``:
the messages' text, tool calls and tool results only; never headers, keys, URLs or the bytes
of images and documents.

opentelemetry is imported here only, when the middleware is built; ``import lexigram.ai.llm``
never loads it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from lexigram.ai.llm.exceptions import LLMError
from lexigram.ai.llm.middleware import CallInfo, Middleware
from lexigram.ai.llm.types import ChatRequest, Completion, StreamChunk

__all__ = ["SEMCONV_VERSION", "OpenTelemetryMiddleware"]

SEMCONV_VERSION = "1.37.0"

# Our provider names -> the well-known gen_ai.provider.name values.
_PROVIDER_NAMES = {
    "anthropic": "anthropic",
    "azure-openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "gemini": "gcp.gemini",
    "groq": "groq",
    "mistral": "mistral_ai",
    "openai": "openai",
    "openai_responses": "openai",
    "perplexity": "perplexity",
    "vertex": "gcp.vertex_ai",
    "xai": "x_ai",
}

_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip


def provider_name(provider: str) -> str:
    """The ``gen_ai.provider.name`` for one of our provider names."""
    return _PROVIDER_NAMES.get(provider, provider)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


class OpenTelemetryMiddleware(Middleware):
    """GenAI spans and metrics through the global OTel API (or the providers given)."""

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        capture_content: bool | None = None,
    ) -> None:
        try:
            from opentelemetry import context, metrics, trace
        except ImportError:  # pragma: no cover - the extra is missing
            from lexigram.ai.llm.exceptions import MissingExtraError

            raise MissingExtraError(
                "OpenTelemetry is not installed: pip install 'lexigram-ai-llm[otel]'"
            ) from None
        from lexigram.ai.llm import __name__ as scope

        self._trace = trace
        self._context = context
        self._tracer = trace.get_tracer(
            scope, schema_url=f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}",
            tracer_provider=tracer_provider,
        )  # fmt: skip
        meter = metrics.get_meter(scope, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS),
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        opt_in = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
        self.latest_only = "gen_ai_latest_experimental" in {
            part.strip() for part in opt_in.split(",")
        }
        self._capture_flag = capture_content

    @property
    def capture_content(self) -> bool:
        """Whether message content goes on spans (the flag, else the environment variable,
        read per call so it can be switched at run time)."""
        if self._capture_flag is not None:
            return self._capture_flag
        return _env_true("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")

    # -- hooks ---------------------------------------------------------------------------

    async def before_request(self, call: CallInfo, request: ChatRequest) -> ChatRequest | None:
        attributes = self._request_attributes(call, request)
        span = self._tracer.start_span(
            f"{call.operation} {request.model}".rstrip(),
            kind=self._trace.SpanKind.CLIENT,
            attributes=attributes,
        )
        token = None
        if not call.stream:
            # The route clients of a router (and anything the provider call traces) become
            # children of this span. A stream's generator runs in the caller's context
            # between chunks, so it is not made current there.
            token = self._context.attach(self._trace.set_span_in_context(span))
        call.data[self] = (span, token, attributes)
        return None

    async def on_retry(self, call: CallInfo, attempt: int, error: LLMError, delay: float) -> None:
        state = call.data.get(self)
        if state is not None:
            state[0].add_event(
                "gen_ai.client.retry",
                {
                    "lexigram.retry.attempt": attempt,
                    "error.type": _error_type(error),
                    "lexigram.retry.delay_s": delay,
                },
            )

    def on_chunk(self, call: CallInfo, chunk: StreamChunk) -> None:
        return None

    async def after_completion(self, call: CallInfo, completion: Completion) -> Completion | None:
        self._finish(call, completion, None)
        return None

    async def after_stream(self, call: CallInfo, completion: Completion) -> None:
        self._finish(call, completion, None)

    async def on_error(self, call: CallInfo, error: LLMError) -> None:
        self._finish(call, None, error)

    def on_cancel(self, call: CallInfo) -> None:
        state = call.data.pop(self, None)
        if state is None:
            return
        span, token, attributes = state
        span.set_attribute("error.type", "cancelled")
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, "cancelled"))
        span.end()
        self._detach(token)
        self._duration.record(call.elapsed, self._metric_attributes(attributes, "cancelled"))

    # -- embeddings ------------------------------------------------------------------------

    async def observe_embeddings(
        self, client: Any, model: str, count: int, run: Callable[[], Awaitable[Any]]
    ) -> Any:
        """``run()`` (an ``embed`` call returning ``Result[Embeddings, LLMError]``) inside an
        ``embeddings {model}`` span, with its duration and input-token metrics."""
        from opentelemetry import context

        from lexigram.ai.llm.middleware import _server_of

        trace = self._trace
        provider = provider_name(client.provider_name)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": provider,
        }
        if not self.latest_only:
            attributes["gen_ai.system"] = provider
        if model:
            attributes["gen_ai.request.model"] = model
        address, port = _server_of(client)
        if address:
            attributes["server.address"] = address
        if port:
            attributes["server.port"] = port
        started = time.perf_counter()
        span = self._tracer.start_span(
            f"embeddings {model}".rstrip(), kind=trace.SpanKind.CLIENT, attributes=attributes
        )
        span.set_attribute("lexigram.embeddings.inputs", count)
        token = context.attach(trace.set_span_in_context(span))
        error_type: str | None = None
        try:
            result = await run()
        except BaseException:
            error_type = "cancelled"
            span.set_attribute("error.type", error_type)
            span.set_status(trace.Status(trace.StatusCode.ERROR, error_type))
            raise
        else:
            error = getattr(result, "error", None)
            if isinstance(error, LLMError):
                error_type = _error_type(error)
                span.set_attribute("error.type", error_type)
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(error.code)))
            else:
                value = result.value
                if value.model:
                    span.set_attribute("gen_ai.response.model", value.model)
                    attributes["gen_ai.response.model"] = value.model
                span.set_attribute("gen_ai.usage.input_tokens", value.usage.prompt_tokens)
                if len(value):
                    span.set_attribute("gen_ai.embeddings.dimension.count", len(value[0]))
                if value.cached:
                    span.set_attribute("lexigram.cache.hit", value.cached == count)
                    span.set_attribute("lexigram.embeddings.cached", value.cached)
                if value.cost is not None:
                    span.set_attribute("lexigram.cost.usd", value.cost)
                if value.usage.prompt_tokens:
                    self._tokens.record(
                        value.usage.prompt_tokens,
                        {
                            **self._metric_attributes(attributes, None),
                            "gen_ai.token.type": "input",
                        },
                    )
            return result
        finally:
            span.end()
            self._detach(token)
            self._duration.record(
                time.perf_counter() - started, self._metric_attributes(attributes, error_type)
            )

    # -- building blocks -----------------------------------------------------------------

    def _request_attributes(self, call: CallInfo, request: ChatRequest) -> dict[str, Any]:
        provider = provider_name(call.provider)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": call.operation,
            "gen_ai.provider.name": provider,
        }
        if not self.latest_only:
            attributes["gen_ai.system"] = provider
        if request.model:
            attributes["gen_ai.request.model"] = request.model
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = request.temperature
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        if request.top_p is not None:
            attributes["gen_ai.request.top_p"] = request.top_p
        if request.seed is not None:
            attributes["gen_ai.request.seed"] = request.seed
        if request.stop:
            attributes["gen_ai.request.stop_sequences"] = list(request.stop)
        if request.response_format is not None and request.response_format.type != "text":
            attributes["gen_ai.output.type"] = "json"
        if call.server_address:
            attributes["server.address"] = call.server_address
        if call.server_port:
            attributes["server.port"] = call.server_port
        if call.stream:
            attributes["lexigram.stream"] = True
        return attributes

    def _finish(
        self, call: CallInfo, completion: Completion | None, error: LLMError | None
    ) -> None:
        state = call.data.pop(self, None)
        if state is None:
            return
        span, token, attributes = state
        trace = self._trace
        late: dict[str, Any] = {}  # one set_attributes call: the SDK locks and checks per call
        # The request as sent (a later middleware may have changed it).
        if call.request.model and call.request.model != attributes.get("gen_ai.request.model"):
            late["gen_ai.request.model"] = call.request.model
            attributes["gen_ai.request.model"] = call.request.model
        if call.attempts > 1:
            late["lexigram.attempts"] = call.attempts
        if call.cache_hit:
            late["lexigram.cache.hit"] = True
        if call.first_chunk_at is not None:
            ttfc = call.first_chunk_at - call.started
            late["lexigram.time_to_first_chunk_s"] = ttfc
        capture = self.capture_content
        if capture:
            _set_input_messages(late, call.request)
        error_type: str | None = None
        if completion is not None:
            self._completion_attributes(late, attributes, completion, capture)
            self._route_events(span, completion.attempts)
        else:
            assert error is not None
            error_type = _error_type(error)
            late["error.type"] = error_type
            if error.provider and error.provider != call.provider:
                late["lexigram.error.provider"] = error.provider
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error.code)))
            self._route_events(span, error.details.get("attempts") or ())
        if capture:
            _redact_content(late, call.client)
        span.set_attributes(late)
        span.end()
        self._detach(token)
        metric_attributes = self._metric_attributes(attributes, error_type)
        self._duration.record(call.elapsed, metric_attributes)
        if call.first_chunk_at is not None:
            self._first_chunk.record(call.first_chunk_at - call.started, metric_attributes)
        if completion is not None and not call.cache_hit:
            usage = completion.usage
            if usage.prompt_tokens or usage.completion_tokens:
                self._tokens.record(
                    usage.prompt_tokens, {**metric_attributes, "gen_ai.token.type": "input"}
                )
                self._tokens.record(
                    usage.completion_tokens, {**metric_attributes, "gen_ai.token.type": "output"}
                )

    def _completion_attributes(
        self,
        late: dict[str, Any],
        attributes: dict[str, Any],
        completion: Completion,
        capture: bool,
    ) -> None:
        if completion.provider and completion.provider != "router":
            answered = provider_name(completion.provider)
            if answered != attributes["gen_ai.provider.name"]:
                # A router's span: the provider that answered.
                late["gen_ai.provider.name"] = answered
                attributes["gen_ai.provider.name"] = answered
                if not self.latest_only:
                    late["gen_ai.system"] = answered
        if completion.model:
            late["gen_ai.response.model"] = completion.model
            attributes["gen_ai.response.model"] = completion.model
        if completion.id:
            late["gen_ai.response.id"] = completion.id
        if completion.finish_reason:
            late["gen_ai.response.finish_reasons"] = [completion.finish_reason]
        usage = completion.usage
        late["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        late["gen_ai.usage.output_tokens"] = usage.completion_tokens
        if usage.cached_tokens:
            late["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
        if usage.cache_creation_tokens:
            late["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_creation_tokens
        if usage.reasoning_tokens:
            late["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
        if completion.cost is not None:
            late["lexigram.cost.usd"] = completion.cost
        if capture:
            late["gen_ai.output.messages"] = _output_messages(completion)

    @staticmethod
    def _route_events(span: Any, attempts: Any) -> None:
        for attempt in attempts:
            if not isinstance(attempt, Mapping):
                continue
            event: dict[str, Any] = {}
            for key, value in attempt.items():
                if isinstance(value, str | bool | int | float):
                    name = "error.type" if key == "error" else f"lexigram.route.{key}"
                    event[name] = value
            span.add_event("gen_ai.client.route", event)

    @staticmethod
    def _metric_attributes(attributes: Mapping[str, Any], error_type: str | None) -> dict[str, Any]:
        out = {
            key: attributes[key]
            for key in (
                "gen_ai.operation.name",
                "gen_ai.provider.name",
                "gen_ai.request.model",
                "gen_ai.response.model",
                "server.address",
                "server.port",
            )
            if key in attributes
        }
        if error_type is not None:
            out["error.type"] = error_type
        return out

    def _detach(self, token: Any) -> None:
        if token is not None:
            with contextlib.suppress(Exception):  # detached in another context
                self._context.detach(token)


def _error_type(error: LLMError) -> str:
    return type(error).__qualname__


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    out: list[dict[str, Any]] = []
    for part in content:
        text = getattr(part, "text", None)
        if isinstance(text, str):
            out.append({"type": "text", "content": text})
        else:  # images and documents: their kind, never their bytes or URL
            out.append({"type": type(part).__name__.removesuffix("Part").lower() or "blob"})
    return out


def _set_input_messages(late: dict[str, Any], request: ChatRequest) -> None:
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        role = str(message.role)
        parts = _parts(message.content)
        if role == "system":
            system.extend(parts)
            continue
        for tool_call in message.tool_calls:
            parts.append(
                {
                    "type": "tool_call",
                    "id": tool_call.id,
                    "name": tool_call.name,
                    "arguments": tool_call.arguments,
                }
            )
        if role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": message.tool_call_id,
                    "response": message.text,
                }
            ]
        messages.append({"role": role, "parts": parts})
    if system:
        late["gen_ai.system_instructions"] = orjson.dumps(system).decode()
    late["gen_ai.input.messages"] = orjson.dumps(messages).decode()


_CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")


def _redact_content(late: dict[str, Any], client: Any) -> None:
    """Mask every credential the client holds (its API key, the base URL's userinfo and
    query credentials, credential-like options) in captured content, should a message
    quote one."""
    from lexigram.ai.llm.exceptions import credential_values, redact_text
    from lexigram.validation import url_secrets

    config = getattr(client, "config", None)
    key = getattr(client, "_api_key", None)
    if key is None and config is not None and config.api_key is not None:
        key = config.api_key.get_secret_value()
    base = getattr(client, "base_url", None) or getattr(config, "api_base", None)
    options = getattr(client, "_options", None) or getattr(config, "extra", None) or {}
    secrets = [key, *url_secrets(base if isinstance(base, str) else None)]
    secrets.extend(credential_values(options))
    if not any(secrets):
        return
    for name in _CONTENT_KEYS:
        value = late.get(name)
        if isinstance(value, str):
            late[name] = redact_text(value, secrets)


def _output_messages(completion: Completion) -> str:
    parts = _parts(completion.content)
    for tool_call in completion.tool_calls:
        parts.append(
            {
                "type": "tool_call",
                "id": tool_call.id,
                "name": tool_call.name,
                "arguments": tool_call.arguments,
            }
        )
    message = {"role": "assistant", "parts": parts, "finish_reason": completion.finish_reason}
    return orjson.dumps([message]).decode()
