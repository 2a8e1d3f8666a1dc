"""The transport's policy through the public API, against hostile servers on loopback.

Each server here writes its HTTP answers by hand, byte by byte, so it can do what a broken or
malicious provider does: inflate a gzip bomb, never end a body, send one endless line, redirect
to another port or from https to http, stall, send keep-alive comments forever, drop a pooled
connection, send a megabyte of header. Every probe must end in a typed error (or the right
answer), and no credential may reach another origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import orjson
import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply
from pydantic import SecretStr

from lexigram.ai.llm import ClientConfig, create_llm_client
from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    LLMTimeoutError,
    ProviderConnectionError,
    ProviderError,
    RedirectRefusedError,
    ResponseLimitError,
    StreamError,
)
from lexigram.result import Err, Ok

KEY = "sk-live-TOPSECRET-transport-0123456789"
HI = [{"role": "user", "content": "hi"}]
MiB = 1024 * 1024

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "fine"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
)
CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","model":"gpt-test","choices":'
    b'[{"index":0,"delta":{"content":"tok"},"finish_reason":null}]}\n\n'
)

Handler = Callable[["Exchange"], Awaitable[bool]]


class Exchange:
    """One request as the hostile server saw it, and the stream to answer on."""

    def __init__(
        self, head: bytes, body: bytes, writer: asyncio.StreamWriter, connection: int, index: int
    ) -> None:
        self.head = head
        self.body = body
        self.writer = writer
        self.connection = connection  # which TCP connection (0, 1, ...)
        self.index = index  # which request on that connection

    @property
    def headers(self) -> dict[str, str]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class HostileServer:
    """A loopback HTTP/1.1 server whose answers ``handler`` writes by hand. ``handler``
    returns whether to keep the connection for another request."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.exchanges: list[Exchange] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection, self.connections = self.connections, self.connections + 1
        index = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                exchange = Exchange(head, body, writer, connection, index)
                self.exchanges.append(exchange)
                index += 1
                if not await self.handler(exchange):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def hostile(handler: Handler, **kwargs: object) -> AsyncIterator[HostileServer]:
    server = await HostileServer(handler, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        await server.stop()


def head(status: str = "200 OK", *headers: str) -> bytes:
    return ("HTTP/1.1 " + status + "\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def client_for(base: str, provider: str = "openai", **overrides: object) -> AbstractLLMClient:
    values: dict[str, object] = {
        "provider": provider,
        "model": "gpt-test",
        "api_base": base + ("/v1" if provider == "openai" else ""),
        "api_key": SecretStr(KEY),
        "max_retries": 0,
    }
    values.update(overrides)
    return create_llm_client(ClientConfig(**values))  # type: ignore[arg-type]


async def consume(stream: AsyncIterator[object]) -> int:
    """Iterate a stream to its end (its typed error is raised); the number of chunks."""
    count = 0
    async for _ in stream:
        count += 1
    return count


async def ticking(work: Awaitable[object]) -> tuple[object, int]:
    """``work``'s outcome, and how many times a 10 ms ticker ran meanwhile (loop liveness)."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        return await asyncio.wait_for(work, 60), ticks
    finally:
        ticker.cancel()


# -- limits --------------------------------------------------------------------------------


async def test_a_gzip_bomb_stops_at_the_response_limit_with_the_loop_live() -> None:
    async def bomb(ex: Exchange) -> bool:
        await ex.send(
            head(
                "200 OK",
                "Content-Type: application/json",
                "Content-Encoding: gzip",
                "Transfer-Encoding: chunked",
            )
        )
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = b"\0" * MiB
        for _ in range(1024):  # 1 GiB inflated, about 1 MB on the wire
            piece = packer.compress(zeros)
            if piece:
                await ex.send(chunked(piece))
        await ex.send(chunked(packer.flush()) + b"0\r\n\r\n")
        return False

    async with hostile(bomb) as server:
        client = client_for(server.url)
        try:
            result, ticks = await ticking(client.complete(HI))
        finally:
            await client.close()
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, ResponseLimitError)
    assert error.code == "max_response_bytes"
    assert "max_response_bytes" in error.message and "ClientConfig" in error.message
    assert ticks > 0  # inflation ran a slice at a time; the loop was never frozen


async def test_an_endless_body_stops_at_the_response_limit() -> None:
    async def endless(ex: Exchange) -> bool:
        await ex.send(
            head("200 OK", "Content-Type: application/json", "Transfer-Encoding: chunked")
        )
        piece = chunked(b"x" * 65536)
        with contextlib.suppress(ConnectionError):
            while True:
                await ex.send(piece)
        return False

    async with hostile(endless) as server:
        client = client_for(server.url, max_response_bytes=4 * MiB)
        try:
            result, _ = await ticking(client.complete(HI))
        finally:
            await client.close()
    assert isinstance(result, Err) and isinstance(result.error, ResponseLimitError)
    assert result.error.code == "max_response_bytes"


async def test_a_200_mb_body_is_refused_from_its_content_length() -> None:
    async def huge(ex: Exchange) -> bool:
        await ex.send(
            head("200 OK", "Content-Type: application/json", f"Content-Length: {200 * MiB}")
        )
        await ex.send(b"{" + b" " * MiB)  # the rest never needs to be sent
        await asyncio.sleep(30)
        return False

    async with hostile(huge) as server:
        client = client_for(server.url)
        try:
            result, _ = await ticking(client.complete(HI))
        finally:
            await client.close()
    assert isinstance(result, Err) and isinstance(result.error, ResponseLimitError)


async def test_a_500_with_a_huge_body_reads_only_an_excerpt() -> None:
    async def failing(ex: Exchange) -> bool:
        await ex.send(
            head(
                "500 Internal Server Error",
                "Content-Type: application/json",
                f"Content-Length: {200 * MiB}",
            )
        )
        with contextlib.suppress(ConnectionError):
            for _ in range(200):
                await ex.send(b"e" * MiB)
        return False

    async with hostile(failing) as server:
        client = client_for(server.url)
        try:
            result, _ = await ticking(client.complete(HI))
        finally:
            await client.close()
    assert isinstance(result, Err)
    assert isinstance(result.error, ProviderError) and result.error.status == 500


async def test_a_100_mb_line_without_newline_is_a_line_limit_error() -> None:
    async def one_line(ex: Exchange) -> bool:
        await ex.send(
            head("200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked")
        )
        await ex.send(chunked(b"data: "))
        piece = chunked(b"a" * MiB)
        with contextlib.suppress(ConnectionError):
            for _ in range(100):
                await ex.send(piece)
        return False

    async with hostile(one_line) as server:
        client = client_for(server.url)
        try:
            with pytest.raises(ResponseLimitError) as caught:
                await asyncio.wait_for(consume(client.stream_chat(HI)), 60)
        finally:
            await client.close()
    assert caught.value.code == "max_line_bytes"
    assert "max_line_bytes" in caught.value.message


async def test_a_megabyte_header_is_a_header_limit_error() -> None:
    async def big_header(ex: Exchange) -> bool:
        await ex.send(head("200 OK", "X-Big: " + "h" * MiB, "Content-Length: 2") + b"{}")
        return False

    async with hostile(big_header) as server:
        client = client_for(server.url)
        try:
            result, _ = await ticking(client.complete(HI))
        finally:
            await client.close()
    assert isinstance(result, Err) and isinstance(result.error, ResponseLimitError)
    assert result.error.code == "max_header_bytes"


# -- redirects -----------------------------------------------------------------------------


def redirect_to(
    location: Callable[[Exchange], str], status: str = "307 Temporary Redirect"
) -> Handler:
    async def answer(ex: Exchange) -> bool:
        await ex.send(head(status, f"Location: {location(ex)}", "Content-Length: 0"))
        return True

    return answer


async def ok(ex: Exchange) -> bool:
    await ex.send(
        head("200 OK", "Content-Type: application/json", f"Content-Length: {len(COMPLETION)}")
        + COMPLETION
    )
    return True


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(
    "status", ["302 Found", "307 Temporary Redirect", "308 Permanent Redirect"]
)
async def test_a_redirect_to_another_port_is_refused_and_the_key_stays_home(
    provider: str, status: str
) -> None:
    async with hostile(ok) as elsewhere:
        target = elsewhere.url + "/v1/chat/completions?key=" + KEY
        async with hostile(redirect_to(lambda ex: target, status)) as server:
            client = client_for(server.url, provider)
            try:
                result = await client.complete(HI)
            finally:
                await client.close()
        assert elsewhere.exchanges == []  # nothing, and no key, reached the other origin
    assert isinstance(result, Err) and isinstance(result.error, RedirectRefusedError)
    message = str(result.error)
    assert server.url in message and elsewhere.url in message
    assert KEY not in message and "key=" not in message


async def test_a_same_origin_redirect_of_a_post_is_refused_too() -> None:
    async with hostile(redirect_to(lambda ex: "/elsewhere/chat/completions")) as server:
        client = client_for(server.url)
        try:
            result = await client.complete(HI)
        finally:
            await client.close()
    assert isinstance(result, Err) and isinstance(result.error, RedirectRefusedError)
    assert len(server.exchanges) == 1


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    try:
        import trustme  # type: ignore[import-not-found]
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("needs trustme or the openssl command for a loopback TLS server")
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return cert, key
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    issued.private_key_and_cert_chain_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    authority.cert_pem.write_to_path(str(cert))
    return cert, key


# The client runs in a fresh interpreter with SSL_CERT_FILE naming the loopback certificate:
# the only way to make the default (verifying) TLS context trust it without touching our code.
_TLS_CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from pydantic import SecretStr
    from lexigram.ai.llm import ClientConfig, create_llm_client

    async def main():
        client = create_llm_client(ClientConfig(
            provider=sys.argv[2], model="gpt-test", api_base=sys.argv[1], max_retries=0,
            api_key=SecretStr(sys.argv[3])))
        result = await client.complete([{"role": "user", "content": "hi"}])
        await client.close()
        error = result.unwrap_err() if result.is_err() else None
        print(type(error).__name__, "|", error)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_https_endpoint_redirecting_to_plain_http_is_refused(
    tmp_path: Path, provider: str
) -> None:
    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    async with hostile(ok) as plain:
        target = f"http://127.0.0.1:{plain.port}/v1/chat/completions"
        async with hostile(redirect_to(lambda ex: target, "302 Found"), tls=tls) as server:
            base = server.url + ("/v1" if provider == "openai" else "")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _TLS_CLIENT, base, provider, KEY,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "SSL_CERT_FILE": str(cert)},
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 120)
        assert plain.exchanges == []
    assert len(server.exchanges) == 1, err.decode()  # TLS worked: the redirect was seen
    text = out.decode()
    assert text.startswith("RedirectRefusedError"), text + err.decode()
    assert "https" in text and "plain http" in text and KEY not in text


# -- deadlines -----------------------------------------------------------------------------


async def test_a_stall_after_two_chunks_ends_at_the_timeout() -> None:
    server = OpenAIServer()
    await server.start()
    server.script(Reply(text="a b c d e f g h", chunk_chars=2, stall_after=2))
    client = client_for(server.url, timeout=2.0)
    try:
        stream = client.stream_chat(HI)
        with pytest.raises(StreamError) as caught:
            await asyncio.wait_for(consume(stream), 15)
    finally:
        await client.close()
        await server.stop()
    assert caught.value.code == "stream_idle_timeout"


async def test_a_silent_provider_ends_a_complete_at_the_per_call_timeout() -> None:
    server = OpenAIServer()
    await server.start()
    server.script(Reply(delay=20))
    client = client_for(server.url)  # ClientConfig.timeout stays 60 s
    try:
        result = await asyncio.wait_for(client.complete(HI, timeout=1), 15)
    finally:
        await client.close()
        await server.stop()
    assert isinstance(result, Err) and isinstance(result.error, LLMTimeoutError)
    assert "timeout" not in (server.requests[0].json or {})  # never sent to the provider


async def test_keep_alive_comments_forever_are_not_progress() -> None:
    async def comments(ex: Exchange) -> bool:
        await ex.send(
            head("200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked")
        )
        await ex.send(chunked(CHUNK))
        with contextlib.suppress(ConnectionError):
            while True:
                await ex.send(chunked(b": keep-alive\n\n"))
                await asyncio.sleep(0.1)
        return False

    async with hostile(comments) as server:
        client = client_for(server.url, timeout=1.0)
        try:
            with pytest.raises(StreamError) as caught:
                await asyncio.wait_for(consume(client.stream_chat(HI)), 15)
        finally:
            await client.close()
    assert caught.value.code == "stream_idle_timeout"
    assert "keep-alive" in caught.value.message


async def test_a_deadline_spans_retries_and_backoff() -> None:
    server = OpenAIServer()
    await server.start()
    # Retry-After makes the wait exact (the backoff is otherwise jittered from 0).
    server.script(Reply(error="rate_limit", headers={"Retry-After": "5"}))
    client = client_for(server.url, max_retries=5)
    try:
        result = await asyncio.wait_for(client.complete(HI, deadline=2.0), 15)
    finally:
        await client.close()
        await server.stop()
    assert isinstance(result, Err) and result.error.status == 429
    assert len(server.requests) == 1  # a 5 s wait does not fit in a 2 s deadline
    assert "deadline" not in (server.requests[0].json or {})


async def test_per_call_timeout_and_deadline_are_not_in_the_cache_key() -> None:
    server = OpenAIServer()
    await server.start()
    client = client_for(server.url, enable_cache=True)
    try:
        first = await client.complete(HI, timeout=5)
        second = await client.complete(HI, timeout=7, deadline=30)
    finally:
        await client.close()
        await server.stop()
    assert isinstance(first, Ok) and isinstance(second, Ok)
    assert len(server.requests) == 1


@pytest.mark.parametrize("bad", [0, -1, "5", True])
async def test_a_bad_per_call_timeout_is_a_configuration_error(bad: object) -> None:
    client = client_for("http://127.0.0.1:9")
    try:
        with pytest.raises(ConfigurationError, match="timeout"):
            await client.complete(HI, timeout=bad)
    finally:
        await client.close()


# -- stale pooled connections --------------------------------------------------------------


async def test_a_dropped_keep_alive_connection_does_not_fail_the_next_call() -> None:
    async def drops_after_one(ex: Exchange) -> bool:
        if ex.index > 0:
            return False  # the server forgot this connection: close without an answer
        await ok(ex)
        return True

    async with hostile(drops_after_one) as server:
        # One failure would open the breaker, and no retries are allowed.
        client = client_for(server.url, breaker_failure_threshold=1)
        try:
            results = [await client.complete(HI) for _ in range(3)]
        finally:
            await client.close()
    assert all(isinstance(r, Ok) for r in results), results
    assert server.connections >= 2  # the retry went out on a fresh connection


async def test_a_refused_connection_is_not_retried_and_names_the_host() -> None:
    async with hostile(ok) as server:
        port = server.port
    client = client_for(f"http://127.0.0.1:{port}")
    try:
        result = await client.complete(HI)
    finally:
        await client.close()
    assert isinstance(result, Err) and isinstance(result.error, ProviderConnectionError)
    assert "check api_base" in result.error.message


async def test_an_unreachable_ollama_says_to_start_it() -> None:
    async with hostile(ok) as server:
        port = server.port
    client = create_llm_client(
        ClientConfig(
            provider="ollama", model="llama3.2", api_base=f"http://127.0.0.1:{port}", max_retries=0
        )
    )
    try:
        result = await client.complete(HI)
    finally:
        await client.close()
    assert isinstance(result, Err) and isinstance(result.error, ProviderConnectionError)
    assert "ollama serve" in result.error.message


# -- base URLs from the environment ---------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "variable"),
    [("openai", "OPENAI_BASE_URL"), ("anthropic", "ANTHROPIC_BASE_URL")],
)
def test_a_scheme_less_base_url_from_the_environment_is_refused_for_a_keyed_provider(
    monkeypatch: pytest.MonkeyPatch, provider: str, variable: str
) -> None:
    monkeypatch.setenv(variable, "api.example.com/v1")
    with pytest.raises(ConfigurationError, match=variable):
        create_llm_client(ClientConfig(provider=provider, model="m", api_key=SecretStr(KEY)))


def test_ollama_host_without_scheme_or_port_keeps_working(monkeypatch: pytest.MonkeyPatch) -> None:
    from lexigram.ai.llm.providers.http import HTTPLLMClient

    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1")
    client = create_llm_client(ClientConfig(provider="ollama", model="m"))
    assert isinstance(client, HTTPLLMClient) and client.base_url == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:8080")
    client = create_llm_client(ClientConfig(provider="ollama", model="m"))
    assert isinstance(client, HTTPLLMClient) and client.base_url == "http://0.0.0.0:8080"


# -- the in-memory transport -----------------------------------------------------------------


async def test_the_in_memory_transport_applies_the_same_limits_and_framing() -> None:
    from lexigram.ai.llm._framing import SSEDecoder
    from lexigram.ai.llm._transport import InMemoryTransport, Reply, TransportLimits
    from lexigram.ai.llm.providers.base import HTTPRequest

    limits = TransportLimits(max_response_bytes=4096, max_error_body_bytes=8)
    replies = iter(
        [
            Reply(chunks=[b"data: a\n", b"\n: keep-alive\n\ndata: b\n\n"]),
            Reply(status=500, body=b"x" * 100),
            Reply(body=b"y" * 5000),
        ]
    )
    transport = InMemoryTransport(lambda request: next(replies), limits=limits)
    request = HTTPRequest("POST", "http://memory/v1/chat", {}, b"{}")
    streamed = await transport.send(request, stream=True)
    batches = [list(batch) async for batch in streamed.events(SSEDecoder())]
    assert [[event.data for event in batch] for batch in batches] == [[b"a", b"b"]]
    failed = await transport.send(request)
    assert failed.status == 500 and failed.body == b"x" * 8  # an excerpt only
    with pytest.raises(ResponseLimitError):
        await transport.send(request)
    assert len(transport.sent) == 3
