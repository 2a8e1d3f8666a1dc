"""``LLMModelManager``: local GGUF models (the real bundled model) and an Ollama server's
models over its HTTP API (a loopback server speaking ``/api/tags``, ``/api/ps``,
``/api/pull`` and ``/api/delete``)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from harness.ollama_admin_server import LibraryModel, OllamaAdminServer

from lexigram.ai.llm import ClientConfig, LLMModelManager
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    LLMModelNotFoundError,
    ProviderConnectionError,
)
from lexigram.ai.llm.model_manager import (
    ModelPullError,
    PullProgress,
    ollama_url_from_env,
)
from lexigram.ai.llm.providers.local import (
    DEFAULT_MODEL,
    LocalLLMClient,
    LocalModelPool,
    bundled_model_path,
)

SMOL = LibraryModel(
    "smollm2:135m",
    [("sha256:" + "a" * 64, 98_362_432), ("sha256:" + "b" * 64, 1_024)],
)


@pytest_asyncio.fixture
async def ollama() -> AsyncIterator[OllamaAdminServer]:
    server = OllamaAdminServer(library={SMOL.name: SMOL})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def manager(ollama: OllamaAdminServer) -> AsyncIterator[LLMModelManager]:
    async with LLMModelManager(ollama_url=ollama.url, pool=LocalModelPool()) as manager:
        yield manager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- Ollama --------------------------------------------------------------------------------


async def test_pull_streams_progress_then_lists_the_model(
    ollama: OllamaAdminServer, manager: LLMModelManager
) -> None:
    assert await manager.list_ollama() == []
    seen: list[PullProgress] = []
    final = await manager.pull("smollm2:135m", on_progress=seen.append)
    assert final.done and final.status == "success"
    assert seen[0].status == "pulling manifest"
    layer = [p for p in seen if p.digest == SMOL.layers[0][0]]
    assert [p.completed for p in layer] == [98_362_432 * i // 4 for i in range(1, 5)]
    assert layer[-1].fraction == 1.0 and layer[0].fraction == 0.25
    assert [p.status for p in seen[-3:]] == [
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ]
    assert ollama.requests[-1].body == {"model": "smollm2:135m", "insecure": False, "stream": True}
    (listed,) = await manager.list_ollama()
    assert (listed.name, listed.size, listed.family, listed.quantization_level) == (
        "smollm2:135m",
        SMOL.size,
        "llama",
        "Q4_1",
    )


async def test_pull_stream_yields_each_line_as_it_arrives(
    ollama: OllamaAdminServer, manager: LLMModelManager
) -> None:
    ollama.line_delay = 0.05
    statuses = []
    async for progress in manager.pull_stream("smollm2:135m"):
        statuses.append(progress.status)
        if len(statuses) == 2:
            # The pull is still going on the server while the caller sees its first lines.
            assert "smollm2:135m" not in ollama.pulled
    assert statuses[-1] == "success"
    assert "smollm2:135m" in ollama.pulled


async def test_pull_of_an_unknown_model_is_a_pull_error(manager: LLMModelManager) -> None:
    with pytest.raises(ModelPullError) as caught:
        await manager.pull("no-such-model")
    assert caught.value.provider == "ollama"
    assert caught.value.provider_message == "pull model manifest: file does not exist"


async def test_an_error_line_mid_pull_raises(
    ollama: OllamaAdminServer, manager: LLMModelManager
) -> None:
    ollama.library["flaky"] = LibraryModel("flaky", SMOL.layers, error_after=3)
    seen: list[PullProgress] = []
    with pytest.raises(ModelPullError, match="could not pull"):
        await manager.pull("flaky", on_progress=seen.append)
    assert len(seen) == 3
    assert "flaky" not in ollama.pulled


async def test_a_cut_pull_is_never_taken_for_success(
    ollama: OllamaAdminServer, manager: LLMModelManager
) -> None:
    ollama.library["cut"] = LibraryModel("cut", SMOL.layers, cut_after=4)
    with pytest.raises((ModelPullError, ProviderConnectionError)):
        await manager.pull("cut")


async def test_running_models_come_from_api_ps(
    ollama: OllamaAdminServer, manager: LLMModelManager
) -> None:
    await manager.pull("smollm2:135m")
    assert await manager.running() == []
    ollama.running.add("smollm2:135m")
    (running,) = await manager.running()
    assert running.name == "smollm2:135m"
    assert running.size == SMOL.size
    assert running.expires_at == "2024-06-04T14:38:31.83753-07:00"


async def test_delete_removes_the_model_and_404_is_typed(
    ollama: OllamaAdminServer, manager: LLMModelManager
) -> None:
    await manager.pull("smollm2:135m")
    await manager.delete("smollm2:135m")
    assert ollama.requests[-1].body == {"model": "smollm2:135m"}
    assert await manager.list_ollama() == []
    with pytest.raises(LLMModelNotFoundError) as caught:
        await manager.delete("smollm2:135m")
    assert caught.value.status == 404
    assert caught.value.provider_message == "model 'smollm2:135m' not found"
    assert caught.value.retryable is False


async def test_an_empty_pull_name_is_an_invalid_request(manager: LLMModelManager) -> None:
    with pytest.raises(InvalidRequestError):
        await manager.pull("")


async def test_an_unreachable_ollama_is_a_connection_error() -> None:
    async with LLMModelManager(ollama_url=f"http://127.0.0.1:{free_port()}") as manager:
        with pytest.raises(ProviderConnectionError, match="Could not reach Ollama"):
            await manager.list_ollama()
        with pytest.raises(ProviderConnectionError):
            await manager.pull("smollm2:135m")


def test_ollama_host_is_read_like_ollama_reads_it() -> None:
    assert ollama_url_from_env({}) == "http://localhost:11434"
    assert ollama_url_from_env({"OLLAMA_HOST": "127.0.0.1:1234"}) == "http://127.0.0.1:1234"
    assert ollama_url_from_env({"OLLAMA_HOST": "https://ollama.example/"}) == (
        "https://ollama.example"
    )


# -- local models --------------------------------------------------------------------------


@pytest.mark.slow
async def test_list_load_and_unload_local_models(tmp_path: Path) -> None:
    (tmp_path / "tiny.gguf").symlink_to(bundled_model_path())
    pool = LocalModelPool()
    async with LLMModelManager(models_dir=tmp_path, pool=pool, idle_timeout=None) as manager:
        listed = {info.name: info for info in manager.list_local()}
        assert listed[DEFAULT_MODEL].bundled and not listed[DEFAULT_MODEL].loaded
        assert listed[DEFAULT_MODEL].size_bytes == bundled_model_path().stat().st_size
        # ``tiny.gguf`` is the same file: listed once, as the bundled model.
        assert set(listed) == {DEFAULT_MODEL}

        info = await manager.load(n_ctx=512)
        assert info.loaded and info.n_ctx == 512
        assert [m.name for m in manager.loaded()] == [DEFAULT_MODEL]
        # A client with the same load options uses the model the manager loaded.
        client = LocalLLMClient(
            ClientConfig(provider="local", context_window=512, temperature=0.0), pool=pool
        )
        assert (await client.complete([{"role": "user", "content": "Hi"}], max_tokens=2)).is_ok()
        assert len(pool.loaded()) == 1
        await client.close()
        assert len(pool.loaded()) == 1  # still held by the manager

        assert await manager.unload(DEFAULT_MODEL) is True
        assert manager.loaded() == []
        assert await manager.unload(DEFAULT_MODEL) is False


@pytest.mark.slow
async def test_models_dir_files_are_listed_and_loadable_by_name(tmp_path: Path) -> None:
    (tmp_path / "copy.gguf").write_bytes(bundled_model_path().read_bytes())
    pool = LocalModelPool()
    async with LLMModelManager(models_dir=tmp_path, pool=pool, idle_timeout=None) as manager:
        names = {info.name for info in manager.list_local()}
        assert names == {DEFAULT_MODEL, "copy"}
        info = await manager.load("copy", n_ctx=256)
        assert info.loaded and info.path == (tmp_path / "copy.gguf").resolve()
        assert {i.name: i.loaded for i in manager.list_local()} == {
            DEFAULT_MODEL: False,
            "copy": True,
        }
        with pytest.raises(ConfigurationError, match="Unknown local model"):
            await manager.load("missing")
    assert pool.loaded() == []  # closing the manager released what it loaded


@pytest.mark.slow
async def test_idle_unload_after_the_configured_time() -> None:
    pool = LocalModelPool()
    async with LLMModelManager(pool=pool, idle_timeout=0.3) as manager:
        await manager.load(n_ctx=256)
        assert len(manager.loaded()) == 1
        for _ in range(300):
            if not manager.loaded():
                break
            await asyncio.sleep(0.02)
        assert manager.loaded() == []


@pytest.mark.slow
async def test_unload_idle_sweeps_now() -> None:
    pool = LocalModelPool()
    async with LLMModelManager(pool=pool, idle_timeout=3600) as manager:
        await manager.load(n_ctx=256)
        assert manager.unload_idle() == []  # not idle for an hour yet
        assert manager.unload_idle(max_idle=0) == [DEFAULT_MODEL]
        assert manager.loaded() == []


def test_idle_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        LLMModelManager(idle_timeout=0)
