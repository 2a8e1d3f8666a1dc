import pytest

from lexigram.resilience import MemoryBucketBackend, RateLimitExceeded, TokenBucketLimiter
from lexigram.resilience._headers import parse_duration
from tests_support.clock import FakeClock


def make_limiter(
    clock: FakeClock,
    rpm: float | None = 60.0,
    tpm: float | None = None,
    **options: object,
) -> TokenBucketLimiter:
    return TokenBucketLimiter(
        rpm,
        tpm,
        backend=MemoryBucketBackend(clock=clock),
        sleep=clock.sleep,
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


async def test_a_full_minute_of_requests_then_one_per_refill(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=60.0)
    waits = [await limiter.acquire() for _ in range(60)]
    assert waits == [0.0] * 60
    assert await limiter.acquire() == pytest.approx(1.0)
    assert await limiter.acquire() == pytest.approx(1.0)
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]


async def test_token_budget_is_taken_with_the_request(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=100.0, tpm=6000.0)
    assert await limiter.acquire(tokens=5000) == 0.0
    assert await limiter.acquire(tokens=1000) == 0.0
    # 0 tokens left, 100 tokens per second: 500 tokens take 5 s.
    assert await limiter.acquire(tokens=500) == pytest.approx(5.0)


async def test_request_larger_than_the_bucket_waits_for_full_then_owes(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=None, tpm=600.0)
    assert await limiter.acquire(tokens=100) == 0.0
    assert await limiter.acquire(tokens=1000) == pytest.approx(10.0)  # refill the 100 first
    # The bucket now owes 400 tokens: even a zero-token call waits for the debt.
    assert await limiter.acquire() == pytest.approx(40.0)


async def test_no_wait_raises_with_retry_after_and_takes_nothing(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=2.0, wait=False)
    await limiter.acquire()
    await limiter.acquire()
    with pytest.raises(RateLimitExceeded) as raised:
        await limiter.acquire()
    assert raised.value.retry_after == pytest.approx(30.0)
    clock.advance(29.0)
    with pytest.raises(RateLimitExceeded) as raised:
        await limiter.acquire()
    assert raised.value.retry_after == pytest.approx(1.0)  # the refused call took nothing
    clock.advance(1.0)
    assert await limiter.acquire() == 0.0
    assert clock.sleeps == []


async def test_wait_longer_than_max_wait_raises_and_takes_nothing(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=None, tpm=60.0, max_wait=10.0)
    await limiter.acquire(tokens=60)
    with pytest.raises(RateLimitExceeded) as raised:
        await limiter.acquire(tokens=11)
    assert raised.value.retry_after == pytest.approx(11.0)
    assert await limiter.acquire(tokens=10) == pytest.approx(10.0)
    assert clock.sleeps == [pytest.approx(10.0)]


async def test_headers_lower_the_bucket_to_what_remains(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=60.0, tpm=10_000.0, wait=False)
    limiter.update_from_headers(
        {
            "x-ratelimit-remaining-requests": "1",
            "x-ratelimit-remaining-tokens": "9000",
            "x-ratelimit-reset-requests": "59s",
            "x-ratelimit-reset-tokens": "6s",
        }
    )
    assert await limiter.acquire(tokens=10) == 0.0
    with pytest.raises(RateLimitExceeded) as raised:
        await limiter.acquire(tokens=10)
    assert raised.value.retry_after == pytest.approx(1.0)


async def test_reset_header_alone_keeps_the_bucket_from_refilling_early(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=None, tpm=600.0, wait=False)
    limiter.update_from_headers({"X-RateLimit-Reset-Tokens": "6m0s"})
    # Full only in 6 minutes at 10 tokens/s: 600 - 3600 = -3000 now, 0 after 300 s.
    with pytest.raises(RateLimitExceeded) as raised:
        await limiter.acquire()
    assert raised.value.retry_after == pytest.approx(300.0)


async def test_headers_never_raise_the_bucket(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=3.0, wait=False)
    for _ in range(3):
        await limiter.acquire()
    limiter.update_from_headers({"x-ratelimit-remaining-requests": "500"})
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire()


async def test_a_report_refills_with_time_before_it_is_applied(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=60.0, wait=False)
    limiter.update_from_headers({"x-ratelimit-remaining-requests": "0"})
    clock.advance(3.0)  # three requests' worth of refill since the report
    assert [await limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire()


async def test_unreadable_headers_are_ignored(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rpm=2.0, wait=False)
    limiter.update_from_headers(
        {"x-ratelimit-remaining-requests": "soon", "x-ratelimit-reset-requests": "-1s"}
    )
    await limiter.acquire()
    await limiter.acquire()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("250ms", 0.25),
        ("1h2m3.5s", 3723.5),
        ("20", 20.0),
        ("0.5", 0.5),
        ("", None),
        ("5x", None),
        ("1s garbage", None),
        ("-3", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (None if seconds is None else pytest.approx(seconds))


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="requests_per_minute, tokens_per_minute"):
        TokenBucketLimiter()
    with pytest.raises(ValueError, match="requests_per_minute"):
        TokenBucketLimiter(0)
    with pytest.raises(ValueError, match="max_wait"):
        TokenBucketLimiter(10, max_wait=-1)
