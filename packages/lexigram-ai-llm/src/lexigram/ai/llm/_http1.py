"""``HTTP1Transport``: the ``Transport`` over our own HTTP/1.1 connections on asyncio.

Why not ``aiohttp.ClientSession``: a provider call is one small POST and one answer, and the
session's general machinery (URL objects, cookie jars, proxies, tracing hooks, a task per
request body, a stream reader per response) cost more CPU per request than everything else
this library does (measured in ``bench``; see the notes of issue 13). This module does what an
API client needs and nothing else, under the policy ``_transport``'s docstring sets out
(redirects, limits, deadlines, stale connections; the aiohttp transport it replaced applied
the same one):

- one request in flight per connection (no pipelining), kept-alive connections reused LIFO
  per origin, at most ``max_connections`` open in all, idle ones dropped after
  ``KEEPALIVE_SECONDS``;
- the request written with one ``write`` (status line, headers, body); header values with a
  CR or LF are refused, so no caller value can inject a header;
- the response parsed here: status line, headers (``max_header_bytes`` per line, four times
  that for the whole head), ``Content-Length``, ``chunked`` or read-to-close bodies; 1xx
  interim answers skipped; anything else that is not HTTP/1.x is a ``ProviderError``
  ``malformed_response``;
- bodies counted while they arrive (the connection stops reading past the limit), streamed
  bodies handed over as they come, with reading paused while more than ``_HIGH_WATER`` bytes
  wait for the consumer.

TLS uses ``ssl.create_default_context()`` (the system's trust store; ``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` apply) with the host name checked. No proxy support (the aiohttp transport
had ``trust_env=False`` too).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

from lexigram.ai.llm._framing import limit_error
from lexigram.ai.llm._transport import (
    _ACCEPT_ENCODING,
    _REDIRECT_STATUSES,
    Framer,
    Request,
    Response,
    TransportLimits,
    _inflate_all,
    _Inflater,
    redirect_refusal,
)
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    LLMError,
    LLMTimeoutError,
    ProviderConnectionError,
    ProviderError,
    StreamError,
)

__all__ = ["KEEPALIVE_SECONDS", "HTTP1Transport"]

#: An idle kept-alive connection older than this is closed rather than reused.
KEEPALIVE_SECONDS = 15.0
_HIGH_WATER = 1024 * 1024  # bytes waiting for a stream's consumer before reading pauses
_LOW_WATER = 256 * 1024
_MAX_CHUNK_LINE = 4096  # a chunk-size line (with extensions)
_HEX = b"0123456789abcdefABCDEF"
_USER_AGENT = "lexigram-ai-llm"

# Connection states.
_IDLE, _HEAD, _LENGTH, _CHUNKED, _UNTIL_CLOSE, _DONE, _BROKEN = range(7)
# Chunked sub-states.
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)


class _Broken(Exception):
    """The connection failed; ``stale`` when it closed before any byte of the answer."""

    def __init__(self, why: str, *, stale: bool = False, error: LLMError | None = None) -> None:
        super().__init__(why)
        self.stale = stale
        self.error = error


class _Stalled(Exception):
    """Set on a connection's waiter by a timer: ``what`` is ``idle``, ``deadline`` or
    ``timeout``."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class _Target:
    """What a URL string means for the wire, parsed once per distinct URL."""

    __slots__ = ("basic", "host", "key", "line", "port", "scheme", "url")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {scheme or 'no scheme'}")
        host = parts.hostname
        if not host:
            raise ValueError("no host in the URL")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        default = 443 if scheme == "https" else 80
        if port is None:
            port = default
        self.scheme = scheme
        self.host = host
        self.port = port
        self.key = (scheme, host, port)
        self.url = url
        name = f"[{host}]" if ":" in host else host
        authority = name if port == default else f"{name}:{port}"
        path = quote(parts.path or "/", safe="/:@!$&'()*+,;=-._~%")
        if parts.query:
            path += "?" + quote(parts.query, safe="/:@!$&'()*+,;=-._~%?")
        self.line = (path, authority)
        # Userinfo in the URL (``https://user:secret@host``) is sent as Basic authentication,
        # as aiohttp did; never as part of the request line.
        self.basic: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.basic = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


