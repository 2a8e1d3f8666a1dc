"""The OpenAI-wire client (provider ``openai_compatible``) against a real ``llama_cpp.server``
serving the bundled SmolLM2 GGUF on loopback, and the command line against the same server.

Runs the parts of the OpenAI conformance suite that a real server can answer (a text answer,
a stream folding to it, usage, a real error); the scripted-failure tests need the fake server.
Note: ``llama_cpp.server`` sends no usage in streams (it ignores ``stream_options``), so a
folded stream has text and finish reason but zero usage."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.cli import main as cli_main
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import StreamError, TokenLimitError
from lexigram.ai.llm.providers.local import (
    DEFAULT_SYSTEM_PROMPT,
    LoadOptions,
    bundled_model_path,
)
from lexigram.contracts.health import HealthStatus
from lexigram.result import Err

pytestmark = pytest.mark.slow

QUESTION = [
    {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
    {"role": "user", "content": "What is the capital of France?"},
]
TOO_LONG = [{"role": "user", "content": "word " * 700}]  # more than the server's n_ctx of 512
LEXIGRAM_LLM = Path(sys.executable).with_name("lexigram-llm")
KEY_VARIABLES = ("OPENAI_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "ANTHROPIC_API_KEY")


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port; yields its ``/v1`` base URL."""
    port = _free_port()
    # The numerics the local provider uses here (CI forces one thread, then two, through
    # LEX_AI_LLM__EXTRA__N_THREADS), so the server answers as the provider does.
    engine = LoadOptions.from_config(ClientConfig(provider="local")).llama_kwargs()
    numerics = [
        arg
        for name in ("n_threads", "n_threads_batch", "n_batch", "n_ubatch")
        for arg in (f"--{name}", str(engine[name]))
    ]
    # The server logs a lot (model metadata, every request): to a file, never an unread pipe.
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(bundled_model_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "512",
            *numerics,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"llama_cpp.server exited: {tail}")
            try:
                with _NO_PROXY.open(base + "/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 120 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def make_client(base: str, **overrides: Any) -> AbstractLLMClient:
    values: dict[str, Any] = {
        "provider": "openai_compatible",
        "model": "smollm2",
        "api_base": base,
        "temperature": 0.0,
        "max_tokens": 48,
        "max_retries": 0,
        "timeout": 120.0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))


# -- the conformance subset a real server can answer ---------------------------------------


async def test_text_completion_with_usage(llama_server: str) -> None:
    async with make_client(llama_server) as client:
        completion = (await client.complete(QUESTION)).unwrap()
    assert "Paris" in completion.content
    assert completion.provider == "openai_compatible"
    assert completion.finish_reason == "stop"
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_stream_yields_several_chunks_and_folds_like_complete(llama_server: str) -> None:
    async with make_client(llama_server) as client:
        whole = (await client.complete(QUESTION)).unwrap()
        deltas = [c.delta async for c in client.stream_chat(QUESTION) if c.delta]
        folded = (await client.stream_chat(QUESTION).completion()).unwrap()
    assert len(deltas) >= 3
    assert "".join(deltas) == whole.content
    assert (folded.content, folded.finish_reason) == (whole.content, whole.finish_reason)


async def test_max_tokens_finish_reason(llama_server: str) -> None:
    async with make_client(llama_server) as client:
        completion = (await client.complete(QUESTION, max_tokens=3)).unwrap()
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 3


async def test_usage_agrees_with_the_local_provider(llama_server: str) -> None:
    """The server and the in-process provider render the same GGUF template and count with the
    same tokenizer, so the same conversation has the same prompt size."""
    async with make_client(llama_server) as server_client:
        remote = (await server_client.complete(QUESTION, max_tokens=2)).unwrap()
    async with create_llm_client(
        ClientConfig(provider="local", temperature=0.0, max_tokens=2)
    ) as local_client:
        local = (await local_client.complete(QUESTION)).unwrap()
    assert remote.usage.prompt_tokens == local.usage.prompt_tokens


