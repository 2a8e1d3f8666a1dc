"""``client.list_models()`` per wire family, over real HTTP on loopback: the provider's list
endpoint, its auth headers, its paging; and the hostile cases (endless pages, a repeated cursor,
a redirect to another origin, a stall, a body that is not a model list, an error echoing the key).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.bedrock_server import use_test_credentials
from harness.conformance import SECRET
from harness.model_list_server import ModelListServer

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    LLMAuthenticationError,
    LLMError,
    LLMTimeoutError,
    RedirectRefusedError,
    ResponseLimitError,
    StreamError,
    UnsupportedCapabilityError,
)
from lexigram.ai.llm.providers._listing import MAX_PAGES, ModelListing, ModelListingUnsupportedError
from lexigram.result import Err, Ok
from lexigram.validation import SecretStr


@pytest_asyncio.fixture
async def make_server() -> AsyncIterator[Any]:
    servers: list[ModelListServer] = []

    async def start(wire: str, models: list[str] | None = None, **options: Any) -> ModelListServer:
        server = ModelListServer(wire, list(models or []), **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def client_for(provider: str, api_base: str, **config: Any) -> AbstractLLMClient:
    settings: dict[str, Any] = {"api_key": SecretStr(SECRET), "max_retries": 0, **config}
    return create_llm_client(ClientConfig(provider=provider, api_base=api_base, **settings))


async def listed(client: AbstractLLMClient, timeout: float | None = None) -> list[ModelListing]:
    async with client:
        result = await client.list_models(timeout=timeout)
    assert isinstance(result, Ok), result
    return result.value


async def failed(client: AbstractLLMClient, timeout: float | None = None) -> LLMError:
    async with client:
        result = await client.list_models(timeout=timeout)
    assert isinstance(result, Err), result
    error = result.error
    assert SECRET not in str(error) and SECRET not in repr(error)
    return error


# -- each wire -----------------------------------------------------------------------------


async def test_openai_lists_ids_with_the_bearer_key(make_server: Any) -> None:
    server = await make_server("openai", ["gpt-4o-mini", "gpt-4o"])
    models = await listed(client_for("openai", server.url + "/v1"))
    assert [m.id for m in models] == ["gpt-4o-mini", "gpt-4o"]
    assert {m.provider for m in models} == {"openai"}
    assert models[0].owned_by == "system"
    (request,) = server.requests
    assert request.path == "/v1/models"
    assert request.headers["authorization"] == f"Bearer {SECRET}"


async def test_together_answers_a_bare_list_with_context_lengths(make_server: Any) -> None:
    server = await make_server("together", ["meta-llama/Llama-3.3-70B-Instruct-Turbo"])
    (model,) = await listed(client_for("together", server.url + "/v1"))
    assert model.id == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    assert model.context_window == 131072
    assert model.display_name == "Llama-3.3-70B-Instruct-Turbo"


async def test_mistral_reports_capabilities_and_context(make_server: Any) -> None:
    server = await make_server("mistral", ["mistral-small-latest"])
    (model,) = await listed(client_for("mistral", server.url + "/v1"))
    assert model.capabilities == {"tools", "vision"}
    assert model.context_window == 131072


_GROQ = {
    "object": "list",
    "data": [
        {
            "id": "llama-3.3-70b-versatile",
            "object": "model",
            "created": 1733447754,
            "owned_by": "Meta",
            "active": True,
            "context_window": 131072,
            "public_apps": None,
            "max_completion_tokens": 32768,
        }
    ],
}
_OPENROUTER = {
    "data": [
        {
            "id": "openai/gpt-4o-mini",
            "canonical_slug": "openai/gpt-4o-mini",
            "name": "OpenAI: GPT-4o-mini",
            "created": 1721260800,
            "context_length": 128000,
            "architecture": {
                "modality": "text+image->text",
                "input_modalities": ["text", "image", "file"],
                "output_modalities": ["text"],
                "tokenizer": "GPT",
            },
            "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
            "top_provider": {
                "context_length": 128000,
                "max_completion_tokens": 16384,
                "is_moderated": True,
            },
            "supported_parameters": ["max_tokens", "tools", "tool_choice", "structured_outputs"],
        }
    ]
}
_FIREWORKS = {
    "object": "list",
    "data": [
        {
            "id": "accounts/fireworks/models/llama-v3p1-8b-instruct",
            "object": "model",
            "owned_by": "fireworks",
            "created": 1721692800,
            "kind": "HF_BASE_MODEL",
            "supports_chat": True,
            "supports_image_input": False,
            "supports_tools": True,
            "context_length": 131072,
        }
    ],
}


@pytest.mark.parametrize(
    ("provider", "payload", "expected"),
    [
        ("groq", _GROQ, ("llama-3.3-70b-versatile", 131072, 32768, set())),
        (
            "openrouter",
            _OPENROUTER,
            ("openai/gpt-4o-mini", 128000, 16384, {"vision", "tools", "json_schema"}),
        ),
        (
            "fireworks",
            _FIREWORKS,
            ("accounts/fireworks/models/llama-v3p1-8b-instruct", 131072, None, {"tools"}),
        ),
    ],
)
async def test_openai_style_hosts_report_what_they_know(
    make_server: Any, provider: str, payload: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    server = await make_server("openai", raw_body=orjson.dumps(payload))
    (model,) = await listed(client_for(provider, server.url + "/v1"))
    assert (model.id, model.context_window, model.max_output_tokens, model.capabilities) == expected
    assert model.raw == payload["data"][0]


async def test_anthropic_pages_by_last_id_with_its_headers(make_server: Any) -> None:
    names = ["claude-opus-4-1-20250805", "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"]
    server = await make_server("anthropic", names, page_size=2)
    models = await listed(client_for("anthropic", server.url))
    assert [m.id for m in models] == names
    assert models[1].display_name == "Claude Sonnet 4 20250514"
    first, second = server.requests
    assert first.path == "/v1/models"
    assert first.query == {"limit": "1000"}
    assert second.query == {"limit": "1000", "after_id": "claude-sonnet-4-20250514"}
    assert first.headers["x-api-key"] == SECRET
    assert first.headers["anthropic-version"] == "2023-06-01"


async def test_gemini_pages_by_token_and_keeps_the_key_out_of_the_url(make_server: Any) -> None:
    names = ["gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004"]
    server = await make_server("gemini", names, page_size=2)
    models = await listed(client_for("gemini", server.url))
    assert [m.id for m in models] == names  # "models/" dropped: the name to pass as model=
    assert models[0].context_window == 1048576
    assert models[0].max_output_tokens == 65536
    assert models[0].capabilities == {"chat", "reasoning"}
    first, second = server.requests
    assert first.path == "/v1beta/models"
    assert first.query == {"pageSize": "1000"}
    assert second.query == {"pageSize": "1000", "pageToken": "2"}
    assert first.headers["x-goog-api-key"] == SECRET
    assert all("key" not in r.query for r in server.requests)


async def test_cohere_pages_by_next_page_token(make_server: Any) -> None:
    names = ["command-a-03-2025", "command-r7b-12-2024"]
    server = await make_server("cohere", names, page_size=1)
    models = await listed(client_for("cohere", server.url))
    assert [m.id for m in models] == names
    assert models[0].context_window == 256000
    assert models[0].capabilities == {"chat", "tools", "json_schema"}
    assert [r.query for r in server.requests] == [
        {"page_size": "1000"},
        {"page_size": "1000", "page_token": "1"},
    ]
    assert server.requests[0].path == "/v1/models"


async def test_ollama_lists_its_tags(make_server: Any) -> None:
    server = await make_server("ollama", ["llama3.2:latest", "qwen3:0.6b"], key=None)
    client = create_llm_client(ClientConfig(provider="ollama", api_base=server.url))
    models = await listed(client)
    assert [m.id for m in models] == ["llama3.2:latest", "qwen3:0.6b"]
    assert server.requests[0].path == "/api/tags"


async def test_bedrock_lists_foundation_models_signed_with_sigv4(
    make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_test_credentials(monkeypatch)
    server = await make_server("bedrock", ["anthropic.claude-3-5-haiku-20241022-v1:0"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
    client = create_llm_client(ClientConfig(provider="bedrock", max_retries=0))
    (model,) = await listed(client)
    assert model.id == "anthropic.claude-3-5-haiku-20241022-v1:0"
    assert model.owned_by == "Anthropic"
    assert model.capabilities == {"vision"}
    assert server.requests[0].path == "/foundation-models"
    assert server.requests[0].headers["authorization"].startswith("AWS4-HMAC-SHA256 ")


async def test_vertex_says_it_cannot_list() -> None:
    client = create_llm_client(
        ClientConfig(
            provider="vertex",
            api_base="http://127.0.0.1:9",
            extra={"project": "p", "location": "us-central1", "access_token": "ya29.x"},
        )
    )
    error = await failed(client)
    assert isinstance(error, ModelListingUnsupportedError)
    assert isinstance(error, UnsupportedCapabilityError)
    assert error.code == "list_models_unsupported"
    assert error.provider == "vertex"


async def test_a_custom_client_says_it_cannot_list() -> None:
    class Custom(AbstractLLMClient):
        provider_name = "mine"

    error = await failed(Custom())
    assert isinstance(error, ModelListingUnsupportedError)
    assert error.provider == "mine"


# -- hostile hosts -------------------------------------------------------------------------


@pytest.mark.parametrize("wire", ["anthropic", "gemini", "cohere", "openai"])
async def test_endless_pages_stop_with_a_typed_error(make_server: Any, wire: str) -> None:
    server = await make_server(wire, endless=True)
    provider = wire
    api_base = server.url + ("/v1" if wire == "openai" else "")
    error = await failed(client_for(provider, api_base))
    assert isinstance(error, ResponseLimitError)
    assert error.code == "too_many_pages"
    assert len(server.requests) == MAX_PAGES


async def test_a_repeated_cursor_stops_at_once(make_server: Any) -> None:
    server = await make_server("gemini", endless=True, same_cursor=True)
    error = await failed(client_for("gemini", server.url))
    assert isinstance(error, ResponseLimitError)
    assert error.code == "pagination_loop"
    assert len(server.requests) == 2


async def test_a_redirect_to_another_origin_is_refused(make_server: Any) -> None:
    elsewhere = await make_server("openai", ["gpt-4o-mini"])
    server = await make_server("openai", redirect_to=elsewhere.url + "/v1/models")
    error = await failed(client_for("openai", server.url + "/v1"))
    assert isinstance(error, RedirectRefusedError)
    assert error.provider == "openai"
    assert elsewhere.requests == []  # the key never went there


async def test_a_stalled_host_times_out(make_server: Any) -> None:
    server = await make_server("anthropic", ["claude-sonnet-4-20250514"], stall=30)
    error = await failed(client_for("anthropic", server.url), timeout=0.3)
    assert isinstance(error, LLMTimeoutError)


async def test_an_error_echoing_the_key_is_typed_and_scrubbed(make_server: Any) -> None:
    server = await make_server("openai", echo_key_status=401)
    error = await failed(client_for("openai", server.url + "/v1"))
    assert isinstance(error, LLMAuthenticationError)
    assert error.status == 401


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"<html>not json</html>", "stream_error"), (b'{"data": 5}', "malformed_model_list")],
)
async def test_a_body_that_is_not_a_model_list_is_a_typed_error(
    make_server: Any, body: bytes, code: str
) -> None:
    server = await make_server("openai", raw_body=body)
    error = await failed(client_for("openai", server.url + "/v1"))
    assert isinstance(error, StreamError)
    assert error.code == code
