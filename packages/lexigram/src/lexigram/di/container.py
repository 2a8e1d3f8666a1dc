"""A small async service container: register instances, classes or factories, resolve by key.

Keys are types (protocols included) or strings::

    container.register_instance(ClientConfig, config)
    container.register_class(LLMClientProtocol, HttpLLMClient)   # __init__ args resolved by type
    container.register_factory("db", open_database)             # sync or async, () or (container)
    llm = await container.resolve(LLMClientProtocol)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import types
import typing
from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import TypeForm

__all__ = ["CircularDependencyError", "Container", "Key", "ResolutionError"]

T = TypeVar("T")
Key: TypeAlias = Hashable
"""A registration key: a type (a protocol is fine) or a string."""

logger = logging.getLogger(__name__)

# The keys being built by the current task, outermost first; used to report cycles.
_resolving: ContextVar[tuple[Key, ...]] = ContextVar("lexigram_di_resolving", default=())


class ResolutionError(LookupError):
    """A key cannot be resolved: nothing is registered for it, or it cannot be built."""


class CircularDependencyError(ResolutionError):
    """Resolving a key needs that same key again; the message shows the path."""


@dataclass(slots=True)
class _Registration:
    build: Callable[[Container], Awaitable[Any]]
    singleton: bool


class Container:
    """Maps keys to instances, classes and factories, and builds what is asked for."""

    def __init__(self) -> None:
        self._registrations: dict[Key, _Registration] = {}
        self._singletons: dict[Any, Any] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._built: list[tuple[Key, Any]] = []  # what this container created, oldest first

    def register_instance(self, key: TypeForm[T] | str, instance: T) -> None:
        """Register a ready-made object; ``resolve(key)`` returns it as is."""

        async def build(_: Container) -> Any:
            return instance

        self._add(key, _Registration(build, singleton=True))
        self._singletons[key] = instance

    def register_class(
        self, key: TypeForm[T] | str, cls: type[T], *, singleton: bool = True
    ) -> None:
        """Register a class, built by resolving its typed ``__init__`` parameters.

        A parameter whose annotation is a registered key is resolved; any other must have a
        default. With ``singleton=False`` every ``resolve`` builds a new object.
        """

        async def build(container: Container) -> Any:
            return cls(**await container._constructor_arguments(cls))

        self._add(key, _Registration(build, singleton))

    def register_factory(
        self,
        key: TypeForm[T] | str,
        factory: Callable[[], T | Awaitable[T]] | Callable[[Container], T | Awaitable[T]],
        *,
        singleton: bool = True,
    ) -> None:
        """Register a factory taking no argument or the container; it may be ``async``.

        A singleton factory runs once, even when first resolved by many tasks at the same time.
        """
        call: Callable[..., Any] = factory
        wants_container = _required_positional_count(factory) >= 1

        async def build(container: Container) -> Any:
            result = call(container) if wants_container else call()
            return await result if inspect.isawaitable(result) else result

        self._add(key, _Registration(build, singleton))

    @overload
    async def resolve(self, key: TypeForm[T]) -> T: ...
    @overload
    async def resolve(self, key: str) -> Any: ...
    async def resolve(self, key: Any) -> Any:
        """Return the object registered under ``key``, building it if needed.

        Raises ``ResolutionError`` when nothing is registered and ``CircularDependencyError``
        when building it needs itself.
        """
        if key in self._singletons:
            return self._singletons[key]
        registration = self._registrations.get(key)
        if registration is None:
            raise ResolutionError(
                f"nothing is registered for {_name(key)}; registered keys: {self._listing()}"
            )
        path = _resolving.get()
        if key in path:
            cycle = " -> ".join(_name(k) for k in (*path[path.index(key) :], key))
            raise CircularDependencyError(f"circular dependency: {cycle}")
        token = _resolving.set((*path, key))
        try:
            if not registration.singleton:
                return await registration.build(self)
            async with self._locks.setdefault(key, asyncio.Lock()):
                if key in self._singletons:
                    return self._singletons[key]
                instance = await registration.build(self)
                self._built.append((key, instance))
                # Registered again while this was being built: the new registration wins.
                if self._registrations.get(key) is registration:
                    self._singletons[key] = instance
                return instance
        finally:
            _resolving.reset(token)

    @overload
    async def resolve_optional(self, key: TypeForm[T]) -> T | None: ...
    @overload
    async def resolve_optional(self, key: str) -> Any: ...
    async def resolve_optional(self, key: Any) -> Any:
        """Like ``resolve``, but ``None`` when nothing is registered under ``key``."""
        if key not in self._registrations:
            return None
        return await self.resolve(key)

    def has(self, key: Key) -> bool:
        """Whether something is registered under ``key``."""
        return key in self._registrations

    def keys(self) -> list[Key]:
        """The registered keys, in registration order."""
        return list(self._registrations)

    async def aclose(self) -> None:
        """Close the singletons this container built, newest first (``aclose()`` or ``close()``).

        Registered instances belong to whoever registered them and are left alone. A failing
        close is logged and the others still run.
        """
        built, self._built = self._built, []
        for key, instance in reversed(built):
            if self._singletons.get(key) is instance:
                del self._singletons[key]
            close = getattr(instance, "aclose", None) or getattr(instance, "close", None)
            if not callable(close):
                continue
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("closing %s failed", _name(key))

    def _add(self, key: Any, registration: _Registration) -> None:
        self._registrations[key] = registration
        self._singletons.pop(key, None)

    async def _constructor_arguments(self, cls: type[Any]) -> dict[str, Any]:
        try:
            hints = typing.get_type_hints(cls.__init__)
        except Exception:  # unresolvable forward references: fall back to the raw annotations
            hints = {}
        arguments: dict[str, Any] = {}
        for name, parameter in list(inspect.signature(cls).parameters.items()):
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            annotation = hints.get(name, parameter.annotation)
            key = _registered_key(self, annotation)
            if key is not None:
                arguments[name] = await self.resolve(key)
            elif parameter.default is parameter.empty:
                raise ResolutionError(
                    f"cannot build {_name(cls)}: parameter {name!r} ({_name(annotation)}) is not "
                    f"registered and has no default; registered keys: {self._listing()}"
                )
        return arguments

    def _listing(self) -> str:
        return ", ".join(_name(key) for key in self._registrations) or "(none)"


def _registered_key(container: Container, annotation: Any) -> Any:
    """The key to resolve for a parameter annotation: itself, or ``X`` in ``X | None``."""
    candidates = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates += [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    for candidate in candidates:
        # A string annotation is an unresolved forward reference, not a string key.
        if isinstance(candidate, str) or candidate is inspect.Parameter.empty:
            continue
        try:
            if container.has(candidate):
                return candidate
        except TypeError:  # unhashable annotation
            continue
    return None


def _required_positional_count(function: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature
        return 0
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in positional and p.default is p.empty)


def _name(key: Any) -> str:
    if isinstance(key, str):
        return repr(key)
    if isinstance(key, type):
        return key.__qualname__
    return repr(key)
