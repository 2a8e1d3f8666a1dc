# mypy: disable-error-code="comparison-overlap"
# (mypy keeps ``breaker.state`` narrowed across the calls that change it)
import asyncio

import pytest

from lexigram.resilience import CircuitBreaker, CircuitBreakerRegistry, CircuitState
from tests_support.clock import FakeClock


def open_breaker(clock: FakeClock, threshold: int = 3) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=threshold, recovery_timeout=30.0, clock=clock)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    return breaker


def test_closed_breaker_allows_and_counts_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=clock)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.allow()
    assert breaker.retry_in() == 0.0
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success in between resets the run
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failures == 2
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN


def test_open_breaker_rejects_until_the_recovery_timeout(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    assert not breaker.allow()
    assert breaker.retry_in() == 30.0
    clock.advance(29.5)
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(0.5)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.5)
    assert breaker.retry_in() == 0.0
    assert breaker.allow()
    assert breaker.state is CircuitState.HALF_OPEN


def test_successful_probe_closes(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failures == 0
    assert all(breaker.allow() for _ in range(5))


def test_failed_probe_reopens_with_a_fresh_timer(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(45.0)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_in() == 30.0
    clock.advance(29.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()


def test_half_open_admits_exactly_one_probe(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30.0)
    answers = [breaker.allow() for _ in range(10)]
    assert answers.count(True) == 1
    assert answers[0]
    assert breaker.retry_in() == 30.0  # what a failing probe would cost


async def test_single_probe_among_concurrent_tasks(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30.0)
    started = asyncio.Event()
    release = asyncio.Event()
    outcomes: list[str] = []

    async def call() -> None:
        if not breaker.allow():
            outcomes.append("rejected")
            return
        outcomes.append("probe")
        started.set()
        await release.wait()
        breaker.record_success()

    tasks = [asyncio.create_task(call()) for _ in range(20)]
    await started.wait()
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert outcomes.count("probe") == 1
    assert outcomes.count("rejected") == 19
    assert breaker.state is CircuitState.CLOSED


def test_released_probe_lets_the_next_caller_probe(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30.0)
    assert breaker.allow()
    assert not breaker.allow()
    breaker.release_probe()  # e.g. the probe was cancelled
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.retry_in() == 0.0
    assert breaker.allow()
    assert not breaker.allow()


def test_a_probe_never_reported_back_is_reclaimed_after_probe_timeout(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=30.0, clock=clock, probe_timeout=10.0
    )
    assert breaker.allow()
    breaker.record_failure()
    clock.advance(30.0)
    assert breaker.allow()  # the probe; its caller then vanishes without reporting
    clock.advance(9.0)
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(1.0)
    clock.advance(1.0)
    assert breaker.allow()  # reclaimed: a new probe goes
    assert not breaker.allow()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_registry_breakers_get_the_probe_timeout(clock: FakeClock) -> None:
    registry = CircuitBreakerRegistry(clock=clock, probe_timeout=7.0)
    assert registry.get("p", "m").probe_timeout == 7.0
    with pytest.raises(ValueError, match="probe_timeout"):
        CircuitBreaker(probe_timeout=0)


def test_late_outcomes_do_not_move_an_open_breaker(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(10.0)
    breaker.record_success()
    assert breaker.state is CircuitState.OPEN
    breaker.record_failure()
    assert breaker.retry_in() == 20.0


def test_registry_keeps_one_breaker_per_provider_and_model(clock: FakeClock) -> None:
    registry = CircuitBreakerRegistry(failure_threshold=1, recovery_timeout=5.0, clock=clock)
    gpt = registry.get("openai", "gpt-4o")
    assert registry.get("openai", "gpt-4o") is gpt
    assert registry.get("openai", "gpt-4o-mini") is not gpt
    gpt.record_failure()
    assert gpt.state is CircuitState.OPEN
    assert registry.get("openai", "gpt-4o-mini").state is CircuitState.CLOSED
    assert gpt.recovery_timeout == 5.0
    assert {key for key, _ in registry.items()} == {
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
    }


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError, match="recovery_timeout"):
        CircuitBreakerRegistry(recovery_timeout=-1.0)
