"""Shared fixtures for lexigram-ai-llm tests. ``harness`` holds the loopback provider servers
and the provider-neutral conformance suite; ``tests_support`` (at the workspace root) the real
redis-server fixtures (``redis_server``, ``redis_url``) shared by every package's tests."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
_WORKSPACE = str(Path(__file__).resolve().parents[3])
if _WORKSPACE not in sys.path:
    sys.path.insert(0, _WORKSPACE)

from tests_support import redis_server  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    redis_server.register(config)
    # The CLI's stored keys and chat log: never the real user's, for this run and the
    # subprocesses it starts (tests of those files set their own dirs).
    os.environ["LEXIGRAM_LLM_HOME"] = tempfile.mkdtemp(prefix="lexigram-llm-home-")
