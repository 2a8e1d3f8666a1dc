"""``LLMRouter``: one ``LLMClientProtocol`` over several providers.

Each route is an ordinary client (built by the registry from the router's ``ClientConfig``
and the route's own settings). For every request the router reads the routes' cooldowns and
statistics in one call, lets the strategy rank the routes that are not resting, and runs the
attempts: one after another, raced, or hedged. The answer records which provider gave it and
every attempt (``Completion.attempts``). A stream moves on to the next route only before its
first chunk; after that, a failure is the caller's to see.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from lexigram.ai.llm.client import (
    AbstractLLMClient,
    CircuitOpenError,
    RateLimitPolicy,
    ResponseCache,
    replay_as_stream,
)
from lexigram.ai.llm.config import ClientConfig
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    LLMAuthenticationError,
    LLMBudgetExceededError,
    LLMContentFilterError,
    LLMError,
    LLMQuotaExceededError,
    LLMRateLimitError,
    ProviderError,
    TokenLimitError,
)
from lexigram.ai.llm.middleware import default_chain, observed
from lexigram.ai.llm.pricing import (
    lookup_model,
    missing_capability,
    request_capabilities,
    unsupported_capability,
)
from lexigram.ai.llm.routing.config import LLMConfig, ProviderRoute
from lexigram.ai.llm.routing.state import MemoryRouterState, RouterState, RouteStats
from lexigram.ai.llm.routing.strategies import (
    RoutingStrategy,
    SequentialCascadeStrategy,
    strategy_for,
)
from lexigram.ai.llm.stream import ChatStream, StreamAccumulator
from lexigram.ai.llm.types import ChatRequest, Completion, StreamChunk
from lexigram.contracts.health import HealthCheckResult, HealthStatus
from lexigram.result import Err, Ok, Result

if TYPE_CHECKING:
    from lexigram.ai.llm.budget import Budget
    from lexigram.ai.llm.embeddings import Embeddings
    from lexigram.ai.llm.pricing import ModelInfo
    from lexigram.ai.llm.registry import ProviderRegistry

__all__ = ["LLMRouter", "NoRouteAvailableError", "Route", "RoutedStream"]

logger = logging.getLogger("lexigram.ai.llm.routing")

T = TypeVar("T")
Attempt = dict[str, Any]

# An attempt's ``reason`` when the route was skipped because its model lacks a capability.
_UNSUPPORTED = "unsupported_capability:"


class NoRouteAvailableError(ProviderError):
    """Every route is resting after failures; ``retry_after`` says when the first is back."""

    default_code = "no_route_available"


@dataclass(slots=True)
class Route:
    """One provider a router can use: a name, a client and how to rank it.

    The model sent is the route's ``model``, else the caller's, else the client's default.
    ``price`` overrides the pricing table for the cost strategy.
    """

    name: str
    client: AbstractLLMClient
    model: str | None = None
    priority: int = 0
    weight: float = 1.0
    price: ModelInfo | None = None
    default_model: str = ""

    @property
    def provider(self) -> str:
        """The provider the route's client talks to."""
        return self.client.provider_name

    def model_for(self, request: ChatRequest) -> str:
        """The model this route sends ``request`` to."""
        return self.model or request.model or self.default_model

    def request_for(self, request: ChatRequest) -> ChatRequest:
        """``request`` with this route's model."""
        model = self.model_for(request)
        return request if model == request.model else replace(request, model=model)


