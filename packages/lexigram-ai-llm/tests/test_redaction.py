"""No credential in any error a caller can see, however the provider echoes it.

Loopback servers of two wire families echo the API key (or the base URL's password) in every
field of their error bodies and in ``x-request-id``; the tests look for it everywhere a user,
a log or another process could: ``str``, ``repr``, ``code``, ``details``, ``request_id``,
pickles, formatted tracebacks and the exception chain. A short key (local servers are often
given ``"x"``) must be scrubbed where the provider echoes it without garbling our own words.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.openai_server import OpenAIServer
from harness.server import FakeProviderServer, RecordedRequest, Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import LLMError, ProviderConnectionError, TokenLimitError
from lexigram.config import ConfigError
from lexigram.result import Err

KEY = "sk-echoed-SECRET-0123456789abcdef"
PASSWORD = "hunter2-secret-password"


def _echoed(request: RecordedRequest) -> str:
    """The credential the client sent, as a careless provider would echo it back."""
    auth = request.headers.get("x-api-key") or request.headers.get("authorization") or ""
    return auth.removeprefix("Bearer ") or PASSWORD


class EchoingOpenAIServer(OpenAIServer):
    """An OpenAI-wire server that echoes the key in every field of its error bodies."""

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        key = _echoed(request)
        return 400, orjson.dumps(
            {
                "error": {
                    "message": f"Incorrect API key provided: {key}",
                    "type": f"type-{key}",
                    "param": {"key": key, "nested": [key]},
                    "code": f"code-{key}",
                }
            }
        )


class EchoingAnthropicServer(AnthropicServer):
    """An Anthropic-wire server that echoes the key in its error type and request id."""

    def check_auth(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        return None  # every request gets the scripted (echoing) error

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        key = _echoed(request)
        return 401, orjson.dumps(
            {
                "type": "error",
                "error": {"type": f"authentication_error {key}", "message": f"bad key {key}"},
                "request_id": f"req_{key}",
            }
        )


def _everything_shown(error: LLMError) -> str:
    """All the text a caller, a log line or another process can get out of ``error``."""
    restored = pickle.loads(pickle.dumps(error))
    chain: list[str] = []
    link: BaseException | None = error
    while link is not None:
        chain.append(f"{link!r} {link} {link.args!r}")
        link = link.__cause__ or link.__context__
    return "\n".join(
        [
            str(error),
            repr(error),
            str(error.code),
            repr(error.details),
            str(error.request_id),
            str(error.provider_message),
            repr(vars(error)),
            repr(pickle.dumps(error)),
            repr(vars(restored)),
            "".join(traceback.format_exception(error)),
            *chain,
        ]
    )


@pytest_asyncio.fixture
async def openai_server() -> AsyncIterator[FakeProviderServer]:
    server = EchoingOpenAIServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def anthropic_server() -> AsyncIterator[FakeProviderServer]:
    server = EchoingAnthropicServer()
    await server.start()
    yield server
    await server.stop()


def _client(provider: str, api_base: str, key: str | None = KEY) -> AbstractLLMClient:
    return create_llm_client(
        ClientConfig(
            provider=provider,
            model="test-model",
            api_base=api_base,
            api_key=None if key is None else SecretStr(key),
            max_retries=0,
            timeout=5.0,
        )
    )


HI = [{"role": "user", "content": "hi"}]


async def _error(client: AbstractLLMClient, *, stream: bool) -> LLMError:
    if stream:
        result = await client.stream_chat(HI).completion()
    else:
        result = await client.complete(HI)
    assert isinstance(result, Err), result
    return result.error


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_error_echoing_the_key_in_every_field_is_scrubbed(
    openai_server: FakeProviderServer, stream: bool
) -> None:
    openai_server.script(Reply(error="invalid_request", headers={"x-request-id": KEY}))
    async with _client("openai", openai_server.url + "/v1") as client:
        error = await _error(client, stream=stream)
    assert KEY not in _everything_shown(error)
    assert error.code == "code-***"
    assert error.details["param"] == {"key": "***", "nested": ["***"]}
    assert error.request_id == "***"
    assert "Incorrect API key provided: ***" in str(error)


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_error_echoing_the_key_in_type_and_request_id_is_scrubbed(
    anthropic_server: FakeProviderServer, stream: bool
) -> None:
    anthropic_server.script(Reply(error="auth", headers={"x-request-id": KEY}))
    async with _client("anthropic", anthropic_server.url) as client:
        error = await _error(client, stream=stream)
    assert KEY not in _everything_shown(error)
    assert error.code == "authentication_error ***"
    assert error.request_id == "req_***"


async def test_a_malformed_answer_quoting_the_key_leaves_no_trace_in_the_chain(
    openai_server: FakeProviderServer,
) -> None:
    # ``int("sk-...")`` fails inside the decoder with a ValueError quoting the key; that
    # exception is the error's suppressed ``__context__`` and must not keep the key alive.
    body = orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": KEY, "completion_tokens": 1},
        }
    )
    openai_server.script(Reply(raw_body=body))
    async with _client("openai", openai_server.url + "/v1") as client:
        error = await _error(client, stream=False)
    assert KEY not in _everything_shown(error)
    assert error.__context__ is None or KEY not in repr(error.__context__)


class ShortKeyServer(OpenAIServer):
    """A local server given the dummy key ``"x"``, echoing it in a context-length error."""

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        return 400, orjson.dumps(
            {
                "error": {
                    "message": "context window exceeded for key x; lower max_tokens",
                    "type": "invalid_request_error",
                    "param": "x",
                    "code": "context_length_exceeded",
                }
            }
        )


async def test_a_short_key_is_scrubbed_only_as_a_whole_word() -> None:
    server = ShortKeyServer()
    await server.start()
    try:
        server.script(Reply(error="context_length", headers={"x-request-id": "x"}))
        async with _client("openai", server.url + "/v1", key="x") as client:
            error = await _error(client, stream=False)
    finally:
        await server.stop()
    assert isinstance(error, TokenLimitError)
    # Our own words are intact...
    assert "context window; shorten it or lower max_tokens" in error.message
    assert error.code == "context_length_exceeded"
    # ...and the key, where the provider echoed it as a word, is not.
    assert error.provider_message == "context window exceeded for key ***; lower max_tokens"
    assert error.details["param"] == "***"
    assert error.request_id == "***"


# -- a password in the base URL ------------------------------------------------------------


class PasswordEchoServer(OpenAIServer):
    """Echoes the base URL's password (sent by the client as Basic auth) in its errors."""

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        return 400, orjson.dumps(
            {"error": {"message": f"bad password {PASSWORD}", "code": PASSWORD}}
        )


