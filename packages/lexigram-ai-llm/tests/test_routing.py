"""``LLMRouter`` over several OpenAI loopback servers: cascades, cooldowns, races, hedges,
cost and latency ordering, streams, caching and DI."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram import Application
from lexigram.ai.llm import ClientConfig, LLMCache, LLMModule, StubLLMClient
from lexigram.ai.llm.exceptions import (
    InvalidRequestError,
    LLMContentFilterError,
    LLMError,
    LLMRateLimitError,
    ProviderError,
)
from lexigram.ai.llm.routing import (
    CostOptimizedStrategy,
    HedgedStrategy,
    LatencyOptimizedStrategy,
    LLMConfig,
    LLMRouter,
    MemoryRouterState,
    NoRouteAvailableError,
    ParallelRaceStrategy,
    ProviderRoute,
    Route,
    SequentialCascadeStrategy,
)
from lexigram.ai.llm.types import ChatMessage, ChatRequest
from lexigram.contracts.ai import LLMClientProtocol
from lexigram.contracts.health import HealthStatus
from lexigram.result import Err, Ok

HI = [{"role": "user", "content": "hi"}]
ROUTE_KEY = "sk-route-SECRET-123456789"


class CountingServer(OpenAIServer):
    """Tracks each request's transport, to tell which connections are still open."""

    def __init__(self) -> None:
        super().__init__()
        self.transports: list[Any] = []

    async def handle(self, request: Any) -> Any:
        self.transports.append(request.transport)
        return await super().handle(request)

    @property
    def open_connections(self) -> int:
        return sum(1 for t in self.transports if t is not None and not t.is_closing())

    async def wait_closed(self) -> int:
        """Open connections once the client had a moment to close its side (bounded)."""
        for _ in range(200):
            if self.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        return self.open_connections


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def servers() -> AsyncIterator[list[CountingServer]]:
    started = [CountingServer() for _ in range(3)]
    for server in started:
        await server.start()
    yield started
    for server in started:
        await server.stop()


def routes(servers: list[CountingServer], **overrides: Any) -> list[ProviderRoute]:
    return [
        ProviderRoute(
            name=f"p{i}",
            provider="openai",
            model=f"model-{i}",
            base_url=server.url + "/v1",
            api_key=ROUTE_KEY,
            **overrides,
        )
        for i, server in enumerate(servers)
    ]


DEFAULT = ClientConfig(
    provider="openai",
    model="default-model",
    api_key="sk-default",
    retry_base_delay=0.001,
    retry_max_delay=0.002,
)


def router_for(config: LLMConfig, **kwargs: Any) -> LLMRouter:
    return LLMRouter.from_config(config, default=DEFAULT, **kwargs)


def outcomes(attempts: Any) -> list[tuple[str, str]]:
    return [(a["route"], a["outcome"]) for a in attempts]


# -- sequential cascade --------------------------------------------------------------------


async def test_cascade_429_then_503_then_ok_and_cooldown(servers: list[CountingServer]) -> None:
    first, second, third = servers
    first.script(
        Reply(error="rate_limit", headers={"Retry-After": "1"}), Reply(text="first is back")
    )
    second.script(Reply(error="overloaded"))
    third.script(Reply(text="third answers"))
    clock = Clock()
    router = router_for(LLMConfig(providers=routes(servers)), state=MemoryRouterState(clock))
    try:
        answer = (await router.complete(HI)).unwrap()
        assert answer.content == "third answers"
        assert answer.provider == "openai" and answer.model == "model-2"
        assert outcomes(answer.attempts) == [("p0", "error"), ("p1", "error"), ("p2", "ok")]
        limited, failed, ok = answer.attempts
        assert limited["status"] == 429 and limited["error_type"] == "LLMRateLimitError"
        assert limited["retry_after"] == 1.0 and limited["cooldown"] == 1.0
        assert limited["reason"] == "rate_limited"
        assert failed["status"] == 503 and failed["cooldown"] is None
        assert ok["latency_ms"] is not None

        # While the first rests it is skipped, not called.
        again = (await router.complete(HI)).unwrap()
        assert outcomes(again.attempts) == [("p0", "skipped"), ("p1", "error"), ("p2", "ok")]
        assert again.attempts[0]["reason"] == "rate_limited"
        assert len(first.requests) == 1

        clock.now += 1.01  # the Retry-After has passed
        back = (await router.complete(HI)).unwrap()
        assert back.content == "first is back"
        assert outcomes(back.attempts) == [("p0", "ok")]
        assert len(first.requests) == 2
        assert [len(s.requests) for s in servers] == [2, 2, 2]
    finally:
        await router.close()