class _Conn(asyncio.Protocol):
    """One HTTP/1.1 connection: at most one exchange at a time."""

    __slots__ = (
        "_body_cap",
        "_buf",
        "_chunk_left",
        "_chunk_state",
        "_collect_cap",
        "_error_cap",
        "_exc",
        "_expect_body",
        "_head_limit",
        "_line_limit",
        "_paused",
        "_pieces",
        "_queued",
        "_received",
        "_remaining",
        "_state",
        "_stream",
        "_trailer_bytes",
        "_waiter",
        "headers",
        "idle_since",
        "key",
        "loop",
        "reusable",
        "status",
        "transport",
        "truncated",
        "uses",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, key: Any, limits: TransportLimits) -> None:
        self.loop = loop
        self.key = key
        self.transport: asyncio.Transport | None = None
        self._line_limit = limits.max_header_bytes
        self._head_limit = 4 * limits.max_header_bytes
        self._body_cap = limits.max_response_bytes
        self._error_cap = limits.max_error_body_bytes
        self.truncated = False
        self._state = _IDLE
        self._buf = b""
        self._waiter: asyncio.Future[None] | None = None
        self._exc: BaseException | None = None
        self._pieces: deque[bytes] = deque()
        self._queued = 0
        self._received = 0
        self._paused = False
        self._stream = False
        self._collect_cap = 0
        self._expect_body = True
        self._remaining = 0
        self._chunk_state = _SIZE
        self._chunk_left = 0
        self._trailer_bytes = 0
        self.status = 0
        self.headers: CIMultiDictProxy[str] = _NO_HEADERS
        self.reusable = False
        self.uses = 0
        self.idle_since = 0.0

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == _IDLE or state >= _DONE:
            # Bytes nobody asked for (or after the answer): this connection is not reusable.
            self.reusable = False
            if state == _IDLE and self.transport is not None:
                self.transport.close()
            return
        self._received += len(data)
        if self._buf:
            data = self._buf + data
            self._buf = b""
        try:
            if state == _HEAD:
                data = self._parse_head(data)
                state = self._state
                if not data:
                    return
            if state == _LENGTH:
                self._length_body(data)
            elif state == _CHUNKED:
                self._chunked_body(data)
            elif state == _UNTIL_CLOSE:
                self._push(data)
        except _Broken as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.reusable = False
        state = self._state
        if state == _UNTIL_CLOSE:
            self._complete()
            return
        if state in (_HEAD, _LENGTH, _CHUNKED):
            stale = state == _HEAD and self._received == 0 and self.uses > 1
            why = type(exc).__name__ if exc is not None else "closed by the server"
            self._fail(_Broken(why, stale=stale))
        elif state == _IDLE:
            self._state = _BROKEN

    # -- the exchange ----------------------------------------------------------------------

    def start(self, data: bytes, *, expect_body: bool, stream: bool) -> asyncio.Future[None]:
        """Write one request; the future resolves when the head (``stream``) or the whole
        answer (else) is in, or fails with ``_Broken``/``_Stalled``."""
        transport = self.transport
        assert transport is not None
        self.uses += 1
        self._state = _HEAD
        self._received = 0
        self._stream = stream
        self._expect_body = expect_body
        self._exc = None
        self._pieces.clear()
        self._queued = 0
        self._collect_cap = 0
        self.truncated = False
        self.reusable = False
        waiter = self._waiter = self.loop.create_future()
        transport.write(data)
        return waiter

    def stall(self, what: str) -> None:
        """A timer fired: the exchange ends with ``_Stalled(what)``; the connection closes."""
        self._fail(_Stalled(what))

    def _fail(self, exc: BaseException) -> None:
        if self._exc is None:
            self._exc = exc
        self._state = _BROKEN
        self.reusable = False
        transport = self.transport
        if transport is not None:
            transport.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            if self._exc is not None:
                waiter.set_exception(self._exc)
            else:
                waiter.set_result(None)

    def _complete(self) -> None:
        self._state = _DONE
        self._wake()

    # -- parsing ---------------------------------------------------------------------------

    def _parse_head(self, data: bytes) -> bytes:
        """Consume heads (skipping 1xx) from ``data``; what follows the final head."""
        while True:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > self._line_limit:
                    last = data.rfind(b"\n")
                    if len(data) - last > self._line_limit or len(data) > self._head_limit:
                        raise _Broken("head", error=self._header_limit())
                self._buf = data
                return b""
            if end > self._head_limit:
                raise _Broken("head", error=self._header_limit())
            lines = data[:end].split(b"\r\n")
            data = data[end + 4 :]
            first = lines[0]
            if (
                not first.startswith(b"HTTP/1.")
                or len(first) < 12
                or first[12:13]
                not in (
                    b"",
                    b" ",
                )
            ):
                raise _Broken("not HTTP", error=_malformed("a status line that is not HTTP/1.x"))
            code = first[9:12]
            if not code.isdigit() or first[8:9] != b" ":
                raise _Broken("status", error=_malformed("a status line without a status"))
            status = int(code)
            pairs = []
            limit = self._line_limit
            for line in lines[1:]:
                if len(line) > limit:
                    raise _Broken("header", error=self._header_limit())
                name, colon, value = line.partition(b":")
                if not colon or not name or name[-1:] in b" \t" or line[:1] in b" \t":
                    raise _Broken("header", error=_malformed("a header line it cannot read"))
                pairs.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
            if 100 <= status < 200:
                if status == 101:
                    raise _Broken("upgrade", error=_malformed("an unrequested protocol switch"))
                continue  # an interim answer (100 Continue, 103 Early Hints): the next head
            self.status = status
            headers = self.headers = CIMultiDictProxy(CIMultiDict(pairs))
            if status >= 400:
                # An error answer is read whole (to an excerpt), streamed request or not.
                self._stream = False
                self._collect_cap = self._error_cap
            elif not self._stream:
                self._collect_cap = self._body_cap
            connection = headers.get("Connection")
            if first[7:8] == b"0":  # HTTP/1.0
                keep = connection is not None and "keep-alive" in connection.lower()
            else:
                keep = connection is None or "close" not in connection.lower()
            transfer = headers.get("Transfer-Encoding")
            length = headers.get("Content-Length")
            if not self._expect_body or status in (204, 304):
                self.reusable = keep
                self._complete()
                if data:
                    self.reusable = False
                return b""
            if transfer is not None:
                # Only ``chunked`` is asked for and understood; a transfer coding such as
                # ``gzip, chunked`` would hand compressed bytes over as the body.
                if transfer.strip().lower() != "chunked":
                    raise _Broken(
                        "coding",
                        error=_malformed(f"Transfer-Encoding {transfer!r}, not chunked"),
                    )
                self._state = _CHUNKED
                self._chunk_state = _SIZE
                self._trailer_bytes = 0
                self.reusable = keep and length is None
            elif length is not None:
                declared = length.strip()
                if "," in declared:  # the same length repeated is allowed; different ones not
                    values = {v.strip() for v in declared.split(",")}
                    declared = values.pop() if len(values) == 1 else ""
                if not (declared.isascii() and declared.isdigit()):
                    raise _Broken("length", error=_malformed("an invalid Content-Length"))
                self._remaining = int(declared)
                if self._collect_cap and status < 400 and self._remaining > self._collect_cap:
                    raise _Broken(
                        "length",
                        error=limit_error(
                            "max_response_bytes", self._collect_cap, "The response body"
                        ),
                    )
                self.reusable = keep
                if self._remaining == 0:
                    self._complete()
                    if data:
                        self.reusable = False
                    return b""
                self._state = _LENGTH
            else:
                self._state = _UNTIL_CLOSE
            if self._stream:
                self._wake()  # the head is in: send() returns, events() reads the body
            return data

    def _header_limit(self) -> LLMError:
        return limit_error("max_header_bytes", self._line_limit, "A response header")

    def _length_body(self, data: bytes) -> None:
        remaining = self._remaining
        if len(data) >= remaining:
            if len(data) > remaining:
                self.reusable = False  # bytes past the answer: the framing is not trusted
                data = data[:remaining]
            self._remaining = 0
            self._push(data)
            if self._state == _LENGTH:
                self._complete()
            return
        self._remaining = remaining - len(data)
        self._push(data)

    def _chunked_body(self, data: bytes) -> None:
        pos = 0
        size = len(data)
        if self._chunk_state == _SIZE:
            # The common read of a stream: whole chunks ("size CRLF data CRLF"), one event
            # each; taken here without the state machine, which handles everything else.
            while True:
                end = data.find(b"\r\n", pos, pos + 18)
                if end <= pos:
                    break
                digits = data[pos:end]
                if digits.lstrip(_HEX):
                    break  # extensions, blanks or garbage: the careful path decides
                chunk = int(digits, 16)
                start = end + 2
                stop = start + chunk
                if chunk == 0 or data[stop : stop + 2] != b"\r\n":
                    break
                self._push(data[start:stop])
                if self._state != _CHUNKED:
                    return
                pos = stop + 2
                if pos == size:
                    return
        while pos < size:
            state = self._chunk_state
            if state == _DATA:
                left = self._chunk_left
                if size - pos <= left:
                    piece = data[pos:] if pos else data
                    self._chunk_left = left - len(piece)
                    pos = size
                    if self._chunk_left == 0:
                        self._chunk_state = _DATA_END
                else:
                    piece = data[pos : pos + left]
                    pos += left
                    self._chunk_left = 0
                    self._chunk_state = _DATA_END
                self._push(piece)
                if self._state != _CHUNKED:
                    return  # the body limit was hit
            elif state == _SIZE:
                end = data.find(b"\r\n", pos)
                if end < 0:
                    if size - pos > _MAX_CHUNK_LINE:
                        raise _Broken("chunk", error=_malformed("an overlong chunk-size line"))
                    self._buf = data[pos:]
                    return
                line = data[pos:end]
                semi = line.find(b";")
                digits = (line if semi < 0 else line[:semi]).strip(b" \t")
                if not digits or digits.lstrip(_HEX) or len(digits) > 16:
                    raise _Broken("chunk", error=_malformed("a chunk size it cannot read"))
                pos = end + 2
                chunk = int(digits, 16)
                if chunk:
                    self._chunk_left = chunk
                    self._chunk_state = _DATA
                else:
                    self._chunk_state = _TRAILER
            elif state == _DATA_END:
                if size - pos < 2:
                    self._buf = data[pos:]
                    return
                if data[pos : pos + 2] != b"\r\n":
                    raise _Broken("chunk", error=_malformed("a chunk without its line end"))
                pos += 2
                self._chunk_state = _SIZE
            else:  # trailer lines, then an empty line
                end = data.find(b"\r\n", pos)
                if end < 0:
                    self._trailer_bytes += size - pos
                    if self._trailer_bytes > self._line_limit:
                        raise _Broken("trailer", error=self._header_limit())
                    self._buf = data[pos:]
                    return
                if end == pos:
                    if end + 2 < size:
                        self.reusable = False
                    self._complete()
                    return
                self._trailer_bytes += end + 2 - pos
                if self._trailer_bytes > self._line_limit:
                    raise _Broken("trailer", error=self._header_limit())
                pos = end + 2

    def _push(self, piece: bytes) -> None:
        if not piece:
            return
        self._pieces.append(piece)
        self._queued += len(piece)
        if self._stream:
            if self._queued > _HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            self._wake()
        elif self._collect_cap and self._queued > self._collect_cap:
            # An error body past its excerpt, or a body past the limit: stop reading here.
            self.truncated = True
            self.reusable = False
            self._state = _DONE
            if self.transport is not None:
                self.transport.close()
            self._wake()

    # -- reading a body --------------------------------------------------------------------

    def take(self) -> bytes:
        """Everything received and not yet taken (b"" if nothing waits)."""
        pieces = self._pieces
        if not pieces:
            return b""
        data = pieces.popleft() if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        self._queued = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def finished(self) -> bool:
        return self._state == _DONE

    def wait(self) -> asyncio.Future[None]:
        """A future that resolves when more of the body (or its end) is in."""
        waiter = self._waiter = self.loop.create_future()
        if self._exc is not None:
            self._waiter = None
            waiter.set_exception(self._exc)
        elif self._pieces or self._state == _DONE:
            self._waiter = None
            waiter.set_result(None)
        return waiter

    def close(self) -> None:
        self.reusable = False
        if self._state != _DONE:
            self._state = _BROKEN
        transport = self.transport
        if transport is not None:
            transport.close()


