"""``lexigram-llm chat`` with no prompt on a terminal: an interactive session.

    $ lexigram-llm chat --provider openai --model gpt-4o-mini
    > What is the capital of France?
    Paris.
    > /help

Answers stream; the history is a ``ConversationManager`` trimmed to the model's context window
(when the model table or ``context_window`` knows it). ``!multi`` starts multi-line input,
``!end`` sends it. Ctrl-C stops the current answer and keeps the part already shown (it stays
in the history and the log, so the next question can refer to it); Ctrl-D leaves and prints
the session's tokens and cost. Each exchange is logged like ``chat PROMPT`` (one conversation
id per session, a new one after ``/clear``), so ``chat -c`` continues it and ``logs -q`` finds it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lexigram.ai.llm import cli
from lexigram.ai.llm.cli_store import LoggedChat
from lexigram.ai.llm.conversation import ConversationConfig, ConversationManager
from lexigram.ai.llm.exceptions import LLMError
from lexigram.ai.llm.types import ChatMessage

__all__ = ["run_interactive"]

PROMPT = "> "
MORE = "... "
DIM = "\x1b[2m"
RESET = "\x1b[0m"
HELP = """\
/model NAME    ask NAME from now on (the history stays)
/system TEXT   set the system prompt (/system alone removes it)
/clear         forget the history; later exchanges are logged as a new conversation
/save FILE     write the conversation (messages, usage, cost) to FILE as JSON
/attach FILE   send an image (PNG, JPEG, GIF, WebP) or a PDF with the next message
/help          this text
!multi         type several lines; a line !end sends them
Ctrl-C stops an answer (the part shown is kept); Ctrl-D leaves."""


@dataclass
class _Answer:
    """What one streamed answer showed so far (read after an interrupt)."""

    text: list[str] = field(default_factory=list)
    thinking: bool = False


class _Session:
    """The client, the history and the log of one interactive chat."""

    def __init__(self, args: argparse.Namespace, client: Any, logged: LoggedChat) -> None:
        self.args = args
        self.client = client
        self.logged = logged
        self.options: dict[str, Any] = {"cache": False}
        self.dim = sys.stdout.isatty()
        from lexigram.ai.llm.cli_render import rich_console

        self.console = rich_console(args)
        #: Files for the next message (``-a`` for the first one, then ``/attach``).
        self.pending: list[Any] = list(getattr(args, "attachment_parts", ()))
        model = client.config.model or None
        self.manager = ConversationManager(
            ConversationConfig(
                system_prompt=args.system or None, model=model, max_tokens=self._budget(model)
            ),
            client,
        )

    def _budget(self, model: str | None) -> int | None:
        """The prompt's token budget: the context window less the answer's room."""
        from lexigram.ai.llm.pricing import context_window_for

        window: int | None = self.client.config.context_window
        if window is None and model:
            window = context_window_for(model, self.client.provider_name)
        if window is None:
            return None
        reserve = int(self.options.get("max_tokens") or self.client.config.max_tokens or 0)
        return window - reserve if window > reserve else window

    @property
    def model(self) -> str:
        return self.manager.config.model or self.client.config.model or "?"

    async def ask(self, prompt: str, answer: _Answer) -> None:
        attachments, self.pending = self.pending, []
        await self.manager.add_message(cli.user_message(prompt, attachments))
        stream = self.manager.stream_response(**self.options)
        chunks = self.logged.watch(
            stream,
            provider=self.client.provider_name,
            model=self.manager.config.model,
            prompt=prompt,
            system=self.manager.config.system_prompt,
        )
        if self.console is not None:
            await self._ask_rich(chunks, answer)
            return
        raw_finish_reason = None
        async for chunk in chunks:
            if chunk.thinking_delta:
                self._thinking(chunk.thinking_delta, answer)
            if chunk.delta:
                self._end_thinking(answer)
                answer.text.append(chunk.delta)
                cli._write(sys.stdout, chunk.delta)
            if chunk.finish_reason is not None:
                raw_finish_reason = chunk.raw_finish_reason
        self._end_thinking(answer)
        cli._write(sys.stdout, "\n")
        cli._note_repetition(raw_finish_reason)

    async def _ask_rich(self, chunks: Any, answer: _Answer) -> None:
        """The answer on a terminal with rich: spinner, live text, then Markdown."""
        from lexigram.ai.llm.cli_render import RichAnswer

        view = RichAnswer(self.console)
        view.start()
        raw_finish_reason = None
        try:
            async for chunk in chunks:
                if chunk.thinking_delta:
                    view.thinking(chunk.thinking_delta)
                if chunk.delta:
                    answer.text.append(chunk.delta)
                    view.text(chunk.delta)
                if chunk.finish_reason is not None:
                    raw_finish_reason = chunk.raw_finish_reason
        except BaseException:  # Ctrl-C (the task is cancelled) or a failed answer
            view.stop()
            raise
        view.finish()
        cli._note_repetition(raw_finish_reason)

    def _thinking(self, text: str, answer: _Answer) -> None:
        if not self.dim:
            cli._write(sys.stderr, text)
            return
        if not answer.thinking:
            answer.thinking = True
            text = DIM + text
        cli._write(sys.stdout, text)

    def _end_thinking(self, answer: _Answer) -> None:
        if answer.thinking:
            answer.thinking = False
            cli._write(sys.stdout, RESET + "\n" if self.dim else "\n")

    async def keep_partial(self, prompt: str, answer: _Answer, started: float) -> None:
        """After Ctrl-C: the part shown becomes the answer (history and log); with nothing
        shown the question is dropped, so the history never holds two questions in a row."""
        partial = "".join(answer.text)
        if partial:
            await self.manager.add_message(ChatMessage.assistant(partial))
            self.logged.record(
                provider=self.client.provider_name,
                model=self.model,
                system=self.manager.config.system_prompt,
                prompt=prompt,
                answer=partial,
                usage=None,
                cost=None,
                started=started,
            )
            return
        history = list(self.manager.history)
        if history and history[-1].role.value == "user":
            self.manager.clear()
            await self.manager.add_messages(history[:-1])

    def command(self, line: str) -> None:
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        config = self.manager.config
        if name == "/help":
            print(HELP)
        elif name == "/model":
            if not rest:
                print(f"model: {self.model}")
                return
            self.manager.config = config.model_copy(
                update={"model": rest, "max_tokens": self._budget(rest)}
            )
            print(f"model: {rest}")
        elif name == "/system":
            self.manager.config = config.model_copy(update={"system_prompt": rest or None})
            print(f"system prompt: {rest}" if rest else "system prompt removed")
        elif name == "/clear":
            self.manager.clear()
            self.logged.conversation_id = uuid.uuid4().hex
            print("history cleared")
        elif name == "/attach":
            if not rest:
                print("usage: /attach FILE")
                return
            try:
                part = cli.load_attachment(rest)
            except cli._UsageError as exc:
                print(f"error: {exc}")
                return
            self.pending.append(part)
            print(f"attached {rest} ({part.media_type}); it goes with your next message")
        elif name == "/save":
            if not rest:
                print("usage: /save FILE")
                return
            try:
                Path(rest).expanduser().write_text(self.manager.to_json() + "\n", encoding="utf-8")
            except OSError as exc:
                print(f"error: cannot write {rest}: {exc.strerror}")
                return
            print(f"saved to {rest}")
        else:
            print(f"unknown command {name}; /help lists them")

    def totals(self) -> str:
        usage = self.manager.usage
        cost = f"${self.manager.cost:.6f}" if self.manager.cost is not None else "unknown"
        return (
            f"session: {self.manager.responses} answers, {usage.total_tokens} tokens "
            f"({usage.prompt_tokens} in, {usage.completion_tokens} out), cost {cost}"
        )


def _read_line(prompt: str) -> str | None:
    """One line, or ``None`` for Ctrl-C (the line is dropped). Raises ``EOFError``."""
    try:
        return input(prompt)
    except KeyboardInterrupt:
        cli._write(sys.stdout, "\n")
        return None


def _read_multi() -> str | None:
    lines: list[str] = []
    while True:
        line = _read_line(MORE)
        if line is None:
            return None
        if line.strip() == "!end":
            return "\n".join(lines)
        lines.append(line)


def run_interactive(args: argparse.Namespace) -> int:
    """The interactive chat; returns the exit status."""
    for flag, name in (
        (args.tool, "--tool"),
        (args.mcp, "--mcp"),
        (args.json_schema, "--json-schema"),
        (args.json, "--json"),
    ):
        if flag:
            raise cli._UsageError(f"{name} needs a PROMPT: the interactive chat does not take it")
    # A bad -a FILE is a usage error before anything starts.
    args.attachment_parts = [cli.load_attachment(path) for path in args.attach or ()]
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    with asyncio.Runner() as runner, contextlib.closing(LoggedChat.open(args)) as logged:
        session = runner.run(_open(args, logged))
        try:
            _loop(runner, session)
        finally:
            print(session.totals())
            runner.run(session.client.close())
    return cli.EXIT_OK


async def _open(args: argparse.Namespace, logged: LoggedChat) -> _Session:
    from lexigram.ai.llm.providers.local import LocalLLMClient
    from lexigram.ai.llm.registry import create_llm_client

    config = cli._client_config(args)
    client = create_llm_client(config)
    served = await cli._model_for_server(client)
    if served is not None:
        await client.close()
        client = create_llm_client(config.model_copy(update={"model": served}))
    session = _Session(args, client, logged)
    if isinstance(client, LocalLLMClient):
        await cli._with_progress(client.load(), f"Loading {client.model_path.name}")
        if client.config.max_tokens is None:
            session.options["max_tokens"] = cli.LOCAL_MAX_TOKENS
            session.manager.config = session.manager.config.model_copy(
                update={"max_tokens": session._budget(session.manager.config.model)}
            )
    await session.manager.add_messages(logged.messages())
    print(
        f"Chatting with {client.provider_name} {session.model}"
        + (f" (continuing {len(logged.history)} exchanges)" if logged.history else "")
        + ". /help for commands, Ctrl-D to leave."
    )
    return session


def _loop(runner: asyncio.Runner, session: _Session) -> None:
    while True:
        try:
            line = _read_line(PROMPT)
            if line is not None and line.strip() == "!multi":
                line = _read_multi()
        except EOFError:
            cli._write(sys.stdout, "\n")
            return
        if line is None or not line.strip():
            continue
        if line.startswith("/"):
            session.command(line.strip())
            continue
        answer = _Answer()
        started = time.monotonic()
        try:
            runner.run(session.ask(line, answer))
        except KeyboardInterrupt:
            session._end_thinking(answer)
            cli._write(sys.stdout, "\n[interrupted]\n")
            runner.run(session.keep_partial(line, answer, started))
        except LLMError as error:
            cli._write(sys.stdout, "\n")
            cli._fail(f"{type(error).__name__}: {error}")
            runner.run(session.keep_partial(line, _Answer(), started))
