"""``HTTP1Transport``, our HTTP/1.1 client, against servers that write their answers by hand.

The policy (limits, redirects, deadlines, stale connections) is tested in
``test_transport_policy``; here, what an HTTP/1.1 client must get right on its own: keep-alive
and ``Connection: close``, HTTP/1.0, bodies framed by length, by chunks (extensions, trailers,
any split of the bytes) or by the end of the connection, interim 1xx answers, malformed
answers, header injection, the bound on open connections, and reading paused for a slow
stream consumer. Through the public client where the behaviour is the user's; through the
transport where it is the transport's own contract.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_transport_policy import (
    CHUNK,
    COMPLETION,
    HI,
    Exchange,
    chunked,
    client_for,
    head,
    hostile,
)

from lexigram.ai.llm._http1 import HTTP1Transport, _Conn, _Target
from lexigram.ai.llm._transport import TransportLimits
from lexigram.ai.llm.exceptions import ConfigurationError, ProviderError
from lexigram.ai.llm.providers.base import HTTPRequest
from lexigram.result import Err, Ok


async def answer(ex: Exchange, *extra: str) -> bool:
    await ex.send(
        head(
            "200 OK", "Content-Type: application/json", f"Content-Length: {len(COMPLETION)}", *extra
        )
        + COMPLETION
    )
    return True


async def test_sequential_calls_reuse_one_kept_alive_connection() -> None:
    async with hostile(answer) as server:
        client = client_for(server.url)
        try:
            results = [await client.complete(HI) for _ in range(20)]
        finally:
            await client.close()
    assert all(isinstance(r, Ok) and r.value.content == "fine" for r in results)
    assert server.connections == 1
    sent = server.exchanges[0].headers
    assert sent["host"] == f"127.0.0.1:{server.port}"
    assert sent["content-length"] == str(len(server.exchanges[0].body))
    assert "user-agent" in sent and sent["accept-encoding"] == "gzip, deflate"


async def test_a_connection_idle_past_the_keep_alive_window_is_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lexigram.ai.llm._http1 as http1

    monkeypatch.setattr(http1, "KEEPALIVE_SECONDS", 0.05)
    async with hostile(answer) as server:
        client = client_for(server.url)
        try:
            first = await client.complete(HI)
            second = await client.complete(HI)  # at once: the same connection
            await asyncio.sleep(0.2)
            third = await client.complete(HI)  # idle too long: a new one
        finally:
            await client.close()
    assert all(isinstance(r, Ok) for r in (first, second, third))
    assert [ex.connection for ex in server.exchanges] == [0, 0, 1]


async def test_connection_close_is_honoured_and_the_next_call_opens_another() -> None:
    async def closing(ex: Exchange) -> bool:
        await answer(ex, "Connection: close")
        return False

    async with hostile(closing) as server:
        client = client_for(server.url)
        try:
            results = [await client.complete(HI) for _ in range(3)]
        finally:
            await client.close()
    assert all(isinstance(r, Ok) for r in results), results
    assert server.connections == 3


async def test_an_http_1_0_answer_read_to_the_end_of_the_connection() -> None:
    async def old(ex: Exchange) -> bool:
        await ex.send(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + COMPLETION)
        return False  # the end of the connection ends the body

    async with hostile(old) as server:
        client = client_for(server.url)
        try:
            results = [await client.complete(HI) for _ in range(2)]
        finally:
            await client.close()
    assert all(isinstance(r, Ok) and r.value.content == "fine" for r in results), results
    assert server.connections == 2


async def test_a_chunked_answer_with_extensions_and_trailers_sent_byte_by_byte() -> None:
    body = COMPLETION
    wire = (
        head("200 OK", "Content-Type: application/json", "Transfer-Encoding: chunked")
        + f"{7:x};name=value\r\n".encode()
        + body[:7]
        + b"\r\n"
        + f"{len(body) - 7:X}\r\n".encode()
        + body[7:]
        + b"\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )

    async def trickle(ex: Exchange) -> bool:
        for i in range(len(wire)):
            await ex.send(wire[i : i + 1])
        return True

    async with hostile(trickle) as server:
        client = client_for(server.url)
        try:
            first = await client.complete(HI)
            second = await client.complete(HI)
        finally:
            await client.close()
    assert isinstance(first, Ok) and first.value.content == "fine", first
    assert isinstance(second, Ok)
    assert server.connections == 1  # a chunked answer read to its end keeps the connection


async def test_an_interim_100_continue_is_skipped() -> None:
    async def interim(ex: Exchange) -> bool:
        await ex.send(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        )
        return await answer(ex)

    async with hostile(interim) as server:
        client = client_for(server.url)
        try:
            result = await client.complete(HI)
        finally:
            await client.close()
    assert isinstance(result, Ok) and result.value.content == "fine", result


@pytest.mark.parametrize(
    "wire",
    [
        b"SPDY/3 200 OK\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        b"HTTP/1.1 200 OK\r\n folded: header\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ],
    ids=["not-http", "bad-status", "no-colon", "bad-length", "two-lengths", "bad-chunk-size",
         "chunk-without-crlf", "obs-fold", "transfer-coding"],
)  # fmt: skip
async def test_a_malformed_answer_is_a_typed_provider_error(wire: bytes) -> None:
    async def broken(ex: Exchange) -> bool:
        await ex.send(wire)
        await asyncio.sleep(5)  # keep the connection open: the client must decide alone
        return False

    async with hostile(broken) as server:
        client = client_for(server.url)
        try:
            result = await asyncio.wait_for(client.complete(HI), 4)
        finally:
            await client.close()
    assert isinstance(result, Err), result
    assert isinstance(result.error, ProviderError)
    assert result.error.code == "malformed_response", result.error


async def test_a_header_value_with_a_line_break_is_refused_before_sending() -> None:
    async with hostile(answer) as server:
        client = client_for(server.url, extra={"headers": {"X-Note": "a\r\nX-Injected: 1"}})
        try:
            with pytest.raises(ConfigurationError, match="line break"):
                await client.complete(HI)  # a configuration error raises (DESIGN.md)
        finally:
            await client.close()
        assert server.exchanges == []


async def test_at_most_max_connections_are_open_at_once() -> None:
    open_now = 0
    most = 0

    async def slow(ex: Exchange) -> bool:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        await asyncio.sleep(0.05)
        open_now -= 1
        return await answer(ex)

    async with hostile(slow) as server:
        client = client_for(server.url, max_connections=2)
        try:
            results = await asyncio.gather(*(client.complete(HI) for _ in range(10)))
        finally:
            await client.close()
    assert all(isinstance(r, Ok) for r in results), results
    assert most <= 2 and server.connections <= 2


async def test_a_stream_is_read_as_it_arrives_and_the_connection_is_kept() -> None:
    async def streams(ex: Exchange) -> bool:
        await ex.send(
            head("200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked")
        )
        for _ in range(5):
            await ex.send(chunked(CHUNK))
            await asyncio.sleep(0.01)
        await ex.send(chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        return True

    async with hostile(streams) as server:
        client = client_for(server.url)
        try:
            for _ in range(2):
                text = "".join([c.delta async for c in client.stream_chat(HI)])
                assert text == "tok" * 5
        finally:
            await client.close()
    assert server.connections == 1


async def test_a_non_ascii_or_spaced_path_is_percent_encoded_once() -> None:
    target = _Target("http://example.test:8080/deployments/my model/é?api-version=2024 01&x=%41")
    path, authority = target.line
    assert path == "/deployments/my%20model/%C3%A9?api-version=2024%2001&x=%41"
    assert authority == "example.test:8080"
    assert _Target("https://[::1]/v1").line == ("/v1", "[::1]")


async def test_userinfo_in_the_base_url_goes_as_basic_auth_and_never_in_the_request_line() -> None:
    async with hostile(answer) as server:
        base = server.url.replace("http://", "http://proxy-user:s%40cret@")
        client = client_for(base, provider="ollama", api_key=None, model="llama3")
        try:
            await client.complete(HI)
        finally:
            await client.close()
    exchange = server.exchanges[0]
    assert exchange.headers["authorization"] == "Basic cHJveHktdXNlcjpzQGNyZXQ="  # user:s@cret
    assert b"s%40cret" not in exchange.head and b"proxy-user" not in exchange.head.split(b"\r\n")[0]


async def test_the_transport_refuses_a_url_that_is_not_http() -> None:
    transport = HTTP1Transport(timeout=5)
    with pytest.raises(ProviderError, match="not an http"):
        await transport.send(HTTPRequest("GET", "ftp://example.test/", {}, None))
    await transport.aclose()


class _FakeSocket:
    """Records what the connection asks of its asyncio transport."""

    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1


async def test_reading_pauses_while_a_slow_consumer_has_a_megabyte_waiting() -> None:
    conn = _Conn(asyncio.get_running_loop(), None, TransportLimits())
    sock = _FakeSocket()
    conn.transport = sock  # type: ignore[assignment]
    conn.start(b"", expect_body=True, stream=True)
    conn.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"x" * 65536
    for _ in range(20):
        conn.data_received(chunked(piece))
    assert sock.paused == 1 and sock.resumed == 0
    assert len(conn.take()) == 20 * 65536
    assert sock.resumed == 1


def _chunk_wire(body: bytes, sizes: list[int], trailer: bool) -> bytes:
    out = []
    position = 0
    for size in sizes:
        piece = body[position : position + size]
        position += size
        if piece:
            out.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    if position < len(body):
        rest = body[position:]
        out.append(f"{len(rest):x}\r\n".encode() + rest + b"\r\n")
    out.append(b"0\r\n" + (b"X-Checksum: 1\r\n" if trailer else b"") + b"\r\n")
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(out)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=400),
    sizes=st.lists(st.integers(1, 50), max_size=30),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=40),
    trailer=st.booleans(),
    stream=st.booleans(),
)
def test_a_chunked_body_is_the_same_however_the_bytes_are_split(
    body: bytes, sizes: list[int], cuts: list[int], trailer: bool, stream: bool
) -> None:
    wire = _chunk_wire(body, sizes, trailer)

    async def run() -> tuple[bytes, bool]:
        conn = _Conn(asyncio.get_running_loop(), None, TransportLimits())
        conn.transport = _FakeSocket()  # type: ignore[assignment]
        conn.start(b"", expect_body=True, stream=stream)
        position = 0
        index = 0
        while position < len(wire):
            step = cuts[index % len(cuts)]
            conn.data_received(wire[position : position + step])
            position += step
            index += 1
        return conn.take(), conn.finished() and conn.reusable

    got, reusable = asyncio.run(run())
    assert got == body
    assert reusable


async def test_a_reply_is_never_read_past_its_content_length() -> None:
    seen: list[Any] = []

    async def extra_bytes(ex: Exchange) -> bool:
        await ex.send(
            head("200 OK", f"Content-Length: {len(COMPLETION)}") + COMPLETION + b"HTTP/1.1 200"
        )
        seen.append(ex.connection)
        return True

    async with hostile(extra_bytes) as server:
        client = client_for(server.url)
        try:
            results = [await client.complete(HI) for _ in range(2)]
        finally:
            await client.close()
    assert all(isinstance(r, Ok) for r in results), results
    assert server.connections == 2  # bytes past the answer: that connection is not reused


async def test_a_fast_stream_and_a_slow_reader_keep_at_most_about_a_megabyte_queued() -> None:
    event = b"data: " + b"x" * 1000 + b"\n\n"

    async def firehose(ex: Exchange) -> bool:
        await ex.send(
            head("200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked")
        )
        block = chunked(event * 64)
        try:
            for _ in range(100_000):  # endless, as fast as the socket takes it
                await ex.send(block)
        except ConnectionError:
            pass
        return False

    class Events:
        def feed(self, data: bytes) -> list[bytes]:
            return [data]

        def finish(self) -> list[bytes]:
            return []

    most = 0
    async with hostile(firehose) as server:
        transport = HTTP1Transport(timeout=10)
        response = await transport.send(
            HTTPRequest("POST", server.url + "/v1/chat/completions", {}, b"{}"), stream=True
        )
        stream = response._stream
        batches = response.events(Events())
        try:
            for _ in range(10):
                await batches.__anext__()
                await asyncio.sleep(0.02)  # a slow consumer: the server is far ahead
                most = max(most, stream._conn._queued)  # type: ignore[union-attr]
        finally:
            await batches.aclose()
            await response.aclose()
            await transport.aclose()
    # Reading pauses above 1 MiB waiting; what is queued then is at most that plus one read.
    assert 1024 * 1024 < most <= 2 * 1024 * 1024