async def test_each_route_gets_its_model_and_key(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(error="server"))
    router = router_for(LLMConfig(providers=routes(servers[:2])))
    try:
        assert (await router.complete(HI)).is_ok()
    finally:
        await router.close()
    sent = [s.requests[0] for s in servers[:2]]
    assert [r.json["model"] for r in sent] == ["model-0", "model-1"]
    assert all(r.headers["authorization"] == f"Bearer {ROUTE_KEY}" for r in sent)


async def test_route_without_model_or_key_inherits_from_the_default(
    servers: list[CountingServer],
) -> None:
    route = ProviderRoute(name="openai", base_url=servers[0].url + "/v1")
    router = router_for(LLMConfig(providers=[route]))
    try:
        assert (await router.complete(HI)).is_ok()
        assert (await router.complete(HI, model="chosen-by-caller")).is_ok()
    finally:
        await router.close()
    assert [r.json["model"] for r in servers[0].requests] == ["default-model", "chosen-by-caller"]
    assert servers[0].requests[0].headers["authorization"] == "Bearer sk-default"


@pytest.mark.parametrize(
    ("kind", "error_type", "cascade_on"),
    [
        ("content_filter", LLMContentFilterError, "content_filter"),
        ("invalid_request", InvalidRequestError, "invalid_request"),
        ("context_length", InvalidRequestError, "context_length"),
    ],
)
async def test_request_errors_do_not_cascade_unless_configured(
    servers: list[CountingServer], kind: str, error_type: type[Exception], cascade_on: str
) -> None:
    servers[0].script(Reply(error=kind))
    servers[1].script(Reply(text="second"))
    strict = router_for(LLMConfig(providers=routes(servers[:2])))
    lenient = router_for(LLMConfig(providers=routes(servers[:2]), cascade_on={cascade_on}))
    try:
        refused = (await strict.complete(HI)).unwrap_err()
        assert isinstance(refused, error_type)
        assert len(servers[1].requests) == 0
        assert outcomes(refused.details["attempts"]) == [("p0", "error")]
        assert (await lenient.complete(HI)).unwrap().content == "second"
    finally:
        await strict.close()
        await lenient.close()


async def test_quota_rests_the_route_until_reset(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(error="quota"))
    clock = Clock()
    router = router_for(LLMConfig(providers=routes(servers[:2])), state=MemoryRouterState(clock))
    try:
        answer = (await router.complete(HI)).unwrap()
        assert answer.attempts[0]["reason"] == "quota"
        assert answer.attempts[0]["cooldown"] == 3600.0
        clock.now += 3000
        assert outcomes((await router.complete(HI)).unwrap().attempts)[0] == ("p0", "skipped")
        stats = await router.stats()
        assert stats["p0"].cooling_down and stats["p0"].cooldown_reason == "quota"
        await router.reset_cooldown("p0")
        assert not (await router.stats())["p0"].cooling_down
    finally:
        await router.close()
    assert len(servers[0].requests) == 1


async def test_rejected_key_rests_the_route(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(error="auth"))
    router = router_for(LLMConfig(providers=routes(servers[:2])))
    try:
        answer = (await router.complete(HI)).unwrap()
    finally:
        await router.close()
    assert answer.attempts[0]["reason"] == "authentication"
    assert answer.attempts[0]["status"] == 401