async def test_an_over_long_prompt_is_a_token_limit_error(llama_server: str) -> None:
    async with make_client(llama_server, max_retries=2, retry_base_delay=0.01) as client:
        result = await client.complete(TOO_LONG)
        streamed = await client.stream_chat(TOO_LONG).collect()
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, TokenLimitError)
    assert error.status == 400
    assert error.code == "context_length_exceeded"
    assert error.retryable is False
    assert error.provider == "openai_compatible"
    assert "maximum context length is 512" in (error.provider_message or "")
    # Streaming, llama_cpp.server answers 200 and then closes an empty body (the error is
    # raised inside its stream iterator): nothing says why, but the cut is never silent.
    assert isinstance(streamed, Err) and isinstance(streamed.error, StreamError)


async def test_concurrent_requests(llama_server: str) -> None:
    async with make_client(llama_server, max_tokens=4) as client:
        results = await asyncio.gather(*(client.complete(QUESTION) for _ in range(4)))
    assert all(r.unwrap().content for r in results)


async def test_health_check(llama_server: str) -> None:
    async with make_client(llama_server) as client:
        assert (await client.health_check(timeout=60)).status is HealthStatus.HEALTHY


# -- the command line against the server ---------------------------------------------------


def _env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("LEX_") and k not in KEY_VARIABLES
    }
    env["LEX_AI_LLM__MAX_RETRIES"] = "0"
    return env


def test_cli_chat_streams_from_the_server(llama_server: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(LEXIGRAM_LLM),
            "chat",
            "--provider",
            "openai_compatible",
            "--api-base",
            llama_server,
            "--system",
            DEFAULT_SYSTEM_PROMPT,
            "What is the capital of France?",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert done.stderr == ""


def test_cli_writes_each_chunk_as_it_arrives(
    llama_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class Recorder(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []
            self.flushes = 0

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

        def flush(self) -> None:
            self.flushes += 1

    recorder = Recorder()
    monkeypatch.setattr(sys, "stdout", recorder)
    monkeypatch.chdir(tmp_path)
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    status = cli_main(
        [
            "chat",
            "--provider",
            "openai_compatible",
            "--api-base",
            llama_server,
            "--system",
            DEFAULT_SYSTEM_PROMPT,
            "What is the capital of France?",
        ]
    )
    assert status == 0
    # One write and one flush per streamed delta (plus the final newline), not one at the end.
    assert len(recorder.writes) >= 4
    assert recorder.flushes >= len(recorder.writes)
    assert "Paris" in "".join(recorder.writes)


@pytest.mark.parametrize(
    ("flags", "error"), [(["--no-stream"], "TokenLimitError"), ([], "StreamError")]
)
def test_cli_reports_a_server_error_in_one_line(
    llama_server: str, tmp_path: Path, flags: list[str], error: str
) -> None:
    done = subprocess.run(
        [
            str(LEXIGRAM_LLM),
            "chat",
            "--provider",
            "openai_compatible",
            "--api-base",
            llama_server,
            *flags,
            "-",
        ],
        input="word " * 700,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout.strip() == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {error}: ")


def test_cli_no_stream_prints_the_same_answer(llama_server: str, tmp_path: Path) -> None:
    args = [
        str(LEXIGRAM_LLM),
        "chat",
        "--provider",
        "openai_compatible",
        "--api-base",
        llama_server,
        "--model",
        "smollm2",
        "--max-tokens",
        "24",
        "Name three colors.",
    ]
    streamed = subprocess.run(
        args, capture_output=True, text=True, timeout=120, env=_env(), cwd=tmp_path, check=False
    )
    whole = subprocess.run(
        [*args, "--no-stream"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=tmp_path,
        check=False,
    )
    assert streamed.returncode == 0 and whole.returncode == 0, (streamed.stderr, whole.stderr)
    assert streamed.stdout.strip() and streamed.stdout.strip() == whole.stdout.strip()
