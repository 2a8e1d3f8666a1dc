"""Fixtures: a fake clock, and a real redis-server from the workspace's tests_support."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_WORKSPACE = str(Path(__file__).resolve().parents[3])
if _WORKSPACE not in sys.path:
    sys.path.insert(0, _WORKSPACE)

from tests_support import redis_server  # noqa: E402
from tests_support.clock import FakeClock  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    redis_server.register(config)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
