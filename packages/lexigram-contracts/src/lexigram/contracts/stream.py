"""``AsyncStream``: a lazy, single-pass async stream that fails loudly.

``async for`` yields items and **raises** the typed error when the source fails, so a broken
stream is never mistaken for a finished one. ``collect()``, ``first()`` and ``drain()`` give the
same outcome as a ``Result``. The source starts on first iteration and is released by
exhaustion, failure, ``aclose()``, ``async with``, ``break`` (once the stream is dropped) or
cancellation of the consuming task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from lexigram.result import Err, Ok, Result

T_co = TypeVar("T_co", covariant=True)
U = TypeVar("U")
E = TypeVar("E", bound=BaseException)

__all__ = ["AsyncStream"]

SourceFactory = Callable[[], AsyncIterator[Any]]


class AsyncStream(Generic[T_co, E]):
    """A lazy, single-pass async stream of ``T`` whose failures are ``E``.

    ``source`` is an async iterator or a zero-argument callable returning one (called on first
    iteration). ``error_type`` is the class of expected failures; any other exception from the
    source is turned into one by ``wrap_error`` when given, else propagates unchanged.
    Exceptions of the ``passthrough`` types (configuration and programming errors that a
    non-streamed call raises too) are never wrapped.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_error_type",
        "_factory",
        "_iterator",
        "_passthrough",
        "_wrap_error",
    )

    def __init__(
        self,
        source: AsyncIterator[T_co] | Callable[[], AsyncIterator[T_co]],
        *,
        error_type: type[E],
        wrap_error: Callable[[BaseException], E] | None = None,
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> None:
        if callable(source) and not hasattr(source, "__anext__"):
            self._factory: SourceFactory | None = source
            self._iterator: AsyncIterator[Any] | None = None
        else:
            self._factory = None
            self._iterator = source  # type: ignore[assignment]
        self._error_type = error_type
        self._wrap_error = wrap_error
        self._passthrough = passthrough
        self._closed = False

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> AsyncStream[T_co, E]:
        return self

    async def __anext__(self) -> T_co:
        iterator = self._iterator
        try:
            if iterator is None:
                factory = self._factory
                if self._closed or factory is None:
                    raise StopAsyncIteration
                self._factory = None
                iterator = self._iterator = factory()
            item: T_co = await iterator.__anext__()
        except StopAsyncIteration:
            self._finish()
            raise
        except BaseException as exc:
            self._finish()
            if isinstance(exc, self._error_type) or self._wrap_error is None:
                raise
            if not isinstance(exc, Exception) or isinstance(exc, self._passthrough):
                raise  # cancellation, interpreter exits and passthrough types stay as they are
            raise self._wrap_error(exc) from exc
        return item

    def _finish(self) -> None:
        self._closed = True
        self._iterator = None

    @property
    def closed(self) -> bool:
        """``True`` once the stream ended, failed or was closed."""
        return self._closed

    # -- Result views ----------------------------------------------------------------------

    async def collect(self) -> Result[list[T_co], E]:
        """Every item as ``Ok(list)``, or ``Err`` of the failure (items seen so far are lost)."""
        items: list[T_co] = []
        try:
            async for item in self:
                items.append(item)
        except self._error_type as exc:
            return Err(exc)
        return Ok(items)

    async def first(self) -> Result[T_co | None, E]:
        """The first item (``Ok(None)`` when empty); the rest of the source is released."""
        try:
            async for item in self:
                return Ok(item)
        except self._error_type as exc:
            return Err(exc)
        finally:
            await self.aclose()
        return Ok(None)

    async def drain(self) -> Result[int, E]:
        """Consume everything, returning how many items went by."""
        count = 0
        try:
            async for _ in self:
                count += 1
        except self._error_type as exc:
            return Err(exc)
        return Ok(count)

    # -- combinators -----------------------------------------------------------------------

    def map(self, fn: Callable[[T_co], U]) -> AsyncStream[U, E]:
        """A stream of ``fn(item)``; closing it closes this one."""

        async def mapped() -> AsyncIterator[U]:
            try:
                async for item in self:
                    yield fn(item)
            finally:
                await self.aclose()

        return AsyncStream(
            mapped,
            error_type=self._error_type,
            wrap_error=self._wrap_error,
            passthrough=self._passthrough,
        )

    def filter(self, predicate: Callable[[T_co], bool]) -> AsyncStream[T_co, E]:
        """A stream of the items for which ``predicate`` is true."""

        async def filtered() -> AsyncIterator[T_co]:
            try:
                async for item in self:
                    if predicate(item):
                        yield item
            finally:
                await self.aclose()

        return AsyncStream(
            filtered,
            error_type=self._error_type,
            wrap_error=self._wrap_error,
            passthrough=self._passthrough,
        )

    def take(self, count: int) -> AsyncStream[T_co, E]:
        """At most ``count`` items; the source is released once they are taken."""

        async def taken() -> AsyncIterator[T_co]:
            if count <= 0:
                await self.aclose()
                return
            seen = 0
            try:
                async for item in self:
                    yield item
                    seen += 1
                    if seen >= count:
                        break
            finally:
                await self.aclose()

        return AsyncStream(
            taken,
            error_type=self._error_type,
            wrap_error=self._wrap_error,
            passthrough=self._passthrough,
        )

    # -- lifetime --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release the source (idempotent). A stream never started never starts."""
        iterator = self._iterator
        self._closed = True
        self._iterator = None
        self._factory = None
        if iterator is not None:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    async def __aenter__(self) -> AsyncStream[T_co, E]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
