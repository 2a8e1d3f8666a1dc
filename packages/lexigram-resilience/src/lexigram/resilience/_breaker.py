"""Circuit breaker: stop calling a failing dependency, then probe it with one call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_CLOSED = CircuitState.CLOSED


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; one probe after ``recovery_timeout``.

    ``allow()`` asks whether a call may go ahead; report its outcome with ``record_success()``,
    ``record_failure()`` or, for a probe that proved nothing (cancelled, a caller's mistake),
    ``release_probe()``. A probe not reported back within ``probe_timeout`` seconds (its caller
    vanished without a word) is reclaimed: the next ``allow()`` hands out a new one, so a lost
    probe cannot keep the breaker shut for good. Outcomes reported while the breaker is open
    (late answers to calls admitted before it opened) leave it as it is. Safe to share between
    threads and tasks.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        probe_timeout: float = 120.0,
    ) -> None:
        _check_settings(failure_threshold, recovery_timeout, probe_timeout)
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.probe_timeout = probe_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._probe_started = 0.0

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self._state.value}, failures={self._failures})"

    @property
    def state(self) -> CircuitState:
        """The current state; an open breaker turns half-open when ``allow()`` admits a probe."""
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    def allow(self) -> bool:
        """``True`` when a call may go ahead now (at most one probe at a time when half-open)."""
        if self._state is _CLOSED:  # the common case, read without the lock
            return True
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return True
            if self._state is CircuitState.OPEN:
                if self._clock() - self._opened_at < self.recovery_timeout:
                    return False
                self._state = CircuitState.HALF_OPEN
            now = self._clock()
            if self._probe_in_flight and now - self._probe_started < self.probe_timeout:
                return False
            self._probe_in_flight = True
            self._probe_started = now
            return True

    def record_success(self) -> None:
        """A call succeeded: a half-open breaker closes; a closed one forgets its failures."""
        if self._state is _CLOSED and not self._failures and not self._probe_in_flight:
            return  # nothing to change (read without the lock)
        with self._lock:
            if self._state is CircuitState.OPEN:
                return
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._probe_in_flight = False

    def record_failure(self) -> None:
        """A call failed: a failed probe reopens the breaker; enough failures open a closed one."""
        with self._lock:
            if self._state is CircuitState.HALF_OPEN:
                self._open()
            elif self._state is CircuitState.CLOSED:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open()

    def release_probe(self) -> None:
        """Give back the probe slot when the probe ended in neither success nor failure."""
        with self._lock:
            self._probe_in_flight = False

    def retry_in(self) -> float:
        """Seconds until a call may be admitted again (0 when one may go now).

        While a probe is in flight this is the full ``recovery_timeout`` (the wait if it fails),
        or less when the probe is reclaimed sooner.
        """
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return 0.0
            if self._state is CircuitState.HALF_OPEN:
                if not self._probe_in_flight:
                    return 0.0
                reclaim = self._probe_started + self.probe_timeout - self._clock()
                return max(0.0, min(self.recovery_timeout, reclaim))
            return max(0.0, self._opened_at + self.recovery_timeout - self._clock())

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._failures = 0
        self._probe_in_flight = False


class CircuitBreakerRegistry:
    """One breaker per ``(provider, model)``, created on first use with shared settings."""

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        probe_timeout: float = 120.0,
    ) -> None:
        _check_settings(failure_threshold, recovery_timeout, probe_timeout)
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.probe_timeout = probe_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, provider: str, model: str) -> CircuitBreaker:
        """The breaker for ``provider``/``model``, created closed when first asked for."""
        key = (provider, model)
        breaker = self._breakers.get(key)  # breakers are never removed: no lock to find one
        if breaker is not None:
            return breaker
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = CircuitBreaker(
                    self.failure_threshold,
                    self.recovery_timeout,
                    self._clock,
                    probe_timeout=self.probe_timeout,
                )
                self._breakers[key] = breaker
            return breaker

    def items(self) -> list[tuple[tuple[str, str], CircuitBreaker]]:
        """Every breaker created so far, with its ``(provider, model)`` key."""
        with self._lock:
            return list(self._breakers.items())


def _check_settings(failure_threshold: int, recovery_timeout: float, probe_timeout: float) -> None:
    if failure_threshold < 1:
        raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
    if recovery_timeout < 0:
        raise ValueError(f"recovery_timeout must not be negative, got {recovery_timeout}")
    if not probe_timeout > 0:
        raise ValueError(f"probe_timeout must be positive, got {probe_timeout}")
