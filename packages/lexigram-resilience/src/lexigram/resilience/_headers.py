"""Reading provider rate-limit headers (``x-ratelimit-remaining-*``, ``x-ratelimit-reset-*``)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``"6m0s"``, ``"250ms"``, ``"1h2m"``) or a plain number."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(text) and position > 0 else None


def parse_remaining(text: str) -> float | None:
    """A non-negative count from a ``remaining`` header, or ``None`` when unreadable."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def read_limit_headers(headers: Mapping[str, str], kind: str) -> tuple[float | None, float | None]:
    """``(remaining, reset_seconds)`` for ``kind`` (``"requests"`` or ``"tokens"``)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    remaining = lowered.get(f"x-ratelimit-remaining-{kind}")
    reset = lowered.get(f"x-ratelimit-reset-{kind}")
    return (
        None if remaining is None else parse_remaining(remaining),
        None if reset is None else parse_duration(reset),
    )
