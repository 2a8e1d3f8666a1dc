"""The only door to the network: one ``Transport`` interface, the policy every
implementation applies, and an in-memory implementation for tests. The network one is
``_http1.HTTP1Transport`` (our own HTTP/1.1 connections on asyncio).

Imported on the first request, not with the package, so ``import lexigram.ai.llm`` stays fast.
Every caller (the HTTP clients, the model manager, the CLI) gets the same policy:

- **Redirects** are never followed to another origin (scheme, host or port) nor from https to
  http: the request carries credentials (``x-api-key`` and friends) and, for 307/308, the
  prompt. Same-origin redirects are followed, at most ``MAX_REDIRECTS`` hops, for GET and HEAD
  only (no body to replay, safe to repeat); a chat request (POST) that is redirected means a
  wrong base URL, said in a ``RedirectRefusedError`` naming both URLs (without userinfo or
  query). ``redirect_refusal`` decides.
- **Limits** (``TransportLimits``, from ``ClientConfig``): response size counted in
  decompressed bytes while reading (the transport inflates gzip/deflate itself, a bounded
  slice at a time, so a bomb stops at the limit with the loop responsive), line length in
  streams, error bodies read only up to a small cap, header size.
- **Deadlines**: ``timeout`` bounds the connection and the whole non-streamed exchange; a
  stream may last, but every gap between *events* is at most ``min(timeout,
  stream_idle_timeout)`` (SSE comments and keep-alive lines are bytes, not events, so they do
  not count as progress), and an absolute ``deadline`` ends everything.
- **Stale pooled connections**: a request that fails with a disconnect before any response
  byte arrived on a reused connection (the server had dropped it) is sent once more at once;
  it is not a provider failure.
- **Errors** of the network are mapped once, in the transport, to typed ``LLMError``s.

A client reused from a new event loop (a second ``asyncio.run``) gets a fresh pool; the
connections of the dead loop are dropped.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from yarl import URL

from lexigram.ai.llm._framing import limit_error
from lexigram.ai.llm.exceptions import (
    ProviderError,
    RedirectRefusedError,
)

if TYPE_CHECKING:
    from lexigram.ai.llm.config import ClientConfig

__all__ = [
    "MAX_REDIRECTS",
    "Framer",
    "InMemoryTransport",
    "Reply",
    "Request",
    "Response",
    "Transport",
    "TransportLimits",
    "public_url",
    "redirect_refusal",
]

MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SAFE_METHODS = frozenset({"GET", "HEAD"})
# Inflate at most this much per call, then yield to the loop: a bomb never freezes it.
_INFLATE_SLICE = 1024 * 1024
_ACCEPT_ENCODING = "gzip, deflate"  # exactly what ``_Inflater`` decodes


# -- the interface ---------------------------------------------------------------------------


class Request(Protocol):
    """What the transport sends (``providers.base.HTTPRequest`` is one)."""

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> bytes | None: ...


class Framer(Protocol):
    """Cuts a streamed body into events (``_framing.SSEDecoder``, ``NDJSONDecoder``...)."""

    def feed(self, data: bytes) -> Sequence[Any]: ...

    def finish(self) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class TransportLimits:
    """What a server may make the client hold; see the ``ClientConfig`` fields of these names."""

    max_response_bytes: int = 64 * 1024 * 1024
    max_line_bytes: int = 8 * 1024 * 1024
    max_error_body_bytes: int = 64 * 1024
    max_header_bytes: int = 64 * 1024

    @classmethod
    def from_config(cls, config: ClientConfig) -> TransportLimits:
        return cls(
            config.max_response_bytes,
            config.max_line_bytes,
            config.max_error_body_bytes,
            config.max_header_bytes,
        )


class Response:
    """One response: ``status``, ``headers`` and either ``body`` (read whole, bounded; for an
    error status, at most ``max_error_body_bytes``) or, for a streamed 2xx, ``events()``.

    A streamed response must be closed: ``aclose()`` (it is idempotent).
    """

    __slots__ = ("_stream", "body", "headers", "status", "url")

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        url: str = "",
        stream: _BodyStream | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url
        self._stream = stream

    def events(self, framer: Framer) -> AsyncGenerator[Sequence[Any], None]:
        """The streamed body cut by ``framer``: one non-empty batch of events per read.

        Raises ``StreamError`` (idle gap, broken connection), ``LLMTimeoutError`` (deadline)
        or ``ResponseLimitError``."""
        if self._stream is None:
            raise RuntimeError("events() needs a response sent with stream=True")
        return self._stream.events(framer)

    async def aclose(self) -> None:
        """Return the connection to the pool if the body was read to its end, else drop it."""
        if self._stream is not None:
            self._stream.close()


class Transport(Protocol):
    """Sends requests under the policy above. ``deadline`` is on the ``time.monotonic``
    clock (the event loop's); ``timeout`` overrides the transport's default for one call."""

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Response: ...

    async def aclose(self) -> None: ...


class _BodyStream(Protocol):
    def events(self, framer: Framer) -> AsyncGenerator[Sequence[Any], None]: ...

    def close(self) -> None: ...


# -- helpers shared by both implementations --------------------------------------------------


def public_url(url: str | URL) -> str:
    """``url`` without userinfo, query or fragment: safe in an error message."""
    parsed = url if isinstance(url, URL) else URL(url)
    try:
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except ValueError:
        return "<unparseable URL>"


class _Inflater:
    """Incremental gzip/deflate decoding with a bounded output per call."""

    __slots__ = ("_decompressor", "_pending", "_wbits")

    def __init__(self, encoding: str) -> None:
        if encoding in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif encoding == "deflate":
            self._wbits = zlib.MAX_WBITS
        else:
            raise ProviderError(
                f"The provider sent a body in Content-Encoding {encoding!r}, which was not "
                f"asked for (Accept-Encoding: {_ACCEPT_ENCODING})",
                code="unsupported_content_encoding",
                retryable=False,
            )
        self._decompressor = zlib.decompressobj(self._wbits)
        self._pending = b""

    def inflate(self, data: bytes, max_length: int) -> tuple[bytes, bool]:
        """Up to ``max_length`` bytes of output, and whether input is left (``pending``)."""
        d = self._decompressor
        try:
            out = d.decompress(data, max_length)
        except zlib.error as exc:
            raise ProviderError(
                f"The provider sent a corrupt compressed body ({exc})",
                code="corrupt_body",
                retryable=True,
            ) from None
        if d.eof and d.unused_data:  # another gzip member follows
            self._pending = d.unused_data
            self._decompressor = zlib.decompressobj(self._wbits)
        else:
            self._pending = d.unconsumed_tail
        return out, bool(self._pending)

    def pending(self) -> bytes:
        return self._pending


async def _inflate_all(inflater: _Inflater, data: bytes, budget: int, out: list[bytes]) -> int:
    """Inflate ``data`` into ``out``; the number of bytes produced (stops past ``budget``)."""
    produced = 0
    chunk, more = inflater.inflate(data, min(budget + 1, _INFLATE_SLICE))
    while True:
        produced += len(chunk)
        if chunk:
            out.append(chunk)
        if produced > budget or not more:
            return produced
        await asyncio.sleep(0)  # a bomb inflates a slice at a time; the loop stays live
        chunk, more = inflater.inflate(
            inflater.pending(), min(budget - produced + 1, _INFLATE_SLICE)
        )


# -- redirects -------------------------------------------------------------------------------


def redirect_refusal(status: int, location: str, method: str, url: str, hops: int) -> str:
    """The URL a redirect may be followed to (same origin, GET/HEAD, within
    ``MAX_REDIRECTS`` hops), else ``RedirectRefusedError`` naming both URLs without secrets."""
    source = URL(url)
    try:
        target = source.join(URL(location))
    except ValueError:
        target = URL("invalid:")
    why = None
    if not target.absolute or target.scheme not in ("http", "https"):
        why = "to a URL that is not http(s)"
    elif source.scheme == "https" and target.scheme == "http":
        why = "from https to plain http (credentials would travel in clear text)"
    elif (target.scheme, target.host, target.port) != (
        source.scheme,
        source.host,
        source.port,
    ):
        why = "to another origin (credentials and the request body stay home)"
    elif method.upper() not in _SAFE_METHODS:
        why = f"for a {method.upper()} request (its body is not replayed)"
    elif hops >= MAX_REDIRECTS:
        why = f"after {MAX_REDIRECTS} redirects"
    if why is None:
        return str(target)
    raise RedirectRefusedError(
        f"The server answered {status} redirecting {public_url(source)} to "
        f"{public_url(target)}; not followed {why}. Point the base URL at the final "
        f"address",
        status=status,
        retryable=False,
        details={"from": public_url(source), "to": public_url(target)},
    )


# -- in memory -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """What ``InMemoryTransport`` answers: a body, or ``chunks`` for a stream."""

    status: int = 200
    headers: Mapping[str, str] | None = None
    body: bytes = b""
    chunks: Sequence[bytes] = ()


class InMemoryTransport:
    """A ``Transport`` with no socket, for unit tests: ``handler(request) -> Reply``.

    It applies the same size and line limits as the network transport; sent requests are
    kept in ``sent``.
    """

    def __init__(
        self,
        handler: Callable[[Request], Reply],
        *,
        limits: TransportLimits | None = None,
    ) -> None:
        self._handler = handler
        self._limits = limits or TransportLimits()
        self.sent: list[Request] = []

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Response:
        self.sent.append(request)
        reply = self._handler(request)
        headers = dict(reply.headers or {})
        if stream and reply.status < 400:
            return Response(
                reply.status,
                headers,
                url=request.url,
                stream=_MemoryStream(reply.chunks or (reply.body,), self._limits),
            )
        body = reply.body or b"".join(reply.chunks)
        if reply.status >= 400:
            body = body[: self._limits.max_error_body_bytes]
        elif len(body) > self._limits.max_response_bytes:
            raise limit_error(
                "max_response_bytes", self._limits.max_response_bytes, "The response body"
            )
        return Response(reply.status, headers, body, url=request.url)

    async def aclose(self) -> None:
        return None


class _MemoryStream:
    __slots__ = ("_chunks", "_limits")

    def __init__(self, chunks: Sequence[bytes], limits: TransportLimits) -> None:
        self._chunks = chunks
        self._limits = limits

    async def events(self, framer: Framer) -> AsyncGenerator[Sequence[Any], None]:
        total = 0
        for data in self._chunks:
            total += len(data)
            if total > self._limits.max_response_bytes:
                raise limit_error(
                    "max_response_bytes",
                    self._limits.max_response_bytes,
                    "The streamed response",
                )
            events = framer.feed(data)
            if events:
                yield events

    def close(self) -> None:
        return None
