"""Middleware: hooks around every call a client makes, in one place.

A middleware is any object with some of these methods (subclass ``Middleware`` to get
no-op defaults and override only what you need)::

    async def before_request(self, call: CallInfo, request: ChatRequest) -> ChatRequest | None
    async def after_completion(self, call: CallInfo, completion: Completion) -> Completion | None
    async def on_error(self, call: CallInfo, error: LLMError) -> None
    async def on_retry(self, call: CallInfo, attempt: int, error: LLMError, delay: float) -> None
    def on_chunk(self, call: CallInfo, chunk: StreamChunk) -> None          # streams, per chunk
    async def after_stream(self, call: CallInfo, completion: Completion) -> None  # folded stream
    def on_cancel(self, call: CallInfo) -> None        # the call was cancelled or closed early

``before_request`` may return a new ``ChatRequest`` (redaction, a prompt prefix, headers in
``extra``); ``after_completion`` may return a new ``Completion``. Middleware runs in the order
given for ``before_request`` and in reverse order (innermost first) for everything after it,
like nested ``try`` blocks. A middleware that raises turns the call into
``Err(MiddlewareError)`` (a stream raises it), naming the middleware and the hook; it never
hangs a call. ``on_error`` and ``on_cancel`` failures are logged, not raised, so the original
error reaches the caller.

Pass them with ``create_llm_client(config, middleware=[...])``, the client constructor's
``middleware=`` or ``LLMModule.configure(..., middleware=[...])``. With none set (and no
OpenTelemetry SDK installed globally, and DEBUG logging of ``lexigram.ai.llm.calls`` off) a
call does one attribute check more than before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from lexigram.ai.llm.exceptions import LLMError
from lexigram.ai.llm.types import ChatRequest, Completion, StreamChunk

__all__ = ["CallInfo", "LoggingMiddleware", "Middleware", "MiddlewareChain", "MiddlewareError"]

logger = logging.getLogger("lexigram.ai.llm.middleware")
call_logger = logging.getLogger("lexigram.ai.llm.calls")
detail_logger = logging.getLogger("lexigram.ai.llm.calls.detail")

_HOOKS = (
    "before_request",
    "after_completion",
    "on_error",
    "on_retry",
    "on_chunk",
    "after_stream",
    "on_cancel",
)


class MiddlewareError(LLMError):
    """A middleware raised; ``details`` name it (``middleware``) and the ``hook``."""

    default_code = "middleware_error"


class CallInfo:
    """One call as middleware sees it. ``request`` is the request as sent (after every
    ``before_request``); ``data`` is free space for middleware state (key it by ``self``)."""

    __slots__ = (
        "attempts",
        "cache_hit",
        "chain",
        "client",
        "data",
        "first_chunk_at",
        "model",
        "operation",
        "provider",
        "request",
        "server_address",
        "server_port",
        "started",
        "stream",
    )

    def __init__(
        self, client: Any, request: ChatRequest, chain: MiddlewareChain, *, stream: bool
    ) -> None:
        self.client = client
        self.chain = chain
        self.operation = "chat"
        self.provider: str = client.provider_name
        self.model: str = request.model
        self.request = request
        self.stream = stream
        self.started = time.perf_counter()
        self.first_chunk_at: float | None = None
        self.cache_hit = False
        self.attempts = 1
        self.data: dict[Any, Any] = {}
        self.server_address, self.server_port = _server_of(client)

    @property
    def elapsed(self) -> float:
        """Seconds since the call started."""
        return time.perf_counter() - self.started


def _server_of(client: Any) -> tuple[str | None, int | None]:
    cached = getattr(client, "_server_info", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    from urllib.parse import urlsplit

    address: str | None = None
    port: int | None = None
    base = getattr(client, "base_url", None) or getattr(client.config, "api_base", None)
    if isinstance(base, str) and "://" in base:
        parts = urlsplit(base)
        address = parts.hostname
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            port = None
    info = (address, port)
    with contextlib.suppress(AttributeError):  # a client with __slots__
        client._server_info = info
    return info


class Middleware:
    """Base class with no-op hooks; override the ones you need (see the module docstring)."""

    async def before_request(self, call: CallInfo, request: ChatRequest) -> ChatRequest | None:
        return None

    async def after_completion(self, call: CallInfo, completion: Completion) -> Completion | None:
        return None

    async def on_error(self, call: CallInfo, error: LLMError) -> None:
        return None

    async def on_retry(self, call: CallInfo, attempt: int, error: LLMError, delay: float) -> None:
        return None

    def on_chunk(self, call: CallInfo, chunk: StreamChunk) -> None:
        return None

    async def after_stream(self, call: CallInfo, completion: Completion) -> None:
        return None

    def on_cancel(self, call: CallInfo) -> None:
        return None


def _overrides(middleware: object, name: str) -> Callable[..., Any] | None:
    method = getattr(middleware, name, None)
    if method is None or not callable(method):
        return None
    base = getattr(Middleware, name)
    if getattr(type(middleware), name, None) is base:
        return None  # the no-op default: skip it
    return method  # type: ignore[no-any-return]


class MiddlewareChain:
    """An ordered tuple of middleware, with each hook's implementations pre-collected so a
    hook nobody implements costs nothing."""

    __slots__ = (
        "_after_completion",
        "_after_stream",
        "_before_request",
        "_on_cancel",
        "_on_chunk",
        "_on_error",
        "_on_retry",
        "items",
    )
    _Hooks = tuple[tuple[object, Callable[..., Any]], ...]
    _before_request: _Hooks
    _after_completion: _Hooks
    _after_stream: _Hooks
    _on_chunk: _Hooks
    _on_retry: _Hooks
    _on_error: _Hooks
    _on_cancel: _Hooks

    def __init__(self, items: Sequence[object]) -> None:
        items = tuple(items)
        for item in items:
            if not any(callable(getattr(item, name, None)) for name in _HOOKS):
                raise TypeError(
                    f"{type(item).__name__} is not a middleware: it has none of the hooks "
                    f"{', '.join(_HOOKS)} (subclass lexigram.ai.llm.Middleware)"
                )
        self.items = items
        for name in _HOOKS:
            found = [(item, m) for item in items if (m := _overrides(item, name)) is not None]
            if name != "before_request":
                found.reverse()  # innermost first on the way out
            setattr(self, f"_{name}", tuple(found))

    def __add__(self, other: MiddlewareChain) -> MiddlewareChain:
        return MiddlewareChain(self.items + other.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def wants_chunks(self) -> bool:
        return bool(self._on_chunk)

    # Each runner turns a raising middleware into a MiddlewareError about ``call``.

    async def before_request(self, call: CallInfo, request: ChatRequest) -> ChatRequest:
        for item, hook in self._before_request:
            try:
                changed = await hook(call, request)
            except Exception as exc:
                raise _failed(item, "before_request", call, exc) from exc
            if changed is not None:
                if not isinstance(changed, ChatRequest):
                    raise _failed(
                        item,
                        "before_request",
                        call,
                        TypeError(f"returned {type(changed).__name__}, not a ChatRequest"),
                    )
                request = changed
        call.request = request
        call.model = request.model
        return request

    async def after_completion(self, call: CallInfo, completion: Completion) -> Completion:
        for item, hook in self._after_completion:
            try:
                changed = await hook(call, completion)
            except Exception as exc:
                raise _failed(item, "after_completion", call, exc) from exc
            if changed is not None:
                if not isinstance(changed, Completion):
                    raise _failed(
                        item,
                        "after_completion",
                        call,
                        TypeError(f"returned {type(changed).__name__}, not a Completion"),
                    )
                completion = changed
        return completion

    async def after_stream(self, call: CallInfo, completion: Completion) -> None:
        for item, hook in self._after_stream:
            try:
                await hook(call, completion)
            except Exception as exc:
                raise _failed(item, "after_stream", call, exc) from exc

    def on_chunk(self, call: CallInfo, chunk: StreamChunk) -> None:
        for item, hook in self._on_chunk:
            try:
                hook(call, chunk)
            except Exception as exc:
                raise _failed(item, "on_chunk", call, exc) from exc

    async def on_retry(self, call: CallInfo, attempt: int, error: LLMError, delay: float) -> None:
        call.attempts = attempt + 1
        for item, hook in self._on_retry:
            try:
                await hook(call, attempt, error, delay)
            except Exception as exc:
                raise _failed(item, "on_retry", call, exc) from exc

    async def on_error(self, call: CallInfo, error: LLMError) -> None:
        for item, hook in self._on_error:
            try:
                await hook(call, error)
            except Exception as exc:  # the original error still reaches the caller
                logger.warning(
                    "middleware %s.on_error raised %s: %s",
                    type(item).__name__,
                    type(exc).__name__,
                    exc,
                )

    def on_cancel(self, call: CallInfo) -> None:
        for item, hook in self._on_cancel:
            try:
                hook(call)
            except Exception as exc:
                logger.warning(
                    "middleware %s.on_cancel raised %s: %s",
                    type(item).__name__,
                    type(exc).__name__,
                    exc,
                )


def _failed(item: object, hook: str, call: CallInfo, exc: Exception) -> MiddlewareError:
    if isinstance(exc, MiddlewareError):
        return exc
    name = type(item).__name__
    return MiddlewareError(
        f"middleware {name}.{hook} raised {type(exc).__name__}: {exc}",
        provider=call.provider,
        model=call.model,
        retryable=False,
        details={"middleware": name, "hook": hook},
    )


def as_chain(middleware: Sequence[object] | MiddlewareChain | None) -> MiddlewareChain | None:
    """A chain for a constructor's ``middleware=`` (``None`` when there is none)."""
    if middleware is None:
        return None
    if isinstance(middleware, MiddlewareChain):
        return middleware or None
    if not isinstance(middleware, Sequence) or isinstance(middleware, str | bytes):
        middleware = [middleware]
    chain = MiddlewareChain(middleware)
    return chain or None


