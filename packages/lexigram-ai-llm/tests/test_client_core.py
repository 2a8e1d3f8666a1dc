"""The client core through its public API: breaker, cancellation at scale, event-loop reuse,
registry, configuration errors and secrets."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, ProviderRegistry, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient, CircuitOpenError
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    LLMRateLimitError,
    MissingExtraError,
    UnknownProviderError,
)
from lexigram.ai.llm.types import ChatRequest, Completion, StreamChunk
from lexigram.result import Err

KEY = "sk-live-TOPSECRET-abcdef0123456789"


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


def client_for(server: OpenAIServer, **overrides: object) -> AbstractLLMClient:
    values: dict[str, object] = {
        "provider": "openai",
        "model": "gpt-test",
        "api_base": server.url + "/v1",
        "api_key": SecretStr(KEY),
        "retry_base_delay": 0.001,
        "retry_max_delay": 0.002,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))  # type: ignore[arg-type]


async def test_429_storm_opens_the_breaker_and_one_probe_closes_it(server: OpenAIServer) -> None:
    client = client_for(
        server, max_retries=0, breaker_failure_threshold=3, breaker_recovery_timeout=0.3
    )
    try:
        server.script(Reply(error="rate_limit"))
        for _ in range(3):
            assert isinstance(
                (await client.complete([{"role": "user", "content": "x"}])).unwrap_err(),
                LLMRateLimitError,
            )
        assert len(server.requests) == 3
        # Open: refused locally, no network call.
        refused = (await client.complete([{"role": "user", "content": "x"}])).unwrap_err()
        assert isinstance(refused, CircuitOpenError)
        assert refused.retry_after is not None and refused.retry_after > 0
        assert len(server.requests) == 3
        await asyncio.sleep(0.35)
        # Half-open: exactly one probe goes out even with concurrent callers.
        server.script(Reply(text="back", delay=0.1))
        results = await asyncio.gather(
            *(client.complete([{"role": "user", "content": "x"}]) for _ in range(5))
        )
        assert len(server.requests) == 4
        assert sum(r.is_ok() for r in results) == 1
        assert all(isinstance(r.error, CircuitOpenError) for r in results if isinstance(r, Err))
        # Closed again.
        assert (await client.complete([{"role": "user", "content": "x"}])).is_ok()
        assert len(server.requests) == 5
    finally:
        await client.close()


async def test_a_thousand_streams_cancelled_midway_leave_nothing_open(server: OpenAIServer) -> None:
    client = client_for(server, max_connections=200)
    server.script(Reply(text="z" * 400, chunk_chars=2, chunk_delay=0.005))
    started = asyncio.Event()
    first_chunks = 0

    async def consume() -> None:
        nonlocal first_chunks
        async for _ in client.stream_chat([{"role": "user", "content": "go"}]):
            first_chunks += 1
            if first_chunks >= 200:
                started.set()

    before = set(asyncio.all_tasks())
    tasks = [asyncio.create_task(consume()) for _ in range(1000)]
    await asyncio.wait_for(started.wait(), 60)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    for _ in range(200):
        if server.open_streams == 0:
            break
        await asyncio.sleep(0.02)
    assert server.open_streams == 0
    transport = client._transport  # type: ignore[attr-defined]
    assert transport is not None
    assert transport.busy_connections() == 0  # no connection is still checked out
    gc.collect()
    await asyncio.sleep(0)
    leftover = {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()}
    assert not leftover
    await client.close()


def test_client_can_be_reused_from_a_new_event_loop() -> None:
    async def serve_and_call(client: AbstractLLMClient | None) -> tuple[AbstractLLMClient, str]:
        srv = OpenAIServer()
        await srv.start()
        try:
            if client is None:
                client = client_for(srv)
            # Same client object on a new loop; only the server's address changed.
            client._base_url = srv.url + "/v1"  # type: ignore[attr-defined]
            client._contexts.clear()  # type: ignore[attr-defined]
            text = (await client.complete([{"role": "user", "content": "x"}])).unwrap().content
            return client, text
        finally:
            await srv.stop()

    client, first = asyncio.run(serve_and_call(None))
    client, second = asyncio.run(serve_and_call(client))
    assert first == second == Reply().text


async def test_unknown_provider_names_the_registered_ones() -> None:
    with pytest.raises(UnknownProviderError) as info:
        create_llm_client(ClientConfig(provider="nope"))
    message = str(info.value)
    assert "'nope'" in message and "openai" in message and "anthropic" in message


async def test_provider_slash_model_strings(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    client = create_llm_client("openrouter/anthropic/claude-sonnet-4")
    assert client.provider_name == "openrouter"
    assert client.config.model == "anthropic/claude-sonnet-4"
    assert KEY not in repr(client)
    config = ClientConfig.parse("groq/llama-3.3-70b")
    assert (config.provider, config.model) == ("groq", "llama-3.3-70b")


async def test_missing_key_raises_at_call_time_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = create_llm_client(ClientConfig(provider="openai", model="gpt-4o"))
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        await client.complete([{"role": "user", "content": "x"}])
    await client.close()


async def test_key_from_the_provider_environment_variable(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-0000000000")
    client = create_llm_client(
        ClientConfig(provider="openai", model="m", api_base=server.url + "/v1")
    )
    assert (await client.complete([{"role": "user", "content": "x"}])).is_ok()
    assert server.requests[0].headers["authorization"] == "Bearer sk-env-key-0000000000"
    assert "sk-env-key" not in repr(client) and "sk-env-key" not in repr(client.config)
    await client.close()


async def test_prepared_http_request_repr_hides_the_auth_header(server: OpenAIServer) -> None:
    # The request about to be sent carries the key; a traceback or log of it must not show it.
    from lexigram.ai.llm.providers.http import HTTPLLMClient

    client = client_for(server)
    assert isinstance(client, HTTPLLMClient)
    request = client.build_request([{"role": "user", "content": "x"}])
    http, _ = await client._prepare(request, stream=False)
    assert http.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(http) and KEY not in str(http)
    await client.close()


async def test_secret_never_in_config_repr_or_errors(
    server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(server, max_retries=1)
    # The provider echoes the key back in its error message: it must be redacted.
    server.script(Reply(error="auth", error_message=f"Incorrect API key provided: {KEY}"))
    error = (await client.complete([{"role": "user", "content": "x"}])).unwrap_err()
    server.script(Reply(error="server", error_message=f"oops {KEY}"))
    error2 = (await client.complete([{"role": "user", "content": "x"}])).unwrap_err()
    for text in (
        str(error),
        repr(error),
        str(error2),
        repr(client),
        repr(client.config),
        str(client.config),
        client.config.model_dump_json(),
        caplog.text,
    ):
        assert KEY not in text
    assert "***" in str(error)
    await client.close()


async def test_bad_message_is_an_err_naming_the_field() -> None:
    client = create_llm_client(ClientConfig(provider="openai", model="m", api_key="k"))
    error = (await client.complete([{"role": "wizard", "content": "x"}])).unwrap_err()
    assert isinstance(error, InvalidRequestError) and "unknown message role" in error.message
    error = (await client.complete([42])).unwrap_err()
    assert isinstance(error, InvalidRequestError) and error.message.startswith("messages[0]: ")
    await client.close()


async def test_malformed_json_body_is_a_typed_error(server: OpenAIServer) -> None:
    client = client_for(server, max_retries=0)
    server.script(Reply(raw_body=b'{"id": "x", "choices": [{"mess'))
    error = (await client.complete([{"role": "user", "content": "x"}])).unwrap_err()
    assert error.code == "stream_error" or "not valid JSON" in error.message
    await client.close()


async def test_connection_refused_is_provider_connection_error() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = create_llm_client(
        ClientConfig(
            provider="openai",
            model="m",
            api_key="k",
            api_base=f"http://127.0.0.1:{port}/v1",
            max_retries=1,
            retry_base_delay=0.001,
        )
    )
    from lexigram.ai.llm.exceptions import ProviderConnectionError

    error = (await client.complete([{"role": "user", "content": "x"}])).unwrap_err()
    assert isinstance(error, ProviderConnectionError) and error.retryable
    stream_error = (
        await client.stream_chat([{"role": "user", "content": "x"}]).collect()
    ).unwrap_err()
    assert isinstance(stream_error, ProviderConnectionError)
    await client.close()


async def test_timeout_is_llm_timeout_error(server: OpenAIServer) -> None:
    from lexigram.ai.llm.exceptions import LLMTimeoutError

    client = client_for(server, timeout=0.2, max_retries=0)
    server.script(Reply(delay=2))
    error = (await client.complete([{"role": "user", "content": "x"}])).unwrap_err()
    assert isinstance(error, LLMTimeoutError) and error.retryable
    await client.close()


class EchoClient(AbstractLLMClient):
    """A user's own provider: the extension point the guide names."""

    provider_name = "echo"

    async def _do_complete(self, request: ChatRequest) -> Completion:
        return Completion(content=request.messages[-1].text, model=request.model, provider="echo")

    async def _do_stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        for word in request.messages[-1].text.split():
            yield StreamChunk(delta=word)
        yield StreamChunk(finish_reason="stop")


