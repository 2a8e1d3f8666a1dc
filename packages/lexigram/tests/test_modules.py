from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from lexigram.config import ConfigSource, SectionSettings
from lexigram.di import (
    CircularDependencyError,
    DynamicModule,
    Module,
    Provider,
    ResolutionError,
    collect_providers,
    module,
)


class DatabaseProvider(Provider):
    pass


class CacheProvider(Provider):
    pass


class RedisCacheProvider(CacheProvider):
    pass


class ServiceProvider(Provider):
    requires = (CacheProvider, DatabaseProvider)


@module(providers=[DatabaseProvider])
class DatabaseModule(Module):
    pass


@module(imports=[DatabaseModule], providers=[RedisCacheProvider])
class CacheModule(Module):
    pass


@module(imports=[DatabaseModule, CacheModule], providers=[DatabaseProvider])
class AppModule:  # a module need not subclass Module
    pass


def names(providers: list[Provider]) -> list[str]:
    return [provider.name for provider in providers]


def test_imports_come_first_and_each_provider_class_counts_once() -> None:
    providers = collect_providers([AppModule])

    assert names(providers) == ["DatabaseProvider", "RedisCacheProvider"]


def test_requires_orders_providers_whatever_the_module_order() -> None:
    @module(providers=[ServiceProvider], imports=[CacheModule])
    class ServiceModule(Module):
        pass

    @module(providers=[ServiceProvider, RedisCacheProvider, DatabaseProvider])
    class FlatModule(Module):
        pass

    assert names(collect_providers([ServiceModule])) == [
        "DatabaseProvider",
        "RedisCacheProvider",
        "ServiceProvider",
    ]
    # ``requires`` names CacheProvider; its subclass satisfies it.
    assert names(collect_providers([FlatModule])) == [
        "RedisCacheProvider",
        "DatabaseProvider",
        "ServiceProvider",
    ]


def test_missing_required_provider_is_reported() -> None:
    @module(providers=[ServiceProvider, DatabaseProvider])
    class IncompleteModule(Module):
        pass

    with pytest.raises(ResolutionError, match="ServiceProvider requires CacheProvider"):
        collect_providers([IncompleteModule])


def test_providers_requiring_each_other_are_reported() -> None:
    class PingProvider(Provider):
        pass

    class PongProvider(Provider):
        requires = (PingProvider,)

    PingProvider.requires = (PongProvider,)

    @module(providers=[PingProvider, PongProvider])
    class LoopModule(Module):
        pass

    with pytest.raises(
        CircularDependencyError, match="PingProvider -> PongProvider -> PingProvider"
    ):
        collect_providers([LoopModule])


def test_dynamic_module_adds_to_its_static_module_and_its_instance_wins() -> None:
    configured = DatabaseProvider()

    class ReportingProvider(Provider):
        name = "reports"

    dynamic = DynamicModule(
        module=CacheModule, providers=[configured, ReportingProvider], imports=[DatabaseModule]
    )

    providers = collect_providers([dynamic, AppModule])

    assert providers[0] is configured  # the given instance replaces the bare class everywhere
    assert names(providers) == ["DatabaseProvider", "RedisCacheProvider", "reports"]


def test_same_instance_listed_twice_counts_once() -> None:
    shared = CacheProvider()
    providers = collect_providers(
        [DynamicModule(module=Module, providers=[shared]), DynamicModule(Module, [shared])]
    )

    assert providers == [shared]


def test_non_module_entries_are_rejected() -> None:
    with pytest.raises(TypeError, match="module class or a DynamicModule"):
        collect_providers([DatabaseProvider()])  # type: ignore[list-item]


class GreetingSettings(SectionSettings):
    __section__: ClassVar[str] = "greeting"
    word: str = "Hello"
    repeat: int = 1
    loud: bool = False


class GreetingProvider(Provider):
    config_model = GreetingSettings


def test_provider_defaults_name_and_section_from_its_class() -> None:
    assert GreetingProvider.name == "GreetingProvider"
    assert GreetingProvider.config_section == "greeting"
    assert Provider.config_section is None


def test_configure_explicit_beats_environment_beats_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "application.yaml").write_text("greeting: {word: Hi, repeat: 2, loud: true}")
    monkeypatch.setenv("LEX_GREETING__REPEAT", "3")
    monkeypatch.setenv("LEX_GREETING__WORD", "Hey")
    provider = GreetingProvider(GreetingSettings(word="Yo"))

    provider.configure(ConfigSource(tmp_path))

    assert isinstance(provider.config, GreetingSettings)
    assert provider.config.model_dump() == {"word": "Yo", "repeat": 3, "loud": True}


def test_configure_without_explicit_config_reads_the_source(tmp_path: Path) -> None:
    provider = GreetingProvider()

    provider.configure(ConfigSource(overrides={"greeting": {"repeat": 4}}, environ={}))

    assert isinstance(provider.config, GreetingSettings)
    assert (provider.config.word, provider.config.repeat) == ("Hello", 4)


def test_mismatched_config_section_is_rejected_at_class_definition() -> None:
    with pytest.raises(TypeError, match="reads section 'greeting'"):

        class WrongProvider(Provider):
            config_section = "other"
            config_model = GreetingSettings
