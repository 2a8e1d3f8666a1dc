"""The only door to the network: one ``Transport`` interface, its ``aiohttp`` implementation
and an in-memory one for tests.

Imported on the first request, not with the package, so ``import lexigram.ai.llm`` stays fast.
Every caller (the HTTP clients, the model manager, the CLI) gets the same policy:

- **Redirects** are never followed to another origin (scheme, host or port) nor from https to
  http: the request carries credentials (``x-api-key`` and friends survive a redirect in
  aiohttp) and, for 307/308, the prompt. Same-origin redirects are followed, at most
  ``MAX_REDIRECTS`` hops, for GET and HEAD only (no body to replay, safe to repeat); a chat
  request (POST) that is redirected means a wrong base URL, said in a ``RedirectRefusedError``
  naming both URLs (without userinfo or query).
- **Limits** (``TransportLimits``, from ``ClientConfig``): response size counted in
  decompressed bytes while reading (the transport inflates gzip/deflate itself, a bounded
  slice at a time, so a bomb stops at the limit with the loop responsive), line length in
  streams, error bodies read only up to a small cap, header size.
- **Deadlines**: ``timeout`` bounds the connection and the whole non-streamed exchange; a
  stream may last, but every gap between *events* is at most ``min(timeout,
  stream_idle_timeout)`` (SSE comments and keep-alive lines are bytes, not events, so they do
  not count as progress), and an absolute ``deadline`` ends everything.
- **Stale pooled connections**: a request that fails with a disconnect before any response
  arrived (the server had dropped the kept-alive connection) is sent once more at once; it is
  not a provider failure.
- **Errors** from aiohttp are mapped here, once, to typed ``LLMError``s.

A client reused from a new event loop (a second ``asyncio.run``) gets a fresh session; the one
bound to the dead loop is dropped.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp.http_exceptions import LineTooLong
from yarl import URL

from lexigram.ai.llm._framing import limit_error
from lexigram.ai.llm.exceptions import (
    LLMError,
    LLMTimeoutError,
    ProviderConnectionError,
    ProviderError,
    RedirectRefusedError,
    StreamError,
)

if TYPE_CHECKING:
    from lexigram.ai.llm.config import ClientConfig

__all__ = [
    "MAX_REDIRECTS",
    "AiohttpTransport",
    "Framer",
    "InMemoryTransport",
    "Reply",
    "Request",
    "Response",
    "Transport",
    "TransportLimits",
    "aiohttp",
    "public_url",
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


# -- aiohttp ---------------------------------------------------------------------------------


class _Stalled(Exception):
    """Set on a stream's reader by the idle watchdog."""


