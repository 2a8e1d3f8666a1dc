"""A call cancelled while it holds the circuit breaker's half-open probe gives the probe back:
one cancel (a ``wait_for``, a client that went away) never shuts a healthy provider out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient, CircuitOpenError
from lexigram.ai.llm.exceptions import LLMError
from lexigram.resilience import CircuitState

HELLO = [{"role": "user", "content": "Are you there?"}]


class SlowRateLimit:
    """A rate-limit policy (the client's ``rate_limiter=`` plug-in) that holds every call
    until it is opened, like a limiter waiting for capacity."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self._open = asyncio.Event()

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    async def acquire(self, provider: str, model: str, tokens: int) -> LLMError | None:
        self.entered.set()
        await self._open.wait()
        return None

    def update_from_headers(self, provider: str, model: str, headers: Mapping[str, str]) -> None:
        pass


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


async def half_open_client(server: OpenAIServer, limit: SlowRateLimit) -> AbstractLLMClient:
    """A client whose breaker opened on one server error and has passed its recovery time."""
    config = ClientConfig(
        provider="openai",
        model="gpt-test",
        api_key="sk-test",
        api_base=server.url + "/v1",
        max_retries=0,
        breaker_failure_threshold=1,
        breaker_recovery_timeout=0.2,
    )
    client = create_llm_client(config, rate_limiter=limit)
    server.script(Reply(error="server"), Reply(text="healthy again"))
    limit.open()
    assert (await client.complete(HELLO)).is_err()
    assert client.breakers.get("openai", "gpt-test").state is CircuitState.OPEN
    limit.close()
    await asyncio.sleep(0.3)  # past recovery_timeout: the next call is the probe
    return client


async def cancel_while_rate_limited(limit: SlowRateLimit, call: Awaitable[Any]) -> None:
    """Start ``call``, cancel it once it waits in the rate limiter (or when it ended first)."""
    limit.entered.clear()
    task = asyncio.ensure_future(call)
    entered = asyncio.ensure_future(limit.entered.wait())
    await asyncio.wait([task, entered], return_when=asyncio.FIRST_COMPLETED)
    entered.cancel()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_cancelled_completions_give_the_probe_back(server: OpenAIServer) -> None:
    limit = SlowRateLimit()
    client = await half_open_client(server, limit)
    try:
        for _ in range(5):
            await cancel_while_rate_limited(limit, client.complete(HELLO))
        limit.open()
        results = [await client.complete(HELLO, cache=False) for _ in range(3)]
    finally:
        await client.close()
    for result in results:
        assert not isinstance(result.error if result.is_err() else None, CircuitOpenError)
        assert result.unwrap().content == "healthy again"
    assert client.breakers.get("openai", "gpt-test").state is CircuitState.CLOSED


async def test_cancelled_streams_give_the_probe_back(server: OpenAIServer) -> None:
    limit = SlowRateLimit()
    client = await half_open_client(server, limit)
    try:
        for _ in range(5):
            await cancel_while_rate_limited(limit, client.stream_chat(HELLO).completion())
        limit.open()
        streamed = await client.stream_chat(HELLO).completion()
        completed = await client.complete(HELLO)
    finally:
        await client.close()
    assert streamed.unwrap().content == "healthy again"
    assert completed.unwrap().content == "healthy again"
    assert client.breakers.get("openai", "gpt-test").state is CircuitState.CLOSED
