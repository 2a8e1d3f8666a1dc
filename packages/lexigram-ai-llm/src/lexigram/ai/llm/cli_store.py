"""The command line's log: every ``lexigram-llm chat`` exchange in a SQLite file.

    lexigram-llm logs                 # the last 3 exchanges
    lexigram-llm logs -n 20 -q paris  # full-text search (SQLite FTS5) of prompts and answers
    lexigram-llm logs --json          # for scripts
    lexigram-llm logs off | on | status | path

Each row holds the prompt, answer, system prompt, provider, model, usage, cost, duration and
conversation id; never a key. ``chat --no-log`` skips one exchange; ``logs off`` (a marker
file in the config directory) stops logging until ``logs on``. ``chat -c`` and ``--cid ID``
continue a logged conversation: its exchanges become the history of the next question.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lexigram.ai.llm import _userfiles
from lexigram.ai.llm.exceptions import ConfigurationError
from lexigram.ai.llm.types import ChatMessage, Completion, StreamChunk, Usage

__all__ = [
    "ChatLog",
    "Exchange",
    "LoggedChat",
    "add_log_flags",
    "add_logs_parser",
    "log_path",
    "logging_enabled",
    "run_logs",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    created TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    system TEXT,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    total_tokens INTEGER,
    cost REAL,
    duration_ms INTEGER
);
CREATE INDEX IF NOT EXISTS exchanges_conversation ON exchanges (conversation_id, id);
CREATE VIRTUAL TABLE IF NOT EXISTS exchanges_fts
    USING fts5(prompt, answer, content='exchanges', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS exchanges_ai AFTER INSERT ON exchanges BEGIN
    INSERT INTO exchanges_fts (rowid, prompt, answer) VALUES (new.id, new.prompt, new.answer);
END;
"""


def log_path() -> Path:
    """The log database (in the user's data directory)."""
    return _userfiles.data_dir() / "logs.db"


def _off_marker() -> Path:
    return _userfiles.config_dir() / "logs-off"


def logging_enabled() -> bool:
    """False after ``lexigram-llm logs off``."""
    return not _off_marker().exists()


@dataclass(slots=True, frozen=True)
class Exchange:
    """One logged prompt and answer."""

    id: int
    conversation_id: str
    created: str
    provider: str | None
    model: str | None
    system: str | None
    prompt: str
    answer: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost: float | None
    duration_ms: int | None


class ChatLog:
    """The SQLite log; opened (and created, user-only) on first use."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or log_path()
        _userfiles.ensure_private_dir(self.path.parent)
        self._db = sqlite3.connect(self.path)
        self.path.chmod(0o600)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def record(
        self,
        *,
        conversation_id: str,
        provider: str | None,
        model: str | None,
        system: str | None,
        prompt: str,
        answer: str,
        usage: Usage | None,
        cost: float | None,
        duration: float,
    ) -> int:
        """Store one exchange; returns its id."""
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO exchanges (conversation_id, created, provider, model, system, "
                "prompt, answer, prompt_tokens, completion_tokens, total_tokens, cost, "
                "duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    created,
                    provider,
                    model,
                    system,
                    prompt,
                    answer,
                    usage.prompt_tokens if usage else None,
                    usage.completion_tokens if usage else None,
                    usage.total_tokens if usage else None,
                    cost,
                    round(duration * 1000),
                ),
            )
        return int(cursor.lastrowid or 0)

    def recent(self, count: int, query: str | None = None) -> list[Exchange]:
        """The last ``count`` exchanges (matching ``query``, FTS5 syntax), oldest first."""
        columns = ", ".join(f"e.{name}" for name in Exchange.__dataclass_fields__)
        if query:
            sql = (
                f"SELECT {columns} FROM exchanges e JOIN exchanges_fts f ON f.rowid = e.id "
                "WHERE exchanges_fts MATCH ? ORDER BY e.id DESC LIMIT ?"
            )
            params: tuple[Any, ...] = (_fts_query(query), count)
        else:
            sql = f"SELECT {columns} FROM exchanges e ORDER BY e.id DESC LIMIT ?"
            params = (count,)
        return [Exchange(*row) for row in reversed(self._db.execute(sql, params).fetchall())]

    def conversation(self, conversation_id: str) -> list[Exchange]:
        """Every exchange of one conversation, in order."""
        columns = ", ".join(Exchange.__dataclass_fields__)
        rows = self._db.execute(
            f"SELECT {columns} FROM exchanges WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        ).fetchall()
        return [Exchange(*row) for row in rows]

    def last_conversation_id(self) -> str | None:
        row = self._db.execute(
            "SELECT conversation_id FROM exchanges ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return str(row[0]) if row else None


def _fts_query(text: str) -> str:
    """Each word quoted: a user's ``-q`` is words to find, not FTS5 syntax to get wrong."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in text.split())


def history_messages(exchanges: Sequence[Exchange]) -> list[ChatMessage]:
    """A logged conversation as the messages that continue it."""
    messages: list[ChatMessage] = []
    for exchange in exchanges:
        messages.append(ChatMessage.user(exchange.prompt))
        messages.append(ChatMessage.assistant(exchange.answer))
    return messages


