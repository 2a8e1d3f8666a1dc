"""Inline ``<think>...</think>`` reasoning, as open models emit it, moved into ``thinking``."""

from __future__ import annotations

__all__ = ["ThinkTagSplitter", "partial_suffix", "split_think_tags"]

_OPEN = "<think>"
_CLOSE = "</think>"


def split_think_tags(text: str) -> tuple[str, str]:
    """``(answer, thinking)`` from a complete text; text without tags is all answer."""
    splitter = ThinkTagSplitter()
    answer, thinking = splitter.feed(text)
    tail_answer, tail_thinking = splitter.flush()
    return answer + tail_answer, thinking + tail_thinking


class ThinkTagSplitter:
    """Splits streamed text into answer and thinking, with tags cut anywhere across deltas.

    Only a leading ``<think>`` block counts (after optional whitespace), as models emit it; a
    ``<think>`` later in an answer is left alone.
    """

    __slots__ = ("_held", "_state")

    def __init__(self) -> None:
        self._state = "start"  # start -> thinking -> (after_close ->) answer
        self._held = ""

    def feed(self, delta: str) -> tuple[str, str]:
        """``(answer_delta, thinking_delta)`` for one streamed delta."""
        if self._state == "answer":
            return delta, ""
        if self._state == "after_close":
            # The newlines after ``</think>`` may come in later deltas: dropped there too,
            # as ``split_think_tags`` drops them from the whole text.
            answer = delta.lstrip("\n")
            if answer:
                self._state = "answer"
            return answer, ""
        text = self._held + delta
        self._held = ""
        if self._state == "start":
            stripped = text.lstrip()
            if not stripped:
                self._held = text
                return "", ""
            if stripped.startswith(_OPEN):
                self._state = "thinking"
                text = stripped[len(_OPEN) :]
            elif _OPEN.startswith(stripped):
                self._held = text  # maybe the start of a tag; wait for more
                return "", ""
            else:
                self._state = "answer"
                return text, ""
        # thinking
        end = text.find(_CLOSE)
        if end >= 0:
            answer = text[end + len(_CLOSE) :].lstrip("\n")
            self._state = "answer" if answer else "after_close"
            return answer, text[:end]
        keep = partial_suffix(text, _CLOSE)
        if keep:
            self._held = text[-keep:]
            text = text[:-keep]
        return "", text

    @property
    def passthrough(self) -> bool:
        """``True`` once the answer has begun: every later delta is answer text, unchanged,
        and nothing is held back (a caller may stop feeding it)."""
        return self._state == "answer"

    def flush(self) -> tuple[str, str]:
        """What is held back at end of stream."""
        held, self._held = self._held, ""
        if self._state == "thinking":
            return "", held
        return held, ""


def partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag`` (what a
    streaming matcher holds back: it may be the start of ``tag``)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