_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def _malformed(what: str) -> ProviderError:
    return ProviderError(
        f"The provider sent a malformed HTTP response ({what})",
        code="malformed_response",
        retryable=True,
    )


class _Pool:
    """Kept-alive connections of one event loop, by origin; a bound on how many are open."""

    __slots__ = ("closed", "idle", "limit", "loop", "open", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.loop = loop
        self.limit = limit
        self.idle: dict[Any, list[_Conn]] = {}
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    def reuse(self, key: Any) -> _Conn | None:
        idle = self.idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if (
                transport is not None
                and not transport.is_closing()
                and now - conn.idle_since < KEEPALIVE_SECONDS
            ):
                return conn
            self._discard(conn)
        return None

    async def slot(self, key: Any) -> _Conn | None:
        """Wait until one more connection may be opened and count it (``None``), or until a
        kept-alive connection to ``key`` comes back (that connection)."""
        while self.open >= self.limit:
            if self._close_an_idle_one():
                break
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken and cancelled at once: pass the wake-up on
                raise
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
            conn = self.reuse(key)
            if conn is not None:
                return conn
        self.open += 1
        return None

    def release(self, conn: _Conn) -> None:
        if conn.reusable and not self.closed and conn.transport is not None:
            conn._state = _IDLE
            conn.idle_since = time.monotonic()
            self.idle.setdefault(conn.key, []).append(conn)
            self._wake_one()
            return
        conn.close()
        self.forget()

    def forget(self) -> None:
        """A connection that was counted is gone (never opened, or dropped)."""
        self.open -= 1
        self._wake_one()

    def _discard(self, conn: _Conn) -> None:
        conn.close()
        self.open -= 1

    def _close_an_idle_one(self) -> bool:
        for conns in self.idle.values():
            if conns:
                self._discard(conns.pop(0))
                return True
        return False

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self.closed = True
        for conns in self.idle.values():
            for conn in conns:
                conn.close()
                self.open -= 1
        self.idle.clear()


class HTTP1Transport:
    """``Transport`` over this module's HTTP/1.1 connections (see the module docstring).

    ``timeout`` bounds connecting and a whole non-streamed exchange; streams get
    ``min(timeout, idle_timeout)`` for their head and for every gap between events.
    """

    __slots__ = (
        "_connection_error",
        "_gap",
        "_hint",
        "_limits",
        "_max_connections",
        "_name",
        "_pool",
        "_ssl",
        "_targets",
        "_timeout",
    )

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
        self._limits = limits or TransportLimits()
        self._max_connections = max_connections
        self._name = name
        self._hint = unreachable_hint
        self._connection_error = connection_error
        self._pool: _Pool | None = None
        self._ssl: ssl.SSLContext | None = None
        self._targets: dict[str, _Target] = {}

    @property
    def limits(self) -> TransportLimits:
        return self._limits

    def open_connections(self) -> int:
        """Connections open now (kept-alive idle ones included), on the running loop's pool."""
        pool = self._pool
        return 0 if pool is None else pool.open

    def busy_connections(self) -> int:
        """Connections checked out by an exchange now."""
        pool = self._pool
        if pool is None:
            return 0
        return pool.open - sum(len(c) for c in pool.idle.values())

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
        loop = asyncio.get_running_loop()
        pool = self._pool
        if pool is None or pool.loop is not loop or pool.closed:
            # First use, or a client reused from a new event loop: the old loop's
            # connections cannot be used (nor closed) from here.
            pool = self._pool = _Pool(loop, self._max_connections)
        now = loop.time()
        wait = self._timeout if timeout is None else timeout
        if deadline is not None:
            remaining = deadline - now
            if remaining <= 0:
                raise LLMTimeoutError("The call's deadline passed before it was sent")
            if remaining < wait:
                wait = remaining
        # Non-streamed: ``wait`` bounds everything. Streamed: connect within ``wait``, then
        # the head within the gap (bounded by the deadline).
        ends = now + wait
        method = request.method
        url = request.url
        headers = request.headers
        body = request.body
        hops = 0
        retried_stale = False
        while True:
            target = self._target(url)
            data = _serialize(method, target, headers, body)
            conn = pool.reuse(target.key)
            if conn is None:
                try:
                    conn = await self._connect(pool, target, loop, ends)
                except _Stalled:
                    raise self._timed_out(stream, timeout, deadline, loop) from None
            if stream:
                gap = self._gap if timeout is None else min(timeout, self._gap)
                head_ends = loop.time() + gap
                if deadline is not None and deadline < head_ends:
                    head_ends = deadline
            else:
                head_ends = ends
            waiter = conn.start(data, expect_body=method != "HEAD", stream=stream)
            timer = loop.call_at(head_ends, conn.stall, "timeout")
            try:
                await waiter
            except _Broken as exc:
                timer.cancel()
                pool.release(conn)
                if exc.error is not None:
                    raise exc.error from None
                if exc.stale and not retried_stale:
                    retried_stale = True  # the server had dropped a kept-alive connection
                    continue
                if conn.status:
                    raise _body_cut(exc) from None
                raise self._unreachable(ConnectionResetError(str(exc))) from None
            except _Stalled:
                timer.cancel()
                pool.release(conn)
                raise self._timed_out(stream, timeout, deadline, loop) from None
            except BaseException:
                timer.cancel()
                conn.close()
                pool.release(conn)
                raise
            timer.cancel()
            status = conn.status
            if status in _REDIRECT_STATUSES and "Location" in conn.headers:
                location = conn.headers["Location"]
                conn.close()
                pool.release(conn)
                url = redirect_refusal(status, location, method, url, hops)
                hops += 1
                continue
            break
        response_headers = conn.headers
        if stream and status < 400:
            return Response(
                status,
                response_headers,
                url=url,
                stream=_Stream(conn, pool, self._limits, gap, deadline),
            )
        # The whole answer is in (or as much of it as its limit allows).
        truncated = conn.truncated
        data = conn.take()
        pool.release(conn)
        limits = self._limits
        if status >= 400:
            cap = limits.max_error_body_bytes
        else:
            cap = limits.max_response_bytes
            if truncated:
                raise limit_error("max_response_bytes", cap, "The response body")
        encoding = _encoding(response_headers)
        if encoding is not None:
            data = await _inflated(encoding, data, cap, status >= 400)
        elif status >= 400 and len(data) > cap:
            data = data[:cap]
        return Response(status, response_headers, data, url=url)

    async def _connect(
        self, pool: _Pool, target: _Target, loop: asyncio.AbstractEventLoop, ends: float
    ) -> _Conn:
        try:
            async with asyncio.timeout_at(ends):
                reused = await pool.slot(target.key)
        except TimeoutError:
            raise _Stalled("timeout") from None
        if reused is not None:
            return reused
        tls = self._tls() if target.scheme == "https" else None
        conn = _Conn(loop, target.key, self._limits)
        try:
            async with asyncio.timeout_at(ends):
                await loop.create_connection(
                    lambda: conn,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls is not None else None,
                )
        except TimeoutError:
            pool.forget()
            raise _Stalled("timeout") from None
        except OSError as exc:  # refused, unresolvable, TLS failures (ssl.SSLError)
            pool.forget()
            raise self._unreachable(exc) from exc
        except BaseException:
            pool.forget()
            raise
        return conn

    def _tls(self) -> ssl.SSLContext:
        context = self._ssl
        if context is None:
            context = self._ssl = ssl.create_default_context()
        return context

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            try:
                target = _Target(url)
            except ValueError as exc:
                raise ProviderConnectionError(
                    f"Cannot send to this URL ({exc}); check api_base"
                ) from None
            if len(self._targets) > 256:
                self._targets.clear()
            self._targets[url] = target
        return target

    def _unreachable(self, exc: BaseException) -> LLMError:
        if self._connection_error is not None:
            return self._connection_error(exc)
        return ProviderConnectionError(
            f"Could not reach {self._name} ({type(exc).__name__}); {self._hint}"
        )

    def _timed_out(
        self,
        stream: bool,
        timeout: float | None,
        deadline: float | None,
        loop: asyncio.AbstractEventLoop,
    ) -> LLMTimeoutError:
        if deadline is not None and loop.time() >= deadline:
            return LLMTimeoutError("The call's deadline passed while waiting for the provider")
        wait = self._timeout if timeout is None else timeout
        if stream:
            return LLMTimeoutError(
                f"The provider did not start answering within {min(wait, self._gap):g}s"
            )
        return LLMTimeoutError(f"No answer within {wait:g}s")

    async def aclose(self) -> None:
        """Close the kept-alive connections (those of the running loop's pool)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    close = aclose


def _serialize(method: str, target: _Target, headers: Any, body: bytes | None) -> bytes:
    """The request's bytes: status line, headers, body. ``Host`` and ``Content-Length`` are
    the transport's; ``User-Agent``, ``Accept`` and ``Accept-Encoding`` are added if absent."""
    path, authority = target.line
    lines = [f"{method} {path} HTTP/1.1\r\nHost: {authority}\r\n"]
    count = 2
    agent = accept = encoding = authorized = False
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _OURS:
            continue
        lines.append(f"{name}: {value}\r\n")
        count += 1
        if lowered == "authorization":
            authorized = True
        elif lowered == "user-agent":
            agent = True
        elif lowered == "accept":
            accept = True
        elif lowered == "accept-encoding":
            encoding = True
    if target.basic is not None and not authorized:
        lines.append(f"Authorization: {target.basic}\r\n")
        count += 1
    if not agent:
        lines.append(f"User-Agent: {_USER_AGENT}\r\n")
        count += 1
    if not accept:
        lines.append("Accept: */*\r\n")
        count += 1
    if not encoding:
        lines.append(f"Accept-Encoding: {_ACCEPT_ENCODING}\r\n")
        count += 1
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body) if body else 0}\r\n")
        count += 1
    head = "".join(lines)
    if head.count("\n") != count or head.count("\r") != count:
        raise ConfigurationError(
            "A request header name or value holds a line break (CR or LF); check the "
            "headers in ClientConfig(extra=...) and the call's extra_headers"
        )
    encoded = head.encode("utf-8") + b"\r\n"
    return encoded + body if body else encoded