async def test_when_every_route_rests_nothing_is_called(servers: list[CountingServer]) -> None:
    for server, wait in zip(servers[:2], ("20", "5"), strict=True):
        server.script(Reply(error="rate_limit", headers={"Retry-After": wait}))
    router = router_for(LLMConfig(providers=routes(servers[:2])))
    try:
        failed = (await router.complete(HI)).unwrap_err()
        assert isinstance(failed, LLMRateLimitError)  # the last provider's own error
        assert outcomes(failed.details["attempts"]) == [("p0", "error"), ("p1", "error")]
        resting = (await router.complete(HI)).unwrap_err()
    finally:
        await router.close()
    assert isinstance(resting, NoRouteAvailableError)
    assert resting.retryable and resting.retry_after is not None
    assert 4.0 < resting.retry_after <= 5.0  # the soonest route back
    assert [len(s.requests) for s in servers[:2]] == [1, 1]


async def test_failure_cooldown_is_configurable(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(error="server"))
    router = router_for(LLMConfig(providers=routes(servers[:2]), cooldowns={"failure": 10}))
    try:
        await router.complete(HI)
        again = (await router.complete(HI)).unwrap()
    finally:
        await router.close()
    assert again.attempts[0]["outcome"] == "skipped"
    assert again.attempts[0]["reason"] == "failure"


async def test_retries_per_provider_before_moving_on(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(error="overloaded"), Reply(text="second try"))
    router = router_for(LLMConfig(providers=routes(servers[:2]), retries_per_provider=1))
    try:
        assert (await router.complete(HI)).unwrap().content == "second try"
    finally:
        await router.close()
    assert [len(s.requests) for s in servers[:2]] == [2, 0]


async def test_priority_decides_and_disabled_routes_are_never_used(
    servers: list[CountingServer],
) -> None:
    first, second, third = routes(servers)
    config = LLMConfig(
        providers=[
            first.model_copy(update={"priority": 2}),
            second.model_copy(update={"enabled": False}),
            third.model_copy(update={"priority": 1}),
        ]
    )
    router = router_for(config)
    try:
        answer = (await router.complete(HI)).unwrap()
    finally:
        await router.close()
    assert outcomes(answer.attempts) == [("p2", "ok")]
    assert [r.name for r in router.routes] == ["p0", "p2"]


def test_unequal_weights_spread_the_lead_in_proportion() -> None:
    def route(name: str, weight: float) -> Route:
        return Route(name, StubLLMClient(), weight=weight)

    strategy = SequentialCascadeStrategy(rng=random.Random(7))
    candidates = [route("light", 1.0), route("heavy", 9.0), route("later", 1.0)]
    candidates[2].priority = 1
    request = ChatRequest(messages=(ChatMessage.user("x"),), model="m")
    leads = [strategy.order(candidates, request, {})[0].name for _ in range(1000)]
    assert 850 <= leads.count("heavy") <= 950
    assert "later" not in leads  # a lower priority never leads
    equal = [route("a", 1.0), route("b", 1.0)]
    assert {strategy.order(equal, request, {})[0].name for _ in range(50)} == {"a"}


async def test_a_route_at_its_own_rate_limit_is_passed_over(
    servers: list[CountingServer],
) -> None:
    first, second, _ = routes(servers)
    config = LLMConfig(providers=[first.model_copy(update={"requests_per_minute": 1}), second])
    router = router_for(config)
    try:
        assert outcomes((await router.complete(HI)).unwrap().attempts) == [("p0", "ok")]
        passed = (await router.complete(HI)).unwrap()
    finally:
        await router.close()
    assert outcomes(passed.attempts) == [("p0", "error"), ("p1", "ok")]
    assert passed.attempts[0]["error"] == "local_rate_limit"
    assert passed.attempts[0]["reason"] == "rate_limited"
    assert [len(s.requests) for s in servers[:2]] == [1, 1]


# -- race and hedge ------------------------------------------------------------------------


