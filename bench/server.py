"""The fake provider: a small HTTP/1.1 server on loopback that only copies pre-built bytes.

Run in its own process (``python -m bench.server``) so that its CPU never counts as the
client's. It speaks just enough HTTP/1.1 for the clients under test: keep-alive,
``Content-Length`` request bodies, ``Connection: close``, and chunked responses for streams.

Routes: ``POST /v1/chat/completions`` (OpenAI), ``POST /v1/messages`` (Anthropic) and
``POST /v1/responses`` (OpenAI Responses). The JSON
body's ``stream`` flag picks a stream; its ``model`` picks a behaviour: ``bench-hold`` sends the
first content chunk and then holds the stream open until the client goes away (bounded by
``--hold-max``), for the memory-per-open-stream figure.

Timing knobs: ``--latency-ms`` delays every answer (and a stream's first event);
``--chunk-interval-ms`` spaces a stream's content events so that each reaches the client in its
own read, as tokens do from a real provider (0 sends the whole stream at once).

It prints ``READY <port>`` when listening and exits when its standard input closes, so it never
outlives the runner.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import threading

import orjson

from bench.payloads import (
    HOLD_MODEL,
    WirePayloads,
    anthropic_payloads,
    openai_payloads,
    responses_payloads,
)

__all__ = ["ServerOptions", "serve"]

_OPENAI_PATH = b"/v1/chat/completions"
_ANTHROPIC_PATH = b"/v1/messages"
_RESPONSES_PATH = b"/v1/responses"


def _chunked(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


class _Wire:
    """One wire family's bytes, framed once for HTTP/1.1."""

    __slots__ = ("all_events", "body_close", "body_keep", "deltas", "first", "rest_after_first")

    def __init__(self, payloads: WirePayloads) -> None:
        self.body_keep = self._json_response(payloads.body, close=False)
        self.body_close = self._json_response(payloads.body, close=True)
        head = b"".join(_chunked(e) for e in payloads.head)
        self.deltas = tuple(_chunked(e) for e in payloads.deltas)
        tail = b"".join(_chunked(e) for e in payloads.tail) + b"0\r\n\r\n"
        # Head events go out together with the first content delta.
        self.first = head + self.deltas[0]
        self.rest_after_first = (*self.deltas[1:], tail)
        self.all_events = self.first + b"".join(self.rest_after_first)

    @staticmethod
    def _json_response(body: bytes, *, close: bool) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n"
            b"x-request-id: req_bench\r\nrequest-id: req_bench\r\n"
            b"%s\r\n%s"
        ) % (len(body), b"Connection: close\r\n" if close else b"", body)


def _stream_head(close: bool) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/event-stream; charset=utf-8\r\n"
        b"Cache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"x-request-id: req_bench\r\nrequest-id: req_bench\r\n"
        + (b"Connection: close\r\n" if close else b"")
        + b"\r\n"
    )


_NOT_FOUND_BODY = b'{"error":{"message":"no such route","type":"invalid_request_error"}}'
_NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (len(_NOT_FOUND_BODY), _NOT_FOUND_BODY)
)


class ServerOptions:
    """What the server does besides answering at once."""

    __slots__ = ("chunk_interval", "hold_max", "latency")

    def __init__(self, *, latency: float, chunk_interval: float, hold_max: float) -> None:
        self.latency = latency
        self.chunk_interval = chunk_interval
        self.hold_max = hold_max