_OURS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def _encoding(headers: Any) -> str | None:
    encoding = headers.get("Content-Encoding")
    if encoding is None:
        return None
    encoding = encoding.strip().lower()
    return None if encoding in ("", "identity") else encoding


async def _inflated(encoding: str, data: bytes, cap: int, excerpt: bool) -> bytes:
    """``data`` decoded, at most ``cap`` bytes (an error body: an excerpt, never an error)."""
    pieces: list[bytes] = []
    try:
        total = await _inflate_all(_Inflater(encoding), data, cap, pieces)
    except LLMError:
        if excerpt:
            return b""
        raise
    out = b"".join(pieces)
    if total > cap:
        if excerpt:
            return out[:cap]
        raise limit_error("max_response_bytes", cap, "The response body")
    return out


def _body_cut(exc: BaseException) -> StreamError:
    return StreamError(
        f"The connection broke while reading the answer ({exc})",
        retryable=True,
        code="body_cut",
    )


class _Stream:
    """A streamed body: bounded bytes and lines, and an idle watchdog on *events*."""

    __slots__ = (
        "_conn",
        "_deadline",
        "_finished",
        "_gap",
        "_last_event",
        "_limits",
        "_pool",
        "_released",
        "_watchdog",
    )

    def __init__(
        self,
        conn: _Conn,
        pool: _Pool,
        limits: TransportLimits,
        gap: float,
        deadline: float | None,
    ) -> None:
        self._conn = conn
        self._pool = pool
        self._limits = limits
        self._gap = gap
        self._deadline = deadline
        self._last_event = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._finished = False
        self._released = False

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        when = self._last_event + self._gap
        if self._deadline is not None and self._deadline < when:
            when = self._deadline
        self._watchdog = loop.call_at(when, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        # One timer per gap, not one per read: events only stamp ``_last_event``.
        now = loop.time()
        if self._deadline is not None and now >= self._deadline:
            self._conn.stall("deadline")
        elif now - self._last_event >= self._gap:
            self._conn.stall("idle")
        else:
            self._arm(loop)

    async def events(self, framer: Framer) -> AsyncGenerator[Sequence[Any], None]:
        conn = self._conn
        loop = conn.loop
        cap = self._limits.max_response_bytes
        encoding = _encoding(conn.headers)
        inflater = _Inflater(encoding) if encoding is not None else None
        self._last_event = loop.time()
        self._arm(loop)
        total = 0
        feed = framer.feed
        take = conn.take
        waiting = conn._pieces
        try:
            while True:
                if not waiting:
                    if conn.finished():
                        break
                    await conn.wait()
                    if not waiting:
                        continue
                data = take()
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
        except _Stalled as stalled:
            if stalled.what == "deadline":
                raise LLMTimeoutError(
                    "The call's deadline passed in the middle of the stream"
                ) from None
            raise StreamError(
                f"No event from the provider for {self._gap:g}s (keep-alive comments do not "
                f"count); the stream was abandoned",
                retryable=True,
                code="stream_idle_timeout",
            ) from None
        except _Broken as exc:
            if exc.error is not None:
                raise exc.error from None
            raise StreamError(
                f"The connection broke mid-stream ({exc})",
                retryable=True,
            ) from None
        finally:
            watchdog, self._watchdog = self._watchdog, None
            if watchdog is not None:
                watchdog.cancel()

    def close(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
        if self._released:
            return
        self._released = True
        conn = self._conn
        if not conn.finished():  # all of the body arrived (read or not): reusable
            conn.close()
        self._pool.release(conn)
