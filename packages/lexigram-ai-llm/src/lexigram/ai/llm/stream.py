"""Chat streams: ``ChatStream`` and the fold from chunks to a ``Completion``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    LLMError,
    MissingExtraError,
    StreamError,
)
from lexigram.ai.llm.types import (
    Completion,
    FunctionCall,
    StreamChunk,
    ThinkingBlock,
    ThinkingResult,
    ToolCall,
    Usage,
)
from lexigram.contracts.stream import AsyncStream
from lexigram.result import Err, Ok, Result

__all__ = ["ChatStream", "StreamAccumulator"]


class StreamAccumulator:
    """Folds stream chunks into the ``Completion`` that ``complete()`` returns for the same
    answer: text and thinking joined, tool calls reassembled by index, last usage kept."""

    __slots__ = (
        "_blocks",
        "_finish",
        "_id",
        "_model",
        "_raw_finish",
        "_text",
        "_thinking",
        "_tools",
        "_usage",
    )

    def __init__(self) -> None:
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._blocks: list[ThinkingBlock] = []
        self._tools: dict[int, list[str | None]] = {}  # index -> [id, name, args, signature]
        self._finish: str | None = None
        self._raw_finish: str | None = None
        self._usage: Usage | None = None
        self._model: str | None = None
        self._id: str | None = None

    def add(self, chunk: StreamChunk) -> None:
        """Take one chunk into account."""
        if chunk.delta:
            self._text.append(chunk.delta)
        if chunk.thinking_delta:
            self._thinking.append(chunk.thinking_delta)
        if chunk.thinking_block is not None:
            self._blocks.append(chunk.thinking_block)
        for delta in chunk.tool_calls:
            slot = self._tools.get(delta.index)
            if slot is None:
                slot = self._tools[delta.index] = [None, None, "", None]
            if delta.id:
                slot[0] = delta.id
            if delta.name:
                slot[1] = delta.name
            if delta.arguments:
                slot[2] = (slot[2] or "") + delta.arguments
            if delta.signature:
                slot[3] = delta.signature
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
            self._raw_finish = chunk.raw_finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.model:
            self._model = chunk.model
        if chunk.id:
            self._id = chunk.id

    def to_completion(self, provider: str, model: str) -> Completion:
        """The folded answer."""
        usage = self._usage or Usage()
        thinking = None
        blocks = tuple(self._blocks)
        if not blocks and self._thinking:
            blocks = (ThinkingBlock("".join(self._thinking)),)
        if blocks:
            thinking = ThinkingResult.from_blocks(blocks, usage.reasoning_tokens or None)
        tool_calls = tuple(
            ToolCall(
                id=slot[0] or f"call_{index}",
                function=FunctionCall(slot[1] or "", slot[2] or "{}"),
                signature=slot[3],
            )
            for index, slot in sorted(self._tools.items())
        )
        return Completion(
            content="".join(self._text),
            model=self._model or model,
            provider=provider,
            finish_reason=self._finish,
            raw_finish_reason=self._raw_finish,
            tool_calls=tool_calls,
            usage=usage,
            thinking=thinking,
            id=self._id,
        )


# Raised by a stream as ``complete()`` raises them (they say how to fix the setup), never
# wrapped into a ``StreamError``.
_SETUP_ERRORS: tuple[type[BaseException], ...] = (ConfigurationError, MissingExtraError)


class ChatStream(AsyncStream[StreamChunk, LLMError]):
    """An ``AsyncStream`` of chunks that also folds into a ``Completion``.

    A configuration error (no API key, an unknown provider, a missing extra) is raised as
    itself on first iteration, exactly as ``complete()`` raises it."""

    __slots__ = ("_finalize", "model", "provider")

    def __init__(
        self,
        source: AsyncIterator[StreamChunk] | Callable[[], AsyncIterator[StreamChunk]],
        *,
        provider: str,
        model: str,
        wrap_error: Callable[[BaseException], LLMError] | None = None,
        finalize: Callable[[Completion], Completion] | None = None,
    ) -> None:
        super().__init__(
            source,
            error_type=LLMError,
            wrap_error=wrap_error or _as_stream_error,
            passthrough=_SETUP_ERRORS,
        )
        self.provider = provider
        self.model = model
        self._finalize = finalize

    async def completion(self) -> Result[Completion, LLMError]:
        """Consume the stream and fold it: ``Ok(Completion)`` or ``Err`` of the failure."""
        accumulator = StreamAccumulator()
        try:
            async for chunk in self:
                accumulator.add(chunk)
        except LLMError as exc:
            return Err(exc)
        completion = accumulator.to_completion(self.provider, self.model)
        if self._finalize is not None:
            completion = self._finalize(completion)
        return Ok(completion)

    async def text(self) -> Result[str, LLMError]:
        """Consume the stream and return the answer's text."""
        return (await self.completion()).map(lambda c: c.content)


def _as_stream_error(exc: BaseException) -> LLMError:
    return StreamError(f"The stream failed unexpectedly: {type(exc).__name__}: {exc}")