async def test_registry_accepts_custom_providers_at_run_time() -> None:
    registry = ProviderRegistry(private=True)  # not the default table other tests share
    registry.register("echo", EchoClient, capabilities={"stream"})
    client = registry.create(ClientConfig(provider="echo", model="e1"))
    assert (
        await client.complete([{"role": "user", "content": "hello there"}])
    ).unwrap().content == "hello there"
    assert (await client.stream_chat([{"role": "user", "content": "a b"}]).text()).unwrap() == "ab"
    infos = {info.name: info for info in registry.list()}
    assert (
        "echo" in infos and "openai" in infos and infos["openai"].api_key_env == ("OPENAI_API_KEY",)
    )
    with pytest.raises(ValueError, match="already registered"):
        registry.register("echo", EchoClient)


async def test_default_provider_is_local_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_API_TOKEN")) or name in {"CO_API_KEY"}:
            monkeypatch.delenv(name, raising=False)
    assert ProviderRegistry().default_provider() == "local"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    assert ProviderRegistry().default_provider() == "anthropic"


def test_missing_extra_error_names_the_install_command() -> None:
    assert issubclass(MissingExtraError, ImportError)


async def test_health_check_never_raises(server: OpenAIServer) -> None:
    client = client_for(server, max_retries=0)
    server.script(Reply(error="server"))
    health = await client.health_check()
    assert not health.is_healthy
    server.script(Reply(text="pong"))
    assert (await client.health_check()).is_healthy
    await client.close()
    no_key = create_llm_client(ClientConfig(provider="groq", model="m", api_key=None))
    assert not (await no_key.health_check()).is_healthy


