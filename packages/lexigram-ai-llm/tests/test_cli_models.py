"""``lexigram-llm models`` run as a user runs it: a subprocess whose providers are loopback
servers configured through their usual variables (``OPENAI_API_KEY`` + ``OPENAI_BASE_URL``,
``ANTHROPIC_API_KEY`` + ``ANTHROPIC_BASE_URL``, ``OLLAMA_HOST``), one answering, one stalled."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from harness.cli_process import run_cli, user_env
from harness.conformance import SECRET
from harness.model_list_server import ModelListServer
from harness.ollama_admin_server import LibraryModel, OllamaAdminServer

from lexigram.ai.llm.pricing import lookup_model
from lexigram.ai.llm.providers.local import DEFAULT_MODEL

TIMEOUT = "2"  # seconds each provider has; the stalled one answers after a minute
UNKNOWN = "acme-unreleased-model"  # no entry in the model table


@pytest_asyncio.fixture
async def stalled() -> AsyncIterator[ModelListServer]:
    async with ModelListServer("anthropic", ["claude-sonnet-4-20250514"], stall=60) as server:
        yield server


@pytest_asyncio.fixture
async def openai(stalled: ModelListServer) -> AsyncIterator[ModelListServer]:
    # It notes whether the stalled server was holding a request when its own came.
    async with ModelListServer("openai", ["gpt-4o-mini", UNKNOWN], watch=stalled) as server:
        yield server


@pytest_asyncio.fixture
async def ollama() -> AsyncIterator[OllamaAdminServer]:
    model = LibraryModel("smollm2:135m", [("sha256:" + "c" * 64, 98_362_432)])
    server = OllamaAdminServer(pulled={model.name: model}, running={model.name})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = user_env(home, **extra)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE"):  # the machine's AWS chain stays out
        env.pop(name, None)
    return env


def two_providers(
    home: Path, openai: ModelListServer, stalled: ModelListServer, ollama: OllamaAdminServer
) -> dict[str, str]:
    return env_for(
        home,
        OPENAI_API_KEY=SECRET,
        OPENAI_BASE_URL=openai.url + "/v1",
        ANTHROPIC_API_KEY=SECRET,
        ANTHROPIC_BASE_URL=stalled.url,
        OLLAMA_HOST=ollama.url,
    )


def rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    """Table rows by (provider, model): the cells split on the table's column gaps."""
    found = {}
    for line in stdout.splitlines()[1:]:
        cells = [cell for cell in line.split("  ") if cell.strip()]
        if len(cells) >= 6:
            cells = [cell.strip() for cell in cells]
            found[(cells[0], cells[1])] = cells
    return found