# -- what runs with no configuration ---------------------------------------------------------


def observed() -> bool:
    """Whether a call may need middleware although its client has none: OpenTelemetry is
    imported, or the call log is enabled for DEBUG. Two dict lookups when neither is."""
    return "opentelemetry.trace" in sys.modules or call_logger.isEnabledFor(logging.DEBUG)


_OTEL_CHAIN: MiddlewareChain | None = None
_LOG_CHAIN: MiddlewareChain | None = None


def _otel_chain() -> MiddlewareChain | None:
    """The OpenTelemetry middleware, once an OTel SDK tracer or meter provider is installed
    globally; ``None`` (a dict lookup, or two module globals read) otherwise. opentelemetry is
    never imported here: an application that set up an SDK has imported it already."""
    global _OTEL_CHAIN
    if _OTEL_CHAIN is not None:
        return _OTEL_CHAIN
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    if not _provider_set(trace, "_TRACER_PROVIDER", "ProxyTracerProvider") and not (
        _provider_set(
            sys.modules.get("opentelemetry.metrics._internal"),
            "_METER_PROVIDER",
            "_ProxyMeterProvider",
        )
    ):
        return None
    from lexigram.ai.llm.otel import OpenTelemetryMiddleware

    # A global SDK provider cannot be unset, so the answer is kept.
    _OTEL_CHAIN = MiddlewareChain([OpenTelemetryMiddleware()])
    return _OTEL_CHAIN


