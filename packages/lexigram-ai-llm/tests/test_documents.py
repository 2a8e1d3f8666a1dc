"""Document parts go out in the shape each wire defines for them, or are refused up front.

A refusal is an ``InvalidRequestError`` (code ``unsupported_document``) naming the part
(``messages[0].content[1]``) and sent before any request: never a document's bytes decoded
as text it is not, a URL passed off as the user's words, or a part silently left out.
Shapes follow the official SDKs' types: Anthropic ``DocumentBlockParam`` (``Base64PDFSource``,
``PlainTextSource``, ``URLPDFSource``), OpenAI ``File`` content parts (``file_data``,
``filename``), Gemini ``inlineData``/``fileData``, Cohere text documents.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.cohere_server import CohereServer
from harness.conformance import SECRET
from harness.gemini_server import GeminiServer
from harness.ollama_server import OllamaServer
from harness.openai_server import OpenAIServer
from harness.server import FakeProviderServer
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.exceptions import InvalidRequestError
from lexigram.ai.llm.types import DocumentPart, TextPart
from lexigram.result import Err, Ok

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
DOCX = b"PK\x03\x04\x14\x00\x06\x00docx-bytes"
LATIN1 = "caf\xe9 cr\xe8me".encode("latin-1")  # not UTF-8
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

SERVERS: dict[str, type[FakeProviderServer]] = {
    "anthropic": AnthropicServer,
    "openai": OpenAIServer,
    "gemini": GeminiServer,
    "cohere": CohereServer,
    "ollama": OllamaServer,
}


@pytest_asyncio.fixture
async def servers() -> AsyncIterator[dict[str, FakeProviderServer]]:
    started = {name: cls() for name, cls in SERVERS.items()}
    for server in started.values():
        await server.start()
    yield started
    for server in started.values():
        await server.stop()


def _api_base(provider: str, server: FakeProviderServer) -> str:
    return server.url + "/v1" if provider == "openai" else server.url


def _ask(document: DocumentPart) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [TextPart("Summarise this."), document]}]


async def _send(
    servers: dict[str, FakeProviderServer], provider: str, document: DocumentPart, stream: bool
) -> tuple[Any, FakeProviderServer]:
    server = servers[provider]
    config = ClientConfig(
        provider=provider,
        model="test-model",
        api_base=_api_base(provider, server),
        api_key=SecretStr(SECRET),
        max_retries=0,
        timeout=10.0,
    )
    async with create_llm_client(config) as client:
        if stream:
            result = await client.stream_chat(_ask(document)).completion()
        else:
            result = await client.complete(_ask(document))
    return result, server


def _sent_part(provider: str, server: FakeProviderServer) -> Any:
    body = server.requests[-1].json
    if provider == "anthropic":
        return body["messages"][0]["content"][1]
    if provider == "openai":
        return body["messages"][0]["content"][1]
    if provider == "gemini":
        return body["contents"][0]["parts"][1]
    if provider == "cohere":
        return body["documents"][0]
    raise AssertionError(provider)


# -- what is sent --------------------------------------------------------------------------

SENT = [
    (
        "anthropic",
        DocumentPart(data=PDF, name="report.pdf"),
        {
            "type": "document",
            "source": {
                "type": "base64",
                "media_type": "application/pdf",
                "data": base64.b64encode(PDF).decode(),
            },
            "title": "report.pdf",
        },
    ),
    (
        "anthropic",
        DocumentPart(data="Plain notes, caf\xe9.".encode(), media_type="text/plain"),
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes, caf\xe9."},
        },
    ),
    (
        "anthropic",
        DocumentPart(url="https://example.com/paper.pdf"),
        {"type": "document", "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
    ),
    (
        "openai",
        DocumentPart(data=PDF),
        {
            "type": "file",
            "file": {
                "filename": "document.pdf",
                "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
            },
        },
    ),
    (
        "openai",
        # No name: the file name's extension says what it is, not a made-up ".pdf".
        DocumentPart(data=b"col1,col2\n1,2\n", media_type="text/csv"),
        {
            "type": "file",
            "file": {
                "filename": "document.csv",
                "file_data": "data:text/csv;base64,"
                + base64.b64encode(b"col1,col2\n1,2\n").decode(),
            },
        },
    ),
    (
        "gemini",
        DocumentPart(data=PDF),
        {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(PDF).decode()}},
    ),
    (
        "gemini",
        DocumentPart(url="gs://bucket/paper.pdf"),
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/paper.pdf"}},
    ),
    (
        "cohere",
        DocumentPart(data=b"Meeting notes.", media_type="text/markdown", name="notes"),
        {"data": {"text": "Meeting notes.", "title": "notes"}},
    ),
]


@pytest.mark.parametrize(("provider", "document", "expected"), SENT)
async def test_a_document_goes_out_in_its_wire_shape(
    servers: dict[str, FakeProviderServer],
    provider: str,
    document: DocumentPart,
    expected: dict[str, Any],
) -> None:
    result, server = await _send(servers, provider, document, stream=False)
    assert isinstance(result, Ok), result
    assert _sent_part(provider, server) == expected


# -- what is refused -----------------------------------------------------------------------

REFUSED = [
    ("anthropic", DocumentPart(data=DOCX, media_type=DOCX_TYPE), "not " + DOCX_TYPE),
    ("anthropic", DocumentPart(data=LATIN1, media_type="text/plain"), "not UTF-8"),
    ("anthropic", DocumentPart(url="https://example.com/page.html", media_type="text/html"), "PDF"),
    ("anthropic", DocumentPart(), "needs data or a url"),
    ("openai", DocumentPart(url="https://example.com/paper.pdf"), "not by URL"),
    ("openai", DocumentPart(), "needs data or a url"),
    ("gemini", DocumentPart(), "needs data or a url"),
    ("cohere", DocumentPart(data=LATIN1, media_type="text/plain"), "not UTF-8"),
    ("cohere", DocumentPart(url="https://example.com/notes.txt", media_type="text/plain"), "URL"),
    ("ollama", DocumentPart(data=PDF), "takes no documents"),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("provider", "document", "reason"), REFUSED)
async def test_a_document_the_wire_cannot_carry_is_refused_naming_the_part(
    servers: dict[str, FakeProviderServer],
    provider: str,
    document: DocumentPart,
    reason: str,
    stream: bool,
) -> None:
    result, server = await _send(servers, provider, document, stream=stream)
    assert isinstance(result, Err), result
    error = result.error
    assert isinstance(error, InvalidRequestError), repr(error)
    assert error.code == "unsupported_document"
    assert error.message.startswith("messages[0].content[1]: ")
    assert reason in error.message
    assert error.details["field"] == "messages[0].content[1]"
    assert error.provider == provider
    assert server.requests == []  # refused before anything was sent
