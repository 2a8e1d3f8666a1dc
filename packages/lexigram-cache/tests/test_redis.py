import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from lexigram.cache import LockTimeoutError, RedisCacheBackend
from tests_support.redis_server import OwnRedisServer, RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


async def test_keys_are_stored_under_the_prefix(client: Redis) -> None:
    cache = RedisCacheBackend(client, prefix="app:cache:")
    await cache.set("k", b"v")
    assert await client.get("app:cache:k") == b"v"
    assert await client.keys("*") == [b"app:cache:k"]
    assert await client.pttl("app:cache:k") == -1


async def test_ttl_is_set_in_milliseconds(client: Redis) -> None:
    cache = RedisCacheBackend(client)
    await cache.set("k", b"v", ttl=2.5)
    assert 2000 < await client.pttl("lexigram:cache:k") <= 2500
    assert await cache.set_if_absent("c", b"v", ttl=0.0001)  # rounds up to 1 ms, not to 0
    await asyncio.sleep(0.05)
    assert not await cache.exists("c")


async def test_clear_never_touches_foreign_keys(client: Redis) -> None:
    await client.set("foreign:llm:a", b"keep")
    await client.set("lexigram:cachex:llm:a", b"keep")  # shares the prefix's first characters
    cache = RedisCacheBackend(client)
    for index in range(1200):  # more than one SCAN/UNLINK batch
        await cache.set(f"llm:{index}", b"x")
    await cache.set("embed:1", b"x")
    assert await cache.clear("llm:") == 1200
    assert await cache.exists("embed:1")
    assert await cache.clear() == 1
    assert sorted(await client.keys("*")) == [b"foreign:llm:a", b"lexigram:cachex:llm:a"]


async def test_prefix_with_glob_characters_is_matched_literally(client: Redis) -> None:
    await client.set("tenant[1]:k", b"foreign")
    await client.set("tenant1:k", b"foreign")
    cache = RedisCacheBackend(client, prefix="tenant[1]*:")
    await cache.set("k", b"mine")
    assert await cache.clear() == 1
    assert sorted(await client.keys("*")) == [b"tenant1:k", b"tenant[1]:k"]


async def test_a_client_passed_in_stays_open(client: Redis) -> None:
    async with RedisCacheBackend(client) as cache:
        assert cache.client is client
    assert await client.ping()


async def test_a_decoding_client_is_refused(redis_url: str) -> None:
    decoding = Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisCacheBackend(decoding)
    await decoding.aclose()


async def test_set_if_absent_is_atomic_across_contenders(redis_url: str) -> None:
    caches = [RedisCacheBackend(redis_url) for _ in range(10)]
    results = await asyncio.gather(
        *(cache.set_if_absent("claim", str(i).encode(), ttl=30) for i, cache in enumerate(caches))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert await caches[0].get("claim") == str(winner).encode()
    for cache in caches:
        await cache.close()


async def test_lock_serialises_holders(redis_url: str) -> None:
    caches = [RedisCacheBackend(redis_url) for _ in range(4)]
    inside = 0
    most_inside = 0
    order: list[int] = []

    async def hold(index: int) -> None:
        nonlocal inside, most_inside
        async with caches[index].lock("job", ttl=30):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.01)
            order.append(index)
            inside -= 1

    await asyncio.gather(*(hold(index) for index in range(4)))
    assert most_inside == 1
    assert sorted(order) == [0, 1, 2, 3]
    assert not await caches[0].client.exists("lexigram:cache:__lock__:job")
    for cache in caches:
        await cache.close()


async def test_lock_gives_up_after_max_wait(client: Redis) -> None:
    holder = RedisCacheBackend(client)
    waiter = RedisCacheBackend(client)
    async with holder.lock("job", ttl=30):
        with pytest.raises(LockTimeoutError):
            async with waiter.lock("job", ttl=30, max_wait=0.05):
                pytest.fail("the lock was held")
    async with waiter.lock("job", ttl=30, max_wait=0.05):
        pass


async def test_release_leaves_a_lock_taken_over_by_someone_else(client: Redis) -> None:
    cache = RedisCacheBackend(client)
    async with cache.lock("job", ttl=30):
        # As if our lock expired and another process took it.
        await client.set("lexigram:cache:__lock__:job", b"someone-else")
    assert await client.get("lexigram:cache:__lock__:job") == b"someone-else"


async def test_lock_release_survives_an_empty_script_cache(
    client: Redis, redis_server: RedisServer
) -> None:
    cache = RedisCacheBackend(client)
    assert redis_server.command("SCRIPT", "FLUSH") == b"+OK"
    async with cache.lock("job", ttl=30):
        pass
    assert not await client.exists("lexigram:cache:__lock__:job")


async def test_a_frozen_server_raises_a_timeout_instead_of_hanging(
    own_redis_server: OwnRedisServer,
) -> None:
    from redis.exceptions import TimeoutError as RedisTimeoutError

    async with RedisCacheBackend(own_redis_server.url, socket_timeout=0.3) as cache:
        await cache.set("k", b"v")
        own_redis_server.freeze()
        try:
            with pytest.raises(RedisTimeoutError):
                await asyncio.wait_for(cache.get("k"), 10)  # the bound is the socket timeout
        finally:
            own_redis_server.thaw()
        assert await cache.get("k") == b"v"  # and the backend recovers once the server does
