"""``lexigram-llm``: the main job (a streamed answer from the embedded model, no key, no
network), config resolution, typed one-line failures, ``providers`` and ``models``.

Subprocess tests run the installed entry point exactly as a user would; the others call
``main()`` in-process (same code, the model stays loaded between them)."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import jsonschema
import pytest
import pytest_asyncio
from harness.ollama_admin_server import LibraryModel, OllamaAdminServer

from lexigram.ai.llm import ClientConfig
from lexigram.ai.llm.cli import LOCAL_MAX_TOKENS, main
from lexigram.ai.llm.providers.local import (
    DEFAULT_MODEL,
    LoadOptions,
    default_pool,
    resolve_model,
)
from lexigram.ai.llm.registry import default_registry

QUESTION = "What is the capital of France?"
LEXIGRAM_LLM = Path(sys.executable).with_name("lexigram-llm")
# The local model's numerics variant the suite runs under (CI: one thread, then two); a "user"
# here keeps it, so every variant runs these tests too.
NUMERICS_VARIABLES = ("LEX_AI_LLM__EXTRA__N_THREADS", "LEX_AI_LLM__EXTRA__N_BATCH")
KEY_VARIABLES = sorted({name for info in default_registry.list() for name in info.api_key_env})
SECRET = "sk-test-SECRET-0123456789abcdef"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user with no provider key and no lexigram settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("LEX_") or k in NUMERICS_VARIABLES)
        and k not in KEY_VARIABLES
        and k != "OLLAMA_HOST"
    }
    env.update(extra)
    return env


def run(
    *args: str, cwd: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LEXIGRAM_LLM), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=clean_env(**env),
        check=False,
    )


@pytest.fixture(scope="module")
def loaded_model() -> Iterator[None]:
    """Keep the bundled model loaded for the in-process runs of this module."""
    holder = object()
    options = LoadOptions.from_config(ClientConfig(provider="local"))
    default_pool().get(resolve_model(None), options, holder=id(holder))
    yield
    default_pool().release(id(holder))


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An in-process user: empty working directory, no keys, no LEX_ variables."""
    monkeypatch.chdir(tmp_path)
    for name in [*KEY_VARIABLES, "OLLAMA_HOST"]:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("LEX_") and name not in NUMERICS_VARIABLES:
            monkeypatch.delenv(name)
    return tmp_path


# -- the main job --------------------------------------------------------------------------


