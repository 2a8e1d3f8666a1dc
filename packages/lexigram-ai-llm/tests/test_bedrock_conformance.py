"""AWS Bedrock Converse against its loopback server: the shared conformance suite, with every
request SigV4-signed by botocore from the standard AWS credential chain and verified by the
server, and streams in AWS's binary event-stream framing."""

from __future__ import annotations

import pytest
from harness.bedrock_server import SECRET_KEY, BedrockServer, use_test_credentials
from harness.conformance import ConformanceSuite, Family

# Bedrock has no distinct error for an over-long prompt: it is a ValidationException whose
# message alone says so ("Input is too long for requested model"), so it maps by type to
# ``InvalidRequestError`` (see the bedrock module). It has no content-filter error either:
# guardrails and filters end an answer with stopReason ``guardrail_intervened`` /
# ``content_filtered`` (finish reason ``content_filter``, tested in test_bedrock.py).
BEDROCK_ERROR_KINDS = (
    "invalid_request",
    "auth",
    "permission",
    "quota",
    "not_found",
    "rate_limit",
    "server",
    "overloaded",
)


class TestBedrock(ConformanceSuite):
    family = Family(
        name="bedrock",
        server_cls=BedrockServer,
        api_base=lambda s: s.url,
        # A real model id: its ":" must be signed exactly as it goes over the wire.
        model="anthropic.claude-3-5-sonnet-20240620-v1:0",
        # No API key: requests are signed with SigV4 from the AWS credential chain.
        config={"api_key": None},
        error_kinds=BEDROCK_ERROR_KINDS,
        secret=SECRET_KEY,
    )

    @pytest.fixture(autouse=True)
    def _aws_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        use_test_credentials(monkeypatch)
