"""Budgets: a call whose estimate would overrun is refused before any network call, the
reservation is settled to the real usage, and a budget shared through a real redis-server
holds across two processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram import Application
from lexigram.ai.llm import Budget, ClientConfig, LLMModule, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import LLMBudgetExceededError
from lexigram.ai.llm.pricing import estimate_cost
from lexigram.ai.llm.routing import LLMConfig, LLMRouter, ProviderRoute
from lexigram.contracts.ai import LLMClientProtocol
from lexigram.result import Err

_WORKSPACE = str(Path(__file__).resolve().parents[3])
if _WORKSPACE not in sys.path:
    sys.path.insert(0, _WORKSPACE)

import test_budget_workers as workers  # noqa: E402  (by plain name: spawn imports it)

MODEL = "gpt-4o-mini"


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


def _client(server: OpenAIServer, budget: Budget) -> AbstractLLMClient:
    config = ClientConfig(
        provider="openai",
        model=MODEL,
        api_key="sk-test",
        api_base=server.url + "/v1",
        max_retries=0,
    )
    return create_llm_client(config, budget=budget)


async def test_a_call_that_would_overrun_is_refused_before_any_network_call(
    server: OpenAIServer,
) -> None:
    budget = Budget(max_cost=0.0001, scope="user-1")
    client = _client(server, budget)
    try:
        # 1,000 output tokens of gpt-4o-mini cost $0.0006: over the budget on estimate alone.
        result = await client.complete([{"role": "user", "content": "hi"}], max_tokens=1000)
        assert isinstance(result, Err) and isinstance(result.error, LLMBudgetExceededError)
        assert result.error.code == "budget_exceeded"
        assert result.error.details["scope"] == "user-1"
        assert server.requests == []
        assert (await client.complete([{"role": "user", "content": "hi"}], max_tokens=50)).is_ok()
        assert len(server.requests) == 1
    finally:
        await client.close()


async def test_the_reservation_is_settled_to_the_real_usage(server: OpenAIServer) -> None:
    budget = Budget(max_cost=1.0, max_tokens=10_000)
    client = _client(server, budget)
    try:
        server.script(Reply(text="ok", prompt_tokens=30, completion_tokens=10))
        completion = (
            await client.complete([{"role": "user", "content": "hi"}], max_tokens=500)
        ).unwrap()
        cost, tokens = await budget.spent()
        assert tokens == 40
        expected = estimate_cost(MODEL, prompt_tokens=30, completion_tokens=10).total_cost
        assert completion.cost == pytest.approx(expected)
        assert cost == pytest.approx(expected)
        # A failed call gives its reservation back.
        server.script(Reply(error="server_error"))
        assert not (await client.complete([{"role": "user", "content": "hi"}])).is_ok()
        assert await budget.spent() == (pytest.approx(expected), 40)
    finally:
        await client.close()


def test_a_budget_needs_a_limit_and_positive_numbers() -> None:
    with pytest.raises(ValueError, match="max_cost or max_tokens"):
        Budget()
    with pytest.raises(ValueError, match="max_cost"):
        Budget(max_cost=-1)
    with pytest.raises(ValueError, match="window"):
        Budget(max_tokens=10, window=0)


@pytest.mark.redis
async def test_a_redis_budget_holds_across_two_processes(
    server: OpenAIServer, redis_url: str
) -> None:
    api_base = server.url + "/v1"
    server.script(Reply(text="ok", prompt_tokens=12, completion_tokens=7))
    start_at = time.time() + 4.0
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [
            loop.run_in_executor(
                pool, workers.complete_under_shared_budget, api_base, redis_url, 40, start_at
            )
            for _ in range(2)
        ]
        results = await asyncio.wait_for(asyncio.gather(*futures), 120)
    sent = sum(r["sent"] for r in results)
    refused = sum(r["refused"] for r in results)
    assert sent + refused == 80
    assert sent == len(server.requests)  # a refused call never reached the network
    # Each call really used 19 tokens against a 1,000-token budget, reserving ~101 first:
    # never past the budget, and refused only once one more estimate would not fit.
    assert sent * 19 <= 1000
    assert sent * 19 + 2 * 101 >= 1000
    assert all(r["sent"] > 0 for r in results)  # both processes drew from the same budget
    reader = Budget(max_tokens=1000, scope="team-a", redis_url=redis_url)
    try:
        per_call = estimate_cost(MODEL, prompt_tokens=12, completion_tokens=7).total_cost
        assert await reader.spent() == (pytest.approx(sent * per_call), sent * 19)
    finally:
        await reader.close()


async def test_streams_are_refused_and_settled_like_complete(server: OpenAIServer) -> None:
    budget = Budget(max_tokens=300)
    client = _client(server, budget)
    try:
        refused = await client.stream_chat(
            [{"role": "user", "content": "hi"}], max_tokens=1000
        ).completion()
        assert isinstance(refused, Err) and isinstance(refused.error, LLMBudgetExceededError)
        assert server.requests == []
        server.script(Reply(text="streamed", prompt_tokens=30, completion_tokens=10))
        stream = client.stream_chat([{"role": "user", "content": "hi"}], max_tokens=100)
        assert (await stream.completion()).unwrap().usage.total_tokens == 40
        assert (await budget.spent())[1] == 40
    finally:
        await client.close()


async def test_a_router_shares_its_budget_with_every_route(server: OpenAIServer) -> None:
    budget = Budget(max_tokens=300, scope="team-b")
    route = {"provider": "openai", "base_url": server.url + "/v1", "api_key": "sk-route"}
    config = LLMConfig(
        providers=[
            ProviderRoute(name="first", model=MODEL, **route),
            ProviderRoute(name="second", model="gpt-4o", **route),
        ]
    )
    router = LLMRouter.from_config(config, default=ClientConfig(max_retries=0), budget=budget)
    try:
        refused = await router.complete([{"role": "user", "content": "hi"}], max_tokens=1000)
        # Every route refused before the network: no request reached the server.
        assert isinstance(refused, Err) and isinstance(refused.error, LLMBudgetExceededError)
        assert server.requests == []
        server.script(Reply(text="ok", prompt_tokens=30, completion_tokens=10))
        assert (await router.complete([{"role": "user", "content": "hi"}], max_tokens=50)).is_ok()
        assert (await budget.spent())[1] == 40
    finally:
        await router.close()


async def test_llm_module_gives_its_client_the_budget(server: OpenAIServer) -> None:
    budget = Budget(max_tokens=300)
    config = ClientConfig(
        provider="openai", model=MODEL, api_key="sk-test", api_base=server.url + "/v1"
    )
    async with Application.boot(modules=[LLMModule.configure(config, budget=budget)]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        refused = await llm.complete([{"role": "user", "content": "hi"}], max_tokens=1000)
        assert isinstance(refused, Err) and isinstance(refused.error, LLMBudgetExceededError)
        assert server.requests == []
        assert (await llm.complete([{"role": "user", "content": "hi"}], max_tokens=50)).is_ok()
    assert (await budget.spent())[1] == 19