async def test_a_password_in_api_base_never_shows() -> None:
    server = PasswordEchoServer()
    await server.start()
    api_base = f"http://lex:{PASSWORD}@127.0.0.1:{server.port}/v1"
    try:
        server.script(Reply(error="invalid_request", headers={"x-request-id": PASSWORD}))
        client = _client("openai_compatible", api_base, key=None)
        async with client:
            error = await _error(client, stream=False)
        assert server.requests, "the request reached the server"
    finally:
        await server.stop()
    assert PASSWORD not in _everything_shown(error)
    for shown in (repr(client), str(client.config), repr(client.config)):
        assert PASSWORD not in shown
        assert "127.0.0.1" in shown


async def test_a_password_in_api_base_is_not_in_a_connection_error() -> None:
    client = _client("openai_compatible", f"http://lex:{PASSWORD}@127.0.0.1:1/v1", key=None)
    async with client:
        error = await _error(client, stream=False)
    assert isinstance(error, ProviderConnectionError)
    assert "127.0.0.1:1" in error.message
    assert PASSWORD not in _everything_shown(error)


def test_a_password_in_an_invalid_api_base_is_masked_in_the_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        ClientConfig(provider="openai", api_base=f"ftp://lex:{PASSWORD}@example.com/v1")
    assert PASSWORD not in str(caught.value)
    assert "example.com" in str(caught.value)


def test_a_key_in_an_api_base_query_is_masked_in_reprs() -> None:
    config = ClientConfig(provider="gemini", api_base=f"https://example.com/v1?key={KEY}&x=1")
    client = create_llm_client(config)
    shown: Any = (repr(config), str(config), repr(client))
    assert all(KEY not in text for text in shown)
    assert all("x=1" in text for text in shown)
