"""The Anthropic Messages family against its loopback server: the shared conformance suite."""

from __future__ import annotations

from harness.anthropic_server import ERROR_KINDS, AnthropicServer
from harness.conformance import ConformanceSuite, Family


class TestAnthropic(ConformanceSuite):
    family = Family(
        name="anthropic",
        server_cls=AnthropicServer,
        api_base=lambda s: s.url,
        model="claude-sonnet-5",
        error_kinds=ERROR_KINDS,
    )
