"""Fixtures: each cache backend built the way a user would, and a real redis-server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_WORKSPACE = str(Path(__file__).resolve().parents[3])
if _WORKSPACE not in sys.path:
    sys.path.insert(0, _WORKSPACE)

from lexigram.cache import DiskCacheBackend, MemoryCacheBackend, RedisCacheBackend  # noqa: E402
from tests_support import redis_server  # noqa: E402
from tests_support.clock import FakeClock  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    redis_server.register(config)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "disk", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MemoryCacheBackend | DiskCacheBackend | RedisCacheBackend]:
    """Every backend in turn, empty."""
    cache: MemoryCacheBackend | DiskCacheBackend | RedisCacheBackend
    if request.param == "memory":
        cache = MemoryCacheBackend()
    elif request.param == "disk":
        cache = DiskCacheBackend(tmp_path / "cache")
    else:
        cache = RedisCacheBackend(request.getfixturevalue("redis_url"))
    async with cache:
        yield cache
