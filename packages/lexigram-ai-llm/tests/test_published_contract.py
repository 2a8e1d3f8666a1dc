"""The published contract: what the original library's documentation promises its users, who
bring that code along. Each test goes through the public API as the documentation writes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import (
    ClientConfig,
    create_llm_client,
)

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


# -- counters, chunks and costs ----------------------------------------------------------------


async def test_stream_chunk_content_is_the_text_delta(server: OpenAIServer) -> None:
    server.script(Reply(text="Hello from the loopback server.", chunk_chars=4))
    client = create_llm_client(
        ClientConfig(
            provider="openai", model="gpt-4o", api_key="sk-test", api_base=server.url + "/v1"
        )
    )
    chunks = [chunk async for chunk in client.stream_chat(HELLO)]
    await client.close()
    assert all(chunk.content == chunk.delta for chunk in chunks)
    assert "".join(chunk.content for chunk in chunks) == "Hello from the loopback server."
