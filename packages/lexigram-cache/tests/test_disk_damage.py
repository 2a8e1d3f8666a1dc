"""A disk cache whose files are damaged under a live process rebuilds them and carries on.

Each scenario runs in a child process, so a SIGBUS (SQLite touching a truncated memory-mapped
``-shm`` file) fails the test instead of killing pytest, and a hang is caught by a timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_SCENARIO = r"""
import asyncio, json, logging, os, sqlite3, sys
from lexigram.cache import DiskCacheBackend

directory, damage, first = sys.argv[1], sys.argv[2], sys.argv[3]
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def damage_files(path):
    names = {
        "db": [""],
        "db+wal": ["", "-wal"],
        "db+wal+shm": ["", "-wal", "-shm"],
        "shm": ["-shm"],
        "wal": ["-wal"],
    }
    if damage == "half":
        os.truncate(path, os.path.getsize(path) // 2)
    elif damage == "garbage":
        with open(path, "r+b") as f:
            f.write(os.urandom(4096))
    else:
        for suffix in names[damage]:
            os.truncate(f"{path}{suffix}", 0)


async def main():
    cache = DiskCacheBackend(directory)
    for i in range(300):
        await cache.set(f"k{i}", os.urandom(2000))
    if damage in ("half", "garbage"):
        # Move everything into the database file, so the damage is where SQLite reads.
        await cache.close()
        with sqlite3.connect(cache.path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sizes = {s: os.path.getsize(f"{cache.path}{s}") for s in ("", "-wal", "-shm")
             if os.path.exists(f"{cache.path}{s}")}
    damage_files(cache.path)
    out = {"sizes": sizes}
    if first == "other":
        # Another process opens the cache before this one has touched it since the damage.
        early = DiskCacheBackend(directory)
        await early.set("early", b"1")
        out["early"] = (await early.get("early")).decode()
        await early.close()
    out["get_after_damage"] = [await cache.get(f"k{i}") is not None for i in range(3)]
    out["early_seen"] = await cache.get("early") is not None
    await cache.set("fresh", b"value")
    out["fresh"] = (await cache.get("fresh")).decode()
    out["claim"] = await cache.set_if_absent("claim", b"x", ttl=30)
    # Another connection (as another process would) sees the same, sound cache.
    other = DiskCacheBackend(directory)
    out["other_sees_fresh"] = (await other.get("fresh")).decode()
    await other.set("from_other", b"2")
    out["back"] = (await cache.get("from_other")).decode()
    await other.close()
    await cache.close()
    print(json.dumps(out))

asyncio.run(main())
"""


@pytest.mark.parametrize("damage", ["db", "db+wal", "db+wal+shm", "shm", "wal", "half", "garbage"])
def test_damaged_files_are_rebuilt_under_a_live_process(tmp_path: Path, damage: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _SCENARIO, str(tmp_path), damage, "self"],
        capture_output=True,
        text=True,
        timeout=60,  # a hang on a busy or locked file fails instead of blocking the run
    )
    assert child.returncode == 0, f"child died ({child.returncode}): {child.stderr[-2000:]}"
    out = json.loads(child.stdout)
    assert out["fresh"] == "value"
    assert out["claim"] is True
    assert out["other_sees_fresh"] == "value"
    assert out["back"] == "2"
    assert out["get_after_damage"] == [False, False, False]  # rebuilt empty, nothing half-read
    assert "is damaged" in child.stderr


def test_a_new_process_does_not_wait_on_a_file_truncated_under_an_idle_one(
    tmp_path: Path,
) -> None:
    # The live process holds its WAL, so the newcomer cannot switch the empty file to WAL:
    # before, it waited the whole busy timeout on every call and then failed.
    child = subprocess.run(
        [sys.executable, "-c", _SCENARIO, str(tmp_path), "db", "other"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, f"child died ({child.returncode}): {child.stderr[-2000:]}"
    out = json.loads(child.stdout)
    assert out["early"] == "1"
    assert out["early_seen"] is True  # the idle process moved over to the rebuilt file
    assert out["fresh"] == "value" and out["back"] == "2"
