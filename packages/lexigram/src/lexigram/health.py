"""Health-check value types: what a provider or client reports about itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["HealthCheckResult", "HealthStatus"]

_NO_DETAILS: Mapping[str, Any] = MappingProxyType({})


class HealthStatus(StrEnum):
    """How well a component works: fully, partly, or not at all."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class HealthCheckResult:
    """The outcome of one health check, with a human message and optional details."""

    status: HealthStatus
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=lambda: _NO_DETAILS)
    latency_ms: float | None = None

    @property
    def is_healthy(self) -> bool:
        """True only for ``HealthStatus.HEALTHY``."""
        return self.status is HealthStatus.HEALTHY
