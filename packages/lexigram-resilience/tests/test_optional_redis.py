import subprocess
import sys

import pytest

from lexigram.resilience import RedisBucketBackend


def test_importing_the_package_does_not_import_redis() -> None:
    code = "import sys, lexigram.resilience; print(sorted(m for m in sys.modules if 'redis' == m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_missing_redis_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ["redis", "redis.asyncio", "redis.exceptions"]:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"pip install lexigram-resilience\[redis\]"):
        RedisBucketBackend("redis://localhost")