@pytest.mark.slow
def test_main_job_streams_paris_with_no_key_and_no_config(tmp_path: Path) -> None:
    done = run("chat", QUESTION, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert done.stdout.endswith("\n")
    assert done.stderr == ""  # no progress line when stderr is not a terminal


@pytest.mark.slow
def test_python_dash_m_and_stdin_prompt(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lexigram.ai.llm", "chat", "-"],
        input=QUESTION + "\n",
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout


@pytest.mark.slow
def test_a_progress_indicator_shows_on_a_terminal_while_the_model_loads(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [str(LEXIGRAM_LLM), "chat", QUESTION],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=tmp_path,
        env=clean_env(),
    )
    os.close(slave)
    seen = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                data = os.read(master, 1024)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            seen.extend(data)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    stdout, _ = process.communicate(timeout=180)
    reader.join(timeout=10)
    os.close(master)
    assert process.returncode == 0
    assert "Paris" in stdout.decode()
    terminal = seen.decode(errors="replace")
    assert "Loading SmolLM2-135M-Instruct" in terminal
    # The indicator erases itself: the terminal's last line is blank again.
    assert terminal.rstrip(" ").endswith("\r")


def test_verbose_logs_the_default_provider_choice(
    user: Path, loaded_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    import lexigram.ai.llm.registry as registry

    registry._logged_local = False  # the choice is logged once per process
    library_logger = logging.getLogger("lexigram")
    handlers, level = list(library_logger.handlers), library_logger.level
    try:
        assert main(["-v", "chat", "--max-tokens", "2", QUESTION]) == 0
    finally:
        for handler in library_logger.handlers[:]:
            if handler not in handlers:
                library_logger.removeHandler(handler)
        library_logger.setLevel(level)
    assert "embedded local model" in capsys.readouterr().err


# -- chat options and config resolution ------------------------------------------------------


def test_no_stream_json_schema_and_system(
    user: Path, loaded_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
    }
    (user / "city.json").write_text(json.dumps(schema))
    status = main(
        [
            "chat",
            "--json-schema",
            "city.json",
            "--system",
            "You answer in JSON.",
            "--max-tokens",
            "40",
            "--no-stream",
            "Which city is the capital of France?",
        ]
    )
    assert status == 0
    jsonschema.validate(json.loads(capsys.readouterr().out), schema)


def test_yaml_environment_and_flags_reach_the_client(
    user: Path,
    loaded_model: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def answer(*flags: str) -> str:
        assert main(["chat", *flags, QUESTION]) == 0
        return capsys.readouterr().out.strip()

    full = answer()
    (user / "application.yaml").write_text("ai_llm:\n  max_tokens: 2\n")
    from_yaml = answer()
    monkeypatch.setenv("LEX_AI_LLM__MAX_TOKENS", "4")
    from_env = answer()
    from_flag = answer("--max-tokens", "3")
    assert "Paris" in full
    # Greedy answers are prefixes of one another, as long as each limit allows.
    assert full.startswith(from_env) and from_env.startswith(from_flag)
    assert from_flag.startswith(from_yaml)
    assert len(from_yaml) < len(from_flag) < len(from_env) < len(full)


# A grammar that allows only "la la la ...": the answer loops on any CPU.
LOOP_SCHEMA = {"type": "string", "pattern": "^(la ){1000}$"}


def test_a_looping_answer_is_ended_with_a_note(
    user: Path, loaded_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (user / "loop.json").write_text(json.dumps(LOOP_SCHEMA))
    assert main(["chat", "--json-schema", "loop.json", "Sing."]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith('"la la la')
    assert captured.out.count("la") < 100  # ended soon after the loop began
    assert captured.err == "note: the answer was ended because it began repeating itself\n"
    assert main(["chat", "--json-schema", "loop.json", "--no-stream", "Sing."]) == 0
    assert "repeating itself" in capsys.readouterr().err


def test_the_local_model_answers_at_most_the_default_length(
    user: Path,
    loaded_model: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With the loop guard off, a grammar-forced loop of 1000 words runs until the CLI's
    # default answer length stops it, not to the end of the context window.
    (user / "loop.json").write_text(json.dumps(LOOP_SCHEMA))
    monkeypatch.setenv("LEX_AI_LLM__EXTRA__STOP_ON_REPETITION", "false")
    assert main(["chat", "--json-schema", "loop.json", "--no-stream", "Sing."]) == 0
    words = capsys.readouterr().out.count("la")
    assert LOCAL_MAX_TOKENS // 3 < words <= LOCAL_MAX_TOKENS


def test_chat_help_documents_the_local_limits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["chat", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"at most {LOCAL_MAX_TOKENS} tokens" in text
    assert "raw finish reason 'repetition'" in text


def test_an_empty_prompt_is_a_usage_error(
    user: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
    assert main(["chat", "-"]) == 2
    assert capsys.readouterr().err == "error: _UsageError: the prompt is empty\n"


# -- failures: one line naming the typed error ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "error"),
    [
        (["--model", "/nowhere/model.gguf"], 2, "ConfigurationError"),
        (["--provider", "no-such-provider"], 2, "UnknownProviderError"),
        (["--json-schema", "missing.json"], 2, "_UsageError"),
        (["--temperature", "7"], 2, "ConfigError"),
    ],
)
def test_configuration_failures_print_one_typed_line(
    user: Path, capsys: pytest.CaptureFixture[str], args: list[str], status: int, error: str
) -> None:
    assert main(["chat", *args, QUESTION]) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: {error}: ")


def test_an_unreachable_server_is_a_provider_error(
    user: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEX_AI_LLM__MAX_RETRIES", "0")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status = main(
        [
            "chat",
            "--provider",
            "openai_compatible",
            "--api-base",
            f"http://127.0.0.1:{port}/v1",
            "--model",
            "m",
            QUESTION,
        ]
    )
    assert status == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ProviderConnectionError: Could not reach openai_compatible")


# -- providers and models ------------------------------------------------------------------


def test_providers_lists_key_variables_and_never_the_key(
    user: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert set(rows) == set(default_registry.names())
    assert rows["openai"][1:] == ["openai", "OPENAI_API_KEY", "set"]
    assert rows["anthropic"][-2:] == ["not", "set"]
    assert rows["local"][-2:] == ["not", "needed"]


@pytest_asyncio.fixture
async def ollama() -> AsyncIterator[OllamaAdminServer]:
    model = LibraryModel("smollm2:135m", [("sha256:" + "c" * 64, 98_362_432)])
    server = OllamaAdminServer(pulled={model.name: model}, running={model.name})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_models_lists_local_and_ollama_models(
    ollama: OllamaAdminServer, tmp_path: Path
) -> None:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        str(LEXIGRAM_LLM),
        "models",
        "--ollama-url",
        ollama.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=clean_env(),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    lines = [line.split() for line in stdout.decode().splitlines()]
    assert lines[0][:3] == ["PROVIDER", "MODEL", "CONTEXT"]  # more in test_cli_models.py
    rows = {tuple(line[:2]): line[-3:] for line in lines[1:]}
    assert rows[("local", DEFAULT_MODEL)] == ["93.8", "MB,", "bundled"]
    assert rows[("ollama", "smollm2:135m")] == ["93.8", "MB,", "running"]


def test_models_says_when_ollama_is_not_there(
    user: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["models", "--ollama-url", f"http://127.0.0.1:{port}"]) == 0
    out = capsys.readouterr().out
    assert DEFAULT_MODEL in out
    assert f"ollama (http://127.0.0.1:{port}): unavailable (ProviderConnectionError: " in out
