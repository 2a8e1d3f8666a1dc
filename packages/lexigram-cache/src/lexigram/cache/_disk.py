"""A cache in one SQLite file (WAL mode), safe to share between processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lexigram.cache._common import AsyncClosing, check_claim_ttl

_T = TypeVar("_T")

logger = logging.getLogger("lexigram.cache")

# Result codes that say the file is no database we can use: rebuild it.
_DAMAGED_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})

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

    A damaged file is rebuilt, empty, with a warning logged: one SQLite reports as corrupt or
    as not a database, and one that shrank under this process (truncated database, WAL or
    ``-shm`` file; checked before each call). The ``-shm`` file is memory-mapped by SQLite,
    so a truncated one is first grown back to its size, or touching it would kill the process
    with SIGBUS; the database file itself is never mapped (``mmap_size=0``). Files replaced
    by another process (say, one that rebuilt them) are reopened.
    """

    FILENAME = "cache.sqlite3"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not busy_timeout > 0:
            raise ValueError(f"busy_timeout must be positive, got {busy_timeout}")
        self.directory = Path(directory)
        self.path = self.directory / self.FILENAME
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._files: _Files | None = None  # what the files looked like after the last call

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
                state = self._check_files() if self._connection is not None else "intact"
                if state == "replaced":
                    self._abandon()
                elif state == "damaged":
                    self._rebuild("the file shrank under this process (truncated?)")
                elif self._connection is not None:
                    self._connection.close()
                self._connection = None
                self._files = None

        await asyncio.to_thread(close)

    async def _run(self, operation: Callable[[sqlite3.Connection, float], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                return self._guarded(operation)

        return await asyncio.to_thread(locked)

    def _guarded(self, operation: Callable[[sqlite3.Connection, float], _T]) -> _T:
        """``operation`` on a sound connection; a damaged file is rebuilt and it runs again."""
        try:
            try:
                return operation(self._connect(), self._clock())
            except sqlite3.DatabaseError as exc:
                if exc.sqlite_errorcode & 0xFF not in _DAMAGED_CODES:
                    raise
                self._rebuild(f"{exc} ({exc.sqlite_errorname})")
                return operation(self._connect(), self._clock())
        finally:
            if self._connection is not None:
                self._files = _Files.of(self.path)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            state = self._check_files()
            if state == "replaced":
                self._abandon()
            elif state == "damaged":
                self._rebuild("the file shrank under this process (truncated?)")
        if self._connection is None:
            try:
                self._connection = self._open()
            except _OrphanedWAL:
                self._rebuild("the database file is empty beside another process's WAL")
                self._connection = self._open()
            except sqlite3.DatabaseError as exc:
                if exc.sqlite_errorcode & 0xFF not in _DAMAGED_CODES:
                    raise
                self._rebuild(f"{exc} ({exc.sqlite_errorname})")
                self._connection = self._open()
        return self._connection

    def _open(self) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            db.execute("PRAGMA mmap_size=0")  # a truncated mapped file means SIGBUS
            _enable_wal(db, time.monotonic() + self._busy_timeout, self.path)
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        self._files = _Files.of(self.path)
        return db

    def _check_files(self) -> str:
        """``intact``, ``replaced`` (another inode, or gone) or ``damaged`` (shrank)."""
        before = self._files
        if before is None:
            return "intact"
        now = _Files.of(self.path)
        if now is None or (now.device, now.inode) != (before.device, before.inode):
            return "replaced"
        if now.db < before.db or now.wal < before.wal or now.shm < before.shm:
            return "damaged"
        return "intact"

    def _abandon(self) -> None:
        """Drop the connection to files another process replaced, without ever closing it.

        Closing the last connection to the old (unlinked) files would checkpoint them and then
        delete the WAL and ``-shm`` files *by name*: the new files, in use by the process that
        made them. So the connection is leaked on purpose (a reference that is never released,
        so not even interpreter shutdown closes it); the OS closes its files at exit. This
        happens once per replacement, which only a rebuild (or a person) does."""
        if self._connection is not None:
            import ctypes

            ctypes.pythonapi.Py_IncRef(ctypes.py_object(self._connection))
        self._connection = None
        self._files = None

    def _rebuild(self, reason: str) -> None:
        """Replace a damaged database with a new, empty one."""
        logger.warning("disk cache %s is damaged (%s); rebuilding it empty", self.path, reason)
        shm = Path(f"{self.path}-shm")
        before = self._files
        if self._connection is not None:
            # SQLite maps the -shm file: grow a truncated one back before the close touches it.
            with contextlib.suppress(OSError):
                if before is not None and shm.stat().st_size < before.shm:
                    os.truncate(shm, before.shm)
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
        self._connection = None
        self._files = None
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{self.path}{suffix}")


@dataclass(frozen=True, slots=True)
class _Files:
    """The identity of the database file and the sizes of it, its WAL and its ``-shm``."""

    device: int
    inode: int
    db: int
    wal: int
    shm: int

    @classmethod
    def of(cls, path: Path) -> _Files | None:
        try:
            db = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(db.st_dev, db.st_ino, db.st_size, _size(f"{path}-wal"), _size(f"{path}-shm"))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


class _OrphanedWAL(Exception):
    """The database file is empty but a WAL held by another connection exists beside it."""


# How long an empty database file beside a held WAL may stay so before it counts as damaged:
# two processes creating a cache at once pass through that state for milliseconds.
_ORPHAN_GRACE = 0.5


def _enable_wal(db: sqlite3.Connection, deadline: float, path: Path) -> None:
    """Switch the database file to WAL, retrying while another process holds it.

    SQLite answers a concurrent journal-mode change with SQLITE_BUSY without calling the busy
    handler, so two processes opening a new cache at once need this loop; it runs once per file.
    A database file truncated under a live process stays empty while that process holds its
    WAL: that raises ``_OrphanedWAL`` after a short grace instead of waiting out the deadline.
    """
    pause = 0.005
    started = time.monotonic()
    busy_ms = db.execute("PRAGMA busy_timeout").fetchone()[0]
    db.execute("PRAGMA busy_timeout=20")  # this loop does the waiting, and looks around
    try:
        while True:
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                    return
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() > deadline:
                    raise
                if (
                    time.monotonic() - started > _ORPHAN_GRACE
                    and _size(str(path)) == 0
                    and (_size(f"{path}-wal") > 0 or _size(f"{path}-shm") > 0)
                ):
                    raise _OrphanedWAL(str(path)) from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.25)
    finally:
        db.execute(f"PRAGMA busy_timeout={int(busy_ms)}")


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
