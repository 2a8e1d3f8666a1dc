"""Vertex AI (the Gemini codec, the Vertex URL, OAuth through google-auth) against its loopback
server: the shared conformance suite. Every client authenticates with a real service-account
JSON file whose ``token_uri`` is the loopback token endpoint, so each run goes through
google-auth's JWT-bearer flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness.conformance import ConformanceSuite, Family
from harness.gemini_server import ERROR_KINDS, TOKEN_PREFIX, VertexServer, write_service_account
from harness.server import FakeProviderServer

from lexigram.ai.llm.client import AbstractLLMClient


class TestVertex(ConformanceSuite):
    family = Family(
        name="vertex",
        server_cls=VertexServer,
        api_base=lambda s: s.url,
        model="gemini-2.5-flash",
        error_kinds=ERROR_KINDS,
        secret=TOKEN_PREFIX,
    )

    @pytest.fixture(autouse=True)
    def _credentials_dir(self, tmp_path: Path) -> None:
        self.credentials_dir = tmp_path

    def make_client(self, server: FakeProviderServer, **overrides: Any) -> AbstractLLMClient:
        assert isinstance(server, VertexServer)
        path = write_service_account(server, self.credentials_dir)
        extra = {
            "project": "lexigram-test",
            "location": "europe-west4",
            "credentials_file": str(path),
        }
        return super().make_client(server, extra=extra, **overrides)
