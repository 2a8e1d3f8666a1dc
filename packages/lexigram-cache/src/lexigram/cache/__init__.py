"""Cache backends for ``CacheBackendProtocol``: in memory, on disk (SQLite) and in Redis."""

from lexigram.cache._disk import DiskCacheBackend
from lexigram.cache._memory import CacheStats, MemoryCacheBackend
from lexigram.cache._redis import LockTimeoutError, RedisCacheBackend

__all__ = [
    "CacheStats",
    "DiskCacheBackend",
    "LockTimeoutError",
    "MemoryCacheBackend",
    "RedisCacheBackend",
]
