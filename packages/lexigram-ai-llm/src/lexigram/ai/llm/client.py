"""``AbstractLLMClient``: the policies and the attempt loop, written once for every provider.

Data flows one way::

    messages -> ChatRequest -> breaker -> rate limit -> cache / single flight -> pre-flight
             -> attempt loop (retry policy around one provider call) -> post-processing
             -> Result[Completion, LLMError]  or  ChatStream (AsyncStream[StreamChunk, LLMError])

Subclasses fill three hooks: ``_do_complete`` and ``_do_stream_chat`` (raise ``LLMError`` on
failure) and, optionally, ``health_check``. The HTTP client driven by codec and profile is one
subclass, the in-process local model another, a user's own provider a third.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from lexigram.ai.llm.budget import Budget
from lexigram.ai.llm.config import ClientConfig
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidInputError,
    LLMBudgetExceededError,
    LLMError,
    ProviderError,
    StreamError,
)

# ``pricing`` and ``tokens`` are imported here rather than in ``_preflight``/``_finalize``: a
# ``from`` import inside a function costs about a microsecond on every call, and those run on
# every request. Both modules are light (no tokenizer or data file loads until first used).
from lexigram.ai.llm.middleware import (
    CallInfo,
    MiddlewareChain,
    MiddlewareError,
    as_chain,
    default_chain,
)
from lexigram.ai.llm.middleware import (
    observed as _observed,
)
from lexigram.ai.llm.pricing import (
    missing_capability,
    model_table,
    unsupported_capability,
    usage_cost,
)
from lexigram.ai.llm.stream import ChatStream, StreamAccumulator
from lexigram.ai.llm.tokens import CharEstimateCounter, preflight_token_limit
from lexigram.ai.llm.types import (
    ChatRequest,
    Completion,
    ResponseFormat,
    StreamChunk,
    ToolCallDelta,
    check_call_options,
    normalize_messages,
    normalize_stop,
    normalize_tools,
    raw_request,
)
from lexigram.contracts.ai.thinking import ThinkingConfig
from lexigram.contracts.health import HealthCheckResult, HealthStatus
from lexigram.resilience import CircuitBreakerRegistry, RetryPolicy
from lexigram.result import Err, Ok, Result

if TYPE_CHECKING:
    from lexigram.ai.llm.providers._listing import ModelListing

__all__ = [
    "AbstractLLMClient",
    "CircuitOpenError",
    "RateLimitPolicy",
    "ResponseCache",
    "cache_scope_for",
    "replay_as_stream",
]

logger = logging.getLogger("lexigram.ai.llm")

_T = TypeVar("_T")

# Keyword arguments of ``complete``/``stream_chat`` that map onto ``ChatRequest`` fields.
_REQUEST_FIELDS = ("top_p", "tool_choice", "seed")


def _prompt_cache_options(mode: Any, ttl: Any) -> tuple[str | None, str | None]:
    """``prompt_cache`` (``"auto"``, ``None`` or ``False``) and ``prompt_cache_ttl`` checked."""
    if mode is False:
        mode = None
    if mode not in (None, "auto"):
        raise InvalidInputError.at("prompt_cache", f"expected 'auto' or None, got {mode!r}")
    if ttl not in (None, "5m", "1h"):
        raise InvalidInputError.at("prompt_cache_ttl", f"expected '5m' or '1h', got {ttl!r}")
    return mode, ttl


class CircuitOpenError(ProviderError):
    """The circuit breaker for this provider and model is open; no call was made."""

    default_code = "circuit_open"


class ResponseCache(Protocol):
    """What the client needs from a response cache (``lexigram.ai.llm.caching.LLMCache``)."""

    async def get(self, request: ChatRequest, provider: str) -> Completion | None: ...

    async def put(self, request: ChatRequest, provider: str, completion: Completion) -> None: ...

    async def single_flight(
        self,
        request: ChatRequest,
        provider: str,
        call: Callable[[], Any],
    ) -> Result[Completion, LLMError]: ...


class RateLimitPolicy(Protocol):
    """What the client needs from a rate limiter: wait (or refuse) before the network."""

    async def acquire(self, provider: str, model: str, tokens: int) -> LLMError | None: ...

    def update_from_headers(
        self, provider: str, model: str, headers: Mapping[str, str]
    ) -> None: ...


class AbstractLLMClient:
    """Base of every client. Use as ``async with``; ``complete`` never raises for expected
    provider failures, it returns ``Err``. Caller input that cannot make a request (wrong
    types or shapes, options out of range) is an expected failure too: ``Err`` of an
    ``InvalidInputError`` naming the field (a stream raises it on first iteration);
    configuration errors (no key, unknown provider) still raise at once."""

    provider_name: str = "custom"

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        cache: ResponseCache | None = None,
        rate_limiter: RateLimitPolicy | None = None,
        middleware: Sequence[object] | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.config = config if config is not None else ClientConfig()
        self.budget = budget
        cfg = self.config
        self.retry_policy = RetryPolicy(
            max_attempts=cfg.max_retries + 1,
            base_delay=cfg.retry_base_delay,
            max_delay=cfg.retry_max_delay,
            max_retry_after=cfg.max_retry_after,
        )
        self.breakers = CircuitBreakerRegistry(
            failure_threshold=cfg.breaker_failure_threshold,
            recovery_timeout=cfg.breaker_recovery_timeout,
            # A probe reports back after at most a rate-limit wait and one call; one that has
            # not by then was lost (a bug in a subclass, say) and is handed out again.
            probe_timeout=cfg.timeout + cfg.max_retry_after,
        )
        if cache is None and cfg.enable_cache:
            from lexigram.ai.llm.caching import LLMCache

            cache = LLMCache(ttl=cfg.cache_ttl)  # in memory; pass ``cache=`` to share one
        if rate_limiter is None and (cfg.requests_per_minute or cfg.tokens_per_minute):
            from lexigram.ai.llm.rate_limit import ProviderRateLimiter

            rate_limiter = ProviderRateLimiter.from_config(cfg)
        self.cache = cache
        self.rate_limiter = rate_limiter
        self._default_model = cfg.model or ""
        # Middleware (``lexigram.ai.llm.middleware``): ``None`` keeps every call on the plain
        # path unless OpenTelemetry or the DEBUG call log is switched on globally.
        self._middleware = as_chain(middleware)
        self._has_otel = self._middleware is not None and any(
            type(m).__name__ == "OpenTelemetryMiddleware" for m in self._middleware.items
        )
        self._always_observe = self._middleware is not None or cfg.telemetry is True

    @property
    def cache_scope(self) -> str:
        """What, besides the request, decides a cached answer: the provider and where it is
        reached (``config.api_base`` here; HTTP clients their resolved base URL, the local
        provider its model file), plus a fingerprint of the API key when
        ``config.cache_per_api_key`` is set. Two hosts serving the same model name never share
        entries. Never holds a credential: userinfo is dropped and the key is hashed."""
        return cache_scope_for(self.provider_name, self.config.api_base, self._scope_key())

    def _scope_key(self) -> str | None:
        """The API key to fingerprint into ``cache_scope`` (``None`` unless asked for)."""
        if not self.config.cache_per_api_key or self.config.api_key is None:
            return None
        return self.config.api_key.get_secret_value() or None

    # -- hooks for subclasses --------------------------------------------------------------

    async def _do_complete(self, request: ChatRequest) -> Completion:
        """One provider call; raise ``LLMError`` on failure."""
        raise NotImplementedError

    def _do_stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        """One streamed provider call as an async generator; raise ``LLMError`` on failure.

        It must release its connection in ``finally`` (it is closed on break or cancel)."""
        raise NotImplementedError

    async def health_check(self, timeout: float = 5.0) -> HealthCheckResult:
        """Default probe: a one-token completion. Never raises."""
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(
                self.complete([{"role": "user", "content": "ping"}], max_tokens=1, cache=False),
                timeout,
            )
        except Exception as exc:  # a health check reports; it never raises
            return HealthCheckResult(HealthStatus.UNHEALTHY, f"{type(exc).__name__}: {exc}")
        latency = (time.perf_counter() - started) * 1000
        if isinstance(result, Ok):
            return HealthCheckResult(HealthStatus.HEALTHY, "ok", latency_ms=latency)
        return HealthCheckResult(
            HealthStatus.UNHEALTHY, str(result.error), {"code": result.error.code}, latency
        )

    async def list_models(
        self, *, timeout: float | None = None
    ) -> Result[list[ModelListing], LLMError]:
        """The models the provider serves, from its list endpoint (every page within
        ``timeout``, default ``config.timeout``); ``Err`` of a typed ``LLMError`` otherwise,
        ``ModelListingUnsupportedError`` where there is no list. Override in a custom client."""
        from lexigram.ai.llm.providers._listing import list_models

        return await list_models(self, timeout=timeout)

    async def close(self) -> None:
        """Release connections and loaded resources."""

    async def __aenter__(self) -> AbstractLLMClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- request building ------------------------------------------------------------------

    def build_request(
        self,
        messages: Sequence[Any],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        stop_sequences: Sequence[str] | None = None,
        response_format: ResponseFormat | Mapping[str, Any] | None = None,
        thinking: ThinkingConfig | None = None,
        **kwargs: Any,
    ) -> ChatRequest:
        """The frozen, provider-neutral request for a call (config defaults applied)."""
        cfg = self.config
        fields: dict[str, Any]
        if kwargs:
            fields = {name: kwargs.pop(name) for name in _REQUEST_FIELDS if name in kwargs}
            # Transport bounds for this call only: never sent to the provider, nor in the
            # cache key.
            timeout, deadline = kwargs.pop("timeout", None), kwargs.pop("deadline", None)
            if timeout is not None:
                fields["timeout"] = _positive_seconds("timeout", timeout)
            if deadline is not None:
                fields["deadline"] = time.monotonic() + _positive_seconds("deadline", deadline)
            prompt_cache = kwargs.pop("prompt_cache", cfg.prompt_cache)
            prompt_cache_ttl = kwargs.pop("prompt_cache_ttl", cfg.prompt_cache_ttl)
        else:  # the common call: no extra options
            fields = {}
            prompt_cache, prompt_cache_ttl = cfg.prompt_cache, cfg.prompt_cache_ttl
        if prompt_cache is not None or prompt_cache_ttl is not None:
            fields["prompt_cache"], fields["prompt_cache_ttl"] = _prompt_cache_options(
                prompt_cache, prompt_cache_ttl
            )
        if model is not None or temperature is not None or max_tokens is not None or fields:
            check_call_options(model, temperature, max_tokens, fields)
        if response_format is not None and not isinstance(response_format, ResponseFormat):
            response_format = _response_format_from_any(response_format)
        if thinking is not None and not isinstance(thinking, ThinkingConfig):
            raise InvalidInputError.at(
                "thinking", f"expected a ThinkingConfig, got {type(thinking).__name__}"
            )
        if not fields:  # every field given here (``ChatRequest`` has no checks of its own)
            return raw_request(
                normalize_messages(messages),
                model or self._default_model,
                cfg.temperature if temperature is None else temperature,
                cfg.max_tokens if max_tokens is None else max_tokens,
                None,
                normalize_stop(stop_sequences),
                normalize_tools(tools),
                None,
                response_format,
                cfg.thinking if thinking is None else thinking,
                None,
                None,
                None,
                kwargs,
                None,
                None,
            )
        return ChatRequest(
            messages=normalize_messages(messages),
            model=model or self._default_model,
            temperature=cfg.temperature if temperature is None else temperature,
            max_tokens=cfg.max_tokens if max_tokens is None else max_tokens,
            stop=normalize_stop(stop_sequences),
            tools=normalize_tools(tools),
            response_format=response_format,
            thinking=cfg.thinking if thinking is None else thinking,
            extra=kwargs,
            **fields,
        )

    # -- complete --------------------------------------------------------------------------

    async def complete(
        self,
        messages: Sequence[Any],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        stop_sequences: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Result[Completion, LLMError]:
        """Ask for one answer. ``cache=False`` skips the response cache for this call.

        Input that cannot make a request (``messages=None``, ``content=123``,
        ``temperature=3``, a tool without a name...) comes back as ``Err(InvalidInputError)``
        naming the field, before any network call; ``stop_sequences`` may be one string."""
        use_cache = bool(kwargs.pop("cache", True))
        try:
            request = self.build_request(
                messages,
                model=model,
                temperature=temperature,
                max_tokens=max_tokens,
                tools=tools,
                stop_sequences=stop_sequences,
                **kwargs,
            )
        except InvalidInputError as error:
            return Err(self._about_call(error, model))
        if (
            not (use_cache and self.cache is not None)
            and not (self._always_observe or _observed())
            and type(self).complete_request is _COMPLETE_REQUEST
        ):
            # What ``complete_request`` does with no cache and no middleware, one await less.
            return await self._complete_uncached(request)
        return await self.complete_request(request, use_cache=use_cache)

    async def chat(
        self, prompt: str | Sequence[Any], *, system: str | None = None, **kwargs: Any
    ) -> Result[str, LLMError]:
        """The answer's text for a prompt string (or a list of messages)."""
        if isinstance(prompt, str):
            messages: list[Any] = [{"role": "user", "content": prompt}]
        elif isinstance(prompt, Iterable) and not isinstance(prompt, Mapping | bytes):
            messages = list(prompt)
        else:  # refused by ``complete`` with the field named
            return (await self.complete(prompt, **kwargs)).map(lambda c: c.content)
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        result = await self.complete(messages, **kwargs)
        return result.map(lambda completion: completion.content)

    async def complete_request(
        self, request: ChatRequest, *, use_cache: bool = True
    ) -> Result[Completion, LLMError]:
        """``complete`` for an already built ``ChatRequest``."""
        if self._always_observe or _observed():
            chain = default_chain(self)
            if chain is not None:
                return await self._complete_observed(request, use_cache, chain)
        cache = self.cache if use_cache else None
        if cache is None:
            return await self._complete_uncached(request)
        hit = await cache.get(request, self.cache_scope)
        if hit is not None:
            return Ok(hit)
        return await cache.single_flight(
            request, self.cache_scope, lambda: self._complete_uncached(request)
        )

    async def _complete_observed(
        self, request: ChatRequest, use_cache: bool, chain: MiddlewareChain
    ) -> Result[Completion, LLMError]:
        """``complete_request`` with ``chain``'s hooks around it."""
        call = CallInfo(self, request, chain, stream=False)
        try:
            try:
                request = await chain.before_request(call, request)
            except MiddlewareError as error:
                await chain.on_error(call, error)
                return Err(error)
            cache = self.cache if use_cache else None
            result: Result[Completion, LLMError]
            try:
                if cache is None:
                    result = await self._complete_uncached(request, call)
                else:
                    hit = await cache.get(request, self.cache_scope)
                    if hit is not None:
                        call.cache_hit = True
                        result = Ok(hit)
                    else:
                        result = await cache.single_flight(
                            request,
                            self.cache_scope,
                            lambda: self._complete_uncached(request, call),
                        )
            except MiddlewareError as error:  # an ``on_retry`` raised
                result = Err(error)
            if isinstance(result, Err):
                await chain.on_error(call, result.error)
                return result
            try:
                return Ok(await chain.after_completion(call, result.value))
            except MiddlewareError as error:
                await chain.on_error(call, error)
                return Err(error)
        except BaseException:
            chain.on_cancel(call)
            raise

    async def _complete_uncached(
        self, request: ChatRequest, call: CallInfo | None = None
    ) -> Result[Completion, LLMError]:
        """One answer past the cache (a router overrides it to route the request): the
        pre-flight, the budget, then the provider call under ``call_with_policies``."""
        refused = self._preflight(request)
        if refused is not None:
            return Err(refused)
        reservation = None
        if self.budget is not None:
            reservation = await self._reserve_budget(request, self.budget)
            if isinstance(reservation, LLMError):
                return Err(reservation)
        result = await self.call_with_policies(
            request.model,
            lambda: self._do_complete(request),
            tokens=lambda: _estimated_tokens(request),
            deadline=request.deadline,
            observed=call,
        )
        if isinstance(result, Ok):
            result = Ok(self._finalize(request, result.value))
        if reservation is not None and self.budget is not None:
            used = result.value if isinstance(result, Ok) else None
            await self.budget.settle(
                reservation,
                (used.cost or 0.0) if used else 0.0,
                used.usage.total_tokens if used else 0,
            )
        return result

    async def call_with_policies(
        self,
        model: str,
        call: Callable[[], Awaitable[_T]],
        *,
        tokens: Callable[[], int],
        deadline: float | None = None,
        observed: CallInfo | None = None,
    ) -> Result[_T, LLMError]:
        """``call()`` (one provider call that raises ``LLMError``) under this client's
        circuit breaker, rate limiter (``tokens()`` estimates what it uses) and retry policy.

        The one attempt loop: ``complete`` runs through it, and so do other kinds of call to
        the same provider (embedding batches), which then share the breaker and limits.
        ``observed``, when middleware observes the call, gets each retry (``on_retry``)."""
        breaker = self.breakers.get(self.provider_name, model)
        attempt = 0
        while True:
            attempt += 1
            if not breaker.allow():
                return Err(self._circuit_open(model, breaker.retry_in()))
            # From here the attempt may hold the breaker's one half-open probe: every exit that
            # does not report an outcome (refused by the rate limiter, cancelled while waiting
            # for it or for the provider, any other exception) gives it back.
            settled = False
            try:
                if self.rate_limiter is not None:
                    limited = await self.rate_limiter.acquire(self.provider_name, model, tokens())
                    if limited is not None:
                        return Err(limited)
                try:
                    value = await call()
                except LLMError as error:
                    self._record(breaker, error)
                    settled = True
                    failure = error
                else:
                    breaker.record_success()
                    settled = True
                    return Ok(value)
            finally:
                if not settled:
                    breaker.release_probe()
            if not self.retry_policy.should_retry(
                attempt, failure.retryable
            ) or not await self._sleep_before_retry(attempt, failure, model, deadline, observed):
                return Err(failure)

    # -- streaming -------------------------------------------------------------------------

    def stream_chat(
        self,
        messages: Sequence[Any],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        stop_sequences: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> ChatStream:
        """The answer as a stream, returned at once; the request starts on first iteration.

        Input that cannot make a request is raised as ``InvalidInputError`` on first
        iteration (``Err`` from ``collect()``/``completion()``), as ``complete()`` returns it."""
        use_cache = bool(kwargs.pop("cache", True))
        try:
            request = self.build_request(
                messages,
                model=model,
                temperature=temperature,
                max_tokens=max_tokens,
                tools=tools,
                stop_sequences=stop_sequences,
                **kwargs,
            )
        except InvalidInputError as error:
            refused = self._about_call(error, model)
            return ChatStream(
                _refused_stream(refused),
                provider=self.provider_name,
                model=refused.model or "",
            )
        return self.stream_request(request, use_cache=use_cache)

    def stream_request(self, request: ChatRequest, *, use_cache: bool = True) -> ChatStream:
        """``stream_chat`` for an already built ``ChatRequest``."""
        cache = self.cache if use_cache else None
        if self._always_observe or _observed():
            chain = default_chain(self)
            if chain is not None:
                return ChatStream(
                    lambda: self._stream_observed(request, cache, chain),
                    provider=self.provider_name,
                    model=request.model,
                    wrap_error=lambda exc: self._unexpected_stream_error(exc, request),
                    finalize=lambda completion: self._finalize(request, completion),
                )
        return ChatStream(
            lambda: self._in_budget(request, self._stream_with_policies(request, cache)),
            provider=self.provider_name,
            model=request.model,
            wrap_error=lambda exc: self._unexpected_stream_error(exc, request),
            finalize=lambda completion: self._finalize(request, completion),
        )

    async def _stream_observed(
        self,
        request: ChatRequest,
        cache: ResponseCache | None,
        chain: MiddlewareChain,
        inner: Callable[[ChatRequest, CallInfo], AsyncIterator[StreamChunk]] | None = None,
        folded: Callable[[Completion], Completion] | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """``_stream_with_policies`` (or ``inner``: a router's stream) with ``chain``'s
        hooks: each chunk, then the folded completion (``after_stream``; ``folded`` adds
        what only the stream knows) or the error."""
        call = CallInfo(self, request, chain, stream=True)
        finished = False
        source: AsyncIterator[StreamChunk] | None = None
        try:
            try:
                request = await chain.before_request(call, request)
                accumulator = StreamAccumulator()
                source = (
                    self._in_budget(request, self._stream_with_policies(request, cache, call))
                    if inner is None
                    else inner(request, call)
                )
                async for chunk in source:
                    if call.first_chunk_at is None:
                        call.first_chunk_at = time.perf_counter()
                    accumulator.add(chunk)
                    chain.on_chunk(call, chunk)
                    yield chunk
                completion = self._finalize(
                    request, accumulator.to_completion(self.provider_name, request.model)
                )
                if folded is not None:
                    completion = folded(completion)
                finished = True
                await chain.after_stream(call, completion)
            except LLMError as error:
                finished = True
                await chain.on_error(call, error)
                raise
            except Exception as exc:
                if isinstance(exc, ConfigurationError):
                    raise
                finished = True
                wrapped = self._unexpected_stream_error(exc, request)
                await chain.on_error(call, wrapped)
                raise wrapped from exc
        finally:
            # Closed early or cancelled: close the source now (not when the garbage collector
            # finds it), so its connection or local generation stops before aclose() returns.
            await _aclose(source)
            if not finished:
                chain.on_cancel(call)

    async def _stream_with_policies(
        self, request: ChatRequest, cache: ResponseCache | None, call: CallInfo | None = None
    ) -> AsyncIterator[StreamChunk]:
        if cache is not None:
            hit = await cache.get(request, self.cache_scope)
            if hit is not None:
                if call is not None:
                    call.cache_hit = True
                for chunk in replay_as_stream(hit):
                    yield chunk
                return
        refused = self._preflight(request)
        if refused is not None:
            raise refused
        breaker = self.breakers.get(self.provider_name, request.model)
        accumulator = StreamAccumulator() if cache is not None else None
        attempt = 0
        while True:
            attempt += 1
            if not breaker.allow():
                raise self._circuit_open(request.model, breaker.retry_in())
            # As in ``call_with_policies``: an exit that reports no outcome (rate-limit
            # refusal, cancel, close, any other exception) gives the half-open probe back.
            settled = False
            failure: LLMError | None = None
            try:
                limited = (
                    await self._acquire_rate_limit(request)
                    if self.rate_limiter is not None
                    else None
                )
                if limited is not None:
                    raise limited
                source = self._do_stream_chat(request)
                delivered = False
                try:
                    async for chunk in source:
                        delivered = True
                        if accumulator is not None:
                            accumulator.add(chunk)
                        yield chunk
                except LLMError as error:
                    self._record(breaker, error)
                    settled = True
                    # Never retry once the caller has seen a chunk: that would duplicate output.
                    if delivered or not self.retry_policy.should_retry(attempt, error.retryable):
                        raise
                    failure = error
                else:
                    breaker.record_success()
                    settled = True
                finally:
                    await _aclose(source)
            finally:
                if not settled:
                    breaker.release_probe()
            if failure is not None:
                if not await self._sleep_before_retry(
                    attempt, failure, request.model, request.deadline, call
                ):
                    raise failure
                continue
            if cache is not None and accumulator is not None:
                completion = accumulator.to_completion(self.provider_name, request.model)
                await cache.put(request, self.cache_scope, self._finalize(request, completion))
            return

    # -- shared pieces ---------------------------------------------------------------------

    def _preflight(self, request: ChatRequest) -> LLMError | None:
        """A refusal before any network call, or ``None``: a capability the model table knows
        the model lacks (``UnsupportedCapabilityError``), then the token-limit pre-flight.

        Only when the context window is known (config ``context_window``, else the model
        table); a bound from sizes alone clears most prompts without tokenizing."""
        window = self.config.context_window
        if request.model:
            info = model_table().lookup(request.model, self.provider_name)
            if info is not None:
                lacking = missing_capability(request, info)
                if lacking is not None:
                    return unsupported_capability(request.model, lacking, self.provider_name)
                if window is None:
                    window = info.context_window
        if window is None:
            return None
        return preflight_token_limit(request, window, provider=self.provider_name)

    def _in_budget(
        self, request: ChatRequest, source: AsyncIterator[StreamChunk]
    ) -> AsyncIterator[StreamChunk]:
        """``source`` under this client's budget (reserved before, settled after), if any."""
        return source if self.budget is None else self._stream_in_budget(request, source)

    async def _stream_in_budget(
        self, request: ChatRequest, source: AsyncIterator[StreamChunk]
    ) -> AsyncIterator[StreamChunk]:
        assert self.budget is not None
        reservation = await self._reserve_budget(request, self.budget)
        if isinstance(reservation, LLMError):
            raise reservation
        usage = None
        try:
            async for chunk in source:
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
        finally:
            await _aclose(source)
            cost = None
            if usage is not None:
                cost = usage_cost(usage, request.model, provider=self.provider_name)
            tokens = usage.total_tokens if usage is not None else 0
            await self.budget.settle(reservation, cost or 0.0, tokens)

    async def _reserve_budget(self, request: ChatRequest, budget: Budget) -> Any:
        """The budget's reservation for ``request``'s estimate (prompt by size plus
        ``max_tokens``, priced from the model table), or the ``LLMBudgetExceededError``."""
        tokens = _estimated_tokens(request)
        info = model_table().lookup(request.model, self.provider_name) if request.model else None
        prompt = tokens - (request.max_tokens or 0)
        cost = (info.cost(prompt, request.max_tokens or 0) if info is not None else None) or 0.0
        reservation = await budget.reserve(cost, tokens)
        if reservation is not None:
            return reservation
        return LLMBudgetExceededError(
            f"Budget for scope {budget.scope!r} would be exceeded by this call "
            f"(estimate ${cost:.6f}, {tokens} tokens); no call was made",
            provider=self.provider_name,
            model=request.model,
            details={"scope": budget.scope, "estimated_cost": cost, "estimated_tokens": tokens},
        )

    def _finalize(self, request: ChatRequest, completion: Completion) -> Completion:
        """Post-processing common to every provider (cost from the pricing table)."""
        if completion.cost is not None:
            return completion
        cost = usage_cost(
            completion.usage, completion.model, request.model, provider=self.provider_name
        )
        return completion if cost is None else completion.with_cost(cost)

    async def _acquire_rate_limit(self, request: ChatRequest) -> LLMError | None:
        if self.rate_limiter is None:
            return None
        return await self.rate_limiter.acquire(
            self.provider_name, request.model, _estimated_tokens(request)
        )

    @staticmethod
    def _record(breaker: Any, error: LLMError) -> None:
        # Only failures of the provider count against it; a rejected request proves it is up.
        if error.retryable:
            breaker.record_failure()
        else:
            breaker.record_success()

    async def _sleep_before_retry(
        self,
        attempt: int,
        error: LLMError,
        model: str,
        deadline: float | None,
        call: CallInfo | None = None,
    ) -> bool:
        """Wait before the next attempt; ``False`` (no wait) when the call's ``deadline``
        leaves no room for it, so the caller gives up with ``error``."""
        delay = self.retry_policy.delay_for(attempt, error.retry_after)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return False
        logger.info(
            "retrying %s/%s after %s (attempt %d, waiting %.2fs)",
            self.provider_name,
            model,
            type(error).__name__,
            attempt,
            delay,
        )
        if call is not None:
            await call.chain.on_retry(call, attempt, error, delay)
        await asyncio.sleep(delay)
        return True

    def _about_call(self, error: InvalidInputError, model: Any) -> InvalidInputError:
        """``error`` with this client's provider and the call's model filled in."""
        error.provider = self.provider_name
        error.model = model if isinstance(model, str) and model else self._default_model
        return error

    def _circuit_open(self, model: str, retry_in: float) -> LLMError:
        return CircuitOpenError(
            "The circuit breaker is open after repeated provider failures; no call was made",
            provider=self.provider_name,
            model=model,
            retryable=True,
            retry_after=retry_in,
        )

    def _unexpected_stream_error(self, exc: BaseException, request: ChatRequest) -> LLMError:
        return StreamError(
            f"The stream failed unexpectedly: {type(exc).__name__}: {exc}",
            provider=self.provider_name,
            model=request.model,
            retryable=False,
        )


def cache_scope_for(provider: str, endpoint: str | None, api_key: str | None = None) -> str:
    """A cache scope: ``provider``, ``@`` the normalised ``endpoint`` (a URL or a path), and
    ``#key:`` a short, non-reversible fingerprint of ``api_key`` when one is given."""
    scope = provider if not endpoint else f"{provider}@{_normalised_endpoint(endpoint)}"
    if api_key:
        digest = hashlib.sha256(b"lexigram-cache-scope\0" + api_key.encode()).hexdigest()
        scope += f"#key:{digest[:16]}"
    return scope


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _normalised_endpoint(endpoint: str) -> str:
    """``scheme://host[:port]/path`` with case, default port and trailing slash normalised;
    userinfo and fragment dropped and a query reduced to a hash (either may hold a secret)."""
    parts = urlsplit(endpoint)
    if not parts.scheme or not parts.netloc:
        return endpoint.rstrip("/") or endpoint  # a path (the local provider's model file)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    out = f"{scheme}://{netloc}{parts.path.rstrip('/')}"
    if parts.query:
        out += "?" + hashlib.sha256(parts.query.encode()).hexdigest()[:16]
    return out


# ``complete`` skips its layer when a subclass did not replace it.
_COMPLETE_REQUEST = AbstractLLMClient.complete_request


async def _aclose(source: object) -> None:
    """Close an async generator a wrapper was reading (a no-op for other iterators)."""
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()


# Stateless, so one instance serves every request.
_CHAR_ESTIMATE = CharEstimateCounter()


def _positive_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name}= must be a positive number of seconds, got {value!r}")
    return float(value)


def _estimated_tokens(request: ChatRequest) -> int:
    """Tokens a call may use, for tokens-per-minute limits: the prompt estimated from its
    size (no tokenizer on this path), plus ``max_tokens``."""
    prompt = _CHAR_ESTIMATE.count_messages(request.messages, tools=request.tools)
    return int(prompt) + (request.max_tokens or 0)


async def _refused_stream(error: LLMError) -> AsyncIterator[StreamChunk]:
    """A stream that raises ``error`` on first iteration (input refused before any call)."""
    raise error
    yield  # an async generator  # pragma: no cover


def replay_as_stream(completion: Completion) -> list[StreamChunk]:
    """The chunks that fold back into ``completion`` (a cache hit served as a stream)."""
    chunks: list[StreamChunk] = []
    if completion.thinking is not None:
        for block in completion.thinking.blocks:
            chunks.append(StreamChunk(thinking_delta=block.content, thinking_block=block))
    if completion.content:
        chunks.append(StreamChunk(delta=completion.content))
    if completion.tool_calls:
        chunks.append(
            StreamChunk(
                tool_calls=tuple(
                    ToolCallDelta(i, tc.id, tc.name, tc.arguments, tc.signature)
                    for i, tc in enumerate(completion.tool_calls)
                )
            )
        )
    chunks.append(
        StreamChunk(
            finish_reason=completion.finish_reason,
            raw_finish_reason=completion.raw_finish_reason,
            usage=completion.usage,
            model=completion.model,
            id=completion.id,
        )
    )
    return chunks


def _response_format_from_any(spec: Any) -> ResponseFormat:
    """Accept OpenAI's ``response_format`` dict shape; anything else is refused with
    ``InvalidInputError``, never silently read as plain text."""
    if not isinstance(spec, Mapping):
        raise InvalidInputError.at(
            "response_format", f"expected a ResponseFormat or a dict, got {type(spec).__name__}"
        )
    kind = spec.get("type", "text")
    if kind == "json_schema":
        inner = spec.get("json_schema", spec)
        if not isinstance(inner, Mapping):
            raise InvalidInputError.at(
                "response_format.json_schema",
                "must be a mapping with 'schema' (and optionally 'name', 'strict'), not "
                f"{type(inner).__name__}",
            )
        schema = inner.get("schema")
        if not (schema is None or isinstance(schema, Mapping)):
            raise InvalidInputError.at(
                "response_format.json_schema.schema",
                f"expected a JSON-schema dict, got {type(schema).__name__}",
            )
        return ResponseFormat(
            "json_schema",
            schema,
            inner.get("name", "response"),
            bool(inner.get("strict", True)),
        )
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind == "text":
        return ResponseFormat("text")
    raise InvalidInputError.at(
        "response_format.type",
        f"unknown response_format type {kind!r}; use 'text', 'json_object' or 'json_schema'",
    )
