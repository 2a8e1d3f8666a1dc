"""Health-check value types, shared by every lexigram package."""

from lexigram.health import HealthCheckResult, HealthStatus

__all__ = ["HealthCheckResult", "HealthStatus"]
