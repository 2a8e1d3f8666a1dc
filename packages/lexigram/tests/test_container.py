from __future__ import annotations

import asyncio
from typing import Protocol

import pytest

from lexigram.di import CircularDependencyError, Container, ResolutionError


class Greeter(Protocol):
    def greet(self, name: str) -> str: ...


class Settings:
    def __init__(self, greeting: str = "Hello") -> None:
        self.greeting = greeting


class PoliteGreeter:
    def __init__(self, settings: Settings, punctuation: str = "!") -> None:
        self.settings = settings
        self.punctuation = punctuation

    def greet(self, name: str) -> str:
        return f"{self.settings.greeting}, {name}{self.punctuation}"


class Service:
    def __init__(self, greeter: Greeter, audit: Audit | None = None) -> None:
        self.greeter = greeter
        self.audit = audit


class Audit:
    pass


async def test_instance_is_returned_as_registered() -> None:
    container = Container()
    settings = Settings("Hi")
    container.register_instance(Settings, settings)
    container.register_instance("answer", 42)

    assert await container.resolve(Settings) is settings
    assert await container.resolve("answer") == 42


async def test_class_is_built_from_registered_constructor_parameters() -> None:
    container = Container()
    container.register_instance(Settings, Settings("Hi"))
    container.register_class(Greeter, PoliteGreeter)  # a protocol as the key
    container.register_class(Service, Service)

    service = await container.resolve(Service)

    assert service.greeter.greet("Ada") == "Hi, Ada!"
    assert service.audit is None  # ``Audit | None`` is not registered: default used
    assert await container.resolve(Greeter) is service.greeter  # singleton by default


async def test_optional_parameter_is_resolved_when_registered() -> None:
    container = Container()
    container.register_class(Settings, Settings)
    container.register_class(Greeter, PoliteGreeter)
    container.register_class(Audit, Audit)
    container.register_class(Service, Service)

    service = await container.resolve(Service)

    assert isinstance(service.audit, Audit)


async def test_unregistered_parameter_without_default_is_reported() -> None:
    container = Container()
    container.register_class(Greeter, PoliteGreeter)

    with pytest.raises(ResolutionError, match=r"cannot build PoliteGreeter: parameter 'settings'"):
        await container.resolve(Greeter)


async def test_factories_take_nothing_or_the_container_and_may_be_async() -> None:
    container = Container()
    container.register_factory(Settings, lambda: Settings("Hey"))

    async def make_greeter(c: Container) -> PoliteGreeter:
        return PoliteGreeter(await c.resolve(Settings), punctuation="?")

    container.register_factory(Greeter, make_greeter)

    greeter = await container.resolve(Greeter)

    assert greeter.greet("Bo") == "Hey, Bo?"


async def test_async_singleton_is_built_once_under_concurrent_first_resolves() -> None:
    container = Container()
    builds = 0

    async def slow_settings() -> Settings:
        nonlocal builds
        builds += 1
        await asyncio.sleep(0.01)
        return Settings()

    container.register_factory(Settings, slow_settings)

    results = await asyncio.gather(*(container.resolve(Settings) for _ in range(20)))

    assert builds == 1
    assert all(result is results[0] for result in results)


async def test_transient_registrations_build_a_new_object_each_time() -> None:
    container = Container()
    container.register_class(Settings, Settings, singleton=False)
    container.register_factory("counter", list, singleton=False)

    assert await container.resolve(Settings) is not await container.resolve(Settings)
    assert await container.resolve("counter") is not await container.resolve("counter")


async def test_missing_key_names_the_key_and_the_registered_keys() -> None:
    container = Container()
    container.register_instance(Settings, Settings())
    container.register_instance("db_url", "sqlite://")

    with pytest.raises(ResolutionError) as caught:
        await container.resolve(Greeter)

    message = str(caught.value)
    assert "Greeter" in message
    assert "registered keys: Settings, 'db_url'" in message


async def test_resolve_optional_returns_none_for_missing_keys() -> None:
    container = Container()
    container.register_instance(Settings, Settings())

    assert await container.resolve_optional(Greeter) is None
    assert isinstance(await container.resolve_optional(Settings), Settings)


class First:
    def __init__(self, second: Second) -> None:
        self.second = second


class Second:
    def __init__(self, first: First) -> None:
        self.first = first


async def test_cycle_is_reported_with_its_path() -> None:
    container = Container()
    container.register_class(First, First)
    container.register_class(Second, Second)
    container.register_factory("entry", lambda c: c.resolve(First))

    with pytest.raises(CircularDependencyError, match=r"First -> Second -> First$"):
        await container.resolve("entry")


async def test_failed_build_can_be_retried() -> None:
    container = Container()
    attempts = 0

    def flaky() -> Settings:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("first attempt fails")
        return Settings()

    container.register_factory(Settings, flaky)

    with pytest.raises(RuntimeError, match="first attempt fails"):
        await container.resolve(Settings)
    assert isinstance(await container.resolve(Settings), Settings)


async def test_has_and_keys_reflect_registrations() -> None:
    container = Container()
    container.register_instance("a", 1)
    container.register_class(Settings, Settings)

    assert container.has("a")
    assert container.has(Settings)
    assert not container.has(Greeter)
    assert container.keys() == ["a", Settings]


async def test_registering_again_replaces_the_previous_registration() -> None:
    container = Container()
    container.register_instance("name", "old")
    container.register_factory("name", lambda: "new")

    assert await container.resolve("name") == "new"


async def test_registering_again_during_a_build_is_not_overwritten_by_it() -> None:
    container = Container()
    release = asyncio.Event()

    async def slow_old() -> str:
        await release.wait()
        return "old"

    container.register_factory("name", slow_old)
    first = asyncio.create_task(container.resolve("name"))
    await asyncio.sleep(0)  # the old factory is now building
    container.register_factory("name", lambda: "new")
    release.set()

    assert await first == "old"  # the caller that asked before gets what it asked for
    assert await container.resolve("name") == "new"


async def test_aclose_closes_built_singletons_newest_first() -> None:
    closed: list[str] = []

    class AsyncResource:
        async def aclose(self) -> None:
            closed.append("async")

    class SyncResource:
        def close(self) -> None:
            closed.append("sync")

    class Owned:
        def close(self) -> None:
            closed.append("owned")

    class Broken:
        def close(self) -> None:
            raise RuntimeError("cannot close")

    container = Container()
    container.register_class(SyncResource, SyncResource)
    container.register_class(Broken, Broken)
    container.register_factory(AsyncResource, AsyncResource)
    container.register_instance(Owned, Owned())
    await container.resolve(SyncResource)
    await container.resolve(Broken)
    await container.resolve(AsyncResource)

    await container.aclose()

    assert closed == ["async", "sync"]  # the registered instance belongs to its owner