async def test_chat_returns_the_text(server: OpenAIServer) -> None:
    client = client_for(server)
    server.script(Reply(text="short answer"))
    assert (await client.chat("question?", system="be brief")).unwrap() == "short answer"
    assert server.requests[-1].json["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "question?"},
    ]
    server.script(Reply(error="not_found"))
    assert (await client.chat("q", cache=False)).is_err()
    await client.close()


def test_base_url_placeholders_come_from_the_profiles_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "BEDROCK_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        create_llm_client(ClientConfig(provider="bedrock"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    client = create_llm_client(ClientConfig(provider="bedrock"))
    assert client.base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"  # type: ignore[attr-defined]
    client = create_llm_client(ClientConfig(provider="bedrock", extra={"region": "us-east-2"}))
    assert "us-east-2" in client.base_url  # type: ignore[attr-defined]


async def test_streamed_and_plain_completions_carry_the_same_cost(server: OpenAIServer) -> None:
    client = client_for(server, model="gpt-4o-mini")
    whole = (await client.complete([{"role": "user", "content": "x"}])).unwrap()
    folded = (await client.stream_chat([{"role": "user", "content": "x"}]).completion()).unwrap()
    assert whole.cost is not None and whole.cost > 0
    assert folded.cost == whole.cost
    await client.close()


async def test_stub_stream_folds_to_the_same_completion_with_tool_calls() -> None:
    from lexigram.ai.llm.module import StubLLMClient
    from lexigram.ai.llm.types import FunctionCall, ToolCall, Usage

    answer = Completion(
        content="calling a tool",
        model="stub",
        provider="stub",
        finish_reason="tool_calls",
        raw_finish_reason="tool_calls",
        tool_calls=(ToolCall(id="call_1", function=FunctionCall("lookup", '{"q": 1}')),),
        usage=Usage.of(3, 4),
        id="stub-1",
    )
    stub = StubLLMClient([answer])
    whole = (await stub.complete([{"role": "user", "content": "x"}])).unwrap()
    folded = (await stub.stream_chat([{"role": "user", "content": "x"}]).completion()).unwrap()
    assert folded == whole
    assert folded.tool_calls == answer.tool_calls


def test_response_format_dicts_of_unknown_shape_are_refused() -> None:
    from lexigram.ai.llm.module import StubLLMClient

    stub = StubLLMClient()
    messages = [{"role": "user", "content": "x"}]
    schema = {"type": "object"}
    built = stub.build_request(
        messages, response_format={"type": "json_schema", "json_schema": {"schema": schema}}
    )
    assert built.response_format is not None and built.response_format.schema == schema
    assert stub.build_request(messages, response_format={"type": "text"}).response_format
    with pytest.raises(ValueError, match="json_objekt"):
        stub.build_request(messages, response_format={"type": "json_objekt"})
    with pytest.raises(InvalidRequestError, match="json_schema"):
        stub.build_request(messages, response_format={"type": "json_schema", "json_schema": "x"})