def _provider_set(module: Any, name: str, proxy: str) -> bool:
    """Whether the OTel API ``module`` has a global provider. Its module global is read
    first: ``get_tracer_provider()`` costs about 3 µs (an environment lookup) per call,
    which every request would pay while OTel is imported but not configured."""
    if module is None:
        return False
    provider = getattr(module, name, _UNKNOWN)
    if provider is None and not _PROVIDER_FROM_ENV:
        return False
    getter = module.get_tracer_provider if name == "_TRACER_PROVIDER" else module.get_meter_provider
    return type(getter()).__name__ != proxy


_UNKNOWN = object()
# Providers named by the environment are loaded by the API's getters on first use.
_PROVIDER_FROM_ENV = any(
    name in os.environ for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
)


def default_chain(client: Any) -> MiddlewareChain | None:
    """The middleware a client gets for a call: its own, plus OpenTelemetry when an SDK is
    set globally (unless ``config.telemetry`` is ``False``), plus the call log when
    ``lexigram.ai.llm.calls`` is enabled for DEBUG."""
    chain: MiddlewareChain | None = client._middleware
    telemetry = client.config.telemetry
    if telemetry is not False and not client._has_otel:
        otel = _otel_chain() if telemetry is None else _forced_otel(client)
        if otel is not None:
            chain = otel if chain is None else otel + chain
    if call_logger.isEnabledFor(logging.DEBUG):
        global _LOG_CHAIN
        if _LOG_CHAIN is None:
            _LOG_CHAIN = MiddlewareChain([LoggingMiddleware()])
        chain = _LOG_CHAIN if chain is None else _LOG_CHAIN + chain
    return chain