class RoutedStream(ChatStream):
    """A router's stream: ``provider``, ``model`` and ``attempts`` are known once the first
    chunk arrived, and its folded ``Completion`` carries them."""

    __slots__ = ("attempts",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempts: tuple[Mapping[str, Any], ...] = ()

    async def completion(self) -> Result[Completion, LLMError]:
        """Consume and fold the stream; the completion lists the router's attempts."""
        result = await super().completion()
        if isinstance(result, Ok):
            return Ok(replace(result.value, attempts=self.attempts))
        return result


class LLMRouter(AbstractLLMClient):
    """Routes each request over several providers; itself an ``LLMClientProtocol``.

    Build it from an ``LLMConfig`` with ``LLMRouter.from_config`` (what
    ``LLMModule.configure(routing=...)`` does), or from ready ``Route`` objects.
    """

    provider_name = "router"

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        strategy: RoutingStrategy | None = None,
        settings: LLMConfig | None = None,
        state: RouterState | None = None,
        config: ClientConfig | None = None,
        cache: ResponseCache | None = None,
        owned: Sequence[Any] = (),
        middleware: Sequence[object] | None = None,
    ) -> None:
        if not routes:
            raise ConfigurationError(
                "A router needs at least one enabled route: add providers to LLMConfig"
            )
        names = [route.name for route in routes]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"route names must be unique, got {names}")
        base = config if config is not None else ClientConfig()
        # Rate limits belong to each route; the router itself never waits for one.
        base = base.model_copy(update={"requests_per_minute": None, "tokens_per_minute": None})
        super().__init__(base, cache=cache, middleware=middleware)
        # ``model_construct``: the defaults, without reading the environment again.
        self.settings = settings if settings is not None else LLMConfig.model_construct()
        self.routes = tuple(routes)
        self.strategy = strategy or SequentialCascadeStrategy()
        self.state: RouterState = state if state is not None else MemoryRouterState()
        self._owned = tuple(owned)
        self._embedders: dict[str, Any] = {}  # route name -> EmbeddingClient (None: no API)
        # Cache entries belong to this set of routes (each its client's scope: provider, host
        # and key fingerprint, and the route's model), not to any one provider.
        self._cache_scope = "router:" + ",".join(
            sorted(f"{r.name}={r.client.cache_scope}/{r.model or ''}" for r in routes)
        )

    @property
    def cache_scope(self) -> str:
        """The scope of the router's cached answers: every route's name, client scope and model."""
        return self._cache_scope

    def __repr__(self) -> str:
        return (
            f"LLMRouter(routes=[{', '.join(r.name for r in self.routes)}], "
            f"strategy={self.strategy!r})"
        )

    # -- building --------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        config: LLMConfig,
        *,
        registry: ProviderRegistry | None = None,
        default: ClientConfig | None = None,
        cache: ResponseCache | None = None,
        rate_limiter: RateLimitPolicy | None = None,
        state: RouterState | None = None,
        strategy: RoutingStrategy | None = None,
        middleware: Sequence[object] | None = None,
        budget: Budget | None = None,
    ) -> LLMRouter:
        """A router for ``config``; each route's client starts from ``default`` (the ``ai_llm``
        section) with the route's settings on top. With no providers, one route is built from
        ``default`` itself. ``rate_limiter``, when given, is applied by every route instead of
        the routes' own limits. ``middleware`` runs around the router's calls (each route's
        client has none of it). ``budget`` is shared by every route: each attempt reserves
        its estimate at its route's model price."""
        from lexigram.ai.llm.registry import default_registry

        registry = registry or default_registry
        default = default if default is not None else ClientConfig()
        redis_url = config.redis_url.get_secret_value() if config.redis_url else None
        owned: list[Any] = []
        if state is None and redis_url:
            from lexigram.ai.llm.routing.state import RedisRouterState

            state = RedisRouterState(redis_url, prefix=config.redis_prefix)
            owned.append(state)
        buckets = _bucket_backend(config, redis_url, owned)
        routes: list[Route] = []
        if not config.providers:
            lone = default.model_copy(update={"enable_cache": False})
            policies = {"rate_limiter": rate_limiter} if rate_limiter is not None else {}
            client = registry.create(lone, **policies)
            routes.append(_route(client.provider_name, client, None))
        for settings in config.providers:
            if settings.enabled:
                routes.append(
                    _build_route(settings, default, config, registry, rate_limiter, buckets)
                )
        if budget is not None:
            for route in routes:
                if isinstance(route.client, AbstractLLMClient):
                    route.client.budget = budget
        return cls(
            routes,
            strategy=strategy
            or strategy_for(
                config.strategy, hedge_delay=config.hedge_delay, max_parallel=config.max_parallel
            ),
            settings=config,
            state=state,
            config=default,
            cache=cache,
            owned=owned,
            middleware=middleware,
        )

    # -- complete --------------------------------------------------------------------------

    async def _complete_uncached(
        self, request: ChatRequest, call: Any = None
    ) -> Result[Completion, LLMError]:
        """Route one request (``complete_request`` asks the cache first); ``Ok`` from the
        first route that answered, else the last failure (with every attempt in
        ``error.details["attempts"]``)."""
        return await self._route_completion(request)

    async def _route_completion(self, request: ChatRequest) -> Result[Completion, LLMError]:
        routes, attempts = await self._plan(request)
        if not routes:
            return Err(self._nothing_ready(request, attempts))

        async def call(route: Route) -> Result[Completion, LLMError]:
            return await route.client.complete_request(route.request_for(request), use_cache=False)

        picked = await self._run(routes, request, attempts, call, None)
        if isinstance(picked, LLMError):
            return Err(picked)
        _, completion = picked
        return Ok(replace(completion, attempts=tuple(attempts)))

    # -- embeddings ------------------------------------------------------------------------

    async def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
        input_type: str | None = None,
        **kwargs: Any,
    ) -> Result[Embeddings, LLMError]:
        """Embed through the routes ranked as for chat, skipping routes whose provider has
        no embeddings API. A failure falls over only to routes whose vectors have the first
        route's size (``dimensions`` when given, else each route's model's known size): a
        caller never gets vectors of another length. Vectors of different models are still
        not comparable with each other; keep one model per index."""
        from lexigram.ai.llm.embeddings import embedding_client_for, known_dimensions

        probe = ChatRequest(messages=(), model=model or "")
        ranked, attempts = await self._plan(probe)
        usable: list[tuple[Route, Any]] = []
        for route in ranked:
            if route.name not in self._embedders:
                try:
                    embedder = embedding_client_for(route.client)
                except ConfigurationError:
                    embedder = None
                self._embedders[route.name] = embedder
            if self._embedders[route.name] is not None:
                usable.append((route, self._embedders[route.name]))
        if not usable and ranked:
            raise ConfigurationError(
                "No route of this router has an embeddings API: add a provider that has one "
                "(openai, cohere, gemini, mistral, ollama, bedrock, local)"
            )
        if not usable:
            return Err(self._nothing_ready(probe, attempts))
        first = known_dimensions(model or usable[0][1].default_model, dimensions)
        routes = [usable[0][0]] + [
            route
            for route, embedder in usable[1:]
            if first is not None
            and known_dimensions(model or embedder.default_model, dimensions) == first
        ]

        async def call(route: Route) -> Result[Embeddings, LLMError]:
            result: Result[Embeddings, LLMError] = await self._embedders[route.name].embed(
                texts, model=model, dimensions=dimensions, input_type=input_type, **kwargs
            )
            return result

        picked = await self._run(routes, probe, attempts, call, None)
        if isinstance(picked, LLMError):
            return Err(picked)
        return Ok(picked[1])

    # -- streaming -------------------------------------------------------------------------

    def stream_request(self, request: ChatRequest, *, use_cache: bool = True) -> RoutedStream:
        """Route one streamed request; it falls back to the next route only before the first
        chunk."""
        cache = self.cache if use_cache else None

        def source() -> AsyncIterator[StreamChunk]:
            if self._always_observe or observed():
                chain = default_chain(self)
                if chain is not None:  # middleware around the routed stream
                    return self._stream_observed(
                        request,
                        cache,
                        chain,
                        lambda sent, call: self._route_stream(sent, cache, stream),
                        lambda done: replace(
                            done,
                            provider=stream.provider,
                            model=done.model or stream.model,
                            attempts=stream.attempts,
                        ),
                    )
            return self._route_stream(request, cache, stream)

        stream = RoutedStream(
            source,
            provider=self.provider_name,
            model=request.model,
            wrap_error=lambda exc: self._unexpected_stream_error(exc, request),
        )
        return stream

    async def _route_stream(
        self, request: ChatRequest, cache: ResponseCache | None, out: RoutedStream
    ) -> AsyncIterator[StreamChunk]:
        if cache is not None:
            hit = await cache.get(request, self._cache_scope)
            if hit is not None:
                out.provider, out.model, out.attempts = hit.provider, hit.model, hit.attempts
                for chunk in replay_as_stream(hit):
                    yield chunk
                return
        routes, attempts = await self._plan(request)
        if not routes:
            raise self._nothing_ready(request, attempts)

        async def open_stream(route: Route) -> Result[_Opened, LLMError]:
            stream = route.client.stream_request(route.request_for(request), use_cache=False)
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                return Ok(_Opened(stream, None))
            except LLMError as error:
                await stream.aclose()
                return Err(error)
            except BaseException:
                await stream.aclose()
                raise
            return Ok(_Opened(stream, first))

        picked = await self._run(routes, request, attempts, open_stream, _close_opened)
        if isinstance(picked, LLMError):
            raise picked
        route, opened = picked
        routed = route.request_for(request)
        out.provider = route.provider
        out.model = routed.model
        out.attempts = tuple(attempts)
        # Post-processing (cost) as the route's own client applies it to ``complete``.
        finalize = out._finalize = partial(route.client._finalize, routed)
        accumulator = StreamAccumulator() if cache is not None else None
        try:
            if opened.first is not None:
                if accumulator is not None:
                    accumulator.add(opened.first)
                yield opened.first
                async for chunk in opened.stream:
                    if accumulator is not None:
                        accumulator.add(chunk)
                    yield chunk
        except LLMError as error:
            await self._safely(self.state.record(route.name, ok=False, error=error.code))
            raise
        finally:
            await opened.stream.aclose()
        if cache is not None and accumulator is not None:
            folded = finalize(accumulator.to_completion(out.provider, out.model))
            await cache.put(request, self._cache_scope, replace(folded, attempts=out.attempts))

    # -- the attempt engine ----------------------------------------------------------------

    async def _plan(self, request: ChatRequest) -> tuple[list[Route], list[Attempt]]:
        """The routes to try, ranked, and a record of those skipped because they rest or
        because the model table knows their model cannot take the request."""
        stats = await self._snapshot()
        attempts: list[Attempt] = []
        ready: list[Route] = []
        needs = request_capabilities(request)
        for route in self.routes:
            seen = stats.get(route.name)
            lacking = None
            if needs:
                info = lookup_model(route.model_for(request), route.provider) or route.price
                lacking = missing_capability(request, info, needs)
            if lacking is not None:
                reason = f"{_UNSUPPORTED}{lacking}"
                attempts.append(_attempt(route, request, "skipped", reason=reason))
            elif seen is not None and seen.cooling_down:
                attempts.append(
                    _attempt(
                        route,
                        request,
                        "skipped",
                        cooldown=seen.cooldown_remaining,
                        reason=seen.cooldown_reason,
                    )
                )
            else:
                ready.append(route)
        return self.strategy.order(ready, request, stats), attempts

    async def _run(
        self,
        routes: list[Route],
        request: ChatRequest,
        attempts: list[Attempt],
        call: Callable[[Route], Awaitable[Result[T, LLMError]]],
        discard: Callable[[T], Awaitable[None]] | None,
    ) -> tuple[Route, T] | LLMError:
        """Run ``call`` on the routes as the strategy says; the first success, or the error
        to report. Attempts still running when it returns are cancelled and awaited."""
        stagger = self.strategy.stagger
        limit = self.strategy.max_parallel or len(routes)
        queue = deque(routes)
        rank = {route.name: index for index, route in enumerate(routes)}
        running: dict[asyncio.Future[Result[T, LLMError]], tuple[Route, float]] = {}
        last_error: LLMError | None = None
        final_error: LLMError | None = None  # one the next route would not fix: start no more

        def may_launch() -> bool:
            return final_error is None and bool(queue) and len(running) < limit

        def launch() -> None:
            route = queue.popleft()
            running[asyncio.ensure_future(call(route))] = (route, time.perf_counter())

        launch()
        while stagger == 0 and may_launch():
            launch()
        try:
            while running:
                hedge = stagger if stagger and may_launch() else None
                done, _ = await asyncio.wait(
                    running, timeout=hedge, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # the hedge delay passed without an answer
                    launch()
                    continue
                winner: tuple[Route, T] | None = None
                for task in sorted(done, key=lambda t: rank[running[t][0].name]):
                    route, started = running.pop(task)
                    result = task.result()  # a programming error raises here
                    elapsed = time.perf_counter() - started
                    if isinstance(result, Ok):
                        await self._safely(self.state.record(route.name, ok=True, latency=elapsed))
                        if winner is None:
                            winner = (route, result.value)
                            attempts.append(_attempt(route, request, "ok", elapsed=elapsed))
                        else:
                            attempts.append(_attempt(route, request, "unused", elapsed=elapsed))
                            if discard is not None:
                                await discard(result.value)
                        continue
                    error = result.error
                    rest = await self._observe_failure(route, error)
                    attempts.append(
                        _attempt(
                            route,
                            request,
                            "error",
                            elapsed=elapsed,
                            error=error,
                            cooldown=rest[0] if rest else None,
                            reason=rest[1] if rest else None,
                        )
                    )
                    if self._cascades(error):
                        last_error = error
                    elif final_error is None:
                        final_error = error
                if winner is not None:
                    return winner
                while may_launch() and (stagger is not None or not running):
                    launch()
        finally:
            await self._cancel(running, request, attempts, discard)
        failure = final_error or last_error
        assert failure is not None
        failure.details = {**failure.details, "attempts": list(attempts)}
        return failure

    async def _cancel(
        self,
        running: dict[asyncio.Future[Result[T, LLMError]], tuple[Route, float]],
        request: ChatRequest,
        attempts: list[Attempt],
        discard: Callable[[T], Awaitable[None]] | None,
    ) -> None:
        """Cancel the attempts still running and wait until they have let go of everything."""
        if not running:
            return
        for task in running:
            task.cancel()
        outcomes = await asyncio.gather(*running, return_exceptions=True)
        for (route, started), outcome in zip(running.values(), outcomes, strict=True):
            elapsed = time.perf_counter() - started
            attempts.append(_attempt(route, request, "cancelled", elapsed=elapsed))
            if isinstance(outcome, Ok) and discard is not None:
                await discard(outcome.value)  # it finished before the cancel reached it

    def _cascades(self, error: LLMError) -> bool:
        """Whether the next route may do better than this one did."""
        allowed = self.settings.cascade_on
        if isinstance(error, TokenLimitError):
            return "context_length" in allowed or "invalid_request" in allowed
        if isinstance(error, InvalidRequestError):
            return "invalid_request" in allowed
        if isinstance(error, LLMContentFilterError):
            return "content_filter" in allowed
        return True

    async def _observe_failure(self, route: Route, error: LLMError) -> tuple[float, str] | None:
        """Count the failure and rest the route if the error says so; the cooldown set."""
        await self._safely(self.state.record(route.name, ok=False, error=error.code))
        rest = self._cooldown_for(error)
        if rest is None:
            return None
        seconds, reason = rest
        await self._safely(self.state.cool_down(route.name, seconds, reason))
        logger.info(
            "route %s rests %.1fs after %s (%s)",
            route.name,
            seconds,
            type(error).__name__,
            reason,
        )
        return rest

    def _cooldown_for(self, error: LLMError) -> tuple[float, str] | None:
        cooldowns = self.settings.cooldowns
        seconds: float
        if isinstance(error, LLMBudgetExceededError):
            return None  # our own budget refused the call before sending it: the route is fine
        if isinstance(error, LLMQuotaExceededError):
            seconds, reason = cooldowns.quota, "quota"
        elif isinstance(error, LLMAuthenticationError):
            seconds, reason = cooldowns.quota, "authentication"
        elif isinstance(error, LLMRateLimitError):
            wait = error.retry_after
            seconds, reason = (cooldowns.rate_limit if wait is None else wait), "rate_limited"
        elif isinstance(error, CircuitOpenError):
            return None  # the route's own breaker already refuses without a network call
        elif error.retryable:
            seconds, reason = cooldowns.failure, "failure"
        else:
            return None
        seconds = min(seconds, cooldowns.max)
        return (seconds, reason) if seconds > 0 else None

    def _nothing_ready(self, request: ChatRequest, attempts: list[Attempt]) -> LLMError:
        waits = [a["cooldown"] for a in attempts if a.get("cooldown")]
        soonest = min(waits) if waits else None
        if soonest is None:
            for attempt in attempts:
                reason = attempt.get("reason") or ""
                if reason.startswith(_UNSUPPORTED):
                    # No route rests: every model the router has lacks what the request needs.
                    error = unsupported_capability(
                        attempt["model"], reason[len(_UNSUPPORTED) :], self.provider_name
                    )
                    error.details["attempts"] = list(attempts)
                    return error
        return NoRouteAvailableError(
            "Every route is resting after recent failures; retry after the soonest cooldown",
            provider=self.provider_name,
            model=request.model,
            retryable=True,
            retry_after=soonest,
            details={"attempts": list(attempts)},
        )

    async def _snapshot(self) -> dict[str, RouteStats]:
        try:
            return await self.state.snapshot([route.name for route in self.routes])
        except Exception as exc:  # shared state down: route as if every route were fresh
            logger.warning("router state unavailable (%s: %s)", type(exc).__name__, exc)
            return {}

    @staticmethod
    async def _safely(operation: Awaitable[None]) -> None:
        try:
            await operation
        except Exception as exc:
            logger.warning("router state update failed (%s: %s)", type(exc).__name__, exc)

    # -- inspection and lifecycle ----------------------------------------------------------

    async def stats(self) -> dict[str, RouteStats]:
        """Every route's statistics and cooldown, as the router sees them now."""
        return await self._snapshot()

    async def reset_cooldown(self, name: str) -> None:
        """Put a resting route back in service now."""
        await self.state.reset(name)

    async def health_check(self, timeout: float = 5.0) -> HealthCheckResult:
        """Every route's health, checked at once: healthy when all are, degraded when some
        are, unhealthy when none is. Never raises."""
        started = time.perf_counter()
        results = await asyncio.gather(
            *(route.client.health_check(timeout) for route in self.routes), return_exceptions=True
        )
        details: dict[str, HealthCheckResult] = {}
        for route, result in zip(self.routes, results, strict=True):
            details[route.name] = (
                result
                if isinstance(result, HealthCheckResult)
                else HealthCheckResult(HealthStatus.UNHEALTHY, f"{type(result).__name__}: {result}")
            )
        healthy = [name for name, result in details.items() if result.is_healthy]
        if len(healthy) == len(details):
            status, message = HealthStatus.HEALTHY, f"{len(healthy)} routes healthy"
        elif healthy:
            status = HealthStatus.DEGRADED
            message = f"{len(healthy)} of {len(details)} routes healthy"
        else:
            status, message = HealthStatus.UNHEALTHY, "no route is healthy"
        return HealthCheckResult(status, message, details, (time.perf_counter() - started) * 1000)

    async def close(self) -> None:
        """Close every route's client and what the router opened itself."""
        closers = [route.client.close() for route in self.routes]
        closers += [item.close() for item in self._owned]
        results = await asyncio.gather(*closers, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                logger.warning("closing a route failed: %s", result)


# -- helpers -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Opened:
    """A route's stream that produced its first chunk (``None``: it ended empty)."""

    stream: ChatStream
    first: StreamChunk | None


async def _close_opened(opened: _Opened) -> None:
    await opened.stream.aclose()


def _attempt(
    route: Route,
    request: ChatRequest,
    outcome: str,
    *,
    elapsed: float | None = None,
    error: LLMError | None = None,
    cooldown: float | None = None,
    reason: str | None = None,
) -> Attempt:
    """One entry of ``Completion.attempts``: plain, JSON-ready data."""
    return {
        "route": route.name,
        "provider": route.provider,
        "model": route.model_for(request),
        "outcome": outcome,
        "latency_ms": None if elapsed is None else round(elapsed * 1000.0, 3),
        "error": None if error is None else error.code,
        "error_type": None if error is None else type(error).__name__,
        "status": None if error is None else error.status,
        "retry_after": None if error is None else error.retry_after,
        "cooldown": None if cooldown is None else round(cooldown, 3),
        "reason": reason,
    }


def _route(name: str, client: AbstractLLMClient, model: str | None, **ranking: Any) -> Route:
    # ``build_request`` fills in the client's own default model.
    default_model = client.build_request(()).model
    return Route(name, client, model, default_model=default_model, **ranking)


def _build_route(
    settings: ProviderRoute,
    default: ClientConfig,
    config: LLMConfig,
    registry: ProviderRegistry,
    rate_limiter: RateLimitPolicy | None,
    buckets: Any,
) -> Route:
    client_config = _route_client_config(settings, default, config)
    limiter = rate_limiter
    if limiter is None and (settings.requests_per_minute or settings.tokens_per_minute):
        from lexigram.ai.llm.rate_limit import ProviderRateLimiter, RateLimit

        # A route at its limit refuses at once, so the router moves on instead of waiting.
        limiter = ProviderRateLimiter(
            RateLimit(settings.requests_per_minute, settings.tokens_per_minute),
            backend=buckets,
            wait=False,
            key_prefix=f"llm:route:{settings.name}",
        )
    policies: dict[str, Any] = {"rate_limiter": limiter} if limiter is not None else {}
    client = registry.create(client_config, **policies)
    price = None
    if settings.input_per_mtok is not None and settings.output_per_mtok is not None:
        from lexigram.ai.llm.pricing import ModelInfo

        price = ModelInfo(
            name=settings.model or settings.name,
            provider=settings.provider_name,
            input_per_mtok=settings.input_per_mtok,
            output_per_mtok=settings.output_per_mtok,
        )
    return _route(
        settings.name,
        client,
        settings.model,
        priority=settings.priority,
        weight=settings.weight,
        price=price,
    )


def _route_client_config(
    settings: ProviderRoute, default: ClientConfig, config: LLMConfig
) -> ClientConfig:
    """The route's client configuration: the router's defaults, the route's settings on top.

    Provider-specific values (key, base URL, model, extra options) are inherited only by a
    route to the same provider as the default configuration.
    """
    provider = settings.provider_name
    same = provider == default.provider
    values = default.model_dump()
    values.update(
        provider=provider,
        model=settings.model or (default.model if same else None),
        api_key=settings.api_key or (default.api_key if same else None),
        api_base=settings.base_url or (default.api_base if same else None),
        timeout=settings.timeout or default.timeout,
        extra={**(default.extra if same else {}), **settings.extra},
        enable_cache=False,  # the router caches whole answers, not each route
        max_retries=config.retries_per_provider,
        requests_per_minute=None,  # the route's own limiter is built beside the client
        tokens_per_minute=None,
    )
    return ClientConfig(**values)


def _bucket_backend(config: LLMConfig, redis_url: str | None, owned: list[Any]) -> Any:
    """Where route rate limits live: Redis when the router shares its state, else memory."""
    limited = any(r.requests_per_minute or r.tokens_per_minute for r in config.providers)
    if not (redis_url and limited):
        return "memory"
    from lexigram.resilience import RedisBucketBackend

    backend = RedisBucketBackend(redis_url, prefix=config.redis_prefix + "ratelimit:")
    owned.append(backend)
    return backend
