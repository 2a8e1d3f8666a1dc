"""Routers sharing cooldowns, statistics and route rate limits through a real redis-server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig
from lexigram.ai.llm.routing import LLMConfig, LLMRouter, ProviderRoute, RedisRouterState

_WORKSPACE = str(Path(__file__).resolve().parents[3])
if _WORKSPACE not in sys.path:
    sys.path.insert(0, _WORKSPACE)


pytestmark = pytest.mark.redis

HI = [{"role": "user", "content": "hi"}]
DEFAULT = ClientConfig(provider="openai", model="m", api_key="sk-default")


@pytest.fixture
async def servers() -> AsyncIterator[list[OpenAIServer]]:
    started = [OpenAIServer() for _ in range(2)]
    for server in started:
        await server.start()
    yield started
    for server in started:
        await server.stop()


def shared_config(servers: list[OpenAIServer], url: str, **route: Any) -> LLMConfig:
    return LLMConfig(
        providers=[
            ProviderRoute(
                name=f"p{i}", provider="openai", base_url=s.url + "/v1", api_key="sk-r", **route
            )
            for i, s in enumerate(servers)
        ],
        redis_url=url,
    )


def outcomes(attempts: Any) -> list[tuple[str, str]]:
    return [(a["route"], a["outcome"]) for a in attempts]


async def test_a_cooldown_seen_by_one_router_is_honoured_by_another(
    servers: list[OpenAIServer],
    redis_url: str,
) -> None:
    servers[0].script(Reply(error="rate_limit", headers={"Retry-After": "30"}))
    config = shared_config(servers, redis_url)
    first = LLMRouter.from_config(config, default=DEFAULT)
    second = LLMRouter.from_config(config, default=DEFAULT)  # another process, say
    try:
        assert isinstance(first.state, RedisRouterState)
        assert outcomes((await first.complete(HI)).unwrap().attempts) == [
            ("p0", "error"),
            ("p1", "ok"),
        ]
        answer = (await second.complete(HI)).unwrap()
        assert outcomes(answer.attempts) == [("p0", "skipped"), ("p1", "ok")]
        assert 29.0 < answer.attempts[0]["cooldown"] <= 30.0
        stats = await second.stats()
        assert stats["p0"].failures == 1 and stats["p0"].last_error == "rate_limit_exceeded"
        assert stats["p1"].successes == 2 and stats["p1"].latency_ms is not None
        await first.reset_cooldown("p0")
        servers[0].script(Reply(text="back"))
        assert (await second.complete(HI)).unwrap().content == "back"
    finally:
        await first.close()
        await second.close()
    assert len(servers[0].requests) == 2


async def test_route_rate_limits_are_shared(
    servers: list[OpenAIServer],
    redis_url: str,
) -> None:
    config = shared_config(servers[:1], redis_url, requests_per_minute=1)
    first = LLMRouter.from_config(config, default=DEFAULT)
    second = LLMRouter.from_config(config, default=DEFAULT)
    try:
        assert (await first.complete(HI)).is_ok()
        refused = (await second.complete(HI)).unwrap_err()
    finally:
        await first.close()
        await second.close()
    assert refused.code == "local_rate_limit"
    assert len(servers[0].requests) == 1


async def test_longer_cooldown_is_kept_and_latency_is_averaged(
    redis_url: str,
) -> None:
    state = RedisRouterState(redis_url, prefix="test:router:")
    try:
        await state.cool_down("a", 30, "quota")
        await state.cool_down("a", 1, "rate_limited")  # shorter: ignored
        for latency in (0.100, 0.200):
            await state.record("a", ok=True, latency=latency)
        await state.record("a", ok=False, error="server_error")
        seen = await state.snapshot(["a", "unknown"])
    finally:
        await state.close()
    a = seen["a"]
    assert a.cooldown_reason == "quota" and 29 < a.cooldown_remaining <= 30
    assert (a.requests, a.successes, a.failures) == (3, 2, 1)
    assert a.latency_ms == pytest.approx(100 + 0.3 * (200 - 100))
    assert not seen["unknown"].cooling_down and seen["unknown"].requests == 0
