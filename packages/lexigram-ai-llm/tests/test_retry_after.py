"""``parse_retry_after`` and ``error_for_status`` on real and malformed rate-limit headers."""

from __future__ import annotations

import math

import pytest

from lexigram.ai.llm.exceptions import LLMRateLimitError, error_for_status, parse_retry_after


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "Fri, 27 Nov 2026 11:00:10 GMT"}, 10.0),
        ({"x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "250ms"}, 360.0),
        ({"x-ratelimit-reset-tokens": "1.5s"}, 1.5),
        ({}, None),
    ],
)
def test_readable_headers(headers: dict[str, str], expected: float | None) -> None:
    now = 1795777200.0  # Fri, 27 Nov 2026 11:00:00 GMT
    assert parse_retry_after(headers, now=now) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "soon"},
        {"Retry-After": "   "},
        {"Retry-After": "nan"},
        {"Retry-After": "inf"},
        {"retry-after-ms": "inf"},
        {"x-ratelimit-reset-requests": "nan"},
        {"x-ratelimit-reset-requests": "inf"},
        {"x-ratelimit-reset-requests": "-3"},
        {"x-ratelimit-reset-requests": "6x"},
    ],
)
def test_unreadable_headers_are_ignored_not_raised(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers) is None


def test_unreadable_header_falls_back_to_the_next_one() -> None:
    assert parse_retry_after({"Retry-After": "soon", "x-ratelimit-reset-tokens": "2s"}) == 2.0


def test_rate_limit_with_a_malformed_retry_after_is_still_a_typed_error() -> None:
    error = error_for_status(
        429, provider="openai", model="m", headers={"Retry-After": "later, please"}
    )
    assert isinstance(error, LLMRateLimitError)
    assert error.retryable
    assert error.retry_after is None


def test_rate_limit_retry_after_is_finite() -> None:
    error = error_for_status(
        429, provider="openai", model="m", headers={"x-ratelimit-reset-requests": "nan"}
    )
    assert error.retry_after is None or math.isfinite(error.retry_after)
