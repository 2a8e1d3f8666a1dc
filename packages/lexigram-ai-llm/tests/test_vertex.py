"""Vertex AI tests: the Vertex URL (project, location, host), and OAuth through google-auth.

The service-account tests run google-auth's real JWT-bearer flow: the client signs an assertion
with the service account's private key and posts it to the ``token_uri`` of the JSON file,
which is ``VertexServer``'s token endpoint; that endpoint verifies the RS256 signature and the
claims before issuing a token, and the model routes accept only issued, unexpired tokens. The
token server runs on the test's own event loop, so a token refresh that blocked the loop would
hang these tests: they also prove the refresh runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from harness.gemini_server import TOKEN_PREFIX, VertexServer, write_service_account
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    LLMAuthenticationError,
    MissingExtraError,
    ProviderConnectionError,
)
from lexigram.ai.llm.providers import _google_auth
from lexigram.ai.llm.providers.base import CallContext
from lexigram.ai.llm.providers.gemini import CODEC, PROFILES
from lexigram.ai.llm.types import ChatMessage, ChatRequest

MODEL = "gemini-2.5-pro"
PROJECT = "lexigram-test"


@pytest_asyncio.fixture
async def server() -> AsyncIterator[VertexServer]:
    server = VertexServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_client(server: VertexServer, **extra: Any) -> AbstractLLMClient:
    return create_llm_client(
        ClientConfig(
            provider="vertex",
            model=MODEL,
            api_base=server.url,
            max_retries=0,
            timeout=10.0,
            extra={"project": PROJECT, "location": "us-central1", **extra},
        )
    )


def encoded_url(monkeypatch: pytest.MonkeyPatch, *, base: str | None = None, **options: Any) -> str:
    profile = PROFILES["vertex"]
    ctx = CallContext(
        "vertex", MODEL, base or str(profile.base_url), profile, {**profile.quirks, **options}
    )
    request = ChatRequest(messages=(ChatMessage.user("hi"),), model=MODEL)
    return CODEC.encode(request, ctx, stream=False).url


# -- the Vertex URL ------------------------------------------------------------------------


def test_url_from_project_and_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION", raising=False)
    path = f"/v1/projects/p1/locations/{{}}/publishers/google/models/{MODEL}:generateContent"
    assert encoded_url(monkeypatch, project="p1") == (
        "https://us-central1-aiplatform.googleapis.com" + path.format("us-central1")
    )
    assert encoded_url(monkeypatch, project="p1", location="europe-west4") == (
        "https://europe-west4-aiplatform.googleapis.com" + path.format("europe-west4")
    )
    assert encoded_url(monkeypatch, project="p1", location="global") == (
        "https://aiplatform.googleapis.com" + path.format("global")
    )
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "asia-northeast1")
    assert encoded_url(monkeypatch) == (
        "https://asia-northeast1-aiplatform.googleapis.com" + path.format("asia-northeast1")
    )
    # A given api_base is kept as is.
    assert encoded_url(monkeypatch, base="http://proxy.internal:8080").startswith(
        "http://proxy.internal:8080/v1/projects/p1/locations/asia-northeast1/"
    )


def test_missing_project_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(ConfigurationError, match="GOOGLE_CLOUD_PROJECT"):
        encoded_url(monkeypatch)


# -- OAuth through google-auth -------------------------------------------------------------


async def test_service_account_token_is_fetched_once_and_reused(
    server: VertexServer, tmp_path: Path
) -> None:
    client = make_client(server, credentials_file=str(write_service_account(server, tmp_path)))
    try:
        for i in range(3):
            server.script(Reply(text=f"answer {i}"))
            assert (
                await client.complete([{"role": "user", "content": "hi"}])
            ).unwrap().content == f"answer {i}"
        server.script(Reply(text="streamed"))
        text = (await client.stream_chat([{"role": "user", "content": "hi"}]).text()).unwrap()
        assert text == "streamed"
    finally:
        await client.close()
    assert len(server.token_requests) == 1
    claims = server.token_requests[0]
    assert claims["iss"] == server.client_email
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    for request in server.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN_PREFIX}1"
        assert "x-goog-api-key" not in request.headers
        assert request.path == (
            f"/v1/projects/{PROJECT}/locations/us-central1/publishers/"
            f"google/models/{MODEL}:" + request.path.rsplit(":", 1)[-1]
        )


async def test_an_expiring_token_is_refreshed(server: VertexServer, tmp_path: Path) -> None:
    # google-auth treats a token as expired a few minutes before it is: one valid for
    # 60 seconds must be refreshed before every call.
    server.token_lifetime = 60
    client = make_client(server, credentials_file=str(write_service_account(server, tmp_path)))
    try:
        for _ in range(3):
            server.script(Reply(text="ok"))
            assert (await client.complete([{"role": "user", "content": "hi"}])).is_ok()
    finally:
        await client.close()
    assert len(server.token_requests) == 3
    assert [r.headers["authorization"] for r in server.requests] == [
        f"Bearer {TOKEN_PREFIX}{n}" for n in (1, 2, 3)
    ]


async def test_concurrent_first_calls_share_one_token_request(
    server: VertexServer, tmp_path: Path
) -> None:
    client = make_client(server, credentials_file=str(write_service_account(server, tmp_path)))
    try:
        server.script(Reply(text="same"))
        results = await asyncio.gather(
            *(client.complete([{"role": "user", "content": f"q{i}"}]) for i in range(20))
        )
    finally:
        await client.close()
    assert all(r.unwrap().content == "same" for r in results)
    assert len(server.token_requests) == 1


async def test_application_default_credentials(
    server: VertexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(write_service_account(server, tmp_path))
    )
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west1")
    client = create_llm_client(
        ClientConfig(provider="vertex", model=MODEL, api_base=server.url, max_retries=0)
    )
    try:
        server.script(Reply(text="via ADC"))
        assert (await client.complete([{"role": "user", "content": "hi"}])).unwrap().content == (
            "via ADC"
        )
    finally:
        await client.close()
    assert len(server.token_requests) == 1
    assert "/locations/europe-west1/" in server.requests[0].path


async def test_a_given_access_token_is_sent_as_is(server: VertexServer) -> None:
    server.tokens["ya29.given-token"] = float("inf")
    client = make_client(server, access_token="ya29.given-token")
    try:
        server.script(Reply(text="ok"))
        assert (await client.complete([{"role": "user", "content": "hi"}])).is_ok()
    finally:
        await client.close()
    assert server.requests[0].headers["authorization"] == "Bearer ya29.given-token"
    assert server.token_requests == []


async def test_an_unknown_token_is_an_authentication_error(server: VertexServer) -> None:
    client = make_client(server, access_token="ya29.revoked")
    try:
        error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
    finally:
        await client.close()
    assert isinstance(error, LLMAuthenticationError)
    assert (error.status, error.code) == (401, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
    assert "ya29.revoked" not in str(error) + repr(error)


async def test_a_rejected_assertion_is_an_authentication_error_without_secrets(
    server: VertexServer, tmp_path: Path
) -> None:
    path = write_service_account(server, tmp_path)
    info = json.loads(path.read_text())
    info["client_email"] = "someone-else@lexigram-test.iam.gserviceaccount.com"
    path.write_text(json.dumps(info))
    client = make_client(server, credentials_file=str(path))
    try:
        error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
    finally:
        await client.close()
    assert isinstance(error, LLMAuthenticationError)
    assert error.code == "token_refresh_failed"
    assert "invalid_grant" in str(error)
    private_key_body = info["private_key"].splitlines()[1]
    for text in (str(error), repr(error), str(error.details)):
        assert private_key_body not in text
    assert server.requests == []  # no model call without a token


async def test_unreachable_token_endpoint_is_a_connection_error(
    server: VertexServer, tmp_path: Path
) -> None:
    path = write_service_account(server, tmp_path)
    info = json.loads(path.read_text())
    info["token_uri"] = "http://127.0.0.1:9/token"  # the discard port: nothing listens
    path.write_text(json.dumps(info))
    client = make_client(server, credentials_file=str(path))
    try:
        error = (await client.complete([{"role": "user", "content": "hi"}])).unwrap_err()
    finally:
        await client.close()
    assert isinstance(error, ProviderConnectionError)
    assert error.retryable is True


async def test_bad_credentials_file_is_a_configuration_error(
    server: VertexServer, tmp_path: Path
) -> None:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps({"type": "external_account_authorized_user_x"}))
    client = make_client(server, credentials_file=str(path))
    try:
        with pytest.raises(ConfigurationError, match="credentials_file"):
            await client.complete([{"role": "user", "content": "hi"}])
    finally:
        await client.close()


async def test_a_credentials_file_that_is_not_a_json_object_is_a_configuration_error(
    server: VertexServer, tmp_path: Path
) -> None:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps(["service_account"]))
    client = make_client(server, credentials_file=str(path))
    try:
        with pytest.raises(ConfigurationError, match="credentials_file"):
            await client.complete([{"role": "user", "content": "hi"}])
    finally:
        await client.close()


def test_missing_google_auth_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _google_auth._google_auth.cache_clear()
    monkeypatch.setitem(sys.modules, "google.auth", None)
    try:
        with pytest.raises(MissingExtraError, match=r"pip install 'lexigram-ai-llm\[vertex\]'"):
            create_llm_client(
                ClientConfig(provider="vertex", model=MODEL, extra={"project": PROJECT})
            )
        # A given token needs no google-auth.
        client = create_llm_client(
            ClientConfig(
                provider="vertex", model=MODEL, extra={"project": PROJECT, "access_token": "ya29.x"}
            )
        )
        assert "ya29.x" not in repr(client)
    finally:
        _google_auth._google_auth.cache_clear()
