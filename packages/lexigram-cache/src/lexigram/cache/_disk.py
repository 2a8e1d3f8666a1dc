"""A cache in one SQLite file (WAL mode), safe to share between processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from lexigram.cache._common import AsyncClosing, check_claim_ttl

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_expires_at ON entries (expires_at);
"""
_LIVE = "(expires_at IS NULL OR expires_at > :now)"
_UPSERT = (
    "INSERT INTO entries (key, value, expires_at) VALUES (:key, :value, :expires_at) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)


class DiskCacheBackend(AsyncClosing):
    """Entries in ``<directory>/cache.sqlite3``; every process opening the directory shares them.

    SQLite in WAL mode serialises writers across processes (waiting up to ``busy_timeout``
    seconds for a busy database); calls run in a worker thread so the event loop never blocks.
    Expiry is read against ``clock`` (wall-clock time, so that processes agree). Expired rows
    are never returned; ``purge_expired()`` reclaims their space.
    """

    FILENAME = "cache.sqlite3"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / self.FILENAME
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    async def get(self, key: str) -> bytes | None:
        """The stored value, or ``None`` when absent or expired."""

        def get(db: sqlite3.Connection, now: float) -> bytes | None:
            row = db.execute(
                "SELECT value, expires_at FROM entries WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            value, expires_at = row
            if expires_at is not None and expires_at <= now:
                db.execute("DELETE FROM entries WHERE key = ? AND expires_at <= ?", (key, now))
                return None
            return bytes(value)

        return await self._run(get)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds when given (at once when ``<= 0``)."""

        def set_(db: sqlite3.Connection, now: float) -> None:
            if ttl is not None and ttl <= 0:
                db.execute("DELETE FROM entries WHERE key = ?", (key,))
                return
            expires_at = None if ttl is None else now + ttl
            db.execute(_UPSERT, {"key": key, "value": bytes(value), "expires_at": expires_at})

        await self._run(set_)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` holds no live value; ``True`` when stored (atomic)."""
        check_claim_ttl(ttl)

        def claim(db: sqlite3.Connection, now: float) -> bool:
            cursor = db.execute(
                f"{_UPSERT} WHERE entries.expires_at IS NOT NULL AND entries.expires_at <= :now",
                {
                    "key": key,
                    "value": bytes(value),
                    "expires_at": None if ttl is None else now + ttl,
                    "now": now,
                },
            )
            return cursor.rowcount == 1

        return await self._run(claim)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` when a live value was removed."""

        def delete(db: sqlite3.Connection, now: float) -> bool:
            with _transaction(db):
                live = db.execute(
                    f"SELECT 1 FROM entries WHERE key = :key AND {_LIVE}", {"key": key, "now": now}
                ).fetchone()
                db.execute("DELETE FROM entries WHERE key = ?", (key,))
            return live is not None

        return await self._run(delete)

    async def exists(self, key: str) -> bool:
        """``True`` when ``key`` holds a live value."""

        def exists(db: sqlite3.Connection, now: float) -> bool:
            row = db.execute(
                f"SELECT 1 FROM entries WHERE key = :key AND {_LIVE}", {"key": key, "now": now}
            ).fetchone()
            return row is not None

        return await self._run(exists)

    async def clear(self, prefix: str = "") -> int:
        """Remove every key starting with ``prefix``; the number of live values removed."""

        def clear(db: sqlite3.Connection, now: float) -> int:
            matching = "substr(key, 1, :length) = :prefix"
            params = {"length": len(prefix), "prefix": prefix, "now": now}
            with _transaction(db):
                db.execute(f"DELETE FROM entries WHERE {matching} AND NOT {_LIVE}", params)
                return db.execute(f"DELETE FROM entries WHERE {matching}", params).rowcount

        return await self._run(clear)

    async def purge_expired(self) -> int:
        """Delete every expired row; the number deleted."""

        def purge(db: sqlite3.Connection, now: float) -> int:
            return db.execute("DELETE FROM entries WHERE expires_at <= ?", (now,)).rowcount

        return await self._run(purge)

    async def close(self) -> None:
        """Close the database connection (the next call opens it again)."""

        def close() -> None:
            with self._lock:
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None

        await asyncio.to_thread(close)

    async def _run(self, operation: Callable[[sqlite3.Connection, float], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                return operation(self._connect(), self._clock())

        return await asyncio.to_thread(locked)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                _enable_wal(db, time.monotonic() + self._busy_timeout)
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._connection = db
        return self._connection


def _enable_wal(db: sqlite3.Connection, deadline: float) -> None:
    """Switch the database file to WAL, retrying while another process holds it.

    SQLite answers a concurrent journal-mode change with SQLITE_BUSY without calling the busy
    handler, so two processes opening a new cache at once need this loop; it runs once per file.
    """
    pause = 0.005
    while db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