class AiohttpTransport:
    """``Transport`` over one pooled ``aiohttp`` session, created lazily on the running loop.

    ``name`` and ``unreachable_hint`` word the error for an unreachable server;
    ``connection_error`` (``exc -> LLMError``) replaces that wording entirely.
    """

    __slots__ = (
        "_complete_timeout",
        "_connection_error",
        "_gap",
        "_hint",
        "_limits",
        "_loop",
        "_max_connections",
        "_name",
        "_session",
        "_stream_timeout",
        "_timeout",
    )

    #: What a failed connection raises (kept for callers written before the transport).
    ClientError = aiohttp.ClientError

    def __init__(
        self,
        *,
        timeout: float,
        idle_timeout: float | None = None,
        max_connections: int = 100,
        limits: TransportLimits | None = None,
        name: str = "the server",
        unreachable_hint: str = "check api_base and the network",
        connection_error: Callable[[BaseException], LLMError] | None = None,
    ) -> None:
        self._timeout = timeout
        self._gap = timeout if idle_timeout is None else min(timeout, idle_timeout)
        # Precomputed: no allocation per call unless the call brings its own timeout.
        self._complete_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout)
        # No ``sock_read`` for streams: aiohttp would re-arm that timer on every read. The
        # wait for the headers is bounded by ``asyncio.timeout`` in ``send``, every gap
        # after them by the stream's watchdog (one timer per gap, not one per chunk).
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout
        )
        self._limits = limits or TransportLimits()
        self._max_connections = max_connections
        self._name = name
        self._hint = unreachable_hint
        self._connection_error = connection_error
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def limits(self) -> TransportLimits:
        return self._limits

    def session(self) -> aiohttp.ClientSession:
        """The session bound to the running loop, created on first use."""
        session = self._session
        loop = asyncio.get_running_loop()
        if session is not None and self._loop is loop and not session.closed:
            return session
        if session is not None and not session.closed:
            # Bound to a loop that is gone: its connections cannot be closed from here.
            session.detach()
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, ttl_dns_cache=300, enable_cleanup_closed=False
        )
        max_header = self._limits.max_header_bytes
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # we inflate, counting bytes (see _Inflater)
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # an API client keeps no cookies
            max_line_size=max_header,
            max_field_size=max_header,
        )
        self._loop = loop
        return self._session

    # -- sending -------------------------------------------------------------------------

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Response:
        """Send ``request``; the response with its bounded body (or a stream to read)."""
        if timeout is None and deadline is None:
            client_timeout = self._stream_timeout if stream else self._complete_timeout
        else:
            client_timeout = self._timeout_for(stream, timeout, deadline)
        method, url = request.method, request.url
        headers = request.headers
        if "Accept-Encoding" not in headers:
            headers = {**headers, "Accept-Encoding": _ACCEPT_ENCODING}
        body = request.body
        session = self.session()
        hops = 0
        retried_stale = False
        while True:
            try:
                if stream:
                    async with asyncio.timeout(self._first_byte(timeout, deadline)):
                        response = await session.request(
                            method,
                            url,
                            data=body,
                            headers=headers,
                            timeout=client_timeout,
                            allow_redirects=False,
                        )
                else:
                    response = await session.request(
                        method,
                        url,
                        data=body,
                        headers=headers,
                        timeout=client_timeout,
                        allow_redirects=False,
                    )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A refused or failed *connect* is not a stale connection: no retry.
                if retried_stale or isinstance(exc, aiohttp.ClientConnectorError):
                    raise self._unreachable(exc) from exc
                retried_stale = True
                continue
            except TimeoutError as exc:
                raise self._timed_out(stream, timeout, deadline) from exc
            except aiohttp.ClientResponseError as exc:
                raise _bad_response(exc, self._limits) from exc
            except aiohttp.ClientError as exc:
                raise self._unreachable(exc) from exc
            status = response.status
            if status in _REDIRECT_STATUSES and "Location" in response.headers:
                url = self._redirect_target(response, method, url, hops)
                hops += 1
                continue
            break
        if stream and status < 400:
            wait = self._gap if timeout is None else min(timeout, self._gap)
            return Response(
                status,
                response.headers,
                url=url,
                stream=_AiohttpStream(response, self._limits, wait, deadline),
            )
        try:
            if stream:  # an error body is bounded by the gap, as the events would be
                async with asyncio.timeout(self._first_byte(timeout, deadline)):
                    data = await _read_capped(response, self._limits.max_error_body_bytes)
            elif status >= 400:
                data = await _read_capped(response, self._limits.max_error_body_bytes)
            elif (
                "Content-Encoding" not in response.headers
                and (length := response.content_length) is not None
                and length <= self._limits.max_response_bytes
            ):
                data = await response.read()  # the common case, one coroutine less
            else:
                data = await _read_body(response, self._limits.max_response_bytes)
        except TimeoutError as exc:
            response.close()
            raise self._timed_out(stream, timeout, deadline) from exc
        except aiohttp.ClientError as exc:
            response.close()
            raise StreamError(
                f"The connection broke while reading the answer ({type(exc).__name__})",
                retryable=True,
                code="body_cut",
            ) from exc
        except BaseException:
            response.close()
            raise
        return Response(status, response.headers, data, url=url)

    def _timeout_for(
        self, stream: bool, timeout: float | None, deadline: float | None
    ) -> aiohttp.ClientTimeout:
        if timeout is None and deadline is None:
            return self._stream_timeout if stream else self._complete_timeout
        wait = self._timeout if timeout is None else timeout
        if deadline is not None:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise LLMTimeoutError("The call's deadline passed before it was sent")
            wait = min(wait, remaining)
        if stream:
            return aiohttp.ClientTimeout(total=None, connect=wait, sock_connect=wait)
        return aiohttp.ClientTimeout(total=wait, sock_connect=wait)

    def _first_byte(self, timeout: float | None, deadline: float | None) -> float:
        """How long a stream may take to send its headers (or its error body)."""
        wait = self._gap if timeout is None else min(timeout, self._gap)
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - asyncio.get_running_loop().time()))
        return wait

    def _redirect_target(
        self, response: aiohttp.ClientResponse, method: str, url: str, hops: int
    ) -> str:
        location = response.headers["Location"]
        status = response.status
        response.close()  # never read a redirect's body
        return redirect_refusal(status, location, method, url, hops)

    def _unreachable(self, exc: BaseException) -> LLMError:
        if self._connection_error is not None:
            return self._connection_error(exc)
        return ProviderConnectionError(
            f"Could not reach {self._name} ({type(exc).__name__}); {self._hint}"
        )

    def _timed_out(
        self, stream: bool, timeout: float | None, deadline: float | None
    ) -> LLMTimeoutError:
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            return LLMTimeoutError("The call's deadline passed while waiting for the provider")
        wait = self._timeout if timeout is None else timeout
        if stream:
            return LLMTimeoutError(
                f"The provider did not start answering within {min(wait, self._gap):g}s"
            )
        return LLMTimeoutError(f"No answer within {wait:g}s")

    async def aclose(self) -> None:
        """Close the session if it belongs to the running loop."""
        session, self._session = self._session, None
        if session is None or session.closed:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose() is always awaited
            running = None
        if running is self._loop:
            await session.close()
        else:
            session.detach()

    close = aclose


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


