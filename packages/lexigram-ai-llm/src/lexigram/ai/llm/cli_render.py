"""How ``lexigram-llm chat`` shows an answer to a person: ``rich`` on a terminal.

When stdout is a terminal, ``rich`` is installed (the ``cli`` extra) and neither ``--json`` nor
``--plain`` is given, an answer is shown like this: a spinner until the first token, then the
text as it streams (thinking dimmed above it) in a live region that never grows past the
screen (its last lines follow the text), and once the answer has ended that region is replaced
by the whole answer rendered as Markdown. Rendering after the end, rather than re-rendering
Markdown on every chunk, is the robust choice: half a Markdown document renders differently
from the whole (an unclosed code fence, a table), and a live region taller than the screen
cannot be redrawn. An interrupted or failed answer is printed as far as it came.

Anything else (piped, ``--plain``, no ``rich``) is plain text exactly as written by the model.
``rich`` is imported here, at the point of use, never by ``import lexigram.ai.llm``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

__all__ = ["RichAnswer", "rich_console", "with_status"]

T = TypeVar("T")


def rich_console(args: argparse.Namespace) -> Any | None:
    """A ``rich`` console on stdout when the answer goes to a person, else ``None``."""
    if getattr(args, "json", False) or getattr(args, "plain", False):
        return None
    if not sys.stdout.isatty():
        return None
    try:
        from rich.console import Console
    except ImportError:  # the cli extra is not installed: plain text
        return None
    return Console(highlight=False)


async def with_status(console: Any, work: Awaitable[T], label: str) -> T:
    """Await ``work`` with a spinner and ``label`` on ``console`` (erased after)."""
    with console.status(label, spinner="dots"):
        return await work


class _Tail:
    """The live region's content: the end of what has arrived, at most a screen high
    (so the region can always be erased and redrawn)."""

    def __init__(self, answer: RichAnswer) -> None:
        self.answer = answer

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        from rich.segment import Segment
        from rich.text import Text

        height = max(1, console.size.height - 1)
        budget = height * max(1, options.max_width)  # more characters never fit anyway
        thinking = "".join(self.answer.thinking_parts)[-budget:]
        content = "".join(self.answer.text_parts)[-budget:]
        text = Text()
        if thinking:
            text.append(thinking, style="dim")
            if content:
                text.append("\n")
        text.append(content)
        lines = console.render_lines(text, options, pad=False)[-height:]
        for number, line in enumerate(lines):
            if number:
                yield Segment.line()
            yield from line


class RichAnswer:
    """One answer on a terminal: ``start()``, feed ``thinking()``/``text()``, then ``finish()``
    (rendered as Markdown) or ``stop()`` (interrupted or failed: printed as far as it came)."""

    def __init__(self, console: Any, waiting: str = "Waiting for the answer") -> None:
        self.console = console
        self.waiting = waiting
        self.thinking_parts: list[str] = []
        self.text_parts: list[str] = []
        self._live: Any = None
        self._showing_text = False

    def start(self) -> None:
        from rich.live import Live
        from rich.spinner import Spinner
        from rich.text import Text

        spinner = Spinner("dots", text=Text(self.waiting, style="dim"))
        self._live = Live(
            spinner,
            console=self.console,
            transient=True,
            refresh_per_second=8,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def thinking(self, text: str) -> None:
        self.thinking_parts.append(text)
        self._show_text()

    def text(self, text: str) -> None:
        self.text_parts.append(text)
        self._show_text()

    def _show_text(self) -> None:
        if not self._showing_text and self._live is not None:
            self._showing_text = True
            self._live.update(_Tail(self), refresh=True)

    def finish(self) -> None:
        """The answer has ended: replace the live region by the rendered answer."""
        from rich.markdown import Markdown  # imported while the live region still shows

        self._close_live()
        self._print_thinking()
        content = "".join(self.text_parts)
        if content.strip():
            self.console.print(Markdown(content))

    def stop(self) -> None:
        """Interrupted or failed: the live region goes, what arrived stays (as plain text)."""
        self._close_live()
        self._print_thinking()
        content = "".join(self.text_parts)
        if content:
            self.console.print(content, markup=False, highlight=False, soft_wrap=True)

    def _print_thinking(self) -> None:
        thinking = "".join(self.thinking_parts).strip()
        if thinking:
            from rich.text import Text

            self.console.print(Text(thinking, style="dim"))

    def _close_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()
