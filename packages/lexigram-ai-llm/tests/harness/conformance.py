"""The provider-neutral conformance suite every wire family passes.

A family's test module subclasses ``ConformanceSuite`` and sets ``family``::

    class TestOpenAIConformance(ConformanceSuite):
        family = Family(name="openai", server_cls=OpenAIServer, api_base=lambda s: s.url + "/v1")

Every test builds the client the way a user would (``create_llm_client(ClientConfig(...))``),
talks to the family's loopback server over real HTTP, and asserts on what the user sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from pydantic import SecretStr

from harness.server import ERROR_KINDS, FakeProviderServer, Reply
from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    InvalidRequestError,
    LLMAuthenticationError,
    LLMContentFilterError,
    LLMError,
    LLMModelNotFoundError,
    LLMQuotaExceededError,
    LLMRateLimitError,
    ProviderError,
    StreamError,
    TokenLimitError,
)
from lexigram.result import Err, Ok

SECRET = "sk-test-SECRET-0123456789abcdef"

EXPECTED_ERRORS: dict[str, tuple[type[LLMError], bool]] = {
    # kind: (error class, retryable)
    "invalid_request": (InvalidRequestError, False),
    "context_length": (TokenLimitError, False),
    "content_filter": (LLMContentFilterError, False),
    "auth": (LLMAuthenticationError, False),
    "permission": (LLMAuthenticationError, False),
    "quota": (LLMQuotaExceededError, False),
    "not_found": (LLMModelNotFoundError, False),
    "rate_limit": (LLMRateLimitError, True),
    "server": (ProviderError, True),
    "overloaded": (ProviderError, True),
}


@dataclass
class Family:
    """How to reach one wire family's loopback server with a real client."""

    name: str
    server_cls: type[FakeProviderServer]
    api_base: Callable[[FakeProviderServer], str]
    model: str = "test-model"
    config: dict[str, Any] = field(default_factory=dict)
    supports_thinking: bool = True
    supports_tools: bool = True
    error_kinds: tuple[str, ...] = ERROR_KINDS
    #: the secret that must never leak (the API key, or a credential the family uses)
    secret: str = SECRET


