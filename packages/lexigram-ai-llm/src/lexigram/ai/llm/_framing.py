"""Incremental framing of streamed bodies: server-sent events and newline-delimited JSON.

Pure and byte-oriented: ``feed`` takes whatever the socket delivered and returns complete
events; ``finish`` tells whether the body ended in the middle of one. Fuzzed with hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NDJSONDecoder", "SSEDecoder", "SSEEvent"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event. ``data`` is the raw bytes (data lines joined by newlines)."""

    data: bytes
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """The WHATWG event-stream format: fields per line, events end at a blank line.

    Accepts ``\\n``, ``\\r\\n`` and ``\\r`` line ends, comments (``:``), multi-line ``data``, and
    lines split anywhere across ``feed`` calls.
    """

    __slots__ = ("_buffer", "_data", "_event", "_id")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Complete events found in ``chunk`` (plus what earlier calls left pending)."""
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # A lone trailing \r may be the first half of \r\n: keep it for the next call.
            tail = b"\r" if buffer.endswith(b"\r") else b""
            if tail:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data or self._event is not None:
                    events.append(SSEEvent(b"\n".join(self._data), self._event, self._id))
                    self._data = []
                    self._event = None
                continue
            if line[0] == 58:  # b":" — a comment or keep-alive
                continue
            name, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
            elif name == b"id":
                self._id = value.decode("utf-8", "replace")
            # ``retry`` and unknown fields are ignored, as the format requires.
        return events

    @property
    def pending(self) -> bool:
        """``True`` when the body so far ends inside an event (a cut stream)."""
        return bool(self._buffer.strip(b"\r")) or bool(self._data) or self._event is not None

    def finish(self) -> list[SSEEvent]:
        """At end of body: the last event when only its closing blank line is missing.

        A body cut in the middle of a line yields nothing more (``pending`` stays true), so
        half an event is never decoded as if it were whole.
        """
        events: list[SSEEvent] = []
        if self._buffer.endswith(b"\r"):
            # ``feed`` holds a trailing \r back in case \n follows; at the end it ended a line.
            events = self.feed(b"\n")
        if self._buffer:
            return events
        if self._data or self._event is not None:
            events += self.feed(b"\n")
        return events


class NDJSONDecoder:
    """Newline-delimited JSON: each complete, non-blank line is one event (raw bytes)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Complete lines found in ``chunk``."""
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        return [line for line in lines if line.strip()]

    @property
    def pending(self) -> bool:
        """``True`` when the body so far ends in the middle of a line."""
        return bool(self._buffer.strip())

    def finish(self) -> list[bytes]:
        """The last line when the body ended without a newline (it may be cut; the codec
        decides by trying to parse it)."""
        rest, self._buffer = self._buffer, b""
        return [rest] if rest.strip() else []
