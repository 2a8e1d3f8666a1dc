"""The one JSON extractor: find the JSON value in a model's answer, and parse JSON that is
still arriving.

``extract_json`` drops reasoning (``<think>`` / ``<thinking>`` blocks), prefers fenced code
blocks, then scans for a balanced ``{...}`` or ``[...]`` while respecting strings, so braces
inside string values or prose around the JSON do not confuse it. A light repair (trailing
commas) is tried before giving up. ``parse_partial_json`` reads a prefix of a JSON document and
returns the part that is certain so far (for streaming extraction).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["JSONExtractionError", "extract_json", "parse_partial_json", "strip_reasoning"]

_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.IGNORECASE | re.DOTALL)
_THINK_OPEN = re.compile(r"<(think|thinking|reasoning)>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)
_THINK_ANY = re.compile(r"</?(?:think|thinking|reasoning)>", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
# Starting points tried by the bracket scan before giving up (bounds the work on huge prose).
_MAX_STARTS = 64


class JSONExtractionError(ValueError):
    """No JSON value could be found in the text; the message says what was seen."""


def strip_reasoning(text: str) -> str:
    """``text`` without reasoning blocks. An unclosed opening tag hides everything after it;
    a closing tag with no opening one (templates that open it in the prompt) hides what came
    before it."""
    text = _THINK_BLOCK.sub("", text)
    closings = list(_THINK_CLOSE.finditer(text))
    if closings:
        text = text[closings[-1].end() :]
    opening = _THINK_OPEN.search(text)
    if opening is not None:
        text = text[: opening.start()]
    return text


def _loads(candidate: str) -> tuple[bool, Any]:
    try:
        return True, orjson.loads(candidate)
    except orjson.JSONDecodeError:
        pass
    repaired = _repair(candidate)
    if repaired != candidate:
        try:
            return True, orjson.loads(repaired)
        except orjson.JSONDecodeError:
            pass
    return False, None


def _repair(candidate: str) -> str:
    """Remove trailing commas outside strings (the most common slip of small models)."""
    if "," not in candidate:
        return candidate
    out: list[str] = []
    in_string = escaped = False
    segment_start = 0
    for i, ch in enumerate(candidate):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                out.append(candidate[segment_start : i + 1])
                segment_start = i + 1
        elif ch == '"':
            out.append(_TRAILING_COMMA.sub(r"\1", candidate[segment_start:i]))
            segment_start = i
            in_string = True
    tail = candidate[segment_start:]
    out.append(tail if in_string else _TRAILING_COMMA.sub(r"\1", tail))
    return "".join(out)


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket closing the one at ``start``, or ``None``."""
    stack: list[str] = []
    in_string = escaped = False
    pairs = {"}": "{", "]": "["}
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            if not stack or stack[-1] != pairs[ch]:
                return None
            stack.pop()
            if not stack:
                return i + 1
    return None


def extract_json(text: str, *, prefer: str = "{[") -> Any:
    """The JSON value in ``text``; raises ``JSONExtractionError`` when there is none.

    ``prefer`` lists the opening brackets the scan starts from (``"{"`` when an object is
    expected). A whole-text or fenced value of any kind is accepted first.
    """
    if not text or not text.strip():
        raise JSONExtractionError("the answer is empty")
    ok, value = _loads(text.strip())  # a whole-JSON answer, tags inside strings and all
    if ok:
        return value
    tags = [m.span() for m in _THINK_ANY.finditer(text)]
    if tags:
        # Reasoning tags that all sit inside the first JSON value are text of that value (a
        # key or string that reads "</think>"), not reasoning around it: stripping them would
        # cut the value apart.
        ok, value, start, end = _scan_span(text, prefer)
        if ok and all(start <= a and b <= end for a, b in tags):
            return value
    body = strip_reasoning(text).strip()
    if not body:
        raise JSONExtractionError("the answer holds only reasoning, no JSON")
    ok, value = _loads(body)
    if ok:
        return value
    for match in _FENCE.finditer(body):
        block = match.group(2).strip()
        ok, value = _loads(block)
        if ok:
            return value
        found = _scan(block, prefer)
        if found[0]:
            return found[1]
    ok, value = _scan(body, prefer)
    if ok:
        return value
    if body != text.strip():  # the "reasoning" tags may have been text inside a JSON string
        ok, value = _scan(text, prefer)
        if ok:
            return value
    starts = [body.find(c) for c in prefer if c in body]
    if starts and _balanced_end(body, min(starts)) is None:
        raise JSONExtractionError("the JSON in the answer is unterminated (was it cut off?)")
    if starts:
        raise JSONExtractionError("the answer has brackets but no valid JSON inside them")
    raise JSONExtractionError("the answer contains no JSON value")


def _scan(text: str, prefer: str) -> tuple[bool, Any]:
    ok, value, _, _ = _scan_span(text, prefer)
    return ok, value


