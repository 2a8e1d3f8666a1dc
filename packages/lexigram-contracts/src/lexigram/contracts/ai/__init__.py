"""Protocols for AI clients: chat completion, embeddings and token counting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from lexigram.contracts.ai.llm import LLMError
from lexigram.contracts.ai.thinking import ThinkingConfig, ThinkingResult
from lexigram.contracts.health import HealthCheckResult
from lexigram.contracts.stream import AsyncStream
from lexigram.result import Result

__all__ = [
    "ChatMessageProtocol",
    "CompletionProtocol",
    "EmbeddingClientProtocol",
    "LLMClientProtocol",
    "LLMError",
    "StreamChunkProtocol",
    "ThinkingConfig",
    "ThinkingResult",
    "TokenCounterProtocol",
    "UsageProtocol",
]

# A message is a ChatMessageProtocol object or a plain ``{"role": ..., "content": ...}`` dict.
MessageLike = Any


@runtime_checkable
class ChatMessageProtocol(Protocol):
    """A chat message: a role and its content (text or a list of parts)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> Any: ...


@runtime_checkable
class UsageProtocol(Protocol):
    """Token usage of one call."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...

    @property
    def total_tokens(self) -> int: ...


@runtime_checkable
class CompletionProtocol(Protocol):
    """A model's answer."""

    @property
    def content(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def finish_reason(self) -> str | None: ...

    @property
    def usage(self) -> UsageProtocol: ...

    @property
    def tool_calls(self) -> Sequence[Any]: ...

    @property
    def thinking(self) -> ThinkingResult | None: ...


@runtime_checkable
class StreamChunkProtocol(Protocol):
    """One piece of a streamed answer."""

    @property
    def delta(self) -> str: ...

    @property
    def thinking_delta(self) -> str: ...

    @property
    def finish_reason(self) -> str | None: ...


@runtime_checkable
class LLMClientProtocol(Protocol):
    """The client every provider implements; injectable through the container."""

    async def complete(
        self,
        messages: Sequence[MessageLike],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        stop_sequences: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Result[CompletionProtocol, LLMError]:
        """Ask for one answer; expected failures come back as ``Err``."""
        ...

    def stream_chat(
        self,
        messages: Sequence[MessageLike],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools: Sequence[Any] | None = None,
        stop_sequences: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> AsyncStream[StreamChunkProtocol, LLMError]:
        """Return the stream at once; the request starts on first iteration."""
        ...

    async def health_check(self, timeout: float = 5.0) -> HealthCheckResult:
        """Probe the provider; never raises."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class EmbeddingClientProtocol(Protocol):
    """A client that turns texts into vectors."""

    async def embed(
        self, texts: Sequence[str], *, model: str | None = None, **kwargs: Any
    ) -> Result[list[list[float]], LLMError]:
        """One vector per text, in order."""
        ...


@runtime_checkable
class TokenCounterProtocol(Protocol):
    """Counts tokens the way a model's tokenizer does (or estimates, and says so)."""

    def count(self, text: str, model: str | None = None) -> int:
        """Number of tokens in ``text``."""
        ...

    def count_messages(self, messages: Sequence[MessageLike], model: str | None = None) -> int:
        """Number of prompt tokens ``messages`` cost, including per-message overhead."""
        ...
