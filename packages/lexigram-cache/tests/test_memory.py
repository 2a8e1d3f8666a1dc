import pytest

from lexigram.cache import CacheStats, MemoryCacheBackend
from tests_support.clock import FakeClock


async def test_least_recently_used_entry_is_evicted_first() -> None:
    cache = MemoryCacheBackend(max_entries=3)
    for key in "abc":
        await cache.set(key, key.encode())
    assert await cache.get("a") == b"a"  # "b" is now the least recently used
    await cache.set("d", b"d")
    assert [await cache.exists(key) for key in "abcd"] == [True, False, True, True]
    assert cache.stats.evictions == 1


async def test_total_bytes_are_bounded() -> None:
    size = MemoryCacheBackend.entry_size
    entry = size("a", b"x" * 40)  # key, value and bookkeeping
    assert entry > 40 + 1
    cache = MemoryCacheBackend(max_bytes=2 * entry + entry // 2)
    await cache.set("a", b"x" * 40)
    await cache.set("b", b"x" * 40)
    await cache.set("c", b"x" * 40)
    assert not await cache.exists("a")
    assert cache.stats.total_bytes == 2 * entry
    await cache.set("b", b"x" * 10)  # replacing frees the old value's bytes
    assert cache.stats.total_bytes == entry + size("b", b"x" * 10)
    assert cache.stats.total_bytes <= cache.max_bytes


async def test_a_value_larger_than_the_cache_is_not_stored() -> None:
    cache = MemoryCacheBackend(max_bytes=MemoryCacheBackend.entry_size("small", b"x" * 10))
    await cache.set("small", b"12345")
    assert await cache.exists("small")
    await cache.set("small", b"x" * 11)
    assert not await cache.exists("small")
    assert cache.stats.total_bytes == 0
    assert not await cache.set_if_absent("small", b"x" * 11)


async def test_entries_expire_per_key(clock: FakeClock) -> None:
    cache = MemoryCacheBackend(clock=clock)
    await cache.set("short", b"1", ttl=5)
    await cache.set("long", b"2", ttl=50)
    await cache.set("forever", b"3")
    clock.advance(5)
    assert await cache.get("short") is None
    assert await cache.get("long") == b"2"
    clock.advance(1000)
    assert not await cache.exists("long")
    assert await cache.get("forever") == b"3"
    assert cache.stats.entries == 1


async def test_expired_claim_can_be_taken_again(clock: FakeClock) -> None:
    cache = MemoryCacheBackend(clock=clock)
    assert await cache.set_if_absent("lock", b"a", ttl=10)
    clock.advance(9.9)
    assert not await cache.set_if_absent("lock", b"b", ttl=10)
    clock.advance(0.1)
    assert await cache.set_if_absent("lock", b"b", ttl=10)


async def test_clear_counts_only_live_entries(clock: FakeClock) -> None:
    cache = MemoryCacheBackend(clock=clock)
    await cache.set("p:a", b"1", ttl=1)
    await cache.set("p:b", b"1")
    clock.advance(2)
    assert await cache.clear("p:") == 1
    assert cache.stats.entries == 0


async def test_stats_count_hits_misses_and_evictions() -> None:
    cache = MemoryCacheBackend(max_entries=1)
    await cache.set("a", b"12")
    await cache.get("a")
    await cache.get("a")
    await cache.get("zzz")
    await cache.set("b", b"345")
    total = MemoryCacheBackend.entry_size("b", b"345")
    assert cache.stats == CacheStats(hits=2, misses=1, evictions=1, entries=1, total_bytes=total)


async def test_close_drops_everything() -> None:
    cache = MemoryCacheBackend()
    await cache.set("a", b"1")
    await cache.close()
    assert not await cache.exists("a")
    assert cache.stats.total_bytes == 0


def test_bounds_are_validated() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCacheBackend(max_entries=0)