def _scan_span(text: str, prefer: str) -> tuple[bool, Any, int, int]:
    """The first valid JSON value found from a ``prefer`` bracket, and where it lies."""
    tried = 0
    i = 0
    while i < len(text) and tried < _MAX_STARTS:
        positions = [p for p in (text.find(c, i) for c in prefer) if p >= 0]
        if not positions:
            break
        start = min(positions)
        tried += 1
        end = _balanced_end(text, start)
        if end is not None:
            ok, value = _loads(text[start:end])
            if ok:
                return True, value, start, end
        i = start + 1
    return False, None, -1, -1


# -- partial JSON (streaming) ----------------------------------------------------------------

_MISSING: Any = object()
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class _Invalid(Exception):
    pass


class _PartialParser:
    """Recursive descent over a JSON prefix. Each ``_value`` returns ``(value, complete)``; an
    incomplete string is kept (its text so far), an incomplete number, literal or key is not."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.n = len(text)

    def _ws(self) -> None:
        s, i, n = self.s, self.i, self.n
        while i < n and s[i] in " \t\r\n":
            i += 1
        self.i = i

    def value(self) -> tuple[Any, bool]:
        self._ws()
        if self.i >= self.n:
            return _MISSING, False
        ch = self.s[self.i]
        if ch == "{":
            return self._object()
        if ch == "[":
            return self._array()
        if ch == '"':
            return self._string()
        return self._scalar()

    def _object(self) -> tuple[Any, bool]:
        self.i += 1
        out: dict[str, Any] = {}
        while True:
            self._ws()
            if self.i >= self.n:
                return out, False
            ch = self.s[self.i]
            if ch == "}":
                self.i += 1
                return out, True
            if ch == ",":
                self.i += 1
                continue
            if ch != '"':
                raise _Invalid
            key, done = self._string()
            if not done:
                return out, False
            self._ws()
            if self.i >= self.n:
                return out, False
            if self.s[self.i] != ":":
                raise _Invalid
            self.i += 1
            item, done = self.value()
            if item is _MISSING:
                return out, False
            out[key] = item
            if not done:
                return out, False

    def _array(self) -> tuple[Any, bool]:
        self.i += 1
        out: list[Any] = []
        while True:
            self._ws()
            if self.i >= self.n:
                return out, False
            ch = self.s[self.i]
            if ch == "]":
                self.i += 1
                return out, True
            if ch == ",":
                self.i += 1
                continue
            item, done = self.value()
            if item is _MISSING:
                return out, False
            out.append(item)
            if not done:
                return out, False

    def _string(self) -> tuple[str, bool]:
        s, n = self.s, self.n
        i = self.i + 1
        buf: list[str] = []
        while i < n:
            ch = s[i]
            if ch == '"':
                self.i = i + 1
                return "".join(buf), True
            if ch == "\\":
                if i + 1 >= n:
                    break
                code = s[i + 1]
                if code == "u":
                    if i + 6 > n:
                        break
                    try:
                        buf.append(chr(int(s[i + 2 : i + 6], 16)))
                    except ValueError:
                        raise _Invalid from None
                    i += 6
                    continue
                if code not in _ESCAPES:
                    raise _Invalid
                buf.append(_ESCAPES[code])
                i += 2
                continue
            buf.append(ch)
            i += 1
        self.i = n
        return "".join(buf), False

    def _scalar(self) -> tuple[Any, bool]:
        s, i, n = self.s, self.i, self.n
        for word, value in _LITERALS.items():
            if s.startswith(word, i):
                self.i = i + len(word)
                return value, True
            if n - i < len(word) and word.startswith(s[i:n]):  # cut short by the prefix end
                self.i = n
                return _MISSING, False
        match = _NUMBER.match(s, i)
        if match is None:
            if s[i] in "-0123456789" and n - i <= 1:
                self.i = n
                return _MISSING, False
            raise _Invalid
        end = match.end()
        if end >= n or (s[end] in ".eE+-" and end + 1 >= n):
            self.i = n  # the number may go on in the next chunk
            return _MISSING, False
        self.i = end
        return orjson.loads(s[i:end]), True


def parse_partial_json(text: str, *, prefer: str = "{[") -> tuple[Any, bool] | None:
    """The JSON value that is certain in a prefix of a JSON answer: ``(value, complete)``, or
    ``None`` while nothing can be said (no bracket yet, or the prefix is not JSON)."""
    body = text.lstrip()
    if not body or body[0] not in prefer:
        # Not JSON from the first character: drop reasoning and an opening code fence.
        body = strip_reasoning(text)
        first = [p for p in (body.find(c) for c in prefer) if p >= 0]
        fence = body.find("```")
        if fence >= 0 and (not first or fence < min(first)):
            newline = body.find("\n", fence)
            body = body[newline + 1 :] if newline >= 0 else ""
    positions = [p for p in (body.find(c) for c in prefer) if p >= 0]
    if not positions:
        return None
    parser = _PartialParser(body[min(positions) :])
    try:
        value, complete = parser.value()
    except _Invalid:
        return None
    if value is _MISSING:
        return None
    return value, complete