async def test_one_provider_answers_and_the_stalled_one_is_one_line(
    openai: ModelListServer,
    stalled: ModelListServer,
    ollama: OllamaAdminServer,
    tmp_path: Path,
) -> None:
    env = two_providers(tmp_path / "home", openai, stalled, ollama)
    ran = await run_cli("models", "--timeout", TIMEOUT, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    header = ran.stdout.splitlines()[0].split()
    assert header == [
        "PROVIDER",
        "MODEL",
        "CONTEXT",
        "INPUT$/M",
        "OUTPUT$/M",
        "CAPABILITIES",
        "NOTE",
    ]
    table = rows(ran.stdout)
    info = lookup_model("gpt-4o-mini", "openai")
    assert info is not None and info.input_per_mtok is not None
    known = table[("openai", "gpt-4o-mini")]
    assert known[2] == f"{round((info.context_window or 0) / 1000)}k"
    assert known[3:5] == [f"{info.input_per_mtok:g}", f"{info.output_per_mtok:g}"]
    assert "vision" in known[5].split(",") and "tools" in known[5].split(",")
    assert table[("openai", UNKNOWN)][2:6] == ["-", "-", "-", "-"]
    assert table[("local", DEFAULT_MODEL)][-1] == "93.8 MB, bundled"
    assert table[("ollama", "smollm2:135m")][-1] == "93.8 MB, running"
    # openai_responses asks the same endpoint with the same key: listed once.
    assert not any(provider == "openai_responses" for provider, _ in table)
    assert "anthropic: unavailable (LLMTimeoutError: " in ran.stdout
    assert len(openai.requests) == 1 and len(stalled.requests) == 1
    assert openai.watched_pending == [1]  # both asked at once
    assert SECRET not in ran.stdout + ran.stderr


async def test_json_lists_models_and_errors_apart(
    openai: ModelListServer,
    stalled: ModelListServer,
    ollama: OllamaAdminServer,
    tmp_path: Path,
) -> None:
    env = two_providers(tmp_path / "home", openai, stalled, ollama)
    ran = await run_cli("models", "--json", "--timeout", TIMEOUT, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    document = json.loads(ran.stdout)
    by_name = {(m["provider"], m["model"]): m for m in document["models"]}
    mini = by_name[("openai", "gpt-4o-mini")]
    info = lookup_model("gpt-4o-mini", "openai")
    assert info is not None
    assert mini["source"] == "api"
    assert mini["context_window"] == info.context_window
    assert mini["input_per_mtok"] == info.input_per_mtok
    assert mini["output_per_mtok"] == info.output_per_mtok
    assert "tools" in mini["capabilities"]
    unknown = by_name[("openai", UNKNOWN)]
    assert [unknown[k] for k in ("context_window", "input_per_mtok", "capabilities")] == [
        None,
        None,
        [],
    ]
    assert by_name[("local", DEFAULT_MODEL)]["source"] == "local"
    assert by_name[("ollama", "smollm2:135m")]["state"] == "running"
    (error,) = document["errors"]
    assert error["provider"] == "anthropic"
    assert error["error"] == "LLMTimeoutError"
    assert error["code"] == "timeout"
    assert SECRET not in ran.stdout + ran.stderr


async def test_provider_limits_the_list(
    openai: ModelListServer,
    stalled: ModelListServer,
    ollama: OllamaAdminServer,
    tmp_path: Path,
) -> None:
    env = two_providers(tmp_path / "home", openai, stalled, ollama)
    ran = await run_cli("models", "--provider", "openai", "--json", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    document = json.loads(ran.stdout)
    assert {m["provider"] for m in document["models"]} == {"openai"}
    assert document["errors"] == []
    assert stalled.requests == [] and ollama.requests == []


async def test_a_stored_key_configures_a_provider_and_api_base_needs_none(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    async with (
        ModelListServer("cohere", ["command-a-03-2025"]) as cohere,
        ModelListServer("openai", ["served-model"], key=None) as server,
    ):
        env = env_for(home, CO_API_URL=cohere.url)
        stored = await run_cli("keys", "set", "cohere", env=env, cwd=tmp_path, stdin=SECRET)
        assert stored.returncode == 0, stored.stderr
        ran = await run_cli("models", "--timeout", TIMEOUT, env=env, cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        assert rows(ran.stdout)[("cohere", "command-a-03-2025")][2] == "256k"
        ran = await run_cli(
            "models", "--api-base", server.url + "/v1", "--json", env=env, cwd=tmp_path
        )
        assert ran.returncode == 0, ran.stderr
        (model,) = json.loads(ran.stdout)["models"]
        assert (model["provider"], model["model"]) == ("openai_compatible", "served-model")
        assert "authorization" not in server.requests[0].headers
    assert SECRET not in ran.stdout + ran.stderr


async def test_a_redirect_to_another_host_shows_typed(tmp_path: Path) -> None:
    async with (
        ModelListServer("openai", ["gpt-4o-mini"]) as elsewhere,
        ModelListServer("openai", redirect_to=elsewhere.url + "/v1/models") as server,
    ):
        env = env_for(tmp_path / "home", OPENAI_API_KEY=SECRET, OPENAI_BASE_URL=server.url + "/v1")
        ran = await run_cli("models", "--provider", "openai", env=env, cwd=tmp_path)
    assert ran.returncode == 1  # the only provider asked for failed
    assert "openai: unavailable (RedirectRefusedError: " in ran.stdout
    assert elsewhere.requests == []
    assert SECRET not in ran.stdout + ran.stderr


async def test_endless_pages_end_as_one_line(tmp_path: Path) -> None:
    async with ModelListServer("anthropic", endless=True) as server:
        env = env_for(tmp_path / "home", ANTHROPIC_API_KEY=SECRET, ANTHROPIC_BASE_URL=server.url)
        ran = await run_cli("models", "--provider", "anthropic", env=env, cwd=tmp_path)
    assert "anthropic: unavailable (ResponseLimitError: " in ran.stdout
    assert SECRET not in ran.stdout + ran.stderr


async def test_local_and_ollama_models(ollama: OllamaAdminServer, tmp_path: Path) -> None:
    env = env_for(tmp_path / "home")
    ran = await run_cli("models", "--ollama-url", ollama.url, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    table = rows(ran.stdout)
    assert set(table) == {("local", DEFAULT_MODEL), ("ollama", "smollm2:135m")}
    local = table[("local", DEFAULT_MODEL)]
    info = lookup_model(DEFAULT_MODEL)
    assert info is not None and info.context_window is not None
    assert local[2] == str(info.context_window)


async def test_ollama_not_there_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = env_for(tmp_path / "home")
    ran = await run_cli("models", "--ollama-url", url, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert DEFAULT_MODEL in ran.stdout
    assert f"ollama ({url}): unavailable (ProviderConnectionError: " in ran.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "nope"], "unknown provider 'nope'"),
        (["--timeout", "0"], "--timeout must be positive"),
        (
            ["--api-base", "http://127.0.0.1:9/v1", "--provider", "openai", "--provider", "groq"],
            "--api-base needs exactly one --provider",
        ),
    ],
)
async def test_bad_flags_are_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    ran = await run_cli("models", *args, env=env_for(tmp_path / "home"), cwd=tmp_path)
    assert ran.returncode == 2
    assert message in ran.stderr