def embeddings_telemetry(client: Any) -> Any | None:
    """The OpenTelemetry middleware that observes ``client``'s calls (an embedding client's
    chat client), for ``embeddings {model}`` spans; ``None`` when there is none."""
    if not isinstance(client, _client_class()) or not (client._always_observe or observed()):
        return None
    chain = default_chain(client)
    if chain is None:
        return None
    for item in chain.items:
        if callable(getattr(item, "observe_embeddings", None)):
            return item
    return None


def _forced_otel(client: Any) -> MiddlewareChain:
    """``config.telemetry=True``: OpenTelemetry on this client whatever the global state."""
    chain = client.__dict__.get("_forced_otel_chain")
    if chain is None:
        from lexigram.ai.llm.otel import OpenTelemetryMiddleware

        chain = client._forced_otel_chain = MiddlewareChain(
            [OpenTelemetryMiddleware(capture_content=client.config.telemetry_capture_content)]
        )
    return chain  # type: ignore[no-any-return]


class LoggingMiddleware(Middleware):
    """Structured DEBUG log events: one summary line per call on ``lexigram.ai.llm.calls``
    (provider, model, tokens, cost, latency; also in ``record.llm``), and the request,
    each retry and each error on ``lexigram.ai.llm.calls.detail``. Never logs message
    content, headers or keys."""

    async def before_request(self, call: CallInfo, request: ChatRequest) -> ChatRequest | None:
        if detail_logger.isEnabledFor(logging.DEBUG):
            detail_logger.debug(
                "request %s/%s stream=%s messages=%d",
                call.provider,
                request.model,
                call.stream,
                len(request.messages),
                extra={
                    "llm": {
                        "event": "request",
                        "provider": call.provider,
                        "model": request.model,
                        "stream": call.stream,
                    }
                },
            )
        return None

    async def on_retry(self, call: CallInfo, attempt: int, error: LLMError, delay: float) -> None:
        detail_logger.debug(
            "retry %s/%s attempt %d after %s (waiting %.2fs)",
            call.provider,
            call.model,
            attempt,
            type(error).__name__,
            delay,
            extra={
                "llm": {
                    "event": "retry",
                    "provider": call.provider,
                    "model": call.model,
                    "attempt": attempt,
                    "error": error.code,
                    "delay": delay,
                }
            },
        )

    async def on_error(self, call: CallInfo, error: LLMError) -> None:
        fields = {
            "event": "error",
            "provider": error.provider or call.provider,
            "model": call.model,
            "error": error.code,
            "status": error.status,
            "latency": call.elapsed,
            "attempts": call.attempts,
        }
        call_logger.debug(
            "%s %s error=%s status=%s latency=%.3fs attempts=%d",
            fields["provider"],
            call.model,
            error.code,
            error.status,
            fields["latency"],
            call.attempts,
            extra={"llm": fields},
        )

    async def after_completion(self, call: CallInfo, completion: Completion) -> Completion | None:
        self._summary(call, completion)
        return None

    async def after_stream(self, call: CallInfo, completion: Completion) -> None:
        self._summary(call, completion)

    @staticmethod
    def _summary(call: CallInfo, completion: Completion) -> None:
        usage = completion.usage
        latency = call.elapsed
        fields: dict[str, Any] = {
            "event": "completion",
            "provider": completion.provider or call.provider,
            "model": completion.model or call.model,
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "cost": completion.cost,
            "latency": latency,
            "attempts": call.attempts,
            "cache_hit": call.cache_hit,
            "stream": call.stream,
        }
        if call.first_chunk_at is not None:
            fields["time_to_first_chunk"] = call.first_chunk_at - call.started
        cost = "-" if completion.cost is None else f"${completion.cost:.6f}"
        call_logger.debug(
            "%s %s tokens=%d+%d cost=%s latency=%.3fs%s%s",
            fields["provider"],
            fields["model"],
            usage.prompt_tokens,
            usage.completion_tokens,
            cost,
            latency,
            " cached" if call.cache_hit else "",
            f" attempts={call.attempts}" if call.attempts > 1 else "",
            extra={"llm": fields},
        )


def _client_class() -> Any:
    from lexigram.ai.llm.client import AbstractLLMClient

    return AbstractLLMClient
