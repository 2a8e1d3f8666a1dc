"""``Provider``: a unit of wiring with a lifecycle — configure, register, boot, shutdown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from lexigram.config import ConfigSource, SectionSettings
from lexigram.health import HealthCheckResult, HealthStatus

if TYPE_CHECKING:
    from lexigram.di.container import Container

__all__ = ["Provider"]


class Provider:
    """Registers services in the container and starts and stops what they need.

    The application calls, in dependency order (``requires`` first): ``configure`` and
    ``register`` on every provider, then ``boot`` on each; at exit, ``shutdown`` in reverse
    order on those that booted. A provider whose ``boot`` raises must release what it started
    before raising.

    With ``config_model`` set, ``configure`` loads ``self.config`` from the application's
    ``ConfigSource``; fields set explicitly in ``explicit_config`` win over the environment,
    which wins over YAML, which wins over defaults.
    """

    name: ClassVar[str] = "Provider"
    config_section: ClassVar[str | None] = None
    config_model: ClassVar[type[SectionSettings] | None] = None
    requires: ClassVar[tuple[type[Provider], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
        if cls.config_model is not None:
            section = cls.config_model.__section__
            if cls.config_section is None:
                cls.config_section = section
            elif cls.config_section != section:
                raise TypeError(
                    f"{cls.__name__}.config_section is {cls.config_section!r} but its "
                    f"config_model {cls.config_model.__name__} reads section {section!r}"
                )

    def __init__(self, config: BaseModel | None = None) -> None:
        self.explicit_config = config
        self.config: BaseModel | None = config

    def configure(self, source: ConfigSource) -> None:
        """Resolve ``self.config`` from ``source`` and the explicitly given configuration."""
        if self.config_model is None:
            return
        explicit: dict[str, Any] = {}
        if self.explicit_config is not None:
            given = self.explicit_config
            explicit = {name: getattr(given, name) for name in given.model_fields_set}
        self.config = self.config_model.load(source, **explicit)

    async def register(self, container: Container) -> None:
        """Register this provider's services in ``container``. Start nothing here."""

    async def boot(self, container: Container) -> None:
        """Start what the services need (connections, background tasks), once all are registered."""

    async def shutdown(self) -> None:
        """Stop what ``boot`` started."""

    async def health_check(self) -> HealthCheckResult:
        """Report this provider's health; healthy unless overridden."""
        return HealthCheckResult(HealthStatus.HEALTHY)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
