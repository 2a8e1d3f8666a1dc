"""``lexigram-llm keys``: a key stored once (user-only file) is what ``chat`` sends, after the
environment; ``keys list`` names providers, never keys."""

from __future__ import annotations

import os
import pty
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from harness.cli_process import LEXIGRAM_LLM, run_cli, user_env
from harness.openai_server import OpenAIServer
from harness.server import Reply

KEY = "sk-stored-KEY-0123456789abcdef"
ENV_KEY = "sk-from-ENV-fedcba9876543210"


@pytest_asyncio.fixture
async def openai() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    server.script(Reply(text="Paris."))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_keys_set_from_stdin_is_private_and_listed_by_name(tmp_path: Path) -> None:
    env = user_env(tmp_path / "home")
    stored = await run_cli("keys", "set", "openai", env=env, cwd=tmp_path, stdin=KEY + "\n")
    assert stored.returncode == 0, stored.stderr
    path = tmp_path / "home" / ".config" / "lexigram-llm" / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    where = await run_cli("keys", "path", env=env, cwd=tmp_path)
    assert where.stdout.strip() == str(path)
    listed = await run_cli("keys", "list", env=env, cwd=tmp_path)
    assert listed.stdout.split() == ["openai"]
    providers = await run_cli("providers", env=env, cwd=tmp_path)
    row = next(line.split() for line in providers.stdout.splitlines() if line.startswith("openai "))
    assert row[-1] == "set"
    for ran in (stored, where, listed, providers):
        assert KEY not in ran.stdout + ran.stderr


async def test_chat_sends_the_stored_key_and_the_environment_wins(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home")
    assert (
        await run_cli("keys", "set", "openai", env=env, cwd=tmp_path, stdin=KEY)
    ).returncode == 0
    chat = ("chat", "--provider", "openai", "--api-base", openai.url + "/v1", "Capital of France?")
    ran = await run_cli(*chat, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Paris."
    assert openai.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    # The provider's environment variable comes first.
    ran = await run_cli(
        *chat, env=user_env(tmp_path / "home", OPENAI_API_KEY=ENV_KEY), cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert openai.requests[-1].headers["authorization"] == f"Bearer {ENV_KEY}"


async def test_without_a_stored_key_chat_says_how_to_set_one(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home")
    ran = await run_cli(
        "chat",
        "--provider",
        "openai",
        "--api-base",
        openai.url + "/v1",
        "Hi",
        env=env,
        cwd=tmp_path,
    )
    assert ran.returncode == 2
    assert "OPENAI_API_KEY" in ran.stderr
    assert openai.requests == []


async def test_bad_input_stores_nothing(tmp_path: Path) -> None:
    env = user_env(tmp_path / "home")
    unknown = await run_cli("keys", "set", "nope", env=env, cwd=tmp_path, stdin=KEY)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: ConfigurationError: unknown provider 'nope'")
    empty = await run_cli("keys", "set", "openai", env=env, cwd=tmp_path, stdin="\n")
    assert empty.returncode == 2
    assert "no key given" in empty.stderr
    assert not (tmp_path / "home" / ".config" / "lexigram-llm" / "keys.json").exists()
    assert (await run_cli("keys", "list", env=env, cwd=tmp_path)).stdout == ""


async def test_a_broken_key_file_is_a_clear_error_without_its_content(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home")
    path = tmp_path / "home" / ".config" / "lexigram-llm" / "keys.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"openai": ' + KEY)  # truncated JSON holding a key
    ran = await run_cli(
        "chat",
        "--provider",
        "openai",
        "--api-base",
        openai.url + "/v1",
        "Hi",
        env=env,
        cwd=tmp_path,
    )
    assert ran.returncode == 2
    assert str(path) in ran.stderr
    assert KEY not in ran.stderr


def test_keys_set_on_a_terminal_does_not_echo_the_key(tmp_path: Path) -> None:
    env = user_env(tmp_path / "home")
    main_fd, terminal_fd = pty.openpty()
    process = subprocess.Popen(
        [str(LEXIGRAM_LLM), "keys", "set", "openai"],
        stdin=terminal_fd,
        stdout=terminal_fd,
        stderr=terminal_fd,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    os.close(terminal_fd)
    seen = b""
    while b"Key for openai:" not in seen:
        seen += os.read(main_fd, 1024)
    os.write(main_fd, KEY.encode() + b"\n")
    while True:
        try:
            piece = os.read(main_fd, 1024)
        except OSError:  # EIO: the child closed the terminal
            break
        if not piece:
            break
        seen += piece
    os.close(main_fd)
    assert process.wait(60) == 0
    assert KEY.encode() not in seen
    assert b"Stored the key for openai" in seen
    listed = subprocess.run(
        [str(LEXIGRAM_LLM), "keys", "list"], env=env, capture_output=True, text=True, check=True
    )
    assert listed.stdout.split() == ["openai"]