async def test_race_returns_the_fastest_and_closes_the_others(
    servers: list[CountingServer],
) -> None:
    servers[0].script(Reply(text="slow", delay=3.0))
    servers[1].script(Reply(text="fast", delay=0.05))
    servers[2].script(Reply(text="slower", delay=3.0))
    router = router_for(LLMConfig(providers=routes(servers)), strategy=ParallelRaceStrategy())
    try:
        answer = (await router.complete(HI)).unwrap()
        assert answer.content == "fast"
        assert sorted(outcomes(answer.attempts)) == [
            ("p0", "cancelled"),
            ("p1", "ok"),
            ("p2", "cancelled"),
        ]
        assert [len(s.requests) for s in servers] == [1, 1, 1]
        assert await servers[0].wait_closed() == 0
        assert await servers[2].wait_closed() == 0
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in leftover if "complete_request" in repr(t.get_coro())]
    finally:
        await router.close()


async def test_race_survives_a_failing_racer(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(error="server"))
    servers[1].script(Reply(text="steady", delay=0.1))
    router = router_for(
        LLMConfig(providers=routes(servers[:2]), strategy="parallel")
    )  # by name, from config
    try:
        answer = (await router.complete(HI)).unwrap()
    finally:
        await router.close()
    assert answer.content == "steady"
    assert sorted(outcomes(answer.attempts)) == [("p0", "error"), ("p1", "ok")]


async def test_stream_race_keeps_the_first_to_speak_and_closes_the_others(
    servers: list[CountingServer],
) -> None:
    servers[0].script(Reply(text="slow stream", delay=3.0))
    servers[1].script(Reply(text="the quick stream", chunk_chars=4))
    servers[2].script(Reply(text="slow too", chunk_chars=2, chunk_delay=1.0, delay=0.5))
    router = router_for(LLMConfig(providers=routes(servers)), strategy=ParallelRaceStrategy())
    try:
        stream = router.stream_chat(HI)
        completion = (await stream.completion()).unwrap()
        assert completion.content == "the quick stream"
        assert completion.model == "model-1"
        assert ("p1", "ok") in outcomes(completion.attempts)
        assert await servers[0].wait_closed() == 0
        assert await servers[2].wait_closed() == 0
        assert servers[2].open_streams == 0
    finally:
        await router.close()


async def test_hedge_sends_a_second_request_only_after_the_delay(
    servers: list[CountingServer],
) -> None:
    servers[0].script(Reply(text="prompt answer"), Reply(text="late answer", delay=3.0))
    servers[1].script(Reply(text="hedged answer"))
    router = router_for(
        LLMConfig(providers=routes(servers[:2])), strategy=HedgedStrategy(delay=0.3)
    )
    try:
        quick = (await router.complete(HI)).unwrap()
        assert quick.content == "prompt answer"
        assert len(servers[1].requests) == 0  # no second request when the first was quick
        hedged = (await router.complete(HI)).unwrap()
        assert hedged.content == "hedged answer"
        assert sorted(outcomes(hedged.attempts)) == [("p0", "cancelled"), ("p1", "ok")]
        assert await servers[0].wait_closed() == 0
    finally:
        await router.close()


async def test_hedge_moves_on_at_once_after_a_failure(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(error="overloaded"))
    router = router_for(
        LLMConfig(providers=routes(servers[:2])), strategy=HedgedStrategy(delay=30.0)
    )
    try:
        answer = await asyncio.wait_for(router.complete(HI), 10)
    finally:
        await router.close()
    assert outcomes(answer.unwrap().attempts) == [("p0", "error"), ("p1", "ok")]


# -- streams -------------------------------------------------------------------------------


async def test_stream_falls_back_before_the_first_chunk(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(error="overloaded"))
    servers[1].script(Reply(text="streamed by the second", chunk_chars=5))
    router = router_for(LLMConfig(providers=routes(servers[:2])))
    try:
        stream = router.stream_chat(HI)
        text = "".join([chunk.delta async for chunk in stream])
        assert text == "streamed by the second"
        assert stream.provider == "openai" and stream.model == "model-1"
        assert outcomes(stream.attempts) == [("p0", "error"), ("p1", "ok")]
        folded = (await router.stream_chat(HI).completion()).unwrap()
        assert folded.content == text
    finally:
        await router.close()


