"""What every backend promises through CacheBackendProtocol."""

import pytest

from lexigram.cache import DiskCacheBackend, MemoryCacheBackend, RedisCacheBackend
from lexigram.contracts.cache import CacheBackendProtocol

Backend = MemoryCacheBackend | DiskCacheBackend | RedisCacheBackend


async def test_is_a_cache_backend(backend: Backend) -> None:
    assert isinstance(backend, CacheBackendProtocol)


async def test_round_trip_and_overwrite(backend: Backend) -> None:
    assert await backend.get("answer") is None
    await backend.set("answer", b"41")
    await backend.set("answer", b"42")
    assert await backend.get("answer") == b"42"
    assert await backend.exists("answer")


async def test_binary_values_and_unusual_keys_survive(backend: Backend) -> None:
    value = bytes(range(256)) * 1000
    for key in ["llm:é:🙂", "with space", "glob*?[x]\\", ""]:
        await backend.set(key, value)
        assert await backend.get(key) == value


async def test_delete_reports_whether_something_was_removed(backend: Backend) -> None:
    await backend.set("k", b"v")
    assert await backend.delete("k")
    assert not await backend.delete("k")
    assert not await backend.exists("k")
    assert await backend.get("k") is None


async def test_clear_with_prefix_removes_only_matching_keys(backend: Backend) -> None:
    keys = ["llm:a", "llm:b", "llm", "embed:a", "xllm:a"]
    for key in keys:
        await backend.set(key, b"1")
    assert await backend.clear("llm:") == 2
    assert [key for key in keys if await backend.exists(key)] == ["llm", "embed:a", "xllm:a"]
    assert await backend.clear() == 3
    assert not await backend.exists("embed:a")


async def test_clear_treats_glob_characters_literally(backend: Backend) -> None:
    await backend.set("a*", b"1")
    await backend.set("ab", b"1")
    await backend.set("a?c", b"1")
    assert await backend.clear("a*") == 1
    assert await backend.exists("ab")
    assert await backend.exists("a?c")


async def test_set_if_absent_stores_only_once(backend: Backend) -> None:
    assert await backend.set_if_absent("claim", b"first", ttl=30)
    assert not await backend.set_if_absent("claim", b"second", ttl=30)
    assert await backend.get("claim") == b"first"
    await backend.delete("claim")
    assert await backend.set_if_absent("claim", b"third")
    assert await backend.get("claim") == b"third"


async def test_set_if_absent_rejects_a_claim_that_expires_at_once(backend: Backend) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await backend.set_if_absent("claim", b"x", ttl=0)


async def test_non_positive_ttl_stores_nothing(backend: Backend) -> None:
    await backend.set("k", b"old")
    await backend.set("k", b"new", ttl=0)
    assert await backend.get("k") is None
    await backend.set("k", b"new", ttl=-5)
    assert not await backend.exists("k")
