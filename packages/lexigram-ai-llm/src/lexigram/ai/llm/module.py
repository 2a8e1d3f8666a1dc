"""DI wiring: ``LLMModule`` and ``LLMProvider``, and the deterministic ``StubLLMClient``.

::

    module = LLMModule.configure(ClientConfig(provider="openai"))
    async with Application.boot(modules=[module]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from lexigram.ai.llm.client import AbstractLLMClient, replay_as_stream
from lexigram.ai.llm.config import ClientConfig
from lexigram.ai.llm.registry import ProviderRegistry, default_registry
from lexigram.ai.llm.types import ChatRequest, Completion, StreamChunk, Usage
from lexigram.contracts.ai import EmbeddingClientProtocol, LLMClientProtocol
from lexigram.contracts.health import HealthCheckResult, HealthStatus
from lexigram.di import Container, DynamicModule, Module, Provider, module

if TYPE_CHECKING:
    from lexigram.ai.llm.budget import Budget
    from lexigram.ai.llm.routing import LLMConfig

__all__ = ["LLMModule", "LLMProvider", "StubLLMClient"]

logger = logging.getLogger("lexigram.ai.llm")


class StubLLMClient(AbstractLLMClient):
    """A deterministic client for your own tests: answers from a fixed list, in turn.

    Each call is recorded in ``calls`` (the ``ChatRequest``), so a test can assert on what was
    sent. Streams split the answer into word chunks that fold to the same ``Completion``.
    """

    provider_name = "stub"

    def __init__(
        self,
        responses: Sequence[str | Completion] = ("This is a stub response.",),
        config: ClientConfig | None = None,
        **policies: Any,
    ) -> None:
        super().__init__(config or ClientConfig(provider="stub", model="stub"), **policies)
        if not responses:
            raise ValueError("StubLLMClient needs at least one response")
        self._responses = itertools.cycle(list(responses))
        self.calls: list[ChatRequest] = []
        self._default_model = self.config.model or "stub"

    def _next(self, request: ChatRequest) -> Completion:
        self.calls.append(request)
        answer = next(self._responses)
        if isinstance(answer, Completion):
            return answer
        prompt_words = sum(len(m.text.split()) for m in request.messages)
        completion_words = len(answer.split())
        return Completion(
            content=answer,
            model=request.model,
            provider=self.provider_name,
            finish_reason="stop",
            raw_finish_reason="stop",
            usage=Usage.of(prompt_words, completion_words),
        )

    async def _do_complete(self, request: ChatRequest) -> Completion:
        return self._next(request)

    async def _do_stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        completion = self._next(request)
        words = completion.content.split(" ")
        for i, word in enumerate(words):
            await asyncio.sleep(0)
            yield StreamChunk(delta=word if i == 0 else " " + word)
        # Thinking, tool calls and the final chunk as a cache replay gives them.
        for chunk in replay_as_stream(replace(completion, content="")):
            yield chunk

    async def health_check(self, timeout: float = 5.0) -> HealthCheckResult:
        return HealthCheckResult(HealthStatus.HEALTHY, "stub")


class LLMProvider(Provider):
    """Registers ``LLMClientProtocol`` (a client, a router, or the stub),
    ``EmbeddingClientProtocol`` (an embedding client over that client), ``ProviderRegistry``,
    ``TokenCounterRegistry``, ``ParserRegistry`` and, with ``enable_cache``, ``LLMCache``.

    Boot builds the client (so a bad config fails at start-up, not on the first call) and
    warns about each provider that has no API key; shutdown closes its connections. Without
    ``registry`` it uses the default ``ProviderRegistry`` table, the one
    ``ProviderRegistry().register(...)`` adds to.
    """

    name: ClassVar[str] = "ai_llm"
    config_model = ClientConfig

    def __init__(
        self,
        config: ClientConfig | str | None = None,
        *,
        routing: LLMConfig | None = None,
        stub: StubLLMClient | None = None,
        registry: ProviderRegistry | None = None,
        middleware: Sequence[object] | None = None,
        budget: Budget | None = None,
    ) -> None:
        super().__init__(ClientConfig.parse(config) if isinstance(config, str) else config)
        self.middleware = tuple(middleware) if middleware else None
        self.budget = budget
        self.routing = routing
        self.stub = stub
        self.registry = registry if registry is not None else default_registry
        self.client: Any = None
        self.embedder: Any = None

    @property
    def client_config(self) -> ClientConfig:
        """The resolved ``ai_llm`` configuration."""
        config = self.config
        if not isinstance(config, ClientConfig):
            config = ClientConfig()
        return config

    async def register(self, container: Container) -> None:
        from lexigram.ai.llm.structured import ParserRegistry
        from lexigram.ai.llm.tokens import TokenCounterRegistry

        container.register_instance(ProviderRegistry, self.registry)
        container.register_instance(ClientConfig, self.client_config)
        container.register_factory(TokenCounterRegistry, TokenCounterRegistry.default)
        container.register_factory(ParserRegistry, ParserRegistry.default)
        container.register_factory(LLMClientProtocol, self._build_client)
        container.register_factory(AbstractLLMClient, self._resolve_own_client)
        container.register_factory(EmbeddingClientProtocol, self._build_embedder)

    async def _resolve_own_client(self, container: Container) -> Any:
        return await container.resolve(LLMClientProtocol)

    async def _build_embedder(self, container: Container) -> Any:
        # Over the same client (a router embeds itself): one set of connections and policies.
        # A provider without embeddings raises ConfigurationError here, at resolve time.
        if self.embedder is None:
            client: Any = await container.resolve(LLMClientProtocol)
            if callable(getattr(client, "embed", None)):
                self.embedder = client
            else:
                from lexigram.ai.llm.embeddings import embedding_client_for

                self.embedder = embedding_client_for(client)
        return self.embedder

    async def _build_client(self, container: Container) -> Any:
        if self.client is not None:
            return self.client
        if self.stub is not None:
            self.client = self.stub
            return self.client
        config = self.client_config
        policies: dict[str, Any] = {}
        if self.middleware:
            policies["middleware"] = self.middleware
        if self.budget is not None:
            policies["budget"] = self.budget
        if config.enable_cache:
            from lexigram.ai.llm.caching import LLMCache
            from lexigram.contracts.cache import CacheBackendProtocol

            backend = await container.resolve_optional(CacheBackendProtocol)
            cache = LLMCache(backend, ttl=config.cache_ttl)
            container.register_instance(LLMCache, cache)
            policies["cache"] = cache
        if self.routing is None and (config.requests_per_minute or config.tokens_per_minute):
            from lexigram.resilience import RateLimitBackend

            # A registered backend (e.g. Redis) shares the limit between processes.
            buckets = await container.resolve_optional(RateLimitBackend)
            if buckets is not None:
                from lexigram.ai.llm.rate_limit import ProviderRateLimiter

                policies["rate_limiter"] = ProviderRateLimiter.from_config(config, backend=buckets)
        if self.routing is not None:
            from lexigram.ai.llm.routing import LLMRouter

            self.client = LLMRouter.from_config(
                self.routing, registry=self.registry, default=config, **policies
            )
        else:
            self.client = self.registry.create(config, **policies)
        return self.client

    async def boot(self, container: Container) -> None:
        if self.client_config.enabled:
            _warn_about_missing_keys(await container.resolve(LLMClientProtocol))

    async def shutdown(self) -> None:
        embedder, self.embedder = self.embedder, None
        if embedder is not None:
            await embedder.close()
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    async def health_check(self) -> HealthCheckResult:
        if self.client is None:
            return HealthCheckResult(HealthStatus.DEGRADED, "LLM client not built yet")
        result: HealthCheckResult = await self.client.health_check()
        return result


def _warn_about_missing_keys(client: Any) -> None:
    """Log, at boot, each HTTP provider (the client or a router's routes) whose calls will
    raise ``ConfigurationError`` for want of a key, naming the variable to set."""
    from lexigram.ai.llm.providers.http import HTTPLLMClient, _resolve_api_key

    clients = [route.client for route in getattr(client, "routes", ())] or [client]
    for each in clients:
        if not isinstance(each, HTTPLLMClient):
            continue
        profile = each.profile
        if not profile.requires_key or profile.auth == "custom":
            continue
        if _resolve_api_key(each.config, profile):
            continue
        names = " or ".join(profile.api_key_env) or "LEX_AI_LLM__API_KEY"
        logger.warning(
            "LLM provider %r has no API key: set %s (or LEX_AI_LLM__API_KEY, or "
            "ClientConfig(api_key=...)); until then its calls raise ConfigurationError",
            each.provider_name,
            names,
        )


@module(providers=(), exports=(LLMClientProtocol, EmbeddingClientProtocol, ProviderRegistry))
class LLMModule(Module):
    """The LLM module. Configure it with a client config or a routing config."""

    @classmethod
    def configure(
        cls,
        config: ClientConfig | str | None = None,
        *,
        routing: LLMConfig | None = None,
        registry: ProviderRegistry | None = None,
        middleware: Sequence[object] | None = None,
        budget: Budget | None = None,
    ) -> DynamicModule:
        """A module whose ``LLMClientProtocol`` is a client for ``config`` (a ``ClientConfig``
        or ``"provider/model"``), or, with ``routing``, an ``LLMRouter``; ``middleware``
        (``lexigram.ai.llm.Middleware`` objects, in order) runs around its calls; ``budget``
        (a ``lexigram.ai.llm.Budget``) bounds what its calls may spend."""
        return DynamicModule(
            module=cls,
            providers=(
                LLMProvider(
                    config, routing=routing, registry=registry, middleware=middleware, budget=budget
                ),
            ),
            exports=(LLMClientProtocol, EmbeddingClientProtocol, ProviderRegistry),
        )

    @classmethod
    def stub(
        cls, responses: Sequence[str | Completion] = ("This is a stub response.",)
    ) -> DynamicModule:
        """A module whose client is a deterministic ``StubLLMClient`` (for tests)."""
        return DynamicModule(
            module=cls,
            providers=(LLMProvider(stub=StubLLMClient(responses)),),
            exports=(LLMClientProtocol,),
        )
