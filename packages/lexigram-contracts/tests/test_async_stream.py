"""AsyncStream through its public API: laziness, loud failures, Result views, release."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from lexigram.contracts.ai.llm import LLMError
from lexigram.contracts.stream import AsyncStream
from lexigram.result import Err, Ok


class Source:
    """An async generator source that records whether it started and was released."""

    def __init__(self, items: list[int], fail_after: int | None = None, delay: float = 0.0):
        self.items = items
        self.fail_after = fail_after
        self.delay = delay
        self.started = False
        self.released = False

    async def __call__(self) -> AsyncIterator[int]:
        self.started = True
        try:
            for i, item in enumerate(self.items):
                if self.fail_after is not None and i == self.fail_after:
                    raise LLMError("source broke", provider="test", retryable=True)
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield item
        finally:
            self.released = True


def stream_of(source: Source) -> AsyncStream[int, LLMError]:
    return AsyncStream(source, error_type=LLMError)


async def test_is_lazy_until_first_iteration() -> None:
    source = Source([1, 2])
    stream = stream_of(source)
    await asyncio.sleep(0)
    assert not source.started
    assert [x async for x in stream] == [1, 2]
    assert source.started and source.released


async def test_single_pass() -> None:
    stream = stream_of(Source([1, 2, 3]))
    assert [x async for x in stream] == [1, 2, 3]
    assert [x async for x in stream] == []


async def test_async_for_raises_the_typed_error_mid_stream() -> None:
    source = Source([1, 2, 3], fail_after=2)
    seen = []
    with pytest.raises(LLMError, match="source broke"):
        async for item in stream_of(source):
            seen.append(item)
    assert seen == [1, 2]
    assert source.released


async def test_collect_returns_err_on_failure_and_ok_otherwise() -> None:
    failed = await stream_of(Source([1, 2, 3], fail_after=1)).collect()
    assert isinstance(failed, Err)
    assert isinstance(failed.error, LLMError)
    assert await stream_of(Source([1, 2, 3])).collect() == Ok([1, 2, 3])


async def test_first_and_drain() -> None:
    source = Source([7, 8, 9])
    assert await stream_of(source).first() == Ok(7)
    assert source.released
    assert await stream_of(Source([])).first() == Ok(None)
    assert await stream_of(Source([1, 2, 3])).drain() == Ok(3)
    drained = await stream_of(Source([1, 2], fail_after=1)).drain()
    assert isinstance(drained, Err)


async def test_unexpected_exceptions_are_wrapped_when_asked() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise KeyError("bug")

    stream: AsyncStream[int, LLMError] = AsyncStream(
        broken, error_type=LLMError, wrap_error=lambda exc: LLMError(f"wrapped {exc!r}")
    )
    result = await stream.collect()
    assert isinstance(result, Err)
    assert "wrapped" in str(result.error)
    assert isinstance(result.error.__cause__, KeyError)


async def test_unexpected_exceptions_propagate_without_wrapper() -> None:
    async def broken() -> AsyncIterator[int]:
        raise KeyError("bug")
        yield 1

    with pytest.raises(KeyError):
        await AsyncStream(broken, error_type=LLMError).collect()


async def test_map_filter_take() -> None:
    source = Source(list(range(10)))
    stream = stream_of(source).filter(lambda x: x % 2 == 0).map(lambda x: x * 10).take(3)
    assert await stream.collect() == Ok([0, 20, 40])
    assert source.released  # take released the rest of the source


async def test_aclose_releases_and_never_starts_an_unstarted_stream() -> None:
    source = Source([1, 2, 3])
    stream = stream_of(source)
    await stream.aclose()
    assert not source.started
    assert [x async for x in stream] == []

    source = Source([1, 2, 3])
    stream = stream_of(source)
    assert await stream.__anext__() == 1
    await stream.aclose()
    assert source.released
    assert stream.closed


async def test_async_with_releases() -> None:
    source = Source([1, 2, 3])
    async with stream_of(source) as stream:
        async for _ in stream:
            break
    assert source.released


async def test_break_releases_once_the_stream_is_dropped() -> None:
    source = Source([1, 2, 3])
    async for _ in stream_of(source):
        break
    # The dropped generator is closed by the event loop's async-generator finaliser.
    for _ in range(10):
        if source.released:
            break
        await asyncio.sleep(0)
    assert source.released


async def test_cancelling_the_consumer_releases_the_source() -> None:
    source = Source(list(range(1000)), delay=0.01)
    stream = stream_of(source)

    async def consume() -> None:
        async for _ in stream:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.released
    assert stream.closed


async def test_a_source_factory_that_raises_fails_like_the_source() -> None:
    def broken_factory() -> AsyncIterator[int]:
        raise LLMError("could not start")

    stream: AsyncStream[int, LLMError] = AsyncStream(broken_factory, error_type=LLMError)
    result = await stream.collect()
    assert isinstance(result, Err)
    assert stream.closed
    assert [x async for x in stream] == []