class ConformanceSuite:
    """Tests every family must pass. Subclasses set ``family``."""

    family: ClassVar[Family]

    @pytest_asyncio.fixture
    async def server(self) -> AsyncIterator[FakeProviderServer]:
        server = self.family.server_cls()
        await server.start()
        try:
            yield server
        finally:
            await server.stop()

    def make_client(self, server: FakeProviderServer, **overrides: Any) -> AbstractLLMClient:
        values: dict[str, Any] = {
            "provider": self.family.name,
            "model": self.family.model,
            "api_base": self.family.api_base(server),
            "api_key": SecretStr(SECRET),
            "max_retries": 2,
            "retry_base_delay": 0.01,
            "retry_max_delay": 0.05,
            "stream_idle_timeout": 5.0,
            "timeout": 10.0,
        }
        values.update(self.family.config)
        values.update(overrides)
        return create_llm_client(ClientConfig(**values))

    @pytest_asyncio.fixture
    async def client(self, server: FakeProviderServer) -> AsyncIterator[AbstractLLMClient]:
        client = self.make_client(server)
        try:
            yield client
        finally:
            await client.close()

    # -- answers ---------------------------------------------------------------------------

    async def test_text_completion(
        self, server: FakeProviderServer, client: AbstractLLMClient
    ) -> None:
        server.script(
            Reply(text="Paris is the capital of France.", prompt_tokens=11, completion_tokens=8)
        )
        result = await client.complete([{"role": "user", "content": "Capital of France?"}])
        assert isinstance(result, Ok), result
        completion = result.value
        assert completion.content == "Paris is the capital of France."
        assert completion.provider == self.family.name
        assert completion.finish_reason == "stop"
        assert completion.usage.prompt_tokens == 11
        assert completion.usage.completion_tokens == 8
        assert completion.usage.total_tokens == 19

    async def test_stream_yields_several_chunks_and_folds_like_complete(
        self, server: FakeProviderServer, client: AbstractLLMClient
    ) -> None:
        reply = Reply(text="One two three four five six seven.", chunk_chars=5)
        server.script(reply)
        whole = (await client.complete([{"role": "user", "content": "count"}])).unwrap()
        server.script(reply)
        deltas = []
        async for chunk in client.stream_chat([{"role": "user", "content": "count"}]):
            if chunk.delta:
                deltas.append(chunk.delta)
        assert len(deltas) > 3
        assert "".join(deltas) == whole.content
        server.script(reply)
        folded = (
            await client.stream_chat([{"role": "user", "content": "count"}]).completion()
        ).unwrap()
        assert _comparable(folded) == _comparable(whole)

    async def test_max_tokens_finish_reason(
        self, server: FakeProviderServer, client: AbstractLLMClient
    ) -> None:
        server.script(Reply(text="cut sho", finish="length"))
        result = await client.complete([{"role": "user", "content": "long"}], max_tokens=3)
        assert result.unwrap().finish_reason == "length"

    async def test_tool_calls(self, server: FakeProviderServer, client: AbstractLLMClient) -> None:
        if not self.family.supports_tools:
            pytest.skip("family has no tools")
        server.script(
            Reply(
                text="",
                finish="tool_calls",
                tool_calls=[
                    ("call_1", "get_weather", {"city": "Paris", "unit": "c"}),
                    ("call_2", "get_time", {"tz": "Europe/Paris"}),
                ],
            )
        )
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            },
            {
                "type": "function",
                "function": {
                    "name": "get_time",
                    "description": "Time",
                    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
                },
            },
        ]
        result = await client.complete([{"role": "user", "content": "weather?"}], tools=tools)
        completion = result.unwrap()
        assert completion.finish_reason == "tool_calls"
        assert [(tc.name, tc.parsed_arguments()) for tc in completion.tool_calls] == [
            ("get_weather", {"city": "Paris", "unit": "c"}),
            ("get_time", {"tz": "Europe/Paris"}),
        ]
        server.script(
            Reply(
                text="",
                finish="tool_calls",
                tool_calls=[
                    ("call_1", "get_weather", {"city": "Paris", "unit": "c"}),
                    ("call_2", "get_time", {"tz": "Europe/Paris"}),
                ],
            )
        )
        streamed = (
            await client.stream_chat(
                [{"role": "user", "content": "weather?"}], tools=tools
            ).completion()
        ).unwrap()
        assert [(tc.name, tc.parsed_arguments()) for tc in streamed.tool_calls] == [
            (tc.name, tc.parsed_arguments()) for tc in completion.tool_calls
        ]
        assert streamed.finish_reason == "tool_calls"
        # The answer goes back with its tool results and the provider accepts the history.
        history = [{"role": "user", "content": "weather?"}, completion.to_message()]
        for tc in completion.tool_calls:
            history.append(
                {"role": "tool", "tool_call_id": tc.id, "name": tc.name, "content": "sunny"}
            )
        server.script(Reply(text="It is sunny."))
        final = await client.complete(history, tools=tools)
        assert final.unwrap().content == "It is sunny."

    async def test_thinking(self, server: FakeProviderServer, client: AbstractLLMClient) -> None:
        if not self.family.supports_thinking:
            pytest.skip("family has no reasoning output")
        reply = Reply(
            text="42",
            thinking="Let me think step by step.",
            thinking_signature="sig-abc",
            reasoning_tokens=6,
        )
        server.script(reply)
        whole = (await client.complete([{"role": "user", "content": "meaning?"}])).unwrap()
        assert whole.content == "42"
        assert whole.thinking is not None
        assert whole.thinking.content == "Let me think step by step."
        server.script(reply)
        folded = (
            await client.stream_chat([{"role": "user", "content": "meaning?"}]).completion()
        ).unwrap()
        assert _comparable(folded) == _comparable(whole)

    # -- errors ----------------------------------------------------------------------------

    @pytest.mark.parametrize("kind", ERROR_KINDS)
    async def test_error_classes(self, server: FakeProviderServer, kind: str) -> None:
        if kind not in self.family.error_kinds:
            pytest.skip(f"{self.family.name} has no {kind} error")
        client = self.make_client(server, max_retries=0)
        try:
            server.script(Reply(error=kind, error_message=f"scripted {kind} failure"))
            result = await client.complete([{"role": "user", "content": "hi"}])
            assert isinstance(result, Err), result
            error = result.error
            expected, retryable = EXPECTED_ERRORS[kind]
            assert isinstance(error, expected), (kind, repr(error))
            assert error.retryable is retryable
            assert error.provider == self.family.name
            assert error.status is not None and error.status >= 400
            assert "scripted" in str(error)
            for text in (
                str(error),
                repr(error),
                repr(client),
                str(client.config),
                repr(client.config),
            ):
                assert self.family.secret not in text
        finally:
            await client.close()

    async def test_retry_after_is_honoured(self, server: FakeProviderServer) -> None:
        client = self.make_client(server, max_retries=2)
        try:
            server.script(
                Reply(error="rate_limit", headers={"retry-after-ms": "400"}), Reply(text="ok")
            )
            started = time.monotonic()
            result = await client.complete([{"role": "user", "content": "hi"}])
            waited = time.monotonic() - started
            assert result.unwrap().content == "ok"
            assert len(server.requests) == 2
            assert waited >= 0.39  # the client waited as long as the provider asked
        finally:
            await client.close()

    async def test_rate_limit_error_carries_retry_after(self, server: FakeProviderServer) -> None:
        client = self.make_client(server, max_retries=0)
        try:
            server.script(Reply(error="rate_limit", headers={"Retry-After": "7"}))
            error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
            assert isinstance(error, LLMRateLimitError)
            assert error.retry_after == 7.0
        finally:
            await client.close()

    @pytest.mark.parametrize("kind", ["invalid_request", "auth", "permission", "not_found"])
    async def test_client_errors_are_not_retried(
        self, server: FakeProviderServer, kind: str
    ) -> None:
        if kind not in self.family.error_kinds:
            pytest.skip(f"{self.family.name} has no {kind} error")
        client = self.make_client(server, max_retries=3)
        try:
            server.script(Reply(error=kind))
            assert (await client.complete([{"role": "user", "content": "hi"}])).is_err()
            assert len(server.requests) == 1
        finally:
            await client.close()

    async def test_retries_stop_at_the_limit(self, server: FakeProviderServer) -> None:
        client = self.make_client(server, max_retries=2)
        try:
            server.script(Reply(error="server"))
            error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
            assert isinstance(error, ProviderError)
            assert len(server.requests) == 3
        finally:
            await client.close()

    # -- broken streams --------------------------------------------------------------------

    async def test_truncated_stream_raises(
        self, server: FakeProviderServer, client: AbstractLLMClient
    ) -> None:
        server.script(Reply(text="a long answer that will be cut", cut_after=3))
        seen = []
        with pytest.raises(StreamError):
            async for chunk in client.stream_chat([{"role": "user", "content": "hi"}], cache=False):
                seen.append(chunk)
        server.script(Reply(text="a long answer that will be cut", cut_after=3))
        collected = await client.stream_chat([{"role": "user", "content": "hi"}]).collect()
        assert isinstance(collected, Err)
        assert isinstance(collected.error, StreamError)

    async def test_malformed_chunk_raises(
        self, server: FakeProviderServer, client: AbstractLLMClient
    ) -> None:
        server.script(Reply(text="some answer text here", malformed_at=2))
        with pytest.raises(StreamError):
            async for _ in client.stream_chat([{"role": "user", "content": "hi"}]):
                pass

    async def test_error_event_mid_stream_raises(
        self, server: FakeProviderServer, client: AbstractLLMClient
    ) -> None:
        server.script(Reply(text="some answer text here", stream_error_after=2))
        result = await client.stream_chat([{"role": "user", "content": "hi"}]).collect()
        assert isinstance(result, Err)
        assert isinstance(result.error, LLMError)

    async def test_stalled_stream_times_out(self, server: FakeProviderServer) -> None:
        client = self.make_client(server, stream_idle_timeout=0.3, max_retries=0)
        try:
            server.script(Reply(text="some answer text here", stall_after=2))
            result = await client.stream_chat([{"role": "user", "content": "hi"}]).collect()
            assert isinstance(result, Err)
            assert isinstance(result.error, StreamError)
        finally:
            await client.close()

    async def test_stream_error_before_first_chunk_is_retried(
        self, server: FakeProviderServer
    ) -> None:
        client = self.make_client(server, max_retries=2)
        try:
            server.script(Reply(error="overloaded"), Reply(text="recovered"))
            text = (await client.stream_chat([{"role": "user", "content": "hi"}]).text()).unwrap()
            assert text == "recovered"
            assert len(server.requests) == 2
        finally:
            await client.close()

    async def test_cancel_mid_stream_releases_the_connection(
        self, server: FakeProviderServer, client: AbstractLLMClient
    ) -> None:
        server.script(Reply(text="x" * 200, chunk_chars=2, chunk_delay=0.01))

        async def consume() -> None:
            async for _ in client.stream_chat([{"role": "user", "content": "hi"}]):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if server.open_streams == 0:
                break
            await asyncio.sleep(0.01)
        assert server.open_streams == 0

    async def test_break_releases_the_connection(
        self, server: FakeProviderServer, client: AbstractLLMClient
    ) -> None:
        server.script(Reply(text="y" * 200, chunk_chars=2, chunk_delay=0.01))
        async for _ in client.stream_chat([{"role": "user", "content": "hi"}]):
            break
        for _ in range(100):
            if server.open_streams == 0:
                break
            await asyncio.sleep(0.01)
        assert server.open_streams == 0

    async def test_many_concurrent_requests(
        self, server: FakeProviderServer, client: AbstractLLMClient
    ) -> None:
        server.script(Reply(text="same"))
        results = await asyncio.gather(
            *(client.complete([{"role": "user", "content": f"q{i}"}]) for i in range(50))
        )
        assert all(r.unwrap().content == "same" for r in results)
        assert len(server.requests) == 50


def _comparable(completion: Any) -> tuple[Any, ...]:
    """The parts of a completion a stream must reproduce exactly."""
    thinking = completion.thinking
    return (
        completion.content,
        completion.finish_reason,
        [(tc.id, tc.name, tc.parsed_arguments()) for tc in completion.tool_calls],
        completion.usage,
        None if thinking is None else (thinking.content, thinking.signature, thinking.blocks),
    )


def strict_comparable(completion: Any) -> tuple[Any, ...]:
    """Everything a family's streamed answer must reproduce when its server sends the same ids
    both ways: ``_comparable`` plus raw finish reason, signatures, thinking tokens, model, id."""
    thinking = completion.thinking
    return (
        completion.content,
        completion.finish_reason,
        completion.raw_finish_reason,
        [(tc.id, tc.name, tc.parsed_arguments(), tc.signature) for tc in completion.tool_calls],
        completion.usage,
        None
        if thinking is None
        else (thinking.content, thinking.signature, thinking.tokens, thinking.blocks),
        completion.model,
        completion.id,
    )