async def test_routed_stream_folds_with_the_same_cost_as_complete(
    servers: list[CountingServer],
) -> None:
    # A priced model: the route's client computes the cost from the pricing table.
    priced = ProviderRoute(
        name="priced",
        provider="openai",
        model="gpt-4o",
        base_url=servers[0].url + "/v1",
        api_key=ROUTE_KEY,
    )
    servers[0].script(Reply(text="same answer"), Reply(text="same answer", chunk_chars=4))
    router = router_for(LLMConfig(providers=[priced]))
    try:
        whole = (await router.complete(HI)).unwrap()
        folded = (await router.stream_chat(HI).completion()).unwrap()
        assert whole.cost is not None
        assert folded.cost == whole.cost
        assert folded.content == whole.content
    finally:
        await router.close()


async def test_stream_failure_after_the_first_chunk_is_not_retried_elsewhere(
    servers: list[CountingServer],
) -> None:
    servers[0].script(Reply(text="partial answer that breaks", chunk_chars=4, stream_error_after=3))
    router = router_for(LLMConfig(providers=routes(servers[:2])))
    seen: list[str] = []
    try:
        with pytest.raises(LLMError):  # raised to the caller, not answered by another route
            async for chunk in router.stream_chat(HI):
                seen.append(chunk.delta)
        stats = await router.stats()
    finally:
        await router.close()
    assert "".join(seen).startswith("part")
    assert len(servers[1].requests) == 0
    assert stats["p0"].failures == 1


async def test_every_stream_route_failing_raises_the_last_error(
    servers: list[CountingServer],
) -> None:
    servers[0].script(Reply(error="overloaded"))
    servers[1].script(Reply(error="server"))
    router = router_for(LLMConfig(providers=routes(servers[:2])))
    try:
        result = await router.stream_chat(HI).completion()
    finally:
        await router.close()
    assert isinstance(result, Err) and isinstance(result.error, ProviderError)
    assert result.error.status == 500
    assert outcomes(result.error.details["attempts"]) == [("p0", "error"), ("p1", "error")]


# -- cost and latency ----------------------------------------------------------------------


async def test_cost_strategy_prefers_the_cheapest_from_the_pricing_table(
    servers: list[CountingServer],
) -> None:
    first, second, third = routes(servers)
    config = LLMConfig(
        providers=[
            first.model_copy(update={"model": "gpt-4o"}),
            second.model_copy(update={"model": "unpriced-model-xyz"}),
            third.model_copy(update={"model": "gpt-4o-mini"}),
        ],
        strategy="cost",
    )
    router = router_for(config)
    try:
        assert isinstance(router.strategy, CostOptimizedStrategy)
        servers[2].script(Reply(error="server"))
        answer = (await router.complete(HI)).unwrap()
    finally:
        await router.close()
    # gpt-4o-mini is cheapest, then gpt-4o; the unpriced route comes last.
    assert outcomes(answer.attempts) == [("p2", "error"), ("p0", "ok")]
    assert len(servers[1].requests) == 0


async def test_route_prices_override_the_table(servers: list[CountingServer]) -> None:
    first, second, _ = routes(servers)
    config = LLMConfig(
        providers=[
            first.model_copy(
                update={"model": "gpt-4o-mini", "input_per_mtok": 9.0, "output_per_mtok": 9.0}
            ),
            second.model_copy(
                update={"model": "gpt-4o", "input_per_mtok": 0.01, "output_per_mtok": 0.01}
            ),
        ],
        strategy="cost",
    )
    router = router_for(config)
    try:
        answer = (await router.complete(HI)).unwrap()
    finally:
        await router.close()
    assert outcomes(answer.attempts) == [("p1", "ok")]


async def test_latency_strategy_learns_from_live_calls(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(text="slow", delay=0.25))
    servers[1].script(Reply(text="fast"))
    router = router_for(
        LLMConfig(providers=routes(servers[:2])), strategy=LatencyOptimizedStrategy()
    )
    try:
        answers = [(await router.complete(HI)).unwrap().content for _ in range(5)]
        stats = await router.stats()
    finally:
        await router.close()
    # Each unmeasured route is tried once (in priority order), then the faster one wins.
    assert answers == ["slow", "fast", "fast", "fast", "fast"]
    assert [len(s.requests) for s in servers[:2]] == [1, 4]
    assert stats["p0"].latency_ms is not None and stats["p1"].latency_ms is not None
    assert stats["p0"].latency_ms > stats["p1"].latency_ms


