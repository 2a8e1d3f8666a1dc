"""Modules: named groups of providers that import other modules.

A static module is a class::

    @module(imports=[CacheModule], providers=[LLMProvider], exports=[LLMClientProtocol])
    class LLMModule(Module): ...

and a configured one is a ``DynamicModule`` returned by a classmethod such as
``LLMModule.configure(config)``. ``collect_providers`` flattens a module graph into the
providers an ``Application`` boots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias, TypeVar

from lexigram.di.container import CircularDependencyError, Key, ResolutionError
from lexigram.di.provider import Provider

__all__ = ["DynamicModule", "Module", "ModuleLike", "ProviderLike", "collect_providers", "module"]

M = TypeVar("M")

ProviderLike: TypeAlias = Provider | type[Provider]
"""A provider instance, or a provider class to be built with no arguments."""
ModuleLike: TypeAlias = "type[Any] | DynamicModule"
"""A module class (see ``module``) or a ``DynamicModule``."""


class Module:
    """Base class for modules; ``@module(...)`` fills in these attributes."""

    imports: ClassVar[Sequence[ModuleLike]] = ()
    providers: ClassVar[Sequence[ProviderLike]] = ()
    exports: ClassVar[Sequence[Key]] = ()


def module(
    *,
    imports: Iterable[ModuleLike] = (),
    providers: Iterable[ProviderLike] = (),
    exports: Iterable[Key] = (),
) -> Callable[[type[M]], type[M]]:
    """Class decorator declaring a module's imports, providers and exported keys.

    ``exports`` documents the keys a module offers its importers; the container is shared by
    the whole application, so it does not hide anything.
    """

    def decorate(cls: type[M]) -> type[M]:
        setattr(cls, "imports", tuple(imports))  # noqa: B010 - cls need not subclass Module
        setattr(cls, "providers", tuple(providers))  # noqa: B010
        setattr(cls, "exports", tuple(exports))  # noqa: B010
        return cls

    return decorate


@dataclass(frozen=True, slots=True, eq=False)
class DynamicModule:
    """A module configured at run time: ``providers`` and ``imports`` add to ``module``'s own."""

    module: type[Any]
    providers: Sequence[ProviderLike] = ()
    imports: Sequence[ModuleLike] = ()
    exports: Sequence[Key] = ()


def collect_providers(modules: Iterable[ModuleLike]) -> list[Provider]:
    """Every provider in ``modules`` and their imports, once each, in boot order.

    Imports come before the modules that import them and a provider comes after those it
    ``requires``. A provider class listed by several modules yields one provider; an instance
    of that class, if any module gives one, is used instead of building the class.
    """
    entries: list[ProviderLike] = []
    visited: set[Any] = set()

    def visit(mod: ModuleLike) -> None:
        if mod in visited:
            return
        visited.add(mod)
        static = mod.module if isinstance(mod, DynamicModule) else mod
        if not isinstance(static, type):
            raise TypeError(f"expected a module class or a DynamicModule, got {mod!r}")
        dynamic_imports = mod.imports if isinstance(mod, DynamicModule) else ()
        for imported in (*getattr(static, "imports", ()), *dynamic_imports):
            visit(imported)
        entries.extend(getattr(static, "providers", ()))
        if isinstance(mod, DynamicModule):
            entries.extend(mod.providers)

    for mod in modules:
        visit(mod)
    return _order_by_requirements(_deduplicate(entries))


def _deduplicate(entries: list[ProviderLike]) -> list[Provider]:
    given = [entry for entry in entries if isinstance(entry, Provider)]
    providers: list[Provider] = []
    for entry in entries:
        if isinstance(entry, Provider):
            candidates = [entry]
        elif isinstance(entry, type) and issubclass(entry, Provider):
            # Instances of this class given anywhere take its place; else build it once.
            candidates = [p for p in given if type(p) is entry]
            if not candidates and not any(type(p) is entry for p in providers):
                candidates = [entry()]
        else:
            raise TypeError(f"expected a Provider instance or subclass, got {entry!r}")
        providers += [c for c in candidates if not any(c is p for p in providers)]
    return providers


def _order_by_requirements(providers: list[Provider]) -> list[Provider]:
    ordered: list[Provider] = []
    placed: set[int] = set()

    def place(provider: Provider, trail: tuple[Provider, ...]) -> None:
        if id(provider) in placed:
            return
        if any(provider is p for p in trail):
            start = next(i for i, p in enumerate(trail) if p is provider)
            cycle = " -> ".join(p.name for p in (*trail[start:], provider))
            raise CircularDependencyError(f"providers require each other: {cycle}")
        for required in provider.requires:
            matches = [p for p in providers if isinstance(p, required) and p is not provider]
            if not matches:
                raise ResolutionError(
                    f"{provider.name} requires {required.__name__}, which no module provides; "
                    "import the module that provides it"
                )
            for match in matches:
                place(match, (*trail, provider))
        placed.add(id(provider))
        ordered.append(provider)

    for provider in providers:
        place(provider, ())
    return ordered
