"""``lexigram-llm chat`` output for scripts and attachments, run as a user would (subprocess,
loopback servers): piped output is the model's text exactly; ``--json`` is one JSON document;
``-a FILE`` sends images and PDFs in each wire's shape, refuses other files before any network
call, and a model the table knows takes no images is refused before sending; with ``rich``
blocked a terminal gets plain text."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pty
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from harness.anthropic_server import AnthropicServer
from harness.cli_process import run_cli, user_env
from harness.conformance import SECRET
from harness.openai_server import OpenAIServer
from harness.server import Reply

KEY = "sk-output-KEY-0123456789abcdef"
MARKDOWN = "Paris is **very** old.\n\n- one\n- two"
# The smallest real files of each kind (a 1x1 PNG; a PDF header is what identifies a PDF).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest_asyncio.fixture
async def openai() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def anthropic() -> AsyncIterator[AnthropicServer]:
    server = AnthropicServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def openai_chat(server: OpenAIServer, *extra: str) -> tuple[str, ...]:
    return ("chat", "--provider", "openai", "--api-base", server.url + "/v1", *extra)


# -- piped output and --json ---------------------------------------------------------------


async def test_piped_output_is_the_models_text_exactly(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    openai.script(Reply(text=MARKDOWN, thinking="Old city."))
    for flags in ((), ("--no-stream",)):
        ran = await run_cli(
            *openai_chat(openai, "--model", "gpt-4o-mini", *flags, "How old?"),
            env=env,
            cwd=tmp_path,
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == MARKDOWN + "\n"  # no rendering, no escapes, no spinner
    assert ran.stderr == ""


async def test_chat_json_is_one_document_with_usage_cost_and_the_conversation(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    openai.script(
        Reply(text="Paris.", thinking="Easy.", prompt_tokens=20, completion_tokens=5),
        Reply(text="About 2.1 million."),
    )
    first = await run_cli(
        *openai_chat(openai, "--model", "gpt-4o-mini", "--json", "Capital of France?"),
        env=env,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    document = json.loads(first.stdout)
    assert document["content"] == "Paris."
    assert (document["model"], document["provider"]) == ("gpt-4o-mini", "openai")
    assert document["finish_reason"] == "stop"
    assert document["usage"]["prompt_tokens"] == 20
    assert document["usage"]["completion_tokens"] == 5
    assert document["usage"]["total_tokens"] == 25
    assert document["cost"] is not None and document["cost"] > 0
    assert document["logged"] is True
    assert first.stdout.count("\n") == 1  # one line: easy to pipe into jq
    assert openai.requests[0].json.get("stream") in (None, False)

    second = await run_cli(
        *openai_chat(openai, "-c", "--json", "How many live there?"), env=env, cwd=tmp_path
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["conversation_id"] == document["conversation_id"]
    rows = json.loads((await run_cli("logs", "--json", env=env, cwd=tmp_path)).stdout)
    assert [row["conversation_id"] for row in rows] == [document["conversation_id"]] * 2
    assert rows[0]["cost"] == document["cost"]

    unlogged = await run_cli(
        *openai_chat(openai, "--model", "gpt-4o-mini", "--json", "--no-log", "Hi"),
        env=env,
        cwd=tmp_path,
    )
    assert json.loads(unlogged.stdout)["logged"] is False


async def test_chat_json_failure_is_the_usual_error_line(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    openai.script(Reply(error="rate_limit"))
    ran = await run_cli(
        *openai_chat(openai, "--model", "gpt-4o-mini", "--json", "Hi"), env=env, cwd=tmp_path
    )
    assert ran.returncode == 1
    assert ran.stdout == ""
    assert ran.stderr.startswith("error: LLMRateLimitError:")


# -- attachments ---------------------------------------------------------------------------


async def test_attached_image_and_pdf_reach_the_openai_wire(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    (tmp_path / "dot.png").write_bytes(PNG)
    (tmp_path / "paper.pdf").write_bytes(PDF)
    openai.script(Reply(text="A dot and a paper."))
    ran = await run_cli(
        *openai_chat(openai, "--model", "gpt-4o-mini", "-a", "dot.png", "--attach", "paper.pdf"),
        "What are these?",
        env=env,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "A dot and a paper.\n"
    (message,) = openai.requests[0].json["messages"]
    assert message["content"] == [
        {"type": "text", "text": "What are these?"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        },
        {
            "type": "file",
            "file": {
                "filename": "paper.pdf",
                "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
            },
        },
    ]


async def test_attached_image_and_pdf_reach_the_anthropic_wire(
    tmp_path: Path, anthropic: AnthropicServer
) -> None:
    env = user_env(tmp_path / "home", ANTHROPIC_API_KEY=SECRET)
    (tmp_path / "dot.png").write_bytes(PNG)
    (tmp_path / "paper.pdf").write_bytes(PDF)
    anthropic.script(Reply(text="A dot and a paper."))
    ran = await run_cli(
        "chat",
        "--provider",
        "anthropic",
        "--api-base",
        anthropic.url,
        "--model",
        "claude-sonnet-4-5",
        "-a",
        "dot.png",
        "-a",
        "paper.pdf",
        "What are these?",
        env=env,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "A dot and a paper.\n"
    (message,) = anthropic.requests[0].json["messages"]
    blocks = message["content"]
    assert blocks[0] == {"type": "text", "text": "What are these?"}
    assert blocks[1] == {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": "image/png",
            "data": base64.b64encode(PNG).decode(),
        },
    }
    assert blocks[2]["type"] == "document"
    assert blocks[2]["source"] == {
        "type": "base64",
        "media_type": "application/pdf",
        "data": base64.b64encode(PDF).decode(),
    }


async def test_files_that_cannot_be_attached_are_refused_before_any_request(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    (tmp_path / "notes.txt").write_text("just text\n")
    (tmp_path / "fake.png").write_text("not really a PNG")  # the content decides, not the name
    big = tmp_path / "huge.png"
    with big.open("wb") as handle:  # a sparse file: the size is checked before reading
        handle.write(PNG)
        handle.truncate(21 * 2**20)
    cases = {
        "notes.txt": "not an image (PNG, JPEG, GIF, WebP) or a PDF",
        "fake.png": "not an image (PNG, JPEG, GIF, WebP) or a PDF",
        "missing.png": "cannot read it: No such file or directory",
        "huge.png": "21.0 MB is more than the 20 MB",
        ".": "not a file",
    }
    for name, message in cases.items():
        ran = await run_cli(
            *openai_chat(openai, "--model", "gpt-4o-mini", "-a", name, "Look"),
            env=env,
            cwd=tmp_path,
        )
        assert ran.returncode == 2, (name, ran.stderr)
        assert ran.stderr.startswith(f"error: _UsageError: --attach '{name}': "), ran.stderr
        assert message in ran.stderr, ran.stderr
    assert openai.requests == []


async def test_a_model_without_vision_is_refused_before_sending(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    (tmp_path / "dot.png").write_bytes(PNG)
    for flags in ((), ("--no-stream",), ("--json",)):
        ran = await run_cli(
            *openai_chat(openai, "--model", "gpt-3.5-turbo", "-a", "dot.png", *flags, "Look"),
            env=env,
            cwd=tmp_path,
        )
        assert ran.returncode == 1, ran.stderr
        assert ran.stdout == ""
        assert ran.stderr.startswith("error: UnsupportedCapabilityError: Model 'gpt-3.5-turbo'")
        assert "does not take image input" in ran.stderr
        assert "no request was sent" in ran.stderr
    assert openai.requests == []  # the server saw nothing


# -- a terminal without rich ---------------------------------------------------------------


def _run_on_a_terminal(code: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``python -c code`` with stdout on a pseudo-terminal; returns (status, what it showed)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        seen.extend(data)
    process.wait(timeout=120)
    assert process.stderr is not None
    errors = process.stderr.read().decode()
    process.stderr.close()
    os.close(master)
    assert process.returncode == 0, errors
    return process.returncode, seen.decode(errors="replace")


async def test_without_rich_a_terminal_gets_plain_text(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    openai.script(Reply(text=MARKDOWN))
    argv = list(openai_chat(openai, "--model", "gpt-4o-mini", "How old?"))
    code = (
        "import sys\n"
        "sys.modules['rich'] = None  # as if the cli extra were not installed\n"
        "from lexigram.ai.llm.cli import main\n"
        "assert sys.stdout.isatty()\n"
        f"sys.exit(main({argv!r}))\n"
    )
    _, shown = await asyncio.to_thread(_run_on_a_terminal, code, env, tmp_path)
    assert shown.replace("\r\n", "\n") == MARKDOWN + "\n"
    assert len(openai.requests) == 1


async def test_plain_flag_keeps_a_terminal_plain(tmp_path: Path, openai: OpenAIServer) -> None:
    env = user_env(tmp_path / "home", OPENAI_API_KEY=KEY)
    openai.script(Reply(text=MARKDOWN))
    argv = list(openai_chat(openai, "--model", "gpt-4o-mini", "--plain", "How old?"))
    code = (
        "import sys\n"
        "from lexigram.ai.llm.cli import main\n"
        "status = main(" + repr(argv) + ")\n"
        "assert 'rich' not in sys.modules, 'rich was imported'\n"
        "sys.exit(status)\n"
    )
    _, shown = await asyncio.to_thread(_run_on_a_terminal, code, env, tmp_path)
    assert shown.replace("\r\n", "\n") == MARKDOWN + "\n"
