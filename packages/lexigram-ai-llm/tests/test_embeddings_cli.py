"""``lexigram-llm embed``: vectors printed one JSON array per line, or one JSON object."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from harness.embedding_server import EmbeddingServer, vector_for

KEY = "sk-test-embeddings-0123456789"


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmbeddingServer]:
    srv = EmbeddingServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_cli_embed_prints_vectors_and_json(
    server: EmbeddingServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from lexigram.ai.llm.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    base = ["--provider", "openai", "--api-base", f"{server.url}/v1"]
    # In a thread: the command runs its own event loop, the server needs this one.
    assert await asyncio.to_thread(main, ["embed", "hello", "world", *base]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [vector_for("hello"), vector_for("world")]
    argv = ["embed", "hello", *base, "--dimensions", "4", "--format", "json"]
    assert await asyncio.to_thread(main, argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["vectors"] == [vector_for("hello", 4)]
    assert payload["model"] == "text-embedding-3-small" and payload["dimensions"] == 4
    assert payload["usage"] == {"prompt_tokens": 1}
