import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lexigram.cache import DiskCacheBackend
from tests_support import workers
from tests_support.clock import FakeClock


async def test_entries_persist_across_instances(tmp_path: Path) -> None:
    async with DiskCacheBackend(tmp_path / "nested" / "cache") as first:
        await first.set("k", b"v")
    async with DiskCacheBackend(tmp_path / "nested" / "cache") as second:
        assert await second.get("k") == b"v"
    assert (tmp_path / "nested" / "cache" / DiskCacheBackend.FILENAME).exists()


async def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    async with DiskCacheBackend(tmp_path) as cache:
        await cache.set("k", b"v")
        with sqlite3.connect(cache.path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_expired_entries_are_not_returned(tmp_path: Path, clock: FakeClock) -> None:
    async with DiskCacheBackend(tmp_path, clock=clock) as cache:
        await cache.set("short", b"1", ttl=5)
        await cache.set("forever", b"2")
        clock.advance(4.9)
        assert await cache.get("short") == b"1"
        clock.advance(0.1)
        assert await cache.get("short") is None
        assert not await cache.exists("short")
        assert not await cache.delete("short")
        assert await cache.get("forever") == b"2"


async def test_expired_claims_can_be_taken_again(tmp_path: Path, clock: FakeClock) -> None:
    async with DiskCacheBackend(tmp_path, clock=clock) as cache:
        assert await cache.set_if_absent("lock", b"a", ttl=10)
        assert not await cache.set_if_absent("lock", b"b", ttl=10)
        clock.advance(10)
        assert await cache.set_if_absent("lock", b"b", ttl=10)
        assert await cache.get("lock") == b"b"


async def test_purge_and_clear_reclaim_expired_rows(tmp_path: Path, clock: FakeClock) -> None:
    async with DiskCacheBackend(tmp_path, clock=clock) as cache:
        for index in range(3):
            await cache.set(f"p:{index}", b"x", ttl=1)
        await cache.set("p:live", b"x")
        await cache.set("q:old", b"x", ttl=1)
        clock.advance(2)
        assert await cache.clear("p:") == 1  # only the live one counts
        assert await cache.purge_expired() == 1  # q:old
        with sqlite3.connect(cache.path) as db:
            assert db.execute("SELECT count(*) FROM entries").fetchone() == (0,)


async def test_close_then_use_reopens(tmp_path: Path) -> None:
    cache = DiskCacheBackend(tmp_path)
    await cache.set("k", b"v")
    await cache.close()
    await cache.close()
    assert await cache.get("k") == b"v"
    await cache.close()


def test_two_processes_share_one_directory(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [
            pool.submit(workers.write_disk_entries, str(tmp_path), worker, 200)
            for worker in range(2)
        ]
        won = [set(future.result(timeout=120)) for future in futures]
    # Every shared key was claimed by exactly one process.
    assert won[0].isdisjoint(won[1])
    assert won[0] | won[1] == {f"shared:{index}" for index in range(200)}
    with sqlite3.connect(tmp_path / DiskCacheBackend.FILENAME) as db:
        rows = dict(db.execute("SELECT key, value FROM entries").fetchall())
    assert len(rows) == 600
    assert rows["worker1:199"] == b"1-199"
    for key in won[1]:
        assert rows[key] == b"1"
