"""A router embeds through its routes: a failed route falls over to another with vectors of the
same size, never to one whose vectors have another length."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from harness.embedding_server import EmbeddingServer, vector_for

from lexigram.ai.llm import ClientConfig
from lexigram.ai.llm.routing import LLMConfig
from lexigram.ai.llm.routing.config import ProviderRoute
from lexigram.ai.llm.routing.router import LLMRouter
from lexigram.result import Err

KEY = "sk-route-key-0123456789"
DEFAULT = ClientConfig(
    provider="openai", api_key=KEY, max_retries=0, retry_base_delay=0.001, retry_max_delay=0.002
)
SERVER_ERROR = {"error": {"message": "boom", "type": "server_error"}}


@pytest_asyncio.fixture
async def servers() -> AsyncIterator[list[EmbeddingServer]]:
    started = [EmbeddingServer(), EmbeddingServer()]
    for srv in started:
        await srv.start()
    try:
        yield started
    finally:
        for srv in started:
            await srv.stop()


def router(*routes: ProviderRoute) -> LLMRouter:
    return LLMRouter.from_config(LLMConfig(providers=list(routes)), default=DEFAULT)


async def test_a_failed_route_falls_over_to_one_of_the_same_dimension(
    servers: list[EmbeddingServer],
) -> None:
    first, second = servers
    first.fail_once("hello", 500, SERVER_ERROR)
    llm = router(
        ProviderRoute(name="a", provider="openai", base_url=f"{first.url}/v1", api_key=KEY),
        ProviderRoute(
            name="b",
            provider="openai_compatible",
            base_url=f"{second.url}/v1",
            api_key=KEY,
            priority=1,
        ),
    )
    async with llm:
        vectors = (await llm.embed(["hello"], model="text-embedding-3-small")).unwrap()
    assert vectors[0] == vector_for("hello")
    assert vectors.provider == "openai_compatible"
    assert len(first.requests) == 1 and len(second.requests) == 1


async def test_no_fallover_to_a_route_of_another_dimension(
    servers: list[EmbeddingServer],
) -> None:
    first, second = servers
    first.fail_once("hello", 500, SERVER_ERROR)
    llm = router(
        ProviderRoute(name="a", provider="openai", base_url=f"{first.url}/v1", api_key=KEY),
        # embed-v4.0 answers 1,536 floats too, embed-english-v3.0 1,024: not a substitute.
        ProviderRoute(
            name="c",
            provider="cohere",
            base_url=second.url,
            api_key=KEY,
            priority=1,
            extra={"embedding_model": "embed-english-v3.0"},
        ),
    )
    async with llm:
        result = await llm.embed(["hello"])
    assert isinstance(result, Err)
    assert second.requests == []
