"""``Result``: a value or an error, returned instead of raised for expected failures.

``Result[T, E]`` is ``Ok[T] | Err[E]``. Both sides are frozen, slotted, hashable and support
structural pattern matching::

    match await llm.complete(messages):
        case Ok(completion):
            print(completion.content)
        case Err(error):
            print(f"failed: {error}")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeAlias, TypeVar

T = TypeVar("T")
E = TypeVar("E")
U = TypeVar("U")
F = TypeVar("F")
R = TypeVar("R")
T_co = TypeVar("T_co", covariant=True)
E_co = TypeVar("E_co", covariant=True)

__all__ = [
    "Err",
    "Ok",
    "Result",
    "UnwrapError",
    "as_async_result",
    "as_result",
    "collect",
    "partition",
    "wrap",
    "wrap_async",
]


class UnwrapError(Exception):
    """Raised by ``unwrap``/``expect`` on the wrong side of a ``Result``; names what it held."""

    def __init__(self, message: str, result: Ok[Any] | Err[Any]) -> None:
        super().__init__(message)
        self.result = result


# Slots are declared by hand: ``dataclass(slots=True)`` on a frozen generic class breaks
# ``Ok[int](1)`` on Python 3.11 (fixed in 3.12).
@dataclass(frozen=True)
class Ok(Generic[T_co]):
    """The success side of a ``Result``."""

    __slots__ = ("value",)
    value: T_co

    def is_ok(self) -> bool:
        return True

    def is_err(self) -> bool:
        return False

    def ok(self) -> T_co:
        return self.value

    def err(self) -> None:
        return None

    def unwrap(self) -> T_co:
        return self.value

    def unwrap_err(self) -> NoReturn:
        raise UnwrapError(f"called unwrap_err() on Ok({self.value!r})", self)

    def unwrap_or(self, default: object) -> T_co:
        return self.value

    def unwrap_or_else(self, fn: Callable[[Any], object]) -> T_co:
        return self.value

    def expect(self, message: str) -> T_co:
        return self.value

    def expect_err(self, message: str) -> NoReturn:
        raise UnwrapError(f"{message}: Ok({self.value!r})", self)

    def match(self, *, ok: Callable[[T_co], R], err: Callable[[Any], R]) -> R:
        return ok(self.value)

    def map(self, fn: Callable[[T_co], U]) -> Ok[U]:
        return Ok(fn(self.value))

    def map_err(self, fn: Callable[[Any], object]) -> Ok[T_co]:
        return self

    def and_then(self, fn: Callable[[T_co], Result[U, F]]) -> Result[U, F]:
        return fn(self.value)

    def or_else(self, fn: Callable[[Any], object]) -> Ok[T_co]:
        return self

    async def map_async(self, fn: Callable[[T_co], Awaitable[U]]) -> Ok[U]:
        return Ok(await fn(self.value))

    async def map_err_async(self, fn: Callable[[Any], Awaitable[object]]) -> Ok[T_co]:
        return self

    async def and_then_async(self, fn: Callable[[T_co], Awaitable[Result[U, F]]]) -> Result[U, F]:
        return await fn(self.value)

    async def or_else_async(self, fn: Callable[[Any], Awaitable[object]]) -> Ok[T_co]:
        return self

    def __repr__(self) -> str:
        return f"Ok({self.value!r})"

    def __reduce__(self) -> tuple[type[Ok[T_co]], tuple[T_co]]:
        return (type(self), (self.value,))

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class Err(Generic[E_co]):
    """The failure side of a ``Result``."""

    __slots__ = ("error",)
    error: E_co

    def is_ok(self) -> bool:
        return False

    def is_err(self) -> bool:
        return True

    def ok(self) -> None:
        return None

    def err(self) -> E_co:
        return self.error

    def unwrap(self) -> NoReturn:
        raise UnwrapError(f"called unwrap() on Err({self.error!r})", self) from (
            self.error if isinstance(self.error, BaseException) else None
        )

    def unwrap_err(self) -> E_co:
        return self.error

    def unwrap_or(self, default: U) -> U:
        return default

    def unwrap_or_else(self, fn: Callable[[E_co], U]) -> U:
        return fn(self.error)

    def expect(self, message: str) -> NoReturn:
        raise UnwrapError(f"{message}: Err({self.error!r})", self) from (
            self.error if isinstance(self.error, BaseException) else None
        )

    def expect_err(self, message: str) -> E_co:
        return self.error

    def match(self, *, ok: Callable[[Any], R], err: Callable[[E_co], R]) -> R:
        return err(self.error)

    def map(self, fn: Callable[[Any], object]) -> Err[E_co]:
        return self

    def map_err(self, fn: Callable[[E_co], F]) -> Err[F]:
        return Err(fn(self.error))

    def and_then(self, fn: Callable[[Any], object]) -> Err[E_co]:
        return self

    def or_else(self, fn: Callable[[E_co], Result[U, F]]) -> Result[U, F]:
        return fn(self.error)

    async def map_async(self, fn: Callable[[Any], Awaitable[object]]) -> Err[E_co]:
        return self

    async def map_err_async(self, fn: Callable[[E_co], Awaitable[F]]) -> Err[F]:
        return Err(await fn(self.error))

    async def and_then_async(self, fn: Callable[[Any], Awaitable[object]]) -> Err[E_co]:
        return self

    async def or_else_async(self, fn: Callable[[E_co], Awaitable[Result[U, F]]]) -> Result[U, F]:
        return await fn(self.error)

    def __repr__(self) -> str:
        return f"Err({self.error!r})"

    def __reduce__(self) -> tuple[type[Err[E_co]], tuple[E_co]]:
        return (type(self), (self.error,))

    def __bool__(self) -> bool:
        return False


Result: TypeAlias = Ok[T] | Err[E]


def wrap(fn: Callable[[], T], *exceptions: type[BaseException]) -> Result[T, BaseException]:
    """Call ``fn``; return ``Ok`` of its value, or ``Err`` of one of ``exceptions`` it raised.

    With no ``exceptions`` given, any ``Exception`` is caught. Others propagate.
    """
    catch = exceptions or (Exception,)
    try:
        return Ok(fn())
    except catch as exc:
        return Err(exc)


async def wrap_async(
    awaitable: Awaitable[T], *exceptions: type[BaseException]
) -> Result[T, BaseException]:
    """Await ``awaitable``; ``Ok`` of its value or ``Err`` of a caught exception."""
    catch = exceptions or (Exception,)
    try:
        return Ok(await awaitable)
    except catch as exc:
        return Err(exc)


def as_result(
    *exceptions: type[BaseException],
) -> Callable[[Callable[..., T]], Callable[..., Result[T, BaseException]]]:
    """Decorator: make a raising function return a ``Result`` instead."""
    catch = exceptions or (Exception,)

    def decorate(fn: Callable[..., T]) -> Callable[..., Result[T, BaseException]]:
        def wrapper(*args: Any, **kwargs: Any) -> Result[T, BaseException]:
            try:
                return Ok(fn(*args, **kwargs))
            except catch as exc:
                return Err(exc)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = fn.__doc__
        return wrapper

    return decorate


def as_async_result(
    *exceptions: type[BaseException],
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[Result[T, BaseException]]]]:
    """Decorator: make a raising coroutine function return a ``Result`` instead."""
    catch = exceptions or (Exception,)

    def decorate(
        fn: Callable[..., Awaitable[T]],
    ) -> Callable[..., Awaitable[Result[T, BaseException]]]:
        async def wrapper(*args: Any, **kwargs: Any) -> Result[T, BaseException]:
            try:
                return Ok(await fn(*args, **kwargs))
            except catch as exc:
                return Err(exc)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = fn.__doc__
        return wrapper

    return decorate


def collect(results: Iterable[Result[T, E]]) -> Result[list[T], E]:
    """``Ok`` of all values in order, or the first ``Err`` met."""
    values: list[T] = []
    for result in results:
        if isinstance(result, Err):
            return result
        values.append(result.value)
    return Ok(values)


def partition(results: Iterable[Result[T, E]]) -> tuple[list[T], list[E]]:
    """Split results into the list of values and the list of errors, each in order."""
    values: list[T] = []
    errors: list[E] = []
    for result in results:
        if isinstance(result, Ok):
            values.append(result.value)
        else:
            errors.append(result.error)
    return values, errors
