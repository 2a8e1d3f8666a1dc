import random

import pytest

from lexigram.resilience import RetryPolicy


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (3, 0.5, 20.0)
    assert (policy.max_retry_after, policy.multiplier) == (60.0, 2.0)


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 20.0), (10_000, 20.0)]
)
def test_backoff_grows_exponentially_up_to_max_delay(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy()
    assert policy.backoff_ceiling(attempt) == ceiling
    rng = random.Random(7)
    delays = [policy.delay_for(attempt, rng=rng) for _ in range(2000)]
    assert all(0.0 <= delay <= ceiling for delay in delays)
    # Full jitter spreads over the whole range rather than clustering near the ceiling.
    assert min(delays) < ceiling * 0.05
    assert max(delays) > ceiling * 0.95


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    policy = RetryPolicy()
    first = [policy.delay_for(3, rng=random.Random(1)) for _ in range(3)]
    second = [policy.delay_for(3, rng=random.Random(1)) for _ in range(3)]
    assert first == second


def test_retry_after_is_honoured_exactly() -> None:
    policy = RetryPolicy(max_delay=1.0)
    assert policy.delay_for(1, retry_after=7.5) == 7.5
    assert policy.delay_for(5, retry_after=0.0) == 0.0


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=30.0)
    assert policy.delay_for(1, retry_after=3600.0) == 30.0
    assert policy.delay_for(1, retry_after=-4.0) == 0.0


def test_a_nan_retry_after_falls_back_to_backoff() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0, max_retry_after=30.0)
    delay = policy.delay_for(2, float("nan"), rng=random.Random(7))
    assert 0.0 <= delay <= 2.0
    assert policy.delay_for(1, float("inf")) == 30.0


def test_should_retry_counts_total_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(1, retryable=True)
    assert policy.should_retry(2, retryable=True)
    assert not policy.should_retry(3, retryable=True)
    assert not policy.should_retry(1, retryable=False)
    assert not RetryPolicy(max_attempts=1).should_retry(1, retryable=True)


def test_policy_is_frozen_and_validated() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_attempts = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="multiplier"):
        RetryPolicy(multiplier=0.5)
