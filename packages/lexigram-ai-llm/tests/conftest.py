"""Shared fixtures for lexigram-ai-llm tests. ``harness`` holds the loopback provider servers
and the provider-neutral conformance suite."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
