"""Rate limiting: the guide's ``RateLimiter`` and the client's limits before the network."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import LLMRateLimitError
from lexigram.ai.llm.rate_limit import ProviderRateLimiter, RateLimit
from lexigram.result import Err

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


def client_for(server: OpenAIServer, **overrides: Any) -> AbstractLLMClient:
    policies = {k: overrides.pop(k) for k in ("rate_limiter",) if k in overrides}
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-test",
        "api_base": server.url + "/v1",
        "api_key": SecretStr("sk-test"),
        "max_retries": 0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values), **policies)


# -- the guide's RateLimiter ---------------------------------------------------------------


async def test_guide_rate_limiter_how_to() -> None:
    from lexigram.ai.llm import RateLimiter

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    limiter = RateLimiter(max_calls=2, window_seconds=60, sleep=record)
    await limiter.acquire()
    await limiter.acquire()
    assert waits == []
    await limiter.acquire()  # the window is full: waits for the first slot to free up
    assert len(waits) == 1 and 59.0 < waits[0] <= 60.0


def test_rate_limiter_is_the_resilience_one() -> None:
    import lexigram.ai.llm as llm
    from lexigram.resilience import RateLimiter

    assert llm.RateLimiter is RateLimiter


# -- the client's limits -------------------------------------------------------------------


async def test_requests_per_minute_from_config_fails_fast_without_network(
    server: OpenAIServer,
) -> None:
    client = client_for(server, requests_per_minute=2, rate_limit_wait=False)
    try:
        assert isinstance(client.rate_limiter, ProviderRateLimiter)
        results = [await client.complete(HI) for _ in range(3)]
    finally:
        await client.close()
    assert [r.is_ok() for r in results] == [True, True, False]
    refused = results[2].unwrap_err()
    assert isinstance(refused, LLMRateLimitError)
    assert refused.code == "local_rate_limit" and refused.status is None
    assert refused.provider == "openai" and refused.model == "gpt-test"
    assert refused.retry_after is not None and 0 < refused.retry_after <= 30.0
    assert len(server.requests) == 2


async def test_streams_are_refused_before_the_network(server: OpenAIServer) -> None:
    client = client_for(server, requests_per_minute=1, rate_limit_wait=False)
    try:
        assert (await client.stream_chat(HI).text()).is_ok()
        with pytest.raises(LLMRateLimitError):
            async for _ in client.stream_chat(HI):
                pass
    finally:
        await client.close()
    assert len(server.requests) == 1


async def test_waiting_mode_waits_for_tokens_then_calls(server: OpenAIServer) -> None:
    # 6000 tokens a minute is 100 a second; the first call takes the whole bucket.
    fail_fast = client_for(server, tokens_per_minute=6000, rate_limit_wait=False)
    waiting = client_for(server, tokens_per_minute=6000, rate_limit_wait=True)
    try:
        for client in (fail_fast, waiting):
            assert (await client.complete(HI, max_tokens=5999)).is_ok()
        assert isinstance(await fail_fast.complete(HI, max_tokens=40), Err)
        started = time.monotonic()
        assert (await waiting.complete(HI, max_tokens=40)).is_ok()
        waited = time.monotonic() - started
    finally:
        await fail_fast.close()
        await waiting.close()
    assert len(server.requests) == 3
    assert waited >= 0.3  # it waited for about 40 tokens to refill, rather than refusing


async def test_a_wait_longer_than_the_maximum_is_refused(server: OpenAIServer) -> None:
    client = client_for(server, tokens_per_minute=60, rate_limit_wait=True, max_retry_after=1.0)
    try:
        assert (await client.complete(HI, max_tokens=50)).is_ok()
        refused = (await client.complete(HI, max_tokens=50)).unwrap_err()
    finally:
        await client.close()
    assert isinstance(refused, LLMRateLimitError)
    assert refused.retry_after is not None and refused.retry_after > 1.0
    assert len(server.requests) == 1


async def test_prompt_tokens_count_against_tokens_per_minute(server: OpenAIServer) -> None:
    client = client_for(server, tokens_per_minute=1000, rate_limit_wait=False)
    long_prompt = [{"role": "user", "content": "x" * 3000}]  # about 750 tokens
    try:
        assert (await client.complete(long_prompt, max_tokens=10)).is_ok()
        assert isinstance(await client.complete(long_prompt, max_tokens=10), Err)
        assert (await client.complete(HI, max_tokens=10)).is_ok()  # a short one still fits
    finally:
        await client.close()
    assert len(server.requests) == 2


async def test_provider_headers_lower_the_limit(server: OpenAIServer) -> None:
    server.script(
        Reply(
            text="last one",
            headers={
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "20s",
            },
        ),
        Reply(text="should not be reached"),
    )
    client = client_for(server, requests_per_minute=500, rate_limit_wait=False)
    try:
        assert (await client.complete(HI)).unwrap().content == "last one"
        refused = (await client.complete(HI)).unwrap_err()
    finally:
        await client.close()
    assert isinstance(refused, LLMRateLimitError) and refused.code == "local_rate_limit"
    assert len(server.requests) == 1


async def test_limits_are_per_provider_and_model(server: OpenAIServer) -> None:
    limiter = ProviderRateLimiter(
        limits={"openai/gpt-small": RateLimit(requests_per_minute=1)}, wait=False
    )
    client = client_for(server, rate_limiter=limiter)
    try:
        assert (await client.complete(HI, model="gpt-small")).is_ok()
        assert isinstance(await client.complete(HI, model="gpt-small"), Err)
        for _ in range(3):
            assert (await client.complete(HI, model="gpt-large")).is_ok()
    finally:
        await client.close()
    assert [r.json["model"] for r in server.requests] == ["gpt-small"] + ["gpt-large"] * 3


async def test_provider_wide_limit_and_default() -> None:
    limiter = ProviderRateLimiter(
        RateLimit(requests_per_minute=100),
        limits={"groq": RateLimit(tokens_per_minute=10)},
    )
    assert limiter.limit_for("groq", "llama") == RateLimit(tokens_per_minute=10)
    assert limiter.limit_for("openai", "gpt") == RateLimit(requests_per_minute=100)
    assert ProviderRateLimiter().limiter_for("openai", "gpt") is None
    assert await ProviderRateLimiter().acquire("openai", "gpt", 10**9) is None


async def test_concurrent_callers_share_one_budget(server: OpenAIServer) -> None:
    client = client_for(server, requests_per_minute=5, rate_limit_wait=False)
    try:
        results = await asyncio.gather(*(client.complete(HI) for _ in range(12)))
    finally:
        await client.close()
    assert sum(r.is_ok() for r in results) == 5
    assert len(server.requests) == 5


def test_no_limit_configured_means_no_limiter() -> None:
    client = create_llm_client(ClientConfig(provider="openai", model="m", api_key="sk"))
    assert client.rate_limiter is None