def _bad_response(exc: aiohttp.ClientResponseError, limits: TransportLimits) -> LLMError:
    """A response aiohttp could not parse: an oversized header, or not HTTP at all."""
    cause: BaseException | None = exc
    for _ in range(3):  # ClientResponseError <- HttpProcessingError <- LineTooLong
        cause = cause.__cause__ if cause is not None else None
        if isinstance(cause, LineTooLong):
            return limit_error("max_header_bytes", limits.max_header_bytes, "A response header")
    return ProviderError(
        f"The provider sent a malformed HTTP response ({type(exc.__cause__ or exc).__name__})",
        code="malformed_response",
        retryable=True,
    )


def _encoding(response: aiohttp.ClientResponse) -> str | None:
    encoding = response.headers.get("Content-Encoding")
    if encoding is None:
        return None
    encoding = encoding.strip().lower()
    return None if encoding in ("", "identity") else encoding


async def _read_body(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The whole body, at most ``cap`` decompressed bytes, else ``ResponseLimitError``."""
    encoding = _encoding(response)
    length = response.content_length
    if encoding is None and length is not None:
        if length > cap:
            response.close()
            raise limit_error("max_response_bytes", cap, "The response body")
        return await response.read()  # the fast path: aiohttp stops at Content-Length
    inflater = _Inflater(encoding) if encoding is not None else None
    content = response.content
    pieces: list[bytes] = []
    total = 0
    while True:
        data = await content.readany()
        if not data:
            break
        if inflater is not None:
            total += await _inflate_all(inflater, data, cap - total, pieces)
        else:
            total += len(data)
            pieces.append(data)
        if total > cap:
            response.close()
            raise limit_error("max_response_bytes", cap, "The response body")
    response.release()
    return b"".join(pieces)


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """At most ``cap`` bytes of an error body (an excerpt is all anyone needs)."""
    length = response.content_length
    encoding = _encoding(response)
    if encoding is None and length is not None and length <= cap:
        return await response.read()
    inflater = _Inflater(encoding) if encoding is not None else None
    content = response.content
    pieces: list[bytes] = []
    total = 0
    while total <= cap:
        data = await content.readany()
        if not data:
            response.release()
            return b"".join(pieces)[:cap]
        if inflater is not None:
            try:
                total += await _inflate_all(inflater, data, cap - total, pieces)
            except LLMError:
                break
        else:
            total += len(data)
            pieces.append(data)
    response.close()  # the rest is not worth a connection's worth of reading
    return b"".join(pieces)[:cap]


class _AiohttpStream:
    """A streamed body: bounded bytes and lines, and an idle watchdog on *events*."""

    __slots__ = (
        "_deadline",
        "_finished",
        "_gap",
        "_last_event",
        "_limits",
        "_response",
        "_stalled",
        "_watchdog",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        limits: TransportLimits,
        gap: float,
        deadline: float | None,
    ) -> None:
        self._response = response
        self._limits = limits
        self._gap = gap
        self._deadline = deadline
        self._last_event = 0.0
        self._stalled: str | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._finished = False

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        when = self._last_event + self._gap
        if self._deadline is not None and self._deadline < when:
            when = self._deadline
        self._watchdog = loop.call_at(when, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        # One timer per gap, not one per read: events only stamp ``_last_event``.
        now = loop.time()
        if self._deadline is not None and now >= self._deadline:
            self._stalled = "deadline"
        elif now - self._last_event >= self._gap:
            self._stalled = "idle"
        else:
            self._arm(loop)
            return
        self._response.content.set_exception(_Stalled())

    async def events(self, framer: Framer) -> AsyncGenerator[Sequence[Any], None]:
        loop = asyncio.get_running_loop()
        response = self._response
        cap = self._limits.max_response_bytes
        encoding = _encoding(response)
        inflater = _Inflater(encoding) if encoding is not None else None
        self._last_event = loop.time()
        self._arm(loop)
        total = 0
        feed = framer.feed
        try:
            async for data in response.content.iter_any():
                if inflater is not None:
                    pieces: list[bytes] = []
                    total += await _inflate_all(inflater, data, cap - total, pieces)
                    data = b"".join(pieces)
                else:
                    total += len(data)
                if total > cap:
                    raise limit_error("max_response_bytes", cap, "The streamed response")
                events = feed(data)
                if events:
                    self._last_event = loop.time()
                    yield events
            self._finished = True
        except _Stalled:
            if self._stalled == "deadline":
                raise LLMTimeoutError(
                    "The call's deadline passed in the middle of the stream"
                ) from None
            raise StreamError(
                f"No event from the provider for {self._gap:g}s (keep-alive comments do not "
                f"count); the stream was abandoned",
                retryable=True,
                code="stream_idle_timeout",
            ) from None
        except TimeoutError as exc:
            raise StreamError(
                f"No data from the provider for {self._gap:g}s; the stream was abandoned",
                retryable=True,
                code="stream_idle_timeout",
            ) from exc
        except aiohttp.ClientError as exc:
            raise StreamError(
                f"The connection broke mid-stream ({type(exc).__name__})",
                retryable=True,
            ) from exc
        finally:
            watchdog, self._watchdog = self._watchdog, None
            if watchdog is not None:
                watchdog.cancel()

    def close(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
        if self._finished:
            self._response.release()
        else:
            self._response.close()


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
