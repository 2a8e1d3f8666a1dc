"""The OpenAI Responses family against its loopback server: the shared conformance suite, for
``openai_responses`` and its Azure OpenAI variant."""

from __future__ import annotations

from harness.conformance import ConformanceSuite, Family
from harness.responses_server import ResponsesServer


class TestOpenAIResponses(ConformanceSuite):
    family = Family(
        name="openai_responses",
        server_cls=ResponsesServer,
        api_base=lambda s: s.url + "/v1",
        model="gpt-5-mini",
    )


class TestAzureOpenAIResponses(ConformanceSuite):
    family = Family(
        name="azure-openai-responses",
        server_cls=ResponsesServer,
        api_base=lambda s: s.url,
        model="my-gpt-5-deployment",
    )
