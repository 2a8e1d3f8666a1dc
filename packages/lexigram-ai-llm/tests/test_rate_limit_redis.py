"""Rate limits shared through a real redis-server, between clients and between processes."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from harness.openai_server import OpenAIServer

from lexigram import Application
from lexigram.ai.llm import ClientConfig, LLMModule
from lexigram.ai.llm.exceptions import LLMRateLimitError
from lexigram.ai.llm.rate_limit import ProviderRateLimiter
from lexigram.contracts.ai import LLMClientProtocol
from lexigram.di import Container, DynamicModule, Module, Provider
from lexigram.resilience import RateLimitBackend, RedisBucketBackend

_WORKSPACE = str(Path(__file__).resolve().parents[3])
if _WORKSPACE not in sys.path:
    sys.path.insert(0, _WORKSPACE)

import test_rate_limit_workers as workers  # noqa: E402  (by plain name: spawn imports it)

pytestmark = pytest.mark.redis


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


async def test_a_60_per_minute_limit_holds_across_two_processes(
    server: OpenAIServer,
    redis_url: str,
) -> None:
    api_base = server.url + "/v1"
    start_at = time.time() + 4.0
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [
            loop.run_in_executor(
                pool, workers.complete_under_shared_limit, api_base, redis_url, 50, start_at
            )
            for _ in range(2)
        ]
        results = await asyncio.wait_for(asyncio.gather(*futures), 120)
    elapsed = time.time() - start_at
    sent = sum(r["sent"] for r in results)
    refused = sum(r["refused"] for r in results)
    assert sent + refused == 100
    assert sent == len(server.requests)  # a refused call never reached the network
    # A full bucket of 60, refilled at one request a second while the test ran.
    assert 60 <= sent <= 60 + math.ceil(elapsed)
    assert all(r["sent"] > 0 for r in results)  # both processes drew from the same bucket


class BucketsProvider(Provider):
    """What a user's module does to share limits: register a ``RateLimitBackend``."""

    def __init__(self, backend: RateLimitBackend) -> None:
        super().__init__()
        self.backend = backend

    async def register(self, container: Container) -> None:
        container.register_instance(RateLimitBackend, self.backend)


class LimitsModule(Module):
    pass


async def test_di_shares_the_limit_through_a_registered_backend(
    server: OpenAIServer,
    redis_url: str,
) -> None:
    config = ClientConfig(
        provider="openai",
        model="gpt-test",
        api_key="sk-test",
        api_base=server.url + "/v1",
        requests_per_minute=2,
        rate_limit_wait=False,
    )
    first = RedisBucketBackend(redis_url)
    second = RedisBucketBackend(redis_url)
    outcomes = []
    for backend in (first, second):  # two applications, one Redis: one budget
        modules = [
            LLMModule.configure(config),
            DynamicModule(module=LimitsModule, providers=(BucketsProvider(backend),)),
        ]
        async with Application.boot(modules=modules) as app:
            llm = await app.container.resolve(LLMClientProtocol)
            assert isinstance(llm.rate_limiter, ProviderRateLimiter)  # type: ignore[attr-defined]
            outcomes += [await llm.complete([{"role": "user", "content": "x"}]) for _ in range(2)]
        await backend.close()
    assert [o.is_ok() for o in outcomes] == [True, True, False, False]
    assert all(isinstance(o.unwrap_err(), LLMRateLimitError) for o in outcomes[2:])
    assert len(server.requests) == 2