class _Connection(asyncio.Protocol):
    __slots__ = ("_buffer", "_busy", "_closed", "_options", "_transport", "_wires")

    def __init__(self, wires: dict[bytes, _Wire], options: ServerOptions) -> None:
        self._wires = wires
        self._options = options
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._closed: asyncio.Future[None] | None = None
        self._busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._process()

    def _process(self) -> None:
        buffer = self._buffer
        while not self._busy:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            elif b"\r\ntransfer-encoding:" in head:
                self._reply(_NOT_FOUND, close=True)  # chunked uploads are not needed here
                return
            total = end + 4 + length
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4 : total])
            del buffer[:total]
            close = b"\r\nconnection: close" in head
            path = head.split(b" ", 2)[1].split(b"?", 1)[0]
            wire = self._wires.get(path)
            if wire is None:
                self._reply(_NOT_FOUND, close=close)
                continue
            # Only a body that mentions ``stream`` is parsed: most requests skip the JSON work.
            request = {}
            if b'"stream"' in body:
                try:
                    request = orjson.loads(body)
                except orjson.JSONDecodeError:
                    self._reply(_NOT_FOUND, close=True)
                    return
            if request.get("stream"):
                self._busy = True
                asyncio.get_running_loop().create_task(
                    self._stream(wire, hold=request.get("model") == HOLD_MODEL, close=close)
                )
            elif self._options.latency:
                self._busy = True
                asyncio.get_running_loop().call_later(
                    self._options.latency, self._delayed_reply, wire, close
                )
            else:
                self._reply(wire.body_close if close else wire.body_keep, close=close)

    def _reply(self, data: bytes, *, close: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if close:
            transport.close()

    def _delayed_reply(self, wire: _Wire, close: bool) -> None:
        self._busy = False
        self._reply(wire.body_close if close else wire.body_keep, close=close)
        self._process()

    async def _stream(self, wire: _Wire, *, hold: bool, close: bool) -> None:
        transport = self._transport
        assert transport is not None and self._closed is not None
        options = self._options
        try:
            if options.latency:
                await asyncio.sleep(options.latency)
            if transport.is_closing():
                return
            if not hold and not options.chunk_interval:
                transport.write(_stream_head(close) + wire.all_events)
            else:
                transport.write(_stream_head(close) + wire.first)
                if hold:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._closed), options.hold_max)
                for event in wire.rest_after_first:
                    if transport.is_closing():
                        return
                    if options.chunk_interval and not hold:
                        await asyncio.sleep(options.chunk_interval)
                    transport.write(event)
            if close:
                transport.close()
        finally:
            self._busy = False
        if not transport.is_closing():
            self._process()


async def serve(port: int, options: ServerOptions, *, ready: bool = True) -> None:
    """Listen on ``127.0.0.1:port`` (0: any free port) until cancelled."""
    loop = asyncio.get_running_loop()
    wires = {
        _OPENAI_PATH: _Wire(openai_payloads()),
        _ANTHROPIC_PATH: _Wire(anthropic_payloads()),
        _RESPONSES_PATH: _Wire(responses_payloads()),
    }
    server = await loop.create_server(
        lambda: _Connection(wires, options), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    if ready:
        bound = server.sockets[0].getsockname()[1]
        print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.server [--port P] [--latency-ms X] [--chunk-interval-ms Y]``."""
    parser = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--chunk-interval-ms", type=float, default=1.0)
    parser.add_argument("--hold-max", type=float, default=120.0, help="seconds")
    args = parser.parse_args(argv)
    options = ServerOptions(
        latency=args.latency_ms / 1000,
        chunk_interval=args.chunk_interval_ms / 1000,
        hold_max=args.hold_max,
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop() -> None:
            task.cancel()

        # Exit when the runner goes away (stdin closes) or asks politely (SIGTERM).
        def watch_stdin() -> None:
            # The raw descriptor, not sys.stdin: a buffered reader's lock held by this daemon
            # thread would abort the interpreter at exit.
            while os.read(0, 4096):
                pass
            loop.call_soon_threadsafe(stop)

        threading.Thread(target=watch_stdin, daemon=True).start()
        loop.add_signal_handler(signal.SIGTERM, stop)
        with contextlib.suppress(asyncio.CancelledError):
            await serve(args.port, options)

    asyncio.run(run())


if __name__ == "__main__":
    main()
