"""Run ``lexigram-llm`` as a user would: a subprocess with its own HOME and XDG directories
(so stored keys and the chat log land in a test's tmp_path), no provider key in the
environment and no lexigram settings."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from lexigram.ai.llm.registry import default_registry

LEXIGRAM_LLM = Path(sys.executable).with_name("lexigram-llm")
KEY_VARIABLES = {name for info in default_registry.list() for name in info.api_key_env}
# The local model's numerics variant the suite runs under is kept (see test_cli.py).
NUMERICS_VARIABLES = ("LEX_AI_LLM__EXTRA__N_THREADS", "LEX_AI_LLM__EXTRA__N_BATCH")


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user whose home is ``home`` (created), with no key set."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("LEX_") or k in NUMERICS_VARIABLES)
        and k not in KEY_VARIABLES
        and not k.startswith("XDG_")
        and k not in ("OLLAMA_HOST", "LEXIGRAM_LLM_HOME")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        LEX_AI_LLM__MAX_RETRIES="0",
    )
    env.update(extra)
    return env


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(*args: str, env: dict[str, str], cwd: Path, stdin: str | None = None) -> Ran:
    """Run ``lexigram-llm ARGS`` without blocking the event loop (loopback servers keep
    serving in the test's loop)."""
    process = await asyncio.create_subprocess_exec(
        str(LEXIGRAM_LLM),
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), 120
    )
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())
