"""A fake clock for code that takes ``clock`` and ``sleep`` callables."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when told to, or when its ``sleep`` is awaited."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the requested sleep and move time forward by it, at once."""
        self.sleeps.append(seconds)
        self.now += seconds
