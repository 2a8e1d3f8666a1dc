"""The Gemini API family against its loopback server: the shared conformance suite."""

from __future__ import annotations

from harness.conformance import ConformanceSuite, Family
from harness.gemini_server import ERROR_KINDS, GeminiServer


class TestGemini(ConformanceSuite):
    family = Family(
        name="gemini",
        server_cls=GeminiServer,
        api_base=lambda s: s.url,
        model="gemini-2.5-flash",
        error_kinds=ERROR_KINDS,
    )
