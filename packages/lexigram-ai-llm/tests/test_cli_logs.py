"""``lexigram-llm`` logs every chat exchange to SQLite (never the key); ``logs`` lists and
searches it; ``-c``/``--cid`` continue a logged conversation; ``--no-log`` and ``logs off``."""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from harness.cli_process import run_cli, user_env
from harness.openai_server import OpenAIServer
from harness.server import Reply

KEY = "sk-log-KEY-0123456789abcdef"


@pytest_asyncio.fixture
async def openai() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def chat_args(server: OpenAIServer, *extra: str) -> tuple[str, ...]:
    return ("chat", "--provider", "openai", "--api-base", server.url + "/v1", *extra)


async def test_exchanges_are_logged_searched_and_continued(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    openai.script(Reply(text="Paris is the capital.", prompt_tokens=20, completion_tokens=5))
    first = await run_cli(
        *chat_args(openai, "--model", "gpt-4o-mini", "Capital of France?"), env=env, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    openai.script(Reply(text="About 2.1 million."))
    second = await run_cli(*chat_args(openai, "-c", "How many live there?"), env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    sent = openai.requests[-1].json["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "Capital of France?"),
        ("assistant", "Paris is the capital."),
        ("user", "How many live there?"),
    ]

    listed = await run_cli("logs", "--json", env=env, cwd=tmp_path)
    rows = json.loads(listed.stdout)
    assert [r["prompt"] for r in rows] == ["Capital of France?", "How many live there?"]
    assert rows[0]["conversation_id"] == rows[1]["conversation_id"]
    assert rows[0]["provider"] == "openai"
    assert rows[0]["model"] == "gpt-4o-mini"
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (20, 5)
    assert rows[0]["cost"] is not None and rows[0]["cost"] > 0
    assert rows[0]["duration_ms"] >= 0

    found = await run_cli("logs", "-q", "capital", "--json", env=env, cwd=tmp_path)
    assert [r["answer"] for r in json.loads(found.stdout)] == ["Paris is the capital."]
    text = await run_cli("logs", "-n", "1", env=env, cwd=tmp_path)
    assert "> How many live there?" in text.stdout
    assert "Capital of France?" not in text.stdout

    database = tmp_path / "home" / ".local" / "share" / "lexigram-llm" / "logs.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert KEY.encode() not in database.read_bytes()

    # --cid picks a conversation; a new question without -c starts a new one.
    openai.script(Reply(text="Berlin."))
    await run_cli(*chat_args(openai, "Capital of Germany?"), env=env, cwd=tmp_path)
    openai.script(Reply(text="Yes."))
    cid = rows[0]["conversation_id"]
    again = await run_cli(*chat_args(openai, "--cid", cid, "Sure?"), env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(openai.requests[-1].json["messages"]) == 5
    with sqlite3.connect(database) as db:
        conversations = db.execute("SELECT COUNT(DISTINCT conversation_id) FROM exchanges")
        assert conversations.fetchone()[0] == 2


async def test_no_log_and_logs_off_write_nothing(tmp_path: Path, openai: OpenAIServer) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    ran = await run_cli(*chat_args(openai, "--no-log", "Hi"), env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (await run_cli("logs", "off", env=env, cwd=tmp_path)).returncode == 0
    await run_cli(*chat_args(openai, "Hi again"), env=env, cwd=tmp_path)
    status = await run_cli("logs", "status", env=env, cwd=tmp_path)
    assert status.stdout.startswith("Logging is off")
    assert json.loads((await run_cli("logs", "--json", env=env, cwd=tmp_path)).stdout) == []
    await run_cli("logs", "on", env=env, cwd=tmp_path)
    await run_cli(*chat_args(openai, "Logged"), env=env, cwd=tmp_path)
    rows = json.loads((await run_cli("logs", "--json", env=env, cwd=tmp_path)).stdout)
    assert [r["prompt"] for r in rows] == ["Logged"]


async def test_continue_with_nothing_logged_is_a_usage_error(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    ran = await run_cli(*chat_args(openai, "-c", "Hi"), env=env, cwd=tmp_path)
    assert ran.returncode == 2
    assert "no logged conversation" in ran.stderr
    assert openai.requests == []