# -- the router as a client ----------------------------------------------------------------


async def test_router_is_an_llm_client_in_the_container(servers: list[CountingServer]) -> None:
    servers[0].script(Reply(error="overloaded"))
    module = LLMModule.configure(DEFAULT, routing=LLMConfig(providers=routes(servers[:2])))
    async with Application.boot(modules=[module]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        assert isinstance(llm, LLMRouter)
        result = await llm.complete(HI)
        assert isinstance(result, Ok) and result.value.attempts[-1]["route"] == "p1"
        health = await app.health_check()
        assert health.status in (HealthStatus.HEALTHY, HealthStatus.DEGRADED)
        transports = [route.client._transport for route in llm.routes]  # type: ignore[attr-defined]
    # Shutdown closed every route's connections.
    assert all(t is None or t.open_connections() == 0 for t in transports)


async def test_router_cache_keeps_the_attempts_and_replays_streams(
    servers: list[CountingServer],
) -> None:
    servers[0].script(Reply(error="overloaded"))
    servers[1].script(Reply(text="cached route answer"))
    router = router_for(LLMConfig(providers=routes(servers[:2])), cache=LLMCache())
    try:
        first = (await router.complete(HI)).unwrap()
        second = (await router.complete(HI)).unwrap()
        stream = router.stream_chat(HI)
        streamed = (await stream.completion()).unwrap()
    finally:
        await router.close()
    assert second.cached and second.content == first.content == "cached route answer"
    assert second.attempts == first.attempts
    assert streamed.content == first.content and streamed.attempts == first.attempts
    assert [len(s.requests) for s in servers[:2]] == [1, 1]


async def test_health_is_degraded_when_a_route_is_down(servers: list[CountingServer]) -> None:
    servers[1].script(Reply(error="server"))
    router = router_for(LLMConfig(providers=routes(servers[:2])))
    try:
        health = await router.health_check(timeout=5)
    finally:
        await router.close()
    assert health.status is HealthStatus.DEGRADED
    assert health.details["p0"].is_healthy and not health.details["p1"].is_healthy


# -- configuration -------------------------------------------------------------------------


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEX_AI_LLM_ROUTING__STRATEGY", "hedged")
    monkeypatch.setenv("LEX_AI_LLM_ROUTING__HEDGE_DELAY", "0.5")
    monkeypatch.setenv(
        "LEX_AI_LLM_ROUTING__PROVIDERS",
        '[{"name": "openai", "model": "gpt-4o-mini"}, "anthropic/claude-3-5-haiku-latest"]',
    )
    config = LLMConfig()
    assert config.strategy == "hedged" and config.hedge_delay == 0.5
    assert [(r.name, r.provider_name, r.model) for r in config.providers] == [
        ("openai", "openai", "gpt-4o-mini"),
        ("anthropic/claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-latest"),
    ]


def test_config_rejects_duplicate_names_and_bad_urls() -> None:
    from lexigram.config import ConfigError

    with pytest.raises(ConfigError, match="unique name"):
        LLMConfig(providers=[ProviderRoute(name="openai"), {"name": "openai"}])
    with pytest.raises(ValueError, match="http"):
        ProviderRoute(name="x", base_url="ftp://nope")


def test_reprs_hide_secrets() -> None:
    route = ProviderRoute(name="openai", api_key=ROUTE_KEY)
    config = LLMConfig(providers=[route], redis_url="redis://:hunter2@localhost:6379/0")
    assert ROUTE_KEY not in repr(route) and ROUTE_KEY not in str(config)
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.model_dump())


def test_unknown_route_provider_raises_at_build() -> None:
    from lexigram.ai.llm.exceptions import UnknownProviderError

    with pytest.raises(UnknownProviderError, match="no-such-provider"):
        router_for(LLMConfig(providers=[ProviderRoute(name="no-such-provider")]))
