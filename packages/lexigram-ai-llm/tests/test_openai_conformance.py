"""The OpenAI wire family against its loopback server: the shared conformance suite for every
OpenAI-compatible profile."""

from __future__ import annotations

from harness.conformance import ConformanceSuite, Family
from harness.openai_server import OpenAIServer


class TestOpenAI(ConformanceSuite):
    family = Family(name="openai", server_cls=OpenAIServer, api_base=lambda s: s.url + "/v1")
