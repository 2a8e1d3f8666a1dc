"""Incremental framing of streamed bodies: server-sent events and newline-delimited JSON.

Pure and byte-oriented: ``feed`` takes whatever the socket delivered and returns complete
events; ``finish`` tells whether the body ended in the middle of one. Fuzzed with hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass

from lexigram.ai.llm.exceptions import ResponseLimitError
from lexigram.ai.llm.types import _fast_init

__all__ = ["DEFAULT_MAX_LINE", "NDJSONDecoder", "SSEDecoder", "SSEEvent", "limit_error"]

DEFAULT_MAX_LINE = 8 * 1024 * 1024  # ClientConfig.max_line_bytes


@_fast_init  # one per event: fields stored without object.__setattr__
@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event. ``data`` is the raw bytes (data lines joined by newlines)."""

    data: bytes
    event: str | None = None
    id: str | None = None


def limit_error(limit: str, value: int, what: str) -> ResponseLimitError:
    """The typed error for a breached transport limit, naming the field that raises it."""
    return ResponseLimitError(
        f"{what} exceeds {limit}={value:,} bytes; reading stopped. If the provider is "
        f"trusted, raise ClientConfig({limit}=...) (or LEX_AI_LLM__{limit.upper()})",
        code=limit,
        retryable=False,
        details={"limit": limit, "value": value},
    )


class SSEDecoder:
    """The WHATWG event-stream format: fields per line, events end at a blank line.

    Accepts ``\\n``, ``\\r\\n`` and ``\\r`` line ends, comments (``:``), multi-line ``data``, and
    lines split anywhere across ``feed`` calls. Linear in the bytes fed: an unfinished line is
    kept as a list of pieces and joined once, when its end arrives; only new bytes are
    searched. A line, or one event's data, longer than ``max_line`` bytes raises
    ``ResponseLimitError`` (``code="max_line_bytes"``).
    """

    __slots__ = ("_after_cr", "_data", "_data_size", "_event", "_id", "_max", "_partial", "_size")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._partial: list[bytes] = []  # pieces of the unfinished line
        self._size = 0  # their total length
        self._after_cr = False  # the last feed ended with \r: a leading \n is its other half
        self._data: list[bytes] = []
        self._data_size = 0
        self._event: str | None = None
        self._id: str | None = None
        self._max = max_line

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Complete events found in ``chunk`` (plus what earlier calls left pending)."""
        if (
            chunk[-2:] == b"\n\n"
            and not self._partial
            and not self._data
            and self._event is None
            and not self._after_cr
            and 13 not in chunk  # b"\r" (an int: ``bytes in bytes`` raises and clears a TypeError)
        ):
            # A read that holds whole events and nothing pending: the usual case of a
            # provider that flushes each event as it is made.
            whole = self._whole_events(chunk)
            if whole is not None:
                return whole
        if self._after_cr:
            self._after_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if 13 in chunk:  # b"\r"
            if chunk[-1:] == b"\r":
                self._after_cr = True  # a line end now; a \n that follows belongs to it
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if self._partial:
            if not lines:  # still no line end: keep the piece (joined once, at the end)
                if rest:
                    self._grow(rest)
                return []
            self._partial.append(lines[0])
            if self._size + len(lines[0]) > self._max:
                raise limit_error("max_line_bytes", self._max, "A line of the stream")
            lines[0] = b"".join(self._partial)
            self._partial = []
        self._size = 0
        if rest:
            self._grow(rest)
        if not lines:
            return []
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data or self._event is not None:
                    payload = data[0] if len(data) == 1 else b"\n".join(data)
                    events.append(SSEEvent(payload, self._event, self._id))
                    data = self._data = []
                    self._data_size = 0
                    self._event = None
                continue
            if line[0] == 58:  # b":" — a comment or keep-alive
                continue
            if line.startswith(b"data: "):  # the common line, without partition
                name, value = b"data", line[6:]
            else:
                name, sep, value = line.partition(b":")
                if sep and value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                self._data_size += len(value)
                if self._data_size > self._max:
                    raise limit_error("max_line_bytes", self._max, "One event's data")
                data.append(value)
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
            elif name == b"id":
                self._id = value.decode("utf-8", "replace")
            # ``retry`` and unknown fields are ignored, as the format requires.
        return events

    def _whole_events(self, chunk: bytes) -> list[SSEEvent] | None:
        """``chunk`` (whole events, ``\\n`` line ends, nothing pending) as events, when each
        is one ``data:`` line, optionally after one ``event:`` line; ``None`` (nothing
        consumed) for any other shape, which the line-by-line path then reads."""
        events: list[SSEEvent] = []
        last_id = self._id
        for block in chunk[:-2].split(b"\n\n"):
            if block[:6] == b"data: ":
                name = None
                data = block[6:]
            elif block[:7] == b"event: ":
                head, _, data = block.partition(b"\n")
                if data[:6] != b"data: ":
                    return None
                name = head[7:].decode("utf-8", "replace")
                data = data[6:]
            else:
                return None
            if 10 in data or len(data) > self._max:  # b"\n"
                return None
            events.append(SSEEvent(data, name, last_id))
        return events

    def _grow(self, piece: bytes) -> None:
        self._partial.append(piece)
        self._size += len(piece)
        if self._size > self._max:
            raise limit_error("max_line_bytes", self._max, "A line of the stream")

    @property
    def pending(self) -> bool:
        """``True`` when the body so far ends inside an event (a cut stream)."""
        return bool(self._size) or bool(self._data) or self._event is not None

    def finish(self) -> list[SSEEvent]:
        """At end of body: the last event when only its closing blank line is missing.

        A body cut in the middle of a line yields nothing more (``pending`` stays true), so
        half an event is never decoded as if it were whole.
        """
        if self._size:
            return []
        if self._data or self._event is not None:
            self._after_cr = False  # the \n below ends the event; it is not half of a \r\n
            return self.feed(b"\n")
        return []


class NDJSONDecoder:
    """Newline-delimited JSON: each complete, non-blank line is one event (raw bytes).

    Linear like ``SSEDecoder``; a line longer than ``max_line`` raises ``ResponseLimitError``.
    """

    __slots__ = ("_max", "_partial", "_size")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._partial: list[bytes] = []
        self._size = 0
        self._max = max_line

    def feed(self, chunk: bytes) -> list[bytes]:
        """Complete lines found in ``chunk``."""
        end = chunk.rfind(b"\n")
        if end < 0:
            if chunk:
                self._partial.append(chunk)
                self._size += len(chunk)
                if self._size > self._max:
                    raise limit_error("max_line_bytes", self._max, "A line of the stream")
            return []
        if self._partial:
            if self._size + end > self._max:
                raise limit_error("max_line_bytes", self._max, "A line of the stream")
            self._partial.append(chunk[:end])
            complete = b"".join(self._partial)
            self._partial = []
        else:
            complete = chunk[:end]
        rest = chunk[end + 1 :]
        self._size = len(rest)
        if rest:
            self._partial.append(rest)
            if self._size > self._max:
                raise limit_error("max_line_bytes", self._max, "A line of the stream")
        return [line for line in complete.split(b"\n") if line.strip()]

    @property
    def pending(self) -> bool:
        """``True`` when the body so far ends in the middle of a line."""
        return any(piece.strip() for piece in self._partial)

    def finish(self) -> list[bytes]:
        """The last line when the body ended without a newline (it may be cut; the codec
        decides by trying to parse it)."""
        rest = b"".join(self._partial)
        self._partial = []
        self._size = 0
        return [rest] if rest.strip() else []