class LoggedChat:
    """What ``chat`` logs: opened with the flags, fed each finished answer."""

    def __init__(self, log: ChatLog | None, conversation_id: str, history: list[Exchange]) -> None:
        self.log = log
        self.conversation_id = conversation_id
        self.history = history

    @classmethod
    def open(cls, args: argparse.Namespace) -> LoggedChat:
        """From ``--no-log``, ``-c`` and ``--cid``; continuing needs the log even with
        ``--no-log`` (then the new exchange is not written)."""
        cid = getattr(args, "cid", None)
        keep_going = bool(getattr(args, "continue_", False)) or cid is not None
        write = logging_enabled() and not getattr(args, "no_log", False)
        if not write and not keep_going:
            return cls(None, uuid.uuid4().hex, [])
        log = ChatLog()
        history: list[Exchange] = []
        if keep_going:
            cid = cid or log.last_conversation_id()
            if cid is None:
                raise ConfigurationError("there is no logged conversation to continue")
            history = log.conversation(cid)
            if not history:
                raise ConfigurationError(f"no logged conversation has the id {cid!r}")
        if not write:
            log.close()
            log = None  # type: ignore[assignment]
        return cls(log, cid or uuid.uuid4().hex, history)

    def messages(self) -> list[ChatMessage]:
        return history_messages(self.history)

    def record(
        self,
        *,
        provider: str | None,
        model: str | None,
        system: str | None,
        prompt: str,
        answer: str,
        usage: Usage | None,
        cost: float | None,
        started: float,
    ) -> None:
        if self.log is None:
            return
        self.log.record(
            conversation_id=self.conversation_id,
            provider=provider,
            model=model,
            system=system,
            prompt=prompt,
            answer=answer,
            usage=usage,
            cost=cost,
            duration=time.monotonic() - started,
        )

    def record_completion(
        self, completion: Completion, *, prompt: str, system: str | None, started: float
    ) -> None:
        self.record(
            provider=completion.provider,
            model=completion.model,
            system=system,
            prompt=prompt,
            answer=completion.content,
            usage=completion.usage,
            cost=completion.cost,
            started=started,
        )

    async def watch(
        self,
        chunks: AsyncIterator[StreamChunk],
        *,
        provider: str | None,
        model: str | None,
        prompt: str,
        system: str | None,
    ) -> AsyncIterator[StreamChunk]:
        """Pass the stream through; log the answer once it has ended (a failed or
        interrupted answer is not logged)."""
        started = time.monotonic()
        pieces: list[str] = []
        usage: Usage | None = None
        async for chunk in chunks:
            if chunk.delta:
                pieces.append(chunk.delta)
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.model:
                model = chunk.model
            yield chunk
        cost = None
        if usage is not None and model:
            from lexigram.ai.llm.pricing import usage_cost

            cost = usage_cost(usage, model, provider=provider)
        self.record(
            provider=provider,
            model=model,
            system=system,
            prompt=prompt,
            answer="".join(pieces),
            usage=usage,
            cost=cost,
            started=started,
        )

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


# -- lexigram-llm logs ---------------------------------------------------------------------


def add_log_flags(chat: argparse.ArgumentParser) -> None:
    """``chat``'s flags for the log: ``-c``, ``--cid``, ``--no-log``."""
    chat.add_argument(
        "-c",
        "--continue",
        dest="continue_",
        action="store_true",
        help="continue the last logged conversation",
    )
    chat.add_argument("--cid", metavar="ID", help="continue the logged conversation ID")
    chat.add_argument("--no-log", action="store_true", help="do not log this exchange")


def add_logs_parser(commands: Any) -> None:
    """Add ``logs`` to the CLI's subparsers."""
    logs = commands.add_parser(
        "logs",
        help="list or search the logged chat exchanges",
        description="List or search the logged chat exchanges (newest last).",
    )
    logs.add_argument(
        "action", nargs="?", choices=("list", "on", "off", "status", "path"), default="list"
    )
    logs.add_argument("-n", "--count", type=int, default=3, help="how many (default: 3; 0: all)")
    logs.add_argument("-q", "--query", help="only exchanges whose prompt or answer has these words")
    logs.add_argument("--cid", help="only this conversation")
    logs.add_argument("--json", action="store_true", help="a JSON array, for scripts")


def run_logs(args: argparse.Namespace) -> int:
    """Run ``logs``; returns the exit status."""
    marker = _off_marker()
    if args.action == "path":
        print(log_path())
        return 0
    if args.action == "status":
        state = "on" if logging_enabled() else "off"
        print(f"Logging is {state}; the log is {log_path()}")
        return 0
    if args.action == "off":
        _userfiles.ensure_private_dir(marker.parent)
        marker.touch()
        return 0
    if args.action == "on":
        marker.unlink(missing_ok=True)
        return 0
    if args.count < 0:
        raise ConfigurationError("-n must be 0 (all) or more")
    if not log_path().exists():
        exchanges: list[Exchange] = []
    else:
        log = ChatLog()
        try:
            if args.cid:
                exchanges = log.conversation(args.cid)
                if args.count:
                    exchanges = exchanges[-args.count :]
            else:
                exchanges = log.recent(args.count or -1, args.query)
        finally:
            log.close()
    if args.json:
        print(json.dumps([asdict(exchange) for exchange in exchanges], indent=2))
        return 0
    for exchange in exchanges:
        cost = f", ${exchange.cost:.6f}" if exchange.cost is not None else ""
        tokens = f", {exchange.total_tokens} tokens" if exchange.total_tokens is not None else ""
        print(f"# {exchange.created}  conversation {exchange.conversation_id}")
        print(f"# {exchange.provider or '?'} {exchange.model or '?'}{tokens}{cost}")
        if exchange.system:
            print(f"system: {exchange.system}")
        print(f"> {exchange.prompt}")
        print(exchange.answer)
        print()
    return 0
