"""``Application``: boots a graph of modules, hands out the container, shuts it all down.

::

    async with Application.boot(modules=[LLMModule.configure(config)]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

from lexigram.config import ConfigSource
from lexigram.di.container import Container
from lexigram.di.module import ModuleLike, collect_providers
from lexigram.di.provider import Provider
from lexigram.health import HealthCheckResult, HealthStatus

__all__ = ["Application"]

T = TypeVar("T")
ConfigLike = ConfigSource | Mapping[str, Any] | str | Path | None

logger = logging.getLogger(__name__)

_SEVERITY = {HealthStatus.HEALTHY: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNHEALTHY: 2}


class Application:
    """A running set of providers with their container and configuration.

    Build one with ``Application.boot`` (async) or ``Application.run`` (from a script).
    """

    def __init__(
        self,
        *,
        name: str,
        container: Container,
        config: ConfigSource,
        providers: Sequence[Provider],
    ) -> None:
        self.name = name
        self.container = container
        self.config = config
        self.providers = tuple(providers)

    @classmethod
    @asynccontextmanager
    async def boot(
        cls, modules: Iterable[ModuleLike] = (), *, name: str = "app", config: ConfigLike = None
    ) -> AsyncIterator[Self]:
        """Configure, register and boot every provider of ``modules``; shut them down on exit.

        ``config`` is anything ``ConfigSource.from_any`` takes. Providers boot in dependency
        order and shut down in reverse, also when the body raises. If one fails to boot, those
        already booted are shut down and its error propagates.
        """
        source = ConfigSource.from_any(config)
        container = Container()
        app = cls(
            name=name, container=container, config=source, providers=collect_providers(modules)
        )
        container.register_instance(Application, app)
        container.register_instance(ConfigSource, source)
        container.register_instance(Container, container)
        booted: list[Provider] = []
        try:
            for provider in app.providers:
                provider.configure(source)
            for provider in app.providers:
                await provider.register(container)
            for provider in app.providers:
                logger.debug("%s: booting %s", name, provider.name)
                await provider.boot(container)
                booted.append(provider)
            yield app
        finally:
            await _shut_down(reversed(booted), app_name=name)
            await container.aclose()

    @classmethod
    def run(
        cls,
        main: Callable[[Self], Awaitable[T]],
        modules: Iterable[ModuleLike] = (),
        *,
        name: str = "app",
        config: ConfigLike = None,
    ) -> T:
        """Boot, run ``await main(app)`` and shut down, in ``asyncio.run``: for scripts."""

        async def run_booted() -> T:
            async with cls.boot(modules, name=name, config=config) as app:
                return await main(app)

        return asyncio.run(run_booted())

    async def health_check(self) -> HealthCheckResult:
        """Check every provider at once; the status is the worst one, ``details`` has each."""
        started = time.perf_counter()
        results = await asyncio.gather(*(_check(provider) for provider in self.providers))
        details: dict[str, HealthCheckResult] = {}
        for provider, result in zip(self.providers, results, strict=True):
            key, count = provider.name, 1
            while key in details:
                count += 1
                key = f"{provider.name}#{count}"
            details[key] = result
        status = max((r.status for r in results), key=_SEVERITY.__getitem__, default=None)
        status = status or HealthStatus.HEALTHY
        failing = [f"{key}: {r.status}" for key, r in details.items() if not r.is_healthy]
        message = "; ".join(failing) or f"{len(details)} providers healthy"
        latency_ms = (time.perf_counter() - started) * 1000
        return HealthCheckResult(status, message, details, latency_ms)

    def __repr__(self) -> str:
        names = ", ".join(provider.name for provider in self.providers)
        return f"<Application {self.name!r} providers=[{names}]>"


async def _check(provider: Provider) -> HealthCheckResult:
    try:
        return await provider.health_check()
    except Exception as exc:
        return HealthCheckResult(
            HealthStatus.UNHEALTHY, f"health check raised {type(exc).__name__}: {exc}"
        )


async def _shut_down(providers: Iterable[Provider], *, app_name: str) -> None:
    for provider in providers:
        try:
            await provider.shutdown()
        except Exception:
            logger.exception("%s: shutting down %s failed", app_name, provider.name)
