"""A scriptable loopback HTTP server; each wire family renders ``Reply`` objects its own way.

Tests queue ``Reply`` values (``server.script(...)``); every request takes the next one (the
last one repeats). The server records each request so tests can assert on what was sent.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

# Semantic error kinds a Reply may ask for; each family renders them as its provider does.
ERROR_KINDS = (
    "invalid_request",
    "context_length",
    "content_filter",
    "auth",
    "permission",
    "quota",
    "not_found",
    "rate_limit",
    "server",
    "overloaded",
)


@dataclass
class Reply:
    """What the fake provider answers to one request."""

    text: str = "Hello from the loopback server."
    thinking: str = ""
    thinking_signature: str | None = None
    # (id, name, arguments): a dict, or a str sent as the raw argument text where the wire
    # carries arguments as JSON text (to script invalid JSON)
    tool_calls: list[tuple[str, str, dict[str, Any] | str]] = field(default_factory=list)
    finish: str = "stop"  # stop | length | tool_calls | content_filter
    prompt_tokens: int = 12
    completion_tokens: int = 7
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    # Failure modes
    error: str | None = None  # one of ERROR_KINDS
    status: int | None = None  # overrides the family's status for ``error``
    error_message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the response starts
    chunk_delay: float = 0.0  # between stream events
    stall_after: int | None = None  # stream: send N events then go silent (connection open)
    cut_after: int | None = None  # stream: send N events then close without the terminal event
    malformed_at: int | None = None  # stream: event N is replaced by undecodable bytes
    stream_error_after: int | None = None  # stream: an error event after N events
    chunk_chars: int = 6  # stream: text is sent in pieces of this many characters
    raw_body: bytes | None = None  # non-stream: send exactly these bytes with status 200


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def arguments_text(args: dict[str, Any] | str) -> str:
    """A tool call's arguments as JSON text (a str is sent as it is, valid JSON or not)."""
    return args if isinstance(args, str) else orjson.dumps(args).decode()


def text_pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or []


class FakeProviderServer:
    """Base loopback server. Subclasses set ``routes`` and implement the renderers."""

    #: (method, path pattern) pairs served by ``handle``.
    routes: tuple[tuple[str, str], ...] = ()
    content_type_stream = "text/event-stream"

    def __init__(self) -> None:
        self.replies: list[Reply] = [Reply()]
        self.requests: list[RecordedRequest] = []
        self.open_streams = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._cursor = 0

    # -- scripting -------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies`` in order (the last one repeats)."""
        self.replies = list(replies)
        self._cursor = 0

    def next_reply(self) -> Reply:
        reply = self.replies[min(self._cursor, len(self.replies) - 1)]
        self._cursor += 1
        return reply

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- to implement per family -----------------------------------------------------------

    def is_stream(self, request: RecordedRequest) -> bool:
        raise NotImplementedError

    def render_body(self, reply: Reply, request: RecordedRequest) -> bytes:
        raise NotImplementedError

    def render_events(self, reply: Reply, request: RecordedRequest) -> list[bytes]:
        """Framed stream events, the terminal one last."""
        raise NotImplementedError

    def render_error(self, reply: Reply, request: RecordedRequest) -> tuple[int, bytes]:
        raise NotImplementedError

    def render_stream_error_event(self, reply: Reply) -> bytes:
        raise NotImplementedError

    def malformed_event(self) -> bytes:
        return b"data: {this is not json\n\n"

    def check_auth(self, request: RecordedRequest) -> tuple[int, bytes] | None:
        """A rejection for a request that is not correctly authenticated, else ``None``."""
        return None

    # -- serving ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        self.requests.append(recorded)
        rejected = self.check_auth(recorded)
        if rejected is not None:
            return web.Response(
                status=rejected[0], body=rejected[1], content_type="application/json"
            )
        reply = self.next_reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.error is not None:
            status, payload = self.render_error(reply, recorded)
            return web.Response(
                status=reply.status or status,
                body=payload,
                headers=reply.headers,
                content_type="application/json",
            )
        if not self.is_stream(recorded):
            payload = (
                reply.raw_body if reply.raw_body is not None else self.render_body(reply, recorded)
            )
            return web.Response(
                body=payload, headers=reply.headers, content_type="application/json"
            )
        return await self._stream(request, recorded, reply)

    async def _stream(
        self, request: web.Request, recorded: RecordedRequest, reply: Reply
    ) -> web.StreamResponse:
        events = self.render_events(reply, recorded)
        if reply.malformed_at is not None:
            events[reply.malformed_at] = self.malformed_event()
        response = web.StreamResponse(headers={**reply.headers})
        response.content_type = self.content_type_stream
        await response.prepare(request)
        self.open_streams += 1
        try:
            for i, event in enumerate(events):
                if reply.stream_error_after is not None and i == reply.stream_error_after:
                    await response.write(self.render_stream_error_event(reply))
                    return response
                if reply.cut_after is not None and i == reply.cut_after:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if reply.stall_after is not None and i == reply.stall_after:
                    await asyncio.sleep(3600)
                await response.write(event)
                if reply.chunk_delay:
                    await asyncio.sleep(reply.chunk_delay)
            await response.write_eof()
            return response
        finally:
            self.open_streams -= 1

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        for method, path in self.routes:
            app.router.add_route(method, path, self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def sse(payload: Any, event: str | None = None) -> bytes:
    """One SSE event with a JSON payload."""
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


ServerFactory = Callable[[], FakeProviderServer]
