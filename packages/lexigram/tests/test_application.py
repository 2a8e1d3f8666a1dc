from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import pytest

from lexigram import Application
from lexigram.config import ConfigSource, SectionSettings
from lexigram.di import Container, DynamicModule, Module, Provider, module
from lexigram.health import HealthCheckResult, HealthStatus


class Recorder(Provider):
    """Appends ``"<step>:<name>"`` to a shared journal for each lifecycle step."""

    journal: ClassVar[list[str]] = []
    fail_on: ClassVar[set[str]] = set()

    async def register(self, container: Container) -> None:
        self._step("register")
        container.register_instance(self.name, self)

    async def boot(self, container: Container) -> None:
        self._step("boot")

    async def shutdown(self) -> None:
        self._step("shutdown")

    def _step(self, step: str) -> None:
        self.journal.append(f"{step}:{self.name}")
        if f"{step}:{self.name}" in self.fail_on:
            raise RuntimeError(f"{step} of {self.name} failed")


class Database(Recorder):
    pass


class Cache(Recorder):
    requires = (Database,)


class Api(Recorder):
    requires = (Cache,)


@module(providers=[Database])
class DatabaseModule(Module):
    pass


@module(imports=[DatabaseModule], providers=[Api, Cache])
class ApiModule(Module):
    pass


@pytest.fixture(autouse=True)
def fresh_journal() -> None:
    Recorder.journal.clear()
    Recorder.fail_on.clear()


async def test_registers_all_then_boots_in_order_then_shuts_down_in_reverse() -> None:
    async with Application.boot(modules=[ApiModule], name="shop") as app:
        assert app.name == "shop"
        assert isinstance(app.config, ConfigSource)
        assert await app.container.resolve(Application) is app
        assert isinstance(await app.container.resolve("Api"), Api)
        assert Recorder.journal == [
            "register:Database",
            "register:Cache",
            "register:Api",
            "boot:Database",
            "boot:Cache",
            "boot:Api",
        ]
        Recorder.journal.clear()

    assert Recorder.journal == ["shutdown:Api", "shutdown:Cache", "shutdown:Database"]


async def test_shuts_down_when_the_body_raises() -> None:
    async def use_app_and_fail() -> None:
        async with Application.boot(modules=[ApiModule]):
            Recorder.journal.clear()
            raise KeyError("from the body")

    with pytest.raises(KeyError, match="from the body"):
        await use_app_and_fail()

    assert Recorder.journal == ["shutdown:Api", "shutdown:Cache", "shutdown:Database"]


async def test_failed_boot_shuts_down_what_already_booted() -> None:
    Recorder.fail_on.add("boot:Cache")
    entered = False

    with pytest.raises(RuntimeError, match="boot of Cache failed"):
        async with Application.boot(modules=[ApiModule]):
            entered = True

    assert not entered
    assert Recorder.journal[3:] == ["boot:Database", "boot:Cache", "shutdown:Database"]


async def test_failed_shutdown_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    Recorder.fail_on.add("shutdown:Cache")

    with caplog.at_level(logging.ERROR, logger="lexigram"):
        async with Application.boot(modules=[ApiModule]):
            Recorder.journal.clear()

    assert Recorder.journal == ["shutdown:Api", "shutdown:Cache", "shutdown:Database"]
    assert "shutting down Cache failed" in caplog.text
    assert "shutdown of Cache failed" in caplog.text


class Resource:
    closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_container_singletons_are_closed_at_exit() -> None:
    class ResourceProvider(Provider):
        async def register(self, container: Container) -> None:
            container.register_class(Resource, Resource)

    async with Application.boot(modules=[DynamicModule(Module, [ResourceProvider])]) as app:
        resource = await app.container.resolve(Resource)
        assert not resource.closed

    assert resource.closed


class GreetingSettings(SectionSettings):
    __section__: ClassVar[str] = "greeting"
    word: str = "Hello"
    name: str = "world"


class GreetingProvider(Provider):
    config_model = GreetingSettings
    config: GreetingSettings | None

    async def register(self, container: Container) -> None:
        assert self.config is not None
        container.register_instance("greeting", f"{self.config.word}, {self.config.name}")


class GreetingModule(Module):
    @classmethod
    def configure(cls, settings: GreetingSettings | None = None) -> DynamicModule:
        return DynamicModule(module=cls, providers=[GreetingProvider(settings)])


async def test_configuration_reaches_providers_with_explicit_over_env_over_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "application.yaml").write_text("greeting: {word: Hi, name: yaml}")
    monkeypatch.setenv("LEX_GREETING__NAME", "env")
    modules = [GreetingModule.configure(GreetingSettings(word="Hey"))]

    async with Application.boot(modules=modules, config=config_dir) as app:
        assert await app.container.resolve("greeting") == "Hey, env"

    async with Application.boot(modules=[GreetingModule.configure()], config=config_dir) as app:
        assert await app.container.resolve("greeting") == "Hi, env"

    config = {"greeting": {"word": "Ahoy"}}
    async with Application.boot(modules=[GreetingModule.configure()], config=config) as app:
        assert await app.container.resolve("greeting") == "Ahoy, env"


class StatusProvider(Provider):
    def __init__(self, name: str, status: HealthStatus | Exception) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]
        self.status = status

    async def health_check(self) -> HealthCheckResult:
        if isinstance(self.status, Exception):
            raise self.status
        return HealthCheckResult(self.status, message=f"{self.name} is {self.status}")


def status_module(*providers: Provider) -> DynamicModule:
    return DynamicModule(module=Module, providers=providers)


async def test_health_is_healthy_when_every_provider_is() -> None:
    modules = [status_module(StatusProvider("db", HealthStatus.HEALTHY), Database())]

    async with Application.boot(modules=modules) as app:
        health = await app.health_check()

    assert health.is_healthy
    assert set(health.details) == {"db", "Database"}
    assert health.latency_ms is not None


async def test_health_reports_the_worst_status_and_each_provider() -> None:
    modules = [
        status_module(
            StatusProvider("db", HealthStatus.HEALTHY),
            StatusProvider("cache", HealthStatus.DEGRADED),
            StatusProvider("llm", ConnectionError("refused")),
        )
    ]

    async with Application.boot(modules=modules) as app:
        health = await app.health_check()

    assert health.status is HealthStatus.UNHEALTHY
    assert health.details["db"].is_healthy
    assert health.details["cache"].status is HealthStatus.DEGRADED
    assert health.details["llm"].status is HealthStatus.UNHEALTHY
    assert "ConnectionError: refused" in health.details["llm"].message
    assert health.message == "cache: degraded; llm: unhealthy"


async def test_health_with_only_a_degraded_provider_is_degraded() -> None:
    modules = [status_module(StatusProvider("cache", HealthStatus.DEGRADED))]

    async with Application.boot(modules=modules) as app:
        assert (await app.health_check()).status is HealthStatus.DEGRADED


def test_run_boots_runs_main_and_shuts_down() -> None:
    async def main(app: Application) -> str:
        api = await app.container.resolve("Api")
        return f"{app.name} has {api.name}"

    assert Application.run(main, modules=[ApiModule], name="script") == "script has Api"
    assert Recorder.journal[-3:] == ["shutdown:Api", "shutdown:Cache", "shutdown:Database"]
